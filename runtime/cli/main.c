/*
 * main: the agentd command line. Each command lives in its own module; this file only
 * dispatches and prints help.
 */
#include "batch_cli.h"
#include "chat_cli.h"
#include "cli.h"
#include "eval_cli.h"
#include "gc_cli.h"
#include "mcp/mcp.h"
#include "kb_cli.h"
#include "memory_cli.h"
#include "models_cli.h"
#include "run_cli.h"
#include "runs_cli.h"
#include "serve_cli.h"
#include "sessions_cli.h"
#include "stats_cli.h"
#include "schema/schema.h"
#include "proc.h"
#include "prompt_cli.h"
#include "tools_cli.h"
#include "viewer/viewer.h"

#include <stdio.h>
#include <string.h>

#define AGENTD_VERSION "0.1.0"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *synopsis;
    const char *help;
} command_t;

static const command_t commands[] = {
    {"run", run_cli_run, "run AGENT.lua [INPUT|-] [options]",
     "Start a run of the agent on INPUT (a question; - reads stdin; default: the agent's\n"
     "default_input) and show each transition as it commits.\n"
     "  --model M          use M first (openai:gpt-4o-mini, anthropic:..., offline); the agent's\n"
     "                     fallbacks still follow it\n"
     "  --db PATH|URL      database (default $AGENTD_DB, else ./agentd.db); a postgres://\n"
     "                     URL selects PostgreSQL, shared by many workers (docs/scaling.md)\n"
     "  --traces DIR       trace files folder (default $AGENTD_TRACES, else beside the\n"
     "                     database: traces/ for agentd.db, NAME.traces/ for NAME.db, ./traces\n"
     "                     for a URL); AGENTD_TRACE_FILES=segments (default:\n"
     "                     segment-NNNNNN.jsonl, all runs; current.jsonl the newest), runs\n"
     "                     (<run-id>.jsonl each) or off\n"
     "  --tools DIR        extra tools folder (tools/ beside the agent's folder is always used)\n"
     "  --max-steps N      override limits.max_steps\n"
     "  --durability full|normal  SQLite synchronous mode, PostgreSQL synchronous_commit\n"
     "                     (default full: a power cut loses nothing committed; normal trades\n"
     "                     that for speed)\n"
     "  --cache MODE       model response cache: off, read, write, readwrite, replay\n"
     "  --session NAME     run as the next turn of conversation NAME (created when new): the\n"
     "                     run sees the earlier turns; one unfinished turn at a time (exit 2)\n"
     "  --pin              with --session: keep this input in every later request when the\n"
     "                     conversation is compacted to the model's context window\n"
     "  --var NAME=VALUE   a value for the system prompt's {{NAME}} (repeat for more); a\n"
     "                     variable with no value (here or in the agent's vars) is an error\n"
     "                     before any model call\n"
     "  --user NAME        the user the run is for (default $AGENTD_USER): scopes the agent's\n"
     "                     long-term memory when memory.long_term = \"user\"\n"
     "  --json             print only a JSON summary of the run\n"
     "  --quiet            print only the summary\n"},
    {"resume", run_cli_resume, "resume RUN|--all [options]",
     "Continue an unfinished run from its last committed state. A tool call that was running\n"
     "when agentd stopped is re-run only if the tool is idempotent; otherwise the model is told\n"
     "its outcome is unknown. --all resumes every unfinished run whose process is gone, then\n"
     "starts the inputs of stopped batches that never got a run (agentd batch --resume).\n"},
    {"batch", batch_cli_main, "batch AGENT.lua INPUTS.jsonl [--concurrency C] [options]",
     "Run the agent once per input line (a JSON string, or {\"input\": \"...\"}), at most C\n"
     "runs at a time in this one process (default 16). Shows a progress bar on a terminal and a\n"
     "summary at the end: runs done/failed, steps, wall and CPU time, peak RSS, tokens, cost.\n"
     "  --json   one JSON line per run as it ends (input, state, answer, steps, tokens, cost,\n"
     "           latency), then the summary as one JSON object\n"
     "Also takes --model, --db, --traces, --tools, --durability, --cache as `agentd run` does.\n"
     "Every input is recorded in the database before the first run starts (the batch id is\n"
     "printed); a batch that was stopped or killed is finished, each input exactly once, by\n"
     "  agentd batch --resume [BATCH]   (no BATCH: every batch whose process is gone)\n"
     "or by `agentd resume --all`.\n"},
    {"runs", runs_cli_main, "runs [--json] [--state S] [--limit N] [--db PATH]",
     "List runs, newest first: id, agent, state, steps, duration, tokens, cost.\n"},
    {"trace", viewer_main, "trace [RUN] [--plain] [--json] [--follow] [--db PATH]",
     "Show a run's trace. On a terminal: the interactive viewer (runs list, span tree with a\n"
     "timeline, event detail, follow mode; keys are shown on screen). Otherwise, or with\n"
     "--plain: the span tree with durations. --json prints the raw events; --follow tails a\n"
     "live run.\n"
     "  agentd trace export RUN --otlp [-o FILE]   OTLP/JSON for OpenTelemetry collectors\n"},
    {"tools", tools_cli_main, "tools list|check|call ...",
     "  agentd tools list [--json] [--tools DIR]     names, descriptions, schemas\n"
     "  agentd tools check [FILE...]                 lint tool files (schema, fields, policy)\n"
     "  agentd tools call NAME '{json}' [--tools DIR] [--db PATH]\n"
     "                                               validate, run one call, print the result\n"},
    {"models", models_cli_main, "models [--check] [MODEL...] [--agent AGENT.lua] [--json]",
     "List the model providers as configured here: wire format, base URL and where it came\n"
     "from (environment variable, agent file or default), the key's variable and whether it\n"
     "is set, and whether this base URL needs one (a server other than the provider's own\n"
     "needs none). With --check, send one request (max_tokens 1, no retry, no fallback) to\n"
     "each MODEL, else to the --agent's chain, else to every configured provider, and say\n"
     "whether it answered. Exit: 0, 1 when a check failed.\n"},
    {"new", tools_new_main, "new tool NAME",
     "Write tools/NAME.lua, a commented skeleton that passes `agentd tools check`.\n"},
    {"schema", schema_cli_main,
     "schema check [--draft 7|2020-12] [--format-assert] [--map URL_PREFIX=DIR] SCHEMA.json "
     "INSTANCE.json",
     "Validate INSTANCE.json against the JSON Schema SCHEMA.json (draft 2020-12 unless\n"
     "$schema or --draft says draft-07). Prints `valid` or one error per line with the\n"
     "instance location, e.g. /items/2/qty: must be >= 1.\n"
     "Exit: 0 valid, 1 invalid, 2 the schema itself is bad or a file cannot be read.\n"},
    {"gc", gc_cli_main, "gc (--older-than DURATION | --keep N) [--vacuum] [--db PATH]",
     "Delete finished runs (done, failed, cancelled) older than DURATION (30d, 12h, 15m, 90s)\n"
     "and/or beyond the newest N runs, with their messages, tool calls, events and trace files\n"
     "(per-run files, and trace segments whose runs are all gone).\n"
     "Runs still going or waiting are never touched. --vacuum compacts the database after.\n"},
    {"chat", chat_cli_main, "chat AGENT.lua [--session NAME] [--user NAME] [--model M] [--db PATH]",
     "An interactive conversation: each line you type is the next turn of a session (a new\n"
     "one named chat-DATE-TIME unless --session names one to continue). Answers stream, tool\n"
     "calls show as they happen, approvals are asked inline, Ctrl-C cancels the turn (not the\n"
     "session), the arrow keys recall earlier lines; Ctrl-D or /exit leaves.\n"},
    {"sessions", sessions_cli_main, "sessions list|show NAME|rm NAME [--json] [--db PATH]",
     "Conversations: `list` (name, agent, turns, last state), `show NAME` (each turn's input\n"
     "and answer), `rm NAME` (delete the session with its runs and trace files; refused while\n"
     "a turn is unfinished). `agentd run AGENT \"...\" --session NAME` adds a turn.\n"},
    {"mcp", mcp_cli_main, "mcp serve|tools ...",
     "  agentd mcp serve [--tools DIR] [--agent AGENT.lua] [--listen HOST:PORT]\n"
     "      Serve Lua tools to MCP clients: over stdio (newline-delimited JSON-RPC), or over\n"
     "      Streamable HTTP at http://HOST:PORT/mcp with --listen. --tools DIR (default\n"
     "      ./tools) serves every tool there; --agent serves the agent's tools with its policy\n"
     "      (http_allow, exec_allow, secrets). Tools with approval = true are left out unless\n"
     "      --include-approval. Also --db PATH (ctx.kv), --page-size N (tools/list pages).\n"
     "  agentd mcp tools AGENT.lua [--json]\n"
     "      Start the agent's MCP servers and list the tools they add to its runs.\n"},
    {"kb", kb_cli_main, "kb add|list|stats|rm|search|eval ...",
     "Knowledge bases for retrieval (docs/rag.md):\n"
     "  agentd kb add KB PATH... [--strategy fixed|structure|sentence] [--size N] [--overlap N]\n"
     "                [--embedder offline|openai:MODEL] [--dim N] [--quant f32|int8]\n"
     "  agentd kb list | stats KB | rm KB\n"
     "  agentd kb search KB QUERY [--mode keyword|vector|hybrid|all] [-k N] [--path GLOB]\n"
     "                [--heading TEXT] [--kw-weight W] [--vec-weight W] [--json]\n"
     "  agentd kb eval KB[,KB...] QUESTIONS.jsonl [--json]   recall@1/5/10 and MRR per mode\n"
     "  --kb-db PATH   the KB database (default $AGENTD_KB_DB, else the run database;\n"
     "                 ./agentd.kb.db when that is a PostgreSQL URL)\n"},
    {"eval", eval_cli_main,
     "eval FILE [--model A,B] [--agent A.lua,B.lua] [--repeat N] [--concurrency C] "
     "[--cache MODE] [--baseline FILE] [--save FILE] [--json | --junit FILE]",
     "Run an eval file (docs/eval.md): each case as an ordinary run, tagged with the eval id,\n"
     "C at a time (default 8); every agent x model of the matrix is a variant. Prints a table\n"
     "(case, result, score, latency, tokens, cost, reason) and a summary per variant (pass\n"
     "rate, per variant family, p50/p95 latency, error rate, cost), then the gate.\n"
     "  --repeat N        N attempts per case: pass@N, pass^N and flaky cases\n"
     "  --judge MODEL     the model that grades llm_rubric assertions (default: the file's)\n"
     "  --baseline FILE   compare with an earlier --save: pass rate, cases that passed and now\n"
     "                    fail, cost per case, p95 latency (thresholds: the file's gate table)\n"
     "  --save FILE       write the results (JSON), usable as the next --baseline\n"
     "  --json            the results as JSON on stdout (the gate report on stderr)\n"
     "  --junit FILE      JUnit XML for CI\n"
     "Also --cache MODE, --db PATH, --traces DIR as `agentd run`.\n"
     "Exit: 0 no regression, 1 regression (or, with no baseline, a pass rate below the\n"
     "gate's min_pass_rate), 2 harness error (bad file, a run that could not start, a judge\n"
     "that could not grade).\n"},
    {"stats", stats_cli_main, "stats [--since 24h] [--agent NAME] [--by agent|model|tool] [--json]",
     "Operations figures over the runs of a window (--since 90s|30m|24h|7d|all; default 24h):\n"
     "runs, error rate by reason, run and model-call latency p50/p95/p99, tokens and cost per\n"
     "run, cache hit rate, retry rate, tool calls and error rate per tool. --by groups them.\n"},
    {"slo", slo_cli_main, "slo check SLO_FILE [--db PATH]",
     "Check objectives over the runs of a window. SLO_FILE is Lua:\n"
     "  return { window = \"1h\", agent = \"support\", objectives = {\n"
     "    { figure = \"error_rate\", max = 0.02 }, { figure = \"p95_latency_ms\", max = 8000 },\n"
     "    { figure = \"cost_per_run_usd\", max = 0.01 } } }\n"
     "One line per objective (ok or BREACHED). Exit: 0 all met, 1 some breached, 2 bad file.\n"},
    {"prompt", prompt_cli_main,
     "prompt try AGENT.lua|PROMPT_FILE \"input\" [--n 20] [--temperature 0,0.7,1.2] [--model M]",
     "Sample the same prompt and input N times (default 20) at each temperature and report the\n"
     "spread: distinct answers and how often each came, output-schema validity (the agent's\n"
     "output_schema, or --schema FILE), tokens in/out, latency p50/p95, cost. With an agent\n"
     "file each sample is a full run (tools included, recorded like any run); with a prompt\n"
     "file (Markdown/text with {{variables}}, --var NAME=VALUE) each is one model call with the\n"
     "prompt as the system message (default model: offline).\n"
     "  --max-context   instead send inputs of 0.25, 0.5, 1 and 2 times the model's context\n"
     "                  window and show what happens at each size\n"
     "  --json          the report as JSON\n"},
    {"prompts", prompts_cli_main, "prompts list [DIR|AGENT.lua...] [--json]",
     "List the prompts of the agents in DIR (default agents/) or the files named: the prompt\n"
     "file, its content hash (the one every chat span records), the git commit that last\n"
     "changed it (+ when the file has uncommitted changes), its {{variables}} and the agents\n"
     "that use it. Unused prompt files in DIR/prompts are listed with no agent.\n"},
    {"serve", serve_cli_main, "serve [--listen HOST:PORT] [--agents DIR] [options]",
     "Serve the agents of a folder over HTTP: runs API with live events (SSE), an\n"
     "OpenAI-compatible /v1/chat/completions (model \"agent:NAME\"), /metrics, /healthz,\n"
     "/readyz; bearer auth (AGENTD_API_TOKEN), limits, graceful drain on SIGTERM. Every flag\n"
     "and variable: agentd serve --help. The API: docs/api.md.\n"},
    {"memory", memory_cli_main, "memory list|show SCOPE|search SCOPE QUERY|rm SCOPE [ID]",
     "Agents' long-term memory (docs/memory.md): the facts the remember tool saved, per scope\n"
     "(AGENT, AGENT/user/NAME or AGENT/session/NAME). `list` the scopes, `show` one, `search`\n"
     "it as the recall tool does, `rm` one memory or a whole scope. --db PATH: the run\n"
     "database the memory database sits beside (agentd.memory.db; $AGENTD_MEMORY_DB).\n"},
    {"approve", run_cli_decide, "approve RUN CALL [--args JSON] [options]",
     "Approve a tool call a waiting run asked for, and continue the run. --args approves it\n"
     "with these arguments instead (a JSON object, checked against the tool's schema).\n"},
    {"deny", run_cli_decide, "deny RUN CALL --reason TEXT [options]",
     "Deny a tool call a waiting run asked for; the model sees the reason. The run continues.\n"},
};

