/*
 * viewer_detail: the detail pane's text. Everything a user needs to understand one span is
 * gathered here: its error first (that is what they came for), then the tool call or the
 * model exchange from the store, retries with their delays, attributes, and the raw events.
 */
#include "viewer_tui.h"
#include "jx.h"

#include "err.h"
#include "viewer_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

void vlines_clear(vlines_t *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i].text);
    l->n = 0;
}

static int push(vlines_t *l, int kind, const char *s, size_t n)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        vline_t *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return ERR_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    char *t = malloc(n + 1);
    if (!t)
        return ERR_NOMEM;
    memcpy(t, s, n);
    t[n] = 0;
    l->v[l->n].text = t;
    l->v[l->n].kind = kind;
    l->n++;
    return 0;
}

/* Bytes and columns of the UTF-8 character at s. */
static size_t char_at(const char *s, int *cols)
{
    mbstate_t ps;
    wchar_t wc;
    memset(&ps, 0, sizeof ps);
    size_t n = mbrtowc(&wc, s, MB_CUR_MAX, &ps);
    if (n == 0 || n == (size_t)-1 || n == (size_t)-2) {
        *cols = 1;
        return 1;
    }
    int w = wcwidth(wc);
    *cols = w < 0 ? 1 : w;
    return n;
}

int vtui_width(const char *s)
{
    int w = 0, c;
    while (*s) {
        s += char_at(s, &c);
        w += c;
    }
    return w;
}

size_t vtui_clip(const char *s, int maxcols, int *cols)
{
    size_t n = 0;
    int w = 0, c;
    while (s[n]) {
        size_t k = char_at(s + n, &c);
        if (w + c > maxcols)
            break;
        w += c;
        n += k;
    }
    *cols = w;
    return n;
}

int vlines_add(vlines_t *l, int kind, const char *indent, const char *text)
{
    int width = l->width > 4 ? l->width : 80;
    int iw = vtui_width(indent);
    char *buf = malloc(strlen(indent) + (size_t)width * 4 + 8);
    if (!buf)
        return ERR_NOMEM;
    const char *p = text;
    int rc = 0;
    do {
        size_t n = strlen(indent);
        memcpy(buf, indent, n);
        int cols = iw;
        /* Fill to the width; tabs become spaces, control characters a '?'. A line that
         * must wrap breaks after its last space when that keeps most of the line. */
        const char *brk_p = NULL;
        size_t brk_n = 0;
        while (*p && *p != '\n') {
            int c;
            size_t k = char_at(p, &c);
            if (cols + c > width && cols > iw) {
                if (brk_p && brk_n * 2 > n) {
                    p = brk_p;
                    n = brk_n;
                }
                break;
            }
            if (*p == ' ' || *p == '\t') {
                brk_p = p + 1;
                brk_n = n + 1;
            }
            if (*p == '\t' || (unsigned char)*p < 0x20) {
                buf[n++] = *p == '\t' ? ' ' : '?';
            } else {
                memcpy(buf + n, p, k);
                n += k;
            }
            cols += c;
            p += k;
        }
        rc = push(l, kind, buf, n);
        if (*p == '\n')
            p++;
    } while (!rc && *p);
    free(buf);
    return rc;
}

int vlines_addf(vlines_t *l, int kind, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return vlines_add(l, kind, "", buf);
}

