/*
 * provider_anthropic: the Anthropic Messages API (POST {base}/v1/messages).
 *
 * The neutral format maps onto content blocks: system messages become the top-level
 * "system"; an assistant's tool calls become tool_use blocks (arguments parsed back into
 * "input"); each tool result becomes a tool_result block in a user turn, and consecutive
 * turns of one role are merged, as the API wants strictly alternating roles. There is no
 * JSON-schema response mode, so an output schema is stated in the system prompt and the
 * reply is validated by model.c like any other.
 *
 * Streaming: message_start (input usage), content_block_start/delta/stop (text_delta,
 * input_json_delta fragments per block index), message_delta (stop_reason, output usage),
 * message_stop. A stream without message_stop was cut short: ERR_PROTO.
 */
#include "jx.h"
#include "err.h"
#include "provider_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANTHROPIC_VERSION "2023-06-01"
#define DEFAULT_MAX_TOKENS 4096

typedef struct an_block {
    int tool;               /* tool_use, else text */
    buf_t id, name, data;  /* data: text or input JSON fragments */
} an_block_t;

typedef struct an_job {
    pjob_t base; /* first: the pjob hooks cast back */
    an_block_t *blocks;
    size_t nblocks;
    char stop[32];
    int stopped;
    model_usage_t usage;
} an_job_t;

static json_object *text_block(const char *text)
{
    json_object *b = json_object_new_object();
    json_object_object_add(b, "type", jx_new_str("text"));
    json_object_object_add(b, "text", jx_new_str(text));
    return b;
}

static const char *text_of(json_object *m)
{
    json_object *c = jx_get(m, "content");
    if (!c || json_object_is_type(c, json_type_null))
        return "";
    if (json_object_is_type(c, json_type_string))
        return json_object_get_string(c);
    return json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN);
}

/* Append blocks to the last wire message if it has this role, else start a new one. */
static void push_blocks(json_object *out, const char *role, json_object *blocks)
{
    size_t n = json_object_array_length(out);
    json_object *last = n ? json_object_array_get_idx(out, n - 1) : NULL;
    const char *lr = jx_str(last, "role");
    if (lr && strcmp(lr, role) == 0) {
        json_object *lc = jx_get(last, "content");
        for (size_t i = 0; i < json_object_array_length(blocks); i++)
            json_object_array_add(lc, json_object_get(json_object_array_get_idx(blocks, i)));
        json_object_put(blocks);
        return;
    }
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", jx_new_str(role));
    json_object_object_add(m, "content", blocks);
    json_object_array_add(out, m);
}

static json_object *tool_use(json_object *tc)
{
    json_object *b = json_object_new_object();
    json_object_object_add(b, "type", jx_new_str("tool_use"));
    json_object_object_add(b, "id", jx_new_str(jx_str(tc, "id")));
    json_object_object_add(b, "name", jx_new_str(jx_str(tc, "name")));
    const char *args = jx_str(tc, "arguments");
    json_object *input = args ? json_tokener_parse(args) : json_object_get(jx_get(tc, "arguments"));
    /* Malformed arguments were already answered with an error result; the API only
     * needs an object here. */
    if (!input || !json_object_is_type(input, json_type_object)) {
        json_object_put(input);
        input = json_object_new_object();
    }
    json_object_object_add(b, "input", input);
    return b;
}

static json_object *wire_messages(json_object *msgs, buf_t *system)
{
    json_object *out = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        const char *role = jx_str(m, "role"), *text = text_of(m);
        role = role ? role : "user";
        json_object *blocks = json_object_new_array();
        if (strcmp(role, "system") == 0) {
            if (system->len)
                buf_add(system, "\n\n", 2);
            buf_add(system, text, strlen(text));
            json_object_put(blocks);
            continue;
        }
        if (strcmp(role, "tool") == 0) {
            json_object *b = json_object_new_object(), *e = jx_get(m, "is_error");
            json_object_object_add(b, "type", jx_new_str("tool_result"));
            json_object_object_add(b, "tool_use_id", jx_new_str(jx_str(m, "tool_call_id")));
            json_object_object_add(b, "content", jx_new_str(text));
            if (e && json_object_get_boolean(e))
                json_object_object_add(b, "is_error", json_object_new_boolean(1));
            json_object_array_add(blocks, b);
            push_blocks(out, "user", blocks);
            continue;
        }
        int assistant = strcmp(role, "assistant") == 0;
        /* The API rejects empty text blocks. */
        if (*text)
            json_object_array_add(blocks, text_block(text));
        json_object *tcs = assistant ? jx_get(m, "tool_calls") : NULL;
        for (size_t k = 0; tcs && k < json_object_array_length(tcs); k++)
            json_object_array_add(blocks, tool_use(json_object_array_get_idx(tcs, k)));
        if (!json_object_array_length(blocks)) {
            if (assistant) {
                json_object_put(blocks);
                continue;
            }
            json_object_array_add(blocks, text_block("(empty)"));
        }
        push_blocks(out, assistant ? "assistant" : "user", blocks);
    }
    return out;
}

