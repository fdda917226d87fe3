/*
 * viewer: the interactive `agentd trace` screen (ncursesw). Three screens: the runs list,
 * a run's span tree with a waterfall timeline, and the detail of one span. Follow mode
 * polls the database every VIEWER_POLL_MS (the getch timeout doubles as the poll timer).
 *
 * Why ncursesw and not hand-written ANSI: terminfo gives correct sequences for whatever
 * terminal the user has (tmux, screen, xterm, the Linux console), KEY_RESIZE comes for
 * free, wide characters are measured correctly, and endwin() restores the terminal exactly.
 * The one thing it does not do is restore the terminal on a crash; the crash handler here
 * does that with async-signal-safe calls only.
 *
 * Global state: the signal handlers need the saved terminal modes and a stop flag; those
 * few statics are the only process-wide mutable state, and only the handlers use them.
 */
#include "viewer_int.h"
#include "viewer_tui.h"

#include "cli.h"
#include "err.h"

#include <curses.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static struct termios saved_tty;
static int saved_tty_ok;
static char reset_seq[256];
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

/* A crash: put the terminal back (modes, cursor, main screen), then die of the signal. */
static void on_crash_signal(int sig)
{
    if (saved_tty_ok)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
    ssize_t w = write(STDOUT_FILENO, reset_seq, strlen(reset_seq));
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: getch returns and we exit cleanly */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sa.sa_handler = on_crash_signal;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
    sigaction(SIGABRT, &sa, NULL);
}

static void restore_signals(void)
{
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}

static void build_reset_seq(void)
{
    /* Terminfo's own strings for this terminal, precomputed for the crash handler. */
    const char *caps[] = {"sgr0", "cnorm", "rmcup"};
    size_t n = 0;
    reset_seq[0] = 0;
    for (size_t i = 0; i < 3; i++) {
        char *s = tigetstr((char *)caps[i]);
        if (s && s != (char *)-1 && n + strlen(s) + 3 < sizeof reset_seq) {
            memcpy(reset_seq + n, s, strlen(s));
            n += strlen(s);
        }
    }
    memcpy(reset_seq + n, "\r\n", 3);
}

enum { SCR_LIST, SCR_RUN, SCR_DETAIL };
enum { SORT_NEWEST, SORT_DURATION, SORT_COST, SORT_TOKENS, SORT_STATE, SORT_AGENT, SORT__N };
static const char *const sort_names[] = {"newest", "duration", "cost", "tokens", "state", "agent"};
static const char *const filter_names[] = {"all", "active", "done", "failed", "cancelled", "waiting"};
enum { FILTERS = 6 };
enum { C_ERR = 1, C_OK, C_CHAT, C_TOOL, C_STATE, C_POINT, C_HEAD, C_DIM, C_MATCH };

typedef struct lrun {
    char id[40], agent[128], state[16];
    int steps;
    int64_t created_ns, dur_ns, tokens, last_seq;
    double cost;
    int errors;          /* -1 until counted */
    int64_t errors_seq;  /* last_seq the count is for */
    char *error;
} lrun_t;

typedef struct tui {
    store_t *st;
    const char *db_path;
    int scr, quit, color, utf8;
    /* runs list */
    lrun_t *runs;
    int nruns, caprun;
    int *order, norder;
    int lsel, ltop, sort, rev, filter;
    int64_t list_at_ns;
    /* run view */
    vmodel_t *m;
    store_run_t run;
    int has_run, rsel, rtop, follow, points, direct;
    int64_t open_t0;
    /* detail */
    vlines_t det;
    int dtop, dspan, djson;
    /* shared */
    char query[128];
    char msg[300];
    int64_t msg_until;
} tui_t;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void say(tui_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(tui_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof t->msg, fmt, ap);
    va_end(ap);
    t->msg_until = mono_ns() + 4000000000LL;
}

static attr_t pair(const tui_t *t, int p, attr_t fallback)
{
    return t->color ? (attr_t)COLOR_PAIR(p) : fallback;
}

/* Write s at (y, x) using at most maxw columns. Returns the columns used. */
static int put(int y, int x, int maxw, const char *s, attr_t a)
{
    if (maxw <= 0 || !s)
        return 0;
    int cols;
    size_t n = vtui_clip(s, maxw, &cols);
    attron(a);
    mvaddnstr(y, x, s, (int)n);
    attroff(a);
    return cols;
}

