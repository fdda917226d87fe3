/*
 * schema: the validator -- walks compiled snodes over a json-c instance.
 *
 * The valid path allocates nothing: instance and schema locations are kept as stacks
 * of borrowed pointers and only turned into JSON pointers when an error is recorded.
 * "Quiet" evaluation (anyOf/oneOf/not/if/contains branches, or no result collector)
 * stops at the first failure; collecting evaluation keeps going until max_errors.
 *
 * unevaluatedProperties/unevaluatedItems need to know which members the node's other
 * keywords (and in-place sub-schemas that passed) evaluated. A node that has one owns
 * an ev_t bit set indexed by member position; in-place applicators pass it down, and
 * branches that fail have their bits discarded. Nodes without unevaluated* pass NULL
 * and pay nothing.
 *
 * A validation deeper than SCHEMA_MAX_DEPTH (deep instances or $ref cycles that never
 * consume the instance) aborts with an error rather than exhausting the C stack.
 */
#include "schema_vctx.h"

#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Errors live in one text arena reused from call to call (no allocation per error once
 * it has grown). Validation records them (record): per error an lrec_t -- keyword,
 * message format and arguments, the schema location's segments -- and the instance
 * pointer, already written; four offsets in off (record, then instance pointer, keyword
 * location and message once formatted). The keyword locations and messages are written
 * by result_format when schema_result_get first asks for them (schema_check wants no
 * keyword locations), after the records; the pointers in errs are set from the offsets
 * then, since the arena may move while it grows. */
struct schema_result {
    schema_error_t *errs;
    size_t *off; /* 4 per error: record, instance pointer, keyword location, message */
    size_t n, cap;
    char *text;
    size_t tlen, tcap;
    int fmt; /* errs formatted */
};

typedef struct lrec {
    const char *kw, *fmt; /* the schema's (or static) */
    size_t ip;            /* offset of the instance pointer, written when recorded */
    uint32_t nk, na;      /* followed by seg_t[nk], larg_t[na] */
    uint32_t strs;        /* bit i: argument i is a %s */
    uint32_t refs;        /* bit i: that %s is the caller's text (the schema's), not a copy */
} lrec_t;

typedef union larg {
    const char *s; /* %s, when formatting (recorded: the offset of its copy, or refs) */
    size_t z;      /* %zu */
} larg_t;

#define LREC_KPATH(e) ((seg_t *)((e) + 1))
#define LREC_ARGS(e)  ((larg_t *)(LREC_KPATH(e) + (e)->nk))

typedef struct ev {
    uint64_t *bits;
    size_t nw;
    int all;
    uint64_t inl[4];
} ev_t;

static int v_node(vctx_t *c, const snode_t *n, json_object *inst, ev_t *ev);

/* ---- annotation bit sets ---- */

static int ev_init(vctx_t *c, ev_t *e, size_t n)
{
    e->all = 0;
    e->nw = (n + 63) / 64;
    if (e->nw <= 4) {
        e->bits = e->inl;
        memset(e->inl, 0, sizeof e->inl);
        return 0;
    }
    e->bits = calloc(e->nw, sizeof *e->bits);
    if (!e->bits) {
        c->nomem = c->abort = 1;
        e->nw = 0;
        e->bits = e->inl;
        return -1;
    }
    return 0;
}

static void ev_done(ev_t *e)
{
    if (e->bits != e->inl)
        free(e->bits);
}

static void ev_mark(ev_t *e, size_t i)
{
    if (i / 64 < e->nw)
        e->bits[i / 64] |= 1ull << (i % 64);
}

static int ev_has(const ev_t *e, size_t i)
{
    return e->all || (i / 64 < e->nw && (e->bits[i / 64] >> (i % 64) & 1));
}

static void ev_merge(ev_t *dst, const ev_t *src)
{
    dst->all |= src->all;
    for (size_t i = 0; i < dst->nw && i < src->nw; i++)
        dst->bits[i] |= src->bits[i];
}

static size_t inst_size(json_object *inst)
{
    if (json_object_is_type(inst, json_type_object))
        return (size_t)json_object_object_length(inst);
    if (json_object_is_type(inst, json_type_array))
        return json_object_array_length(inst);
    return 0;
}

/* ---- errors ---- */

