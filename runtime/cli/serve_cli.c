/*
 * serve_cli: `agentd serve` — parse the flags and environment into server_opts_t and run
 * the server (runtime/server/server.h; docs/api.md).
 */
#include "serve_cli.h"

#include "cli.h"
#include "eval/stats.h"
#include "server/server.h"
#include "server/server_int.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const help_text =
    "usage: agentd serve [--listen HOST:PORT] [--agents DIR] [options]\n"
    "\n"
    "Serve the agents of DIR over HTTP on the loop that runs them (docs/api.md):\n"
    "  POST /v1/runs, GET /v1/runs[/ID[/events]], POST /v1/runs/ID/approve|deny|cancel,\n"
    "  GET /v1/agents, POST /v1/chat/completions (model \"agent:NAME\"; the messages before\n"
    "  the last user message are the conversation the run starts with), GET /metrics,\n"
    "  GET /healthz, GET /readyz. Every refusal, bad HTTP included, is a JSON error\n"
    "  {\"error\":{\"type\",\"message\"}}. SIGTERM drains: no new requests, streams end, runs in\n"
    "  flight get --drain-timeout to finish; the rest is resumed by the next serve.\n"
    "  Many workers may share one database (docs/scaling.md): each drives the runs it\n"
    "  leases, takes over those of a dead worker (and a dead batch's inputs) every 5 s,\n"
    "  and serves any run's events, approvals and cancel, whichever worker drives it.\n"
    "\n"
    "  --listen HOST:PORT     address (default 127.0.0.1:8080; env AGENTD_LISTEN); port 0\n"
    "                         picks a free one. A non-loopback address needs AGENTD_API_TOKEN\n"
    "  --agents DIR           the agents a request may name: DIR/NAME.lua (default agents;\n"
    "                         env AGENTD_AGENTS); tools come from DIR/../tools and --tools\n"
    "  --db PATH              database (default $AGENTD_DB, else ./agentd.db)\n"
    "  --traces DIR           trace files folder (default: beside the database)\n"
    "  --tools DIR            extra tools folder\n"
    "  --cache MODE           model response cache: off, read, write, readwrite, replay\n"
    "                         (default $AGENTD_CACHE, else off)\n"
    "  --durability full|normal  SQLite synchronous mode (default full)\n"
    "  --max-body BYTES       largest request body; past it 413 (default 1048576)\n"
    "  --max-headers BYTES    largest request line and headers; past it 431 (default 16384)\n"
    "  --max-connections N    open client connections; past it 429 (default 1024)\n"
    "  --max-runs N           runs in flight; past it POST /v1/runs is 429 with Retry-After\n"
    "                         (default 1000)\n"
    "  --timeout S            idle read/write timeout of a connection, and the longest a new\n"
    "                         connection may take to send its first request: slow-loris\n"
    "                         clients are cut (default 30)\n"
    "  --wait-timeout S       longest a wait=true request is held; then the run's current\n"
    "                         state is returned (default 300)\n"
    "  --drain-timeout S      SIGTERM: longest wait for runs in flight (default 10)\n"
    "  --port-file PATH       write the port once listening (for scripts and tests)\n"
    "  --stats-window DUR     /metrics' agentd_stats_* gauges (the `agentd stats` figures by\n"
    "                         agent) cover runs created this recently (default 1h; off:\n"
    "                         none). Computed on the loop, ~0.1 ms per run in the window,\n"
    "                         at most every 15 s\n"
    "  --routes               print every route (METHOD PATH) and exit\n"
    "  --help                 this text\n"
    "\n"
    "Environment:\n"
    "  AGENTD_API_TOKEN       bearer token: every /v1 and /metrics request must send\n"
    "                         Authorization: Bearer TOKEN (compared in constant time);\n"
    "                         required when --listen is not a loopback address\n"
    "  AGENTD_LISTEN, AGENTD_AGENTS, AGENTD_DB, AGENTD_CACHE   defaults of the flags above\n"
    "  AGENTD_LEASE_S         a run's lease in seconds (default 30, 3..3600), renewed every\n"
    "                         third of it: a worker dead on another host is taken over\n"
    "                         after it. The same on every worker of a database\n"
    "  OPENAI_API_KEY, ANTHROPIC_API_KEY, *_BASE_URL, ...      model providers, as for\n"
    "                         `agentd run` (see `agentd models`)\n"
    "\n"
    "Exit: 0 after a drain, 2 bad flags or agents (or a missing token), 4 internal error.\n";

