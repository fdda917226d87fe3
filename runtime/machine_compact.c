/*
 * machine_compact: summarising compaction (memory.compaction = "summarize", docs/sessions.md).
 *
 * When a request would leave out older messages that no summary covers yet, planning does
 * not call the model: it fires `compact`, and the run enters `compacting`, whose work is one
 * model call (its own `chat` span, purpose "summarize") that turns the previous summary and
 * the uncovered messages into a new summary. The summary is stored (table summaries, scoped
 * to the session, or the run outside one) with the number of conversation messages it
 * covers and their fingerprint, in the same unit as the `compacted` transition back to
 * planning; from then on every request of the conversation — later steps, later turns,
 * resumed runs — puts it in place of those messages (compact_view), so a summary is made once
 * and reused, not remade per request. The model call itself goes through the response
 * cache like any other. A failed summary call falls back to trimming for that step.
 *
 * The stored messages are never changed: only requests shrink.
 */
#include "buf.h"
#include "compact.h"
#include "jx.h"
#include "machine_int.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *to_json(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
}

static const char *scope_of(machine_run_t *r)
{
    return r->session[0] ? r->session : r->rec.id;
}

/* FNV-1a 64 of messages [1, upto) as JSON: a summary is used only for what it was made of.
 * The system prompt is left out: it is not summarised, and a turn whose prompt was edited or
 * rendered with other {{variables}} still has the same conversation. */
static void fingerprint(json_object *msgs, size_t upto, char out[17])
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 1; i < upto && i < json_object_array_length(msgs); i++)
        for (const char *s = to_json(json_object_array_get_idx(msgs, i)); *s; s++) {
            h ^= (unsigned char)*s;
            h *= 1099511628211ull;
        }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static void load_summary(machine_run_t *r)
{
    r->summary_loaded = 1;
    int64_t upto = 0;
    char hash[17], want[17];
    char *text = NULL;
    size_t n = json_object_array_length(r->messages);
    if (store_summary_get(r->m->st, scope_of(r), (int64_t)n, &upto, hash, &text) != 0)
        return;
    fingerprint(r->messages, (size_t)upto, want);
    if (upto < 2 || strcmp(hash, want) != 0) {
        free(text); /* made from other messages (an edited history): not ours to use */
        return;
    }
    free(r->summary);
    r->summary = text;
    r->summary_upto = (size_t)upto;
}

void mcompact_policy(machine_run_t *r, compact_policy_t *p)
{
    if (!r->agent->summarize)
        return;
    if (!r->summary_loaded)
        load_summary(r);
    p->summary_reserve = r->agent->summary_tokens;
    p->summary = r->summary;
    p->summary_upto = r->summary_upto;
}

int mcompact_due(machine_run_t *r, const compact_stats_t *cs)
{
    if (!r->agent->summarize || cs->uncovered <= 0 || r->compact_tried == r->rec.step + 1)
        return 0;
    r->compact_due = 1;
    return 1;
}

/* ---- the summary call ---- */

static void line(buf_t *b, const char *head, const char *text, size_t max)
{
    size_t n = strlen(text);
    buf_adds(b, head);
    for (size_t i = 0; i < n && i < max; i++)
        buf_add(b, text[i] == '\n' || text[i] == '\r' ? " " : &text[i], 1);
    if (n > max)
        buf_adds(b, " ...");
    buf_adds(b, "\n");
}

/* The previous summary, then messages [from, to) one per line. */
static char *transcript(machine_run_t *r, size_t from, size_t to)
{
    buf_t bb = {0}, *b = &bb;
    if (r->summary && from > 1)
        buf_addf(b, "Summary so far:\n%s\n", r->summary);
    buf_adds(b, "Conversation:\n");
    for (size_t i = from; i < to; i++) {
        json_object *m = json_object_array_get_idx(r->messages, i), *tcs, *v;
        const char *role = jx_str_or(m, "role", "");
        const char *content = jx_str_or(m, "content", "");
        if (json_object_object_get_ex(m, "agentd_guardrail", &v))
            continue;
        if (!strcmp(role, "user")) {
            line(b, "user: ", content, 2000);
        } else if (!strcmp(role, "assistant")) {
            if (json_object_object_get_ex(m, "tool_calls", &tcs) &&
                json_object_array_length(tcs) > 0) {
                for (size_t k = 0; k < json_object_array_length(tcs); k++) {
                    json_object *tc = json_object_array_get_idx(tcs, k);
                    char head[160];
                    snprintf(head, sizeof head, "call %s: ", jx_str_or(tc, "name", "?"));
                    line(b, head, jx_str_or(tc, "arguments", ""), 400);
                }
            } else if (*content) {
                line(b, "assistant: ", content, 2000);
            }
        } else if (!strcmp(role, "tool")) {
            char head[160];
            snprintf(head, sizeof head, "tool %s: ", jx_str_or(m, "name", "?"));
            line(b, head, content, 600);
        }
    }
    return buf_take(b);
}

