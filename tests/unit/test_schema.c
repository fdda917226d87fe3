/*
 * schema unit tests: error messages and locations, error budgets, compile errors,
 * safety bounds (deep nesting, $ref cycles, catastrophic patterns, huge arrays),
 * files through base_dir and map, format modes, threads, and the CLI.
 */
#include "check.h"
#include "err.h"
#include "schema/schema.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *tool_schema =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"name\",\"items\"],"
    "\"properties\":{"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":40},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\"},"
    "\"priority\":{\"enum\":[\"low\",\"normal\",\"high\"]},"
    "\"items\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"type\":\"object\","
    "\"required\":[\"sku\",\"qty\"],\"properties\":{\"sku\":{\"type\":\"string\","
    "\"pattern\":\"^[A-Z]{3}-[0-9]{4}$\"},\"qty\":{\"type\":\"integer\",\"minimum\":1}}}}}}";

static schema_t *compile_str(const char *text, const schema_opts_t *o, char *err, size_t len)
{
    json_object *doc = json_tokener_parse(text);
    if (!doc)
        return NULL;
    schema_t *s = schema_compile(doc, o, err, len);
    json_object_put(doc); /* the schema holds its own reference */
    return s;
}

static int check_str(const schema_t *s, const char *inst_text, char *msg, size_t len)
{
    json_object *inst = json_tokener_parse(inst_text);
    int rc = schema_check(s, inst, msg, len);
    json_object_put(inst);
    return rc;
}

static void test_messages_and_pointers(void)
{
    char err[256], msg[1024];
    schema_t *s = compile_str(tool_schema, NULL, err, sizeof err);
    CHECK(s != NULL);
    CHECK_EQ_INT(check_str(s, "{\"name\":\"a\",\"items\":[{\"sku\":\"ABC-1234\",\"qty\":2}]}", msg,
                           sizeof msg),
                 0);
    CHECK_EQ_INT(check_str(s,
                           "{\"name\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
                           "\"items\":[{\"sku\":\"ABC-1234\",\"qty\":1},{\"sku\":\"ABC-1234\","
                           "\"qty\":1},{\"sku\":\"ABC-1234\",\"qty\":0}]}",
                           msg, sizeof msg),
                 ERR_SCHEMA);
    CHECK_EQ_STR(msg, "/name: must be at most 40 characters; /items/2/qty: must be >= 1");
    CHECK_EQ_INT(check_str(s, "{\"name\":\"a\",\"items\":[{\"sku\":\"abc\"}],\"x/y~\":1,"
                              "\"priority\":\"urgent\"}",
                           msg, sizeof msg),
                 ERR_SCHEMA);
    CHECK(strstr(msg, "/items/0: missing required property \"qty\"") != NULL);
    CHECK(strstr(msg, "/items/0/sku: must match pattern \"^[A-Z]{3}-[0-9]{4}$\"") != NULL);
    CHECK(strstr(msg, "/: unexpected property \"x/y~\"") != NULL);
    CHECK(strstr(msg, "/priority: must be one of: \"low\", \"normal\", \"high\"") != NULL);
    CHECK_EQ_INT(check_str(s, "[]", msg, sizeof msg), ERR_SCHEMA);
    CHECK_EQ_STR(msg, "/: must be object, not array");
    schema_free(s);
}

static void test_result_locations(void)
{
    char err[256];
    schema_opts_t o = {.max_errors = 10};
    schema_t *s = compile_str("{\"$defs\":{\"pos\":{\"type\":\"number\",\"exclusiveMinimum\":0}},"
                              "\"properties\":{\"a/b\":{\"$ref\":\"#/$defs/pos\"},"
                              "\"t~\":{\"items\":{\"type\":\"string\"}}}}",
                              &o, err, sizeof err);
    CHECK(s != NULL);
    json_object *inst = json_tokener_parse("{\"a/b\":0,\"t~\":[\"x\",3]}");
    schema_result_t *r = schema_result_new();
    CHECK_EQ_INT(schema_validate(s, inst, r), ERR_SCHEMA);
    CHECK_EQ_INT(schema_result_count(r), 2);
    const schema_error_t *e = schema_result_get(r, 0);
    CHECK_EQ_STR(e->instance_ptr, "/a~1b");
    CHECK_EQ_STR(e->keyword_loc, "/properties/a~1b/$ref/exclusiveMinimum");
    CHECK_EQ_STR(e->message, "must be > 0");
    e = schema_result_get(r, 1);
    CHECK_EQ_STR(e->instance_ptr, "/t~0/1");
    CHECK_EQ_STR(e->keyword_loc, "/properties/t~0/items/type");
    CHECK(schema_result_get(r, 2) == NULL);
    /* The collector is reused: a valid instance leaves it empty. */
    json_object *ok = json_tokener_parse("{\"a/b\":1}");
    CHECK_EQ_INT(schema_validate(s, ok, r), 0);
    CHECK_EQ_INT(schema_result_count(r), 0);
    /* No collector: same verdict, stops at the first error. */
    CHECK_EQ_INT(schema_validate(s, inst, NULL), ERR_SCHEMA);
    json_object_put(ok);
    json_object_put(inst);
    schema_result_free(r);
    schema_free(s);
}

/* Errors are recorded during validation and formatted when first read: what they show
 * of the instance (keys, values in messages) must have been copied, since the caller may
 * free the instance first; messages built on the validator's stack (type names, numbers)
 * likewise. */
