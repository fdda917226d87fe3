/*
 * trace_fixture: fills a database with a run's trace events through store.h, for the
 * viewer's integration tests and the open-time measurement.
 *
 *   trace_fixture DB FILE.jsonl [--delay-ms N] [--now]
 *       insert the run described by the events of FILE (one transaction per event, like
 *       the machine does); --delay-ms waits between events (a live run for follow mode);
 *       --now stamps each event with the current time instead of its recorded one.
 *   trace_fixture DB --gen N [--run-id ID] [--fail] [--rate R]
 *       insert a synthetic run of about N events: plan/chat, act/2 tools, observe steps;
 *       --rate paces the commits at R events per second (a live run for follow mode).
 *
 * The run row is kept in step with the events: state from the last transition, step,
 * last_seq, tokens and cost from chat spans, ended_ns when the run is final.
 */
#include "store.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static const char *sget(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static int final_state(const char *s)
{
    return !strcmp(s, "done") || !strcmp(s, "failed") || !strcmp(s, "cancelled");
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Pacing for --rate: event k is not committed before start + k/rate seconds. */
typedef struct pace {
    long rate;
    int64_t start;
    long k;
} pace_t;

static void pace_wait(pace_t *p)
{
    if (p->rate <= 0)
        return;
    if (p->k++ == 0)
        p->start = mono_ns();
    int64_t due = p->start + (int64_t)p->k * 1000000000 / p->rate, now = mono_ns();
    if (due > now) {
        struct timespec ts = {(time_t)((due - now) / 1000000000), (long)((due - now) % 1000000000)};
        nanosleep(&ts, NULL);
    }
}

/* Apply one event (as JSON object) to the run row and store it, in one transaction. */
static int add_event(store_t *st, store_run_t *run, json_object *ev, int first, pace_t *pace)
{
    pace_wait(pace);
    const char *to = sget(ev, "state_to"), *op = sget(ev, "op"), *phase = sget(ev, "phase");
    json_object *attrs = NULL, *v;
    json_object_object_get_ex(ev, "attrs", &attrs);
    int64_t ts = json_object_get_int64(json_object_object_get(ev, "ts_ns"));
    if (first) {
        snprintf(run->id, sizeof run->id, "%s", sget(ev, "run_id"));
        const char *agent = attrs ? sget(attrs, "gen_ai.agent.name") : NULL;
        snprintf(run->agent, sizeof run->agent, "%s", agent ? agent : "fixture");
        snprintf(run->agent_path, sizeof run->agent_path, "agents/%s.lua", run->agent);
        snprintf(run->model, sizeof run->model, "offline");
        snprintf(run->state, sizeof run->state, "created");
        run->created_ns = ts;
        const char *input = attrs ? sget(attrs, "agentd.input") : NULL;
        run->input = input ? strdup(input) : NULL;
    }
    if (to)
        snprintf(run->state, sizeof run->state, "%s", to);
    if (json_object_object_get_ex(ev, "step", &v))
        run->step = json_object_get_int(v);
    if (op && !strcmp(op, "chat") && phase && !strcmp(phase, "end") && attrs) {
        if (json_object_object_get_ex(attrs, "gen_ai.usage.input_tokens", &v))
            run->input_tokens += json_object_get_int64(v);
        if (json_object_object_get_ex(attrs, "gen_ai.usage.output_tokens", &v))
            run->output_tokens += json_object_get_int64(v);
        if (json_object_object_get_ex(attrs, "gen_ai.usage.cost", &v))
            run->cost_usd += json_object_get_double(v);
        run->model_calls++;
    }
    if (op && !strcmp(op, "execute_tool") && phase && !strcmp(phase, "end"))
        run->tool_calls++;
    const char *err = sget(ev, "error");
    if (to && !strcmp(to, "failed") && err) {
        free(run->error);
        run->error = strdup(err);
    }
    run->last_seq = json_object_get_int64(json_object_object_get(ev, "seq"));
    run->updated_ns = ts;
    if (final_state(run->state))
        run->ended_ns = ts;
    const char *text =
        json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    int rc = store_tx_begin(st);
    if (!rc)
        rc = first ? store_run_insert(st, run) : store_run_update(st, run, run->owner);
    if (!rc)
        rc = store_event_add(st, run->id, run->last_seq, text);
    if (!rc)
        rc = store_tx_commit(st);
    else
        store_tx_rollback(st);
    if (rc)
        fprintf(stderr, "trace_fixture: event %lld: %s\n", (long long)run->last_seq,
                store_errmsg(st));
    return rc;
}

static int load_file(store_t *st, const char *path, long delay, int now, pace_t *pace)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 1;
    }
    store_run_t run;
    memset(&run, 0, sizeof run);
    char *line = NULL;
    size_t cap = 0;
    int first = 1, rc = 0;
    while (!rc && getline(&line, &cap, f) > 0) {
        json_object *ev = json_tokener_parse(line);
        if (!ev) {
            fprintf(stderr, "trace_fixture: %s: bad JSON line\n", path);
            rc = 1;
            break;
        }
        if (!first && delay > 0)
            sleep_ms(delay);
        if (now)
            json_object_object_add(ev, "ts_ns", json_object_new_int64(wall_ns()));
        rc = add_event(st, &run, ev, first, pace);
        first = 0;
        json_object_put(ev);
    }
    free(line);
    fclose(f);
    store_run_clear(&run);
    if (!rc)
        printf("%s\n", run.id);
    return rc;
}

