/*
 * machine_act: what each state does. Every function here either stages data and fires the
 * next event, or starts asynchronous work whose completion fires it later.
 */
#include "schema/schema.h"
#include "guard/guard.h"
#include "jx.h"
#include "memory/memory.h"
#include "machine_int.h"
#include "prompt/prompt.h"
#include "compact.h"

#include "err.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of a tool result copied into its trace event: enough to read it in the viewer; the
 * whole result is in tool_calls and in the conversation. */

/* o as JSON text in the machine's scratch buffer, valid until its next use; NULL when
 * memory ran out. Written without a json-c printbuf, which would stay on o (a staged
 * message lives as long as its run). */
static const char *to_json(machine_t *m, json_object *o)
{
    buf_reset(&m->jbuf);
    jx_put(&m->jbuf, o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    return m->jbuf.failed ? NULL : buf_str(&m->jbuf);
}

void tcall_clear(tcall_t *c)
{
    if (c->h) {
        tools_call_cancel(c->h);
        c->h = NULL;
    }
    free(c->name);
    free(c->args);
    free(c->result);
    free(c->error);
    c->name = c->args = c->result = c->error = NULL;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? strdup(v) : NULL;
}

int tcall_set(tcall_t *c, tcall_state_t to)
{
    assert((unsigned)c->state < TC__COUNT && (unsigned)to < TC__COUNT);
    if (!tcall_move_allowed(c->state, to)) {
        fprintf(stderr, "agentd: internal error: tool call %s (%s): no move from %s to %s\n",
                c->id, c->name ? c->name : "?", tcall_state_name(c->state),
                tcall_state_name(to));
        return ERR_INTERNAL;
    }
    c->state = to;
    return 0;
}

/* Stage one message: stored once at the next index, appended to the conversation. */
static int stage_message(machine_run_t *r, json_object *msg)
{
    int rc = store_message_add(r->m->st, r->rec.id, r->rec.msg_count, to_json(r->m, msg));
    if (rc)
        return rc;
    r->rec.msg_count++;
    json_object_array_add(r->messages, json_object_get(msg));
    return 0;
}

int tcall_stage_row(machine_run_t *r, tcall_t *c)
{
    c->row_due = 0;
    store_toolcall_t tc;
    memset(&tc, 0, sizeof tc);
    snprintf(tc.run_id, sizeof tc.run_id, "%s", r->rec.id);
    snprintf(tc.call_id, sizeof tc.call_id, "%s", c->id);
    snprintf(tc.wire_id, sizeof tc.wire_id, "%s", c->wire);
    snprintf(tc.name, sizeof tc.name, "%s", c->name);
    snprintf(tc.state, sizeof tc.state, "%s", tcall_state_name(c->state));
    snprintf(tc.idem_key, sizeof tc.idem_key, "%s", c->idem);
    tc.step = r->rec.step;
    tc.ord = c->ord;
    tc.args = c->args;
    tc.result = c->result;
    tc.error = c->error;
    tc.started_ns = c->started_ns;
    tc.ended_ns = c->ended_ns;
    tc.attempts = c->attempts;
    return store_toolcall_put(r->m->st, &tc);
}

int tcalls_mark_unknown(machine_run_t *r, const char *why)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < r->ncalls; i++) {
        tcall_t *c = &r->calls[i];
        if (c->state != TC_RUNNING)
            continue;
        rc = tcall_set(c, TC_UNKNOWN);
        set_str(&c->error, why);
        c->ended_ns = (int64_t)loop_wall_ns();
        if (!rc)
            rc = tcall_stage_row(r, c);
    }
    return rc;
}

/* A point event inside span (guardrail decisions, retries, logs, resume). */
/* Stage one event of a span (begin, end or point); takes attrs. */
static int stage_span_call(machine_run_t *r, const char *span, const char *parent,
                           const char *phase, const char *op, const char *name,
                           const char *status, const char *error, json_object *attrs,
                           const trace_call_t *call)
{
    trace_ev_t e = {
        .span_id = span,
        .parent_id = parent,
        .phase = phase,
        .op = op,
        .name = name,
        .step = r->rec.step,
        .status = status,
        .error = error,
        .attrs = attrs,
        .call = call,
    };
    int rc = mstage_event(r, &e);
    json_object_put(attrs);
    return rc;
}

static int stage_span(machine_run_t *r, const char *span, const char *parent, const char *phase,
                      const char *op, const char *name, const char *status, const char *error,
                      json_object *attrs)
{
    return stage_span_call(r, span, parent, phase, op, name, status, error, attrs, NULL);
}

static int stage_point(machine_run_t *r, const char *span, const char *parent, const char *op,
                       const char *name, const char *status, const char *error,
                       json_object *attrs)
{
    return stage_span(r, span, parent, "point", op, name, status, error, json_object_get(attrs));
}

/* A point event in a unit of its own (retries, tool logs). When it cannot be recorded the
 * run is stopped with the reason (mstage_*), which also cancels what it has in flight, so
 * there is nothing left for the caller to do. */