static void test_errors_read_later(void)
{
    char err[256];
    schema_opts_t o = {.max_errors = 10};
    const char *long_key = "a key longer than forty-eight bytes, with ~ and / in it";
    schema_t *s = compile_str("{\"type\":\"object\",\"additionalProperties\":false,"
                              "\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":1.5},"
                              "\"list\":{\"minItems\":3,\"items\":{\"type\":\"string\"}},"
                              "\"o\":{\"additionalProperties\":{\"type\":\"null\"}}}}",
                              &o, err, sizeof err);
    CHECK(s != NULL);
    char text[512];
    snprintf(text, sizeof text, "{\"n\":0,\"list\":[\"x\",2],\"o\":{\"%s\":true},\"%s!\":1}",
             long_key, long_key);
    json_object *inst = NULL;
    CHECK_EQ_INT(schema_parse_json(text, strlen(text), &inst, err, sizeof err), 0);
    schema_result_t *r = schema_result_new();
    CHECK_EQ_INT(schema_validate(s, inst, r), ERR_SCHEMA);
    json_object_put(inst); /* before any error is read */
    CHECK_EQ_INT(schema_result_count(r), 5);
    const schema_error_t *e0 = schema_result_get(r, 0);
    CHECK_EQ_STR(e0->instance_ptr, "/n");
    CHECK_EQ_STR(e0->keyword_loc, "/properties/n/minimum");
    CHECK_EQ_STR(e0->message, "must be >= 1.5");
    const schema_error_t *e = schema_result_get(r, 1);
    CHECK_EQ_STR(e->instance_ptr, "/list");
    CHECK_EQ_STR(e->message, "must have at least 3 items");
    e = schema_result_get(r, 2);
    CHECK_EQ_STR(e->instance_ptr, "/list/1");
    CHECK_EQ_STR(e->keyword_loc, "/properties/list/items/type");
    CHECK_EQ_STR(e->message, "must be string, not integer");
    e = schema_result_get(r, 3);
    CHECK_EQ_STR(e->instance_ptr, "/o/a key longer than forty-eight bytes, with ~0 and ~1 in it");
    CHECK_EQ_STR(e->keyword_loc, "/properties/o/additionalProperties/type");
    CHECK_EQ_STR(e->message, "must be null, not boolean");
    e = schema_result_get(r, 4);
    CHECK_EQ_STR(e->instance_ptr, "");
    CHECK_EQ_STR(e->keyword_loc, "/additionalProperties");
    CHECK_EQ_STR(
        e->message,
        "unexpected property \"a key longer than forty-eight bytes, with ~ and / in it!\"");
    /* Reading again gives the same text where it was. */
    CHECK(schema_result_get(r, 0) == e0);
    CHECK_EQ_STR(e0->message, "must be >= 1.5");
    schema_result_free(r);
    schema_free(s);
}

/* Each kind of message argument -- the instance's keys (copied), the schema's strings
 * (kept by pointer), text built on the stack (copied) -- read after the instance is gone
 * and the caller's reference to the schema document dropped (compile_str). */
static void test_message_arguments(void)
{
    char err[256];
    schema_opts_t o = {.max_errors = 20, .format_assert = 1};
    schema_t *s = compile_str(
        "{\"required\":[\"zz\"],\"dependentRequired\":{\"a\":[\"b\"]},"
        "\"propertyNames\":{\"maxLength\":3},"
        "\"properties\":{\"a\":{\"type\":[\"string\",\"null\"]},"
        "\"p\":{\"pattern\":\"^x+$\",\"format\":\"email\",\"enum\":[\"q\",1]},"
        "\"n\":{\"exclusiveMaximum\":2.5},\"m\":{\"anyOf\":[{\"minimum\":5},{\"const\":1}]},"
        "\"k\":{\"multipleOf\":0.1,\"maximum\":-1e-7}},"
        "\"unevaluatedProperties\":false}",
        &o, err, sizeof err);
    CHECK(s != NULL);
    const char *text = "{\"a\":1,\"p\":\"y\",\"n\":3,\"m\":2,\"k\":0.15,\"long key\":0}";
    json_object *inst = NULL;
    CHECK_EQ_INT(schema_parse_json(text, strlen(text), &inst, err, sizeof err), 0);
    schema_result_t *r = schema_result_new();
    CHECK_EQ_INT(schema_validate(s, inst, r), ERR_SCHEMA);
    json_object_put(inst); /* before any error is read */
    static const char *const want[][2] = {
        {"", "missing required property \"zz\""},
        {"", "property \"b\" is required when \"a\" is present"},
        {"", "property name \"long key\" is not allowed"},
        {"/a", "must be null or string, not integer"},
        {"/p", "must be one of: \"q\", 1"},
        {"/p", "must match pattern \"^x+$\""},
        {"/p", "must be a valid email"},
        {"/n", "must be < 2.5"},
        {"/m", "must match at least one schema in anyOf"},
        {"/k", "must be a multiple of 0.1"},
        {"/k", "must be <= -1e-07"},
        {"", "unexpected property \"long key\""},
    };
    size_t nw = sizeof want / sizeof want[0];
    CHECK_EQ_INT((int)schema_result_count(r), (int)nw);
    for (size_t i = 0; i < nw && i < schema_result_count(r); i++) {
        const schema_error_t *e = schema_result_get(r, i);
        CHECK_EQ_STR(e->instance_ptr, want[i][0]);
        CHECK_EQ_STR(e->message, want[i][1]);
    }
    schema_result_free(r);
    schema_free(s);
}

/* uniqueItems over a short array of objects: a quick hash of one member per object
 * first, the full comparison only when two items hash alike. */
