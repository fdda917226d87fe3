/*
 * sessions_cli: `agentd sessions list|show|rm` (see sessions_cli.h).
 */
#include "sessions_cli.h"

#include "cli.h"
#include "err.h"
#include "store.h"
#include "trace.h"
#include "viewer/viewer_int.h"
#include "jx.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: agentd sessions list [--json] [--db PATH]\n"
    "       agentd sessions show NAME [--json] [--db PATH]\n"
    "       agentd sessions rm NAME [--db PATH] [--traces DIR]\n";

static void when(int64_t ns, char *buf, size_t len)
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    strftime(buf, len, "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
}

static int list_row(void *ud, const store_session_t *s)
{
    json_object *arr = ud;
    if (arr) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(s->name));
        json_object_object_add(o, "agent", json_object_new_string(s->agent));
        json_object_object_add(o, "turns", json_object_new_int(s->turns));
        json_object_object_add(o, "last_state", json_object_new_string(s->last_state));
        json_object_object_add(o, "created_ns", json_object_new_int64(s->created_ns));
        json_object_object_add(o, "updated_ns", json_object_new_int64(s->updated_ns));
        json_object_array_add(arr, o);
        return 0;
    }
    char upd[32];
    when(s->updated_ns, upd, sizeof upd);
    printf("%-24s  %-16s  %5d  %-9s  %s\n", s->name, s->agent, s->turns, s->last_state, upd);
    return 0;
}

typedef struct show {
    json_object *arr;
} show_t;

static int show_turn(void *ud, int turn, const store_run_t *r)
{
    show_t *sh = ud;
    if (sh->arr) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "turn", json_object_new_int(turn));
        json_object_object_add(o, "run_id", json_object_new_string(r->id));
        json_object_object_add(o, "agent", json_object_new_string(r->agent));
        json_object_object_add(o, "state", json_object_new_string(r->state));
        json_object_object_add(o, "input", r->input ? json_object_new_string(r->input) : NULL);
        json_object_object_add(o, "answer",
                               r->answer ? json_object_new_string(r->answer) : NULL);
        json_object_object_add(o, "tokens",
                               json_object_new_int64(r->input_tokens + r->output_tokens));
        json_object_object_add(o, "cost_usd", jx_new_num(r->cost_usd));
        json_object_array_add(sh->arr, o);
        return 0;
    }
    printf("── turn %d · run %s · %s · %s · %lld tokens · $%.4f\n", turn, r->id, r->agent,
           r->state, (long long)(r->input_tokens + r->output_tokens), r->cost_usd);
    printf("you:   %s\n", r->input ? r->input : "");
    printf("agent: %s\n\n", r->answer ? r->answer : "(no answer)");
    return 0;
}

typedef struct rm {
    const char *traces;
    int files, runs;
} rm_t;

static int rm_trace(void *ud, const char *run_id, const char *agent_path)
{
    (void)agent_path;
    rm_t *r = ud;
    char path[1200];
    r->runs++;
    if (trace_file_path(r->traces, run_id, path, sizeof path) == 0 && unlink(path) == 0)
        r->files++;
    return 0;
}

int sessions_cli_main(int argc, char **argv)
{
    const char *db = NULL, *traces = "traces", *name = NULL, *verb = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int m;
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if ((m = cli_opt(argc, argv, &i, "--db", &val)) != 0) {
            if (m < 0)
                return CLI_USAGE;
            db = val;
        } else if ((m = cli_opt(argc, argv, &i, "--traces", &val)) != 0) {
            if (m < 0)
                return CLI_USAGE;
            traces = val;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "agentd sessions: unknown option %s\n%s", argv[i], usage_text);
            return CLI_USAGE;
        } else if (!verb) {
            verb = argv[i];
        } else if (!name) {
            name = argv[i];
        } else {
            fprintf(stderr, "agentd sessions: unexpected argument %s\n%s", argv[i], usage_text);
            return CLI_USAGE;
        }
    }
    if (!verb)
        verb = "list";
    int is_list = !strcmp(verb, "list"), is_show = !strcmp(verb, "show"),
        is_rm = !strcmp(verb, "rm");
    if ((!is_list && !is_show && !is_rm) || (is_list == !!name)) {
        fputs(usage_text, stderr);
        return CLI_USAGE;
    }
    int code;
    store_t *st = cli_open_db(db, is_rm ? STORE_OPEN_WRITE : STORE_OPEN_READ, "agentd sessions",
                              &code);
    if (!st)
        return code;
    int rc;
    code = CLI_OK;
    json_object *arr = json ? json_object_new_array() : NULL;
    if (is_list) {
        if (!json)
            printf("%-24s  %-16s  %5s  %-9s  %s\n", "session", "agent", "turns", "last", "updated");
        rc = store_sessions_each(st, list_row, arr);
    } else if (is_show) {
        show_t sh = {arr};
        rc = store_session_turns(st, name, show_turn, &sh);
    } else {
        rm_t r = {.traces = traces};
        rc = store_session_rm(st, name, rm_trace, &r);
        if (!rc)
            printf("deleted session %s: %d run%s, %d trace file%s\n", name, r.runs,
                   r.runs == 1 ? "" : "s", r.files, r.files == 1 ? "" : "s");
    }
    if (rc == ERR_NOTFOUND) {
        fprintf(stderr, "agentd sessions: %s: no such session in %s\n", name, store_path(st));
        code = CLI_USAGE;
    } else if (rc == ERR_BUSY) {
        fprintf(stderr, "agentd sessions: %s: its latest turn is unfinished; finish or cancel "
                "it first\n", name);
        code = CLI_USAGE;
    } else if (rc) {
        fprintf(stderr, "agentd sessions: %s: %s\n", store_path(st), store_errmsg(st));
        code = CLI_INTERNAL;
    } else if (arr) {
        puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE));
    }
    json_object_put(arr);
    store_close(st);
    store_global_shutdown();
    return code;
}
