/*
 * otlp: see otlp.h. Builds the JSON with json-c; the only hand-written parts are the
 * encodings json-c cannot guess (64-bit integers as strings, hex ids).
 */
#include "jx.h"
#include "otlp.h"

#include "err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { KIND_INTERNAL = 1, KIND_CLIENT = 3 };
enum { STATUS_ERROR = 2 };

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return s[n] == 0;
}

static uint64_t fnv(const char *s, uint64_t h)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

void otlp_trace_id(const char *run_id, char out[33])
{
    if (is_hex(run_id, 16))
        snprintf(out, 33, "%s%s", run_id, run_id);
    else if (is_hex(run_id, 32))
        snprintf(out, 33, "%s", run_id);
    else
        snprintf(out, 33, "%016llx%016llx", (unsigned long long)fnv(run_id, 1469598103934665603ull),
                 (unsigned long long)fnv(run_id, 0x84222325cbf29ce4ull));
    lower(out);
}

void otlp_span_id(const char *id, char out[17])
{
    if (is_hex(id, 16))
        snprintf(out, 17, "%s", id);
    else
        snprintf(out, 17, "%016llx", (unsigned long long)fnv(id, 1469598103934665603ull));
    lower(out);
}

/* Instant spans of these ops annotate their parent; other instant spans (a tool call
 * closed by resume without ever running) stay spans of zero length. */
static int annotation(const spantree_span_t *s)
{
    return s->point && s->parent_idx >= 0 &&
           (!strcmp(s->op, "retry") || !strcmp(s->op, "guardrail") || !strcmp(s->op, "log"));
}

static json_object *nanos(int64_t ns)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)(ns < 0 ? 0 : ns));
    return json_object_new_string(buf);
}

static int scalar_array(json_object *v)
{
    size_t n = json_object_array_length(v);
    for (size_t i = 0; i < n; i++) {
        json_type t = json_object_get_type(json_object_array_get_idx(v, i));
        if (t == json_type_array || t == json_type_object || t == json_type_null)
            return 0;
    }
    return 1;
}

static void add_json_text(json_object *a, json_object *v)
{
    json_object_object_add(
        a, "stringValue",
        json_object_new_string(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)));
}

/* AnyValue for a JSON value: scalars map directly; arrays of scalars become arrayValue;
 * objects and nested arrays travel as their JSON text (what GenAI backends expect for
 * arguments and results). */
static json_object *any_value(json_object *v)
{
    json_object *a = json_object_new_object();
    if (!a)
        return NULL;
    switch (json_object_get_type(v)) {
    case json_type_boolean:
        json_object_object_add(a, "boolValue", json_object_new_boolean(json_object_get_boolean(v)));
        break;
    case json_type_int: {
        char buf[24];
        snprintf(buf, sizeof buf, "%lld", (long long)json_object_get_int64(v));
        json_object_object_add(a, "intValue", json_object_new_string(buf));
        break;
    }
    case json_type_double:
        json_object_object_add(a, "doubleValue", jx_new_num(json_object_get_double(v)));
        break;
    case json_type_string:
        json_object_object_add(a, "stringValue", json_object_new_string(json_object_get_string(v)));
        break;
    case json_type_array:
        if (scalar_array(v)) {
            size_t n = json_object_array_length(v);
            json_object *vals = json_object_new_array(), *arr = json_object_new_object();
            for (size_t i = 0; i < n; i++)
                json_object_array_add(vals, any_value(json_object_array_get_idx(v, i)));
            json_object_object_add(arr, "values", vals);
            json_object_object_add(a, "arrayValue", arr);
        } else {
            add_json_text(a, v);
        }
        break;
    case json_type_object: add_json_text(a, v); break;
    case json_type_null: json_object_put(a); return NULL;
    }
    return a;
}

static void kv_add(json_object *arr, const char *key, json_object *value)
{
    if (!value)
        return;
    json_object *kv = json_object_new_object();
    json_object_object_add(kv, "key", json_object_new_string(key));
    json_object_object_add(kv, "value", value);
    json_object_array_add(arr, kv);
}

