/*
 * bench_schema: validations per second for a realistic tool-argument schema.
 *
 * Not a test: scripts/bench-schema.sh builds and runs it (three runs, medians).
 * Prints compile time, validations/s on a parsed valid instance, parse+validate/s from
 * text, and the invalid instance (4 errors) both stopping at the first error and
 * collecting all of them. Format assertion is measured on and off.
 */
#include "err.h"
#include "schema/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *schema_text =
    "{"
    "\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
    "\"type\":\"object\","
    "\"additionalProperties\":false,"
    "\"required\":[\"customer\",\"email\",\"order_id\",\"items\",\"shipping\"],"
    "\"properties\":{"
    "\"customer\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":80},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254},"
    "\"order_id\":{\"type\":\"string\",\"pattern\":\"^ORD-[0-9]{6}$\"},"
    "\"priority\":{\"enum\":[\"low\",\"normal\",\"high\",\"urgent\"]},"
    "\"quantity_total\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000},"
    "\"gift\":{\"type\":\"boolean\"},"
    "\"note\":{\"type\":\"string\",\"maxLength\":500},"
    "\"items\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":50,\"uniqueItems\":true,"
    "  \"items\":{\"type\":\"object\",\"additionalProperties\":false,"
    "    \"required\":[\"sku\",\"qty\"],"
    "    \"properties\":{"
    "      \"sku\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":32},"
    "      \"qty\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100},"
    "      \"price\":{\"type\":\"number\",\"exclusiveMinimum\":0}}}},"
    "\"shipping\":{\"type\":\"object\",\"additionalProperties\":false,"
    "  \"required\":[\"street\",\"city\",\"country\"],"
    "  \"properties\":{"
    "    \"street\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":120},"
    "    \"city\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":60},"
    "    \"postcode\":{\"type\":\"string\",\"maxLength\":12},"
    "    \"country\":{\"type\":\"string\",\"enum\":[\"US\",\"GB\",\"DE\",\"FR\",\"JP\",\"NL\"]}}}"
    "}}";

static const char *valid_text =
    "{\"customer\":\"Ada King, Countess of Lovelace\",\"email\":\"ada.king.lovelace@example.com\","
    "\"order_id\":\"ORD-104233\",\"priority\":\"high\",\"quantity_total\":7,\"gift\":false,"
    "\"note\":\"Please leave the parcel with the neighbour at number 12 if nobody is home. Ring twice; the bell is quiet.\","
    "\"items\":[{\"sku\":\"BOOK-0001\",\"qty\":2,\"price\":12.5},"
    "{\"sku\":\"PEN-0042\",\"qty\":4,\"price\":1.25},"
    "{\"sku\":\"MUG-0007\",\"qty\":1,\"price\":8.99},"
    "{\"sku\":\"CARD-0100\",\"qty\":1,\"price\":3.5}],"
    "\"shipping\":{\"street\":\"221B Baker Street, Marylebone\",\"city\":\"London\","
    "\"postcode\":\"NW1 6XE\",\"country\":\"GB\"}}";

/* Four errors: bad order_id, qty 0, unknown property, missing city. */
static const char *invalid_text =
    "{\"customer\":\"Ada King, Countess of Lovelace\",\"email\":\"ada.king.lovelace@example.com\","
    "\"order_id\":\"ORD-10423\",\"priority\":\"high\",\"quantity_total\":7,\"gift\":false,"
    "\"note\":\"Please leave the parcel with the neighbour at number 12 if nobody is home. Ring twice; the bell is quiet.\","
    "\"items\":[{\"sku\":\"BOOK-0001\",\"qty\":2,\"price\":12.5},"
    "{\"sku\":\"PEN-0042\",\"qty\":0,\"price\":1.25},"
    "{\"sku\":\"MUG-0007\",\"qty\":1,\"price\":8.99},"
    "{\"sku\":\"CARD-0100\",\"qty\":1,\"price\":3.5}],\"coupon\":\"X\","
    "\"shipping\":{\"street\":\"221B Baker Street, Marylebone\","
    "\"postcode\":\"NW1 6XE\",\"country\":\"GB\"}}";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the machine is shared */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Only the figure with this label (argv[2]), for profiling one at a time. */
static const char *only;

#define RATE(label, body)                                                                \
    do {                                                                                 \
        if (only && strcmp(label, only) != 0)                                            \
            break;                                                                       \
        long n_ = 0;                                                                     \
        double t0_ = now(), t_;                                                          \
        do {                                                                             \
            for (int k_ = 0; k_ < 1000; k_++) {                                          \
                body;                                                                    \
            }                                                                            \
            n_ += 1000;                                                                  \
        } while ((t_ = now() - t0_), secs < 0 ? n_ < -secs * 1000 : t_ < secs);          \
        printf("%-44s %12.0f /s\n", label, (double)n_ / t_);                              \
    } while (0)

/* schema_parse_json + schema_validate, as the runtime did before schema_validate_text. */
static int parse_validate(const schema_t *s, const char *text, size_t len, schema_result_t *r)
{
    char err[256];
    json_object *v = NULL;
    int rc = schema_parse_json(text, len, &v, err, sizeof err);
    if (!rc)
        rc = schema_validate(s, v, r);
    json_object_put(v);
    return rc;
}

