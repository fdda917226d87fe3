/*
 * Unit tests for tools.c + ctx*.c: parallel calls, the hostile-tool suite (each against a
 * concurrent well-behaved call), timeouts, retries, rejection, ctx doors, cancellation.
 */
#include "check.h"
#include "testdb.h"
#include "err.h"
#include "loop.h"
#include "store.h"
#include "tools.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX "tests/fixtures/tools"

typedef struct res {
    int done;
    char status[16];
    char error[1024];
    char result[4096];
    double ms;
    int attempts;
} res_t;

static loop_t *lp;
static tools_t *tl;
static store_t *st;
static char logbuf[4096];
static char dbpath[1024];

static void on_done(void *ud, const tools_result_t *r)
{
    res_t *x = ud;
    x->done++;
    snprintf(x->status, sizeof x->status, "%s", tcall_state_name(r->status));
    snprintf(x->error, sizeof x->error, "%s", r->error ? r->error : "");
    snprintf(x->result, sizeof x->result, "%s",
             r->result ? json_object_to_json_string_ext(r->result, JSON_C_TO_STRING_PLAIN)
                       : "null");
    x->ms = r->ms;
    x->attempts = r->attempts;
}

static int nlog_lines, saw_limit, saw_cut;
static size_t longest_log;

static void on_log(void *ud, const char *level, const char *msg)
{
    (void)ud;
    nlog_lines++;
    saw_limit |= strstr(msg, "log limit of 100 lines per call reached") != NULL;
    saw_cut |= strstr(msg, "x [...]") != NULL;
    if (strlen(msg) > longest_log)
        longest_log = strlen(msg);
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof logbuf - n, "%s:%s\n", level, msg);
}

static tools_policy_t policy;
static tools_call_info_t info = {
    .run_id = "run1", .call_id = "call1", .idempotency_key = "run1:call1", .policy = &policy,
    .on_log = on_log, .log_ud = NULL,
};

static void call(const char *name, const char *args, res_t *r)
{
    memset(r, 0, sizeof *r);
    tools_call_t *c = NULL;
    CHECK_EQ_INT(tools_call(tl, name, args, &info, on_done, r, &c), 0);
    CHECK(c != NULL);
}

static void run_one(const char *name, const char *args, res_t *r)
{
    call(name, args, r);
    loop_run(lp);
    CHECK_EQ_INT(r->done, 1);
}

static void setup(void)
{
    char err[512];
    lp = loop_new();
    testdb_target("tools", dbpath, sizeof dbpath);
    st = store_open(dbpath, STORE_DURABLE_NORMAL, err, sizeof err);
    if (!st)
        fprintf(stderr, "store_open: %s\n", err);
    tl = tools_new(lp, NULL, st);
    /* Small caps keep the hostile tests fast (and fast under ASan). */
    tools_set_limits(tl, 16u << 20, 20000000);
    int rc = tools_load_dir(tl, FIX "/good", err, sizeof err);
    if (rc)
        fprintf(stderr, "load good: %s\n", err);
    rc = tools_load_dir(tl, FIX "/hostile", err, sizeof err);
    if (rc)
        fprintf(stderr, "load hostile: %s\n", err);
    policy.agent = "test";
    policy.exec_allow = json_tokener_parse("[\"cat\",\"sleep\",\"yes\",\"sh\"]");
    policy.secrets_allow = json_tokener_parse("[\"AGENTD_TEST_TOKEN\"]");
    policy.http_allow = json_tokener_parse("[\"127.0.0.1\"]");
    setenv("AGENTD_TEST_TOKEN", "s3cr3t-value-123", 1);
}

static void teardown(void)
{
    tools_free(tl);
    store_close(st);
    loop_free(lp);
    json_object_put(policy.exec_allow);
    json_object_put(policy.secrets_allow);
    json_object_put(policy.http_allow);
    testdb_remove(dbpath);
    store_global_shutdown();
}