static void kv_str(json_object *arr, const char *key, const char *v)
{
    json_object *s = json_object_new_string(v);
    kv_add(arr, key, any_value(s));
    json_object_put(s);
}

static json_object *attributes(json_object *attrs)
{
    json_object *arr = json_object_new_array();
    if (attrs && json_object_is_type(attrs, json_type_object)) {
        json_object_object_foreach(attrs, k, v) kv_add(arr, k, v ? any_value(v) : NULL);
    }
    return arr;
}

static int has_attr(json_object *attrs, const char *key)
{
    return attrs && json_object_object_get_ex(attrs, key, NULL);
}

/* Path `path` relative to the folder `dir` (both absolute, or both relative to the same
 * folder): "prompts/support.md", "../shared/p.md". Written into out. */
static void relpath(const char *dir, const char *path, char *out, size_t len)
{
    size_t common = 0, i = 0;
    /* The longest common prefix that ends on a folder boundary of dir. */
    for (; dir[i] && path[i] && dir[i] == path[i]; i++)
        if (dir[i] == '/')
            common = i + 1;
    /* dir's folders below that prefix each take a "../" (none when path is inside dir). */
    const char *up = dir + common;
    if (!dir[i] && path[i] == '/') {
        common = i + 1;
        up = "";
    }
    size_t n = 0;
    out[0] = 0;
    for (const char *p = up; *p; p++)
        if ((p == up || p[-1] == '/') && *p != '/' && n + 4 < len) {
            memcpy(out + n, "../", 4);
            n += 3;
        }
    snprintf(out + n, len - n, "%s", path + common);
}

/* The folder of an agent file path, into out ("" for a bare file name). */
static void dirname_of(const char *path, char *out, size_t len)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    snprintf(out, len, "%.*s", (int)n, path);
}

static void set_str_attr(json_object *a, const char *key, const char *v)
{
    json_object_object_add(a, key, json_object_new_string(v));
}

/* The span's attributes as backends read the GenAI conventions, from agentd's trace attrs:
 *   gen_ai.response.finish_reasons is an array (agentd records one reason as a string);
 *   gen_ai.request.model is the provider's model name ("gpt-4o-mini"), the provider goes to
 *     gen_ai.provider.name (agentd records "openai:gpt-4o-mini", the chain's first entry;
 *     when a fallback answered, the request went to the fallback's model);
 *   invoke_agent spans do not repeat their children's usage under gen_ai.usage.* (backends
 *     sum those over a trace, and would count every token twice): the run totals go to
 *     agentd.run.input_tokens / output_tokens / cost_usd;
 *   agentd.agent.path, agentd.prompt_file and agentd.prompt.file are relative to the
 *     agent's folder (agent_dir: from the root's agentd.agent.path, may be NULL), so an
 *     export names no machine's home directory;
 *   content (messages, tool arguments and results, the run's input) only with OTLP_CONTENT.
 * New reference. */
/* Attributes that carry what users and tools said: exported only with OTLP_CONTENT. */
static int content_attr(const char *key)
{
    static const char *const keys[] = {"gen_ai.input.messages",     "gen_ai.output.messages",
                                       "gen_ai.system_instructions", "gen_ai.tool.definitions",
                                       "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
                                       "agentd.input",               "agentd.answer"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(key, keys[i]))
            return 1;
    return 0;
}

