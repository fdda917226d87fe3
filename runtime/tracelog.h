/*
 * tracelog: where trace lines go besides the database (which stays the truth).
 *
 * Three modes, chosen per process (AGENTD_TRACE_FILES, parsed by tracelog_mode_parse):
 *   segments (default)  every run's lines in one append-only log, <dir>/segment-NNNNNN.jsonl,
 *                       rotated by size; <dir>/current.jsonl is a symlink to the segment being
 *                       written, so `tail -F current.jsonl` follows all runs across rotations,
 *                       and `grep '"run_id":"ID"'` (or `agentd trace ID --json`) gives one run.
 *   runs                one file per run, <dir>/<run-id>.jsonl (trace.h's trace_file_*): the
 *                       layout of earlier versions; creating a file per run costs the kernel
 *                       an inode allocation, ~17 % of the CPU of 1,000 concurrent runs.
 *   off                 the database only.
 *
 * A segment receives the lines of one group commit once that commit is durable
 * (machine_batch.c, mbatch_finish): it never holds an event the database lacks. A kill
 * between the commit and the write loses that batch's lines from the segment (at most one
 * loop turn's worth per run); they stay in the database. Lines of one
 * batch are written with one write(2) on an O_APPEND descriptor, so several processes sharing
 * a folder interleave whole batches, never parts of a line. A process moves to the next
 * segment when the one it writes has reached the size limit; another process writing the same
 * folder follows within 64 lines, so a segment may pass the limit by that much. A segment
 * deleted while a process writes it (rm, gc from another process) is noticed within 64
 * lines too, and a new one (the folder too, if it went) is started.
 */
#ifndef AGENTD_TRACELOG_H
#define AGENTD_TRACELOG_H

#include <stddef.h>
#include <stdint.h>

enum { TRACELOG_SEGMENTS = 0, TRACELOG_RUNS = 1, TRACELOG_OFF = 2 };

#define TRACELOG_SEGMENT_MB 64 /* default size limit of a segment */

/* "segments", "runs", "off" (NULL or "" is segments) into *mode. 0 or ERR_INVAL. */
int tracelog_mode_parse(const char *s, int *mode);

typedef struct tracelog tracelog_t;

/* A writer for the segments of dir (borrowed string, copied), each up to max_bytes. Opens
 * nothing until the first flush. NULL if memory ran out. */
tracelog_t *tracelog_new(const char *dir, size_t max_bytes);
/* Queue line (no newline) for the next flush. 0 or ERR_NOMEM. */
int tracelog_add(tracelog_t *t, const char *line, size_t len);
/* Write the queued lines to the current segment with one write, rotating first when it is
 * full. The queue is empty afterwards either way. 0 or ERR_IO (ERR_NOMEM if a line was lost
 * to memory). */
int tracelog_flush(tracelog_t *t);
/* The segment last written ("" before the first flush). */
const char *tracelog_path(const tracelog_t *t);
/* Closes the descriptor; queued lines are dropped. NULL is a no-op. */
void tracelog_free(tracelog_t *t);

/* Delete the segments of dir last written before before_ns (wall clock), except the newest:
 * such a segment holds only lines of runs created before before_ns. *removed counts them.
 * 0, or ERR_IO when the folder cannot be read (a missing folder removes nothing). */
int tracelog_prune(const char *dir, int64_t before_ns, int *removed);

#endif
