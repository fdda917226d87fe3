/*
 * fakellm: a fake model provider for tests, demos and benchmarks, on libevent's evhttp,
 * bound to 127.0.0.1 only. OpenAI-compatible POST /v1/chat/completions and Anthropic
 *  POST /v1/messages (both with SSE streaming), POST /v1/embeddings (hashed bag-of-words
 * vectors, --embed-dim N, default 64), GET /stats, POST /reset.
 *
 * Deterministic: with --script FILE (a JSON array of turns: {"tool_calls":[{"name",
 * "arguments"}]}, {"text": "..."}, or {"json": {...}}) the turn is chosen by the number of
 * assistant messages already in the request, so every conversation walks the script on its
 * own and concurrent runs do not interfere. Without a script it echoes the last user
 * message. Faults (429 with Retry-After, 500, 503, stall, reset, malformed, truncated,
 * drip) are injected by rate (--fault-rate R --faults LIST --seed N), by schedule
 * (--fail-first N), or per request with the header X-Fake-Fault: KIND. Docs:
 * docs/fakellm.md.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>

enum { F_NONE, F_429, F_500, F_503, F_STALL, F_RESET, F_MALFORMED, F_TRUNCATED, F_DRIP, F__N };
static const char *const fault_names[F__N] = {"none",  "429",       "500",       "503", "stall",
                                              "reset", "malformed", "truncated", "drip"};

typedef struct server {
    struct event_base *base;
    struct evhttp *http;
    json_object *script;
    int latency_ms;
    int drip_ms; /* pause between 16-byte pieces of a drip */
    double fault_rate;
    int faults[F__N * 4];
    int nfaults;
    int fail_first, fail_next;
    int retry_after;
    const char *require_key;
    const char *record; /* append every model request body to this file, one per line */
    uint64_t rng;
    uint64_t sample_rng; /* "texts" turns: its own stream, so faults stay as seeded */
    long requests, by_fault[F__N], openai, anthropic, errors_401, streamed, connections;
    long embeddings, embed_inputs; /* /v1/embeddings requests and the texts they carried */
    int embed_dim;
    struct pending *pending; /* every request not yet answered (freed at shutdown) */
    long in_flight;
} server_t;

typedef struct pending {
    server_t *s;
    struct evhttp_request *req;
    int anthropic;
    int embed; /* POST /v1/embeddings */
    int stream;
    int fault;
    json_object *body;
    struct event *timer;
    char *out; /* for drip */
    size_t out_len, out_off;
    struct evhttp_connection *conn; /* reset/truncated/stall: the client's connection */
    struct pending *next, **pprev;
} pending_t;

static uint64_t rnd(server_t *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

static int fault_parse(const char *name)
{
    for (int i = 1; i < F__N; i++)
        if (!strcmp(name, fault_names[i]))
            return i;
    return -1;
}

static void reply_json(struct evhttp_request *req, int code, json_object *o)
{
    struct evbuffer *b = evbuffer_new();
    const char *txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    evbuffer_add(b, txt, strlen(txt));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
    evbuffer_free(b);
}

static void reply_error(pending_t *p, int code, const char *type, const char *msg)
{
    json_object *o = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "message", json_object_new_string(msg));
    if (p->anthropic)
        json_object_object_add(o, "type", json_object_new_string("error"));
    json_object_object_add(o, "error", e);
    reply_json(p->req, code, o);
    json_object_put(o);
}

/* ---- building the answer ------------------------------------------------------------ */

static int count_assistant(json_object *msgs)
{
    int n = 0;
    for (size_t i = 0; msgs && i < json_object_array_length(msgs); i++) {
        json_object *role;
        if (json_object_object_get_ex(json_object_array_get_idx(msgs, i), "role", &role) &&
            !strcmp(json_object_get_string(role), "assistant"))
            n++;
    }
    return n;
}

static const char *last_user_text(json_object *msgs)
{
    for (size_t i = msgs ? json_object_array_length(msgs) : 0; i-- > 0;) {
        json_object *m = json_object_array_get_idx(msgs, i), *role, *c;
        if (!json_object_object_get_ex(m, "role", &role) ||
            strcmp(json_object_get_string(role), "user"))
            continue;
        if (!json_object_object_get_ex(m, "content", &c))
            return "";
        if (json_object_is_type(c, json_type_string))
            return json_object_get_string(c);
        for (size_t k = 0;
             json_object_is_type(c, json_type_array) && k < json_object_array_length(c); k++) {
            json_object *blk = json_object_array_get_idx(c, k), *t;
            if (json_object_object_get_ex(blk, "text", &t))
                return json_object_get_string(t);
        }
        return "";
    }
    return "";
}

/* The system prompt of a request: OpenAI's system message, Anthropic's "system" field
 * (a string or text blocks); "" when there is none. */
static const char *system_text(json_object *body)
{
    json_object *sys, *msgs;
    if (json_object_object_get_ex(body, "system", &sys)) {
        if (json_object_is_type(sys, json_type_string))
            return json_object_get_string(sys);
        json_object *blk = json_object_is_type(sys, json_type_array)
                               ? json_object_array_get_idx(sys, 0)
                               : NULL, *t;
        return blk && json_object_object_get_ex(blk, "text", &t) ? json_object_get_string(t) : "";
    }
    if (!json_object_object_get_ex(body, "messages", &msgs))
        return "";
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *role, *c;
        if (json_object_object_get_ex(m, "role", &role) &&
            !strcmp(json_object_get_string(role), "system") &&
            json_object_object_get_ex(m, "content", &c) && json_object_is_type(c, json_type_string))
            return json_object_get_string(c);
    }
    return "";
}

/* A conditional turn {"when": {"system": S, "input": S}, ..., "else": TURN}: the turn when
 * the system prompt and the last user message contain those strings (ignoring case), else
 * its "else" (resolved the same way); NULL when nothing applies. A turn may also be a list
 * of such turns: the first that applies. Lets one script follow the prompt the way a model
 * would, answer each case of an eval, and answer a judge and an agent differently. */
