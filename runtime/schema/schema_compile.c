/*
 * schema_compile: schema objects -> snodes (flat arrays of keyword operations).
 *
 * Each schema object is compiled once (memoised by address, which also ties $ref
 * cycles into a graph). Operations are emitted in a fixed order: type first (the
 * cheapest rejection), then the other assertions, then applicators, and the
 * unevaluated* keywords last because they need every sibling's annotations.
 * Draft-07 differences are settled here: "$ref" hides its siblings, array "items" with
 * "additionalItems", "dependencies"; the validator knows only one form.
 */
#include "schema_cc.h"
#include "schema_json.h"

#include "err.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPS 48

void *schema_alloc(schema_t *s, size_t n)
{
    if (s->nallocs == s->capallocs) {
        size_t ncap = s->capallocs ? s->capallocs * 2 : 64;
        void **a = realloc(s->allocs, ncap * sizeof *a);
        if (!a)
            return NULL;
        s->allocs = a;
        s->capallocs = ncap;
    }
    void *p = calloc(1, n ? n : 1);
    if (p)
        s->allocs[s->nallocs++] = p;
    return p;
}

char *schema_strdup(schema_t *s, const char *str)
{
    size_t n = strlen(str) + 1;
    char *p = schema_alloc(s, n);
    if (p)
        memcpy(p, str, n);
    return p;
}

typedef struct ops {
    sop_t v[MAX_OPS];
    size_t n;
} ops_t;

static sop_t *add(cctx_t *c, ops_t *ops, int kind, unsigned tmask, const char *kw)
{
    if (ops->n == MAX_OPS) {
        schema_cc_fail(c, "too many keywords");
        return NULL;
    }
    sop_t *op = &ops->v[ops->n++];
    memset(op, 0, sizeof *op);
    op->kind = (uint16_t)kind;
    op->tmask = (uint8_t)tmask;
    op->kw = kw;
    return op;
}

static snode_t *sub_node(cctx_t *c, json_object *o, const char *kw, const char *kw2)
{
    size_t old = schema_cc_push(c, kw, kw2);
    snode_t *n = schema_cc_node(c, o);
    schema_cc_pop(c, old);
    return n;
}

static int get_num(cctx_t *c, json_object *v, const char *kw, double *out)
{
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return schema_cc_fail(c, "\"%s\" must be a number", kw);
    *out = json_object_get_double(v);
    return 0;
}

static int get_count(cctx_t *c, json_object *v, const char *kw, size_t *out)
{
    double d;
    if (get_num(c, v, kw, &d) || d < 0 || d != floor(d))
        return schema_cc_fail(c, "\"%s\" must be a non-negative integer", kw);
    *out = d > (double)SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)d;
    return 0;
}

static int type_bits(cctx_t *c, const char *t, uint32_t *bits)
{
    static const struct { const char *n; uint32_t b; } tt[] = {
        {"null", T_NULL}, {"boolean", T_BOOL}, {"object", T_OBJ}, {"array", T_ARR},
        {"string", T_STR}, {"number", T_NUM | T_INT}, {"integer", T_INT},
    };
    for (size_t i = 0; i < sizeof tt / sizeof tt[0]; i++)
        if (!strcmp(t, tt[i].n)) {
            *bits |= tt[i].b;
            return 0;
        }
    return schema_cc_fail(c, "unknown type \"%s\" in \"type\"", t);
}

static int subs_array(cctx_t *c, json_object *v, const char *kw, snode_t ***out, size_t *n)
{
    if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
        return schema_cc_fail(c, "\"%s\" must be a non-empty array of schemas", kw);
    *n = json_object_array_length(v);
    *out = schema_alloc(c->s, *n * sizeof **out);
    if (!*out)
        return schema_cc_fail(c, "out of memory");
    for (size_t i = 0; i < *n; i++) {
        char idx[24];
        snprintf(idx, sizeof idx, "%zu", i);
        if (!((*out)[i] = sub_node(c, json_object_array_get_idx(v, i), kw, idx)))
            return ERR_SCHEMA;
    }
    return 0;
}

