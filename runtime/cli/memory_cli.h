/*
 * memory_cli: `agentd memory list|show|search|rm`, agents' long-term memory (memory/memory.h).
 */
#ifndef AGENTD_MEMORY_CLI_H
#define AGENTD_MEMORY_CLI_H

/* argv[0] == "memory". Returns a CLI_* exit code. */
int memory_cli_main(int argc, char **argv);

#endif
