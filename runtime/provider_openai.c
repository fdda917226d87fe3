/*
 * provider_openai: OpenAI-compatible chat completions (POST {base}/chat/completions). The
 * same wire format serves OpenAI, Ollama, llama.cpp server, vLLM and OpenRouter, so nothing
 * here is specific to one vendor beyond what they all accept.
 *
 * Streaming: the reply arrives as SSE "data:" chunks of deltas; text is passed on as it
 * comes, tool calls are reassembled by index (id and name in the first fragment, arguments
 * split across many), usage arrives in the last chunk (stream_options.include_usage), and
 * "data: [DONE]" ends it. A stream without [DONE] was cut short: ERR_PROTO.
 */
#include "jx.h"
#include "err.h"
#include "schema/schema.h"
#include "provider_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct oa_call {
    buf_t id, name, args;
} oa_call_t;

typedef struct oa_job {
    pjob_t base;            /* first: the pjob hooks cast back */
    buf_t text;
    oa_call_t *calls;
    size_t ncalls;
    char finish[32];
    int done_seen;
    json_object *usage;
} oa_job_t;

/* The request body is written as text with a string builder, byte for byte what json-c
 * printed for the json-c tree it used to be built as (JSON_C_TO_STRING_PLAIN: '/' is
 * escaped): no tree of the wire format, no printbuf, one buffer handed to the transfer. */
#define OA_FLAGS JSON_C_TO_STRING_PLAIN

/* A member's key: keys here are literals of letters and '_', which JSON writes as they
 * are, so the quoted key (and its comma) is copied in one go. */
#define PUT_KEY(b, key, first)                                                                     \
    buf_add_fast((b), &",\"" key "\":"[(first) ? 1 : 0], sizeof(key) + ((first) ? 2 : 3))

/* A string value; NULL is written as "" (what jx_new_str made of it). */
static void put_str(buf_t *b, const char *v)
{
    v = v ? v : "";
    jx_put_str(b, v, strlen(v), OA_FLAGS);
}

#define PUT_STR_MEMBER(b, key, v, first)                                                           \
    do {                                                                                           \
        PUT_KEY(b, key, first);                                                                    \
        put_str((b), (v));                                                                         \
    } while (0)

/* v inside a JSON string, as the wire carries content and arguments: a string as it is,
 * any other value as its JSON text. */
static void put_as_string(buf_t *b, json_object *v)
{
    if (json_object_is_type(v, json_type_string)) {
        jx_put(b, v, OA_FLAGS);
        return;
    }
    buf_t t;
    buf_init(&t, 0);
    jx_put(&t, v, JSON_C_TO_STRING_PLAIN);
    if (t.failed)
        buf_fail(b, t.failed);
    else
        jx_put_str(b, buf_str(&t), t.len, OA_FLAGS);
    buf_free(&t);
}

static void put_calls(buf_t *b, json_object *tcs)
{
    buf_add_fast(b, "[", 1);
    for (size_t i = 0; i < json_object_array_length(tcs); i++) {
        static const char *const keys[] = {"id", "name", "arguments", NULL};
        json_object *f[3];
        jx_members(json_object_array_get_idx(tcs, i), keys, f);
        if (i)
            buf_add_fast(b, ",", 1);
        buf_add_fast(b, "{", 1);
        PUT_STR_MEMBER(b, "id", jx_as_str(f[0]), 1);
        PUT_STR_MEMBER(b, "type", "function", 0);
        PUT_KEY(b, "function", 0);
        buf_add_fast(b, "{", 1);
        PUT_STR_MEMBER(b, "name", jx_as_str(f[1]), 1);
        json_object *a = f[2];
        PUT_KEY(b, "arguments", 0);
        if (a)
            put_as_string(b, a);
        else
            jx_put_str(b, "{}", 2, OA_FLAGS);
        buf_add_fast(b, "}}", 2);
    }
    buf_add_fast(b, "]", 1);
}

