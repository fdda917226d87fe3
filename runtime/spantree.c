/*
 * spantree: see spantree.h. Spans live in one growable array and are found by id through
 * an open-addressing hash table, so adding an event is O(1) and a 10,000-event run builds
 * in a few milliseconds plus the JSON parsing.
 */
#include "jx.h"
#include "spantree.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

spantree_t *spantree_new(const char *run_id)
{
    spantree_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (run_id)
        snprintf(m->run_id, sizeof m->run_id, "%s", run_id);
    m->mapcap = 64;
    m->map = calloc(m->mapcap, sizeof *m->map);
    if (!m->map) {
        free(m);
        return NULL;
    }
    return m;
}

void spantree_free(spantree_t *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->nspans; i++) {
        free(m->spans[i].name);
        free(m->spans[i].error);
        free(m->spans[i].evs);
        json_object_put(m->spans[i].attrs);
    }
    for (int i = 0; i < m->nevs; i++)
        free(m->evs[i].json);
    free(m->spans);
    free(m->evs);
    free(m->rows);
    free(m->map);
    free(m->subs);
    free(m);
}

int spantree_find(const spantree_t *m, const char *id)
{
    if (!id || !*id)
        return -1;
    size_t mask = m->mapcap - 1;
    for (size_t i = hash_str(id) & mask;; i = (i + 1) & mask) {
        int v = m->map[i];
        if (v == 0)
            return -1;
        if (strcmp(m->spans[v - 1].id, id) == 0)
            return v - 1;
    }
}

static int map_insert(int *map, size_t cap, const char *id, int idx)
{
    size_t mask = cap - 1;
    size_t i = hash_str(id) & mask;
    while (map[i])
        i = (i + 1) & mask;
    map[i] = idx + 1;
    return 0;
}

static int map_grow(spantree_t *m)
{
    size_t cap = m->mapcap * 2;
    int *map = calloc(cap, sizeof *map);
    if (!map)
        return ERR_NOMEM;
    for (int i = 0; i < m->nspans; i++)
        map_insert(map, cap, m->spans[i].id, i);
    free(m->map);
    m->map = map;
    m->mapcap = cap;
    return 0;
}

static int grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, (size_t)n * elem);
    if (!p)
        return ERR_NOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

static int span_add(spantree_t *m, const char *id, const char *parent, int64_t ts)
{
    if ((size_t)(m->nspans + 1) * 2 > m->mapcap && map_grow(m))
        return -1;
    if (grow((void **)&m->spans, &m->capspans, m->nspans + 1, sizeof *m->spans))
        return -1;
    spantree_span_t *s = &m->spans[m->nspans];
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->parent, sizeof s->parent, "%s", parent ? parent : "");
    s->start_ns = ts;
    s->parent_idx = -1;
    map_insert(m->map, m->mapcap, s->id, m->nspans);
    return m->nspans++;
}

static int set_str(char **dst, const char *v)
{
    if (!v)
        return 0;
    char *d = strdup(v);
    if (!d)
        return ERR_NOMEM;
    free(*dst);
    *dst = d;
    return 0;
}

/* Merge event attrs into the span's attrs; later events win per key. */
static int merge_attrs(spantree_span_t *s, json_object *attrs)
{
    if (!attrs || !json_object_is_type(attrs, json_type_object))
        return 0;
    if (!s->attrs) {
        s->attrs = json_object_new_object();
        if (!s->attrs)
            return ERR_NOMEM;
    }
    json_object_object_foreach(attrs, k, v)
    {
        if (json_object_object_add(s->attrs, k, json_object_get(v)))
            return ERR_NOMEM;
    }
    return 0;
}

/* A retry is an attempt that failed and was tried again (a model call's or a tool's retry,
 * a plan_execute re-plan after a failed step): counted apart from errors, so a call that
 * succeeded on its second attempt is not an error of the run, and a failed step is one
 * error (its plan_step span), not two. */
static int op_is_retry(const char *op)
{
    return op && (!strcmp(op, "retry") || !strcmp(op, "replan"));
}

int spantree_is_retry(const spantree_span_t *s)
{
    return op_is_retry(s->op);
}

static int is_retry(const spantree_span_t *s)
{
    return spantree_is_retry(s);
}

