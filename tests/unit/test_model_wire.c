/* The providers' wire formats and the retry/fallback/breaker/re-ask policy, with the HTTP
 * engine replaced by a scripted double in this file (http_start/http_cancel/
 * http_resp_header): requests are captured, canned responses delivered from loop events,
 * streamed bodies in small chunks. The same policy against real sockets and the fake
 * provider is tests/integration/model_faults.sh. */
#include "check.h"
#include "err.h"
#include "http.h"
#include "loop.h"
#include "model.h"

#include <stdlib.h>

/* ---- the HTTP double ---- */

typedef struct canned {
    int err, status;
    const char *retry_after;
    const char *body;
    size_t chunk; /* stream in pieces of this many bytes (0: one piece, no on_chunk) */
    uint64_t delay_ms;
} canned_t;

static loop_t *g_lp;
static canned_t g_script[16];
static int g_nscript, g_next, g_started;
static char g_url[256], g_headers[1024], *g_body;

typedef struct xfer {
    canned_t c;
    http_done_fn done;
    http_chunk_fn on_chunk;
    void *ud;
    int cancelled;
} xfer_t;

const char *http_resp_header(const http_resp_t *resp, const char *name)
{
    const xfer_t *x = resp->priv;
    return strcasecmp(name, "Retry-After") == 0 ? x->c.retry_after : NULL;
}

static void deliver(void *arg)
{
    xfer_t *x = arg;
    if (!x->cancelled) {
        size_t len = x->c.body ? strlen(x->c.body) : 0;
        int aborted = 0;
        if (x->on_chunk && x->c.chunk)
            for (size_t o = 0; o < len && !aborted; o += x->c.chunk)
                aborted = x->on_chunk(x->ud, x->c.body + o,
                                      len - o < x->c.chunk ? len - o : x->c.chunk);
        http_resp_t r = {
            .err = aborted ? ERR_CANCELLED : x->c.err,
            .status = x->c.status,
            .err_msg = x->c.err ? "Recv failure: Connection reset by peer" : "",
            .body = x->c.body ? x->c.body : "",
            .body_len = len,
            .priv = x,
        };
        x->done(x->ud, &r);
    }
    free(x);
}

int http_start(http_t *h, const http_req_t *req, http_done_fn done, void *ud, uint64_t *out_id)
{
    (void)h;
    if (g_next >= g_nscript)
        return ERR_HTTP;
    xfer_t *x = calloc(1, sizeof *x);
    x->c = g_script[g_next++];
    x->done = done;
    x->on_chunk = req->on_chunk;
    x->ud = ud;
    g_started++;
    snprintf(g_url, sizeof g_url, "%s", req->url);
    g_headers[0] = '\0';
    for (size_t i = 0; req->headers && req->headers[i]; i++) {
        strncat(g_headers, req->headers[i], sizeof g_headers - strlen(g_headers) - 2);
        strcat(g_headers, "\n");
    }
    free(g_body);
    g_body = strndup(req->body, req->body_len);
    int rc = x->c.delay_ms ? loop_after(g_lp, x->c.delay_ms, deliver, x, NULL)
                           : loop_defer(g_lp, deliver, x);
    if (rc) {
        free(x);
        return rc;
    }
    if (out_id)
        *out_id = (uint64_t)(uintptr_t)x;
    return 0;
}

int http_cancel(http_t *h, uint64_t id)
{
    (void)h;
    ((xfer_t *)(uintptr_t)id)->cancelled = 1;
    return 0;
}

static void script(int n, const canned_t *c)
{
    memcpy(g_script, c, (size_t)n * sizeof *c);
    g_nscript = n;
    g_next = 0;
    g_started = 0;
}

#define CAN(e, s, r, b, k)                                                                   \
    {.err = (e), .status = (s), .retry_after = (r), .body = (b), .chunk = (k)}
#define CAND(e, s, r, b, k, d)                                                               \
    {.err = (e), .status = (s), .retry_after = (r), .body = (b), .chunk = (k), .delay_ms = (d)}