static void test_registry(void)
{
    CHECK(tools_count(tl) >= 20);
    const tool_t *s = tools_get(tl, "sleeper");
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ_INT(tool_timeout_ms(s), 5000);
    CHECK_EQ_INT(tool_idempotent(s), 1);
    CHECK_EQ_INT(tool_approval(s), 0);
    CHECK_EQ_INT(tool_retries(tools_get(tl, "flaky")), 3);
    char err[200];
    json_object *names = json_tokener_parse("[\"echo\",\"sleeper\"]");
    json_object *d = tools_describe(tl, names, err, sizeof err);
    CHECK(d && json_object_array_length(d) == 2);
    /* Lua {"value"} stays an array in the schema; {} in "required" would become []. */
    CHECK_EQ_STR(json_object_to_json_string_ext(json_object_array_get_idx(d, 0),
                                                JSON_C_TO_STRING_PLAIN),
                 "{\"name\":\"echo\",\"description\":\"Return the arguments unchanged "
                 "(round-trips JSON through Lua).\",\"parameters\":{\"required\":[\"value\"],"
                 "\"type\":\"object\"}}");
    json_object_put(d);
    json_object_put(names);
    names = json_tokener_parse("[\"nope\"]");
    CHECK(tools_describe(tl, names, err, sizeof err) == NULL);
    CHECK(strstr(err, "nope") != NULL);
    json_object_put(names);
}

static void test_parallel_sleep(void)
{
    res_t r[8];
    uint64_t t0 = loop_mono_ns();
    for (int i = 0; i < 8; i++)
        call("sleeper", "{\"ms\":100}", &r[i]);
    loop_run(lp);
    double ms = (double)(loop_mono_ns() - t0) / 1e6;
    printf("  8 parallel calls of a 100 ms sleeping tool: %.1f ms\n", ms);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ_STR(r[i].status, "ok");
        CHECK(strstr(r[i].result, "slept_ms") != NULL);
    }
    CHECK(ms >= 95 && ms < 400);
}

static void test_thousand_parallel(void)
{
    /* Many runs share one loop: 1000 concurrent calls, each its own Lua state. */
    enum { N = 1000 };
    res_t *r = calloc(N, sizeof *r);
    uint64_t t0 = loop_mono_ns();
    for (int i = 0; i < N; i++)
        CHECK_EQ_INT(tools_call(tl, "sleeper", "{\"ms\":100}", &info, on_done, &r[i], NULL), 0);
    loop_run(lp);
    double ms = (double)(loop_mono_ns() - t0) / 1e6;
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += r[i].done == 1 && strcmp(r[i].status, "ok") == 0;
    printf("  %d concurrent calls of a 100 ms sleeping tool: %.1f ms\n", N, ms);
    CHECK_EQ_INT(ok, N);
    CHECK(ms < 3000);
    free(r);
}

typedef struct hostile {
    const char *tool, *status, *needle;
} hostile_t;

