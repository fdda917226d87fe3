/* spantree: span tree building from the fixture traces, follow-style growth, bad input and
 * the 10,000-event build time. */
#include "check.h"
#include "err.h"
#include "spantree.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = 0;
    fclose(f);
    return buf;
}

static spantree_t *load(const char *path)
{
    char *text = slurp(path);
    CHECK(text != NULL);
    if (!text)
        return NULL;
    spantree_t *m = spantree_new(NULL);
    char err[256] = "";
    int rc = spantree_add_jsonl(m, text, err, sizeof err);
    if (rc)
        fprintf(stderr, "  %s: %s\n", path, err);
    CHECK_EQ_INT(rc, 0);
    free(text);
    CHECK_EQ_INT(spantree_flatten(m, 1), 0);
    return m;
}

static const char *row_name(const spantree_t *m, int r)
{
    return m->spans[m->rows[r].span].name;
}

static void test_failed_run_tree(void)
{
    spantree_t *m = load("tests/fixtures/traces/failed_run.jsonl");
    if (!m)
        return;
    CHECK_EQ_STR(m->run_id, "5f3a9c12e4b0d7a1");
    CHECK_EQ_INT(m->nevs, 16);
    int root = spantree_root(m);
    CHECK(root >= 0);
    CHECK_EQ_STR(m->spans[root].op, "invoke_agent");
    CHECK_EQ_INT(m->spans[root].status, SPAN_ERROR);
    CHECK_EQ_STR(m->spans[root].error, "max_steps: run stopped after 2 steps");
    /* Rows in tree order: root, plan, chat, act, tool, retry, tool, observe, plan, ... */
    CHECK_EQ_INT(m->nrows, 10);
    CHECK_EQ_STR(row_name(m, 0), "invoke_agent support");
    CHECK_EQ_STR(row_name(m, 1), "plan");
    CHECK_EQ_STR(row_name(m, 2), "chat gpt-4o-mini");
    CHECK_EQ_INT(m->rows[2].depth, 2);
    CHECK_EQ_STR(row_name(m, 3), "act");
    CHECK_EQ_STR(row_name(m, 4), "execute_tool lookup_order");
    CHECK_EQ_STR(row_name(m, 5), "retry lookup_order");
    CHECK_EQ_INT(m->rows[5].depth, 3);
    CHECK_EQ_STR(row_name(m, 6), "execute_tool search_kb");
    CHECK(m->rows[6].last);
    CHECK(!m->rows[4].last);
    /* act (depth 1) has later siblings, so rows under it carry bit 0 in "more". */
    CHECK(m->rows[4].more & 1u);
    CHECK_EQ_STR(row_name(m, 7), "observe");
    /* The tool span: error, merged attrs from begin and end, closed at its end event. */
    int t = spantree_find(m, "d000000000000001");
    CHECK(t >= 0);
    const spantree_span_t *s = &m->spans[t];
    CHECK_EQ_INT(s->status, SPAN_ERROR);
    CHECK_EQ_STR(spantree_attr_str(s, "gen_ai.tool.name"), "lookup_order");
    CHECK_EQ_STR(spantree_attr_str(s, "error.type"), "tool_error");
    CHECK_EQ_INT(s->end_ns - s->start_ns, 5284000000LL);
    CHECK_EQ_INT(s->nevs, 2);
    /* State spans are closed by the next transition's end_span. */
    int act = spantree_find(m, "b000000000000001");
    CHECK_EQ_INT(m->spans[act].end_ns, m->spans[spantree_find(m, "f000000000000001")].start_ns);
    CHECK_EQ_INT(m->spans[act].status, SPAN_OK);
    CHECK_EQ_INT(m->spans[act].sub_errors, 1); /* the tool; its failed retry is no error */
    /* Totals: two successful chats and one failed, usage summed, retries counted. */
    CHECK_EQ_INT(m->in_tokens, 812 + 1104);
    CHECK_EQ_INT(m->out_tokens, 64 + 57);
    CHECK(m->cost > 0.000359 && m->cost < 0.000361);
    CHECK_EQ_INT(m->retries, 2);
    CHECK_EQ_INT(m->errors, 2); /* the tool and the root; the 2 retries are counted apart */
    /* Usage per subtree: the second plan holds the second chat; the root holds both. */
    root = spantree_root(m);
    CHECK_EQ_INT(m->spans[root].sub_tokens, 812 + 64 + 1104 + 57);
    CHECK(m->spans[root].sub_cost > 0.000359 && m->spans[root].sub_cost < 0.000361);
    CHECK_EQ_INT(spantree_span_tokens(&m->spans[root]), 0);
    CHECK_EQ_INT(m->spans[spantree_find(m, "c000000000000001")].sub_tokens, 812 + 64);
    CHECK_EQ_STR(m->agent, "support");
    CHECK_EQ_STR(m->last_state, "failed");
    CHECK_EQ_INT(m->steps, 2);
    /* Point spans hidden: the two retry rows disappear. */
    CHECK_EQ_INT(spantree_flatten(m, 0), 0);
    CHECK_EQ_INT(m->nrows, 9);
    /* The model call's retry is an event of the chat span, counted on it. */
    const spantree_span_t *c2 = &m->spans[spantree_find(m, "c000000000000002")];
    CHECK_EQ_INT(c2->retries, 1);
    CHECK_EQ_INT(c2->status, SPAN_OK);
    CHECK_EQ_INT(c2->nevs, 3);
    spantree_free(m);
}

