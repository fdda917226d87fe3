/*
 * offline_args: see offline_args.h. Candidate values are checked with offline_schema.h.
 */
#include "offline_args.h"

#include "err.h"
#include "offline_schema.h"
#include "offline_text.h"
#include "jx.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- values from observations ---- */

static json_object *coerce(json_object *schema, json_object *v)
{
    if (offline_value_fits(schema, v))
        return json_object_get(v);
    const char *type = offline_schema_type(schema);
    if (!strcmp(type, "string") &&
        (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))) {
        json_object *s = json_object_new_string(json_object_to_json_string(v));
        if (s && offline_value_fits(schema, s))
            return s;
        json_object_put(s);
    }
    if (!strcmp(type, "integer") && json_object_is_type(v, json_type_string)) {
        char *end;
        const char *s = json_object_get_string(v);
        long long n = strtoll(s, &end, 10);
        if (*s && !*end) {
            json_object *i = json_object_new_int64(n);
            if (i && offline_value_fits(schema, i))
                return i;
            json_object_put(i);
        }
    }
    return NULL;
}

static json_object *find_key(json_object *j, const char *name, const char *alt, json_object *schema,
                             int depth)
{
    if (depth > 6)
        return NULL;
    if (json_object_is_type(j, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(j); i++) {
            json_object *r =
                find_key(json_object_array_get_idx(j, i), name, alt, schema, depth + 1);
            if (r)
                return r;
        }
        return NULL;
    }
    if (!json_object_is_type(j, json_type_object))
        return NULL;
    json_object *v, *r = NULL;
    if (json_object_object_get_ex(j, name, &v) && v && (r = coerce(schema, v)))
        return r;
    if (alt && json_object_object_get_ex(j, alt, &v) && v && (r = coerce(schema, v)))
        return r;
    size_t n;
    const char **keys = offline_keys_sorted(j, &n);
    for (size_t i = 0; keys && i < n && !r; i++)
        r = find_key(json_object_object_get(j, keys[i]), name, alt, schema, depth + 1);
    free(keys);
    return r;
}

json_object *offline_obs_lookup(const offline_src_t *src, const char *name, json_object *schema)
{
    const char *us = strrchr(name, '_');
    const char *alt = us && strlen(us + 1) >= 4 ? us + 1 : NULL;
    for (size_t i = src->nobs; i-- > 0;) {
        if (src->obs[i].is_error || !src->obs[i].result)
            continue;
        json_object *r = find_key(src->obs[i].result, name, alt, schema, 0);
        if (r)
            return r;
    }
    return NULL;
}

/* ---- values from text ---- */

typedef struct filler {
    const offline_src_t *src;
    offline_spans_t sp[2]; /* 0: latest request, 1: earlier requests */
    unsigned char *used[2];
} filler_t;

static int name_is(const char *name, const char *const *list)
{
    const char *last = strrchr(name, '_');
    last = last ? last + 1 : name;
    for (; *list; list++)
        if (!strcasecmp(name, *list) || !strcasecmp(last, *list))
            return 1;
    return 0;
}

static const char *const query_names[] = {"query", "q",        "search", "keywords", "keyword",
                                          "terms", "question", "topic",  NULL};
static const char *const subject_names[] = {"subject", "title", "summary", "headline", NULL};
static const char *const body_names[] = {
    "description", "body", "details", "detail",  "message", "content", "comment", "comments",
    "notes",       "note", "issue",   "problem", "reason",  "text",    "request", NULL};

/* Is some word within 3 positions of span i related to the property's name? */
static int near_name(const offline_spans_t *sp, size_t i, const char *name)
{
    offline_words_t nw = {0}, around = {0};
    int hit = 0;
    if (offline_words_add(&nw, name, 0))
        goto out;
    for (size_t j = 0; j < sp->n; j++) {
        size_t a = sp->v[i].word, b = sp->v[j].word;
        if (j != i && (a > b ? a - b : b - a) <= 3 && offline_words_add(&around, sp->v[j].s, 0))
            goto out;
    }
    for (size_t k = 0; k < nw.n && !hit; k++)
        hit = offline_words_match(&around, nw.w[k]) > 0;
out:
    offline_words_clear(&nw);
    offline_words_clear(&around);
    return hit;
}

