/*
 * model_schema: structured output. Checks a final answer against the agent's output schema
 * with the schema module (compiled per check: checks happen once per final answer plus
 * re-asks, far rarer than the model calls around them), and builds the re-ask turn.
 */
#include "err.h"
#include "model_int.h"
#include "schema/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The reply text without surrounding blanks or a ```json fence, which models add even
 * when told not to. */
static void strip_fence(const char *s, size_t *off, size_t *len)
{
    size_t a = 0, b = strlen(s);
    while (a < b && strchr(" \t\r\n", s[a]))
        a++;
    while (b > a && strchr(" \t\r\n", s[b - 1]))
        b--;
    if (b - a >= 6 && strncmp(s + a, "```", 3) == 0 && strncmp(s + b - 3, "```", 3) == 0) {
        const char *nl = memchr(s + a, '\n', b - a);
        if (nl && (size_t)(nl - s) < b - 3) {
            a = (size_t)(nl - s) + 1;
            b -= 3;
            while (b > a && strchr(" \t\r\n", s[b - 1]))
                b--;
        }
    }
    *off = a;
    *len = b - a;
}

int model_output_check(json_object *schema, json_object *msg, char *why, size_t len)
{
    json_object *content = NULL;
    json_object_object_get_ex(msg, "content", &content);
    if (!content || !json_object_is_type(content, json_type_string)) {
        snprintf(why, len, "the reply has no text; the final answer must be a JSON value");
        return ERR_SCHEMA;
    }
    const char *text = json_object_get_string(content);
    size_t off, n;
    strip_fence(text, &off, &n);
    json_object *val = NULL;
    char perr[200];
    int prc = schema_parse_json(text + off, n, &val, perr, sizeof perr);
    if (prc == ERR_NOMEM)
        return prc;
    if (prc) {
        snprintf(why, len, "the reply is not valid JSON (%s)", perr);
        return ERR_SCHEMA;
    }
    int rc = model_schema_check(schema, val, why, len);
    json_object_put(val);
    if (rc == 0 && (off || n != strlen(text))) {
        char *bare = strndup(text + off, n);
        if (bare)
            json_object_object_add(msg, "content", json_object_new_string(bare));
        free(bare);
    }
    return rc;
}

int model_output_reask(json_object **messages, json_object *msg, const char *why)
{
    json_object *msgs = json_object_new_array(), *user = json_object_new_object();
    if (!msgs || !user) {
        json_object_put(msgs);
        json_object_put(user);
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < json_object_array_length(*messages); i++)
        json_object_array_add(msgs, json_object_get(json_object_array_get_idx(*messages, i)));
    json_object_array_add(msgs, json_object_get(msg));
    char text[700];
    snprintf(text, sizeof text,
             "Your answer does not match the required output schema: %s. Reply again with "
             "only the corrected JSON value: no prose, no code fence.",
             why);
    json_object_object_add(user, "role", json_object_new_string("user"));
    json_object_object_add(user, "content", json_object_new_string(text));
    json_object_array_add(msgs, user);
    json_object_put(*messages);
    *messages = msgs;
    return 0;
}
