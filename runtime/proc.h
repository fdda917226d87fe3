/*
 * proc: everything a command needs to execute runs — the loop, the HTTP engine, the
 * store, the tool registry, the model client, the machine and the agent — opened together
 * and closed in the reverse order, with library globals released at the end so leak
 * checkers stay quiet.
 */
#ifndef AGENTD_PROC_H
#define AGENTD_PROC_H

#include "agent.h"
#include "http.h"
#include "loop.h"
#include "machine.h"
#include "model.h"
#include "store.h"
#include "tools.h"

typedef struct proc_opts {
    const char *agent_path;  /* required */
    const char *db_path;     /* NULL: cli_db_path default */
    const char *traces_dir;  /* NULL: beside the database (cli_traces_dir) */
    const char *tools_dir;   /* extra tools folder (--tools), or NULL */
    const char *model;       /* --model override, or NULL */
    const char *cache_mode;  /* --cache, or NULL (env AGENTD_CACHE, else off) */
    int durability;          /* STORE_DURABLE_* */
    int max_steps;           /* 0: agent's */
    int quiet_model_note;    /* don't print the "using offline" note */
    machine_observer_t obs;
} proc_opts_t;

typedef struct mcp mcp_t;

typedef struct proc {
    loop_t *lp;
    http_t *http;
    store_t *st;
    tools_t *tl;
    mcp_t *mcp; /* the agent's MCP servers (mcp/mcp.h) */
    model_client_t *mc;
    machine_t *m;
    agent_t *agent;
    char model_override[160];
    int cancelled;
    int signals_armed;
} proc_t;

/* Open everything; on failure prints nothing, fills errbuf with one line, and returns the
 * CLI exit code to use (CLI_USAGE for bad input files, CLI_INTERNAL otherwise). */
int proc_open(proc_t *s, const proc_opts_t *o, char *errbuf, size_t errlen);
/* One more agent for the same machine (agentd serve runs several): its MCP servers attached,
 * every tool it names checked against the loaded tools (tools_dir: the --tools folder or
 * NULL, for the message), its kb_sources indexed. a stays the caller's and must outlive the
 * runs. 0, or the CLI exit code with one line in errbuf. */
int proc_add_agent(proc_t *s, agent_t *a, const char *tools_dir, char *errbuf, size_t errlen);
/* Run the loop until every run has stopped (SIGINT cancels the runs, a second one exits). */
int proc_run(proc_t *s);
/* Before driving the loop again (one `agentd chat` turn after another): deliver what is
 * pending — a Ctrl-C pressed while no run was active — and forget it, so it cancels
 * nothing that starts later. */
void proc_rearm(proc_t *s);
/* Resume, in this process, every unfinished run of this process's agent whose owner died
 * (or whose lease expired). Returns how many were taken over. */
int proc_reclaim(proc_t *s);
void proc_close(proc_t *s);
/* Release process-wide library state; call once before exit. */
void proc_global_cleanup(void);

#endif