/* ---- running a call ---- */

typedef struct got {
    int done, err, attempts, reasks;
    char reason[64], errmsg[512], classes[256], text[512], provider[32], resp_body[512];
    uint64_t delays[8];
    int ndelays;
    json_object *msg;
    model_usage_t usage;
} got_t;

static void on_attempt(void *ud, const model_attempt_t *a)
{
    got_t *g = ud;
    size_t l = strlen(g->classes);
    snprintf(g->classes + l, sizeof g->classes - l, "%s%s", l ? "," : "",
             a->errclass[0] ? a->errclass : "ok");
    if (g->ndelays < 8)
        g->delays[g->ndelays++] = a->delay_ms;
}

static void on_text(void *ud, const char *t, size_t n)
{
    got_t *g = ud;
    strncat(g->text, t, n < sizeof g->text - strlen(g->text) - 1 ? n : 0);
}

static void on_done(void *ud, const model_resp_t *r)
{
    got_t *g = ud;
    g->done++;
    g->err = r->err;
    g->attempts = r->attempts;
    g->usage = r->usage;
    snprintf(g->reason, sizeof g->reason, "%s", r->reason ? r->reason : "");
    snprintf(g->errmsg, sizeof g->errmsg, "%s", r->errmsg);
    snprintf(g->provider, sizeof g->provider, "%s", r->provider ? r->provider : "");
    g->msg = r->message ? json_object_get(r->message) : NULL;
    snprintf(g->resp_body, sizeof g->resp_body, "%s",
             r->response_body ? json_object_to_json_string(r->response_body) : "");
    loop_stop(g_lp);
}

static model_client_t *client(const model_opts_t *o)
{
    char err[256];
    setenv("OPENAI_API_KEY", "sk-testkey123456789", 1);
    setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1", 1);
    setenv("ANTHROPIC_API_KEY", "ant-secret-key-42", 1);
    setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9", 1);
    setenv("AGENTD_RETRY_BASE_MS", "2", 1);
    setenv("AGENTD_RETRY_CAP_MS", "10", 1);
    setenv("AGENTD_PRICES", "", 1);
    model_client_t *mc = model_client_new(g_lp, (http_t *)1, NULL, o, err, sizeof err);
    if (!mc)
        fprintf(stderr, "  %s\n", err);
    return mc;
}

static json_object *jparse(const char *s)
{
    json_object *j = json_tokener_parse(s);
    if (!j)
        fprintf(stderr, "  bad test JSON: %s\n", s);
    return j;
}

static const char *convo_json =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"Where is order 1042?\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
    "\"name\":\"lookup_order\",\"arguments\":\"{\\\"order_id\\\":\\\"1042\\\"}\"}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"name\":\"lookup_order\","
    "\"content\":\"{\\\"status\\\":\\\"shipped\\\"}\",\"is_error\":false}]";

static const char *tools_json =
    "[{\"name\":\"lookup_order\",\"description\":\"Find an order\",\"parameters\":"
    "{\"type\":\"object\",\"properties\":{\"order_id\":{\"type\":\"string\"}},"
    "\"required\":[\"order_id\"]}}]";

static json_object *g_tools; /* when set, run() sends this array instead of tools_json's */

static void run(model_client_t *mc, const char *const *models, json_object *schema, int stream,
                got_t *g)
{
    memset(g, 0, sizeof *g);
    json_object *msgs = jparse(convo_json),
                *tools = g_tools ? json_object_get(g_tools) : jparse(tools_json);
    model_req_t req = {
        .models = models,
        .messages = msgs,
        .tools = tools,
        .output_schema = schema,
        .temperature = -1,
        .stream = stream,
        .on_text = on_text,
        .on_attempt = on_attempt,
        .ud = g,
        .budget_tokens = -1,
        .budget_cost_usd = -1,
    };
    CHECK_EQ_INT(model_call(mc, &req, on_done, NULL), 0);
    json_object_put(msgs);
    json_object_put(tools);
    loop_run(g_lp);
    CHECK_EQ_INT(g->done, 1);
}

