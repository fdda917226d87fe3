/*
 * machine_run: the entry points that bring a run onto the loop — start a new one, resume
 * one from the database, record an approval decision, cancel — and the run deadline.
 */
#include "jx.h"
#include "machine_int.h"
#include "prompt/prompt.h"

#include "err.h"
#include "text.h"
#include "trace_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* The run's chain: the agent's model (or the override) first, then the agent's fallbacks
 * that differ from it: --model changes which model is tried first, not whether a provider
 * outage can still be answered. */
static int set_models(machine_run_t *r, const char *override_model)
{
    const agent_t *a = r->agent;
    const char *chain[64];
    size_t n = 0;
    chain[n++] = override_model ? override_model : a->models[0];
    for (char **m = a->models + 1; *m && n < sizeof chain / sizeof chain[0]; m++)
        if (strcmp(*m, chain[0]) != 0)
            chain[n++] = *m;
    /* One buffer: the pointer array, then the NUL-terminated names it points into. */
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(chain[i]) + 1;
    r->models_buf = malloc((n + 1) * sizeof(char *) + bytes);
    if (!r->models_buf)
        return ERR_NOMEM;
    const char **ptrs = (const char **)(void *)r->models_buf;
    char *p = r->models_buf + (n + 1) * sizeof(char *);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(chain[i]) + 1;
        memcpy(p, chain[i], l);
        ptrs[i] = p;
        p += l;
    }
    ptrs[n] = NULL;
    r->models = ptrs;
    return 0;
}

/* 48 bits of wall-clock milliseconds, then 16 bits from a per-process counter that starts
 * at a random value: ids sort by creation, a process never repeats one (up to 65,536 runs
 * per millisecond), and two processes collide only by chance — machine_start retries then. */
static void new_run_id(machine_t *m, char id[17])
{
    if (!m->id_seeded) {
        if (getrandom(&m->id_counter, sizeof m->id_counter, 0) != (ssize_t)sizeof m->id_counter)
            m->id_counter = (uint16_t)loop_mono_ns();
        m->id_seeded = 1;
    }
    uint64_t ms = loop_wall_ns() / 1000000;
    snprintf(id, 17, "%012llx%04x", (unsigned long long)(ms & 0xffffffffffffull),
             (unsigned)m->id_counter++);
}

static void deadline_fired(void *arg);

/* A run without its deadline timer could outlive limits.deadline_s: stop it instead. */
static int arm_deadline(machine_run_t *r)
{
    int64_t left_ms = (int64_t)(r->lim.deadline_s * 1000) -
                      ((int64_t)loop_wall_ns() - r->rec.created_ns) / 1000000;
    if (left_ms < 0)
        left_ms = 0;
    int rc = loop_after(r->m->lp, (uint64_t)left_ms + 1, deadline_fired, r, &r->deadline);
    if (rc)
        mrun_abort(r, "cannot arm the run's deadline timer (out of memory)");
    return rc;
}

/* Append the earlier turns' messages of r's session to r->messages (right after the system
 * prompt, before this turn's own messages, which are appended after). */
static int load_history_msg(void *ud, int64_t turn, const char *json)
{
    (void)turn;
    machine_run_t *r = ud;
    json_object *o = jx_parse(json);
    if (!o)
        return ERR_PROTO;
    json_object_array_add(r->messages, o);
    r->hist_n++;
    return 0;
}

int mrun_stage_history(machine_run_t *r, json_object *history, size_t n, int with_system)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        json_object *m = json_object_array_get_idx(history, i);
        const char *role = jx_str_or(m, "role", ""), *text = jx_str(m, "content");
        if (!text || !*text || jx_get(m, "tool_calls") ||
            (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0 &&
             (!with_system || strcmp(role, "system") != 0)))
            continue;
        json_object *c = json_object_new_object();
        json_object_object_add(c, "role", jx_new_str(role));
        json_object_object_add(c, "content", jx_new_str(text));
        rc = mact_stage_message(r, c);
        json_object_put(c);
    }
    return rc;
}

