/*
 * jx: the runtime's json-c field helpers, one meaning per name.
 *
 *   jx_get      the member as it is (borrowed), NULL if o is not given or has no such key
 *   jx_str      the member if it is a string (borrowed text), else NULL
 *   jx_str_or   the same with a default
 *   jx_int      the member if it is a number, else the default
 *   jx_members  several members at once (as jx_get finds each), in one walk over o's
 *               members: cheaper than a hashed lookup per key for objects of a few members
 *   jx_as_str   a value's text if it is a string (borrowed), else NULL (jx_str of a value)
 *   jx_str_ref  a string value as jx_new_str would copy it (NULL or not a string: def), but
 *               the value itself with one more reference when that is the same: no copy
 *   jx_new_str  a NEW string value (NULL is taken as ""), NULL when memory ran out
 *   jx_new_num  a NEW number value printed in the shortest form that reads back as the same
 *               double (7.000237, not json-c's 7.0002370000000003), NULL when memory ran out
 *   jx_parse    a NEW value parsed from text agentd stored or received, NULL if not JSON
 *   jx_put_str  append a JSON string literal to a buf, escaped byte for byte as json-c
 *               escapes it under the same JSON_C_TO_STRING_* flags (NOSLASHESCAPE or not)
 *   jx_put      append a value as json_object_to_json_string_ext(v, flags) writes it (NULL:
 *               null; flags PLAIN or PLAIN|NOSLASHESCAPE), without leaving a printbuf on
 *               the objects, arrays and strings of v
 *
 * Parsing JSON text is schema_parse_json (schema/schema.h): the one strict RFC 8259 parse
 * used for every document from outside (tool arguments, model replies, files, HTTP bodies),
 * with the runtime's one nesting limit (SCHEMA_JSON_MAX_DEPTH); jx_parse is the same parse
 * for text read back (rows, cache entries, events), where a message is not needed.
 * json_tokener_parse is not used for either: it stops at 32 levels, below what the runtime
 * accepts and writes, so a row written could not be read back. Nothing here allocates
 * except jx_new_str, jx_new_num, jx_str_ref, jx_parse and the buf the jx_put functions
 * append to;
 * nothing re-enters. The jx_put functions let a caller write JSON text with a string
 * builder instead of assembling a json-c tree only to print it (provider request bodies).
 */
#ifndef AGENTD_JX_H
#define AGENTD_JX_H

#include "buf.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

json_object *jx_get(json_object *o, const char *key);
const char *jx_str(json_object *o, const char *key);
const char *jx_str_or(json_object *o, const char *key, const char *def);
int64_t jx_int(json_object *o, const char *key, int64_t def);
/* keys: NULL-ended; out: one slot per key, NULL for absent or null members. */
void jx_members(json_object *o, const char *const *keys, json_object **out);
const char *jx_as_str(json_object *v);
/* NEW reference; NULL when memory ran out. */
json_object *jx_str_ref(json_object *v, const char *def);
json_object *jx_new_str(const char *s);
json_object *jx_new_num(double x);
/* NULL when text is NULL, not JSON, the literal null, or memory ran out. */
json_object *jx_parse(const char *text);
/* Both return buf_add's code (sticky: a caller may check once at the end). */
int jx_put_str(buf_t *b, const char *s, size_t n, int flags);
int jx_put(buf_t *b, json_object *v, int flags);

#endif
