/*
 * stats_cli: see stats_cli.h. Both commands read the database only.
 */
#include "stats_cli.h"

#include "cli.h"
#include "err.h"
#include "eval/stats.h"
#include "jx.h"
#include "loop.h"
#include "sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Read only (cli_open_db): a read-only database or folder is fine; no database is exit 2,
 * a database error exit 4. */
static int open_db(const char *db, store_t **st)
{
    int code = 0;
    *st = cli_open_db(db, STORE_OPEN_READ, "agentd", &code);
    return *st ? 0 : code;
}

int stats_cli_main(int argc, char **argv)
{
    const char *since = "24h", *db = NULL;
    stats_query_t q = {0};
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int m;
#define OPT(name) CLI_OPT(name, return CLI_USAGE)
        if (!strcmp(argv[i], "--json")) {
            json = 1;
            continue;
        }
        OPT("--since") { since = val; continue; }
        OPT("--agent") { q.agent = val; continue; }
        OPT("--by") { q.by = val; continue; }
        OPT("--db") { db = val; continue; }
#undef OPT
        fprintf(stderr, "usage: agentd stats [--since 24h] [--agent NAME] [--by agent|model|tool] "
                        "[--json] [--db PATH]\n");
        return CLI_USAGE;
    }
    int64_t win = strcmp(since, "all") ? stats_parse_duration(since) : 0;
    if (win < 0) {
        fprintf(stderr, "agentd: --since %s: expected a duration like 90s, 30m, 24h, 7d, or all\n",
                since);
        return CLI_USAGE;
    }
    q.since_ns = win ? (int64_t)loop_wall_ns() - win : 0;
    store_t *st;
    int oc = open_db(db, &st);
    if (oc)
        return oc;
    json_object *out = NULL;
    char err[1024];
    int rc = stats_collect(st, &q, &out, err, sizeof err);
    store_close(st);
    if (rc) {
        fprintf(stderr, "agentd: %s\n", err);
        return rc == ERR_INVAL ? CLI_USAGE : CLI_INTERNAL;
    }
    json_object_object_add(out, "window", json_object_new_string(since));
    if (json) {
        printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    } else {
        printf("runs of the last %s%s%s%s\n\n", since, q.agent ? ", agent " : "",
               q.agent ? q.agent : "", q.by ? "" : "");
        stats_print(stdout, out);
    }
    json_object_put(out);
    return CLI_OK;
}

/* ---- slo check ---------------------------------------------------------------------- */

static int slo_usage(void)
{
    fprintf(stderr, "usage: agentd slo check SLO_FILE [--db PATH]\n");
    return CLI_USAGE;
}

/* "0.02" as 2.0%, ms as ms, dollars as $: how a figure reads in a line. */
static void fmt_figure(const char *name, double v, char *buf, size_t len)
{
    if (strstr(name, "rate"))
        snprintf(buf, len, "%.2f%%", v * 100);
    else if (strstr(name, "usd"))
        snprintf(buf, len, "$%.6f", v);
    else if (strstr(name, "_ms"))
        snprintf(buf, len, "%.0f ms", v);
    else
        snprintf(buf, len, "%g", v);
}

int slo_cli_main(int argc, char **argv)
{
    const char *file = NULL, *db = NULL;
    if (argc < 2 || strcmp(argv[1], "check"))
        return slo_usage();
    for (int i = 2; i < argc; i++) {
        const char *val;
        int m = cli_opt(argc, argv, &i, "--db", &val);
        if (m < 0)
            return CLI_USAGE;
        if (m > 0)
            db = val;
        else if (argv[i][0] != '-' && !file)
            file = argv[i];
        else
            return slo_usage();
    }
    if (!file)
        return slo_usage();
    json_object *conf = NULL, *objs;
    char err[1024];
    if (sandbox_load_table(file, 0, &conf, err, sizeof err)) {
        fprintf(stderr, "agentd: %s\n", err);
        return CLI_USAGE;
    }
    const char *window = jx_str_or(conf, "window", "1h");
    int64_t win = stats_parse_duration(window);
    objs = jx_get(conf, "objectives");
    int code = CLI_OK;
    if (win <= 0 || !objs || !json_object_is_type(objs, json_type_array) ||
        !json_object_array_length(objs)) {
        fprintf(stderr, "agentd: %s: %s\n", file,
                win <= 0 ? "window: expected a duration like 1h, 30m, 7d"
                         : "objectives: a list of {figure = \"error_rate\", max = 0.02}");
        json_object_put(conf);
        return CLI_USAGE;
    }
    stats_query_t q = {.since_ns = (int64_t)loop_wall_ns() - win, .agent = jx_str(conf, "agent")};
    store_t *st;
    int oc = open_db(db, &st);
    if (oc) {
        json_object_put(conf);
        return oc;
    }
    json_object *stats = NULL;
    int rc = stats_collect(st, &q, &stats, err, sizeof err);
    store_close(st);
    if (rc) {
        fprintf(stderr, "agentd: %s\n", err);
        json_object_put(conf);
        return CLI_INTERNAL;
    }
    json_object *g = json_object_array_get_idx(jx_get(stats, "groups"), 0);
    long runs = (long)jx_int(g, "runs", 0);
    int breached = 0;
    for (size_t i = 0; i < json_object_array_length(objs); i++) {
        json_object *o = json_object_array_get_idx(objs, i), *mx = jx_get(o, "max"),
                    *mn = jx_get(o, "min");
        const char *fig = jx_str(o, "figure");
        double v;
        if (!fig || stats_figure(g, fig, &v) || (!mx && !mn)) {
            fprintf(stderr, "agentd: %s: objectives[%zu]: %s\n", file, i + 1,
                    !fig ? "figure: required (error_rate, p95_latency_ms, cost_per_run_usd, ...)"
                    : (!mx && !mn) ? "give max = N or min = N"
                                   : "figure: unknown (see docs/eval.md for the list)");
            code = CLI_USAGE;
            break;
        }
        double lim = json_object_get_double(mx ? mx : mn);
        int bad = mx ? v > lim : v < lim;
        char have[64], want[64];
        fmt_figure(fig, v, have, sizeof have);
        fmt_figure(fig, lim, want, sizeof want);
        printf("%s %s %s %s %s over the last %s (%ld run%s%s%s)\n",
               bad ? "BREACHED" : "ok      ", fig, have,
               bad ? (mx ? ">" : "<") : (mx ? "<=" : ">="), want, window, runs,
               runs == 1 ? "" : "s", q.agent ? ", agent " : "", q.agent ? q.agent : "");
        breached += bad;
    }
    if (code == CLI_OK && breached)
        code = CLI_FAILED;
    json_object_put(stats);
    json_object_put(conf);
    return code;
}
