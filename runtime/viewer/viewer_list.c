/*
 * viewer_list: the runs list screen of the interactive viewer: loading, sorting, the
 * state filter, lazily counted errors, drawing and keys.
 */
#include "viewer_screen.h"

#include "viewer_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const sort_names[] = {"newest", "duration", "cost", "tokens", "state", "agent"};
static const char *const filter_names[] = {"all",    "active",    "done",
                                           "failed", "cancelled", "waiting"};

void vtui_list_free(tui_t *t)
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
        int ok = t->filter == 0 ||
                 (t->filter == 1 ? !viewer_state_final(s) : !strcmp(s, filter_names[t->filter]));
        if (ok)
            t->order[t->norder++] = i;
    }
    qsort_r(t->order, (size_t)t->norder, sizeof *t->order, cmp_runs, t);
    t->lsel = 0;
    for (int i = 0; i < t->norder; i++)
        if (!strcmp(t->runs[t->order[i]].id, keep))
            t->lsel = i;
}

void vtui_list_load(tui_t *t)
{
    vtui_list_free(t);
    if (store_runs_each(t->st, NULL, 5000, runs_add, t))
        vtui_say(t, "cannot list runs: %s", store_errmsg(t->st));
    list_order(t);
    t->list_at_ns = vtui_mono_ns();
}

static int count_err(void *ud, int64_t seq, const char *json)
{
    (void)seq;
    if (strstr(json, "\"status\":\"error\""))
        ++*(int *)ud;
    return 0;
}

/* Error counts cost a scan of the run's events, so only visible rows get them, and they
 * are kept (by run id and last seq) across the list's once-a-second reloads. The match is
 * on the compact form trace_event_build writes. */
static int run_errors(tui_t *t, lrun_t *l)
{
    if (l->errors >= 0 && l->errors_seq == l->last_seq)
        return l->errors;
    errcache_t *c = NULL;
    for (int i = 0; i < t->necache && !c; i++)
        if (!strcmp(t->ecache[i].id, l->id))
            c = &t->ecache[i];
    if (!c || c->seq != l->last_seq) {
        int n = 0;
        store_events_each(t->st, l->id, 0, count_err, &n);
        if (!c) {
            int slot = t->necache < ECACHE ? t->necache++ : t->ecache_next++ % ECACHE;
            c = &t->ecache[slot];
            snprintf(c->id, sizeof c->id, "%s", l->id);
        }
        c->seq = l->last_seq;
        c->errors = n;
    }
    l->errors = c->errors;
    l->errors_seq = l->last_seq;
    return l->errors;
}

static attr_t state_attr(const tui_t *t, const char *state)
{
    if (!strcmp(state, "failed") || !strcmp(state, "cancelled"))
        return vtui_pair(t, C_ERR, A_BOLD);
    if (!strcmp(state, "done"))
        return vtui_pair(t, C_OK, A_NORMAL);
    return vtui_pair(t, C_TOOL, A_BOLD);
}

