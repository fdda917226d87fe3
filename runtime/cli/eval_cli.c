/*
 * eval_cli: `agentd eval`. Loads the eval file, runs it (eval_run), prints the table and
 * summary (or the JSON results), writes the JUnit and results files, and applies the gate:
 * exit 0 no regression, 1 regression, 2 harness error (bad file, a run that could not
 * start, a judge that could not grade).
 */
#include "eval_cli.h"

#include "cli.h"
#include "err.h"
#include "eval/eval.h"
#include "jx.h"
#include "schema/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { GATE_OK = 0, GATE_REGRESSION = 1, GATE_HARNESS = 2 };

static int usage(void)
{
    fprintf(stderr,
            "usage: agentd eval FILE [--model A,B] [--agent A.lua,B.lua] [--repeat N] "
            "[--concurrency C] [--cache MODE] [--judge MODEL] [--baseline FILE] [--save FILE] "
            "[--json | --junit FILE] [--db PATH] [--traces DIR]\n");
    return GATE_HARNESS;
}

/* "a,b,c" -> NULL-terminated array pointing into a copy (*buf, to free). */
static const char **split(const char *s, char **buf)
{
    *buf = strdup(s);
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == ',';
    const char **v = calloc(n + 1, sizeof *v);
    if (!*buf || !v) {
        free(v);
        return NULL;
    }
    size_t i = 0;
    for (char *save = NULL, *t = strtok_r(*buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        v[i++] = t;
    return v;
}

static json_object *read_json_file(const char *path, char *errbuf, size_t errlen)
{
    size_t len = 0;
    char *text = cli_read_file(path, &len);
    if (!text) {
        err_set(errbuf, errlen, ERR_IO, "%s: cannot read", path);
        return NULL;
    }
    json_object *o = NULL;
    char perr[200];
    if (schema_parse_json(text, len, &o, perr, sizeof perr)) {
        err_set(errbuf, errlen, ERR_INVAL, "%s: %s", path, perr);
        o = NULL;
    } else if (!json_object_is_type(o, json_type_object) || !jx_get(o, "variants")) {
        err_set(errbuf, errlen, ERR_INVAL,
                "%s: not an eval results file (no \"variants\"; write one with --save)", path);
        json_object_put(o);
        o = NULL;
    }
    free(text);
    return o;
}

int eval_cli_main(int argc, char **argv)
{
    eval_opts_t o;
    memset(&o, 0, sizeof o);
    const char *file = NULL, *baseline = NULL, *junit = NULL, *save = NULL, *models = NULL,
               *agents = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int m;
#define OPT(name) CLI_OPT(name, return GATE_HARNESS)
        if (!strcmp(argv[i], "--json")) {
            json = 1;
            continue;
        }
        OPT("--model") { models = val; continue; }
        OPT("--agent") { agents = val; continue; }
        OPT("--repeat") {
            long n = cli_long("--repeat", val, 1, 1000);
            if (n < 0)
                return GATE_HARNESS;
            o.repeat = (int)n;
            continue;
        }
        OPT("--concurrency") {
            long n = cli_long("--concurrency", val, 1, 10000);
            if (n < 0)
                return GATE_HARNESS;
            o.concurrency = (int)n;
            continue;
        }
        OPT("--cache") { o.cache_mode = val; continue; }
        OPT("--judge") { o.judge = val; continue; }
        OPT("--baseline") { baseline = val; continue; }
        OPT("--junit") { junit = val; continue; }
        OPT("--save") { save = val; continue; }
        OPT("--db") { o.db_path = val; continue; }
        OPT("--traces") { o.traces_dir = val; continue; }
#undef OPT
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "agentd: %s: unknown option (see agentd help eval)\n", argv[i]);
            return usage();
        }
        if (file)
            return usage();
        file = argv[i];
    }
    if (!file)
        return usage();
    if (json && junit) {
        fprintf(stderr, "agentd: --json and --junit: choose one (--save writes the JSON "
                        "results to a file beside --junit)\n");
        return GATE_HARNESS;
    }
    char err[1024];
    json_object *base = NULL, *res = NULL;
    if (baseline && !(base = read_json_file(baseline, err, sizeof err))) {
        fprintf(stderr, "agentd: --baseline %s\n", err);
        return GATE_HARNESS;
    }
    eval_t *e = eval_load(file, err, sizeof err);
    if (!e) {
        fprintf(stderr, "agentd: %s\n", err);
        json_object_put(base);
        return GATE_HARNESS;
    }
    char *mbuf = NULL, *abuf = NULL;
    const char **mv = models ? split(models, &mbuf) : NULL;
    const char **av = agents ? split(agents, &abuf) : NULL;
    o.models = mv;
    o.agents = av;
    o.progress = !json && isatty(2);
    int code = GATE_OK;
    if (eval_run(e, &o, &res, err, sizeof err)) {
        fprintf(stderr, "agentd: %s: %s\n", file, err);
        code = GATE_HARNESS;
        goto out;
    }
    FILE *rep = json ? stderr : stdout;
    if (json)
        printf("%s\n", json_object_to_json_string_ext(res, JSON_C_TO_STRING_PRETTY |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    else
        eval_print(stdout, res);
    if (junit && eval_junit_write(junit, res, err, sizeof err)) {
        fprintf(stderr, "agentd: %s\n", err);
        code = GATE_HARNESS;
    }
    if (save && json_object_to_file_ext(save, res, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE) != 0) {
        fprintf(stderr, "agentd: --save %s: cannot write the results file\n", save);
        code = GATE_HARNESS;
    } else if (save) {
        fprintf(rep, "results: %s (use it as --baseline next time)\n", save);
    }
    int regressions = eval_gate(res, base, eval_gate_conf(e), rep);
    size_t herr = json_object_array_length(jx_get(res, "harness_errors"));
    if (herr) {
        fprintf(rep, "harness: %zu error%s (exit 2): the results above are incomplete\n", herr,
                herr == 1 ? "" : "s");
        code = GATE_HARNESS;
    } else if (!code && regressions) {
        code = GATE_REGRESSION;
    }
out:
    json_object_put(res);
    json_object_put(base);
    eval_free(e);
    free(mv);
    free(av);
    free(mbuf);
    free(abuf);
    return code;
}
