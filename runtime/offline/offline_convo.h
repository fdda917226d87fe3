/*
 * offline_convo: the offline model's reading of a conversation (neutral message format,
 * model.h): the latest user request, earlier requests, every tool call made so far with its
 * canonical identity, every observation, and how many tool rounds the current turn has had.
 *
 * Borrowing: strings point into the messages, which must outlive the convo. Parsed
 * arguments and tool results are owned by the convo.
 */
#ifndef AGENTD_OFFLINE_CONVO_H
#define AGENTD_OFFLINE_CONVO_H

#include "offline_args.h"

#include <json-c/json.h>
#include <stddef.h>

typedef struct offline_call {
    const char *id, *name;
    json_object *args; /* parsed, or NULL when the model's text was not JSON */
    size_t at;         /* message index */
} offline_call_t;

typedef struct offline_convo {
    const char *text;      /* latest user request ("" when there is none) */
    char *history;         /* earlier user requests, newest first */
    size_t turn;           /* index of the latest user message */
    size_t rounds;         /* assistant tool-call messages since it */
    offline_call_t *calls; /* every tool call of the conversation, in order */
    size_t ncalls;
    json_object *made;  /* offline_canonical() of every call, same order as calls */
    offline_obs_t *obs; /* every observation, in order; .earlier for older turns */
    size_t nobs;
    char *feedback;     /* reasons a guardrail rejected this turn's answers ("" when none) */
} offline_convo_t;

/* Read messages (a JSON array) into c, which must be zeroed. 0 or ERR_NOMEM; on failure
 * offline_convo_clear() still releases what was read. */
int offline_convo_parse(json_object *messages, offline_convo_t *c);
void offline_convo_clear(offline_convo_t *c);

/* Was a call identical to key (offline_canonical) made before? *which gets its index. */
int offline_convo_made(const offline_convo_t *c, json_object *key, size_t *which);
/* Did the tool run in the current turn? Calls that never reached it (arguments that were
 * not JSON, or rejected by the runtime's schema check) do not count. */
int offline_convo_called(const offline_convo_t *c, const char *name);

/* "name {args with sorted keys}", the identity of a call for the never-repeat rule.
 * New reference, or NULL on ERR_NOMEM. */
json_object *offline_canonical(const char *name, json_object *args);
/* o[k] when it is a string, else NULL. */
const char *offline_str_field(json_object *o, const char *k);

#endif