static void point_unit(machine_run_t *r, const char *span, const char *op, const char *name,
                       const char *status, const char *error, json_object *attrs)
{
    if (mstage_begin(r))
        return;
    if (mstage_end(r, stage_point(r, span, r->state_span, op, name, status, error, attrs)))
        return;
}

/* ---- limits ------------------------------------------------------------------------ */

static const char *limit_reached(machine_run_t *r, char *msg, size_t len)
{
    const agent_t *a = r->agent;
    int max_steps = r->m->o.max_steps > 0 ? r->m->o.max_steps : a->max_steps;
    int64_t elapsed_ms = ((int64_t)loop_wall_ns() - r->rec.created_ns) / 1000000;
    if (r->rec.step >= max_steps) {
        snprintf(msg, len, "step limit reached: %d model turns (limits.max_steps)", max_steps);
        return "max_steps";
    }
    if (elapsed_ms > (int64_t)(r->lim.deadline_s * 1000)) {
        snprintf(msg, len, "deadline reached: %.1f s (limits.deadline_s)", r->lim.deadline_s);
        return "deadline";
    }
    if (r->lim.max_tokens >= 0 && r->rec.input_tokens + r->rec.output_tokens >= r->lim.max_tokens) {
        snprintf(msg, len, "token budget exhausted: %lld of %lld (limits.max_tokens)",
                 (long long)(r->rec.input_tokens + r->rec.output_tokens),
                 (long long)r->lim.max_tokens);
        return "budget_exceeded";
    }
    if (r->lim.max_cost_usd >= 0 && r->rec.cost_usd >= r->lim.max_cost_usd) {
        snprintf(msg, len, "cost budget exhausted: $%.4f of $%.4f (limits.max_cost_usd)",
                 r->rec.cost_usd, r->lim.max_cost_usd);
        return "budget_exceeded";
    }
    if (r->lim.max_model_calls >= 0 && r->rec.model_calls >= r->lim.max_model_calls) {
        snprintf(msg, len, "model-call budget exhausted: %d (limits.max_model_calls)",
                 r->rec.model_calls);
        return "budget_exceeded";
    }
    return NULL;
}

/* The last assistant text, kept as the partial answer of a run that fails. */
static void keep_partial_answer(machine_run_t *r)
{
    if (r->rec.answer)
        return;
    for (size_t i = json_object_array_length(r->messages); i-- > 0;) {
        json_object *m = json_object_array_get_idx(r->messages, i), *role, *content;
        if (json_object_object_get_ex(m, "role", &role) &&
            strcmp(json_object_get_string(role), "assistant") == 0 &&
            json_object_object_get_ex(m, "content", &content) &&
            json_object_is_type(content, json_type_string) &&
            json_object_get_string_len(content) > 0) {
            r->rec.answer = strdup(json_object_get_string(content));
            return;
        }
    }
}

static int fire_limit(machine_run_t *r, const char *reason, const char *msg)
{
    snprintf(r->rec.reason, sizeof r->rec.reason, "%s", reason);
    set_str(&r->rec.error, msg);
    keep_partial_answer(r);
    return mfire(r, ME_LIMIT, &(mfire_opt_t){.status = "error", .error = msg});
}

/* ---- planning: one model call ------------------------------------------------------ */

static json_object *tool_descriptions(machine_run_t *r)
{
    machine_t *m = r->m;
    if (m->desc_agent != r->agent) {
        char err[512];
        json_object_put(m->desc_cache);
        m->desc_cache = tools_describe(m->tl, r->agent->tools, err, sizeof err);
        m->desc_agent = r->agent;
        if (!m->desc_cache)
            fprintf(stderr, "agentd: %s\n", err);
    }
    return m->desc_cache && json_object_array_length(m->desc_cache) ? m->desc_cache : NULL;
}

static int write_chat_end(machine_run_t *r, const model_resp_t *resp)
{
    json_object *attrs = mact_chat_attrs(r, resp);
    char name[200];
    snprintf(name, sizeof name, "chat %s", resp->model ? resp->model : r->models[0]);
    trace_ev_t e = {
        .span_id = r->chat_span,
        .parent_id = r->state_span,
        .phase = "end",
        .op = "chat",
        .name = name,
        .step = r->rec.step,
        .status = resp->err ? "error" : "ok",
        .error = resp->err ? resp->errmsg : NULL,
        .attrs = attrs,
    };
    int rc = mstage_event(r, &e);
    json_object_put(attrs);
    return rc;
}

typedef struct reply {
    const model_resp_t *resp;
    const guard_decision_t *out; /* the on_output decision on a final answer, or NULL */
    int feedback;                /* rejected: tell the model why (mguard_feedback) */
} reply_t;

/* The calls of this model turn, from its tool_calls array. ERR_NOMEM: a turn must never
 * silently lose a call, so the caller stops the run instead. */