static json_object *resolve_when(json_object *turn, json_object *body, json_object *msgs)
{
    json_object *w;
    if (turn && json_object_is_type(turn, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(turn); i++) {
            json_object *t = resolve_when(json_object_array_get_idx(turn, i), body, msgs);
            if (t)
                return t;
        }
        return NULL;
    }
    while (turn && json_object_object_get_ex(turn, "when", &w)) {
        json_object *sys = NULL, *in = NULL;
        json_object_object_get_ex(w, "system", &sys);
        json_object_object_get_ex(w, "input", &in);
        if ((!sys || strcasestr(system_text(body), json_object_get_string(sys))) &&
            (!in || strcasestr(last_user_text(msgs), json_object_get_string(in))))
            return turn;
        if (!json_object_object_get_ex(turn, "else", &turn))
            return NULL;
    }
    return turn;
}

/* A turn with "texts": [A, B, ...] samples like a model: at temperature 0 (or none given)
 * always A; at temperature T, with probability min(1, T) one of them drawn uniformly. A new
 * turn {"text": ...} (*owned set), or NULL when t has no texts. */
static json_object *sample_texts(server_t *s, json_object *t, json_object *body, int *owned)
{
    json_object *texts, *tv;
    if (!t || !json_object_object_get_ex(t, "texts", &texts) ||
        !json_object_is_type(texts, json_type_array) || !json_object_array_length(texts))
        return NULL;
    double temp = json_object_object_get_ex(body, "temperature", &tv) ? json_object_get_double(tv)
                                                                      : 0;
    size_t n = json_object_array_length(texts), i = 0;
    s->sample_rng ^= s->sample_rng << 13;
    s->sample_rng ^= s->sample_rng >> 7;
    s->sample_rng ^= s->sample_rng << 17;
    uint64_t r = s->sample_rng;
    if ((double)(r % 1000) < temp * 1000)
        i = (size_t)((r >> 16) % n);
    json_object *nt = json_object_new_object();
    json_object_object_add(nt, "text", json_object_get(json_object_array_get_idx(texts, i)));
    *owned = 1;
    return nt;
}

/* The turn for this request: a borrowed script entry or a new echo turn (*owned set). */
static json_object *pick_turn(server_t *s, json_object *body, int *owned, int *turn_no)
{
    json_object *msgs = NULL;
    json_object_object_get_ex(body, "messages", &msgs);
    int n = count_assistant(msgs);
    *turn_no = n;
    if (s->script && json_object_array_length(s->script) > 0) {
        size_t len = json_object_array_length(s->script);
        json_object *t = resolve_when(
            json_object_array_get_idx(s->script, (size_t)n < len ? (size_t)n : len - 1), body,
            msgs);
        *owned = 0;
        json_object *sampled = sample_texts(s, t, body, owned);
        if (sampled)
            return sampled;
        if (t)
            return t;
    }
    json_object *t = json_object_new_object();
    char buf[4096];
    snprintf(buf, sizeof buf, "echo: %s", last_user_text(msgs));
    json_object_object_add(t, "text", json_object_new_string(buf));
    *owned = 1;
    return t;
}

static const char *turn_text(json_object *turn, char **tmp)
{
    json_object *v;
    *tmp = NULL;
    if (json_object_object_get_ex(turn, "text", &v))
        return json_object_get_string(v);
    if (json_object_object_get_ex(turn, "json", &v)) {
        *tmp = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        return *tmp;
    }
    return NULL;
}

static json_object *turn_calls(json_object *turn)
{
    json_object *v;
    return json_object_object_get_ex(turn, "tool_calls", &v) ? v : NULL;
}

static const char *args_text(json_object *call)
{
    json_object *a;
    if (!json_object_object_get_ex(call, "arguments", &a))
        return "{}";
    if (json_object_is_type(a, json_type_string))
        return json_object_get_string(a);
    return json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN);
}

/* The call's id: the script's "id" when it has one (a string, reused or empty as a model
 * that numbers calls per message would send; null: no id at all), else the default. */
static void add_call_id(json_object *dst, json_object *call, const char *dflt)
{
    json_object *v;
    if (!json_object_object_get_ex(call, "id", &v))
        json_object_object_add(dst, "id", json_object_new_string(dflt));
    else if (v)
        json_object_object_add(dst, "id", json_object_get(v));
}

static json_object *openai_message(json_object *turn, int turn_no, const char **finish)
{
    json_object *msg = json_object_new_object(), *calls = turn_calls(turn);
    char *tmp;
    const char *text = turn_text(turn, &tmp);
    json_object_object_add(msg, "role", json_object_new_string("assistant"));
    json_object_object_add(msg, "content", text ? json_object_new_string(text) : NULL);
    free(tmp);
    *finish = "stop";
    if (calls) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(calls); i++) {
            json_object *c = json_object_array_get_idx(calls, i), *name;
            json_object *tc = json_object_new_object(), *fn = json_object_new_object();
            char id[64];
            snprintf(id, sizeof id, "call_%d_%zu", turn_no + 1, i + 1);
            json_object_object_get_ex(c, "name", &name);
            add_call_id(tc, c, id);
            json_object_object_add(tc, "type", json_object_new_string("function"));
            json_object_object_add(fn, "name", json_object_get(name));
            json_object_object_add(fn, "arguments", json_object_new_string(args_text(c)));
            json_object_object_add(tc, "function", fn);
            json_object_array_add(arr, tc);
        }
        json_object_object_add(msg, "tool_calls", arr);
        *finish = "tool_calls";
    }
    return msg;
}

static json_object *anthropic_content(json_object *turn, int turn_no, const char **stop)
{
    json_object *arr = json_object_new_array(), *calls = turn_calls(turn);
    char *tmp;
    const char *text = turn_text(turn, &tmp);
    if (text) {
        json_object *b = json_object_new_object();
        json_object_object_add(b, "type", json_object_new_string("text"));
        json_object_object_add(b, "text", json_object_new_string(text));
        json_object_array_add(arr, b);
    }
    free(tmp);
    *stop = "end_turn";
    for (size_t i = 0; calls && i < json_object_array_length(calls); i++) {
        json_object *c = json_object_array_get_idx(calls, i), *name;
        json_object *b = json_object_new_object();
        char id[64];
        snprintf(id, sizeof id, "toolu_%d_%zu", turn_no + 1, i + 1);
        json_object_object_get_ex(c, "name", &name);
        json_object_object_add(b, "type", json_object_new_string("tool_use"));
        add_call_id(b, c, id);
        json_object_object_add(b, "name", json_object_get(name));
        json_object *input = json_tokener_parse(args_text(c));
        json_object_object_add(b, "input", input ? input : json_object_new_object());
        json_object_array_add(arr, b);
        *stop = "tool_use";
    }
    return arr;
}

