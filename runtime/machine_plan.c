/*
 * machine_plan: the plan_execute strategy (docs/strategies.md), as events of the same
 * machine. A planning visit of such a run does one of four things, decided from the plan
 * alone so that the stage hook, the run hook and a resumed run agree:
 *
 *   MPLAN_PLAN    no plan yet, or the last one failed: ask the model for a plan (structured
 *                 output, schema titled MODEL_PLAN_TITLE); the reply fires plan_made
 *                 (planning -> planning) with the plan stored as version N.
 *   MPLAN_STEP    the next pending step has its arguments: fire plan_step (planning ->
 *                 acting) with the call, no model call.
 *   MPLAN_FILL    the next step has none: ask the model for that one tool's call; its reply
 *                 fires model_tool_calls as usual.
 *   MPLAN_ANSWER  every step is done: ask for the final answer (no tools offered).
 *
 * Observing settles the running step from its calls: done, or failed (a call not ok, or a
 * result object with an "error" field: the observation contradicts the plan). A failure
 * marks the plan failed and fires replan (observing -> planning) until limits.max_replans
 * new plans were made; then the run fails with reason "replan_limit".
 *
 * Durability: the plan (steps and their status) is one row per version in `plans`, staged in
 * the same unit as the transition that changed it, so a resumed run continues the plan
 * where it stopped. Trace: a span per plan (op "make_plan") with a span per step (op
 * "plan_step") under it, and a point event per re-plan (op "replan").
 */
#include "jx.h"
#include "machine_int.h"

#include "err.h"
#include "trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_MAX_STEPS 10 /* as the schema's maxItems */

static const char *to_json(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
}

static json_object *steps_of(json_object *plan)
{
    json_object *v = jx_get(plan, "steps");
    return json_object_is_type(v, json_type_array) ? v : NULL;
}

static const char *status_of(json_object *o)
{
    const char *s = jx_str(o, "status");
    return s ? s : "";
}

static void set_status(json_object *o, const char *status)
{
    json_object_object_add(o, "status", jx_new_str(status));
}

/* The first step with this status, or -1. */
static int step_with(json_object *plan, const char *status)
{
    json_object *steps = steps_of(plan);
    for (size_t i = 0; steps && i < json_object_array_length(steps); i++)
        if (!strcmp(status_of(json_object_array_get_idx(steps, i)), status))
            return (int)i;
    return -1;
}

static int version_of(json_object *plan)
{
    return plan ? (int)jx_int(plan, "version", 1) : 0;
}

static int stage_plan_row(machine_run_t *r)
{
    return store_plan_put(r->m->st, r->rec.id, version_of(r->plan), to_json(r->plan));
}

/* ---- deciding ------------------------------------------------------------------------ */

int mplan_decide(machine_run_t *r)
{
    json_object_put(r->plan_req);
    r->plan_req = NULL;
    if (!r->plan || !strcmp(status_of(r->plan), "failed")) {
        r->plan_action = MPLAN_PLAN;
        return 1;
    }
    int k = step_with(r->plan, "pending");
    if (k < 0) {
        r->plan_action = MPLAN_ANSWER;
        return 1;
    }
    json_object *step = json_object_array_get_idx(steps_of(r->plan), (size_t)k);
    r->plan_action = json_object_is_type(jx_get(step, "args"), json_type_object) ? MPLAN_STEP
                                                                                 : MPLAN_FILL;
    return r->plan_action != MPLAN_STEP;
}

const char *mplan_action_name(const machine_run_t *r)
{
    switch (r->plan_action) {
    case MPLAN_PLAN: return "plan";
    case MPLAN_STEP: return "step";
    case MPLAN_FILL: return "fill";
    case MPLAN_ANSWER: return "answer";
    default: return "";
    }
}

/* ---- the request ----------------------------------------------------------------------- */

