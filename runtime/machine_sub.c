/*
 * machine_sub: sub-agents called as tools (docs/strategies.md).
 *
 * An agent that lists `agents = { "billing" }` gets a tool named billing whose call is a run
 * of agents/billing.lua of its own: a row in runs linked to the parent's call (subruns), its
 * limits the child agent's cut to what the parent has left, its trace nested under the
 * parent's execute_tool span (the child's invoke_agent span has that span as its parent).
 * The parent waits on it exactly like on any tool call: the registry's remote-tool door
 * (tools.h) starts it, times it out and cancels it.
 *
 * Crashes: the tool is registered idempotent, so a parent resumed with the call `running`
 * starts it again, and start finds the child by (parent run, call) instead of starting a
 * second one: a finished child answers at once, an unfinished one is resumed in this
 * process and waited on. A child resumed on its own (`agentd resume CHILD`) just finishes;
 * its parent picks the answer up when it is resumed.
 *
 * Re-entrancy: start runs from the parent's acting run hook; the child's end is seen from
 * mrun_release (msub_ended) and reported to the registry from a zero-delay event, never
 * inline.
 */
#include "jx.h"
#include "machine_int.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How an agent is reached: called as a tool, or handed the conversation (the tool
 * handoff_to_NAME); each is the ud of its registered tool. */
typedef struct msub_door {
    struct msub_agent *sa;
    int handoff;
    int registered;
} msub_door_t;

struct msub_agent {
    struct msub_agent *next;
    machine_t *m;
    agent_t *a; /* owned */
    msub_door_t as_tool, as_handoff;
};

#define HANDOFF_PREFIX "handoff_to_"

typedef struct msub_call {
    struct msub_agent *sa;
    tools_remote_done_fn done;
    void *done_ud;
    char parent[17];
    machine_run_t *child; /* referenced while it runs */
    int queued;           /* deliver() is pending */
    int cancelled;        /* the registry cancelled the call: deliver() only frees */
    int rc;
    json_object *result;
    char err[900];
    int64_t in_tokens, out_tokens;
    double cost;
    int model_calls;
} msub_call_t;

static machine_run_t *find_run(machine_t *m, const char *id)
{
    for (machine_run_t *r = m->runs; r; r = r->next)
        if (!strcmp(r->rec.id, id) && !r->dead)
            return r;
    return NULL;
}

/* ---- the child's outcome --------------------------------------------------------------- */

static void take_outcome(msub_call_t *h, const store_run_t *rec)
{
    const char *name = h->sa->a->name;
    h->in_tokens = rec->input_tokens;
    h->out_tokens = rec->output_tokens;
    h->cost = rec->cost_usd;
    h->model_calls = rec->model_calls;
    if (!strcmp(rec->state, "done")) {
        h->rc = 0;
        h->result = json_object_new_object();
        json_object_object_add(h->result, "agent", jx_new_str(name));
        json_object_object_add(h->result, "run_id", jx_new_str(rec->id));
        json_object_object_add(h->result, "answer", jx_new_str(rec->answer ? rec->answer : ""));
        return;
    }
    h->rc = ERR_STATE;
    if (!strcmp(rec->state, "waiting"))
        snprintf(h->err, sizeof h->err,
                 "the %s agent (run %s) stopped to wait for a person's "
                 "approval, so it has no answer yet (see agentd trace %s)",
                 name, rec->id, rec->id);
    else if (!strcmp(rec->state, "failed") || !strcmp(rec->state, "cancelled"))
        snprintf(h->err, sizeof h->err, "the %s agent (run %s) %s: %s%s%s%s", name, rec->id,
                 rec->state, rec->error ? rec->error : "no reason recorded",
                 rec->reason[0] ? " [" : "", rec->reason, rec->reason[0] ? "]" : "");
    else
        snprintf(h->err, sizeof h->err, "the %s agent (run %s) stopped in %s: %s", name, rec->id,
                 rec->state, rec->error ? rec->error : "no reason recorded");
}

