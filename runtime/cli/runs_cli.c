/*
 * runs_cli: `agentd runs`, the table of runs newest first, or JSON for scripts.
 */
#include "runs_cli.h"

#include "cli.h"
#include "err.h"
#include "viewer/viewer_int.h"

#include <json-c/json.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char runs_cli_usage[] =
    "agentd runs [--json] [--state STATE] [--limit N] [--db PATH]\n"
    "\n"
    "List runs, newest first: id, agent, state, steps, duration, tokens, cost.\n"
    "  --json         a JSON array of run objects\n"
    "  --state STATE  only runs in this state (created, planning, acting, observing,\n"
    "                 waiting, done, failed, cancelled)\n"
    "  --limit N      at most N runs (default 50; 0 for all)\n"
    "  --db PATH      database (default $AGENTD_DB, else ./agentd.db)\n";

typedef struct list_ctx {
    int json;
    json_object *arr;
    int n;
} list_ctx_t;

static int64_t run_duration(const store_run_t *r)
{
    int64_t end = r->ended_ns ? r->ended_ns : r->updated_ns;
    return end > r->created_ns ? end - r->created_ns : 0;
}

static int print_row(void *ud, const store_run_t *r)
{
    list_ctx_t *c = ud;
    if (c->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(r->id));
        json_object_object_add(o, "agent", json_object_new_string(r->agent));
        json_object_object_add(o, "state", json_object_new_string(r->state));
        json_object_object_add(o, "steps", json_object_new_int(r->step));
        json_object_object_add(o, "model", json_object_new_string(r->model));
        json_object_object_add(o, "created_ns", json_object_new_int64(r->created_ns));
        json_object_object_add(o, "ended_ns",
                               r->ended_ns ? json_object_new_int64(r->ended_ns) : NULL);
        json_object_object_add(o, "duration_ms",
                               json_object_new_double((double)run_duration(r) / 1e6));
        json_object_object_add(o, "input_tokens", json_object_new_int64(r->input_tokens));
        json_object_object_add(o, "output_tokens", json_object_new_int64(r->output_tokens));
        json_object_object_add(o, "cost_usd", json_object_new_double(r->cost_usd));
        json_object_object_add(o, "model_calls", json_object_new_int(r->model_calls));
        json_object_object_add(o, "tool_calls", json_object_new_int(r->tool_calls));
        json_object_object_add(o, "events", json_object_new_int64(r->last_seq));
        json_object_object_add(o, "reason",
                               r->reason[0] ? json_object_new_string(r->reason) : NULL);
        json_object_object_add(o, "error", r->error ? json_object_new_string(r->error) : NULL);
        json_object_array_add(c->arr, o);
    } else {
        char dur[32], when[32];
        time_t t = (time_t)(r->created_ns / 1000000000);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        printf("%-16.16s  %-14.14s  %-9s  %5d  %8s  %8lld  %9.6f  %s\n", r->id, r->agent, r->state,
               r->step, spantree_fmt_dur(run_duration(r), dur, sizeof dur),
               (long long)(r->input_tokens + r->output_tokens), r->cost_usd, when);
    }
    c->n++;
    return 0;
}

int runs_cli_main(int argc, char **argv)
{
    const char *db = NULL, *state = NULL;
    long limit = 50;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if ((r = cli_opt(argc, argv, &i, "--db", &v)) != 0) {
            if (r < 0)
                return CLI_USAGE;
            db = v;
        } else if ((r = cli_opt(argc, argv, &i, "--state", &v)) != 0) {
            if (r < 0)
                return CLI_USAGE;
            state = v;
        } else if ((r = cli_opt(argc, argv, &i, "--limit", &v)) != 0) {
            if (r < 0 || (limit = cli_long("--limit", v, 0, 1000000000)) < 0)
                return CLI_USAGE;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(runs_cli_usage, stdout);
            return CLI_OK;
        } else {
            fprintf(stderr, "agentd runs: unexpected argument \"%s\"; see agentd help runs\n",
                    argv[i]);
            return CLI_USAGE;
        }
    }
    static const char *const states[] = {"created", "planning", "acting", "observing",
                                         "waiting", "done",     "failed", "cancelled"};
    if (state) {
        size_t k = 0;
        while (k < sizeof states / sizeof states[0] && strcmp(states[k], state))
            k++;
        if (k == sizeof states / sizeof states[0]) {
            fprintf(stderr,
                    "agentd runs: --state: unknown state \"%s\" (created, planning, "
                    "acting, observing, waiting, done, failed, cancelled)\n",
                    state);
            return CLI_USAGE;
        }
    }
    setlocale(LC_ALL, "");
    const char *path = cli_db_path(db);
    char err[1200];
    store_t *st = viewer_open_db(path, err, sizeof err);
    if (!st) {
        fprintf(stderr, "agentd runs: %s\n", err);
        return CLI_USAGE;
    }
    list_ctx_t c = {json, json ? json_object_new_array() : NULL, 0};
    if (!json)
        printf("%-16s  %-14s  %-9s  %5s  %8s  %8s  %9s  %s\n", "id", "agent", "state", "steps",
               "duration", "tokens", "cost $", "started");
    int rc = store_runs_each(st, state, (int)limit, print_row, &c);
    int code = CLI_OK;
    if (rc) {
        fprintf(stderr, "agentd runs: %s: %s\n", path, store_errmsg(st));
        code = CLI_INTERNAL;
    } else if (json) {
        puts(json_object_to_json_string_ext(c.arr, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
    } else if (c.n == 0) {
        printf("(no runs%s%s)\n", state ? " in state " : "", state ? state : "");
    }
    json_object_put(c.arr);
    store_close(st);
    store_global_shutdown();
    if (fflush(stdout) != 0)
        code = CLI_INTERNAL;
    return code;
}