static int fill_calls(machine_run_t *r, json_object *tcs)
{
    size_t n = json_object_array_length(tcs);
    for (size_t i = 0; i < r->ncalls; i++)
        tcall_clear(&r->calls[i]);
    free(r->calls);
    r->calls = calloc(n, sizeof *r->calls);
    r->ncalls = r->calls ? n : 0;
    if (!r->calls)
        return ERR_NOMEM;
    for (size_t i = 0; i < r->ncalls; i++) {
        json_object *tc = json_object_array_get_idx(tcs, i), *v;
        tcall_t *c = &r->calls[i];
        c->r = r;
        c->ord = (int)i;
        /* A call is identified by the runtime: (run, step, position). The model's id is
         * only for the wire (its result is matched by it), since models and servers that
         * number calls per message reuse ids across turns, and some send none. */
        snprintf(c->id, sizeof c->id, "call_%d_%zu", r->rec.step, i + 1);
        const char *id = json_object_object_get_ex(tc, "id", &v) && json_object_is_type(
                                                                         v, json_type_string)
                             ? json_object_get_string(v)
                             : NULL;
        int dup = 0;
        for (size_t j = 0; id && j < i; j++)
            dup |= strcmp(r->calls[j].wire, id) == 0;
        /* Within one turn the wire ids must tell the results apart: a missing, empty,
         * repeated or overlong id is replaced by ours, and the assistant message that goes
         * back to the model says so. */
        size_t idlen = id ? strlen(id) : 0;
        if (idlen && !dup && idlen < sizeof c->wire) {
            memcpy(c->wire, id, idlen + 1);
        } else {
            memcpy(c->wire, c->id, sizeof c->wire); /* same size, NUL-terminated */
            json_object_object_add(tc, "id", jx_new_str(c->wire));
        }
        c->name = strdup(json_object_object_get_ex(tc, "name", &v) ? json_object_get_string(v)
                                                                     : "");
        if (json_object_object_get_ex(tc, "arguments", &v) &&
            json_object_is_type(v, json_type_string))
            c->args = strdup(json_object_get_string(v));
        else
            c->args = strdup(v ? to_json(r->m, v) : "{}");
        c->state = TC_PENDING; /* born here: every later change goes through tcall_set */
        snprintf(c->idem, sizeof c->idem, "%.16s:%.62s", r->rec.id, c->id);
        if (!c->name || !c->args)
            return ERR_NOMEM;
    }
    return 0;
}

static int write_reply(machine_run_t *r, void *arg)
{
    const reply_t *rp = arg;
    const model_resp_t *resp = rp->resp;
    int rc = write_chat_end(r, resp);
    if (rc || resp->err)
        return rc;
    rc = stage_message(r, resp->message);
    /* Written at the unit's end (mstage_end): entering acting decides each call in this
     * same unit, so its row is written once, in that state. */
    for (size_t i = 0; !rc && i < r->ncalls; i++)
        r->calls[i].row_due = 1;
    if (!rc && rp->out)
        rc = mguard_event(r, r->chat_span, "on_output", rp->out, NULL);
    if (!rc && rp->feedback) {
        json_object *fb = mguard_feedback(rp->out);
        rc = fb ? stage_message(r, fb) : ERR_NOMEM;
        json_object_put(fb);
    }
    return rc;
}

void mact_account(machine_run_t *r, const model_resp_t *resp)
{
    r->rec.input_tokens += resp->usage.input_tokens;
    r->rec.output_tokens += resp->usage.output_tokens;
    r->rec.cost_usd += resp->usage.cost_usd;
    r->rec.model_calls += resp->attempts > 0 ? resp->attempts : 1;
}