static void putf(int y, int x, int maxw, attr_t a, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void putf(int y, int x, int maxw, attr_t a, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    put(y, x, maxw, buf, a);
}

static void bar_line(const tui_t *t, int y, attr_t a)
{
    attron(a);
    mvhline(y, 0, ' ', COLS);
    attroff(a);
    (void)t;
}

/* ---- runs list --------------------------------------------------------------------- */

static void runs_free(tui_t *t)
{
    for (int i = 0; i < t->nruns; i++)
        free(t->runs[i].error);
    t->nruns = 0;
}

static int runs_add(void *ud, const store_run_t *r)
{
    tui_t *t = ud;
    if (t->nruns == t->caprun) {
        int cap = t->caprun ? t->caprun * 2 : 64;
        lrun_t *v = realloc(t->runs, (size_t)cap * sizeof *v);
        int *o = realloc(t->order, (size_t)cap * sizeof *o);
        if (o)
            t->order = o;
        if (!v || !o) {
            if (v)
                t->runs = v;
            return 1;
        }
        t->runs = v;
        t->caprun = cap;
    }
    lrun_t *l = &t->runs[t->nruns++];
    memset(l, 0, sizeof *l);
    snprintf(l->id, sizeof l->id, "%s", r->id);
    snprintf(l->agent, sizeof l->agent, "%s", r->agent);
    snprintf(l->state, sizeof l->state, "%s", r->state);
    l->steps = r->step;
    l->created_ns = r->created_ns;
    int64_t end = r->ended_ns ? r->ended_ns : r->updated_ns;
    l->dur_ns = end > r->created_ns ? end - r->created_ns : 0;
    l->tokens = r->input_tokens + r->output_tokens;
    l->cost = r->cost_usd;
    l->last_seq = r->last_seq;
    l->errors = -1;
    l->error = r->error ? strdup(r->error) : NULL;
    return 0;
}

static int cmp_runs(const void *a, const void *b, void *ud)
{
    const tui_t *t = ud;
    const lrun_t *x = &t->runs[*(const int *)a], *y = &t->runs[*(const int *)b];
    int c = 0;
    switch (t->sort) {
    case SORT_DURATION: c = (y->dur_ns > x->dur_ns) - (y->dur_ns < x->dur_ns); break;
    case SORT_COST: c = (y->cost > x->cost) - (y->cost < x->cost); break;
    case SORT_TOKENS: c = (y->tokens > x->tokens) - (y->tokens < x->tokens); break;
    case SORT_STATE: c = strcmp(x->state, y->state); break;
    case SORT_AGENT: c = strcmp(x->agent, y->agent); break;
    default: break;
    }
    if (c == 0)
        c = (y->created_ns > x->created_ns) - (y->created_ns < x->created_ns);
    if (c == 0)
        c = strcmp(x->id, y->id);
    return t->rev ? -c : c;
}

static void list_order(tui_t *t)
{
    char keep[40] = "";
    if (t->lsel < t->norder)
        snprintf(keep, sizeof keep, "%s", t->runs[t->order[t->lsel]].id);
    t->norder = 0;
    for (int i = 0; i < t->nruns; i++) {
        const char *s = t->runs[i].state;
        int ok = t->filter == 0 || (t->filter == 1 ? !viewer_state_final(s)
                                                   : !strcmp(s, filter_names[t->filter]));
        if (ok)
            t->order[t->norder++] = i;
    }
    qsort_r(t->order, (size_t)t->norder, sizeof *t->order, cmp_runs, t);
    t->lsel = 0;
    for (int i = 0; i < t->norder; i++)
        if (!strcmp(t->runs[t->order[i]].id, keep))
            t->lsel = i;
}

static void list_load(tui_t *t)
{
    runs_free(t);
    if (store_runs_each(t->st, NULL, 5000, runs_add, t))
        say(t, "cannot list runs: %s", store_errmsg(t->st));
    list_order(t);
    t->list_at_ns = mono_ns();
}

static int count_err(void *ud, int64_t seq, const char *json)
{
    (void)seq;
    if (strstr(json, "\"status\":\"error\""))
        ++*(int *)ud;
    return 0;
}

/* Error counts cost a scan of the run's events, so only visible rows get them. */
static int run_errors(tui_t *t, lrun_t *l)
{
    if (l->errors < 0 || l->errors_seq != l->last_seq) {
        int n = 0;
        store_events_each(t->st, l->id, 0, count_err, &n);
        l->errors = n;
        l->errors_seq = l->last_seq;
    }
    return l->errors;
}

static attr_t state_attr(const tui_t *t, const char *state)
{
    if (!strcmp(state, "failed") || !strcmp(state, "cancelled"))
        return pair(t, C_ERR, A_BOLD);
    if (!strcmp(state, "done"))
        return pair(t, C_OK, A_NORMAL);
    return pair(t, C_TOOL, A_BOLD);
}

static void draw_list(tui_t *t)
{
    int W = COLS, H = LINES, rows = H - 4;
    char dur[32];
    bar_line(t, 0, pair(t, C_HEAD, A_REVERSE));
    putf(0, 0, W, pair(t, C_HEAD, A_REVERSE) | A_BOLD,
         " agentd trace — runs   %d shown / %d   sort: %s%s   filter: %s   db: %s", t->norder,
         t->nruns, sort_names[t->sort], t->rev ? " (reversed)" : "", filter_names[t->filter],
         t->db_path);
    putf(1, 0, W, A_BOLD, "  %-16s %-10s %-9s %5s %7s %7s %9s %3s  %s", "id", "agent", "state",
         "steps", "time", "tokens", "cost $", "err", W >= 95 ? "started" : "");
    if (t->lsel >= t->norder)
        t->lsel = t->norder ? t->norder - 1 : 0;
    if (t->lsel < t->ltop)
        t->ltop = t->lsel;
    if (rows > 0 && t->lsel >= t->ltop + rows)
        t->ltop = t->lsel - rows + 1;
    for (int r = 0; r < rows && t->ltop + r < t->norder; r++) {
        int k = t->ltop + r;
        lrun_t *l = &t->runs[t->order[k]];
        int sel = k == t->lsel;
        attr_t base = sel ? A_REVERSE : A_NORMAL;
        if (sel)
            bar_line(t, 2 + r, A_REVERSE);
        int e = run_errors(t, l);
        char when[32] = "";
        if (W >= 95) {
            time_t tt = (time_t)(l->created_ns / 1000000000);
            struct tm tm;
            localtime_r(&tt, &tm);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        }
        putf(2 + r, 0, W, base, "%s %-16.16s %-10.10s ", sel ? ">" : " ", l->id, l->agent);
        put(2 + r, 30, 9, l->state, base | state_attr(t, l->state));
        putf(2 + r, 39, W - 39, base, " %5d %7s %7lld %9.6f %3d  %s", l->steps,
             vmodel_fmt_dur(l->dur_ns, dur, sizeof dur), (long long)l->tokens, l->cost, e, when);
        if (e > 0)
            putf(2 + r, 72, 4, base | pair(t, C_ERR, A_BOLD), "%3d", e);
    }
    if (t->norder == 0)
        put(3, 2, W - 2, t->nruns ? "(no runs match the filter; press f)"
                                  : "(no runs yet: agentd run agents/support.lua)",
            A_DIM);
    const char *line = NULL;
    if (t->msg_until > mono_ns())
        line = t->msg;
    else if (t->norder && t->runs[t->order[t->lsel]].error)
        line = t->runs[t->order[t->lsel]].error;
    if (line)
        put(H - 2, 0, W, line, t->msg_until > mono_ns() ? A_BOLD : pair(t, C_ERR, A_BOLD));
    bar_line(t, H - 1, pair(t, C_HEAD, A_REVERSE));
    put(H - 1, 0, W,
        " ↑↓ move ⏎ open s sort S reverse f filter / find n next e failed q quit",
        pair(t, C_HEAD, A_REVERSE));
}

/* ---- run view ---------------------------------------------------------------------- */

static int live(const tui_t *t)
{
    return t->has_run && !viewer_state_final(t->run.state);
}

static int64_t now_for_bars(const tui_t *t)
{
    return t->follow && live(t) ? wall_ns() : 0;
}

static void run_close(tui_t *t)
{
    vmodel_free(t->m);
    t->m = NULL;
    if (t->has_run)
        store_run_clear(&t->run);
    t->has_run = 0;
}

static int run_open(tui_t *t, const char *id)
{
    char err[512];
    run_close(t);
    int64_t t0 = mono_ns();
    int rc = store_run_get(t->st, id, &t->run);
    if (rc) {
        say(t, "run %s: %s", id, rc == ERR_INVAL ? "prefix matches several runs" : err_str(rc));
        return rc;
    }
    t->has_run = 1;
    t->m = vmodel_new(t->run.id);
    if (!t->m)
        return ERR_NOMEM;
    if ((rc = viewer_load(t->st, t->m, err, sizeof err)) != 0 || (rc = vmodel_flatten(t->m, t->points)) != 0) {
        say(t, "%s", rc == ERR_NOMEM ? "out of memory" : err);
        return rc;
    }
    t->rsel = t->rtop = 0;
    t->open_t0 = t0;
    t->follow = t->follow || live(t);
    t->scr = SCR_RUN;
    return 0;
}

/* Follow tick: new events and the run row. Keeps the cursor on the newest span when it
 * was there. */
static int run_poll(tui_t *t)
{
    char err[512];
    int64_t before = t->m->last_seq;
    int at_end = t->rsel >= t->m->nrows - 1;
    if (viewer_load(t->st, t->m, err, sizeof err)) {
        say(t, "%s", err);
        return 0;
    }
    store_run_t r;
    if (store_run_get(t->st, t->run.id, &r) == 0) {
        int ended = !viewer_state_final(t->run.state) && viewer_state_final(r.state);
        store_run_clear(&t->run);
        t->run = r;
        if (ended)
            say(t, "run ended: %s", r.state);
    }
    if (t->m->last_seq == before)
        return live(t); /* open spans still grow */
    vmodel_flatten(t->m, t->points);
    if (at_end && t->m->nrows)
        t->rsel = t->m->nrows - 1;
    return 1;
}

static attr_t op_attr(const tui_t *t, const vmodel_span_t *s)
{
    if (s->status == VM_ERROR)
        return pair(t, C_ERR, A_BOLD);
    if (!strcmp(s->op, "chat"))
        return pair(t, C_CHAT, A_NORMAL);
    if (!strcmp(s->op, "execute_tool"))
        return pair(t, C_TOOL, A_NORMAL);
    if (s->point)
        return pair(t, C_POINT, A_NORMAL);
    return pair(t, C_STATE, A_NORMAL);
}

static void tree_prefix(const tui_t *t, const vmodel_row_t *row, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = 0;
    for (int d = 1; d < row->depth && n + 8 < len; d++) {
        int more = d <= 32 && ((row->more >> (d - 1)) & 1u);
        n += (size_t)snprintf(buf + n, len - n, "%s", more ? (t->utf8 ? "│ " : "| ") : "  ");
    }
    if (row->depth > 0 && n + 8 < len)
        snprintf(buf + n, len - n, "%s",
                 row->last ? (t->utf8 ? "└─" : "`-") : (t->utf8 ? "├─" : "|-"));
}

static int has_kids(const vmodel_t *m, int span)
{
    for (int i = 0; i < m->nspans; i++)
        if (m->spans[i].parent_idx == span)
            return 1;
    return 0;
}

static void draw_run(tui_t *t)
{
    int W = COLS, H = LINES, rows = H - 4;
    vmodel_t *m = t->m;
    char dur[32], b2[32];
    int root = vmodel_root(m);
    int64_t now = now_for_bars(t);
    int64_t t0 = root >= 0 ? m->spans[root].start_ns : m->min_ns;
    int64_t t1 = root >= 0 ? vmodel_span_end(m, &m->spans[root], now) : m->max_ns;
    if (now > t1)
        t1 = now;
    if (m->max_ns > t1)
        t1 = m->max_ns;
    int64_t span_ns = t1 > t0 ? t1 - t0 : 1;

    bar_line(t, 0, pair(t, C_HEAD, A_REVERSE));
    putf(0, 0, W, pair(t, C_HEAD, A_REVERSE) | A_BOLD,
         " %.16s %s %s%s | %d err | %d steps %s | %lld+%lld tok $%.6g", t->run.id,
         t->run.agent, t->run.state, t->follow ? (live(t) ? " LIVE" : " (followed)") : "",
         m->errors, t->run.step, vmodel_fmt_dur(t1 - t0, dur, sizeof dur),
         (long long)m->in_tokens, (long long)m->out_tokens, t->run.cost_usd);

    int bw = W >= 120 ? W / 3 : W >= 80 ? 24 : (W / 4 > 6 ? W / 4 : 6);
    int dw = 7, nw = W - bw - dw - 4;
    int bx = W - bw;
    putf(1, 0, nw + 2, A_BOLD, "  span");
    putf(1, nw + 2, dw + 1, A_BOLD, "%*s", dw, "time");
    putf(1, bx, bw, A_DIM, "0");
    vmodel_fmt_dur(span_ns, b2, sizeof b2);
    put(1, W - (int)strlen(b2), (int)strlen(b2), b2, A_DIM);

    if (t->rsel >= m->nrows)
        t->rsel = m->nrows ? m->nrows - 1 : 0;
    if (t->rsel < t->rtop)
        t->rtop = t->rsel;
    if (rows > 0 && t->rsel >= t->rtop + rows)
        t->rtop = t->rsel - rows + 1;
    for (int r = 0; r < rows && t->rtop + r < m->nrows; r++) {
        int k = t->rtop + r, y = 2 + r;
        const vmodel_row_t *row = &m->rows[k];
        const vmodel_span_t *s = &m->spans[row->span];
        int sel = k == t->rsel;
        attr_t base = sel ? A_REVERSE : A_NORMAL;
        if (sel)
            bar_line(t, y, A_REVERSE);
        const char *mark = s->status == VM_ERROR ? (t->utf8 ? "✗" : "!")
                           : !s->end_ns          ? (t->utf8 ? "…" : ">")
                           : s->collapsed        ? "+"
                                                 : " ";
        put(y, 0, 1, mark, base | (s->status == VM_ERROR ? pair(t, C_ERR, A_BOLD) : A_BOLD));
        char pre[200], label[400];
        tree_prefix(t, row, pre, sizeof pre);
        int x = 2 + put(y, 2, nw, pre, base | A_DIM);
        snprintf(label, sizeof label, "%s%s%s", s->collapsed ? "[+] " : "",
                 s->name ? s->name : s->op, s->retries ? (t->utf8 ? " ↻" : " (retry)") : "");
        x += put(y, x, nw + 2 - x, label, base | op_attr(t, s));
        if (s->error && x < nw)
            putf(y, x, nw + 2 - x, base | pair(t, C_ERR, A_NORMAL), "  %s", s->error);
        int64_t end = vmodel_span_end(m, s, now);
        putf(y, nw + 2, dw + 1, base, "%*s", dw,
             s->point ? "·" : vmodel_fmt_dur(end - s->start_ns, dur, sizeof dur));
        /* The waterfall: the span's place in the run, one cell at least. */
        int x0 = (int)((double)(s->start_ns - t0) * bw / (double)span_ns);
        int x1 = (int)((double)(end - t0) * bw / (double)span_ns);
        if (x0 >= bw)
            x0 = bw - 1;
        if (x1 <= x0)
            x1 = x0 + 1;
        if (x1 > bw)
            x1 = bw;
        attr_t ba = t->color ? op_attr(t, s) : (s->status == VM_ERROR ? A_BOLD : A_NORMAL);
        for (int c = x0; c < x1; c++)
            put(y, bx + c, 1,
                s->point ? (t->utf8 ? "◆" : "*")
                : !s->end_ns && c == x1 - 1 ? (t->utf8 ? "▶" : ">")
                : t->utf8 ? "█" : "=",
                ba | (sel ? A_REVERSE : 0));
    }
    const char *line = t->msg_until > mono_ns() ? t->msg : NULL;
    char facts[400];
    if (!line && m->nrows) {
        viewer_span_facts(&m->spans[m->rows[t->rsel].span], 1, facts, sizeof facts);
        line = facts;
    }
    if (line)
        put(H - 2, 0, W, line,
            line == t->msg ? A_BOLD
                           : (m->nrows && m->spans[m->rows[t->rsel].span].status == VM_ERROR
                                  ? pair(t, C_ERR, A_BOLD)
                                  : A_NORMAL));
    bar_line(t, H - 1, pair(t, C_HEAD, A_REVERSE));
    put(H - 1, 0, W,
        " ↑↓ ⏎ detail e error / find n next ␣ fold F follow p points c json y copy q back",
        pair(t, C_HEAD, A_REVERSE));
}

/* ---- detail ------------------------------------------------------------------------ */

static void detail_build(tui_t *t)
{
    t->det.width = COLS;
    if (viewer_detail_build(&t->det, t->st, t->m, t->dspan, t->djson))
        say(t, "out of memory");
    if (t->dtop >= t->det.n)
        t->dtop = 0;
}

static attr_t kind_attr(const tui_t *t, int kind)
{
    switch (kind) {
    case VL_HEAD: return pair(t, C_STATE, A_NORMAL) | A_BOLD;
    case VL_ERROR: return pair(t, C_ERR, A_BOLD);
    case VL_DIM: return pair(t, C_DIM, A_DIM);
    case VL_KEY: return A_BOLD;
    case VL_OK: return pair(t, C_OK, A_NORMAL);
    default: return A_NORMAL;
    }
}

static void draw_detail(tui_t *t)
{
    int W = COLS, H = LINES, rows = H - 3;
    const vmodel_span_t *s = &t->m->spans[t->dspan];
    bar_line(t, 0, pair(t, C_HEAD, A_REVERSE));
    putf(0, 0, W, pair(t, C_HEAD, A_REVERSE) | A_BOLD, " %s — %s   run %.16s",
         s->name ? s->name : s->op, t->djson ? "span JSON (copy-friendly)" : "detail", t->m->run_id);
    if (t->dtop > t->det.n - rows)
        t->dtop = t->det.n - rows > 0 ? t->det.n - rows : 0;
    for (int r = 0; r < rows && t->dtop + r < t->det.n; r++) {
        const vline_t *l = &t->det.v[t->dtop + r];
        attr_t a = t->djson ? A_NORMAL : kind_attr(t, l->kind);
        if (t->query[0] && strcasestr(l->text, t->query))
            a = pair(t, C_MATCH, A_REVERSE);
        put(1 + r, 0, W, l->text, a);
    }
    if (t->msg_until > mono_ns())
        put(H - 2, 0, W, t->msg, A_BOLD);
    else
        putf(H - 2, 0, W, A_DIM, "line %d-%d of %d", t->det.n ? t->dtop + 1 : 0,
             t->dtop + rows < t->det.n ? t->dtop + rows : t->det.n, t->det.n);
    bar_line(t, H - 1, pair(t, C_HEAD, A_REVERSE));
    put(H - 1, 0, W,
        " ↑↓ PgUp PgDn  / find  n next  e next error  c json  y copy  q back  Q quit",
        pair(t, C_HEAD, A_REVERSE));
}

/* ---- navigation -------------------------------------------------------------------- */

/* Make span i visible: unfold its ancestors (and show instant spans), re-flatten, select. */
static void reveal(tui_t *t, int i)
{
    vmodel_t *m = t->m;
    int changed = 0;
    for (int p = m->spans[i].parent_idx; p >= 0; p = m->spans[p].parent_idx)
        if (m->spans[p].collapsed) {
            m->spans[p].collapsed = 0;
            changed = 1;
        }
    if (m->spans[i].point && !t->points) {
        t->points = 1;
        changed = 1;
    }
    if (changed)
        vmodel_flatten(m, t->points);
    for (int r = 0; r < m->nrows; r++)
        if (m->rows[r].span == i)
            t->rsel = r;
}

/* Next span after the selected row (in tree order, wrapping) that satisfies pred. Hidden
 * spans count: the tree is walked with everything unfolded. */
static int find_span(tui_t *t, int dir, int (*pred)(const tui_t *, int))
{
    vmodel_t *m = t->m;
    if (!m->nrows)
        return -1;
    /* Unfold a copy of the fold state to get the full order, then put it back. */
    int cur = m->rows[t->rsel].span;
    char *fold = malloc((size_t)m->nspans + 1);
    if (!fold)
        return -1;
    for (int i = 0; i < m->nspans; i++) {
        fold[i] = (char)m->spans[i].collapsed;
        m->spans[i].collapsed = 0;
    }
    int found = -1;
    if (vmodel_flatten(m, 1) == 0) {
        int at = 0;
        for (int r = 0; r < m->nrows; r++)
            if (m->rows[r].span == cur)
                at = r;
        for (int k = 1; k <= m->nrows; k++) {
            int r = ((at + dir * k) % m->nrows + m->nrows) % m->nrows;
            if (pred(t, m->rows[r].span)) {
                found = m->rows[r].span;
                break;
            }
        }
    }
    for (int i = 0; i < m->nspans; i++)
        m->spans[i].collapsed = fold[i];
    free(fold);
    vmodel_flatten(m, t->points);
    if (found >= 0)
        reveal(t, found);
    return found;
}

static int pred_error(const tui_t *t, int i)
{
    return t->m->spans[i].status == VM_ERROR;
}

static int pred_match(const tui_t *t, int i)
{
    return vmodel_span_matches(t->m, i, t->query);
}

static void next_error(tui_t *t)
{
    if (t->scr == SCR_LIST) {
        for (int k = 1; k <= t->norder; k++) {
            int i = (t->lsel + k) % t->norder;
            if (!strcmp(t->runs[t->order[i]].state, "failed")) {
                t->lsel = i;
                return;
            }
        }
        say(t, "no failed runs");
        return;
    }
    int was = t->m->nrows ? t->m->rows[t->rsel].span : -1;
    int f = find_span(t, 1, pred_error);
    if (f < 0) {
        say(t, "no errors in this run");
        return;
    }
    say(t, "error in %s: %s", t->m->spans[f].name ? t->m->spans[f].name : t->m->spans[f].op,
        t->m->spans[f].error ? t->m->spans[f].error : "(no message)");
    if (t->scr == SCR_DETAIL && f != was) {
        t->dspan = f;
        t->dtop = 0;
        detail_build(t);
    }
}

static void search_next(tui_t *t, int dir)
{
    if (!t->query[0])
        return;
    if (t->scr == SCR_LIST) {
        for (int k = 1; k <= t->norder; k++) {
            int i = ((t->lsel + dir * k) % t->norder + t->norder) % t->norder;
            const lrun_t *l = &t->runs[t->order[i]];
            if (strcasestr(l->id, t->query) || strcasestr(l->agent, t->query) ||
                strcasestr(l->state, t->query) || (l->error && strcasestr(l->error, t->query))) {
                t->lsel = i;
                return;
            }
        }
    } else if (t->scr == SCR_DETAIL) {
        for (int k = 1; k <= t->det.n; k++) {
            int i = ((t->dtop + dir * k) % t->det.n + t->det.n) % t->det.n;
            if (strcasestr(t->det.v[i].text, t->query)) {
                t->dtop = i;
                return;
            }
        }
    } else if (find_span(t, dir, pred_match) >= 0) {
        return;
    }
    say(t, "not found: %s", t->query);
}

/* Read the search text on the bottom line. Esc cancels. */
static void prompt(tui_t *t)
{
    char buf[sizeof t->query] = "";
    size_t n = 0;
    for (;;) {
        bar_line(t, LINES - 1, A_NORMAL);
        putf(LINES - 1, 0, COLS, A_BOLD, "/%s", buf);
        curs_set(1);
        refresh();
        int ch = getch();
        if (stop_signal)
            break;
        if (ch == ERR)
            continue;
        if (ch == 27) {
            n = 0;
            buf[0] = 0;
            break;
        }
        if (ch == '\n' || ch == '\r' || ch == KEY_ENTER)
            break;
        if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && n > 0)
            buf[--n] = 0;
        else if (ch >= 32 && ch < 256 && ch != 127 && n + 1 < sizeof buf) {
            buf[n++] = (char)ch;
            buf[n] = 0;
        }
    }
    curs_set(0);
    if (n) {
        snprintf(t->query, sizeof t->query, "%s", buf);
        if (t->scr == SCR_DETAIL)
            t->dtop = t->dtop > 0 ? t->dtop - 1 : t->det.n - 1;
        search_next(t, 1);
    }
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Save the span's JSON to a file and offer it to the terminal clipboard (OSC 52). */
static void copy_span(tui_t *t, int span)
{
    json_object *j = vmodel_span_json(t->m, span);
    if (!j) {
        say(t, "out of memory");
        return;
    }
    const char *text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_SPACED |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE);
    const char *dir = getenv("TMPDIR");
    char path[1200];
    snprintf(path, sizeof path, "%s/agentd-span-%s.json", dir && *dir ? dir : "/tmp",
             t->m->spans[span].id);
    FILE *f = fopen(path, "w");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = 0;
    size_t n = strlen(text);
    if (n <= 74000) {
        /* OSC 52 is ignored by terminals that do not support it; tmux forwards it. */
        size_t cap = 16 + (n + 2) / 3 * 4;
        char *seq = malloc(cap);
        if (seq) {
            size_t o = (size_t)snprintf(seq, cap, "\033]52;c;");
            for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned char)text[i] << 16;
                if (i + 1 < n)
                    v |= (unsigned char)text[i + 1] << 8;
                if (i + 2 < n)
                    v |= (unsigned char)text[i + 2];
                seq[o++] = b64[(v >> 18) & 63];
                seq[o++] = b64[(v >> 12) & 63];
                seq[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
                seq[o++] = i + 2 < n ? b64[v & 63] : '=';
            }
            seq[o++] = '\a';
            ssize_t w = write(STDOUT_FILENO, seq, o);
            (void)w;
            free(seq);
        }
    }
    if (ok)
        say(t, "span JSON saved to %s (and sent to the clipboard)", path);
    else
        say(t, "cannot write %s", path);
    json_object_put(j);
}

