/*
 * prompt_cli: `agentd prompts list` (prompt files, their hashes, commits, variables and the
 * agents that use them) and `agentd prompt try` (the playground: one prompt sampled many
 * times per temperature, with the spread of its answers).
 */
#ifndef AGENTD_PROMPT_CLI_H
#define AGENTD_PROMPT_CLI_H

/* argv[0] is "prompts". Returns a CLI_* exit code. */
int prompts_cli_main(int argc, char **argv);
/* argv[0] is "prompt". Returns a CLI_* exit code. */
int prompt_cli_main(int argc, char **argv);

#endif
