/* otlp: structure of the exported TracesData, checked against the OTLP JSON encoding rules
 * (hex ids, decimal-string int64s, integer enums, lowerCamelCase Span fields) and the GenAI
 * conventions agentd promises. */
#include "check.h"
#include "err.h"
#include "otlp.h"
#include "otlp_content.h"
#include "otlp_send.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

static spantree_t *load(const char *path)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f)
        return NULL;
    spantree_t *m = spantree_new(NULL);
    char line[8192], err[200];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (*line)
            CHECK_EQ_INT(spantree_add(m, line, err, sizeof err), 0);
    }
    fclose(f);
    return m;
}

/* Export through a memory stream and parse it back, checking it is exactly one line. */
static json_object *export(spantree_t *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_EQ_INT(otlp_write(m, 0, f), 0);
    fclose(f);
    CHECK(len > 2 && buf[len - 1] == '\n');
    CHECK(memchr(buf, '\n', len - 1) == NULL);
    json_object *o = json_tokener_parse(buf);
    free(buf);
    CHECK(o != NULL);
    return o;
}

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    if (o)
        json_object_object_get_ex(o, k, &v);
    return v;
}

static int hex_lower(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return 0;
    return 1;
}

static int decimal(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* AnyValue has exactly one known member. */
static int any_value_ok(json_object *v)
{
    static const char *const keys[] = {"stringValue", "boolValue",   "intValue",  "doubleValue",
                                       "arrayValue",  "kvlistValue", "bytesValue"};
    int n = 0;
    json_object_object_foreach(v, k, val)
    {
        int known = 0;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            known |= strcmp(k, keys[i]) == 0;
        if (!known)
            return 0;
        if (strcmp(k, "intValue") == 0 &&
            (!json_object_is_type(val, json_type_string) || !decimal(json_object_get_string(val))))
            return 0;
        n++;
    }
    return n == 1;
}

static json_object *attr(json_object *attrs, const char *key)
{
    size_t n = attrs ? json_object_array_length(attrs) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *kv = json_object_array_get_idx(attrs, i);
        if (strcmp(json_object_get_string(get(kv, "key")), key) == 0)
            return get(kv, "value");
    }
    return NULL;
}

static const char *attr_str(json_object *attrs, const char *key)
{
    json_object *v = attr(attrs, key);
    return v ? json_object_get_string(get(v, "stringValue")) : NULL;
}

static json_object *spans_of(json_object *td)
{
    json_object *rs = json_object_array_get_idx(get(td, "resourceSpans"), 0);
    json_object *ss = json_object_array_get_idx(get(rs, "scopeSpans"), 0);
    return get(ss, "spans");
}

static json_object *span_named(json_object *spans, const char *id)
{
    for (size_t i = 0; i < json_object_array_length(spans); i++) {
        json_object *s = json_object_array_get_idx(spans, i);
        if (strcmp(json_object_get_string(get(s, "spanId")), id) == 0)
            return s;
    }
    return NULL;
}