static int write_new_run(machine_run_t *r, const char *input, const char *system_prompt,
                         const machine_start_opts_t *so)
{
    int pin = so && so->pin;
    const msub_link_t *link = so ? so->link : NULL;
    machine_t *m = r->m;
    const agent_t *a = r->agent;
    int rc = store_run_insert(m->st, &r->rec);
    if (!rc) /* no fence for a row this batch inserts: its units' writes wait for the flush */
        r->row_seq = m->batch_seq;
    if (!rc && link)
        rc = msub_stage_link(r, link);
    if (!rc && r->user[0])
        rc = store_run_user_put(m->st, r->rec.id, r->user);
    if (!rc && so && so->batch_id)
        rc = store_batch_take(m->st, so->batch_id, so->batch_n, r->rec.id);
    if (!rc && r->session[0]) {
        char busy[40], bstate[16];
        rc = store_session_join(m->st, r->session, a->name, r->rec.id, r->rec.created_ns, busy,
                                bstate);
    }
    json_object *sys = json_object_new_object(), *user = json_object_new_object();
    json_object_object_add(sys, "role", jx_new_str("system"));
    json_object_object_add(sys, "content", jx_new_str(system_prompt));
    json_object_object_add(user, "role", jx_new_str("user"));
    json_object_object_add(user, "content", jx_new_str(input));
    if (pin)
        json_object_object_add(user, "pinned", json_object_new_boolean(1));
    json_object *msgs[2] = {sys, user};
    for (int i = 0; !rc && i < 2; i++) {
        rc = store_message_add(m->st, r->rec.id, r->rec.msg_count,
                               json_object_to_json_string_ext(msgs[i], JSON_C_TO_STRING_PLAIN));
        if (!rc) {
            r->rec.msg_count++;
            json_object_array_add(r->messages, json_object_get(msgs[i]));
        }
        if (!rc && i == 0 && r->session[0])
            rc = store_session_history(m->st, r->rec.id, load_history_msg, r);
        if (!rc && i == 0 && link && link->history)
            rc = msub_stage_history(r, link->history);
        if (!rc && i == 0 && so && so->history)
            rc = mrun_stage_history(r, so->history, json_object_array_length(so->history), 1);
    }
    json_object_put(sys);
    json_object_put(user);
    if (rc)
        return rc;
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "gen_ai.agent.name", jx_new_str(a->name));
    json_object_object_add(attrs, "gen_ai.conversation.id",
                           jx_new_str(r->session[0] ? r->session : r->rec.id));
    if (r->session[0])
        json_object_object_add(attrs, "agentd.session.history_messages",
                               json_object_new_int(r->hist_n));
    json_object_object_add(attrs, "gen_ai.request.model", jx_new_str(r->models[0]));
    json_object_object_add(attrs, "agentd.agent.path", jx_new_str(a->path));
    json_object_object_add(attrs, "agentd.prompt_hash", jx_new_str(a->prompt_hash));
    if (a->prompt_file)
        json_object_object_add(attrs, "agentd.prompt_file", jx_new_str(a->prompt_file));
    json_object_object_add(attrs, "agentd.input", jx_new_str(input));
    for (const char *const *l = so ? so->labels : NULL; !rc && l && l[0] && l[1]; l += 2) {
        char key[160];
        snprintf(key, sizeof key, "agentd.label.%s", l[0]);
        json_object_object_add(attrs, key, jx_new_str(l[1]));
        rc = store_label_put(m->st, r->rec.id, l[0], l[1]);
    }
    if (rc) {
        json_object_put(attrs);
        return rc;
    }
    if (link)
        json_object_object_add(attrs, "agentd.parent_run_id", jx_new_str(link->parent_run));
    char name[200];
    snprintf(name, sizeof name, "invoke_agent %s", a->name);
    trace_ev_t e = {
        .span_id = r->rec.id,
        .parent_id = link ? link->parent_span : NULL, /* nested under the parent's call */
        .phase = "begin",
        .op = "invoke_agent",
        .name = name,
        .attrs = attrs,
    };
    rc = mstage_event(r, &e);
    json_object_put(attrs);
    return rc;
}

int machine_start(machine_t *m, const agent_t *agent, const char *input, char run_id[17],
                  char *errbuf, size_t errlen)
{
    return machine_start_ex(m, agent, input, NULL, run_id, errbuf, errlen);
}

static int start_run(machine_t *m, const agent_t *agent, const char *input,
                     const machine_start_opts_t *so, char run_id[17], char *errbuf,
                     size_t errlen);

/* A failure while starting is the caller's to report, once (errbuf): the run aborts quietly. */
int machine_start_ex(machine_t *m, const agent_t *agent, const char *input,
                     const machine_start_opts_t *so, char run_id[17], char *errbuf,
                     size_t errlen)
{
    m->starting = 1;
    int rc = start_run(m, agent, input, so, run_id, errbuf, errlen);
    m->starting = 0;
    return rc;
}