/* ---- keys -------------------------------------------------------------------------- */

static void move_sel(int *sel, int n, int delta)
{
    *sel += delta;
    if (*sel >= n)
        *sel = n - 1;
    if (*sel < 0)
        *sel = 0;
}

static void key_list(tui_t *t, int ch)
{
    int page = LINES - 4 > 1 ? LINES - 4 : 1;
    switch (ch) {
    case KEY_UP: case 'k': move_sel(&t->lsel, t->norder, -1); break;
    case KEY_DOWN: case 'j': move_sel(&t->lsel, t->norder, 1); break;
    case KEY_PPAGE: move_sel(&t->lsel, t->norder, -page); break;
    case KEY_NPAGE: move_sel(&t->lsel, t->norder, page); break;
    case KEY_HOME: case 'g': t->lsel = 0; break;
    case KEY_END: case 'G': move_sel(&t->lsel, t->norder, t->norder); break;
    case 's': t->sort = (t->sort + 1) % SORT__N; list_order(t); say(t, "sort: %s", sort_names[t->sort]); break;
    case 'S': t->rev = !t->rev; list_order(t); break;
    case 'f': t->filter = (t->filter + 1) % FILTERS; list_order(t); say(t, "filter: %s", filter_names[t->filter]); break;
    case 'r': list_load(t); break;
    case '\n': case '\r': case KEY_ENTER: case KEY_RIGHT: case 'l':
        if (t->norder)
            run_open(t, t->runs[t->order[t->lsel]].id);
        break;
    case 'q': case 'Q': t->quit = 1; break;
    default: break;
    }
}

