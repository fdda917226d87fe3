/*
 * test_eval: the eval module's pure parts — each assertion kind against run views, the
 * variants, the judge's reply, the gate against a baseline, percentiles, durations — and
 * the prompt templates (render, missing variables, bad syntax, --var), and eval files that
 * load or fail with a message naming the case.
 */
#include "check.h"
#include "testdb.h"

#include "err.h"
#include "eval/eval.h"
#include "eval/eval_int.h"
#include "eval/stats.h"
#include "jx.h"
#include "prompt/prompt.h"
#include "store.h"

#include <stdlib.h>
#include <unistd.h>

static json_object *view(void)
{
    return json_tokener_parse(
        "{\"answer\": \"Order 1042 is in transit with UPS, ETA 2026-12-01.\", \"state\": \"done\","
        " \"steps\": 2, \"latency_ms\": 40, \"cost_usd\": 0.002, \"input\": \"where is 1042\","
        " \"tool_calls\": [{\"name\": \"lookup_order\", \"args\": {\"order_id\": \"1042\","
        " \"verbose\": true}, \"state\": \"ok\"}, {\"name\": \"search_kb\", \"args\":"
        " {\"query\": \"late\"}, \"state\": \"ok\"}]}");
}

/* pass of assertion (JSON text) on the standard view; -1 when eval_check errs. */
static int run(const char *assertion, const char *expected, char *reason, size_t rlen)
{
    json_object *a = json_tokener_parse(assertion), *v = view();
    int pass = -1;
    double score;
    int rc = eval_check(a, v, expected, &pass, &score, reason, rlen);
    json_object_put(a);
    json_object_put(v);
    return rc ? -1 : pass;
}

static void test_output_checks(void)
{
    char r[300];
    CHECK_EQ_INT(run("{\"kind\":\"contains\",\"value\":\"UPS\"}", NULL, r, sizeof r), 1);
    CHECK_EQ_INT(run("{\"kind\":\"contains\",\"value\":\"ups\"}", NULL, r, sizeof r), 0);
    CHECK(strstr(r, "not in the output"));
    CHECK_EQ_INT(
        run("{\"kind\":\"contains\",\"value\":\"ups\",\"ignore_case\":true}", NULL, r, sizeof r),
        1);
    CHECK_EQ_INT(run("{\"kind\":\"not_contains\",\"value\":\"FedEx\"}", NULL, r, sizeof r), 1);
    CHECK_EQ_INT(run("{\"kind\":\"not_contains\",\"value\":\"UPS\"}", NULL, r, sizeof r), 0);
    CHECK_EQ_INT(
        run("{\"kind\":\"regex\",\"pattern\":\"ETA [0-9]{4}-[0-9]{2}\"}", NULL, r, sizeof r), 1);
    CHECK_EQ_INT(run("{\"kind\":\"regex\",\"pattern\":\"^ETA\"}", NULL, r, sizeof r), 0);
    CHECK_EQ_INT(run("{\"kind\":\"regex\",\"pattern\":\"(\"}", NULL, r, sizeof r), -1);
    CHECK(strstr(r, "regex /(/"));
    CHECK_EQ_INT(run("{\"kind\":\"equals\",\"value\":\"Order 1042 is in transit with UPS, ETA "
                     "2026-12-01.\"}",
                     NULL, r, sizeof r),
                 1);
    CHECK_EQ_INT(run("{\"kind\":\"equals\",\"value\":\"Order 1042\"}", NULL, r, sizeof r), 0);
    CHECK_EQ_INT(
        run("{\"kind\":\"json_schema\",\"schema\":{\"type\":\"object\"}}", NULL, r, sizeof r), 0);
    CHECK(strstr(r, "not JSON"));
}

