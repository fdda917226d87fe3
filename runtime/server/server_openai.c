/*
 * server_openai: POST /v1/chat/completions with model "agent:NAME" runs that agent on the
 * last user message, with the request's earlier messages (system, developer, user and
 * assistant text; not tool traffic) as the conversation before it, and answers in the Chat
 * Completions format (streamed as chat.completion.chunk events with stream: true), so
 * OpenAI client libraries and chat UIs, which send the whole conversation every time, can
 * talk to an agent. With "session" the stored session is the conversation instead, and only
 * the last user message is taken. The run is an ordinary durable run: GET /v1/runs/{id} and
 * its events work on it (its id is the completion id without "chatcmpl-").
 */
#include "server_int.h"

#include "jx.h"
#include "loop.h"
#include "text.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The text of a message's content: a string, or the text parts of an array. */
static int content_text(json_object *content, buf_t *out)
{
    if (json_object_is_type(content, json_type_string))
        return buf_adds(out, json_object_get_string(content));
    if (!json_object_is_type(content, json_type_array))
        return ERR_INVAL;
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        json_object *part = json_object_array_get_idx(content, i);
        const char *t = jx_str(part, "text");
        if (t && !strcmp(jx_str_or(part, "type", "text"), "text")) {
            if (out->len)
                buf_adds(out, "\n");
            buf_adds(out, t);
        }
    }
    return out->failed;
}

/* The conversation before messages[last] as {role, content} text messages (machine.h's
 * history): system and developer messages are the caller's instructions (role system, after
 * the agent's own prompt); user and assistant messages with text are the turns; assistant
 * tool calls and tool results are skipped (they name tools of the caller, not the agent's).
 * NULL after replying 400 (or 503). */
static json_object *history_of(sctx_t *c, json_object *msgs, size_t last)
{
    json_object *h = json_object_new_array();
    char err[300];
    for (size_t i = 0; h && i < last; i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *content = jx_get(m, "content");
        const char *role = json_object_is_type(m, json_type_object) ? jx_str(m, "role") : NULL;
        if (!role || (strcmp(role, "system") && strcmp(role, "developer") &&
                      strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "tool"))) {
            srv_reply_error(c, 400, "invalid_request_error",
                            "messages[%zu].role: expected system, developer, user, assistant "
                            "or tool",
                            i);
            goto fail;
        }
        if (!strcmp(role, "tool") || !content || json_object_is_type(content, json_type_null))
            continue;
        buf_t t;
        buf_init(&t, 0);
        if (content_text(content, &t)) {
            buf_free(&t);
            srv_reply_error(c, 400, "invalid_request_error",
                            "messages[%zu].content: expected a string or an array of parts", i);
            goto fail;
        }
        char src[48];
        snprintf(src, sizeof src, "messages[%zu].content", i);
        if (t.len && text_check(buf_str(&t), t.len, src, err, sizeof err)) {
            buf_free(&t);
            srv_reply_error(c, 400, "invalid_request_error", "%s", err);
            goto fail;
        }
        if (t.len) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "role", jx_new_str(strcmp(role, "developer") ? role
                                                                                 : "system"));
            json_object_object_add(o, "content", jx_new_str(buf_str(&t)));
            json_object_array_add(h, o);
        }
        buf_free(&t);
    }
    if (!h)
        srv_reply_error(c, 503, "unavailable", "out of memory");
    return h;
fail:
    json_object_put(h);
    return NULL;
}

static json_object *chunk(swatch_t *w, const char *content, const char *finish, int role)
{
    json_object *o = json_object_new_object(), *ch = json_object_new_object();
    json_object *delta = json_object_new_object(), *arr = json_object_new_array();
    char id[40];
    snprintf(id, sizeof id, "chatcmpl-%s", w->run_id);
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "object", json_object_new_string("chat.completion.chunk"));
    json_object_object_add(o, "created", json_object_new_int64(w->created));
    json_object_object_add(o, "model", json_object_new_string(w->model));
    if (role)
        json_object_object_add(delta, "role", json_object_new_string("assistant"));
    if (content)
        json_object_object_add(delta, "content", json_object_new_string(content));
    json_object_object_add(ch, "index", json_object_new_int(0));
    json_object_object_add(ch, "delta", delta);
    json_object_object_add(ch, "finish_reason", finish ? json_object_new_string(finish) : NULL);
    json_object_array_add(arr, ch);
    json_object_object_add(o, "choices", arr);
    return o;
}

