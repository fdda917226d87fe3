/*
 * libFuzzer target over schema_compile + schema_validate + schema_check.
 *
 * Input: a schema JSON text, a NUL byte, an instance JSON text. The first byte picks
 * options (draft, format assertion, error budget) so one corpus covers them all. No
 * base_dir or map: the target never touches files. Run with `make fuzz-schema`.
 * The instance is also parsed by schema_parse_json, which must agree with json-c's
 * strict tokener whenever it accepts the text, and validated as text by
 * schema_validate_text, which must give what schema_parse_json + schema_validate give.
 */
#include "err.h"
#include "schema/schema.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_object *parse(const char *s, size_t n)
{
    json_tokener *tok = json_tokener_new_ex(64);
    if (!tok)
        return NULL;
    json_object *o = json_tokener_parse_ex(tok, s, (int)n);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* json-c saturates integers beyond 64 bits; schema_parse_json keeps their magnitude as
 * a double. Texts with such numbers are left out of the comparison. */
static int has_long_digit_run(const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        run = s[i] >= '0' && s[i] <= '9' ? run + 1 : 0;
        if (run >= 19)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t flags = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    const char *sep = memchr(s, 0, n);
    size_t sl = sep ? (size_t)(sep - s) : n;
    json_object *sch = parse(s, sl);
    json_object *inst = sep ? parse(sep + 1, n - sl - 1) : NULL;
    if (sep) {
        json_object *mine = NULL;
        char perr[128];
        if (schema_parse_json(sep + 1, n - sl - 1, &mine, perr, sizeof perr) == 0) {
            json_tokener *tok = json_tokener_new_ex(SCHEMA_MAX_DEPTH + 1);
            json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
            json_object *ref = json_tokener_parse_ex(tok, sep + 1, (int)(n - sl - 1));
            if (json_tokener_get_error(tok) == json_tokener_continue)
                ref = json_tokener_parse_ex(tok, "", 1);
            /* json-c keeps parsing after a NUL we pass through; compare only clean runs */
            if (json_tokener_get_error(tok) == json_tokener_success &&
                !memchr(sep + 1, 0, n - sl - 1) && !has_long_digit_run(sep + 1, n - sl - 1) &&
                !json_object_equal(mine, ref))
                __builtin_trap();
            json_object_put(ref);
            json_tokener_free(tok);
            json_object_put(mine);
        }
    }
    if (!sch)
        goto done;
    schema_opts_t o = {
        .draft = (flags & 3) == 1 ? 7 : (flags & 3) == 2 ? 2020 : 0,
        .format_assert = (flags >> 2) & 1,
        .max_errors = (flags >> 3) & 7,
    };
    char err[256];
    schema_t *sc = schema_compile(sch, &o, err, sizeof err);
    json_object_put(sch); /* the schema keeps its own reference */
    if (!sc)
        goto done;
    if (sep) { /* schema_validate_text agrees with schema_parse_json + schema_validate */
        const char *text = sep + 1;
        size_t tl = n - sl - 1;
        json_object *mine = NULL;
        char e1[128], e2[128];
        int r1 = schema_parse_json(text, tl, &mine, e1, sizeof e1);
        if (!r1)
            r1 = schema_validate(sc, mine, NULL);
        json_object_put(mine);
        int r2 = schema_validate_text(sc, text, tl, NULL, e2, sizeof e2);
        if (r1 != r2 && r1 != ERR_NOMEM && r2 != ERR_NOMEM)
            __builtin_trap();
    }
    if (inst) {
        schema_result_t *r = schema_result_new();
        int rc = schema_validate(sc, inst, r);
        int rc2 = schema_validate(sc, inst, NULL);
        /* Collecting errors must never change the verdict. */
        if ((rc == 0) != (rc2 == 0) && rc != ERR_NOMEM && rc2 != ERR_NOMEM)
            __builtin_trap();
        if (rc == ERR_SCHEMA && schema_result_count(r) == 0)
            __builtin_trap();
        for (size_t i = 0; i < schema_result_count(r); i++) {
            const schema_error_t *e = schema_result_get(r, i);
            if (!e->instance_ptr || !e->keyword_loc || !e->message)
                __builtin_trap();
        }
        schema_result_free(r);
        char msg[512];
        schema_check(sc, inst, msg, sizeof msg);
    }
    schema_free(sc);
done:
    json_object_put(inst);
    return 0;
}