static void key_run(tui_t *t, int ch)
{
    vmodel_t *m = t->m;
    int page = LINES - 4 > 1 ? LINES - 4 : 1;
    switch (ch) {
    case KEY_UP: case 'k': move_sel(&t->rsel, m->nrows, -1); break;
    case KEY_DOWN: case 'j': move_sel(&t->rsel, m->nrows, 1); break;
    case KEY_PPAGE: move_sel(&t->rsel, m->nrows, -page); break;
    case KEY_NPAGE: move_sel(&t->rsel, m->nrows, page); break;
    case KEY_HOME: case 'g': t->rsel = 0; break;
    case KEY_END: case 'G': move_sel(&t->rsel, m->nrows, m->nrows); break;
    case ' ':
        if (m->nrows && has_kids(m, m->rows[t->rsel].span)) {
            vmodel_span_t *s = &m->spans[m->rows[t->rsel].span];
            s->collapsed = !s->collapsed;
            vmodel_flatten(m, t->points);
        }
        break;
    case 'p': {
        int span = m->nrows ? m->rows[t->rsel].span : -1;
        t->points = !t->points;
        vmodel_flatten(m, t->points);
        if (span >= 0)
            reveal(t, span);
        say(t, "instant spans (retries, guardrails, logs) %s", t->points ? "shown" : "hidden");
        break;
    }
    case 'F': t->follow = !t->follow; say(t, "follow %s", t->follow ? "on" : "off"); break;
    case '\n': case '\r': case KEY_ENTER: case KEY_RIGHT: case 'l': case 'c':
        if (m->nrows) {
            t->dspan = m->rows[t->rsel].span;
            t->dtop = 0;
            t->djson = ch == 'c';
            t->scr = SCR_DETAIL;
            detail_build(t);
        }
        break;
    case 'y': if (m->nrows) copy_span(t, m->rows[t->rsel].span); break;
    case 'q': case KEY_LEFT: case 'h': case 27: case KEY_BACKSPACE:
        if (t->direct && ch == 'q') {
            t->quit = 1;
        } else {
            t->scr = SCR_LIST;
            if (!t->nruns)
                list_load(t);
        }
        break;
    case 'Q': t->quit = 1; break;
    default: break;
    }
}

