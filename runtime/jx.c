/*
 * jx: json-c field helpers (see jx.h).
 */
#include "jx.h"

#include "err.h"
#include "schema/schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_object *jx_get(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

const char *jx_str(json_object *o, const char *key)
{
    return jx_str_or(o, key, NULL);
}

const char *jx_str_or(json_object *o, const char *key, const char *def)
{
    json_object *v = jx_get(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : def;
}

int64_t jx_int(json_object *o, const char *key, int64_t def)
{
    json_object *v = jx_get(o, key);
    return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
               ? json_object_get_int64(v)
               : def;
}

void jx_members(json_object *o, const char *const *keys, json_object **out)
{
    size_t n = 0;
    while (keys[n])
        out[n++] = NULL;
    if (!o || !json_object_is_type(o, json_type_object))
        return;
    json_object_object_foreach(o, k, v) {
        for (size_t i = 0; i < n; i++)
            if (k[0] == keys[i][0] && strcmp(k, keys[i]) == 0) {
                out[i] = v;
                break;
            }
    }
}

const char *jx_as_str(json_object *v)
{
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

json_object *jx_str_ref(json_object *v, const char *def)
{
    if (!v || !json_object_is_type(v, json_type_string))
        return jx_new_str(def);
    /* A string with a NUL byte: jx_new_str would keep its text up to the NUL. */
    const char *s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v))
        return jx_new_str(s);
    return json_object_get(v);
}

json_object *jx_new_str(const char *s)
{
    return json_object_new_string(s ? s : "");
}

json_object *jx_new_num(double x)
{
    if (!isfinite(x))
        return json_object_new_double(x);
    char buf[40];
    /* A whole number below 1e15 (costs of 0, counts): "%.15g" prints its digits and reads
     * back exactly, so they are written without printf and strtod. */
    if (fabs(x) < 1e15 && x == (double)(long long)x) {
        long long v = (long long)x;
        char digits[24], *p = digits + sizeof digits;
        unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
        *--p = '\0';
        do
            *--p = (char)('0' + u % 10);
        while (u /= 10);
        if (v < 0 || (v == 0 && signbit(x)))
            *--p = '-';
        size_t n = strlen(p);
        memcpy(buf, p, n);
        memcpy(buf + n, ".0", 3);
        return json_object_new_double_s(x, buf);
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf - 2, "%.*g", prec, x);
        if (prec == 17 || strtod(buf, NULL) == x)
            break;
    }
    /* json-c writes integral doubles as "30.0": keep them reading as doubles. */
    if (!strpbrk(buf, ".eE"))
        strcat(buf, ".0");
    return json_object_new_double_s(x, buf);
}

json_object *jx_parse(const char *text)
{
    json_object *o = NULL;
    char why[8];
    if (!text || schema_parse_json(text, strlen(text), &o, why, sizeof why))
        return NULL;
    return o;
}

/* Bytes jx_put_str escapes: controls, '"', '\\' and '/' (the last unless NOSLASHESCAPE). */
static const unsigned char jx_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['"'] = 1, ['\\'] = 1, ['/'] = 1,
};

#define JX_ONES 0x0101010101010101ULL
#define JX_HIGHS 0x8080808080808080ULL

/* Nonzero iff one of the 8 bytes of w is special (exact for presence, not position). */
static inline uint64_t jx_word_special(uint64_t w, uint64_t slash)
{
    uint64_t q = w ^ (JX_ONES * '"'), bs = w ^ (JX_ONES * '\\'), sl = w ^ slash;
    return ((w - JX_ONES * 0x20) & ~w) | ((q - JX_ONES) & ~q) | ((bs - JX_ONES) & ~bs) |
           ((sl - JX_ONES) & ~sl);
}

int jx_put_str(buf_t *b, const char *s, size_t n, int flags)
{
    static const char hex[] = "0123456789abcdef";
    const int noslash = (flags & JSON_C_TO_STRING_NOSLASHESCAPE) != 0;
    /* With NOSLASHESCAPE the '/' lane repeats the '"' test: it finds nothing more. */
    const uint64_t slash = JX_ONES * (noslash ? '"' : '/');
    buf_add_fast(b, "\"", 1);
    size_t run = 0, i = 0; /* s[run, i) is copied as it is, in one go */
    while (i < n) {
        /* Eight plain bytes at a time, then byte by byte through the table. */
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (jx_word_special(w, slash) & JX_HIGHS)
                break;
            i += 8;
        }
        while (i < n && !jx_special[(unsigned char)s[i]])
            i++;
        if (i == n)
            break;
        unsigned char ch = (unsigned char)s[i];
        char esc[6] = {'\\', 0, '0', '0', 0, 0};
        size_t elen = 2;
        switch (ch) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '/':
            if (noslash) {
                i++;
                continue;
            }
            esc[1] = '/';
            break;
        default:
            esc[1] = 'u';
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            elen = 6;
        }
        buf_add_fast(b, s + run, i - run);
        buf_add_fast(b, esc, elen);
        run = ++i;
    }
    buf_add_fast(b, s + run, n - run);
    return buf_add_fast(b, "\"", 1);
}

int jx_put(buf_t *b, json_object *v, int flags)
{
    int first = 1;
    switch (v ? json_object_get_type(v) : json_type_null) {
    case json_type_null:
        return buf_add(b, "null", 4);
    case json_type_string:
        return jx_put_str(b, json_object_get_string(v), (size_t)json_object_get_string_len(v),
                          flags);
    case json_type_object:
        buf_add_fast(b, "{", 1);
        json_object_object_foreach(v, key, val) {
            if (!first)
                buf_add_fast(b, ",", 1);
            first = 0;
            jx_put_str(b, key, strlen(key), flags);
            buf_add_fast(b, ":", 1);
            jx_put(b, val, flags);
        }
        return buf_add_fast(b, "}", 1);
    case json_type_array:
        buf_add_fast(b, "[", 1);
        for (size_t i = 0, n = json_object_array_length(v); i < n; i++) {
            if (i)
                buf_add_fast(b, ",", 1);
            jx_put(b, json_object_array_get_idx(v, i), flags);
        }
        return buf_add_fast(b, "]", 1);
    default: {
        /* Numbers and booleans print as json-c prints them (a double's kept text, its
         * ".0"); they are small and their printbuf goes with them. */
        size_t len;
        const char *t = json_object_to_json_string_length(v, flags, &len);
        return t ? buf_add(b, t, len) : buf_fail(b, ERR_NOMEM);
    }
    }
}