static void check_structure(json_object *td, const char *trace_id)
{
    static const char *const span_keys[] = {"traceId",
                                            "spanId",
                                            "traceState",
                                            "parentSpanId",
                                            "flags",
                                            "name",
                                            "kind",
                                            "startTimeUnixNano",
                                            "endTimeUnixNano",
                                            "attributes",
                                            "droppedAttributesCount",
                                            "events",
                                            "droppedEventsCount",
                                            "links",
                                            "droppedLinksCount",
                                            "status"};
    CHECK_EQ_INT(json_object_array_length(get(td, "resourceSpans")), 1);
    json_object *rs = json_object_array_get_idx(get(td, "resourceSpans"), 0);
    CHECK_EQ_STR(attr_str(get(get(rs, "resource"), "attributes"), "service.name"), "agentd");
    json_object *ss = json_object_array_get_idx(get(rs, "scopeSpans"), 0);
    CHECK_EQ_STR(json_object_get_string(get(get(ss, "scope"), "name")), "agentd");
    json_object *spans = get(ss, "spans");
    size_t n = json_object_array_length(spans);
    CHECK(n > 0);
    int roots = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(spans, i);
        json_object_object_foreach(s, k, v)
        {
            int known = 0;
            for (size_t j = 0; j < sizeof span_keys / sizeof span_keys[0]; j++)
                known |= strcmp(k, span_keys[j]) == 0;
            if (!known)
                fprintf(stderr, "  unknown Span field %s\n", k);
            CHECK(known);
            (void)v;
        }
        CHECK_EQ_STR(json_object_get_string(get(s, "traceId")), trace_id);
        CHECK(hex_lower(json_object_get_string(get(s, "spanId")), 16));
        json_object *p = get(s, "parentSpanId");
        if (!p) {
            roots++;
        } else {
            CHECK(hex_lower(json_object_get_string(p), 16));
            CHECK(span_named(spans, json_object_get_string(p)) != NULL);
        }
        json_object *st = get(s, "startTimeUnixNano"), *en = get(s, "endTimeUnixNano");
        CHECK(json_object_is_type(st, json_type_string) && decimal(json_object_get_string(st)));
        CHECK(json_object_is_type(en, json_type_string) && decimal(json_object_get_string(en)));
        CHECK(strtoll(json_object_get_string(st), NULL, 10) <=
              strtoll(json_object_get_string(en), NULL, 10));
        CHECK(json_object_is_type(get(s, "kind"), json_type_int));
        json_object *attrs = get(s, "attributes");
        for (size_t j = 0; j < json_object_array_length(attrs); j++)
            CHECK(any_value_ok(get(json_object_array_get_idx(attrs, j), "value")));
        json_object *evs = get(s, "events");
        for (size_t j = 0; evs && j < json_object_array_length(evs); j++) {
            json_object *e = json_object_array_get_idx(evs, j);
            CHECK(decimal(json_object_get_string(get(e, "timeUnixNano"))));
            CHECK(get(e, "name") != NULL);
        }
    }
    CHECK_EQ_INT(roots, 1);
}

