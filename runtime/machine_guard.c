/*
 * machine_guard: the agent's guardrail hooks (guard/guard.h) at their three places in the
 * machine — the run's input (entering planning from created), each tool call (with the
 * built-in guardrails, when acting is entered), and the final answer (when the model gives
 * one) — and the trace event each decision leaves. Each decision is staged in the same
 * unit as what it decides, so a resumed run never sees a decision without its effect.
 */
#include "guard/guard.h"
#include "schema/schema.h"
#include "jx.h"
#include "machine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_object *hook_ctx(machine_run_t *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "run_id", jx_new_str(r->rec.id));
    json_object_object_add(o, "agent", jx_new_str(r->rec.agent));
    json_object_object_add(o, "step", json_object_new_int(r->rec.step));
    json_object_object_add(o, "input", jx_new_str(r->rec.input ? r->rec.input : ""));
    if (r->session[0])
        json_object_object_add(o, "session", jx_new_str(r->session));
    if (r->user[0])
        json_object_object_add(o, "user", jx_new_str(r->user));
    return o;
}

int mguard_event(machine_run_t *r, const char *span, const char *hook,
                 const guard_decision_t *d, const tcall_t *c)
{
    json_object *attrs = json_object_new_object();
    const char *verdict = d->verdict == GUARD_DENY && !strcmp(hook, "on_output")
                              ? "reject"
                              : guard_verdict_name(d->verdict);
    json_object_object_add(attrs, "agentd.guardrail", jx_new_str(verdict));
    json_object_object_add(attrs, "agentd.guardrail.hook", jx_new_str(hook));
    if (d->reason[0])
        json_object_object_add(attrs, "agentd.reason", jx_new_str(d->reason));
    if (d->failed)
        json_object_object_add(attrs, "agentd.guardrail.failed", json_object_new_boolean(1));
    json_object_object_add(attrs, "agentd.duration_ms", jx_new_num(d->ms));
    if (c) {
        json_object_object_add(attrs, "gen_ai.tool.name", jx_new_str(c->name));
        json_object_object_add(attrs, "gen_ai.tool.call.id", jx_new_str(c->id));
    }
    char name[200];
    snprintf(name, sizeof name, "guardrail %s %s", hook, verdict);
    const char *parent = NULL; /* the run's root has none */
    if (strcmp(span, r->rec.id) != 0)
        parent = r->state_span[0] && strcmp(span, r->state_span) ? r->state_span : r->rec.id;
    trace_ev_t e = {
        .span_id = span,
        .parent_id = parent,
        .phase = "point",
        .op = "guardrail",
        .name = name,
        .step = r->rec.step,
        .status = d->verdict == GUARD_ALLOW ? "ok" : "error",
        .error = d->verdict == GUARD_ALLOW ? NULL : (d->reason[0] ? d->reason : verdict),
        .attrs = attrs,
    };
    int rc = mstage_event(r, &e);
    json_object_put(attrs);
    return rc;
}

/* ---- on_input ---- */

typedef struct input_verdict {
    guard_decision_t d;
} input_verdict_t;

static int write_input(machine_run_t *r, void *arg)
{
    return mguard_event(r, r->rec.id, "on_input", &((input_verdict_t *)arg)->d, NULL);
}

void mguard_start(machine_run_t *r)
{
    if (!(r->agent->hooks & GUARD_ON_INPUT)) {
        mfire(r, ME_START, NULL);
        return;
    }
    input_verdict_t v;
    json_object *input = jx_new_str(r->rec.input ? r->rec.input : ""), *ctx = hook_ctx(r);
    int rc = guard_run(r->agent->path, "on_input", input, ctx, &v.d);
    json_object_put(input);
    json_object_put(ctx);
    if (rc) {
        mrun_abort(r, "out of memory in the on_input guardrail");
        return;
    }
    if (v.d.verdict == GUARD_ALLOW) {
        mfire(r, ME_START, &(mfire_opt_t){.writer = write_input, .arg = &v, .status = "ok"});
        return;
    }
    char msg[700];
    snprintf(msg, sizeof msg, "input rejected by guardrail: %s",
             v.d.reason[0] ? v.d.reason : "no reason given");
    snprintf(r->rec.reason, sizeof r->rec.reason, "guardrail_input");
    free(r->rec.error);
    r->rec.error = strdup(msg);
    mfire(r, ME_REJECTED, &(mfire_opt_t){write_input, &v, "error", msg});
}

/* ---- on_tool_call ---- */

int mguard_tool(machine_run_t *r, tcall_t *c, guard_decision_t *d)
{
    memset(d, 0, sizeof *d);
    if (!(r->agent->hooks & GUARD_ON_TOOL_CALL))
        return 0;
    json_object *call = json_object_new_object(), *args = NULL, *ctx = hook_ctx(r);
    char why[200];
    const char *a = c->args ? c->args : "{}";
    if (schema_parse_json(a, strlen(a), &args, why, sizeof why) != 0)
        args = jx_new_str(a); /* not JSON: the hook sees the raw text */
    json_object_object_add(call, "name", jx_new_str(c->name));
    json_object_object_add(call, "args", args);
    json_object_object_add(call, "id", jx_new_str(c->id));
    json_object_object_add(call, "step", json_object_new_int(r->rec.step));
    int rc = guard_run(r->agent->path, "on_tool_call", call, ctx, d);
    json_object_put(call);
    json_object_put(ctx);
    /* A denied call never starts: its decision is an instant span of its own, as the
     * built-in rejections are. A call allowed (or waiting for a person) starts on c->span
     * later, so its decision is an event of the acting state's span instead. */
    if (!rc)
        rc = mguard_event(r, d->verdict == GUARD_DENY && c->span[0] ? c->span : r->state_span,
                          "on_tool_call", d, c);
    return rc;
}

/* ---- on_output ---- */

/* Answers on_output rejected in this turn: the feedback messages since its question. */
static int rejections(machine_run_t *r)
{
    int n = 0;
    for (size_t i = json_object_array_length(r->messages); i-- > 0;) {
        json_object *m = json_object_array_get_idx(r->messages, i), *v;
        if (strcmp(jx_str_or(m, "role", ""), "user") != 0)
            continue;
        if (!json_object_object_get_ex(m, "agentd_guardrail", &v))
            break;
        n++;
    }
    return n;
}

int mguard_output(machine_run_t *r, const char *answer, guard_decision_t *d, int *retry)
{
    memset(d, 0, sizeof *d);
    *retry = 0;
    if (!(r->agent->hooks & GUARD_ON_OUTPUT))
        return 0;
    json_object *out = jx_new_str(answer), *ctx = hook_ctx(r);
    int n = rejections(r);
    json_object_object_add(ctx, "attempt", json_object_new_int(n + 1));
    int rc = guard_run(r->agent->path, "on_output", out, ctx, d);
    json_object_put(out);
    json_object_put(ctx);
    if (!rc && d->verdict != GUARD_ALLOW)
        *retry = n < r->agent->max_output_retries;
    return rc;
}

json_object *mguard_feedback(const guard_decision_t *d)
{
    char text[800];
    snprintf(text, sizeof text,
             "[guardrail] Your answer was rejected: %s. Answer the question again so that it "
             "passes this check.", d->reason[0] ? d->reason : "no reason given");
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", jx_new_str("user"));
    json_object_object_add(m, "content", jx_new_str(text));
    json_object_object_add(m, "agentd_guardrail", jx_new_str("on_output"));
    json_object_object_add(m, "agentd_reason", jx_new_str(d->reason));
    return m;
}