/* ---- streaming ------------------------------------------------------------------------ */

static void sse(struct evbuffer *b, const char *event, json_object *data)
{
    if (event)
        evbuffer_add_printf(b, "event: %s\n", event);
    evbuffer_add_printf(b, "data: %s\n\n",
                        json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN));
    json_object_put(data);
}

/* OpenAI stream: content in small deltas, tool-call arguments in fragments. */
static json_object *openai_usage(long pt, long ct, long cached)
{
    json_object *u = json_object_new_object(), *d = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int64(pt));
    json_object_object_add(u, "completion_tokens", json_object_new_int64(ct));
    json_object_object_add(u, "total_tokens", json_object_new_int64(pt + ct));
    json_object_object_add(d, "cached_tokens", json_object_new_int64(cached));
    json_object_object_add(u, "prompt_tokens_details", d);
    return u;
}

/* Anthropic counts cache reads beside input_tokens, not inside it. */
static json_object *anthropic_usage(long pt, long ct, long cached)
{
    json_object *u = json_object_new_object();
    json_object_object_add(u, "input_tokens", json_object_new_int64(pt - cached));
    json_object_object_add(u, "cache_read_input_tokens", json_object_new_int64(cached));
    json_object_object_add(u, "cache_creation_input_tokens", json_object_new_int64(0));
    json_object_object_add(u, "output_tokens", json_object_new_int64(ct));
    return u;
}

static void openai_stream(struct evbuffer *b, json_object *msg, const char *finish,
                          const char *model, long pt, long ct, long cached)
{
    json_object *c, *calls;
    const char *text =
        json_object_object_get_ex(msg, "content", &c) && c ? json_object_get_string(c) : NULL;
    for (size_t off = 0; text && off < strlen(text); off += 16) {
        json_object *o = json_object_new_object(), *ch = json_object_new_array(),
                    *ch0 = json_object_new_object(), *d = json_object_new_object();
        json_object_object_add(
            d, "content",
            json_object_new_string_len(text + off,
                                       (int)(strlen(text) - off < 16 ? strlen(text) - off : 16)));
        json_object_object_add(ch0, "index", json_object_new_int(0));
        json_object_object_add(ch0, "delta", d);
        json_object_array_add(ch, ch0);
        json_object_object_add(o, "model", json_object_new_string(model));
        json_object_object_add(o, "choices", ch);
        sse(b, NULL, o);
    }
    if (json_object_object_get_ex(msg, "tool_calls", &calls)) {
        for (size_t i = 0; i < json_object_array_length(calls); i++) {
            json_object *tc = json_object_array_get_idx(calls, i), *fn, *id, *name, *args;
            json_object_object_get_ex(tc, "function", &fn);
            json_object_object_get_ex(tc, "id", &id);
            json_object_object_get_ex(fn, "name", &name);
            json_object_object_get_ex(fn, "arguments", &args);
            const char *a = json_object_get_string(args);
            size_t al = strlen(a);
            for (size_t off = 0; off == 0 || off < al; off += 8) {
                json_object *o = json_object_new_object(), *ch = json_object_new_array(),
                            *ch0 = json_object_new_object(), *d = json_object_new_object(),
                            *tcs = json_object_new_array(), *t = json_object_new_object(),
                            *f = json_object_new_object();
                json_object_object_add(t, "index", json_object_new_int((int)i));
                if (off == 0) {
                    json_object_object_add(t, "id", json_object_get(id));
                    json_object_object_add(t, "type", json_object_new_string("function"));
                    json_object_object_add(f, "name", json_object_get(name));
                }
                json_object_object_add(
                    f, "arguments",
                    json_object_new_string_len(a + off, (int)(al - off < 8 ? al - off : 8)));
                json_object_object_add(t, "function", f);
                json_object_array_add(tcs, t);
                json_object_object_add(d, "tool_calls", tcs);
                json_object_object_add(ch0, "index", json_object_new_int(0));
                json_object_object_add(ch0, "delta", d);
                json_object_array_add(ch, ch0);
                json_object_object_add(o, "choices", ch);
                sse(b, NULL, o);
                if (al == 0)
                    break;
            }
        }
    }
    json_object *o = json_object_new_object(), *ch = json_object_new_array(),
                *ch0 = json_object_new_object();
    json_object_object_add(ch0, "index", json_object_new_int(0));
    json_object_object_add(ch0, "delta", json_object_new_object());
    json_object_object_add(ch0, "finish_reason", json_object_new_string(finish));
    json_object_array_add(ch, ch0);
    json_object_object_add(o, "choices", ch);
    json_object_object_add(o, "usage", openai_usage(pt, ct, cached));
    sse(b, NULL, o);
    evbuffer_add_printf(b, "data: [DONE]\n\n");
}