static void model_done(void *ud, const model_resp_t *resp)
{
    machine_run_t *r = ud;
    r->mcall = NULL;
    reply_t rp = {resp, NULL, 0};
    mact_account(r, resp);
    if (resp->err) {
        if (resp->err == ERR_CANCELLED)
            return;
        snprintf(r->rec.reason, sizeof r->rec.reason, "%s",
                 resp->reason ? resp->reason : "model_error");
        set_str(&r->rec.error, resp->errmsg);
        keep_partial_answer(r);
        mfire(r, resp->err == ERR_BUDGET ? ME_LIMIT : ME_MODEL_FAILED,
              &(mfire_opt_t){write_reply, &rp, "error", resp->errmsg});
        return;
    }
    r->rec.step++;
    if (resp->model && strcmp(resp->model, "default") != 0)
        snprintf(r->rec.answered_by, sizeof r->rec.answered_by, "%s:%s", resp->provider,
                 resp->model);
    else
        snprintf(r->rec.answered_by, sizeof r->rec.answered_by, "%s", resp->provider);
    /* The reason usually names its model already ("openai:x: HTTP 503 ..."). */
    if (resp->fallback_from && !r->rec.fallback[0]) {
        size_t n = strlen(resp->fallback_from);
        int named = strncmp(resp->fallback_why, resp->fallback_from, n) == 0;
        snprintf(r->rec.fallback, sizeof r->rec.fallback, "%s%s%s",
                 named ? "" : resp->fallback_from, named ? "" : ": ", resp->fallback_why);
    }
    if (r->agent->strategy == AGENT_PLAN_EXECUTE && mplan_reply(r, resp))
        return;
    json_object *tcs = NULL, *content;
    if (json_object_object_get_ex(resp->message, "tool_calls", &tcs) &&
        json_object_is_type(tcs, json_type_array) && json_object_array_length(tcs) > 0) {
        if (fill_calls(r, tcs)) {
            mrun_abort(r, "out of memory while reading the model's tool calls");
            return;
        }
        mfire(r, ME_TOOL_CALLS, &(mfire_opt_t){write_reply, &rp, "ok", NULL});
        return;
    }
    for (size_t i = 0; i < r->ncalls; i++)
        tcall_clear(&r->calls[i]);
    r->ncalls = 0;
    const char *answer = json_object_object_get_ex(resp->message, "content", &content) &&
                                 json_object_is_type(content, json_type_string)
                             ? json_object_get_string(content)
                             : "";
    guard_decision_t d;
    int retry;
    if (mguard_output(r, answer, &d, &retry)) {
        mrun_abort(r, "out of memory in the on_output guardrail");
        return;
    }
    rp.out = r->agent->hooks & GUARD_ON_OUTPUT ? &d : NULL;
    if (d.verdict == GUARD_ALLOW) {
        set_str(&r->rec.answer, answer);
        mfire(r, ME_FINAL, &(mfire_opt_t){write_reply, &rp, "ok", NULL});
        return;
    }
    char msg[700];
    snprintf(msg, sizeof msg, "answer rejected by guardrail: %s",
             d.reason[0] ? d.reason : "no reason given");
    if (retry) { /* the model reads the reason and answers again */
        rp.feedback = 1;
        mfire(r, ME_OUTPUT_REJECTED, &(mfire_opt_t){write_reply, &rp, "error", msg});
        return;
    }
    snprintf(r->rec.reason, sizeof r->rec.reason, "output_rejected");
    set_str(&r->rec.error, msg);
    mfire(r, ME_REJECTED, &(mfire_opt_t){write_reply, &rp, "error", msg});
}

static void model_attempt(void *ud, const model_attempt_t *a)
{
    machine_run_t *r = ud;
    if (!a->err || r->dead)
        return;
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "agentd.attempt", json_object_new_int(a->n));
    json_object_object_add(attrs, "gen_ai.provider.name", jx_new_str(a->provider));
    json_object_object_add(attrs, "gen_ai.request.model", jx_new_str(a->model));
    json_object_object_add(attrs, "http.response.status_code", json_object_new_int(a->status));
    json_object_object_add(attrs, "error.type", jx_new_str(a->errclass));
    json_object_object_add(attrs, "agentd.latency_ms", jx_new_num(a->latency_ms));
    json_object_object_add(attrs, "agentd.delay_ms", json_object_new_int64((int64_t)a->delay_ms));
    char name[160];
    snprintf(name, sizeof name, "retry %s:%s #%d", a->provider, a->model, a->n);
    point_unit(r, r->chat_span, "retry", name, "error", a->errmsg, attrs);
    json_object_put(attrs);
}

static void model_text(void *ud, const char *text, size_t len)
{
    machine_run_t *r = ud;
    if (!r->m->o.obs.on_text || r->dead)
        return;
    if (r->rec.last_seq <= r->heard_seq && !r->held) {
        r->m->o.obs.on_text(r->m->o.obs.ud, r->rec.id, text, len);
        return;
    }
    /* The events before this text are not durable yet: the observer hears it after them. */
    mtext_t *t = malloc(sizeof *t + len);
    if (!t)
        return; /* a display nicety, not state: the answer itself is in the final event */
    t->after = r->rec.last_seq;
    t->next = NULL;
    t->len = len;
    memcpy(t->text, text, len);
    if (!r->held)
        r->held_tail = &r->held;
    *r->held_tail = t;
    r->held_tail = &t->next;
}

void mtext_heard(machine_run_t *r, int64_t seq)
{
    if (seq > r->heard_seq)
        r->heard_seq = seq;
    while (r->held && r->held->after <= r->heard_seq) {
        mtext_t *t = r->held;
        r->held = t->next;
        if (r->m->o.obs.on_text && !r->dead)
            r->m->o.obs.on_text(r->m->o.obs.ud, r->rec.id, t->text, t->len);
        free(t);
    }
}

/* The conversation as this request sends it: whole, or compacted to the context window
 * (compact.h); the stored messages are never changed. New reference; NULL: out of memory. */
json_object *mact_request_messages(machine_run_t *r, compact_stats_t *cs)
{
    const agent_t *a = r->agent;
    json_object *tools = tool_descriptions(r);
    compact_policy_t p = {
        .limit = a->context_window > 0 ? a->context_window : compact_model_limit(r->models[0]),
        .threshold = a->compact_at,
        .reserved = tools ? compact_estimate(tools) : 0,
    };
    mcompact_policy(r, &p);
    return compact_view(r->messages, &p, cs);
}