static void test_unique_objects(void)
{
    char err[256], msg[256];
    schema_t *s = compile_str("{\"uniqueItems\":true}", NULL, err, sizeof err);
    CHECK(s != NULL);
    /* Every item alike in the member the quick hash reads ("a"), none equal. */
    CHECK_EQ_INT(check_str(s, "[{\"a\":1,\"b\":1},{\"a\":1,\"b\":2},{\"b\":1,\"a\":1,\"c\":0}]",
                           msg, sizeof msg),
                 0);
    /* Equal objects, members in another order, after alike ones. */
    CHECK_EQ_INT(check_str(s, "[{\"a\":1,\"b\":1},{\"a\":1,\"b\":2},{\"b\":2.0,\"a\":1}]", msg,
                           sizeof msg),
                 ERR_SCHEMA);
    CHECK_EQ_STR(msg, "/: must not contain duplicates (items 1 and 2 are equal)");
    /* Keys that tie on their first two bytes, values swapped: not equal. */
    CHECK_EQ_INT(check_str(s, "[{\"ab1\":\"x\",\"ab2\":\"y\"},{\"ab1\":\"y\",\"ab2\":\"x\"}]", msg,
                           sizeof msg),
                 0);
    CHECK_EQ_INT(check_str(s, "[{\"ab1\":\"x\",\"ab2\":\"y\"},{\"ab2\":\"y\",\"ab1\":\"x\"}]", msg,
                           sizeof msg),
                 ERR_SCHEMA);
    CHECK_EQ_STR(msg, "/: must not contain duplicates (items 0 and 1 are equal)");
    CHECK_EQ_INT(check_str(s, "[{},{\"a\":null},[],{}]", msg, sizeof msg), ERR_SCHEMA);
    CHECK_EQ_STR(msg, "/: must not contain duplicates (items 0 and 3 are equal)");
    schema_free(s);
}

/* "integer" of a double: integral values are, whatever their size or sign. */
static void test_integral_doubles(void)
{
    char err[256], msg[256];
    schema_t *s = compile_str("{\"items\":{\"type\":\"integer\"}}", NULL, err, sizeof err);
    CHECK(s != NULL);
    CHECK_EQ_INT(check_str(s, "[1.0,-0.0,0.0,-3.0,1e300,-1e300,4503599627370496.0,"
                              "9007199254740993.0,1.5e16]",
                           msg, sizeof msg),
                 0);
    CHECK_EQ_INT(check_str(s, "[0,1.5,-0.5,4503599627370495.5,1e-300,-2251799813685247.5]",
                           msg, sizeof msg),
                 ERR_SCHEMA);
    CHECK_EQ_STR(msg, "/1: must be integer, not number; /2: must be integer, not number; "
                      "/3: must be integer, not number; /4: must be integer, not number; "
                      "/5: must be integer, not number");
    schema_free(s);
}

static void test_error_budget(void)
{
    char err[256];
    schema_opts_t o = {.max_errors = 2};
    schema_t *s = compile_str("{\"items\":{\"type\":\"string\"}}", &o, err, sizeof err);
    json_object *inst = json_tokener_parse("[1,2,3,4,5]");
    schema_result_t *r = schema_result_new();
    CHECK_EQ_INT(schema_validate(s, inst, r), ERR_SCHEMA);
    CHECK_EQ_INT(schema_result_count(r), 2);
    schema_free(s);
    s = compile_str("{\"items\":{\"type\":\"string\"}}", NULL, err, sizeof err);
    CHECK_EQ_INT(schema_validate(s, inst, r), ERR_SCHEMA);
    CHECK_EQ_INT(schema_result_count(r), 1); /* default budget: first error only */
    json_object_put(inst);
    schema_result_free(r);
    schema_free(s);
}

static void test_combinator_messages(void)
{
    char err[256], msg[512];
    schema_t *s = compile_str("{\"properties\":{\"a\":{\"anyOf\":[{\"type\":\"string\"},"
                              "{\"type\":\"integer\"}]},\"b\":{\"oneOf\":[{\"minimum\":0},"
                              "{\"maximum\":10}]},\"c\":{\"not\":{\"const\":3}}},"
                              "\"unevaluatedProperties\":false}",
                              NULL, err, sizeof err);
    CHECK(s != NULL);
    CHECK_EQ_INT(check_str(s, "{\"a\":1.5,\"b\":5,\"c\":3,\"d\":1}", msg, sizeof msg),
                 ERR_SCHEMA);
    CHECK_EQ_STR(msg, "/a: must be string or integer, not number; "
                      "/b: must match exactly one schema in oneOf, but matches 0 and 1; "
                      "/c: must not match the schema in \"not\"; "
                      "/: unexpected property \"d\"");
    schema_free(s);
    /* Branches that differ only by type: name the types. */
    s = compile_str("{\"properties\":{\"a\":{\"anyOf\":[{\"type\":\"string\",\"maxLength\":3},"
                    "{\"type\":\"null\"}]}}}",
                    NULL, err, sizeof err);
    CHECK_EQ_INT(check_str(s, "{\"a\":12}", msg, sizeof msg), ERR_SCHEMA);
    CHECK_EQ_STR(msg, "/a: must be null or string, not integer");
    CHECK_EQ_INT(check_str(s, "{\"a\":\"long\"}", msg, sizeof msg), ERR_SCHEMA);
    CHECK_EQ_STR(msg, "/a: must match at least one schema in anyOf");
    schema_free(s);
}