static void deliver(void *arg)
{
    msub_call_t *h = arg;
    h->queued = 0;
    if (!h->cancelled) {
        /* The parent's totals include its children's: budgets are carved, usage adds up. */
        machine_run_t *p = find_run(h->sa->m, h->parent);
        if (p) {
            p->rec.input_tokens += h->in_tokens;
            p->rec.output_tokens += h->out_tokens;
            p->rec.cost_usd += h->cost;
            p->rec.model_calls += h->model_calls;
        }
        h->done(h->done_ud, h->rc, h->result, h->rc ? h->err : NULL);
    }
    json_object_put(h->result);
    free(h);
}

static int queue(msub_call_t *h)
{
    h->queued = 1;
    int rc = loop_defer(h->sa->m->lp, deliver, h);
    if (rc)
        h->queued = 0;
    return rc;
}

void msub_ended(machine_run_t *r)
{
    msub_call_t *h = r->waiter;
    if (!h)
        return;
    r->waiter = NULL;
    h->child = NULL;
    take_outcome(h, &r->rec);
    if (queue(h)) {
        /* Nothing can report the outcome now: the parent's call stays running and is
         * settled when the parent is resumed. */
        fprintf(stderr, "agentd: run %s: cannot report to its parent (out of memory)\n", r->rec.id);
    }
    mrun_unref(r);
}

static void attach(msub_call_t *h, machine_run_t *child)
{
    mrun_ref(child);
    child->waiter = h;
    h->child = child;
}

/* ---- the tool --------------------------------------------------------------------------- */

/* The child's limits: its own, cut to what the parent has left. */
static struct mlimits carve(const machine_run_t *p, const agent_t *a)
{
    struct mlimits l = {a->max_tokens, a->max_cost_usd, a->deadline_s, a->max_model_calls};
    if (p->lim.max_tokens >= 0) {
        int64_t left = p->lim.max_tokens - (p->rec.input_tokens + p->rec.output_tokens);
        left = left < 0 ? 0 : left;
        if (l.max_tokens < 0 || l.max_tokens > left)
            l.max_tokens = left;
    }
    if (p->lim.max_cost_usd >= 0) {
        double left = p->lim.max_cost_usd - p->rec.cost_usd;
        left = left < 0 ? 0 : left;
        if (l.max_cost_usd < 0 || l.max_cost_usd > left)
            l.max_cost_usd = left;
    }
    if (p->lim.max_model_calls >= 0) {
        int left = p->lim.max_model_calls - p->rec.model_calls;
        left = left < 0 ? 0 : left;
        if (l.max_model_calls < 0 || l.max_model_calls > left)
            l.max_model_calls = left;
    }
    double left_s = p->lim.deadline_s - (double)((int64_t)loop_wall_ns() - p->rec.created_ns) / 1e9;
    if (left_s < 0.001)
        left_s = 0.001;
    if (l.deadline_s > left_s)
        l.deadline_s = left_s;
    return l;
}

static int fail_now(msub_call_t *h, const char *msg)
{
    h->rc = ERR_STATE;
    snprintf(h->err, sizeof h->err, "%s", msg);
    return queue(h);
}

/* A call seen before (a resumed parent): the child it started answers, or is resumed. */
static int reattach(msub_call_t *h, const char *child_id)
{
    machine_t *m = h->sa->m;
    machine_run_t *r = find_run(m, child_id);
    if (r) {
        attach(h, r);
        return 0;
    }
    store_run_t rec;
    char err[600];
    mbatch_rows_write(m); /* the child may have ended in the open batch */
    int rc = store_run_get(m->st, child_id, &rec);
    if (rc) {
        snprintf(err, sizeof err, "the %s agent's run %s cannot be read: %s", h->sa->a->name,
                 child_id, store_why(m->st, rc));
        return fail_now(h, err);
    }
    int st = machine_state_parse(rec.state);
    if (st >= 0 && (machine_state_terminal((machine_state_t)st) || st == MS_WAITING)) {
        take_outcome(h, &rec);
        store_run_clear(&rec);
        return queue(h);
    }
    store_run_clear(&rec);
    if (machine_resume(m, h->sa->a, child_id, err, sizeof err) || !(r = find_run(m, child_id)))
        return fail_now(h, err);
    attach(h, r);
    return 0;
}

