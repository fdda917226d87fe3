/*
 * schema_parse: a strict RFC 8259 JSON parser that builds json-c values directly.
 *
 * Why not json_tokener: for the small documents validated here (tool arguments, a few
 * hundred bytes) json_tokener's byte-at-a-time state machine and its printbuf copies
 * cost more than validation itself. This parser reads the text in place, copies only
 * what json-c must own, and rejects what RFC 8259 rejects (comments, trailing commas,
 * single quotes, NaN, control characters in strings). Nesting is capped at
 * SCHEMA_MAX_DEPTH, so hostile input cannot exhaust the stack. Duplicate keys: the last
 * one wins, as with json-c.
 */
#include "schema_int.h"

#include "err.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pstate {
    const char *p, *end, *start;
    char *err;
    size_t errlen;
    int failed; /* 0, or ERR_INVAL / ERR_NOMEM */
    char *buf; /* scratch for unescaped strings and keys */
    size_t cap;
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

/* Parse a string at st->p (on the opening quote). Sets *s and *n to the bytes: in place if
 * there were no escapes, else in st->buf. Always NUL-terminated in st->buf when
 * copy is set (keys need that). 0 or -1. */
static int string(pstate_t *st, const char **s, size_t *n, int copy)
{
    const char *p = ++st->p, *e = st->end;
    while (p < e && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
        p++;
    if (p < e && *p == '"' && !copy) {
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
            st->buf[o++] = (char)c;
            p++;
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

static json_object *number(pstate_t *st)
{
    const char *p = st->p, *e = st->end, *b = p;
    int is_int = 1;
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
        return json_object_new_int64(*b == '-' ? -v : v);
    }
    if (!is_int && n <= 16 && !memchr(b, 'e', n) && !memchr(b, 'E', n)) {
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
    if (is_int) {
        errno = 0;
        long long v = strtoll(t, NULL, 10);
        if (!errno) {
            o = json_object_new_int64(v);
        } else if (*t != '-') {
            errno = 0;
            unsigned long long u = strtoull(t, NULL, 10);
            if (!errno)
                o = json_object_new_uint64(u);
        }
    }
    if (!o)
        o = json_object_new_double_s(strtod(t, NULL), t); /* prints as written */
    if (t != small)
        free(t);
    return o;
}

static json_object *literal(pstate_t *st, const char *word, json_object *v)
{
    size_t n = strlen(word);
    if ((size_t)(st->end - st->p) < n || memcmp(st->p, word, n) != 0) {
        json_object_put(v);
        return perr(st, "unexpected character");
    }
    st->p += n;
    return v; /* NULL for null, as json-c represents it */
}

static json_object *object(pstate_t *st, int depth)
{
    json_object *o = json_object_new_object();
    if (!o)
        return perr(st, "out of memory");
    st->p++;
    ws(st);
    if (st->p < st->end && *st->p == '}') {
        st->p++;
        return o;
    }
    for (;;) {
        ws(st);
        if (st->p >= st->end || *st->p != '"')
            goto bad;
        const char *k;
        size_t kl;
        if (string(st, &k, &kl, 1))
            goto fail;
        if (memchr(k, 0, kl)) {
            perr(st, "NUL in a key");
            goto fail;
        }
        ws(st);
        if (st->p >= st->end || *st->p != ':')
            goto bad;
        st->p++;
        /* The key lives in st->buf, which the value may reuse: json-c copies it now. */
        char kbuf[128], *key = kl < sizeof kbuf ? kbuf : malloc(kl + 1);
        if (!key) {
            perr(st, "out of memory");
            goto fail;
        }
        memcpy(key, k, kl + 1);
        json_object *v = value(st, depth + 1);
        if (st->failed) {
            if (key != kbuf)
                free(key);
            goto fail;
        }
        int rc = json_object_object_add(o, key, v);
        if (key != kbuf)
            free(key);
        if (rc) {
            json_object_put(v);
            perr(st, "out of memory");
            goto fail;
        }
        ws(st);
        if (st->p < st->end && *st->p == ',') {
            st->p++;
            continue;
        }
        if (st->p < st->end && *st->p == '}') {
            st->p++;
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
    json_object *a = json_object_new_array_ext(8);
    if (!a)
        return perr(st, "out of memory");
    st->p++;
    ws(st);
    if (st->p < st->end && *st->p == ']') {
        st->p++;
        return a;
    }
    for (;;) {
        json_object *v = value(st, depth + 1);
        if (st->failed)
            goto fail;
        if (json_object_array_add(a, v)) {
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
    if (depth > SCHEMA_MAX_DEPTH)
        return perr(st, "nested too deeply");
    ws(st);
    if (st->p >= st->end)
        return perr(st, "unexpected end of input");
    switch (*st->p) {
    case '{': return object(st, depth);
    case '[': return array(st, depth);
    case '"': {
        const char *s;
        size_t n;
        if (string(st, &s, &n, 0))
            return NULL;
        if (n > INT_MAX)
            return perr(st, "string too long");
        json_object *o = json_object_new_string_len(s, (int)n);
        return o ? o : perr(st, "out of memory");
    }
    case 't': return literal(st, "true", json_object_new_boolean(1));
    case 'f': return literal(st, "false", json_object_new_boolean(0));
    case 'n': return literal(st, "null", NULL);
    default:
        if (*st->p == '-' || (*st->p >= '0' && *st->p <= '9'))
            return number(st);
        return perr(st, "unexpected character");
    }
}

int schema_parse_json(const char *text, size_t len, json_object **out, char *err, size_t errlen)
{
    pstate_t st = {.p = text, .end = text + len, .start = text, .err = err, .errlen = errlen};
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
