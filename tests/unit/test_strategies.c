/* Strategies' storage and trace model (docs/strategies.md): plans by version, the links of
 * sub-agent runs (one child per call), and a span tree fed a run's events and its child's,
 * each run with its own seqs, the child's root nested under the parent's call. */
#include "check.h"
#include "testdb.h"
#include "err.h"
#include "spantree.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dbpath[1024];

static store_t *fresh(void)
{
    if (dbpath[0])
        testdb_remove(dbpath);
    testdb_target("strategies", dbpath, sizeof dbpath);
    char err[256];
    store_t *st = store_open(dbpath, STORE_DURABLE_NORMAL, err, sizeof err);
    if (!st)
        fprintf(stderr, "open: %s\n", err);
    return st;
}

static void test_plans_by_version(void)
{
    store_t *st = fresh();
    CHECK(st != NULL);
    if (!st)
        return;
    int v = -1;
    char *json = NULL;
    CHECK_EQ_INT(store_plan_latest(st, "r1", &v, &json), ERR_NOTFOUND);
    CHECK(json == NULL && v == -1); /* out-parameters untouched on failure */
    CHECK_EQ_INT(store_tx_begin(st), 0);
    CHECK_EQ_INT(store_plan_put(st, "r1", 1, "{\"version\":1,\"status\":\"active\"}"), 0);
    CHECK_EQ_INT(store_plan_put(st, "r1", 1, "{\"version\":1,\"status\":\"failed\"}"), 0);
    CHECK_EQ_INT(store_plan_put(st, "r1", 2, "{\"version\":2,\"status\":\"active\"}"), 0);
    CHECK_EQ_INT(store_plan_put(st, "r2", 1, "{\"version\":1,\"status\":\"done\"}"), 0);
    CHECK_EQ_INT(store_tx_commit(st), 0);
    CHECK_EQ_INT(store_plan_latest(st, "r1", &v, &json), 0);
    CHECK_EQ_INT(v, 2);
    CHECK_EQ_STR(json, "{\"version\":2,\"status\":\"active\"}");
    free(json);
    /* A rolled-back unit leaves the plan as it was. */
    CHECK_EQ_INT(store_tx_begin(st), 0);
    CHECK_EQ_INT(store_sp_begin(st), 0);
    CHECK_EQ_INT(store_plan_put(st, "r1", 3, "{}"), 0);
    store_sp_rollback(st);
    CHECK_EQ_INT(store_tx_commit(st), 0);
    CHECK_EQ_INT(store_plan_latest(st, "r1", &v, &json), 0);
    CHECK_EQ_INT(v, 2);
    free(json);
    store_close(st);
}

typedef struct kids {
    char ids[4][40];
    int n;
} kids_t;

static int each_kid(void *ud, const char *run_id, const char *agent_path)
{
    (void)agent_path;
    kids_t *k = ud;
    if (k->n < 4)
        snprintf(k->ids[k->n++], 40, "%s", run_id);
    return 0;
}

static void test_subrun_links(void)
{
    store_t *st = fresh();
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK_EQ_INT(store_tx_begin(st), 0);
    CHECK_EQ_INT(store_subrun_add(st, "c1", "p", "call_1_1", "{\"max_tokens\":100}"), 0);
    CHECK_EQ_INT(store_subrun_add(st, "c2", "p", "call_2_1", NULL), 0);
    /* One child per call: a second start of the same call is refused. */
    CHECK_EQ_INT(store_subrun_add(st, "c3", "p", "call_1_1", NULL), ERR_STATE);
    CHECK_EQ_INT(store_tx_commit(st), 0);
    char child[40] = "", parent[40] = "", call[64] = "", *limits = NULL;
    CHECK_EQ_INT(store_subrun_find(st, "p", "call_2_1", child), 0);
    CHECK_EQ_STR(child, "c2");
    CHECK_EQ_INT(store_subrun_find(st, "p", "call_9_1", child), ERR_NOTFOUND);
    CHECK_EQ_INT(store_subrun_parent(st, "c1", parent, call, &limits), 0);
    CHECK_EQ_STR(parent, "p");
    CHECK_EQ_STR(call, "call_1_1");
    CHECK_EQ_STR(limits, "{\"max_tokens\":100}");
    free(limits);
    limits = NULL;
    CHECK_EQ_INT(store_subrun_parent(st, "c2", NULL, NULL, &limits), 0);
    CHECK(limits == NULL);
    CHECK_EQ_INT(store_subrun_parent(st, "p", parent, call, NULL), ERR_NOTFOUND);
    kids_t k = {0};
    CHECK_EQ_INT(store_subruns_each(st, "p", each_kid, &k), 0);
    CHECK_EQ_INT(k.n, 2);
    store_close(st);
}