static void anthropic_stream(struct evbuffer *b, json_object *content, const char *stop,
                             const char *model, long pt, long ct, long cached)
{
    json_object *o = json_object_new_object(), *m = json_object_new_object(),
                *u = anthropic_usage(pt, 1, cached);
    json_object_object_add(o, "type", json_object_new_string("message_start"));
    json_object_object_add(m, "id", json_object_new_string("msg_fake"));
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    json_object_object_add(m, "model", json_object_new_string(model));
    json_object_object_add(m, "content", json_object_new_array());
    json_object_object_add(m, "usage", u);
    json_object_object_add(o, "message", m);
    sse(b, "message_start", o);
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        json_object *blk = json_object_array_get_idx(content, i), *type;
        json_object_object_get_ex(blk, "type", &type);
        int is_text = !strcmp(json_object_get_string(type), "text");
        json_object *st = json_object_new_object(), *cb = json_object_new_object();
        json_object_object_add(st, "type", json_object_new_string("content_block_start"));
        json_object_object_add(st, "index", json_object_new_int((int)i));
        if (is_text) {
            json_object_object_add(cb, "type", json_object_new_string("text"));
            json_object_object_add(cb, "text", json_object_new_string(""));
        } else {
            json_object *id, *name;
            json_object_object_get_ex(blk, "id", &id);
            json_object_object_get_ex(blk, "name", &name);
            json_object_object_add(cb, "type", json_object_new_string("tool_use"));
            json_object_object_add(cb, "id", json_object_get(id));
            json_object_object_add(cb, "name", json_object_get(name));
            json_object_object_add(cb, "input", json_object_new_object());
        }
        json_object_object_add(st, "content_block", cb);
        sse(b, "content_block_start", st);
        json_object *v;
        const char *s =
            is_text ? (json_object_object_get_ex(blk, "text", &v), json_object_get_string(v))
                    : (json_object_object_get_ex(blk, "input", &v),
                       json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        char *copy = strdup(s);
        size_t sl = strlen(copy);
        for (size_t off = 0; off < sl; off += 12) {
            json_object *d = json_object_new_object(), *dd = json_object_new_object();
            json_object_object_add(d, "type", json_object_new_string("content_block_delta"));
            json_object_object_add(d, "index", json_object_new_int((int)i));
            json_object_object_add(
                dd, "type", json_object_new_string(is_text ? "text_delta" : "input_json_delta"));
            json_object_object_add(
                dd, is_text ? "text" : "partial_json",
                json_object_new_string_len(copy + off, (int)(sl - off < 12 ? sl - off : 12)));
            json_object_object_add(d, "delta", dd);
            sse(b, "content_block_delta", d);
        }
        free(copy);
        json_object *sp = json_object_new_object();
        json_object_object_add(sp, "type", json_object_new_string("content_block_stop"));
        json_object_object_add(sp, "index", json_object_new_int((int)i));
        sse(b, "content_block_stop", sp);
    }
    json_object *md = json_object_new_object(), *dl = json_object_new_object(),
                *u2 = json_object_new_object();
    json_object_object_add(md, "type", json_object_new_string("message_delta"));
    json_object_object_add(dl, "stop_reason", json_object_new_string(stop));
    json_object_object_add(md, "delta", dl);
    json_object_object_add(u2, "output_tokens", json_object_new_int64(ct));
    json_object_object_add(md, "usage", u2);
    sse(b, "message_delta", md);
    json_object *ms = json_object_new_object();
    json_object_object_add(ms, "type", json_object_new_string("message_stop"));
    sse(b, "message_stop", ms);
}

/* ---- answering ------------------------------------------------------------------------ */

static pending_t *pending_new(server_t *s, struct evhttp_request *req, int anthropic)
{
    pending_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->s = s;
    p->req = req;
    p->anthropic = anthropic;
    p->next = s->pending;
    if (s->pending)
        s->pending->pprev = &p->next;
    p->pprev = &s->pending;
    s->pending = p;
    s->in_flight++;
    return p;
}

static void pending_free(pending_t *p)
{
    *p->pprev = p->next;
    if (p->next)
        p->next->pprev = p->pprev;
    p->s->in_flight--;
    if (p->conn)
        evhttp_connection_set_closecb(p->conn, NULL, NULL);
    if (p->timer)
        event_free(p->timer);
    json_object_put(p->body);
    free(p->out);
    free(p);
}

/* Deterministic usage: about one token per four bytes. The conversation up to its last
 * assistant message counts as cached, as a provider's prompt cache would hold it, rounded
 * down to 64 tokens; a first turn has nothing cached. */
static long cached_tokens(json_object *body)
{
    json_object *msgs;
    if (!json_object_object_get_ex(body, "messages", &msgs) ||
        !json_object_is_type(msgs, json_type_array))
        return 0;
    size_t n = json_object_array_length(msgs), last = n;
    for (size_t i = 0; i < n; i++) {
        json_object *role;
        if (json_object_object_get_ex(json_object_array_get_idx(msgs, i), "role", &role) &&
            !strcmp(json_object_get_string(role), "assistant"))
            last = i;
    }
    if (last == n)
        return 0;
    size_t bytes = 0;
    for (size_t i = 0; i <= last; i++)
        bytes += strlen(json_object_to_json_string_ext(json_object_array_get_idx(msgs, i),
                                                       JSON_C_TO_STRING_PLAIN));
    long t = (long)(bytes / 4);
    return t - t % 64;
}

static void drip_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pending_t *p = arg;
    size_t n = p->out_len - p->out_off < 16 ? p->out_len - p->out_off : 16;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, p->out + p->out_off, n);
    evhttp_send_reply_chunk(p->req, b);
    evbuffer_free(b);
    p->out_off += n;
    if (p->out_off >= p->out_len) {
        evhttp_send_reply_end(p->req); /* also frees a request whose client has gone */
        pending_free(p);
        return;
    }
    struct timeval tv = {p->s->drip_ms / 1000, (p->s->drip_ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
}

/* The client's connection is being freed (shutdown, or a write to a client that left). */
static void conn_closed(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    pending_t *p = arg;
    p->conn = NULL;
    if (p->fault == F_STALL)
        pending_free(p); /* evhttp frees the request with the connection */
}

/* evhttp stops reading a connection while its request waits for an answer, so it never
 * notices that a stalled client gave up. We watch the socket ourselves: EOF (or an
 * error) means the client left, and the connection and its request are freed. */
static void stall_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    pending_t *p = arg;
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        event_add(p->timer, NULL);
        return;
    }
    if (r > 0)
        return; /* the client sent more (pipelining): stop watching, free at shutdown */
    struct evhttp_connection *conn = p->conn;
    if (conn) {
        evhttp_connection_set_closecb(conn, NULL, NULL);
        p->conn = NULL;
        evhttp_connection_free(conn);
    }
    pending_free(p);
}

static void cut_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pending_t *p = arg;
    struct evhttp_connection *conn = p->conn;
    if (conn) {
        evhttp_connection_set_closecb(conn, NULL, NULL);
        p->conn = NULL;
        if (p->fault == F_RESET) {
            /* A real reset, as a crashed proxy sends: connect(AF_UNSPEC) makes Linux send
             * RST now; without it evhttp's shutdown() would send a polite FIN first. */
            int sfd = bufferevent_getfd(evhttp_connection_get_bufferevent(conn));
            struct sockaddr sa = {.sa_family = AF_UNSPEC};
            if (sfd >= 0)
                connect(sfd, &sa, sizeof sa);
        }
        evhttp_connection_free(conn); /* frees the request with it */
    } else {
        evhttp_send_reply_end(p->req); /* the client left first: this frees the request */
    }
    pending_free(p);
}

