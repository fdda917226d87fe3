/*
 * offline_answer: the offline model's final answer, written from tool observations:
 * readable prose (what each tool returned, in sentences; errors said plainly), and, when the
 * agent declares an output schema, a JSON value that satisfies it.
 *
 * Deterministic: object keys are walked in a fixed order (well-known keys first, then
 * sorted), so the same observations always give the same text.
 */
#ifndef AGENTD_OFFLINE_ANSWER_H
#define AGENTD_OFFLINE_ANSWER_H

#include "offline_args.h"

#include <json-c/json.h>

/* What the model could not do because a required parameter was not in the request. */
typedef struct offline_ask {
    const char *tool;    /* tool name */
    const char *param;   /* parameter name */
    json_object *schema; /* the parameter's schema (description, examples, pattern) */
} offline_ask_t;

/* The prose answer (caller frees), or NULL on ERR_NOMEM. tools is the offered tool list
 * (for a help reply when nothing matched; may be NULL); ask may be NULL. */
char *offline_answer_text(const offline_src_t *src, json_object *tools, const offline_ask_t *ask);

/* A new JSON value satisfying schema (an object schema, usually): answer-like string
 * properties ("answer", "summary", ...) get the prose, others are filled from the
 * observations, then from the request (offline_args.h rules), then defaults; required
 * properties are always present with a value of the right type. NULL on ERR_NOMEM. */
json_object *offline_answer_schema(json_object *schema, const char *prose,
                                   const offline_src_t *src);

#endif
