/*
 * mcp_serve: the server core. JSON-RPC methods of the MCP server features agentd offers —
 * initialize, ping, tools/list (paged), tools/call, notifications/initialized and
 * notifications/cancelled — on the tool registry, independent of the transport.
 *
 * tools/call runs the Lua tool through tools_call(): arguments are validated against the
 * tool's schema first, and every outcome that is the tool's (invalid arguments, a Lua error,
 * a timeout) is a result with isError, which the client's model can read and act on; only
 * an unknown tool or malformed params are JSON-RPC errors (-32602), as the MCP revision
 * 2025-11-25 asks.
 */
#include "mcp_int.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PAGE 100

typedef struct pcall {
    mcp_peer_t *p;
    json_object *id;
    tools_call_t *h;
    mcp_send_fn send;
    void *ud;
    struct pcall *next;
} pcall_t;

struct mcp_srv {
    loop_t *lp;
    tools_t *tl;
    const tools_policy_t *policy;
    size_t page;
    const tool_t **served;
    size_t nserved;
    uint64_t calls; /* for call ids */
};

struct mcp_peer {
    mcp_srv_t *s;
    int initialized;
    char version[32];
    pcall_t *calls;
};

mcp_srv_t *mcp_srv_new(loop_t *lp, tools_t *tl, const mcp_srv_opts_t *o)
{
    mcp_srv_t *s = calloc(1, sizeof *s);
    size_t n = tools_count(tl);
    if (!s || !(s->served = calloc(n ? n : 1, sizeof *s->served))) {
        free(s);
        return NULL;
    }
    s->lp = lp;
    s->tl = tl;
    s->policy = o->policy;
    s->page = o->page_size ? o->page_size : DEFAULT_PAGE;
    for (size_t i = 0; i < n; i++) {
        const tool_t *t = tools_at(tl, i);
        /* A tool that asks a person first is not handed to a client that would run it
         * without asking, unless the operator says so. */
        if (tool_approval(t) && !o->include_approval) {
            fprintf(stderr, "agentd: not serving %s (approval = true; --include-approval "
                    "serves it, and the MCP client's host must then ask the user)\n",
                    tool_name(t));
            continue;
        }
        s->served[s->nserved++] = t;
    }
    return s;
}

void mcp_srv_free(mcp_srv_t *s)
{
    if (!s)
        return;
    free(s->served);
    free(s);
}

size_t mcp_srv_served(const mcp_srv_t *s)
{
    return s->nserved;
}

static const tool_t *served(const mcp_srv_t *s, const char *name)
{
    for (size_t i = 0; name && i < s->nserved; i++)
        if (strcmp(tool_name(s->served[i]), name) == 0)
            return s->served[i];
    return NULL;
}

mcp_peer_t *mcp_peer_new(mcp_srv_t *s)
{
    mcp_peer_t *p = calloc(1, sizeof *p);
    if (p)
        p->s = s;
    return p;
}

static void pcall_free(pcall_t *c)
{
    json_object_put(c->id);
    free(c);
}

static void pcall_unlink(mcp_peer_t *p, pcall_t *c)
{
    for (pcall_t **pp = &p->calls; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            return;
        }
}

void mcp_peer_drop(mcp_peer_t *p, void *ud)
{
    for (pcall_t *c = p->calls, *nx; c; c = nx) {
        nx = c->next;
        if (c->ud != ud)
            continue;
        tools_call_cancel(c->h);
        pcall_unlink(p, c);
        pcall_free(c);
    }
}

void mcp_peer_free(mcp_peer_t *p)
{
    if (!p)
        return;
    while (p->calls) {
        pcall_t *c = p->calls;
        p->calls = c->next;
        tools_call_cancel(c->h);
        pcall_free(c);
    }
    free(p);
}

int mcp_peer_busy(const mcp_peer_t *p)
{
    return p->calls != NULL;
}

int mcp_peer_initialized(const mcp_peer_t *p)
{
    return p->initialized;
}

const char *mcp_peer_version(const mcp_peer_t *p)
{
    return p->version;
}

static void reply(mcp_send_fn send, void *ud, json_object *msg_take)
{
    if (msg_take)
        send(ud, msg_take);
    json_object_put(msg_take);
}

