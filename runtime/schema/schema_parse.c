/*
 * schema_parse: a strict RFC 8259 JSON parser that builds json-c values directly.
 *
 * Why not json_tokener: for the small documents validated here (tool arguments, a few
 * hundred bytes) json_tokener's byte-at-a-time state machine and its printbuf copies
 * cost more than validation itself. This parser reads the text in place, copies only
 * what json-c must own, and rejects what RFC 8259 rejects (comments, trailing commas,
 * single quotes, NaN, control characters in strings, invalid UTF-8), and also U+0000 in a
 * string unless asked (it would cut the C strings it becomes). Nesting is capped at
 * SCHEMA_JSON_MAX_DEPTH (SCHEMA_MAX_DEPTH for documents), so hostile input cannot exhaust
 * the stack and every document the runtime accepts it can also write back. Duplicate keys: the last
 * one wins, as with json-c.
 *
 * The same grammar also builds a compact tree instead (schema_parse_tree, for
 * schema_validate_text): nodes appended to one array in document order, strings left in
 * the text unless they had escapes. Each builder step branches on st->tree.
 *
 * Object keys: json-c would copy every key (an allocation and a free per member). Keys of
 * up to KEY_MAX bytes are instead interned in one process-wide set that only grows, to
 * KEY_SLOTS / 2 keys at most (about 100 KB): the keys tool arguments use are a small,
 * repeating vocabulary, so after warm-up a key costs a hash and a compare, and json-c
 * keeps the shared copy (JSON_C_OBJECT_ADD_CONSTANT_KEY). Other keys, or any once the set
 * is full, are copied by json-c as before. The set is lock-free: a slot is written once
 * (compare-and-swap from empty) and never changes or is freed afterwards.
 */
#include "schema_int.h"

#include "err.h"
#include "text.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pstate {
    const char *p, *end, *start;
    char *err;
    size_t errlen;
    int failed; /* 0, or ERR_INVAL / ERR_NOMEM */
    int flags;  /* SCHEMA_PARSE_* */
    char *buf; /* scratch for unescaped strings and keys */
    size_t cap;
    jtree_t *tree; /* non-NULL: build tree nodes instead of json-c values */
} pstate_t;

static json_object *value(pstate_t *st, int depth);

static json_object *perr(pstate_t *st, const char *what)
{
    if (!st->failed) {
        /* Running out of memory is not the document's fault: say so with its own code. */
        st->failed = strcmp(what, "out of memory") == 0 ? ERR_NOMEM : ERR_INVAL;
        err_set(st->err, st->errlen, st->failed, "invalid JSON at byte %zu: %s",
                (size_t)(st->p - st->start), what);
    }
    return NULL;
}

static void ws(pstate_t *st)
{
    if (st->p < st->end && (unsigned char)*st->p > ' ') /* the usual case: no space at all */
        return;
    while (st->p < st->end && (*st->p == ' ' || *st->p == '\n' || *st->p == '\r' || *st->p == '\t'))
        st->p++;
}