static int str_array(cctx_t *c, json_object *v, const char *kw, const char ***out, size_t *n)
{
    if (!json_object_is_type(v, json_type_array))
        return schema_cc_fail(c, "\"%s\" must be an array of strings", kw);
    *n = json_object_array_length(v);
    *out = schema_alloc(c->s, (*n ? *n : 1) * sizeof **out);
    if (!*out)
        return schema_cc_fail(c, "out of memory");
    for (size_t i = 0; i < *n; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        if (!json_object_is_type(e, json_type_string))
            return schema_cc_fail(c, "\"%s\" must be an array of strings", kw);
        (*out)[i] = json_object_get_string(e);
    }
    return 0;
}

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int compile_props(cctx_t *c, ops_t *ops, json_object *o, unsigned vocab)
{
    json_object *pr = NULL, *pp = NULL, *ap = NULL;
    if (!(vocab & V_APPLICATOR))
        return 0;
    json_object_object_get_ex(o, "properties", &pr);
    json_object_object_get_ex(o, "patternProperties", &pp);
    json_object_object_get_ex(o, "additionalProperties", &ap);
    if (!pr && !pp && !ap)
        return 0;
    if ((pr && !json_object_is_type(pr, json_type_object)) ||
        (pp && !json_object_is_type(pp, json_type_object)))
        return schema_cc_fail(c, "\"properties\" and \"patternProperties\" must be objects");
    sprops_t *p = schema_alloc(c->s, sizeof *p);
    sop_t *op = add(c, ops, K_PROPS, T_OBJ, "properties");
    if (!p || !op)
        return schema_cc_fail(c, "out of memory");
    op->u.props = p;
    p->n = pr ? (size_t)json_object_object_length(pr) : 0;
    p->npat = pp ? (size_t)json_object_object_length(pp) : 0;
    p->names = schema_alloc(c->s, (p->n + 1) * sizeof *p->names);
    p->lens = schema_alloc(c->s, (p->n + 1) * sizeof *p->lens);
    p->subs = schema_alloc(c->s, (p->n + 1) * sizeof *p->subs);
    p->pats = schema_alloc(c->s, (p->npat + 1) * sizeof *p->pats);
    p->patsrc = schema_alloc(c->s, (p->npat + 1) * sizeof *p->patsrc);
    p->patsubs = schema_alloc(c->s, (p->npat + 1) * sizeof *p->patsubs);
    if (!p->names || !p->lens || !p->subs || !p->pats || !p->patsrc || !p->patsubs)
        return schema_cc_fail(c, "out of memory");
    size_t i = 0;
    if (pr) {
        json_object_object_foreach(pr, k, v)
        {
            /* The shared copy when there is one: keys parsed by schema_parse_json then
             * match by pointer (schema.c, prop_lookup_z). */
            p->lens[i] = strlen(k);
            const char *shared = schema_key_intern(k, p->lens[i]);
            p->names[i] = shared ? shared : k;
            if (!(p->subs[i] = sub_node(c, v, "properties", k)))
                return ERR_SCHEMA;
            i++;
        }
    }
    if (p->n > SPROPS_LINEAR_MAX) {
        p->hcap = 16;
        while (p->hcap < p->n * 2)
            p->hcap *= 2;
        p->hash = schema_alloc(c->s, p->hcap * sizeof *p->hash);
        if (!p->hash)
            return schema_cc_fail(c, "out of memory");
        for (i = 0; i < p->n; i++) {
            size_t h = name_hash(p->names[i], p->lens[i]) & (p->hcap - 1);
            while (p->hash[h])
                h = (h + 1) & (p->hcap - 1);
            p->hash[h] = (uint32_t)i + 1;
        }
    }
    i = 0;
    if (pp) {
        json_object_object_foreach(pp, k, v)
        {
            char msg[256];
            size_t old = schema_cc_push(c, "patternProperties", k);
            p->pats[i] = schema_regex_compile(c->s, k, strlen(k), msg, sizeof msg);
            schema_cc_pop(c, old);
            if (!p->pats[i]) {
                schema_cc_push(c, "patternProperties", k);
                return schema_cc_fail(c, "bad regular expression: %s", msg);
            }
            p->patsrc[i] = k;
            if (!(p->patsubs[i] = sub_node(c, v, "patternProperties", k)))
                return ERR_SCHEMA;
            i++;
        }
    }
    if (ap && !(p->additional = sub_node(c, ap, "additionalProperties", NULL)))
        return ERR_SCHEMA;
    return 0;
}

