/*
 * schema: JSON Schema validation (draft 2020-12 and draft-07) on json-c values.
 *
 * Compile once, validate many. schema_compile resolves every $ref, $anchor and $id,
 * compiles patterns (PCRE2, ECMA-262 flavoured) and flattens each schema object into a
 * short array of keyword operations; schema_validate walks that form without allocating
 * on the valid path. $ref never goes to the network: a reference resolves inside the
 * document, to the embedded meta-schemas, to a file under opts->base_dir, or through the
 * URL-prefix -> directory pairs in opts->map.
 *
 * Threads: a compiled schema is immutable, so several threads may validate against the
 * same schema_t at once; a schema_result_t belongs to one thread at a time. The one
 * global state is schema_parse_json's set of shared object keys (lock-free, bounded, see
 * schema_parse.c; schema_compile adds property names to it). Nothing here calls back
 * into the caller.
 *
 * Bounds: schema and instance nesting deeper than SCHEMA_MAX_DEPTH, and $ref cycles that
 * never consume the instance, end with an error instead of recursion without end; pattern
 * matching runs under PCRE2 match and depth limits.
 */
#ifndef AGENTD_SCHEMA_H
#define AGENTD_SCHEMA_H

#include <json-c/json.h>
#include <stddef.h>

#define SCHEMA_MAX_DEPTH 512
/* The one nesting limit of JSON the runtime reads or writes: text parsed by
 * schema_parse_json (tool arguments, model bodies and streamed events, json.decode, ctx.kv
 * values, batch lines, stored rows read back) and values converted from Lua (tool results,
 * json.encode, ctx.kv.put): at most this many nested arrays/objects. Documents that are only
 * validated (SCHEMA_PARSE_DOCUMENT) may nest to SCHEMA_MAX_DEPTH. */
#define SCHEMA_JSON_MAX_DEPTH 100

typedef struct schema schema_t;

typedef struct schema_opts {
    int draft;                /* 0: from $schema, default 2020-12; 7 or 2020 to force */
    int format_assert;        /* format keyword asserts instead of annotates */
    const char *base_dir;     /* relative $ref to files resolve here (NULL: none) */
    const char *const *map;   /* NULL-terminated pairs {"http://localhost:1234/", "/dir/", ...} */
    int max_errors;           /* collect at most this many (0: 1 = stop at first) */
} schema_opts_t;

/* Compile doc (borrowed; the schema keeps its own reference, so the caller may drop
 * theirs, but must not modify the document while the schema lives). opts may be NULL
 * for defaults. Returns NULL and a one-line message naming the schema location
 * (e.g. "schema /properties/a/minLength: must be a non-negative integer") if the
 * schema is bad or a $ref cannot be resolved. */
schema_t *schema_compile(json_object *doc, const schema_opts_t *opts, char *errbuf,
                         size_t errlen);
void schema_free(schema_t *s);

typedef struct schema_error {
    const char *instance_ptr; /* JSON pointer into the instance, "" for the root */
    const char *keyword_loc;  /* JSON pointer into the schema, through $ref */
    const char *message;      /* e.g. "must be >= 1" */
} schema_error_t;

/* Collector of errors for schema_validate. Reusable: each schema_validate clears it. */
typedef struct schema_result schema_result_t;
schema_result_t *schema_result_new(void);
void schema_result_free(schema_result_t *r);
size_t schema_result_count(const schema_result_t *r);
/* Error i (0-based), valid until the next schema_validate with r, schema_result_free or
 * schema_free of the schema that produced it; NULL if i is out of range. Validation only
 * records errors: the first schema_result_get formats them all (their JSON pointers and
 * messages), which is why the schema must still be there; the instance need not be. */
const schema_error_t *schema_result_get(const schema_result_t *r, size_t i);

/* 0 if inst is valid, ERR_SCHEMA if not (res, if given, then holds up to
 * opts.max_errors errors; NULL res stops at the first error and records nothing),
 * ERR_NOMEM if memory ran out. inst is borrowed. */
int schema_validate(const schema_t *s, json_object *inst, schema_result_t *res);

/* Parse text (as schema_parse_json) and validate it: the same return codes, errors in res
 * and message in err as schema_parse_json followed by schema_validate, without building
 * json-c values when the instance is valid (it is parsed into a compact tree, walked for
 * the verdict only; an invalid or unusual instance is parsed again the ordinary way to
 * report it). For callers that need only the verdict and errors, not the values. */
int schema_validate_text(const schema_t *s, const char *text, size_t len, schema_result_t *res,
                         char *err, size_t errlen);

/* Convenience for tools and structured output: 0 valid; ERR_SCHEMA with a one-line
 * message like "/items/2/qty: must be >= 1; /name: must be at most 40 characters"
 * (up to 16 errors, whatever fits in len) in msg. */
int schema_check(const schema_t *s, json_object *inst, char *msg, size_t len);

/* Parse JSON text strictly (RFC 8259, nesting up to SCHEMA_JSON_MAX_DEPTH) into *out, a new
 * reference (NULL for the literal null). Faster than json_tokener for small documents.
 * This is the runtime's one parse for JSON from outside (tool arguments, model replies and
 * bodies, files, json.decode): on failure ERR_INVAL (ERR_NOMEM if memory ran out) and
 * "invalid JSON at byte N: why" in err; callers prefix what they were reading. */
int schema_parse_json(const char *text, size_t len, json_object **out, char *err,
                      size_t errlen);
/* Text that is not valid UTF-8 is refused ("invalid UTF-8 in a string"), and so is \u0000
 * ("NUL character (\u0000) in a string"): every string parsed becomes a C string somewhere;
 * so is nesting deeper than SCHEMA_JSON_MAX_DEPTH. SCHEMA_PARSE_DOCUMENT accepts \u0000 and
 * nesting to SCHEMA_MAX_DEPTH, for documents that are only validated (agentd schema check).
 * schema_parse_json is schema_parse_json_ex with flags 0. */
enum { SCHEMA_PARSE_DOCUMENT = 1 };
int schema_parse_json_ex(const char *text, size_t len, int flags, json_object **out, char *err,
                         size_t errlen);

/* `agentd schema check [--draft 7|2020-12] [--format-assert] [--map URL=DIR]...
 *  [--all] SCHEMA.json INSTANCE.json` with argv[0] == "schema".
 * Exit codes: 0 valid, 1 invalid, 2 usage error or bad schema. */
int schema_cli_main(int argc, char **argv);

#endif
