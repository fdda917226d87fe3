/* mcp: the agent's mcp table, ${VAR} expansion, the tools/call result mapping both ways,
 * the server core on the real tool registry (initialize, paging, calls, errors), and the
 * registry's remote-tool seam (validation before start, timeout cancels). Transports and
 * real servers are covered by tests/integration/mcp_*.sh. */
#include "check.h"
#include "err.h"
#include "mcp/mcp_int.h"

#include <event2/event.h>
#include <stdlib.h>

static json_object *J(const char *s)
{
    json_object *o = NULL;
    char e[200];
    if (schema_parse_json(s, strlen(s), &o, e, sizeof e) != 0)
        fprintf(stderr, "bad test JSON: %s\n", e);
    return o;
}

static const char *S(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* ---- config ---- */

static int parse(const char *spec, mcp_cfg_t **c, size_t *n, char *err)
{
    agent_t a = {.path = "/a/agents/x.lua", .dir = "/a/agents"};
    a.spec = J(spec);
    int rc = mcp_config_parse(&a, c, n, err, 300);
    json_object_put(a.spec);
    return rc;
}

static void test_config(void)
{
    mcp_cfg_t *c;
    size_t n;
    char err[300];
    CHECK_EQ_INT(parse("{\"name\":\"x\"}", &c, &n, err), 0);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(parse("{\"mcp\":{\"zz\":{\"url\":\"http://h/mcp\",\"headers\":{\"A\":\"b\"}},"
                       "\"fs\":{\"command\":\"srv\",\"args\":[\"data\",\"-v\"],\"env\":{\"K\":\"v\"},"
                       "\"timeout\":2.5,\"tools\":[\"read\"]}}}",
                       &c, &n, err),
                 0);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        /* sorted by name */
        CHECK_EQ_STR(c[0].key, "fs");
        CHECK_EQ_STR(c[0].prefix, "fs_");
        CHECK_EQ_STR(c[0].argv[0], "srv");
        CHECK_EQ_STR(c[0].argv[2], "-v");
        CHECK(c[0].argv[3] == NULL);
        CHECK_EQ_STR(c[0].env[0], "K=v");
        CHECK_EQ_STR(c[0].cwd, "/a/agents");
        CHECK_EQ_INT(c[0].timeout_ms, 2500);
        CHECK_EQ_INT(c[0].idempotent, -1);
        CHECK_EQ_STR(c[1].url, "http://h/mcp");
        CHECK_EQ_STR(c[1].headers[0], "A: b");
        CHECK(c[1].argv == NULL);
    }
    mcp_config_free(c, n);
    static const struct {
        const char *spec, *msg;
    } bad[] = {
        {"{\"mcp\":{\"a\":{\"command\":\"x\",\"url\":\"http://h\"}}}", "not both"},
        {"{\"mcp\":{\"a\":{}}}", "not neither"},
        {"{\"mcp\":{\"a\":{\"command\":\"x\",\"bogus\":1}}}", "mcp.a.bogus: unknown field"},
        {"{\"mcp\":{\"a\":{\"command\":\"x\",\"args\":[1]}}}", "mcp.a.args[1]: must be a string"},
        {"{\"mcp\":{\"a\":{\"command\":\"x\",\"headers\":{}}}}", "mcp.a.headers: only for url"},
        {"{\"mcp\":{\"a\":{\"url\":\"ftp://h\"}}}", "mcp.a.url: must start with http"},
        {"{\"mcp\":{\"a\":{\"command\":\"x\",\"timeout\":0}}}", "mcp.a.timeout: must be seconds"},
        {"{\"mcp\":[1]}", "mcp: must be a table of servers"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_EQ_INT(parse(bad[i].spec, &c, &n, err), ERR_INVAL);
        if (!strstr(err, bad[i].msg) || strncmp(err, "/a/agents/x.lua: mcp", 20) != 0) {
            fprintf(stderr, "  config %zu: got \"%s\", want \"%s\"\n", i, err, bad[i].msg);
            CHECK(0);
        }
    }
}

static void test_expand(void)
{
    setenv("MCP_T_TOKEN", "s3cret", 1);
    unsetenv("MCP_T_UNSET");
    char *s = mcp_expand("Bearer ${MCP_T_TOKEN}; x=${MCP_T_UNSET}; $5 ${unterminated");
    CHECK_EQ_STR(s, "Bearer s3cret; x=; $5 ${unterminated");
    free(s);
}

/* ---- results ---- */

static void test_result_to_tool(void)
{
    char err[300], e2[200];
    json_object *out = NULL;
    json_object *r = J("{\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}");
    CHECK_EQ_INT(mcp_result_to_tool(r, NULL, &out, err, sizeof err), 0);
    CHECK_EQ_STR(S(out), "\"a\\nb\"");
    json_object_put(out);
    json_object_put(r);

    json_object *osd = J("{\"type\":\"object\",\"properties\":{\"t\":{\"type\":\"number\"}},"
                         "\"required\":[\"t\"]}");
    schema_t *os = schema_compile(osd, NULL, e2, sizeof e2);
    r = J("{\"content\":[{\"type\":\"text\",\"text\":\"{}\"}],\"structuredContent\":{\"t\":3}}");
    CHECK_EQ_INT(mcp_result_to_tool(r, os, &out, err, sizeof err), 0);
    CHECK_EQ_STR(S(out), "{\"t\":3}");
    json_object_put(out);
    json_object_put(r);
    r = J("{\"content\":[],\"structuredContent\":{\"t\":\"hot\"}}");
    CHECK_EQ_INT(mcp_result_to_tool(r, os, &out, err, sizeof err), ERR_PROTO);
    CHECK(strstr(err, "outputSchema: /t:") != NULL);
    json_object_put(r);
    r = J("{\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}");
    CHECK_EQ_INT(mcp_result_to_tool(r, os, &out, err, sizeof err), ERR_PROTO);
    CHECK(strstr(err, "no structuredContent") != NULL);
    json_object_put(r);
    schema_free(os);
    json_object_put(osd);

    r = J("{\"isError\":true,\"content\":[{\"type\":\"text\",\"text\":\"disk full\"}]}");
    CHECK_EQ_INT(mcp_result_to_tool(r, NULL, &out, err, sizeof err), ERR_INVAL);
    CHECK_EQ_STR(err, "disk full");
    json_object_put(r);

    r = J("{\"content\":[{\"type\":\"text\",\"text\":\"pic\"},"
          "{\"type\":\"image\",\"mimeType\":\"image/png\",\"data\":\"AAAABBBB\"}]}");
    CHECK_EQ_INT(mcp_result_to_tool(r, NULL, &out, err, sizeof err), 0);
    CHECK_EQ_STR(S(out), "[{\"type\":\"text\",\"text\":\"pic\"},"
                         "{\"type\":\"image\",\"mimeType\":\"image/png\",\"bytes\":6}]");
    json_object_put(out);
    json_object_put(r);
}

static void test_result_from_tool(void)
{
    json_object *v = J("{\"n\":1}");
    tools_result_t ok = {.status = TC_OK, .result = v};
    json_object *r = mcp_result_from_tool(&ok);
    CHECK_EQ_STR(S(r), "{\"content\":[{\"type\":\"text\",\"text\":\"{\\\"n\\\":1}\"}],"
                       "\"structuredContent\":{\"n\":1},\"isError\":false}");
    json_object_put(r);
    json_object_put(v);
    v = json_object_new_string("plain");
    ok.result = v;
    r = mcp_result_from_tool(&ok);
    CHECK_EQ_STR(S(r), "{\"content\":[{\"type\":\"text\",\"text\":\"plain\"}],\"isError\":false}");
    json_object_put(r);
    json_object_put(v);
    tools_result_t bad = {.status = TC_REJECTED, .error = "invalid arguments: /q: must be >= 1"};
    r = mcp_result_from_tool(&bad);
    CHECK(strstr(S(r), "\"text\":\"rejected: invalid arguments: /q: must be >= 1\"") != NULL);
    CHECK(strstr(S(r), "\"isError\":true") != NULL);
    json_object_put(r);
}

/* ---- server core ---- */

typedef struct sink {
    json_object *last;
    int n;
} sink_t;

static void sink_send(void *ud, json_object *msg)
{
    sink_t *k = ud;
    json_object_put(k->last);
    k->last = json_object_get(msg);
    k->n++;
}

static const char *handle(mcp_peer_t *p, sink_t *k, const char *msg)
{
    json_object *m = J(msg);
    json_object_put(k->last);
    k->last = NULL;
    mcp_peer_handle(p, m, sink_send, k);
    json_object_put(m);
    return k->last ? S(k->last) : "";
}

static void test_server(void)
{
    loop_t *lp = loop_new();
    tools_t *tl = tools_new(lp, NULL, NULL);
    char err[300];
    CHECK_EQ_INT(tools_load_file(tl, "tools/calculator.lua", err, sizeof err), 0);
    CHECK_EQ_INT(tools_load_file(tl, "tools/current_time.lua", err, sizeof err), 0);
    CHECK_EQ_INT(tools_load_file(tl, "tools/lookup_order.lua", err, sizeof err), 0);
    tools_policy_t pol = {.agent = "t"};
    mcp_srv_opts_t o = {.policy = &pol, .page_size = 2};
    mcp_srv_t *s = mcp_srv_new(lp, tl, &o);
    mcp_peer_t *p = mcp_peer_new(s);
    sink_t k = {0};
    CHECK(strstr(handle(p, &k, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}"),
                 "\"code\":-32600") != NULL);
    const char *r = handle(p, &k, "{\"jsonrpc\":\"2.0\",\"id\":\"i\",\"method\":\"initialize\","
                                  "\"params\":{\"protocolVersion\":\"2025-06-18\"}}");
    CHECK(strstr(r, "\"id\":\"i\",\"result\":{\"protocolVersion\":\"2025-06-18\"") != NULL);
    r = handle(p, &k, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"initialize\","
                      "\"params\":{\"protocolVersion\":\"1999-01-01\"}}");
    CHECK(strstr(r, "\"protocolVersion\":\"" MCP_PROTOCOL_VERSION "\"") != NULL);
    CHECK_EQ_STR(handle(p, &k, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}"), "");
    r = handle(p, &k, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/list\"}");
    CHECK(strstr(r, "\"name\":\"calculator\"") && strstr(r, "\"name\":\"current_time\"") &&
          strstr(r, "\"nextCursor\":\"2\"") && strstr(r, "\"inputSchema\":{"));
    r = handle(p, &k, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/list\",\"params\":{\"cursor\":\"2\"}}");
    CHECK(strstr(r, "\"name\":\"lookup_order\"") && !strstr(r, "nextCursor"));
    CHECK(strstr(handle(p, &k, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/list\","
                               "\"params\":{\"cursor\":\"x9\"}}"),
                 "-32602") != NULL);
    CHECK(strstr(handle(p, &k, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\","
                               "\"params\":{\"name\":\"nope\"}}"),
                 "\"code\":-32602,\"message\":\"Unknown tool: nope\"") != NULL);
    CHECK(strstr(handle(p, &k, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"resources/list\"}"),
                 "-32601") != NULL);
    CHECK(strstr(handle(p, &k, "{\"jsonrpc\":\"1.0\",\"id\":8,\"method\":\"ping\"}"), "-32600") != NULL);
    CHECK_EQ_STR(handle(p, &k, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\"}"),
                 "{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}}");
    /* Calls answer from the loop; invalid arguments are a tool error, not a protocol one. */
    CHECK_EQ_STR(handle(p, &k, "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/call\","
                               "\"params\":{\"name\":\"calculator\",\"arguments\":{\"expression\":\"6*7\"}}}"),
                 "");
    for (int i = 0; i < 1000 && !k.last; i++)
        event_base_loop(loop_base(lp), EVLOOP_ONCE);
    CHECK(k.last && strstr(S(k.last), "\"id\":10") && strstr(S(k.last), "\"result\":42") &&
          strstr(S(k.last), "\"isError\":false"));
    handle(p, &k, "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"tools/call\","
                  "\"params\":{\"name\":\"lookup_order\",\"arguments\":{\"order_id\":\"12\"}}}");
    for (int i = 0; i < 1000 && !k.last; i++)
        event_base_loop(loop_base(lp), EVLOOP_ONCE);
    CHECK(k.last && strstr(S(k.last), "\"isError\":true") && strstr(S(k.last), "/order_id"));
    /* A cancelled call is never answered. */
    int before = k.n;
    handle(p, &k, "{\"jsonrpc\":\"2.0\",\"id\":12,\"method\":\"tools/call\","
                  "\"params\":{\"name\":\"calculator\",\"arguments\":{\"expression\":\"1\"}}}");
    CHECK_EQ_INT(mcp_peer_busy(p), 1);
    handle(p, &k, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                  "\"params\":{\"requestId\":12}}");
    CHECK_EQ_INT(mcp_peer_busy(p), 0);
    for (int i = 0; i < 20; i++)
        event_base_loop(loop_base(lp), EVLOOP_NONBLOCK);
    CHECK_EQ_INT(k.n, before);
    json_object_put(k.last);
    mcp_peer_free(p);
    mcp_srv_free(s);
    tools_free(tl);
    loop_free(lp);
}

/* ---- the registry's remote-tool seam ---- */

typedef struct fake {
    loop_t *lp;
    int started, cancelled, answer_ms;
    tools_remote_done_fn done;
    void *done_ud;
    loop_timer_t *t;
} fake_t;

static void fake_answer(void *arg)
{
    fake_t *f = arg;
    f->t = NULL;
    json_object *r = json_object_new_string("pong");
    f->done(f->done_ud, 0, r, NULL);
    json_object_put(r);
}

static int fake_start(void *ud, json_object *args, uint64_t deadline_ns, tools_remote_done_fn done,
                      void *done_ud, void **h)
{
    (void)args;
    (void)deadline_ns;
    fake_t *f = ud;
    f->started++;
    f->done = done;
    f->done_ud = done_ud;
    *h = f;
    return loop_after(f->lp, (uint64_t)f->answer_ms, fake_answer, f, &f->t);
}

static void fake_cancel(void *h)
{
    fake_t *f = h;
    f->cancelled++;
    loop_timer_cancel(f->t);
    f->t = NULL;
}

static const tools_remote_ops_t fake_ops = {fake_start, fake_cancel};

typedef struct got {
    char status[16], text[300];
    int n;
} got_t;

static void got_done(void *ud, const tools_result_t *r)
{
    got_t *g = ud;
    g->n++;
    snprintf(g->status, sizeof g->status, "%s", tcall_state_name(r->status));
    snprintf(g->text, sizeof g->text, "%s", r->result ? S(r->result) : r->error);
}

static void run_until(loop_t *lp, got_t *g)
{
    for (int i = 0; i < 100000 && !g->n; i++)
        event_base_loop(loop_base(lp), EVLOOP_ONCE);
}

static void test_remote_seam(void)
{
    loop_t *lp = loop_new();
    tools_t *tl = tools_new(lp, NULL, NULL);
    char err[300];
    CHECK_EQ_INT(tools_load_file(tl, "tools/calculator.lua", err, sizeof err), 0);
    fake_t f = {.lp = lp, .answer_ms = 1};
    json_object *params = J("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\","
                            "\"minimum\":1}},\"required\":[\"n\"]}");
    tools_remote_def_t d = {.name = "r_ping", .description = "ping", .params = params,
                            .origin = "mcp:r", .timeout_ms = 50, .ops = &fake_ops, .ud = &f};
    CHECK_EQ_INT(tools_add_remote(tl, &d, err, sizeof err), 0);
    d.name = "calculator";
    CHECK_EQ_INT(tools_add_remote(tl, &d, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "already defined by tools/calculator.lua") != NULL);
    d.name = "bad name!";
    CHECK_EQ_INT(tools_add_remote(tl, &d, err, sizeof err), ERR_INVAL);
    json_object_put(params);
    CHECK_EQ_STR(tool_path(tools_get(tl, "r_ping")), "mcp:r");

    got_t g = {0};
    CHECK_EQ_INT(tools_call(tl, "r_ping", "{\"n\":0}", NULL, got_done, &g, NULL), 0);
    run_until(lp, &g);
    CHECK_EQ_STR(g.status, "rejected");
    CHECK(strstr(g.text, "/n: must be >= 1") != NULL);
    CHECK_EQ_INT(f.started, 0);

    memset(&g, 0, sizeof g);
    CHECK_EQ_INT(tools_call(tl, "r_ping", "{\"n\":2}", NULL, got_done, &g, NULL), 0);
    run_until(lp, &g);
    CHECK_EQ_STR(g.status, "ok");
    CHECK_EQ_STR(g.text, "\"pong\"");

    memset(&g, 0, sizeof g);
    f.answer_ms = 5000;
    CHECK_EQ_INT(tools_call(tl, "r_ping", "{\"n\":2}", NULL, got_done, &g, NULL), 0);
    run_until(lp, &g);
    CHECK_EQ_STR(g.status, "timeout");
    CHECK_EQ_INT(f.cancelled, 1);

    memset(&g, 0, sizeof g);
    tools_call_t *c = NULL;
    CHECK_EQ_INT(tools_call(tl, "r_ping", "{\"n\":2}", NULL, got_done, &g, &c), 0);
    for (int i = 0; i < 5; i++)
        event_base_loop(loop_base(lp), EVLOOP_NONBLOCK);
    tools_call_cancel(c);
    CHECK_EQ_INT(f.cancelled, 2);
    for (int i = 0; i < 5; i++)
        event_base_loop(loop_base(lp), EVLOOP_NONBLOCK);
    CHECK_EQ_INT(g.n, 0);
    tools_free(tl);
    loop_free(lp);
}

int main(void)
{
    RUN(test_config);
    RUN(test_expand);
    RUN(test_result_to_tool);
    RUN(test_result_from_tool);
    RUN(test_server);
    RUN(test_remote_seam);
    return check_report();
}