static json_object *wire_tools(json_object *tools)
{
    json_object *out = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(tools); i++) {
        json_object *t = json_object_array_get_idx(tools, i), *w = json_object_new_object();
        json_object_object_add(w, "name", jx_new_str(jx_str(t, "name")));
        json_object_object_add(w, "description", jx_new_str(jx_str(t, "description")));
        json_object *params = jx_get(t, "parameters");
        json_object_object_add(w, "input_schema",
                               params ? json_object_get(params)
                                      : json_tokener_parse("{\"type\":\"object\"}"));
        json_object_array_add(out, w);
    }
    return out;
}

static json_object *build_body(const char *model, const model_req_t *req, int stream)
{
    json_object *b = json_object_new_object();
    buf_t system = {0};
    json_object_object_add(b, "model", jx_new_str(model));
    json_object_object_add(b, "max_tokens",
                           json_object_new_int(req->max_tokens > 0 ? req->max_tokens
                                                                   : DEFAULT_MAX_TOKENS));
    json_object_object_add(b, "messages", wire_messages(req->messages, &system));
    if (req->output_schema) {
        const char *s = json_object_to_json_string_ext(req->output_schema, JSON_C_TO_STRING_PLAIN);
        static const char lead[] = "When you give your final answer, reply with only a JSON "
                                   "value (no prose, no code fence) that matches this JSON "
                                   "Schema:\n";
        if (system.len)
            buf_add(&system, "\n\n", 2);
        buf_add(&system, lead, sizeof lead - 1);
        buf_add(&system, s, strlen(s));
    }
    if (system.len)
        json_object_object_add(b, "system", jx_new_str(buf_str(&system)));
    buf_free(&system);
    if (req->tools && json_object_array_length(req->tools)) {
        json_object *tc = json_object_new_object();
        json_object_object_add(tc, "type", jx_new_str("auto"));
        json_object_object_add(b, "tools", wire_tools(req->tools));
        json_object_object_add(b, "tool_choice", tc);
    }
    if (req->temperature >= 0)
        json_object_object_add(b, "temperature", jx_new_num(req->temperature));
    if (stream)
        json_object_object_add(b, "stream", json_object_new_boolean(1));
    return b;
}

/* Neutral usage counts all prompt tokens as input; Anthropic reports cache reads and
 * writes beside input_tokens. */
static void read_usage(model_usage_t *u, json_object *w)
{
    if (!w)
        return;
    int64_t read = jx_int(w, "cache_read_input_tokens", 0);
    if (jx_get(w, "input_tokens"))
        u->input_tokens = jx_int(w, "input_tokens", 0) + read +
                          jx_int(w, "cache_creation_input_tokens", 0);
    if (read)
        u->cached_tokens = read;
    if (jx_get(w, "output_tokens"))
        u->output_tokens = jx_int(w, "output_tokens", 0);
}

static const char *norm_finish(const char *stop, int has_calls)
{
    if (has_calls || (stop && strcmp(stop, "tool_use") == 0))
        return "tool_calls";
    if (stop && strcmp(stop, "max_tokens") == 0)
        return "length";
    return "stop";
}

static json_object *neutral(const buf_t *text, json_object *tcs)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", jx_new_str("assistant"));
    json_object_object_add(m, "content", text->len ? jx_new_str(buf_str(text)) : NULL);
    if (json_object_array_length(tcs))
        json_object_object_add(m, "tool_calls", tcs);
    else
        json_object_put(tcs);
    return m;
}

