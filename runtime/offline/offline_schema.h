/*
 * offline_schema: the small part of JSON Schema the offline model needs to pick and check
 * values: the type a schema asks for, and whether a candidate value satisfies the simple
 * keywords (type, const, enum, pattern, format, lengths, bounds). Not a validator: the
 * schema module validates every tool call; this only keeps the offline model's own guesses
 * valid. Patterns are compiled with PCRE2 (JSON Schema patterns are ECMA-262; the subset tool
 * authors write means the same in PCRE2). A pattern that does not compile constrains
 * nothing here: the schema module reports it to the tool's author.
 */
#ifndef AGENTD_OFFLINE_SCHEMA_H
#define AGENTD_OFFLINE_SCHEMA_H

#include <json-c/json.h>
#include <stddef.h>

/* First match of pattern in s: 1 (offsets in *so, *eo), 0 none, -1 pattern does not
 * compile or out of memory. */
int offline_regex_find(const char *pattern, const char *s, size_t *so, size_t *eo);

/* schema[key] when it is a string / a number, else NULL / 0. */
const char *offline_schema_str(json_object *schema, const char *key);
int offline_schema_num(json_object *schema, const char *key, double *out);

/* The JSON type a schema asks for ("string", "integer", ...), from "type" (first non-null
 * entry of a list), else inferred from const/enum/properties/items; "" when unconstrained. */
const char *offline_schema_type(json_object *schema);

/* Does value satisfy the simple constraints of schema (type, enum, const, pattern, format
 * email/date/uri/url, minLength/maxLength, minimum/maximum and their exclusive forms)? */
int offline_value_fits(json_object *schema, json_object *value);

#endif
