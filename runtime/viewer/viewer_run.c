/*
 * viewer_run: the run view (span tree and waterfall) and the detail screen of the
 * interactive viewer, with navigation (next error, search, folding) and span copying.
 */
#include "viewer_screen.h"

#include "err.h"
#include "viewer_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int live(const tui_t *t)
{
    return t->has_run && !viewer_state_final(t->run.state);
}

static int64_t now_for_bars(const tui_t *t)
{
    return t->follow && live(t) ? wall_ns() : 0;
}

void vtui_run_close(tui_t *t)
{
    spantree_free(t->m);
    t->m = NULL;
    if (t->has_run)
        store_run_clear(&t->run);
    t->has_run = 0;
}

int vtui_run_open(tui_t *t, const char *id)
{
    char err[512];
    vtui_run_close(t);
    int64_t t0 = vtui_mono_ns();
    int rc = store_run_get(t->st, id, &t->run);
    if (rc) {
        vtui_say(t, "run %s: %s", id,
                 rc == ERR_INVAL ? "prefix matches several runs" : err_str(rc));
        return rc;
    }
    t->has_run = 1;
    t->m = spantree_new(t->run.id);
    if (!t->m)
        return ERR_NOMEM;
    if ((rc = viewer_load(t->st, t->m, err, sizeof err)) != 0 ||
        (rc = spantree_flatten(t->m, t->points)) != 0) {
        vtui_say(t, "%s", rc == ERR_NOMEM ? "out of memory" : err);
        return rc;
    }
    t->rsel = t->rtop = 0;
    t->open_t0 = t0;
    t->follow = t->follow || live(t);
    /* A live run is read like tail -f: the cursor starts on the newest span and stays
     * there as spans arrive (until the user moves it). */
    if (live(t) && t->m->nrows)
        t->rsel = t->m->nrows - 1;
    t->scr = SCR_RUN;
    return 0;
}

/* Follow tick: new events and the run row. Keeps the cursor on the newest span when it
 * was there. */
int vtui_run_poll(tui_t *t)
{
    char err[512];
    int64_t before = t->m->last_seq;
    int at_end = t->rsel >= t->m->nrows - 1;
    if (viewer_load(t->st, t->m, err, sizeof err)) {
        vtui_say(t, "%s", err);
        return 0;
    }
    store_run_t r;
    if (store_run_get(t->st, t->run.id, &r) == 0) {
        int ended = !viewer_state_final(t->run.state) && viewer_state_final(r.state);
        store_run_clear(&t->run);
        t->run = r;
        if (ended)
            vtui_say(t, "run ended: %s", r.state);
    }
    if (t->m->last_seq == before)
        return live(t); /* open spans still grow */
    spantree_flatten(t->m, t->points);
    if (at_end && t->m->nrows)
        t->rsel = t->m->nrows - 1;
    return 1;
}

/* A failed attempt that was tried again: shown as a retry (↻), not as an error. */
static int retry_span(const spantree_span_t *s)
{
    return spantree_is_retry(s);
}

static int failed(const spantree_span_t *s)
{
    return s->status == SPAN_ERROR && !retry_span(s);
}

static attr_t op_attr(const tui_t *t, const spantree_span_t *s)
{
    if (failed(s))
        return vtui_pair(t, C_ERR, A_BOLD);
    if (!strcmp(s->op, "chat"))
        return vtui_pair(t, C_CHAT, A_NORMAL);
    if (!strcmp(s->op, "execute_tool"))
        return vtui_pair(t, C_TOOL, A_NORMAL);
    if (s->point)
        return vtui_pair(t, C_POINT, A_NORMAL);
    return vtui_pair(t, C_STATE, A_NORMAL);
}

static void tree_prefix(const tui_t *t, const spantree_row_t *row, char *buf, size_t len)
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

static int has_kids(const spantree_t *m, int span)
{
    for (int i = 0; i < m->nspans; i++)
        if (m->spans[i].parent_idx == span)
            return 1;
    return 0;
}