static json_object *export_attrs(const spantree_span_t *s, int flags, const char *agent_dir)
{
    json_object *a = json_object_new_object();
    if (!a)
        return NULL;
    if (s->attrs) {
        json_object_object_foreach(s->attrs, k, v)
        {
            if ((flags & OTLP_CONTENT) || !content_attr(k))
                json_object_object_add(a, k, json_object_get(v));
        }
    }
    json_object *fr = jx_get(a, "gen_ai.response.finish_reasons");
    if (fr && json_object_is_type(fr, json_type_string)) {
        json_object *arr = json_object_new_array();
        json_object_array_add(arr, json_object_get(fr));
        json_object_object_add(a, "gen_ai.response.finish_reasons", arr);
    }
    const char *req = jx_str(a, "gen_ai.request.model");
    if (req) {
        char prov[64] = "", model[256];
        const char *colon = strchr(req, ':');
        if (colon && (size_t)(colon - req) < sizeof prov) {
            snprintf(prov, sizeof prov, "%.*s", (int)(colon - req), req);
            snprintf(model, sizeof model, "%s", colon + 1);
        } else {
            snprintf(model, sizeof model, "%s", req);
        }
        const char *resp = jx_str(a, "gen_ai.response.model");
        if (jx_str(a, "agentd.fallback.from") && resp)
            snprintf(model, sizeof model, "%s", resp);
        else if (prov[0] && !jx_str(a, "gen_ai.provider.name"))
            set_str_attr(a, "gen_ai.provider.name", prov);
        set_str_attr(a, "gen_ai.request.model", model);
    }
    if (strcmp(s->op, "invoke_agent") == 0) {
        static const char *const moved[][2] = {
            {"gen_ai.usage.input_tokens", "agentd.run.input_tokens"},
            {"gen_ai.usage.output_tokens", "agentd.run.output_tokens"},
            {"gen_ai.usage.cached_tokens", "agentd.run.cached_tokens"},
            {"gen_ai.usage.cost", "agentd.run.cost_usd"},
        };
        for (size_t k = 0; k < sizeof moved / sizeof moved[0]; k++) {
            json_object *v = jx_get(a, moved[k][0]);
            if (!v)
                continue;
            json_object_object_add(a, moved[k][1], json_object_get(v));
            json_object_object_del(a, moved[k][0]);
        }
    }
    /* File paths, relative to the agent's folder (from the run's root span). */
    static const char *const files[] = {"agentd.prompt_file", "agentd.prompt.file"};
    for (size_t k = 0; agent_dir && k < sizeof files / sizeof files[0]; k++) {
        const char *path = jx_str(a, files[k]);
        char rel[1024];
        if (path && path[0] == '/') {
            relpath(agent_dir, path, rel, sizeof rel);
            set_str_attr(a, files[k], rel);
        }
    }
    const char *agent_path = jx_str(a, "agentd.agent.path");
    if (agent_path) {
        const char *slash = strrchr(agent_path, '/');
        set_str_attr(a, "agentd.agent.path", slash ? slash + 1 : agent_path);
    }
    return a;
}

/* One span event: a point event on a span, or an instant child span (retry, guardrail). */
static void add_point_event(json_object *events, const char *name, const char *error, int64_t ts,
                            json_object *ev_attrs)
{
    json_object *e = json_object_new_object();
    json_object *attrs = attributes(ev_attrs);
    if (error)
        kv_str(attrs, "error.message", error);
    json_object_object_add(e, "timeUnixNano", nanos(ts));
    json_object_object_add(e, "name", json_object_new_string(name));
    json_object_object_add(e, "attributes", attrs);
    json_object_array_add(events, e);
}

/* A point event that annotates an existing span (a transition logged on the root, a log
 * line): its attrs plus the transition fields, as agentd.* attributes. */
static void add_event_line(json_object *events, const spantree_event_t *ev)
{
    json_object *o = jx_parse(ev->json), *a = NULL;
    if (!o)
        return;
    json_object *attrs = json_object_new_object();
    if (json_object_object_get_ex(o, "attrs", &a) && json_object_is_type(a, json_type_object)) {
        json_object_object_foreach(a, k, v) json_object_object_add(attrs, k, json_object_get(v));
    }
    static const char *const keys[] = {"state_from", "state_to", "event"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *v = jx_str(o, keys[k]);
        char name[40];
        snprintf(name, sizeof name, "agentd.%s", keys[k]);
        if (v)
            json_object_object_add(attrs, name, json_object_new_string(v));
    }
    const char *name = jx_str(o, "name") ? jx_str(o, "name") : jx_str(o, "op");
    add_point_event(events, name ? name : "event", jx_str(o, "error"), ev->ts_ns, attrs);
    json_object_put(attrs);
    json_object_put(o);
}

