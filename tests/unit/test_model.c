/* model_call policy with the built-in offline provider (no network): fallback past bad
 * entries, budgets checked before the call, cache record and replay, cancellation,
 * completion never inline. The HTTP fault matrix is in test_model_http.c. */
#include "check.h"
#include "testdb.h"
#include "err.h"
#include "loop.h"
#include "model.h"
#include "store.h"

#include <stdlib.h>
#include <unistd.h>

typedef struct got {
    int done;
    int err;
    char reason[64];
    char errmsg[512];
    char content[1024];
    char provider[32];
    int attempts, cached, reported;
    char classes[256]; /* errclass of each reported attempt, comma-separated */
    model_usage_t usage;
    loop_t *lp;
} got_t;

static void on_attempt(void *ud, const model_attempt_t *a)
{
    got_t *g = ud;
    size_t l = strlen(g->classes);
    snprintf(g->classes + l, sizeof g->classes - l, "%s%s", l ? "," : "",
             a->errclass[0] ? a->errclass : (a->cached ? "cached" : "ok"));
    g->reported++;
}

static void on_done(void *ud, const model_resp_t *r)
{
    got_t *g = ud;
    g->done++;
    g->err = r->err;
    snprintf(g->reason, sizeof g->reason, "%s", r->reason ? r->reason : "");
    snprintf(g->errmsg, sizeof g->errmsg, "%s", r->errmsg);
    json_object *c = NULL;
    if (r->message && json_object_object_get_ex(r->message, "content", &c) && c)
        snprintf(g->content, sizeof g->content, "%s", json_object_get_string(c));
    snprintf(g->provider, sizeof g->provider, "%s", r->provider ? r->provider : "");
    g->attempts = r->attempts;
    g->cached = r->cached;
    g->usage = r->usage;
    loop_stop(g->lp);
}

static json_object *convo(const char *text)
{
    json_object *m = json_object_new_array(), *u = json_object_new_object();
    json_object_object_add(u, "role", json_object_new_string("user"));
    json_object_object_add(u, "content", json_object_new_string(text));
    json_object_array_add(m, u);
    return m;
}

static void call(model_client_t *mc, loop_t *lp, const char *const *models, json_object *msgs,
                 int64_t budget_tokens, got_t *g)
{
    memset(g, 0, sizeof *g);
    g->lp = lp;
    model_req_t req = {
        .models = models,
        .messages = msgs,
        .temperature = -1,
        .on_attempt = on_attempt,
        .ud = g,
        .budget_tokens = budget_tokens,
        .budget_cost_usd = -1,
    };
    CHECK_EQ_INT(model_call(mc, &req, on_done, NULL), 0);
    CHECK_EQ_INT(g->done, 0); /* never inline */
    loop_run(lp);
    CHECK_EQ_INT(g->done, 1);
}

static void test_offline_and_fallback(void)
{
    loop_t *lp = loop_new();
    char err[256];
    unsetenv("ANTHROPIC_API_KEY");
    model_client_t *mc = model_client_new(lp, NULL, NULL, NULL, err, sizeof err);
    CHECK(mc != NULL);
    json_object *msgs = convo("Say hello.");
    got_t g;
    const char *const chain[] = {"nosuch:model", "anthropic:claude-x", "offline", NULL};
    call(mc, lp, chain, msgs, -1, &g);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_STR(g.provider, "offline");
    CHECK(g.content[0] != '\0');
    /* The bad entry and the key-less one are reported, then the answer. */
    CHECK_EQ_STR(g.classes, "client,auth,ok");
    CHECK_EQ_INT(g.attempts, 1);

    const char *const bad[] = {"nosuch:model", "gpt-4o", NULL};
    call(mc, lp, bad, msgs, -1, &g);
    CHECK_EQ_INT(g.err, ERR_INVAL);
    CHECK_EQ_STR(g.reason, "not_retryable");
    CHECK(strstr(g.errmsg, "gpt-4o") != NULL);
    json_object_put(msgs);
    model_client_free(mc);
    loop_free(lp);
}

