/*
 * chat_cli: `agentd chat AGENT [--session NAME]`, an interactive conversation on a terminal.
 *
 * Each line the user types is one run, the next turn of the session (store.h), driven to its
 * end on this process's loop before the next prompt: the answer streams as it arrives, tool
 * calls show as they commit, a call that needs approval is asked inline (y / n / a reason
 * that denies), and Ctrl-C cancels the turn, not the session. Lines are read with libedit
 * (history with the arrow keys); no run is active while the prompt waits, so reading the
 * terminal there blocks nothing.
 */
#include "chat_cli.h"

#include "cli.h"
#include "err.h"
#include "proc.h"

#include <editline/readline.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct chat {
    char run_id[17];
    int streaming;
    int streamed;        /* this turn's answer was printed as it streamed */
    store_run_t last;
    int have_last;
    const char *user;    /* --user NAME (or $AGENTD_USER): scopes long-term memory */
} chat_t;

static json_object *attr(json_object *ev, const char *k)
{
    json_object *a, *v;
    if (json_object_object_get_ex(ev, "attrs", &a) && json_object_object_get_ex(a, k, &v))
        return v;
    return NULL;
}

static const char *field(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

static void end_stream(chat_t *c)
{
    if (c->streaming) {
        fputc('\n', stdout);
        c->streaming = 0;
    }
}

static void on_event(void *ud, const char *run_id, json_object *ev)
{
    chat_t *c = ud;
    if (strcmp(run_id, c->run_id) != 0)
        return;
    const char *op = field(ev, "op"), *phase = field(ev, "phase");
    if (!strcmp(op, "execute_tool")) {
        end_stream(c);
        const char *tool = json_object_get_string(attr(ev, "gen_ai.tool.name"));
        if (!strcmp(phase, "begin")) {
            printf("  → %s %s\n", tool,
                   json_object_get_string(attr(ev, "gen_ai.tool.call.arguments")));
        } else {
            json_object *res = attr(ev, "gen_ai.tool.call.result");
            const char *text = res ? json_object_get_string(res) : field(ev, "error");
            size_t n = strlen(text);
            printf("  ← %s %s %.*s%s\n", tool,
                   json_object_get_string(attr(ev, "agentd.tool.state")),
                   (int)(n > 160 ? 160 : n), text, n > 160 ? " …" : "");
        }
    } else if (!strcmp(op, "retry")) {
        end_stream(c);
        printf("  (retry: %s)\n", field(ev, "error"));
    } else if (!strcmp(op, "guardrail") && field(ev, "error") && *field(ev, "error")) {
        /* only what a guardrail stopped: an allow is in the trace */
        end_stream(c);
        printf("  ! %s: %s\n", field(ev, "name"), field(ev, "error"));
    }
    fflush(stdout);
}

static void on_text(void *ud, const char *run_id, const char *text, size_t len)
{
    chat_t *c = ud;
    if (strcmp(run_id, c->run_id) != 0)
        return;
    c->streaming = c->streamed = 1;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

static void on_end(void *ud, const store_run_t *rec)
{
    chat_t *c = ud;
    if (strcmp(rec->id, c->run_id) != 0)
        return;
    store_run_clear(&c->last);
    c->last = *rec;
    c->last.input = rec->input ? strdup(rec->input) : NULL;
    c->last.answer = rec->answer ? strdup(rec->answer) : NULL;
    c->last.error = rec->error ? strdup(rec->error) : NULL;
    c->last.spec = NULL;
    c->have_last = 1;
}

/* Run the loop until this process has no active run; a Ctrl-C pressed at the prompt was
 * queued by libevent's handler and must not cancel the next turn, so it is drained first. */
static int drive(proc_t *p)
{
    proc_rearm(p);
    return proc_run(p);
}

typedef struct pending {
    char (*ids)[64];
    char (*what)[400];
    size_t n;
    int step;
} pending_t;

static int collect_pending(void *ud, const store_toolcall_t *tc)
{
    pending_t *pd = ud;
    if (tc->step != pd->step || strcmp(tc->state, "awaiting_approval") != 0)
        return 0;
    char(*ni)[64] = realloc(pd->ids, (pd->n + 1) * sizeof *ni);
    if (!ni)
        return ERR_NOMEM;
    pd->ids = ni;
    char(*nw)[400] = realloc(pd->what, (pd->n + 1) * sizeof *nw);
    if (!nw)
        return ERR_NOMEM;
    pd->what = nw;
    snprintf(pd->ids[pd->n], 64, "%s", tc->call_id);
    snprintf(pd->what[pd->n], 400, "%s %s", tc->name, tc->args ? tc->args : "");
    pd->n++;
    return 0;
}

/* Ask about the first call the waiting run wants approved and record the decision, which
 * continues the run (machine_decide); a run with several pending calls comes back here for
 * the next one. 0 when the run went on, 1 when the user left it waiting (end of input). */
static int ask_approval(proc_t *p, chat_t *c)
{
    pending_t pd = {.step = c->last.step};
    char err[1024];
    int rc = store_toolcalls_each(p->st, c->run_id, collect_pending, &pd), left = 1;
    if (!rc && pd.n > 0) {
        printf("  approval needed: %s\n", pd.what[0]);
        char *ans = readline("  approve? [y]es / [n]o / or type a reason to deny: ");
        if (ans) {
            int yes = !strcmp(ans, "y") || !strcmp(ans, "yes");
            const char *reason =
                !strcmp(ans, "n") || !strcmp(ans, "no") || !*ans ? "denied in chat" : ans;
            left = machine_decide(p->m, p->agent, c->run_id, pd.ids[0], yes,
                                  yes ? NULL : reason, err, sizeof err) != 0;
            if (left)
                fprintf(stderr, "agentd: %s\n", err);
            free(ans);
        }
    }
    free(pd.ids);
    free(pd.what);
    return left;
}

static void print_outcome(chat_t *c)
{
    end_stream(c);
    store_run_t *r = &c->last;
    if (!strcmp(r->state, "done")) {
        if (!c->streamed && r->answer)
            printf("%s\n", r->answer);
    } else if (!strcmp(r->state, "cancelled")) {
        printf("  (turn cancelled; the session goes on)\n");
    } else if (strcmp(r->state, "waiting") != 0) {
        printf("  (turn %s: %s)\n", r->state, r->error ? r->error : r->reason);
    }
    printf("  [%s · %d steps · %lld tokens · $%.4f]\n", r->id, r->step,
           (long long)(r->input_tokens + r->output_tokens), r->cost_usd);
}

/* One turn: start it, drive it through any approvals, print how it ended. */
static int turn(proc_t *p, chat_t *c, const char *session, const char *line)
{
    char err[1024];
    machine_start_opts_t so = {.session = session, .user = c->user};
    if (!strncmp(line, "/pin ", 5)) {
        so.pin = 1;
        line += 5;
    }
    c->have_last = c->streamed = 0;
    if (machine_start_ex(p->m, p->agent, line, &so, c->run_id, err, sizeof err)) {
        fprintf(stderr, "agentd: %s\n", err);
        return 1;
    }
    for (;;) {
        if (drive(p))
            return -1;
        if (!c->have_last) {
            fprintf(stderr, "agentd: the turn stopped without a result\n");
            return -1;
        }
        if (strcmp(c->last.state, "waiting") != 0)
            break;
        end_stream(c);
        c->have_last = 0;
        if (ask_approval(p, c)) {
            printf("  (left waiting: agentd approve|deny %s CALL)\n", c->run_id);
            return 0;
        }
    }
    print_outcome(c);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: agentd chat AGENT.lua [--session NAME] [--user NAME] [--model M] "
            "[--db PATH] [--traces DIR] [--tools DIR]\n");
    return CLI_USAGE;
}

int chat_cli_main(int argc, char **argv)
{
    proc_opts_t o;
    memset(&o, 0, sizeof o);
    const char *session = NULL, *user = getenv("AGENTD_USER");
    for (int i = 1; i < argc; i++) {
        const char *val;
        int m;
        if ((m = cli_opt(argc, argv, &i, "--session", &val)) != 0) {
            if (m < 0)
                return CLI_USAGE;
            session = val;
        } else if ((m = cli_opt(argc, argv, &i, "--user", &val)) != 0) {
            if (m < 0)
                return CLI_USAGE;
            user = val;
        } else if ((m = cli_opt(argc, argv, &i, "--model", &val)) != 0) {
            if (m < 0)
                return CLI_USAGE;
            o.model = val;
        } else if ((m = cli_opt(argc, argv, &i, "--db", &val)) != 0) {
            if (m < 0)
                return CLI_USAGE;
            o.db_path = val;
        } else if ((m = cli_opt(argc, argv, &i, "--traces", &val)) != 0) {
            if (m < 0)
                return CLI_USAGE;
            o.traces_dir = val;
        } else if ((m = cli_opt(argc, argv, &i, "--tools", &val)) != 0) {
            if (m < 0)
                return CLI_USAGE;
            o.tools_dir = val;
        } else if (argv[i][0] == '-' || o.agent_path) {
            fprintf(stderr, "agentd chat: unexpected argument %s\n", argv[i]);
            return usage();
        } else {
            o.agent_path = argv[i];
        }
    }
    if (!o.agent_path)
        return usage();
    char name[64];
    if (!session) {
        time_t now = time(NULL);
        struct tm tm;
        strftime(name, sizeof name, "chat-%Y%m%d-%H%M%S", localtime_r(&now, &tm));
        session = name;
    }
    chat_t c;
    memset(&c, 0, sizeof c);
    c.user = user;
    o.obs = (machine_observer_t){.ud = &c, .on_event = on_event, .on_text = on_text,
                                 .on_end = on_end};
    proc_t p;
    char err[1024];
    int code = proc_open(&p, &o, err, sizeof err);
    if (code) {
        fprintf(stderr, "agentd: %s\n", err);
        proc_close(&p);
        return code;
    }
    printf("agent %s · session %s (continue later: agentd chat %s --session %s)\n"
           "Ctrl-C cancels a turn; /pin TEXT keeps TEXT in every later request; Ctrl-D or "
           "/exit leaves.\n",
           p.agent->name, session, o.agent_path, session);
    int interactive = isatty(0);
    code = CLI_OK;
    for (;;) {
        char *line = readline(interactive ? "you> " : "");
        if (!line)
            break;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!strcmp(s, "/exit") || !strcmp(s, "/quit")) {
            free(line);
            break;
        }
        if (*s) {
            add_history(s);
            int rc = turn(&p, &c, session, s);
            if (rc < 0)
                code = CLI_INTERNAL;
            if (rc > 0)
                code = CLI_FAILED;
        }
        free(line);
        if (code == CLI_INTERNAL)
            break;
    }
    store_run_clear(&c.last);
    proc_close(&p);
    return code;
}