/* The transition that opened a state span, as attributes of that span. */
static void add_transition(json_object *attrs, const spantree_event_t *ev)
{
    json_object *o = jx_parse(ev->json);
    if (!o)
        return;
    static const char *const keys[] = {"state_from", "state_to", "event"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *v = jx_str(o, keys[k]);
        char name[40];
        snprintf(name, sizeof name, "agentd.%s", keys[k]);
        if (v)
            kv_str(attrs, name, v);
    }
    json_object_put(o);
}

static json_object *span_json(const spantree_t *m, int i, const char *trace_id, const int *first_pt,
                              const int *next_pt, int flags, const char *agent_dir)
{
    const spantree_span_t *s = &m->spans[i];
    char sid[17], pid[17];
    json_object *o = json_object_new_object();
    otlp_span_id(s->id, sid);
    json_object_object_add(o, "traceId", json_object_new_string(trace_id));
    json_object_object_add(o, "spanId", json_object_new_string(sid));
    if (s->parent_idx >= 0 || s->parent[0]) {
        otlp_span_id(s->parent, pid);
        json_object_object_add(o, "parentSpanId", json_object_new_string(pid));
    }
    json_object *xattrs = export_attrs(s, flags, agent_dir);
    /* The conventions' span name for a model call: "{operation} {request model}" (the
     * viewer's label may say more, such as which fallback answered). */
    const char *req = strcmp(s->op, "chat") == 0 ? jx_str(xattrs, "gen_ai.request.model") : NULL;
    char chat_name[300];
    if (req)
        snprintf(chat_name, sizeof chat_name, "chat %s", req);
    json_object_object_add(o, "name",
                           json_object_new_string(req ? chat_name : s->name ? s->name : s->op));
    json_object_object_add(
        o, "kind", json_object_new_int(strcmp(s->op, "chat") == 0 ? KIND_CLIENT : KIND_INTERNAL));
    json_object_object_add(o, "startTimeUnixNano", nanos(s->start_ns));
    json_object_object_add(o, "endTimeUnixNano", nanos(spantree_span_end(m, s, 0)));

    json_object *attrs = attributes(xattrs);
    json_object_put(xattrs);
    static const char *const genai_ops[] = {"invoke_agent", "chat", "execute_tool"};
    for (size_t k = 0; k < 3; k++)
        if (strcmp(s->op, genai_ops[k]) == 0 && !has_attr(s->attrs, "gen_ai.operation.name"))
            kv_str(attrs, "gen_ai.operation.name", s->op);
    kv_str(attrs, "agentd.op", s->op);
    if (s->step) {
        json_object *st = json_object_new_int(s->step);
        kv_add(attrs, "agentd.step", any_value(st));
        json_object_put(st);
    }
    if (!s->end_ns && !s->point) {
        json_object *t = json_object_new_boolean(1);
        kv_add(attrs, "agentd.span.unfinished", any_value(t));
        json_object_put(t);
    }
    for (int k = 0; k < s->nevs; k++) {
        const spantree_event_t *ev = &m->evs[s->evs[k]];
        if (ev->phase == 'b')
            add_transition(attrs, ev);
    }
    if (s->parent_idx < 0 && m->last_state[0])
        kv_str(attrs, "agentd.run.state", m->last_state);
    if (s->status == SPAN_ERROR && !has_attr(s->attrs, "error.type")) {
        /* The run's failure reason ("max_steps", "budget_exceeded") is the error class. */
        const char *reason = spantree_attr_str(s, "agentd.reason");
        kv_str(attrs, "error.type", reason ? reason : "_OTHER");
    }
    json_object_object_add(o, "attributes", attrs);

    json_object *events = json_object_new_array();
    for (int k = 0; k < s->nevs; k++) {
        const spantree_event_t *ev = &m->evs[s->evs[k]];
        if (ev->phase == 'p' && !s->point)
            add_event_line(events, ev);
    }
    for (int c = first_pt[i]; c >= 0; c = next_pt[c]) {
        const spantree_span_t *k = &m->spans[c];
        add_point_event(events, k->name ? k->name : k->op, k->error, k->start_ns, k->attrs);
    }
    if (json_object_array_length(events))
        json_object_object_add(o, "events", events);
    else
        json_object_put(events);
    if (s->status == SPAN_ERROR) {
        json_object *st = json_object_new_object();
        json_object_object_add(st, "code", json_object_new_int(STATUS_ERROR));
        if (s->error)
            json_object_object_add(st, "message", json_object_new_string(s->error));
        json_object_object_add(o, "status", st);
    }
    return o;
}