/* Decimal digits of x at buf (room for 20); returns their count. */
static size_t put_uint(char *buf, size_t x)
{
    if (x < 10) { /* most indexes */
        buf[0] = (char)('0' + x);
        return 1;
    }
    char t[24];
    size_t n = 0;
    do {
        t[n++] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    for (size_t i = 0; i < n; i++)
        buf[i] = t[n - 1 - i];
    return n;
}

static size_t put_ptr(char *buf, size_t cap, size_t o, const seg_t *segs, size_t n)
{
    for (size_t i = 0; i < n && o + 2 < cap; i++) {
        buf[o++] = '/';
        if (!segs[i].key) {
            if (o + 22 >= cap)
                break;
            o += put_uint(buf + o, segs[i].idx);
            continue;
        }
        /* The part before any '~' or '/' (mostly the whole key) in one copy, the rest
         * escaped byte by byte. */
        const char *p = segs[i].key;
        size_t plain = strcspn(p, "~/");
        if (plain < cap - o - 3) {
            memcpy(buf + o, p, plain);
            o += plain;
            p += plain;
        }
        for (; *p && o + 3 < cap; p++) {
            if (*p == '~' || *p == '/') {
                buf[o++] = '~';
                buf[o++] = *p == '~' ? '0' : '1';
            } else {
                buf[o++] = *p;
            }
        }
        if (segs[i].idx != NOIDX && o + 23 < cap) {
            buf[o++] = '/';
            o += put_uint(buf + o, segs[i].idx);
        }
    }
    buf[o] = 0;
    return o;
}

/* The message of fmt, which uses only %s and %zu (record checks), with args a (a %s
 * argument: its text; a %zu: its value). Returns the length written (cap > 0). */
static size_t fmt_msg(char *buf, size_t cap, const char *fmt, const larg_t *a)
{
    size_t o = 0;
    const char *f = fmt;
    while (*f) {
        const char *piece = f;
        size_t n;
        if (*f != '%') {
            f = strchrnul(f, '%'); /* literal text up to the next conversion */
            n = (size_t)(f - piece);
        } else if (f[1] == 's') {
            piece = (a++)->s;
            n = strlen(piece);
            f += 2;
        } else {
            size_t x = (a++)->z; /* %zu */
            if (o + 21 < cap)
                o += put_uint(buf + o, x);
            f += 3;
            continue;
        }
        if (n > cap - 1 - o)
            n = cap - 1 - o;
        memcpy(buf + o, piece, n);
        o += n;
    }
    buf[o] = 0;
    return o;
}

/* Longest JSON pointer and message (longer ones are cut); most message arguments kept. */
enum { PTR_MAX = 1024, MSG_MAX = 512, MAX_ARGS = 8 };

/* Room for n more bytes at the arena's end (which may move); 0 or -1. */
static int reserve(schema_result_t *r, size_t n)
{
    if (r->tlen + n <= r->tcap)
        return 0;
    size_t ncap = r->tcap ? r->tcap * 2 : 4096;
    while (ncap < r->tlen + n)
        ncap *= 2;
    char *t = realloc(r->text, ncap);
    if (!t)
        return -1;
    r->text = t;
    r->tcap = ncap;
    return 0;
}

/* A copy of the NUL-terminated s at the arena's end; its offset, or 0 on failure (no
 * copy starts at 0: a record does). */
static size_t keep(schema_result_t *r, const char *s)
{
    size_t n = strlen(s) + 1;
    if (reserve(r, n))
        return 0;
    size_t o = r->tlen;
    memcpy(r->text + o, s, n);
    r->tlen += n;
    return o;
}

/* Append an error at the current locations, mostly unformatted: its instance pointer is
 * written now (that copies the instance's keys, which may be gone when it is read), the
 * rest recorded -- keyword, message format and its na arguments (bit i of strs: argument
 * i is a %s, in av[i], else a %zu, in az[i]; a %s is copied -- some are on the caller's
 * stack -- unless bit i of ref says it is the schema's text, which outlives the errors)
 * and the schema location's segments (the schema's). */
static int record(vctx_t *c, const char *kw, const char *fmt, size_t na, uint32_t strs,
                  uint32_t ref, const char *const *av, const size_t *az)
{
    schema_result_t *r = c->res;
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 8;
        schema_error_t *e = realloc(r->errs, ncap * sizeof *e);
        if (!e)
            return -1;
        r->errs = e;
        size_t *off = realloc(r->off, ncap * 4 * sizeof *off);
        if (!off)
            return -1;
        r->off = off;
        r->cap = ncap;
    }
    size_t base = (r->tlen + 7) & ~(size_t)7;
    size_t hdr = sizeof(lrec_t) + c->nk * sizeof(seg_t) + na * sizeof(larg_t);
    if (reserve(r, base - r->tlen + hdr + PTR_MAX))
        return -1;
    lrec_t *e = (lrec_t *)(r->text + base);
    e->kw = kw;
    e->fmt = fmt;
    e->ip = base + hdr;
    e->nk = (uint32_t)c->nk;
    e->na = (uint32_t)na;
    e->strs = strs;
    e->refs = ref &= strs;
    memcpy(LREC_KPATH(e), c->kpath, c->nk * sizeof(seg_t));
    r->tlen = e->ip + put_ptr(r->text + e->ip, PTR_MAX, 0, c->ipath, c->ni) + 1;
    for (size_t i = 0; i < na; i++) {
        larg_t v;
        if (!(strs >> i & 1))
            v.z = az[i];
        else if (ref >> i & 1)
            v.s = av[i];
        else if (!(v.z = keep(r, av[i])))
            return -1;
        /* the arena may have moved */
        LREC_ARGS((lrec_t *)(r->text + base))[i] = v;
    }
    r->off[r->n * 4] = base;
    r->n++;
    r->fmt = 0;
    return 0;
}

