/*
 * trace unit tests: event JSON written by the string builder reads exactly as json-c
 * would write the same values (escapes, numbers, nested attributes), omits absent fields,
 * and a reused buffer gives the same text as a fresh one. A stored body plus its row's
 * run_id and seq gives back the whole event; the segment log rotates by size, points
 * current.jsonl at the segment being written, and prunes only old segments.
 */
#include "check.h"
#include "trace.h"
#include "trace_body.h"
#include "tracelog.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* Every byte value at every offset of a text longer than one 8-byte word: escaped as
 * json-c escapes it (the plain runs are skipped a word at a time). */
static void test_escapes_every_byte(void)
{
    int bad = 0;
    for (int c = 1; c < 256 && bad < 3; c++) {
        for (int at = 0; at < 20 && bad < 3; at++) {
            char text[21];
            memset(text, 'a', 20);
            text[20] = 0;
            text[at] = (char)c;
            trace_ev_t ev = {.span_id = "00112233445566ff", .phase = "point", .op = "log",
                             .error = text, .ts_ns = 1, .mono_ns = 1};
            char *got = trace_event_build("5f3a9c12e4b0d7a1", 1, &ev);
            json_object *o = json_object_new_string(text);
            if (!got || !strstr(got, plain(o))) {
                fprintf(stderr, "byte %d at %d: %s\n", c, at, got ? got : "(null)");
                bad++;
            }
            json_object_put(o);
            free(got);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_body_and_line(void)
{
    trace_ev_t ev = {.span_id = "00112233445566ff", .phase = "point", .op = "log", .step = 2,
                     .error = "x"};
    buf_t body, line;
    buf_init(&body, 0);
    buf_init(&line, 0);
    CHECK_EQ_INT(trace_body_write(&body, "5f3a9c12e4b0d7a1", &ev), 0);
    CHECK(buf_str(&body)[0] == '['); /* no transition: its fields by position */
    CHECK(strstr(buf_str(&body), "run_id") == NULL && strstr(buf_str(&body), "\"seq\"") == NULL);
    CHECK_EQ_INT(trace_line_write(&line, "5f3a9c12e4b0d7a1", 12, buf_str(&body), body.len, NULL), 0);
    /* The line is the event trace_event_write gives, timestamps aside. */
    const char *l = buf_str(&line);
    CHECK(!strncmp(l, "{\"v\":1,\"run_id\":\"5f3a9c12e4b0d7a1\",\"seq\":12,\"ts_ns\":", 52));
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
    CHECK_EQ_INT(trace_body_write(&body, "5f3a9c12e4b0d7a1", &tool), 0);
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

#define RUN_ID "5f3a9c12e4b0d7a1"

/* One event: the line read back from its stored body is the line trace_event_write gives
 * (today's line), byte for byte; the body is smaller; and the same event stored with full
 * keys (as before short keys: the line without its head) reads back the same too. */
static void round_trip_of(const char *rid, const trace_ev_t *ev, const trace_call_t *call)
{
    buf_t line, body, back, old;
    buf_init(&line, 0);
    buf_init(&body, 0);
    buf_init(&back, 0);
    buf_init(&old, 0);
    CHECK_EQ_INT(trace_event_write(&line, rid, 9, ev), 0);
    CHECK_EQ_INT(trace_body_write(&body, rid, ev), 0);
    CHECK(body.len < line.len);
    CHECK(strstr(buf_str(&body), "arguments") == NULL && strstr(buf_str(&body), "\"seq\"") == NULL);
    CHECK_EQ_INT(trace_line_write(&back, rid, 9, buf_str(&body), body.len, call), 0);
    CHECK_EQ_STR(buf_str(&back), buf_str(&line));
    /* The writer's form: both at once, the line written from ev, the same bytes. */
    buf_t body2, line2;
    buf_init(&body2, 0);
    buf_init(&line2, 0);
    CHECK_EQ_INT(trace_body_line_write(&body2, &line2, rid, 9, ev), 0);
    CHECK_EQ_STR(buf_str(&body2), buf_str(&body));
    CHECK_EQ_STR(buf_str(&line2), buf_str(&line));
    /* Stamped when written: one stamp for both, so the body reads back as the line. */
    trace_ev_t now = *ev;
    now.ts_ns = now.mono_ns = 0;
    buf_reset(&body2);
    buf_reset(&line2);
    buf_reset(&back);
    CHECK_EQ_INT(trace_body_line_write(&body2, &line2, rid, 9, &now), 0);
    CHECK_EQ_INT(trace_line_write(&back, rid, 9, buf_str(&body2), body2.len, ev->call), 0);
    CHECK_EQ_STR(buf_str(&back), buf_str(&line2));
    buf_free(&body2);
    buf_free(&line2);
    json_object *o = json_tokener_parse(buf_str(&body));
    CHECK(o != NULL); /* still JSON: the transitions view reads it */
    json_object *x;
    if (o && ev->state_to) /* and finds what it reads under its own names */
        CHECK(json_object_object_get_ex(o, "state_to", &x) &&
              json_object_object_get_ex(o, "ts_ns", &x) &&
              json_object_object_get_ex(o, "step", &x) &&
              json_object_object_get_ex(o, "event", &x));
    json_object_put(o);
    /* The full-key body of the previous layout: the line from "ts_ns" on, call left out. */
    trace_ev_t nocall = *ev;
    nocall.call = NULL;
    buf_reset(&line);
    CHECK_EQ_INT(trace_event_write(&line, rid, 9, &nocall), 0);
    const char *ts = strstr(buf_str(&line), ",\"ts_ns\":");
    CHECK(ts != NULL);
    if (ts) {
        buf_add(&old, "{", 1);
        buf_adds(&old, ts + 1);
        CHECK(!trace_body_is_short(buf_str(&old), old.len));
        buf_reset(&back);
        CHECK_EQ_INT(trace_line_write(&back, rid, 9, buf_str(&old), old.len, call), 0);
        buf_reset(&line);
        CHECK_EQ_INT(trace_event_write(&line, rid, 9, ev), 0);
        CHECK_EQ_STR(buf_str(&back), buf_str(&line));
    }
    buf_free(&line);
    buf_free(&body);
    buf_free(&back);
    buf_free(&old);
}

static void round_trip(const trace_ev_t *ev, const trace_call_t *call)
{
    round_trip_of(RUN_ID, ev, call);
}

static json_object *attrs_of(const char *const *kv, size_t n)
{
    json_object *a = json_object_new_object();
    for (size_t i = 0; i + 1 < n; i += 2)
        json_object_object_add(a, kv[i], json_object_new_string(kv[i + 1]));
    return a;
}

static void test_short_keys(void)
{
    const int64_t ts = 1796188475036596135, mono = 3987078060385;
    /* The run's root span: begin with its conversation id, end as a failed run. */
    const char *root[] = {"gen_ai.agent.name",
                          "support",
                          "gen_ai.conversation.id",
                          RUN_ID,
                          "agentd.prompt.git_commit",
                          "0bb1a68cb6ebe304",
                          "agentd.input",
                          "Where is my order \"1042\"?\n"};
    json_object *a = attrs_of(root, 8);
    trace_ev_t ev = {.span_id = RUN_ID,
                     .phase = "begin",
                     .op = "invoke_agent",
                     .name = "invoke_agent support",
                     .attrs = a,
                     .ts_ns = ts,
                     .mono_ns = mono};
    round_trip(&ev, NULL);
    json_object_object_add(a, "gen_ai.usage.cost", json_object_new_double_s(0.0, "0.0"));
    json_object_object_add(a, "gen_ai.usage.input_tokens", json_object_new_int(1241));
    ev = (trace_ev_t){.span_id = RUN_ID,
                      .phase = "end",
                      .op = "invoke_agent",
                      .name = "invoke_agent support",
                      .state_from = "acting",
                      .state_to = "failed",
                      .event = "tool_failed",
                      .end_span = "fdccae08b0bd5ad2",
                      .step = 4,
                      .status = "error",
                      .error = "tool \"lookup\" failed: boom",
                      .attrs = a,
                      .ts_ns = ts,
                      .mono_ns = mono};
    round_trip(&ev, NULL);
    json_object_put(a);
    /* A transition named after its state; one not named after anything. */
    ev = (trace_ev_t){.span_id = "42218aeddf0ac7e1",
                      .parent_id = RUN_ID,
                      .phase = "begin",
                      .op = "plan",
                      .name = "plan planning",
                      .state_from = "created",
                      .state_to = "planning",
                      .event = "start",
                      .ts_ns = ts,
                      .mono_ns = mono};
    round_trip(&ev, NULL);
    ev.name = "planning again";
    round_trip(&ev, NULL);
    /* Chat begin (named after the requested model) and end (after the answering one). */
    const char *chat[] = {"gen_ai.request.model", "openai:gpt-4o-mini", "agentd.prompt.hash",
                          "0bb1a68cb6ebe304"};
    a = attrs_of(chat, 4);
    json_object_object_add(a, "agentd.messages", json_object_new_int(2));
    ev = (trace_ev_t){.span_id = "b5d5829623035d93",
                      .parent_id = "42218aeddf0ac7e1",
                      .phase = "begin",
                      .op = "chat",
                      .name = "chat openai:gpt-4o-mini",
                      .attrs = a,
                      .ts_ns = ts,
                      .mono_ns = mono};
    round_trip(&ev, NULL);
    json_object_object_add(a, "gen_ai.response.model", json_object_new_string("gpt-4o-mini"));
    json_object_object_add(a, "agentd.latency_ms", json_object_new_double(0.502097));
    ev.phase = "end";
    ev.name = "chat gpt-4o-mini";
    ev.status = "ok";
    ev.step = 1;
    round_trip(&ev, NULL);
    json_object_put(a);
    /* A tool call: begin with its arguments, end with its result, both from the row. */
    const char *tool[] = {"gen_ai.tool.name", "lookup_order", "gen_ai.tool.call.id", "call_1_1"};
    a = attrs_of(tool, 4);
    trace_call_t args = {.args = "{\"id\":\"1042\"}", .idem = RUN_ID ":call_1_1"};
    ev = (trace_ev_t){.span_id = "4700549be813bdef",
                      .parent_id = "fdccae08b0bd5ad2",
                      .phase = "begin",
                      .op = "execute_tool",
                      .name = "execute_tool lookup_order",
                      .step = 1,
                      .attrs = a,
                      .call = &args,
                      .ts_ns = ts,
                      .mono_ns = mono};
    round_trip(&ev, &args);
    json_object_object_add(a, "agentd.tool.state", json_object_new_string("ok"));
    trace_call_t res = {.result = "{\"status\":\"shipped\",\"note\":\"a \\\"b\\\"\"}"};
    ev.phase = "end";
    ev.status = "ok";
    ev.call = &res;
    round_trip(&ev, &res);
    json_object_put(a);
    /* A log point with keys of its own: one character, a '~', nested values, no tokens. */
    a = json_object_new_object();
    json_object_object_add(a, "a", json_object_new_int(1));
    json_object_object_add(a, "~x", json_object_new_string("tilde"));
    json_object_object_add(a, "k\"ey\n", json_object_new_string("esc"));
    json_object_object_add(a, "\"", json_object_new_string("quote key"));
    json_object *nest = json_object_new_object();
    json_object_object_add(nest, "1", json_object_new_string("}{],\""));
    json_object_object_add(a, "nested", nest);
    json_object_object_add(a, "gen_ai.conversation.id", json_object_new_string("other"));
    ev = (trace_ev_t){.span_id = "00112233445566ff",
                      .parent_id = "4700549be813bdef",
                      .phase = "point",
                      .op = "log",
                      .name = "log note",
                      .step = 2,
                      .attrs = a,
                      .ts_ns = ts,
                      .mono_ns = mono};
    round_trip(&ev, NULL);
    /* An op and a phase without a code stay strings. */
    ev.op = "resume";
    ev.phase = "middle";
    ev.name = "resume";
    round_trip(&ev, NULL);
    json_object_put(a);
    /* A sub-agent's run: its root span under the parent's tool span; empty attrs. */
    const char *sub[] = {"gen_ai.agent.name", "refunds", "agentd.parent_run_id", RUN_ID};
    a = attrs_of(sub, 4);
    ev = (trace_ev_t){.span_id = "7abb6d3ac9026281",
                      .parent_id = "708ec649c9c961c7",
                      .phase = "begin",
                      .op = "invoke_agent",
                      .name = "invoke_agent refunds",
                      .attrs = a,
                      .ts_ns = ts,
                      .mono_ns = mono};
    round_trip(&ev, NULL);
    json_object_put(a);
    a = json_object_new_object();
    ev.attrs = a;
    round_trip(&ev, NULL);
    json_object_put(a);
    /* Fields absent between present ones (no parent, name, attrs or status; an error). */
    ev = (trace_ev_t){.span_id = "00112233445566ff",
                      .phase = "point",
                      .op = "retry",
                      .step = 2,
                      .error = "HTTP 429: \"slow down\"",
                      .ts_ns = ts,
                      .mono_ns = mono};
    round_trip(&ev, NULL);
    ev.end_span = "4700549be813bdef"; /* and a field after them all */
    round_trip(&ev, NULL);
    /* A run id that starts with its creation time (ms): ts_ns is stored from it, unless
     * the event is older. */
    round_trip_of("01a2352d0e9c5d7f", &ev, NULL);
    ev.ts_ns = 1796188475036000000 - 1;
    round_trip_of("01a2352d0e9c5d7f", &ev, NULL);
    ev.ts_ns = ts;
    /* Ids that are not 16 lowercase hex stay as they are. */
    ev.span_id = "abcdefghijk"; /* 11 characters, the length of a short id */
    ev.parent_id = "~tilde";
    ev.end_span = "00112233445566FF";
    round_trip(&ev, NULL);
    ev.span_id = "";
    ev.parent_id = "\"";
    round_trip(&ev, NULL);
    /* A stored body that is not of the form is shown as stored, after the head. */
    buf_t b;
    buf_init(&b, 0);
    const char *bad = "{\"t\":1,\"m\":2,\"a\":{\"0\":";
    CHECK_EQ_INT(trace_line_write(&b, RUN_ID, 3, bad, strlen(bad), NULL), 0);
    CHECK_EQ_STR(buf_str(&b),
                 "{\"v\":1,\"run_id\":\"" RUN_ID "\",\"seq\":3,\"t\":1,\"m\":2,\"a\":{\"0\":");
    buf_reset(&b);
    CHECK_EQ_INT(trace_line_write(&b, RUN_ID, 4, "[1,2,\"x", 7, NULL), 0);
    CHECK_EQ_STR(buf_str(&b), "{\"v\":1,\"run_id\":\"" RUN_ID "\",\"seq\":4,1,2,\"x");
    buf_reset(&b); /* a time offset past what int64 holds */
    const char *far = "[-99999999999999999999,1]";
    CHECK_EQ_INT(trace_line_write(&b, "01a2352d0e9c5d7f", 5, far, strlen(far), NULL), 0);
    CHECK_EQ_STR(buf_str(&b),
                 "{\"v\":1,\"run_id\":\"01a2352d0e9c5d7f\",\"seq\":5,-99999999999999999999,1]");
    buf_free(&b);
}

/* Span ids: 16 lowercase hex digits, no repeats in 20,000, and a forked child does not
 * continue its parent's sequence (it reseeds). */
static int span_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 17);
}

static void test_span_ids(void)
{
    enum { N = 20000 };
    static char ids[N][17];
    for (int i = 0; i < N; i++)
        trace_span_id(ids[i]);
    int hex = 1;
    for (int i = 0; i < N; i++)
        hex &= strlen(ids[i]) == 16 && strspn(ids[i], "0123456789abcdef") == 16;
    CHECK(hex);
    qsort(ids, N, 17, span_cmp);
    int dup = 0;
    for (int i = 1; i < N; i++)
        dup |= !memcmp(ids[i - 1], ids[i], 17);
    CHECK(!dup);
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char c[17];
        trace_span_id(c);
        _exit(write(fds[1], c, 17) == 17 ? 0 : 1);
    }
    char child[17] = "", parent[17];
    trace_span_id(parent);
    close(fds[1]); /* a child that dies before writing ends the read instead of hanging it */
    CHECK(read(fds[0], child, 17) == 17);
    int st = 0;
    waitpid(pid, &st, 0);
    close(fds[0]);
    CHECK(strlen(child) == 16 && strcmp(child, parent) != 0);
}

int main(void)
{
    RUN(test_same_as_json_c);
    RUN(test_escapes_every_byte);
    RUN(test_body_and_line);
    RUN(test_short_keys);
    RUN(test_segments);
    RUN(test_span_ids);
    return check_report();
}
