/*
 * batch_cli: `agentd batch AGENT INPUTS.jsonl --concurrency C` — many runs of one agent in
 * one process, one per input line, at most C in flight, with a progress bar on a terminal
 * and a summary (runs, steps, wall and CPU time, peak RSS, tokens, cost) at the end.
 */
#ifndef AGENTD_BATCH_CLI_H
#define AGENTD_BATCH_CLI_H

int batch_cli_main(int argc, char **argv);

#endif