static const char *const exit_codes =
    "Exit codes: 0 ok (run done; also when a fallback model answered: the summary says\n"
    "            which and why) · 1 run failed or cancelled · 2 bad command line or input\n"
    "            (also: --model names a provider whose key is not set) · 3 run waiting for\n"
    "            approval · 4 database or internal error\n";

static void usage(FILE *f)
{
    fprintf(f, "agentd %s — an agent runtime: durable state machine, Lua tools, traces\n\n"
               "usage: agentd COMMAND [ARGS]\n\n",
            AGENTD_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  agentd %s\n", commands[i].synopsis);
    fprintf(f, "  agentd help COMMAND\n\n%s", exit_codes);
}

static int help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            printf("usage: agentd %s\n\n%s\n%s", commands[i].synopsis, commands[i].help,
                   exit_codes);
            return CLI_OK;
        }
    }
    fprintf(stderr, "agentd: no command named \"%s\"; see agentd --help\n", argv[1]);
    return CLI_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("agentd %s\n", AGENTD_VERSION);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "help"))
        return help(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            int code = commands[i].fn(argc - 1, argv + 1);
            proc_global_cleanup();
            return code;
        }
    }
    fprintf(stderr, "agentd: unknown command \"%s\"; see agentd --help\n", argv[1]);
    return CLI_USAGE;
}
