/*
 * viewer_int: what the viewer's files share (viewer_cli.c parses the command line,
 * viewer_plain.c prints text, viewer.c is the interactive screen). Not for other modules.
 */
#ifndef AGENTD_VIEWER_INT_H
#define AGENTD_VIEWER_INT_H

#include "store.h"
#include "spantree.h"

#include <stdio.h>

/* How often follow mode looks for new events. */
#define VIEWER_POLL_MS 150

/* Open the database at path read-mostly: a missing file is an error (a viewer must not
 * create an empty database where the user mistyped a path). NULL with a message. */

/* Add the run's events with seq > m->last_seq to m. 0 or an ERR_* with a message. */
int viewer_load(store_t *st, spantree_t *m, char *errbuf, size_t errlen);

/* Is the locale's character set UTF-8 (else text output falls back to ASCII marks)? */
int viewer_utf8_locale(void);

/* Is this run state final (done, failed, cancelled)? */
int viewer_state_final(const char *state);

/* Print the run header and the span tree with durations, status and key attributes. */
void viewer_plain_tree(spantree_t *m, const store_run_t *run, FILE *out);
/* Print one event as a line of follow output: offset, seq, phase, name, key facts. */
void viewer_plain_event(const spantree_t *m, const spantree_event_t *ev, FILE *out);
/* The key attributes of a span as one short line ("openai gpt-4o in=12 out=3 $0.0001"),
 * with its error at the end when with_error. */
void viewer_span_facts(const spantree_span_t *s, int with_error, char *buf, size_t len);
/* Tail a run: print events (plain lines, or raw JSON when json) as they commit, until
 * the run is final. Returns a CLI_* code. */
int viewer_follow_plain(store_t *st, const char *run_id, int json, FILE *out);

/* The interactive viewer. run_id NULL starts at the runs list. Returns a CLI_* code. */
int viewer_tui(store_t *st, const char *db_path, const char *run_id, int follow);

#endif
