/* Each transition is recorded, in order, and reported only once it is committed: while a run
 * of the flagship agent (offline model, real tools, real store, durability full) goes on, a
 * second connection opened on the same database sees, the moment a transition is reported,
 * the state (and step) it entered or one the run entered after it, never an earlier one.
 * Later: observing shares its commit with the planning that follows it, and a model call may
 * start before its planning is durable, so its reply can be committed by then too
 * (docs/durability.md, "Commits per step"). */
#include "agent.h"
#include "check.h"
#include "db/db.h"
#include "store_int.h"
#include "testdb.h"
#include "http.h"
#include "loop.h"
#include "machine.h"
#include "model.h"
#include "store.h"
#include "tools.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct seen {
    store_t *second;
    char states[32][16]; /* what the second connection saw at each transition event */
    int steps[32];
    char to[32][16];     /* the state each transition event entered, at its step */
    int to_steps[32];
    int n;
    int unreadable; /* the second connection could not read the run */
    int64_t last_seq;
    int gaps;
} seen_t;

static void on_event(void *ud, const char *run_id, json_object *ev)
{
    seen_t *s = ud;
    json_object *to, *seq, *step;
    if (json_object_object_get_ex(ev, "seq", &seq)) {
        if (json_object_get_int64(seq) != s->last_seq + 1)
            s->gaps++;
        s->last_seq = json_object_get_int64(seq);
    }
    if (!json_object_object_get_ex(ev, "state_to", &to))
        return;
    store_run_t r;
    if (store_run_get(s->second, run_id, &r) != 0) {
        s->unreadable++;
        return;
    }
    if (s->n < 32) {
        snprintf(s->states[s->n], 16, "%s", r.state);
        s->steps[s->n] = r.step;
        snprintf(s->to[s->n], 16, "%s", json_object_get_string(to));
        s->to_steps[s->n++] =
            json_object_object_get_ex(ev, "step", &step) ? json_object_get_int(step) : -1;
    }
    store_run_clear(&r);
}

/* The flagship agent on the offline model, real tools, a fresh durable store, traces in a
 * fresh folder: what the tests below share. */
typedef struct fix {
    char db[1024], dir[64];
    loop_t *lp;
    http_t *h;
    store_t *st;
    tools_t *tl;
    model_client_t *mc;
    agent_t *a;
    machine_t *m;
} fix_t;

static void fix_open(fix_t *f, const char *name, const char *sql)
{
    char err[512];
    testdb_target(name, f->db, sizeof f->db);
    f->lp = loop_new();
    f->h = http_new(f->lp);
    f->st = store_open(f->db, STORE_DURABLE_FULL, err, sizeof err);
    CHECK(f->st != NULL);
    if (sql)
        CHECK_EQ_INT(db_exec(store_db(f->st), sql), 0);
    f->tl = tools_new(f->lp, f->h, f->st);
    CHECK_EQ_INT(tools_load_dir(f->tl, "tools", err, sizeof err), 0);
    model_opts_t mo = {0};
    f->mc = model_client_new(f->lp, f->h, f->st, &mo, err, sizeof err);
    f->a = agent_load("agents/support.lua", err, sizeof err);
    CHECK(f->a != NULL && f->mc != NULL);
    snprintf(f->dir, sizeof f->dir, "/tmp/agentd-%s.XXXXXX", name);
    CHECK(mkdtemp(f->dir) != NULL);
    machine_opts_t o = {.traces_dir = f->dir, .model = "offline"};
    f->m = machine_new(f->lp, f->st, f->tl, f->mc, &o);
}

static void fix_close(fix_t *f)
{
    machine_free(f->m);
    agent_free(f->a);
    model_client_free(f->mc);
    tools_free(f->tl);
    store_close(f->st);
    http_free(f->h);
    loop_free(f->lp);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    CHECK_EQ_INT(system(cmd), 0);
    testdb_remove(f->db);
}

/* Transitions at which the second connection saw an earlier state than reported (or an
 * order that goes back): what it sees at the i-th report must be the state and step of the
 * i-th transition or of a later one, and later reports never map to earlier transitions. */