static int start_run(machine_t *m, const agent_t *agent, const char *input,
                     const machine_start_opts_t *so, char run_id[17], char *errbuf,
                     size_t errlen)
{
    if (!input || !*input)
        return err_set(errbuf, errlen, ERR_INVAL, "input is empty: give the agent a question");
    /* Whatever door it came through (CLI, batch, server, eval): it is stored, traced and
     * sent to models as JSON text. */
    if (text_check(input, strlen(input), "input", errbuf, errlen))
        return ERR_INVAL;
    const char *session = so && so->session && *so->session ? so->session : NULL;
    if (so && so->user && strlen(so->user) >= sizeof ((machine_run_t *)0)->user)
        return err_set(errbuf, errlen, ERR_INVAL, "user name longer than 127 bytes");
    if (session) {
        /* Checked again inside the transaction (store_session_join): this one is for the
         * message; the one there makes two writers in two processes safe. */
        char busy[40], bstate[16];
        if (strlen(session) >= sizeof ((machine_run_t *)0)->session)
            return err_set(errbuf, errlen, ERR_INVAL, "session name longer than 127 bytes");
        mbatch_rows_write(m); /* its latest turn may have ended in the open batch */
        int brc = store_busy_rc(m->st, store_session_check(m->st, session, busy, bstate));
        if (brc == ERR_BUSY)
            return err_set(errbuf, errlen, ERR_BUSY,
                           "session %s: its latest turn (run %s) is still %s; one turn at a "
                           "time: wait for it, or `agentd resume %s` / cancel it",
                           session, busy, bstate, busy);
        if (brc)
            return err_set(errbuf, errlen, brc, "session %s: %s", session, store_why(m->st, brc));
    }
    /* The prompt is complete before anything is recorded: a missing variable is the
     * caller's error, not a run that fails at its first model call. */
    char *sys = NULL, perr[400];
    int prc = prompt_render(agent->system_prompt, so ? so->vars : NULL, agent->vars, &sys, perr,
                            sizeof perr);
    if (prc)
        return err_set(errbuf, errlen, prc, "%s: %s",
                       agent->prompt_file ? agent->prompt_file : agent->path, perr);
    machine_run_t *r = mrun_new(m, agent);
    /* --model is for the agent that was run; a sub-agent's run uses its own agent's model. */
    if (!r || set_models(r, so && so->link ? NULL : so && so->model ? so->model : m->o.model)) {
        free(sys);
        goto nomem;
    }
    if (so && so->temperature_set) {
        r->temp_set = 1;
        r->temperature = so->temperature;
    }
    if (session)
        snprintf(r->session, sizeof r->session, "%s", session);
    if (so && so->link) {
        snprintf(r->parent_run, sizeof r->parent_run, "%s", so->link->parent_run);
        snprintf(r->parent_span, sizeof r->parent_span, "%s", so->link->parent_span);
        r->lim = so->link->lim;
    }
    if (so && so->user && *so->user) /* its length was checked above */
        snprintf(r->user, sizeof r->user, "%s", so->user);
    new_run_id(m, r->rec.id);
    snprintf(r->rec.agent, sizeof r->rec.agent, "%s", agent->name);
    snprintf(r->rec.agent_path, sizeof r->rec.agent_path, "%s", agent->path);
    snprintf(r->rec.model, sizeof r->rec.model, "%s", r->models[0]);
    snprintf(r->rec.state, sizeof r->rec.state, "created");
    snprintf(r->rec.owner, sizeof r->rec.owner, "%s", m->owner);
    r->rec.input = strdup(input);
    r->rec.spec = strdup(json_object_to_json_string_ext(agent->spec, JSON_C_TO_STRING_PLAIN));
    r->rec.created_ns = r->rec.updated_ns = (int64_t)loop_wall_ns();
    r->state = MS_CREATED;
    r->fresh = 1;
    if (!r->rec.input || !r->rec.spec) {
        free(sys);
        goto nomem;
    }
    int rc = mstage_begin(r);
    if (rc) { /* a lock held past the busy timeout is a database error, not a busy session */
        free(sys);
        return err_set(errbuf, errlen, rc == ERR_BUSY ? ERR_IO : rc,
                       "cannot start a database transaction: %s", store_why(m->st, rc));
    }
    rc = write_new_run(r, input, sys, so);
    for (int tries = 0; rc == ERR_STATE && tries < 5; tries++) {
        /* Another process took this id in the same millisecond: take the next one. The
         * insert is write_new_run's first write, so nothing else was staged. */
        store_sp_rollback(m->st);
        new_run_id(m, r->rec.id);
        rc = store_sp_begin(m->st);
        if (!rc)
            rc = write_new_run(r, input, sys, so);
    }
    free(sys);
    if ((rc = menter(r, rc))) /* a lock past the busy timeout: exit 4, not a busy session */
        return err_set(errbuf, errlen, store_busy_rc(m->st, rc), "cannot record the run: %s",
                       store_why(m->st, rc));
    snprintf(run_id, 17, "%.16s", r->rec.id);
    if (arm_deadline(r))
        return err_set(errbuf, errlen, ERR_NOMEM, "run %s: cannot arm its deadline", run_id);
    return 0;
nomem:
    if (r)
        mrun_release(r);
    return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
}