static void test_budget_before_call(void)
{
    loop_t *lp = loop_new();
    char err[256];
    model_client_t *mc = model_client_new(lp, NULL, NULL, NULL, err, sizeof err);
    char text[4001];
    memset(text, 'a', 4000);
    text[4000] = '\0';
    json_object *msgs = convo(text); /* about 1,000 tokens */
    got_t g;
    const char *const chain[] = {"offline", NULL};
    call(mc, lp, chain, msgs, 100, &g);
    CHECK_EQ_INT(g.err, ERR_BUDGET);
    CHECK_EQ_STR(g.reason, "budget_exceeded");
    CHECK_EQ_INT(g.attempts, 0); /* stopped before any attempt */
    CHECK_EQ_INT(g.reported, 0);
    CHECK(strstr(g.errmsg, "token budget") != NULL);
    call(mc, lp, chain, msgs, 0, &g);
    CHECK_EQ_INT(g.err, ERR_BUDGET);
    call(mc, lp, chain, msgs, 5000, &g);
    CHECK_EQ_INT(g.err, 0);
    json_object_put(msgs);
    model_client_free(mc);
    loop_free(lp);
}

static void test_cache_replay(void)
{
    char db[1024];
    testdb_target("model-cache", db, sizeof db);
    char err[256];
    store_t *st = store_open(db, STORE_DURABLE_NORMAL, err, sizeof err);
    CHECK(st != NULL);
    loop_t *lp = loop_new();
    json_object *msgs = convo("Where is my order 1042?");
    const char *const chain[] = {"offline", NULL};
    got_t rec, rep;

    model_opts_t mo = {.cache_mode = "replay", .capture_content = 1};
    model_client_t *mc = model_client_new(lp, NULL, st, &mo, err, sizeof err);
    call(mc, lp, chain, msgs, -1, &rep);
    CHECK_EQ_INT(rep.err, ERR_NOTFOUND);
    CHECK_EQ_STR(rep.reason, "cache_miss");
    CHECK_EQ_STR(rep.classes, "cache_miss");
    model_client_free(mc);

    mo.cache_mode = "write";
    mc = model_client_new(lp, NULL, st, &mo, err, sizeof err);
    call(mc, lp, chain, msgs, -1, &rec);
    CHECK_EQ_INT(rec.err, 0);
    CHECK_EQ_INT(rec.cached, 0);
    model_client_free(mc);

    mo.cache_mode = "replay";
    mc = model_client_new(lp, NULL, st, &mo, err, sizeof err);
    call(mc, lp, chain, msgs, -1, &rep);
    CHECK_EQ_INT(rep.err, 0);
    CHECK_EQ_INT(rep.cached, 1);
    CHECK_EQ_INT(rep.attempts, 0);
    CHECK_EQ_STR(rep.content, rec.content);
    CHECK_EQ_STR(rep.classes, "cached");
    model_client_free(mc);

    mo.cache_mode = "bogus";
    CHECK(model_client_new(lp, NULL, st, &mo, err, sizeof err) == NULL);
    CHECK(strstr(err, "bogus") != NULL);

    json_object_put(msgs);
    loop_free(lp);
    store_close(st);
    testdb_remove(db);
}

static void never(void *ud, const model_resp_t *r)
{
    (void)r;
    ((got_t *)ud)->done++;
}

static void stop_soon(void *arg)
{
    loop_stop(arg);
}

static void test_cancel_and_free(void)
{
    loop_t *lp = loop_new();
    char err[256];
    model_client_t *mc = model_client_new(lp, NULL, NULL, NULL, err, sizeof err);
    json_object *msgs = convo("hello");
    const char *const chain[] = {"offline", NULL};
    got_t g;
    memset(&g, 0, sizeof g);
    model_req_t req = {.models = chain, .messages = msgs, .temperature = -1, .ud = &g,
                       .budget_tokens = -1, .budget_cost_usd = -1};
    model_call_t *c = NULL;
    CHECK_EQ_INT(model_call(mc, &req, never, &c), 0);
    model_call_cancel(c);
    /* A second call left running is stopped silently by model_client_free. */
    CHECK_EQ_INT(model_call(mc, &req, never, &c), 0);
    CHECK(loop_after(lp, 20, stop_soon, lp, NULL) == 0);
    model_client_free(mc);
    loop_run(lp);
    CHECK_EQ_INT(g.done, 0);
    json_object_put(msgs);
    loop_free(lp);
}

int main(void)
{
    RUN(test_offline_and_fallback);
    RUN(test_budget_before_call);
    RUN(test_cache_replay);
    RUN(test_cancel_and_free);
    return check_report();
}