static void put_messages(buf_t *b, json_object *msgs)
{
    buf_add_fast(b, "[", 1);
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        static const char *const keys[] = {"role", "content", "tool_calls", "tool_call_id", NULL};
        json_object *f[4];
        jx_members(json_object_array_get_idx(msgs, i), keys, f);
        json_object *content = f[1], *tcs = f[2];
        const char *role = jx_as_str(f[0]);
        role = role ? role : "user";
        if (i)
            buf_add_fast(b, ",", 1);
        buf_add_fast(b, "{", 1);
        PUT_STR_MEMBER(b, "role", role, 1);
        PUT_KEY(b, "content", 0);
        if (strcmp(role, "assistant") == 0 && tcs && json_object_array_length(tcs)) {
            if (content)
                put_as_string(b, content);
            else
                buf_add_fast(b, "null", 4);
            PUT_KEY(b, "tool_calls", 0);
            put_calls(b, tcs);
        } else if (content) {
            put_as_string(b, content);
        } else {
            buf_add_fast(b, "\"\"", 2);
        }
        if (strcmp(role, "tool") == 0)
            PUT_STR_MEMBER(b, "tool_call_id", jx_as_str(f[3]), 0);
        buf_add_fast(b, "}", 1);
    }
    buf_add_fast(b, "]", 1);
}

static void print_tools(buf_t *b, json_object *tools)
{
    buf_add_fast(b, "[", 1);
    for (size_t i = 0; i < json_object_array_length(tools); i++) {
        static const char *const keys[] = {"name", "description", "parameters", NULL};
        json_object *f[3];
        jx_members(json_object_array_get_idx(tools, i), keys, f);
        json_object *params = f[2];
        if (i)
            buf_add_fast(b, ",", 1);
        buf_add_fast(b, "{", 1);
        PUT_STR_MEMBER(b, "type", "function", 1);
        PUT_KEY(b, "function", 0);
        buf_add_fast(b, "{", 1);
        PUT_STR_MEMBER(b, "name", jx_as_str(f[0]), 1);
        PUT_STR_MEMBER(b, "description", jx_as_str(f[1]), 0);
        PUT_KEY(b, "parameters", 0);
        if (params)
            jx_put(b, params, OA_FLAGS);
        else
            buf_adds(b, "{\"type\":\"object\"}");
        buf_add_fast(b, "}}", 2);
    }
    buf_add_fast(b, "]", 1);
}

/* The tools' wire text, kept on the tools array as its json-c userdata (freed with the
 * array): the machine hands the same array, built once per agent, to every request, and
 * printing it again cost ~10 % of building a request. model_req_t.tools is not changed
 * once a model call has it (model.h); as a guard the text is printed again when the array
 * no longer holds the same elements. Nothing else in agentd sets userdata on an array. */
typedef struct oa_tools_text {
    const void *tag; /* &oa_tools_tag: this module's */
    size_t n, len;
    json_object **elems; /* the n elements printed (compared by address) */
    char *text;
} oa_tools_text_t;

static const char oa_tools_tag = 0;

static void tools_text_free(json_object *o, void *ud)
{
    (void)o;
    oa_tools_text_t *t = ud;
    if (t) {
        free(t->elems);
        free(t->text);
        free(t);
    }
}