/* ---- resume ------------------------------------------------------------------------ */

static int load_message(void *ud, int64_t n, const char *json)
{
    (void)n;
    machine_run_t *r = ud;
    json_object *o = jx_parse(json);
    if (!o)
        return 1;
    json_object_array_add(r->messages, o);
    return 0;
}

typedef struct load_calls {
    machine_run_t *r;
    size_t cap;
} load_calls_t;

/* One more call of name with args, for loop detection. */
static void count_sig(machine_run_t *r, const char *name, const char *args)
{
    char sig[2048];
    json_object *a = jx_parse(args);
    snprintf(sig, sizeof sig, "%s\x1f%s", name,
             a ? json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE)
               : (args ? args : ""));
    json_object_put(a);
    callsig_add(&r->sigs, sig);
}

static int load_call(void *ud, const store_toolcall_t *tc)
{
    load_calls_t *lc = ud;
    machine_run_t *r = lc->r;
    int state = tcall_state_parse(tc->state);
    if (state < 0) {
        fprintf(stderr, "agentd: run %s: tool call %s has an unknown state \"%s\"\n",
                r->rec.id, tc->call_id, tc->state);
        return 1;
    }
    if (state != TC_REJECTED && state != TC_PENDING && state != TC_AWAITING_APPROVAL)
        count_sig(r, tc->name, tc->args);
    if (tc->step != r->rec.step)
        return 0;
    if (r->ncalls == lc->cap) {
        size_t ncap = lc->cap ? lc->cap * 2 : 4;
        tcall_t *nc = realloc(r->calls, ncap * sizeof *nc);
        if (!nc)
            return 1;
        r->calls = nc;
        lc->cap = ncap;
    }
    tcall_t *c = &r->calls[r->ncalls++];
    memset(c, 0, sizeof *c);
    c->r = r;
    snprintf(c->id, sizeof c->id, "%s", tc->call_id);
    /* Rows written before wire ids were kept used the model's id as the call id. */
    snprintf(c->wire, sizeof c->wire, "%s", tc->wire_id[0] ? tc->wire_id : tc->call_id);
    c->state = (tcall_state_t)state;
    snprintf(c->idem, sizeof c->idem, "%s", tc->idem_key);
    c->name = strdup(tc->name);
    c->args = strdup(tc->args ? tc->args : "{}");
    c->result = tc->result ? strdup(tc->result) : NULL;
    c->error = tc->error ? strdup(tc->error) : NULL;
    c->ord = tc->ord;
    c->started_ns = tc->started_ns;
    c->ended_ns = tc->ended_ns;
    c->attempts = tc->attempts;
    return 0;
}

/* The span of the state the run is in: the span_id of its last transition event, so a
 * resumed run continues the same trace tree. */
typedef struct replay {
    machine_run_t *r;
    trace_rewrite_t *w;
} replay_t;

static int find_state_span(void *ud, int64_t n, const char *json)
{
    (void)n;
    replay_t *rp = ud;
    machine_run_t *r = rp->r;
    if (rp->w)
        trace_rewrite_line(rp->w, json);
    if (!strstr(json, "\"state_to\""))
        return 0;
    json_object *o = jx_parse(json), *v;
    if (o && json_object_object_get_ex(o, "span_id", &v))
        snprintf(r->state_span, sizeof r->state_span, "%s", json_object_get_string(v));
    json_object_put(o);
    return 0;
}

/* A call found `running` was interrupted by the crash: re-run it only if the tool says it
 * is idempotent; otherwise its outcome is unknown and the model is told so. */
static int settle_interrupted(machine_run_t *r)
{
    for (size_t i = 0; i < r->ncalls; i++) {
        tcall_t *c = &r->calls[i];
        const tool_t *tl = tools_get(r->m->tl, c->name);
        if (c->state == TC_RUNNING && tl && tool_idempotent(tl)) {
            int rc = tcall_set(c, TC_APPROVED); /* passed guardrails already */
            if (rc)
                return rc;
            r->rec.tool_calls--; /* counted again when started */
        }
    }
    return tcalls_mark_unknown(r, "outcome unknown: agentd stopped while this call was running, "
                                  "and the tool is not idempotent, so it was not run again");
}

