/*
 * offline_convo: see offline_convo.h. Tool calls are matched to their observations by id;
 * an observation whose call is unknown (an orphan) still counts, under its own name.
 */
#include "offline_convo.h"
#include "jx.h"

#include "err.h"
#include "offline_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *content_text(json_object *msg)
{
    json_object *c;
    if (!json_object_object_get_ex(msg, "content", &c) || !c)
        return "";
    if (json_object_is_type(c, json_type_string))
        return json_object_get_string(c);
    /* Content parts ([{"type":"text","text":...}]): the first text part is the request. */
    for (size_t i = 0; json_object_is_type(c, json_type_array) && i < json_object_array_length(c);
         i++) {
        json_object *t;
        if (json_object_object_get_ex(json_object_array_get_idx(c, i), "text", &t))
            return json_object_get_string(t);
    }
    return "";
}

const char *offline_str_field(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

json_object *offline_canonical(const char *name, json_object *args)
{
    json_object *sorted = args ? offline_json_sorted(args) : NULL;
    if (args && !sorted)
        return NULL;
    size_t n = strlen(name) + 2;
    const char *a = sorted ? json_object_to_json_string_ext(sorted, JSON_C_TO_STRING_PLAIN) : "";
    char *s = malloc(n + strlen(a));
    json_object *r = NULL;
    if (s) {
        snprintf(s, n + strlen(a), "%s %s", name, a);
        r = json_object_new_string(s);
    }
    free(s);
    json_object_put(sorted);
    return r;
}

void offline_convo_clear(offline_convo_t *c)
{
    free(c->history);
    free(c->feedback);
    for (size_t i = 0; i < c->ncalls; i++)
        json_object_put(c->calls[i].args);
    free(c->calls);
    for (size_t i = 0; i < c->nobs; i++)
        json_object_put(c->obs[i].result);
    free(c->obs);
    json_object_put(c->made);
}

static int add_calls(offline_convo_t *c, json_object *msg, size_t at)
{
    json_object *tc;
    if (!json_object_object_get_ex(msg, "tool_calls", &tc) ||
        !json_object_is_type(tc, json_type_array))
        return 0;
    size_t n = json_object_array_length(tc);
    void *nc = realloc(c->calls, (c->ncalls + n + 1) * sizeof *c->calls);
    if (!nc)
        return ERR_NOMEM;
    c->calls = nc;
    for (size_t i = 0; i < n; i++) {
        json_object *call = json_object_array_get_idx(tc, i);
        const char *name = offline_str_field(call, "name"),
                   *args = offline_str_field(call, "arguments");
        offline_call_t *r = &c->calls[c->ncalls];
        *r = (offline_call_t){offline_str_field(call, "id"), name ? name : "", NULL, at};
        if (args)
            r->args = jx_parse(args);
        c->ncalls++;
        json_object *key = offline_canonical(r->name, r->args);
        if (!key || json_object_array_add(c->made, key)) {
            json_object_put(key);
            return ERR_NOMEM;
        }
    }
    return 0;
}

static int add_obs(offline_convo_t *c, json_object *msg, size_t at)
{
    const char *id = offline_str_field(msg, "tool_call_id");
    const offline_call_t *call = NULL;
    for (size_t i = 0; id && i < c->ncalls; i++)
        if (c->calls[i].id && !strcmp(c->calls[i].id, id))
            call = &c->calls[i];
    void *no = realloc(c->obs, (c->nobs + 1) * sizeof *c->obs);
    if (!no)
        return ERR_NOMEM;
    c->obs = no;
    offline_obs_t *ob = &c->obs[c->nobs++];
    json_object *err;
    *ob = (offline_obs_t){0};
    ob->tool = call ? call->name : offline_str_field(msg, "name");
    if (!ob->tool)
        ob->tool = "tool";
    ob->args = call ? call->args : NULL; /* borrowed from calls */
    ob->text = content_text(msg);
    ob->result = jx_parse(ob->text);
    ob->is_error = json_object_get_boolean(json_object_object_get(msg, "is_error")) ||
                   (json_object_is_type(ob->result, json_type_object) &&
                    json_object_object_get_ex(ob->result, "error", &err) && err);
    ob->earlier = at < c->turn;
    return 0;
}

int offline_convo_parse(json_object *messages, offline_convo_t *c)
{
    size_t n = json_object_array_length(messages);
    buf_t hist = {0};
    c->text = "";
    c->made = json_object_new_array();
    if (!c->made)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(messages, i);
        const char *role = offline_str_field(m, "role");
        /* The runtime's feedback to a rejected answer is not a new request: the model
         * answers the same question again (docs/guardrails.md). */
        if (role && !strcmp(role, "user") && !json_object_object_get_ex(m, "agentd_guardrail", NULL)) {
            c->turn = i;
            c->text = content_text(m);
        }
    }
    for (size_t i = c->turn; i-- > 0;) {
        json_object *m = json_object_array_get_idx(messages, i);
        const char *role = offline_str_field(m, "role");
        if (role && !strcmp(role, "user") && !json_object_object_get_ex(m, "agentd_guardrail", NULL)) {
            buf_adds(&hist, hist.len ? "\n" : "");
            buf_adds(&hist, content_text(m));
        }
    }
    if (!(c->history = buf_take(&hist)))
        return ERR_NOMEM;
    buf_t fb = {0};
    for (size_t i = c->turn + 1; i < n; i++) {
        json_object *m = json_object_array_get_idx(messages, i);
        const char *why = offline_str_field(m, "agentd_reason");
        if (json_object_object_get_ex(m, "agentd_guardrail", NULL))
            buf_addf(&fb, "%s%s", fb.len ? "\n" : "", why ? why : content_text(m));
    }
    if (!(c->feedback = buf_take(&fb)))
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(messages, i), *tc;
        const char *role = offline_str_field(m, "role");
        int rc = 0;
        if (!role)
            continue;
        if (!strcmp(role, "assistant")) {
            rc = add_calls(c, m, i);
            if (i > c->turn && json_object_object_get_ex(m, "tool_calls", &tc) &&
                json_object_array_length(tc) > 0)
                c->rounds++;
        } else if (!strcmp(role, "tool")) {
            rc = add_obs(c, m, i);
        }
        if (rc)
            return rc;
    }
    return 0;
}

