/*
 * sessions_cli: `agentd sessions list|show|rm`, the conversations in a database.
 * Returns a CLI_* exit code.
 */
#ifndef AGENTD_SESSIONS_CLI_H
#define AGENTD_SESSIONS_CLI_H

int sessions_cli_main(int argc, char **argv);

#endif
