/*
 * schema_assert: the assertion keywords -- type, enum, const, numeric bounds, string
 * lengths and patterns, formats, array and object sizes, uniqueItems, required and
 * dependentRequired. Each returns 0 or 1 and reports through schema_v_fail, which
 * formats a message only when errors are being collected.
 */
#include "schema_vctx.h"
#include "schema_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_names(uint32_t bits, char *buf, size_t len)
{
    static const struct { uint32_t b; const char *n; } tn[] = {
        {T_NULL, "null"}, {T_BOOL, "boolean"}, {T_OBJ, "object"}, {T_ARR, "array"},
        {T_STR, "string"}, {T_NUM, "number"}, {T_INT, "integer"},
    };
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof tn / sizeof tn[0]; i++) {
        if (!(bits & tn[i].b) || (tn[i].b == T_INT && (bits & T_NUM)))
            continue;
        int w = snprintf(buf + o, len - o, "%s%s", o ? " or " : "", tn[i].n);
        if (w < 0 || (size_t)w >= len - o)
            break;
        o += (size_t)w;
    }
    return buf;
}

static const char *inst_type_name(unsigned t)
{
    if (t & T_INT)
        return "integer";
    static const struct { unsigned b; const char *n; } tn[] = {
        {T_NULL, "null"}, {T_BOOL, "boolean"}, {T_OBJ, "object"}, {T_ARR, "array"},
        {T_STR, "string"}, {T_NUM, "number"},
    };
    for (size_t i = 0; i < sizeof tn / sizeof tn[0]; i++)
        if (t & tn[i].b)
            return tn[i].n;
    return "?";
}

static int is_multiple(json_object *inst, double m)
{
    if (json_object_is_type(inst, json_type_int) && m == floor(m) && m < 9e18) {
        int64_t x = json_object_get_int64(inst), mi = (int64_t)m;
        return x % mi == 0;
    }
    double x = json_object_get_double(inst);
    double q = x / m;
    if (!isfinite(q))
        return fmod(x, m) == 0;
    return fabs(q - nearbyint(q)) <= 1e-9 * (fabs(q) > 1 ? fabs(q) : 1);
}

static int cmp_hash(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* 1 if all items distinct; else 0 and *i, *j the first equal pair found. */
static int unique(vctx_t *c, json_object *arr, size_t *pi, size_t *pj)
{
    size_t n = json_object_array_length(arr);
    if (n <= 24) {
        json_object **v = (json_object **)json_object_get_array(arr)->array;
        uint64_t h[24];
        for (size_t i = 0; i < n; i++)
            h[i] = schema_json_quick(v[i]);
        /* Equal items have equal quick hashes: none alike, none equal. Else the finer
         * hashes (objects by every member), then equality, pair by pair. */
        size_t alike = 0;
        for (size_t i = 0; i < n && !alike; i++)
            for (size_t j = i + 1; j < n && !alike; j++)
                alike = h[i] == h[j];
        if (!alike)
            return 1;
        for (size_t i = 0; i < n; i++)
            if (json_object_is_type(v[i], json_type_object))
                h[i] = schema_json_shallow(v[i]);
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (h[i] == h[j] && schema_json_equal(v[i], v[j])) {
                    *pi = i;
                    *pj = j;
                    return 0;
                }
        return 1;
    }
    /* Sort by hash so cost stays O(n log n) on huge arrays. */
    uint64_t *h = malloc(n * 2 * sizeof *h);
    if (!h) {
        c->nomem = c->abort = 1;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        h[2 * i] = schema_json_hash(json_object_array_get_idx(arr, i));
        h[2 * i + 1] = i;
    }
    qsort(h, n, 2 * sizeof *h, cmp_hash);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++)
        for (size_t j = i + 1; j < n && h[2 * j] == h[2 * i] && ok; j++)
            if (schema_json_equal(json_object_array_get_idx(arr, h[2 * i + 1]),
                                  json_object_array_get_idx(arr, h[2 * j + 1]))) {
                *pi = h[2 * i + 1] < h[2 * j + 1] ? h[2 * i + 1] : h[2 * j + 1];
                *pj = h[2 * i + 1] < h[2 * j + 1] ? h[2 * j + 1] : h[2 * i + 1];
                ok = 0;
            }
    free(h);
    return ok;
}

int schema_v_match(vctx_t *c, const pcre2_code *re, const char *s, size_t n)
{
    if (!c->md) {
        c->md = pcre2_match_data_create(1, NULL);
        if (!c->md) {
            c->nomem = c->abort = 1;
            return 0;
        }
        c->md_own = 1;
    }
    return schema_regex_match(c->s, c->md, re, s, n) == 1;
}

static int v_enum(json_object *inst, json_object *arr)
{
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++)
        if (schema_json_equal(inst, json_object_array_get_idx(arr, i)))
            return 1;
    return 0;
}

static int fail_enum(vctx_t *c, json_object *arr)
{
    if (!COLLECTING(c))
        return 1;
    char buf[400];
    size_t o = 0, n = json_object_array_length(arr);
    for (size_t i = 0; i < n && o + 70 < sizeof buf; i++) {
        if (i)
            o += (size_t)snprintf(buf + o, sizeof buf - o, ", ");
        o += schema_fmt_value(buf + o, sizeof buf - o, json_object_array_get_idx(arr, i));
        if (i + 1 < n && o + 70 >= sizeof buf)
            snprintf(buf + o, sizeof buf - o, ", ...");
    }
    return schema_v_fail_s(c, 0, "enum", "must be one of: %s", 1, buf, NULL);
}

int schema_v_fail_type(vctx_t *c, const char *kw, uint32_t want, unsigned t)
{
    char buf[80];
    return schema_v_fail_s(c, 2, kw, "must be %s, not %s", 2, type_names(want, buf, sizeof buf),
                           inst_type_name(t));
}