static void test_hostile_suite(void)
{
    static const hostile_t cases[] = {
        {"spin", "error", "CPU budget of 20000000 instructions exhausted"},
        {"membomb", "error", "memory limit of 16777216 bytes"},
        {"repbomb", "error", "string.rep: result of 10000000000 bytes is over the memory limit"},
        {"io_access", "error", "global 'io'"},
        {"os_access", "error", "field 'execute'"},
        {"bytecode", "error", "attempt to load a binary chunk"},
        {"sort_yield", "error", "ctx.sleep cannot wait here"},
        {"co_door", "error", "not from inside a coroutine the tool created"},
        {"raw_yield", "error", "yielded without a ctx door"},
        {"err_table", "error", "error object is a table: {\"code\":42,\"why\":\"bad\"}"},
        {"err_nil", "error", "error called with nil"},
        {"err_fn", "error", "error object is a function"},
        {"ret_function", "error", "result.f: a function cannot become JSON"},
        {"ret_cycle", "error", "result.a.back: table contains itself"},
        {"ret_nan", "error", "result.x[2]: NaN cannot become JSON"},
        {"ret_coroutine", "error", "result: a thread cannot become JSON"},
        {"gc_spin", "error", "__gc finalizers are not available"},
        {"collect_stop", "error", "option 'stop' is not available"},
        /* the Lua stack lives in the capped heap, so the cap fires before "stack overflow" */
        {"recursion", "error", "memory limit of 16777216 bytes"},
        {"huge_error", "error", "line line line"},
        {"pattern_bomb", "error", "CPU budget of 20000000 instructions exhausted"},
        {"big_result", "error", "result is 2000011 bytes of JSON, over the 1024 KiB limit"},
        {"dag_bomb", "error", "too large to become JSON (more than 200000 values)"},
        {"string_dag", "error", "too large to become JSON (more than 64 MiB of strings)"},
        /* C loops the count hook never sees (sandbox_lib.c) */
        {"rep_empty", "ok", "0"},
        {"rep_maxint", "ok", "0"},
        {"rep_args", "ok", "0"},
        {"move_bomb", "error", "CPU budget of 20000000 instructions exhausted"},
        {"concat_bomb", "error", "CPU budget of 20000000 instructions exhausted"},
        {"insert_bomb", "error", "CPU budget of 20000000 instructions exhausted"},
        {"remove_bomb", "error", "CPU budget of 20000000 instructions exhausted"},
        {"sort_bomb", "error", "memory limit of 16777216 bytes"}, /* the copy it sorts */
        {"format_width", "error", "invalid conversion"},
        /* Lua code run where hooks are off, or by metamethods */
        {"xpcall_spin", "error", "CPU budget of 20000000 instructions exhausted"},
        {"xpcall_stop", "error", "CPU budget of 20000000 instructions exhausted"},
        {"close_spin", "error", "CPU budget of 20000000 instructions exhausted"},
        {"close_dead", "error", "CPU budget of 20000000 instructions exhausted"},
        {"tostring_spin", "error", "CPU budget of 20000000 instructions exhausted"},
        {"gc_late", "ok", "no finalizer ran"},
        {"marker_gc", "ok", "no finalizer ran"},
        {"co_spin", "error", "CPU budget of 20000000 instructions exhausted"},
        {"collect_loop", "error", "CPU budget of 20000000 instructions exhausted"},
        {"concat_loop", "error", "CPU budget of 20000000 instructions exhausted"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        res_t bad, good;
        call(cases[i].tool, "{}", &bad);
        call("sleeper", "{\"ms\":100}", &good);
        loop_run(lp);
        const char *text = strcmp(cases[i].status, "ok") == 0 ? bad.result : bad.error;
        /* concat_loop spends its time in C copies: under ASan on a loaded machine the wall
         * timeout (3 s) can stop it before the CPU budget does; either stop bounds it. */
        int slow_stop = !strcmp(cases[i].tool, "concat_loop") && !strcmp(bad.status, "timeout");
        int ok = bad.done == 1 &&
                 (slow_stop || (strcmp(bad.status, cases[i].status) == 0 &&
                                strstr(text, cases[i].needle) != NULL)) &&
                 good.done == 1 &&
                 strcmp(good.status, "ok") == 0 && strchr(bad.error, '\n') == NULL;
        if (!ok)
            fprintf(stderr, "  hostile %s: status=%s error=%s | good=%s %s\n", cases[i].tool,
                    bad.status, bad.error, good.status, good.error);
        else
            printf("  %-14s -> %s (%.1f ms) | concurrent sleeper ok in %.1f ms\n",
                   cases[i].tool, bad.error, bad.ms, good.ms);
        CHECK(ok);
        /* The well-behaved call is not starved: Lua code is preempted every slice; what
         * cannot be preempted (C work bounded by the caps: freeing a 16 MiB state, a
         * pattern or a table loop bounded by the CPU budget) stays well under a second even
         * under ASan. */
        CHECK(good.ms < 1500);
    }
}

/* Timers keep their promises while tools compute: a 100 ms sleep next to four CPU-bound
 * tools finishes within 150 ms, and those tools' 1 s timeouts fire within 1.1 s. Best of
 * three rounds, so a machine busy with other work does not make the test flaky; the old
 * loop (slices resumed from the same pass) measured ~1,000 ms every time. */
static void test_fairness(void)
{
    double best_nap = 1e9, best_worst = 1e9;
    tools_set_limits(tl, 16u << 20, 4000000000u);
    for (int round = 0; round < 3 && (best_nap >= 150 || best_worst >= 1100); round++) {
        res_t burn[4], nap;
        for (int i = 0; i < 4; i++)
            call("burn", "{}", &burn[i]);
        call("sleeper", "{\"ms\":100}", &nap);
        loop_run(lp);
        double worst = 0;
        for (int i = 0; i < 4; i++) {
            CHECK_EQ_STR(burn[i].status, "timeout");
            if (burn[i].ms > worst)
                worst = burn[i].ms;
        }
        CHECK_EQ_STR(nap.status, "ok");
        printf("  100 ms sleep next to 4 CPU-bound tools: %.1f ms; their 1 s timeouts fired "
               "after %.1f ms at the latest\n",
               nap.ms, worst);
        if (nap.ms < best_nap)
            best_nap = nap.ms;
        if (worst < best_worst)
            best_worst = worst;
    }
    CHECK(best_nap >= 99 && best_nap < 150);
    CHECK(best_worst >= 999 && best_worst < 1100);
    tools_set_limits(tl, 16u << 20, 20000000);
}

static void test_state_memory(void)
{
    res_t r;
    run_one("memprobe", "{}", &r);
    CHECK_EQ_STR(r.status, "ok");
    json_object *j = json_tokener_parse(r.result);
    json_object *b = NULL;
    CHECK(j && json_object_object_get_ex(j, "bytes", &b));
    long bytes = b ? (long)json_object_get_int64(b) : 0;
    printf("  Lua state of one tool call (sandbox + ctx + tool file loaded): %ld bytes (%.1f "
           "KiB); call took %.2f ms\n",
           bytes, (double)bytes / 1024, r.ms);
    CHECK(bytes > 8192 && bytes < 512 * 1024);
    json_object_put(j);
}

/* A reused Lua state keeps none of an earlier call: the leaky tool leaves globals, changed
 * and deleted library fields, metatables, a kept ctx and a reseeded math.random behind,
 * and every later call (of another run too) must find nothing of it. The pool's counter
 * proves the later calls really ran in a reused state; after a stop (CPU budget), a
 * cancellation, a refused allocation or a call that left a big heap, the state is not
 * reused. */
static size_t reused_now(const char *tool)
{
    size_t idle = 0, reused = 0;
    tool_state_stats(tools_get(tl, tool), &idle, &reused);
    return reused;
}

static void iso_cancel_cb(void *arg)
{
    tools_call_cancel(arg);
}

static long leaky_random(const char *result)
{
    const char *p = strstr(result, "\"random\":");
    return p ? strtol(p + 9, NULL, 10) : -1;
}

static void test_isolation(void)
{
    res_t r;
    char args[128];
    long random[4];
    size_t r0 = reused_now("leaky");
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args, "{\"mark\":\"secret-of-call-%d\"}", i);
        tools_call_info_t other = info;
        other.run_id = i % 2 ? "run-other" : "run1";
        memset(&r, 0, sizeof r);
        CHECK_EQ_INT(tools_call(tl, "leaky", args, &other, on_done, &r, NULL), 0);
        loop_run(lp);
        CHECK_EQ_STR(r.status, "ok");
        CHECK(strstr(r.result, "\"seen\":[]") != NULL);
        if (!strstr(r.result, "\"seen\":[]"))
            fprintf(stderr, "  call %d found: %s\n", i, r.result);
        random[i] = leaky_random(r.result);
    }
    size_t reused = reused_now("leaky") - r0;
    printf("  leaky tool, 4 calls in a row: %zu ran in a reused state, none found anything\n",
           reused);
    CHECK(reused >= 3);
    /* Each call seeds math.random anew: after math.randomseed(42) the next calls differ. */
    CHECK(random[1] != random[2] || random[2] != random[3]);

    /* A stop frees the state: the next call gets a new one and finds nothing. */
    run_one("leaky", "{\"mark\":\"spin\",\"spin\":true}", &r);
    CHECK_EQ_STR(r.status, "error");
    CHECK(strstr(r.error, "CPU budget") != NULL);
    size_t before = reused_now("leaky");
    size_t idle = 0, dummy = 0;
    tool_state_stats(tools_get(tl, "leaky"), &idle, &dummy);
    run_one("leaky", "{}", &r);
    CHECK(strstr(r.result, "\"seen\":[]") != NULL);
    if (!strstr(r.result, "\"seen\":[]"))
        fprintf(stderr, "  found: %s %s %s\n", r.status, r.result, r.error);
    /* Reused only if an idle state was left over from before the spin. */
    CHECK(reused_now("leaky") - before == (idle > 0));

    /* A cancelled call's state is freed, not pooled. */
    tool_state_stats(tools_get(tl, "leaky"), &idle, &dummy);
    tools_call_t *c = NULL;
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(tools_call(tl, "leaky", "{\"mark\":\"cancelled\",\"wait\":true}", &info,
                            on_done, &r, &c), 0);
    CHECK(loop_after(lp, 50, iso_cancel_cb, c, NULL) == 0);
    loop_run(lp);
    CHECK_EQ_INT(r.done, 0);
    size_t idle2 = 0;
    tool_state_stats(tools_get(tl, "leaky"), &idle2, &dummy);
    CHECK(idle2 + 1 == idle || (idle == 0 && idle2 == 0));
    run_one("leaky", "{}", &r);
    CHECK(strstr(r.result, "\"seen\":[]") != NULL);
    if (!strstr(r.result, "\"seen\":[]"))
        fprintf(stderr, "  found: %s %s %s\n", r.status, r.result, r.error);

    /* An allocation the cap refused, caught by the tool's own pcall: not reused either. */
    tool_state_stats(tools_get(tl, "leaky"), &idle, &dummy);
    run_one("leaky", "{\"mark\":\"oom\",\"oom\":true}", &r);
    CHECK_EQ_STR(r.status, "ok");
    tool_state_stats(tools_get(tl, "leaky"), &idle2, &dummy);
    CHECK(idle2 + 1 == idle || (idle == 0 && idle2 == 0));
    run_one("leaky", "{}", &r);
    CHECK(strstr(r.result, "\"seen\":[]") != NULL);

    /* A call that leaves megabytes behind: its state is freed rather than collected. */
    run_one("leaky", "{\"mark\":\"big\",\"big\":true}", &r);
    CHECK_EQ_STR(r.status, "ok");
    tool_state_stats(tools_get(tl, "leaky"), &idle2, &dummy);
    before = reused_now("leaky");
    run_one("leaky", "{}", &r);
    CHECK(strstr(r.result, "\"seen\":[]") != NULL);
    if (!strstr(r.result, "\"seen\":[]"))
        fprintf(stderr, "  found: %s %s %s\n", r.status, r.result, r.error);
    CHECK(reused_now("leaky") - before == (idle2 > 0));

    /* The memory cap counts the same bytes in a reused state as in a new one. */
    res_t a, b;
    size_t r1 = reused_now("memprobe");
    run_one("memprobe", "{}", &a);
    run_one("memprobe", "{}", &b);
    CHECK(reused_now("memprobe") > r1);
    long ba, bb;
    const char *p = strstr(a.result, "\"bytes\":"), *q = strstr(b.result, "\"bytes\":");
    ba = p ? strtol(p + 8, NULL, 10) : 0;
    bb = q ? strtol(q + 8, NULL, 10) : 0;
    printf("  memprobe: %ld bytes in one call, %ld in the next (reused state)\n", ba, bb);
    CHECK(ba > 0 && bb > 0 && labs(bb - ba) <= 4096);
    /* An idle state is back at its recorded size: the libraries, the tool's chunk, the
     * snapshot; nothing of the calls. */
    size_t n_idle = 0;
    tool_state_stats(tools_get(tl, "memprobe"), &n_idle, &r1);
    size_t idle_bytes = tool_state_idle_bytes(tools_get(tl, "memprobe"));
    printf("  idle pooled state of memprobe: %zu bytes\n", n_idle ? idle_bytes / n_idle : 0);
    CHECK(n_idle > 0 && idle_bytes / n_idle > 8192 && idle_bytes / n_idle < (size_t)ba);
}