void vtui_list_draw(tui_t *t)
{
    int W = COLS, H = LINES, rows = H - 4;
    char dur[32];
    vtui_bar(t, 0, vtui_pair(t, C_HEAD, A_REVERSE));
    vtui_putf(0, 0, W, vtui_pair(t, C_HEAD, A_REVERSE) | A_BOLD,
              " agentd trace — runs   %d shown / %d   sort: %s%s   filter: %s   db: %s", t->norder,
              t->nruns, sort_names[t->sort], t->rev ? " (reversed)" : "", filter_names[t->filter],
              t->db_path);
    vtui_putf(1, 0, W, A_BOLD, "  %-16s %-10s %-9s %5s %7s %7s %9s %3s  %s", "id", "agent", "state",
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
            vtui_bar(t, 2 + r, A_REVERSE);
        int e = run_errors(t, l);
        char when[32] = "";
        if (W >= 95) {
            time_t tt = (time_t)(l->created_ns / 1000000000);
            struct tm tm;
            localtime_r(&tt, &tm);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        }
        vtui_putf(2 + r, 0, W, base, "%s %-16.16s %-10.10s ", sel ? ">" : " ", l->id, l->agent);
        vtui_put(2 + r, 30, 9, l->state, base | state_attr(t, l->state));
        vtui_putf(2 + r, 39, W - 39, base, " %5d %7s %7lld %9.6f %3d  %s", l->steps,
                  spantree_fmt_dur(l->dur_ns, dur, sizeof dur), (long long)l->tokens, l->cost, e,
                  when);
        if (e > 0)
            vtui_putf(2 + r, 72, 4, base | vtui_pair(t, C_ERR, A_BOLD), "%3d", e);
    }
    if (t->norder == 0)
        vtui_put(3, 2, W - 2,
                 t->nruns ? "(no runs match the filter; press f)"
                          : "(no runs yet: agentd run agents/support.lua)",
                 A_DIM);
    const char *line = NULL;
    if (t->msg_until > vtui_mono_ns())
        line = t->msg;
    else if (t->norder && t->runs[t->order[t->lsel]].error)
        line = t->runs[t->order[t->lsel]].error;
    if (line)
        vtui_put(H - 2, 0, W, line,
                 t->msg_until > vtui_mono_ns() ? A_BOLD : vtui_pair(t, C_ERR, A_BOLD));
    vtui_bar(t, H - 1, vtui_pair(t, C_HEAD, A_REVERSE));
    vtui_put(H - 1, 0, W, " ↑↓ move ⏎ open s sort S reverse f filter / find n next e failed q quit",
             vtui_pair(t, C_HEAD, A_REVERSE));
}

void vtui_list_key(tui_t *t, int ch)
{
    int page = LINES - 4 > 1 ? LINES - 4 : 1;
    switch (ch) {
    case KEY_UP:
    case 'k': vtui_move_sel(&t->lsel, t->norder, -1); break;
    case KEY_DOWN:
    case 'j': vtui_move_sel(&t->lsel, t->norder, 1); break;
    case KEY_PPAGE: vtui_move_sel(&t->lsel, t->norder, -page); break;
    case KEY_NPAGE: vtui_move_sel(&t->lsel, t->norder, page); break;
    case KEY_HOME:
    case 'g': t->lsel = 0; break;
    case KEY_END:
    case 'G': vtui_move_sel(&t->lsel, t->norder, t->norder); break;
    case 's':
        t->sort = (t->sort + 1) % SORT__N;
        list_order(t);
        vtui_say(t, "sort: %s", sort_names[t->sort]);
        break;
    case 'S':
        t->rev = !t->rev;
        list_order(t);
        break;
    case 'f':
        t->filter = (t->filter + 1) % FILTERS;
        list_order(t);
        vtui_say(t, "filter: %s", filter_names[t->filter]);
        break;
    case 'r': vtui_list_load(t); break;
    case '\n':
    case '\r':
    case KEY_ENTER:
    case KEY_RIGHT:
    case 'l':
        if (t->norder)
            vtui_run_open(t, t->runs[t->order[t->lsel]].id);
        break;
    case 'q':
    case 'Q': t->quit = 1; break;
    default: break;
    }
}

void vtui_list_next_failed(tui_t *t)
{
    for (int k = 1; k <= t->norder; k++) {
        int i = (t->lsel + k) % t->norder;
        if (!strcmp(t->runs[t->order[i]].state, "failed")) {
            t->lsel = i;
            return;
        }
    }
    vtui_say(t, "no failed runs");
}

int vtui_list_search(tui_t *t, int dir)
{
    for (int k = 1; k <= t->norder; k++) {
        int i = ((t->lsel + dir * k) % t->norder + t->norder) % t->norder;
        const lrun_t *l = &t->runs[t->order[i]];
        if (strcasestr(l->id, t->query) || strcasestr(l->agent, t->query) ||
            strcasestr(l->state, t->query) || (l->error && strcasestr(l->error, t->query))) {
            t->lsel = i;
            return 1;
        }
    }
    return 0;
}