/* Example shapes ("1Z999AA1...") of a string schema's examples that look like identifiers. */
static int example_shape_fits(json_object *schema, const char *s)
{
    json_object *ex;
    if (!json_object_object_get_ex(schema, "examples", &ex) ||
        !json_object_is_type(ex, json_type_array))
        return -1;
    int usable = 0;
    char a[128], b[128];
    offline_shape(s, a, sizeof a);
    for (size_t i = 0; i < json_object_array_length(ex); i++) {
        const char *e = json_object_get_string(json_object_array_get_idx(ex, i));
        if (!e || strpbrk(e, " \t") || !strpbrk(e, "0123456789"))
            continue;
        usable = 1;
        offline_shape(e, b, sizeof b);
        if (!strcmp(a, b))
            return 1;
    }
    return usable ? 0 : -1;
}

/* Typed value of one span for schema, or NULL. */
static json_object *span_value(json_object *schema, const char *type, const char *s)
{
    json_object *v = NULL;
    const char *pat = offline_schema_str(schema, "pattern");
    if (!strcmp(type, "integer") || !strcmp(type, "number")) {
        char *end;
        const char *p = *s == '$' ? s + 1 : s;
        if (!isdigit((unsigned char)*p) && *p != '-')
            return NULL;
        double d = strtod(p, &end);
        if (*end || !isfinite(d))
            return NULL;
        if (floor(d) == d && fabs(d) < 9e15)
            v = json_object_new_int64((int64_t)d);
        else if (!strcmp(type, "number"))
            v = jx_new_num(d);
    } else if (pat) {
        size_t so, eo;
        if (offline_regex_find(pat, s, &so, &eo) == 1 && eo > so)
            v = json_object_new_string_len(s + so, (int)(eo - so));
    } else {
        v = json_object_new_string(s);
    }
    if (v && !offline_value_fits(schema, v)) {
        json_object_put(v);
        v = NULL;
    }
    return v;
}

/* Is this a property whose values are recognisable tokens (ids, numbers, emails)? */
static int is_typed(json_object *schema, const char *type)
{
    if (!strcmp(type, "integer") || !strcmp(type, "number"))
        return 1;
    if (strcmp(type, "string"))
        return 0;
    if (offline_schema_str(schema, "pattern"))
        return 1;
    const char *fmt = offline_schema_str(schema, "format");
    if (fmt && strcmp(fmt, "date-time"))
        return 1;
    return example_shape_fits(schema, "") >= 0;
}

/* Collect up to max distinct typed values into cands (a JSON array). */
static int typed_values(filler_t *f, const char *name, json_object *schema, const char *type,
                        int required, json_object *cands, size_t max)
{
    int shapes = strcmp(type, "string") == 0 && !offline_schema_str(schema, "pattern") &&
                 !offline_schema_str(schema, "format");
    for (int k = 0; k < 2 && json_object_array_length(cands) == 0; k++) {
        for (size_t i = 0; i < f->sp[k].n && json_object_array_length(cands) < max; i++) {
            const char *s = f->sp[k].v[i].s;
            if (f->used[k][i] || (shapes && example_shape_fits(schema, s) != 1))
                continue;
            json_object *v = span_value(schema, type, s);
            if (!v)
                continue;
            /* A bare number fills an optional property only next to a word of its name:
             * "2" in "I ordered 2 shirts" is not a result limit. */
            int bare = strcmp(type, "string") != 0 && !offline_schema_str(schema, "pattern");
            int dup = 0;
            for (size_t c = 0; c < json_object_array_length(cands); c++)
                dup |= json_object_equal(json_object_array_get_idx(cands, c), v);
            if (dup || (bare && !required && !near_name(&f->sp[k], i, name))) {
                json_object_put(v);
                continue;
            }
            if (json_object_array_add(cands, v)) {
                json_object_put(v);
                return ERR_NOMEM;
            }
            f->used[k][i] = 1;
            if (k == 1) /* history fills one value; fan-out is for what was asked now */
                break;
        }
    }
    return 0;
}

