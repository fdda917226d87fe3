/*
 * mcp_client: one connection per declared server, and the tools it registers.
 *
 * A connection moves down -> initializing -> listing (first time only) -> ready, and back to
 * down when its transport is lost (the child exits, the HTTP session ends) or a startup
 * step fails or times out. Calls made while it is down or starting wait for it; a call to a
 * down server restarts it, so a crashed server costs the calls that were in flight (tool
 * errors the model reads), not the run. After MAX_FAILED_STARTS starts in a row that never
 * reached ready, calls fail at once with the last reason.
 *
 * A tool call's deadline is the registry's (tools.c cancels the attempt on its timeout);
 * cancelling a call that was sent tells the server with notifications/cancelled.
 */
#include "mcp_int.h"

#include "err.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAILED_STARTS 3
#define FAIL_FAST_NS (30ull * 1000000000ull) /* after MAX_FAILED_STARTS, for this long */
#define CLOSE_GRACE_MS 500

typedef enum { MC_DOWN, MC_INIT, MC_LIST, MC_READY } mc_state_t;
typedef enum { RQ_INIT, RQ_LIST, RQ_CALL } rq_kind_t;

typedef struct mtool mtool_t;

typedef struct mreq {
    mcp_conn_t *c;
    rq_kind_t kind;
    int64_t id;
    int sent;
    mtool_t *tool;         /* RQ_CALL */
    json_object *args;     /* RQ_CALL */
    uint64_t deadline_ns;
    tools_remote_done_fn done;
    void *done_ud;
    loop_timer_t *fail; /* a call that fails at once, from the next loop pass */
    struct mreq *next;
} mreq_t;

struct mtool {
    mcp_conn_t *c;
    char *remote;      /* the server's name for it */
    schema_t *out;     /* compiled outputSchema, or NULL */
};

struct mcp_conn {
    mcp_t *m;
    mcp_cfg_t *cfg;
    mc_state_t state;
    mcp_stdio_t *sp;
    mcp_httpc_t *hc;
    int64_t next_id;
    mreq_t *reqs;      /* sent or waiting to be sent */
    loop_timer_t *startup;
    json_object *listed; /* tools gathered while listing */
    int listed_once;
    int failed_starts;
    uint64_t down_ns;
    char version[32];
    char lost[600];
    /* mcp_attach_agent's wait */
    int attach_done, attach_rc;
    mtool_t **tools;
    size_t ntools;
};

struct mcp {
    loop_t *lp;
    http_t *http;
    tools_t *tl;
    mcp_cfg_t **cfgs; /* one array per attached agent */
    size_t *ncfg, nagents;
    mcp_conn_t **conns;
    size_t nconns;
};

static void conn_start(mcp_conn_t *c);
static void conn_down(mcp_conn_t *c, int rc, const char *why);

/* ---- sending ---- */

static int send_msg(mcp_conn_t *c, json_object *msg, int64_t id, uint64_t deadline_ns)
{
    if (c->sp)
        return mcp_stdio_send(c->sp, msg);
    if (c->hc)
        return mcp_httpc_send(c->hc, msg, id, deadline_ns);
    return ERR_IO;
}

static void notify(mcp_conn_t *c, const char *method, json_object *params_take)
{
    json_object *msg = mcp_msg_notify(method, params_take);
    if (msg)
        send_msg(c, msg, -1, loop_mono_ns() + (uint64_t)c->cfg->startup_ms * 1000000ull);
    json_object_put(msg);
}

static void req_unlink(mcp_conn_t *c, mreq_t *q)
{
    for (mreq_t **pp = &c->reqs; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            return;
        }
}

static void req_free(mreq_t *q)
{
    loop_timer_cancel(q->fail);
    json_object_put(q->args);
    free(q);
}

static int req_send(mcp_conn_t *c, mreq_t *q, const char *method, json_object *params_take)
{
    q->id = ++c->next_id;
    json_object *msg = mcp_msg_request(q->id, method, params_take);
    if (!msg)
        return ERR_NOMEM;
    int rc = send_msg(c, msg, q->id, q->deadline_ns);
    json_object_put(msg);
    q->sent = rc == 0;
    return rc;
}

