/*
 * offline_schema: see offline_schema.h.
 */
#include "offline_schema.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <string.h>

/* Compiled per call: patterns are short and a request offers a handful of tools. */
int offline_regex_find(const char *pattern, const char *s, size_t *so, size_t *eo)
{
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &errcode,
                                   &erroff, NULL);
    if (!re)
        return -1;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int found = md ? 0 : -1;
    if (md && pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL) >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        *so = ov[0];
        *eo = ov[1];
        found = 1;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return found;
}

const char *offline_schema_str(json_object *schema, const char *key)
{
    json_object *v;
    if (json_object_object_get_ex(schema, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

int offline_schema_num(json_object *schema, const char *key, double *out)
{
    json_object *v;
    if (!json_object_object_get_ex(schema, key, &v) ||
        !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return 0;
    *out = json_object_get_double(v);
    return 1;
}

const char *offline_schema_type(json_object *schema)
{
    json_object *t, *v;
    if (!json_object_is_type(schema, json_type_object))
        return "";
    if (json_object_object_get_ex(schema, "type", &t)) {
        if (json_object_is_type(t, json_type_string))
            return json_object_get_string(t);
        for (size_t i = 0;
             json_object_is_type(t, json_type_array) && i < json_object_array_length(t); i++) {
            const char *s = json_object_get_string(json_object_array_get_idx(t, i));
            if (s && strcmp(s, "null") != 0)
                return s;
        }
    }
    if (json_object_object_get_ex(schema, "const", &v) ||
        (json_object_object_get_ex(schema, "enum", &t) &&
         (v = json_object_array_get_idx(t, 0)) != NULL)) {
        switch (json_object_get_type(v)) {
        case json_type_string: return "string";
        case json_type_int: return "integer";
        case json_type_double: return "number";
        case json_type_boolean: return "boolean";
        default: break;
        }
    }
    if (json_object_object_get_ex(schema, "properties", &v))
        return "object";
    if (json_object_object_get_ex(schema, "items", &v))
        return "array";
    return "";
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int type_fits(const char *type, json_object *v)
{
    json_type jt = json_object_get_type(v);
    if (!*type)
        return 1;
    if (!strcmp(type, "integer"))
        return jt == json_type_int || (jt == json_type_double && floor(json_object_get_double(v)) ==
                                                                     json_object_get_double(v));
    if (!strcmp(type, "number"))
        return jt == json_type_int || jt == json_type_double;
    if (!strcmp(type, "string"))
        return jt == json_type_string;
    if (!strcmp(type, "boolean"))
        return jt == json_type_boolean;
    if (!strcmp(type, "object"))
        return jt == json_type_object;
    if (!strcmp(type, "array"))
        return jt == json_type_array;
    if (!strcmp(type, "null"))
        return jt == json_type_null;
    return 1;
}

static int format_fits(const char *format, const char *s)
{
    static const struct {
        const char *name, *re;
    } formats[] = {
        {"email", "^[^@\\s]+@[^@\\s]+\\.[A-Za-z]{2,}$"},
        {"date", "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        {"uri", "^[a-zA-Z][a-zA-Z0-9+.-]*://\\S+$"},
        {"url", "^https?://\\S+$"},
    };
    size_t so, eo;
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
        if (!strcmp(format, formats[i].name))
            return offline_regex_find(formats[i].re, s, &so, &eo) == 1;
    return 1;
}

int offline_value_fits(json_object *schema, json_object *value)
{
    json_object *c, *en;
    double lim;
    if (!json_object_is_type(schema, json_type_object))
        return 1;
    json_object *tv;
    if (json_object_object_get_ex(schema, "type", &tv) &&
        json_object_is_type(tv, json_type_array)) {
        int any = 0;
        for (size_t i = 0; i < json_object_array_length(tv) && !any; i++)
            any = type_fits(json_object_get_string(json_object_array_get_idx(tv, i)), value);
        if (!any)
            return 0;
    } else if (!type_fits(offline_schema_type(schema), value)) {
        return 0;
    }
    if (json_object_object_get_ex(schema, "const", &c) && !json_object_equal(c, value))
        return 0;
    if (json_object_object_get_ex(schema, "enum", &en) &&
        json_object_is_type(en, json_type_array)) {
        int any = 0;
        for (size_t i = 0; i < json_object_array_length(en) && !any; i++)
            any = json_object_equal(json_object_array_get_idx(en, i), value);
        if (!any)
            return 0;
    }
    if (json_object_is_type(value, json_type_string)) {
        const char *s = json_object_get_string(value), *pat = offline_schema_str(schema, "pattern"),
                   *fmt = offline_schema_str(schema, "format");
        size_t so, eo, n = utf8_len(s);
        if ((offline_schema_num(schema, "minLength", &lim) && (double)n < lim) ||
            (offline_schema_num(schema, "maxLength", &lim) && (double)n > lim))
            return 0;
        if (pat && offline_regex_find(pat, s, &so, &eo) == 0)
            return 0;
        if (fmt && !format_fits(fmt, s))
            return 0;
    }
    if (json_object_is_type(value, json_type_int) || json_object_is_type(value, json_type_double)) {
        double d = json_object_get_double(value);
        if ((offline_schema_num(schema, "minimum", &lim) && d < lim) ||
            (offline_schema_num(schema, "maximum", &lim) && d > lim) ||
            (offline_schema_num(schema, "exclusiveMinimum", &lim) && d <= lim) ||
            (offline_schema_num(schema, "exclusiveMaximum", &lim) && d >= lim))
            return 0;
    }
    return 1;
}
