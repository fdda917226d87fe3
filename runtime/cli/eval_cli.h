/*
 * eval_cli: `agentd eval FILE ...` (evaluation with a regression gate, eval/eval.h) and
 * `agentd stats` / `agentd slo check` (operations figures over real runs, eval/stats.h).
 */
#ifndef AGENTD_EVAL_CLI_H
#define AGENTD_EVAL_CLI_H

/* argv[0] is "eval". Exit 0 no regression, 1 regression, 2 harness error. */
int eval_cli_main(int argc, char **argv);
/* argv[0] is "stats". */
int stats_cli_main(int argc, char **argv);
/* argv[0] is "slo". Exit 0 every objective met, 1 some breached, 2 bad file. */
int slo_cli_main(int argc, char **argv);

#endif