/* The fake embedding model: lower-cased words (letters and digits) hashed (FNV-1a) into
 * embed_dim signed buckets, L2-normalised. Texts sharing words get similar vectors, so a
 * retrieval test through it still ranks by meaning of a kind. */
static json_object *fake_embedding(const char *text, int dim)
{
    double v[4096] = {0};
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        while (*p && !isalnum(*p))
            p++;
        uint64_t h = 1469598103934665603ULL;
        int n = 0;
        for (; *p && isalnum(*p); p++, n++) {
            h ^= (uint64_t)tolower(*p);
            h *= 1099511628211ULL;
        }
        if (n)
            v[(h >> 8) % (uint64_t)dim] += (h & 1) ? 1.0 : -1.0;
    }
    double s = 0;
    for (int i = 0; i < dim; i++)
        s += v[i] * v[i];
    s = s > 0 ? sqrt(s) : 1;
    json_object *a = json_object_new_array_ext(dim);
    for (int i = 0; i < dim; i++)
        json_object_array_add(a, json_object_new_double(v[i] / s));
    return a;
}

/* {"object":"list","data":[{"object":"embedding","index":i,"embedding":[...]}],"model",
 * "usage":{"prompt_tokens","total_tokens"}}; input is a string or an array of strings. */
static json_object *embeddings_reply(server_t *s, json_object *body, const char *model)
{
    json_object *in = NULL, *resp = json_object_new_object(), *data = json_object_new_array();
    json_object_object_get_ex(body, "input", &in);
    size_t n = json_object_is_type(in, json_type_array) ? json_object_array_length(in) : 1;
    long tokens = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_is_type(in, json_type_array) ? json_object_array_get_idx(in, i)
                                                                  : in;
        const char *text = t ? json_object_get_string(t) : "";
        tokens += (long)strlen(text) / 4 + 1;
        json_object *e = json_object_new_object();
        json_object_object_add(e, "object", json_object_new_string("embedding"));
        json_object_object_add(e, "index", json_object_new_int((int)i));
        json_object_object_add(e, "embedding", fake_embedding(text, s->embed_dim));
        json_object_array_add(data, e);
    }
    s->embed_inputs += (long)n;
    json_object_object_add(resp, "object", json_object_new_string("list"));
    json_object_object_add(resp, "data", data);
    json_object_object_add(resp, "model", json_object_new_string(model));
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int64(tokens));
    json_object_object_add(u, "total_tokens", json_object_new_int64(tokens));
    json_object_object_add(resp, "usage", u);
    return resp;
}

static void answer(pending_t *p)
{
    server_t *s = p->s;
    int owned = 0, turn_no = 0;
    json_object *turn = pick_turn(s, p->body, &owned, &turn_no), *mv;
    const char *model =
        json_object_object_get_ex(p->body, "model", &mv) ? json_object_get_string(mv) : "fake";
    long pt = (long)strlen(json_object_to_json_string_ext(p->body, JSON_C_TO_STRING_PLAIN)) / 4 + 1;
    long cached = cached_tokens(p->body);
    struct evbuffer *b = evbuffer_new();
    json_object *resp = NULL;
    const char *finish;
    long ct;
    if (p->stream)
        s->streamed++;
    if (p->embed) {
        resp = embeddings_reply(s, p->body, model);
    } else if (!p->anthropic) {
        json_object *msg = openai_message(turn, turn_no, &finish);
        ct = (long)strlen(json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN)) / 4 + 1;
        if (p->stream) {
            openai_stream(b, msg, finish, model, pt, ct, cached);
            json_object_put(msg);
        } else {
            resp = json_object_new_object();
            json_object *ch = json_object_new_array(), *ch0 = json_object_new_object();
            json_object_object_add(resp, "id", json_object_new_string("chatcmpl-fake"));
            json_object_object_add(resp, "object", json_object_new_string("chat.completion"));
            json_object_object_add(resp, "model", json_object_new_string(model));
            json_object_object_add(ch0, "index", json_object_new_int(0));
            json_object_object_add(ch0, "message", msg);
            json_object_object_add(ch0, "finish_reason", json_object_new_string(finish));
            json_object_array_add(ch, ch0);
            json_object_object_add(resp, "choices", ch);
            json_object_object_add(resp, "usage", openai_usage(pt, ct, cached));
        }
    } else {
        json_object *content = anthropic_content(turn, turn_no, &finish);
        ct = (long)strlen(json_object_to_json_string_ext(content, JSON_C_TO_STRING_PLAIN)) / 4 + 1;
        if (p->stream) {
            anthropic_stream(b, content, finish, model, pt, ct, cached);
            json_object_put(content);
        } else {
            resp = json_object_new_object();
            json_object_object_add(resp, "id", json_object_new_string("msg_fake"));
            json_object_object_add(resp, "type", json_object_new_string("message"));
            json_object_object_add(resp, "role", json_object_new_string("assistant"));
            json_object_object_add(resp, "model", json_object_new_string(model));
            json_object_object_add(resp, "content", content);
            json_object_object_add(resp, "stop_reason", json_object_new_string(finish));
            json_object_object_add(resp, "usage", anthropic_usage(pt, ct, cached));
        }
    }
    if (owned)
        json_object_put(turn);
    if (resp) {
        const char *txt = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);
        evbuffer_add(b, txt, strlen(txt));
        json_object_put(resp);
    }
    struct evkeyvalq *oh = evhttp_request_get_output_headers(p->req);
    evhttp_add_header(oh, "Content-Type", p->stream ? "text/event-stream" : "application/json");
    size_t len = evbuffer_get_length(b);
    switch (p->fault) {
    case F_MALFORMED:
        evbuffer_drain(b, len);
        evbuffer_add_printf(b, "{\"choices\": [{\"message\": {\"content\": \"oops");
        evhttp_send_reply(p->req, 200, "OK", b);
        break;
    case F_TRUNCATED:
    case F_RESET: {
        /* Half the body, then (once it has left) the connection goes away mid-body. */
        struct evbuffer *half = evbuffer_new();
        evbuffer_remove_buffer(b, half, len / 2);
        evhttp_send_reply_start(p->req, 200, "OK");
        evhttp_send_reply_chunk(p->req, half);
        evbuffer_free(half);
        evbuffer_free(b);
        p->conn = evhttp_request_get_connection(p->req);
        if (p->conn)
            evhttp_connection_set_closecb(p->conn, conn_closed, p);
        event_free(p->timer);
        p->timer = evtimer_new(s->base, cut_cb, p);
        struct timeval tv = {0, 30000};
        evtimer_add(p->timer, &tv);
        return;
    }
    case F_DRIP:
        p->out_len = len;
        p->out = malloc(len ? len : 1);
        evbuffer_remove(b, p->out, len);
        evhttp_send_reply_start(p->req, 200, "OK");
        evbuffer_free(b);
        event_free(p->timer);
        p->timer = evtimer_new(s->base, drip_cb, p);
        drip_cb(-1, 0, p);
        return;
    default:
        evhttp_send_reply(p->req, 200, "OK", b);
        break;
    }
    evbuffer_free(b);
    pending_free(p);
}