static void test_compile_errors(void)
{
    char err[256];
    CHECK(compile_str("{\"properties\":{\"a\":{\"minLength\":-1}}}", NULL, err, sizeof err) ==
          NULL);
    CHECK_EQ_STR(err, "schema #/properties/a: \"minLength\" must be a non-negative integer");
    CHECK(compile_str("{\"items\":{\"$ref\":\"#/$defs/missing\"}}", NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "schema #/items/$ref: cannot resolve reference \"#/$defs/missing\"") == err);
    CHECK(compile_str("{\"pattern\":\"(\"}", NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "bad \"pattern\"") != NULL);
    CHECK(compile_str("{\"$ref\":\"http://example.com/x.json\"}", NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "no such schema") != NULL); /* never fetched over the network */
    CHECK(compile_str("{\"type\":\"strin\"}", NULL, err, sizeof err) == NULL);
    CHECK(compile_str("[1]", NULL, err, sizeof err) == NULL);
}

static void test_deep_and_cycles(void)
{
    char err[256], msg[2048];
    /* An instance nested far deeper than the limit, built without the parser's cap. */
    json_object *deep = json_object_new_array();
    json_object *cur = deep;
    for (int i = 0; i < 3000; i++) {
        json_object *n = json_object_new_array();
        json_object_array_add(cur, n);
        cur = n;
    }
    schema_t *s = compile_str("{\"items\":{\"$ref\":\"#\"}}", NULL, err, sizeof err);
    CHECK_EQ_INT(schema_check(s, deep, msg, sizeof msg), ERR_SCHEMA);
    CHECK(strstr(msg, "nested deeper than") != NULL);
    schema_free(s);
    json_object_put(deep);
    /* $ref cycles that never consume the instance. */
    s = compile_str("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}},"
                    "\"anyOf\":[{\"$ref\":\"#/$defs/a\"},true]}",
                    NULL, err, sizeof err);
    CHECK(s != NULL);
    CHECK_EQ_INT(check_str(s, "1", msg, sizeof msg), ERR_SCHEMA);
    CHECK(strstr(msg, "$ref cycle") != NULL);
    schema_free(s);
    /* A schema nested past the limit is refused at compile time. */
    json_object *ds = json_object_new_object(), *c2 = ds;
    for (int i = 0; i < 2000; i++) {
        json_object *n = json_object_new_object();
        json_object_object_add(c2, "not", n);
        c2 = n;
    }
    CHECK(schema_compile(ds, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "nested deeper") != NULL);
    json_object_put(ds);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_bounded_cost(void)
{
    char err[256];
    schema_t *s = compile_str("{\"pattern\":\"^(a+)+$\"}", NULL, err, sizeof err);
    char buf[4200];
    memset(buf, 'a', 4000);
    strcpy(buf + 4000, "!");
    json_object *str = json_object_new_string(buf);
    double t0 = now();
    CHECK_EQ_INT(schema_validate(s, str, NULL), ERR_SCHEMA);
    CHECK(now() - t0 < 2.0);
    json_object_put(str);
    schema_free(s);
    /* uniqueItems over a large array sorts by hash instead of comparing all pairs. */
    s = compile_str("{\"uniqueItems\":true}", NULL, err, sizeof err);
    json_object *arr = json_object_new_array();
    for (int i = 0; i < 100000; i++)
        json_object_array_add(arr, json_object_new_int(i));
    t0 = now();
    CHECK_EQ_INT(schema_validate(s, arr, NULL), 0);
    json_object_array_add(arr, json_object_new_double(77.0)); /* equals 77 */
    schema_result_t *r = schema_result_new();
    CHECK_EQ_INT(schema_validate(s, arr, r), ERR_SCHEMA);
    CHECK(now() - t0 < 2.0);
    CHECK_EQ_STR(schema_result_get(r, 0)->message,
                 "must not contain duplicates (items 77 and 100000 are equal)");
    schema_result_free(r);
    json_object_put(arr);
    schema_free(s);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_files(void)
{
    char dir[] = "/tmp/schema_test_XXXXXX", path[256], err[256], msg[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/sub", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/name.json", dir);
    write_file(path, "{\"type\":\"string\",\"maxLength\":3}");
    snprintf(path, sizeof path, "%s/sub/n.json", dir);
    write_file(path, "{\"type\":\"integer\",\"$ref\":\"../name.json\"}");
    schema_opts_t o = {.base_dir = dir};
    schema_t *s = compile_str("{\"properties\":{\"a\":{\"$ref\":\"name.json\"}}}", &o, err,
                              sizeof err);
    CHECK(s != NULL);
    CHECK_EQ_INT(check_str(s, "{\"a\":\"abcd\"}", msg, sizeof msg), ERR_SCHEMA);
    CHECK_EQ_STR(msg, "/a: must be at most 3 characters");
    schema_free(s);
    /* Without base_dir nothing on disk is reachable. */
    CHECK(compile_str("{\"$ref\":\"name.json\"}", NULL, err, sizeof err) == NULL);
    /* Refs may not climb out of base_dir. */
    snprintf(path, sizeof path, "%s/sub", dir);
    o.base_dir = path;
    CHECK(compile_str("{\"$ref\":\"../name.json\"}", &o, err, sizeof err) == NULL);
    /* A URL prefix mapped to a directory. */
    char mdir[300];
    snprintf(mdir, sizeof mdir, "%s/", dir);
    const char *map[] = {"https://schemas.example/", mdir, NULL};
    schema_opts_t om = {.map = map};
    s = compile_str("{\"$ref\":\"https://schemas.example/sub/n.json\"}", &om, err, sizeof err);
    CHECK(s != NULL);
    CHECK_EQ_INT(check_str(s, "\"ab\"", msg, sizeof msg), ERR_SCHEMA); /* not an integer */
    CHECK_EQ_INT(check_str(s, "12345", msg, sizeof msg), ERR_SCHEMA);  /* not a string */
    schema_free(s);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    CHECK_EQ_INT(system(path), 0);
}

static void test_formats_and_drafts(void)
{
    char err[256], msg[256];
    /* ECMA-262 classes: \D and \W are "not ASCII digit/word", so they match non-ASCII. */
    schema_t *re = compile_str("{\"pattern\":\"^\\\\D\\\\W$\"}", NULL, err, sizeof err);
    CHECK(re != NULL);
    CHECK_EQ_INT(check_str(re, "\"\xdf\x80\xc3\xa9\"", msg, sizeof msg), 0);
    CHECK_EQ_INT(check_str(re, "\"1\xc3\xa9\"", msg, sizeof msg), ERR_SCHEMA);
    schema_free(re);
    const char *sch = "{\"format\":\"email\"}";
    schema_t *s = compile_str(sch, NULL, err, sizeof err);
    CHECK_EQ_INT(check_str(s, "\"nope\"", msg, sizeof msg), 0); /* annotation only */
    schema_free(s);
    schema_opts_t o = {.format_assert = 1};
    s = compile_str(sch, &o, err, sizeof err);
    CHECK_EQ_INT(check_str(s, "\"nope\"", msg, sizeof msg), ERR_SCHEMA);
    CHECK_EQ_STR(msg, "/: must be a valid email");
    CHECK_EQ_INT(check_str(s, "\"a.b@example.com\"", msg, sizeof msg), 0);
    schema_free(s);
    /* $schema selects draft-07: array items are a tuple, additionalItems applies. */
    const char *d7 = "{\"$schema\":\"http://json-schema.org/draft-07/schema#\","
                     "\"items\":[{\"type\":\"string\"}],\"additionalItems\":false}";
    s = compile_str(d7, NULL, err, sizeof err);
    CHECK(s != NULL);
    CHECK_EQ_INT(check_str(s, "[\"a\"]", msg, sizeof msg), 0);
    CHECK_EQ_INT(check_str(s, "[\"a\",1]", msg, sizeof msg), ERR_SCHEMA);
    CHECK_EQ_STR(msg, "/: must have at most 1 items");
    schema_free(s);
    /* Meta-schema refs resolve offline. */
    s = compile_str("{\"$ref\":\"https://json-schema.org/draft/2020-12/schema\"}", NULL, err,
                    sizeof err);
    CHECK(s != NULL);
    CHECK_EQ_INT(check_str(s, "{\"type\":\"string\",\"minLength\":2}", msg, sizeof msg), 0);
    CHECK_EQ_INT(check_str(s, "{\"minLength\":-2}", msg, sizeof msg), ERR_SCHEMA);
    schema_free(s);
}

typedef struct worker {
    const schema_t *s;
    int bad;
} worker_t;

static void *work(void *arg)
{
    worker_t *w = arg;
    json_object *ok =
        json_tokener_parse("{\"name\":\"n\",\"items\":[{\"sku\":\"ABC-0001\",\"qty\":1}]}");
    json_object *no =
        json_tokener_parse("{\"name\":\"n\",\"items\":[{\"sku\":\"bad\",\"qty\":1}]}");
    for (int i = 0; i < 20000; i++)
        if (schema_validate(w->s, ok, NULL) != 0 || schema_validate(w->s, no, NULL) != ERR_SCHEMA)
            w->bad++;
    json_object_put(ok);
    json_object_put(no);
    return NULL;
}

static void test_threads(void)
{
    char err[256];
    schema_t *s = compile_str(tool_schema, NULL, err, sizeof err);
    pthread_t t[4];
    worker_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){s, 0};
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_INT(w[i].bad, 0);
    }
    schema_free(s);
}

