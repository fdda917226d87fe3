/*
 * offline_args: how the offline model fills tool arguments from text, guided by the tool's
 * parameter schema (an object schema as sent in model_req_t.tools).
 *
 * Per property, in this order: const; enum (a value whose words occur in the text);
 * typed values found in whitespace-separated spans of the text (pattern, format
 * email/date/uri, shapes derived from string examples, integers/numbers within
 * minimum/maximum); free text by role (query-like names get the request's content words,
 * subject-like names its first sentence, description-like names the whole request); a key
 * of the same name in an earlier tool result (so a later call can use what an earlier one
 * returned); then the default. The latest request is searched first, earlier user turns
 * after it. A span fills at most one property.
 *
 * Also the shared view of the conversation the offline model works from.
 */
#ifndef AGENTD_OFFLINE_ARGS_H
#define AGENTD_OFFLINE_ARGS_H

#include "offline_schema.h"

#include <json-c/json.h>
#include <stddef.h>

/* One tool observation (a tool message and the call that produced it). */
typedef struct offline_obs {
    const char *tool;    /* borrowed from the messages */
    json_object *args;   /* parsed call arguments (owned) or NULL */
    json_object *result; /* parsed tool content (owned) or NULL when it is not JSON */
    const char *text;    /* raw tool content, borrowed */
    int is_error;        /* is_error flag, or an object result with an "error" key */
    int earlier;         /* observed in an earlier user turn and reused */
} offline_obs_t;

typedef struct offline_src {
    const char *text;         /* the latest user request */
    const char *history;      /* earlier user requests, newest first; "" when none */
    const offline_obs_t *obs; /* observations usable for answers and chained arguments */
    size_t nobs;
} offline_src_t;

/* At most this many parallel calls of one tool when a request names several values
 * ("orders 1042 and 1043"). */
#define OFFLINE_MAX_FANOUT 3

/* Fill arguments for a tool. On success *calls is a new array of argument objects (one per
 * call to make; several when a required typed property matched several values in the
 * request) with keys in sorted order. If a required property cannot be filled, returns
 * ERR_NOTFOUND and sets *missing to its name (borrowed from params). ERR_NOMEM. */
int offline_args_fill(json_object *params, const offline_src_t *src, json_object **calls,
                      const char **missing);

/* How many of the tool's required identifier-like properties (pattern, format, example
 * shapes, numbers) have
 * a value in text: "order 1042" against an order id `^[0-9]{4}$` is strong evidence that the
 * request is about that tool. */
size_t offline_args_typed_hits(json_object *params, const char *text);

/* Does the tool take a required free-text query ("query", "q", "keywords", ...)? Such a
 * search tool is the offline model's fallback when no tool clearly fits. */
int offline_args_is_search(json_object *params);

/* Look for a key named `name` (or, for names like "customer_email", their last word when
 * it has 4+ letters) in the observations' results, depth-first with sorted keys, newest
 * observation first, whose value fits schema (numbers are turned into strings when schema
 * wants a string). New reference, or NULL. */
json_object *offline_obs_lookup(const offline_src_t *src, const char *name, json_object *schema);

#endif