static int compile_items(cctx_t *c, ops_t *ops, json_object *o, int draft)
{
    json_object *it = NULL, *pi = NULL, *ai = NULL;
    json_object_object_get_ex(o, "items", &it);
    if (draft == 7) {
        if (it && json_object_is_type(it, json_type_array)) {
            pi = it;
            it = NULL;
            json_object_object_get_ex(o, "additionalItems", &ai);
        }
    } else {
        json_object_object_get_ex(o, "prefixItems", &pi);
    }
    json_object *rest = ai ? ai : it;
    if (!pi && !rest)
        return 0;
    sop_t *op = add(c, ops, K_ITEMS, T_ARR, draft == 7 ? "items" : "prefixItems");
    if (!op)
        return ERR_SCHEMA;
    op->u.items.restkw = ai ? "additionalItems" : "items";
    if (pi) {
        if (!json_object_is_type(pi, json_type_array))
            return schema_cc_fail(c, "\"%s\" must be an array of schemas", op->kw);
        op->u.items.nprefix = json_object_array_length(pi);
        if (op->u.items.nprefix &&
            subs_array(c, pi, op->kw, &op->u.items.prefix, &op->u.items.nprefix))
            return ERR_SCHEMA;
    }
    if (rest && !(op->u.items.rest = sub_node(c, rest, op->u.items.restkw, NULL)))
        return ERR_SCHEMA;
    return 0;
}

static int compile_deps(cctx_t *c, ops_t *ops, json_object *o, int draft, unsigned vocab)
{
    /* 2020-12 still honours draft-07's "dependencies", as most validators do. */
    static const char *const kw2020[] = {"dependentRequired", "dependentSchemas",
                                         "dependencies", "dependencies"};
    static const char *const kw7[] = {"dependencies", "dependencies"};
    const char *const *kwl = draft == 7 ? kw7 : kw2020;
    int nkw = draft == 7 ? 2 : 4;
    for (int ki = 0; ki < nkw; ki++) {
        int schemas = ki % 2;
        const char *kws[2] = {kwl[ki & ~1], kwl[ki | 1]};
        json_object *d;
        if (!(vocab & (schemas ? V_APPLICATOR : V_VALIDATION)) ||
            !json_object_object_get_ex(o, kws[schemas], &d))
            continue;
        if (!json_object_is_type(d, json_type_object))
            return schema_cc_fail(c, "\"%s\" must be an object", kws[schemas]);
        size_t n = 0, cap = (size_t)json_object_object_length(d);
        const char **keys = schema_alloc(c->s, (cap + 1) * sizeof *keys);
        void **vals = schema_alloc(c->s, (cap + 1) * sizeof *vals);
        if (!keys || !vals)
            return schema_cc_fail(c, "out of memory");
        json_object_object_foreach(d, k, v)
        {
            int is_arr = json_object_is_type(v, json_type_array);
            if (is_arr == schemas)
                continue;
            if (!schemas) {
                struct { const char **v; size_t n; } *names = schema_alloc(c->s, sizeof *names);
                if (!names)
                    return schema_cc_fail(c, "out of memory");
                size_t old = schema_cc_push(c, kws[0], k);
                int rc = str_array(c, v, kws[0], &names->v, &names->n);
                schema_cc_pop(c, old);
                if (rc)
                    return rc;
                vals[n] = names;
            } else if (!(vals[n] = sub_node(c, v, kws[1], k))) {
                return ERR_SCHEMA;
            }
            keys[n++] = k;
        }
        if (!n)
            continue;
        sop_t *op = add(c, ops, schemas ? K_DEPSCHEMA : K_DEPREQ, T_OBJ, kws[schemas]);
        if (!op)
            return ERR_SCHEMA;
        op->u.dep.keys = keys;
        op->u.dep.v = vals;
        op->u.dep.n = n;
        op->u.dep.schemas = schemas;
    }
    return 0;
}

static int compile_ref(cctx_t *c, ops_t *ops, oinfo_t *inf, json_object *v, int dynamic)
{
    const char *kw = dynamic ? "$dynamicRef" : "$ref";
    if (!json_object_is_type(v, json_type_string))
        return schema_cc_fail(c, "\"%s\" must be a string", kw);
    char *abs = NULL;
    const char *frag = NULL;
    size_t old = schema_cc_push(c, kw, NULL);
    json_object *t =
        schema_cc_resolve(c, inf->base, inf->draft, json_object_get_string(v), &abs, &frag);
    snode_t *n = t ? schema_cc_node(c, t) : NULL;
    schema_cc_pop(c, old);
    sop_t *op = n ? add(c, ops, dynamic ? K_DYNREF : K_REF, T_ANY, kw) : NULL;
    if (op && dynamic) {
        op->u.dyn.target = n;
        json_object *da;
        if (*frag && *frag != '/' && json_object_is_type(t, json_type_object) &&
            json_object_object_get_ex(t, "$dynamicAnchor", &da) &&
            json_object_is_type(da, json_type_string) &&
            !strcmp(json_object_get_string(da), frag) &&
            !(op->u.dyn.anchor = schema_strdup(c->s, frag)))
            schema_cc_fail(c, "out of memory");
    } else if (op) {
        op->u.sub = n;
    }
    free(abs);
    return c->failed ? ERR_SCHEMA : 0;
}