static int mismatches(const seen_t *s)
{
    int bad = 0, at = 0;
    for (int i = 0; i < s->n; i++) {
        int j = at > i ? at : i;
        while (j < s->n && (strcmp(s->states[i], s->to[j]) != 0 || s->steps[i] != s->to_steps[j]))
            j++;
        if (j == s->n) {
            fprintf(stderr, "  second connection saw %s (step %d), event says %s (step %d)\n",
                    s->states[i], s->steps[i], s->to[i], s->to_steps[i]);
            bad++;
            continue;
        }
        at = j;
    }
    return bad;
}

static void test_second_connection_sees_each_state(void)
{
    char db[1024], err[512];
    testdb_target("durable", db, sizeof db);
    loop_t *lp = loop_new();
    http_t *h = http_new(lp);
    store_t *st = store_open(db, STORE_DURABLE_FULL, err, sizeof err);
    CHECK(st != NULL);
    seen_t seen = {0};
    seen.second = store_open(db, STORE_DURABLE_NORMAL, err, sizeof err);
    tools_t *tl = tools_new(lp, h, st);
    CHECK_EQ_INT(tools_load_dir(tl, "tools", err, sizeof err), 0);
    model_opts_t mo = {0};
    model_client_t *mc = model_client_new(lp, h, st, &mo, err, sizeof err);
    agent_t *a = agent_load("agents/support.lua", err, sizeof err);
    CHECK(a != NULL && mc != NULL);
    char dir[] = "/tmp/agentd-durable-traces.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    machine_opts_t o = {.traces_dir = dir, .model = "offline"};
    o.obs.ud = &seen;
    o.obs.on_event = on_event;
    machine_t *m = machine_new(lp, st, tl, mc, &o);
    char id[17];
    CHECK_EQ_INT(machine_start(m, a, "Where is my order 1042?", id, err, sizeof err), 0);
    while (machine_active(m) > 0)
        event_base_loop(loop_base(lp), EVLOOP_ONCE);
    CHECK_EQ_INT(seen.unreadable, 0);
    CHECK_EQ_INT(mismatches(&seen), 0);
    CHECK_EQ_INT(seen.gaps, 0);
    CHECK(seen.n >= 5);
    CHECK_EQ_STR(seen.to[0], "planning");
    CHECK_EQ_STR(seen.to[1], "acting");
    CHECK_EQ_STR(seen.to[2], "observing");
    /* The tool results, observing and the next planning with its chat intent: one commit. */
    CHECK(strcmp(seen.states[2], "observing") != 0);
    CHECK_EQ_STR(seen.states[seen.n - 1], "done");
    machine_free(m);
    agent_free(a);
    model_client_free(mc);
    tools_free(tl);
    store_close(seen.second);
    store_close(st);
    http_free(h);
    loop_free(lp);
    /* The segment log holds every committed event of the run, in seq order, and the
     * current.jsonl link names it. */
    char p[160], line[8192], want[64];
    snprintf(p, sizeof p, "%s/current.jsonl", dir);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    int64_t n = 0;
    while (f && fgets(line, sizeof line, f)) {
        snprintf(want, sizeof want, "\"run_id\":\"%s\",\"seq\":%lld,", id, (long long)n + 1);
        CHECK(strstr(line, want) != NULL);
        n++;
    }
    if (f)
        fclose(f);
    CHECK(n == seen.last_seq);
    unlink(p);
    snprintf(p, sizeof p, "%s/segment-000001.jsonl", dir);
    CHECK_EQ_INT(unlink(p), 0);
    CHECK_EQ_INT(rmdir(dir), 0);
    testdb_remove(db);
}

/* Ctrl-C while a batch's commit is still on its way (PostgreSQL's pipeline, SQLite's
 * syncer): the cancels enter runs whose entry waits in that batch. Each run's enter_next
 * linked both batches' lists, and a cancelled `agentd batch` on PostgreSQL spun in run_early
 * for good; now every run ends cancelled and the loop goes idle. */
