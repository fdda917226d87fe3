/*
 * viewer_compare: two runs side by side — the same case on two prompts or two models.
 * One builder for the interactive screen (the runs list's `c`) and for
 * `agentd trace compare A B`, so both show the same thing: the run rows' figures, input
 * and answer, then the trajectory turn by turn (each model call with its tokens and cost,
 * and the tool calls it asked for), rows that differ marked with '≠'.
 */
#include "viewer_tui.h"

#include "err.h"
#include "viewer_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LABEL_W = 12 };

/* The marks, in UTF-8 or (for locales without it) ASCII. */
typedef struct marks {
    const char *differ, *sep, *ok, *bad, *retry, *rule;
} marks_t;
static const marks_t utf8_marks = {"≠", "│", "✓", "✗", "↻", "──"};
static const marks_t ascii_marks = {"!", "|", "+", "x", "(retry)", "--"};

/* One cell of text wrapped at the column width: lines of a scratch vlines. */
static int wrap_cell(vlines_t *cell, int width, const char *text)
{
    vlines_clear(cell);
    cell->width = width;
    return vlines_add(cell, VL_TEXT, "", text && *text ? text : "-");
}

/* Pad s (display columns) to width columns into out. */
static void pad(char *out, size_t len, const char *s, int width)
{
    int cols = vtui_width(s);
    snprintf(out, len, "%s%*s", s, width > cols ? width - cols : 0, "");
}

/* A row "label  left │ right", each side wrapped; differ marks the row with '≠'. */
static int row(vlines_t *out, const marks_t *mk, int colw, const char *label, const char *l,
               const char *r, int differ, int kind)
{
    vlines_t a = {0}, b = {0};
    int rc = wrap_cell(&a, colw, l);
    if (!rc)
        rc = wrap_cell(&b, colw, r);
    for (int i = 0; !rc && (i < a.n || i < b.n); i++) {
        char left[1024], line[2600];
        pad(left, sizeof left, i < a.n ? a.v[i].text : "", colw);
        snprintf(line, sizeof line, "%s %-*.*s %s %s %s", i == 0 && differ ? mk->differ : " ",
                 LABEL_W, LABEL_W, i == 0 ? label : "", left, mk->sep, i < b.n ? b.v[i].text : "");
        /* The line is already as wide as the screen: no second wrap. */
        int w = out->width;
        out->width = vtui_width(line) + 1;
        rc = vlines_add(out, differ ? VL_KEY : kind, "", line);
        out->width = w;
    }
    vlines_clear(&a);
    vlines_clear(&b);
    free(a.v);
    free(b.v);
    return rc;
}

static int row_str(vlines_t *out, const marks_t *mk, int colw, const char *label, const char *l,
                   const char *r)
{
    return row(out, mk, colw, label, l, r, strcmp(l ? l : "", r ? r : "") != 0, VL_TEXT);
}

/* One turn of a trajectory: a model call and the tool calls that followed it. */
typedef struct turn {
    char *text; /* lines joined by '\n', owned */
} turn_t;

typedef struct traj {
    turn_t *v;
    int n, cap;
} traj_t;

static int traj_append(traj_t *t, const char *line)
{
    if (t->n == 0 || !strncmp(line, "model ", 6)) {
        if (t->n == t->cap) {
            int cap = t->cap ? t->cap * 2 : 8;
            turn_t *v = realloc(t->v, (size_t)cap * sizeof *v);
            if (!v)
                return ERR_NOMEM;
            t->v = v;
            t->cap = cap;
        }
        t->v[t->n++].text = NULL;
    }
    turn_t *u = &t->v[t->n - 1];
    char *s = NULL;
    if (asprintf(&s, "%s%s%s", u->text ? u->text : "", u->text ? "\n" : "", line) < 0)
        return ERR_NOMEM;
    free(u->text);
    u->text = s;
    return 0;
}

static void traj_free(traj_t *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->v[i].text);
    free(t->v);
}