static int send_call(mcp_conn_t *c, mreq_t *q)
{
    json_object *p = json_object_new_object();
    if (!p)
        return ERR_NOMEM;
    json_object_object_add(p, "name", json_object_new_string(q->tool->remote));
    json_object_object_add(p, "arguments", json_object_get(q->args));
    return req_send(c, q, "tools/call", p);
}

/* Complete a call with an error (from a loop event: a transport callback or a timer). */
static void call_fail(mreq_t *q, int rc, const char *msg)
{
    tools_remote_done_fn done = q->done;
    void *ud = q->done_ud;
    req_unlink(q->c, q);
    req_free(q);
    done(ud, rc, NULL, msg);
}

/* ---- startup ---- */

static void attach_finish(mcp_conn_t *c, int rc)
{
    if (c->attach_done)
        return;
    c->attach_done = 1;
    c->attach_rc = rc;
}

static void startup_timeout(void *arg)
{
    mcp_conn_t *c = arg;
    c->startup = NULL;
    char why[200];
    snprintf(why, sizeof why, "no answer to %s within %.0f s (startup_timeout)",
             c->state == MC_LIST ? "tools/list" : "initialize",
             (double)c->cfg->startup_ms / 1000);
    conn_down(c, ERR_TIMEOUT, why);
}

static void send_list(mcp_conn_t *c, const char *cursor)
{
    mreq_t *q = calloc(1, sizeof *q);
    json_object *p = cursor ? json_object_new_object() : NULL;
    if (!q || (cursor && !p)) {
        free(q);
        json_object_put(p);
        conn_down(c, ERR_NOMEM, "out of memory");
        return;
    }
    if (p)
        json_object_object_add(p, "cursor", json_object_new_string(cursor));
    q->c = c;
    q->kind = RQ_LIST;
    q->deadline_ns = loop_mono_ns() + (uint64_t)c->cfg->startup_ms * 1000000ull;
    q->next = c->reqs;
    c->reqs = q;
    if (req_send(c, q, "tools/list", p) != 0)
        conn_down(c, ERR_IO, "cannot send tools/list");
}

static void conn_ready(mcp_conn_t *c)
{
    loop_timer_cancel(c->startup);
    c->startup = NULL;
    c->state = MC_READY;
    c->failed_starts = 0;
    attach_finish(c, 0);
    for (mreq_t *q = c->reqs, *nx; q; q = nx) {
        nx = q->next;
        if (q->kind == RQ_CALL && !q->sent && send_call(c, q) != 0)
            call_fail(q, ERR_HTTP, "cannot send the call to the MCP server");
    }
}

static void on_init(mcp_conn_t *c, json_object *result)
{
    json_object *v;
    const char *ver = json_object_object_get_ex(result, "protocolVersion", &v)
                          ? json_object_get_string(v)
                          : NULL;
    if (!mcp_version_known(ver)) {
        char why[200];
        snprintf(why, sizeof why, "the server speaks MCP revision %.40s, which agentd does not "
                 "(it speaks %s back to 2024-11-05)", ver ? ver : "(none)", MCP_PROTOCOL_VERSION);
        conn_down(c, ERR_PROTO, why);
        return;
    }
    snprintf(c->version, sizeof c->version, "%s", ver);
    if (c->hc)
        mcp_httpc_set_version(c->hc, ver);
    notify(c, "notifications/initialized", NULL);
    if (c->listed_once) {
        conn_ready(c);
        return;
    }
    c->state = MC_LIST;
    c->listed = json_object_new_array();
    send_list(c, NULL);
}

static void on_list(mcp_conn_t *c, json_object *result)
{
    json_object *tools, *next;
    if (!json_object_object_get_ex(result, "tools", &tools) ||
        !json_object_is_type(tools, json_type_array)) {
        conn_down(c, ERR_PROTO, "tools/list answer without a tools list");
        return;
    }
    for (size_t i = 0; i < json_object_array_length(tools); i++)
        json_object_array_add(c->listed, json_object_get(json_object_array_get_idx(tools, i)));
    if (json_object_object_get_ex(result, "nextCursor", &next) &&
        json_object_is_type(next, json_type_string)) {
        if (json_object_array_length(c->listed) > 10000) {
            conn_down(c, ERR_LIMIT, "tools/list goes on past 10000 tools");
            return;
        }
        send_list(c, json_object_get_string(next));
        return;
    }
    c->listed_once = 1;
    conn_ready(c);
}

