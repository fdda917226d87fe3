/*
 * kb_cli: `agentd kb ...`, knowledge bases for retrieval (rag/rag.h).
 */
#ifndef AGENTD_KB_CLI_H
#define AGENTD_KB_CLI_H

extern const char kb_cli_usage[];

/* argv[0] == "kb". Returns a CLI_* exit code. */
int kb_cli_main(int argc, char **argv);

#endif
