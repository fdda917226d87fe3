#include "gc_cli.h"

#include "cli.h"
#include "err.h"
#include "loop.h"
#include "store.h"
#include "trace.h"
#include "tracelog.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long long gc_parse_duration(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    double mult;
    switch (*end) {
    case 's': mult = 1; break;
    case 'm': mult = 60; break;
    case 'h': mult = 3600; break;
    case 'd': mult = 86400; break;
    case 'w': mult = 7 * 86400; break;
    default: return -1;
    }
    if (end[1])
        return -1;
    return (long long)(v * mult * 1e9);
}

typedef struct gc {
    const char *traces;
    int files;
} gc_t;

static int remove_trace(void *ud, const char *run_id, const char *agent_path)
{
    (void)agent_path;
    gc_t *g = ud;
    char path[1200];
    if (trace_file_path(g->traces, run_id, path, sizeof path) == 0 && unlink(path) == 0)
        g->files++;
    return 0;
}

static int oldest_run(void *ud, const store_run_t *r)
{
    *(int64_t *)ud = r->created_ns;
    return 1;
}

/* The segment log cannot lose single runs' lines: a segment goes when every run that may
 * have lines in it is gone, i.e. it was last written before the oldest run left was
 * created (tracelog_prune). */
static int prune_segments(store_t *st, const char *traces, int *removed)
{
    int64_t n = 0, oldest = (int64_t)loop_wall_ns();
    int rc = store_runs_count(st, NULL, &n);
    if (!rc && n > 0 && n <= INT_MAX)
        rc = store_runs_range(st, NULL, (int)(n - 1), 1, oldest_run, &oldest);
    if (rc)
        return rc;
    if (tracelog_prune(traces, oldest, removed))
        fprintf(stderr, "agentd: gc: %s: cannot read the traces folder; its segments were "
                "kept\n", traces);
    return 0;
}

int gc_cli_main(int argc, char **argv)
{
    const char *db = NULL, *older = NULL, *keep_s = NULL;
    const char *traces_opt = NULL;
    char traces[1024];
    gc_t g = {.traces = NULL};
    int vacuum = 0;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int m;
        if (!strcmp(argv[i], "--vacuum")) {
            vacuum = 1;
            continue;
        }
        if ((m = cli_opt(argc, argv, &i, "--db", &val)) != 0) {
            if (m < 0)
                return CLI_USAGE;
            db = val;
            continue;
        }
        if ((m = cli_opt(argc, argv, &i, "--traces", &val)) != 0) {
            if (m < 0)
                return CLI_USAGE;
            traces_opt = val;
            continue;
        }
        if ((m = cli_opt(argc, argv, &i, "--older-than", &val)) != 0) {
            if (m < 0)
                return CLI_USAGE;
            older = val;
            continue;
        }
        if ((m = cli_opt(argc, argv, &i, "--keep", &val)) != 0) {
            if (m < 0)
                return CLI_USAGE;
            keep_s = val;
            continue;
        }
        fprintf(stderr, "agentd: gc: unknown argument %s\n", argv[i]);
        goto usage;
    }
    if (!older && !keep_s)
        goto usage;
    long long before = 0;
    if (older) {
        long long d = gc_parse_duration(older);
        if (d < 0) {
            fprintf(stderr, "agentd: --older-than: expected a duration like 30d, 12h, 15m, 90s; "
                    "got \"%s\"\n", older);
            return CLI_USAGE;
        }
        before = (long long)loop_wall_ns() - d;
    }
    long keep = -1;
    if (keep_s && (keep = cli_long("--keep", keep_s, 0, 1000000000)) < 0)
        return CLI_USAGE;
    int code;
    store_t *st = cli_open_db(db, STORE_OPEN_WRITE, "agentd gc", &code);
    if (!st)
        return code;
    g.traces = cli_traces_dir(db, traces_opt, traces, sizeof traces);
    int deleted = 0, rc, segs = 0;
    rc = store_gc(st, before, (int)keep, remove_trace, &g, &deleted);
    if (!rc)
        rc = prune_segments(st, g.traces, &segs);
    if (!rc && vacuum)
        rc = store_vacuum(st);
    if (rc)
        fprintf(stderr, "agentd gc: %s: %s\n", store_path(st), store_errmsg(st));
    else
        printf("deleted %d run%s and %d trace file%s in %s%s\n", deleted,
               deleted == 1 ? "" : "s", g.files + segs, g.files + segs == 1 ? "" : "s",
               g.traces, vacuum ? "; database vacuumed" : "");
    store_close(st);
    return rc ? CLI_INTERNAL : CLI_OK;
usage:
    fprintf(stderr, "usage: agentd gc (--older-than DURATION | --keep N) [--vacuum] [--db PATH] "
            "[--traces DIR]\n");
    return CLI_USAGE;
}
