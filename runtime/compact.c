/*
 * compact: see compact.h.
 */
#include "compact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct window {
    const char *prefix; /* "provider:model" prefix */
    int64_t tokens;
} window_t;

/* Longest prefix wins; the vendors' published context windows. */
static const window_t windows[] = {
    {"openai:gpt-4.1", 1047576}, {"openai:gpt-4o", 128000},   {"openai:o3", 200000},
    {"openai:o4", 200000},       {"openai:gpt-3.5", 16385},   {"anthropic:claude", 200000},
    {"offline", 32768},          {"ollama:", 8192},           {"llamacpp:", 8192},
    {"vllm:", 32768},            {"openrouter:", 128000},
};

int64_t compact_model_limit(const char *model)
{
    size_t best = 0;
    int64_t tokens = 8192;
    for (size_t i = 0; model && i < sizeof windows / sizeof windows[0]; i++) {
        size_t n = strlen(windows[i].prefix);
        if (n > best && !strncmp(model, windows[i].prefix, n)) {
            best = n;
            tokens = windows[i].tokens;
        }
    }
    return tokens;
}

static size_t text_bytes(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_string: return (size_t)json_object_get_string_len(v);
    case json_type_array: {
        size_t n = 0;
        for (size_t i = 0; i < json_object_array_length(v); i++)
            n += text_bytes(json_object_array_get_idx(v, i));
        return n;
    }
    case json_type_object: {
        size_t n = 0;
        json_object_object_foreach(v, k, val) {
            n += strlen(k);
            n += text_bytes(val);
        }
        return n;
    }
    case json_type_null: return 0;
    default: return 4;
    }
}

int64_t compact_estimate(json_object *msg)
{
    return (int64_t)((text_bytes(msg) + 3) / 4) + 4;
}

static const char *role(json_object *m)
{
    json_object *v;
    return json_object_object_get_ex(m, "role", &v) ? json_object_get_string(v) : "";
}

static int flag(json_object *m, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(m, k, &v) && json_object_get_boolean(v);
}

/* A question: a user message, except the runtime's feedback to a rejected answer
 * (machine_guard.c), which belongs to the turn it retries. */
static int is_user(json_object *m)
{
    return !strcmp(role(m), "user") && !json_object_object_get_ex(m, "agentd_guardrail", NULL);
}

/* A plain assistant text answer (no tool calls). */
static int is_answer(json_object *m)
{
    json_object *tc;
    return !strcmp(role(m), "assistant") &&
           !(json_object_object_get_ex(m, "tool_calls", &tc) && tc &&
             json_object_array_length(tc) > 0);
}

static json_object *with_note(json_object *sys, int omitted)
{
    json_object *c = NULL, *copy = json_object_new_object();
    if (!copy)
        return NULL;
    json_object_object_foreach(sys, k, v) json_object_object_add(copy, k, json_object_get(v));
    char note[200];
    snprintf(note, sizeof note,
             "\n\n[agentd: %d earlier message%s of this conversation %s left out of this "
             "request to fit the model's context window.]",
             omitted, omitted == 1 ? "" : "s", omitted == 1 ? "was" : "were");
    const char *old = json_object_object_get_ex(sys, "content", &c) && c
                          ? json_object_get_string(c)
                          : "";
    size_t n = strlen(old) + strlen(note) + 1;
    char *text = malloc(n);
    if (!text) {
        json_object_put(copy);
        return NULL;
    }
    snprintf(text, n, "%s%s", old, note);
    json_object_object_add(copy, "content", json_object_new_string(text));
    free(text);
    return copy;
}

/* Where the kept turns begin: whole turns before cur, newest first, added while used + their
 * tokens stay within budget, but never below lo. *used grows by what was added; keep marks
 * them when non-NULL. */
static size_t window_start(json_object *messages, const int64_t *est, char *keep, size_t lo,
                           size_t cur, double budget, int64_t *used)
{
    size_t end = cur;
    while (end > lo) {
        size_t start = end;
        while (start > lo && !is_user(json_object_array_get_idx(messages, start - 1)))
            start--;
        if (start > lo)
            start--; /* the turn's user message */
        int64_t add = 0;
        for (size_t i = start; i < end; i++)
            if (!keep || !keep[i])
                add += est[i];
        if ((double)(*used + add) > budget)
            break;
        for (size_t i = start; keep && i < end; i++)
            keep[i] = 1;
        *used += add;
        end = start;
    }
    return end;
}

