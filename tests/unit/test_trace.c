/*
 * trace unit tests: event JSON written by the string builder reads exactly as json-c
 * would write the same values (escapes, numbers, nested attributes), omits absent fields,
 * and a reused buffer gives the same text as a fresh one. A stored body plus its row's
 * run_id and seq gives back the whole event; the segment log rotates by size, points
 * current.jsonl at the segment being written, and prunes only old segments.
 */
#include "check.h"
#include "trace.h"
#include "tracelog.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static void test_body_and_line(void)
{
    trace_ev_t ev = {.span_id = "00112233445566ff", .phase = "point", .op = "log", .step = 2,
                     .error = "x"};
    buf_t body, line;
    buf_init(&body, 0);
    buf_init(&line, 0);
    CHECK_EQ_INT(trace_body_write(&body, &ev), 0);
    CHECK(!strncmp(buf_str(&body), "{\"ts_ns\":", 9));
    CHECK(strstr(buf_str(&body), "run_id") == NULL && strstr(buf_str(&body), "\"seq\"") == NULL);
    CHECK_EQ_INT(trace_line_write(&line, "5f3a9c12e4b0d7a1", 12, buf_str(&body), body.len, NULL), 0);
    /* The line is the event trace_event_write gives, timestamps aside. */
    const char *l = buf_str(&line);
    CHECK(!strncmp(l, "{\"v\":1,\"run_id\":\"5f3a9c12e4b0d7a1\",\"seq\":12,\"ts_ns\":", 52));
    CHECK_EQ_STR(l + strlen(l) - body.len + 1, buf_str(&body) + 1);
    json_object *o = json_tokener_parse(l);
    CHECK(o != NULL);
    json_object_put(o);
    /* A tool event: the stored body leaves the row's part out, the line puts it back last in
     * attrs, exactly as the whole event writes it. */
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "gen_ai.tool.call.id", json_object_new_string("call_1_1"));
    trace_call_t call = {.args = "{\"q\":\"a\\\"b\"}", .idem = "5f3a9c12e4b0d7a1:call_1_1"};
    trace_ev_t tool = {.span_id = "00112233445566ff", .phase = "begin", .op = "execute_tool",
                       .attrs = attrs, .call = &call};
    buf_reset(&body);
    CHECK_EQ_INT(trace_body_write(&body, &tool), 0);
    CHECK(strstr(buf_str(&body), "arguments") == NULL && strstr(buf_str(&body), "idempotency") == NULL);
    buf_reset(&line);
    CHECK_EQ_INT(trace_line_write(&line, "5f3a9c12e4b0d7a1", 4, buf_str(&body), body.len, &call), 0);
    char *whole = trace_event_build("5f3a9c12e4b0d7a1", 4, &tool);
    CHECK(whole != NULL);
    /* Equal from "span_id" on (the timestamps before it differ by when each was taken). */
    CHECK_EQ_STR(strstr(buf_str(&line), "\"span_id\""), whole ? strstr(whole, "\"span_id\"") : "");
    CHECK(strstr(buf_str(&line), "\"call_1_1\",\"gen_ai.tool.call.arguments\":\"{\\\"q\\\":") != NULL);
    json_object *o2 = json_tokener_parse(buf_str(&line));
    CHECK(o2 != NULL);
    json_object_put(o2);
    free(whole);
    /* A result longer than TRACE_RESULT_MAX shows its first TRACE_RESULT_MAX bytes. */
    char big[TRACE_RESULT_MAX + 100];
    memset(big, 'r', sizeof big - 1);
    big[sizeof big - 1] = 0;
    trace_call_t end = {.result = big};
    buf_reset(&line);
    CHECK_EQ_INT(trace_line_write(&line, "5f3a9c12e4b0d7a1", 5, buf_str(&body), body.len, &end), 0);
    const char *r = strstr(buf_str(&line), "\"gen_ai.tool.call.result\":\"");
    CHECK(r != NULL && strlen(r) == strlen("\"gen_ai.tool.call.result\":\"") + TRACE_RESULT_MAX + 3);
    json_object_put(attrs);
    /* A body stored whole by an earlier version is a line already. */
    const char *old = "{\"v\":1,\"run_id\":\"5f3a9c12e4b0d7a1\",\"seq\":3,\"ts_ns\":1}";
    buf_reset(&line);
    CHECK_EQ_INT(trace_line_write(&line, "5f3a9c12e4b0d7a1", 3, old, strlen(old), NULL), 0);
    CHECK_EQ_STR(buf_str(&line), old);
    buf_free(&body);
    buf_free(&line);
}