static void start_model(machine_run_t *r)
{
    const agent_t *a = r->agent;
    model_req_t req;
    memset(&req, 0, sizeof req);
    req.models = r->models;
    compact_stats_t cs;
    json_object *view = mact_request_messages(r, &cs);
    req.messages = view;
    req.tools = tool_descriptions(r);
    req.output_schema = a->output_schema;
    json_object *shaped = NULL;
    if (view && r->agent->strategy == AGENT_PLAN_EXECUTE) {
        /* A plan, one step's arguments or the answer: machine_plan.c shapes the request. */
        shaped = mplan_request(r, view, &req.tools, &req.output_schema);
        if (!shaped) {
            json_object_put(view);
            view = NULL;
        }
        req.messages = shaped;
    }
    req.run_id = r->rec.id;
    req.temperature = r->temp_set ? r->temperature : -1;
    req.stream = r->m->o.obs.on_text != NULL;
    req.on_text = model_text;
    req.on_attempt = model_attempt;
    req.ud = r;
    req.budget_tokens = r->lim.max_tokens >= 0
                            ? r->lim.max_tokens - (r->rec.input_tokens + r->rec.output_tokens)
                            : -1;
    req.budget_cost_usd = r->lim.max_cost_usd >= 0 ? r->lim.max_cost_usd - r->rec.cost_usd : -1;
    r->chat_t0 = loop_mono_ns();
    int rc = view ? model_call(r->m->mc, &req, model_done, &r->mcall) : ERR_NOMEM;
    json_object_put(view); /* model_call holds its own reference */
    json_object_put(shaped);
    if (rc) {
        char msg[200];
        snprintf(msg, sizeof msg, "cannot start the model call: %s", err_str(rc));
        snprintf(r->rec.reason, sizeof r->rec.reason, "model_error");
        set_str(&r->rec.error, msg);
        mfire(r, ME_MODEL_FAILED, &(mfire_opt_t){.status = "error", .error = msg});
    }
}

static int stage_chat_begin(machine_run_t *r)
{
    trace_span_id(r->chat_span);
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "gen_ai.request.model", jx_new_str(r->models[0]));
    json_object_object_add(attrs, "agentd.messages",
                           json_object_new_int((int)json_object_array_length(r->messages)));
    compact_stats_t cs;
    json_object *view = mact_request_messages(r, &cs);
    if (!view) {
        json_object_put(attrs);
        return ERR_NOMEM;
    }
    json_object_put(view);
    json_object_object_add(attrs, "agentd.context.tokens", json_object_new_int64(cs.tokens_after));
    mact_prompt_attrs(r, attrs);
    if (cs.omitted) {
        json_object_object_add(attrs, "agentd.context.tokens_before",
                               json_object_new_int64(cs.tokens_before));
        json_object_object_add(attrs, "agentd.context.omitted_messages",
                               json_object_new_int(cs.omitted));
    }
    if (r->plan_action != MPLAN_NONE)
        json_object_object_add(attrs, "agentd.plan.action", jx_new_str(mplan_action_name(r)));
    char name[200];
    snprintf(name, sizeof name, "chat %s", r->models[0]);
    return stage_span(r, r->chat_span, r->state_span, "begin", "chat", name, NULL, NULL, attrs);
}

/* Entering planning: the chat intent is staged with the transition, unless a limit is
 * already reached; then no chat span is opened (chat_span stays empty) and the run hook fails
 * the run instead. Limits only grow, so the run hook sees the same verdict. */
static int plan_stage(machine_run_t *r)
{
    char msg[256];
    r->chat_span[0] = 0;
    r->compact_due = 0;
    r->plan_action = MPLAN_NONE;
    if (limit_reached(r, msg, sizeof msg))
        return 0;
    /* plan_execute: a step that runs with its planned arguments needs no model call. */
    if (r->agent->strategy == AGENT_PLAN_EXECUTE && !mplan_decide(r))
        return 0;
    compact_stats_t cs;
    json_object *view = mact_request_messages(r, &cs);
    if (!view)
        return ERR_NOMEM;
    json_object_put(view);
    if (mcompact_due(r, &cs)) /* a summary first: no chat span, the run hook compacts */
        return 0;
    return stage_chat_begin(r);
}

static void plan_run(machine_run_t *r)
{
    char msg[256];
    if (r->chat_span[0]) {
        start_model(r);
        return;
    }
    if (r->compact_due) {
        mfire(r, ME_COMPACT, NULL);
        return;
    }
    const char *reason = limit_reached(r, msg, sizeof msg);
    if (!reason && r->plan_action == MPLAN_STEP) {
        mplan_step(r);
        return;
    }
    assert(reason);
    fire_limit(r, reason ? reason : "internal", reason ? msg : "internal error: no limit");
}