static const char *content(const got_t *g)
{
    json_object *c;
    return g->msg && json_object_object_get_ex(g->msg, "content", &c) && c
               ? json_object_get_string(c)
               : "";
}

static const char *call_field(const got_t *g, size_t i, const char *k)
{
    json_object *tcs, *v;
    if (!g->msg || !json_object_object_get_ex(g->msg, "tool_calls", &tcs) ||
        i >= json_object_array_length(tcs) ||
        !json_object_object_get_ex(json_object_array_get_idx(tcs, i), k, &v))
        return "";
    return json_object_get_string(v);
}

/* ---- tests ---- */

static void test_openai_request_and_reply(void)
{
    canned_t c[] = {CAN(0, 200, NULL,
                     "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,"
                     "\"tool_calls\":[{\"id\":\"c9\",\"type\":\"function\",\"function\":{"
                     "\"name\":\"lookup_order\",\"arguments\":\"{\\\"order_id\\\":\\\"7\\\"}\"}}]},"
                     "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":1000,"
                     "\"completion_tokens\":1000,\"prompt_tokens_details\":{\"cached_tokens\":"
                     "400}}}",
                     0)};
    script(1, c);
    model_client_t *mc = client(NULL);
    const char *const chain[] = {"openai:gpt-4o-mini", NULL};
    got_t g;
    run(mc, chain, NULL, 0, &g);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_STR(g_url, "http://127.0.0.1:9/v1/chat/completions");
    CHECK(strstr(g_headers, "Authorization: Bearer sk-testkey123456789\n") != NULL);
    json_object *b = jparse(g_body), *v;
    CHECK(json_object_object_get_ex(b, "model", &v) &&
          !strcmp(json_object_get_string(v), "gpt-4o-mini"));
    CHECK(json_object_object_get_ex(b, "tool_choice", &v) &&
          !strcmp(json_object_get_string(v), "auto"));
    CHECK(json_object_object_get_ex(b, "parallel_tool_calls", &v) && json_object_get_boolean(v));
    CHECK(strstr(g_body, "\"type\":\"function\",\"function\":{\"name\":\"lookup_order\"") != NULL);
    CHECK(strstr(g_body, "\"role\":\"tool\",\"content\":\"{\\\"status\\\":\\\"shipped\\\"}\","
                         "\"tool_call_id\":\"call_1\"") != NULL);
    CHECK(strstr(g_body, "response_format") == NULL);
    CHECK(strstr(g_body, "\"stream\"") == NULL);
    json_object_put(b);
    CHECK_EQ_STR(call_field(&g, 0, "id"), "c9");
    CHECK_EQ_STR(call_field(&g, 0, "name"), "lookup_order");
    CHECK_EQ_STR(call_field(&g, 0, "arguments"), "{\"order_id\":\"7\"}");
    CHECK_EQ_INT(g.usage.input_tokens, 1000);
    CHECK_EQ_INT(g.usage.cached_tokens, 400);
    /* 600 * 0.15 + 400 * 0.075 + 1000 * 0.60, per million. */
    CHECK(g.usage.cost_usd > 0.000719 && g.usage.cost_usd < 0.000721);
    json_object_put(g.msg);
    model_client_free(mc);
}

/* The tools' text is kept on the array the machine reuses: the same array gives the same
 * bytes, an array whose elements changed gives its new text, and a fresh array the same
 * bytes as the kept text. */