/* Past its own pool (AGENTD_TOOL_STATE_POOL=1 here), a tool keeps idle states only while all
 * tools together keep fewer extra ones than may be live (AGENTD_MAX_TOOL_STATES=3): 8
 * parallel calls of two tools leave at most 1 + 1 + 3 idle states, and the next burst
 * reuses them instead of making new ones. */
static void test_pool_shared_cap(void)
{
    setenv("AGENTD_MAX_TOOL_STATES", "3", 1);
    setenv("AGENTD_TOOL_STATE_POOL", "1", 1);
    tools_t *t = tools_new(lp, NULL, NULL);
    unsetenv("AGENTD_MAX_TOOL_STATES");
    unsetenv("AGENTD_TOOL_STATE_POOL");
    char err[300];
    CHECK_EQ_INT(tools_load_file(t, FIX "/good/sleeper.lua", err, sizeof err), 0);
    CHECK_EQ_INT(tools_load_file(t, FIX "/good/echo.lua", err, sizeof err), 0);
    size_t idle_s = 0, idle_e = 0, reused_s = 0, reused_e = 0;
    for (int burst = 0; burst < 2; burst++) {
        res_t r[8];
        memset(r, 0, sizeof r);
        for (int i = 0; i < 8; i++)
            CHECK_EQ_INT(tools_call(t, i % 2 ? "echo" : "sleeper",
                                    i % 2 ? "{\"value\":1}" : "{\"ms\":20}", &info, on_done,
                                    &r[i], NULL),
                         0);
        loop_run(lp);
        int ok = 0;
        for (int i = 0; i < 8; i++)
            ok += r[i].done == 1 && strcmp(r[i].status, "ok") == 0;
        CHECK_EQ_INT(ok, 8);
        tool_state_stats(tools_get(t, "sleeper"), &idle_s, &reused_s);
        tool_state_stats(tools_get(t, "echo"), &idle_e, &reused_e);
        CHECK(idle_s + idle_e <= 5 && idle_s >= 1 && idle_e >= 1);
    }
    printf("  two tools, 1 idle each + 3 shared: %zu idle after two bursts of 8, %zu attempts "
           "reused a state\n", idle_s + idle_e, reused_s + reused_e);
    CHECK(reused_s + reused_e >= 8);
    tools_free(t);
}