static json_object *summary_message(const char *text, size_t covered)
{
    char head[160];
    snprintf(head, sizeof head,
             "[agentd: summary of the %zu earlier message%s of this conversation, made to fit "
             "the model's context window]\n", covered, covered == 1 ? "" : "s");
    size_t n = strlen(head) + strlen(text) + 1;
    char *body = malloc(n);
    json_object *m = json_object_new_object();
    if (!body || !m) {
        free(body);
        json_object_put(m);
        return NULL;
    }
    snprintf(body, n, "%s%s", head, text);
    json_object_object_add(m, "role", json_object_new_string("user"));
    json_object_object_add(m, "content", json_object_new_string(body));
    json_object_object_add(m, "agentd_summary", json_object_new_boolean(1));
    free(body);
    return m;
}

json_object *compact_view(json_object *messages, const compact_policy_t *p, compact_stats_t *st)
{
    size_t n = json_object_array_length(messages);
    int64_t *est = calloc(n ? n : 1, sizeof *est);
    char *keep = calloc(n ? n : 1, 1);
    json_object *out = NULL, *sum = NULL;
    if (!est || !keep)
        goto done;
    int64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += est[i] = compact_estimate(json_object_array_get_idx(messages, i));
    memset(st, 0, sizeof *st);
    st->tokens_before = st->tokens_after = total;
    double budget = p->limit > 0 ? (double)p->limit * (p->threshold > 0 ? p->threshold : 1) -
                                       (double)p->reserved
                                 : 0;
    if (p->limit <= 0 || (double)total <= budget || n < 3) {
        out = json_object_get(messages);
        goto done;
    }
    size_t cur = n; /* the current turn: the latest user message after the system prompt */
    for (size_t i = n; i-- > 1;)
        if (is_user(json_object_array_get_idx(messages, i))) {
            cur = i;
            break;
        }
    if (cur == n)
        cur = 1;
    /* Summarising: the summary's share of the budget is set aside whether or not one exists
     * yet, so the same turns are kept before and after it is made. */
    int summarising = p->summary_reserve > 0;
    size_t lo = 1;
    if (summarising) {
        budget -= (double)p->summary_reserve;
        if (p->summary && p->summary_upto > 1 && p->summary_upto <= cur)
            lo = p->summary_upto;
    }
    keep[0] = 1;
    for (size_t i = cur; i < n; i++)
        keep[i] = 1;
    for (size_t i = 1; i < cur; i++) {
        json_object *m = json_object_array_get_idx(messages, i);
        if (!flag(m, "pinned"))
            continue;
        keep[i] = 1;
        if (!is_user(m))
            continue;
        size_t ans = 0; /* the turn's last plain answer */
        for (size_t j = i + 1; j < cur && !is_user(json_object_array_get_idx(messages, j)); j++)
            if (is_answer(json_object_array_get_idx(messages, j)))
                ans = j;
        if (ans)
            keep[ans] = 1;
    }
    /* The note appended to the system prompt costs at most this much. */
    int64_t used = 48;
    for (size_t i = 0; i < n; i++)
        if (keep[i])
            used += est[i];
    int64_t base = used;
    /* Whole earlier turns, newest first, while they fit. */
    size_t end = window_start(messages, est, keep, lo, cur, budget, &used);
    if (summarising) {
        for (size_t i = lo; i < end; i++)
            st->uncovered += !keep[i];
        int64_t half = base;
        st->cover_to = window_start(messages, est, NULL, lo, cur,
                                    base + (budget - (double)base) / 2, &half);
        if (st->cover_to < end)
            st->cover_to = end;
    }
    if (lo > 1) { /* the summary stands for [1, lo) */
        sum = summary_message(p->summary, lo - 1);
        if (!sum)
            goto done;
    }
    int omitted = 0;
    for (size_t i = 0; i < n; i++)
        omitted += !keep[i];
    if (!omitted) {
        out = json_object_get(messages);
        goto done;
    }
    out = json_object_new_array();
    json_object *sys = out ? with_note(json_object_array_get_idx(messages, 0), omitted) : NULL;
    if (!sys) {
        json_object_put(out);
        out = NULL;
        goto done;
    }
    json_object_array_add(out, sys);
    if (sum) {
        json_object_array_add(out, sum);
        used += compact_estimate(sum);
        sum = NULL;
    }
    for (size_t i = 1; i < n; i++)
        if (keep[i])
            json_object_array_add(out, json_object_get(json_object_array_get_idx(messages, i)));
    st->omitted = omitted;
    st->tokens_after = used - 48 - est[0] + compact_estimate(sys);
done:
    json_object_put(sum);
    free(est);
    free(keep);
    return out;
}