/* record with the arguments of fmt read from ap: only %s and %zu are kept as they are; a
 * message with any other conversion (or too many) is formatted now, as one %s. */
static int record_va(vctx_t *c, const char *kw, const char *fmt, va_list ap)
{
    const char *av[MAX_ARGS];
    size_t az[MAX_ARGS];
    size_t na = 0;
    uint32_t strs = 0;
    char eager[MSG_MAX];
    va_list a0;
    va_copy(a0, ap);
    for (const char *f = strchr(fmt, '%'); f; f = strchr(f, '%')) {
        if (na == MAX_ARGS || (f[1] != 's' && (f[1] != 'z' || f[2] != 'u'))) {
            vsnprintf(eager, sizeof eager, fmt, a0);
            fmt = "%s";
            av[0] = eager;
            strs = na = 1;
            break;
        }
        if (f[1] == 's') {
            strs |= 1u << na;
            av[na++] = va_arg(ap, const char *);
            f += 2;
        } else {
            az[na++] = va_arg(ap, size_t);
            f += 3;
        }
    }
    va_end(a0);
    return record(c, kw, fmt, na, strs, 0, av, az);
}

/* Format every recorded error's keyword location (only if kloc, else "") and message, as
 * text after the records, and point errs at them; -1 if memory ran out. */
static int result_format(schema_result_t *r, int kloc)
{
    larg_t args[MAX_ARGS];
    for (size_t i = 0; i < r->n; i++) {
        if (reserve(r, PTR_MAX + MSG_MAX))
            return -1;
        lrec_t *e = (lrec_t *)(r->text + r->off[i * 4]);
        char *kl = r->text + r->tlen;
        size_t lk = kloc ? put_ptr(kl, PTR_MAX, 0, LREC_KPATH(e), e->nk) : 0;
        kl[lk] = 0;
        if (kloc && e->kw && lk + 2 < PTR_MAX) {
            kl[lk++] = '/';
            size_t w = strlen(e->kw);
            if (w > PTR_MAX - lk - 1)
                w = PTR_MAX - lk - 1;
            memcpy(kl + lk, e->kw, w);
            lk += w;
            kl[lk] = 0;
        }
        lk++;
        /* %s arguments: offsets of their copies become pointers */
        for (size_t j = 0; j < e->na; j++) {
            args[j] = LREC_ARGS(e)[j];
            if ((e->strs & ~e->refs) >> j & 1)
                args[j].s = r->text + args[j].z;
        }
        size_t lm = fmt_msg(kl + lk, MSG_MAX, e->fmt, args) + 1;
        r->off[i * 4 + 1] = e->ip;
        r->off[i * 4 + 2] = r->tlen;
        r->off[i * 4 + 3] = r->tlen + lk;
        r->tlen += lk + lm;
    }
    /* The arena has stopped moving: offsets become pointers. */
    for (size_t i = 0; i < r->n; i++) {
        r->errs[i].instance_ptr = r->text + r->off[i * 4 + 1];
        r->errs[i].keyword_loc = r->text + r->off[i * 4 + 2];
        r->errs[i].message = r->text + r->off[i * 4 + 3];
    }
    r->fmt = 1;
    return 0;
}

static void recorded(vctx_t *c, int rc)
{
    if (rc != 0)
        c->nomem = c->abort = 1;
    if (c->res->n >= (size_t)c->max)
        c->full = 1;
}

