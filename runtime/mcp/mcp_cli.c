/*
 * mcp_cli: the `agentd mcp` commands.
 *
 *   agentd mcp serve [--tools DIR] [--agent AGENT.lua] [--listen HOST:PORT] [--db PATH]
 *                    [--page-size N] [--include-approval]
 *   agentd mcp tools AGENT.lua [--json]
 *
 * serve: the Lua tools of DIR (default ./tools), or of the agent's tool list with the
 * agent's policy (its http_allow, exec_allow, secrets apply to ctx), as an MCP server on
 * stdio, or on Streamable HTTP with --listen. tools: start the agent's MCP servers and list
 * the tools they add, as a run would see them.
 */
#include "mcp_int.h"

#include "cli/cli.h"
#include "err.h"
#include "store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int usage(void)
{
    fprintf(stderr,
            "usage: agentd mcp serve [--tools DIR] [--agent AGENT.lua] [--listen HOST:PORT]\n"
            "                        [--db PATH] [--page-size N] [--include-approval]\n"
            "       agentd mcp tools AGENT.lua [--json]\n");
    return CLI_USAGE;
}

typedef struct serve_opts {
    const char *tools_dir, *agent, *listen, *db;
    long page;
    int include_approval;
} serve_opts_t;

static int serve(const serve_opts_t *o)
{
    int code = CLI_INTERNAL;
    char err[1024];
    agent_t *ag = NULL;
    store_t *st = NULL;
    http_t *h = NULL;
    tools_t *all = NULL, *tl = NULL;
    mcp_srv_t *srv = NULL;
    /* stdout belongs to the protocol, and a client that goes away must not kill us
     * mid-write. */
    signal(SIGPIPE, SIG_IGN);
    loop_t *lp = loop_new();
    if (!lp || !(h = http_new(lp)))
        goto done;
    if (o->agent && !(ag = agent_load(o->agent, err, sizeof err))) {
        fprintf(stderr, "agentd: %s\n", err);
        code = CLI_USAGE;
        goto done;
    }
    if (!(st = store_open(cli_db_path(o->db), STORE_DURABLE_FULL, err, sizeof err))) {
        fprintf(stderr, "agentd: %s\n", err);
        code = CLI_INTERNAL;
        goto done;
    }
    char dir[1200];
    if (o->tools_dir)
        snprintf(dir, sizeof dir, "%s", o->tools_dir);
    else if (ag)
        snprintf(dir, sizeof dir, "%s/../tools", ag->dir);
    else
        snprintf(dir, sizeof dir, "tools");
    if (!(all = tools_new(lp, h, st)) || !(tl = tools_new(lp, h, st)))
        goto done;
    if (tools_load_dir(all, dir, err, sizeof err) != 0) {
        fprintf(stderr, "agentd: %s\n", err);
        code = CLI_USAGE;
        goto done;
    }
    /* With an agent, only the tools it names (from its tools folder), in its order. */
    tools_t *use = all;
    if (ag) {
        for (size_t i = 0; i < json_object_array_length(ag->tools); i++) {
            const char *n = json_object_get_string(json_object_array_get_idx(ag->tools, i));
            const tool_t *t = tools_get(all, n);
            if (!t) {
                fprintf(stderr, "agentd: %s: tools[%zu]: no tool named \"%s\" in %s\n",
                        ag->path, i + 1, n, dir);
                code = CLI_USAGE;
                goto done;
            }
            if (tools_load_file(tl, tool_path(t), err, sizeof err) != 0) {
                fprintf(stderr, "agentd: %s\n", err);
                code = CLI_USAGE;
                goto done;
            }
        }
        use = tl;
    }
    tools_policy_t pol = {
        .agent = ag ? ag->name : "mcp",
        .http_allow = ag ? ag->http_allow : NULL,
        .exec_allow = ag ? ag->exec_allow : NULL,
        .secrets_allow = ag ? ag->secrets_allow : NULL,
    };
    mcp_srv_opts_t so = {.policy = &pol, .page_size = (size_t)o->page,
                         .include_approval = o->include_approval};
    if (!(srv = mcp_srv_new(lp, use, &so)))
        goto done;
    code = o->listen ? mcp_serve_http(lp, srv, o->listen) : mcp_serve_stdio(lp, srv);
done:
    mcp_srv_free(srv);
    tools_free(tl);
    tools_free(all);
    http_free(h);
    loop_free(lp);
    store_close(st);
    agent_free(ag);
    return code;
}

static int list_tools(const char *agent_path, int json)
{
    char err[1024];
    int code = CLI_INTERNAL;
    agent_t *ag = agent_load(agent_path, err, sizeof err);
    if (!ag) {
        fprintf(stderr, "agentd: %s\n", err);
        return CLI_USAGE;
    }
    loop_t *lp = loop_new();
    http_t *h = lp ? http_new(lp) : NULL;
    tools_t *tl = h ? tools_new(lp, h, NULL) : NULL;
    mcp_t *m = tl ? mcp_new(lp, h, tl) : NULL;
    if (!m)
        goto done;
    if (mcp_attach_agent(m, ag, err, sizeof err) != 0) {
        fprintf(stderr, "agentd: %s\n", err);
        code = CLI_FAILED;
        goto done;
    }
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < tools_count(tl); i++) {
        const tool_t *t = tools_at(tl, i);
        if (json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "name", json_object_new_string(tool_name(t)));
            json_object_object_add(o, "server", json_object_new_string(tool_path(t)));
            json_object_object_add(o, "description",
                                   json_object_new_string(tool_description(t)));
            json_object_object_add(o, "parameters", json_object_get(tool_parameters(t)));
            json_object_array_add(a, o);
        } else {
            printf("%-32s %-14s %.80s\n", tool_name(t), tool_path(t), tool_description(t));
        }
    }
    if (json)
        printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(a);
    code = CLI_OK;
done:
    mcp_free(m);
    tools_free(tl);
    http_free(h);
    loop_free(lp);
    agent_free(ag);
    return code;
}

int mcp_cli_main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "tools") == 0) {
        const char *agent = NULL;
        int json = 0;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--json") == 0)
                json = 1;
            else if (argv[i][0] != '-' && !agent)
                agent = argv[i];
            else
                return usage();
        }
        return agent ? list_tools(agent, json) : usage();
    }
    if (strcmp(argv[1], "serve") != 0)
        return usage();
    serve_opts_t o = {0};
    for (int i = 2; i < argc; i++) {
        const char *v;
        int r;
        if ((r = cli_opt(argc, argv, &i, "--tools", &o.tools_dir)) ||
            (r = cli_opt(argc, argv, &i, "--agent", &o.agent)) ||
            (r = cli_opt(argc, argv, &i, "--listen", &o.listen)) ||
            (r = cli_opt(argc, argv, &i, "--db", &o.db))) {
            if (r < 0)
                return CLI_USAGE;
            continue;
        }
        if ((r = cli_opt(argc, argv, &i, "--page-size", &v))) {
            if (r < 0 || (o.page = cli_long("--page-size", v, 1, 10000)) < 0)
                return CLI_USAGE;
            continue;
        }
        if (strcmp(argv[i], "--include-approval") == 0) {
            o.include_approval = 1;
            continue;
        }
        fprintf(stderr, "agentd: mcp serve: unknown argument %s\n", argv[i]);
        return usage();
    }
    return serve(&o);
}