static void set_status(spantree_t *m, spantree_span_t *s, const char *status, const char *error)
{
    if (status && strcmp(status, "error") == 0) {
        if (s->status != SPAN_ERROR && !is_retry(s))
            m->errors++;
        s->status = SPAN_ERROR;
    } else if (status && strcmp(status, "ok") == 0 && s->status == SPAN_UNSET) {
        s->status = SPAN_OK;
    }
    if (error && !s->error)
        s->error = strdup(error);
}

/* Run totals come from spans as they close: a chat span's usage counts once, at its end. */
static void account(spantree_t *m, const spantree_span_t *s, json_object *attrs)
{
    if (!attrs)
        return;
    const char *agent = jx_str(attrs, "gen_ai.agent.name");
    if (agent && !m->agent[0] && !m->sub_event)
        snprintf(m->agent, sizeof m->agent, "%s", agent);
    /* The root may repeat run totals in its attrs; only leaf work is summed. */
    if (strcmp(s->op, "invoke_agent") == 0)
        return;
    m->in_tokens += jx_int(attrs, "gen_ai.usage.input_tokens", 0);
    m->out_tokens += jx_int(attrs, "gen_ai.usage.output_tokens", 0);
    json_object *c;
    if (json_object_object_get_ex(attrs, "gen_ai.usage.cost", &c))
        m->cost += json_object_get_double(c);
}

static int span_add_event(spantree_span_t *s, int ev)
{
    if (grow((void **)&s->evs, &s->capevs, s->nevs + 1, sizeof *s->evs))
        return ERR_NOMEM;
    s->evs[s->nevs++] = ev;
    return 0;
}

/* A chat span began under the chain's first model; when a fallback answered, its label says
 * so: "chat offline (fallback from openai:llama3)". */
static int fallback_label(spantree_span_t *s, json_object *attrs)
{
    const char *from = jx_str(attrs, "agentd.fallback.from");
    if (!from)
        return 0;
    const char *prov = jx_str(attrs, "gen_ai.provider.name");
    const char *model = jx_str(attrs, "gen_ai.response.model");
    int named = model && strcmp(model, "default") != 0;
    char *label = NULL;
    if (asprintf(&label, "chat %s%s%s (fallback from %s)", prov ? prov : "?", named ? ":" : "",
                 named ? model : "", from) < 0)
        return ERR_NOMEM;
    free(s->name);
    s->name = label;
    return 0;
}

/* Where a failed decision posted on an existing span goes in the tree: a denied approval
 * is posted on the run's root when the operator answers; it belongs beside the
 * "guardrail approval_required" span of the same call (in the state span that asked), so
 * it reads in place and `e` finds it. Into out (the parent's id). */
static void error_point_parent(const spantree_t *m, int si, json_object *attrs, char *out,
                               size_t len)
{
    snprintf(out, len, "%s", m->spans[si].id);
    const char *call = attrs ? jx_str(attrs, "gen_ai.tool.call.id") : NULL;
    if (!call)
        return;
    for (int i = m->nspans - 1; i >= 0; i--) {
        const spantree_span_t *k = &m->spans[i];
        const char *kc = spantree_attr_str(k, "gen_ai.tool.call.id");
        if (k->point && !strcmp(k->op, "guardrail") && kc && !strcmp(kc, call) && k->parent[0]) {
            snprintf(out, len, "%s", k->parent);
            return;
        }
    }
}