static int sub_start(void *ud, json_object *args, uint64_t deadline_ns,
                     const tools_call_info_t *info, tools_remote_done_fn done, void *done_ud,
                     void **out)
{
    (void)deadline_ns; /* the child's own deadline is carved from the parent's */
    msub_door_t *door = ud;
    struct msub_agent *sa = door->sa;
    machine_t *m = sa->m;
    machine_run_t *p = info && info->run_id ? find_run(m, info->run_id) : NULL;
    if (!p)
        return ERR_STATE; /* only a run of this machine calls a sub-agent */
    msub_call_t *h = calloc(1, sizeof *h);
    if (!h)
        return ERR_NOMEM;
    h->sa = sa;
    h->done = done;
    h->done_ud = done_ud;
    snprintf(h->parent, sizeof h->parent, "%.16s", p->rec.id);
    char child[40], err[700];
    int rc = store_subrun_find(m->st, p->rec.id, info->call_id, child);
    if (rc == 0) {
        rc = reattach(h, child);
    } else if (rc == ERR_NOTFOUND) {
        const char *span = "";
        for (size_t i = 0; i < p->ncalls; i++)
            if (!strcmp(p->calls[i].id, info->call_id))
                span = p->calls[i].span;
        msub_link_t l = {p->rec.id, info->call_id, span, carve(p, sa->a),
                         door->handoff ? p->messages : NULL};
        /* The child runs for the same user (its long-term memory, docs/memory.md). */
        machine_start_opts_t so = {.link = &l, .user = p->user};
        const char *req = jx_str(args, "request");
        char id[17], *handed = NULL;
        /* A handoff gives the other agent the conversation so far (l.history) and the
         * customer's own words of this turn, with the note. */
        if (door->handoff && asprintf(&handed, "%s\n\n(Handed over by the %s agent: %s)",
                                      p->rec.input, p->agent->name, req ? req : "") < 0)
            handed = NULL;
        rc = machine_start_ex(m, sa->a, handed ? handed : req ? req : "", &so, id, err, sizeof err);
        free(handed);
        machine_run_t *r = rc ? NULL : find_run(m, id);
        rc = r ? (attach(h, r), 0) : fail_now(h, err);
    } else {
        snprintf(err, sizeof err, "cannot look up the %s agent's run: %s", sa->a->name,
                 store_why(m->st, rc));
        rc = fail_now(h, err);
    }
    if (rc) {
        free(h);
        return rc;
    }
    *out = h;
    return 0;
}

/* The registry cancels (the parent was cancelled, or the call timed out): so is the child. */
static void sub_cancel(void *handle)
{
    msub_call_t *h = handle;
    if (!h)
        return;
    if (h->queued) {
        h->cancelled = 1;
        return;
    }
    machine_run_t *c = h->child;
    if (c) {
        c->waiter = NULL;
        h->child = NULL;
        mrun_cancel(c, "cancelled: the parent run's call to this agent was cancelled");
        mrun_unref(c);
    }
    json_object_put(h->result);
    free(h);
}

static const tools_remote_ops_t sub_ops = {
    .cancel = sub_cancel,
};

/* ---- loading ---------------------------------------------------------------------------- */