static int tools_text_fits(const oa_tools_text_t *t, json_object *tools, size_t n)
{
    if (!t || t->tag != &oa_tools_tag || t->n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (t->elems[i] != json_object_array_get_idx(tools, i))
            return 0;
    return 1;
}

static void put_tools(buf_t *b, json_object *tools)
{
    size_t n = json_object_array_length(tools);
    oa_tools_text_t *t = json_object_get_userdata(tools);
    if (tools_text_fits(t, tools, n)) {
        buf_add(b, t->text, t->len);
        return;
    }
    buf_t w;
    buf_init(&w, 0);
    print_tools(&w, tools);
    if (w.failed) {
        buf_fail(b, w.failed);
        buf_free(&w);
        return;
    }
    buf_add(b, w.s, w.len);
    /* Kept when memory allows; without it the next request prints the text again. */
    oa_tools_text_t *nt = calloc(1, sizeof *nt);
    json_object **elems = nt ? malloc((n ? n : 1) * sizeof *elems) : NULL;
    size_t len = w.len;
    char *text = elems ? buf_take(&w) : NULL;
    buf_free(&w);
    if (!text) {
        free(elems);
        free(nt);
        return;
    }
    for (size_t i = 0; i < n; i++)
        elems[i] = json_object_array_get_idx(tools, i);
    *nt = (oa_tools_text_t){.tag = &oa_tools_tag, .n = n, .len = len, .elems = elems, .text = text};
    json_object_set_userdata(tools, nt, tools_text_free);
}

/* Reasoning models reject max_tokens and want max_completion_tokens. */
static int reasoning_model(const char *model)
{
    return (model[0] == 'o' && model[1] >= '1' && model[1] <= '9') ||
           strncmp(model, "gpt-5", 5) == 0;
}

/* The request body as text into b (checked once by the caller: buf failures are sticky). */
static void build_body(buf_t *b, const char *model, const model_req_t *req, int stream)
{
    buf_add_fast(b, "{", 1);
    PUT_STR_MEMBER(b, "model", model, 1);
    PUT_KEY(b, "messages", 0);
    put_messages(b, req->messages);
    if (req->tools && json_object_array_length(req->tools)) {
        PUT_KEY(b, "tools", 0);
        put_tools(b, req->tools);
        PUT_STR_MEMBER(b, "tool_choice", "auto", 0);
        buf_adds(b, ",\"parallel_tool_calls\":true");
    }
    if (req->output_schema) {
        /* strict mode rejects many ordinary schemas; agentd validates the reply itself. */
        buf_adds(b, ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
                    "{\"name\":\"final_answer\",\"schema\":");
        jx_put(b, req->output_schema, OA_FLAGS);
        buf_adds(b, ",\"strict\":false}}");
    }
    if (req->temperature >= 0) {
        json_object *t = jx_new_num(req->temperature);
        PUT_KEY(b, "temperature", 0);
        if (t)
            jx_put(b, t, OA_FLAGS);
        else
            buf_fail(b, ERR_NOMEM);
        json_object_put(t);
    }
    if (req->max_tokens > 0)
        buf_addf(b, ",\"%s\":%d",
                 reasoning_model(model) ? "max_completion_tokens" : "max_tokens", req->max_tokens);
    if (stream)
        buf_adds(b, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    buf_add_fast(b, "}", 1);
}

static void read_usage(pjob_t *j, json_object *u)
{
    if (!u)
        return;
    j->res.usage.input_tokens = jx_int(u, "prompt_tokens", 0);
    j->res.usage.output_tokens = jx_int(u, "completion_tokens", 0);
    j->res.usage.cached_tokens = jx_int(jx_get(u, "prompt_tokens_details"), "cached_tokens", 0);
}

static const char *norm_finish(const char *f, int has_calls)
{
    if (has_calls)
        return "tool_calls";
    if (f && strcmp(f, "length") == 0)
        return "length";
    return "stop";
}

/* Neutral assistant message from text and wire-format tool calls. */
static json_object *neutral(json_object *content, json_object *wire_tcs)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", jx_new_str("assistant"));
    json_object_object_add(m, "content", content);
    size_t n = wire_tcs ? json_object_array_length(wire_tcs) : 0;
    if (n) {
        json_object *tcs = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
            json_object *w = json_object_array_get_idx(wire_tcs, i), *fn = jx_get(w, "function");
            json_object *tc = json_object_new_object();
            /* The reply's string values are shared (a reference each), not copied: nothing
             * changes a message's string values in place (ctx.c's json_object_set_string
             * touches tool results and kv values only). */
            json_object *id = jx_get(w, "id"), *name = jx_get(fn, "name"),
                        *args = jx_get(fn, "arguments");
            json_object_object_add(tc, "id", jx_str_ref(id, ""));
            json_object_object_add(tc, "name", jx_str_ref(name, ""));
            const char *a = jx_as_str(args);
            json_object_object_add(tc, "arguments", jx_str_ref(a && *a ? args : NULL, "{}"));
            json_object_array_add(tcs, tc);
        }
        json_object_object_add(m, "tool_calls", tcs);
    }
    return m;
}