static void test_openai_tools_text_kept(void)
{
    static const char reply[] = "{\"choices\":[{\"message\":{\"role\":\"assistant\","
                                "\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}";
    canned_t c[] = {CAN(0, 200, NULL, reply, 0), CAN(0, 200, NULL, reply, 0),
                    CAN(0, 200, NULL, reply, 0), CAN(0, 200, NULL, reply, 0)};
    script(4, c);
    model_client_t *mc = client(NULL);
    const char *const chain[] = {"openai:gpt-4o-mini", NULL};
    got_t g;
    run(mc, chain, NULL, 0, &g); /* a fresh array each: nothing kept between them */
    char *fresh = strdup(g_body);
    json_object_put(g.msg);
    g_tools = jparse(tools_json);
    run(mc, chain, NULL, 0, &g);
    json_object_put(g.msg);
    CHECK_EQ_STR(g_body, fresh);
    CHECK(json_object_get_userdata(g_tools) != NULL);
    run(mc, chain, NULL, 0, &g); /* from the kept text */
    json_object_put(g.msg);
    CHECK_EQ_STR(g_body, fresh);
    json_object_array_put_idx(g_tools, 0,
                              jparse("{\"name\":\"other/tool\",\"description\":\"d\"}"));
    run(mc, chain, NULL, 0, &g);
    json_object_put(g.msg);
    CHECK(strstr(g_body, "\"name\":\"other\\/tool\",\"description\":\"d\","
                         "\"parameters\":{\"type\":\"object\"}") != NULL);
    CHECK(strstr(g_body, "lookup_order\",\"description") == NULL);
    json_object_put(g_tools);
    g_tools = NULL;
    free(fresh);
    model_client_free(mc);
}

static const char *oa_stream =
    "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n"
    "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a1\",\"function\":"
    "{\"name\":\"lookup_order\",\"arguments\":\"{\\\"ord\"}}]}}]}\n\n"
    "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"a2\",\"function\":"
    "{\"name\":\"lookup_order\",\"arguments\":\"{}\"}}]}}]}\n\n"
    "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
    "{\"arguments\":\"er_id\\\":\\\"1\\\"}\"}}]}}]}\n\n"
    "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5}}\n\n";

static void test_openai_stream(void)
{
    char full[2048], cut[2048];
    snprintf(full, sizeof full, "%sdata: [DONE]\n\n", oa_stream);
    /* Truncated (no [DONE]) first: malformed, retried; then the whole stream. */
    snprintf(cut, sizeof cut, "%s", oa_stream);
    canned_t c[] = {CAN(0, 200, NULL, cut, 7), CAN(0, 200, NULL, full, 5)};
    script(2, c);
    model_client_t *mc = client(NULL);
    const char *const chain[] = {"openai:gpt-4o-mini", NULL};
    got_t g;
    run(mc, chain, NULL, 1, &g);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_STR(g.classes, "malformed,ok");
    CHECK_EQ_INT(g.attempts, 2);
    CHECK(strstr(g_body, "\"stream\":true") && strstr(g_body, "include_usage"));
    CHECK(strstr(g_headers, "Accept: text/event-stream") != NULL);
    /* The text streamed twice (once per attempt); the message holds it once. */
    CHECK_EQ_STR(g.text, "HelloHello");
    CHECK_EQ_STR(content(&g), "Hello");
    CHECK_EQ_STR(call_field(&g, 0, "arguments"), "{\"order_id\":\"1\"}");
    CHECK_EQ_STR(call_field(&g, 1, "id"), "a2");
    CHECK_EQ_INT(g.usage.output_tokens, 5);
    json_object_put(g.msg);
    model_client_free(mc);
}