static json_object *params_of(json_object *msg)
{
    json_object *p;
    return json_object_object_get_ex(msg, "params", &p) && json_object_is_type(p, json_type_object)
               ? p
               : NULL;
}

static json_object *do_initialize(mcp_peer_t *p, json_object *params)
{
    json_object *v;
    const char *want = params && json_object_object_get_ex(params, "protocolVersion", &v)
                           ? json_object_get_string(v)
                           : NULL;
    /* The client's revision when we speak it, else our newest: the client decides. */
    snprintf(p->version, sizeof p->version, "%s",
             mcp_version_known(want) ? want : MCP_PROTOCOL_VERSION);
    json_object *r = json_object_new_object(), *caps = json_object_new_object(),
                *tools = json_object_new_object(), *info = json_object_new_object();
    json_object_object_add(r, "protocolVersion", json_object_new_string(p->version));
    json_object_object_add(tools, "listChanged", json_object_new_boolean(0));
    json_object_object_add(caps, "tools", tools);
    json_object_object_add(r, "capabilities", caps);
    json_object_object_add(info, "name", json_object_new_string("agentd"));
    json_object_object_add(info, "version", json_object_new_string("0.1.0"));
    json_object_object_add(r, "serverInfo", info);
    json_object_object_add(r, "instructions",
                           json_object_new_string("Tools of an agentd deployment, written in "
                                                  "Lua; arguments are checked against each "
                                                  "tool's inputSchema."));
    return r;
}

static json_object *describe(const tool_t *t)
{
    json_object *o = json_object_new_object(), *ann = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(tool_name(t)));
    json_object_object_add(o, "description", json_object_new_string(tool_description(t)));
    json_object_object_add(o, "inputSchema", json_object_get(tool_parameters(t)));
    json_object_object_add(ann, "idempotentHint", json_object_new_boolean(tool_idempotent(t)));
    json_object_object_add(o, "annotations", ann);
    return o;
}

/* The cursor is the index of the page's first tool, as text (opaque to clients). */
static int do_list(mcp_srv_t *s, json_object *params, json_object **out)
{
    json_object *cur;
    size_t from = 0;
    if (params && json_object_object_get_ex(params, "cursor", &cur) && cur) {
        const char *c = json_object_get_string(cur);
        char *end;
        unsigned long v = strtoul(c ? c : "", &end, 10);
        if (!json_object_is_type(cur, json_type_string) || !c[0] || *end || v > s->nserved)
            return ERR_INVAL;
        from = (size_t)v;
    }
    json_object *r = json_object_new_object(), *a = json_object_new_array();
    size_t to = from + s->page < s->nserved ? from + s->page : s->nserved;
    for (size_t i = from; i < to; i++)
        json_object_array_add(a, describe(s->served[i]));
    json_object_object_add(r, "tools", a);
    if (to < s->nserved) {
        char next[32];
        snprintf(next, sizeof next, "%zu", to);
        json_object_object_add(r, "nextCursor", json_object_new_string(next));
    }
    *out = r;
    return 0;
}

static void call_log(void *ud, const char *level, const char *msg)
{
    (void)ud;
    fprintf(stderr, "agentd: [%s] %s\n", level, msg);
}

static void call_done(void *ud, const tools_result_t *r)
{
    pcall_t *c = ud;
    mcp_peer_t *p = c->p;
    pcall_unlink(p, c);
    reply(c->send, c->ud, mcp_msg_result(c->id, mcp_result_from_tool(r)));
    pcall_free(c);
}