void vtui_run_draw(tui_t *t)
{
    int W = COLS, H = LINES, rows = H - 4;
    spantree_t *m = t->m;
    char dur[32], b2[32];
    int root = spantree_root(m);
    int64_t now = now_for_bars(t);
    int64_t t0 = root >= 0 ? m->spans[root].start_ns : m->min_ns;
    int64_t t1 = root >= 0 ? spantree_span_end(m, &m->spans[root], now) : m->max_ns;
    if (now > t1)
        t1 = now;
    if (m->max_ns > t1)
        t1 = m->max_ns;
    int64_t span_ns = t1 > t0 ? t1 - t0 : 1;

    vtui_bar(t, 0, vtui_pair(t, C_HEAD, A_REVERSE));
    vtui_putf(0, 0, W, vtui_pair(t, C_HEAD, A_REVERSE) | A_BOLD,
              " %.*s %s %s%s | %d err %d retried | steps %d %s | %lld+%lld tok $%.6g",
              W >= 100 ? 16 : 10, t->run.id, t->run.agent, t->run.state,
              t->follow ? (live(t) ? " LIVE" : " (followed)") : "", m->errors, m->retries,
              t->run.step, spantree_fmt_dur(t1 - t0, dur, sizeof dur),
              (long long)m->in_tokens, (long long)m->out_tokens, t->run.cost_usd);

    /* Columns: name, tokens and cost (the span's own for a model call, its subtree's
     * for the others, dim), duration, waterfall. */
    int bw = W >= 120 ? W / 3 : W >= 80 ? 18 : (W / 5 > 6 ? W / 5 : 6);
    int dw = 7, tw = 6, cw = 9, nw = W - bw - dw - tw - cw - 4;
    int bx = W - bw, tx = nw + 2, cx = tx + tw, dx = cx + cw;
    vtui_putf(1, 0, nw + 2, A_BOLD, "  span");
    vtui_putf(1, tx, tw, A_BOLD, "%*s", tw, "tok");
    vtui_putf(1, cx, cw, A_BOLD, "%*s", cw, "cost $");
    vtui_putf(1, dx, dw + 1, A_BOLD, "%*s", dw, "time");
    vtui_putf(1, bx, bw, A_DIM, "0");
    spantree_fmt_dur(span_ns, b2, sizeof b2);
    vtui_put(1, W - (int)strlen(b2), (int)strlen(b2), b2, A_DIM);

    if (t->rsel >= m->nrows)
        t->rsel = m->nrows ? m->nrows - 1 : 0;
    if (t->rsel < t->rtop)
        t->rtop = t->rsel;
    if (rows > 0 && t->rsel >= t->rtop + rows)
        t->rtop = t->rsel - rows + 1;
    for (int r = 0; r < rows && t->rtop + r < m->nrows; r++) {
        int k = t->rtop + r, y = 2 + r;
        const spantree_row_t *row = &m->rows[k];
        const spantree_span_t *s = &m->spans[row->span];
        int sel = k == t->rsel;
        attr_t base = sel ? A_REVERSE : A_NORMAL;
        if (sel)
            vtui_bar(t, y, A_REVERSE);
        const char *mark = failed(s)             ? (t->utf8 ? "✗" : "!")
                           : retry_span(s)       ? (t->utf8 ? "↻" : "r")
                           : !s->end_ns          ? (t->utf8 ? "…" : ">")
                           : s->collapsed        ? "+"
                                                 : " ";
        vtui_put(y, 0, 1, mark, base | (failed(s) ? vtui_pair(t, C_ERR, A_BOLD) : A_BOLD));
        char pre[200], label[400];
        tree_prefix(t, row, pre, sizeof pre);
        int x = 2 + vtui_put(y, 2, nw, pre, base | A_DIM);
        snprintf(label, sizeof label, "%s%s%s", s->collapsed ? "[+] " : "",
                 s->name ? s->name : s->op, s->retries ? (t->utf8 ? " ↻" : " (retry)") : "");
        x += vtui_put(y, x, nw + 2 - x, label, base | op_attr(t, s));
        if (s->error && x < nw)
            vtui_putf(y, x, nw + 2 - x,
                      base | (failed(s) ? vtui_pair(t, C_ERR, A_NORMAL) : vtui_pair(t, C_POINT, 0)),
                      "  %s", s->error);
        if (s->sub_tokens || s->sub_cost > 0) {
            int own = spantree_span_tokens(s) > 0 || spantree_span_cost(s) > 0;
            char tok[16];
            vtui_fmt_count(s->sub_tokens, tok, sizeof tok);
            attr_t a = base | (own ? A_NORMAL : A_DIM);
            vtui_putf(y, tx, tw, a, "%*s", tw, tok);
            vtui_putf(y, cx, cw, a, "%*.*f", cw, s->sub_cost < 1 ? 6 : 2, s->sub_cost);
        }
        int64_t end = spantree_span_end(m, s, now);
        vtui_putf(y, dx, dw + 1, base, "%*s", dw,
                  s->point ? "·" : spantree_fmt_dur(end - s->start_ns, dur, sizeof dur));
        /* The waterfall: the span's place in the run, one cell at least. */
        int x0 = (int)((double)(s->start_ns - t0) * bw / (double)span_ns);
        int x1 = (int)((double)(end - t0) * bw / (double)span_ns);
        if (x0 >= bw)
            x0 = bw - 1;
        if (x1 <= x0)
            x1 = x0 + 1;
        if (x1 > bw)
            x1 = bw;
        attr_t ba = t->color ? op_attr(t, s) : (s->status == SPAN_ERROR ? A_BOLD : A_NORMAL);
        for (int c = x0; c < x1; c++)
            vtui_put(y, bx + c, 1,
                     s->point                    ? (t->utf8 ? "◆" : "*")
                     : !s->end_ns && c == x1 - 1 ? (t->utf8 ? "▶" : ">")
                     : t->utf8                   ? "█"
                                                 : "=",
                     ba | (sel ? A_REVERSE : 0));
    }
    const char *line = t->msg_until > vtui_mono_ns() ? t->msg : NULL;
    char facts[400];
    if (!line && m->nrows) {
        viewer_span_facts(&m->spans[m->rows[t->rsel].span], 1, facts, sizeof facts);
        line = facts;
    }
    if (line)
        vtui_put(H - 2, 0, W, line,
                 line == t->msg ? A_BOLD
                                : (m->nrows && failed(&m->spans[m->rows[t->rsel].span])
                                       ? vtui_pair(t, C_ERR, A_BOLD)
                                       : A_NORMAL));
    vtui_bar(t, H - 1, vtui_pair(t, C_HEAD, A_REVERSE));
    vtui_put(H - 1, 0, W,
             " ↑↓ ⏎ detail e error / find n next ␣ fold F follow p points c json y copy q back",
             vtui_pair(t, C_HEAD, A_REVERSE));
}