static void send_data(swatch_t *w, json_object *o)
{
    swatch_sse_send(
        w, NULL, 0,
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

void srv_chat_text(swatch_t *w, const char *text, size_t len)
{
    char *t = strndup(text, len);
    if (!t)
        return;
    buf_add(&w->text, text, len);
    send_data(w, chunk(w, t, NULL, 0));
    free(t);
}

static json_object *usage_of(const store_run_t *rec)
{
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int64(rec->input_tokens));
    json_object_object_add(u, "completion_tokens", json_object_new_int64(rec->output_tokens));
    json_object_object_add(u, "total_tokens",
                           json_object_new_int64(rec->input_tokens + rec->output_tokens));
    return u;
}

/* Why a run that did not end done has no answer to give. */
static void run_error(const store_run_t *rec, char *type, size_t tlen, char *msg, size_t mlen,
                      int *status)
{
    if (!rec) {
        snprintf(type, tlen, "shutting_down");
        snprintf(msg, mlen, "the server is shutting down; retry shortly");
        *status = 503;
    } else if (!strcmp(rec->state, "waiting")) {
        snprintf(type, tlen, "approval_required");
        snprintf(msg, mlen,
                 "run %s waits for a human approval: see GET /v1/runs/%s and POST "
                 "/v1/runs/%s/approve",
                 rec->id, rec->id, rec->id);
        *status = 409;
    } else {
        snprintf(type, tlen, "run_%s", rec->state);
        snprintf(msg, mlen, "run %s %s: %s", rec->id, rec->state,
                 rec->error ? rec->error : "no answer");
        *status = 502;
    }
}

void srv_chat_end(swatch_t *w, const store_run_t *rec)
{
    char type[40], msg[1200];
    int status = 200;
    int done = rec && !strcmp(rec->state, "done");
    if (!done)
        run_error(rec, type, sizeof type, msg, sizeof msg, &status);
    sctx_t c = w->c;
    if (w->kind == SW_CHAT_STREAM) {
        if (done) {
            const char *ans = rec->answer ? rec->answer : "";
            const char *sent = buf_str(&w->text);
            size_t n = w->text.len;
            if (!n)
                send_data(w, chunk(w, ans, NULL, 0));
            else if (!strncmp(ans, sent, n) && ans[n])
                send_data(w, chunk(w, ans + n, NULL, 0));
            else if (strncmp(ans, sent, n)) {
                /* what streamed was an earlier turn's text: the answer follows it */
                char *t = NULL;
                if (asprintf(&t, "\n\n%s", ans) >= 0) {
                    send_data(w, chunk(w, t, NULL, 0));
                    free(t);
                }
            }
            json_object *last = chunk(w, NULL, "stop", 0);
            json_object_object_add(last, "usage", usage_of(rec));
            send_data(w, last);
            swatch_sse_send(w, NULL, 0, "[DONE]");
        } else {
            json_object *e = json_object_new_object(), *o = json_object_new_object();
            json_object_object_add(e, "type", json_object_new_string(type));
            json_object_object_add(e, "message", json_object_new_string(msg));
            json_object_object_add(o, "error", e);
            send_data(w, o);
        }
        evhttp_send_reply_end(c.req);
        smetrics_http(w->s->mx, c.route, 200, (double)(loop_mono_ns() - c.t0) / 1e9);
        swatch_free(w);
        return;
    }
    if (!done) {
        swatch_free(w);
        srv_reply_error(&c, status, type, "%s", msg);
        return;
    }
    json_object *o = json_object_new_object(), *arr = json_object_new_array();
    json_object *ch = json_object_new_object(), *m = json_object_new_object();
    char id[40];
    snprintf(id, sizeof id, "chatcmpl-%s", w->run_id);
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "object", json_object_new_string("chat.completion"));
    json_object_object_add(o, "created", json_object_new_int64(w->created));
    json_object_object_add(o, "model", json_object_new_string(w->model));
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    json_object_object_add(m, "content", jx_new_str(rec->answer));
    json_object_object_add(ch, "index", json_object_new_int(0));
    json_object_object_add(ch, "message", m);
    json_object_object_add(ch, "finish_reason", json_object_new_string("stop"));
    json_object_array_add(arr, ch);
    json_object_object_add(o, "choices", arr);
    json_object_object_add(o, "usage", usage_of(rec));
    swatch_free(w);
    srv_reply_json(&c, 200, o);
}