/* One event line of run `run`. */
static void add(spantree_t *m, const char *run, int seq, long ts, const char *span,
                const char *parent, const char *phase, const char *op, const char *extra)
{
    char line[600], err[200];
    snprintf(line, sizeof line,
             "{\"run_id\":\"%s\",\"seq\":%d,\"ts_ns\":%ld,\"span_id\":\"%s\"%s%s%s,"
             "\"phase\":\"%s\",\"op\":\"%s\",\"name\":\"%s %s\"%s}",
             run, seq, ts, span, parent ? ",\"parent_id\":\"" : "", parent ? parent : "",
             parent ? "\"" : "", phase, op, op, span, extra ? extra : "");
    int rc = spantree_add(m, line, err, sizeof err);
    if (rc)
        fprintf(stderr, "  spantree_add: %s\n", err);
    CHECK_EQ_INT(rc, 0);
}

static void test_child_nested_in_tree(void)
{
    spantree_t *m = spantree_new("P");
    CHECK(m != NULL);
    if (!m)
        return;
    add(m, "P", 1, 100, "P", NULL, "begin", "invoke_agent",
        ",\"attrs\":{\"gen_ai.agent.name\":\"support\"}");
    add(m, "P", 2, 110, "act1", "P", "begin", "act", ",\"state_to\":\"acting\"");
    add(m, "P", 3, 120, "tool1", "act1", "begin", "execute_tool", NULL);
    /* The child's events: seqs from 1 again, its root under the parent's call. */
    add(m, "C", 1, 130, "C", "tool1", "begin", "invoke_agent",
        ",\"attrs\":{\"gen_ai.agent.name\":\"billing\"}");
    add(m, "C", 2, 140, "chat1", "C", "end", "chat",
        ",\"attrs\":{\"gen_ai.usage.input_tokens\":7,\"gen_ai.usage.output_tokens\":3}");
    add(m, "C", 3, 150, "C", NULL, "end", "invoke_agent", ",\"state_to\":\"done\"");
    add(m, "P", 4, 160, "tool1", "act1", "end", "execute_tool", NULL);
    /* Follow mode reads each run again from its own last seq: repeats are ignored. */
    add(m, "C", 2, 140, "chat1", "C", "end", "chat", NULL);
    add(m, "P", 3, 120, "tool1", "act1", "begin", "execute_tool", NULL);
    CHECK_EQ_INT(m->nevs, 7);
    CHECK_EQ_INT(m->last_seq, 4);
    CHECK_EQ_INT(spantree_last_seq_of(m, "C"), 3);
    CHECK_EQ_INT(spantree_last_seq_of(m, "P"), 4);
    CHECK_EQ_INT(spantree_last_seq_of(m, "X"), 0);
    /* The run's own fields stay the parent's; totals include the child's work. */
    CHECK_EQ_STR(m->agent, "support");
    CHECK_EQ_STR(m->last_state, "acting");
    CHECK_EQ_INT(m->in_tokens + m->out_tokens, 10);
    CHECK_EQ_INT(spantree_flatten(m, 1), 0);
    int c = spantree_find(m, "C"), t = spantree_find(m, "tool1");
    CHECK(c >= 0 && t >= 0);
    if (c >= 0 && t >= 0) {
        CHECK_EQ_INT(m->spans[c].parent_idx, t);
        CHECK_EQ_INT(m->spans[c].depth, m->spans[t].depth + 1);
        CHECK_EQ_INT(m->spans[c].end_ns, 150);
    }
    CHECK_EQ_INT(spantree_root(m), spantree_find(m, "P"));
    spantree_free(m);
}

int main(void)
{
    RUN(test_plans_by_version);
    RUN(test_subrun_links);
    RUN(test_child_nested_in_tree);
    testdb_remove(dbpath);
    store_global_shutdown();
    return check_report();
}