int schema_v_fail(vctx_t *c, const char *kw, const char *fmt, ...)
{
    if (!COLLECTING(c))
        return 1;
    va_list ap;
    va_start(ap, fmt);
    int rc = record_va(c, kw, fmt, ap);
    va_end(ap);
    recorded(c, rc);
    return 1;
}

int schema_v_fail_s(vctx_t *c, uint32_t ref, const char *kw, const char *fmt, size_t na,
                    const char *a0, const char *a1)
{
    if (!COLLECTING(c))
        return 1;
    const char *av[2] = {a0, a1};
    recorded(c, record(c, kw, fmt, na, na == 1 ? 1 : 3, ref, av, NULL));
    return 1;
}

/* ---- assertions ---- */

/* ---- applicators ---- */

/* Run sub-schema n quietly (its failure is not an error by itself). */
static int quiet(vctx_t *c, const snode_t *n, json_object *inst, ev_t *ev)
{
    c->quiet++;
    int r = v_node(c, n, inst, ev);
    c->quiet--;
    return r;
}

/* Quiet branch whose annotations count only if it passes. */
static int branch(vctx_t *c, const snode_t *n, json_object *inst, ev_t *ev)
{
    if (!ev)
        return quiet(c, n, inst, NULL);
    ev_t t;
    ev_init(c, &t, inst_size(inst));
    int r = quiet(c, n, inst, &t);
    if (!r)
        ev_merge(ev, &t);
    ev_done(&t);
    return r;
}

/* Sub-schema n at keyword kw (index idx) over inst, the ordinary way. */
static int sub_walk(vctx_t *c, const snode_t *n, json_object *inst, ev_t *ev, const char *kw,
                    size_t idx)
{
    KPUSH(c, kw, idx);
    int r = v_node(c, n, inst, ev);
    c->nk--;
    return r;
}

/* Leaf n, which failed the fast path, at keyword kw (index idx): its checks one by one
 * to report each failure, as v_node would, without what a leaf does not need (dynamic
 * scope, annotations, applicators). */
static int leaf_walk(vctx_t *c, const snode_t *n, json_object *inst, const char *kw, size_t idx)
{
    if (n->is_bool || c->depth >= SCHEMA_MAX_DEPTH ||
        c->nk + 5 >= sizeof c->kpath / sizeof c->kpath[0])
        return sub_walk(c, n, inst, NULL, kw, idx); /* v_node reports the depth */
    KPUSH(c, kw, idx);
    /* The fast path has just viewed inst (c->lv) and may have matched a pattern on it:
     * that match failed, it is not run again. */
    ival_t iv = c->lv;
    const sop_t *pm = iv.t == T_STR && c->pm_s == iv.s ? c->pm_op : NULL;
    c->pm_op = NULL;
    int bad = 0;
    for (size_t i = 0; i < n->nops; i++) {
        const sop_t *op = &n->ops[i];
        if (!(op->tmask & iv.t))
            continue;
        /* the checks that pass are settled here, without a call */
        if (op != pm && schema_v_scalar_ok(c, op, &iv) == 1)
            continue;
        if (schema_v_report(c, op, inst, &iv)) {
            bad = 1;
            if (!COLLECTING(c) || c->abort)
                break;
        }
    }
    c->nk--;
    return bad || c->abort;
}

static int sub(vctx_t *c, const snode_t *n, json_object *inst, ev_t *ev, const char *kw,
               size_t idx)
{
    if (n->leaf) {
        if (schema_v_leaf_ok(c, n, inst))
            return 0;
        if (!COLLECTING(c)) /* the verdict is all a quiet caller wants */
            return 1;
        return leaf_walk(c, n, inst, kw, idx);
    }
    return sub_walk(c, n, inst, ev, kw, idx);
}

static const snode_t *dyn_target(vctx_t *c, const sop_t *op)
{
    if (!op->u.dyn.anchor)
        return op->u.dyn.target;
    for (size_t i = 0; i < c->nscope; i++) {
        const sres_t *r = c->scope[i];
        for (size_t j = 0; j < r->ndyn; j++)
            if (!strcmp(r->dyn_names[j], op->u.dyn.anchor))
                return r->dyn_nodes[j];
    }
    return op->u.dyn.target;
}

/* No branch of anyOf/oneOf matched. When every branch starts with "type" and none
 * admits the instance's type -- the common {"anyOf": [{"type": "string"},
 * {"type": "null"}]} -- say which types would do instead of naming the keyword. */
