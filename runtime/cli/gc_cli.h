/*
 * gc_cli: `agentd gc` — retention. Deletes finished runs with their messages, tool calls,
 * events and trace files; never touches a run that is still going or waiting.
 */
#ifndef AGENTD_GC_CLI_H
#define AGENTD_GC_CLI_H

int gc_cli_main(int argc, char **argv);

/* Parse "30d", "12h", "15m", "90s", "2w" into nanoseconds; -1 if malformed. */
long long gc_parse_duration(const char *s);

#endif