/* The plan's schema: the tools the agent may use, each step's intent, the arguments known. */
static json_object *plan_schema(json_object *tools)
{
    json_object *schema = json_tokener_parse(
        "{\"title\":\"" MODEL_PLAN_TITLE "\",\"type\":\"object\",\"required\":[\"steps\"],"
        "\"properties\":{\"steps\":{\"type\":\"array\",\"maxItems\":10,\"items\":{"
        "\"type\":\"object\",\"required\":[\"tool\",\"intent\"],\"properties\":{"
        "\"tool\":{\"type\":\"string\"},"
        "\"intent\":{\"type\":\"string\",\"description\":\"why this step, in a few words\"},"
        "\"args\":{\"type\":\"object\",\"description\":\"the tool's arguments when already "
        "known; leave out when they depend on an earlier step's result\"}}}}}}");
    json_object *tool = jx_get(jx_get(jx_get(jx_get(jx_get(schema, "properties"), "steps"),
                                             "items"), "properties"), "tool");
    size_t n = tools ? json_object_array_length(tools) : 0;
    json_object *names = n && tool ? json_object_new_array() : NULL;
    for (size_t i = 0; names && i < n; i++)
        json_object_array_add(names, json_object_get(jx_get(json_object_array_get_idx(tools, i),
                                                            "name")));
    if (names)
        json_object_object_add(tool, "enum", names);
    return schema;
}

static void add_system(json_object *msgs, const char *text)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", jx_new_str("system"));
    json_object_object_add(m, "content", jx_new_str(text));
    json_object_array_add(msgs, m);
}

/* The instruction for a new plan; after a failure it says what failed. */
static void plan_instruction(machine_run_t *r, char *buf, size_t len)
{
    int n = snprintf(buf, len,
                     "Plan before acting. Reply with only a JSON object {\"steps\": [{\"tool\": "
                     "NAME, \"intent\": WHY, \"args\": {...}}]}: the tool calls that answer the "
                     "user's request, in order, each with the arguments you already know (leave "
                     "\"args\" out when they depend on an earlier step's result). An empty "
                     "\"steps\" list means no tool is needed. Do not call the tools now.");
    json_object *steps = steps_of(r->plan);
    int k = r->plan ? step_with(r->plan, "failed") : -1;
    if (k >= 0 && n > 0 && (size_t)n < len) {
        json_object *s = json_object_array_get_idx(steps, (size_t)k);
        snprintf(buf + n, len - (size_t)n,
                 " Your plan version %d failed at step %d (%s): %s. Make a new plan that takes "
                 "this into account; do not repeat a call that failed.",
                 version_of(r->plan), k + 1, jx_str(s, "tool") ? jx_str(s, "tool") : "?",
                 jx_str(s, "error") ? jx_str(s, "error") : "failed");
    }
}

json_object *mplan_request(machine_run_t *r, json_object *view, json_object **tools,
                           json_object **schema)
{
    json_object *msgs = json_object_new_array();
    if (!msgs)
        return NULL;
    for (size_t i = 0; i < json_object_array_length(view); i++)
        json_object_array_add(msgs, json_object_get(json_object_array_get_idx(view, i)));
    char text[2048];
    json_object *all = mact_tool_descriptions(r);
    if (r->plan_action == MPLAN_PLAN) {
        if (!r->plan_req)
            r->plan_req = plan_schema(all);
        plan_instruction(r, text, sizeof text);
        add_system(msgs, text);
        *tools = all;
        *schema = r->plan_req;
    } else if (r->plan_action == MPLAN_FILL) {
        int k = step_with(r->plan, "pending");
        json_object *step = json_object_array_get_idx(steps_of(r->plan), (size_t)(k < 0 ? 0 : k));
        const char *tool = jx_str(step, "tool");
        if (!r->plan_req && (r->plan_req = json_object_new_array()))
            for (size_t i = 0; all && i < json_object_array_length(all); i++) {
                json_object *t = json_object_array_get_idx(all, i);
                if (tool && jx_str(t, "name") && !strcmp(jx_str(t, "name"), tool))
                    json_object_array_add(r->plan_req, json_object_get(t));
            }
        snprintf(text, sizeof text, "Step %d of the plan: %s. Call %s now with its arguments, "
                 "from the request and the results so far.", k + 1,
                 jx_str(step, "intent") ? jx_str(step, "intent") : "", tool ? tool : "the tool");
        add_system(msgs, text);
        *tools = r->plan_req;
        *schema = NULL;
    } else if (r->plan_action == MPLAN_ANSWER) {
        add_system(msgs, "Every step of the plan is done. Answer the user's request from the "
                         "results.");
        *tools = NULL;
    }
    return msgs;
}