static void send_init(mcp_conn_t *c)
{
    mreq_t *q = calloc(1, sizeof *q);
    json_object *p = json_object_new_object(), *info = json_object_new_object();
    if (!q || !p || !info) {
        free(q);
        json_object_put(p);
        json_object_put(info);
        conn_down(c, ERR_NOMEM, "out of memory");
        return;
    }
    json_object_object_add(p, "protocolVersion", json_object_new_string(MCP_PROTOCOL_VERSION));
    json_object_object_add(p, "capabilities", json_object_new_object());
    json_object_object_add(info, "name", json_object_new_string("agentd"));
    json_object_object_add(info, "version", json_object_new_string("0.1.0"));
    json_object_object_add(p, "clientInfo", info);
    q->c = c;
    q->kind = RQ_INIT;
    q->deadline_ns = loop_mono_ns() + (uint64_t)c->cfg->startup_ms * 1000000ull;
    q->next = c->reqs;
    c->reqs = q;
    if (req_send(c, q, "initialize", p) != 0)
        conn_down(c, ERR_IO, "cannot send initialize");
}

static void conn_start(mcp_conn_t *c)
{
    char err[600];
    c->state = MC_INIT;
    c->version[0] = '\0';
    if (c->cfg->argv)
        c->sp = mcp_stdio_open(c->m->lp, c->cfg, c, err, sizeof err);
    else
        c->hc = mcp_httpc_open(c->m->lp, c->m->http, c->cfg, c, err, sizeof err);
    if (!c->sp && !c->hc) {
        c->state = MC_DOWN;
        conn_down(c, ERR_IO, err);
        return;
    }
    if (loop_after(c->m->lp, (uint64_t)c->cfg->startup_ms, startup_timeout, c, &c->startup)) {
        conn_down(c, ERR_NOMEM, "out of memory");
        return;
    }
    send_init(c);
}

/* ---- losing the connection ---- */

static void conn_down(mcp_conn_t *c, int rc, const char *why)
{
    int was_ready = c->state == MC_READY;
    if (!was_ready)
        c->failed_starts++;
    snprintf(c->lost, sizeof c->lost, "%s: %s", c->cfg->where, why);
    c->state = MC_DOWN;
    c->down_ns = loop_mono_ns();
    loop_timer_cancel(c->startup);
    c->startup = NULL;
    json_object_put(c->listed);
    c->listed = NULL;
    mcp_stdio_close(c->sp, 0);
    c->sp = NULL;
    mcp_httpc_close(c->hc);
    c->hc = NULL;
    attach_finish(c, rc ? rc : ERR_IO);
    /* Calls sent to the dead server will never be answered; calls still waiting for it
     * to start fail too when it could not start. */
    for (mreq_t *q = c->reqs, *nx; q; q = nx) {
        nx = q->next;
        if (q->kind != RQ_CALL) {
            req_unlink(c, q);
            req_free(q);
        } else if (q->sent || !was_ready) {
            call_fail(q, rc == ERR_TIMEOUT ? ERR_HTTP : rc, c->lost);
        }
    }
}

void mcp_conn_lost(mcp_conn_t *c, int rc, const char *why)
{
    conn_down(c, rc, why);
}

static mreq_t *find_req(mcp_conn_t *c, int64_t id)
{
    for (mreq_t *q = c->reqs; q; q = q->next)
        if (q->sent && q->id == id)
            return q;
    return NULL;
}

void mcp_conn_req_failed(mcp_conn_t *c, int64_t id, int rc, const char *why)
{
    mreq_t *q = find_req(c, id);
    if (!q)
        return;
    if (q->kind == RQ_CALL)
        call_fail(q, rc, why);
    else
        conn_down(c, rc, why);
}

/* ---- incoming messages ---- */

