/*
 * schema_fast: schema_validate_text -- parse and validate without json-c values.
 *
 * Most instances that arrive as text (tool arguments, structured output) are valid, and
 * for those only the verdict matters. Building json-c values costs three times what the
 * validation does (an allocation per value and per object a hash table), so the text is
 * parsed into a compact tree instead (schema_parse_tree: one array of nodes, strings left
 * in the text) and walked for the verdict alone: no locations, no messages. Anything
 * this walk cannot settle exactly -- an invalid verdict, text the tree parser refuses,
 * a keyword it does not implement, a node with unevaluated* -- goes down the ordinary
 * path (schema_parse_json + schema_validate), so errors, messages and edge cases are
 * those of schema_validate by construction. The walk may call valid only what the
 * ordinary path calls valid: where its notion differs (numbers compare as doubles in
 * uniqueItems, so it may find duplicates json-c would not) it errs towards invalid,
 * which only costs the second pass.
 */
#include "schema_vctx.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

typedef struct fctx {
    vctx_t *c;
    const jt_node_t *v;
    int depth;
} fctx_t;

/* 0 valid, 1 invalid, -1 not settled here. */
static int f_node(fctx_t *f, const snode_t *n, size_t i);

/* 1 if the values at a and b are equal as JSON Schema compares them (numbers by value,
 * objects whatever their member order). */
static int f_equal(const jt_node_t *v, size_t a, size_t b)
{
    const jt_node_t *x = &v[a], *y = &v[b];
    if ((x->t & T_NUM) && (y->t & T_NUM))
        return x->u.d == y->u.d;
    if (x->t != y->t || x->n != y->n)
        return 0;
    switch (x->t) {
    case T_NULL:
    case T_BOOL: return 1; /* n holds a boolean's value */
    case T_STR: return !memcmp(x->u.s, y->u.s, x->n);
    case T_ARR:
        for (size_t i = a + 1, j = b + 1; i < x->next; i = v[i].next, j = v[j].next)
            if (!f_equal(v, i, j))
                return 0;
        return 1;
    default: /* T_OBJ: same size, every key of a in b with an equal value */
        for (size_t i = a + 1, j = b + 1; i < x->next; i = v[i].next) {
            /* Objects built alike list their keys in the same order: try that first. */
            if (j >= y->next || v[j].klen != v[i].klen || memcmp(v[j].key, v[i].key, v[i].klen)) {
                for (j = b + 1; j < y->next; j = v[j].next)
                    if (v[j].klen == v[i].klen && !memcmp(v[j].key, v[i].key, v[i].klen))
                        break;
                if (j >= y->next)
                    return 0;
            }
            if (!f_equal(v, i, j))
                return 0;
            j = v[j].next;
        }
        return 1;
    }
}

static int f_unique(const jt_node_t *v, size_t i)
{
    if (v[i].n > 24) /* large arrays: the ordinary path sorts by hash */
        return -1;
    for (size_t a = i + 1; a < v[i].next; a = v[a].next)
        for (size_t b = v[a].next; b < v[i].next; b = v[b].next)
            if (f_equal(v, a, b))
                return 1;
    return 0;
}

static int f_props(fctx_t *f, const sprops_t *p, size_t i)
{
    const jt_node_t *v = f->v;
    uint64_t seen = 0;
    for (size_t j = i + 1; j < v[i].next; j = v[j].next) {
        const char *key = v[j].key;
        size_t kl = v[j].klen;
        int matched = 0, r;
        long pi = p->n ? schema_prop_lookup(p, key, kl) : -1;
        if (pi >= 0) {
            matched = 1;
            if (p->reqbit)
                seen |= p->reqbit[pi];
            if ((r = f_node(f, p->subs[pi], j)))
                return r;
        }
        for (size_t k = 0; k < p->npat; k++) {
            if (!schema_v_match(f->c, p->pats[k], key, kl))
                continue;
            matched = 1;
            if ((r = f_node(f, p->patsubs[k], j)))
                return r;
        }
        if (!matched && p->additional && (r = f_node(f, p->additional, j)))
            return r;
    }
    return seen != p->req_mask; /* a required property (folded into the walk) is missing */
}