static int apply(spantree_t *m, json_object *o, int evi, char *errbuf, size_t errlen)
{
    spantree_event_t *ev = &m->evs[evi];
    const char *span_id = jx_str(o, "span_id"), *parent = jx_str(o, "parent_id");
    const char *phase = jx_str(o, "phase"), *op = jx_str(o, "op"), *name = jx_str(o, "name");
    const char *status = jx_str(o, "status"), *error = jx_str(o, "error");
    const char *end_span = jx_str(o, "end_span"), *state_to = jx_str(o, "state_to");
    json_object *attrs = NULL;
    json_object_object_get_ex(o, "attrs", &attrs);
    if (!span_id)
        return err_set(errbuf, errlen, ERR_INVAL, "event seq %lld: missing \"span_id\"",
                       (long long)ev->seq);
    if (!phase || (strcmp(phase, "begin") && strcmp(phase, "end") && strcmp(phase, "point")))
        return err_set(errbuf, errlen, ERR_INVAL,
                       "event seq %lld: \"phase\" must be begin, end or point", (long long)ev->seq);
    ev->phase = phase[0];
    ev->is_error = status && strcmp(status, "error") == 0;
    if (state_to && !m->sub_event)
        snprintf(m->last_state, sizeof m->last_state, "%s", state_to);

    int si = spantree_find(m, span_id);
    /* An error posted as a point on an existing span (a denied approval, a failed guardrail
     * check) becomes an instant span of its own: counted as an error and found by the
     * viewer's next-error key like any failed span. Retries stay events of their span. */
    char synth_id[40], synth_parent[40];
    if (si >= 0 && ev->phase == 'p' && ev->is_error && !op_is_retry(op)) {
        /* Seqs are per run and a model may hold sub-runs' events: the run id keeps the
         * synthetic id unique. */
        const char *run = jx_str(o, "run_id");
        snprintf(synth_id, sizeof synth_id, "%.16s:%lld", run ? run : "", (long long)ev->seq);
        error_point_parent(m, si, attrs, synth_parent, sizeof synth_parent);
        span_id = synth_id;
        parent = synth_parent;
        si = spantree_find(m, span_id);
    }
    int fresh = si < 0;
    if (fresh && (si = span_add(m, span_id, parent, ev->ts_ns)) < 0)
        return ERR_NOMEM;
    spantree_span_t *s = &m->spans[si];
    ev->span = si;
    if (fresh) {
        s->first_seq = ev->seq;
        s->point = ev->phase == 'p';
    }
    if (span_add_event(s, evi))
        return ERR_NOMEM;
    /* A point event on an existing span is that span's event, not a change to it. */
    int defines = fresh || ev->phase != 'p';
    if (defines) {
        if (op && !s->op[0])
            snprintf(s->op, sizeof s->op, "%s", op);
        if (name && !s->name && set_str(&s->name, name))
            return ERR_NOMEM;
        if (parent && !s->parent[0])
            snprintf(s->parent, sizeof s->parent, "%s", parent);
        if (merge_attrs(s, attrs))
            return ERR_NOMEM;
        if (ev->phase == 'e' && fallback_label(s, attrs))
            return ERR_NOMEM;
        if (ev->phase == 'b') {
            s->has_begin = 1;
            s->start_ns = ev->ts_ns;
            s->step = (int)jx_int(o, "step", s->step);
        } else {
            if (ev->phase == 'e' || s->point)
                s->end_ns = ev->ts_ns;
            set_status(m, s, status, error);
            if (ev->phase == 'e')
                account(m, s, attrs);
        }
        if (ev->phase == 'b')
            account(m, s, attrs);
        if (s->point && op_is_retry(op))
            m->retries++;
    } else {
        if (op_is_retry(op)) {
            s->retries++;
            m->retries++;
        }
    }
    if (end_span) {
        int ei = spantree_find(m, end_span);
        if (ei >= 0 && m->spans[ei].end_ns == 0) {
            m->spans[ei].end_ns = ev->ts_ns;
            /* The transition out of a state says whether that state ended in failure. */
            if (ev->is_error && state_to && strcmp(state_to, "failed") == 0 && ei != si) {
                /* Marked, not counted: m->errors counts error events, as the runs list
                 * does, and this event is already counted on its own span. */
                m->spans[ei].status = SPAN_ERROR;
                if (error && !m->spans[ei].error)
                    m->spans[ei].error = strdup(error);
            } else if (m->spans[ei].status == SPAN_UNSET)
                m->spans[ei].status = SPAN_OK;
        }
    }
    return 0;
}