static void test_json_schema_on_json_output(void)
{
    json_object *a = json_tokener_parse(
        "{\"kind\":\"json_schema\",\"schema\":{\"type\":\"object\",\"required\":[\"status\"],"
        "\"properties\":{\"status\":{\"enum\":[\"ok\",\"late\"]}}}}");
    json_object *v = json_tokener_parse("{\"answer\": \"{\\\"status\\\": \\\"late\\\"}\"}");
    json_object *bad = json_tokener_parse("{\"answer\": \"{\\\"status\\\": \\\"lost\\\"}\"}");
    int pass = -1;
    double score;
    char r[300];
    CHECK_EQ_INT(eval_check(a, v, NULL, &pass, &score, r, sizeof r), 0);
    CHECK_EQ_INT(pass, 1);
    CHECK_EQ_INT(eval_check(a, bad, NULL, &pass, &score, r, sizeof r), 0);
    CHECK_EQ_INT(pass, 0);
    CHECK(strstr(r, "/status"));
    json_object_put(a);
    json_object_put(v);
    json_object_put(bad);
}

static void test_trajectory_checks(void)
{
    char r[300];
    CHECK_EQ_INT(run("{\"kind\":\"tool_called\",\"name\":\"lookup_order\"}", NULL, r, sizeof r), 1);
    CHECK_EQ_INT(run("{\"kind\":\"tool_called\",\"name\":\"lookup_order\",\"args\":"
                     "{\"order_id\":\"1042\"}}",
                     NULL, r, sizeof r),
                 1);
    CHECK_EQ_INT(run("{\"kind\":\"tool_called\",\"name\":\"lookup_order\",\"args\":"
                     "{\"order_id\":\"1043\"}}",
                     NULL, r, sizeof r),
                 0);
    CHECK(strstr(r, "never with these arguments"));
    CHECK_EQ_INT(run("{\"kind\":\"tool_called\",\"name\":\"create_ticket\"}", NULL, r, sizeof r),
                 0);
    CHECK(strstr(r, "never called"));
    CHECK_EQ_INT(
        run("{\"kind\":\"tool_not_called\",\"name\":\"create_ticket\"}", NULL, r, sizeof r), 1);
    CHECK_EQ_INT(run("{\"kind\":\"tool_not_called\",\"name\":\"search_kb\"}", NULL, r, sizeof r),
                 0);
    CHECK_EQ_INT(run("{\"kind\":\"tool_order\",\"names\":[\"lookup_order\",\"search_kb\"]}", NULL,
                     r, sizeof r),
                 1);
    CHECK_EQ_INT(run("{\"kind\":\"tool_order\",\"names\":[\"search_kb\",\"lookup_order\"]}", NULL,
                     r, sizeof r),
                 0);
}

static void test_limit_checks(void)
{
    char r[300];
    CHECK_EQ_INT(run("{\"kind\":\"max_steps\",\"value\":2}", NULL, r, sizeof r), 1);
    CHECK_EQ_INT(run("{\"kind\":\"max_steps\",\"value\":1}", NULL, r, sizeof r), 0);
    CHECK_EQ_INT(run("{\"kind\":\"max_cost\",\"value\":0.01}", NULL, r, sizeof r), 1);
    CHECK_EQ_INT(run("{\"kind\":\"max_cost\",\"value\":0.001}", NULL, r, sizeof r), 0);
    CHECK_EQ_INT(run("{\"kind\":\"max_latency_ms\",\"value\":100}", NULL, r, sizeof r), 1);
    CHECK_EQ_INT(run("{\"kind\":\"max_latency_ms\",\"value\":10}", NULL, r, sizeof r), 0);
    CHECK_EQ_INT(run("{\"kind\":\"final_state\",\"value\":\"done\"}", NULL, r, sizeof r), 1);
    CHECK_EQ_INT(run("{\"kind\":\"final_state\",\"value\":\"failed\"}", NULL, r, sizeof r), 0);
}

static void test_similarity(void)
{
    char r[300];
    CHECK_EQ_INT(run("{\"kind\":\"similar\",\"threshold\":0.5}",
                     "Order 1042 is in transit with UPS, ETA 2026-12-01.", r, sizeof r),
                 1);
    CHECK_EQ_INT(run("{\"kind\":\"similar\",\"threshold\":0.5}",
                     "Our return policy allows returns within thirty days.", r, sizeof r),
                 0);
    CHECK_EQ_INT(run("{\"kind\":\"similar\",\"threshold\":0.5}", NULL, r, sizeof r), -1);
    CHECK(strstr(r, "expected"));
}