static long file_size(const char *dir, const char *name)
{
    char p[300];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

static void test_segments(void)
{
    char dir[] = "/tmp/agentd-tracelog.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    int mode = -1;
    CHECK(tracelog_mode_parse(NULL, &mode) == 0 && mode == TRACELOG_SEGMENTS);
    CHECK(tracelog_mode_parse("runs", &mode) == 0 && mode == TRACELOG_RUNS);
    CHECK(tracelog_mode_parse("off", &mode) == 0 && mode == TRACELOG_OFF);
    CHECK(tracelog_mode_parse("files", &mode) != 0);
    /* 100-byte lines, a 1,000-byte limit: a flush of 4 lines at a time fills a segment after
     * three flushes (1,200 bytes: a batch is never split), then the next one starts. */
    tracelog_t *t = tracelog_new(dir, 1000);
    CHECK(t != NULL);
    char text[100];
    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = 0;
    for (int f = 0; f < 4; f++) {
        for (int i = 0; i < 4; i++)
            CHECK_EQ_INT(tracelog_add(t, text, 99), 0);
        CHECK_EQ_INT(tracelog_flush(t), 0);
    }
    CHECK_EQ_INT(file_size(dir, "segment-000001.jsonl"), 1200);
    CHECK_EQ_INT(file_size(dir, "segment-000002.jsonl"), 400);
    CHECK_EQ_INT(file_size(dir, "current.jsonl"), 400); /* follows the link */
    CHECK(strstr(tracelog_path(t), "segment-000002.jsonl") != NULL);
    tracelog_free(t);
    /* A second writer joins the newest segment that has room. */
    t = tracelog_new(dir, 1000);
    CHECK_EQ_INT(tracelog_add(t, text, 99), 0);
    CHECK_EQ_INT(tracelog_flush(t), 0);
    CHECK_EQ_INT(file_size(dir, "segment-000002.jsonl"), 500);
    CHECK(file_size(dir, "segment-000003.jsonl") < 0);
    tracelog_free(t);
    /* A segment removed under a writer: within 64 lines it starts a new one. */
    t = tracelog_new(dir, 1000000);
    CHECK_EQ_INT(tracelog_add(t, text, 99), 0);
    CHECK_EQ_INT(tracelog_flush(t), 0);
    char gone[300];
    snprintf(gone, sizeof gone, "%s/segment-000002.jsonl", dir);
    CHECK_EQ_INT(unlink(gone), 0);
    for (int i = 0; i < 70; i++) {
        CHECK_EQ_INT(tracelog_add(t, text, 99), 0);
        CHECK_EQ_INT(tracelog_flush(t), 0);
    }
    CHECK(file_size(dir, "segment-000002.jsonl") > 0 && file_size(dir, "segment-000002.jsonl") < 7000);
    tracelog_free(t);
    /* Pruning: nothing written before the epoch; everything older than now but the newest. */
    int removed = -1;
    CHECK_EQ_INT(tracelog_prune(dir, 1, &removed), 0);
    CHECK_EQ_INT(removed, 0);
    CHECK_EQ_INT(tracelog_prune(dir, INT64_MAX, &removed), 0);
    CHECK_EQ_INT(removed, 1);
    CHECK(file_size(dir, "segment-000001.jsonl") < 0 && file_size(dir, "segment-000002.jsonl") > 0);
    char p[300];
    snprintf(p, sizeof p, "%s/segment-000002.jsonl", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/current.jsonl", dir);
    unlink(p);
    CHECK_EQ_INT(rmdir(dir), 0);
}

int main(void)
{
    RUN(test_same_as_json_c);
    RUN(test_body_and_line);
    RUN(test_segments);
    return check_report();
}