/* ---- acting: the tool calls of one model turn --------------------------------------- */

static int stage_tool_begin(machine_run_t *r, tcall_t *c)
{
    /* The arguments and the idempotency key are in the call's row, staged with this event:
     * the line shows them, the stored body refers to the row by call id. */
    json_object *attrs = mact_tool_attrs(c);
    trace_call_t row = {.args = c->args, .idem = c->idem};
    char name[200];
    snprintf(name, sizeof name, "execute_tool %s", c->name);
    return stage_span_call(r, c->span, r->state_span, "begin", "execute_tool", name, NULL, NULL,
                           attrs, &row);
}

static int stage_tool_end(machine_run_t *r, tcall_t *c)
{
    json_object *attrs = mact_tool_attrs(c);
    json_object_object_add(attrs, "agentd.tool.state", jx_new_str(tcall_state_name(c->state)));
    json_object_object_add(attrs, "agentd.attempts", json_object_new_int(c->attempts));
    json_object_object_add(attrs, "agentd.duration_ms",
                           jx_new_num((double)(c->ended_ns - c->started_ns) / 1e6));
    int ok = c->state == TC_OK;
    if (!ok)
        json_object_object_add(attrs, "error.type", jx_new_str(tcall_state_name(c->state)));
    trace_call_t row = {.result = c->result}; /* as for the begin event */
    char name[200];
    snprintf(name, sizeof name, "execute_tool %s", c->name);
    return stage_span_call(r, c->span, r->state_span, "end", "execute_tool", name,
                           ok ? "ok" : "error", ok ? NULL : c->error, attrs, &row);
}

static void check_settled(machine_run_t *r);

static void tool_log(void *ud, const char *level, const char *msg)
{
    tcall_t *c = ud;
    machine_run_t *r = c->r;
    if (r->dead)
        return;
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "log.level", jx_new_str(level));
    json_object_object_add(attrs, "log.message", jx_new_str(msg));
    json_object_object_add(attrs, "gen_ai.tool.name", jx_new_str(c->name));
    point_unit(r, c->span, "log", "log", NULL, NULL, attrs);
    json_object_put(attrs);
}

static void tool_done(void *ud, const tools_result_t *res)
{
    tcall_t *c = ud;
    machine_run_t *r = c->r;
    c->h = NULL;
    c->ended_ns = (int64_t)loop_wall_ns();
    c->attempts = res->attempts > 0 ? res->attempts : 1;
    set_str(&c->result, res->result ? to_json(c->r->m, res->result) : NULL);
    set_str(&c->error, res->error);
    int rc = mstage_begin(r);
    if (rc)
        return;
    rc = tcall_set(c, res->status);
    if (!rc)
        rc = tcall_stage_row(r, c);
    if (!rc)
        rc = stage_tool_end(r, c);
    /* The last result and the move to observing may share one commit: the run was in
     * acting in an earlier commit, so every state stays visible in order. */
    if (mstage_end(r, rc) == 0)
        check_settled(r);
}

static void start_tool(machine_run_t *r, void *arg)
{
    tcall_t *c = arg;
    char scope[400];
    tools_policy_t pol = {
        .agent = r->agent->name,
        .http_allow = r->agent->http_allow,
        .exec_allow = r->agent->exec_allow,
        .secrets_allow = r->agent->secrets_allow,
        .kb = r->agent->kb,
        .memory = memory_scope(r->agent->long_term, r->agent->name, r->user, r->session,
                               r->rec.id, scope, sizeof scope),
    };
    tools_call_info_t info = {
        .run_id = r->rec.id,
        .call_id = c->id,
        .idempotency_key = c->idem,
        .policy = &pol,
        .on_log = tool_log,
        .log_ud = c,
    };
    int rc = tools_call(r->m->tl, c->name, c->args, &info, tool_done, c, &c->h);
    if (rc) {
        char msg[200];
        snprintf(msg, sizeof msg, "cannot start tool %s: %s", c->name, err_str(rc));
        tools_result_t res = {.status = TC_ERROR, .error = msg, .attempts = 1};
        tool_done(c, &res);
    }
}

static int name_in(json_object *arr, const char *name)
{
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(arr, i)), name) == 0)
            return 1;
    return 0;
}

void mact_call_sig(const char *name, const char *args, char *buf, size_t len)
{
    json_object *a = NULL;
    char why[200];
    args = args ? args : "";
    if (schema_parse_json(args, strlen(args), &a, why, sizeof why) != 0)
        a = NULL;
    snprintf(buf, len, "%s\x1f%s", name,
             a ? json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE)
               : args);
    json_object_put(a);
}

/* Guardrails, in order: known tool, allowed for this agent, run-wide call limit, loop
 * detection. Returns NULL when the call may run, else the reason (msg filled). */