static void key_detail(tui_t *t, int ch)
{
    int page = LINES - 3 > 1 ? LINES - 3 : 1;
    switch (ch) {
    case KEY_UP: case 'k': if (t->dtop > 0) t->dtop--; break;
    case KEY_DOWN: case 'j': t->dtop++; break;
    case KEY_PPAGE: t->dtop = t->dtop > page ? t->dtop - page : 0; break;
    case KEY_NPAGE: case ' ': t->dtop += page; break;
    case KEY_HOME: case 'g': t->dtop = 0; break;
    case KEY_END: case 'G': t->dtop = t->det.n; break;
    case 'c': t->djson = !t->djson; t->dtop = 0; detail_build(t); break;
    case 'y': copy_span(t, t->dspan); break;
    case 'q': case KEY_LEFT: case 'h': case 27: case KEY_BACKSPACE: t->scr = SCR_RUN; break;
    case 'Q': t->quit = 1; break;
    default: break;
    }
}

static void key(tui_t *t, int ch)
{
    if (ch == '/') {
        prompt(t);
        return;
    }
    if (ch == 'n' || ch == 'N') {
        search_next(t, ch == 'n' ? 1 : -1);
        return;
    }
    if (ch == 'e' && (t->scr != SCR_LIST || t->norder)) {
        next_error(t);
        return;
    }
    if (t->scr == SCR_LIST)
        key_list(t, ch);
    else if (t->scr == SCR_RUN)
        key_run(t, ch);
    else
        key_detail(t, ch);
}

