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

json_object *jx_new_str(const char *s)
{
    return json_object_new_string(s ? s : "");
}

json_object *jx_new_num(double x)
{
    if (!isfinite(x))
        return json_object_new_double(x);
    char buf[40];
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

int jx_put_str(buf_t *b, const char *s, size_t n, int flags)
{
    static const char hex[] = "0123456789abcdef";
    buf_add_fast(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, added in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *esc;
        char u[7];
        switch (ch) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '/':
            if (flags & JSON_C_TO_STRING_NOSLASHESCAPE)
                continue;
            esc = "\\/";
            break;
        default:
            if (ch >= 0x20)
                continue;
            memcpy(u, "\\u00", 4);
            u[4] = hex[ch >> 4];
            u[5] = hex[ch & 15];
            u[6] = 0;
            esc = u;
        }
        buf_add_fast(b, s + run, i - run);
        buf_adds(b, esc);
        run = i + 1;
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
        buf_add(b, "{", 1);
        json_object_object_foreach(v, key, val) {
            if (!first)
                buf_add(b, ",", 1);
            first = 0;
            jx_put_str(b, key, strlen(key), flags);
            buf_add(b, ":", 1);
            jx_put(b, val, flags);
        }
        return buf_add(b, "}", 1);
    case json_type_array:
        buf_add(b, "[", 1);
        for (size_t i = 0, n = json_object_array_length(v); i < n; i++) {
            if (i)
                buf_add(b, ",", 1);
            jx_put(b, json_object_array_get_idx(v, i), flags);
        }
        return buf_add(b, "]", 1);
    default: {
        /* Numbers and booleans print as json-c prints them (a double's kept text, its
         * ".0"); they are small and their printbuf goes with them. */
        size_t len;
        const char *t = json_object_to_json_string_length(v, flags, &len);
        return t ? buf_add(b, t, len) : buf_fail(b, ERR_NOMEM);
    }
    }
}
