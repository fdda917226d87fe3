/*
 * viewer_cli: the `agentd trace` command line. Chooses between the interactive viewer
 * (stdout is a terminal), the plain tree, raw JSON, follow mode and OTLP export.
 */
#include "viewer/viewer.h"

#include "cli.h"
#include "err.h"
#include "otlp.h"
#include "viewer/viewer_int.h"

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char viewer_usage[] =
    "agentd trace [RUN] [--plain] [--json] [--follow] [--db PATH]\n"
    "agentd trace export RUN... --otlp [-o FILE] [--db PATH]\n"
    "\n"
    "Without RUN on a terminal: the runs list. With RUN: the run's span tree with a timeline\n"
    "(interactive on a terminal, text otherwise). RUN may be a unique prefix of a run id,\n"
    "or a trace file (traces/<id>.jsonl), which needs no database.\n"
    "  --plain      print the tree as text even on a terminal\n"
    "  --json       print the run's raw events, one JSON object per line\n"
    "  --follow     keep printing events as they commit until the run ends\n"
    "  --otlp       (export) write OTLP/JSON, one TracesData object per line per run\n"
    "  -o FILE      (export) write to FILE instead of stdout\n"
    "  --db PATH    database (default $AGENTD_DB, else ./agentd.db)\n";

typedef struct opts {
    const char *db, *out;
    const char *runs[64];
    int nruns;
    int plain, json, follow, otlp, export;
} opts_t;

static int parse(int argc, char **argv, opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if ((r = cli_opt(argc, argv, &i, "--db", &v)) != 0) {
            if (r < 0)
                return -1;
            o->db = v;
        } else if (!strcmp(argv[i], "-o") || !strncmp(argv[i], "--output", 8)) {
            if ((r = cli_opt(argc, argv, &i, argv[i][1] == 'o' ? "-o" : "--output", &v)) <= 0)
                return -1;
            o->out = v;
        } else if (!strcmp(argv[i], "--plain")) {
            o->plain = 1;
        } else if (!strcmp(argv[i], "--json")) {
            o->json = 1;
        } else if (!strcmp(argv[i], "--follow") || !strcmp(argv[i], "-f")) {
            o->follow = 1;
        } else if (!strcmp(argv[i], "--otlp")) {
            o->otlp = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(viewer_usage, stdout);
            exit(CLI_OK);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "agentd trace: unknown option \"%s\"; see agentd help trace\n",
                    argv[i]);
            return -1;
        } else if (i == 1 && !strcmp(argv[i], "export") && !o->export) {
            o->export = 1;
        } else if (o->nruns < (int)(sizeof o->runs / sizeof o->runs[0])) {
            o->runs[o->nruns++] = argv[i];
        } else {
            fprintf(stderr, "agentd trace: too many runs\n");
            return -1;
        }
    }
    if (o->export && (!o->otlp || o->nruns == 0)) {
        fprintf(stderr,
                "agentd trace export: usage: agentd trace export RUN... --otlp [-o FILE]\n");
        return -1;
    }
    if (!o->export && o->nruns > 1) {
        fprintf(stderr, "agentd trace: one RUN at a time (export takes several)\n");
        return -1;
    }
    if (o->otlp && !o->export) {
        fprintf(stderr, "agentd trace: --otlp belongs to `agentd trace export RUN --otlp`\n");
        return -1;
    }
    return 0;
}

/* A RUN argument naming a trace file (traces/<id>.jsonl, a CI artifact) rather than a run
 * in the database. */
static int is_trace_file(const char *arg)
{
    size_t n = strlen(arg);
    return n > 6 && strcmp(arg + n - 6, ".jsonl") == 0;
}

/* Load a trace file into a new model and describe the run from its events alone. */
static int load_file(const char *path, store_run_t *run, spantree_t **out)
{
    char err[512];
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "agentd trace: %s: %s\n", path, strerror(errno));
        return CLI_USAGE;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[65536];
    size_t n;
    while (mem && (n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, mem);
    int bad = ferror(f);
    fclose(f);
    if (mem)
        fclose(mem);
    spantree_t *m = spantree_new(NULL);
    int rc = !text || !m ? ERR_NOMEM : bad ? ERR_IO : spantree_add_jsonl(m, text, err, sizeof err);
    free(text);
    if (rc || m->nevs == 0) {
        fprintf(stderr, "agentd trace: %s: %s\n", path,
                rc == ERR_INVAL ? err
                : rc == ERR_IO  ? strerror(EIO)
                : rc            ? err_str(rc)
                                : "no trace events in the file");
        spantree_free(m);
        return rc && rc != ERR_INVAL ? CLI_INTERNAL : CLI_USAGE;
    }
    memset(run, 0, sizeof *run);
    snprintf(run->id, sizeof run->id, "%s", m->run_id);
    snprintf(run->agent, sizeof run->agent, "%s", m->agent);
    snprintf(run->state, sizeof run->state, "%s", m->last_state[0] ? m->last_state : "?");
    run->step = m->steps;
    run->cost_usd = m->cost;
    int root = spantree_root(m);
    if (root >= 0 && m->spans[root].error)
        run->error = strdup(m->spans[root].error);
    *out = m;
    return CLI_OK;
}

