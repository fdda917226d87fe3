/*
 * chat_cli: `agentd chat`, an interactive conversation with an agent on a terminal; each
 * line is the next turn of a session (store.h). Returns a CLI_* exit code.
 */
#ifndef AGENTD_CHAT_CLI_H
#define AGENTD_CHAT_CLI_H

int chat_cli_main(int argc, char **argv);

#endif
