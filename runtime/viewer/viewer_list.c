/*
 * viewer_list: the runs list screen of the interactive viewer: loading, sorting, filters
 * (state, agent, model), lazily counted errors and retries, each run's input and answer,
 * drawing and keys; and the compare screen that opens from it (a marked run beside the
 * selected one).
 */
#include "viewer_screen.h"

#include "err.h"
#include "viewer_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const sort_names[] = {"newest", "duration", "cost", "tokens", "state", "agent"};
static const char *const filter_names[] = {"all",    "active",    "done",
                                           "failed", "cancelled", "waiting"};

void vtui_list_free(tui_t *t)
{
    for (int i = 0; i < t->nruns; i++) {
        free(t->runs[i].error);
        free(t->runs[i].input);
        free(t->runs[i].answer);
    }
    t->nruns = 0;
}

/* s on one line of the screen: runs of whitespace (newlines included) become one space;
 * as much of its start as fits in len - 1 bytes, in whole UTF-8 characters. */
static const char *flat(const char *s, char *buf, size_t len)
{
    size_t n = 0;
    int space = 0;
    while (s && *s) {
        if (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') {
            space = n > 0;
            s++;
            continue;
        }
        unsigned char c = (unsigned char)*s;
        size_t k = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (n + (size_t)space + k + 1 > len)
            break;
        if (space)
            buf[n++] = ' ';
        space = 0;
        for (size_t b = 0; b < k && *s; b++)
            buf[n++] = *s++;
    }
    buf[n] = 0;
    return buf;
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
    snprintf(l->model, sizeof l->model, "%s", r->answered_by[0] ? r->answered_by : r->model);
    l->steps = r->step;
    l->created_ns = r->created_ns;
    int64_t end = r->ended_ns ? r->ended_ns : r->updated_ns;
    l->dur_ns = end > r->created_ns ? end - r->created_ns : 0;
    l->tokens = r->input_tokens + r->output_tokens;
    l->cost = r->cost_usd;
    l->last_seq = r->last_seq;
    l->errors = -1;
    l->error = r->error ? strdup(r->error) : NULL;
    /* Whole texts: `/` searches all of them; the screen shows their start. */
    l->input = r->input ? strdup(r->input) : NULL;
    l->answer = r->answer ? strdup(r->answer) : NULL;
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

static int shown(const tui_t *t, const lrun_t *l)
{
    const char *s = l->state;
    if (t->filter != 0 &&
        !(t->filter == 1 ? !viewer_state_final(s) : !strcmp(s, filter_names[t->filter])))
        return 0;
    return (!t->fagent[0] || !strcmp(l->agent, t->fagent)) &&
           (!t->fmodel[0] || !strcmp(l->model, t->fmodel));
}

static void list_order(tui_t *t)
{
    char keep[40] = "";
    if (t->lsel < t->norder)
        snprintf(keep, sizeof keep, "%s", t->runs[t->order[t->lsel]].id);
    t->norder = 0;
    for (int i = 0; i < t->nruns; i++)
        if (shown(t, &t->runs[i]))
            t->order[t->norder++] = i;
    qsort_r(t->order, (size_t)t->norder, sizeof *t->order, cmp_runs, t);
    t->lsel = 0;
    for (int i = 0; i < t->norder; i++)
        if (!strcmp(t->runs[t->order[i]].id, keep))
            t->lsel = i;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The shortest id prefix that still tells every listed run apart (git's abbreviated
 * hashes): run ids start with their creation time, so runs of one batch share the first
 * 8 to 10 characters. Sorted ids: the longest prefix two neighbours share, plus one. */
static int unique_prefix(const tui_t *t)
{
    const char **ids = malloc((size_t)(t->nruns ? t->nruns : 1) * sizeof *ids);
    if (!ids)
        return 16;
    for (int i = 0; i < t->nruns; i++)
        ids[i] = t->runs[i].id;
    qsort(ids, (size_t)t->nruns, sizeof *ids, cmp_str);
    int need = 1;
    for (int i = 1; i < t->nruns; i++) {
        int k = 0;
        while (ids[i][k] && ids[i][k] == ids[i - 1][k])
            k++;
        if (k + 1 > need)
            need = k + 1;
    }
    free(ids);
    return need;
}

void vtui_list_load(tui_t *t)
{
    vtui_list_free(t);
    if (store_runs_each(t->st, NULL, 5000, runs_add, t))
        vtui_say(t, "cannot list runs: %s", store_errmsg(t->st));
    t->id_unique = unique_prefix(t);
    list_order(t);
    t->list_at_ns = vtui_mono_ns();
}

/* Error and retry counts need the run's span tree (a retry that later succeeded is no
 * error; a denied approval is one), so only visible rows get them, and they are kept (by
 * run id and last seq) across the list's once-a-second reloads. */
static void run_counts(tui_t *t, lrun_t *l)
{
    if (l->errors >= 0 && l->errors_seq == l->last_seq)
        return;
    errcache_t *c = NULL;
    for (int i = 0; i < t->necache && !c; i++)
        if (!strcmp(t->ecache[i].id, l->id))
            c = &t->ecache[i];
    if (!c || c->seq != l->last_seq) {
        char err[512];
        spantree_t *m = spantree_new(l->id);
        if (!m || viewer_load(t->st, m, err, sizeof err)) {
            spantree_free(m);
            l->errors = l->retries = 0;
            return; /* counted again on the next draw */
        }
        if (!c) {
            int slot = t->necache < ECACHE ? t->necache++ : t->ecache_next++ % ECACHE;
            c = &t->ecache[slot];
            snprintf(c->id, sizeof c->id, "%s", l->id);
        }
        c->seq = l->last_seq;
        c->errors = m->errors;
        c->retries = m->retries;
        spantree_free(m);
    }
    l->errors = c->errors;
    l->retries = c->retries;
    l->errors_seq = l->last_seq;
}

static attr_t state_attr(const tui_t *t, const char *state)
{
    if (!strcmp(state, "failed") || !strcmp(state, "cancelled"))
        return vtui_pair(t, C_ERR, A_BOLD);
    if (!strcmp(state, "done"))
        return vtui_pair(t, C_OK, A_NORMAL);
    return vtui_pair(t, C_TOOL, A_BOLD);
}

/* The list's columns, from the terminal width: ids shortened and the start time left out
 * on narrow terminals, so the input and answer keep room. */
typedef struct cols {
    int idw, steps, start; /* id width; steps and start-time columns shown */
    int state, text;       /* x of the state and of "input → answer" */
} cols_t;

static cols_t layout(const tui_t *t, int W)
{
    cols_t c;
    c.idw = W >= 120 || t->id_unique > 12 ? 16 : t->id_unique > 8 ? t->id_unique : 8;
    c.steps = W >= 100;
    c.start = W >= 180;
    c.state = 2 + c.idw + 1 + 11;
    /* state(9) [steps 6] time 7, tokens 7, cost 9, err 4, rty 4 [started 21] gap 2 */
    c.text = c.state + 9 + (c.steps ? 6 : 0) + 7 + 7 + 9 + 4 + 4 + (c.start ? 21 : 0) + 2;
    return c;
}

void vtui_list_draw(tui_t *t)
{
    int W = COLS, H = LINES, rows = H - 5;
    char dur[32];
    cols_t c = layout(t, W);
    vtui_bar(t, 0, vtui_pair(t, C_HEAD, A_REVERSE));
    vtui_putf(0, 0, W, vtui_pair(t, C_HEAD, A_REVERSE) | A_BOLD,
              " agentd trace — runs   %d shown / %d   sort: %s%s   filter: %s%s%s%s%s   db: %s",
              t->norder, t->nruns, sort_names[t->sort], t->rev ? " (reversed)" : "",
              filter_names[t->filter], t->fagent[0] ? "  agent: " : "", t->fagent,
              t->fmodel[0] ? "  model: " : "", t->fmodel, t->db_path);
    vtui_putf(1, 0, W, A_BOLD, "  %-*s %-10s %-9s%s %6s %6s %8s %3s %3s%s  %s", c.idw, "id",
              "agent", "state", c.steps ? " steps" : "", "time", "tokens", "cost $", "err", "rty",
              c.start ? " started             " : "", "input → answer");
    if (t->lsel >= t->norder)
        t->lsel = t->norder ? t->norder - 1 : 0;
    if (t->lsel < t->ltop)
        t->ltop = t->lsel;
    if (rows > 0 && t->lsel >= t->ltop + rows)
        t->ltop = t->lsel - rows + 1;
    for (int r = 0; r < rows && t->ltop + r < t->norder; r++) {
        int k = t->ltop + r, y = 2 + r;
        lrun_t *l = &t->runs[t->order[k]];
        int sel = k == t->lsel;
        attr_t base = sel ? A_REVERSE : A_NORMAL;
        if (sel)
            vtui_bar(t, y, A_REVERSE);
        run_counts(t, l);
        char when[32] = "";
        if (c.start) {
            time_t tt = (time_t)(l->created_ns / 1000000000);
            struct tm tm;
            localtime_r(&tt, &tm);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        }
        int marked = t->mark[0] && !strcmp(t->mark, l->id);
        /* An agent name longer than its column ends in '…' rather than being cut silently. */
        char agent[140];
        int aw;
        int cut = vtui_width(l->agent) > 10;
        size_t an = vtui_clip(l->agent, cut ? 9 : 10, &aw);
        snprintf(agent, sizeof agent, "%.*s%s", (int)an, l->agent, cut ? "…" : "");
        vtui_putf(y, 0, W, base, "%s%c%-*.*s ", sel ? ">" : " ", marked ? '*' : ' ', c.idw,
                  c.idw, l->id);
        int x = 2 + c.idw + 1;
        vtui_put(y, x, 10, agent, base);
        x = c.state;
        vtui_put(y, x, 9, l->state, base | state_attr(t, l->state));
        x += 9;
        if (c.steps) {
            vtui_putf(y, x, 6, base, " %5d", l->steps);
            x += 6;
        }
        /* Columns keep their width for big runs: 12.3k tokens, $12.35. */
        char tok[16];
        vtui_fmt_count(l->tokens, tok, sizeof tok);
        vtui_putf(y, x, W - x, base, " %6s %6s %8.*f", spantree_fmt_dur(l->dur_ns, dur, sizeof dur),
                  tok, l->cost < 10 ? 6 : 2, l->cost);
        x += 23;
        vtui_putf(y, x, 4, base | (l->errors > 0 ? vtui_pair(t, C_ERR, A_BOLD) : 0), " %3d",
                  l->errors);
        vtui_putf(y, x + 4, 4, base, " %3d", l->retries);
        x += 8;
        if (c.start)
            vtui_putf(y, x, 21, base, " %s", when);
        if (c.text < W - 4) {
            char io[700], in[300], out[400];
            snprintf(io, sizeof io, "%s → %s", l->input ? flat(l->input, in, sizeof in) : "-",
                     l->answer  ? flat(l->answer, out, sizeof out)
                     : l->error ? l->error
                                : "-");
            vtui_put(y, c.text, W - c.text, io, base | A_DIM);
        }
    }
    if (t->norder == 0)
        vtui_put(3, 2, W - 2,
                 t->nruns ? "(no runs match the filters; press f, a or m)"
                          : "(no runs yet: agentd run agents/support.lua)",
                 A_DIM);
    /* The selected run in full: its input, its answer (or error), the model that answered. */
    if (t->norder) {
        const lrun_t *l = &t->runs[t->order[t->lsel]];
        char in[600], out[600];
        vtui_putf(H - 3, 0, W, A_NORMAL, "in:  %s", l->input ? flat(l->input, in, sizeof in) : "-");
        if (l->error)
            vtui_putf(H - 2, 0, W, vtui_pair(t, C_ERR, A_BOLD), "err: %s", l->error);
        else
            vtui_putf(H - 2, 0, W, A_NORMAL, "out: [%s] %s", l->model,
                      l->answer ? flat(l->answer, out, sizeof out) : "-");
    }
    if (t->msg_until > vtui_mono_ns()) {
        vtui_bar(t, H - 2, A_NORMAL);
        vtui_put(H - 2, 0, W, t->msg, A_BOLD);
    }
    vtui_bar(t, H - 1, vtui_pair(t, C_HEAD, A_REVERSE));
    vtui_put(H - 1, 0, W,
             " ⏎ open s sort f state a agent m model / find e failed ␣ mark c compare q quit",
             vtui_pair(t, C_HEAD, A_REVERSE));
}

/* Cycle a filter through the values present in the runs: "" (any), then each distinct
 * value in list order. */
static void cycle(tui_t *t, char *cur, size_t len, int model)
{
    const char *next = NULL;
    int seen_cur = !cur[0];
    for (int i = 0; i < t->nruns && !next; i++) {
        const char *v = model ? t->runs[i].model : t->runs[i].agent;
        int earlier = 0; /* already offered: the first occurrence is the one that counts */
        for (int j = 0; j < i && !earlier; j++)
            earlier = !strcmp(v, model ? t->runs[j].model : t->runs[j].agent);
        if (earlier)
            continue;
        if (seen_cur && strcmp(v, cur) != 0)
            next = v;
        else if (!strcmp(v, cur))
            seen_cur = 1;
    }
    snprintf(cur, len, "%s", next ? next : "");
    list_order(t);
    vtui_say(t, "%s: %s", model ? "model" : "agent", cur[0] ? cur : "any");
}

static void open_compare(tui_t *t)
{
    if (!t->norder)
        return;
    const lrun_t *l = &t->runs[t->order[t->lsel]];
    if (!t->mark[0] || !strcmp(t->mark, l->id)) {
        vtui_say(t, "mark a run with space, then press c on another to compare them");
        return;
    }
    snprintf(t->cmp[0], sizeof t->cmp[0], "%s", t->mark);
    snprintf(t->cmp[1], sizeof t->cmp[1], "%s", l->id);
    t->dtop = 0;
    t->scr = SCR_COMPARE;
    vtui_compare_build(t);
}

void vtui_list_key(tui_t *t, int ch)
{
    if (vtui_sel_key(&t->lsel, t->norder, LINES - 5, ch))
        return;
    switch (ch) {
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
    case 'a': cycle(t, t->fagent, sizeof t->fagent, 0); break;
    case 'm': cycle(t, t->fmodel, sizeof t->fmodel, 1); break;
    case ' ':
        if (t->norder) {
            const char *id = t->runs[t->order[t->lsel]].id;
            if (!strcmp(t->mark, id))
                t->mark[0] = 0;
            else
                snprintf(t->mark, sizeof t->mark, "%s", id);
            vtui_say(t, t->mark[0] ? "marked %.16s; press c on another run to compare"
                                   : "mark cleared%s",
                     t->mark[0] ? t->mark : "");
        }
        break;
    case 'c': open_compare(t); break;
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

static int has(const char *s, const char *q)
{
    return s && strcasestr(s, q);
}

int vtui_list_search(tui_t *t, int dir)
{
    for (int k = 1; k <= t->norder; k++) {
        int i = ((t->lsel + dir * k) % t->norder + t->norder) % t->norder;
        const lrun_t *l = &t->runs[t->order[i]];
        if (has(l->id, t->query) || has(l->agent, t->query) || has(l->state, t->query) ||
            has(l->error, t->query) || has(l->input, t->query) || has(l->answer, t->query) ||
            has(l->model, t->query)) {
            t->lsel = i;
            return 1;
        }
    }
    return 0;
}

/* ---- compare ----------------------------------------------------------------------- */

void vtui_compare_build(tui_t *t)
{
    store_run_t r[2];
    spantree_t *m[2] = {NULL, NULL};
    int got = 0, rc = 0;
    char err[512] = "";
    for (; got < 2 && !rc; got++) {
        rc = store_run_get(t->st, t->cmp[got], &r[got]);
        if (rc) {
            snprintf(err, sizeof err, "run %s: %s", t->cmp[got], err_str(rc));
            break;
        }
        m[got] = spantree_new(r[got].id);
        rc = m[got] ? viewer_load(t->st, m[got], err, sizeof err) : ERR_NOMEM;
    }
    t->det.width = COLS;
    if (!rc)
        rc = viewer_compare_build(&t->det, &r[0], m[0], &r[1], m[1], !t->utf8);
    if (rc) {
        vtui_say(t, "compare: %s", err[0] ? err : err_str(rc));
        t->scr = SCR_LIST;
    }
    for (int i = 0; i < got; i++) {
        spantree_free(m[i]);
        store_run_clear(&r[i]);
    }
}

void vtui_compare_draw(tui_t *t)
{
    int W = COLS, H = LINES, rows = H - 3;
    vtui_bar(t, 0, vtui_pair(t, C_HEAD, A_REVERSE));
    vtui_putf(0, 0, W, vtui_pair(t, C_HEAD, A_REVERSE) | A_BOLD, " compare %.16s ↔ %.16s", t->cmp[0],
              t->cmp[1]);
    if (t->dtop > t->det.n - rows)
        t->dtop = t->det.n - rows > 0 ? t->det.n - rows : 0;
    for (int r = 0; r < rows && t->dtop + r < t->det.n; r++) {
        const vline_t *l = &t->det.v[t->dtop + r];
        attr_t a = l->kind == VL_KEY    ? A_BOLD
                   : l->kind == VL_HEAD ? vtui_pair(t, C_STATE, A_NORMAL) | A_BOLD
                                        : A_NORMAL;
        if (t->query[0] && strcasestr(l->text, t->query))
            a = vtui_pair(t, C_MATCH, A_REVERSE);
        vtui_put(1 + r, 0, W, l->text, a);
    }
    if (t->msg_until > vtui_mono_ns())
        vtui_put(H - 2, 0, W, t->msg, A_BOLD);
    else
        vtui_putf(H - 2, 0, W, A_DIM, "line %d-%d of %d   ≠ marks rows that differ",
                  t->det.n ? t->dtop + 1 : 0, t->dtop + rows < t->det.n ? t->dtop + rows : t->det.n,
                  t->det.n);
    vtui_bar(t, H - 1, vtui_pair(t, C_HEAD, A_REVERSE));
    vtui_put(H - 1, 0, W, " ↑↓ PgUp PgDn scroll  / find  n next  q back  Q quit",
             vtui_pair(t, C_HEAD, A_REVERSE));
}

void vtui_compare_key(tui_t *t, int ch)
{
    if (vtui_scroll_key(t, ch))
        return;
    switch (ch) {
    case 'q':
    case KEY_LEFT:
    case 'h':
    case 27:
    case KEY_BACKSPACE: t->scr = SCR_LIST; break;
    case 'Q': t->quit = 1; break;
    default: break;
    }
}