/* ---- the plan from a reply ------------------------------------------------------------- */

/* The steps of a reply: the JSON text (a ```json fence tolerated), or the tool calls of a
 * model that acted instead of planning (each call a step with its arguments). */
static json_object *parse_steps(json_object *msg, char *why, size_t len)
{
    json_object *tcs = jx_get(msg, "tool_calls"), *steps = json_object_new_array();
    if (!steps)
        return NULL;
    if (json_object_is_type(tcs, json_type_array) && json_object_array_length(tcs)) {
        for (size_t i = 0; i < json_object_array_length(tcs); i++) {
            json_object *tc = json_object_array_get_idx(tcs, i), *st = json_object_new_object();
            const char *a = jx_str(tc, "arguments");
            json_object *args = a ? json_tokener_parse(a) : NULL;
            json_object_object_add(st, "tool", jx_new_str(jx_str(tc, "name") ? jx_str(tc, "name")
                                                                              : ""));
            json_object_object_add(st, "intent", jx_new_str("as the model called it"));
            if (json_object_is_type(args, json_type_object))
                json_object_object_add(st, "args", args);
            else
                json_object_put(args);
            json_object_array_add(steps, st);
        }
        return steps;
    }
    const char *text = jx_str(msg, "content");
    const char *a = text ? strchr(text, '{') : NULL, *b = text ? strrchr(text, '}') : NULL;
    json_object *o = NULL;
    if (a && b && b > a) {
        char *cut = strndup(a, (size_t)(b - a + 1));
        o = cut ? json_tokener_parse(cut) : NULL;
        free(cut);
    }
    json_object *in = jx_get(o, "steps");
    if (!json_object_is_type(in, json_type_array)) {
        snprintf(why, len, "the plan is not a JSON object with a \"steps\" array");
        json_object_put(o);
        json_object_put(steps);
        return NULL;
    }
    for (size_t i = 0; i < json_object_array_length(in) && i < PLAN_MAX_STEPS; i++) {
        json_object *s = json_object_array_get_idx(in, i), *st = json_object_new_object();
        const char *tool = jx_str(s, "tool");
        if (!tool) {
            snprintf(why, len, "plan step %zu has no \"tool\"", i + 1);
            json_object_put(st);
            json_object_put(o);
            json_object_put(steps);
            return NULL;
        }
        json_object_object_add(st, "tool", jx_new_str(tool));
        json_object_object_add(st, "intent", jx_new_str(jx_str(s, "intent") ? jx_str(s, "intent")
                                                                              : ""));
        json_object *args = jx_get(s, "args");
        if (json_object_is_type(args, json_type_object))
            json_object_object_add(st, "args", json_object_get(args));
        json_object_array_add(steps, st);
    }
    json_object_put(o);
    return steps;
}

static json_object *step_attrs(json_object *plan, int k)
{
    json_object *step = json_object_array_get_idx(steps_of(plan), (size_t)k);
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "agentd.plan.version", json_object_new_int(version_of(plan)));
    json_object_object_add(attrs, "agentd.plan.step", json_object_new_int(k + 1));
    json_object_object_add(attrs, "agentd.plan.intent", jx_new_str(jx_str(step, "intent")));
    json_object_object_add(attrs, "gen_ai.tool.name", jx_new_str(jx_str(step, "tool")));
    json_object_object_add(attrs, "agentd.plan.step.status", jx_new_str(status_of(step)));
    if (jx_get(step, "call_id"))
        json_object_object_add(attrs, "gen_ai.tool.call.id", jx_new_str(jx_str(step, "call_id")));
    return attrs;
}