/* A human decision, applied by machine_decide inside the resume's unit. */
typedef struct decision {
    const char *call_id;
    int approve;
    const char *reason;
    const char *args; /* approve with these arguments instead of the model's; NULL: as asked */
} decision_t;

/* The decision's call row and guardrail event, staged before the resume event. */
static int stage_decision(machine_run_t *r, const decision_t *d)
{
    tcall_t *c = NULL;
    for (size_t i = 0; i < r->ncalls && !c; i++)
        if (strcmp(r->calls[i].id, d->call_id) == 0 &&
            r->calls[i].state == TC_AWAITING_APPROVAL)
            c = &r->calls[i];
    if (!c)
        return ERR_NOTFOUND; /* checked before the run was loaded */
    char msg[600];
    snprintf(msg, sizeof msg, "denied by operator: %s",
             d->reason && *d->reason ? d->reason : "no reason given");
    int rc = tcall_set(c, d->approve ? TC_APPROVED : TC_REJECTED);
    if (rc)
        return rc;
    char *before = NULL;
    if (d->approve && d->args) {
        /* Checked against the tool's schema before the run was claimed (check_decision);
         * stored canonical, as the tool will receive them. */
        json_object *a = NULL;
        char why[600];
        const tool_t *tl = tools_get(r->m->tl, c->name);
        if (!tl || tool_check_args(tl, d->args, &a, why, sizeof why) != 0)
            return ERR_SCHEMA;
        before = c->args;
        c->args = strdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(a);
        if (!c->args) {
            c->args = before;
            return ERR_NOMEM;
        }
    }
    if (d->approve) {
        count_sig(r, c->name, c->args); /* an approved call counts for loop detection */
    } else {
        free(c->error);
        c->error = strdup(msg);
        if (!c->error)
            return ERR_NOMEM;
        c->started_ns = c->ended_ns = (int64_t)loop_wall_ns();
    }
    rc = tcall_stage_row(r, c);
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "agentd.guardrail", jx_new_str(d->approve ? "approved" : "denied"));
    json_object_object_add(attrs, "gen_ai.tool.name", jx_new_str(c->name));
    json_object_object_add(attrs, "gen_ai.tool.call.id", jx_new_str(c->id));
    if (d->reason)
        json_object_object_add(attrs, "agentd.reason", jx_new_str(d->reason));
    if (before) {
        json_object_object_add(attrs, "agentd.args_edited", json_object_new_boolean(1));
        json_object_object_add(attrs, "agentd.args_before", jx_new_str(before));
        json_object_object_add(attrs, "gen_ai.tool.call.arguments", jx_new_str(c->args));
        free(before);
    }
    trace_ev_t e = {
        .span_id = r->rec.id,
        .phase = "point",
        .op = "guardrail",
        .name = d->approve ? "guardrail approved" : "guardrail denied",
        .step = r->rec.step,
        .status = d->approve ? "ok" : "error",
        .error = d->approve ? NULL : msg,
        .attrs = attrs,
    };
    if (!rc)
        rc = mstage_event(r, &e);
    json_object_put(attrs);
    return rc;
}

typedef struct find_call {
    const char *call_id;
    int step;
    int awaiting;
    int found;
    char name[128];
} find_call_t;

static int find_call(void *ud, const store_toolcall_t *tc)
{
    find_call_t *f = ud;
    if (strcmp(tc->call_id, f->call_id) != 0 || tc->step != f->step)
        return 0;
    f->found = 1;
    f->awaiting = tcall_state_parse(tc->state) == TC_AWAITING_APPROVAL;
    snprintf(f->name, sizeof f->name, "%s", tc->name);
    return 1;
}

/* A decision is for a waiting run and one of its calls awaiting approval; said before the
 * run is claimed or loaded. */
static int check_decision(machine_t *m, const store_run_t *rec, const decision_t *d,
                          char *errbuf, size_t errlen)
{
    if (strcmp(rec->state, "waiting") != 0)
        return err_set(errbuf, errlen, ERR_STATE, "run %s is %s, not waiting for an approval",
                       rec->id, rec->state);
    find_call_t f = {.call_id = d->call_id, .step = rec->step};
    int rc = store_toolcalls_each(m->st, rec->id, find_call, &f);
    if (rc)
        return err_set(errbuf, errlen, rc, "run %s: %s", rec->id, store_why(m->st, rc));
    if (!f.found || !f.awaiting)
        return err_set(errbuf, errlen, ERR_NOTFOUND,
                       "run %s: call %s is not awaiting approval (see `agentd trace %s`)",
                       rec->id, d->call_id, rec->id);
    if (d->args) {
        const tool_t *tl = tools_get(m->tl, f.name);
        json_object *a = NULL;
        char why[600];
        if (!tl)
            return err_set(errbuf, errlen, ERR_NOTFOUND, "--args: tool %s is not loaded", f.name);
        rc = tool_check_args(tl, d->args, &a, why, sizeof why);
        json_object_put(a);
        if (rc)
            return err_set(errbuf, errlen, rc == ERR_NOMEM ? rc : ERR_INVAL,
                           "--args for %s (call %s): %s", f.name, d->call_id, why);
    }
    return 0;
}

