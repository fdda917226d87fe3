/*
 * run_cli: the commands that execute runs in this process: run, resume, approve, deny.
 * Each takes argv with argv[0] the command name and returns a CLI_* exit code.
 */
#ifndef AGENTD_RUN_CLI_H
#define AGENTD_RUN_CLI_H

int run_cli_run(int argc, char **argv);
int run_cli_resume(int argc, char **argv);
int run_cli_decide(int argc, char **argv); /* "approve" or "deny" */

#endif