/* The run's model calls and tool calls in tree order, one turn per model call. */
/* A sub-agent's work (spans under a nested invoke_agent) stays in the turn of the call
 * that started it, indented and named: "    billing: model offline ...". "" for the run's
 * own spans. */
static void sub_prefix(const spantree_t *m, int i, int root, char *buf, size_t len)
{
    buf[0] = 0;
    for (int p = m->spans[i].parent_idx; p >= 0 && p != root; p = m->spans[p].parent_idx)
        if (!strcmp(m->spans[p].op, "invoke_agent")) {
            const char *nm = m->spans[p].name ? m->spans[p].name : "";
            snprintf(buf, len, "    %s: ", !strncmp(nm, "invoke_agent ", 13) ? nm + 13 : nm);
            return;
        }
}

static int trajectory(spantree_t *m, const marks_t *mk, traj_t *t)
{
    if (spantree_flatten(m, 1))
        return ERR_NOMEM;
    int rc = 0, root = spantree_root(m);
    for (int r = 0; r < m->nrows && !rc; r++) {
        const spantree_span_t *s = &m->spans[m->rows[r].span];
        char line[600], pre[160], full[800];
        sub_prefix(m, m->rows[r].span, root, pre, sizeof pre);
        if (!strcmp(s->op, "chat")) {
            const char *prov = spantree_attr_str(s, "gen_ai.provider.name");
            const char *model = spantree_attr_str(s, "gen_ai.response.model");
            if (model && !strcmp(model, "default")) /* the offline model has no names */
                model = NULL;
            snprintf(line, sizeof line, "model %s%s%s  %lld+%lld tok  $%.6f%s%s%s%s%s%s",
                     prov ? prov : "", prov && model ? ":" : "", model ? model : "",
                     (long long)spantree_attr_int(s, "gen_ai.usage.input_tokens", 0),
                     (long long)spantree_attr_int(s, "gen_ai.usage.output_tokens", 0),
                     spantree_span_cost(s), s->retries ? "  " : "", s->retries ? mk->retry : "",
                     s->status == SPAN_ERROR ? "  " : "", s->status == SPAN_ERROR ? mk->bad : "",
                     s->status == SPAN_ERROR ? " " : "",
                     s->status == SPAN_ERROR && s->error ? s->error : "");
            snprintf(full, sizeof full, "%s%s", pre, line);
            rc = traj_append(t, full);
        } else if (!strcmp(s->op, "execute_tool") ||
                   (s->point && !strcmp(s->op, "guardrail") && s->status == SPAN_ERROR)) {
            const char *tool = spantree_attr_str(s, "gen_ai.tool.name");
            const char *args = spantree_attr_str(s, "gen_ai.tool.call.arguments");
            int failed = s->status == SPAN_ERROR;
            snprintf(line, sizeof line, "  %s %s%s%s%s", failed ? mk->bad : mk->ok,
                     tool ? tool : s->op, !strcmp(s->op, "guardrail") ? " (denied)" : "",
                     args ? " " : "", args ? args : "");
            if (failed && s->error && strlen(line) + 8 < sizeof line)
                snprintf(line + strlen(line), sizeof line - strlen(line), ": %s", s->error);
            snprintf(full, sizeof full, "%s%s", pre, line);
            rc = traj_append(t, full);
        }
    }
    return rc;
}

