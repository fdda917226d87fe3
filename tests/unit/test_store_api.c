/* The HTTP API's tables (store_api.c): an Idempotency-Key is unique and found again, the row
 * commits or rolls back with the transaction it was written in, and the run listing filters
 * by state, agent and time and pages by cursor without skipping or repeating a run. */
#include "check.h"
#include "testdb.h"
#include "err.h"
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
    testdb_target("store-api", dbpath, sizeof dbpath);
    char err[256];
    store_t *st = store_open(dbpath, STORE_DURABLE_NORMAL, err, sizeof err);
    if (!st)
        fprintf(stderr, "open: %s\n", err);
    return st;
}

static void insert(store_t *st, int i, const char *agent, const char *state, int64_t created)
{
    store_run_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%016x", i);
    snprintf(r.agent, sizeof r.agent, "%s", agent);
    snprintf(r.agent_path, sizeof r.agent_path, "agents/%s.lua", agent);
    snprintf(r.state, sizeof r.state, "%s", state);
    r.input = "q";
    r.created_ns = created;
    CHECK_EQ_INT(store_run_insert(st, &r), 0);
}

static void test_idempotency_key(void)
{
    store_t *st = fresh();
    CHECK_EQ_INT(store_tx_begin(st), 0);
    insert(st, 1, "support", "created", 10);
    insert(st, 2, "support", "created", 11);
    /* inside the open transaction, as the server does in the machine's batch */
    CHECK_EQ_INT(store_api_put(st, "0000000000000001", "key-1", "h1", "{\"model\":\"offline\"}",
                               "{\"t\":1}", 10),
                 0);
    CHECK_EQ_INT(store_api_put(st, "0000000000000002", "key-1", "h2", NULL, NULL, 11), ERR_STATE);
    CHECK_EQ_INT(store_api_put(st, "0000000000000002", NULL, "h2", NULL, NULL, 11), 0);
    CHECK_EQ_INT(store_tx_commit(st), 0);
    store_api_run_t a;
    CHECK_EQ_INT(store_api_by_key(st, "key-1", &a), 0);
    CHECK_EQ_STR(a.run_id, "0000000000000001");
    CHECK_EQ_STR(a.body_hash, "h1");
    CHECK_EQ_STR(a.options, "{\"model\":\"offline\"}");
    CHECK_EQ_STR(a.metadata, "{\"t\":1}");
    store_api_clear(&a);
    CHECK_EQ_INT(store_api_by_key(st, "key-2", &a), ERR_NOTFOUND);
    CHECK_EQ_INT(store_api_get(st, "0000000000000002", &a), 0);
    CHECK(a.options == NULL && a.metadata == NULL);
    store_api_clear(&a);
    /* a row written in a transaction that rolls back is gone with it */
    CHECK_EQ_INT(store_tx_begin(st), 0);
    insert(st, 3, "support", "created", 12);
    CHECK_EQ_INT(store_api_put(st, "0000000000000003", "key-3", "h3", NULL, NULL, 12), 0);
    store_tx_rollback(st);
    CHECK_EQ_INT(store_api_by_key(st, "key-3", &a), ERR_NOTFOUND);
    /* outside a transaction it opens its own */
    CHECK_EQ_INT(store_api_put(st, "0000000000000009", "key-9", "h9", NULL, NULL, 13), 0);
    CHECK_EQ_INT(store_api_by_key(st, "key-9", &a), 0);
    store_api_clear(&a);
    store_close(st);
}

typedef struct seen {
    char ids[64][40];
    int n;
    int64_t last_ns;
} seen_t;

static int collect(void *ud, const store_run_t *r)
{
    seen_t *s = ud;
    if (s->n < 64)
        snprintf(s->ids[s->n++], 40, "%s", r->id);
    s->last_ns = r->created_ns;
    return 0;
}

static void test_query_filters_and_paging(void)
{
    store_t *st = fresh();
    CHECK_EQ_INT(store_tx_begin(st), 0);
    /* 20 runs, two per timestamp so the cursor must break ties by id */
    for (int i = 0; i < 20; i++)
        insert(st, i + 1, i % 3 ? "support" : "other", i % 2 ? "done" : "failed", 100 + i / 2);
    CHECK_EQ_INT(store_tx_commit(st), 0);
    seen_t all = {.n = 0};
    char cursor_id[40] = "";
    int64_t cursor_ns = 0;
    for (int page = 0; page < 20; page++) {
        seen_t s = {.n = 0};
        store_runs_query_t q = {
            .limit = 3, .before_ns = cursor_ns, .before_id = page ? cursor_id : NULL};
        CHECK_EQ_INT(store_runs_query(st, &q, collect, &s), 0);
        for (int i = 0; i < s.n; i++)
            snprintf(all.ids[all.n++], 40, "%s", s.ids[i]);
        if (s.n < 3)
            break;
        snprintf(cursor_id, sizeof cursor_id, "%s", s.ids[s.n - 1]);
        cursor_ns = s.last_ns;
    }
    CHECK_EQ_INT(all.n, 20);
    CHECK_EQ_STR(all.ids[0], "0000000000000014"); /* newest first */
    CHECK_EQ_STR(all.ids[19], "0000000000000001");
    for (int i = 1; i < all.n; i++)
        CHECK(strcmp(all.ids[i - 1], all.ids[i]) > 0); /* no repeat, no gap */
    seen_t s = {.n = 0};
    store_runs_query_t q = {.state = "done", .agent = "support"};
    CHECK_EQ_INT(store_runs_query(st, &q, collect, &s), 0);
    int want = 0;
    for (int i = 0; i < 20; i++)
        want += (i % 3) && (i % 2);
    CHECK_EQ_INT(s.n, want);
    seen_t t = {.n = 0};
    store_runs_query_t tq = {.since_ns = 104, .until_ns = 106};
    CHECK_EQ_INT(store_runs_query(st, &tq, collect, &t), 0);
    CHECK_EQ_INT(t.n, 4); /* created 104 and 105, two each */
    store_close(st);
}

int main(void)
{
    RUN(test_idempotency_key);
    RUN(test_query_filters_and_paging);
    testdb_remove(dbpath);
    return check_report();
}