static const char *guard(machine_run_t *r, tcall_t *c, char *msg, size_t len)
{
    const agent_t *a = r->agent;
    if (!tools_get(r->m->tl, c->name) || !name_in(a->tools, c->name)) {
        snprintf(msg, len, "unknown tool \"%s\"; this agent can use: %s", c->name,
                 to_json(r->m, a->tools));
        return "unknown_tool";
    }
    if (r->rec.tool_calls >= a->max_tool_calls) {
        snprintf(msg, len, "tool-call limit reached (%d per run, limits.max_tool_calls)",
                 a->max_tool_calls);
        return "tool_call_limit";
    }
    char sig[2048];
    mact_call_sig(c->name, c->args, sig, sizeof sig);
    int seen = callsig_count(r->sigs, sig);
    if (seen >= a->loop_limit) {
        snprintf(msg, len, "loop detected: %s was already called %d times with these arguments; "
                 "use the earlier result or try something else", c->name, seen);
        return "loop_detected";
    }
    callsig_add(&r->sigs, sig);
    return NULL;
}

static int stage_guardrail(machine_run_t *r, tcall_t *c, const char *decision, const char *msg)
{
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "agentd.guardrail", jx_new_str(decision));
    json_object_object_add(attrs, "gen_ai.tool.name", jx_new_str(c->name));
    json_object_object_add(attrs, "gen_ai.tool.call.id", jx_new_str(c->id));
    char name[200];
    snprintf(name, sizeof name, "guardrail %s", decision);
    int rc = stage_point(r, c->span[0] ? c->span : r->state_span, r->state_span, "guardrail",
                         name, msg ? "error" : NULL, msg, attrs);
    json_object_put(attrs);
    return rc;
}

/* Guardrails, approvals and intents for every call of the turn that has not started:
 * rejected, awaiting_approval, or committed as running (to_start) with its begin event. */
static int stage_tools(machine_run_t *r)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < r->ncalls; i++) {
        tcall_t *c = &r->calls[i];
        int approved = c->state == TC_APPROVED;
        if (!approved && c->state != TC_PENDING)
            continue;
        trace_span_id(c->span);
        char msg[600];
        const char *why = approved ? NULL : guard(r, c, msg, sizeof msg);
        guard_decision_t hook = {0}; /* the agent's on_tool_call, after the built-in ones */
        if (!why && !approved && (rc = mguard_tool(r, c, &hook)))
            break;
        if (hook.verdict == GUARD_DENY) {
            rc = tcall_set(c, TC_REJECTED);
            snprintf(msg, sizeof msg, "denied by guardrail: %s",
                     hook.reason[0] ? hook.reason : "no reason given");
            set_str(&c->error, msg);
            c->started_ns = c->ended_ns = (int64_t)loop_wall_ns();
        } else if (why) {
            rc = tcall_set(c, TC_REJECTED);
            set_str(&c->error, msg);
            c->started_ns = c->ended_ns = (int64_t)loop_wall_ns();
            if (!rc)
                rc = stage_guardrail(r, c, why, msg);
        } else if (!approved &&
                   (hook.verdict == GUARD_ASK ||
                    agent_needs_approval(r->agent, c->name,
                                         tool_approval(tools_get(r->m->tl, c->name))))) {
            rc = tcall_set(c, TC_AWAITING_APPROVAL);
            if (!rc && hook.verdict != GUARD_ASK)
                rc = stage_guardrail(r, c, "approval_required", NULL);
        } else {
            rc = tcall_set(c, TC_RUNNING);
            c->started_ns = (int64_t)loop_wall_ns();
            c->to_start = 1;
            r->rec.tool_calls++;
            if (!rc)
                rc = stage_tool_begin(r, c);
        }
        if (!rc)
            rc = tcall_stage_row(r, c);
    }
    return rc;
}

/* Runs after the commit that holds the intents: only now may the effects start. */
static void start_staged(machine_run_t *r)
{
    for (size_t i = 0; i < r->ncalls && !r->dead; i++) {
        tcall_t *c = &r->calls[i];
        if (c->to_start) {
            c->to_start = 0;
            start_tool(r, c);
        }
    }
    if (!r->dead)
        check_settled(r);
}

static int write_observations(machine_run_t *r, void *arg)
{
    (void)arg;
    int rc = 0;
    r->results_seq = r->m->batch_seq; /* the model may read them once this batch is durable */
    for (size_t i = 0; !rc && i < r->ncalls; i++) {
        tcall_t *c = &r->calls[i];
        json_object *msg = json_object_new_object();
        json_object_object_add(msg, "role", jx_new_str("tool"));
        json_object_object_add(msg, "tool_call_id", jx_new_str(c->wire));
        json_object_object_add(msg, "name", jx_new_str(c->name));
        int ok = c->state == TC_OK;
        if (ok) {
            json_object_object_add(msg, "content", jx_new_str(c->result ? c->result : "null"));
        } else {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "error",
                                   jx_new_str(c->error ? c->error : tcall_state_name(c->state)));
            json_object_object_add(e, "status", jx_new_str(tcall_state_name(c->state)));
            json_object_object_add(msg, "content", jx_new_str(to_json(r->m, e)));
            json_object_put(e);
        }
        json_object_object_add(msg, "is_error", json_object_new_boolean(!ok));
        rc = stage_message(r, msg);
        json_object_put(msg);
    }
    return rc;
}