static void test_cancel_while_a_commit_is_pending(void)
{
    fix_t f;
    char err[512];
    fix_open(&f, "durable_cancel", NULL);
    char ids[6][17];
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(machine_start(f.m, f.a, "Where is my order 1042?", ids[i], err, sizeof err),
                     0);
    event_base_loop(loop_base(f.lp), EVLOOP_NONBLOCK); /* the creations' batch: committing */
    machine_cancel_all(f.m);
    int turns = 0;
    while (machine_active(f.m) > 0 && turns++ < 100000)
        event_base_loop(loop_base(f.lp), EVLOOP_ONCE);
    CHECK_EQ_INT(machine_active(f.m), 0);
    for (int i = 0; i < 6; i++) {
        store_run_t r;
        CHECK_EQ_INT(store_run_get(f.st, ids[i], &r), 0);
        CHECK_EQ_STR(r.state, "cancelled");
        store_run_clear(&r);
    }
    fix_close(&f);
}

static int64_t count_of(store_t *st, const char *sql)
{
    db_stmt_t *s = db_prepare(store_db(st), sql, NULL);
    CHECK(s != NULL);
    int64_t n = s && db_step(s) == DB_ROW ? db_col_int64(s, 0) : -1;
    if (s)
        db_reset(s);
    return n;
}

/* The writes of a step, counted by triggers (SQLite only): a call's row is written when it
 * is decided (running) and when it ends, never first as pending; a run's row at most twice
 * per batch (its first unit's fenced write and one at the flush), not once per unit; and
 * what is stored still agrees with itself (last_seq, msg_count against their rows). */
static void test_rows_written_once_per_batch(void)
{
    if (!testdb_is_file())
        return;
    fix_t f;
    char err[512];
    fix_open(&f, "durable_rows",
             "CREATE TABLE w (what TEXT);"
             "CREATE TRIGGER w_ru AFTER UPDATE ON runs BEGIN INSERT INTO w VALUES ('run'); END;"
             "CREATE TRIGGER w_ti AFTER INSERT ON tool_calls BEGIN "
             "INSERT INTO w VALUES ('call'); END;"
             "CREATE TRIGGER w_tu AFTER UPDATE ON tool_calls BEGIN "
             "INSERT INTO w VALUES ('call'); END;");
    char id[17];
    uint64_t seq0 = machine_batch_seq(f.m);
    CHECK_EQ_INT(machine_start(f.m, f.a, "Where is my order 1042?", id, err, sizeof err), 0);
    while (machine_active(f.m) > 0)
        event_base_loop(loop_base(f.lp), EVLOOP_ONCE);
    int64_t batches = (int64_t)(machine_batch_seq(f.m) - seq0);
    int64_t calls = count_of(f.st, "SELECT count(*) FROM tool_calls");
    CHECK(calls >= 1);
    CHECK_EQ_INT(count_of(f.st, "SELECT count(*) FROM tool_calls WHERE state <> 'ok'"), 0);
    CHECK_EQ_INT(count_of(f.st, "SELECT count(*) FROM w WHERE what = 'call'"), 2 * calls);
    int64_t run_writes = count_of(f.st, "SELECT count(*) FROM w WHERE what = 'run'");
    CHECK(run_writes >= 1 && run_writes <= 2 * batches);
    /* Its 8 units in 5 batches wrote the row 8 times before; now once per batch, plus one
     * for the batch of three units (tool result, observing, planning): the fenced write of
     * its first unit and the flush's. */
    CHECK(run_writes <= batches + 1);
    CHECK_EQ_INT(count_of(f.st, "SELECT count(*) FROM runs r WHERE last_seq = "
                                "(SELECT max(seq) FROM events e WHERE e.run_id = r.id) AND "
                                "msg_count = (SELECT count(*) FROM messages g WHERE "
                                "g.run_id = r.id) AND state = 'done' AND owner = ''"),
                 1);
    fix_close(&f);
}

int main(void)
{
    RUN(test_second_connection_sees_each_state);
    RUN(test_cancel_while_a_commit_is_pending);
    RUN(test_rows_written_once_per_batch);
    http_global_cleanup();
    store_global_shutdown();
    libevent_global_shutdown();
    return check_report();
}