static void test_collapse_and_search(void)
{
    spantree_t *m = load("tests/fixtures/traces/failed_run.jsonl");
    if (!m)
        return;
    int act = spantree_find(m, "b000000000000001");
    m->spans[act].collapsed = 1;
    CHECK_EQ_INT(spantree_flatten(m, 1), 0);
    CHECK_EQ_INT(m->nrows, 7);
    int t = spantree_find(m, "d000000000000001");
    CHECK(spantree_span_matches(m, t, "NO SUCH TABLE"));
    CHECK(spantree_span_matches(m, t, "order_id"));
    CHECK(!spantree_span_matches(m, t, "kb-7"));
    CHECK(!spantree_span_matches(m, t, ""));
    json_object *j = spantree_span_json(m, t);
    CHECK(j != NULL);
    json_object *evs;
    CHECK(json_object_object_get_ex(j, "events", &evs));
    CHECK_EQ_INT(json_object_array_length(evs), 2);
    json_object *st;
    CHECK(json_object_object_get_ex(j, "status", &st));
    CHECK_EQ_STR(json_object_get_string(st), "error");
    json_object_put(j);
    spantree_free(m);
}

/* Follow mode feeds events one at a time; an open span stays open until its end. */
static void test_incremental(void)
{
    char *text = slurp("tests/fixtures/traces/ok_run.jsonl");
    CHECK(text != NULL);
    if (!text)
        return;
    spantree_t *m = spantree_new("0c41d2e8a9b3f577");
    char err[200];
    char *save = NULL;
    int n = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        CHECK_EQ_INT(spantree_add(m, line, err, sizeof err), 0);
        n++;
        if (n == 6) {
            int t = spantree_find(m, "d100000000000001");
            CHECK(t >= 0);
            CHECK_EQ_INT(m->spans[t].end_ns, 0);
            CHECK_EQ_INT(spantree_span_end(m, &m->spans[t], m->spans[t].start_ns + 5),
                         m->spans[t].start_ns + 5);
            /* A duplicate delivery of the same seq is ignored. */
            CHECK_EQ_INT(spantree_add(m, line, err, sizeof err), 0);
            CHECK_EQ_INT(m->nevs, 6);
        }
    }
    CHECK_EQ_INT(m->nevs, 12);
    CHECK_EQ_INT(spantree_flatten(m, 1), 0);
    CHECK_EQ_INT(m->spans[spantree_root(m)].status, SPAN_OK);
    CHECK_EQ_INT(m->errors, 0);
    CHECK_EQ_INT(m->in_tokens, 300);
    CHECK_EQ_STR(m->last_state, "done");
    free(text);
    spantree_free(m);
}