static void test_pcall_yield_ok(void)
{
    res_t r;
    run_one("pcall_sleep", "{}", &r);
    CHECK_EQ_STR(r.status, "ok");
    CHECK_EQ_STR(r.result, "{\"err\":\"inner\",\"first\":true,\"second\":false}");
}

static void test_timeout(void)
{
    res_t r, good;
    call("slow", "{}", &r);
    call("sleeper", "{\"ms\":50}", &good);
    loop_run(lp);
    CHECK_EQ_STR(r.status, "timeout");
    CHECK(strstr(r.error, "timed out after 0.2 s") != NULL);
    CHECK(r.ms >= 190 && r.ms < 1000);
    CHECK_EQ_STR(good.status, "ok");
}

static void test_retries(void)
{
    res_t r;
    run_one("flaky", "{}", &r);
    CHECK_EQ_STR(r.status, "ok");
    CHECK_EQ_INT(r.attempts, 3);
    CHECK_EQ_STR(r.result, "{\"attempts\":3}");
}

static void test_json_roundtrip(void)
{
    res_t r;
    run_one("echo", "{\"value\":[1,2.5,\"x\",null,{},[],true,-0.1,9007199254740993],\"z\":null}",
            &r);
    CHECK_EQ_STR(r.status, "ok");
    CHECK_EQ_STR(r.result,
                 "{\"value\":[1,2.5,\"x\",null,{},[],true,-0.1,9007199254740993],\"z\":null}");
}