static void test_variants(void)
{
    char *t = eval_variant("What is your return policy?", "typos");
    CHECK(t && strcmp(t, "What is your return policy?") != 0);
    CHECK_EQ_INT((long long)strlen(t), (long long)strlen("What is your return policy?"));
    char *t2 = eval_variant("What is your return policy?", "typos");
    CHECK_EQ_STR(t, t2); /* deterministic */
    char *n = eval_variant("Where is order 1042?", "typos");
    CHECK(strstr(n, "1042")); /* numbers are left alone */
    char *c = eval_variant("Where is order 1042?", "casing");
    CHECK_EQ_STR(c, "WHERE IS ORDER 1042?");
    char *w = eval_variant("a b", "whitespace");
    CHECK_EQ_STR(w, "\n a  b \t\n");
    free(t);
    free(t2);
    free(n);
    free(c);
    free(w);
}

static void test_judge_reply(void)
{
    int pass = -1;
    char r[300];
    CHECK_EQ_INT(
        eval_judge_parse("{\"pass\": true, \"reason\": \"gives the id\"}", &pass, r, sizeof r), 0);
    CHECK_EQ_INT(pass, 1);
    CHECK(strstr(r, "gives the id"));
    CHECK_EQ_INT(eval_judge_parse("yes it passes", &pass, r, sizeof r), ERR_PROTO);
    CHECK_EQ_INT(eval_judge_parse("{\"ok\": true}", &pass, r, sizeof r), ERR_PROTO);
    json_object *schema = eval_judge_schema(), *msgs = eval_judge_messages("R", "I", "O");
    CHECK(schema && json_object_array_length(msgs) == 2);
    json_object_put(schema);
    json_object_put(msgs);
}

static json_object *results(double rate, int case_pass, double cost, double p95)
{
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"eval_id\": \"ev-x\", \"variants\": [{\"name\": \"support@offline\", \"summary\":"
             " {\"pass_rate\": %g, \"cost_per_case_usd\": %g, \"p95_latency_ms\": %g}, \"cases\":"
             " [{\"id\": \"a\", \"pass\": %s, \"attempts\": [{\"pass\": %s, \"reason\": \"contains"
             " \\\"UPS\\\": not in the output\"}]}, {\"id\": \"b\", \"pass\": true, \"attempts\":"
             " []}]}]}",
             rate, cost, p95, case_pass ? "true" : "false", case_pass ? "true" : "false");
    return json_tokener_parse(buf);
}