static void deliver(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pending_t *p = arg;
    switch (p->fault) {
    case F_429: {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", p->s->retry_after);
        evhttp_add_header(evhttp_request_get_output_headers(p->req), "Retry-After", ra);
        reply_error(p, 429, "rate_limit_error", "rate limited by the fake provider");
        break;
    }
    case F_500:
        reply_error(p, 500, "server_error", "internal error (injected)");
        break;
    case F_503:
        reply_error(p, 503, "overloaded", "overloaded (injected)");
        break;
    default:
        answer(p);
        return;
    }
    pending_free(p);
}

/* Header X-Fake-Fault first ("none" forces a clean answer), then the --fail-first schedule
 * (faults in LIST order, cycling), then the seeded --fault-rate draw. */
static int choose_fault(server_t *s, struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Fake-Fault");
    if (h) {
        if (!strcmp(h, "none"))
            return F_NONE;
        int f = fault_parse(h);
        if (f > 0)
            return f;
    }
    if (s->nfaults == 0)
        return F_NONE;
    if (s->fail_first > 0) {
        s->fail_first--;
        return s->faults[s->fail_next++ % s->nfaults];
    }
    if (s->fault_rate > 0 && (double)(rnd(s) % 1000000) / 1e6 < s->fault_rate)
        return s->faults[rnd(s) % (uint64_t)s->nfaults];
    return F_NONE;
}

static void on_model(struct evhttp_request *req, void *arg, int anthropic, int embed)
{
    server_t *s = arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_send_error(req, 405, "POST only");
        return;
    }
    s->requests++;
    embed ? s->embeddings++ : anthropic ? s->anthropic++ : s->openai++;
    pending_t *p = pending_new(s, req, anthropic);
    if (!p) {
        evhttp_send_error(req, 500, "fakellm: out of memory");
        return;
    }
    p->embed = embed;
    if (s->require_key) {
        struct evkeyvalq *ih = evhttp_request_get_input_headers(req);
        const char *auth = evhttp_find_header(ih, anthropic ? "x-api-key" : "Authorization");
        char want[512];
        snprintf(want, sizeof want, anthropic ? "%s" : "Bearer %s", s->require_key);
        if (!auth || strcmp(auth, want)) {
            s->errors_401++;
            reply_error(p, 401, "authentication_error", "invalid API key");
            pending_free(p);
            return;
        }
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (s->record) {
        /* The bytes as they came (tests look for secrets and bad bytes on the wire). */
        FILE *f = fopen(s->record, "ab");
        if (f) {
            fwrite(evbuffer_pullup(in, -1), 1, len, f);
            fputc('\n', f);
            fclose(f);
        }
    }
    json_tokener *tok = len ? json_tokener_new() : NULL;
    p->body =
        tok ? json_tokener_parse_ex(tok, (const char *)evbuffer_pullup(in, -1), (int)len) : NULL;
    if (p->body && json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(p->body);
        p->body = NULL;
    }
    json_tokener_free(tok);
    if (!p->body || !json_object_is_type(p->body, json_type_object)) {
        reply_error(p, 400, "invalid_request_error", "request body is not a JSON object");
        pending_free(p);
        return;
    }
    json_object *st;
    p->stream = json_object_object_get_ex(p->body, "stream", &st) && json_object_get_boolean(st);
    p->fault = choose_fault(s, req);
    s->by_fault[p->fault]++;
    if (p->fault == F_STALL) {
        /* Never answered; the client's timeout must end it. Freed when the client leaves. */
        p->conn = evhttp_request_get_connection(req);
        if (p->conn) {
            evhttp_connection_set_closecb(p->conn, conn_closed, p);
            int fd = bufferevent_getfd(evhttp_connection_get_bufferevent(p->conn));
            p->timer = fd >= 0 ? event_new(s->base, fd, EV_READ, stall_watch, p) : NULL;
            if (p->timer)
                event_add(p->timer, NULL);
        }
        return;
    }
    p->timer = evtimer_new(s->base, deliver, p);
    struct timeval tv = {s->latency_ms / 1000, (s->latency_ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
}

static void on_openai(struct evhttp_request *req, void *arg)
{
    on_model(req, arg, 0, 0);
}

static void on_anthropic(struct evhttp_request *req, void *arg)
{
    on_model(req, arg, 1, 0);
}

static void on_embeddings(struct evhttp_request *req, void *arg)
{
    on_model(req, arg, 0, 1);
}

static void on_stats(struct evhttp_request *req, void *arg)
{
    server_t *s = arg;
    json_object *o = json_object_new_object(), *f = json_object_new_object();
    long injected = 0;
    for (int i = 1; i < F__N; i++) {
        json_object_object_add(f, fault_names[i], json_object_new_int64(s->by_fault[i]));
        injected += s->by_fault[i];
    }
    json_object_object_add(o, "requests", json_object_new_int64(s->requests));
    json_object_object_add(o, "openai", json_object_new_int64(s->openai));
    json_object_object_add(o, "anthropic", json_object_new_int64(s->anthropic));
    json_object_object_add(o, "embeddings", json_object_new_int64(s->embeddings));
    json_object_object_add(o, "embed_inputs", json_object_new_int64(s->embed_inputs));
    json_object_object_add(o, "streamed", json_object_new_int64(s->streamed));
    json_object_object_add(o, "unauthorized", json_object_new_int64(s->errors_401));
    json_object_object_add(o, "faults_injected", json_object_new_int64(injected));
    json_object_object_add(o, "faults", f);
    json_object_object_add(o, "connections", json_object_new_int64(s->connections));
    json_object_object_add(o, "in_flight", json_object_new_int64(s->in_flight));
    reply_json(req, 200, o);
    json_object_put(o);
}

static void on_reset(struct evhttp_request *req, void *arg)
{
    server_t *s = arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_send_error(req, 405, "POST only");
        return;
    }
    s->requests = s->openai = s->anthropic = s->errors_401 = s->streamed = s->connections = 0;
    s->embeddings = s->embed_inputs = 0;
    memset(s->by_fault, 0, sizeof s->by_fault);
    evhttp_send_reply(req, 204, "No Content", NULL);
}

/* evhttp asks for a bufferevent per accepted connection: the one place to count them
 * (keep-alive tests compare connections with requests). */
static struct bufferevent *on_accept(struct event_base *base, void *arg)
{
    server_t *s = arg;
    s->connections++;
    return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: fakellm [--port N] [--port-file F] [--script FILE.json] [--latency-ms N]\n"
            "               [--fault-rate R] [--faults "
            "429,500,503,stall,reset,malformed,truncated,drip]\n"
            "               [--fail-first N] [--retry-after S] [--seed N] [--require-key K]\n"
            "               [--drip-ms N] [--embed-dim N] [--record FILE]\n"
            "Docs: docs/fakellm.md\n");
    return 2;
}