static json_object *neutral_call(const char *id, const char *name, const char *args)
{
    json_object *tc = json_object_new_object();
    json_object_object_add(tc, "id", jx_new_str(id));
    json_object_object_add(tc, "name", jx_new_str(name));
    json_object_object_add(tc, "arguments", jx_new_str(args && *args ? args : "{}"));
    return tc;
}

static int an_body(pjob_t *j, json_object *body)
{
    json_object *content = jx_get(body, "content");
    if (!content || !json_object_is_type(content, json_type_array))
        return pjob_fail(j, ERR_PROTO, "response has no content array");
    buf_t text = {0};
    json_object *tcs = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        json_object *b = json_object_array_get_idx(content, i);
        const char *type = jx_str(b, "type");
        if (type && strcmp(type, "text") == 0 && jx_str(b, "text")) {
            buf_add(&text, jx_str(b, "text"), strlen(jx_str(b, "text")));
        } else if (type && strcmp(type, "tool_use") == 0) {
            json_object *in = jx_get(b, "input");
            json_object_array_add(tcs, neutral_call(jx_str(b, "id"), jx_str(b, "name"),
                                                    in ? json_object_to_json_string_ext(
                                                             in, JSON_C_TO_STRING_PLAIN)
                                                       : "{}"));
        }
    }
    int has_calls = json_object_array_length(tcs) > 0;
    j->res.message = neutral(&text, tcs);
    buf_free(&text);
    j->res.finish = norm_finish(jx_str(body, "stop_reason"), has_calls);
    read_usage(&j->res.usage, jx_get(body, "usage"));
    return 0;
}

static an_block_t *block_at(an_job_t *a, int64_t idx)
{
    if (idx < 0 || idx > 1023)
        return NULL;
    if ((size_t)idx >= a->nblocks) {
        an_block_t *b = realloc(a->blocks, (size_t)(idx + 1) * sizeof *b);
        if (!b)
            return NULL;
        memset(b + a->nblocks, 0, ((size_t)idx + 1 - a->nblocks) * sizeof *b);
        a->blocks = b;
        a->nblocks = (size_t)idx + 1;
    }
    return &a->blocks[idx];
}

static int block_event(an_job_t *a, const char *type, json_object *ev)
{
    pjob_t *j = &a->base;
    an_block_t *b = block_at(a, jx_int(ev, "index", 0));
    if (!b)
        return pjob_fail(j, ERR_PROTO, "content block index out of range");
    int rc = 0;
    if (strcmp(type, "content_block_start") == 0) {
        json_object *cb = jx_get(ev, "content_block");
        const char *bt = jx_str(cb, "type"), *id = jx_str(cb, "id"), *name = jx_str(cb, "name");
        b->tool = bt && strcmp(bt, "tool_use") == 0;
        if (id)
            rc = buf_add(&b->id, id, strlen(id));
        if (!rc && name)
            rc = buf_add(&b->name, name, strlen(name));
        const char *t = jx_str(cb, "text");
        if (!rc && t && *t && !b->tool) {
            rc = buf_add(&b->data, t, strlen(t));
            pjob_text(j, t, strlen(t));
        }
    } else if (strcmp(type, "content_block_delta") == 0) {
        json_object *d = jx_get(ev, "delta");
        const char *t = jx_str(d, "text"), *pj = jx_str(d, "partial_json");
        if (t) {
            rc = buf_add(&b->data, t, strlen(t));
            pjob_text(j, t, strlen(t));
        } else if (pj) {
            rc = buf_add(&b->data, pj, strlen(pj));
        }
    }
    return rc;
}