static void test_gate(void)
{
    json_object *gate = json_tokener_parse(
        "{\"min_pass_rate\": 1, \"max_pass_rate_drop\": 0, \"max_cost_increase\": 0.25,"
        " \"max_latency_increase\": 0.5, \"latency_floor_ms\": 250}");
    json_object *base = results(1.0, 1, 0.01, 1000), *same = results(1.0, 1, 0.011, 1100);
    json_object *worse = results(0.5, 0, 0.02, 3000);
    FILE *f = tmpfile();
    CHECK_EQ_INT(eval_gate(same, base, gate, f), 0);
    CHECK_EQ_INT(eval_gate(same, NULL, gate, f), 0);
    /* pass rate, case a, cost, latency */
    CHECK_EQ_INT(eval_gate(worse, base, gate, f), 4);
    CHECK_EQ_INT(eval_gate(worse, NULL, gate, f), 1);
    rewind(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    CHECK(strstr(text, "REGRESSION case a: pass -> FAIL: contains \"UPS\": not in the output"));
    CHECK(strstr(text, "pass rate 100.0% -> 50.0%"));
    CHECK(strstr(text, "failed    a:"));
    fclose(f);
    json_object_put(gate);
    json_object_put(base);
    json_object_put(same);
    json_object_put(worse);
}

static void test_percentile_and_duration(void)
{
    double v[] = {5, 1, 4, 2, 3, 10, 9, 8, 7, 6};
    CHECK(stats_percentile(v, 10, 50) == 5);
    CHECK(stats_percentile(v, 10, 95) == 10);
    CHECK(stats_percentile(v, 0, 50) == 0);
    CHECK(stats_parse_duration("24h") == 24ll * 3600 * 1000000000ll);
    CHECK(stats_parse_duration("90s") == 90ll * 1000000000ll);
    CHECK(stats_parse_duration("1.5m") == 90ll * 1000000000ll);
    CHECK(stats_parse_duration("x") < 0);
    CHECK(stats_parse_duration("10y") < 0);
}

static void test_prompt_render(void)
{
    char *out = NULL, err[300];
    json_object *vars = json_tokener_parse("{\"name\": \"Ava\"}"),
                *defs = json_tokener_parse("{\"store\": \"Acme\", \"name\": \"x\"}");
    CHECK_EQ_INT(prompt_render("Hi {{ name }} of {{store}}.", vars, defs, &out, err, sizeof err),
                 0);
    CHECK_EQ_STR(out, "Hi Ava of Acme.");
    free(out);
    out = NULL;
    CHECK_EQ_INT(prompt_render("{{a}} {{b}} {{a}}", NULL, NULL, &out, err, sizeof err), ERR_INVAL);
    CHECK(!out);
    CHECK(strstr(err, "{{a}}, {{b}}") && !strstr(err, "{{a}}, {{b}}, {{a}}"));
    CHECK_EQ_INT(prompt_render("line\n{{ oops", NULL, NULL, &out, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "line 2"));
    CHECK_EQ_INT(prompt_render("{{a b}}", NULL, NULL, &out, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "not a variable"));
    CHECK_EQ_INT(prompt_render("no vars", NULL, NULL, &out, err, sizeof err), 0);
    CHECK_EQ_STR(out, "no vars");
    free(out);
    json_object *o = json_object_new_object();
    CHECK_EQ_INT(prompt_var_arg(o, "tier=gold=1", err, sizeof err), 0);
    CHECK_EQ_STR(json_object_get_string(json_object_object_get(o, "tier")), "gold=1");
    CHECK_EQ_INT(prompt_var_arg(o, "novalue", err, sizeof err), ERR_INVAL);
    CHECK_EQ_INT(prompt_var_arg(o, "bad name=x", err, sizeof err), ERR_INVAL);
    char h1[17], h2[17];
    prompt_hash("abc", h1);
    prompt_hash("abd", h2);
    CHECK(strlen(h1) == 16 && strcmp(h1, h2));
    json_object_put(o);
    json_object_put(vars);
    json_object_put(defs);
}

static const char *write_tmp(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "/tmp/test_eval_%d_%s", (int)getpid(), name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_eval_files(void)
{
    char err[1024];
    const char *p =
        write_tmp("ok.eval.lua",
                  "return { agent = 'a.lua', cases = {\n"
                  " { id = 'one', input = 'Where is order 1042?', assert = { contains('UPS'),\n"
                  "   function(out, run) return #out > 0, 1, 'non-empty' end },\n"
                  "   variants = { 'typos', 'casing', paraphrases = { 'Status of 1042?' } } },\n"
                  " { input = 'hi', expected = 'hello there' } } }\n");
    eval_t *e = eval_load(p, err, sizeof err);
    CHECK(e);
    if (e) {
        CHECK_EQ_INT((long long)eval_case_count(e), 5); /* one + 3 variants + case-5 */
        CHECK_EQ_STR(e->cases[1].id, "one~typos");
        CHECK_EQ_STR(e->cases[3].family, "paraphrase");
        CHECK_EQ_INT((long long)e->cases[0].nasserts, 2);
        CHECK(e->cases[0].asserts[1].fn_ref != EVAL_NOREF);
        /* the custom function runs in the eval's sandbox */
        json_object *v = view();
        int pass = 0;
        double score = 0;
        char r[300];
        CHECK_EQ_INT(eval_check_lua(e, &e->cases[0].asserts[1], v, &pass, &score, r, sizeof r), 0);
        CHECK_EQ_INT(pass, 1);
        CHECK_EQ_STR(r, "non-empty");
        json_object_put(v);
        CHECK_EQ_STR(jx_str_or(e->cases[4].asserts[0].spec, "kind", ""), "similar");
        eval_free(e);
    }
    unlink(p);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"return { cases = {} }", "agent: required"},
        {"return { agent = 'a', cases = { { input = '' } } }", "input: a non-empty string"},
        {"return { agent = 'a', cases = { { input = 'x', assert = { contains(3) } } } }",
         "contains needs value"},
        {"return { agent = 'a', cases = { { input = 'x', assert = { { kind = 'nope' } } } } }",
         "unknown assertion kind \"nope\""},
        {"return { agent = 'a', cases = { { input = 'x', assert = { regex('(') } } } }",
         "regex /(/"},
        {"return { agent = 'a', cases = { { id = 'd', input = 'x', assert = { contains('a') } },"
         " { id = 'd', input = 'y', assert = { contains('a') } } } }",
         "used by another case"},
        {"return { agent = 'a', cases = { { input = 'x' } } }", "give assert"},
        {"return { agent = 'a', cases = { { input = 'x', assert = { contains('a') },"
         " variants = { 'shouting' } } } }",
         "\"shouting\" is not a variant"},
        {"return { agent = 'a', gate = { max_fun = 1 }, cases = {} }", "gate.max_fun"},
    };
    /* JSONL cases beside a Lua config; errors name the file and line */
    char jl[256], cfg[512];
    snprintf(jl, sizeof jl, "%s",
             write_tmp("cases.jsonl",
                       "{\"id\": \"j1\", \"input\": \"x\", \"assert\": [{\"kind\": \"contains\", "
                       "\"value\": \"a\"}],"
                       " \"variants\": [\"casing\"], \"paraphrases\": [\"y\"]}\n\n"
                       "{\"id\": \"j2\", \"input\": \"z\", \"expected\": \"zz\"}\n"));
    snprintf(cfg, sizeof cfg, "return { agent = 'a.lua', cases_file = '%s' }", jl);
    char evp[256];
    snprintf(evp, sizeof evp, "%s", write_tmp("jl.eval.lua", cfg));
    p = evp;
    e = eval_load(p, err, sizeof err);
    CHECK(e && eval_case_count(e) == 4);
    if (e)
        CHECK_EQ_STR(e->cases[2].id, "j1~p1");
    eval_free(e);
    write_tmp("cases.jsonl",
              "{\"id\": \"j1\", \"input\": \"x\", \"expected\": \"y\"}\n{\"id\": \"j2\",}\n");
    e = eval_load(p, err, sizeof err);
    CHECK(!e && strstr(err, "cases.jsonl:2: invalid JSON"));
    unlink(p);
    unlink(jl);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = write_tmp("bad.eval.lua", bad[i].text);
        e = eval_load(p, err, sizeof err);
        CHECK(!e);
        if (!strstr(err, bad[i].want))
            fprintf(stderr, "  bad[%zu]: got \"%s\", want \"%s\"\n", i, err, bad[i].want);
        CHECK(strstr(err, bad[i].want));
        eval_free(e);
        unlink(p);
    }
}