static int reserve(pstate_t *st, size_t n)
{
    if (n <= st->cap)
        return 0;
    size_t nc = st->cap ? st->cap : 256;
    while (nc < n)
        nc *= 2;
    char *b = realloc(st->buf, nc);
    if (!b)
        return -1;
    st->buf = b;
    st->cap = nc;
    return 0;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The high bit of each byte of w that a string scan must stop at: '"', '\\', a control
 * character (< 0x20) or a byte of a multi-byte character (>= 0x80). A byte >= 0x80 or
 * < 0x20 sets its high bit in w | (w - 0x20..); a quote or backslash becomes a zero byte
 * after the XOR, which (x - 0x01..) & ~x finds. Borrows only flag bytes above one already
 * flagged, so the lowest byte flagged is a real stop. */
static inline uint64_t stops8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (w | (w - ones * 0x20) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high;
}

/* Parse a string at st->p (on the opening quote). Sets *s and *n to the bytes: in place if
 * there were no escapes (not NUL-terminated), else in st->buf. 0 or -1. */
static int string(pstate_t *st, const char **s, size_t *n)
{
    const char *p = ++st->p, *e = st->end;
    for (;;) { /* eight bytes at a time */
        uint64_t w = 0;
        if (e - p >= 8)
            memcpy(&w, p, 8);
        else if (p < e)
            memcpy(&w, p, (size_t)(e - p)); /* the zeros past the end stop the scan */
        uint64_t t = stops8(w);
        if (!t) {
            p += 8;
            continue;
        }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        p += __builtin_ctzll(t) / 8; /* the lowest address flagged */
#else
        while (p < e && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x80 && *p != '"' &&
               *p != '\\')
            p++;
#endif
        if (p >= e || (unsigned char)*p < 0x80)
            break;
        /* JSON text is UTF-8 (RFC 8259 section 8.1): invalid bytes would reach the database,
         * traces and model requests as text that is not JSON. */
        size_t l = text_utf8_len((const unsigned char *)p, (size_t)(e - p));
        if (!l) {
            st->p = p;
            return perr(st, "invalid UTF-8 in a string"), -1;
        }
        p += l;
    }
    if (p < e && *p == '"') {
        *s = st->p;
        *n = (size_t)(p - st->p);
        st->p = p + 1;
        return 0;
    }
    size_t o = (size_t)(p - st->p);
    if (reserve(st, o + 1))
        return perr(st, "out of memory"), -1;
    memcpy(st->buf, st->p, o);
    while (p < e && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20) {
            st->p = p;
            return perr(st, "control character in string"), -1;
        }
        if (reserve(st, o + 8))
            return perr(st, "out of memory"), -1;
        if (c != '\\') {
            size_t l = c < 0x80 ? 1 : text_utf8_len((const unsigned char *)p, (size_t)(e - p));
            if (!l) {
                st->p = p;
                return perr(st, "invalid UTF-8 in a string"), -1;
            }
            memcpy(st->buf + o, p, l);
            o += l;
            p += l;
            continue;
        }
        if (++p >= e)
            break;
        switch (*p) {
        case '"': st->buf[o++] = '"'; break;
        case '\\': st->buf[o++] = '\\'; break;
        case '/': st->buf[o++] = '/'; break;
        case 'b': st->buf[o++] = '\b'; break;
        case 'f': st->buf[o++] = '\f'; break;
        case 'n': st->buf[o++] = '\n'; break;
        case 'r': st->buf[o++] = '\r'; break;
        case 't': st->buf[o++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (e - p < 5 || hex4(p + 1, &cp)) {
                st->p = p;
                return perr(st, "bad \\u escape"), -1;
            }
            if (cp == 0 && !(st->flags & SCHEMA_PARSE_DOCUMENT)) {
                st->p = p;
                return perr(st, "NUL character (\\u0000) in a string"), -1;
            }
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && e - p >= 7 && p[1] == '\\' && p[2] == 'u' &&
                !hex4(p + 3, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            } else if (cp >= 0xD800 && cp < 0xE000) {
                cp = 0xFFFD; /* a lone surrogate has no UTF-8 form */
            }
            o += put_utf8(st->buf + o, cp);
            break;
        }
        default: st->p = p; return perr(st, "bad escape"), -1;
        }
        p++;
    }
    if (p >= e) {
        st->p = p;
        return perr(st, "unterminated string"), -1;
    }
    st->buf[o] = 0;
    *s = st->buf;
    *n = o;
    st->p = p + 1;
    return 0;
}

/* ---- tree mode (schema_parse_tree): nodes in one array instead of json-c values ---- */

/* Append a node of type t; its index, or -1 (and the error set). */
static long tnew(pstate_t *st, unsigned t)
{
    jtree_t *tr = st->tree;
    if (tr->n == tr->cap) {
        size_t nc = tr->cap * 2;
        jt_node_t *v = tr->v == tr->inl ? malloc(nc * sizeof *v) : realloc(tr->v, nc * sizeof *v);
        if (!v)
            return perr(st, "out of memory"), -1;
        if (tr->v == tr->inl)
            memcpy(v, tr->inl, tr->n * sizeof *v);
        tr->v = v;
        tr->cap = nc;
    }
    jt_node_t *nd = &tr->v[tr->n];
    nd->t = (uint8_t)t;
    nd->soff = nd->koff = 0;
    nd->key = NULL;
    nd->klen = 0;
    nd->n = 0;
    nd->next = (uint32_t)tr->n + 1;
    return (long)tr->n++;
}