static void on_call(mreq_t *q, json_object *result, json_object *error)
{
    char err[1024];
    json_object *out = NULL;
    int rc;
    if (error) {
        json_object *m;
        rc = err_set(err, sizeof err, ERR_PROTO, "the MCP server refused the call: %s",
                     json_object_object_get_ex(error, "message", &m) ? json_object_get_string(m)
                                                                     : "(no message)");
    } else {
        rc = mcp_result_to_tool(result, q->tool->out, &out, err, sizeof err);
    }
    tools_remote_done_fn done = q->done;
    void *ud = q->done_ud;
    req_unlink(q->c, q);
    req_free(q);
    done(ud, rc, out, rc ? err : NULL);
    json_object_put(out);
}

static void answer_server_request(mcp_conn_t *c, json_object *msg, const char *method)
{
    json_object *id;
    json_object_object_get_ex(msg, "id", &id);
    json_object *reply = strcmp(method, "ping") == 0
                             ? mcp_msg_result(id, NULL)
                             : mcp_msg_error(id, MCP_ENOMETHOD,
                                             "agentd's MCP client does not offer this method");
    if (reply)
        send_msg(c, reply, -1, loop_mono_ns() + (uint64_t)c->cfg->timeout_ms * 1000000ull);
    json_object_put(reply);
}

void mcp_conn_message(mcp_conn_t *c, json_object *msg)
{
    json_object *id, *method, *result = NULL, *error = NULL;
    int has_id = json_object_object_get_ex(msg, "id", &id) && id;
    if (json_object_object_get_ex(msg, "method", &method)) {
        /* Requests from the server (sampling, roots, elicitation) are declined; notifications
         * (logs, progress, list changes) are not acted on. */
        if (has_id)
            answer_server_request(c, msg, json_object_get_string(method));
        return;
    }
    if (!has_id || !json_object_is_type(id, json_type_int))
        return;
    json_object_object_get_ex(msg, "result", &result);
    json_object_object_get_ex(msg, "error", &error);
    mreq_t *q = find_req(c, json_object_get_int64(id));
    if (!q)
        return; /* an answer to a call we cancelled */
    if (q->kind == RQ_CALL) {
        c->failed_starts = 0;
        on_call(q, result, error);
        return;
    }
    rq_kind_t kind = q->kind;
    req_unlink(c, q);
    req_free(q);
    if (error || !json_object_is_type(result, json_type_object)) {
        json_object *m;
        char why[400];
        snprintf(why, sizeof why, "%s failed: %s", kind == RQ_INIT ? "initialize" : "tools/list",
                 error && json_object_object_get_ex(error, "message", &m)
                     ? json_object_get_string(m)
                     : "malformed answer");
        conn_down(c, ERR_PROTO, why);
        return;
    }
    if (kind == RQ_INIT)
        on_init(c, result);
    else
        on_list(c, result);
}

/* ---- the registry's side ---- */

static void fail_now(void *arg)
{
    mreq_t *q = arg;
    q->fail = NULL;
    call_fail(q, ERR_HTTP, q->c->lost);
}

static int tool_start(void *ud, json_object *args, uint64_t deadline_ns,
                      tools_remote_done_fn done, void *done_ud, void **out_handle)
{
    mtool_t *t = ud;
    mcp_conn_t *c = t->c;
    mreq_t *q = calloc(1, sizeof *q);
    if (!q)
        return ERR_NOMEM;
    q->c = c;
    q->kind = RQ_CALL;
    q->tool = t;
    q->args = json_object_get(args);
    q->deadline_ns = deadline_ns;
    q->done = done;
    q->done_ud = done_ud;
    /* A server that failed to start again and again is not tried for a while: its calls
     * fail at once with the reason. */
    if (c->state == MC_DOWN && (c->failed_starts < MAX_FAILED_STARTS ||
                                loop_mono_ns() - c->down_ns > FAIL_FAST_NS))
        conn_start(c);
    q->next = c->reqs;
    c->reqs = q;
    if (c->state == MC_DOWN) {
        /* The registry wants the answer from a loop event, never inline. */
        if (loop_after(c->m->lp, 0, fail_now, q, &q->fail) != 0) {
            req_unlink(c, q);
            req_free(q);
            return ERR_NOMEM;
        }
    } else if (c->state == MC_READY) {
        int rc = send_call(c, q);
        if (rc) {
            req_unlink(c, q);
            req_free(q);
            return rc;
        }
    }
    *out_handle = q;
    return 0;
}