static int fail_branches(vctx_t *c, const sop_t *op, json_object *inst, const char *generic)
{
    if (!COLLECTING(c))
        return 1;
    uint32_t want = 0;
    for (size_t i = 0; i < op->u.subs.n; i++) {
        const snode_t *b = op->u.subs.v[i];
        if (b->is_bool || !b->nops || b->ops[0].kind != K_TYPE)
            return schema_v_fail_s(c, 1, op->kw, "%s", 1, generic, NULL);
        want |= b->ops[0].u.types;
    }
    unsigned t = schema_type_of(inst);
    if (want & t)
        return schema_v_fail_s(c, 1, op->kw, "%s", 1, generic, NULL);
    return schema_v_fail_type(c, op->kw, want, t);
}

static int v_lists(vctx_t *c, const sop_t *op, json_object *inst, ev_t *ev)
{
    size_t n = op->u.subs.n, ok = 0, first = 0, second = 0;
    int bad = 0;
    switch (op->kind) {
    case K_ALLOF:
        for (size_t i = 0; i < n; i++) {
            bad |= sub(c, op->u.subs.v[i], inst, ev, op->kw, i);
            if (bad && !COLLECTING(c))
                break;
        }
        return bad;
    case K_ANYOF:
        for (size_t i = 0; i < n && !c->abort; i++) {
            if (!branch(c, op->u.subs.v[i], inst, ev)) {
                ok++;
                if (!ev)
                    break;
            }
        }
        if (ok || c->abort)
            return c->abort;
        return fail_branches(c, op, inst, "must match at least one schema in anyOf");
    default: /* K_ONEOF */
        for (size_t i = 0; i < n && !c->abort; i++) {
            if (!branch(c, op->u.subs.v[i], inst, ev)) {
                if (ok++ == 0)
                    first = i;
                else
                    second = i;
                if (ok > 1 && !ev)
                    break;
            }
        }
        if (ok == 1 || c->abort)
            return c->abort;
        if (!ok)
            return fail_branches(c, op, inst,
                                 "must match exactly one schema in oneOf, but matches none");
        return schema_v_fail(c, op->kw,
                             "must match exactly one schema in oneOf, but matches %zu and %zu",
                             first, second);
    }
}

static int v_items(vctx_t *c, const sop_t *op, json_object *inst, ev_t *ev)
{
    /* The items straight from json-c's array_list (public): a call per item less. */
    json_object **item = (json_object **)json_object_get_array(inst)->array;
    size_t n = json_object_array_length(inst), np = op->u.items.nprefix;
    int bad = 0;
    for (size_t i = 0; i < n && i < np; i++) {
        IPUSH(c, NULL, i);
        bad |= sub(c, op->u.items.prefix[i], item[i], NULL, op->kw, i);
        c->ni--;
        if (bad && !COLLECTING(c))
            return 1;
    }
    const snode_t *rest = op->u.items.rest;
    if (ev) {
        for (size_t i = 0; i < n && i < np; i++)
            ev_mark(ev, i);
        if (rest)
            ev->all = 1;
    }
    if (!rest || n <= np)
        return bad;
    if (rest->is_bool && !rest->bool_val)
        return schema_v_fail(c, op->u.items.restkw, "must have at most %zu items", np) | bad;
    for (size_t i = np; i < n; i++) {
        IPUSH(c, NULL, i);
        bad |= sub(c, rest, item[i], NULL, op->u.items.restkw, NOIDX);
        c->ni--;
        if (bad && !COLLECTING(c))
            return 1;
    }
    return bad;
}

static int v_contains(vctx_t *c, const sop_t *op, json_object *inst, ev_t *ev)
{
    size_t n = json_object_array_length(inst), count = 0;
    for (size_t i = 0; i < n && !c->abort; i++) {
        if (!quiet(c, op->u.contains.sub, json_object_array_get_idx(inst, i), NULL)) {
            count++;
            if (ev)
                ev_mark(ev, i);
            else if (count >= op->u.contains.min && op->u.contains.max == SIZE_MAX)
                break;
        }
    }
    if (c->abort)
        return 1;
    if (count < op->u.contains.min)
        return schema_v_fail(c, op->kw, "must contain at least %zu matching item%s",
                             op->u.contains.min, op->u.contains.min == 1 ? "" : "s");
    if (count > op->u.contains.max)
        return schema_v_fail(c, op->kw, "must contain at most %zu matching item%s",
                             op->u.contains.max, op->u.contains.max == 1 ? "" : "s");
    return 0;
}

/* Index of property k (a C string) in p's list, or -1; the search starts at *hint and
 * leaves it after the match. */