/* Keep s[0..n) for the tree: text in place stays where it is (the caller keeps the text
 * until it is done with the tree); unescaped text from st->buf is copied to the tree's
 * own buffer, whose offset is stored (*off = 1) and fixed into a pointer at the end. */
static const char *tkeep(pstate_t *st, const char *s, size_t n, uint8_t *off)
{
    *off = 0;
    if (s != st->buf)
        return s;
    jtree_t *tr = st->tree;
    if (tr->sn + n + 1 > tr->scap) {
        size_t nc = tr->scap ? tr->scap : 256;
        while (nc < tr->sn + n + 1)
            nc *= 2;
        char *b = realloc(tr->sb, nc);
        if (!b)
            return perr(st, "out of memory"), NULL;
        tr->sb = b;
        tr->scap = nc;
    }
    memcpy(tr->sb + tr->sn, s, n);
    tr->sb[tr->sn + n] = 0;
    *off = 1;
    const char *at = (const char *)(uintptr_t)tr->sn;
    tr->sn += n + 1;
    return at;
}

static json_object *num_tree(pstate_t *st, double d)
{
    long i = tnew(st, isfinite(d) && d == floor(d) ? (T_NUM | T_INT) : T_NUM);
    if (i >= 0)
        st->tree->v[i].u.d = d;
    return NULL;
}

static json_object *num_int(pstate_t *st, int64_t v)
{
    if (!st->tree)
        return json_object_new_int64(v);
    long i = tnew(st, T_NUM | T_INT);
    if (i >= 0)
        st->tree->v[i].u.d = (double)v;
    return NULL;
}

/* The key of tree node nd (an object member), wherever it lives. */
static const char *tkey(const jtree_t *tr, const jt_node_t *nd)
{
    return nd->koff ? tr->sb + (uintptr_t)nd->key : nd->key;
}

/* Close container ti with count children. json-c keeps the last of duplicate keys and
 * so counts members differently; such objects (and large ones, not searched for them)
 * are refused here, and the caller takes the json-c path instead. */
static void tclose(pstate_t *st, long ti, size_t count)
{
    jtree_t *tr = st->tree;
    jt_node_t *v = tr->v;
    v[ti].n = (uint32_t)count;
    v[ti].next = (uint32_t)tr->n;
    if (v[ti].t != T_OBJ || count < 2)
        return;
    if (count > 64) {
        perr(st, "object too large for a tree");
        return;
    }
    for (size_t a = (size_t)ti + 1; a < tr->n; a = v[a].next)
        for (size_t b = v[a].next; b < tr->n; b = v[b].next)
            if (v[a].klen == v[b].klen && !memcmp(tkey(tr, &v[a]), tkey(tr, &v[b]), v[a].klen)) {
                perr(st, "duplicate key");
                return;
            }
}