static json_object *enum_value(json_object *schema, const char *text)
{
    json_object *en, *best = NULL;
    if (!json_object_object_get_ex(schema, "enum", &en) ||
        !json_object_is_type(en, json_type_array))
        return NULL;
    offline_words_t tw = {0};
    if (offline_words_add(&tw, text, 1))
        return NULL;
    size_t best_hits = 0;
    for (size_t i = 0; i < json_object_array_length(en); i++) {
        json_object *v = json_object_array_get_idx(en, i);
        if (!json_object_is_type(v, json_type_string))
            continue;
        offline_words_t vw = {0};
        if (offline_words_add(&vw, json_object_get_string(v), 1))
            break;
        size_t hits = 0;
        for (size_t k = 0; k < vw.n; k++)
            hits += offline_words_match(&tw, vw.w[k]) > 0;
        if (vw.n && hits == vw.n && hits > best_hits) {
            best_hits = hits;
            best = v;
        }
        offline_words_clear(&vw);
    }
    offline_words_clear(&tw);
    return best ? json_object_get(best) : NULL;
}

/* The request's content words, without stop words and without spans other properties used:
 * "Where is my order 1042? It hasn't arrived." -> "order arrived". */
static char *query_text(const filler_t *f)
{
    buf_t b = {0};
    for (size_t i = 0; i < f->sp[0].n; i++) {
        if (f->used[0][i])
            continue;
        char w[OFFLINE_WORD_MAX];
        size_t n = 0;
        for (const char *p = f->sp[0].v[i].s;; p++) {
            if (*p && (isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80 || *p == '-')) {
                if (n < sizeof w - 1)
                    w[n++] = (char)tolower((unsigned char)*p);
                continue;
            }
            if (*p == '\'')
                continue;
            w[n] = 0;
            int digits = n > 0 && strspn(w, "0123456789") == n;
            if (n && !digits && !offline_is_stop(w)) {
                if (b.len)
                    buf_adds(&b, " ");
                buf_adds(&b, w);
            }
            n = 0;
            if (!*p)
                break;
        }
    }
    if (b.len == 0 && !b.failed)
        buf_adds(&b, f->src->text);
    return buf_take(&b);
}

/* At most max characters (UTF-8 aware), cut at a word boundary when there is one. */
static json_object *clipped(const char *s, size_t max)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s), chars = 0, i = 0, cut = 0;
    for (; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80 && chars++ == max)
            break;
        if (isspace((unsigned char)s[i]))
            cut = i;
    }
    if (i < n)
        n = cut ? cut : i;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return json_object_new_string_len(s, (int)n);
}

static json_object *free_text(filler_t *f, const char *name, json_object *schema, int required)
{
    double maxl = 0;
    size_t cap = offline_schema_num(schema, "maxLength", &maxl) && maxl >= 1 ? (size_t)maxl : 2000;
    if (name_is(name, query_names)) {
        char *q = query_text(f);
        json_object *v = q ? clipped(q, cap) : NULL;
        free(q);
        return v;
    }
    if (!required)
        return NULL;
    if (name_is(name, subject_names) || cap <= 120) {
        const char *t = f->src->text;
        size_t end = strcspn(t, ".?!\n");
        char *first = strndup(t, end ? end : strlen(t));
        json_object *v = first ? clipped(first, cap < 80 ? cap : 80) : NULL;
        free(first);
        return v;
    }
    (void)body_names; /* description-like and unknown required strings get the request */
    return clipped(f->src->text, cap);
}

/* ---- the fill ---- */

typedef struct prop {
    const char *name;
    json_object *schema;
    int required;
    json_object *cands; /* array of candidate values, best first */
} prop_t;