static const char summary_prompt[] =
    "You keep a running summary of a conversation between a user and an assistant, so that "
    "it can go on after its older messages are dropped. Write the new summary from the "
    "summary so far (if any) and the conversation below. Keep every fact the user gave "
    "(names, numbers, order and account ids, dates, preferences), what was asked, what was "
    "answered or decided, and what is still open. Plain lines starting with \"- \", at most "
    "%lld words. Reply with the summary only.";

typedef struct summary_done {
    const model_resp_t *resp;
    const char *text; /* NULL: no summary (the call failed) */
    const char *why;  /* then: why, one line */
} summary_done_t;

static int write_summary(machine_run_t *r, void *arg)
{
    summary_done_t *sd = arg;
    const model_resp_t *resp = sd->resp;
    int64_t before = 0;
    compact_stats_t cs;
    json_object *v = mact_request_messages(r, &cs);
    json_object_put(v);
    before = cs.tokens_before;
    int rc = 0;
    if (sd->text) {
        char hash[17];
        fingerprint(r->messages, r->compact_cover, hash);
        rc = store_summary_put(r->m->st, scope_of(r), (int64_t)r->compact_cover, hash, sd->text,
                               r->rec.id, (int64_t)loop_wall_ns());
        char *copy = strdup(sd->text);
        if (!rc && !copy)
            rc = ERR_NOMEM;
        if (!rc) {
            free(r->summary);
            r->summary = copy;
            r->summary_upto = r->compact_cover;
            r->summary_loaded = 1;
        }
    }
    if (rc)
        return rc;
    v = mact_request_messages(r, &cs);
    if (!v)
        return ERR_NOMEM;
    json_object_put(v);
    json_object *attrs = mact_chat_attrs(r, resp);
    json_object_object_add(attrs, "agentd.purpose", jx_new_str("compact"));
    json_object_object_add(attrs, "agentd.context.tokens_before", json_object_new_int64(before));
    json_object_object_add(attrs, "agentd.context.tokens", json_object_new_int64(cs.tokens_after));
    json_object_object_add(attrs, "agentd.compact.upto",
                           json_object_new_int64((int64_t)r->compact_cover));
    if (sd->text)
        json_object_object_add(attrs, "agentd.compact.summary_tokens",
                               json_object_new_int64((int64_t)(strlen(sd->text) + 3) / 4));
    char name[200];
    snprintf(name, sizeof name, "chat %s (summary)", r->models[0]);
    trace_ev_t e = {
        .span_id = r->compact_span,
        .parent_id = r->state_span,
        .phase = "end",
        .op = "chat",
        .name = name,
        .step = r->rec.step,
        .status = sd->text ? "ok" : "error",
        .error = sd->text ? NULL : sd->why,
        .attrs = attrs,
    };
    rc = mstage_event(r, &e);
    json_object_put(attrs);
    return rc;
}

static void summary_done(void *ud, const model_resp_t *resp)
{
    machine_run_t *r = ud;
    r->mcall = NULL;
    mact_account(r, resp);
    if (resp->err == ERR_CANCELLED)
        return;
    summary_done_t sd = {resp, NULL, NULL};
    char *text = NULL;
    json_object *content;
    if (!resp->err && json_object_object_get_ex(resp->message, "content", &content) &&
        json_object_is_type(content, json_type_string) && json_object_get_string_len(content)) {
        /* A model may overrun what it was asked for; the request budget holds its share. */
        size_t max = (size_t)r->agent->summary_tokens * 4, n = strlen(json_object_get_string(content));
        text = strndup(json_object_get_string(content), n < max ? n : max);
        if (!text) {
            mrun_abort(r, "out of memory while storing the summary");
            return;
        }
        sd.text = text;
    }
    sd.why = resp->err ? resp->errmsg : "the model's reply to the summary request had no text";
    if (resp->err == ERR_BUDGET) {
        snprintf(r->rec.reason, sizeof r->rec.reason, "budget_exceeded");
        free(r->rec.error);
        r->rec.error = strdup(resp->errmsg);
        mfire(r, ME_LIMIT, &(mfire_opt_t){write_summary, &sd, "error", resp->errmsg});
    } else {
        /* Without a summary this step trims (compact_tried keeps planning from asking again). */
        mfire(r, ME_COMPACTED, &(mfire_opt_t){write_summary, &sd, sd.text ? "ok" : "error",
                                               sd.text ? NULL : sd.why});
    }
    free(text);
}