static int f_required(const jt_node_t *v, const sop_t *op, size_t i)
{
    for (size_t r = 0; r < op->u.names.n; r++) {
        const char *name = op->u.names.v[r];
        size_t nl = strlen(name), j;
        for (j = i + 1; j < v[i].next; j = v[j].next)
            if (v[j].klen == nl && !memcmp(v[j].key, name, nl))
                break;
        if (j >= v[i].next)
            return 1;
    }
    return 0;
}

static int f_items(fctx_t *f, const sop_t *op, size_t i)
{
    const jt_node_t *v = f->v;
    size_t k = 0;
    for (size_t j = i + 1; j < v[i].next; j = v[j].next, k++) {
        const snode_t *s = k < op->u.items.nprefix ? op->u.items.prefix[k] : op->u.items.rest;
        if (!s)
            break;
        int r = f_node(f, s, j);
        if (r)
            return r;
    }
    return 0;
}

static int f_op(fctx_t *f, const sop_t *op, size_t i, const ival_t *iv)
{
    int r, ok;
    switch (op->kind) {
    case K_PROPS: return f_props(f, op->u.props, i);
    case K_ITEMS: return f_items(f, op, i);
    case K_REQUIRED: return f_required(f->v, op, i);
    case K_UNIQUE: return f_unique(f->v, i);
    case K_REF: return f_node(f, op->u.sub, i);
    case K_ALLOF:
        for (size_t k = 0; k < op->u.subs.n; k++)
            if ((r = f_node(f, op->u.subs.v[k], i)))
                return r;
        return 0;
    case K_ANYOF:
    case K_ONEOF:
        ok = 0;
        for (size_t k = 0; k < op->u.subs.n; k++) {
            if ((r = f_node(f, op->u.subs.v[k], i)) < 0)
                return r;
            ok += !r;
            if (ok && op->kind == K_ANYOF)
                return 0;
        }
        return ok != 1;
    case K_NOT: return (r = f_node(f, op->u.sub, i)) < 0 ? r : !r;
    case K_IF:
        if ((r = f_node(f, op->u.cond.cond, i)) < 0)
            return r;
        if (!r)
            return op->u.cond.then ? f_node(f, op->u.cond.then, i) : 0;
        return op->u.cond.els ? f_node(f, op->u.cond.els, i) : 0;
    default:
        r = schema_v_scalar_ok(f->c, op, iv);
        return r < 0 ? -1 : !r;
    }
}

static int f_node(fctx_t *f, const snode_t *n, size_t i)
{
    if (n->is_bool)
        return !n->bool_val;
    if (n->has_uneval || f->depth >= SCHEMA_MAX_DEPTH)
        return -1;
    const jt_node_t *nd = &f->v[i];
    ival_t iv = {.t = nd->t, .len = nd->n};
    if (nd->t & T_NUM)
        iv.d = nd->u.d;
    else if (nd->t == T_STR)
        iv.s = nd->u.s;
    if (n->lf)
        return !schema_v_leaf_prog(f->c, n->lf, &iv);
    f->depth++;
    int r = 0;
    for (size_t k = 0; k < n->nops && !r; k++)
        if (n->ops[k].tmask & iv.t)
            r = f_op(f, &n->ops[k], i, &iv);
    f->depth--;
    return r;
}

int schema_validate_text(const schema_t *s, const char *text, size_t len, schema_result_t *res,
                         char *err, size_t errlen)
{
    if (!s)
        return err_set(err, errlen, ERR_INVAL, "no schema");
    jtree_t tr;
    int r = -1;
    if (schema_parse_tree(text, len, &tr) == 0) {
        vctx_t cbuf;
        schema_v_init(&cbuf, s, res, s->max_errors);
        fctx_t f = {.c = &cbuf, .v = tr.v};
        r = f_node(&f, s->root, 0);
        if (cbuf.nomem)
            r = -1;
        schema_v_done(&cbuf);
    }
    schema_tree_free(&tr);
    if (r == 0)
        return 0;
    json_object *inst = NULL;
    int rc = schema_parse_json(text, len, &inst, err, errlen);
    if (rc) {
        if (res) /* no errors from a previous call stay behind */
            schema_result_reset(res);
        return rc;
    }
    rc = schema_validate(s, inst, res);
    json_object_put(inst);
    return rc;
}