/* Load a run from the database, claim it, and enter its state: the one way back in for
 * `resume`, `approve` and `deny` (d: the decision, or NULL). */
/* A resumed run that is a session turn gets the earlier turns back between its system
 * prompt and its own messages, as at its start. */
static int insert_history(machine_run_t *r)
{
    int rc = store_session_of(r->m->st, r->rec.id, r->session);
    if (rc)
        return rc == ERR_NOTFOUND ? 0 : rc;
    json_object *own = r->messages;
    r->messages = json_object_new_array();
    if (!r->messages) {
        r->messages = own;
        return ERR_NOMEM;
    }
    size_t n = json_object_array_length(own);
    if (n)
        json_object_array_add(r->messages, json_object_get(json_object_array_get_idx(own, 0)));
    rc = store_session_history(r->m->st, r->rec.id, load_history_msg, r);
    for (size_t i = 1; !rc && i < n; i++)
        json_object_array_add(r->messages, json_object_get(json_object_array_get_idx(own, i)));
    if (rc) {
        json_object_put(r->messages);
        r->messages = own;
        r->hist_n = 0;
        return rc;
    }
    json_object_put(own);
    return 0;
}

static int resume_run(machine_t *m, const agent_t *agent, const char *run_id,
                      const decision_t *d, char *errbuf, size_t errlen)
{
    store_run_t rec;
    mbatch_rows_write(m); /* the run, or its session's turns, may have a row owed */
    int rc = store_run_get(m->st, run_id, &rec);
    if (rc == ERR_NOTFOUND)
        return err_set(errbuf, errlen, rc, "run %s: no such run in this database", run_id);
    if (rc == ERR_INVAL)
        return err_set(errbuf, errlen, rc, "run %s: ambiguous id prefix; give more characters",
                       run_id);
    if (rc)
        return err_set(errbuf, errlen, rc, "run %s: %s", run_id, store_why(m->st, rc));
    for (machine_run_t *x = m->runs; x; x = x->next)
        if (!strcmp(x->rec.id, rec.id) && !x->dead) {
            /* A sub-agent's run its resumed parent took back already (machine_sub.c). */
            err_set(errbuf, errlen, ERR_BUSY, "run %s is already being driven by this process",
                    rec.id);
            store_run_clear(&rec);
            return ERR_BUSY;
        }
    if (d && (rc = check_decision(m, &rec, d, errbuf, errlen))) {
        store_run_clear(&rec);
        return rc;
    }
    int st = machine_state_parse(rec.state);
    if (st < 0 || machine_state_terminal((machine_state_t)st)) {
        err_set(errbuf, errlen, ERR_STATE, "run %s is %s; only unfinished runs can be resumed",
                rec.id, rec.state);
        store_run_clear(&rec);
        return ERR_STATE;
    }
    int64_t now = (int64_t)loop_wall_ns();
    rc = store_run_claim(m->st, rec.id, m->owner, now, now + m->lease_ns);
    if (rc == ERR_BUSY)
        err_set(errbuf, errlen, ERR_BUSY,
                "run %s is being driven by %s (lease until %llds from now); not resuming it",
                rec.id, rec.owner, (long long)((rec.lease_until_ns - now) / 1000000000));
    else if (rc)
        err_set(errbuf, errlen, ERR_IO, "run %s: cannot take it over: %s", rec.id,
                store_errmsg(m->st));
    if (rc) {
        store_run_clear(&rec);
        return rc == ERR_BUSY ? ERR_BUSY : ERR_IO;
    }
    machine_run_t *r = mrun_new(m, agent);
    if (!r) {
        store_run_clear(&rec);
        return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
    }
    r->rec = rec;
    r->state = (machine_state_t)st;
    snprintf(r->rec.owner, sizeof r->rec.owner, "%s", m->owner);
    r->rec.lease_until_ns = now + m->lease_ns;
    const char *override = m->o.model ? m->o.model : NULL;
    if (!override && rec.model[0] && strcmp(rec.model, agent->models[0]) != 0)
        override = rec.model; /* keep the model the run started with */
    load_calls_t lc = {r, 0};
    /* A per-run file may be short or ahead of the database after a kill: rewrite it. The
     * segment log is append-only and never ahead (tracelog.h). */
    replay_t rp = {r, m->o.trace_files == TRACELOG_RUNS
                          ? trace_rewrite_begin(m->traces_dir, r->rec.id) : NULL};
    int bad = set_models(r, override) || store_messages_each(m->st, r->rec.id, load_message, r) ||
              store_toolcalls_each(m->st, r->rec.id, load_call, &lc) ||
              trace_db_events_each(m->st, r->rec.id, 0, find_state_span, &rp);
    if (rp.w)
        trace_rewrite_end(rp.w, !bad);
    if (bad) {
        err_set(errbuf, errlen, ERR_IO, "run %s: cannot load its state: %s", r->rec.id,
                store_errmsg(m->st));
        mrun_release(r);
        return ERR_IO;
    }
    r->rec.msg_count = (int)json_object_array_length(r->messages);
    if ((rc = mplan_load(r)) || (rc = msub_load(r))) {
        err_set(errbuf, errlen, ERR_IO, "run %s: cannot load its plan or parent link: %s",
                r->rec.id, store_why(m->st, rc));
        mrun_release(r);
        return ERR_IO;
    }
    if (store_run_user_get(m->st, r->rec.id, r->user, sizeof r->user) != 0)
        r->user[0] = 0;
    if (insert_history(r)) {
        err_set(errbuf, errlen, ERR_IO, "run %s: cannot load its session's earlier turns: %s",
                r->rec.id, store_errmsg(m->st));
        mrun_release(r);
        return ERR_IO;
    }
    rc = mstage_begin(r);
    if (rc)
        return err_set(errbuf, errlen, rc, "cannot open a transaction: %s", store_why(m->st, rc));
    if (d)
        rc = stage_decision(r, d);
    if (!rc && r->state == MS_ACTING)
        rc = settle_interrupted(r);
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "agentd.owner", jx_new_str(m->owner));
    json_object_object_add(attrs, "agentd.resumed_state", jx_new_str(r->rec.state));
    if (r->parent_run[0]) /* a sub-agent's run, taken back with its parent's call */
        json_object_object_add(attrs, "agentd.parent_run_id", jx_new_str(r->parent_run));
    trace_ev_t e = {
        .span_id = r->state_span[0] ? r->state_span : r->rec.id,
        .parent_id = r->state_span[0] ? r->rec.id : NULL,
        .phase = "point",
        .op = "resume",
        .name = "resume",
        .step = r->rec.step,
        .attrs = attrs,
    };
    if (!rc)
        rc = mstage_event(r, &e);
    json_object_put(attrs);
    /* The run's state is entered exactly as a transition enters it. */
    if (menter(r, rc))
        return err_set(errbuf, errlen, ERR_IO, "run %s: cannot record the %s", run_id,
                       d ? "decision" : "resume");
    if (r->state != MS_WAITING && arm_deadline(r))
        return err_set(errbuf, errlen, ERR_NOMEM, "run %s: cannot arm its deadline", run_id);
    return 0;
}

