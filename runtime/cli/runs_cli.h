/*
 * runs_cli: `agentd runs [--json] [--state S] [--limit N] [--db PATH]`, the table of runs
 * (id, agent, state, steps, duration, tokens, cost), newest first.
 */
#ifndef AGENTD_RUNS_CLI_H
#define AGENTD_RUNS_CLI_H

/* Entry point; argv[0] is "runs". Returns a CLI_* exit code. */
int runs_cli_main(int argc, char **argv);

extern const char runs_cli_usage[];

#endif
