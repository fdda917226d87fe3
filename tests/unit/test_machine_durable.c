/* Each transition is recorded, in order, and reported only once it is committed: while a run
 * of the flagship agent (offline model, real tools, real store, durability full) goes on, a
 * second connection opened on the same database sees, the moment a transition is reported,
 * the state (and step) it entered or one the run entered after it, never an earlier one.
 * Later: observing shares its commit with the planning that follows it, and a model call may
 * start before its planning is durable, so its reply can be committed by then too
 * (docs/durability.md, "Commits per step"). */
#include "agent.h"
#include "check.h"
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
    char db[1024], err[512];
    testdb_target("durable_cancel", db, sizeof db);
    loop_t *lp = loop_new();
    http_t *h = http_new(lp);
    store_t *st = store_open(db, STORE_DURABLE_FULL, err, sizeof err);
    CHECK(st != NULL);
    tools_t *tl = tools_new(lp, h, st);
    CHECK_EQ_INT(tools_load_dir(tl, "tools", err, sizeof err), 0);
    model_opts_t mo = {0};
    model_client_t *mc = model_client_new(lp, h, st, &mo, err, sizeof err);
    agent_t *a = agent_load("agents/support.lua", err, sizeof err);
    CHECK(a != NULL && mc != NULL);
    char dir[] = "/tmp/agentd-durable-cancel.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    machine_opts_t o = {.traces_dir = dir, .model = "offline"};
    machine_t *m = machine_new(lp, st, tl, mc, &o);
    char ids[6][17];
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(machine_start(m, a, "Where is my order 1042?", ids[i], err, sizeof err), 0);
    event_base_loop(loop_base(lp), EVLOOP_NONBLOCK); /* the creations' batch: committing */
    machine_cancel_all(m);
    int turns = 0;
    while (machine_active(m) > 0 && turns++ < 100000)
        event_base_loop(loop_base(lp), EVLOOP_ONCE);
    CHECK_EQ_INT(machine_active(m), 0);
    for (int i = 0; i < 6; i++) {
        store_run_t r;
        CHECK_EQ_INT(store_run_get(st, ids[i], &r), 0);
        CHECK_EQ_STR(r.state, "cancelled");
        store_run_clear(&r);
    }
    machine_free(m);
    agent_free(a);
    model_client_free(mc);
    tools_free(tl);
    store_close(st);
    http_free(h);
    loop_free(lp);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_EQ_INT(system(cmd), 0);
    testdb_remove(db);
}

int main(void)
{
    RUN(test_second_connection_sees_each_state);
    RUN(test_cancel_while_a_commit_is_pending);
    http_global_cleanup();
    store_global_shutdown();
    libevent_global_shutdown();
    return check_report();
}