int spantree_add(spantree_t *m, const char *json, char *errbuf, size_t errlen)
{
    json_object *o = jx_parse(json);
    int rc = 0;
    if (!o || !json_object_is_type(o, json_type_object)) {
        rc = err_set(errbuf, errlen, ERR_INVAL, "event is not a JSON object");
        goto done;
    }
    int64_t seq = jx_int(o, "seq", -1), ts = jx_int(o, "ts_ns", -1);
    if (seq < 1 || ts < 0) {
        rc = err_set(errbuf, errlen, ERR_INVAL, "event: missing or bad \"%s\"",
                     seq < 1 ? "seq" : "ts_ns");
        goto done;
    }
    const char *run = jx_str(o, "run_id");
    if (!m->run_id[0] && run)
        snprintf(m->run_id, sizeof m->run_id, "%s", run);
    struct spantree_sub *sub = NULL;
    if (run && strcmp(run, m->run_id) != 0) {
        for (int i = 0; i < m->nsubs && !sub; i++)
            if (!strcmp(m->subs[i].run_id, run))
                sub = &m->subs[i];
        if (!sub) {
            if (grow((void **)&m->subs, &m->capsubs, m->nsubs + 1, sizeof *m->subs)) {
                rc = ERR_NOMEM;
                goto done;
            }
            sub = &m->subs[m->nsubs++];
            memset(sub, 0, sizeof *sub);
            snprintf(sub->run_id, sizeof sub->run_id, "%s", run);
        }
    }
    if (seq <= (sub ? sub->last_seq : m->last_seq))
        goto done;
    m->sub_event = sub != NULL;
    if (grow((void **)&m->evs, &m->capevs, m->nevs + 1, sizeof *m->evs)) {
        rc = ERR_NOMEM;
        goto done;
    }
    spantree_event_t *ev = &m->evs[m->nevs];
    memset(ev, 0, sizeof *ev);
    ev->seq = seq;
    ev->ts_ns = ts;
    ev->json = strdup(json);
    if (!ev->json) {
        rc = ERR_NOMEM;
        goto done;
    }
    m->nevs++;
    rc = apply(m, o, m->nevs - 1, errbuf, errlen);
    if (rc) {
        free(ev->json);
        m->nevs--;
        goto done;
    }
    if (sub)
        sub->last_seq = seq;
    else
        m->last_seq = seq;
    int step = (int)jx_int(o, "step", 0);
    if (step > m->steps && !sub)
        m->steps = step;
    if (!m->min_ns || ts < m->min_ns)
        m->min_ns = ts;
    if (ts > m->max_ns)
        m->max_ns = ts;
done:
    json_object_put(o);
    return rc;
}

int64_t spantree_last_seq_of(const spantree_t *m, const char *run_id)
{
    if (!strcmp(run_id, m->run_id))
        return m->last_seq;
    for (int i = 0; i < m->nsubs; i++)
        if (!strcmp(m->subs[i].run_id, run_id))
            return m->subs[i].last_seq;
    return 0;
}

int spantree_add_jsonl(spantree_t *m, const char *text, char *errbuf, size_t errlen)
{
    int lineno = 0;
    const char *p = text;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        if (n > 0) {
            if (n + 1 > cap) {
                char *l = realloc(line, n + 1);
                if (!l) {
                    rc = ERR_NOMEM;
                    break;
                }
                line = l;
                cap = n + 1;
            }
            memcpy(line, p, n);
            line[n] = 0;
            char msg[200];
            rc = spantree_add(m, line, msg, sizeof msg);
            if (rc) {
                err_set(errbuf, errlen, rc, "line %d: %s", lineno, msg);
                break;
            }
        }
        p += n + (nl ? 1 : 0);
    }
    free(line);
    return rc;
}

int spantree_root(const spantree_t *m)
{
    int r = m->run_id[0] ? spantree_find(m, m->run_id) : -1;
    if (r >= 0)
        return r;
    for (int i = 0; i < m->nspans; i++)
        if (!m->spans[i].parent[0])
            return i;
    return -1;
}

