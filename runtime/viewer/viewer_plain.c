/*
 * viewer_plain: the text forms of `agentd trace` (tree, follow lines) and the loading code
 * the interactive viewer shares. Output is plain text with UTF-8 tree lines when the locale
 * is UTF-8 and ASCII otherwise, so it pastes cleanly into an issue or a chat.
 */
#include "viewer_int.h"
#include "jx.h"

#include "cli/cli.h"
#include "err.h"
#include "trace_db.h"

#include <langinfo.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct load_ctx {
    spantree_t *m;
    char *errbuf;
    size_t errlen;
    int rc;
} load_ctx_t;

static int load_one(void *ud, int64_t seq, const char *json)
{
    load_ctx_t *c = ud;
    char msg[200];
    c->rc = spantree_add(c->m, json, msg, sizeof msg);
    if (c->rc)
        err_set(c->errbuf, c->errlen, c->rc, "run %s, event %lld: %s", c->m->run_id, (long long)seq,
                msg);
    return c->rc != 0;
}

typedef struct load_subs {
    store_t *st;
    load_ctx_t *c;
    int depth;
    int rc;
} load_subs_t;

static int load_run_events(store_t *st, load_ctx_t *c, const char *run_id, int depth);

static int load_sub(void *ud, const char *run_id, const char *agent_path)
{
    (void)agent_path;
    load_subs_t *ls = ud;
    ls->rc = load_run_events(ls->st, ls->c, run_id, ls->depth);
    return ls->rc != 0;
}

/* A run's events, then those of the sub-agents' runs it started (nested under its calls),
 * each from where the model last read it. */
static int load_run_events(store_t *st, load_ctx_t *c, const char *run_id, int depth)
{
    int rc = trace_db_events_each(st, run_id, spantree_last_seq_of(c->m, run_id), load_one, c);
    if (rc)
        return err_set(c->errbuf, c->errlen, rc, "reading events of run %s: %s", run_id,
                       store_errmsg(st));
    if (c->rc || depth >= 8)
        return c->rc;
    load_subs_t ls = {st, c, depth + 1, 0};
    rc = store_subruns_each(st, run_id, load_sub, &ls);
    if (rc)
        return err_set(c->errbuf, c->errlen, rc, "reading the sub-runs of run %s: %s", run_id,
                       store_errmsg(st));
    return ls.rc;
}

int viewer_load(store_t *st, spantree_t *m, char *errbuf, size_t errlen)
{
    load_ctx_t c = {m, errbuf, errlen, 0};
    char run_id[40];
    snprintf(run_id, sizeof run_id, "%s", m->run_id);
    return load_run_events(st, &c, run_id, 0);
}

int viewer_state_final(const char *state)
{
    return !strcmp(state, "done") || !strcmp(state, "failed") || !strcmp(state, "cancelled");
}

int viewer_utf8_locale(void)
{
    const char *cs = nl_langinfo(CODESET);
    return cs && (!strcasecmp(cs, "UTF-8") || !strcasecmp(cs, "utf8"));
}