static long prop_lookup_z(const sprops_t *p, const char *k, size_t *hint)
{
    for (size_t t = 0, i = *hint; t < p->n; t++, i = i + 1 == p->n ? 0 : i + 1) {
        const char *a = p->names[i];
        if (a == k) { /* both the shared copy (schema_key_intern) */
            *hint = i + 1 == p->n ? 0 : i + 1;
            return (long)i;
        }
        for (size_t j = 0; a[j] == k[j]; j++) {
            if (!a[j]) {
                *hint = i + 1 == p->n ? 0 : i + 1;
                return (long)i;
            }
        }
    }
    return -1;
}

static int v_props(vctx_t *c, const sop_t *op, json_object *inst, ev_t *ev)
{
    const sprops_t *p = op->u.props;
    int bad = 0;
    size_t idx = 0, hint = 0;
    uint64_t seen = 0;
    json_object_object_foreach(inst, key, val)
    {
        /* The length only for a hash lookup or patterns: a linear lookup compares the
         * C strings, starting after the last match (members mostly come in the order
         * the schema lists them). */
        size_t kl = p->hash || p->npat ? strlen(key) : 0;
        int matched = 0;
        long pi = !p->n ? -1 : p->hash ? schema_prop_lookup(p, key, kl) : prop_lookup_z(p, key, &hint);
        const snode_t *s = pi >= 0 ? p->subs[pi] : NULL;
        if (s && p->reqbit)
            seen |= p->reqbit[pi];
        int leaf_failed = 0;
        if (s && !p->npat && s->leaf) {
            /* No other keyword looks at this member: when it is valid there is nothing
             * to record, and when it is not, a quiet caller needs only the verdict. */
            leaf_failed = 1;
            if (schema_v_leaf_ok(c, s, val)) {
                if (ev)
                    ev_mark(ev, idx);
                idx++;
                continue;
            }
            if (!COLLECTING(c))
                return 1;
        }
        IPUSH(c, key, NOIDX);
        if (s) {
            matched = 1;
            KPUSH(c, "properties", NOIDX);
            /* A leaf that failed above is walked to report it, not checked again. */
            /* the schema's copy of the name: the keyword location outlives the instance */
            bad |= leaf_failed ? leaf_walk(c, s, val, p->names[pi], NOIDX)
                               : sub(c, s, val, NULL, p->names[pi], NOIDX);
            c->nk--;
        }
        for (size_t i = 0; i < p->npat && !(bad && !COLLECTING(c)); i++) {
            if (!schema_v_match(c, p->pats[i], key, kl))
                continue;
            matched = 1;
            KPUSH(c, "patternProperties", NOIDX);
            bad |= sub(c, p->patsubs[i], val, NULL, p->patsrc[i], NOIDX);
            c->nk--;
        }
        c->ni--;
        if (!matched && p->additional) {
            if (p->additional->is_bool && !p->additional->bool_val) {
                bad |= schema_v_fail_s(c, 0, "additionalProperties", "unexpected property \"%s\"", 1,
                                       key, NULL);
            } else {
                IPUSH(c, key, NOIDX);
                bad |= sub(c, p->additional, val, NULL, "additionalProperties", NOIDX);
                c->ni--;
            }
            matched = 1;
        }
        if (ev && matched)
            ev_mark(ev, idx);
        idx++;
        if (bad && !COLLECTING(c))
            return 1;
    }
    if (seen != p->req_mask) {
        for (size_t r = 0; r < p->nreq; r++) {
            /* Bit r of seen: the walk, which met every member, met required name r; a
             * name listed twice has no bit of its own: look it up. */
            if ((seen >> r & 1) ||
                (!(p->req_mask >> r & 1) && json_object_object_get_ex(inst, p->req_names[r], NULL)))
                continue;
            bad = schema_v_fail_s(c, 1, "required", "missing required property \"%s\"", 1,
                                  p->req_names[r], NULL);
            if (!COLLECTING(c))
                break;
        }
    }
    return bad;
}

static int v_propnames(vctx_t *c, const sop_t *op, json_object *inst)
{
    int bad = 0;
    json_object_object_foreach(inst, key, val)
    {
        (void)val;
        json_object *name = json_object_new_string(key);
        if (!name) {
            c->nomem = c->abort = 1;
            return 1;
        }
        int r = quiet(c, op->u.sub, name, NULL);
        json_object_put(name);
        if (r)
            bad = schema_v_fail_s(c, 0, op->kw, "property name \"%s\" is not allowed", 1, key, NULL);
        if (bad && (!COLLECTING(c) || c->abort))
            return 1;
    }
    return bad;
}

