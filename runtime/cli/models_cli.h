/*
 * models_cli: `agentd models [--check] [MODEL...] [--agent AGENT.lua] [--json]`: the model
 * providers as configured in this environment (base URL and where it came from, the key's
 * variable and whether it is set or needed), and with --check whether each model answers a
 * one-token request.
 */
#ifndef AGENTD_MODELS_CLI_H
#define AGENTD_MODELS_CLI_H

/* Entry point; argv[0] is "models". Returns a CLI_* exit code: 0, 1 when a check failed,
 * 2 on a bad command line. */
int models_cli_main(int argc, char **argv);

#endif