/* Whole-string integer in [lo, hi], or a one-line error naming the flag. */
static int num(const char *flag, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi) {
        fprintf(stderr, "fakellm: %s: expected an integer from %ld to %ld, got \"%s\"\n", flag, lo,
                hi, v);
        return -1;
    }
    *out = n;
    return 0;
}

static int parse_faults(server_t *s, const char *v)
{
    char *list = strdup(v), *save = NULL;
    int rc = 0;
    s->nfaults = 0;
    for (char *tok = strtok_r(list, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        int f = fault_parse(tok);
        if (f < 0) {
            fprintf(stderr,
                    "fakellm: --faults: unknown fault \"%s\" (known: 429,500,503,stall,reset,"
                    "malformed,truncated,drip)\n",
                    tok);
            rc = -1;
        } else if (s->nfaults < F__N * 4) {
            s->faults[s->nfaults++] = f;
        }
    }
    free(list);
    return rc;
}

/* What is wrong with turn t (NULL: nothing); a conditional turn's "else" is checked too. */
static const char *turn_problem(json_object *t, int depth)
{
    json_object *v, *calls, *w;
    const char *why = NULL;
    if (depth > 16)
        return "\"else\" nested too deep";
    if (depth == 0 && json_object_is_type(t, json_type_array)) {
        for (size_t i = 0; !why && i < json_object_array_length(t); i++)
            why = turn_problem(json_object_array_get_idx(t, i), 1);
        return json_object_array_length(t) ? why : "an empty list of alternatives";
    }
    if (!json_object_is_type(t, json_type_object))
        why = "expected an object";
    else if (json_object_object_get_ex(t, "text", &v) &&
             !json_object_is_type(v, json_type_string))
        why = "\"text\" must be a string";
    else if (json_object_object_get_ex(t, "tool_calls", &calls)) {
        if (!json_object_is_type(calls, json_type_array) || !json_object_array_length(calls))
            why = "\"tool_calls\" must be a non-empty array";
        for (size_t k = 0; !why && k < json_object_array_length(calls); k++) {
            json_object *c = json_object_array_get_idx(calls, k), *name;
            json_object *cid;
            if (!json_object_object_get_ex(c, "name", &name) ||
                !json_object_is_type(name, json_type_string))
                why = "every tool call needs a string \"name\"";
            else if (json_object_object_get_ex(c, "id", &cid) && cid &&
                     !json_object_is_type(cid, json_type_string))
                why = "a tool call's \"id\" must be a string or null";
        }
    } else if (!json_object_object_get_ex(t, "text", &v) &&
               !json_object_object_get_ex(t, "json", &v) &&
               !json_object_object_get_ex(t, "texts", &v))
        why = "expected \"text\", \"texts\", \"json\" or \"tool_calls\"";
    if (!why && json_object_object_get_ex(t, "texts", &v) &&
        (!json_object_is_type(v, json_type_array) || !json_object_array_length(v)))
        why = "\"texts\" must be a non-empty array of strings";
    if (!why && json_object_object_get_ex(t, "when", &w)) {
        json_object *c;
        if (!json_object_is_type(w, json_type_object))
            why = "\"when\" must be an object {\"system\": S, \"input\": S}";
        json_object_object_foreach(w, wk, wv) {
            if (!why && ((strcmp(wk, "system") && strcmp(wk, "input")) ||
                         !json_object_is_type(wv, json_type_string)))
                why = "\"when\" takes \"system\" and \"input\" strings";
        }
        if (!why && json_object_object_get_ex(t, "else", &c))
            why = turn_problem(c, depth + 1);
    }
    return why;
}

/* Every turn is {"text": S}, {"json": V} or {"tool_calls": [{"name": S, "arguments": O|S}]}
 * (text may sit beside tool_calls). A bad script fails at start, naming the turn. */
static int script_check(json_object *script, const char *path)
{
    if (!json_object_is_type(script, json_type_array)) {
        fprintf(stderr, "fakellm: --script %s: expected a JSON array of turns\n", path);
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(script); i++) {
        json_object *t = json_object_array_get_idx(script, i);
        const char *why = turn_problem(t, 0);
        if (why) {
            fprintf(stderr, "fakellm: --script %s: turn %zu (/%zu): %s\n", path, i + 1, i, why);
            return -1;
        }
    }
    return 0;
}

static int known_flag(const char *a)
{
    static const char *const flags[] = {
        "--port", "--port-file",   "--latency-ms", "--fault-rate", "--fail-first", "--retry-after",
        "--seed", "--require-key", "--script",     "--faults",     "--drip-ms", "--embed-dim",
        "--record"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strcmp(a, flags[i]))
            return 1;
    return 0;
}

static int parse_args(server_t *s, int argc, char **argv, long *port, const char **port_file)
{
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return -1;
        if (!known_flag(a)) {
            fprintf(stderr, "fakellm: unknown flag \"%s\"\n", a);
            return -1;
        }
        if (!v) {
            fprintf(stderr, "fakellm: %s needs a value\n", a);
            return -1;
        }
        if (!strcmp(a, "--port")) {
            if (num(a, v, 0, 65535, port))
                return -2;
        } else if (!strcmp(a, "--port-file")) {
            *port_file = v;
        } else if (!strcmp(a, "--latency-ms")) {
            if (num(a, v, 0, 3600000, &n))
                return -2;
            s->latency_ms = (int)n;
        } else if (!strcmp(a, "--embed-dim")) {
            if (num(a, v, 1, 4096, &n))
                return -2;
            s->embed_dim = (int)n;
        } else if (!strcmp(a, "--drip-ms")) {
            if (num(a, v, 1, 60000, &n))
                return -2;
            s->drip_ms = (int)n;
        } else if (!strcmp(a, "--fault-rate")) {
            char *end;
            s->fault_rate = strtod(v, &end);
            if (end == v || *end || s->fault_rate < 0 || s->fault_rate > 1) {
                fprintf(stderr,
                        "fakellm: --fault-rate: expected a number from 0 to 1, got \"%s\"\n", v);
                return -2;
            }
        } else if (!strcmp(a, "--fail-first")) {
            if (num(a, v, 0, 1000000000, &n))
                return -2;
            s->fail_first = (int)n;
        } else if (!strcmp(a, "--retry-after")) {
            if (num(a, v, 0, 86400, &n))
                return -2;
            s->retry_after = (int)n;
        } else if (!strcmp(a, "--seed")) {
            if (num(a, v, 0, 2147483647, &n))
                return -2;
            s->rng = (uint64_t)n * 2654435761ull + 1;
            s->sample_rng = s->rng ^ 0x9e3779b97f4a7c15ull;
        } else if (!strcmp(a, "--require-key")) {
            s->require_key = v;
        } else if (!strcmp(a, "--record")) {
            s->record = v;
        } else if (!strcmp(a, "--script")) {
            json_object_put(s->script);
            s->script = json_object_from_file(v);
            if (!s->script) {
                const char *e = json_util_get_last_err();
                fprintf(stderr, "fakellm: --script %s: %.*s\n", v, e ? (int)strcspn(e, "\n") : 7,
                        e ? e : "invalid");
                return -2;
            }
            if (script_check(s->script, v))
                return -2;
        } else if (!strcmp(a, "--faults")) {
            if (parse_faults(s, v))
                return -2;
        }
    }
    /* Without a list, every fault that ends on its own: stall and drip need a client
     * timeout and patience, so they are only injected when asked for. */
    if ((s->fault_rate > 0 || s->fail_first > 0) && s->nfaults == 0)
        for (int f = 1; f < F__N; f++)
            if (f != F_STALL && f != F_DRIP)
                s->faults[s->nfaults++] = f;
    return 0;
}

