/*
 * jx: json-c field helpers (see jx.h).
 */
#include "jx.h"

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
