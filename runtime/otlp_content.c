/*
 * otlp_content: see otlp_content.h. Pure JSON reshaping: the store and the tool registry
 * are read by the caller.
 */
#include "otlp_content.h"

#include "err.h"
#include "jx.h"
#include "trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A copy of s with secrets masked (trace.h trace_redact: secret environment values,
 * bearer and API-key headers), its lines kept. New string or NULL. */
static char *redact_text(const char *s)
{
    char *c = strdup(s);
    if (c)
        trace_redact(c);
    return c;
}

static json_object *redacted(const char *s)
{
    char *c = redact_text(s ? s : "");
    json_object *o = c ? json_object_new_string(c) : NULL;
    free(c);
    return o;
}

static json_object *text_part(const char *text)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "type", json_object_new_string("text"));
    json_object_object_add(p, "content", redacted(text));
    return p;
}

/* Tool arguments travel as JSON text in agentd; the conventions want the object. */
static json_object *arguments(const char *text)
{
    char *c = redact_text(text ? text : "{}");
    if (!c)
        return NULL;
    json_object *o = jx_parse(c);
    json_object *r = o ? o : json_object_new_string(c);
    free(c);
    return r;
}

/* One neutral message as a conventions message: role and parts. */
static json_object *conv_message(json_object *msg)
{
    const char *role = jx_str(msg, "role");
    json_object *out = json_object_new_object(), *parts = json_object_new_array();
    json_object_object_add(out, "role", json_object_new_string(role ? role : "user"));
    json_object *content = jx_get(msg, "content");
    if (role && !strcmp(role, "tool")) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "type", json_object_new_string("tool_call_response"));
        json_object_object_add(p, "id", json_object_new_string(jx_str_or(msg, "tool_call_id", "")));
        json_object_object_add(p, "response",
                               content && json_object_is_type(content, json_type_string)
                                   ? arguments(json_object_get_string(content))
                                   : json_object_get(content));
        json_object_array_add(parts, p);
    } else if (content && json_object_is_type(content, json_type_string) &&
               json_object_get_string_len(content) > 0) {
        json_object_array_add(parts, text_part(json_object_get_string(content)));
    }
    json_object *tcs = jx_get(msg, "tool_calls");
    for (size_t i = 0; tcs && i < json_object_array_length(tcs); i++) {
        json_object *tc = json_object_array_get_idx(tcs, i);
        json_object *p = json_object_new_object();
        json_object_object_add(p, "type", json_object_new_string("tool_call"));
        json_object_object_add(p, "id", json_object_new_string(jx_str_or(tc, "id", "")));
        json_object_object_add(p, "name", json_object_new_string(jx_str_or(tc, "name", "")));
        json_object_object_add(p, "arguments", arguments(jx_str(tc, "arguments")));
        json_object_array_add(parts, p);
    }
    json_object_object_add(out, "parts", parts);
    return out;
}

static json_object *tool_definitions(json_object *tools)
{
    json_object *defs = json_object_new_array();
    for (size_t i = 0; tools && i < json_object_array_length(tools); i++) {
        json_object *t = json_object_array_get_idx(tools, i), *d = json_object_new_object();
        json_object_object_add(d, "type", json_object_new_string("function"));
        json_object_object_add(d, "name", json_object_new_string(jx_str_or(t, "name", "")));
        if (jx_str(t, "description"))
            json_object_object_add(d, "description",
                                   json_object_new_string(jx_str(t, "description")));
        if (jx_get(t, "parameters"))
            json_object_object_add(d, "parameters", json_object_get(jx_get(t, "parameters")));
        json_object_array_add(defs, d);
    }
    return defs;
}

static int set_attr(spantree_span_t *s, const char *key, json_object *v)
{
    if (!v)
        return ERR_NOMEM;
    if (!s->attrs && !(s->attrs = json_object_new_object())) {
        json_object_put(v);
        return ERR_NOMEM;
    }
    return json_object_object_add(s->attrs, key, v) ? ERR_NOMEM : 0;
}

