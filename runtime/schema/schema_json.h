/*
 * schema_json: JSON value helpers for the validator (internal).
 */
#ifndef AGENTD_SCHEMA_JSON_H
#define AGENTD_SCHEMA_JSON_H

#include "schema_int.h"

#include <stdint.h>

/* Hash consistent with schema_json_equal. */
uint64_t schema_json_hash(json_object *v);
/* A cheaper hash consistent with schema_json_equal: scalars by value (strings by length
 * and end bytes), objects by their members one level deep, other containers by size.
 * uniqueItems compares only the items whose hashes agree. */
uint64_t schema_json_shallow(json_object *v);
/* Cheaper than schema_json_shallow, and coarser: an object by its size and the members
 * whose keys start with the smallest two bytes. Equal values, equal hashes. */
uint64_t schema_json_quick(json_object *v);
/* Shortest text that reads back as x ("1000000", "0.1"). Returns length. */
size_t schema_fmt_num(char *buf, size_t len, double x);
/* Short text for a value in messages: scalars in full, long strings cut, containers as
 * "[...]"/"{...}". Never touches json-c's cached serialisation, so it is safe while
 * other threads validate against the same schema. */
size_t schema_fmt_value(char *buf, size_t len, json_object *v);

#endif