/* Children lists built on the fly into one array (CSR layout) so flatten is O(n). */
int spantree_flatten(spantree_t *m, int show_points)
{
    int n = m->nspans, rc = ERR_NOMEM;
    int *count = calloc((size_t)n + 1, sizeof *count);
    int *kids = malloc(((size_t)n + 1) * sizeof *kids);
    int *stack = malloc(((size_t)n + 1) * sizeof *stack);
    if (!count || !kids || !stack)
        goto fail;
    for (int i = 0; i < n; i++) {
        spantree_span_t *s = &m->spans[i];
        s->parent_idx = spantree_find(m, s->parent);
        if (s->parent_idx == i)
            s->parent_idx = -1;
        s->sub_errors = s->status == SPAN_ERROR && !is_retry(s);
        s->sub_tokens = spantree_span_tokens(s);
        s->sub_cost = spantree_span_cost(s);
    }
    /* Break cycles from corrupt input: follow each parent chain at most n steps. */
    for (int i = 0; i < n; i++) {
        int p = m->spans[i].parent_idx, steps = 0;
        while (p >= 0 && steps++ <= n)
            p = m->spans[p].parent_idx;
        if (p >= 0)
            m->spans[i].parent_idx = -1;
    }
    /* count[p+1] = number of children of p (index 0 for roots), then prefix sums. */
    for (int i = 0; i < n; i++)
        count[m->spans[i].parent_idx + 1]++;
    int *start = malloc(((size_t)n + 2) * sizeof *start);
    if (!start)
        goto fail;
    start[0] = 0;
    for (int i = 0; i <= n; i++)
        start[i + 1] = start[i] + count[i];
    memset(count, 0, ((size_t)n + 1) * sizeof *count);
    for (int i = 0; i < n; i++) {
        int p = m->spans[i].parent_idx + 1;
        kids[start[p] + count[p]++] = i;
    }
    /* Subtree error counts and usage: children have higher creation index than parents
     * almost always, but not necessarily, so sum by walking each span's ancestors (only
     * spans that have something to add: errors and model calls are few). */
    for (int i = 0; i < n; i++) {
        const spantree_span_t *s = &m->spans[i];
        int err = s->status == SPAN_ERROR && !is_retry(s);
        int64_t tok = spantree_span_tokens(s);
        double cost = spantree_span_cost(s);
        if (!err && !tok && cost == 0)
            continue;
        for (int p = s->parent_idx; p >= 0; p = m->spans[p].parent_idx) {
            m->spans[p].sub_errors += err;
            m->spans[p].sub_tokens += tok;
            m->spans[p].sub_cost += cost;
        }
    }
    /* Per parent (index p+1), the last child that will be shown; per span, its row. */
    int *lastvis = malloc(((size_t)n + 1) * sizeof *lastvis);
    int *rowof = malloc(((size_t)n + 1) * sizeof *rowof);
    if (!lastvis || !rowof || grow((void **)&m->rows, &m->caprows, n + 1, sizeof *m->rows)) {
        free(lastvis);
        free(rowof);
        free(start);
        goto fail;
    }
    for (int p = 0; p <= n; p++) {
        lastvis[p] = -1;
        for (int k = start[p] + count[p] - 1; k >= start[p]; k--)
            if (show_points || !m->spans[kids[k]].point) {
                lastvis[p] = kids[k];
                break;
            }
    }
    m->nrows = 0;
    /* Iterative DFS, children pushed in reverse so they keep seq order. */
    int sp = 0;
    for (int k = start[1] - 1; k >= start[0]; k--)
        stack[sp++] = kids[k];
    while (sp > 0) {
        int i = stack[--sp];
        spantree_span_t *s = &m->spans[i];
        if (s->point && !show_points)
            continue;
        int p = s->parent_idx;
        s->depth = p >= 0 ? m->spans[p].depth + 1 : 0;
        uint32_t more = 0;
        if (p >= 0) {
            /* The parent's mask plus the parent's own "has later siblings" bit. */
            const spantree_row_t *pr = &m->rows[rowof[p]];
            more = pr->more;
            if (!pr->last && pr->depth >= 1 && pr->depth <= 32)
                more |= 1u << (pr->depth - 1);
        }
        rowof[i] = m->nrows;
        spantree_row_t *row = &m->rows[m->nrows++];
        row->span = i;
        row->depth = s->depth;
        row->more = more;
        row->last = lastvis[p + 1] == i;
        if (s->collapsed)
            continue;
        int b = start[i + 1], c = count[i + 1];
        for (int k = b + c - 1; k >= b; k--)
            stack[sp++] = kids[k];
    }
    free(lastvis);
    free(rowof);
    free(start);
    rc = 0;
fail:
    free(count);
    free(kids);
    free(stack);
    return rc;
}

