/*
 * schema_vctx: validator state shared by schema.c (walk, applicators, results) and
 * schema_assert.c (assertion keywords). Internal.
 */
#ifndef AGENTD_SCHEMA_VCTX_H
#define AGENTD_SCHEMA_VCTX_H

#include "schema_int.h"

typedef struct seg {
    const char *key; /* NULL: array index */
    size_t idx;
} seg_t;



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
    seg_t ipath[SCHEMA_MAX_DEPTH + 8];
    seg_t kpath[SCHEMA_MAX_DEPTH * 2 + 8];
    const sres_t *scope[SCHEMA_MAX_DEPTH + 8];
} vctx_t;

#define COLLECTING(c) (!(c)->quiet && (c)->res && !(c)->full)
#define IPUSH(c, k, i) ((c)->ipath[(c)->ni].key = (k), (c)->ipath[(c)->ni++].idx = (i))
#define KPUSH(c, k, i) ((c)->kpath[(c)->nk].key = (k), (c)->kpath[(c)->nk++].idx = (i))
#define NOIDX ((size_t)-1)

/* What the assertions read from an instance, fetched once per node: each json-c accessor
 * is a call into the shared library, and a string node's type, length, pattern, format
 * and enum checks would otherwise fetch the same string five times. */
typedef struct ival {
    unsigned t;    /* T_* bits */
    const char *s; /* strings */
    size_t len;    /* strings: bytes; arrays: items; objects: members */
    double d;      /* numbers */
} ival_t;

/* Fill v for inst (see ival_t). */
void schema_v_view(json_object *inst, ival_t *v);

/* Record a failure of keyword kw at the current locations (if collecting); returns 1. */
int schema_v_fail(vctx_t *c, const char *kw, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* schema_v_fail with "must be <want types>, not <type of t>". */
int schema_v_fail_type(vctx_t *c, const char *kw, uint32_t want, unsigned t);
/* 1 if re matches s[0..n). */
int schema_v_match(vctx_t *c, const pcre2_code *re, const char *s, size_t n);
/* Leaf fast path: 1 if inst passes every op of n (all schema_kind_scalar); 0 if any
 * fails, and then the caller runs n the ordinary way to report it. */
int schema_v_leaf_ok(vctx_t *c, const snode_t *n, json_object *inst);
/* Assertion keywords (everything but applicators): 0 pass, 1 fail. */
int schema_v_assert(vctx_t *c, const sop_t *op, json_object *inst, const ival_t *v);

#endif