/* 127.0.0.1 only. Our own socket rather than evhttp_bind_socket, for a deep accept
 * queue: evhttp's default backlog of 128 makes a burst of thousands of connects wait
 * for SYN retransmits (a second each). */
static int listen_local(int port, int *actual)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sin;
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *actual = ntohs(sin.sin_port);
    return fd;
}

static void write_port_file(const char *path, int port)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
        fprintf(stderr, "fakellm: --port-file %s: cannot write it\n", path);
}

int main(int argc, char **argv)
{
    server_t s;
    memset(&s, 0, sizeof s);
    s.retry_after = 1;
    s.drip_ms = 50;
    s.embed_dim = 64;
    s.rng = 88172645463325252ull;
    s.sample_rng = s.rng ^ 0x9e3779b97f4a7c15ull;
    long port = 0;
    const char *port_file = NULL;
    int prc = parse_args(&s, argc, argv, &port, &port_file);
    if (prc) {
        json_object_put(s.script);
        return prc == -1 ? usage() : 2;
    }
    /* Thousands of concurrent clients need thousands of descriptors. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    s.base = event_base_new();
    s.http = s.base ? evhttp_new(s.base) : NULL;
    if (!s.http) {
        fprintf(stderr, "fakellm: cannot create the event loop\n");
        return 1;
    }
    evhttp_set_max_body_size(s.http, 64 << 20);
    evhttp_set_bevcb(s.http, on_accept, &s);
    evhttp_set_cb(s.http, "/v1/chat/completions", on_openai, &s);
    evhttp_set_cb(s.http, "/chat/completions", on_openai, &s);
    evhttp_set_cb(s.http, "/v1/embeddings", on_embeddings, &s);
    evhttp_set_cb(s.http, "/embeddings", on_embeddings, &s);
    evhttp_set_cb(s.http, "/v1/messages", on_anthropic, &s);
    evhttp_set_cb(s.http, "/stats", on_stats, &s);
    evhttp_set_cb(s.http, "/reset", on_reset, &s);
    int actual = 0;
    int lfd = listen_local((int)port, &actual);
    if (lfd < 0 || !evhttp_accept_socket_with_handle(s.http, lfd)) {
        fprintf(stderr, "fakellm: cannot listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
        if (lfd >= 0)
            close(lfd);
        evhttp_free(s.http);
        event_base_free(s.base);
        json_object_put(s.script);
        return 1;
    }
    printf("PORT=%d\n", actual);
    fflush(stdout);
    if (port_file)
        write_port_file(port_file, actual);
    struct event *si = evsignal_new(s.base, SIGINT, on_signal, s.base);
    struct event *st = evsignal_new(s.base, SIGTERM, on_signal, s.base);
    event_add(si, NULL);
    event_add(st, NULL);
    event_base_dispatch(s.base);
    event_free(si);
    event_free(st);
    /* A request whose client left before its answer was done (a drip, a latency wait) is
     * detached from its connection and ours to free; attached ones go with their
     * connections (whose close callbacks release stalled requests). Then whatever was
     * still waiting on a timer. */
    for (pending_t *p = s.pending; p; p = p->next)
        if (!evhttp_request_get_connection(p->req))
            evhttp_request_free(p->req);
    evhttp_free(s.http);
    while (s.pending) {
        s.pending->conn = NULL;
        pending_free(s.pending);
    }
    event_base_free(s.base);
    json_object_put(s.script);
    libevent_global_shutdown();
    return 0;
}
