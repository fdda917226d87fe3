/* The store: migrations, run round-trip, id prefixes, messages once each, events in order,
 * savepoint rollback, kv, cache, and that a second connection sees committed data only. */
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
    testdb_target("store", dbpath, sizeof dbpath);
    char err[256];
    store_t *st = store_open(dbpath, STORE_DURABLE_NORMAL, err, sizeof err);
    if (!st)
        fprintf(stderr, "open: %s\n", err);
    return st;
}

static store_run_t sample(const char *id)
{
    store_run_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", id);
    snprintf(r.agent, sizeof r.agent, "support");
    snprintf(r.agent_path, sizeof r.agent_path, "agents/support.lua");
    snprintf(r.state, sizeof r.state, "created");
    r.input = "hello";
    r.created_ns = 1;
    return r;
}

static void test_run_round_trip_and_prefix(void)
{
    store_t *st = fresh();
    CHECK(st != NULL);
    store_run_t r = sample("00aa11bb22cc33dd");
    CHECK_EQ_INT(store_tx_begin(st), 0);
    CHECK_EQ_INT(store_run_insert(st, &r), 0);
    CHECK_EQ_INT(store_tx_commit(st), 0);
    store_run_t got;
    CHECK_EQ_INT(store_run_get(st, "00aa", &got), 0);
    CHECK_EQ_STR(got.id, "00aa11bb22cc33dd");
    CHECK_EQ_STR(got.input, "hello");
    CHECK_EQ_STR(got.state, "created");
    store_run_clear(&got);
    store_run_t r2 = sample("00aa99bb22cc33dd");
    CHECK_EQ_INT(store_run_insert(st, &r2), 0);
    CHECK_EQ_INT(store_run_get(st, "00aa", &got), ERR_INVAL); /* ambiguous */
    CHECK_EQ_INT(store_run_get(st, "ffff", &got), ERR_NOTFOUND);
    CHECK_EQ_INT(store_run_insert(st, &r2), ERR_STATE); /* duplicate id */
    store_close(st);
}

static int collect(void *ud, int64_t n, const char *json)
{
    char *buf = ud;
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%lld:%s;", (long long)n, json);
    strcat(buf, tmp);
    return 0;
}

static void test_events_and_messages_in_order(void)
{
    store_t *st = fresh();
    store_run_t r = sample("1111111111111111");
    CHECK_EQ_INT(store_run_insert(st, &r), 0);
    CHECK_EQ_INT(store_event_add(st, r.id, 2, "{\"b\":1}"), 0);
    CHECK_EQ_INT(store_event_add(st, r.id, 1, "{\"a\":1}"), 0);
    CHECK_EQ_INT(store_event_add(st, r.id, 1, "{\"dup\":1}"), ERR_STATE);
    char buf[512] = "";
    CHECK_EQ_INT(store_events_each(st, r.id, 0, collect, buf), 0);
    CHECK_EQ_STR(buf, "1:{\"a\":1};2:{\"b\":1};");
    buf[0] = 0;
    CHECK_EQ_INT(store_events_each(st, r.id, 1, collect, buf), 0);
    CHECK_EQ_STR(buf, "2:{\"b\":1};");
    CHECK_EQ_INT(store_message_add(st, r.id, 0, "{\"role\":\"system\"}"), 0);
    CHECK_EQ_INT(store_message_add(st, r.id, 1, "{\"role\":\"user\"}"), 0);
    CHECK_EQ_INT(store_message_add(st, r.id, 1, "{\"role\":\"again\"}"), ERR_STATE);
    buf[0] = 0;
    CHECK_EQ_INT(store_messages_each(st, r.id, collect, buf), 0);
    CHECK_EQ_STR(buf, "0:{\"role\":\"system\"};1:{\"role\":\"user\"};");
    store_close(st);
}

