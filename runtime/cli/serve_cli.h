/*
 * serve_cli: the `agentd serve` command (runtime/server/).
 */
#ifndef AGENTD_SERVE_CLI_H
#define AGENTD_SERVE_CLI_H

/* argv[0] == "serve". Returns the exit code. */
int serve_cli_main(int argc, char **argv);

#endif