static json_object *number(pstate_t *st)
{
    const char *p = st->p, *e = st->end, *b = p;
    int is_int = 1, has_exp = 0;
    if (p < e && *p == '-')
        p++;
    if (p < e && *p == '0')
        p++;
    else if (p < e && *p >= '1' && *p <= '9')
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    else
        return perr(st, "bad number");
    if (p < e && *p == '.') {
        is_int = 0;
        if (++p >= e || *p < '0' || *p > '9')
            return st->p = p, perr(st, "bad number");
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        has_exp = 1;
        if (++p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return st->p = p, perr(st, "bad number");
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    size_t n = (size_t)(p - b);
    st->p = p;
    if (is_int && n <= 18) { /* fits int64 without overflow checks */
        int64_t v = 0;
        const char *q = b + (*b == '-');
        while (q < p)
            v = v * 10 + (*q++ - '0');
        return num_int(st, *b == '-' ? -v : v);
    }
    if (!is_int && n <= 16 && !has_exp) {
        /* At most 15 digits and a fraction: the digits are an exact double and so is
         * the power of ten, and one division rounds correctly (Clinger's fast path),
         * so this equals strtod without its cost. */
        static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
                                     1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
        int64_t m = 0;
        int frac = -1;
        for (const char *q = b + (*b == '-'); q < p; q++) {
            if (*q == '.')
                frac = 0;
            else {
                m = m * 10 + (*q - '0');
                frac += frac >= 0;
            }
        }
        if (frac >= 0) { /* always: no exponent means a fraction made it a double */
            double d = (double)m / p10[frac];
            /* json-c prints a double with "%.17g", dropping trailing zeros: that gives
             * back the text as written when the value is exact in binary (the fraction
             * m mod 10^frac over 10^frac is dyadic: 5^frac divides the remainder), the
             * text ends in a non-zero digit and %g keeps fixed notation (>= 1e-4). Then
             * the text need not be kept beside it. */
            static const int64_t i10[] = {1, 10, 100, 1000, 10000, 100000, 1000000,
                                          10000000, 100000000, 1000000000, 10000000000,
                                          100000000000, 1000000000000, 10000000000000,
                                          100000000000000, 1000000000000000};
            static const int64_t i5[] = {1, 5, 25, 125, 625, 3125, 15625, 78125, 390625,
                                         1953125, 9765625, 48828125, 244140625, 1220703125,
                                         6103515625, 30517578125};
            if (st->tree)
                return num_tree(st, *b == '-' ? -d : d);
            if (b[n - 1] != '0' && (m % i10[frac]) % i5[frac] == 0 && d >= 1e-4)
                return json_object_new_double(*b == '-' ? -d : d);
            char text[17];
            memcpy(text, b, n);
            text[n] = 0;
            return json_object_new_double_s(*b == '-' ? -d : d, text); /* prints as written */
        }
    }
    char small[64], *t = n < sizeof small ? small : malloc(n + 1);
    if (!t)
        return perr(st, "out of memory");
    memcpy(t, b, n);
    t[n] = 0;
    json_object *o = NULL;
    int done = 0;
    if (is_int) {
        errno = 0;
        long long v = strtoll(t, NULL, 10);
        if (!errno) {
            o = num_int(st, v);
            done = 1;
        } else if (*t != '-') {
            errno = 0;
            unsigned long long u = strtoull(t, NULL, 10);
            if (!errno) {
                o = st->tree ? num_tree(st, (double)u) : json_object_new_uint64(u);
                done = 1;
            }
        }
    }
    if (!done)
        o = st->tree ? num_tree(st, strtod(t, NULL))
                     : json_object_new_double_s(strtod(t, NULL), t); /* prints as written */
    if (t != small)
        free(t);
    return o;
}

static json_object *literal(pstate_t *st, const char *word, json_object *v, unsigned t)
{
    size_t n = strlen(word);
    if ((size_t)(st->end - st->p) < n || memcmp(st->p, word, n) != 0) {
        json_object_put(v);
        return perr(st, "unexpected character");
    }
    st->p += n;
    long i = st->tree ? tnew(st, t) : -1;
    if (i >= 0)
        st->tree->v[i].n = word[0] == 't'; /* a boolean's value */
    return v; /* NULL for null, as json-c represents it */
}

#define KEY_MAX 48
#define KEY_SLOTS 4096 /* a power of two */
#define KEY_PROBES 8

/* Each slot: NULL, or a key stored as its length byte, its bytes and a NUL. */
static _Atomic(const char *) key_slots[KEY_SLOTS];
static atomic_int key_count;

/* The shared NUL-terminated copy of key k (kl bytes, no NUL inside), or NULL when it is
 * too long, the set is full or memory ran out (the caller lets json-c copy it). */
static const char *key_intern(const char *k, size_t kl)
{
    if (kl > KEY_MAX)
        return NULL;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < kl; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    for (size_t i = 0, j = h & (KEY_SLOTS - 1); i < KEY_PROBES; i++, j = (j + 1) & (KEY_SLOTS - 1)) {
        const char *s = atomic_load_explicit(&key_slots[j], memory_order_acquire);
        if (!s) {
            if (atomic_load_explicit(&key_count, memory_order_relaxed) >= KEY_SLOTS / 2)
                return NULL;
            char *c = malloc(kl + 2);
            if (!c)
                return NULL;
            c[0] = (char)kl;
            memcpy(c + 1, k, kl);
            c[kl + 1] = 0;
            if (atomic_compare_exchange_strong_explicit(&key_slots[j], &s, c, memory_order_acq_rel,
                                                        memory_order_acquire)) {
                atomic_fetch_add_explicit(&key_count, 1, memory_order_relaxed);
                return c + 1;
            }
            free(c); /* another thread filled the slot first: s is its key */
        }
        if ((unsigned char)s[0] == kl && memcmp(s + 1, k, kl) == 0)
            return s + 1;
    }
    return NULL;
}

const char *schema_key_intern(const char *k, size_t kl)
{
    return key_intern(k, kl);
}

static json_object *object(pstate_t *st, int depth)
{
    json_object *o = NULL;
    long ti = st->tree ? tnew(st, T_OBJ) : -1;
    if (st->tree ? ti < 0 : !(o = json_object_new_object()))
        return perr(st, "out of memory");
    st->p++;
    ws(st);
    if (st->p < st->end && *st->p == '}') {
        st->p++;
        if (st->tree)
            tclose(st, ti, 0);
        return o;
    }
    size_t count = 0;
    for (;;) {
        ws(st);
        if (st->p >= st->end || *st->p != '"')
            goto bad;
        const char *k;
        size_t kl;
        if (string(st, &k, &kl))
            goto fail;
        if (k == st->buf && memchr(k, 0, kl)) { /* only an escape can put a NUL there */
            perr(st, "NUL in a key");
            goto fail;
        }
        ws(st);
        if (st->p >= st->end || *st->p != ':')
            goto bad;
        st->p++;
        if (st->tree) {
            uint8_t koff;
            const char *kk = tkeep(st, k, kl, &koff);
            size_t ci = st->tree->n;
            value(st, depth + 1);
            if (st->failed)
                goto fail;
            jt_node_t *c = &st->tree->v[ci];
            c->key = kk;
            c->klen = (uint32_t)kl;
            c->koff = koff;
            count++;
            goto next;
        }
        /* The key lives in st->buf, which the value may reuse: take the shared copy, or
         * one of our own that json-c copies. */
        const char *shared = key_intern(k, kl);
        char kbuf[128], *key = shared ? NULL : kl < sizeof kbuf ? kbuf : malloc(kl + 1);
        if (!shared && !key) {
            perr(st, "out of memory");
            goto fail;
        }
        if (key) {
            memcpy(key, k, kl);
            key[kl] = 0;
        }
        json_object *v = value(st, depth + 1);
        if (st->failed) {
            if (key && key != kbuf)
                free(key);
            goto fail;
        }
        int rc = shared ? json_object_object_add_ex(o, shared, v, JSON_C_OBJECT_ADD_CONSTANT_KEY)
                        : json_object_object_add(o, key, v);
        if (key && key != kbuf)
            free(key);
        if (rc) {
            json_object_put(v);
            perr(st, "out of memory");
            goto fail;
        }
    next:
        ws(st);
        if (st->p < st->end && *st->p == ',') {
            st->p++;
            continue;
        }
        if (st->p < st->end && *st->p == '}') {
            st->p++;
            if (st->tree)
                tclose(st, ti, count);
            return o;
        }
        goto bad;
    }
bad:
    perr(st, st->p >= st->end ? "unexpected end of input" : "unexpected character");
fail:
    json_object_put(o);
    return NULL;
}

static json_object *array(pstate_t *st, int depth)
{
    json_object *a = NULL;
    long ti = st->tree ? tnew(st, T_ARR) : -1;
    if (st->tree ? ti < 0 : !(a = json_object_new_array_ext(8)))
        return perr(st, "out of memory");
    st->p++;
    ws(st);
    size_t count = 0;
    if (st->p < st->end && *st->p == ']') {
        st->p++;
        if (st->tree)
            tclose(st, ti, 0);
        return a;
    }
    for (;;) {
        json_object *v = value(st, depth + 1);
        if (st->failed)
            goto fail;
        count++;
        if (!st->tree && json_object_array_add(a, v)) {
            json_object_put(v);
            perr(st, "out of memory");
            goto fail;
        }
        ws(st);
        if (st->p < st->end && *st->p == ',') {
            st->p++;
            continue;
        }
        if (st->p < st->end && *st->p == ']') {
            st->p++;
            if (st->tree)
                tclose(st, ti, count);
            return a;
        }
        perr(st, st->p >= st->end ? "unexpected end of input" : "unexpected character");
        goto fail;
    }
fail:
    json_object_put(a);
    return NULL;
}

static json_object *value(pstate_t *st, int depth)
{
    ws(st);
    if (st->p >= st->end)
        return perr(st, "unexpected end of input");
    /* depth counts the arrays and objects around this value: one more may open below the
     * limit (the same count sandbox_json applies to Lua tables). */
    if ((*st->p == '{' || *st->p == '[') &&
        depth >= (st->flags & SCHEMA_PARSE_DOCUMENT ? SCHEMA_MAX_DEPTH : SCHEMA_JSON_MAX_DEPTH))
        return perr(st, st->flags & SCHEMA_PARSE_DOCUMENT
                            ? "nested deeper than 512 levels"
                            : "nested deeper than 100 levels (the runtime's JSON limit)");
    switch (*st->p) {
    case '{': return object(st, depth);
    case '[': return array(st, depth);
    case '"': {
        const char *s;
        size_t n;
        if (string(st, &s, &n))
            return NULL;
        if (n > INT_MAX)
            return perr(st, "string too long");
        if (st->tree) {
            long i = tnew(st, T_STR);
            if (i >= 0) {
                const char *kept = tkeep(st, s, n, &st->tree->v[i].soff);
                st->tree->v[i].u.s = kept;
                st->tree->v[i].n = (uint32_t)n;
            }
            return NULL;
        }
        json_object *o = json_object_new_string_len(s, (int)n);
        return o ? o : perr(st, "out of memory");
    }
    case 't': return literal(st, "true", st->tree ? NULL : json_object_new_boolean(1), T_BOOL);
    case 'f': return literal(st, "false", st->tree ? NULL : json_object_new_boolean(0), T_BOOL);
    case 'n': return literal(st, "null", NULL, T_NULL);
    default:
        if (*st->p == '-' || (*st->p >= '0' && *st->p <= '9'))
            return number(st);
        return perr(st, "unexpected character");
    }
}

int schema_parse_json(const char *text, size_t len, json_object **out, char *err, size_t errlen)
{
    return schema_parse_json_ex(text, len, 0, out, err, errlen);
}

int schema_parse_json_ex(const char *text, size_t len, int flags, json_object **out, char *err,
                         size_t errlen)
{
    pstate_t st = {.p = text, .end = text + len, .start = text, .err = err, .errlen = errlen,
                   .flags = flags};
    json_object *v = value(&st, 0);
    if (!st.failed) {
        ws(&st);
        if (st.p < st.end)
            perr(&st, "trailing text after the value");
    }
    free(st.buf);
    if (st.failed) {
        json_object_put(v);
        return st.failed;
    }
    *out = v;
    return 0;
}

int schema_parse_tree(const char *text, size_t len, jtree_t *tr)
{
    pstate_t st = {.p = text, .end = text + len, .start = text, .tree = tr};
    tr->v = tr->inl;
    tr->cap = sizeof tr->inl / sizeof tr->inl[0];
    tr->n = tr->sn = tr->scap = 0;
    tr->sb = NULL;
    value(&st, 0);
    if (!st.failed) {
        ws(&st);
        if (st.p < st.end)
            perr(&st, "trailing text after the value");
    }
    free(st.buf);
    if (st.failed)
        return st.failed;
    for (size_t i = 0; i < tr->n && tr->sb; i++) { /* offsets into sb become pointers */
        jt_node_t *nd = &tr->v[i];
        if (nd->koff)
            nd->key = tr->sb + (uintptr_t)nd->key;
        if (nd->soff)
            nd->u.s = tr->sb + (uintptr_t)nd->u.s;
        nd->koff = nd->soff = 0;
    }
    return 0;
}

void schema_tree_free(jtree_t *tr)
{
    if (tr->v != tr->inl)
        free(tr->v);
    free(tr->sb);
    tr->v = tr->inl;
    tr->sb = NULL;
}
