/*
 * Unit tests for compact: the request stays inside the context window, the system prompt,
 * pinned facts and the current turn are always kept, whole turns are dropped oldest first
 * (a tool call never loses its result), and the stored conversation is not touched.
 */
#include "check.h"
#include "compact.h"

#include <stdio.h>
#include <string.h>

static json_object *msg(const char *role, const char *content)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", json_object_new_string(content));
    return m;
}

/* One turn: a user question, a tool call, its result, an answer; ~40 tokens each. */
static void add_turn(json_object *a, int i)
{
    char text[200];
    snprintf(text, sizeof text, "question %d: how are things going with my order today? %0100d",
             i, 0);
    json_object_array_add(a, msg("user", text));
    json_object *call = json_object_new_object(), *calls = json_object_new_array(),
                *tc = json_object_new_object();
    json_object_object_add(call, "role", json_object_new_string("assistant"));
    json_object_object_add(tc, "id", json_object_new_string("c"));
    json_object_object_add(tc, "name", json_object_new_string("lookup_order"));
    json_object_object_add(tc, "arguments", json_object_new_string("{\"order_id\":\"1042\"}"));
    json_object_array_add(calls, tc);
    json_object_object_add(call, "tool_calls", calls);
    json_object_array_add(a, call);
    json_object *res = msg("tool", "{\"status\":\"in transit\"}");
    json_object_object_add(res, "tool_call_id", json_object_new_string("c"));
    json_object_array_add(a, res);
    snprintf(text, sizeof text, "answer %d: it is in transit", i);
    json_object_array_add(a, msg("assistant", text));
}

static const char *role(json_object *m)
{
    json_object *v;
    return json_object_object_get_ex(m, "role", &v) ? json_object_get_string(v) : "";
}

static void test_fits_is_identity(void)
{
    json_object *a = json_object_new_array();
    json_object_array_add(a, msg("system", "be brief"));
    add_turn(a, 1);
    compact_policy_t p = {.limit = 100000, .threshold = 0.8};
    compact_stats_t st;
    json_object *v = compact_view(a, &p, &st);
    CHECK(v == a);
    CHECK_EQ_INT(st.omitted, 0);
    CHECK(st.tokens_before == st.tokens_after);
    json_object_put(v);
    p.limit = 0; /* unlimited */
    v = compact_view(a, &p, &st);
    CHECK(v == a);
    json_object_put(v);
    json_object_put(a);
}

static void test_200_turns(void)
{
    json_object *a = json_object_new_array();
    json_object_array_add(a, msg("system", "You are the support agent."));
    json_object *pin = msg("user", "Remember: my name is Ava and my order is 1042.");
    json_object_object_add(pin, "pinned", json_object_new_boolean(1));
    json_object_array_add(a, pin);
    json_object_array_add(a, msg("assistant", "Noted, Ava."));
    for (int i = 2; i <= 200; i++)
        add_turn(a, i);
    size_t before_len = json_object_array_length(a);
    compact_policy_t p = {.limit = 2000, .threshold = 0.8, .reserved = 100};
    compact_stats_t st;
    json_object *v = compact_view(a, &p, &st);
    CHECK(v && v != a);
    CHECK_EQ_INT((int)json_object_array_length(a), (int)before_len); /* stored whole */
    int64_t sum = 0;
    for (size_t i = 0; i < json_object_array_length(v); i++)
        sum += compact_estimate(json_object_array_get_idx(v, i));
    CHECK(sum == st.tokens_after);
    CHECK(sum <= 2000 * 0.8 - 100);
    CHECK(st.tokens_before > 10 * st.tokens_after);
    CHECK_EQ_INT(st.omitted, (int)before_len - (int)json_object_array_length(v));
    /* system first, with the note; the pinned fact and its answer kept */
    CHECK_EQ_STR(role(json_object_array_get_idx(v, 0)), "system");
    CHECK(strstr(json_object_to_json_string(json_object_array_get_idx(v, 0)), "left out"));
    CHECK(json_object_array_get_idx(v, 1) == pin);
    CHECK_EQ_STR(role(json_object_array_get_idx(v, 2)), "assistant");
    /* the current turn complete, at the end */
    size_t n = json_object_array_length(v);
    CHECK(strstr(json_object_to_json_string(json_object_array_get_idx(v, n - 4)),
                 "question 200"));
    /* every tool result follows its call: no tool message after a user message */
    for (size_t i = 1; i < n; i++)
        if (!strcmp(role(json_object_array_get_idx(v, i)), "tool"))
            CHECK_EQ_STR(role(json_object_array_get_idx(v, i - 1)), "assistant");
    /* turns kept are the newest, contiguous: question 199 is there */
    CHECK(strstr(json_object_to_json_string(v), "question 199"));
    CHECK(!strstr(json_object_to_json_string(v), "question 2:"));
    json_object_put(v);
    json_object_put(a);
}