static int register_tool(machine_t *m, msub_door_t *door, char *errbuf, size_t errlen)
{
    const agent_t *a = door->sa->a;
    char desc[1200], pdesc[200], name[80];
    if (door->registered)
        return 0;
    if (door->handoff) {
        snprintf(name, sizeof name, HANDOFF_PREFIX "%s", a->name);
        snprintf(desc, sizeof desc,
                 "Hand the conversation over to the %s agent%s%s. Use it "
                 "when the request belongs there: that agent answers the customer, and its "
                 "answer ends this run.",
                 a->name, a->description ? ": " : "", a->description ? a->description : "");
        snprintf(pdesc, sizeof pdesc, "a note for the %s agent: why it gets the conversation",
                 a->name);
    } else {
        snprintf(name, sizeof name, "%s", a->name);
        snprintf(desc, sizeof desc,
                 "Delegate to the %s agent%s%s. It works on its own, with "
                 "its own tools and limits, and replies with its findings.",
                 a->name, a->description ? ": " : "", a->description ? a->description : "");
        snprintf(pdesc, sizeof pdesc,
                 "the task for the %s agent, in full: it does not see "
                 "this conversation",
                 a->name);
    }
    json_object *params = json_object_new_object(), *props = json_object_new_object(),
                *req = json_object_new_object(), *required = json_object_new_array();
    json_object_object_add(req, "type", jx_new_str("string"));
    json_object_object_add(req, "minLength", json_object_new_int(1));
    json_object_object_add(req, "description", jx_new_str(pdesc));
    json_object_object_add(props, "request", req);
    json_object_array_add(required, jx_new_str("request"));
    json_object_object_add(params, "type", jx_new_str("object"));
    json_object_object_add(params, "properties", props);
    json_object_object_add(params, "required", required);
    json_object_object_add(params, "additionalProperties", json_object_new_boolean(0));
    char origin[1100];
    snprintf(origin, sizeof origin, "agent:%s", a->path);
    tools_remote_def_t d = {
        .name = name,
        .description = desc,
        .params = params,
        .origin = origin,
        /* The registry's timeout is a backstop: the child's own deadline stops it first. */
        .timeout_ms = (long)(a->deadline_s * 1000) + 5000,
        .idempotent = 1, /* re-started on resume, it finds its child again (sub_start) */
        .ops = &sub_ops,
        .ud = door,
        .start_call = sub_start,
    };
    int rc = tools_add_remote(m->tl, &d, errbuf, errlen);
    json_object_put(params);
    door->registered = !rc;
    return rc;
}

static int name_listed(json_object *arr, const char *name)
{
    for (size_t k = 0; k < json_object_array_length(arr); k++)
        if (!strcmp(json_object_get_string(json_object_array_get_idx(arr, k)), name))
            return 1;
    return 0;
}

static int attach_agent(machine_t *m, agent_t *a, int depth, char *errbuf, size_t errlen);

/* The agent NAME.lua beside a, loaded once per machine. */
static int load_sub(machine_t *m, agent_t *a, const char *name, int depth, struct msub_agent **out,
                    char *errbuf, size_t errlen)
{
    char path[4200], err[1024];
    snprintf(path, sizeof path, "%s/%s.lua", a->dir, name);
    struct msub_agent *sa = m->subs;
    while (sa && strcmp(sa->a->name, name) != 0)
        sa = sa->next;
    if (sa) {
        *out = sa;
        return 0;
    }
    const tool_t *clash = tools_get(m->tl, name);
    if (clash)
        return err_set(errbuf, errlen, ERR_INVAL,
                       "%s: agents: \"%s\" is also the name of the "
                       "tool %s; rename one of them",
                       a->path, name, tool_path(clash));
    agent_t *child = agent_load(path, err, sizeof err);
    if (!child)
        return err_set(errbuf, errlen, ERR_INVAL, "%s: agents: %s", a->path, err);
    if (strcmp(child->name, name) != 0) {
        err_set(errbuf, errlen, ERR_INVAL,
                "%s: agents: %s names itself \"%s\"; the file and "
                "the name must agree",
                a->path, path, child->name);
        agent_free(child);
        return ERR_INVAL;
    }
    for (size_t k = 0; k < json_object_array_length(child->tools); k++) {
        const char *t = json_object_get_string(json_object_array_get_idx(child->tools, k));
        if (!tools_get(m->tl, t)) {
            err_set(errbuf, errlen, ERR_NOTFOUND,
                    "%s: agents: %s: tools[%zu]: no tool named "
                    "\"%s\"",
                    a->path, child->path, k + 1, t);
            agent_free(child);
            return ERR_NOTFOUND;
        }
    }
    if (!(sa = calloc(1, sizeof *sa))) {
        agent_free(child);
        return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
    }
    sa->m = m;
    sa->a = child;
    sa->as_tool = (msub_door_t){sa, 0, 0};
    sa->as_handoff = (msub_door_t){sa, 1, 0};
    sa->next = m->subs;
    m->subs = sa;
    *out = sa;
    return attach_agent(m, child, depth + 1, errbuf, errlen);
}