static int stage_plan_end(machine_run_t *r)
{
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "agentd.plan.version", json_object_new_int(version_of(r->plan)));
    json_object_object_add(attrs, "agentd.plan.status", jx_new_str(status_of(r->plan)));
    char name[64], why[200] = "";
    snprintf(name, sizeof name, "plan v%d", version_of(r->plan));
    int failed = !strcmp(status_of(r->plan), "failed"), k = step_with(r->plan, "failed");
    if (failed)
        snprintf(why, sizeof why, "step %d (%s) failed", k + 1,
                 jx_str_or(json_object_array_get_idx(steps_of(r->plan), (size_t)(k < 0 ? 0 : k)),
                           "tool", "?"));
    return mact_stage_span(r, jx_str(r->plan, "span"), r->rec.id, "end", "make_plan", name,
                           failed ? "error" : "ok", failed ? why : NULL, attrs);
}

static int stage_step_span(machine_run_t *r, int k, const char *phase)
{
    json_object *step = json_object_array_get_idx(steps_of(r->plan), (size_t)k);
    char name[200];
    snprintf(name, sizeof name, "step %d/%zu %s", k + 1,
             json_object_array_length(steps_of(r->plan)), jx_str(step, "tool"));
    int end = !strcmp(phase, "end"), failed = !strcmp(status_of(step), "failed");
    return mact_stage_span(r, jx_str(step, "span"), jx_str(r->plan, "span"), phase, "plan_step",
                           name, end ? (failed ? "error" : "ok") : NULL,
                           end && failed ? jx_str(step, "error") : NULL, step_attrs(r->plan, k));
}

typedef struct plan_made {
    const model_resp_t *resp;
    json_object *msg; /* the assistant message kept in the conversation: the plan as text */
} plan_made_t;

static int write_plan_made(machine_run_t *r, void *arg)
{
    plan_made_t *pm = arg;
    int rc = mact_write_chat_end(r, pm->resp);
    if (!rc)
        rc = mact_stage_message(r, pm->msg);
    if (!rc)
        rc = stage_plan_row(r);
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "agentd.plan.version", json_object_new_int(version_of(r->plan)));
    json_object_object_add(attrs, "agentd.plan.steps", jx_new_str(to_json(steps_of(r->plan))));
    char name[64];
    snprintf(name, sizeof name, "plan v%d (%zu steps)", version_of(r->plan),
             json_object_array_length(steps_of(r->plan)));
    if (!rc)
        rc = mact_stage_span(r, jx_str(r->plan, "span"), r->rec.id, "begin", "make_plan", name,
                             NULL, NULL, attrs);
    else
        json_object_put(attrs);
    if (!rc && !strcmp(status_of(r->plan), "done"))
        rc = stage_plan_end(r);
    return rc;
}