static int compile_assertions(cctx_t *c, ops_t *ops, json_object *o, int draft)
{
    json_object *v;
    sop_t *op;
    static const struct { const char *kw; int kind; unsigned t; } nums[] = {
        {"multipleOf", K_MULTOF, T_NUM | T_INT}, {"maximum", K_MAX, T_NUM | T_INT},
        {"exclusiveMaximum", K_XMAX, T_NUM | T_INT}, {"minimum", K_MIN, T_NUM | T_INT},
        {"exclusiveMinimum", K_XMIN, T_NUM | T_INT},
    };
    static const struct { const char *kw; int kind; unsigned t; } counts[] = {
        {"maxLength", K_MAXLEN, T_STR}, {"minLength", K_MINLEN, T_STR},
        {"maxItems", K_MAXITEMS, T_ARR}, {"minItems", K_MINITEMS, T_ARR},
        {"maxProperties", K_MAXPROPS, T_OBJ}, {"minProperties", K_MINPROPS, T_OBJ},
    };
    if (json_object_object_get_ex(o, "type", &v)) {
        uint32_t bits = 0;
        if (json_object_is_type(v, json_type_string)) {
            if (type_bits(c, json_object_get_string(v), &bits))
                return ERR_SCHEMA;
        } else if (json_object_is_type(v, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *e = json_object_array_get_idx(v, i);
                if (!json_object_is_type(e, json_type_string) ||
                    type_bits(c, json_object_get_string(e), &bits))
                    return schema_cc_fail(c, "\"type\" must be a type name or an array of them");
            }
        } else {
            return schema_cc_fail(c, "\"type\" must be a type name or an array of them");
        }
        if (!(op = add(c, ops, K_TYPE, T_ANY, "type")))
            return ERR_SCHEMA;
        op->u.types = bits;
    }
    if (json_object_object_get_ex(o, "enum", &v)) {
        if (!json_object_is_type(v, json_type_array))
            return schema_cc_fail(c, "\"enum\" must be an array");
        size_t n = json_object_array_length(v), i = 0;
        while (i < n && json_object_is_type(json_object_array_get_idx(v, i), json_type_string))
            i++;
        if (n && i == n) {
            /* All strings, the common case: compare lengths and bytes, no json-c calls. */
            if (!(op = add(c, ops, K_ENUM_STR, T_ANY, "enum")))
                return ERR_SCHEMA;
            op->u.strs.val = v;
            op->u.strs.n = n;
            op->u.strs.v = schema_alloc(c->s, n * sizeof *op->u.strs.v);
            op->u.strs.lens = schema_alloc(c->s, n * sizeof *op->u.strs.lens);
            if (!op->u.strs.v || !op->u.strs.lens)
                return schema_cc_fail(c, "out of memory");
            for (i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(v, i);
                op->u.strs.v[i] = json_object_get_string(e);
                op->u.strs.lens[i] = (size_t)json_object_get_string_len(e);
            }
        } else {
            if (!(op = add(c, ops, K_ENUM, T_ANY, "enum")))
                return ERR_SCHEMA;
            op->u.val = v;
        }
    }
    if (json_object_object_get_ex(o, "const", &v)) {
        if (!(op = add(c, ops, K_CONST, T_ANY, "const")))
            return ERR_SCHEMA;
        op->u.val = v;
    }
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (!json_object_object_get_ex(o, nums[i].kw, &v))
            continue;
        if (draft == 7 && json_object_is_type(v, json_type_boolean))
            continue; /* draft-04 style flag: tolerated, not enforced */
        if (!(op = add(c, ops, nums[i].kind, nums[i].t, nums[i].kw)) ||
            get_num(c, v, nums[i].kw, &op->u.num))
            return ERR_SCHEMA;
        if (nums[i].kind == K_MULTOF && op->u.num <= 0)
            return schema_cc_fail(c, "\"multipleOf\" must be > 0");
        /* The number as messages show it, written once here rather than per error. */
        char nb[48];
        size_t nl = schema_fmt_num(nb, sizeof nb, op->u.num) + 1;
        char *txt = schema_alloc(c->s, nl);
        if (!txt)
            return schema_cc_fail(c, "out of memory");
        op->u.bound.txt = memcpy(txt, nb, nl);
    }
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        if (!json_object_object_get_ex(o, counts[i].kw, &v))
            continue;
        if (!(op = add(c, ops, counts[i].kind, counts[i].t, counts[i].kw)) ||
            get_count(c, v, counts[i].kw, &op->u.len))
            return ERR_SCHEMA;
    }
    if (json_object_object_get_ex(o, "pattern", &v)) {
        if (!json_object_is_type(v, json_type_string))
            return schema_cc_fail(c, "\"pattern\" must be a string");
        char msg[256];
        if (!(op = add(c, ops, K_PATTERN, T_STR, "pattern")))
            return ERR_SCHEMA;
        op->u.pat.src = json_object_get_string(v);
        op->u.pat.re = schema_regex_compile(c->s, op->u.pat.src,
                                            (size_t)json_object_get_string_len(v), msg,
                                            sizeof msg);
        if (!op->u.pat.re) {
            ops->n--;
            return schema_cc_fail(c, "bad \"pattern\": %s", msg);
        }
    }
    if (json_object_object_get_ex(o, "uniqueItems", &v) && json_object_get_boolean(v) &&
        !add(c, ops, K_UNIQUE, T_ARR, "uniqueItems"))
        return ERR_SCHEMA;
    if (json_object_object_get_ex(o, "required", &v)) {
        if (!(op = add(c, ops, K_REQUIRED, T_OBJ, "required")) ||
            str_array(c, v, "required", &op->u.names.v, &op->u.names.n))
            return ERR_SCHEMA;
        if (!op->u.names.n)
            ops->n--;
    }
    return 0;
}