/* Run the CLI with stdout captured into out; returns its exit code. */
static int cli(char *out, size_t len, int argc, const char **argv)
{
    char tmpl[] = "/tmp/schema_cli_XXXXXX";
    int fd = mkstemp(tmpl);
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    int rc = schema_cli_main(argc, (char **)argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, out, len - 1);
    out[n > 0 ? n : 0] = 0;
    close(fd);
    unlink(tmpl);
    return rc;
}

static void test_cli(void)
{
    char dir[] = "/tmp/schema_cli_dir_XXXXXX", sp[256], ip[256], vp[256], bp[256], out[2048];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(sp, sizeof sp, "%s/s.json", dir);
    snprintf(ip, sizeof ip, "%s/bad.json", dir);
    snprintf(vp, sizeof vp, "%s/ok.json", dir);
    snprintf(bp, sizeof bp, "%s/broken.json", dir);
    write_file(sp, "{\"properties\":{\"qty\":{\"type\":\"integer\",\"minimum\":1},"
                   "\"when\":{\"format\":\"date\"}}}");
    write_file(ip, "{\"qty\":0,\"when\":\"2024-13-01\"}");
    write_file(vp, "{\"qty\":3}");
    write_file(bp, "{\"type\":12}");
    const char *a1[] = {"schema", "check", sp, vp};
    CHECK_EQ_INT(cli(out, sizeof out, 4, a1), 0);
    CHECK_EQ_STR(out, "valid\n");
    const char *a2[] = {"schema", "check", "--format-assert", sp, ip};
    CHECK_EQ_INT(cli(out, sizeof out, 5, a2), 1);
    CHECK_EQ_STR(out, "/qty: must be >= 1 (/properties/qty/minimum)\n"
                      "/when: must be a valid date (/properties/when/format)\n");
    const char *a3[] = {"schema", "check", sp, ip};
    CHECK_EQ_INT(cli(out, sizeof out, 4, a3), 1);
    CHECK_EQ_STR(out, "/qty: must be >= 1 (/properties/qty/minimum)\n");
    const char *a4[] = {"schema", "check", bp, vp};
    CHECK_EQ_INT(cli(out, sizeof out, 4, a4), 2);
    const char *a5[] = {"schema", "check", "--draft", "9", sp, vp};
    CHECK_EQ_INT(cli(out, sizeof out, 6, a5), 2);
    const char *a6[] = {"schema", "check", sp};
    CHECK_EQ_INT(cli(out, sizeof out, 3, a6), 2);
    const char *a7[] = {"schema", "check", "--draft", "7", "--map", "http://x/=/nonexistent", sp,
                        vp};
    CHECK_EQ_INT(cli(out, sizeof out, 8, a7), 0);
    snprintf(out, sizeof out, "rm -rf %s", dir);
    CHECK_EQ_INT(system(out), 0);
}