static void test_rejected(void)
{
    res_t r;
    run_one("echo", "{}", &r);
    CHECK_EQ_STR(r.status, "rejected");
    CHECK(strstr(r.error, "value") != NULL);
    run_one("echo", "{\"value\":1} trailing", &r);
    CHECK_EQ_STR(r.status, "rejected");
    CHECK(strstr(r.error, "not valid JSON") != NULL);
    run_one("echo", "[1]", &r);
    CHECK_EQ_STR(r.status, "rejected");
    CHECK(strstr(r.error, "must be a JSON object") != NULL);
    run_one("no_such_tool", "{}", &r);
    CHECK_EQ_STR(r.status, "rejected");
    CHECK(strstr(r.error, "unknown tool") != NULL);
}

static void test_exec(void)
{
    res_t a, b, c, d, e;
    call("shell", "{\"argv\":[\"cat\"],\"stdin\":\"hello\"}", &a);
    call("shell", "{\"argv\":[\"sleep\",\"5\"],\"timeout\":0.2}", &b);
    call("shell", "{\"argv\":[\"yes\"],\"max_output\":1000}", &c);
    call("shell", "{\"argv\":[\"ls\"]}", &d);
    call("shell", "{\"argv\":[\"sh\",\"-c\",\"echo $AGENTD_TEST_TOKEN; exit 3\"]}", &e);
    /* A child that closes its stdin unread: EPIPE for us, not a SIGPIPE that kills agentd. */
    res_t f;
    static char big[300000];
    memset(big, 'x', sizeof big - 1);
    char *fargs = malloc(sizeof big + 64);
    snprintf(fargs, sizeof big + 64,
             "{\"argv\":[\"sh\",\"-c\",\"exec 0<&-; sleep 0.2\"],\"stdin\":\"%s\"}", big);
    call("shell", fargs, &f);
    free(fargs);
    uint64_t t0 = loop_mono_ns();
    loop_run(lp);
    double ms = (double)(loop_mono_ns() - t0) / 1e6;
    CHECK_EQ_STR(a.status, "ok");
    CHECK(strstr(a.result, "\"stdout\":\"hello\"") && strstr(a.result, "\"code\":0"));
    CHECK(strstr(b.result, "\"timed_out\":true") && strstr(b.result, "\"signal\":9"));
    CHECK(strstr(c.result, "\"truncated\":true"));
    CHECK_EQ_STR(d.status, "error");
    CHECK(strstr(d.error, "'ls' is not in this agent's exec_allow list") != NULL);
    /* The child does not inherit the parent's environment (secrets). */
    CHECK(strstr(e.result, "\"code\":3") && strstr(e.result, "\"stdout\":\"\\n\""));
    CHECK_EQ_STR(f.status, "ok");
    CHECK(strstr(f.result, "\"code\":0") != NULL);
    CHECK(ms < 2000);
}