static int compile_applicators(cctx_t *c, ops_t *ops, json_object *o, int draft)
{
    json_object *v;
    sop_t *op;
    static const struct { const char *kw; int kind; } lists[] = {
        {"allOf", K_ALLOF}, {"anyOf", K_ANYOF}, {"oneOf", K_ONEOF},
    };
    for (size_t i = 0; i < 3; i++) {
        if (!json_object_object_get_ex(o, lists[i].kw, &v))
            continue;
        if (!(op = add(c, ops, lists[i].kind, T_ANY, lists[i].kw)) ||
            subs_array(c, v, lists[i].kw, &op->u.subs.v, &op->u.subs.n))
            return ERR_SCHEMA;
    }
    if (json_object_object_get_ex(o, "not", &v)) {
        if (!(op = add(c, ops, K_NOT, T_ANY, "not")) ||
            !(op->u.sub = sub_node(c, v, "not", NULL)))
            return ERR_SCHEMA;
    }
    if (json_object_object_get_ex(o, "if", &v)) {
        json_object *t = NULL, *e = NULL;
        json_object_object_get_ex(o, "then", &t);
        json_object_object_get_ex(o, "else", &e);
        if (!(op = add(c, ops, K_IF, T_ANY, "if")) ||
            !(op->u.cond.cond = sub_node(c, v, "if", NULL)) ||
            (t && !(op->u.cond.then = sub_node(c, t, "then", NULL))) ||
            (e && !(op->u.cond.els = sub_node(c, e, "else", NULL))))
            return ERR_SCHEMA;
    }
    if (compile_items(c, ops, o, draft))
        return ERR_SCHEMA;
    if (json_object_object_get_ex(o, "contains", &v)) {
        if (!(op = add(c, ops, K_CONTAINS, T_ARR, "contains")) ||
            !(op->u.contains.sub = sub_node(c, v, "contains", NULL)))
            return ERR_SCHEMA;
        op->u.contains.min = 1;
        op->u.contains.max = SIZE_MAX;
        json_object *m;
        if (draft != 7 && json_object_object_get_ex(o, "minContains", &m) &&
            get_count(c, m, "minContains", &op->u.contains.min))
            return ERR_SCHEMA;
        if (draft != 7 && json_object_object_get_ex(o, "maxContains", &m) &&
            get_count(c, m, "maxContains", &op->u.contains.max))
            return ERR_SCHEMA;
    }
    if (json_object_object_get_ex(o, "propertyNames", &v)) {
        if (!(op = add(c, ops, K_PROPNAMES, T_OBJ, "propertyNames")) ||
            !(op->u.sub = sub_node(c, v, "propertyNames", NULL)))
            return ERR_SCHEMA;
    }
    return 0;
}