static void test_failed_run(void)
{
    spantree_t *m = load("tests/fixtures/traces/failed_run.jsonl");
    json_object *td = export(m);
    check_structure(td, "5f3a9c12e4b0d7a15f3a9c12e4b0d7a1");
    json_object *spans = spans_of(td);
    /* 10 spans less the tool retry, which is a span event. */
    CHECK_EQ_INT(json_object_array_length(spans), 9);
    json_object *c2 = span_named(spans, "c000000000000002");
    json_object *c2ev = json_object_array_get_idx(get(c2, "events"), 0);
    CHECK_EQ_STR(json_object_get_string(get(c2ev, "name")), "retry openai:gpt-4o-mini #1");
    CHECK_EQ_STR(
        json_object_get_string(get(attr(get(c2ev, "attributes"), "agentd.delay_ms"), "intValue")),
        "800");

    json_object *root = span_named(spans, "5f3a9c12e4b0d7a1");
    CHECK_EQ_STR(json_object_get_string(get(root, "name")), "invoke_agent support");
    CHECK_EQ_INT(json_object_get_int(get(root, "kind")), 1);
    CHECK_EQ_INT(json_object_get_int(get(get(root, "status"), "code")), 2);
    CHECK_EQ_STR(attr_str(get(root, "attributes"), "error.type"), "max_steps");
    CHECK_EQ_STR(attr_str(get(root, "attributes"), "gen_ai.agent.name"), "support");
    CHECK_EQ_STR(attr_str(get(root, "attributes"), "agentd.run.state"), "failed");

    json_object *chat = span_named(spans, "c000000000000001");
    CHECK_EQ_STR(json_object_get_string(get(chat, "name")), "chat gpt-4o-mini");
    CHECK_EQ_INT(json_object_get_int(get(chat, "kind")), 3);
    CHECK_EQ_STR(json_object_get_string(get(chat, "parentSpanId")), "a000000000000001");
    CHECK_EQ_STR(json_object_get_string(get(chat, "startTimeUnixNano")), "1764331200002000000");
    CHECK_EQ_STR(json_object_get_string(get(chat, "endTimeUnixNano")), "1764331200412000000");
    CHECK(get(chat, "status") == NULL);
    json_object *ca = get(chat, "attributes");
    CHECK_EQ_STR(attr_str(ca, "gen_ai.operation.name"), "chat");
    CHECK_EQ_STR(attr_str(ca, "gen_ai.request.model"), "gpt-4o-mini");
    CHECK_EQ_STR(json_object_get_string(get(attr(ca, "gen_ai.usage.input_tokens"), "intValue")),
                 "812");
    CHECK(get(attr(ca, "gen_ai.usage.cost"), "doubleValue") != NULL);
    CHECK(get(attr(ca, "gen_ai.response.finish_reasons"), "arrayValue") != NULL);

    json_object *tool = span_named(spans, "d000000000000001");
    CHECK_EQ_STR(json_object_get_string(get(tool, "name")), "execute_tool lookup_order");
    CHECK_EQ_INT(json_object_get_int(get(tool, "kind")), 1);
    CHECK_EQ_INT(json_object_get_int(get(get(tool, "status"), "code")), 2);
    CHECK_EQ_STR(json_object_get_string(get(get(tool, "status"), "message")),
                 "lookup_order: orders.db: no such table: orders");
    CHECK_EQ_STR(attr_str(get(tool, "attributes"), "error.type"), "tool_error");
    CHECK_EQ_STR(attr_str(get(tool, "attributes"), "gen_ai.tool.name"), "lookup_order");
    CHECK_EQ_STR(attr_str(get(tool, "attributes"), "gen_ai.tool.call.id"), "call_1");
    /* The retry is an event on the tool span, with its delay. */
    json_object *evs = get(tool, "events");
    CHECK_EQ_INT(evs ? json_object_array_length(evs) : 0, 1);
    json_object *ev = json_object_array_get_idx(evs, 0);
    CHECK_EQ_STR(json_object_get_string(get(ev, "name")), "retry lookup_order");
    CHECK_EQ_STR(json_object_get_string(
                     get(attr(get(ev, "attributes"), "agentd.retry.delay_ms"), "intValue")),
                 "250");
    CHECK_EQ_STR(attr_str(get(ev, "attributes"), "error.message"), "tool timed out after 5000 ms");

    /* State spans carry the transition that opened them. */
    json_object *act = span_named(spans, "b000000000000001");
    CHECK_EQ_STR(attr_str(get(act, "attributes"), "agentd.state_to"), "acting");
    CHECK_EQ_STR(attr_str(get(act, "attributes"), "agentd.event"), "model_tool_calls");
    json_object_put(td);
    spantree_free(m);
}

/* A crash and a resume in another process: still one trace, and the span that never
 * ended is exported, closed at the run's end and marked unfinished. */
static void test_crash_resumed(void)
{
    spantree_t *m = load("tests/fixtures/traces/crash_resumed.jsonl");
    json_object *td = export(m);
    check_structure(td, "77aa00bb11cc22dd77aa00bb11cc22dd");
    json_object *spans = spans_of(td);
    json_object *tool = span_named(spans, "d200000000000001");
    CHECK(tool != NULL);
    CHECK(get(attr(get(tool, "attributes"), "agentd.span.unfinished"), "boolValue") != NULL);
    CHECK_EQ_STR(json_object_get_string(get(tool, "endTimeUnixNano")), "1764331030007000000");
    json_object *unknown = span_named(spans, "d200000000000002");
    CHECK(unknown != NULL);
    CHECK_EQ_STR(attr_str(get(unknown, "attributes"), "error.type"), "unknown");
    /* The resume log line is an event of the root span. */
    json_object *root = span_named(spans, "77aa00bb11cc22dd");
    CHECK_EQ_STR(
        json_object_get_string(get(json_object_array_get_idx(get(root, "events"), 0), "name")),
        "resume");
    json_object_put(td);
    spantree_free(m);
}

static json_object *int_value(json_object *attrs, const char *key)
{
    return get(attr(attrs, key), "intValue");
}

/* The GenAI conventions as backends read them, from a trace as the runtime writes it
 * (provider-prefixed request model, one finish reason as a string, run totals repeated on
 * the root's end, absolute paths, a fallback that answered). */
