/*
 * eval_cli: `agentd eval FILE ...`, evaluation with a regression gate (eval/eval.h).
 */
#ifndef AGENTD_EVAL_CLI_H
#define AGENTD_EVAL_CLI_H

/* argv[0] is "eval". Exit 0 no regression, 1 regression, 2 harness error. */
int eval_cli_main(int argc, char **argv);

#endif