static void fmt_run_figures(const store_run_t *r, const spantree_t *m, int what, char *buf,
                            size_t len)
{
    char dur[32];
    int64_t end = r->ended_ns ? r->ended_ns : r->updated_ns;
    switch (what) {
    case 0: snprintf(buf, len, "%s", r->agent); break;
    case 1:
        snprintf(buf, len, "%s%s%s", r->answered_by[0] ? r->answered_by : r->model,
                 r->fallback[0] ? " (fallback: " : "", r->fallback[0] ? r->fallback : "");
        if (r->fallback[0] && strlen(buf) + 2 < len)
            strcat(buf, ")");
        break;
    case 2: snprintf(buf, len, "%s%s%s", r->state, r->reason[0] ? " " : "", r->reason); break;
    case 3: snprintf(buf, len, "%d", r->step); break;
    case 4: snprintf(buf, len, "%d model, %d tool", r->model_calls, r->tool_calls); break;
    case 5:
        snprintf(buf, len, "%lld in / %lld out", (long long)r->input_tokens,
                 (long long)r->output_tokens);
        break;
    case 6: snprintf(buf, len, "$%.6f", r->cost_usd); break;
    case 7:
        spantree_fmt_dur(end > r->created_ns ? end - r->created_ns : 0, dur, sizeof dur);
        snprintf(buf, len, "%s", dur);
        break;
    case 8: snprintf(buf, len, "%d", m->errors); break;
    default: snprintf(buf, len, "%d", m->retries); break;
    }
}

/* "prompts/support.md f68853c87a15" from the root span, or "". */
static void prompt_of(spantree_t *m, char *buf, size_t len)
{
    int root = spantree_root(m);
    const char *file = root >= 0 ? spantree_attr_str(&m->spans[root], "agentd.prompt_file") : NULL;
    const char *hash = root >= 0 ? spantree_attr_str(&m->spans[root], "agentd.prompt_hash") : NULL;
    if (!hash && root >= 0)
        hash = spantree_attr_str(&m->spans[root], "agentd.prompt.sha256");
    const char *base = file ? strrchr(file, '/') : NULL;
    snprintf(buf, len, "%s%s%.12s", file ? (base ? base + 1 : file) : "", file && hash ? " " : "",
             hash ? hash : "");
}

int viewer_compare_build(vlines_t *out, const store_run_t *a, spantree_t *ma, const store_run_t *b,
                         spantree_t *mb, int ascii)
{
    const marks_t *mk = ascii ? &ascii_marks : &utf8_marks;
    char rule[160];
    snprintf(rule, sizeof rule, "%s trajectory (model calls and the tools they asked for) %s",
             mk->rule, mk->rule);
    static const char *const labels[] = {"agent",  "model", "state", "steps",  "calls",
                                         "tokens", "cost",  "time",  "errors", "retries"};
    vlines_clear(out);
    int width = out->width > 40 ? out->width : 80;
    int colw = (width - LABEL_W - 6) / 2;
    char l[600], r[600];
    int rc = row(out, mk, colw, "", a->id, b->id, 0, VL_HEAD);
    for (size_t k = 0; !rc && k < sizeof labels / sizeof labels[0]; k++) {
        fmt_run_figures(a, ma, (int)k, l, sizeof l);
        fmt_run_figures(b, mb, (int)k, r, sizeof r);
        rc = row_str(out, mk, colw, labels[k], l, r);
    }
    /* Two prompts: the system prompt's file and hash, as every trace records them. */
    if (!rc) {
        prompt_of(ma, l, sizeof l);
        prompt_of(mb, r, sizeof r);
        rc = row_str(out, mk, colw, "prompt", l, r);
    }
    if (!rc)
        rc = row_str(out, mk, colw, "input", a->input, b->input);
    if (!rc)
        rc = row_str(out, mk, colw, "answer", a->answer, b->answer);
    if (!rc && (a->error || b->error))
        rc = row_str(out, mk, colw, "error", a->error, b->error);
    traj_t ta = {0}, tb = {0};
    if (!rc)
        rc = trajectory(ma, mk, &ta);
    if (!rc)
        rc = trajectory(mb, mk, &tb);
    if (!rc)
        rc = vlines_add(out, VL_HEAD, "", rule);
    for (int i = 0; !rc && (i < ta.n || i < tb.n); i++) {
        char label[32];
        snprintf(label, sizeof label, "turn %d", i + 1);
        const char *x = i < ta.n ? ta.v[i].text : "", *y = i < tb.n ? tb.v[i].text : "";
        rc = row(out, mk, colw, label, x, y, strcmp(x, y) != 0, VL_TEXT);
    }
    traj_free(&ta);
    traj_free(&tb);
    return rc;
}
