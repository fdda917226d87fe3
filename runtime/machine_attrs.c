/*
 * machine_attrs: the trace attributes of the machine's spans (OpenTelemetry GenAI names plus
 * agentd.* extras), built here so machine_act.c keeps only what each state does. Pure: each
 * function reads the run and returns or fills a json-c object.
 */
#include "machine_int.h"

#include "jx.h"
#include "prompt/prompt.h"

#include <string.h>

/* The attributes every execute_tool event carries. */
json_object *mact_tool_attrs(const tcall_t *c)
{
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "gen_ai.tool.name", jx_new_str(c->name));
    json_object_object_add(attrs, "gen_ai.tool.call.id", jx_new_str(c->id));
    if (strcmp(c->wire, c->id) != 0)
        json_object_object_add(attrs, "agentd.tool.call.wire_id", jx_new_str(c->wire));
    return attrs;
}

json_object *mact_chat_attrs(machine_run_t *r, const model_resp_t *resp)
{
    json_object *attrs = json_object_new_object();
    json_object_object_add(attrs, "gen_ai.provider.name", jx_new_str(resp->provider));
    json_object_object_add(attrs, "gen_ai.request.model", jx_new_str(r->models[0]));
    json_object_object_add(attrs, "gen_ai.response.model", jx_new_str(resp->model));
    json_object_object_add(attrs, "gen_ai.usage.input_tokens",
                           json_object_new_int64(resp->usage.input_tokens));
    json_object_object_add(attrs, "gen_ai.usage.output_tokens",
                           json_object_new_int64(resp->usage.output_tokens));
    if (resp->usage.cached_tokens)
        json_object_object_add(attrs, "gen_ai.usage.cached_tokens",
                               json_object_new_int64(resp->usage.cached_tokens));
    json_object_object_add(attrs, "gen_ai.usage.cost", jx_new_num(resp->usage.cost_usd));
    json_object_object_add(attrs, "agentd.attempts", json_object_new_int(resp->attempts));
    json_object_object_add(attrs, "agentd.latency_ms",
                           jx_new_num((double)(loop_mono_ns() - r->chat_t0) / 1e6));
    if (resp->cached)
        json_object_object_add(attrs, "agentd.cached", json_object_new_boolean(1));
    if (resp->finish)
        json_object_object_add(attrs, "gen_ai.response.finish_reasons", jx_new_str(resp->finish));
    if (resp->err && resp->reason)
        json_object_object_add(attrs, "error.type", jx_new_str(resp->reason));
    /* The offline model's choice and why (scores per tool, round, what it still needs):
     * docs/offline.md. A real provider's body stays in the model-call log, not the trace. */
    if (resp->response_body && resp->provider && !strcmp(resp->provider, "offline"))
        json_object_object_add(attrs, "agentd.offline.decision",
                               json_object_get(resp->response_body));
    if (resp->fallback_from) {
        json_object_object_add(attrs, "agentd.fallback.from", jx_new_str(resp->fallback_from));
        json_object_object_add(attrs, "agentd.fallback.reason", jx_new_str(resp->fallback_why));
    }
    return attrs;
}

/* Which prompt this request sends: the file, its content hash, the git commit that last
 * changed it, and the hash of the rendered text when {{variables}} were filled in. */
void mact_prompt_attrs(machine_run_t *r, json_object *attrs)
{
    const agent_t *a = r->agent;
    if (a->prompt_file) {
        /* Relative to the agent's folder, as the invoke_agent span's agentd.prompt_file is
         * in an export: a trace names no machine's home directory. */
        const char *f = a->prompt_file, *slash = strrchr(a->path, '/');
        size_t dl = slash ? (size_t)(slash - a->path) : 0;
        if (dl && strncmp(f, a->path, dl) == 0 && f[dl] == '/')
            f += dl + 1;
        json_object_object_add(attrs, "agentd.prompt.file", jx_new_str(f));
    }
    json_object_object_add(attrs, "agentd.prompt.hash", jx_new_str(a->prompt_hash));
    if (a->prompt_commit[0]) {
        json_object_object_add(attrs, "agentd.prompt.git_commit", jx_new_str(a->prompt_commit));
        if (a->prompt_dirty)
            json_object_object_add(attrs, "agentd.prompt.git_dirty", json_object_new_boolean(1));
    }
    if (r->temp_set)
        json_object_object_add(attrs, "gen_ai.request.temperature",
                               jx_new_num(r->temperature));
    json_object *sys = json_object_array_get_idx(r->messages, 0);
    const char *text = jx_str(sys, "content");
    if (text && prompt_has_vars(a->system_prompt)) {
        char h[17];
        prompt_hash(text, h);
        json_object_object_add(attrs, "agentd.prompt.rendered_hash", jx_new_str(h));
    }
}