static void test_bad_input(void)
{
    spantree_t *m = spantree_new("r");
    char err[200] = "";
    CHECK_EQ_INT(spantree_add(m, "not json", err, sizeof err), ERR_INVAL);
    CHECK_EQ_INT(spantree_add(m, "{\"seq\":1,\"ts_ns\":5,\"phase\":\"begin\"}", err, sizeof err),
                 ERR_INVAL);
    CHECK(strstr(err, "span_id") != NULL);
    CHECK_EQ_INT(
        spantree_add(m, "{\"seq\":1,\"ts_ns\":5,\"span_id\":\"a\",\"phase\":\"x\"}", err, sizeof err),
        ERR_INVAL);
    CHECK(strstr(err, "phase") != NULL);
    CHECK_EQ_INT(spantree_add_jsonl(m,
                                  "{\"seq\":1,\"ts_ns\":5,\"span_id\":\"r\",\"phase\":\"begin\"}\n"
                                  "{\"seq\":2}\n",
                                  err, sizeof err),
                 ERR_INVAL);
    CHECK(strstr(err, "line 2") != NULL);
    CHECK_EQ_INT(m->nevs, 1);
    /* A parent cycle from corrupt input must not hang flatten. */
    CHECK_EQ_INT(
        spantree_add(
            m, "{\"seq\":3,\"ts_ns\":6,\"span_id\":\"x\",\"parent_id\":\"y\",\"phase\":\"begin\"}",
            err, sizeof err),
        0);
    CHECK_EQ_INT(
        spantree_add(
            m, "{\"seq\":4,\"ts_ns\":7,\"span_id\":\"y\",\"parent_id\":\"x\",\"phase\":\"begin\"}",
            err, sizeof err),
        0);
    CHECK_EQ_INT(spantree_flatten(m, 1), 0);
    CHECK_EQ_INT(m->nrows, 3);
    spantree_free(m);
}

/* Events in surprising orders still make a sensible tree: a child before its parent, an
 * end without a begin, a begin seen twice, a point on an unknown parent. */
static void test_odd_orders(void)
{
    spantree_t *m = spantree_new("r000000000000001");
    char err[200];
    const char *lines[] = {
        "{\"seq\":1,\"ts_ns\":100,\"span_id\":\"c1\",\"parent_id\":\"p1\",\"phase\":\"begin\","
        "\"op\":\"chat\"}",
        "{\"seq\":2,\"ts_ns\":110,\"span_id\":\"p1\",\"parent_id\":\"r000000000000001\",\"phase\":"
        "\"begin\",\"op\":\"plan\"}",
        "{\"seq\":3,\"ts_ns\":120,\"span_id\":\"r000000000000001\",\"phase\":\"begin\",\"op\":"
        "\"invoke_agent\"}",
        "{\"seq\":4,\"ts_ns\":130,\"span_id\":\"t1\",\"parent_id\":\"p1\",\"phase\":\"end\",\"op\":"
        "\"execute_tool\",\"status\":\"ok\"}",
        "{\"seq\":5,\"ts_ns\":140,\"span_id\":\"c1\",\"parent_id\":\"p1\",\"phase\":\"begin\","
        "\"op\":\"chat\"}",
        "{\"seq\":6,\"ts_ns\":150,\"span_id\":\"g1\",\"parent_id\":\"nowhere\",\"phase\":\"point\","
        "\"op\":\"guardrail\"}",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        CHECK_EQ_INT(spantree_add(m, lines[i], err, sizeof err), 0);
    CHECK_EQ_INT(spantree_flatten(m, 1), 0);
    CHECK_EQ_INT(m->nspans, 5);
    CHECK_EQ_INT(spantree_root(m), spantree_find(m, "r000000000000001"));
    /* The orphan point is a second root; the rest hang under the run. */
    CHECK_EQ_INT(m->nrows, 5);
    CHECK_EQ_STR(m->spans[m->rows[0].span].op, "invoke_agent");
    CHECK_EQ_STR(m->spans[m->rows[1].span].op, "plan");
    CHECK_EQ_INT(m->rows[2].depth, 2);
    const spantree_span_t *t1 = &m->spans[spantree_find(m, "t1")];
    CHECK_EQ_INT(t1->start_ns, 130);
    CHECK_EQ_INT(t1->end_ns, 130);
    /* A second begin restarts nothing that matters to the reader: latest begin wins. */
    CHECK_EQ_INT(m->spans[spantree_find(m, "c1")].start_ns, 140);
    spantree_free(m);
}

/* Every prefix of every fixture line either parses as an event or is refused cleanly. */
static void test_truncated_lines(void)
{
    char *text = slurp("tests/fixtures/traces/failed_run.jsonl");
    CHECK(text != NULL);
    if (!text)
        return;
    char err[200];
    int refused = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        for (size_t k = 0; k < n; k += 7) {
            char *cut = strndup(line, k);
            spantree_t *m = spantree_new(NULL);
            int rc = spantree_add(m, cut, err, sizeof err);
            CHECK(rc == 0 || rc == ERR_INVAL);
            refused += rc == ERR_INVAL;
            CHECK_EQ_INT(spantree_flatten(m, 1), 0);
            spantree_free(m);
            free(cut);
        }
        line += n + (nl ? 1 : 0);
    }
    CHECK(refused > 0);
    free(text);
}