static void tool_cancel(void *handle)
{
    mreq_t *q = handle;
    mcp_conn_t *c = q->c;
    if (q->sent) {
        json_object *p = json_object_new_object();
        if (p) {
            json_object_object_add(p, "requestId", json_object_new_int64(q->id));
            json_object_object_add(p, "reason", json_object_new_string("timed out or cancelled "
                                                                        "by agentd"));
        }
        if (c->hc)
            mcp_httpc_abandon(c->hc, q->id);
        notify(c, "notifications/cancelled", p);
    }
    req_unlink(c, q);
    req_free(q);
}

static const tools_remote_ops_t tool_ops = {tool_start, tool_cancel};

static void mtool_free(mtool_t *t)
{
    if (!t)
        return;
    free(t->remote);
    schema_free(t->out);
    free(t);
}

/* "fs_" + "read-file" within the registry's name rules: other characters become '_'. */
static void local_name(const char *prefix, const char *remote, char *out, size_t len)
{
    snprintf(out, len, "%s%s", prefix, remote);
    for (char *p = out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            *p = '_';
}

static int wanted(const mcp_cfg_t *cfg, const char *name)
{
    if (!cfg->only)
        return 1;
    for (size_t i = 0; i < json_object_array_length(cfg->only); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(cfg->only, i)), name) == 0)
            return 1;
    return 0;
}

static int hint(json_object *tool, const char *name)
{
    json_object *ann, *v;
    return json_object_object_get_ex(tool, "annotations", &ann) &&
           json_object_object_get_ex(ann, name, &v) && json_object_get_boolean(v);
}

/* Register the listed tools; fills errbuf only for a fatal problem (a name clash). */
static int register_tools(mcp_conn_t *c, agent_t *a, json_object *listed, char *errbuf,
                          size_t errlen)
{
    size_t n = json_object_array_length(listed);
    if (!(c->tools = calloc(n ? n : 1, sizeof *c->tools)))
        return err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", c->cfg->where);
    for (size_t i = 0; i < n; i++) {
        json_object *tool = json_object_array_get_idx(listed, i), *v;
        const char *remote = json_object_object_get_ex(tool, "name", &v)
                                 ? json_object_get_string(v)
                                 : NULL;
        if (!remote || !json_object_is_type(v, json_type_string) || !wanted(c->cfg, remote))
            continue;
        char name[128], msg[600];
        local_name(c->cfg->prefix, remote, name, sizeof name);
        if (strlen(name) > 64) {
            fprintf(stderr, "agentd: %s: tool %s skipped: %s is longer than 64 characters "
                    "(choose a shorter prefix)\n", c->cfg->where, remote, name);
            continue;
        }
        mtool_t *t = calloc(1, sizeof *t);
        if (!t || !(t->remote = strdup(remote))) {
            free(t);
            return err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", c->cfg->where);
        }
        t->c = c;
        c->tools[c->ntools++] = t;
        json_object *os;
        if (json_object_object_get_ex(tool, "outputSchema", &os) &&
            json_object_is_type(os, json_type_object) &&
            !(t->out = schema_compile(os, NULL, msg, sizeof msg)))
            fprintf(stderr, "agentd: %s: tool %s: outputSchema not checked: %s\n",
                    c->cfg->where, remote, msg);
        json_object *desc = NULL, *in = NULL;
        json_object_object_get_ex(tool, "description", &desc);
        json_object_object_get_ex(tool, "inputSchema", &in);
        char origin[300];
        snprintf(origin, sizeof origin, "mcp:%s", c->cfg->key);
        tools_remote_def_t def = {
            .name = name,
            .description = json_object_is_type(desc, json_type_string)
                               ? json_object_get_string(desc)
                               : remote,
            .params = json_object_is_type(in, json_type_object) ? in : NULL,
            .origin = origin,
            .timeout_ms = c->cfg->timeout_ms,
            .idempotent = c->cfg->idempotent >= 0
                              ? c->cfg->idempotent
                              : hint(tool, "readOnlyHint") || hint(tool, "idempotentHint"),
            .approval = c->cfg->approval,
            .ops = &tool_ops,
            .ud = t,
        };
        int rc = tools_add_remote(c->m->tl, &def, msg, sizeof msg);
        if (rc == ERR_SCHEMA) {
            fprintf(stderr, "agentd: %s: tool %s skipped: %s\n", c->cfg->where, remote, msg);
            continue;
        }
        if (rc)
            return err_set(errbuf, errlen, rc, "%s: %s", c->cfg->where, msg);
        int named = 0;
        for (size_t j = 0; j < json_object_array_length(a->tools); j++)
            named |= strcmp(json_object_get_string(json_object_array_get_idx(a->tools, j)),
                             name) == 0;
        if (!named)
            json_object_array_add(a->tools, json_object_new_string(name));
    }
    return 0;
}