static json_object *mk(const char *run, int64_t seq, int64_t ts, const char *span,
                       const char *parent, const char *phase, const char *op, const char *name)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "v", json_object_new_int(1));
    json_object_object_add(o, "run_id", json_object_new_string(run));
    json_object_object_add(o, "seq", json_object_new_int64(seq));
    json_object_object_add(o, "ts_ns", json_object_new_int64(ts));
    json_object_object_add(o, "span_id", json_object_new_string(span));
    json_object_object_add(o, "parent_id", parent ? json_object_new_string(parent) : NULL);
    json_object_object_add(o, "phase", json_object_new_string(phase));
    json_object_object_add(o, "op", json_object_new_string(op));
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "attrs", json_object_new_object());
    return o;
}

static void set(json_object *o, const char *k, json_object *v)
{
    json_object_object_add(o, k, v);
}

static void attr(json_object *o, const char *k, json_object *v)
{
    json_object_object_add(json_object_object_get(o, "attrs"), k, v);
}

/* A synthetic run of about n events. */
static int generate(store_t *st, long n, const char *run_id, int fail, pace_t *pace)
{
    store_run_t run;
    memset(&run, 0, sizeof run);
    int64_t seq = 0, ts = wall_ns() - n * 1000000LL;
    char span[17], state_span[17] = "", prev_state[16] = "created";
    unsigned long long ctr = 1;
    int rc = 0, step = 0, cycle = 0;
    json_object *e =
        mk(run_id, ++seq, ts, run_id, NULL, "begin", "invoke_agent", "invoke_agent bench");
    attr(e, "gen_ai.agent.name", json_object_new_string("bench"));
    attr(e, "gen_ai.operation.name", json_object_new_string("invoke_agent"));
    rc = add_event(st, &run, e, 1, pace);
    json_object_put(e);
    static const char *const states[] = {"planning", "acting", "observing"};
    static const char *const ops[] = {"plan", "act", "observe"};
    while (!rc && seq < n - 1) {
        int k = cycle++ % 3;
        snprintf(span, sizeof span, "%016llx", 0x1000000000000000ull + ctr++);
        char name[64];
        snprintf(name, sizeof name, "%s %s", ops[k], states[k]);
        e = mk(run_id, ++seq, ts += 100000, span, run_id, "begin", ops[k], name);
        set(e, "state_from", json_object_new_string(prev_state));
        set(e, "state_to", json_object_new_string(states[k]));
        set(e, "event", json_object_new_string("next"));
        set(e, "end_span", state_span[0] ? json_object_new_string(state_span) : NULL);
        set(e, "step", json_object_new_int(step));
        rc = add_event(st, &run, e, 0, pace);
        json_object_put(e);
        snprintf(state_span, sizeof state_span, "%s", span);
        snprintf(prev_state, sizeof prev_state, "%s", states[k]);
        int children = k == 0 ? 1 : k == 1 ? 2 : 0;
        for (int c = 0; !rc && c < children && seq < n - 2; c++) {
            char child[17];
            snprintf(child, sizeof child, "%016llx", 0x2000000000000000ull + ctr++);
            const char *op = k == 0 ? "chat" : "execute_tool";
            const char *nm = k == 0 ? "chat offline"
                             : c    ? "execute_tool search_kb"
                                    : "execute_tool lookup_order";
            e = mk(run_id, ++seq, ts += 200000, child, state_span, "begin", op, nm);
            rc = add_event(st, &run, e, 0, pace);
            json_object_put(e);
            e = mk(run_id, ++seq, ts += 700000, child, state_span, "end", op, nm);
            int bad = k == 1 && c == 1 && step % 50 == 7;
            set(e, "status", json_object_new_string(bad ? "error" : "ok"));
            if (bad)
                set(e, "error", json_object_new_string("search_kb: index unavailable"));
            if (k == 0) {
                attr(e, "gen_ai.usage.input_tokens", json_object_new_int(100 + step));
                attr(e, "gen_ai.usage.output_tokens", json_object_new_int(20));
                step++;
            }
            if (!rc)
                rc = add_event(st, &run, e, 0, pace);
            json_object_put(e);
        }
    }
    if (!rc) {
        e = mk(run_id, ++seq, ts += 100000, run_id, NULL, "end", "invoke_agent",
               "invoke_agent bench");
        set(e, "state_from", json_object_new_string(prev_state));
        set(e, "state_to", json_object_new_string(fail ? "failed" : "done"));
        set(e, "end_span", json_object_new_string(state_span));
        set(e, "status", json_object_new_string(fail ? "error" : "ok"));
        if (fail)
            set(e, "error", json_object_new_string("bench: failed on purpose"));
        rc = add_event(st, &run, e, 0, pace);
        json_object_put(e);
    }
    store_run_clear(&run);
    if (!rc)
        printf("%s %lld\n", run_id, (long long)seq);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: trace_fixture DB FILE.jsonl [--delay-ms N] [--now]\n"
                        "       trace_fixture DB --gen N [--run-id ID] [--fail]\n");
        return 2;
    }
    long delay = 0, gen = 0;
    pace_t pacer = {0, 0, 0};
    int now = 0, fail = 0;
    const char *file = NULL, *run_id = "b0b0b0b0b0b0b0b0";
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--delay-ms") && i + 1 < argc)
            delay = atol(argv[++i]);
        else if (!strcmp(argv[i], "--gen") && i + 1 < argc)
            gen = atol(argv[++i]);
        else if (!strcmp(argv[i], "--run-id") && i + 1 < argc)
            run_id = argv[++i];
        else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
            pacer.rate = atol(argv[++i]);
        else if (!strcmp(argv[i], "--now"))
            now = 1;
        else if (!strcmp(argv[i], "--fail"))
            fail = 1;
        else
            file = argv[i];
    }
    char err[1200];
    store_t *st = store_open(argv[1], STORE_DURABLE_NORMAL, err, sizeof err);
    if (!st) {
        fprintf(stderr, "trace_fixture: %s\n", err);
        return 1;
    }
    int rc = gen > 0 ? generate(st, gen, run_id, fail, &pacer)
             : file  ? load_file(st, file, delay, now, &pacer)
                     : 2;
    store_close(st);
    store_global_shutdown();
    return rc ? 1 : 0;
}