static void test_parse_json(void)
{
    char err[128];
    json_object *o = NULL;
    const char *t = " {\"a\":[1,-2,3.5,1e3,true,false,null,\"x\\u00e9\\ud83d\\ude00\\n\"],"
                    "\"a\":{\"b\":12345678901234567890,\"c\":-9223372036854775809}} ";
    CHECK_EQ_INT(schema_parse_json(t, strlen(t), &o, err, sizeof err), 0);
    json_object *a, *b;
    CHECK(json_object_object_get_ex(o, "a", &a) && json_object_is_type(a, json_type_object));
    CHECK(json_object_object_get_ex(a, "b", &b) &&
          json_object_get_uint64(b) == 12345678901234567890ull);
    CHECK(json_object_object_get_ex(a, "c", &b) && json_object_is_type(b, json_type_double));
    json_object_put(o);
    const char *arr = "[1,-2,3.5,1e3,true,false,null,\"x\\u00e9\\ud83d\\ude00\\n\"]";
    CHECK_EQ_INT(schema_parse_json(arr, strlen(arr), &o, err, sizeof err), 0);
    json_object *ref = json_tokener_parse(arr);
    CHECK(o && ref && json_object_equal(o, ref));
    CHECK_EQ_STR(json_object_get_string(json_object_array_get_idx(o, 7)),
                 "x\xc3\xa9\xf0\x9f\x98\x80\n");
    json_object_put(ref);
    json_object_put(o);
    o = NULL;
    CHECK_EQ_INT(schema_parse_json("null", 4, &o, err, sizeof err), 0);
    CHECK(o == NULL);
    static const char *bad[] = {"", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "'a'", "nul",
                                "[1] x", "\"a\tb\"", "{\"a\" 1}", "NaN", "\"\\x\"", "/*c*/1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = NULL;
        CHECK_EQ_INT(schema_parse_json(bad[i], strlen(bad[i]), &o, err, sizeof err), ERR_INVAL);
        CHECK(o == NULL);
    }
    CHECK_EQ_INT(schema_parse_json("[1,]", 4, &o, err, sizeof err), ERR_INVAL);
    CHECK_EQ_STR(err, "invalid JSON at byte 3: unexpected character");
    char deep[3000];
    memset(deep, '[', sizeof deep);
    CHECK_EQ_INT(schema_parse_json(deep, sizeof deep, &o, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "nested deeper than 100 levels") != NULL);
}

/* The fast paths agree with the slow ones: 200 errors through the reused text arena
 * (twice, so the second run reuses it), leaf nodes with multi-byte strings near their
 * length bounds, patterns on non-ASCII subjects, decimals parsed like strtod. */
static void test_fast_paths(void)
{
    char err[256];
    schema_opts_t o = {.max_errors = 1000};
    schema_t *s = compile_str("{\"type\":\"array\",\"items\":{\"type\":\"string\","
                              "\"minLength\":2,\"maxLength\":3,\"pattern\":\"^[a-z\u00e9]+$\"}}",
                              &o, err, sizeof err);
    CHECK(s != NULL);
    char text[4096] = "[";
    for (int i = 0; i < 200; i++)
        strcat(text, i ? ",\"X\"" : "\"X\"");
    strcat(text, "]");
    json_object *inst = json_tokener_parse(text);
    schema_result_t *r = schema_result_new();
    for (int round = 0; round < 2; round++) {
        CHECK_EQ_INT(schema_validate(s, inst, r), ERR_SCHEMA);
        CHECK_EQ_INT(schema_result_count(r), 400); /* too short and not lower case */
        CHECK_EQ_STR(schema_result_get(r, 0)->instance_ptr, "/0");
        CHECK_EQ_STR(schema_result_get(r, 0)->keyword_loc, "/items/minLength");
        CHECK_EQ_STR(schema_result_get(r, 0)->message, "must be at least 2 characters");
        CHECK_EQ_STR(schema_result_get(r, 399)->instance_ptr, "/199");
        CHECK_EQ_STR(schema_result_get(r, 399)->message, "must match pattern \"^[a-z\u00e9]+$\"");
    }
    json_object_put(inst);
    /* 3 code points in 6 bytes pass maxLength 3; 4 in 5 bytes do not; one 2-byte code
     * point is too short for minLength 2. */
    const char *cases[][2] = {{"[\"\u00e9\u00e9\u00e9\"]", "0"}, {"[\"\u00e9abc\"]", "1"},
                              {"[\"\u00e9\"]", "1"}, {"[\"ab\"]", "0"}, {"[\"aB\"]", "1"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *v = NULL;
        CHECK_EQ_INT(schema_parse_json(cases[i][0], strlen(cases[i][0]), &v, err, sizeof err), 0);
        CHECK_EQ_INT(schema_validate(s, v, NULL) != 0, cases[i][1][0] == '1');
        CHECK_EQ_INT(schema_validate(s, v, r) != 0, cases[i][1][0] == '1');
        json_object_put(v);
    }
    schema_result_free(r);
    schema_free(s);
    const char *nums[] = {"12.5", "-0.0", "0.1", "1.25", "8.99", "123456789012.345",
                          "-98765.4321", "0.000000000000001", "3.14159265358979", "1.7976931348623157e308"};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        json_object *v = NULL;
        CHECK_EQ_INT(schema_parse_json(nums[i], strlen(nums[i]), &v, err, sizeof err), 0);
        double want = strtod(nums[i], NULL), got = json_object_get_double(v);
        CHECK(memcmp(&want, &got, sizeof got) == 0);
        json_object_put(v);
    }
}