static void test_anthropic_request_and_stream(void)
{
    const char *stream =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":"
        "{\"input_tokens\":20,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: ping\ndata: {\"type\":\"ping\"}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking.\"}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
        "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"lookup_order\","
        "\"input\":{}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
        "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"order_\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
        "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"id\\\": \\\"9\\\"}\"}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"tool_use\"},\"usage\":{\"output_tokens\":30}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    canned_t c[] = {CAN(0, 200, NULL, stream, 11)};
    script(1, c);
    model_client_t *mc = client(NULL);
    const char *const chain[] = {"anthropic:claude-3-5-haiku-latest", NULL};
    json_object *schema = jparse("{\"type\":\"object\"}");
    got_t g;
    run(mc, chain, schema, 1, &g);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_STR(g_url, "http://127.0.0.1:9/v1/messages");
    CHECK(strstr(g_headers, "x-api-key: ant-secret-key-42\n") != NULL);
    CHECK(strstr(g_headers, "anthropic-version: 2023-06-01\n") != NULL);
    json_object *b = jparse(g_body), *v;
    CHECK(json_object_object_get_ex(b, "system", &v) &&
          !strncmp(json_object_get_string(v), "Be brief.", 9) &&
          strstr(json_object_get_string(v), "JSON Schema"));
    CHECK(json_object_object_get_ex(b, "messages", &v) && json_object_array_length(v) == 3);
    json_object_put(b);
    CHECK(strstr(g_body, "{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"lookup_order\","
                         "\"input\":{\"order_id\":\"1042\"}}") != NULL);
    CHECK(strstr(g_body, "{\"type\":\"tool_result\",\"tool_use_id\":\"call_1\",\"content\":") !=
          NULL);
    CHECK(strstr(g_body, "\"tools\":[{\"name\":\"lookup_order\",\"description\":\"Find an order\","
                         "\"input_schema\":") != NULL);
    CHECK_EQ_STR(g.text, "Checking.");
    CHECK_EQ_STR(call_field(&g, 0, "id"), "toolu_1");
    CHECK_EQ_STR(call_field(&g, 0, "arguments"), "{\"order_id\": \"9\"}");
    CHECK_EQ_INT(g.usage.input_tokens, 120);
    CHECK_EQ_INT(g.usage.cached_tokens, 100);
    CHECK_EQ_INT(g.usage.output_tokens, 30);
    json_object_put(g.msg);
    json_object_put(schema);
    model_client_free(mc);
}

static void test_retry_after_and_not_retryable(void)
{
    canned_t c[] = {
        CAN(0, 429, "0", "{\"error\":{\"message\":\"Rate limit reached\"}}", 0),
        CAN(0, 503, NULL, "upstream unavailable", 0),
        CAN(0, 200, NULL, "{\"choices\":[{\"message\":{\"content\":\"ok\"}}]}", 0),
        CAN(0, 401, NULL,
         "{\"error\":{\"message\":\"Incorrect API key provided: sk-testkey123456789.\"}}", 0),
    };
    script(4, c);
    model_client_t *mc = client(NULL);
    const char *const chain[] = {"openai:gpt-4o-mini", NULL};
    got_t g;
    run(mc, chain, NULL, 0, &g);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_STR(g.classes, "rate_limited,server,ok");
    CHECK_EQ_STR(content(&g), "ok");
    CHECK(g.delays[0] <= 10 && g.delays[1] <= 10);
    json_object_put(g.msg);
    /* 401: one attempt, the provider's message, the key masked. */
    run(mc, chain, NULL, 0, &g);
    CHECK_EQ_INT(g.err, ERR_HTTP);
    CHECK_EQ_STR(g.reason, "not_retryable");
    CHECK_EQ_STR(g.classes, "auth");
    if (!strstr(g.errmsg, "HTTP 401"))
        fprintf(stderr, "  errmsg: %s\n", g.errmsg);
    CHECK(strstr(g.errmsg, "Incorrect API key provided") != NULL);
    CHECK(strstr(g.errmsg, "testkey123456789") == NULL);
    CHECK(strstr(g.resp_body, "HTTP 401") != NULL); /* captured, but only redacted */
    CHECK(strstr(g.resp_body, "testkey123456789") == NULL);
    CHECK(strstr(g.errmsg, "HTTP 401") != NULL);
    model_client_free(mc);

    /* A Retry-After beyond the retry budget is not waited for. */
    canned_t d[] = {CAN(0, 429, "120", "{}", 0)};
    script(1, d);
    model_opts_t o = {.retry_budget_ms = 1000};
    mc = client(&o);
    run(mc, chain, NULL, 0, &g);
    CHECK_EQ_STR(g.reason, "retries_exhausted");
    CHECK(strstr(g.errmsg, "retry budget") != NULL);
    CHECK_EQ_INT(g_started, 1);
    model_client_free(mc);
}