/* A run of agent with state, reason, latency (ms), tokens, cost; its model calls (latency,
 * attempts, cached) as chat span ends; its tool calls (name, state) as rows; a label. */
static void add_run(store_t *st, int i, const char *agent, const char *state, const char *reason,
                    int ms, const double *chat_ms, const int *attempts, const int *cached,
                    int nchat, const char *const *tools, const char *const *tstates, int ntools)
{
    store_run_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "run%02d", i);
    snprintf(r.agent, sizeof r.agent, "%s", agent);
    snprintf(r.agent_path, sizeof r.agent_path, "agents/%s.lua", agent);
    snprintf(r.model, sizeof r.model, "offline");
    snprintf(r.answered_by, sizeof r.answered_by, "%s", i % 2 ? "openai:m" : "offline");
    snprintf(r.state, sizeof r.state, "%s", state);
    snprintf(r.reason, sizeof r.reason, "%s", reason);
    r.created_ns = 1000000000ll * (1000 + i);
    r.ended_ns = r.created_ns + (int64_t)ms * 1000000;
    r.updated_ns = r.ended_ns;
    r.input_tokens = 100;
    r.output_tokens = 10;
    r.cost_usd = 0.001;
    CHECK_EQ_INT(store_tx_begin(st), 0);
    CHECK_EQ_INT(store_run_insert(st, &r), 0);
    for (int k = 0; k < nchat; k++) {
        char ev[300];
        snprintf(ev, sizeof ev,
                 "{\"op\":\"chat\",\"phase\":\"end\",\"attrs\":{\"agentd.latency_ms\":%g,"
                 "\"agentd.attempts\":%d%s}}",
                 chat_ms[k], attempts[k], cached[k] ? ",\"agentd.cached\":true" : "");
        CHECK_EQ_INT(store_event_add(st, r.id, k + 1, ev), 0);
    }
    for (int k = 0; k < ntools; k++) {
        store_toolcall_t tc;
        memset(&tc, 0, sizeof tc);
        snprintf(tc.run_id, sizeof tc.run_id, "%s", r.id);
        snprintf(tc.call_id, sizeof tc.call_id, "call_1_%d", k + 1);
        snprintf(tc.name, sizeof tc.name, "%s", tools[k]);
        snprintf(tc.state, sizeof tc.state, "%s", tstates[k]);
        tc.args = "{}";
        tc.started_ns = r.created_ns;
        tc.ended_ns = r.created_ns + 5000000;
        CHECK_EQ_INT(store_toolcall_put(st, &tc), 0);
    }
    CHECK_EQ_INT(store_label_put(st, r.id, "eval", i < 3 ? "ev-a" : "ev-b"), 0);
    CHECK_EQ_INT(store_tx_commit(st), 0);
}