static int compile_format(cctx_t *c, ops_t *ops, json_object *o, unsigned vocab)
{
    json_object *v;
    int on = (c->opts && c->opts->format_assert) || (vocab & V_FORMAT_ASSERT);
    if (!on || !json_object_object_get_ex(o, "format", &v) ||
        !json_object_is_type(v, json_type_string))
        return 0;
    int (*fn)(const char *, size_t) = schema_format_fn(json_object_get_string(v));
    if (!fn)
        return 0; /* unknown formats annotate only, as the specification asks */
    sop_t *op = add(c, ops, K_FORMAT, T_STR, "format");
    if (!op)
        return ERR_SCHEMA;
    op->u.fmt.fn = fn;
    op->u.fmt.name = json_object_get_string(v);
    return 0;
}

/* Move a "required" op into the node's properties op when all its names are listed
 * properties (at most 64): see sprops_t. */
static int fold_required(cctx_t *c, ops_t *ops)
{
    sop_t *req = NULL, *props = NULL;
    for (size_t i = 0; i < ops->n; i++) {
        if (ops->v[i].kind == K_REQUIRED)
            req = &ops->v[i];
        else if (ops->v[i].kind == K_PROPS)
            props = &ops->v[i];
    }
    if (!req || !props || req->u.names.n > 64)
        return 0;
    sprops_t *p = props->u.props;
    uint64_t *bits = schema_alloc(c->s, (p->n + 1) * sizeof *bits);
    if (!bits)
        return schema_cc_fail(c, "out of memory");
    for (size_t r = 0; r < req->u.names.n; r++) {
        size_t i = 0;
        while (i < p->n && strcmp(p->names[i], req->u.names.v[r]) != 0)
            i++;
        if (i == p->n)
            return 0; /* a required name without a schema: keep the plain op */
        if (!bits[i])
            bits[i] = 1ull << r;
    }
    p->reqbit = bits;
    for (size_t i = 0; i < p->n; i++)
        p->req_mask |= bits[i];
    p->req_names = req->u.names.v;
    p->nreq = req->u.names.n;
    size_t at = (size_t)(req - ops->v);
    memmove(req, req + 1, (ops->n - at - 1) * sizeof *req);
    ops->n--;
    return 0;
}

/* Gather a leaf's ops into its sleaf_t (see schema_int.h). */
static const sleaf_t *leaf_program(cctx_t *c, const snode_t *n)
{
    sleaf_t *lf = schema_alloc(c->s, sizeof *lf);
    if (!lf)
        return NULL;
    *lf = (sleaf_t){.types = T_ANY, .maxlen = SIZE_MAX, .maxitems = SIZE_MAX,
                    .maxprops = SIZE_MAX, .min = -INFINITY, .max = INFINITY,
                    .xmin = -INFINITY, .xmax = INFINITY};
    for (size_t i = 0; i < n->nops; i++) {
        const sop_t *op = &n->ops[i];
        switch (op->kind) {
        case K_TYPE: lf->types &= op->u.types; break;
        case K_ENUM_STR: lf->enm = op; break;
        case K_MAX: lf->max = op->u.num; break;
        case K_XMAX: lf->xmax = op->u.num; break;
        case K_MIN: lf->min = op->u.num; break;
        case K_XMIN: lf->xmin = op->u.num; break;
        case K_MAXLEN: lf->maxlen = op->u.len; break;
        case K_MINLEN: lf->minlen = op->u.len; break;
        case K_PATTERN: lf->pat = op; break;
        case K_FORMAT: lf->fmt = op; break;
        case K_MAXITEMS: lf->maxitems = op->u.len; break;
        case K_MINITEMS: lf->minitems = op->u.len; break;
        case K_MAXPROPS: lf->maxprops = op->u.len; break;
        case K_MINPROPS: lf->minprops = op->u.len; break;
        }
    }
    return lf;
}