static int oa_body(pjob_t *j, json_object *body)
{
    json_object *choices = jx_get(body, "choices");
    json_object *c0 = choices && json_object_is_type(choices, json_type_array)
                          ? json_object_array_get_idx(choices, 0)
                          : NULL;
    json_object *msg = jx_get(c0, "message");
    if (!msg)
        return pjob_fail(j, ERR_PROTO, "response has no choices[0].message");
    json_object *content = jx_get(msg, "content"), *tcs = jx_get(msg, "tool_calls");
    if (tcs && !json_object_is_type(tcs, json_type_array))
        tcs = NULL;
    json_object *text = content && json_object_is_type(content, json_type_string)
                            ? json_object_get(content)
                            : NULL;
    j->res.message = neutral(text, tcs);
    j->res.finish = norm_finish(jx_str(c0, "finish_reason"), tcs && json_object_array_length(tcs));
    read_usage(j, jx_get(body, "usage"));
    return 0;
}

static int delta_calls(oa_job_t *o, json_object *tcs)
{
    for (size_t i = 0; i < json_object_array_length(tcs); i++) {
        json_object *tc = json_object_array_get_idx(tcs, i), *fn = jx_get(tc, "function");
        json_object *idxv = jx_get(tc, "index");
        int64_t idx = idxv ? json_object_get_int64(idxv) : (int64_t)i;
        if (idx < 0 || idx > 255)
            return pjob_fail(&o->base, ERR_PROTO, "tool call index %lld out of range",
                             (long long)idx);
        if ((size_t)idx >= o->ncalls) {
            oa_call_t *c = realloc(o->calls, (size_t)(idx + 1) * sizeof *c);
            if (!c)
                return ERR_NOMEM;
            memset(c + o->ncalls, 0, (size_t)(idx + 1 - (int64_t)o->ncalls) * sizeof *c);
            o->calls = c;
            o->ncalls = (size_t)idx + 1;
        }
        oa_call_t *c = &o->calls[idx];
        const char *id = jx_str(tc, "id"), *name = jx_str(fn, "name"),
                   *args = jx_str(fn, "arguments");
        if ((id && !c->id.len && buf_add(&c->id, id, strlen(id))) ||
            (name && !c->name.len && buf_add(&c->name, name, strlen(name))) ||
            (args && buf_add(&c->args, args, strlen(args))))
            return ERR_NOMEM;
    }
    return 0;
}

static int oa_event(pjob_t *j, const char *event, const char *data, size_t len)
{
    (void)event;
    oa_job_t *o = (oa_job_t *)j;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        o->done_seen = 1;
        return 0;
    }
    /* The one strict parse, as for whole bodies: a delta that is not UTF-8 or holds \u0000
     * would be kept, traced and answered raw (or cut short). */
    json_object *ev = NULL;
    char why[160] = "not an object";
    if (schema_parse_json(data, len, &ev, why, sizeof why) || !ev)
        return pjob_fail(j, ERR_PROTO, "malformed JSON in stream event %d: %s: %.80s", j->events,
                         why, data);
    int rc = 0;
    json_object *err = jx_get(ev, "error");
    if (err) {
        const char *m = jx_str(err, "message");
        rc = pjob_fail(j, ERR_PROTO, "error in stream: %s", m ? m : json_object_get_string(err));
        goto out;
    }
    json_object *choices = jx_get(ev, "choices");
    json_object *c0 = choices && json_object_is_type(choices, json_type_array)
                          ? json_object_array_get_idx(choices, 0)
                          : NULL;
    json_object *delta = jx_get(c0, "delta"), *tcs = jx_get(delta, "tool_calls");
    const char *text = jx_str(delta, "content"), *fin = jx_str(c0, "finish_reason");
    if (text && *text) {
        if ((rc = buf_add(&o->text, text, strlen(text))))
            goto out;
        pjob_text(j, text, strlen(text));
    }
    if (tcs && json_object_is_type(tcs, json_type_array) && (rc = delta_calls(o, tcs)))
        goto out;
    if (fin)
        snprintf(o->finish, sizeof o->finish, "%s", fin);
    json_object *u = jx_get(ev, "usage");
    if (u && json_object_is_type(u, json_type_object)) {
        json_object_put(o->usage);
        o->usage = json_object_get(u);
    }