static void draw(tui_t *t)
{
    erase();
    if (LINES < 6 || COLS < 30) {
        put(0, 0, COLS, "agentd trace: terminal too small (need 30x6); q quits", A_BOLD);
    } else if (t->scr == SCR_LIST) {
        draw_list(t);
    } else if (t->scr == SCR_RUN) {
        draw_run(t);
    } else {
        draw_detail(t);
    }
    refresh();
}

static void colors(tui_t *t)
{
    const char *nc = getenv("NO_COLOR");
    t->color = !(nc && *nc) && has_colors();
    if (!t->color)
        return;
    start_color();
    use_default_colors();
    init_pair(C_ERR, COLOR_RED, -1);
    init_pair(C_OK, COLOR_GREEN, -1);
    init_pair(C_CHAT, COLOR_CYAN, -1);
    init_pair(C_TOOL, COLOR_YELLOW, -1);
    init_pair(C_STATE, COLOR_BLUE, -1);
    init_pair(C_POINT, COLOR_MAGENTA, -1);
    init_pair(C_HEAD, COLOR_BLACK, COLOR_CYAN);
    init_pair(C_DIM, COLOR_WHITE, -1);
    init_pair(C_MATCH, COLOR_BLACK, COLOR_YELLOW);
}

int viewer_tui(store_t *st, const char *db_path, const char *run_id, int follow)
{
    tui_t t;
    memset(&t, 0, sizeof t);
    t.st = st;
    t.db_path = db_path;
    t.follow = follow;
    t.points = 1;
    t.utf8 = MB_CUR_MAX > 1;
    if (run_id) {
        int rc = run_open(&t, run_id);
        if (rc) {
            fprintf(stderr, "agentd trace: %s\n", t.msg);
            run_close(&t);
            return rc == ERR_NOMEM ? CLI_INTERNAL : CLI_USAGE;
        }
        t.direct = 1;
    } else {
        list_load(&t);
    }
    saved_tty_ok = tcgetattr(STDIN_FILENO, &saved_tty) == 0;
    install_signals();
    if (!initscr()) {
        restore_signals();
        run_close(&t);
        runs_free(&t);
        fprintf(stderr, "agentd trace: cannot start the terminal UI (TERM=%s); use --plain\n",
                getenv("TERM") ? getenv("TERM") : "");
        return CLI_USAGE;
    }
    build_reset_seq();
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    timeout(VIEWER_POLL_MS);
    colors(&t);
    int64_t last_open = -1;
    while (!t.quit && !stop_signal) {
        draw(&t);
        if (t.m && t.open_t0 != last_open) {
            /* The open-time figure: from reading the run to the first full screen. */
            int64_t ms = (mono_ns() - t.open_t0) / 1000000;
            last_open = t.open_t0;
            say(&t, "opened %d events, %d spans in %lld ms%s", t.m->nevs, t.m->nspans,
                (long long)ms, t.m->errors ? "   (e: jump to the next error)" : "");
            draw(&t);
        }
        int ch = getch();
        if (ch == ERR) {
            if ((t.scr == SCR_RUN || t.scr == SCR_DETAIL) && t.follow && t.m) {
                if (run_poll(&t) && t.scr == SCR_DETAIL)
                    detail_build(&t);
            } else if (t.scr == SCR_LIST && mono_ns() - t.list_at_ns > 1000000000LL) {
                list_load(&t);
            }
            continue;
        }
        if (ch == KEY_RESIZE) {
            if (t.scr == SCR_DETAIL)
                detail_build(&t);
            continue;
        }
        key(&t, ch);
    }
    endwin();
    restore_signals();
    vlines_clear(&t.det);
    free(t.det.v);
    run_close(&t);
    runs_free(&t);
    free(t.runs);
    free(t.order);
    return stop_signal && stop_signal != SIGINT ? CLI_FAILED : CLI_OK;
}