static int v_uneval(vctx_t *c, const sop_t *op, json_object *inst, ev_t *ev)
{
    int bad = 0;
    const snode_t *s = op->u.sub;
    int is_false = s->is_bool && !s->bool_val;
    if (op->kind == K_UNEVAL_PROPS) {
        size_t idx = 0;
        json_object_object_foreach(inst, key, val)
        {
            if (!ev_has(ev, idx++)) {
                if (is_false) {
                    bad |= schema_v_fail_s(c, 0, op->kw, "unexpected property \"%s\"", 1, key, NULL);
                } else {
                    IPUSH(c, key, NOIDX);
                    bad |= sub(c, s, val, NULL, op->kw, NOIDX);
                    c->ni--;
                }
                if (bad && !COLLECTING(c))
                    return 1;
            }
        }
    } else {
        size_t n = json_object_array_length(inst);
        for (size_t i = 0; i < n; i++) {
            if (ev_has(ev, i))
                continue;
            if (is_false) {
                bad |= schema_v_fail(c, op->kw, "unexpected item at index %zu", i);
            } else {
                IPUSH(c, NULL, i);
                bad |= sub(c, s, json_object_array_get_idx(inst, i), NULL, op->kw, NOIDX);
                c->ni--;
            }
            if (bad && !COLLECTING(c))
                return 1;
        }
    }
    ev->all = 1;
    return bad;
}

static int v_op(vctx_t *c, const sop_t *op, json_object *inst, const ival_t *iv, ev_t *ev)
{
    switch (op->kind) {
    case K_REF: return sub(c, op->u.sub, inst, ev, op->kw, NOIDX);
    case K_DYNREF: return sub(c, dyn_target(c, op), inst, ev, op->kw, NOIDX);
    case K_ALLOF:
    case K_ANYOF:
    case K_ONEOF: return v_lists(c, op, inst, ev);
    case K_NOT:
        if (quiet(c, op->u.sub, inst, NULL) || c->abort)
            return c->abort;
        return schema_v_fail(c, op->kw, "must not match the schema in \"not\"");
    case K_IF:
        if (!branch(c, op->u.cond.cond, inst, ev))
            return op->u.cond.then ? sub(c, op->u.cond.then, inst, ev, "then", NOIDX) : 0;
        if (c->abort)
            return 1;
        return op->u.cond.els ? sub(c, op->u.cond.els, inst, ev, "else", NOIDX) : 0;
    case K_DEPSCHEMA: {
        int bad = 0;
        for (size_t i = 0; i < op->u.dep.n; i++) {
            if (!json_object_object_get_ex(inst, op->u.dep.keys[i], NULL))
                continue;
            KPUSH(c, op->kw, NOIDX);
            bad |= sub(c, op->u.dep.v[i], inst, ev, op->u.dep.keys[i], NOIDX);
            c->nk--;
            if (bad && !COLLECTING(c))
                return 1;
        }
        return bad;
    }
    case K_ITEMS: return v_items(c, op, inst, ev);
    case K_CONTAINS: return v_contains(c, op, inst, ev);
    case K_PROPS: return v_props(c, op, inst, ev);
    case K_PROPNAMES: return v_propnames(c, op, inst);
    case K_UNEVAL_ITEMS:
    case K_UNEVAL_PROPS: return v_uneval(c, op, inst, ev);
    default: return schema_v_assert(c, op, inst, iv);
    }
}

static int v_node(vctx_t *c, const snode_t *n, json_object *inst, ev_t *ev)
{
    if (n->is_bool)
        return n->bool_val ? 0 : schema_v_fail(c, NULL, "is not allowed here");
    if (c->depth >= SCHEMA_MAX_DEPTH || c->nk + 4 >= sizeof c->kpath / sizeof c->kpath[0]) {
        int q = c->quiet;
        c->quiet = 0;
        c->full = 0;
        if (c->res)
            schema_v_fail(c, NULL,
                          "validation nested deeper than %d levels (deep instance or $ref cycle)",
                          SCHEMA_MAX_DEPTH);
        c->quiet = q;
        c->abort = c->full = 1;
        return 1;
    }
    c->depth++;
    /* Entering another resource (even mid-way, through a $ref) extends the dynamic
     * scope that $dynamicRef searches. */
    int pushed = !c->nscope || c->scope[c->nscope - 1] != n->res;
    if (pushed)
        c->scope[c->nscope++] = n->res;
    ival_t iv;
    schema_v_view(inst, &iv);
    unsigned t = iv.t;
    ev_t local, *e = ev;
    if (n->has_uneval) {
        ev_init(c, &local, inst_size(inst));
        e = &local;
    }
    int bad = 0;
    for (size_t i = 0; i < n->nops; i++) {
        const sop_t *op = &n->ops[i];
        /* a "type" that passes (most nodes start with one) costs no call */
        if (!(op->tmask & t) || (op->kind == K_TYPE && (op->u.types & t)))
            continue;
        if (v_op(c, op, inst, &iv, e)) {
            bad = 1;
            if (!COLLECTING(c) || c->abort)
                break;
        }
    }
    if (n->has_uneval) {
        if (!bad && ev)
            ev_merge(ev, &local);
        ev_done(&local);
    }
    if (pushed)
        c->nscope--;
    c->depth--;
    return bad || c->abort;
}