int64_t spantree_span_end(const spantree_t *m, const spantree_span_t *s, int64_t now_ns)
{
    if (s->end_ns)
        return s->end_ns;
    if (now_ns)
        return now_ns > s->start_ns ? now_ns : s->start_ns;
    return m->max_ns > s->start_ns ? m->max_ns : s->start_ns;
}

/* The root (invoke_agent) may repeat its children's totals in its attrs: never its own. */
int64_t spantree_span_tokens(const spantree_span_t *s)
{
    if (strcmp(s->op, "invoke_agent") == 0)
        return 0;
    return spantree_attr_int(s, "gen_ai.usage.input_tokens", 0) +
           spantree_attr_int(s, "gen_ai.usage.output_tokens", 0);
}

double spantree_span_cost(const spantree_span_t *s)
{
    return strcmp(s->op, "invoke_agent") ? spantree_attr_double(s, "gen_ai.usage.cost", 0) : 0;
}

const char *spantree_attr_str(const spantree_span_t *s, const char *key)
{
    return s->attrs ? jx_str(s->attrs, key) : NULL;
}

int64_t spantree_attr_int(const spantree_span_t *s, const char *key, int64_t dflt)
{
    return s->attrs ? jx_int(s->attrs, key, dflt) : dflt;
}

double spantree_attr_double(const spantree_span_t *s, const char *key, double dflt)
{
    json_object *v;
    if (!s->attrs || !json_object_object_get_ex(s->attrs, key, &v))
        return dflt;
    return json_object_get_double(v);
}

static json_object *str_or_null(const char *s)
{
    return s && *s ? json_object_new_string(s) : NULL;
}

json_object *spantree_span_json(const spantree_t *m, int i)
{
    const spantree_span_t *s = &m->spans[i];
    static const char *const st[] = {NULL, "ok", "error"};
    json_object *o = json_object_new_object(), *evs = json_object_new_array();
    if (!o || !evs) {
        json_object_put(o);
        json_object_put(evs);
        return NULL;
    }
    json_object_object_add(o, "span_id", json_object_new_string(s->id));
    json_object_object_add(o, "parent_id", str_or_null(s->parent));
    json_object_object_add(o, "op", str_or_null(s->op));
    json_object_object_add(o, "name", str_or_null(s->name));
    json_object_object_add(o, "start_ns", json_object_new_int64(s->start_ns));
    json_object_object_add(o, "end_ns", s->end_ns ? json_object_new_int64(s->end_ns) : NULL);
    if (s->end_ns)
        json_object_object_add(o, "duration_ms",
                               jx_new_num((double)(s->end_ns - s->start_ns) / 1e6));
    json_object_object_add(o, "status", str_or_null(st[s->status]));
    json_object_object_add(o, "error", str_or_null(s->error));
    json_object_object_add(o, "attrs",
                           s->attrs ? json_object_get(s->attrs) : json_object_new_object());
    for (int k = 0; k < s->nevs; k++) {
        json_object *e = jx_parse(m->evs[s->evs[k]].json);
        if (e)
            json_object_array_add(evs, e);
    }
    json_object_object_add(o, "events", evs);
    return o;
}

int spantree_span_matches(const spantree_t *m, int i, const char *needle)
{
    const spantree_span_t *s = &m->spans[i];
    if (!needle || !*needle)
        return 0;
    if ((s->name && strcasestr(s->name, needle)) || strcasestr(s->op, needle) ||
        (s->error && strcasestr(s->error, needle)) || strcasestr(s->id, needle))
        return 1;
    for (int k = 0; k < s->nevs; k++)
        if (strcasestr(m->evs[s->evs[k]].json, needle))
            return 1;
    return 0;
}

const char *spantree_fmt_dur(int64_t ns, char *buf, size_t len)
{
    if (ns < 0)
        ns = 0;
    if (ns < 1000000)
        snprintf(buf, len, "%lldus", (long long)(ns / 1000));
    else if (ns < 1000000000)
        snprintf(buf, len, "%lldms", (long long)(ns / 1000000));
    else if (ns < 60000000000LL)
        snprintf(buf, len, "%.2fs", (double)ns / 1e9);
    else
        snprintf(buf, len, "%lldm%02llds", (long long)(ns / 60000000000LL),
                 (long long)(ns / 1000000000 % 60));
    return buf;
}