/* The eight-byte string scan stops at every byte it must (a quote, a backslash, a control
 * character or a non-ASCII byte at each position of a word, next to the bytes around
 * them), and shared keys behave like copied ones: duplicates (last wins, first position),
 * keys too long to share, escaped keys, objects freed and parsed again, a deep copy. */
static void test_parse_scan_and_keys(void)
{
    char err[128], text[128], want[32];
    const char stops[][3] = {"\"", "\\\\", "\x01", "\x1f", "\xc3"};
    const char near[] = {' ', '!', '#', '[', ']', '\x7f'};
    json_object *o = NULL;
    for (size_t pos = 0; pos < 12; pos++) {
        for (size_t k = 0; k < sizeof near; k++) { /* a neighbour is plain */
            memset(want, 'a', 20);
            want[pos] = near[k];
            want[20] = 0;
            snprintf(text, sizeof text, "\"%s\"", want);
            CHECK_EQ_INT(schema_parse_json(text, strlen(text), &o, err, sizeof err), 0);
            CHECK_EQ_STR(json_object_get_string(o), want);
            json_object_put(o);
        }
        for (size_t k = 0; k < sizeof stops / sizeof stops[0]; k++) {
            memset(want, 'a', 20);
            want[20] = 0;
            snprintf(text, sizeof text, "\"%.*s%s%s\"", (int)pos, want, stops[k], want + pos);
            o = NULL;
            int rc = schema_parse_json(text, strlen(text), &o, err, sizeof err);
            if (k == 0) { /* the string ends at the quote: trailing text */
                CHECK_EQ_INT(rc, ERR_INVAL);
                CHECK(strstr(err, "trailing text") != NULL);
            } else if (k == 1) { /* \\ is an escaped backslash */
                CHECK_EQ_INT(rc, 0);
                CHECK_EQ_INT((int)json_object_get_string_len(o), 21);
                CHECK_EQ_INT(json_object_get_string(o)[pos], '\\');
            } else { /* control characters and a lone lead byte are rejected */
                CHECK_EQ_INT(rc, ERR_INVAL);
                CHECK_EQ_INT(atoi(strstr(err, "byte ") + 5), (int)pos + 1);
            }
            json_object_put(o);
        }
    }
    const char *unterminated[] = {"\"", "\"abc", "\"abcdefgh", "\"abcdefghijklmno", "[\"\xc3\xa9"};
    for (size_t i = 0; i < sizeof unterminated / sizeof unterminated[0]; i++) {
        o = NULL;
        CHECK_EQ_INT(schema_parse_json(unterminated[i], strlen(unterminated[i]), &o, err, sizeof err),
                     ERR_INVAL);
        CHECK(strstr(err, "unterminated string") != NULL);
    }
    /* Decimals print as written, whether or not the parser kept their text. */
    const char *decs[] = {"12.5", "1.25", "-0.5", "0.0625", "0.0001220703125", "8.99", "12.50",
                          "0.00006103515625", "-0.0", "3.5", "123456789012.375", "0.1"};
    for (size_t i = 0; i < sizeof decs / sizeof decs[0]; i++) {
        CHECK_EQ_INT(schema_parse_json(decs[i], strlen(decs[i]), &o, err, sizeof err), 0);
        CHECK_EQ_STR(json_object_to_json_string(o), decs[i]);
        CHECK(json_object_get_double(o) == strtod(decs[i], NULL));
        json_object_put(o);
    }
    char longkey[80];
    memset(longkey, 'k', 70);
    longkey[70] = 0;
    char doc[512];
    snprintf(doc, sizeof doc,
             "{\"b\":1,\"a\":2,\"b\":3,\"%s\":4,\"%s\":5,\"c\\u0064\":{\"b\":6},\"e\":[{\"b\":7}]}",
             longkey, longkey);
    for (int round = 0; round < 2; round++) {
        CHECK_EQ_INT(schema_parse_json(doc, strlen(doc), &o, err, sizeof err), 0);
        CHECK_EQ_STR(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                     "{\"b\":3,\"a\":2,\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\":5,"
                     "\"cd\":{\"b\":6},\"e\":[{\"b\":7}]}");
        json_object *copy = NULL, *v;
        CHECK_EQ_INT(json_object_deep_copy(o, &copy, NULL), 0);
        json_object_put(o);
        CHECK(json_object_object_get_ex(copy, "cd", &v) && json_object_object_get_ex(v, "b", &v) &&
              json_object_get_int(v) == 6);
        json_object_object_del(copy, "b");
        json_object_object_add(copy, "a", json_object_new_int(9));
        CHECK_EQ_STR(json_object_to_json_string_ext(copy, JSON_C_TO_STRING_PLAIN),
                     "{\"a\":9,\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\":5,"
                     "\"cd\":{\"b\":6},\"e\":[{\"b\":7}]}");
        json_object_put(copy);
    }
}