static void test_genai_conventions(void)
{
    spantree_t *m = load("tests/fixtures/traces/genai_run.jsonl");
    json_object *td = export(m);
    check_structure(td, "01a23454f416716d01a23454f416716d");
    json_object *spans = spans_of(td);
    json_object *c1 = get(span_named(spans, "e50b713473384bc4"), "attributes");
    CHECK_EQ_STR(attr_str(c1, "gen_ai.request.model"), "gpt-4o-mini");
    CHECK_EQ_STR(attr_str(c1, "gen_ai.provider.name"), "openai");
    json_object *fr = get(get(attr(c1, "gen_ai.response.finish_reasons"), "arrayValue"), "values");
    CHECK_EQ_INT(fr ? json_object_array_length(fr) : 0, 1);
    CHECK_EQ_STR(json_object_get_string(get(json_object_array_get_idx(fr, 0), "stringValue")),
                 "tool_calls");
    CHECK_EQ_STR(json_object_get_string(get(span_named(spans, "e50b713473384bc4"), "name")),
                 "chat gpt-4o-mini");
    /* The fallback answered: the request that produced the answer went to its model. */
    json_object *c2 = get(span_named(spans, "250d82c54137d298"), "attributes");
    CHECK_EQ_STR(attr_str(c2, "gen_ai.provider.name"), "offline");
    CHECK_EQ_STR(attr_str(c2, "gen_ai.request.model"), "default");
    CHECK_EQ_STR(attr_str(c2, "agentd.fallback.from"), "openai:gpt-4o-mini");
    /* The root carries no gen_ai.usage.*: a backend summing them over the trace gets the
     * model calls' tokens once. */
    json_object *root = get(span_named(spans, "01a23454f416716d"), "attributes");
    CHECK(attr(root, "gen_ai.usage.input_tokens") == NULL);
    CHECK(attr(root, "gen_ai.usage.output_tokens") == NULL);
    CHECK(attr(root, "gen_ai.usage.cost") == NULL);
    CHECK_EQ_STR(json_object_get_string(int_value(root, "agentd.run.input_tokens")), "2108");
    CHECK_EQ_STR(json_object_get_string(int_value(root, "agentd.run.output_tokens")), "170");
    CHECK_EQ_STR(attr_str(root, "gen_ai.request.model"), "gpt-4o-mini");
    CHECK_EQ_STR(attr_str(root, "gen_ai.provider.name"), "openai");
    long long in = 0, out = 0;
    for (size_t i = 0; i < json_object_array_length(spans); i++) {
        json_object *a = get(json_object_array_get_idx(spans, i), "attributes");
        json_object *v = int_value(a, "gen_ai.usage.input_tokens");
        in += v ? strtoll(json_object_get_string(v), NULL, 10) : 0;
        v = int_value(a, "gen_ai.usage.output_tokens");
        out += v ? strtoll(json_object_get_string(v), NULL, 10) : 0;
    }
    CHECK_EQ_INT(in, 948 + 1160);
    CHECK_EQ_INT(out, 20 + 150);
    /* Paths relative to the agent's folder: no home directory in the export. */
    CHECK_EQ_STR(attr_str(root, "agentd.agent.path"), "support.lua");
    CHECK_EQ_STR(attr_str(root, "agentd.prompt_file"), "prompts/support.md");
    json_object_put(td);
    spantree_free(m);
}

/* A denied approval: an event (with its message) of the state span that asked for it. */
static void test_denied_approval(void)
{
    spantree_t *m = load("tests/fixtures/traces/approval_denied.jsonl");
    json_object *td = export(m);
    check_structure(td, "01a2345512ad481c01a2345512ad481c");
    json_object *act = span_named(spans_of(td), "c7e6b9431bcc7139");
    json_object *evs = get(act, "events");
    int found = 0;
    for (size_t i = 0; evs && i < json_object_array_length(evs); i++) {
        json_object *e = json_object_array_get_idx(evs, i);
        if (!strcmp(json_object_get_string(get(e, "name")), "guardrail denied")) {
            found = 1;
            CHECK_EQ_STR(attr_str(get(e, "attributes"), "error.message"),
                         "denied by operator: customer must send photos first");
        }
    }
    CHECK(found);
    json_object_put(td);
    spantree_free(m);
}