static void plan_reply(machine_run_t *r, const model_resp_t *resp)
{
    char why[200] = "";
    json_object *steps = parse_steps(resp->message, why, sizeof why);
    if (!steps) {
        char msg[300];
        snprintf(msg, sizeof msg, "the model's plan is unusable: %s", why[0] ? why : "out of memory");
        snprintf(r->rec.reason, sizeof r->rec.reason, "invalid_plan");
        free(r->rec.error);
        r->rec.error = strdup(msg);
        mfire(r, ME_MODEL_FAILED, &(mfire_opt_t){mact_write_reply, (void *)resp, "error", msg});
        return;
    }
    char span[17];
    trace_span_id(span);
    json_object *plan = json_object_new_object();
    json_object_object_add(plan, "version", json_object_new_int(version_of(r->plan) + 1));
    json_object_object_add(plan, "span", jx_new_str(span));
    for (size_t i = 0; i < json_object_array_length(steps); i++) {
        json_object *s = json_object_array_get_idx(steps, i);
        char sp[17];
        trace_span_id(sp);
        json_object_object_add(s, "span", jx_new_str(sp));
        set_status(s, "pending");
    }
    set_status(plan, json_object_array_length(steps) ? "active" : "done");
    json_object_object_add(plan, "steps", steps);
    json_object_put(r->plan);
    r->plan = plan;
    /* The conversation keeps the plan as the assistant's text, without tool calls (a model
     * that acted instead of planning would otherwise leave calls without results). */
    json_object *said = json_object_new_array(); /* the steps as the model wrote them */
    for (size_t i = 0; said && i < json_object_array_length(steps); i++) {
        json_object *s = json_object_array_get_idx(steps, i), *c = json_object_new_object();
        json_object_object_add(c, "tool", json_object_get(jx_get(s, "tool")));
        json_object_object_add(c, "intent", json_object_get(jx_get(s, "intent")));
        if (jx_get(s, "args"))
            json_object_object_add(c, "args", json_object_get(jx_get(s, "args")));
        json_object_array_add(said, c);
    }
    json_object *wrote = json_object_new_object();
    json_object_object_add(wrote, "steps", said);
    json_object *msg = json_object_new_object();
    json_object_object_add(msg, "role", jx_new_str("assistant"));
    json_object_object_add(msg, "content", jx_new_str(to_json(wrote)));
    json_object_put(wrote);
    for (size_t i = 0; i < r->ncalls; i++)
        tcall_clear(&r->calls[i]);
    r->ncalls = 0;
    plan_made_t pm = {resp, msg};
    mfire(r, ME_PLANNED, &(mfire_opt_t){write_plan_made, &pm, "ok", NULL});
    json_object_put(msg);
}

/* ---- steps --------------------------------------------------------------------------- */

typedef struct step_start {
    const model_resp_t *resp; /* the reply that filled the arguments, or NULL */
    json_object *msg;         /* the assistant message with the step's call (no reply) */
    int k;
} step_start_t;

static int write_step_start(machine_run_t *r, void *arg)
{
    step_start_t *ss = arg;
    int rc = ss->resp ? mact_write_reply(r, (void *)ss->resp) : mact_stage_message(r, ss->msg);
    for (size_t i = 0; !rc && !ss->resp && i < r->ncalls; i++)
        rc = tcall_stage_row(r, &r->calls[i]);
    if (!rc)
        rc = stage_plan_row(r);
    if (!rc)
        rc = stage_step_span(r, ss->k, "begin");
    return rc;
}

static void mark_running(machine_run_t *r, int k)
{
    json_object *step = json_object_array_get_idx(steps_of(r->plan), (size_t)k);
    set_status(step, "running");
    if (r->ncalls)
        json_object_object_add(step, "call_id", jx_new_str(r->calls[0].id));
}

void mplan_step(machine_run_t *r)
{
    int k = step_with(r->plan, "pending");
    json_object *step = json_object_array_get_idx(steps_of(r->plan), (size_t)(k < 0 ? 0 : k));
    r->rec.step++; /* a step of the run, like a model turn: call ids and limits count it */
    char id[64], text[600];
    snprintf(id, sizeof id, "call_%d_1", r->rec.step);
    json_object *tcs = json_object_new_array(), *tc = json_object_new_object();
    json_object_object_add(tc, "id", jx_new_str(id));
    json_object_object_add(tc, "name", jx_new_str(jx_str(step, "tool")));
    json_object_object_add(tc, "arguments", jx_new_str(to_json(jx_get(step, "args"))));
    json_object_array_add(tcs, tc);
    if (k < 0 || mact_fill_calls(r, tcs)) {
        json_object_put(tcs);
        mrun_abort(r, k < 0 ? "internal error: no pending plan step" : "out of memory");
        return;
    }
    mark_running(r, k);
    snprintf(text, sizeof text, "Plan step %d: %s", k + 1, jx_str(step, "intent"));
    json_object *msg = json_object_new_object();
    json_object_object_add(msg, "role", jx_new_str("assistant"));
    json_object_object_add(msg, "content", jx_new_str(text));
    json_object_object_add(msg, "tool_calls", tcs);
    step_start_t ss = {NULL, msg, k};
    mfire(r, ME_STEP, &(mfire_opt_t){write_step_start, &ss, "ok", NULL});
    json_object_put(msg);
}