static int an_event(pjob_t *j, const char *event, const char *data, size_t len)
{
    (void)len;
    an_job_t *a = (an_job_t *)j;
    json_object *ev = json_tokener_parse(data);
    if (!ev)
        return pjob_fail(j, ERR_PROTO, "malformed JSON in stream event %d: %.80s", j->events,
                         data);
    const char *type = jx_str(ev, "type");
    if (!type)
        type = event;
    int rc = 0;
    if (strcmp(type, "message_start") == 0) {
        read_usage(&a->usage, jx_get(jx_get(ev, "message"), "usage"));
    } else if (strncmp(type, "content_block_", 14) == 0) {
        rc = block_event(a, type, ev);
    } else if (strcmp(type, "message_delta") == 0) {
        const char *s = jx_str(jx_get(ev, "delta"), "stop_reason");
        if (s)
            snprintf(a->stop, sizeof a->stop, "%s", s);
        read_usage(&a->usage, jx_get(ev, "usage"));
    } else if (strcmp(type, "message_stop") == 0) {
        a->stopped = 1;
    } else if (strcmp(type, "error") == 0) {
        json_object *e = jx_get(ev, "error");
        rc = pjob_fail(j, ERR_PROTO, "error in stream: %s: %s",
                       jx_str(e, "type") ? jx_str(e, "type") : "error",
                       jx_str(e, "message") ? jx_str(e, "message") : "");
    }
    json_object_put(ev);
    return rc;
}

static int an_stream_end(pjob_t *j)
{
    an_job_t *a = (an_job_t *)j;
    if (!a->stopped)
        return pjob_fail(j, ERR_PROTO,
                         "stream cut short: %d events and no message_stop (truncated response)",
                         j->events);
    buf_t text = {0};
    json_object *tcs = json_object_new_array();
    for (size_t i = 0; i < a->nblocks; i++) {
        an_block_t *b = &a->blocks[i];
        if (b->tool)
            json_object_array_add(tcs, neutral_call(buf_str(&b->id), buf_str(&b->name),
                                                    buf_str(&b->data)));
        else if (b->data.len)
            buf_add(&text, b->data.s, b->data.len);
    }
    int has_calls = json_object_array_length(tcs) > 0;
    j->res.message = neutral(&text, tcs);
    buf_free(&text);
    j->res.finish = norm_finish(a->stop, has_calls);
    j->res.usage = a->usage;
    json_object *body = json_object_new_object();
    json_object_object_add(body, "message", json_object_get(j->res.message));
    json_object_object_add(body, "stop_reason", jx_new_str(a->stop));
    json_object_object_add(body, "streamed", json_object_new_boolean(1));
    j->res.response_body = body;
    return 0;
}

static const char *an_error_message(json_object *body)
{
    json_object *e = jx_get(body, "error");
    if (e && json_object_is_type(e, json_type_string))
        return json_object_get_string(e);
    const char *m = jx_str(e, "message");
    return m ? m : jx_str(body, "message");
}

static void an_free(pjob_t *j)
{
    an_job_t *a = (an_job_t *)j;
    for (size_t i = 0; i < a->nblocks; i++) {
        buf_free(&a->blocks[i].id);
        buf_free(&a->blocks[i].name);
        buf_free(&a->blocks[i].data);
    }
    free(a->blocks);
}

static const pjob_hooks_t an_hooks = {
    .on_event = an_event,
    .on_body = an_body,
    .on_stream_end = an_stream_end,
    .error_message = an_error_message,
    .free_job = an_free,
};

/* ANTHROPIC_BASE_URL is the host ("https://api.anthropic.com"); accept ".../v1" too. */
static char *messages_url(const char *base)
{
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    int has_v1 = n >= 3 && strncmp(base + n - 3, "/v1", 3) == 0;
    return pjob_url(base, has_v1 ? "/messages" : "/v1/messages");
}

static int an_start(const provider_env_t *env, const char *model, const model_req_t *req,
                    provider_done_fn done, void *ud, void **handle)
{
    an_job_t *a = calloc(1, sizeof *a);
    if (!a)
        return ERR_NOMEM;
    pjob_t *j = &a->base;
    int rc = pjob_init(j, &an_hooks, env, req, done, ud);
    if (rc) {
        pjob_free(j);
        return rc;
    }
    return pjob_send(j, env, messages_url(env->base_url), "anthropic-version: " ANTHROPIC_VERSION,
                     "x-api-key: ", build_body(model, req, j->stream), handle);
}

static void an_cancel(void *handle)
{
    pjob_cancel(handle);
}

const provider_ops_t provider_anthropic = {
    .name = "anthropic",
    .start = an_start,
    .cancel = an_cancel,
};