static int collect_props(json_object *params, prop_t **out, size_t *n)
{
    json_object *props = NULL, *req = NULL;
    json_object_object_get_ex(params, "properties", &props);
    json_object_object_get_ex(params, "required", &req);
    size_t np = 0;
    const char **keys = offline_keys_sorted(props, &np);
    if (!keys && props && json_object_is_type(props, json_type_object))
        return ERR_NOMEM;
    prop_t *p = calloc(np + 1, sizeof *p);
    if (!p) {
        free(keys);
        return ERR_NOMEM;
    }
    size_t k = 0;
    /* Required first, in the schema's own order, then the rest sorted. */
    for (size_t i = 0; req && i < json_object_array_length(req); i++) {
        const char *r = json_object_get_string(json_object_array_get_idx(req, i));
        for (size_t j = 0; r && j < np; j++)
            if (keys[j] && !strcmp(keys[j], r)) {
                p[k++] = (prop_t){keys[j], json_object_object_get(props, keys[j]), 1, NULL};
                keys[j] = NULL;
            }
    }
    for (size_t j = 0; j < np; j++)
        if (keys[j])
            p[k++] = (prop_t){keys[j], json_object_object_get(props, keys[j]), 0, NULL};
    free(keys);
    *out = p;
    *n = k;
    return 0;
}

static int push_value(prop_t *p, json_object *v)
{
    if (!v)
        return 0;
    if (json_object_array_add(p->cands, v)) {
        json_object_put(v);
        return ERR_NOMEM;
    }
    return 0;
}

/* Fill the candidates of one property from what is left after typed properties ran. */
static int fill_rest(filler_t *f, prop_t *p)
{
    const char *type = offline_schema_type(p->schema);
    json_object *v = NULL;
    if (json_object_array_length(p->cands))
        return 0;
    if (!strcmp(type, "string") && !is_typed(p->schema, type) &&
        !json_object_object_get_ex(p->schema, "enum", NULL))
        v = free_text(f, p->name, p->schema, p->required);
    if (!v)
        v = offline_obs_lookup(f->src, p->name, p->schema);
    if (!v && p->required) {
        json_object *d, *en;
        if (json_object_object_get_ex(p->schema, "default", &d))
            v = json_object_get(d);
        else if (json_object_object_get_ex(p->schema, "enum", &en) &&
                 json_object_array_length(en) > 0) /* a model would pick one, too */
            v = json_object_get(json_object_array_get_idx(en, 0));
        else if (!strcmp(type, "boolean"))
            v = json_object_new_boolean(0);
        else if (!strcmp(type, "array"))
            v = json_object_new_array();
        else if (!strcmp(type, "object")) {
            json_object *sub = NULL;
            const char *miss;
            if (offline_args_fill(p->schema, f->src, &sub, &miss) == 0)
                v = json_object_get(json_object_array_get_idx(sub, 0));
            json_object_put(sub);
        }
    }
    return push_value(p, v);
}

static int fill_typed(filler_t *f, prop_t *p)
{
    const char *type = offline_schema_type(p->schema);
    json_object *c;
    if (json_object_object_get_ex(p->schema, "const", &c))
        return push_value(p, json_object_get(c));
    if (!strcmp(type, "string") && json_object_object_get_ex(p->schema, "enum", &c)) {
        json_object *v = enum_value(p->schema, f->src->text);
        if (!v && f->src->history[0])
            v = enum_value(p->schema, f->src->history);
        return push_value(p, v);
    }
    if (is_typed(p->schema, type))
        return typed_values(f, p->name, p->schema, type, p->required, p->cands, OFFLINE_MAX_FANOUT);
    json_object *items;
    if (!strcmp(type, "array") && json_object_object_get_ex(p->schema, "items", &items) &&
        is_typed(items, offline_schema_type(items))) {
        json_object *arr = json_object_new_array();
        if (!arr || typed_values(f, p->name, items, offline_schema_type(items), 1, arr, 10)) {
            json_object_put(arr);
            return ERR_NOMEM;
        }
        if (json_object_array_length(arr) == 0) {
            json_object_put(arr);
            return 0;
        }
        return push_value(p, arr);
    }
    return 0;
}