/* ---- detail ------------------------------------------------------------------------ */

void vtui_detail_build(tui_t *t)
{
    t->det.width = COLS;
    if (viewer_detail_build(&t->det, t->st, t->m, t->dspan, t->djson))
        vtui_say(t, "out of memory");
    if (t->dtop >= t->det.n)
        t->dtop = 0;
}

static attr_t kind_attr(const tui_t *t, int kind)
{
    switch (kind) {
    case VL_HEAD: return vtui_pair(t, C_STATE, A_NORMAL) | A_BOLD;
    case VL_ERROR: return vtui_pair(t, C_ERR, A_BOLD);
    case VL_DIM: return vtui_pair(t, C_DIM, A_DIM);
    case VL_KEY: return A_BOLD;
    case VL_OK: return vtui_pair(t, C_OK, A_NORMAL);
    default: return A_NORMAL;
    }
}

void vtui_detail_draw(tui_t *t)
{
    int W = COLS, H = LINES, rows = H - 3;
    const spantree_span_t *s = &t->m->spans[t->dspan];
    vtui_bar(t, 0, vtui_pair(t, C_HEAD, A_REVERSE));
    vtui_putf(0, 0, W, vtui_pair(t, C_HEAD, A_REVERSE) | A_BOLD, " %s — %s   run %.16s",
              s->name ? s->name : s->op, t->djson ? "span JSON (copy-friendly)" : "detail",
              t->m->run_id);
    if (t->dtop > t->det.n - rows)
        t->dtop = t->det.n - rows > 0 ? t->det.n - rows : 0;
    for (int r = 0; r < rows && t->dtop + r < t->det.n; r++) {
        const vline_t *l = &t->det.v[t->dtop + r];
        attr_t a = t->djson ? A_NORMAL : kind_attr(t, l->kind);
        if (t->query[0] && strcasestr(l->text, t->query))
            a = vtui_pair(t, C_MATCH, A_REVERSE);
        vtui_put(1 + r, 0, W, l->text, a);
    }
    if (t->msg_until > vtui_mono_ns())
        vtui_put(H - 2, 0, W, t->msg, A_BOLD);
    else
        vtui_putf(H - 2, 0, W, A_DIM, "line %d-%d of %d", t->det.n ? t->dtop + 1 : 0,
                  t->dtop + rows < t->det.n ? t->dtop + rows : t->det.n, t->det.n);
    vtui_bar(t, H - 1, vtui_pair(t, C_HEAD, A_REVERSE));
    vtui_put(H - 1, 0, W,
             " ↑↓ PgUp PgDn  / find  n next  e next error  c json  y copy  q back  Q quit",
             vtui_pair(t, C_HEAD, A_REVERSE));
}