static void test_fmt_dur(void)
{
    char b[32];
    CHECK_EQ_STR(spantree_fmt_dur(850000, b, sizeof b), "850us");
    CHECK_EQ_STR(spantree_fmt_dur(12000000, b, sizeof b), "12ms");
    CHECK_EQ_STR(spantree_fmt_dur(1234000000, b, sizeof b), "1.23s");
    CHECK_EQ_STR(spantree_fmt_dur(123000000000LL, b, sizeof b), "2m03s");
}

/* Not a speed target (figures come from scripts/, on a quiet machine): the bound only
 * guards against a quadratic blow-up (10,000 events quadratically take tens of seconds),
 * with room for a loaded 2-core CI machine; sanitizers slow the same work 5-10x. */
#if defined(__SANITIZE_ADDRESS__)
#define BUILD_BUDGET_MS 8000
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BUILD_BUDGET_MS 8000
#endif
#endif
#ifndef BUILD_BUDGET_MS
#define BUILD_BUDGET_MS 2000
#endif

/* 10,000 events: 5,000 tool spans of a begin and an end each. */
static void test_big_run_speed(void)
{
    spantree_t *m = spantree_new("1111222233334444");
    char line[600], err[200];
    int64_t seq = 1, t0 = 1764331200000000000LL;
    snprintf(line, sizeof line,
             "{\"v\":1,\"run_id\":\"1111222233334444\",\"seq\":%lld,\"ts_ns\":%lld,"
             "\"span_id\":\"1111222233334444\",\"parent_id\":null,\"phase\":\"begin\","
             "\"op\":\"invoke_agent\",\"name\":\"invoke_agent big\",\"attrs\":{}}",
             (long long)seq, (long long)t0);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = spantree_add(m, line, err, sizeof err);
    /* Pairs of begin/end per tool span; under-sanitizer builds are slower, which the
     * 200 ms budget still covers. */
    while (!rc && seq < 10000) {
        char sid[17];
        seq++;
        int begin = seq % 2 == 0;
        snprintf(sid, sizeof sid, "%016llx", (unsigned long long)(begin ? seq : seq - 1));
        snprintf(line, sizeof line,
                 "{\"v\":1,\"run_id\":\"1111222233334444\",\"seq\":%lld,\"ts_ns\":%lld,"
                 "\"span_id\":\"%s\",\"parent_id\":\"1111222233334444\",\"phase\":\"%s\","
                 "\"op\":\"execute_tool\",\"name\":\"execute_tool t\",\"status\":%s,"
                 "\"attrs\":{\"gen_ai.tool.name\":\"t\",\"gen_ai.tool.call.id\":\"c%lld\"}}",
                 (long long)seq, (long long)(t0 + seq * 1000000), sid, begin ? "begin" : "end",
                 begin ? "null" : "\"ok\"", (long long)seq);
        rc = spantree_add(m, line, err, sizeof err);
    }
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(spantree_flatten(m, 1), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    printf("10000 events -> %d spans, built in %.1f ms\n", m->nspans, ms);
    CHECK_EQ_INT(m->nevs, 10000);
    CHECK_EQ_INT(m->nspans, 5001);
    CHECK(ms < BUILD_BUDGET_MS);
    spantree_free(m);
}

/* A denied approval is posted on the root when the operator answers: it becomes a failed
 * instant span beside the approval request of the same call, counted as an error. A tool
 * that failed (search_kb here) is the other error; nothing in this run was retried. */
static void test_denied_approval(void)
{
    spantree_t *m = load("tests/fixtures/traces/approval_denied.jsonl");
    CHECK_EQ_INT(spantree_flatten(m, 1), 0);
    CHECK_EQ_INT(m->errors, 2);
    CHECK_EQ_INT(m->retries, 0);
    int d = spantree_find(m, "01a2345512ad481c:13");
    CHECK(d >= 0);
    if (d < 0)
        goto done;
    const spantree_span_t *s = &m->spans[d];
    CHECK_EQ_INT(s->status, SPAN_ERROR);
    CHECK(s->point);
    CHECK_EQ_STR(s->name, "guardrail denied");
    CHECK_EQ_STR(s->error, "denied by operator: customer must send photos first");
    int ask = spantree_find(m, "c2bd1b7fed99f4e7"); /* guardrail approval_required */
    CHECK(ask >= 0 && !strcmp(s->parent, m->spans[ask].parent));
    CHECK_EQ_STR(spantree_attr_str(s, "gen_ai.tool.call.id"), "call_1_1");
    /* The root no longer holds the decision as one of its own events. */
    CHECK_EQ_INT(m->spans[spantree_root(m)].status, SPAN_OK);
done:
    spantree_free(m);
}

/* plan_execute: a failed step is one error (its plan_step span); the re-plan that follows
 * is counted with the retries. */
static void test_replan_is_a_retry(void)
{
    static const char *const lines[] = {
        "{\"seq\":1,\"ts_ns\":1,\"run_id\":\"r\",\"span_id\":\"r\",\"phase\":\"begin\","
        "\"op\":\"invoke_agent\"}",
        "{\"seq\":2,\"ts_ns\":2,\"run_id\":\"r\",\"span_id\":\"s1\",\"parent_id\":\"r\","
        "\"phase\":\"begin\",\"op\":\"plan_step\"}",
        "{\"seq\":3,\"ts_ns\":3,\"run_id\":\"r\",\"span_id\":\"s1\",\"parent_id\":\"r\","
        "\"phase\":\"end\",\"op\":\"plan_step\",\"status\":\"error\",\"error\":\"no such order\"}",
        "{\"seq\":4,\"ts_ns\":4,\"run_id\":\"r\",\"span_id\":\"p1\",\"parent_id\":\"r\","
        "\"phase\":\"point\",\"op\":\"replan\",\"status\":\"error\",\"error\":\"no such order\"}",
    };
    spantree_t *m = spantree_new(NULL);
    char err[200];
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        CHECK_EQ_INT(spantree_add(m, lines[i], err, sizeof err), 0);
    CHECK_EQ_INT(m->errors, 1);
    CHECK_EQ_INT(m->retries, 1);
    CHECK(spantree_is_retry(&m->spans[spantree_find(m, "p1")]));
    CHECK_EQ_INT(spantree_flatten(m, 1), 0);
    CHECK_EQ_INT(m->spans[spantree_root(m)].sub_errors, 1);
    spantree_free(m);
}

int main(void)
{
    RUN(test_replan_is_a_retry);
    RUN(test_denied_approval);
    RUN(test_failed_run_tree);
    RUN(test_collapse_and_search);
    RUN(test_incremental);
    RUN(test_bad_input);
    RUN(test_odd_orders);
    RUN(test_truncated_lines);
    RUN(test_fmt_dur);
    RUN(test_big_run_speed);
    return check_report();
}