static int count_id(void *ud, const char *id, const char *path)
{
    (void)id;
    (void)path;
    (*(int *)ud)++;
    return 0;
}

static void test_stats_over_a_store(void)
{
    char path[1024], err[512];
    testdb_target("eval-stats", path, sizeof path);
    store_t *st = store_open(path, STORE_DURABLE_NORMAL, err, sizeof err);
    CHECK(st);
    if (!st)
        return;
    static const double ms2[] = {10, 30};
    static const int att2[] = {1, 3}, cache2[] = {0, 1};
    static const char *const t2[] = {"lookup_order", "search_kb"};
    static const char *const ok2[] = {"ok", "error"};
    static const char *const okok[] = {"ok", "ok"};
    /* 10 runs: 8 done, 1 failed (max_steps), 1 cancelled; latency 100..1000 ms */
    for (int i = 0; i < 10; i++)
        add_run(st, i, i < 7 ? "support" : "other",
                i == 3   ? "failed"
                : i == 4 ? "cancelled"
                         : "done",
                i == 3   ? "max_steps"
                : i == 4 ? "cancelled"
                         : "",
                100 * (i + 1), ms2, att2, cache2, 2, t2, i == 0 ? ok2 : okok, 2);
    json_object *out = NULL;
    stats_query_t q = {0};
    CHECK_EQ_INT(stats_collect(st, &q, &out, err, sizeof err), 0);
    json_object *g = json_object_array_get_idx(jx_get(out, "groups"), 0);
    double v;
    CHECK(!stats_figure(g, "runs", &v) && v == 10);
    CHECK(!stats_figure(g, "error_rate", &v) && v == 0.1); /* the cancel is not an error */
    CHECK(!jx_get(jx_get(g, "errors_by_reason"), "cancelled"));
    CHECK_EQ_INT(jx_int(jx_get(g, "errors_by_reason"), "max_steps", 0), 1);
    CHECK(!stats_figure(g, "p50_latency_ms", &v) && v == 500);
    CHECK(!stats_figure(g, "p95_latency_ms", &v) && v == 1000);
    CHECK(!stats_figure(g, "p95_model_latency_ms", &v) && v == 30);
    CHECK(!stats_figure(g, "cache_hit_rate", &v) && v == 0.5);
    CHECK(!stats_figure(g, "retry_rate", &v) && v == 0.5);
    CHECK(!stats_figure(g, "tool_error_rate", &v) && v == 0.05);
    CHECK(!stats_figure(g, "tokens_per_run", &v) && v == 110);
    CHECK(stats_figure(g, "joy", &v) == ERR_NOTFOUND);
    json_object *tools = jx_get(g, "tools");
    CHECK_EQ_INT(jx_int(jx_get(tools, "search_kb"), "errors", -1), 1);
    CHECK_EQ_INT(jx_int(jx_get(tools, "lookup_order"), "calls", -1), 10);
    json_object_put(out);
    /* by agent, by model, by tool, an agent filter, a window */
    q.by = "agent";
    CHECK_EQ_INT(stats_collect(st, &q, &out, err, sizeof err), 0);
    CHECK_EQ_INT((long long)json_object_array_length(jx_get(out, "groups")), 2);
    json_object_put(out);
    q.by = "model";
    CHECK_EQ_INT(stats_collect(st, &q, &out, err, sizeof err), 0);
    json_object *m0 = json_object_array_get_idx(jx_get(out, "groups"), 0);
    CHECK_EQ_STR(jx_str(m0, "key"), "offline");
    CHECK_EQ_INT(jx_int(m0, "runs", 0), 5);
    json_object_put(out);
    q.by = "tool";
    CHECK_EQ_INT(stats_collect(st, &q, &out, err, sizeof err), 0);
    json_object *t0 = json_object_array_get_idx(jx_get(out, "groups"), 1);
    CHECK_EQ_STR(jx_str(t0, "key"), "search_kb");
    CHECK_EQ_INT(jx_int(t0, "runs", 0), 10);
    CHECK_EQ_INT(jx_int(t0, "tool_calls", 0), 10);
    json_object_put(out);
    q.by = "weather";
    CHECK_EQ_INT(stats_collect(st, &q, &out, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "--by weather"));
    q.by = NULL;
    q.agent = "other";
    q.since_ns = 1000000000ll * 1008;
    CHECK_EQ_INT(stats_collect(st, &q, &out, err, sizeof err), 0);
    CHECK_EQ_INT(jx_int(json_object_array_get_idx(jx_get(out, "groups"), 0), "runs", 0), 2);
    json_object_put(out);
    /* labels: found by value, gone with their run */
    int n = 0;
    CHECK_EQ_INT(store_runs_labelled(st, "eval", "ev-a", count_id, &n), 0);
    CHECK_EQ_INT(n, 3);
    int deleted = 0;
    CHECK_EQ_INT(store_gc(st, 0, -1, NULL, NULL, &deleted), 0);
    CHECK_EQ_INT(deleted, 10);
    n = 0;
    CHECK_EQ_INT(store_runs_labelled(st, "eval", "ev-b", count_id, &n), 0);
    CHECK_EQ_INT(n, 0);
    store_close(st);
    testdb_remove(path);
}

int main(void)
{
    RUN(test_output_checks);
    RUN(test_json_schema_on_json_output);
    RUN(test_trajectory_checks);
    RUN(test_limit_checks);
    RUN(test_similarity);
    RUN(test_variants);
    RUN(test_judge_reply);
    RUN(test_gate);
    RUN(test_percentile_and_duration);
    RUN(test_prompt_render);
    RUN(test_eval_files);
    RUN(test_stats_over_a_store);
    return check_report();
}
