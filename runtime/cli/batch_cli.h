/*
 * batch_cli: `agentd batch AGENT INPUTS.jsonl --concurrency C` — many runs of one agent in
 * one process, one per input line, at most C in flight, with a progress bar on a terminal
 * and a summary (runs, steps, wall and CPU time, peak RSS, tokens, cost) at the end. Every
 * input is recorded before the first run starts; `agentd batch --resume [BATCH]` finishes
 * a batch that was stopped (docs/durability.md).
 */
#ifndef AGENTD_BATCH_CLI_H
#define AGENTD_BATCH_CLI_H

#include "proc.h"

int batch_cli_main(int argc, char **argv);
/* Continue every recorded batch whose process is gone (`agentd resume --all`): start, in
 * this process, its inputs that have no run yet, at concurrency (0: the batch's own), with
 * base's options. Returns the worst exit code of the batches (0 when there were none). */
int batch_cli_resume_orphans(const proc_opts_t *base, int concurrency, int json);

#endif