json_object *otlp_build(spantree_t *m, int flags)
{
    if (m->nspans == 0 || spantree_flatten(m, 1))
        return NULL;
    char trace_id[33];
    otlp_trace_id(m->run_id, trace_id);
    /* Instant spans, listed per parent (in seq order), become that parent's events. */
    int n = m->nspans;
    int *first_pt = malloc((size_t)n * sizeof *first_pt);
    int *next_pt = malloc((size_t)n * sizeof *next_pt);
    int *tail = malloc((size_t)n * sizeof *tail);
    if (!first_pt || !next_pt || !tail) {
        free(first_pt);
        free(next_pt);
        free(tail);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        first_pt[i] = next_pt[i] = tail[i] = -1;
    for (int i = 0; i < n; i++) {
        int p = m->spans[i].parent_idx;
        if (!annotation(&m->spans[i]))
            continue;
        if (tail[p] < 0)
            first_pt[p] = i;
        else
            next_pt[tail[p]] = i;
        tail[p] = i;
    }
    char agent_dir[1024] = "";
    int root = spantree_root(m);
    const char *agent_path =
        root >= 0 ? spantree_attr_str(&m->spans[root], "agentd.agent.path") : NULL;
    if (agent_path)
        dirname_of(agent_path, agent_dir, sizeof agent_dir);
    json_object *spans = json_object_new_array();
    /* Creation order: parents come before their children in practice. */
    for (int i = 0; i < n; i++)
        if (!annotation(&m->spans[i]))
            json_object_array_add(spans, span_json(m, i, trace_id, first_pt, next_pt, flags,
                                                            agent_dir[0] ? agent_dir : NULL));
    free(first_pt);
    free(next_pt);
    free(tail);
    json_object *res_attrs = json_object_new_array();
    kv_str(res_attrs, "service.name", "agentd");
    kv_str(res_attrs, "agentd.run.id", m->run_id);
    if (m->agent[0])
        kv_str(res_attrs, "gen_ai.agent.name", m->agent);
    json_object *resource = json_object_new_object();
    json_object_object_add(resource, "attributes", res_attrs);

    json_object *scope = json_object_new_object();
    json_object_object_add(scope, "name", json_object_new_string("agentd"));
    json_object_object_add(scope, "version", json_object_new_string("1"));
    json_object *ss = json_object_new_object();
    json_object_object_add(ss, "scope", scope);
    json_object_object_add(ss, "spans", spans);
    json_object *ss_arr = json_object_new_array();
    json_object_array_add(ss_arr, ss);

    json_object *rs = json_object_new_object();
    json_object_object_add(rs, "resource", resource);
    json_object_object_add(rs, "scopeSpans", ss_arr);
    json_object *rs_arr = json_object_new_array();
    json_object_array_add(rs_arr, rs);
    json_object *top = json_object_new_object();
    json_object_object_add(top, "resourceSpans", rs_arr);
    return top;
}

int otlp_write(spantree_t *m, int flags, FILE *out)
{
    json_object *o = otlp_build(m, flags);
    if (!o)
        return m->nspans ? ERR_NOMEM : ERR_INVAL;
    const char *s =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    int rc = 0;
    if (!s)
        rc = ERR_NOMEM;
    else if (fputs(s, out) == EOF || fputc('\n', out) == EOF)
        rc = ERR_IO;
    json_object_put(o);
    return rc;
}
