/*
 * schema_vctx: validator state shared by schema.c (walk, applicators, results) and
 * schema_assert.c (assertion keywords). Internal.
 */
#ifndef AGENTD_SCHEMA_VCTX_H
#define AGENTD_SCHEMA_VCTX_H

#include "schema_int.h"

#include <string.h>

typedef struct seg {
    const char *key; /* NULL: array index */
    size_t idx;
} seg_t;


/* What the assertions read from an instance, fetched once per node: each json-c accessor
 * is a call into the shared library, and a string node's type, length, pattern, format
 * and enum checks would otherwise fetch the same string five times. */
typedef struct ival {
    unsigned t;    /* T_* bits */
    const char *s; /* strings */
    size_t len;    /* strings: bytes; arrays: items; objects: members */
    double d;      /* numbers */
} ival_t;

typedef struct vctx {
    const schema_t *s;
    schema_result_t *res;
    int max;
    int quiet;
    int full;
    int abort;
    int nomem;
    int depth;
    pcre2_match_data *md;
    int md_own, md_shared;
    size_t ni, nk, nscope;
    /* The leaf fast path's last view and failed pattern (schema_v_leaf_ok), which the
     * report of a leaf that failed it starts from (leaf_walk) instead of redoing them. */
    ival_t lv;
    const sop_t *pm_op; /* the pattern op that failed ... */
    const char *pm_s;   /* ... on this string */
    seg_t ipath[SCHEMA_MAX_DEPTH + 8];
    seg_t kpath[SCHEMA_MAX_DEPTH * 2 + 8];
    const sres_t *scope[SCHEMA_MAX_DEPTH + 8];
} vctx_t;

#define COLLECTING(c) (!(c)->quiet && (c)->res && !(c)->full)
#define IPUSH(c, k, i) ((c)->ipath[(c)->ni].key = (k), (c)->ipath[(c)->ni++].idx = (i))
#define KPUSH(c, k, i) ((c)->kpath[(c)->nk].key = (k), (c)->kpath[(c)->nk++].idx = (i))
#define NOIDX ((size_t)-1)


/* Fill v for inst (see ival_t). */
void schema_v_view(json_object *inst, ival_t *v);