static int collect_call(void *ud, const store_toolcall_t *tc)
{
    char *buf = ud;
    size_t n = strlen(buf);
    snprintf(buf + n, 512 - n, "%s %s %s;", tc->call_id, tc->idem_key, tc->wire_id);
    return 0;
}

/* A call's idempotency key and wire id are stored only when they are not the derived ones
 * (run:call, the call id), and read back the same either way. */
static void test_toolcall_keys_derived(void)
{
    store_t *st = fresh();
    store_run_t r = sample("2222222222222222");
    CHECK_EQ_INT(store_run_insert(st, &r), 0);
    store_toolcall_t tc;
    memset(&tc, 0, sizeof tc);
    snprintf(tc.run_id, sizeof tc.run_id, "%s", r.id);
    snprintf(tc.call_id, sizeof tc.call_id, "call_1_1");
    snprintf(tc.wire_id, sizeof tc.wire_id, "call_1_1");
    snprintf(tc.idem_key, sizeof tc.idem_key, "%s:call_1_1", r.id);
    snprintf(tc.state, sizeof tc.state, "ok");
    tc.args = "{}";
    CHECK_EQ_INT(store_toolcall_put(st, &tc), 0);
    snprintf(tc.call_id, sizeof tc.call_id, "call_1_2");
    snprintf(tc.wire_id, sizeof tc.wire_id, "toolu_9");
    snprintf(tc.idem_key, sizeof tc.idem_key, "custom");
    CHECK_EQ_INT(store_toolcall_put(st, &tc), 0);
    char buf[512] = "";
    CHECK_EQ_INT(store_toolcalls_each(st, r.id, collect_call, buf), 0);
    CHECK_EQ_STR(buf, "call_1_1 2222222222222222:call_1_1 call_1_1;call_1_2 custom toolu_9;");
    store_close(st);
}

static void test_savepoint_rolls_back_one_unit(void)
{
    store_t *st = fresh();
    store_run_t r = sample("2222222222222222");
    CHECK_EQ_INT(store_tx_begin(st), 0);
    CHECK_EQ_INT(store_run_insert(st, &r), 0);
    CHECK_EQ_INT(store_sp_begin(st), 0);
    CHECK_EQ_INT(store_event_add(st, r.id, 1, "{}"), 0);
    store_sp_rollback(st);
    CHECK_EQ_INT(store_sp_begin(st), 0);
    CHECK_EQ_INT(store_event_add(st, r.id, 2, "{}"), 0);
    CHECK_EQ_INT(store_sp_release(st), 0);
    CHECK_EQ_INT(store_tx_commit(st), 0);
    char buf[256] = "";
    store_events_each(st, r.id, 0, collect, buf);
    CHECK_EQ_STR(buf, "2:{};");
    store_close(st);
}

static void test_second_connection_sees_commits_only(void)
{
    store_t *a = fresh();
    char err[256];
    store_t *b = store_open(dbpath, STORE_DURABLE_NORMAL, err, sizeof err);
    CHECK(b != NULL);
    store_run_t r = sample("3333333333333333");
    CHECK_EQ_INT(store_tx_begin(a), 0);
    CHECK_EQ_INT(store_run_insert(a, &r), 0);
    store_run_t got;
    CHECK_EQ_INT(store_run_get(b, r.id, &got), ERR_NOTFOUND); /* not committed yet */
    CHECK_EQ_INT(store_tx_commit(a), 0);
    CHECK_EQ_INT(store_run_get(b, r.id, &got), 0);
    store_run_clear(&got);
    store_close(b);
    store_close(a);
}

static int kv_collect(void *ud, const char *k, const char *v)
{
    char *buf = ud;
    strcat(buf, k);
    strcat(buf, "=");
    strcat(buf, v);
    strcat(buf, ";");
    return 0;
}