void srv_chat(sctx_t *c)
{
    srv_t *s = c->s;
    json_object *body = srv_body_object(c);
    if (!body)
        return;
    buf_t input;
    buf_init(&input, 0);
    json_object *history = NULL;
    json_object *msgs = jx_get(body, "messages"), *stream = jx_get(body, "stream");
    const char *model = jx_str(body, "model");
    if (!model) {
        srv_reply_error(c, 400, "invalid_request_error", "model: required, \"agent:NAME\"");
        goto out;
    }
    if (strncmp(model, "agent:", 6) != 0) {
        srv_reply_error(c, 404, "model_not_found",
                        "model %.100s: this endpoint serves agents: "
                        "use \"agent:NAME\" (GET /v1/agents lists them)",
                        model);
        goto out;
    }
    const sagent_t *ag = srv_agent_find(s, model + 6);
    if (!ag) {
        srv_reply_error(c, 404, "model_not_found",
                        "model %.100s: no such agent in %s (GET "
                        "/v1/agents lists them)",
                        model, s->o.agents_dir);
        goto out;
    }
    if (!json_object_is_type(msgs, json_type_array) || !json_object_array_length(msgs)) {
        srv_reply_error(c, 400, "invalid_request_error", "messages: required, a non-empty array");
        goto out;
    }
    if (stream && !json_object_is_type(stream, json_type_boolean)) {
        srv_reply_error(c, 400, "invalid_request_error", "stream: expected true or false");
        goto out;
    }
    json_object *session = jx_get(body, "session");
    if (session && !json_object_is_type(session, json_type_string)) {
        srv_reply_error(c, 400, "invalid_request_error", "session: expected a string");
        goto out;
    }
    size_t n = json_object_array_length(msgs), last = n;
    for (size_t i = n; i-- > 0 && last == n;) {
        json_object *m = json_object_array_get_idx(msgs, i);
        if (!json_object_is_type(m, json_type_object)) {
            srv_reply_error(c, 400, "invalid_request_error",
                            "messages[%zu]: expected an object {role, content}", i);
            goto out;
        }
        const char *role = jx_str(m, "role");
        if (role && !strcmp(role, "user"))
            last = i;
    }
    if (last == n || content_text(jx_get(json_object_array_get_idx(msgs, last), "content"),
                                  &input) ||
        !input.len) {
        srv_reply_error(c, 400, "invalid_request_error",
                        "messages: no user message with text content");
        goto out;
    }
    if (!session && !(history = history_of(c, msgs, last)))
        goto out;
    char id[17];
    if (srv_start_run(c, ag, buf_str(&input), NULL, NULL, NULL,
                      session ? json_object_get_string(session) : NULL, history, NULL, NULL,
                      id))
        goto out;
    int streaming = stream && json_object_get_boolean(stream);
    swatch_t *w = swatch_new(c, streaming ? SW_CHAT_STREAM : SW_CHAT, id);
    if (!w) {
        srv_reply_error(c, 503, "unavailable", "out of memory (run %s goes on)", id);
        goto out;
    }
    snprintf(w->model, sizeof w->model, "%s", model);
    w->created = (int64_t)(loop_wall_ns() / 1000000000u);
    if (streaming) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
        evhttp_add_header(h, "Content-Type", "text/event-stream");
        evhttp_add_header(h, "Cache-Control", "no-cache");
        evhttp_send_reply_start(c->req, 200, "OK");
        send_data(w, chunk(w, NULL, NULL, 1));
    }
out:
    buf_free(&input);
    json_object_put(history);
    json_object_put(body);
}