static void test_fallback_and_breaker(void)
{
    canned_t c[16];
    for (int i = 0; i < 16; i++)
        c[i] = (canned_t)CAN(0, 500, NULL, "{\"error\":\"boom\"}", 0);
    script(16, c);
    model_opts_t o = {.max_attempts = 2, .breaker_threshold = 3, .breaker_cooldown_ms = 60000};
    model_client_t *mc = client(&o);
    const char *const chain[] = {"openai:gpt-4o-mini", "offline", NULL};
    got_t g;
    run(mc, chain, NULL, 0, &g);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_STR(g.provider, "offline");
    CHECK_EQ_STR(g.classes, "server,server,ok");
    json_object_put(g.msg);
    /* The third failure opens the breaker: the retry is not made, the chain falls back,
     * and the next call skips the endpoint at once. */
    run(mc, chain, NULL, 0, &g);
    CHECK_EQ_STR(g.classes, "server,circuit_open,ok");
    json_object_put(g.msg);
    int before = g_started;
    run(mc, chain, NULL, 0, &g);
    CHECK_EQ_STR(g.classes, "circuit_open,ok");
    CHECK_EQ_INT(g_started, before);
    json_object_put(g.msg);
    /* Without a fallback the call fails with the breaker's reason. */
    const char *const only[] = {"openai:gpt-4o-mini", NULL};
    run(mc, only, NULL, 0, &g);
    CHECK_EQ_STR(g.reason, "circuit_open");
    CHECK(strstr(g.errmsg, "circuit breaker") != NULL);
    model_client_free(mc);

    /* Fast-failure-only fallback: a connection reset is fast, so it falls back. */
    canned_t r[] = {CAN(ERR_HTTP, 0, NULL, NULL, 0)};
    script(1, r);
    model_opts_t f = {.max_attempts = 1, .fast_failure_ms = 5000};
    mc = client(&f);
    run(mc, chain, NULL, 0, &g);
    CHECK_EQ_STR(g.classes, "transport,ok");
    json_object_put(g.msg);
    model_client_free(mc);
    /* Requests that cannot even start fall through the chain one model at a time. */
    script(0, r);
    const char *const three[] = {"openai:a", "anthropic:b", "offline", NULL};
    mc = client(&f);
    run(mc, three, NULL, 0, &g);
    CHECK_EQ_STR(g.classes, "transport,transport,ok");
    CHECK_EQ_STR(g.provider, "offline");
    json_object_put(g.msg);
    model_client_free(mc);
    /* A slow failure (a 504 after 60 ms, over the 20 ms limit) ends the call instead. */
    canned_t s[] = {CAND(0, 504, NULL, "{}", 0, 60)};
    script(1, s);
    f.fast_failure_ms = 20;
    mc = client(&f);
    run(mc, chain, NULL, 0, &g);
    CHECK_EQ_STR(g.classes, "server");
    CHECK_EQ_STR(g.reason, "retries_exhausted");
    CHECK(strstr(g.errmsg, "no fallback") != NULL);
    model_client_free(mc);
}

static model_call_t *g_call;
static int g_texts;

static void cancel_on_text(void *ud, const char *t, size_t n)
{
    (void)ud;
    (void)t;
    (void)n;
    if (++g_texts == 1)
        model_call_cancel(g_call);
}

static void no_done(void *ud, const model_resp_t *r)
{
    (void)ud;
    (void)r;
    CHECK(0);
}

static void stop_loop(void *arg)
{
    loop_stop(arg);
}