/* ---- navigation -------------------------------------------------------------------- */

/* Make span i visible: unfold its ancestors (and show instant spans), re-flatten, select. */
static void reveal(tui_t *t, int i)
{
    spantree_t *m = t->m;
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
        spantree_flatten(m, t->points);
    for (int r = 0; r < m->nrows; r++)
        if (m->rows[r].span == i)
            t->rsel = r;
}

/* Next span after the selected row (in tree order, wrapping) that satisfies pred. Hidden
 * spans count: the tree is walked with everything unfolded. */
static int find_span(tui_t *t, int dir, int (*pred)(const tui_t *, int))
{
    spantree_t *m = t->m;
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
    if (spantree_flatten(m, 1) == 0) {
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
    spantree_flatten(m, t->points);
    if (found >= 0)
        reveal(t, found);
    return found;
}

/* What `e` visits is what the error count counts: failed spans, denied approvals among
 * them, and not the retries of a call that may have succeeded afterwards. */
static int pred_error(const tui_t *t, int i)
{
    return failed(&t->m->spans[i]);
}

static int pred_match(const tui_t *t, int i)
{
    return spantree_span_matches(t->m, i, t->query);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Save the span's JSON to a file and offer it to the terminal clipboard (OSC 52). */
static void copy_span(tui_t *t, int span)
{
    json_object *j = spantree_span_json(t->m, span);
    if (!j) {
        vtui_say(t, "out of memory");
        return;
    }
    const char *text = json_object_to_json_string_ext(
        j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
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
        vtui_say(t, "span JSON saved to %s (and sent to the clipboard)", path);
    else
        vtui_say(t, "cannot write %s", path);
    json_object_put(j);
}

void vtui_run_key(tui_t *t, int ch)
{
    spantree_t *m = t->m;
    if (vtui_sel_key(&t->rsel, m->nrows, LINES - 4, ch))
        return;
    switch (ch) {
    case ' ':
        if (m->nrows && has_kids(m, m->rows[t->rsel].span)) {
            spantree_span_t *s = &m->spans[m->rows[t->rsel].span];
            s->collapsed = !s->collapsed;
            spantree_flatten(m, t->points);
        }
        break;
    case 'p': {
        int span = m->nrows ? m->rows[t->rsel].span : -1;
        t->points = !t->points;
        spantree_flatten(m, t->points);
        if (span >= 0)
            reveal(t, span);
        vtui_say(t, "instant spans (retries, guardrails, logs) %s", t->points ? "shown" : "hidden");
        break;
    }
    case 'F':
        t->follow = !t->follow;
        vtui_say(t, "follow %s", t->follow ? "on" : "off");
        break;
    case '\n':
    case '\r':
    case KEY_ENTER:
    case KEY_RIGHT:
    case 'l':
    case 'c':
        if (m->nrows) {
            t->dspan = m->rows[t->rsel].span;
            t->dtop = 0;
            t->djson = ch == 'c';
            t->scr = SCR_DETAIL;
            vtui_detail_build(t);
        }
        break;
    case 'y':
        if (m->nrows)
            copy_span(t, m->rows[t->rsel].span);
        break;
    case 'q':
    case KEY_LEFT:
    case 'h':
    case 27:
    case KEY_BACKSPACE:
        if (t->direct && ch == 'q') {
            t->quit = 1;
        } else {
            t->scr = SCR_LIST;
            if (!t->nruns)
                vtui_list_load(t);
        }
        break;
    case 'Q': t->quit = 1; break;
    default: break;
    }
}

int vtui_scroll_key(tui_t *t, int ch)
{
    int page = LINES - 3 > 1 ? LINES - 3 : 1;
    switch (ch) {
    case KEY_UP:
    case 'k':
        if (t->dtop > 0)
            t->dtop--;
        return 1;
    case KEY_DOWN:
    case 'j': t->dtop++; return 1;
    case KEY_PPAGE: t->dtop = t->dtop > page ? t->dtop - page : 0; return 1;
    case KEY_NPAGE:
    case ' ': t->dtop += page; return 1;
    case KEY_HOME:
    case 'g': t->dtop = 0; return 1;
    case KEY_END:
    case 'G': t->dtop = t->det.n; return 1;
    default: return 0;
    }
}

void vtui_detail_key(tui_t *t, int ch)
{
    if (vtui_scroll_key(t, ch))
        return;
    switch (ch) {
    case 'c':
        t->djson = !t->djson;
        t->dtop = 0;
        vtui_detail_build(t);
        break;
    case 'y': copy_span(t, t->dspan); break;
    case 'q':
    case KEY_LEFT:
    case 'h':
    case 27:
    case KEY_BACKSPACE: t->scr = SCR_RUN; break;
    case 'Q': t->quit = 1; break;
    default: break;
    }
}

void vtui_run_next_error(tui_t *t)
{
    int was = t->m->nrows ? t->m->rows[t->rsel].span : -1;
    int f = find_span(t, 1, pred_error);
    if (f < 0) {
        vtui_say(t, "no errors in this run");
        return;
    }
    vtui_say(t, "error in %s: %s", t->m->spans[f].name ? t->m->spans[f].name : t->m->spans[f].op,
             t->m->spans[f].error ? t->m->spans[f].error : "(no message)");
    if (t->scr == SCR_DETAIL && f != was) {
        t->dspan = f;
        t->dtop = 0;
        vtui_detail_build(t);
    }
}

int vtui_run_search(tui_t *t, int dir)
{
    if (t->scr == SCR_DETAIL || t->scr == SCR_COMPARE) {
        for (int k = 1; k <= t->det.n; k++) {
            int i = ((t->dtop + dir * k) % t->det.n + t->det.n) % t->det.n;
            if (strcasestr(t->det.v[i].text, t->query)) {
                t->dtop = i;
                return 1;
            }
        }
        return 0;
    }
    return find_span(t, dir, pred_match) >= 0;
}