static void test_paths(void)
{
    spantree_t *m = spantree_new(NULL);
    char err[200];
    CHECK_EQ_INT(spantree_add(m,
                              "{\"seq\":1,\"ts_ns\":1,\"run_id\":\"r\",\"span_id\":\"r\","
                              "\"phase\":\"begin\",\"op\":\"invoke_agent\",\"attrs\":{"
                              "\"agentd.agent.path\":\"/srv/a/agents/x.lua\","
                              "\"agentd.prompt_file\":\"/srv/a/shared/p.md\"}}",
                              err, sizeof err),
                 0);
    /* A model call names the prompt file too: relative to the same folder. */
    CHECK_EQ_INT(spantree_add(m,
                              "{\"seq\":2,\"ts_ns\":2,\"run_id\":\"r\",\"span_id\":\"c\","
                              "\"parent_id\":\"r\",\"phase\":\"begin\",\"op\":\"chat\",\"attrs\":{"
                              "\"agentd.prompt.file\":\"/srv/a/agents/prompts/p.md\"}}",
                              err, sizeof err),
                 0);
    json_object *td = export(m);
    json_object *a = get(json_object_array_get_idx(spans_of(td), 0), "attributes");
    CHECK_EQ_STR(attr_str(a, "agentd.agent.path"), "x.lua");
    CHECK_EQ_STR(attr_str(a, "agentd.prompt_file"), "../shared/p.md");
    json_object *c = get(json_object_array_get_idx(spans_of(td), 1), "attributes");
    CHECK_EQ_STR(attr_str(c, "agentd.prompt.file"), "prompts/p.md");
    json_object_put(td);
    spantree_free(m);
}

/* Content capture: the conventions' shapes from a stored conversation, secrets redacted,
 * and nothing of it without OTLP_CONTENT. */
static void test_content(void)
{
    setenv("TEST_OTLP_API_KEY", "zz-secret-value-123", 1);
    spantree_t *m = load("tests/fixtures/traces/genai_run.jsonl");
    json_object *msgs = json_tokener_parse(
        "[{\"role\":\"system\",\"content\":\"You are the Acme agent.\"},"
        "{\"role\":\"user\",\"content\":\"Where is my order 1042? key zz-secret-value-123\"},"
        "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"call_1\","
        "\"name\":\"lookup_order\",\"arguments\":\"{\\\"order_id\\\":\\\"1042\\\"}\"}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"name\":\"lookup_order\","
        "\"content\":\"{\\\"status\\\":\\\"in_transit\\\"}\"},"
        "{\"role\":\"assistant\",\"content\":\"It is in transit.\"}]");
    json_object *tools = json_tokener_parse(
        "[{\"name\":\"lookup_order\",\"description\":\"Look up an order\","
        "\"parameters\":{\"type\":\"object\"}}]");
    CHECK(msgs && tools);
    CHECK_EQ_INT(otlp_content_add(m, "01a23454f416716d", msgs, tools), 0);
    json_object *plain = otlp_build(m, 0);
    json_object *full = otlp_build(m, OTLP_CONTENT);
    /* The first chat: request = 2 messages (system + user), reply = message 2. */
    json_object *c1 = get(span_named(spans_of(full), "e50b713473384bc4"), "attributes");
    CHECK_EQ_STR(attr_str(c1, "gen_ai.system_instructions"),
                 "[{\"type\":\"text\",\"content\":\"You are the Acme agent.\"}]");
    const char *in1 = attr_str(c1, "gen_ai.input.messages");
    CHECK(in1 && !strncmp(in1,
                          "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"Where "
                          "is my order 1042? key [REDACTED]",
                          strlen("[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":"
                                 "\"Where is my order 1042? key [REDACTED]")));
    CHECK_EQ_STR(attr_str(c1, "gen_ai.output.messages"),
                 "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"tool_call\",\"id\":\"call_1\","
                 "\"name\":\"lookup_order\",\"arguments\":{\"order_id\":\"1042\"}}],"
                 "\"finish_reason\":\"tool_calls\"}]");
    CHECK_EQ_STR(attr_str(c1, "gen_ai.tool.definitions"),
                 "[{\"type\":\"function\",\"name\":\"lookup_order\",\"description\":\"Look up an "
                 "order\",\"parameters\":{\"type\":\"object\"}}]");
    /* The second chat's request holds the tool result as a tool_call_response part. */
    json_object *c2 = get(span_named(spans_of(full), "250d82c54137d298"), "attributes");
    const char *in2 = attr_str(c2, "gen_ai.input.messages");
    CHECK(in2 && strstr(in2, "{\"type\":\"tool_call_response\",\"id\":\"call_1\","
                             "\"response\":{\"status\":\"in_transit\"}}"));
    /* The root: the user's input and the final answer. */
    json_object *root = get(span_named(spans_of(full), "01a23454f416716d"), "attributes");
    CHECK_EQ_STR(attr_str(root, "gen_ai.output.messages"),
                 "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"It is in "
                 "transit.\"}]}]");
    /* Without the flag: no messages, no tool arguments, no input. */
    const char *text = json_object_to_json_string(plain);
    CHECK(!strstr(text, "gen_ai.input.messages") && !strstr(text, "gen_ai.tool.call.arguments") &&
          !strstr(text, "agentd.input") && !strstr(text, "zz-secret"));
    CHECK(!strstr(json_object_to_json_string(full), "zz-secret"));
    json_object_put(plain);
    json_object_put(full);
    json_object_put(msgs);
    json_object_put(tools);
    spantree_free(m);
    unsetenv("TEST_OTLP_API_KEY");
}

