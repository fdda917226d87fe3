/*
 * schema_json: JSON value helpers with JSON Schema's notion of equality: numbers
 * compare by value (1 == 1.0), objects ignore member order. The hash agrees with that
 * equality so uniqueItems can sort large arrays instead of comparing every pair.
 */
#include "schema_json.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

unsigned schema_type_of(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null: return T_NULL;
    case json_type_boolean: return T_BOOL;
    case json_type_object: return T_OBJ;
    case json_type_array: return T_ARR;
    case json_type_string: return T_STR;
    case json_type_int: return T_NUM | T_INT;
    case json_type_double: {
        double d = json_object_get_double(v);
        return isfinite(d) && d == floor(d) ? (T_NUM | T_INT) : T_NUM;
    }
    }
    return T_NULL;
}

static int num_equal(json_object *a, json_object *b)
{
    if (json_object_is_type(a, json_type_int) && json_object_is_type(b, json_type_int)) {
        /* json-c keeps values above INT64_MAX as uint64 */
        return json_object_get_int64(a) == json_object_get_int64(b) &&
               json_object_get_uint64(a) == json_object_get_uint64(b);
    }
    return json_object_get_double(a) == json_object_get_double(b);
}

int schema_json_equal(json_object *a, json_object *b)
{
    if (a == b)
        return 1;
    enum json_type ta = json_object_get_type(a), tb = json_object_get_type(b);
    int na = ta == json_type_int || ta == json_type_double;
    int nb = tb == json_type_int || tb == json_type_double;
    if (na && nb)
        return num_equal(a, b);
    if (ta != tb)
        return 0;
    switch (ta) {
    case json_type_null: return 1;
    case json_type_boolean: return json_object_get_boolean(a) == json_object_get_boolean(b);
    case json_type_string: {
        int la = json_object_get_string_len(a);
        return la == json_object_get_string_len(b) &&
               !memcmp(json_object_get_string(a), json_object_get_string(b), (size_t)la);
    }
    case json_type_array: {
        size_t n = json_object_array_length(a);
        if (n != json_object_array_length(b))
            return 0;
        for (size_t i = 0; i < n; i++)
            if (!schema_json_equal(json_object_array_get_idx(a, i),
                                   json_object_array_get_idx(b, i)))
                return 0;
        return 1;
    }
    case json_type_object: {
        if (json_object_object_length(a) != json_object_object_length(b))
            return 0;
        /* Objects built alike (array items, mostly) list their keys in the same order:
         * walk both and look a key up only where the orders differ. Equal sizes and
         * every key of a found in b with an equal value make the objects equal. */
        struct lh_entry *eb = json_object_get_object(b)->head;
        json_object_object_foreach(a, k, va)
        {
            json_object *vb;
            const char *kb = eb ? (const char *)lh_entry_k(eb) : NULL;
            if (kb && (kb == k || !strcmp(k, kb))) /* shared keys match by pointer */
                vb = (json_object *)lh_entry_v(eb);
            else if (!json_object_object_get_ex(b, k, &vb))
                return 0;
            if (!schema_json_equal(va, vb))
                return 0;
            eb = eb ? eb->next : NULL;
        }
        return 1;
    }
    default: return 0;
    }
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static uint64_t bytes_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* A number's value as bits, equal for equal numbers (1 and 1.0, -0.0 and 0.0). */
static uint64_t num_bits(json_object *v)
{
    double d = json_object_get_double(v);
    if (d == 0)
        d = 0; /* -0.0 equals 0.0 */
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return bits ^ 4;
}

uint64_t schema_json_hash(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null: return 1;
    case json_type_boolean: return json_object_get_boolean(v) ? 2 : 3;
    case json_type_int:
    case json_type_double: return mix(num_bits(v));
    case json_type_string:
        return bytes_hash(json_object_get_string(v), (size_t)json_object_get_string_len(v));
    case json_type_array: {
        uint64_t h = 5;
        for (size_t i = 0; i < json_object_array_length(v); i++)
            h = mix(h * 31 + schema_json_hash(json_object_array_get_idx(v, i)));
        return h;
    }
    case json_type_object: {
        uint64_t h = 6;
        json_object_object_foreach(v, k, val)
            h += mix(bytes_hash(k, strlen(k)) ^ schema_json_hash(val));
        return h;
    }
    }
    return 0;
}