/* Resolve RUN (id or unique prefix, or a trace file) and load all its events into a new
 * model. */
static int load_run(store_t *st, const char *arg, store_run_t *run, spantree_t **out)
{
    char err[512];
    if (is_trace_file(arg))
        return load_file(arg, run, out);
    int rc = store_run_get(st, arg, run);
    if (rc) {
        if (rc == ERR_NOTFOUND)
            fprintf(stderr, "agentd trace: no run matches \"%s\"; see agentd runs\n", arg);
        else if (rc == ERR_INVAL)
            fprintf(stderr, "agentd trace: \"%s\" matches several runs; type more of the id\n",
                    arg);
        else
            fprintf(stderr, "agentd trace: reading run \"%s\": %s\n", arg, store_errmsg(st));
        return rc == ERR_NOTFOUND || rc == ERR_INVAL ? CLI_USAGE : CLI_INTERNAL;
    }
    spantree_t *m = spantree_new(run->id);
    if (!m || (rc = viewer_load(st, m, err, sizeof err)) != 0) {
        fprintf(stderr, "agentd trace: %s\n", m ? err : "out of memory");
        spantree_free(m);
        store_run_clear(run);
        return CLI_INTERNAL;
    }
    *out = m;
    return CLI_OK;
}

static int export_otlp(store_t *st, const opts_t *o)
{
    char tmp[4200];
    FILE *f = stdout;
    if (o->out) {
        /* Write beside the target and rename, so a reader never sees half a file. */
        snprintf(tmp, sizeof tmp, "%s.tmp.%d", o->out, (int)getpid());
        f = fopen(tmp, "w");
        if (!f) {
            perror(o->out);
            return CLI_USAGE;
        }
    }
    int code = CLI_OK;
    for (int i = 0; i < o->nruns && code == CLI_OK; i++) {
        store_run_t run;
        spantree_t *m = NULL;
        code = load_run(st, o->runs[i], &run, &m);
        if (code)
            break;
        int rc = otlp_write(m, f);
        if (rc) {
            fprintf(stderr, "agentd trace export: run %s: %s\n", run.id,
                    rc == ERR_INVAL ? "no trace events" : err_str(rc));
            code = rc == ERR_INVAL ? CLI_FAILED : CLI_INTERNAL;
        }
        spantree_free(m);
        store_run_clear(&run);
    }
    if (o->out) {
        if (fclose(f) != 0 && code == CLI_OK) {
            perror(o->out);
            code = CLI_INTERNAL;
        }
        if (code == CLI_OK && rename(tmp, o->out) != 0) {
            perror(o->out);
            code = CLI_INTERNAL;
        }
        if (code != CLI_OK)
            unlink(tmp);
    } else if (fflush(stdout) != 0) {
        code = CLI_INTERNAL;
    }
    return code;
}

static int show_run(store_t *st, const opts_t *o)
{
    store_run_t run;
    spantree_t *m = NULL;
    if (o->follow) {
        if (!st) {
            fprintf(stderr, "agentd trace: --follow reads a run from the database, not a file\n");
            return CLI_USAGE;
        }
        int rc = store_run_get(st, o->runs[0], &run);
        if (rc) {
            fprintf(stderr, "agentd trace: no single run matches \"%s\"; see agentd runs\n",
                    o->runs[0]);
            return CLI_USAGE;
        }
        char id[40];
        snprintf(id, sizeof id, "%s", run.id);
        store_run_clear(&run);
        return viewer_follow_plain(st, id, o->json, stdout);
    }
    int code = load_run(st, o->runs[0], &run, &m);
    if (code)
        return code;
    if (o->json) {
        for (int i = 0; i < m->nevs; i++)
            printf("%s\n", m->evs[i].json);
    } else {
        viewer_plain_tree(m, &run, stdout);
    }
    spantree_free(m);
    store_run_clear(&run);
    return fflush(stdout) == 0 ? CLI_OK : CLI_INTERNAL;
}

int viewer_main(int argc, char **argv)
{
    opts_t o;
    memset(&o, 0, sizeof o);
    if (parse(argc, argv, &o))
        return CLI_USAGE;
    setlocale(LC_ALL, "");
    /* Trace files need no database: a CI artifact can be read or exported anywhere. */
    int files = o.nruns > 0;
    for (int i = 0; i < o.nruns; i++)
        files &= is_trace_file(o.runs[i]);
    const char *path = cli_db_path(o.db);
    int code = 0;
    store_t *st = files ? NULL : cli_open_db(o.db, STORE_OPEN_READ, "agentd trace", &code);
    if (!files && !st)
        return code;
    int tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
    if (o.export)
        code = export_otlp(st, &o);
    else if (tty && !o.plain && !o.json && !files)
        code = viewer_tui(st, path, o.nruns ? o.runs[0] : NULL, o.follow);
    else if (o.nruns == 0) {
        fprintf(stderr, "agentd trace: which run? usage: agentd trace RUN (see agentd runs)\n");
        code = CLI_USAGE;
    } else
        code = show_run(st, &o);
    store_close(st);
    store_global_shutdown();
    return code;
}