out:
    json_object_put(ev);
    return rc;
}

static int oa_stream_end(pjob_t *j)
{
    oa_job_t *o = (oa_job_t *)j;
    if (!o->done_seen)
        return pjob_fail(j, ERR_PROTO,
                         "stream cut short: %d events and no [DONE] (truncated response)",
                         j->events);
    json_object *wire = json_object_new_array();
    for (size_t i = 0; i < o->ncalls; i++) {
        json_object *w = json_object_new_object(), *fn = json_object_new_object();
        json_object_object_add(w, "id", jx_new_str(buf_str(&o->calls[i].id)));
        json_object_object_add(fn, "name", jx_new_str(buf_str(&o->calls[i].name)));
        json_object_object_add(fn, "arguments", jx_new_str(buf_str(&o->calls[i].args)));
        json_object_object_add(w, "function", fn);
        json_object_array_add(wire, w);
    }
    json_object *text = o->text.len ? jx_new_str(buf_str(&o->text)) : NULL;
    j->res.message = neutral(text, wire);
    json_object_put(wire);
    j->res.finish = norm_finish(o->finish, o->ncalls > 0);
    read_usage(j, o->usage);
    /* What a non-streamed reply would have looked like, for the captured content. */
    json_object *body = json_object_new_object(), *choices = json_object_new_array(),
                *c0 = json_object_new_object();
    json_object_object_add(c0, "message", json_object_get(j->res.message));
    json_object_object_add(c0, "finish_reason", jx_new_str(o->finish));
    json_object_array_add(choices, c0);
    json_object_object_add(body, "choices", choices);
    if (o->usage)
        json_object_object_add(body, "usage", json_object_get(o->usage));
    json_object_object_add(body, "streamed", json_object_new_boolean(1));
    j->res.response_body = body;
    return 0;
}

static const char *oa_error_message(json_object *body)
{
    json_object *e = jx_get(body, "error");
    if (e && json_object_is_type(e, json_type_string))
        return json_object_get_string(e);
    const char *m = jx_str(e, "message");
    return m ? m : jx_str(body, "message");
}

static void oa_free(pjob_t *j)
{
    oa_job_t *o = (oa_job_t *)j;
    buf_free(&o->text);
    for (size_t i = 0; i < o->ncalls; i++) {
        buf_free(&o->calls[i].id);
        buf_free(&o->calls[i].name);
        buf_free(&o->calls[i].args);
    }
    free(o->calls);
    json_object_put(o->usage);
}

static const pjob_hooks_t oa_hooks = {
    .on_event = oa_event,
    .on_body = oa_body,
    .on_stream_end = oa_stream_end,
    .error_message = oa_error_message,
    .free_job = oa_free,
};

static int oa_start(const provider_env_t *env, const char *model, const model_req_t *req,
                    provider_done_fn done, void *ud, void **handle)
{
    oa_job_t *o = calloc(1, sizeof *o);
    if (!o)
        return ERR_NOMEM;
    pjob_t *j = &o->base;
    int rc = pjob_init(j, &oa_hooks, env, req, done, ud);
    if (rc) {
        pjob_free(j);
        return rc;
    }
    buf_t body;
    buf_init(&body, 0);
    build_body(&body, model, req, j->stream);
    return pjob_send_text(j, env, pjob_url(env->base_url, "/chat/completions"), NULL,
                          "Authorization: Bearer ", &body, handle);
}

static void oa_cancel(void *handle)
{
    pjob_cancel(handle);
}

const provider_ops_t provider_openai = {
    .name = "openai",
    .start = oa_start,
    .cancel = oa_cancel,
};
