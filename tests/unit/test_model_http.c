/* The fault matrix through the real HTTP engine against the fake provider
 * (tests/helpers/fakellm.c, found beside this binary's directory): each injected fault is
 * retried with the expected class, 401 is not, the chain falls back, the breaker opens and
 * recovers, budgets stop before any request, and a recorded answer replays with the server
 * gone. Retry delays and timeouts are set small so the whole file runs in a few seconds. */
#include "check.h"
#include "testdb.h"
#include "err.h"
#include "http.h"
#include "loop.h"
#include "model.h"
#include "store.h"

#include <curl/curl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_fakellm[1024];
static loop_t *g_lp;
static http_t *g_http;

typedef struct fake {
    pid_t pid;
    int port;
    char base[64];
} fake_t;

/* Start fakellm with extra arguments (NULL-terminated); 0 on success. */
static int fake_start(fake_t *f, const char *const *args)
{
    int fd[2];
    if (pipe(fd))
        return -1;
    const char *argv[24] = {g_fakellm, "--port", "0"};
    int n = 3;
    for (int i = 0; args && args[i] && n < 23; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    f->pid = fork();
    if (f->pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execv(g_fakellm, (char *const *)argv);
        _exit(127);
    }
    close(fd[1]);
    char buf[64] = "";
    size_t got = 0;
    while (got < sizeof buf - 1) {
        ssize_t r = read(fd[0], buf + got, 1);
        if (r <= 0 || buf[got] == '\n')
            break;
        got++;
    }
    buf[got] = '\0';
    close(fd[0]);
    if (sscanf(buf, "PORT=%d", &f->port) != 1) {
        fprintf(stderr, "  fakellm did not start (%s): %s\n", g_fakellm, buf);
        return -1;
    }
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
    return 0;
}

static void fake_stop(fake_t *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
    }
    f->pid = 0;
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    size_t *len = ud, add = s * n;
    char *buf = (char *)(len + 1);
    if (*len + add < 1024) {
        memcpy(buf + *len, p, add);
        *len += add;
        buf[*len] = '\0';
    }
    return add;
}

/* Requests the fake provider has seen (blocking GET /stats; fine in a test). */
static long fake_requests(const fake_t *f)
{
    struct {
        size_t len;
        char buf[1024];
    } out = {0, ""};
    char url[128];
    snprintf(url, sizeof url, "%s/stats", f->base);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2000L);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_cleanup(e);
    json_object *j = rc == CURLE_OK ? json_tokener_parse(out.buf) : NULL, *v;
    long n = j && json_object_object_get_ex(j, "requests", &v) ? (long)json_object_get_int64(v)
                                                                 : -1;
    json_object_put(j);
    return n;
}

/* ---- calls ---- */

typedef struct got {
    int done, err, attempts, cached;
    char reason[64], errmsg[512], classes[256], content[512], provider[32], text[512];
    uint64_t delay0;
    int nreported;
    model_usage_t usage;
} got_t;

static void on_attempt(void *ud, const model_attempt_t *a)
{
    got_t *g = ud;
    size_t l = strlen(g->classes);
    snprintf(g->classes + l, sizeof g->classes - l, "%s%s", l ? "," : "",
             a->errclass[0] ? a->errclass : a->cached ? "cached" : "ok");
    if (g->nreported++ == 0)
        g->delay0 = a->delay_ms;
}

static void on_text(void *ud, const char *t, size_t n)
{
    got_t *g = ud;
    size_t l = strlen(g->text);
    if (l + n < sizeof g->text) {
        memcpy(g->text + l, t, n);
        g->text[l + n] = '\0';
    }
}

static void on_done(void *ud, const model_resp_t *r)
{
    got_t *g = ud;
    g->done++;
    g->err = r->err;
    g->attempts = r->attempts;
    g->cached = r->cached;
    g->usage = r->usage;
    snprintf(g->reason, sizeof g->reason, "%s", r->reason ? r->reason : "");
    snprintf(g->errmsg, sizeof g->errmsg, "%s", r->errmsg);
    snprintf(g->provider, sizeof g->provider, "%s", r->provider ? r->provider : "");
    json_object *c;
    if (r->message && json_object_object_get_ex(r->message, "content", &c) && c)
        snprintf(g->content, sizeof g->content, "%s", json_object_get_string(c));
    loop_stop(g_lp);
}