/* Record a failure of keyword kw at the current locations (if collecting); returns 1. */
int schema_v_fail(vctx_t *c, const char *kw, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* schema_v_fail for a fmt whose only conversions are na (1 or 2) %s, with arguments a0
 * (and a1), without reading a va_list or scanning fmt. Those in mask ref (bit i: argument
 * i) live as long as the schema -- its strings or static text -- and are kept as
 * pointers, not copied. */
int schema_v_fail_s(vctx_t *c, uint32_t ref, const char *kw, const char *fmt, size_t na,
                    const char *a0, const char *a1);
/* schema_v_fail with "must be <want types>, not <type of t>". */
int schema_v_fail_type(vctx_t *c, const char *kw, uint32_t want, unsigned t);
/* 1 if re matches s[0..n). */
int schema_v_match(vctx_t *c, const pcre2_code *re, const char *s, size_t n);
/* Leaf fast path: 1 if inst passes every op of n (all schema_kind_scalar); 0 if any
 * fails, and then the caller runs n the ordinary way to report it. */
int schema_v_leaf_ok(vctx_t *c, const snode_t *n, json_object *inst);
/* Assertion keywords (everything but applicators): 0 pass, 1 fail. */
int schema_v_assert(vctx_t *c, const sop_t *op, json_object *inst, const ival_t *v);
/* The rest of schema_v_assert once its scalar check (schema_v_scalar_ok) did not pass. */
int schema_v_report(vctx_t *c, const sop_t *op, json_object *inst, const ival_t *v);

/* Code points in s[0..n), counting stops once past stop: the length checks only need
 * to know which side of their bound a string falls, and a code point takes at least one
 * byte, so a byte count within the bound settles most strings without this loop. */
static inline size_t schema_utf8_len(const char *s, size_t n, size_t stop)
{
    size_t cp = 0;
    for (size_t i = 0; i < n && cp <= stop; i++)
        cp += ((unsigned char)s[i] & 0xC0) != 0x80;
    return cp;
}

/* The checks that read only the instance view: 1 pass, 0 fail, -1 not one of them.
 * Inlined into its callers: the keyword loop, the leaf fast path and the tree walk
 * (schema_fast.c). */
static inline __attribute__((always_inline)) int schema_v_scalar_ok(vctx_t *c, const sop_t *op,
                                                                    const ival_t *v)
{
    switch (op->kind) {
    case K_TYPE: return (op->u.types & v->t) != 0;
    case K_ENUM_STR:
        if (v->t == T_STR)
            for (size_t i = 0; i < op->u.strs.n; i++)
                if (op->u.strs.lens[i] == v->len && !memcmp(op->u.strs.v[i], v->s, v->len))
                    return 1;
        return 0;
    case K_MAX: return v->d <= op->u.num;
    case K_XMAX: return v->d < op->u.num;
    case K_MIN: return v->d >= op->u.num;
    case K_XMIN: return v->d > op->u.num;
    case K_MAXLEN: return v->len <= op->u.len || schema_utf8_len(v->s, v->len, op->u.len) <= op->u.len;
    case K_MINLEN: /* a code point takes at most 4 bytes */
        return v->len >= op->u.len &&
               (v->len / 4 >= op->u.len || schema_utf8_len(v->s, v->len, op->u.len) >= op->u.len);
    case K_PATTERN: return schema_v_match(c, op->u.pat.re, v->s, v->len);
    case K_FORMAT: return op->u.fmt.fn(v->s, v->len);
    case K_MAXITEMS:
    case K_MAXPROPS: return v->len <= op->u.len;
    case K_MINITEMS:
    case K_MINPROPS: return v->len >= op->u.len;
    default: return -1;
    }
}

/* Index of property k in p, or -1. */
static inline long schema_prop_lookup(const sprops_t *p, const char *k, size_t kl)
{
    if (!p->hash) {
        for (size_t i = 0; i < p->n; i++) {
            if (p->lens[i] != kl)
                continue;
            const char *a = p->names[i];
            size_t j = 0;
            while (j < kl && a[j] == k[j]) /* short keys: cheaper than a call to memcmp */
                j++;
            if (j == kl)
                return (long)i;
        }
        return -1;
    }
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < kl; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    for (size_t s = h & (p->hcap - 1);; s = (s + 1) & (p->hcap - 1)) {
        uint32_t e = p->hash[s];
        if (!e)
            return -1;
        if (p->lens[e - 1] == kl && !memcmp(p->names[e - 1], k, kl))
            return (long)e - 1;
    }
}

/* 1 if an instance viewed as v passes every check of leaf program L (snode.lf). */
static inline __attribute__((always_inline)) int schema_v_leaf_prog(vctx_t *c, const sleaf_t *L,
                                                                    const ival_t *v)
{
    unsigned t = v->t;
    if (!(t & L->types))
        return 0;
    if (L->enm && schema_v_scalar_ok(c, L->enm, v) != 1)
        return 0;
    if (t & T_NUM)
        return v->d >= L->min && v->d <= L->max && v->d > L->xmin && v->d < L->xmax;
    if (t == T_STR) {
        /* Lengths in code points: a byte count inside the bounds settles most strings
         * (a code point takes one to four bytes). */
        if (v->len > L->maxlen && schema_utf8_len(v->s, v->len, L->maxlen) > L->maxlen)
            return 0;
        if (v->len / 4 < L->minlen &&
            (v->len < L->minlen || schema_utf8_len(v->s, v->len, L->minlen) < L->minlen))
            return 0;
        if (L->pat && !schema_v_match(c, L->pat->u.pat.re, v->s, v->len)) {
            c->pm_op = L->pat;
            c->pm_s = v->s;
            return 0;
        }
        return !L->fmt || L->fmt->u.fmt.fn(v->s, v->len);
    }
    if (t == T_ARR)
        return v->len >= L->minitems && v->len <= L->maxitems;
    if (t == T_OBJ)
        return v->len >= L->minprops && v->len <= L->maxprops;
    return 1;
}

/* Start a validation with c (the result, if any, cleared; the shared match data taken if
 * free) and end it (error pointers fixed, match data given back or freed). */
void schema_v_init(vctx_t *c, const schema_t *s, schema_result_t *res, int max);
void schema_v_done(vctx_t *c);
/* Empty r (no errors). */
void schema_result_reset(schema_result_t *r);

#endif
