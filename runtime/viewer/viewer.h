/*
 * viewer: `agentd trace`, the way users read what a run did.
 *
 *   agentd trace                     runs list (interactive when stdout is a terminal)
 *   agentd trace RUN                 span tree, timeline and details of one run
 *   agentd trace RUN --plain         the tree as text (the default when not a terminal)
 *   agentd trace RUN --json          the raw events, one JSON object per line
 *   agentd trace RUN --follow        keep showing new events until the run ends
 *   agentd trace export RUN --otlp [-o FILE]   OTLP/JSON, one TracesData per line
 * Common option: --db PATH (default $AGENTD_DB, else ./agentd.db). RUN may also be a
 * trace file (traces/<id>.jsonl): the tree, --json and export then need no database.
 *
 * The viewer only reads the database; it never changes a run.
 */
#ifndef AGENTD_VIEWER_H
#define AGENTD_VIEWER_H

/* Entry point for `agentd trace ...`; argv[0] is "trace". Returns a CLI_* exit code. */
int viewer_main(int argc, char **argv);

/* Usage text for `agentd help trace`. */
extern const char viewer_usage[];

#endif