static void env_for(const fake_t *openai, const fake_t *anthropic)
{
    char url[128];
    snprintf(url, sizeof url, "%s/v1", openai->base);
    setenv("OPENAI_BASE_URL", url, 1);
    setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef", 1);
    setenv("ANTHROPIC_BASE_URL", anthropic ? anthropic->base : openai->base, 1);
    setenv("ANTHROPIC_API_KEY", "ant-test-key", 1);
}

static model_client_t *client(model_opts_t *o, store_t *st)
{
    model_opts_t d = {.capture_content = 1};
    if (!o)
        o = &d;
    if (!o->retry_base_ms)
        o->retry_base_ms = 5;
    if (!o->retry_cap_ms)
        o->retry_cap_ms = 20;
    if (!o->total_timeout_ms)
        o->total_timeout_ms = 400;
    char err[256];
    model_client_t *mc = model_client_new(g_lp, g_http, st, o, err, sizeof err);
    if (!mc)
        fprintf(stderr, "  model_client_new: %s\n", err);
    return mc;
}

static void call(model_client_t *mc, const char *const *chain, int stream, int64_t budget,
                 got_t *g)
{
    memset(g, 0, sizeof *g);
    json_object *msgs = json_tokener_parse(
        "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"Where is my order 1042?\"}]");
    model_req_t req = {
        .models = chain,
        .messages = msgs,
        .temperature = -1,
        .stream = stream,
        .on_text = on_text,
        .on_attempt = on_attempt,
        .ud = g,
        .budget_tokens = budget,
        .budget_cost_usd = -1,
    };
    CHECK_EQ_INT(model_call(mc, &req, on_done, NULL), 0);
    json_object_put(msgs);
    loop_run(g_lp);
    CHECK_EQ_INT(g->done, 1);
}

/* One fault on the first request, then a healthy answer. */
static void fault_once(const char *fault, int stream, const char *provider, const char *want)
{
    fake_t f;
    const char *args[] = {"--fail-first", "1", "--faults", fault, "--retry-after", "1", NULL};
    if (fake_start(&f, args)) {
        CHECK(0);
        return;
    }
    env_for(&f, NULL);
    model_client_t *mc = client(NULL, NULL);
    char model[64];
    snprintf(model, sizeof model, "%s:fake-model", provider);
    const char *const chain[] = {model, NULL};
    got_t g;
    call(mc, chain, stream, -1, &g);
    if (strcmp(g.classes, want) != 0 || g.err)
        fprintf(stderr, "  %s %s stream=%d: classes %s err %d %s\n", fault, provider, stream,
                g.classes, g.err, g.errmsg);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_STR(g.classes, want);
    CHECK_EQ_INT(g.attempts, 2);
    CHECK(strstr(g.content, "order 1042") != NULL);
    if (!strcmp(fault, "429"))
        CHECK(g.delay0 >= 1000); /* Retry-After: 1 honoured over a 20 ms backoff cap */
    else
        CHECK(g.delay0 <= 20);
    CHECK_EQ_INT(fake_requests(&f), 2);
    model_client_free(mc);
    fake_stop(&f);
}