static int compile_object(cctx_t *c, snode_t *n, json_object *o, oinfo_t *inf)
{
    ops_t *ops = malloc(sizeof *ops);
    if (!ops)
        return schema_cc_fail(c, "out of memory");
    ops->n = 0;
    json_object *v;
    int rc = ERR_SCHEMA;
    if (inf->draft == 7 && json_object_object_get_ex(o, "$ref", &v)) {
        if (compile_ref(c, ops, inf, v, 0))
            goto done;
        goto emit;
    }
    if (((inf->vocab & V_VALIDATION) && compile_assertions(c, ops, o, inf->draft)) ||
        compile_format(c, ops, o, inf->vocab))
        goto done;
    if (json_object_object_get_ex(o, "$ref", &v) && compile_ref(c, ops, inf, v, 0))
        goto done;
    if (inf->draft != 7 && json_object_object_get_ex(o, "$dynamicRef", &v) &&
        compile_ref(c, ops, inf, v, 1))
        goto done;
    if (compile_deps(c, ops, o, inf->draft, inf->vocab))
        goto done;
    if ((inf->vocab & V_APPLICATOR) && compile_applicators(c, ops, o, inf->draft))
        goto done;
    if (compile_props(c, ops, o, inf->vocab) || fold_required(c, ops))
        goto done;
    if (inf->draft != 7 && (inf->vocab & V_UNEVAL)) {
        static const struct { const char *kw; int kind; unsigned t; } ue[] = {
            {"unevaluatedItems", K_UNEVAL_ITEMS, T_ARR},
            {"unevaluatedProperties", K_UNEVAL_PROPS, T_OBJ},
        };
        for (int i = 0; i < 2; i++) {
            sop_t *op;
            if (!json_object_object_get_ex(o, ue[i].kw, &v))
                continue;
            if (!(op = add(c, ops, ue[i].kind, ue[i].t, ue[i].kw)) ||
                !(op->u.sub = sub_node(c, v, ue[i].kw, NULL)))
                goto done;
            n->has_uneval = 1;
        }
    }
emit:
    n->nops = ops->n;
    n->ops = schema_alloc(c->s, (ops->n ? ops->n : 1) * sizeof *n->ops);
    if (!n->ops) {
        schema_cc_fail(c, "out of memory");
        goto done;
    }
    memcpy(n->ops, ops->v, ops->n * sizeof *n->ops);
    n->leaf = 1;
    for (size_t i = 0; i < ops->n; i++)
        n->leaf &= (uint8_t)schema_kind_scalar(ops->v[i].kind);
    if (n->leaf && !(n->lf = leaf_program(c, n))) {
        schema_cc_fail(c, "out of memory");
        goto done;
    }
    rc = 0;
done:
    free(ops);
    return rc;
}

/* The runtime form of a resource; its dynamic anchors are filled in by
 * fill_resources once the compile has settled, since they may be reached only later. */
static sres_t *resource_of(cctx_t *c, oinfo_t *inf)
{
    oinfo_t *ri = inf->resinfo ? inf->resinfo : inf;
    if (!ri->sres && !(ri->sres = schema_alloc(c->s, sizeof *ri->sres)))
        schema_cc_fail(c, "out of memory");
    return ri->sres;
}

static int fill_resource(cctx_t *c, oinfo_t *inf)
{
    size_t nd = 0;
    sres_t *r = inf->sres;
    inf->dyn_done = 1;
    for (dynent_t *d = inf->dyn; d; d = d->next)
        nd++;
    r->dyn_names = schema_alloc(c->s, (nd + 1) * sizeof *r->dyn_names);
    r->dyn_nodes = schema_alloc(c->s, (nd + 1) * sizeof *r->dyn_nodes);
    if (!r->dyn_names || !r->dyn_nodes)
        return schema_cc_fail(c, "out of memory");
    for (dynent_t *d = inf->dyn; d; d = d->next) {
        snode_t *dn = schema_cc_node(c, d->obj);
        if (!dn)
            return ERR_SCHEMA;
        r->dyn_names[r->ndyn] = d->name;
        r->dyn_nodes[r->ndyn++] = dn;
    }
    return 0;
}