/* A scalar's part of schema_json_shallow: containers by type and size only. */
static uint64_t shallow_one(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null: return 1;
    case json_type_boolean: return json_object_get_boolean(v) ? 2 : 3;
    case json_type_int:
    case json_type_double: return num_bits(v);
    case json_type_string: {
        size_t n = (size_t)json_object_get_string_len(v);
        const unsigned char *s = (const unsigned char *)json_object_get_string(v);
        return n ? (n << 16 | (uint64_t)s[0] << 8 | s[n - 1]) * 31 + 5 : 5;
    }
    case json_type_array: return json_object_array_length(v) << 4 | 6;
    case json_type_object: return (uint64_t)json_object_object_length(v) << 4 | 7;
    }
    return 0;
}

uint64_t schema_json_shallow(json_object *v)
{
    if (!json_object_is_type(v, json_type_object))
        return mix(shallow_one(v));
    uint64_t h = 8;
    json_object_object_foreach(v, k, val) /* a sum: member order does not count */
        h += (((uint64_t)(unsigned char)k[0] << 8 | (unsigned char)(k[0] ? k[1] : 0)) ^
              shallow_one(val)) * 0x9e3779b97f4a7c15ull;
    return mix(h);
}

uint64_t schema_json_quick(json_object *v)
{
    if (!json_object_is_type(v, json_type_object))
        return mix(shallow_one(v));
    /* The members whose keys start with the smallest two bytes: found without a call
     * into json-c, the same whatever the member order. */
    unsigned best = UINT_MAX;
    uint64_t n = 0;
    json_object_object_foreach(v, k, val)
    {
        (void)val;
        unsigned kc = (unsigned)(unsigned char)k[0] << 8 | (unsigned char)(k[0] ? k[1] : 0);
        if (kc < best)
            best = kc;
        n++;
    }
    uint64_t h = n << 4 | 9;
    json_object_object_foreach(v, k2, val2)
    {
        unsigned kc = (unsigned)(unsigned char)k2[0] << 8 | (unsigned char)(k2[0] ? k2[1] : 0);
        if (kc == best)
            h += (kc ^ shallow_one(val2)) * 0x9e3779b97f4a7c15ull;
    }
    return mix(h);
}

size_t schema_fmt_num(char *buf, size_t len, double x)
{
    int n;
    if (x == floor(x) && fabs(x) < 1e15 && len > 17 && !(x == 0 && signbit(x))) {
        /* Integral bounds are the common case in messages; snprintf costs ~1 µs. */
        char t[24];
        size_t k = 0, o = 0;
        unsigned long long u = (unsigned long long)fabs(x);
        do {
            t[k++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (x < 0)
            buf[o++] = '-';
        while (k)
            buf[o++] = t[--k];
        buf[o] = 0;
        return o;
    }
    if (x == floor(x) && fabs(x) < 1e15)
        n = snprintf(buf, len, "%.0f", x);
    else {
        n = snprintf(buf, len, "%.15g", x);
        double back;
        if (sscanf(buf, "%lf", &back) != 1 || back != x)
            n = snprintf(buf, len, "%.17g", x);
    }
    return n < 0 ? 0 : (size_t)n;
}

size_t schema_fmt_value(char *buf, size_t len, json_object *v)
{
    if (!len)
        return 0;
    buf[0] = 0;
    int n = 0;
    switch (json_object_get_type(v)) {
    case json_type_null: n = snprintf(buf, len, "null"); break;
    case json_type_boolean:
        n = snprintf(buf, len, "%s", json_object_get_boolean(v) ? "true" : "false");
        break;
    case json_type_int:
        n = snprintf(buf, len, "%lld", (long long)json_object_get_int64(v));
        break;
    case json_type_double: return schema_fmt_num(buf, len, json_object_get_double(v));
    case json_type_string: {
        int sl = json_object_get_string_len(v);
        n = snprintf(buf, len, "\"%.*s%s\"", sl > 60 ? 60 : sl, json_object_get_string(v),
                     sl > 60 ? "..." : "");
        break;
    }
    case json_type_array: n = snprintf(buf, len, "[...]"); break;
    case json_type_object: n = snprintf(buf, len, "{...}"); break;
    }
    return n < 0 ? 0 : ((size_t)n >= len ? len - 1 : (size_t)n);
}