static void test_secrets(void)
{
    res_t r;
    logbuf[0] = '\0';
    run_one("secrets", "{}", &r);
    CHECK_EQ_STR(r.status, "ok");
    CHECK(strstr(r.result, "s3cr3t") == NULL);
    CHECK(strstr(r.result, "[REDACTED]") != NULL);
    CHECK(strstr(r.result, "\"len\":16") != NULL);
    CHECK(strstr(logbuf, "warn:token is [REDACTED]") != NULL);
    CHECK(strstr(logbuf, "info:printed\t[REDACTED]") != NULL);
    CHECK(strstr(logbuf, "s3cr3t") == NULL);
    run_one("secrets", "{\"mode\":\"error\"}", &r);
    CHECK_EQ_STR(r.status, "error");
    CHECK(strstr(r.error, "failed with [REDACTED]") != NULL);
    /* Keys as well as values (issue 18): object keys, nested keys, keys in arrays, two keys
     * that redact to the same text, keys of a table raised as the error. */
    run_one("secrets", "{\"mode\":\"keys\"}", &r);
    CHECK_EQ_STR(r.status, "ok");
    CHECK(strstr(r.result, "s3cr3t") == NULL);
    CHECK(strstr(r.result, "\"nested\":{\"list\":[{\"in_[REDACTED]\":true}],\"[REDACTED]\":{"
                           "\"[REDACTED]_x\":\"v\"}}") != NULL);
    CHECK(strstr(r.result, "\"key_[REDACTED]\":1") && strstr(r.result, "\"[REDACTED]!\":2"));
    CHECK(strstr(r.result, "\"[REDACTED]\":3") && strstr(r.result, "\"[REDACTED] #2\":4"));
    run_one("secrets", "{\"mode\":\"error_keys\"}", &r);
    CHECK_EQ_STR(r.status, "error");
    CHECK(strstr(r.error, "s3cr3t") == NULL);
    CHECK(strstr(r.error, "[REDACTED]") != NULL);
    json_object *saved = policy.secrets_allow;
    policy.secrets_allow = NULL;
    run_one("secrets", "{}", &r);
    policy.secrets_allow = saved;
    CHECK(strstr(r.error, "'AGENTD_TEST_TOKEN' is not in this agent's secrets allow-list"));
}

static void test_log_limits(void)
{
    res_t r;
    nlog_lines = 0;
    longest_log = 0;
    logbuf[0] = '\0';
    run_one("log_flood", "{}", &r);
    CHECK_EQ_STR(r.status, "ok");
    CHECK_EQ_INT(nlog_lines, 101);
    CHECK(longest_log <= 2006);
    CHECK(saw_limit);
    CHECK(saw_cut);
}

static void test_data(void)
{
    res_t r;
    run_one("data_reader", "{\"file\":\"orders.json\"}", &r);
    CHECK_EQ_STR(r.result,
                 "{\"data\":{\"empty\":[],\"orders\":[{\"id\":\"1042\",\"status\":\"shipped\"}]}}");
    run_one("data_reader", "{\"file\":\"note.txt\"}", &r);
    CHECK_EQ_STR(r.result, "{\"data\":\"hello\\n\"}");
    run_one("data_reader", "{\"file\":\"../good/echo.lua\"}", &r);
    CHECK(strstr(r.error, "not a plain relative name") != NULL);
    run_one("data_reader", "{\"file\":\"/etc/passwd\"}", &r);
    CHECK(strstr(r.error, "not a plain relative name") != NULL);
    run_one("data_reader", "{\"file\":\"missing.json\"}", &r);
    CHECK(strstr(r.error, "no file 'missing.json'") != NULL);
}

static void test_kv(void)
{
    res_t r;
    run_one("kv_ops", "{}", &r);
    CHECK_EQ_STR(r.status, "ok");
    CHECK_EQ_STR(r.result, "{\"after\":[\"user:b\"],\"again\":false,\"deleted\":true,\"got\":"
                           "{\"n\":2,\"tags\":[]},\"keys\":[\"user:a\",\"user:b\"],"
                           "\"missing\":true}");
    /* Another agent has its own namespace. */
    policy.agent = "other_agent";
    run_one("kv_ops", "{}", &r);
    policy.agent = "test";
    CHECK(strstr(r.result, "\"again\":false") != NULL);
    CHECK(strstr(r.result, "\"keys\":[\"user:a\",\"user:b\"]") != NULL);
}

static int fired;
static void cancel_cb(void *arg)
{
    tools_call_cancel(arg);
    fired = 1;
}