/* ---- several required properties of one kind ---- */

/* "from OSL to LIS on 2026-12-20": origin and destination are both `^[A-Z]{3}$`, and
 * check_in / check_out are both dates. Filled one property at a time, the first would take
 * every code (and fan out into one call per code) and leave the second empty. So such a
 * group is filled together: each distinct value of the request goes to one property,
 * chosen by the words just before it ("from", "to", "check in", "check out", a word of the
 * property's name), and in the schema's order when the text gives no cue. */

enum { DIR_NONE = 0, DIR_START = 1, DIR_END = 2 };

static int word_in(const char *w, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(w, *list))
            return 1;
    return 0;
}

static const char *const start_names[] = {"from",  "origin", "source", "depart", "departure",
                                          "start", "begin",  "in",     "checkin", "since",
                                          "outbound", "first", "min",  "lower",  NULL};
static const char *const end_names[] = {"to",     "destination", "dest",  "arrival", "arrive",
                                        "end",    "out",         "checkout", "until", "return",
                                        "inbound", "last",       "max",   "upper",   NULL};
static const char *const start_cues[] = {"from", "since", "in", "after", "leaving", "departing",
                                         "starting", "origin", "between", "depart", "departure",
                                         "checkin", NULL};
static const char *const end_cues[] = {"to", "until", "till", "out", "through", "arriving",
                                       "returning", "return", "destination", "and", "arrive",
                                       "arrival", "checkout", "before", NULL};

/* Lower-cased letters of s, at most len - 1 of them ("Check-in," -> "checkin"). */
static void letters(const char *s, char *out, size_t len)
{
    size_t n = 0;
    for (; *s && n + 1 < len; s++)
        if (isalpha((unsigned char)*s))
            out[n++] = (char)tolower((unsigned char)*s);
    out[n] = 0;
}

/* The direction a property's name says (check_in: start, destination: end). */
static int prop_dir(const char *name)
{
    char part[OFFLINE_WORD_MAX], whole[OFFLINE_WORD_MAX];
    int dir = DIR_NONE;
    letters(name, whole, sizeof whole);
    if (word_in(whole, start_names))
        return DIR_START;
    if (word_in(whole, end_names))
        return DIR_END;
    for (const char *p = name; *p;) {
        size_t n = 0;
        while (*p && (*p == '_' || *p == '-' || *p == ' '))
            p++;
        while (*p && *p != '_' && *p != '-' && *p != ' ' && n + 1 < sizeof part)
            part[n++] = (char)tolower((unsigned char)*p++);
        part[n] = 0;
        if (n && word_in(part, start_names))
            dir = DIR_START;
        else if (n && word_in(part, end_names))
            dir = DIR_END;
    }
    return dir;
}

/* How strongly the words before span i point at a property of direction dir, or named
 * name: 2 for the word right before, 1 for the one before that. */
static int cue_score(const offline_spans_t *sp, size_t i, int dir, const char *name)
{
    int score = 0;
    char pname[OFFLINE_WORD_MAX];
    letters(name, pname, sizeof pname);
    for (size_t back = 1; back <= 2 && back <= i; back++) {
        const offline_span_t *w = &sp->v[i - back];
        if (sp->v[i].word - w->word != back)
            break; /* punctuation-only spans in between: no longer "just before" */
        char cue[OFFLINE_WORD_MAX];
        letters(w->s, cue, sizeof cue);
        int weight = back == 1 ? 2 : 1;
        if ((dir == DIR_START && word_in(cue, start_cues)) ||
            (dir == DIR_END && word_in(cue, end_cues)) || (*cue && !strcmp(cue, pname)))
            score += weight;
        else if ((dir == DIR_START && word_in(cue, end_cues)) ||
                 (dir == DIR_END && word_in(cue, start_cues)))
            score -= weight;
    }
    return score;
}