int machine_resume(machine_t *m, const agent_t *agent, const char *run_id, char *errbuf,
                   size_t errlen)
{
    return resume_run(m, agent, run_id, NULL, errbuf, errlen);
}

/* ---- approvals --------------------------------------------------------------------- */

int machine_decide(machine_t *m, const agent_t *agent, const char *run_id, const char *call_id,
                   int approve, const char *reason, char *errbuf, size_t errlen)
{
    return machine_decide_args(m, agent, run_id, call_id, approve, reason, NULL, errbuf, errlen);
}

int machine_decide_args(machine_t *m, const agent_t *agent, const char *run_id,
                        const char *call_id, int approve, const char *reason, const char *args,
                        char *errbuf, size_t errlen)
{
    if (args && !approve)
        return err_set(errbuf, errlen, ERR_INVAL, "--args goes with approve, not deny");
    decision_t d = {call_id, approve, reason, args};
    return resume_run(m, agent, run_id, &d, errbuf, errlen);
}

/* ---- cancel and deadline ----------------------------------------------------------- */

static int write_interrupted(machine_run_t *r, void *arg)
{
    return tcalls_mark_unknown(r, arg);
}

static void interrupt_with(machine_run_t *r, machine_event_t ev, const char *reason,
                           const char *msg, mwriter_fn writer)
{
    if (r->dead || machine_state_terminal(r->state))
        return;
    mrun_cancel_inflight(r);
    snprintf(r->rec.reason, sizeof r->rec.reason, "%s", reason);
    free(r->rec.error);
    r->rec.error = strdup(msg);
    if (!machine_lookup(r->state, ev)) {
        /* e.g. a deadline in `created`: let the state's action notice it instead. */
        return;
    }
    mfire(r, ev, &(mfire_opt_t){writer, (void *)msg, "error", msg});
}