static void test_fault_matrix(void)
{
    static const struct {
        const char *fault, *want;
    } m[] = {
        {"429", "rate_limited,ok"}, {"500", "server,ok"},        {"503", "server,ok"},
        {"stall", "timeout,ok"},    {"reset", "transport,ok"},   {"malformed", "malformed,ok"},
        {"truncated", "transport,ok"},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        for (int stream = 0; stream < 2; stream++) {
            fault_once(m[i].fault, stream, "openai", m[i].want);
            fault_once(m[i].fault, stream, "anthropic", m[i].want);
        }
}

static void test_stream_text_and_usage(void)
{
    fake_t f;
    if (fake_start(&f, NULL)) {
        CHECK(0);
        return;
    }
    env_for(&f, NULL);
    model_client_t *mc = client(NULL, NULL);
    const char *const chain[] = {"openai:gpt-4o-mini", NULL};
    got_t g;
    call(mc, chain, 1, -1, &g);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_STR(g.text, g.content);
    CHECK(g.usage.input_tokens > 0 && g.usage.output_tokens > 0);
    CHECK(g.usage.cost_usd > 0); /* priced from the shipped table */
    const char *const an[] = {"anthropic:claude-3-5-haiku-latest", NULL};
    call(mc, an, 1, -1, &g);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_STR(g.text, g.content);
    CHECK(g.usage.input_tokens > 0 && g.usage.output_tokens > 0);
    model_client_free(mc);
    fake_stop(&f);
}

static void test_401_not_retried(void)
{
    fake_t f;
    const char *args[] = {"--require-key", "the-right-key", NULL};
    if (fake_start(&f, args)) {
        CHECK(0);
        return;
    }
    env_for(&f, NULL);
    model_client_t *mc = client(NULL, NULL);
    const char *const chain[] = {"openai:gpt-4o-mini", NULL};
    got_t g;
    call(mc, chain, 0, -1, &g);
    CHECK_EQ_INT(g.err, ERR_HTTP);
    CHECK_EQ_STR(g.reason, "not_retryable");
    CHECK_EQ_STR(g.classes, "auth");
    CHECK(strstr(g.errmsg, "HTTP 401") && strstr(g.errmsg, "invalid API key"));
    CHECK(strstr(g.errmsg, "0123456789abcdef") == NULL);
    CHECK_EQ_INT(fake_requests(&f), 1);
    model_client_free(mc);
    fake_stop(&f);
}

static void test_fallback_and_breaker(void)
{
    fake_t bad, good;
    const char *always[] = {"--fault-rate", "1", "--faults", "500", NULL};
    const char *first2[] = {"--fail-first", "2", "--faults", "503", NULL};
    if (fake_start(&bad, always) || fake_start(&good, first2)) {
        CHECK(0);
        return;
    }
    env_for(&bad, &good);
    model_opts_t o = {.capture_content = 1, .max_attempts = 2, .breaker_threshold = 2,
                      .breaker_cooldown_ms = 300};
    model_client_t *mc = client(&o, NULL);
    /* The primary always fails: two attempts, then the fallback answers. */
    const char *const chain[] = {"openai:primary", "anthropic:fallback", NULL};
    got_t g;
    call(mc, chain, 0, -1, &g);
    /* The fallback's endpoint fails twice too (503) and its breaker opens as well; with no
     * other model the call ends with the last error. */
    CHECK_EQ_STR(g.classes, "server,server,server,server");
    CHECK_EQ_STR(g.reason, "retries_exhausted");
    CHECK_EQ_INT(g.attempts, 4);
    /* Both breakers are open now: no request leaves. */
    long before = fake_requests(&bad) + fake_requests(&good);
    const char *const withoff[] = {"openai:primary", "anthropic:fallback", "offline", NULL};
    call(mc, withoff, 0, -1, &g);
    CHECK_EQ_STR(g.classes, "circuit_open,circuit_open,ok");
    CHECK_EQ_STR(g.provider, "offline");
    CHECK_EQ_INT(fake_requests(&bad) + fake_requests(&good), before);
    /* After the cooldown one probe each: the primary's fails and reopens its breaker (so
     * its retry is skipped), the fallback's endpoint is healthy now and closes. */
    usleep(350 * 1000);
    call(mc, withoff, 0, -1, &g);
    CHECK_EQ_STR(g.classes, "server,circuit_open,ok");
    CHECK_EQ_STR(g.provider, "anthropic");
    call(mc, withoff, 0, -1, &g);
    CHECK_EQ_STR(g.classes, "circuit_open,ok");
    CHECK_EQ_STR(g.provider, "anthropic");
    model_client_free(mc);
    fake_stop(&bad);
    fake_stop(&good);
}

static void test_budget_before_request(void)
{
    fake_t f;
    if (fake_start(&f, NULL)) {
        CHECK(0);
        return;
    }
    env_for(&f, NULL);
    model_client_t *mc = client(NULL, NULL);
    const char *const chain[] = {"openai:gpt-4o-mini", NULL};
    got_t g;
    call(mc, chain, 0, 3, &g);
    CHECK_EQ_INT(g.err, ERR_BUDGET);
    CHECK_EQ_STR(g.reason, "budget_exceeded");
    CHECK_EQ_INT(fake_requests(&f), 0);
    call(mc, chain, 0, 100000, &g);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_INT(fake_requests(&f), 1);
    model_client_free(mc);
    fake_stop(&f);
}

static void test_record_replay(void)
{
    char db[1024];
    testdb_target("model-http", db, sizeof db);
    char err[256];
    store_t *st = store_open(db, STORE_DURABLE_NORMAL, err, sizeof err);
    CHECK(st != NULL);
    fake_t f;
    if (!st || fake_start(&f, NULL)) {
        CHECK(0);
        return;
    }
    env_for(&f, NULL);
    model_opts_t o = {.capture_content = 1, .cache_mode = "write"};
    model_client_t *mc = client(&o, st);
    const char *const chain[] = {"openai:gpt-4o-mini", NULL};
    got_t rec, rep;
    call(mc, chain, 1, -1, &rec);
    CHECK_EQ_INT(rec.err, 0);
    model_client_free(mc);
    fake_stop(&f); /* the provider is gone: replay must not need it */
    o = (model_opts_t){.capture_content = 1, .cache_mode = "replay", .max_attempts = 1};
    mc = client(&o, st);
    call(mc, chain, 1, -1, &rep);
    CHECK_EQ_INT(rep.err, 0);
    CHECK_EQ_INT(rep.cached, 1);
    CHECK_EQ_STR(rep.content, rec.content);
    CHECK_EQ_STR(rep.classes, "cached");
    model_client_free(mc);
    store_close(st);
    testdb_remove(db);
}

typedef struct many {
    int done, ok, attempts;
} many_t;

static void many_done(void *ud, const model_resp_t *r)
{
    many_t *m = ud;
    m->done++;
    m->ok += r->err == 0 && r->message != NULL;
    m->attempts += r->attempts;
    if (m->done == 400)
        loop_stop(g_lp);
}

/* 400 calls in flight at once on one loop, 30 % of requests failing: all complete. */
static void test_concurrent_under_faults(void)
{
    fake_t f;
    const char *args[] = {"--fault-rate", "0.3", "--seed", "3", "--retry-after", "0", "--faults",
                          "429,500,503,reset,malformed,truncated", NULL};
    if (fake_start(&f, args)) {
        CHECK(0);
        return;
    }
    env_for(&f, NULL);
    model_opts_t o = {.capture_content = 1, .max_attempts = 8, .breaker_threshold = 1000000,
                      .total_timeout_ms = 10000};
    model_client_t *mc = client(&o, NULL);
    json_object *msgs =
        json_tokener_parse("[{\"role\":\"user\",\"content\":\"Where is my order 1042?\"}]");
    const char *const chain[] = {"openai:gpt-4o-mini", NULL};
    many_t m = {0, 0, 0};
    model_req_t req = {.models = chain, .messages = msgs, .temperature = -1, .ud = &m,
                       .budget_tokens = -1, .budget_cost_usd = -1};
    uint64_t t0 = loop_mono_ns();
    for (int i = 0; i < 400; i++) {
        req.stream = i % 2;
        CHECK_EQ_INT(model_call(mc, &req, many_done, NULL), 0);
    }
    loop_run(g_lp);
    double ms = (double)(loop_mono_ns() - t0) / 1e6;
    printf("  400 concurrent calls: %d ok, %d attempts, %.0f ms\n", m.ok, m.attempts, ms);
    CHECK_EQ_INT(m.done, 400);
    CHECK_EQ_INT(m.ok, 400);
    CHECK(m.attempts > 400); /* faults were injected and retried */
    CHECK_EQ_INT(fake_requests(&f), m.attempts);
    json_object_put(msgs);
    model_client_free(mc);
    fake_stop(&f);
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[1024];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(g_fakellm, sizeof g_fakellm, "%s/../fakellm", dirname(self));
    if (access(g_fakellm, X_OK) != 0) {
        fprintf(stderr, "fakellm not found at %s (build it: make build-all)\n", g_fakellm);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    g_lp = loop_new();
    g_http = http_new(g_lp);
    RUN(test_fault_matrix);
    RUN(test_stream_text_and_usage);
    RUN(test_401_not_retried);
    RUN(test_fallback_and_breaker);
    RUN(test_budget_before_request);
    RUN(test_record_replay);
    RUN(test_concurrent_under_faults);
    http_free(g_http);
    loop_free(g_lp);
    http_global_cleanup();
    return check_report();
}
