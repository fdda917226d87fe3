/*
 * tools_cli: the tool author's commands, wired into main.c by the lead.
 *   agentd tools list [--json] [--tools DIR]
 *   agentd tools check [FILE...] [--tools DIR]
 *   agentd tools call NAME ['{json}'|-] [--tools DIR] [--db PATH] [--agent FILE]
 *                    [--allow-host H] [--allow-exec PROG] [--allow-secret VAR]
 *   agentd new tool NAME [--tools DIR]
 * Exit codes are cli.h's: 0 ok, 1 a check failed or the call ended in error/timeout/
 * rejected, 2 bad command line or input, 4 internal.
 */
#ifndef AGENTD_TOOLS_CLI_H
#define AGENTD_TOOLS_CLI_H

/* argv[0] == "tools". */
int tools_cli_main(int argc, char **argv);
/* argv[0] == "new", argv[1] == "tool", argv[2] == NAME: writes DIR/NAME.lua. */
int tools_new_main(int argc, char **argv);

#endif
