/*
 * stats_cli: `agentd stats` (operations figures over the runs of a window) and `agentd slo
 * check SLO_FILE` (objectives on those figures, for cron and CI), over eval/stats.h.
 */
#ifndef AGENTD_STATS_CLI_H
#define AGENTD_STATS_CLI_H

/* argv[0] is "stats". */
int stats_cli_main(int argc, char **argv);
/* argv[0] is "slo". Exit 0 every objective met, 1 some breached, 2 bad file or command. */
int slo_cli_main(int argc, char **argv);

#endif