/* ---- failure and re-planning ---------------------------------------------------------- */

typedef struct step_end {
    const model_resp_t *resp; /* a fill reply that gave no call, or NULL */
    int replan;               /* stage the replan event */
} step_end_t;

static int write_step_end(machine_run_t *r, void *arg)
{
    step_end_t *se = arg;
    int rc = 0;
    if (se && se->resp)
        rc = mact_write_reply(r, (void *)se->resp);
    if (!rc)
        rc = stage_plan_row(r);
    if (!rc && r->plan_settled >= 0)
        rc = stage_step_span(r, r->plan_settled, "end");
    if (!rc && strcmp(status_of(r->plan), "active"))
        rc = stage_plan_end(r);
    if (!rc && se && se->replan) {
        int k = step_with(r->plan, "failed");
        json_object *step = json_object_array_get_idx(steps_of(r->plan), (size_t)k);
        json_object *attrs = json_object_new_object();
        json_object_object_add(attrs, "agentd.plan.version",
                               json_object_new_int(version_of(r->plan)));
        json_object_object_add(attrs, "agentd.plan.replans", json_object_new_int(version_of(r->plan)));
        json_object_object_add(attrs, "agentd.plan.failed_step", json_object_new_int(k + 1));
        char span[17], name[200];
        trace_span_id(span);
        snprintf(name, sizeof name, "replan after step %d (%s)", k + 1, jx_str(step, "tool"));
        rc = mact_stage_span(r, span, r->rec.id, "point", "replan", name, "error",
                             jx_str(step, "error"), attrs);
    }
    return rc;
}

/* Step k failed with why: the plan fails with it. Returns the limit message when no re-plan
 * is left (msg filled), else NULL. */
static const char *fail_step(machine_run_t *r, int k, const char *why, char *msg, size_t len)
{
    json_object *steps = steps_of(r->plan);
    json_object *step = json_object_array_get_idx(steps, (size_t)k);
    set_status(step, "failed");
    char cut[400];
    snprintf(cut, sizeof cut, "%s", why);
    json_object_object_add(step, "error", jx_new_str(cut));
    for (size_t i = 0; i < json_object_array_length(steps); i++)
        if (!strcmp(status_of(json_object_array_get_idx(steps, i)), "pending"))
            set_status(json_object_array_get_idx(steps, i), "skipped");
    set_status(r->plan, "failed");
    r->plan_settled = k;
    if (version_of(r->plan) - 1 < r->agent->max_replans)
        return NULL;
    snprintf(msg, len, "plan version %d failed at step %d (%s) and no re-plan is left "
             "(limits.max_replans = %d): %s", version_of(r->plan), k + 1, jx_str(step, "tool"),
             r->agent->max_replans, cut);
    return "replan_limit";
}

static void fill_reply_without_call(machine_run_t *r, const model_resp_t *resp)
{
    int k = step_with(r->plan, "pending");
    const char *text = jx_str(resp->message, "content");
    char why[400], msg[600];
    snprintf(why, sizeof why, "the model gave no call for this step%s%.300s",
             text && *text ? ": " : "", text ? text : "");
    for (size_t i = 0; i < r->ncalls; i++)
        tcall_clear(&r->calls[i]);
    r->ncalls = 0;
    r->plan_settled = -1;
    const char *limit = fail_step(r, k < 0 ? 0 : k, why, msg, sizeof msg);
    r->plan_settled = -1; /* its span never began */
    step_end_t se = {resp, !limit};
    if (limit) {
        snprintf(r->rec.reason, sizeof r->rec.reason, "%s", limit);
        free(r->rec.error);
        r->rec.error = strdup(msg);
        mfire(r, ME_LIMIT, &(mfire_opt_t){write_step_end, &se, "error", msg});
    } else {
        mfire(r, ME_REPLAN, &(mfire_opt_t){write_step_end, &se, "error", why});
    }
}