static void test_send_config(void)
{
    char url[200];
    CHECK_EQ_INT(otlp_send_url("http://127.0.0.1:4318", url, sizeof url), 0);
    CHECK_EQ_STR(url, "http://127.0.0.1:4318/v1/traces");
    CHECK_EQ_INT(otlp_send_url("https://cloud.langfuse.com/api/public/otel/", url, sizeof url), 0);
    CHECK_EQ_STR(url, "https://cloud.langfuse.com/api/public/otel/v1/traces");
    CHECK_EQ_INT(otlp_send_url("http://h:4318/v1/traces", url, sizeof url), 0);
    CHECK_EQ_STR(url, "http://h:4318/v1/traces");
    CHECK_EQ_INT(otlp_send_url("localhost:4318", url, sizeof url), ERR_INVAL);
    CHECK(strstr(url, "not an http:// or https:// URL") != NULL);
    char *list[8] = {NULL};
    int n = otlp_send_env_headers(" Authorization=Basic%20abc== , x-langfuse-ingestion-version=4",
                                  list, 0, 8);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_STR(list[0], "Authorization: Basic abc==");
    CHECK_EQ_STR(list[1], "x-langfuse-ingestion-version: 4");
    CHECK(list[2] == NULL);
    for (int i = 0; i < n; i++)
        free(list[i]);
    CHECK_EQ_INT(otlp_send_env_headers("novalue", list, 0, 8), ERR_INVAL);
}

static void test_ids(void)
{
    char t[33], s[17];
    otlp_trace_id("5F3A9C12E4B0D7A1", t);
    CHECK_EQ_STR(t, "5f3a9c12e4b0d7a15f3a9c12e4b0d7a1");
    otlp_trace_id("not-a-hex-id", t);
    CHECK(hex_lower(t, 32));
    otlp_span_id("ABCDEF0123456789", s);
    CHECK_EQ_STR(s, "abcdef0123456789");
    otlp_span_id("tool-7", s);
    CHECK(hex_lower(s, 16));
    spantree_t *m = spantree_new("x");
    CHECK_EQ_INT(otlp_write(m, 0, stdout), ERR_INVAL);
    spantree_free(m);
}

int main(void)
{
    RUN(test_failed_run);
    RUN(test_crash_resumed);
    RUN(test_ids);
    RUN(test_genai_conventions);
    RUN(test_denied_approval);
    RUN(test_paths);
    RUN(test_content);
    RUN(test_send_config);
    return check_report();
}