static int same_kind(json_object *a, json_object *b)
{
    const char *ta = offline_schema_type(a), *tb = offline_schema_type(b);
    const char *pa = offline_schema_str(a, "pattern"), *pb = offline_schema_str(b, "pattern");
    const char *fa = offline_schema_str(a, "format"), *fb = offline_schema_str(b, "format");
    return !strcmp(ta, tb) && is_typed(a, ta) && !json_object_object_get_ex(a, "enum", NULL) &&
           !json_object_object_get_ex(a, "const", NULL) &&
           !json_object_object_get_ex(b, "enum", NULL) &&
           !json_object_object_get_ex(b, "const", NULL) &&
           ((!pa && !pb) || (pa && pb && !strcmp(pa, pb))) &&
           ((!fa && !fb) || (fa && fb && !strcmp(fa, fb)));
}

/* Fill the group of required properties of the same kind as p[first] (marked in done). */
static int fill_group(filler_t *f, prop_t *p, size_t np, size_t first, unsigned char *done)
{
    size_t g[16], ng = 0;
    for (size_t i = first; i < np && ng < sizeof g / sizeof g[0]; i++)
        if (p[i].required && !done[i] && same_kind(p[first].schema, p[i].schema))
            g[ng++] = i;
    if (ng < 2)
        return 0;
    const char *type = offline_schema_type(p[first].schema);
    offline_spans_t *sp = &f->sp[0];
    size_t cand[16], nc = 0;
    json_object *vals[16] = {0};
    int rc = 0;
    /* Distinct values of the request, in text order. */
    for (size_t i = 0; i < sp->n && nc < sizeof cand / sizeof cand[0]; i++) {
        if (f->used[0][i])
            continue;
        if (!strcmp(type, "string") && !offline_schema_str(p[first].schema, "pattern") &&
            !offline_schema_str(p[first].schema, "format") &&
            example_shape_fits(p[first].schema, sp->v[i].s) != 1)
            continue;
        json_object *v = span_value(p[first].schema, type, sp->v[i].s);
        int dup = 0;
        for (size_t k = 0; v && k < nc; k++)
            dup |= json_object_equal(vals[k], v);
        if (!v || dup) {
            json_object_put(v);
            continue;
        }
        vals[nc] = v;
        cand[nc++] = i;
    }
    /* The best (property, value) pair first, over all pairs: "to LIS" alone goes to the
     * destination even though the origin comes first in the schema. Ties: schema order,
     * then text order. */
    unsigned char taken[16] = {0}, got[16] = {0};
    int score[16][16];
    for (size_t k = 0; k < ng; k++)
        for (size_t c = 0; c < nc; c++)
            score[k][c] = cue_score(sp, cand[c], prop_dir(p[g[k]].name), p[g[k]].name);
    for (size_t round = 0; round < ng && round < nc && !rc; round++) {
        size_t bk = ng, bc = nc;
        for (size_t k = 0; k < ng; k++)
            for (size_t c = 0; c < nc; c++)
                if (!got[k] && !taken[c] && (bk == ng || score[k][c] > score[bk][bc])) {
                    bk = k;
                    bc = c;
                }
        got[bk] = taken[bc] = 1;
        f->used[0][cand[bc]] = 1;
        rc = push_value(&p[g[bk]], json_object_get(vals[bc]));
    }
    for (size_t k = 0; k < ng; k++)
        done[g[k]] = 1; /* left empty when there were fewer values: fill_rest may find one */
    for (size_t k = 0; k < nc; k++)
        json_object_put(vals[k]);
    return rc;
}

static int build_calls(prop_t *p, size_t np, json_object **calls)
{
    size_t fan = 1, fan_prop = np;
    for (size_t i = 0; i < np; i++)
        if (p[i].required && json_object_array_length(p[i].cands) > 1) {
            fan = json_object_array_length(p[i].cands);
            fan_prop = i;
            break;
        }
    json_object *arr = json_object_new_array();
    for (size_t k = 0; arr && k < fan; k++) {
        json_object *o = json_object_new_object();
        for (size_t i = 0; o && i < np; i++) {
            size_t nc = json_object_array_length(p[i].cands);
            if (!nc)
                continue;
            json_object *v = json_object_array_get_idx(p[i].cands, i == fan_prop ? k : 0);
            if (json_object_object_add(o, p[i].name, json_object_get(v))) {
                json_object_put(v);
                json_object_put(o);
                o = NULL;
            }
        }
        json_object *sorted = o ? offline_json_sorted(o) : NULL;
        json_object_put(o);
        if (!sorted || json_object_array_add(arr, sorted)) {
            json_object_put(sorted);
            json_object_put(arr);
            arr = NULL;
        }
    }
    if (!arr)
        return ERR_NOMEM;
    *calls = arr;
    return 0;
}