static void interrupt(machine_run_t *r, machine_event_t ev, const char *reason, const char *msg)
{
    interrupt_with(r, ev, reason, msg, write_interrupted);
}

static void deadline_fired(void *arg)
{
    machine_run_t *r = arg;
    r->deadline = NULL;
    if (r->state == MS_WAITING)
        return;
    char msg[160];
    snprintf(msg, sizeof msg, "deadline reached: %.1f s (limits.deadline_s)", r->lim.deadline_s);
    interrupt(r, ME_LIMIT, "deadline", msg);
}

void machine_cancel_all(machine_t *m)
{
    for (machine_run_t *r = m->runs, *n; r; r = n) {
        n = r->next;
        interrupt(r, ME_CANCEL, "cancelled", "cancelled by the user");
    }
}

static machine_run_t *find_active(machine_t *m, const char *run_id)
{
    for (machine_run_t *r = m->runs; r; r = r->next)
        if (!r->dead && !strcmp(r->rec.id, run_id))
            return r;
    return NULL;
}

int machine_drives(machine_t *m, const char *run_id)
{
    return find_active(m, run_id) != NULL;
}

int machine_cancel(machine_t *m, const agent_t *agent, const char *run_id, char *errbuf,
                   size_t errlen)
{
    machine_run_t *r = find_active(m, run_id);
    if (!r) {
        /* Loaded back like `resume` (its state entered in the open batch), then interrupted
         * in the same batch: the state's own hook never runs, only cancelled's. */
        int rc = resume_run(m, agent, run_id, NULL, errbuf, errlen);
        if (rc == ERR_BUSY && !find_active(m, run_id)) {
            /* Another live process drives it: ask that process, through the database. */
            rc = store_cancel_request(m->st, run_id, "cancelled by the user",
                                      (int64_t)loop_wall_ns());
            if (rc == ERR_STATE)
                return err_set(errbuf, errlen, ERR_STATE, "run %s has ended", run_id);
            if (rc)
                return err_set(errbuf, errlen, rc, "run %s: cannot record the cancel: %s", run_id,
                               store_why(m->st, rc));
            return 0;
        }
        if (rc)
            return rc;
        r = find_active(m, run_id);
        if (!r)
            return err_set(errbuf, errlen, ERR_STATE, "run %s stopped while loading", run_id);
    }
    interrupt(r, ME_CANCEL, "cancelled", "cancelled by the user");
    return 0;
}

void mrun_cancel(machine_run_t *r, const char *msg)
{
    interrupt(r, ME_CANCEL, "cancelled", msg);
}

/* ---- cancels asked by other processes ---------------------------------------------- */

typedef struct cancel_ask {
    char id[17];
    char msg[200];
} cancel_ask_t;

typedef struct cancel_asks {
    cancel_ask_t *v;
    size_t n;
} cancel_asks_t;

static int collect_ask(void *ud, const char *run_id, const char *reason)
{
    cancel_asks_t *a = ud;
    cancel_ask_t *nv = realloc(a->v, (a->n + 1) * sizeof *nv);
    if (!nv)
        return 1;
    a->v = nv;
    snprintf(a->v[a->n].id, sizeof a->v[a->n].id, "%.16s", run_id);
    snprintf(a->v[a->n].msg, sizeof a->v[a->n].msg, "%s", reason ? reason : "cancelled");
    a->n++;
    return 0;
}

/* The cancel's unit clears its request: done once, even across a takeover. */
static int write_requested(machine_run_t *r, void *arg)
{
    int rc = tcalls_mark_unknown(r, arg);
    return rc ? rc : store_cancel_clear(r->m->st, r->rec.id);
}

int mrun_cancel_start(machine_t *m)
{
    return store_cancels_start(m->st, m->owner);
}

int mrun_cancel_check(machine_t *m)
{
    cancel_asks_t a = {0};
    /* Collect first, cancel after: cancelling writes to the tables being read. */
    int rc = store_cancels_poll(m->st, collect_ask, &a);
    if (rc == 0)
        return 0;
    for (size_t i = 0; i < a.n; i++) {
        machine_run_t *r = find_active(m, a.v[i].id);
        if (r)
            interrupt_with(r, ME_CANCEL, "cancelled", a.v[i].msg, write_requested);
    }
    free(a.v);
    return 1;
}