/* Summarising: the summary's share is set aside, uncovered messages are reported with a
 * turn boundary to summarise up to, and a summary stands for the messages it covers. */
static void test_summary(void)
{
    json_object *a = json_object_new_array();
    json_object_array_add(a, msg("system", "You are the support agent."));
    for (int i = 1; i <= 60; i++)
        add_turn(a, i);
    compact_policy_t p = {.limit = 2000, .threshold = 0.8, .reserved = 100,
                          .summary_reserve = 200};
    compact_stats_t st;
    json_object *v = compact_view(a, &p, &st);
    CHECK(v && v != a);
    CHECK(st.uncovered > 0);
    /* cover_to is a turn boundary (a user message) at or after the kept window */
    CHECK(st.cover_to > 1 && st.cover_to < json_object_array_length(a));
    CHECK_EQ_STR(role(json_object_array_get_idx(a, st.cover_to)), "user");
    CHECK(st.tokens_after <= 2000 * 0.8 - 100 - 200);
    size_t cover = st.cover_to;
    json_object_put(v);
    /* With a summary of [1, cover): nothing uncovered, the summary is message 1. */
    p.summary = "- user: my order is 1042";
    p.summary_upto = cover;
    v = compact_view(a, &p, &st);
    CHECK(v && st.uncovered == 0);
    CHECK(st.tokens_after <= 2000 * 0.8 - 100);
    json_object *m1 = json_object_array_get_idx(v, 1), *flag;
    CHECK(json_object_object_get_ex(m1, "agentd_summary", &flag));
    CHECK(strstr(json_object_get_string(json_object_object_get(m1, "content")), "1042") != NULL);
    /* no message before cover is sent beside the summary */
    for (size_t i = 2; i < json_object_array_length(v); i++)
        for (size_t k = 1; k < cover; k++)
            CHECK(json_object_array_get_idx(v, i) != json_object_array_get_idx(a, k));
    json_object_put(v);
    /* The summary is not used when the conversation fits. */
    compact_policy_t big = p;
    big.limit = 1000000;
    v = compact_view(a, &big, &st);
    CHECK(v == a);
    json_object_put(v);
    /* The guardrail's feedback does not start a new turn. */
    json_object *fb = msg("user", "[guardrail] rejected");
    json_object_object_add(fb, "agentd_guardrail", json_object_new_string("on_output"));
    json_object_array_add(a, msg("assistant", "bad answer"));
    json_object_array_add(a, fb);
    p.summary = NULL;
    p.summary_upto = 0;
    v = compact_view(a, &p, &st);
    CHECK(strstr(json_object_to_json_string(v), "question 60") != NULL);
    json_object_put(v);
    json_object_put(a);
}

static void test_model_limits(void)
{
    CHECK(compact_model_limit("openai:gpt-4o-mini") == 128000);
    CHECK(compact_model_limit("openai:gpt-4.1-mini") == 1047576);
    CHECK(compact_model_limit("anthropic:claude-3-5-haiku-latest") == 200000);
    CHECK(compact_model_limit("ollama:llama3") == 8192);
    CHECK(compact_model_limit("nosuch:model") == 8192);
}

int main(void)
{
    RUN(test_fits_is_identity);
    RUN(test_200_turns);
    RUN(test_summary);
    RUN(test_model_limits);
    return check_report();
}