static void test_kv_and_cache(void)
{
    store_t *st = fresh();
    char *v = NULL;
    CHECK_EQ_INT(store_kv_get(st, "support", "t1", &v), ERR_NOTFOUND);
    CHECK_EQ_INT(store_kv_put(st, "support", "t1", "{\"x\":1}"), 0);
    CHECK_EQ_INT(store_kv_put(st, "support", "t2", "2"), 0);
    CHECK_EQ_INT(store_kv_put(st, "other", "t1", "other"), 0);
    CHECK_EQ_INT(store_kv_get(st, "support", "t1", &v), 0);
    CHECK_EQ_STR(v, "{\"x\":1}");
    free(v);
    char buf[256] = "";
    CHECK_EQ_INT(store_kv_each(st, "support", "t", kv_collect, buf), 0);
    CHECK_EQ_STR(buf, "t1={\"x\":1};t2=2;");
    CHECK_EQ_INT(store_kv_del(st, "support", "t1"), 0);
    CHECK_EQ_INT(store_kv_get(st, "support", "t1", &v), ERR_NOTFOUND);
    CHECK_EQ_INT(store_cache_put(st, "k", "offline", "{\"a\":1}"), 0);
    CHECK_EQ_INT(store_cache_get(st, "k", &v), 0);
    CHECK_EQ_STR(v, "{\"a\":1}");
    free(v);
    store_close(st);
}

static void test_bad_path_names_the_file(void)
{
    char err[256] = "";
    store_t *st = store_open("/nonexistent-dir/x.db", STORE_DURABLE_FULL, err, sizeof err);
    CHECK(st == NULL);
    CHECK(strstr(err, "/nonexistent-dir/x.db") != NULL);
}

static int collect_pending(void *ud, int64_t n, const char *input)
{
    char *buf = ud, tmp[64];
    snprintf(tmp, sizeof tmp, "%lld=%s;", (long long)n, input);
    strcat(buf, tmp);
    return 0;
}

/* A batch's inputs are durable before any run; each is taken once, with its run. */
static void test_batch_inputs_taken_once(void)
{
    store_t *st = fresh();
    store_batch_t b;
    memset(&b, 0, sizeof b);
    snprintf(b.id, sizeof b.id, "b1");
    snprintf(b.agent_path, sizeof b.agent_path, "agents/support.lua");
    snprintf(b.owner, sizeof b.owner, "otherhost:1");
    b.concurrency = 2;
    b.lease_until_ns = 100;
    const char *in[3] = {"one", "two", "three"};
    CHECK_EQ_INT(store_batch_create(st, &b, in, 3), 0);
    store_batch_t got;
    CHECK_EQ_INT(store_batch_get(st, "b", &got), 0);
    CHECK_EQ_INT((int)got.inputs, 3);
    CHECK_EQ_INT((int)got.pending, 3);
    CHECK_EQ_INT(store_batch_claim(st, "b1", "me:2", 50, 200), ERR_BUSY); /* lease holds */
    CHECK_EQ_INT(store_batch_claim(st, "b1", "me:2", 150, 200), 0);       /* expired */
    store_run_t r = sample("3333333333333333");
    CHECK_EQ_INT(store_tx_begin(st), 0);
    CHECK_EQ_INT(store_run_insert(st, &r), 0);
    CHECK_EQ_INT(store_batch_take(st, "b1", 2, r.id), 0);
    CHECK_EQ_INT(store_batch_take(st, "b1", 2, r.id), ERR_BUSY); /* never twice */
    CHECK_EQ_INT(store_tx_commit(st), 0);
    char buf[256] = "";
    CHECK_EQ_INT(store_batch_pending(st, "b1", collect_pending, buf), 0);
    CHECK_EQ_STR(buf, "1=one;3=three;");
    CHECK_EQ_INT(store_batch_get(st, "b1", &got), 0);
    CHECK_EQ_INT((int)got.pending, 2);
    CHECK_EQ_INT(store_batch_get(st, "zz", &got), ERR_NOTFOUND);
    store_close(st);
}