void schema_v_view(json_object *inst, ival_t *v)
{
    switch (json_object_get_type(inst)) {
    case json_type_null: v->t = T_NULL; break;
    case json_type_boolean: v->t = T_BOOL; break;
    case json_type_object:
        v->t = T_OBJ;
        v->len = (size_t)json_object_object_length(inst);
        break;
    case json_type_array:
        v->t = T_ARR;
        v->len = json_object_array_length(inst);
        break;
    case json_type_string:
        v->t = T_STR;
        v->s = json_object_get_string(inst);
        v->len = (size_t)json_object_get_string_len(inst);
        break;
    case json_type_int:
        v->t = T_NUM | T_INT;
        v->d = json_object_get_double(inst);
        break;
    case json_type_double:
        v->d = json_object_get_double(inst);
        /* isfinite(d) && d == floor(d), cheaper: below 2^52 a double is integral when
         * truncating it changes nothing; from there on every finite double is. */
        v->t = (fabs(v->d) < 4503599627370496.0 ? v->d == (double)(long long)v->d
                                                 : isfinite(v->d))
                   ? (T_NUM | T_INT)
                   : T_NUM;
        break;
    default: v->t = T_NULL; break;
    }
}

int schema_v_leaf_ok(vctx_t *c, const snode_t *n, json_object *inst)
{
    /* The view is kept in c: a leaf that fails is reported from it (leaf_walk). */
    schema_v_view(inst, &c->lv);
    return schema_v_leaf_prog(c, n->lf, &c->lv);
}

int schema_v_assert(vctx_t *c, const sop_t *op, json_object *inst, const ival_t *v)
{
    int ok = schema_v_scalar_ok(c, op, v);
    if (ok == 1)
        return 0;
    return schema_v_report(c, op, inst, v);
}

int schema_v_report(vctx_t *c, const sop_t *op, json_object *inst, const ival_t *v)
{
    unsigned t = v->t;
    char nb[48];
    if (c->abort)
        return 1;
    switch (op->kind) {
    case K_TYPE: return schema_v_fail_type(c, op->kw, op->u.types, t);
    case K_ENUM: return v_enum(inst, op->u.val) ? 0 : fail_enum(c, op->u.val);
    case K_ENUM_STR: return fail_enum(c, op->u.strs.val);
    case K_CONST:
        if (schema_json_equal(inst, op->u.val))
            return 0;
        schema_fmt_value(nb, sizeof nb, op->u.val);
        return schema_v_fail(c, op->kw, "must be %s", nb);
    case K_MULTOF:
        if (is_multiple(inst, op->u.num))
            return 0;
        return schema_v_fail_s(c, 1, op->kw, "must be a multiple of %s", 1, op->u.bound.txt, NULL);
    case K_MAX:
    case K_XMAX:
    case K_MIN:
    case K_XMIN: {
        const char *rel = op->kind == K_MAX ? "<=" : op->kind == K_XMAX ? "<"
                        : op->kind == K_MIN ? ">=" : ">";
        return schema_v_fail_s(c, 3, op->kw, "must be %s %s", 2, rel, op->u.bound.txt);
    }
    case K_MAXLEN: return schema_v_fail(c, op->kw, "must be at most %zu characters", op->u.len);
    case K_MINLEN: return schema_v_fail(c, op->kw, "must be at least %zu characters", op->u.len);
    case K_PATTERN:
        return schema_v_fail_s(c, 1, op->kw, "must match pattern \"%s\"", 1, op->u.pat.src, NULL);
    case K_FORMAT:
        return schema_v_fail_s(c, 1, op->kw, "must be a valid %s", 1, op->u.fmt.name, NULL);
    case K_MAXITEMS: return schema_v_fail(c, op->kw, "must have at most %zu items", op->u.len);
    case K_MINITEMS: return schema_v_fail(c, op->kw, "must have at least %zu items", op->u.len);
    case K_MAXPROPS:
        return schema_v_fail(c, op->kw, "must have at most %zu properties", op->u.len);
    case K_MINPROPS:
        return schema_v_fail(c, op->kw, "must have at least %zu properties", op->u.len);
    case K_UNIQUE: {
        size_t i = 0, j = 0;
        if (unique(c, inst, &i, &j))
            return 0;
        return schema_v_fail(c, op->kw, "must not contain duplicates (items %zu and %zu are equal)",
                             i, j);
    }
    case K_REQUIRED: {
        int bad = 0;
        for (size_t i = 0; i < op->u.names.n; i++) {
            if (json_object_object_get_ex(inst, op->u.names.v[i], NULL))
                continue;
            bad = schema_v_fail_s(c, 1, op->kw, "missing required property \"%s\"", 1,
                                  op->u.names.v[i], NULL);
            if (!COLLECTING(c))
                break;
        }
        return bad;
    }
    case K_DEPREQ: {
        int bad = 0;
        for (size_t i = 0; i < op->u.dep.n && !(bad && !COLLECTING(c)); i++) {
            if (!json_object_object_get_ex(inst, op->u.dep.keys[i], NULL))
                continue;
            const struct { const char **v; size_t n; } *names = op->u.dep.v[i];
            for (size_t j = 0; j < names->n; j++) {
                if (json_object_object_get_ex(inst, names->v[j], NULL))
                    continue;
                bad = schema_v_fail_s(c, 3, op->kw,
                                      "property \"%s\" is required when \"%s\" is present", 2,
                                      names->v[j], op->u.dep.keys[i]);
                if (!COLLECTING(c))
                    break;
            }
        }
        return bad;
    }
    }
    return 0;
}
