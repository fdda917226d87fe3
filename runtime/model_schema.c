/*
 * model_schema: checks a structured final answer against the agent's output schema with
 * the schema module. Compiled per check: checks happen once per final answer (plus
 * re-asks), far rarer than the model calls around them.
 */
#include "err.h"
#include "model_int.h"
#include "schema.h"

#include <stdio.h>

int model_schema_check(json_object *schema, json_object *val, char *why, size_t len)
{
    char err[400];
    schema_t *s = schema_compile(schema, NULL, err, sizeof err);
    if (!s) {
        snprintf(why, len, "the output schema is invalid: %s", err);
        return ERR_INVAL;
    }
    int rc = schema_check(s, val, why, len);
    schema_free(s);
    return rc;
}