/* Read-only opens create nothing and refuse to be written through. */
static void test_open_existing(void)
{
    store_t *st = fresh();
    store_close(st);
    char err[512];
    int why = 0;
    st = store_open_existing("/nonexistent-dir/y.db", STORE_OPEN_READ, err, sizeof err, &why);
    CHECK(st == NULL);
    CHECK_EQ_INT(why, ERR_NOTFOUND);
    CHECK(access("/nonexistent-dir/y.db", F_OK) != 0);
    st = store_open_existing(dbpath, STORE_OPEN_READ, err, sizeof err, &why);
    CHECK(st != NULL);
    int64_t n = -1;
    CHECK_EQ_INT(store_runs_count(st, NULL, &n), 0);
    CHECK_EQ_INT((int)n, 0);
    store_run_t r = sample("4444444444444444");
    CHECK(store_run_insert(st, &r) != 0);
    store_close(st);
}

static int collect_cancel(void *ud, const char *run_id, const char *reason)
{
    char *buf = ud;
    size_t n = strlen(buf);
    snprintf(buf + n, 256 - n, "%s=%s;", run_id, reason);
    return 0;
}

/* Many workers: a lease that ended is never renewed (another may have claimed it), the
 * row update is fenced on its holder, and a cancel asked by another process waits in the
 * database for whichever process holds the run. */
static void test_leases_fence_and_cancels(void)
{
    store_t *st = fresh();
    store_run_t r = sample("4444444444444444"), got;
    snprintf(r.state, sizeof r.state, "acting");
    snprintf(r.owner, sizeof r.owner, "elsewhere:1");
    r.lease_until_ns = 100;
    CHECK_EQ_INT(store_run_insert(st, &r), 0);
    CHECK_EQ_INT(store_run_claim(st, r.id, "elsewhere:2", 50, 300), ERR_BUSY);
    CHECK_EQ_INT(store_lease_renew(st, "elsewhere:1", 150, 450), 0); /* ended at 100 */
    CHECK_EQ_INT(store_run_get(st, r.id, &got), 0);
    CHECK_EQ_INT((int)got.lease_until_ns, 100);
    store_run_clear(&got);
    CHECK_EQ_INT(store_lease_renew(st, "elsewhere:1", 50, 200), 0);
    CHECK_EQ_INT(store_run_get(st, r.id, &got), 0);
    CHECK_EQ_INT((int)got.lease_until_ns, 200);
    store_run_clear(&got);
    r.lease_until_ns = 200;
    r.step = 1;
    CHECK_EQ_INT(store_run_update(st, &r, "elsewhere:2"), ERR_STATE); /* not its holder */
    CHECK_EQ_INT(store_run_update(st, &r, "elsewhere:1"), 0);
    /* The lease ends; another process claims the run; the old holder's write is refused. */
    CHECK_EQ_INT(store_run_claim(st, r.id, "elsewhere:2", 250, 600), 0);
    r.step = 2;
    CHECK_EQ_INT(store_run_update(st, &r, "elsewhere:1"), ERR_STATE);
    CHECK_EQ_INT(store_run_get(st, r.id, &got), 0);
    CHECK_EQ_STR(got.owner, "elsewhere:2");
    CHECK_EQ_INT(got.step, 1);
    store_run_clear(&got);
    /* Only the holder may end its lease early (a run it stopped driving). */
    CHECK_EQ_INT(store_lease_drop(st, r.id, "elsewhere:1"), 0);
    CHECK_EQ_INT(store_run_get(st, r.id, &got), 0);
    CHECK_EQ_INT((int)got.lease_until_ns, 600);
    store_run_clear(&got);
    CHECK_EQ_INT(store_lease_drop(st, r.id, "elsewhere:2"), 0);
    CHECK_EQ_INT(store_run_get(st, r.id, &got), 0);
    CHECK_EQ_INT((int)got.lease_until_ns, 0);
    store_run_clear(&got);
    CHECK_EQ_INT(store_run_claim(st, r.id, "elsewhere:3", 250, 900), 0);
    /* A cancel request: kept once, seen by the holder only, cleared by its cancel. */
    char buf[256] = "";
    CHECK_EQ_INT(store_cancel_request(st, r.id, "stop", 1), 0);
    CHECK_EQ_INT(store_cancel_request(st, r.id, "again", 2), 0);
    CHECK_EQ_INT(store_cancels_held(st, "elsewhere:1", collect_cancel, buf), 0);
    CHECK_EQ_STR(buf, "");
    CHECK_EQ_INT(store_cancels_held(st, "elsewhere:3", collect_cancel, buf), 0);
    CHECK_EQ_STR(buf, "4444444444444444=stop;");
    CHECK_EQ_INT(store_cancel_clear(st, r.id), 0);
    buf[0] = 0;
    CHECK_EQ_INT(store_cancels_held(st, "elsewhere:3", collect_cancel, buf), 0);
    CHECK_EQ_STR(buf, "");
    CHECK_EQ_INT(store_cancel_request(st, "5555555555555555", "stop", 1), ERR_STATE);
    store_run_t d = sample("6666666666666666");
    snprintf(d.state, sizeof d.state, "done");
    CHECK_EQ_INT(store_run_insert(st, &d), 0);
    CHECK_EQ_INT(store_cancel_request(st, d.id, "stop", 1), ERR_STATE);
    store_close(st);
}