int offline_convo_made(const offline_convo_t *c, json_object *key, size_t *which)
{
    for (size_t i = 0; i < json_object_array_length(c->made); i++)
        if (!strcmp(json_object_get_string(json_object_array_get_idx(c->made, i)),
                    json_object_get_string(key))) {
            *which = i;
            return 1;
        }
    return 0;
}

/* Did the tool never run for this call? Its arguments were not JSON, or the runtime rejected
 * them before the tool started ({"status":"rejected"}); then a corrected call is safe. A
 * call a person denied counts as done: asking again with other arguments would be nagging. */
static int never_ran(const offline_convo_t *c, const offline_call_t *call)
{
    if (!call->args)
        return 1;
    for (size_t i = 0; i < c->nobs; i++) {
        json_object *st, *err;
        if (c->obs[i].args == call->args && c->obs[i].is_error &&
            json_object_object_get_ex(c->obs[i].result, "status", &st) &&
            !strcmp(json_object_get_string(st), "rejected"))
            return !(json_object_object_get_ex(c->obs[i].result, "error", &err) &&
                     !strncmp(json_object_get_string(err), "denied by operator", 18));
    }
    return 0;
}

int offline_convo_called(const offline_convo_t *c, const char *name)
{
    for (size_t i = 0; i < c->ncalls; i++)
        if (c->calls[i].at > c->turn && !strcmp(c->calls[i].name, name) &&
            !never_ran(c, &c->calls[i]))
            return 1;
    return 0;
}