/* schema_validate_text: the compact-tree verdict and the ordinary path behind it. */
static void test_validate_text(void)
{
    char err[256];
    schema_opts_t all = {.max_errors = 10};
    schema_t *s = compile_str(tool_schema, &all, err, sizeof err);
    CHECK(s != NULL);
    schema_result_t *r = schema_result_new();
    const char *ok = "{\"name\":\"Ada\",\"email\":\"a@b.io\",\"priority\":\"high\","
                     "\"items\":[{\"sku\":\"ABC-1234\",\"qty\":2},{\"sku\":\"ABD-1234\",\"qty\":1.0}]}";
    CHECK_EQ_INT(schema_validate_text(s, ok, strlen(ok), r, err, sizeof err), 0);
    CHECK_EQ_INT((int)schema_result_count(r), 0);
    /* invalid: the errors of schema_validate, and none left from an earlier call */
    const char *bad = "{\"name\":\"\",\"items\":[{\"sku\":\"x\",\"qty\":0}]}";
    CHECK_EQ_INT(schema_validate_text(s, bad, strlen(bad), r, err, sizeof err), ERR_SCHEMA);
    CHECK(schema_result_count(r) >= 3);
    CHECK_EQ_STR(schema_result_get(r, 0)->instance_ptr, "/name");
    CHECK_EQ_INT(schema_validate_text(s, ok, strlen(ok), r, err, sizeof err), 0);
    CHECK_EQ_INT((int)schema_result_count(r), 0);
    /* not JSON: schema_parse_json's message, the result emptied */
    CHECK_EQ_INT(schema_validate_text(s, bad, strlen(bad), r, err, sizeof err), ERR_SCHEMA);
    CHECK_EQ_INT(schema_validate_text(s, "{\"name\":", 8, r, err, sizeof err), ERR_INVAL);
    CHECK_EQ_STR(err, "invalid JSON at byte 8: unexpected end of input");
    CHECK_EQ_INT((int)schema_result_count(r), 0);
    /* duplicate keys: the last wins, as in json-c (the tree refuses them) */
    const char *dup1 = "{\"name\":1,\"items\":[{\"sku\":\"ABC-1234\",\"qty\":1}],\"name\":\"Ada\"}";
    const char *dup2 = "{\"name\":\"Ada\",\"items\":[{\"sku\":\"ABC-1234\",\"qty\":1}],\"name\":1}";
    CHECK_EQ_INT(schema_validate_text(s, dup1, strlen(dup1), NULL, err, sizeof err), 0);
    CHECK_EQ_INT(schema_validate_text(s, dup2, strlen(dup2), NULL, err, sizeof err), ERR_SCHEMA);
    /* escaped strings and keys live in the tree's own buffer */
    const char *esc = "{\"n\\u0061me\":\"A\\u00e9\\n\",\"priority\":\"hi\\u0067h\","
                      "\"items\":[{\"sku\":\"ABC-1234\",\"q\\u0074y\":1}]}";
    CHECK_EQ_INT(schema_validate_text(s, esc, strlen(esc), r, err, sizeof err), 0);
    const char *esc_bad = "{\"n\\u0061me\":\"\",\"priority\":\"hi\\u0067\"}";
    CHECK_EQ_INT(schema_validate_text(s, esc_bad, strlen(esc_bad), r, err, sizeof err), ERR_SCHEMA);
    CHECK_EQ_INT((int)schema_result_count(r), 3); /* and "items" is missing */
    schema_result_free(r);
    schema_free(s);
    /* keywords the tree walk leaves to the ordinary path still decide */
    s = compile_str("{\"properties\":{\"a\":true},\"const\":{\"a\":[1,2]},"
                    "\"unevaluatedProperties\":false}",
                    NULL, err, sizeof err);
    CHECK(s != NULL);
    CHECK_EQ_INT(schema_validate_text(s, "{\"a\":[1,2.0]}", 13, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(schema_validate_text(s, "{\"a\":[1,3]}", 11, NULL, err, sizeof err), ERR_SCHEMA);
    schema_free(s);
    s = compile_str("{\"items\":{\"type\":\"integer\"},\"uniqueItems\":true}", NULL, err, sizeof err);
    CHECK(s != NULL);
    CHECK_EQ_INT(schema_validate_text(s, "[1,2,3]", 7, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(schema_validate_text(s, "[1,2,1.0]", 9, NULL, err, sizeof err), ERR_SCHEMA);
    CHECK_EQ_INT(schema_validate_text(s, "[1,\"x\"]", 7, NULL, err, sizeof err), ERR_SCHEMA);
    schema_free(s);
}

int main(void)
{
    RUN(test_fast_paths);
    RUN(test_parse_json);
    RUN(test_parse_scan_and_keys);
    RUN(test_messages_and_pointers);
    RUN(test_validate_text);
    RUN(test_result_locations);
    RUN(test_errors_read_later);
    RUN(test_message_arguments);
    RUN(test_unique_objects);
    RUN(test_integral_doubles);
    RUN(test_error_budget);
    RUN(test_combinator_messages);
    RUN(test_compile_errors);
    RUN(test_deep_and_cycles);
    RUN(test_bounded_cost);
    RUN(test_files);
    RUN(test_formats_and_drafts);
    RUN(test_threads);
    RUN(test_cli);
    return check_report();
}