/* ---- the set ---- */

mcp_t *mcp_new(loop_t *lp, http_t *h, tools_t *tl)
{
    mcp_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->lp = lp;
    m->http = h;
    m->tl = tl;
    return m;
}

static void conn_free(mcp_conn_t *c)
{
    loop_timer_cancel(c->startup);
    while (c->reqs) {
        mreq_t *q = c->reqs;
        c->reqs = q->next;
        req_free(q);
    }
    mcp_stdio_close(c->sp, CLOSE_GRACE_MS);
    mcp_httpc_close(c->hc);
    json_object_put(c->listed);
    for (size_t i = 0; i < c->ntools; i++)
        mtool_free(c->tools[i]);
    free(c->tools);
    free(c);
}

void mcp_free(mcp_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nconns; i++)
        conn_free(m->conns[i]);
    for (size_t i = 0; i < m->nagents; i++)
        mcp_config_free(m->cfgs[i], m->ncfg[i]);
    free(m->conns);
    free(m->cfgs);
    free(m->ncfg);
    free(m);
}

int mcp_attach_agent(mcp_t *m, agent_t *a, char *errbuf, size_t errlen)
{
    mcp_cfg_t *cfg;
    size_t n;
    int rc = mcp_config_parse(a, &cfg, &n, errbuf, errlen);
    if (rc || n == 0)
        return rc;
    mcp_cfg_t **cfgs = realloc(m->cfgs, (m->nagents + 1) * sizeof *cfgs);
    if (cfgs)
        m->cfgs = cfgs;
    size_t *ncfg = realloc(m->ncfg, (m->nagents + 1) * sizeof *ncfg);
    if (ncfg)
        m->ncfg = ncfg;
    mcp_conn_t **conns = realloc(m->conns, (m->nconns + n) * sizeof *conns);
    if (conns)
        m->conns = conns;
    if (!cfgs || !ncfg || !conns) {
        mcp_config_free(cfg, n);
        return err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", a->path);
    }
    m->cfgs[m->nagents] = cfg;
    m->ncfg[m->nagents++] = n;
    size_t first = m->nconns;
    for (size_t i = 0; i < n; i++) {
        mcp_conn_t *c = calloc(1, sizeof *c);
        if (!c)
            return err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", a->path);
        c->m = m;
        c->cfg = &cfg[i];
        m->conns[m->nconns++] = c;
    }
    /* All servers start together; the loop runs until each is ready or has failed. */
    for (size_t i = first; i < m->nconns; i++)
        conn_start(m->conns[i]);
    for (;;) {
        int pending = 0;
        for (size_t i = first; i < m->nconns; i++)
            pending |= !m->conns[i]->attach_done;
        if (!pending)
            break;
        if (event_base_loop(loop_base(m->lp), EVLOOP_ONCE) < 0)
            return err_set(errbuf, errlen, ERR_INTERNAL, "%s: event loop failed", a->path);
    }
    for (size_t i = first; i < m->nconns; i++) {
        mcp_conn_t *c = m->conns[i];
        if (c->attach_rc || !c->listed)
            return err_set(errbuf, errlen, c->attach_rc ? c->attach_rc : ERR_IO, "%s", c->lost);
        rc = register_tools(c, a, c->listed, errbuf, errlen);
        json_object_put(c->listed);
        c->listed = NULL;
        if (rc)
            return rc;
    }
    return 0;
}