/* JSON text pretty-printed when it parses, else as is. */
static int add_json_text(vlines_t *l, const char *indent, const char *text)
{
    json_object *o = jx_parse(text);
    int rc;
    if (o && (json_object_is_type(o, json_type_object) || json_object_is_type(o, json_type_array)))
        rc = vlines_add(l, VL_TEXT, indent,
                        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                              JSON_C_TO_STRING_SPACED |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
    else
        rc = vlines_add(l, VL_TEXT, indent, text);
    json_object_put(o);
    return rc;
}

typedef struct tc_ctx {
    vlines_t *l;
    const char *call_id;
    int found;
} tc_ctx_t;

static int tc_one(void *ud, const store_toolcall_t *tc)
{
    tc_ctx_t *c = ud;
    if (strcmp(tc->call_id, c->call_id) != 0)
        return 0;
    c->found = 1;
    char dur[32];
    vlines_add(c->l, VL_HEAD, "", "── tool call (from the store) ──");
    vlines_addf(c->l, strcmp(tc->state, "ok") ? VL_ERROR : VL_OK,
                "state %s   attempts %d   took %s", tc->state, tc->attempts,
                spantree_fmt_dur(tc->ended_ns > tc->started_ns ? tc->ended_ns - tc->started_ns : 0,
                               dur, sizeof dur));
    if (tc->idem_key[0])
        vlines_addf(c->l, VL_DIM, "idempotency key %s", tc->idem_key);
    vlines_add(c->l, VL_KEY, "", "arguments:");
    add_json_text(c->l, "  ", tc->args ? tc->args : "null");
    if (tc->result) {
        vlines_add(c->l, VL_KEY, "", "result:");
        add_json_text(c->l, "  ", tc->result);
    }
    if (tc->error) {
        vlines_add(c->l, VL_KEY, "", "error:");
        vlines_add(c->l, VL_ERROR, "  ", tc->error);
    }
    return 1;
}

typedef struct msg_ctx {
    vlines_t *l;
    int64_t from, to; /* message indices to show, inclusive */
} msg_ctx_t;

/* One conversation message (model.h neutral form): role, then content or tool calls. */
static int msg_one(void *ud, int64_t idx, const char *json)
{
    msg_ctx_t *c = ud;
    if (idx < c->from || idx > c->to)
        return idx > c->to;
    json_object *o = jx_parse(json), *v;
    const char *role =
        o && json_object_object_get_ex(o, "role", &v) ? json_object_get_string(v) : "?";
    json_object *nm = NULL;
    if (o)
        json_object_object_get_ex(o, "name", &nm);
    vlines_addf(c->l, VL_KEY, "[%lld] %s%s%s", (long long)idx, role, nm ? " " : "",
                nm ? json_object_get_string(nm) : "");
    if (o && json_object_object_get_ex(o, "content", &v) &&
        json_object_is_type(v, json_type_string))
        add_json_text(c->l, "    ", json_object_get_string(v));
    else if (o && json_object_object_get_ex(o, "content", &v) && v)
        add_json_text(c->l, "    ", json_object_to_json_string(v));
    if (o && json_object_object_get_ex(o, "tool_calls", &v) && v)
        add_json_text(c->l, "    ", json_object_to_json_string(v));
    if (!o)
        vlines_add(c->l, VL_TEXT, "    ", json);
    json_object_put(o);
    return 0;
}

static void add_point_events(vlines_t *l, const spantree_t *m, int i)
{
    const spantree_span_t *s = &m->spans[i];
    int header = 0;
    /* Instant child spans first (a tool's retries), then point events on the span. */
    for (int c = 0; c < m->nspans; c++) {
        const spantree_span_t *k = &m->spans[c];
        if (!k->point || k->parent_idx != i)
            continue;
        if (!header++)
            vlines_add(l, VL_HEAD, "", "── retries and notes ──");
        char off[32], facts[400];
        viewer_span_facts(k, 1, facts, sizeof facts);
        vlines_addf(l, k->status == SPAN_ERROR ? VL_ERROR : VL_TEXT, "  +%s %s  %s",
                    spantree_fmt_dur(k->start_ns - m->min_ns, off, sizeof off),
                    k->name ? k->name : k->op, facts);
    }
    for (int k = 0; k < s->nevs; k++) {
        const spantree_event_t *ev = &m->evs[s->evs[k]];
        if (ev->phase != 'p' || s->point)
            continue;
        if (!header++)
            vlines_add(l, VL_HEAD, "", "── retries and notes ──");
        json_object *o = jx_parse(ev->json), *v, *a;
        const char *name = o && json_object_object_get_ex(o, "name", &v) && v
                               ? json_object_get_string(v)
                               : "event";
        const char *error =
            o && json_object_object_get_ex(o, "error", &v) && v ? json_object_get_string(v) : NULL;
        char off[32], line[1024];
        int n = snprintf(line, sizeof line, "+%s %s",
                         spantree_fmt_dur(ev->ts_ns - m->min_ns, off, sizeof off), name);
        if (error && n < (int)sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, ": %s", error);
        if (o && json_object_object_get_ex(o, "attrs", &a) &&
            json_object_object_get_ex(a, "log.message", &v) && n < (int)sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, ": %s", json_object_get_string(v));
        if (o && json_object_object_get_ex(o, "attrs", &a) &&
            (json_object_object_get_ex(a, "agentd.delay_ms", &v) ||
             json_object_object_get_ex(a, "agentd.retry.delay_ms", &v)) &&
            n < (int)sizeof line)
            snprintf(line + n, sizeof line - (size_t)n, "  → next try after %lld ms",
                     (long long)json_object_get_int64(v));
        vlines_add(l, ev->is_error ? VL_ERROR : VL_TEXT, "  ", line);
        json_object_put(o);
    }
}

static void add_attrs(vlines_t *l, const spantree_span_t *s)
{
    if (!s->attrs || json_object_object_length(s->attrs) == 0)
        return;
    vlines_add(l, VL_HEAD, "", "── attributes ──");
    json_object_object_foreach(s->attrs, k, v)
    {
        const char *text = json_object_is_type(v, json_type_string)
                               ? json_object_get_string(v)
                               : json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        /* Tool arguments and results arrive as JSON text: show them structured. */
        if (json_object_is_type(v, json_type_string) && (text[0] == '{' || text[0] == '[')) {
            vlines_addf(l, VL_KEY, "  %s:", k);
            add_json_text(l, "      ", text);
        } else {
            vlines_addf(l, VL_TEXT, "  %s: %s", k, text ? text : "null");
        }
    }
}

static void add_run_parts(vlines_t *l, store_t *st, const spantree_t *m)
{
    store_run_t run;
    if (!st || store_run_get(st, m->run_id, &run) != 0)
        return;
    vlines_add(l, VL_HEAD, "", "── run ──");
    vlines_addf(l, VL_TEXT, "state %s   steps %d   model calls %d   tool calls %d", run.state,
                run.step, run.model_calls, run.tool_calls);
    vlines_addf(l, VL_TEXT, "tokens %lld in / %lld out   cost $%.6f   model %s",
                (long long)run.input_tokens, (long long)run.output_tokens, run.cost_usd, run.model);
    if (run.reason[0])
        vlines_addf(l, VL_ERROR, "reason %s", run.reason);
    if (run.error)
        vlines_add(l, VL_ERROR, "error: ", run.error);
    if (run.input) {
        vlines_add(l, VL_KEY, "", "input:");
        vlines_add(l, VL_TEXT, "  ", run.input);
    }
    if (run.answer) {
        vlines_add(l, VL_KEY, "", "answer:");
        vlines_add(l, VL_TEXT, "  ", run.answer);
    }
    store_run_clear(&run);
    vlines_add(l, VL_HEAD, "", "── conversation ──");
    msg_ctx_t c = {l, 0, INT64_MAX};
    store_messages_each(st, m->run_id, msg_one, &c);
}

int viewer_detail_build(vlines_t *out, store_t *st, const spantree_t *m, int i, int json_only)
{
    const spantree_span_t *s = &m->spans[i];
    vlines_clear(out);
    if (json_only) {
        json_object *j = spantree_span_json(m, i);
        if (!j)
            return ERR_NOMEM;
        int rc = vlines_add(out, VL_TEXT, "",
                            json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
                                                                  JSON_C_TO_STRING_SPACED |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
        return rc;
    }
    char dur[32], off[32], facts[400];
    static const char *const st_word[] = {"unset", "ok", "ERROR"};
    vlines_addf(out, VL_HEAD, "%s", s->name ? s->name : s->op);
    vlines_addf(out, s->status == SPAN_ERROR ? VL_ERROR : VL_TEXT,
                "status %s%s   start +%s   duration %s", st_word[s->status],
                s->end_ns ? "" : " (open)",
                spantree_fmt_dur(s->start_ns - m->min_ns, off, sizeof off),
                spantree_fmt_dur(spantree_span_end(m, s, 0) - s->start_ns, dur, sizeof dur));
    vlines_addf(out, VL_DIM, "span %s   parent %s   op %s   step %d", s->id,
                s->parent[0] ? s->parent : "-", s->op, s->step);
    /* A state span opens with the transition into that state: say which. */
    for (int k = 0; k < s->nevs; k++) {
        const spantree_event_t *ev = &m->evs[s->evs[k]];
        json_object *o = ev->phase == 'b' ? jx_parse(ev->json) : NULL, *f, *t, *e;
        if (o && json_object_object_get_ex(o, "state_to", &t) && t &&
            json_object_object_get_ex(o, "state_from", &f) && f)
            vlines_addf(out, VL_TEXT, "transition %s → %s on %s", json_object_get_string(f),
                        json_object_get_string(t),
                        json_object_object_get_ex(o, "event", &e) && e ? json_object_get_string(e)
                                                                       : "?");
        json_object_put(o);
        if (o)
            break;
    }
    viewer_span_facts(s, 0, facts, sizeof facts);
    if (facts[0])
        vlines_add(out, VL_TEXT, "", facts);
    /* What the spans below cost, where this span is not a model call itself. */
    if (s->sub_tokens > spantree_span_tokens(s))
        vlines_addf(out, VL_TEXT, "model calls below: %lld tokens, $%.6f",
                    (long long)(s->sub_tokens - spantree_span_tokens(s)),
                    s->sub_cost - spantree_span_cost(s));
    if (s->error) {
        vlines_add(out, VL_ERROR, "", "error:");
        vlines_add(out, VL_ERROR, "  ", s->error);
    }
    const char *call_id = spantree_attr_str(s, "gen_ai.tool.call.id");
    if (!strcmp(s->op, "execute_tool") && call_id && st) {
        tc_ctx_t c = {out, call_id, 0};
        store_toolcalls_each(st, m->run_id, tc_one, &c);
    }
    if (!strcmp(s->op, "chat") && st) {
        /* The request held the first n messages; the reply is message n. */
        int64_t n = spantree_attr_int(s, "agentd.messages", -1);
        if (n > 0) {
            vlines_addf(out, VL_HEAD, "── messages (request had %lld; last one and the reply) ──",
                        (long long)n);
            msg_ctx_t c = {out, n - 1, s->end_ns ? n : n - 1};
            store_messages_each(st, m->run_id, msg_one, &c);
        }
    }
    if (s->parent_idx < 0 || !strcmp(s->op, "invoke_agent"))
        add_run_parts(out, st, m);
    add_point_events(out, m, i);
    add_attrs(out, s);
    vlines_addf(out, VL_HEAD, "── events (%d) ──", s->nevs);
    for (int k = 0; k < s->nevs; k++) {
        const spantree_event_t *ev = &m->evs[s->evs[k]];
        vlines_addf(out, VL_DIM, "#%lld %s +%s", (long long)ev->seq,
                    ev->phase == 'b'   ? "begin"
                    : ev->phase == 'e' ? "end"
                                       : "point",
                    spantree_fmt_dur(ev->ts_ns - m->min_ns, off, sizeof off));
        add_json_text(out, "  ", ev->json);
    }
    return 0;
}