static void do_call(mcp_peer_t *p, json_object *id, json_object *params, mcp_send_fn send,
                    void *ud)
{
    mcp_srv_t *s = p->s;
    json_object *name = NULL, *args = NULL;
    if (params) {
        json_object_object_get_ex(params, "name", &name);
        json_object_object_get_ex(params, "arguments", &args);
    }
    if (!name || !json_object_is_type(name, json_type_string)) {
        reply(send, ud, mcp_msg_error(id, MCP_EPARAMS, "tools/call: params.name is missing"));
        return;
    }
    const tool_t *t = served(s, json_object_get_string(name));
    if (!t) {
        char msg[200];
        snprintf(msg, sizeof msg, "Unknown tool: %.120s", json_object_get_string(name));
        reply(send, ud, mcp_msg_error(id, MCP_EPARAMS, msg));
        return;
    }
    pcall_t *c = calloc(1, sizeof *c);
    if (!c) {
        reply(send, ud, mcp_msg_error(id, MCP_EINTERNAL, "out of memory"));
        return;
    }
    c->p = p;
    c->id = json_object_get(id);
    c->send = send;
    c->ud = ud;
    char call_id[40], idem[64];
    snprintf(call_id, sizeof call_id, "mcp-%llu", (unsigned long long)++s->calls);
    snprintf(idem, sizeof idem, "mcp:%p:%s", (void *)p, call_id);
    tools_call_info_t info = {
        .run_id = "mcp",
        .call_id = call_id,
        .idempotency_key = idem,
        .policy = s->policy,
        .on_log = call_log,
    };
    c->next = p->calls;
    p->calls = c;
    /* Arguments go in as text: the registry parses and validates exactly what a model's
     * call would go through. */
    int rc = tools_call(s->tl, tool_name(t), args ? mcp_msg_text(args, NULL) : "{}", &info,
                        call_done, c, &c->h);
    if (rc) {
        pcall_unlink(p, c);
        pcall_free(c);
        reply(send, ud, mcp_msg_error(id, MCP_EINTERNAL, err_str(rc)));
    }
}

static void do_cancel(mcp_peer_t *p, json_object *params)
{
    json_object *rid;
    if (!params || !json_object_object_get_ex(params, "requestId", &rid))
        return;
    const char *want = json_object_to_json_string(rid);
    for (pcall_t *c = p->calls; c; c = c->next) {
        if (strcmp(json_object_to_json_string(c->id), want) != 0)
            continue;
        /* Cancelled: no reply is sent, as the protocol asks. */
        tools_call_cancel(c->h);
        pcall_unlink(p, c);
        pcall_free(c);
        return;
    }
}

int mcp_peer_handle(mcp_peer_t *p, json_object *msg, mcp_send_fn send, void *ud)
{
    json_object *id = NULL, *method = NULL, *ver;
    int has_id = json_object_object_get_ex(msg, "id", &id);
    json_object_object_get_ex(msg, "method", &method);
    if (!json_object_is_type(msg, json_type_object) ||
        !json_object_object_get_ex(msg, "jsonrpc", &ver) ||
        strcmp(json_object_get_string(ver) ? json_object_get_string(ver) : "", "2.0") != 0 ||
        (method && !json_object_is_type(method, json_type_string)) ||
        (has_id && id && !json_object_is_type(id, json_type_string) &&
         !json_object_is_type(id, json_type_int))) {
        reply(send, ud, mcp_msg_error(has_id ? id : NULL, MCP_EINVREQ,
                                      "not a JSON-RPC 2.0 message"));
        return 1;
    }
    if (!method)
        return 0; /* a response: this server sends no requests */
    const char *m = json_object_get_string(method);
    json_object *params = params_of(msg);
    if (!has_id) {
        if (strcmp(m, "notifications/initialized") == 0)
            p->initialized = 1;
        else if (strcmp(m, "notifications/cancelled") == 0)
            do_cancel(p, params);
        return 0;
    }
    if (strcmp(m, "initialize") == 0) {
        reply(send, ud, mcp_msg_result(id, do_initialize(p, params)));
    } else if (strcmp(m, "ping") == 0) {
        reply(send, ud, mcp_msg_result(id, NULL));
    } else if (!p->version[0]) {
        reply(send, ud, mcp_msg_error(id, MCP_EINVREQ, "initialize first"));
    } else if (strcmp(m, "tools/list") == 0) {
        json_object *r;
        if (do_list(p->s, params, &r) != 0)
            reply(send, ud, mcp_msg_error(id, MCP_EPARAMS, "tools/list: invalid cursor"));
        else
            reply(send, ud, mcp_msg_result(id, r));
    } else if (strcmp(m, "tools/call") == 0) {
        do_call(p, id, params, send, ud);
    } else {
        char msg2[200];
        snprintf(msg2, sizeof msg2, "Method not found: %.100s", m);
        reply(send, ud, mcp_msg_error(id, MCP_ENOMETHOD, msg2));
    }
    return 1;
}