/* Cancelling from inside the streaming callback: no more text, no done, nothing leaks. */
static void test_cancel_from_callback(void)
{
    char full[2048];
    snprintf(full, sizeof full, "%sdata: [DONE]\n\n", oa_stream);
    canned_t c[] = {CAN(0, 200, NULL, full, 3)};
    script(1, c);
    model_client_t *mc = client(NULL);
    const char *const chain[] = {"openai:gpt-4o-mini", NULL};
    json_object *msgs = jparse(convo_json);
    model_req_t req = {.models = chain, .messages = msgs, .temperature = -1, .stream = 1,
                       .on_text = cancel_on_text, .budget_tokens = -1, .budget_cost_usd = -1};
    g_texts = 0;
    CHECK_EQ_INT(model_call(mc, &req, no_done, &g_call), 0);
    json_object_put(msgs);
    CHECK(loop_after(g_lp, 30, stop_loop, g_lp, NULL) == 0);
    loop_run(g_lp);
    CHECK_EQ_INT(g_texts, 1);
    model_client_free(mc);
}

static void test_structured_reask(void)
{
    canned_t c[] = {
        CAN(0, 200, NULL, "{\"choices\":[{\"message\":{\"content\":\"Sure! Here it is.\"}}],"
                       "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":4}}", 0),
        CAN(0, 200, NULL, "{\"choices\":[{\"message\":{\"content\":\"```json\\n{\\\"status\\\":"
                       "\\\"shipped\\\"}\\n```\"}}],\"usage\":{\"prompt_tokens\":30,"
                       "\"completion_tokens\":6}}", 0),
    };
    script(2, c);
    model_client_t *mc = client(NULL);
    const char *const chain[] = {"openai:gpt-4o-mini", NULL};
    json_object *schema = jparse("{\"type\":\"object\",\"required\":[\"status\"]}");
    got_t g;
    run(mc, chain, schema, 0, &g);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_STR(content(&g), "{\"status\":\"shipped\"}");
    CHECK_EQ_INT(g.attempts, 2);
    CHECK_EQ_INT(g.usage.input_tokens, 40);
    CHECK_EQ_INT(g.usage.output_tokens, 10);
    /* The re-ask carried the rejected reply and the validator's complaint. */
    CHECK(strstr(g_body, "Sure! Here it is.") != NULL);
    CHECK(strstr(g_body, "not valid JSON") != NULL);
    CHECK(strstr(g_body, "response_format") != NULL);
    json_object_put(g.msg);

    /* Valid JSON that breaks the schema: the re-ask quotes the validator's pointer. */
    canned_t v[] = {
        CAN(0, 200, NULL, "{\"choices\":[{\"message\":{\"content\":\"{\\\"status\\\":5}\"}}]}", 0),
        CAN(0, 200, NULL,
            "{\"choices\":[{\"message\":{\"content\":\"{\\\"status\\\":\\\"late\\\"}\"}}]}", 0),
    };
    script(2, v);
    json_object *typed = jparse("{\"type\":\"object\",\"required\":[\"status\"],"
                                "\"properties\":{\"status\":{\"type\":\"string\"}}}");
    run(mc, chain, typed, 0, &g);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_STR(content(&g), "{\"status\":\"late\"}");
    CHECK(strstr(g_body, "/status") != NULL);
    json_object_put(g.msg);
    json_object_put(typed);

    canned_t d[3];
    for (int i = 0; i < 3; i++)
        d[i] = (canned_t)CAN(0, 200, NULL,
                             "{\"choices\":[{\"message\":{\"content\":\"nope\"}}]}", 0);
    script(3, d);
    run(mc, chain, schema, 0, &g);
    CHECK_EQ_INT(g.err, ERR_SCHEMA);
    CHECK_EQ_STR(g.reason, "invalid_output");
    CHECK_EQ_INT(g.attempts, 3);
    json_object_put(schema);
    model_client_free(mc);
}

int main(void)
{
    g_lp = loop_new();
    RUN(test_openai_request_and_reply);
    RUN(test_openai_tools_text_kept);
    RUN(test_openai_stream);
    RUN(test_anthropic_request_and_stream);
    RUN(test_retry_after_and_not_retryable);
    RUN(test_fallback_and_breaker);
    RUN(test_structured_reask);
    RUN(test_cancel_from_callback);
    free(g_body);
    loop_free(g_lp);
    return check_report();
}