/* a's agents (called as tools) and handoffs become tools its runs may call. */
static int attach_agent(machine_t *m, agent_t *a, int depth, char *errbuf, size_t errlen)
{
    if (depth > 8)
        return err_set(errbuf, errlen, ERR_INVAL, "%s: agents: nested more than 8 deep", a->path);
    for (int handoff = 0; handoff < 2; handoff++) {
        json_object *list = handoff ? a->handoffs : a->agents;
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
            const char *name = json_object_get_string(json_object_array_get_idx(list, i));
            struct msub_agent *sa = NULL;
            int rc = load_sub(m, a, name, depth, &sa, errbuf, errlen);
            if (!rc)
                rc = register_tool(m, handoff ? &sa->as_handoff : &sa->as_tool, errbuf, errlen);
            if (rc)
                return rc;
            char tool[80];
            snprintf(tool, sizeof tool, "%s%s", handoff ? HANDOFF_PREFIX : "", name);
            if (!name_listed(a->tools, tool))
                json_object_array_add(a->tools, jx_new_str(tool));
        }
    }
    return 0;
}

int machine_add_agents(machine_t *m, agent_t *a, char *errbuf, size_t errlen)
{
    return attach_agent(m, a, 0, errbuf, errlen);
}

void msub_free_all(machine_t *m)
{
    while (m->subs) {
        struct msub_agent *n = m->subs->next;
        agent_free(m->subs->a);
        free(m->subs);
        m->subs = n;
    }
}

/* ---- durable link ----------------------------------------------------------------------- */

int msub_stage_link(machine_run_t *r, const msub_link_t *l)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "max_tokens", json_object_new_int64(l->lim.max_tokens));
    json_object_object_add(o, "max_cost_usd", jx_new_num(l->lim.max_cost_usd));
    json_object_object_add(o, "deadline_s", jx_new_num(l->lim.deadline_s));
    json_object_object_add(o, "max_model_calls", json_object_new_int(l->lim.max_model_calls));
    int rc = store_subrun_add(r->m->st, r->rec.id, l->parent_run, l->parent_call,
                              json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return rc;
}

int msub_stage_history(machine_run_t *r, json_object *history)
{
    size_t n = json_object_array_length(history);
    /* Everything before this turn's request, which the handoff's input repeats. */
    size_t last_user = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(jx_str_or(json_object_array_get_idx(history, i), "role", ""), "user"))
            last_user = i;
    return mrun_stage_history(r, history, last_user, 0);
}

int msub_load(machine_run_t *r)
{
    char parent[40], call[64], *limits = NULL;
    int rc = store_subrun_parent(r->m->st, r->rec.id, parent, call, &limits);
    if (rc == ERR_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    snprintf(r->parent_run, sizeof r->parent_run, "%.16s", parent);
    json_object *o = limits ? jx_parse(limits) : NULL;
    free(limits);
    if (o) {
        r->lim.max_tokens = jx_int(o, "max_tokens", r->lim.max_tokens);
        json_object *v = jx_get(o, "max_cost_usd");
        if (v)
            r->lim.max_cost_usd = json_object_get_double(v);
        if ((v = jx_get(o, "deadline_s")))
            r->lim.deadline_s = json_object_get_double(v);
        r->lim.max_model_calls = (int)jx_int(o, "max_model_calls", r->lim.max_model_calls);
    }
    json_object_put(o);
    return 0;
}

int msub_handoff_answer(machine_run_t *r)
{
    for (size_t i = 0; i < r->ncalls; i++) {
        tcall_t *c = &r->calls[i];
        if (c->state != TC_OK || !c->name ||
            strncmp(c->name, HANDOFF_PREFIX, strlen(HANDOFF_PREFIX)) != 0 || !r->agent->handoffs ||
            !name_listed(r->agent->handoffs, c->name + strlen(HANDOFF_PREFIX)))
            continue;
        json_object *res = c->result ? jx_parse(c->result) : NULL;
        const char *answer = jx_str(res, "answer");
        if (answer) {
            free(r->rec.answer);
            r->rec.answer = strdup(answer);
            snprintf(r->rec.reason, sizeof r->rec.reason, "handoff");
        }
        json_object_put(res);
        if (answer)
            return 1;
    }
    return 0;
}

int msub_write_handoff(machine_run_t *r, void *arg)
{
    (void)arg;
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", jx_new_str("assistant"));
    json_object_object_add(m, "content", jx_new_str(r->rec.answer));
    int rc = mact_stage_message(r, m);
    json_object_put(m);
    return rc;
}
