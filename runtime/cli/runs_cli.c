/*
 * runs_cli: `agentd runs`, the table of runs newest first, or JSON for scripts.
 */
#include "runs_cli.h"

#include "cli.h"
#include "err.h"
#include "viewer/viewer_int.h"
#include "jx.h"

#include <json-c/json.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char runs_cli_usage[] =
    "agentd runs [--json] [--state STATE] [--limit N] [--offset N] [--db PATH]\n"
    "\n"
    "List runs, newest first: id, agent, state, the model that answered (↩ after a\n"
    "fallback), steps, duration, tokens, cost. The last line says how many runs there are\n"
    "and how to see the others.\n"
    "  --json         a JSON array of run objects\n"
    "  --state STATE  only runs in this state (created, planning, acting, observing,\n"
    "                 waiting, done, failed, cancelled)\n"
    "  --limit N      at most N runs (default 50; 0 for all)\n"
    "  --offset N     skip the newest N runs (the next page)\n"
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

enum { AGENT_W = 16, MODEL_W = 20 };

/* s padded to w columns, or cut to w-1 columns and "…" so a cut is visible. Counts UTF-8
 * characters as one column each. */
static const char *clip(const char *s, int w, char *buf, size_t len)
{
    int cols = 0;
    size_t i = 0, cut = 0;
    for (; s[i]; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (++cols == w)
                cut = i;
        }
    if (cols > w)
        snprintf(buf, len, "%.*s…", (int)cut, s);
    else
        snprintf(buf, len, "%s%*s", s, w - cols, "");
    return buf;
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
        json_object_object_add(o, "answered_by", r->answered_by[0]
                                                     ? json_object_new_string(r->answered_by)
                                                     : NULL);
        json_object_object_add(o, "fallback",
                               r->fallback[0] ? json_object_new_string(r->fallback) : NULL);
        json_object_object_add(o, "created_ns", json_object_new_int64(r->created_ns));
        json_object_object_add(o, "ended_ns",
                               r->ended_ns ? json_object_new_int64(r->ended_ns) : NULL);
        json_object_object_add(o, "duration_ms",
                               jx_new_num((double)run_duration(r) / 1e6));
        json_object_object_add(o, "input_tokens", json_object_new_int64(r->input_tokens));
        json_object_object_add(o, "output_tokens", json_object_new_int64(r->output_tokens));
        json_object_object_add(o, "cost_usd", jx_new_num(r->cost_usd));
        json_object_object_add(o, "model_calls", json_object_new_int(r->model_calls));
        json_object_object_add(o, "tool_calls", json_object_new_int(r->tool_calls));
        json_object_object_add(o, "events", json_object_new_int64(r->last_seq));
        json_object_object_add(o, "reason",
                               r->reason[0] ? json_object_new_string(r->reason) : NULL);
        json_object_object_add(o, "error", r->error ? json_object_new_string(r->error) : NULL);
        json_object_object_add(o, "input", r->input ? json_object_new_string(r->input) : NULL);
        json_object_object_add(o, "answer",
                               r->answer ? json_object_new_string(r->answer) : NULL);
        json_object_array_add(c->arr, o);
    } else {
        char dur[32], when[32];
        time_t t = (time_t)(r->created_ns / 1000000000);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        char agent[64], model[64], m[160];
        snprintf(m, sizeof m, "%s%s", r->answered_by[0] ? r->answered_by : r->model,
                 r->fallback[0] ? " ↩" : "");
        printf("%-16.16s  %s  %-9s  %s  %5d  %8s  %8lld  %9.6f  %s\n", r->id,
               clip(r->agent, AGENT_W, agent, sizeof agent), r->state,
               clip(m, MODEL_W, model, sizeof model), r->step,
               spantree_fmt_dur(run_duration(r), dur, sizeof dur),
               (long long)(r->input_tokens + r->output_tokens), r->cost_usd, when);
    }
    c->n++;
    return 0;
}

int runs_cli_main(int argc, char **argv)
{
    const char *db = NULL, *state = NULL;
    long limit = 50, offset = 0;
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
        } else if ((r = cli_opt(argc, argv, &i, "--offset", &v)) != 0) {
            if (r < 0 || (offset = cli_long("--offset", v, 0, 1000000000)) < 0)
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
    static const char *const states[] = {"created", "planning", "acting",    "observing",
                                         "waiting", "done",     "failed",    "cancelled",
                                         "compacting"};
    if (state) {
        size_t k = 0;
        while (k < sizeof states / sizeof states[0] && strcmp(states[k], state))
            k++;
        if (k == sizeof states / sizeof states[0]) {
            fprintf(stderr,
                    "agentd runs: --state: unknown state \"%s\" (created, planning, "
                    "acting, observing, waiting, done, failed, cancelled, compacting)\n",
                    state);
            return CLI_USAGE;
        }
    }
    setlocale(LC_ALL, "");
    int code;
    store_t *st = cli_open_db(db, STORE_OPEN_READ, "agentd runs", &code);
    if (!st)
        return code;
    list_ctx_t c = {json, json ? json_object_new_array() : NULL, 0};
    if (!json)
        printf("%-16s  %-*s  %-9s  %-*s  %5s  %8s  %8s  %9s  %s\n", "id", AGENT_W, "agent",
               "state", MODEL_W, "model", "steps", "duration", "tokens", "cost $", "started");
    int64_t total = 0;
    int rc = store_runs_count(st, state, &total);
    if (!rc)
        rc = store_runs_range(st, state, (int)offset, (int)limit, print_row, &c);
    code = CLI_OK;
    if (rc) {
        fprintf(stderr, "agentd runs: %s: %s\n", store_path(st), store_errmsg(st));
        code = CLI_INTERNAL;
    } else if (json) {
        puts(json_object_to_json_string_ext(c.arr, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
    } else if (c.n == 0) {
        printf("(no runs%s%s%s)\n", state ? " in state " : "", state ? state : "",
               offset && total ? " at this offset" : "");
    } else if (offset > 0 || c.n < total) {
        /* Say what is not shown, and the command that shows it. */
        printf("runs %ld-%ld of %lld%s%s, newest first", offset + 1, offset + c.n,
               (long long)total, state ? " in state " : "", state ? state : "");
        char lim[32] = "";
        if (limit != 50)
            snprintf(lim, sizeof lim, " --limit %ld", limit);
        if (offset + c.n < total)
            printf("; older: agentd runs --offset %ld%s, all: --limit 0", offset + c.n, lim);
        printf("\n");
    } else {
        printf("%d run%s\n", c.n, c.n == 1 ? "" : "s");
    }
    json_object_put(c.arr);
    store_close(st);
    store_global_shutdown();
    if (fflush(stdout) != 0)
        code = CLI_INTERNAL;
    return code;
}