int mcompact_stage(machine_run_t *r)
{
    compact_stats_t cs;
    json_object *v = mact_request_messages(r, &cs);
    if (!v)
        return ERR_NOMEM;
    json_object_put(v);
    r->compact_tried = r->rec.step + 1;
    r->compact_cover = cs.cover_to;
    trace_span_id(r->compact_span);
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "agentd.purpose", jx_new_str("compact"));
    json_object_object_add(attrs, "gen_ai.request.model", jx_new_str(r->models[0]));
    json_object_object_add(attrs, "agentd.context.tokens_before",
                           json_object_new_int64(cs.tokens_before));
    json_object_object_add(attrs, "agentd.compact.from",
                           json_object_new_int64(r->summary ? (int64_t)r->summary_upto : 1));
    json_object_object_add(attrs, "agentd.compact.upto", json_object_new_int64((int64_t)cs.cover_to));
    char name[200];
    snprintf(name, sizeof name, "chat %s (summary)", r->models[0]);
    trace_ev_t e = {
        .span_id = r->compact_span,
        .parent_id = r->state_span,
        .phase = "begin",
        .op = "chat",
        .name = name,
        .step = r->rec.step,
        .attrs = attrs,
    };
    int rc = mstage_event(r, &e);
    json_object_put(attrs);
    return rc;
}

void mcompact_run(machine_run_t *r)
{
    size_t from = r->summary && r->summary_upto > 1 ? r->summary_upto : 1;
    char *text = transcript(r, from, r->compact_cover);
    char sys[1024];
    snprintf(sys, sizeof sys, summary_prompt, (long long)(r->agent->summary_tokens * 3 / 4));
    json_object *msgs = json_object_new_array(), *m0 = json_object_new_object(),
                *m1 = json_object_new_object();
    int rc = ERR_NOMEM;
    if (text && msgs && m0 && m1) {
        json_object_object_add(m0, "role", jx_new_str("system"));
        json_object_object_add(m0, "content", jx_new_str(sys));
        json_object_object_add(m1, "role", jx_new_str("user"));
        json_object_object_add(m1, "content", jx_new_str(text));
        json_object_array_add(msgs, m0);
        json_object_array_add(msgs, m1);
        m0 = m1 = NULL;
        const agent_t *a = r->agent;
        model_req_t req;
        memset(&req, 0, sizeof req);
        req.models = r->models;
        req.messages = msgs;
        req.run_id = r->rec.id;
        req.temperature = -1;
        req.max_tokens = (int)a->summary_tokens;
        req.purpose = "summarize";
        req.ud = r;
        r->chat_t0 = loop_mono_ns();
        /* The run's limits: a sub-agent's are carved from its parent's (r->lim). */
        req.budget_tokens = r->lim.max_tokens >= 0
                                ? r->lim.max_tokens - (r->rec.input_tokens + r->rec.output_tokens)
                                : -1;
        req.budget_cost_usd = r->lim.max_cost_usd >= 0 ? r->lim.max_cost_usd - r->rec.cost_usd
                                                       : -1;
        rc = model_call(r->m->mc, &req, summary_done, &r->mcall);
    }
    json_object_put(m0);
    json_object_put(m1);
    json_object_put(msgs);
    free(text);
    if (rc) {
        model_resp_t none;
        memset(&none, 0, sizeof none);
        none.err = rc;
        none.provider = "";
        snprintf(none.errmsg, sizeof none.errmsg, "cannot start the summary call: %s",
                 err_str(rc));
        summary_done(r, &none);
    }
}