static int usage(void)
{
    fprintf(stderr, "usage: agentd serve [--listen HOST:PORT] [--agents DIR] [options] "
            "(agentd serve --help)\n");
    return CLI_USAGE;
}

int serve_cli_main(int argc, char **argv)
{
    server_opts_t o;
    server_opts_default(&o);
    const char *env;
    if ((env = getenv("AGENTD_LISTEN")) && *env)
        o.listen = env;
    if ((env = getenv("AGENTD_AGENTS")) && *env)
        o.agents_dir = env;
    o.token = getenv("AGENTD_API_TOKEN");
    for (int i = 1; i < argc; i++) {
        const char *val;
        int m;
        long n;
/* OPT(name) { body } runs body when argv[i] is that option (value in val). */
#define OPT(name) CLI_OPT(name, return CLI_USAGE)
#define NUM(name, field, lo, hi)                                                         \
    OPT(name)                                                                            \
    {                                                                                    \
        if ((n = cli_long(name, val, lo, hi)) < 0)                                       \
            return CLI_USAGE;                                                            \
        o.field = (__typeof__(o.field))n;                                                \
        continue;                                                                        \
    }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help_text, stdout);
            return CLI_OK;
        }
        if (!strcmp(argv[i], "--routes")) {
            for (int r = 0; r < SR_OTHER; r++)
                printf("%s %s\n", srv_route_method((sroute_id_t)r),
                       srv_route_path((sroute_id_t)r));
            return CLI_OK;
        }
        OPT("--listen") { o.listen = val; continue; }
        OPT("--agents") { o.agents_dir = val; continue; }
        OPT("--db") { o.db_path = val; continue; }
        OPT("--traces") { o.traces_dir = val; continue; }
        OPT("--tools") { o.tools_dir = val; continue; }
        OPT("--cache") { o.cache_mode = val; continue; }
        OPT("--port-file") { o.port_file = val; continue; }
        OPT("--stats-window") {
            if (!strcmp(val, "off")) {
                o.stats_window_ns = 0;
                continue;
            }
            if ((o.stats_window_ns = stats_parse_duration(val)) <= 0) {
                fprintf(stderr, "agentd serve: --stats-window: expected a duration such as "
                        "15m, 1h, 7d, got \"%s\"\n", val);
                return CLI_USAGE;
            }
            continue;
        }
        OPT("--durability") {
            if (!strcmp(val, "full"))
                o.durability = STORE_DURABLE_FULL;
            else if (!strcmp(val, "normal"))
                o.durability = STORE_DURABLE_NORMAL;
            else {
                fprintf(stderr, "agentd: --durability: expected full or normal, got \"%s\"\n",
                        val);
                return CLI_USAGE;
            }
            continue;
        }
        NUM("--max-body", max_body, 64, 1L << 30)
        NUM("--max-headers", max_headers, 256, 1L << 20)
        NUM("--max-connections", max_conns, 1, 1000000)
        NUM("--max-runs", max_runs, 1, 1000000)
        NUM("--timeout", timeout_s, 1, 86400)
        NUM("--wait-timeout", wait_s, 1, 86400)
        NUM("--drain-timeout", drain_s, 0, 86400)
#undef NUM
#undef OPT
        fprintf(stderr, "agentd serve: %s: unknown argument (agentd serve --help)\n", argv[i]);
        return usage();
    }
    return server_main(&o);
}