static void test_cancel(void)
{
    res_t a, b;
    tools_call_t *ca = NULL, *cb = NULL;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    CHECK_EQ_INT(tools_call(tl, "slow", "{}", &info, on_done, &a, &ca), 0);
    CHECK_EQ_INT(tools_call(tl, "shell", "{\"argv\":[\"sleep\",\"5\"]}", &info, on_done, &b, &cb),
                 0);
    CHECK(loop_after(lp, 50, cancel_cb, ca, NULL) == 0);
    CHECK(loop_after(lp, 50, cancel_cb, cb, NULL) == 0);
    uint64_t t0 = loop_mono_ns();
    loop_run(lp);
    CHECK(fired);
    CHECK_EQ_INT(a.done, 0);
    CHECK_EQ_INT(b.done, 0);
    CHECK((loop_mono_ns() - t0) / 1000000 < 1000);
    /* Cancelling before the first step ran also works. */
    CHECK_EQ_INT(tools_call(tl, "sleeper", "{}", &info, on_done, &a, &ca), 0);
    tools_call_cancel(ca);
    loop_run(lp);
    CHECK_EQ_INT(a.done, 0);
}

static void test_bad_files(void)
{
    static const struct {
        const char *file, *needle;
    } cases[] = {
        {"no_description.lua", "no_description.lua: description: missing"},
        {"bad_params.lua", "bad_params.lua: parameters.type: must be \"object\""},
        {"typo_field.lua", "typo_field.lua: timout: unknown field"},
        {"retries_not_idem.lua", "retries_not_idem.lua: retries: only idempotent tools"},
        {"syntax.lua", "syntax.lua:1:"},
        {"not_table.lua", "not_table.lua: must return a table"},
        {"no_run.lua", "no_run.lua: run: missing"},
        {"bad_timeout.lua", "bad_timeout.lua: timeout: must be seconds"},
        {"bad_schema.lua", "bad_schema.lua: parameters: schema #/properties/n: \"minimum\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[300], err[600] = "";
        snprintf(path, sizeof path, FIX "/bad/%s", cases[i].file);
        tools_t *t = tools_new(lp, NULL, NULL);
        int rc = tools_load_file(t, path, err, sizeof err);
        if (rc == 0 || !strstr(err, cases[i].needle))
            fprintf(stderr, "  %s: rc=%d err=%s\n", cases[i].file, rc, err);
        CHECK(rc != 0 && strstr(err, cases[i].needle) != NULL);
        CHECK(strchr(err, '\n') == NULL);
        tools_free(t);
    }
}

static void test_memory_torture(void)
{
    /* Every memory cap from too small to enough: each call ends ok or with the memory-limit
     * error, never a crash or a leak (ASan), whichever allocation the cap hits first
     * (state creation, loading the file, pushing arguments, building ctx, the result). */
    char err[300];
    int oks = 0, caps = 0;
    for (size_t cap = 8 * 1024; cap <= 96 * 1024; cap += 1024) {
        tools_t *t = tools_new(lp, NULL, NULL);
        tools_set_limits(t, cap, 0);
        CHECK_EQ_INT(tools_load_file(t, FIX "/good/echo.lua", err, sizeof err), 0);
        res_t r;
        memset(&r, 0, sizeof r);
        const char *args = "{\"value\":{\"a\":[1,2,3,\"xxxxxxxxxxxxxxxxxxxxxxxx\"]}}";
        CHECK_EQ_INT(tools_call(t, "echo", args, &info, on_done, &r, NULL), 0);
        loop_run(lp);
        CHECK_EQ_INT(r.done, 1);
        if (strcmp(r.status, "ok") == 0)
            oks++;
        else if (strstr(r.error, "memory limit") || strstr(r.error, "not enough memory") ||
                 strstr(r.error, "out of memory"))
            caps++;
        else
            fprintf(stderr, "  cap %zu: %s %s\n", cap, r.status, r.error);
        tools_free(t);
    }
    printf("  memory caps 8..96 KiB: %d calls ok, %d stopped by the cap\n", oks, caps);
    CHECK(oks > 0 && caps > 0 && oks + caps == 89);
}

int main(void)
{
    setup();
    RUN(test_registry);
    RUN(test_parallel_sleep);
    RUN(test_thousand_parallel);
    RUN(test_hostile_suite);
    RUN(test_fairness);
    RUN(test_state_memory);
    RUN(test_isolation);
    RUN(test_pool_shared_cap);
    RUN(test_pcall_yield_ok);
    RUN(test_timeout);
    RUN(test_retries);
    RUN(test_json_roundtrip);
    RUN(test_rejected);
    RUN(test_exec);
    RUN(test_secrets);
    RUN(test_log_limits);
    RUN(test_data);
    RUN(test_kv);
    RUN(test_cancel);
    RUN(test_bad_files);
    RUN(test_memory_torture);
    teardown();
    return check_report();
}