/* Append to buf at *n, never overflowing. */
static void add(char *buf, size_t len, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(char *buf, size_t len, size_t *n, const char *fmt, ...)
{
    if (*n >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *n, len - *n, fmt, ap);
    va_end(ap);
    if (w > 0)
        *n += (size_t)w < len - *n ? (size_t)w : len - *n - 1;
}

/* One line, at most max bytes of s, newlines shown as spaces. */
static void add_clip(char *buf, size_t len, size_t *n, const char *s, size_t max)
{
    size_t k = 0;
    /* Past max only to finish a UTF-8 character, never to split one. */
    for (; s[k] && (k < max || ((unsigned char)s[k] & 0xC0) == 0x80) && *n + 1 < len; k++)
        buf[(*n)++] = s[k] == '\n' || s[k] == '\t' ? ' ' : s[k];
    if (k >= max && s[k] && *n + 4 < len) {
        memcpy(buf + *n, "...", 3);
        *n += 3;
    }
    buf[*n < len ? *n : len - 1] = 0;
}

void viewer_span_facts(const spantree_span_t *s, int with_error, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = 0;
    if (!strcmp(s->op, "chat")) {
        const char *prov = spantree_attr_str(s, "gen_ai.provider.name");
        const char *model = spantree_attr_str(s, "gen_ai.response.model");
        if (!model)
            model = spantree_attr_str(s, "gen_ai.request.model");
        if (prov)
            add(buf, len, &n, "%s ", prov);
        if (model)
            add(buf, len, &n, "%s ", model);
        int64_t in = spantree_attr_int(s, "gen_ai.usage.input_tokens", -1);
        if (in >= 0)
            add(buf, len, &n, "in=%lld out=%lld ", (long long)in,
                (long long)spantree_attr_int(s, "gen_ai.usage.output_tokens", 0));
        double cost = spantree_attr_double(s, "gen_ai.usage.cost", 0);
        if (cost > 0)
            add(buf, len, &n, "$%.6f ", cost);
        if (s->retries)
            add(buf, len, &n, "retries=%d ", s->retries);
    } else if (!strcmp(s->op, "execute_tool")) {
        const char *st = spantree_attr_str(s, "agentd.tool.state");
        const char *id = spantree_attr_str(s, "gen_ai.tool.call.id");
        if (id)
            add(buf, len, &n, "call=%s ", id);
        if (st && strcmp(st, "ok"))
            add(buf, len, &n, "state=%s ", st);
        int64_t att = spantree_attr_int(s, "agentd.attempts", 0);
        if (att > 1)
            add(buf, len, &n, "attempts=%lld ", (long long)att);
        const char *args = spantree_attr_str(s, "gen_ai.tool.call.arguments");
        if (args) {
            add(buf, len, &n, "args=");
            add_clip(buf, len, &n, args, 60);
            add(buf, len, &n, " ");
        }
    } else if (!strcmp(s->op, "retry")) {
        int64_t d =
            spantree_attr_int(s, "agentd.delay_ms", spantree_attr_int(s, "agentd.retry.delay_ms", -1));
        if (d >= 0)
            add(buf, len, &n, "delay=%lldms ", (long long)d);
    } else if (s->step && strcmp(s->op, "invoke_agent")) {
        add(buf, len, &n, "step %d ", s->step);
    }
    if (s->error && with_error) {
        add(buf, len, &n, "error: ");
        add_clip(buf, len, &n, s->error, 160);
    }
    while (n > 0 && buf[n - 1] == ' ')
        buf[--n] = 0;
}

static const char *status_word(const spantree_span_t *s)
{
    if (s->status == SPAN_ERROR)
        return "ERROR";
    if (!s->end_ns)
        return "open";
    return s->status == SPAN_OK ? "ok" : "-";
}

/* Tree prefix for a row: "│  " for ancestors with later siblings, then "├─ " or "└─ ". */
/* Tree prefix for a row: "│  " for ancestors with later siblings, then "├─ " or "└─ ".
 * cont: the prefix for lines under the row instead (its own notes). */
static void tree_prefix(const spantree_row_t *row, int utf8, int cont, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = 0;
    for (int d = 1; d < row->depth; d++) {
        int more = d <= 32 && (row->more >> (d - 1)) & 1u;
        add(buf, len, &n, "%s", more ? (utf8 ? "│  " : "|  ") : "   ");
    }
    if (row->depth > 0 && cont)
        add(buf, len, &n, "%s", row->last ? "   " : (utf8 ? "│  " : "|  "));
    else if (row->depth > 0)
        add(buf, len, &n, "%s", row->last ? (utf8 ? "└─ " : "`- ") : (utf8 ? "├─ " : "|- "));
}

/* Display width of a UTF-8 string (box characters are one column). */
static int width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void print_retries(const spantree_t *m, const spantree_span_t *s, const char *indent, FILE *out)
{
    for (int k = 0; k < s->nevs; k++) {
        const spantree_event_t *ev = &m->evs[s->evs[k]];
        if (ev->phase != 'p' || s->point)
            continue;
        json_object *o = jx_parse(ev->json), *v;
        const char *op =
            o && json_object_object_get_ex(o, "op", &v) ? json_object_get_string(v) : "";
        const char *name =
            o && json_object_object_get_ex(o, "name", &v) ? json_object_get_string(v) : op;
        const char *error =
            o && json_object_object_get_ex(o, "error", &v) && v ? json_object_get_string(v) : NULL;
        int64_t delay = -1;
        json_object *a = NULL;
        if (o && json_object_object_get_ex(o, "attrs", &a) &&
            json_object_object_get_ex(a, "agentd.delay_ms", &v))
            delay = json_object_get_int64(v);
        char off[32];
        fprintf(out, "%s   · +%s %s", indent,
                spantree_fmt_dur(ev->ts_ns - m->min_ns, off, sizeof off), name ? name : "event");
        if (error)
            fprintf(out, ": %s", error);
        if (o && json_object_object_get_ex(o, "attrs", &a) &&
            json_object_object_get_ex(a, "log.message", &v))
            fprintf(out, ": %s", json_object_get_string(v));
        if (delay >= 0)
            fprintf(out, " (next try after %lld ms)", (long long)delay);
        fputc('\n', out);
        json_object_put(o);
    }
}

void viewer_plain_tree(spantree_t *m, const store_run_t *run, FILE *out)
{
    int utf8 = viewer_utf8_locale();
    char dur[32], pre[200], facts[400];
    int root = spantree_root(m);
    int64_t total = root >= 0 ? spantree_span_end(m, &m->spans[root], 0) - m->spans[root].start_ns
                              : m->max_ns - m->min_ns;
    fprintf(out,
            "run %s  agent %s  state %s  steps %d  duration %s  tokens %lld in / %lld out"
            "  cost $%.6f  errors %d  retries %d\n",
            m->run_id, run && run->agent[0] ? run->agent : (m->agent[0] ? m->agent : "?"),
            run ? run->state : (m->last_state[0] ? m->last_state : "?"), run ? run->step : 0,
            spantree_fmt_dur(total, dur, sizeof dur), (long long)m->in_tokens,
            (long long)m->out_tokens, run ? run->cost_usd : m->cost, m->errors, m->retries);
    if (run && run->error && *run->error)
        fprintf(out, "error: %s\n", run->error);
    if (spantree_flatten(m, 1)) {
        fprintf(out, "(out of memory)\n");
        return;
    }
    fprintf(out, "%-52s %9s %9s  %-6s %s\n", "span", "start", "duration", "status", "details");
    for (int r = 0; r < m->nrows; r++) {
        const spantree_row_t *row = &m->rows[r];
        const spantree_span_t *s = &m->spans[row->span];
        tree_prefix(row, utf8, 0, pre, sizeof pre);
        char label[300], off[32], offs[40];
        snprintf(label, sizeof label, "%s%s", pre, s->name ? s->name : s->op);
        int pad = 52 - width(label);
        spantree_fmt_dur(spantree_span_end(m, s, 0) - s->start_ns, dur, sizeof dur);
        spantree_fmt_dur(s->start_ns - m->min_ns, off, sizeof off);
        snprintf(offs, sizeof offs, "+%s", off);
        viewer_span_facts(s, 1, facts, sizeof facts);
        fprintf(out, "%s%*s %9s %9s  %-6s %s\n", label, pad > 0 ? pad : 0, "", offs,
                s->point ? "" : dur, status_word(s), facts);
        /* The span's own point events (retries, logs) go on lines under it. */
        tree_prefix(row, utf8, 1, pre, sizeof pre);
        print_retries(m, s, pre, out);
    }
    if (run && run->answer && *run->answer)
        fprintf(out, "answer: %s\n", run->answer);
}

void viewer_plain_event(const spantree_t *m, const spantree_event_t *ev, FILE *out)
{
    const spantree_span_t *s = &m->spans[ev->span];
    char off[32], facts[400] = "";
    json_object *o = jx_parse(ev->json), *v;
    const char *name =
        o && json_object_object_get_ex(o, "name", &v) && v ? json_object_get_string(v) : s->op;
    const char *to =
        o && json_object_object_get_ex(o, "state_to", &v) && v ? json_object_get_string(v) : NULL;
    const char *error =
        o && json_object_object_get_ex(o, "error", &v) && v ? json_object_get_string(v) : NULL;
    if (ev->phase == 'e' || s->point)
        viewer_span_facts(s, 1, facts, sizeof facts);
    else if (error)
        snprintf(facts, sizeof facts, "error: %s", error);
    const char *phase = ev->phase == 'b' ? "begin" : ev->phase == 'e' ? "end" : "point";
    fprintf(out, "+%-8s #%-5lld %-5s %-32s%s%s%s %s\n",
            spantree_fmt_dur(ev->ts_ns - m->min_ns, off, sizeof off), (long long)ev->seq, phase,
            name ? name : "?", to ? " -> " : "", to ? to : "",
            ev->phase == 'e' ? (s->status == SPAN_ERROR ? "  ERROR" : "  ok") : "", facts);
    json_object_put(o);
}

typedef struct tail_ctx {
    spantree_t *m;
    int json;
    FILE *out;
    int rc;
} tail_ctx_t;

static int tail_one(void *ud, int64_t seq, const char *json)
{
    tail_ctx_t *c = ud;
    char msg[200];
    if (c->json) {
        fprintf(c->out, "%s\n", json);
    }
    int rc = spantree_add(c->m, json, msg, sizeof msg);
    if (rc) {
        fprintf(stderr, "agentd: run %s, event %lld: %s\n", c->m->run_id, (long long)seq, msg);
        c->rc = rc;
        return 1;
    }
    if (!c->json)
        viewer_plain_event(c->m, &c->m->evs[c->m->nevs - 1], c->out);
    return 0;
}

int viewer_follow_plain(store_t *st, const char *run_id, int json, FILE *out)
{
    spantree_t *m = spantree_new(run_id);
    if (!m)
        return CLI_INTERNAL;
    tail_ctx_t c = {m, json, out, 0};
    int code = CLI_OK;
    for (;;) {
        int rc = trace_db_events_each(st, run_id, m->last_seq, tail_one, &c);
        fflush(out);
        if (rc || c.rc) {
            if (rc)
                fprintf(stderr, "agentd: reading events of run %s: %s\n", run_id, store_errmsg(st));
            code = CLI_INTERNAL;
            break;
        }
        /* Stop once the run is final and everything it committed has been shown. */
        store_run_t run;
        if ((rc = store_run_get(st, run_id, &run)) != 0) {
            fprintf(stderr, "agentd: run %s: %s\n", run_id,
                    rc == ERR_NOTFOUND ? "no longer in the database" : store_errmsg(st));
            code = CLI_INTERNAL;
            break;
        }
        int final = viewer_state_final(run.state) && m->last_seq >= run.last_seq;
        int failed = strcmp(run.state, "done") != 0;
        store_run_clear(&run);
        if (final) {
            code = failed ? CLI_FAILED : CLI_OK;
            break;
        }
        poll(NULL, 0, VIEWER_POLL_MS);
    }
    spantree_free(m);
    return code;
}
