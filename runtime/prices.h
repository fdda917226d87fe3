/*
 * prices: what a model call costs. A price table ships compiled in (USD per million
 * tokens: input, output, cached input); a JSON file can add or replace entries:
 *   {"openai:gpt-4o-mini": {"input": 0.15, "output": 0.60, "cached_input": 0.075},
 *    "vllm:*": {"input": 0, "output": 0}}
 * Keys are "provider:model"; a trailing '*' matches any model with that prefix. An exact
 * key wins over a prefix, a longer prefix over a shorter one, the file over the shipped
 * table. Immutable after prices_new(); no global state.
 */
#ifndef AGENTD_PRICES_H
#define AGENTD_PRICES_H

#include "model.h"

#include <stddef.h>

typedef struct prices prices_t;

typedef struct price {
    double input, output, cached_input; /* USD per 1,000,000 tokens */
} price_t;

/* Shipped table plus the entries of file (NULL: none). NULL on failure, errbuf names the
 * file and the entry at fault. */
prices_t *prices_new(const char *file, char *errbuf, size_t errlen);
void prices_free(prices_t *p);

/* 0 and *out for "provider:model", ERR_NOTFOUND if no entry matches. */
int prices_lookup(const prices_t *p, const char *model, price_t *out);
/* Cost in USD of u; 0 for unknown models. Cached input tokens are part of input_tokens
 * and charged at the cached rate (the input rate when no cached rate is listed). */
double prices_cost(const prices_t *p, const char *model, const model_usage_t *u);

/* When the shipped table was last checked against the vendors' price pages. */
#define PRICES_AS_OF "2025-06"

#endif