static int run(int fmt, double secs)
{
    char err[256];
    schema_opts_t o = {.format_assert = fmt, .max_errors = 10};
    json_object *doc = json_tokener_parse(schema_text);
    /* The instances as the runtime parses what it validates (schema_parse_json: its
     * object keys are shared, see schema.h); the json_tokener_parse figure beside. */
    json_object *valid = NULL, *invalid = NULL, *valid_tok = json_tokener_parse(valid_text);
    if (schema_parse_json(valid_text, strlen(valid_text), &valid, err, sizeof err) ||
        schema_parse_json(invalid_text, strlen(invalid_text), &invalid, err, sizeof err)) {
        fprintf(stderr, "bench: cannot parse the instances: %s\n", err);
        return 1;
    }
    schema_t *s = schema_compile(doc, &o, err, sizeof err);
    if (!s || !valid || !invalid) {
        fprintf(stderr, "bench: setup failed: %s\n", err);
        return 1;
    }
    schema_result_t *r = schema_result_new();
    if (schema_validate(s, valid, NULL) != 0 || schema_validate(s, invalid, r) != ERR_SCHEMA ||
        schema_result_count(r) != 4 ||
        schema_validate_text(s, valid_text, strlen(valid_text), r, err, sizeof err) != 0 ||
        schema_validate_text(s, invalid_text, strlen(invalid_text), r, err, sizeof err) !=
            ERR_SCHEMA ||
        schema_result_count(r) != 4) {
        fprintf(stderr, "bench: unexpected verdicts (%zu errors)\n", schema_result_count(r));
        return 1;
    }
    printf("format assertion %s (valid instance %zu bytes, invalid %zu bytes, 4 errors)\n",
           fmt ? "on" : "off", strlen(valid_text), strlen(invalid_text));
    volatile int sink = 0;
    RATE("compile", {
        schema_t *c = schema_compile(doc, &o, err, sizeof err);
        sink += c != NULL;
        schema_free(c);
    });
    RATE("validate valid (parsed)", sink += schema_validate(s, valid, NULL));
    RATE("validate valid (parsed), all errors", sink += schema_validate(s, valid, r));
    RATE("validate valid (parsed by json_tokener_parse)", sink += schema_validate(s, valid_tok, NULL));
    size_t vlen = strlen(valid_text), ilen = strlen(invalid_text);
    RATE("parse + validate valid", sink += parse_validate(s, valid_text, vlen, NULL));
    RATE("parse + validate valid, all errors", sink += parse_validate(s, valid_text, vlen, r));
    RATE("parse + validate valid (schema_validate_text)",
         sink += schema_validate_text(s, valid_text, vlen, NULL, err, sizeof err));
    RATE("parse + validate valid, all errors (schema_validate_text)",
         sink += schema_validate_text(s, valid_text, vlen, r, err, sizeof err));
    RATE("parse + validate valid (json_tokener_parse)", {
        json_object *v = json_tokener_parse(valid_text);
        sink += schema_validate(s, v, NULL);
        json_object_put(v);
    });
    RATE("parse only (schema_parse_json)", {
        json_object *v = NULL;
        sink += schema_parse_json(valid_text, vlen, &v, err, sizeof err);
        json_object_put(v);
    });
    RATE("validate invalid, first error", sink += schema_validate(s, invalid, NULL));
    RATE("validate invalid, collect 4 errors", sink += schema_validate(s, invalid, r));
    /* Errors are formatted when first read: this figure pays for that too. */
    RATE("validate invalid, collect 4 errors + read them", {
        sink += schema_validate(s, invalid, r);
        for (size_t i = 0; i < schema_result_count(r); i++)
            sink += (int)strlen(schema_result_get(r, i)->message);
    });
    /* What the runtime does with a tool's arguments (tools.c): one message of all errors. */
    RATE("schema_check invalid (message of 4 errors)", {
        char msg[1024];
        sink += schema_check(s, invalid, msg, sizeof msg);
    });
    RATE("parse + validate invalid, collect 4 errors", sink += parse_validate(s, invalid_text, ilen, r));
    RATE("parse + validate invalid, collect 4 errors (schema_validate_text)",
         sink += schema_validate_text(s, invalid_text, ilen, r, err, sizeof err));
    schema_result_free(r);
    schema_free(s);
    json_object_put(doc);
    json_object_put(valid);
    json_object_put(valid_tok);
    json_object_put(invalid);
    return 0;
}

/* Write the schema and both instances to DIR, so bench_ajv.js measures the same texts. */
static int dump(const char *dir)
{
    const char *names[] = {"schema.json", "valid.json", "invalid.json"};
    const char *texts[] = {schema_text, valid_text, invalid_text};
    for (int i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "w");
        if (!f || fputs(texts[i], f) == EOF || fclose(f) != 0) {
            fprintf(stderr, "bench: cannot write %s\n", path);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--dump") == 0)
        return dump(argv[2]);
    /* SECS < 0: exactly -SECS thousand operations per figure (for instruction counts). */
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    only = argc > 2 && argv[2][0] ? argv[2] : NULL;
    int fmt = argc > 3 ? atoi(argv[3]) : -1; /* -1: both format modes */
    if ((fmt != 1 && run(0, secs)) || (fmt != 0 && run(1, secs)))
        return 1;
    return 0;
}