/* A lock held past the busy timeout is a database error (store_busy_rc: ERR_IO), whether it
 * meets BEGIN (SQLite's BEGIN IMMEDIATE) or a statement (PostgreSQL: the insert of a key
 * another transaction holds); another owner's lease stays ERR_BUSY. `agentd run` on a locked
 * PostgreSQL database exited 2 ("busy session") instead of 4 before. */
static void test_lock_timeout_is_a_database_error(void)
{
    store_t *st = fresh();
    char err[256];
    setenv("AGENTD_BUSY_TIMEOUT_MS", "100", 1);
    store_t *other = store_open(dbpath, STORE_DURABLE_NORMAL, err, sizeof err);
    unsetenv("AGENTD_BUSY_TIMEOUT_MS");
    CHECK(other != NULL);
    store_run_t r = sample("5555555555555555");
    snprintf(r.owner, sizeof r.owner, "elsewhere:1");
    r.lease_until_ns = 100;
    CHECK_EQ_INT(store_tx_begin(st), 0);
    CHECK_EQ_INT(store_run_insert(st, &r), 0);
    int rc = store_tx_begin(other);
    if (!rc) {
        rc = store_run_insert(other, &r);
        store_tx_rollback(other);
    }
    CHECK_EQ_INT(rc, ERR_BUSY);
    CHECK_EQ_INT(store_busy_rc(other, rc), ERR_IO);
    CHECK_EQ_INT(store_tx_commit(st), 0);
    rc = store_run_claim(other, r.id, "elsewhere:2", 50, 300);
    CHECK_EQ_INT(rc, ERR_BUSY); /* the lease holds: the store's own answer */
    CHECK_EQ_INT(store_busy_rc(other, rc), ERR_BUSY);
    store_close(other);
    store_close(st);
}

int main(void)
{
    RUN(test_run_round_trip_and_prefix);
    RUN(test_events_and_messages_in_order);
    RUN(test_toolcall_keys_derived);
    RUN(test_savepoint_rolls_back_one_unit);
    RUN(test_second_connection_sees_commits_only);
    RUN(test_kv_and_cache);
    RUN(test_bad_path_names_the_file);
    RUN(test_batch_inputs_taken_once);
    RUN(test_open_existing);
    RUN(test_leases_fence_and_cancels);
    RUN(test_lock_timeout_is_a_database_error);
    testdb_remove(dbpath);
    store_global_shutdown();
    return check_report();
}
