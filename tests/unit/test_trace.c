/*
 * trace unit tests: event JSON written by the string builder reads exactly as json-c
 * would write the same values (escapes, numbers, nested attributes), omits absent fields,
 * and a reused buffer gives the same text as a fresh one.
 */
#include "check.h"
#include "trace.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static const char *plain(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void test_same_as_json_c(void)
{
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "gen_ai.usage.cost", json_object_new_double(0.1));
    json_object_object_add(attrs, "whole", json_object_new_double(3.0));
    json_object_object_add(attrs, "big", json_object_new_double(1e300));
    json_object_object_add(attrs, "as_written", json_object_new_double_s(0.5, "5e-1"));
    json_object_object_add(attrs, "neg", json_object_new_int64(-42));
    json_object_object_add(attrs, "max", json_object_new_int64(INT64_MAX));
    json_object_object_add(attrs, "huge", json_object_new_uint64(UINT64_MAX));
    json_object_object_add(attrs, "ok", json_object_new_boolean(1));
    json_object_object_add(attrs, "none", NULL);
    json_object_object_add(attrs, "text",
                           json_object_new_string("quote\" back\\ slash/ tab\t nl\n \x01 é ✓"));
    json_object *arr = json_object_new_array();
    json_object_array_add(arr, json_object_new_int(1));
    json_object_array_add(arr, json_object_new_string("two"));
    json_object *inner = json_object_new_object();
    json_object_object_add(inner, "k\"ey", json_object_new_array());
    json_object_array_add(arr, inner);
    json_object_object_add(attrs, "list", arr);
    trace_ev_t ev = {
        .span_id = "00112233445566ff",
        .parent_id = "5f3a9c12e4b0d7a1",
        .phase = "begin",
        .op = "execute_tool",
        .name = "execute_tool \"odd\"\nname",
        .step = 3,
        .status = "error",
        .error = "boom\r\n",
        .attrs = attrs,
    };
    char *got = trace_event_build("5f3a9c12e4b0d7a1", 7, &ev);
    CHECK(got != NULL);
    json_object *parsed = got ? json_tokener_parse(got) : NULL;
    CHECK(parsed != NULL);
    /* Same fields, same values, same order, byte for byte: rebuild with json-c. */
    json_object *want = json_object_new_object();
    json_object_object_add(want, "v", json_object_new_int(TRACE_VERSION));
    json_object_object_add(want, "run_id", json_object_new_string("5f3a9c12e4b0d7a1"));
    json_object_object_add(want, "seq", json_object_new_int64(7));
    json_object *x;
    CHECK(json_object_object_get_ex(parsed, "ts_ns", &x) && json_object_get_int64(x) > 0);
    json_object_object_add(want, "ts_ns", json_object_get(x));
    CHECK(json_object_object_get_ex(parsed, "mono_ns", &x));
    json_object_object_add(want, "mono_ns", json_object_get(x));
    json_object_object_add(want, "span_id", json_object_new_string(ev.span_id));
    json_object_object_add(want, "parent_id", json_object_new_string(ev.parent_id));
    json_object_object_add(want, "phase", json_object_new_string(ev.phase));
    json_object_object_add(want, "op", json_object_new_string(ev.op));
    json_object_object_add(want, "name", json_object_new_string(ev.name));
    json_object_object_add(want, "step", json_object_new_int(3));
    json_object_object_add(want, "status", json_object_new_string(ev.status));
    json_object_object_add(want, "error", json_object_new_string(ev.error));
    json_object_object_add(want, "attrs", json_object_get(attrs));
    CHECK_EQ_STR(got, plain(want));
    /* A reused buffer: the second event is appended after a reset, text identical. */
    buf_t b;
    buf_init(&b, 0);
    CHECK_EQ_INT(trace_event_write(&b, "5f3a9c12e4b0d7a1", 8, &ev), 0);
    size_t first = b.len;
    buf_reset(&b);
    trace_ev_t small = {.span_id = "00112233445566ff", .phase = "point", .op = "log", .step = 0};
    CHECK_EQ_INT(trace_event_write(&b, "5f3a9c12e4b0d7a1", 9, &small), 0);
    CHECK(b.len < first);
    CHECK(strstr(buf_str(&b), "\"parent_id\"") == NULL); /* absent, not null */
    CHECK(strstr(buf_str(&b), "\"attrs\"") == NULL);
    CHECK(strstr(buf_str(&b), ",\"step\":0}") != NULL);
    /* A capped buffer fails cleanly. */
    buf_t tiny;
    buf_init(&tiny, 16);
    CHECK(trace_event_write(&tiny, "5f3a9c12e4b0d7a1", 1, &ev) != 0);
    buf_free(&tiny);
    buf_free(&b);
    json_object_put(want);
    json_object_put(parsed);
    json_object_put(attrs);
    free(got);
}

int main(void)
{
    RUN(test_same_as_json_c);
    return check_report();
}