/* System instructions: the system messages among the first n. */
static json_object *system_parts(json_object *messages, size_t n)
{
    json_object *parts = json_object_new_array();
    for (size_t i = 0; i < n && i < json_object_array_length(messages); i++) {
        json_object *m = json_object_array_get_idx(messages, i);
        const char *role = jx_str(m, "role"), *text = jx_str(m, "content");
        if (role && !strcmp(role, "system") && text)
            json_object_array_add(parts, text_part(text));
    }
    return parts;
}

/* Messages [from, to) in the conventions' shape, system messages left out (they are the
 * system instructions). */
static json_object *conv_messages(json_object *messages, size_t from, size_t to)
{
    json_object *arr = json_object_new_array();
    for (size_t i = from; i < to && i < json_object_array_length(messages); i++) {
        json_object *m = json_object_array_get_idx(messages, i);
        const char *role = jx_str(m, "role");
        if (!role || strcmp(role, "system"))
            json_object_array_add(arr, conv_message(m));
    }
    return arr;
}

static const char *first_finish(const spantree_span_t *s)
{
    json_object *f = s->attrs ? jx_get(s->attrs, "gen_ai.response.finish_reasons") : NULL;
    if (f && json_object_is_type(f, json_type_array) && json_object_array_length(f))
        return json_object_get_string(json_object_array_get_idx(f, 0));
    return f && json_object_is_type(f, json_type_string) ? json_object_get_string(f) : NULL;
}

/* The run a span belongs to: its nearest invoke_agent ancestor (a sub-agent's run hangs
 * under its parent's tool call with its own invoke_agent root, whose id is its run id). */
static const char *owner(const spantree_t *m, int i)
{
    for (int p = m->spans[i].parent_idx; p >= 0; p = m->spans[p].parent_idx)
        if (!strcmp(m->spans[p].op, "invoke_agent"))
            return m->spans[p].id;
    return NULL;
}

int otlp_content_add(spantree_t *m, const char *run_id, json_object *messages, json_object *tools)
{
    size_t total = messages ? json_object_array_length(messages) : 0;
    if (spantree_flatten(m, 1))
        return ERR_NOMEM;
    int rc = 0;
    for (int i = 0; i < m->nspans && !rc; i++) {
        spantree_span_t *s = &m->spans[i];
        const char *own = owner(m, i);
        if (!strcmp(s->op, "chat") && own && !strcmp(own, run_id)) {
            int64_t n = spantree_attr_int(s, "agentd.messages", -1);
            if (n <= 0 || (size_t)n > total)
                continue; /* a span of an older trace, or messages since compacted */
            rc = set_attr(s, "gen_ai.system_instructions", system_parts(messages, (size_t)n));
            if (!rc)
                rc = set_attr(s, "gen_ai.input.messages", conv_messages(messages, 0, (size_t)n));
            if (!rc && s->end_ns && (size_t)n < total) {
                json_object *reply = conv_message(json_object_array_get_idx(messages, (size_t)n));
                const char *fin = first_finish(s);
                if (reply && fin)
                    json_object_object_add(reply, "finish_reason", json_object_new_string(fin));
                json_object *arr = json_object_new_array();
                json_object_array_add(arr, reply);
                rc = set_attr(s, "gen_ai.output.messages", arr);
            }
            if (!rc && tools && json_object_array_length(tools))
                rc = set_attr(s, "gen_ai.tool.definitions", tool_definitions(tools));
        } else if (!strcmp(s->op, "invoke_agent") && !strcmp(s->id, run_id) && total) {
            /* The run as one generation: the user's input and the final answer. */
            size_t first_user = total, last_answer = total;
            for (size_t k = 0; k < total; k++) {
                json_object *mk = json_object_array_get_idx(messages, k);
                const char *role = jx_str(mk, "role");
                if (role && !strcmp(role, "user") && first_user == total)
                    first_user = k;
                if (role && !strcmp(role, "assistant") && jx_str(mk, "content") &&
                    !jx_get(mk, "tool_calls"))
                    last_answer = k;
            }
            rc = set_attr(s, "gen_ai.system_instructions", system_parts(messages, total));
            if (!rc && first_user < total)
                rc = set_attr(s, "gen_ai.input.messages",
                              conv_messages(messages, first_user, first_user + 1));
            if (!rc && last_answer < total)
                rc = set_attr(s, "gen_ai.output.messages",
                              conv_messages(messages, last_answer, last_answer + 1));
        }
    }
    return rc;
}