/* ---- public API ---- */

schema_result_t *schema_result_new(void)
{
    return calloc(1, sizeof(schema_result_t));
}

void schema_result_reset(schema_result_t *r)
{
    r->n = 0;
    r->tlen = 0;
    r->fmt = 0;
}

static void result_release(schema_result_t *r)
{
    free(r->errs);
    free(r->off);
    free(r->text);
}

void schema_result_free(schema_result_t *r)
{
    if (!r)
        return;
    result_release(r);
    free(r);
}

size_t schema_result_count(const schema_result_t *r)
{
    return r ? r->n : 0;
}

const schema_error_t *schema_result_get(const schema_result_t *r, size_t i)
{
    if (!r || i >= r->n)
        return NULL;
    if (!r->fmt) {
        /* The one place a const result changes: its errors are formatted on first read
         * (a result belongs to one thread at a time). */
        schema_result_t *w = (schema_result_t *)(uintptr_t)r;
        if (result_format(w, 1) != 0) {
            for (size_t j = 0; j < w->n; j++)
                w->errs[j] = (schema_error_t){"", "", "out of memory formatting the error"};
            w->fmt = 1;
        }
    }
    return &r->errs[i];
}

void schema_v_init(vctx_t *c, const schema_t *s, schema_result_t *res, int max)
{
    memset(c, 0, offsetof(vctx_t, ipath));
    c->s = s;
    c->res = res;
    c->max = max > 0 ? max : 1;
    if (res)
        schema_result_reset(res);
    schema_t *ms = (schema_t *)s; /* the flag is the one mutable field, and atomic */
    if (!atomic_flag_test_and_set(&ms->md_busy)) {
        c->md = s->md;
        c->md_shared = 1;
    }
}

void schema_v_done(vctx_t *c)
{
    if (c->md_shared)
        atomic_flag_clear(&((schema_t *)c->s)->md_busy);
    if (c->md_own)
        pcre2_match_data_free(c->md);
}

static int run(const schema_t *s, json_object *inst, schema_result_t *res, int max)
{
    /* On the stack: a heap block this size per call costs more than the validation. */
    vctx_t cbuf, *c = &cbuf;
    schema_v_init(c, s, res, max);
    int bad = v_node(c, s->root, inst, NULL);
    schema_v_done(c);
    return c->nomem ? ERR_NOMEM : bad ? ERR_SCHEMA : 0;
}

int schema_validate(const schema_t *s, json_object *inst, schema_result_t *res)
{
    if (!s)
        return ERR_INVAL;
    return run(s, inst, res, s->max_errors);
}

int schema_check(const schema_t *s, json_object *inst, char *msg, size_t len)
{
    if (msg && len)
        msg[0] = 0;
    if (!s)
        return err_set(msg, len, ERR_INVAL, "no schema");
    schema_result_t r = {0};
    int rc = run(s, inst, &r, 16);
    if (rc == ERR_SCHEMA && msg && len) {
        size_t o = 0;
        /* The message shows no keyword locations: they are not formatted. */
        int ok = result_format(&r, 0) == 0;
        for (size_t i = 0; ok && i < r.n && o + 1 < len; i++) {
            int w = snprintf(msg + o, len - o, "%s%s: %s", i ? "; " : "",
                             r.errs[i].instance_ptr[0] ? r.errs[i].instance_ptr : "/",
                             r.errs[i].message);
            if (w < 0)
                break;
            o += (size_t)w;
        }
        if (!r.n || !ok)
            snprintf(msg, len, "instance does not match the schema");
    } else if (rc == ERR_NOMEM) {
        err_set(msg, len, rc, "schema: out of memory while validating");
    }
    result_release(&r);
    return rc;
}