int offline_args_fill(json_object *params, const offline_src_t *src, json_object **calls,
                      const char **missing)
{
    filler_t f = {.src = src};
    prop_t *p = NULL;
    unsigned char *done = NULL;
    size_t np = 0;
    int rc = ERR_NOMEM;
    *missing = NULL;
    if (offline_spans_split(src->text, &f.sp[0]) || offline_spans_split(src->history, &f.sp[1]))
        goto out;
    f.used[0] = calloc(f.sp[0].n + 1, 1);
    f.used[1] = calloc(f.sp[1].n + 1, 1);
    if (!f.used[0] || !f.used[1] || collect_props(params, &p, &np))
        goto out;
    for (size_t i = 0; i < np; i++)
        if (!(p[i].cands = json_object_new_array()))
            goto out;
    /* Typed properties claim their spans before free text takes what is left; several
     * required ones of one kind share the request's values first. */
    if (!(done = calloc(np + 1, 1)))
        goto out;
    for (size_t i = 0; i < np; i++)
        if (p[i].required && !done[i] && fill_group(&f, p, np, i, done))
            goto out;
    for (size_t i = 0; i < np; i++)
        if (!done[i] && fill_typed(&f, &p[i]))
            goto out;
    for (size_t i = 0; i < np; i++)
        if (fill_rest(&f, &p[i]))
            goto out;
    for (size_t i = 0; i < np; i++)
        if (p[i].required && json_object_array_length(p[i].cands) == 0) {
            *missing = p[i].name;
            rc = ERR_NOTFOUND;
            goto out;
        }
    rc = build_calls(p, np, calls);
out:
    for (size_t i = 0; p && i < np; i++)
        json_object_put(p[i].cands);
    free(p);
    free(done);
    free(f.used[0]);
    free(f.used[1]);
    offline_spans_clear(&f.sp[0]);
    offline_spans_clear(&f.sp[1]);
    return rc;
}

int offline_args_is_search(json_object *params)
{
    prop_t *p = NULL;
    size_t np = 0;
    int yes = 0;
    if (collect_props(params, &p, &np))
        return 0;
    for (size_t i = 0; i < np; i++)
        yes |= p[i].required && name_is(p[i].name, query_names) &&
               !strcmp(offline_schema_type(p[i].schema), "string");
    free(p);
    return yes;
}

size_t offline_args_typed_hits(json_object *params, const char *text)
{
    offline_src_t src = {.text = text, .history = ""};
    filler_t f = {.src = &src};
    prop_t *p = NULL;
    size_t np = 0, hits = 0;
    if (offline_spans_split(text, &f.sp[0]))
        return 0;
    f.used[0] = calloc(f.sp[0].n + 1, 1);
    f.used[1] = calloc(1, 1);
    if (!f.used[0] || !f.used[1] || collect_props(params, &p, &np))
        goto out;
    for (size_t i = 0; i < np; i++) {
        const char *type = offline_schema_type(p[i].schema);
        int idlike = p[i].required && is_typed(p[i].schema, type);
        json_object *c = idlike ? json_object_new_array() : NULL;
        if (c && !typed_values(&f, p[i].name, p[i].schema, type, 1, c, 1))
            hits += json_object_array_length(c) > 0;
        json_object_put(c);
    }
out:
    free(p);
    free(f.used[0]);
    free(f.used[1]);
    offline_spans_clear(&f.sp[0]);
    return hits;
}