snode_t *schema_cc_node(cctx_t *c, json_object *o)
{
    if (c->failed)
        return NULL;
    if (json_object_is_type(o, json_type_boolean))
        return json_object_get_boolean(o) ? c->t_node : c->f_node;
    if (!json_object_is_type(o, json_type_object)) {
        schema_cc_fail(c, "a schema must be an object or a boolean");
        return NULL;
    }
    oinfo_t *inf = schema_cc_info(c, o);
    if (!inf) {
        schema_cc_fail(c, "schema object was not reached by the scan (internal error)");
        return NULL;
    }
    if (inf->node)
        return inf->node;
    if (++c->depth > SCHEMA_MAX_DEPTH) {
        schema_cc_fail(c, "schema nested deeper than %d levels", SCHEMA_MAX_DEPTH);
        return NULL;
    }
    snode_t *n = schema_alloc(c->s, sizeof *n);
    if (!n) {
        schema_cc_fail(c, "out of memory");
        return NULL;
    }
    inf->node = n;
    n->res = resource_of(c, inf);
    int rc = n->res ? compile_object(c, n, o, inf) : ERR_SCHEMA;
    c->depth--;
    return rc ? NULL : n;
}

void schema_free(schema_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nallocs; i++)
        free(s->allocs[i]);
    free(s->allocs);
    for (size_t i = 0; i < s->ncodes; i++)
        pcre2_code_free(s->codes[i]);
    free(s->codes);
    for (size_t i = 0; i < s->ndocs; i++)
        json_object_put(s->docs[i]);
    free(s->docs);
    json_object_put(s->doc);
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mctx);
    free(s);
}

static char *dir_uri(const char *dir)
{
    char *abs = realpath(dir, NULL);
    if (!abs)
        return NULL;
    size_t n = strlen(abs);
    char *u = malloc(n + 16);
    if (u)
        snprintf(u, n + 16, "file://%s%s", abs, n && abs[n - 1] == '/' ? "" : "/");
    free(abs);
    return u;
}

schema_t *schema_compile(json_object *doc, const schema_opts_t *opts, char *errbuf,
                         size_t errlen)
{
    cctx_t c = {.opts = opts, .err = errbuf, .errlen = errlen};
    schema_t *s = calloc(1, sizeof *s);
    if (errbuf && errlen)
        errbuf[0] = 0;
    if (!s) {
        err_set(errbuf, errlen, ERR_NOMEM, "schema: out of memory");
        return NULL;
    }
    c.s = s;
    atomic_flag_clear(&s->md_busy);
    s->max_errors = opts && opts->max_errors > 0 ? opts->max_errors : 1;
    s->format_assert = opts && opts->format_assert;
    s->doc = json_object_get(doc);
    c.t_node = schema_alloc(s, sizeof *c.t_node);
    c.f_node = schema_alloc(s, sizeof *c.f_node);
    s->mctx = pcre2_match_context_create(NULL);
    s->md = pcre2_match_data_create(1, NULL);
    if (!c.t_node || !c.f_node || !s->mctx || !s->md) {
        schema_cc_fail(&c, "out of memory");
        goto fail;
    }
    /* Bounded regex cost: a catastrophic pattern fails the match instead of hanging. */
    pcre2_set_match_limit(s->mctx, 1000000);
    pcre2_set_depth_limit(s->mctx, 10000);
    c.t_node->is_bool = c.f_node->is_bool = 1;
    c.t_node->bool_val = 1;
    if (!json_object_is_type(doc, json_type_object) &&
        !json_object_is_type(doc, json_type_boolean)) {
        schema_cc_fail(&c, "a schema must be an object or a boolean");
        goto fail;
    }
    if (opts && opts->base_dir && !(c.dir_uri = dir_uri(opts->base_dir))) {
        schema_cc_fail(&c, "base_dir %s does not exist", opts->base_dir);
        goto fail;
    }
    int draft = opts && opts->draft == 7 ? 7 : 2020;
    const char *root_uri = c.dir_uri ? c.dir_uri : "agentd:/schema.json";
    if (schema_cc_scan_doc(&c, doc, root_uri, draft))
        goto fail;
    if (!(s->root = schema_cc_node(&c, doc)))
        goto fail;
    /* Compiling anchors may reach new resources; loop until every one is filled. */
    for (int again = 1; again;) {
        again = 0;
        for (size_t i = 0; i < c.ninfos; i++) {
            if (!c.infos[i]->sres || c.infos[i]->dyn_done)
                continue;
            again = 1;
            if (fill_resource(&c, c.infos[i]))
                goto fail;
        }
    }
    schema_cc_free(&c);
    return s;
fail:
    if (!c.failed)
        schema_cc_fail(&c, "invalid schema");
    schema_cc_free(&c);
    schema_free(s);
    return NULL;
}
