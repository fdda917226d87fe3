/*
 * agent: an agent definition loaded from a Lua file (e.g. agents/support.lua) into a plain struct.
 * The file returns a table; the field reference is docs/agents.md. Loading happens once per
 * process per file; runs share the loaded agent read-only.
 */
#ifndef AGENTD_AGENT_H
#define AGENTD_AGENT_H

#include <json-c/json.h>
#include <stdint.h>

typedef struct agent {
    char *path;           /* as given */
    char *dir;            /* directory of the file */
    char *name;
    char *description;
    char **models;        /* NULL-terminated: model, then fallbacks */
    char *system_prompt;
    char prompt_hash[17]; /* FNV-1a 64 of the system prompt, hex; recorded in every trace */
    char *prompt_file;    /* NULL when inline */
    char prompt_commit[41]; /* git commit that last changed prompt_file, "" if untracked */
    int prompt_dirty;     /* prompt_file differs from that commit */
    json_object *vars;    /* defaults of the prompt's {{variables}} (object) or NULL */
    json_object *tools;   /* array of tool names the agent may use */
    json_object *output_schema; /* or NULL */
    json_object *approval;      /* object: tool name -> boolean override, or NULL */
    json_object *http_allow, *exec_allow, *secrets_allow; /* arrays or NULL */
    json_object *endpoints; /* {"openai": {"base_url", "api_key_env"}, ...} or NULL */
    int max_steps;        /* model turns; default 10 */
    int max_tool_calls;   /* per run; default 50 */
    int loop_limit;       /* same tool + same args this many times: rejected; default 3 */
    double deadline_s;    /* wall-clock budget; default 300 */
    int64_t max_tokens;   /* < 0 unlimited */
    double max_cost_usd;  /* < 0 unlimited */
    int max_model_calls;  /* < 0 unlimited */
    int64_t context_window; /* memory.context_window tokens; 0: the model's (compact.h) */
    double compact_at;    /* memory.compact_at: fraction of the window; default 0.8 */
    char *default_input;  /* or NULL */
    char *kb;             /* knowledge base the retrieve tool searches (ctx.kb.default), or NULL */
    json_object *kb_sources; /* files/folders (relative to the agent's folder) indexed into kb
                                before runs start; array or NULL */
    json_object *spec;    /* the whole table as JSON (recorded with each run) */
    int strategy;         /* AGENT_REACT (default) or AGENT_PLAN_EXECUTE (docs/strategies.md) */
    int max_replans;      /* limits.max_replans: new plans after a failed step; default 2 */
    json_object *agents;  /* sub-agents this agent calls as tools: array of names, or NULL */
    json_object *handoffs; /* agents it may hand the conversation to: array of names, or NULL */
} agent_t;

enum { AGENT_REACT = 0, AGENT_PLAN_EXECUTE = 1 };

/* Load and check an agent file. NULL with a one-line error naming the file and field. */
agent_t *agent_load(const char *path, char *errbuf, size_t errlen);
void agent_free(agent_t *a);

/* Does the agent require approval for this tool? tool_default is the tool's own flag. */
int agent_needs_approval(const agent_t *a, const char *tool, int tool_default);

#endif