int mplan_reply(machine_run_t *r, const model_resp_t *resp)
{
    if (r->plan_action == MPLAN_PLAN) {
        plan_reply(r, resp);
        return 1;
    }
    if (r->plan_action != MPLAN_FILL)
        return 0;
    json_object *tcs = jx_get(resp->message, "tool_calls");
    if (!json_object_is_type(tcs, json_type_array) || !json_object_array_length(tcs)) {
        fill_reply_without_call(r, resp);
        return 1;
    }
    int k = step_with(r->plan, "pending");
    if (mact_fill_calls(r, tcs)) {
        mrun_abort(r, "out of memory while reading the model's tool calls");
        return 1;
    }
    mark_running(r, k);
    step_start_t ss = {resp, NULL, k};
    mfire(r, ME_TOOL_CALLS, &(mfire_opt_t){write_step_start, &ss, "ok", NULL});
    return 1;
}

/* ---- observing ----------------------------------------------------------------------- */

machine_event_t mplan_observe(machine_run_t *r, mfire_opt_t *o, const char **limit, char *msg,
                              size_t len)
{
    static step_end_t replan = {NULL, 1}, settle = {NULL, 0};
    r->plan_settled = -1;
    int k = r->plan ? step_with(r->plan, "running") : -1;
    if (k < 0)
        return ME_OBSERVED;
    const char *why = NULL;
    char buf[400];
    for (size_t i = 0; i < r->ncalls && !why; i++) {
        tcall_t *c = &r->calls[i];
        json_object *res = NULL;
        if (c->state != TC_OK) {
            why = c->error ? c->error : tcall_state_name(c->state);
        } else if (c->result && (res = json_tokener_parse(c->result)) &&
                   json_object_is_type(res, json_type_object) && jx_get(res, "error")) {
            json_object *e = jx_get(res, "error");
            snprintf(buf, sizeof buf, "the result reports an error: %s",
                     json_object_is_type(e, json_type_string) ? json_object_get_string(e)
                                                              : to_json(e));
            why = buf;
        }
        json_object_put(res);
    }
    o->writer = write_step_end;
    if (!why) {
        set_status(json_object_array_get_idx(steps_of(r->plan), (size_t)k), "done");
        r->plan_settled = k;
        if (step_with(r->plan, "pending") < 0)
            set_status(r->plan, "done");
        o->arg = &settle;
        return ME_OBSERVED;
    }
    char lmsg[600];
    const char *lim = fail_step(r, k, why, lmsg, sizeof lmsg);
    if (lim && !*limit) {
        *limit = lim;
        snprintf(msg, len, "%s", lmsg);
    }
    o->arg = *limit ? &settle : &replan;
    o->status = "error";
    o->error = jx_str(json_object_array_get_idx(steps_of(r->plan), (size_t)k), "error");
    return lim ? ME_OBSERVED : ME_REPLAN;
}

int mplan_load(machine_run_t *r)
{
    int version;
    char *json = NULL;
    int rc = store_plan_latest(r->m->st, r->rec.id, &version, &json);
    if (rc == ERR_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    json_object *plan = json_tokener_parse(json);
    free(json);
    if (!json_object_is_type(plan, json_type_object) || !steps_of(plan)) {
        json_object_put(plan);
        return ERR_PROTO;
    }
    json_object_put(r->plan);
    r->plan = plan;
    return 0;
}