static void check_settled(machine_run_t *r)
{
    if (r->state != MS_ACTING)
        return;
    int awaiting = 0;
    for (size_t i = 0; i < r->ncalls; i++) {
        tcall_state_t s = r->calls[i].state;
        if (s == TC_RUNNING || s == TC_PENDING || s == TC_APPROVED)
            return;
        awaiting += s == TC_AWAITING_APPROVAL;
    }
    if (awaiting)
        mfire(r, ME_APPROVAL_NEEDED, NULL);
    else
        mfire(r, ME_TOOLS_DONE, &(mfire_opt_t){.writer = write_observations, .status = "ok"});
}

static void observe_run(machine_run_t *r)
{
    char msg[256];
    const char *reason = limit_reached(r, msg, sizeof msg);
    mfire_opt_t o = {0};
    machine_event_t ev = ME_OBSERVED;
    /* A handoff answered: that agent's answer is this run's, no model call follows. */
    if (!reason && msub_handoff_answer(r)) {
        mfire(r, ME_HANDOFF, &(mfire_opt_t){.writer = msub_write_handoff, .status = "ok"});
        return;
    }
    /* plan_execute: the step's outcome is recorded with whichever event follows. */
    if (r->agent->strategy == AGENT_PLAN_EXECUTE)
        ev = mplan_observe(r, &o, &reason, msg, sizeof msg);
    if (reason) {
        snprintf(r->rec.reason, sizeof r->rec.reason, "%s", reason);
        set_str(&r->rec.error, msg);
        keep_partial_answer(r);
        mfire(r, ME_LIMIT, &(mfire_opt_t){o.writer, o.arg, "error", msg});
    } else {
        mfire(r, ev, o.writer ? &o : NULL);
    }
}

/* Nobody drives a waiting run: it is released until a decision resumes it. A run that
 * enters waiting with no call awaiting (every decision was recorded before the resume)
 * goes back to acting. */
static void wait_run(machine_run_t *r)
{
    for (size_t i = 0; i < r->ncalls; i++)
        if (r->calls[i].state == TC_AWAITING_APPROVAL) {
            mrun_release(r);
            return;
        }
    mfire(r, ME_DECIDED, NULL);
}

static void created_run(machine_run_t *r)
{
    mguard_start(r); /* the on_input guardrail, then start */
}

static int always(const machine_run_t *r)
{
    (void)r;
    return 1;
}

/* The model call may start before its batch is durable (a kill repeats it, as any call in
 * flight), but the model must read tool results only once they are durable. */
static int results_durable(const machine_run_t *r)
{
    return r->results_seq <= r->m->durable_seq;
}

const mstate_enter_t mact_enter[MS__COUNT] = {
    [MS_CREATED] = {NULL, created_run, always},
    [MS_PLANNING] = {plan_stage, plan_run, results_durable},
    [MS_ACTING] = {stage_tools, start_staged, NULL},
    [MS_OBSERVING] = {NULL, observe_run, always},
    [MS_WAITING] = {NULL, wait_run, NULL},
    [MS_DONE] = {NULL, mrun_release, NULL},
    [MS_FAILED] = {NULL, mrun_release, NULL},
    [MS_CANCELLED] = {NULL, mrun_release, NULL},
    [MS_COMPACTING] = {mcompact_stage, mcompact_run, NULL},
};

void mrun_cancel_inflight(machine_run_t *r)
{
    if (r->mcall) {
        model_call_cancel(r->mcall);
        r->mcall = NULL;
    }
    for (size_t i = 0; i < r->ncalls; i++) {
        if (r->calls[i].h) {
            tools_call_cancel(r->calls[i].h);
            r->calls[i].h = NULL;
        }
    }
}

/* ---- shared with the strategies (machine_int.h) -------------------------------------- */

int mact_stage_message(machine_run_t *r, json_object *msg)
{
    return stage_message(r, msg);
}

int mact_fill_calls(machine_run_t *r, json_object *tcs)
{
    return fill_calls(r, tcs);
}

int mact_write_reply(machine_run_t *r, void *arg)
{
    reply_t rp = {arg, NULL, 0};
    return write_reply(r, &rp);
}

int mact_stage_span(machine_run_t *r, const char *span, const char *parent, const char *phase,
                    const char *op, const char *name, const char *status, const char *error,
                    json_object *attrs)
{
    return stage_span(r, span, parent, phase, op, name, status, error, attrs);
}

json_object *mact_tool_descriptions(machine_run_t *r)
{
    return tool_descriptions(r);
}

int mact_write_chat_end(machine_run_t *r, const model_resp_t *resp)
{
    return write_chat_end(r, resp);
}
