/*
 * trace: one JSON event per transition, model call, retry, tool call and guardrail
 * decision. Events are written to SQLite (inside the transition's transaction, by the
 * caller via store_event_add) as a body without v, run_id and seq (the row's columns;
 * trace_body_write; in trace_body.h's short form), and the group commit (machine_batch.c
 * flush_cb, mbatch_finish) hands the
 * whole line (trace_line_write) to the trace files, tracelog.h: the segment log once the
 * commit is durable, or, with AGENTD_TRACE_FILES=runs, <dir>/<run-id>.jsonl — just before
 * the commit for runs that already exist in the database (and whose earlier lines are
 * written), once it is durable for runs created in that batch. A kill
 * between the two leaves a per-run file ahead of or behind the database; the run is then
 * unfinished there, and its resume rewrites the file from the database (trace_rewrite_*);
 * a segment only ever lacks lines. The database is the truth; trace_db.h reads it back as
 * whole lines.
 *
 * Event format, schema version 1 (one JSON object per line):
 *   v            1
 *   run_id       "5f3a9c12e4b0d7a1" (16 lowercase hex; OTLP trace id = run_id twice)
 *   seq          1.. per run, gap-free, continues across resume
 *   ts_ns        wall clock, ns since the Unix epoch
 *   mono_ns      monotonic clock, ns (comparable within one process only)
 *   span_id      16 hex; the run's root span id is the run id itself
 *   parent_id    16 hex or null (null only for the root span's events)
 *   phase        "begin" | "end" | "point"  (a span is the events sharing its span_id)
 *   op           invoke_agent | plan | act | observe | wait | chat | execute_tool |
 *                retry | guardrail | log
 *   name         human label: "invoke_agent support", "chat gpt-4o-mini", "execute_tool x"
 *   state_from, state_to, event   set on transition events, else null
 *   end_span     on transitions: the state span this transition closes (or null)
 *   step         step number of the run (model turns so far)
 *   status       "ok" | "error" | null
 *   error        one-line message or null
 *   attrs        object; OpenTelemetry GenAI names (gen_ai.operation.name is op itself,
 *                not repeated here; the OTLP export adds it): gen_ai.provider.name, gen_ai.request.model, gen_ai.response.model,
 *                gen_ai.usage.input_tokens, gen_ai.usage.output_tokens, gen_ai.usage.cost,
 *                gen_ai.tool.name, gen_ai.tool.call.id, gen_ai.agent.name,
 *                gen_ai.conversation.id (= run id), plus agentd.* extras.
 * Fields that would be null are omitted (readers treat a missing field as null).
 * Secrets never appear in attrs: callers pass data redacted with redact.h.
 */
#ifndef AGENTD_TRACE_H
#define AGENTD_TRACE_H

#include "buf.h"

#include <json-c/json.h>
#include <stdint.h>

#define TRACE_VERSION 1
#define TRACE_RESULT_MAX 1024 /* bytes of a tool's result its execute_tool end event shows */

/* What an execute_tool event shows of its tool_calls row: the begin event the call's
 * arguments and idempotency key, the end event its result (the first TRACE_RESULT_MAX bytes).
 * The line carries them as its last attrs (gen_ai.tool.call.arguments,
 * agentd.idempotency_key, gen_ai.tool.call.result); the stored body leaves them to the row,
 * and trace_db.c joins them back. */
typedef struct trace_call {
    const char *args, *idem; /* begin events, else NULL */
    const char *result;      /* end events with a result, else NULL */
} trace_call_t;

typedef struct trace_ev {
    const char *span_id;
    const char *parent_id;   /* NULL for root-span events */
    const char *phase;       /* "begin", "end", "point" */
    const char *op;
    const char *name;
    const char *state_from, *state_to, *event, *end_span; /* transitions only */
    int step;
    const char *status;      /* "ok", "error" or NULL */
    const char *error;
    json_object *attrs;      /* borrowed, may be NULL */
    const trace_call_t *call; /* execute_tool events: the row's part (non-empty attrs) */
    int64_t ts_ns, mono_ns;   /* 0: stamped when written (tests pin them) */
} trace_ev_t;

/* Append the JSON text (no newline) of ev as event seq of run_id, stamped now, to b.
 * 0, or the buffer's sticky error (ERR_NOMEM, ERR_TOOBIG). A caller that keeps b for the
 * next event allocates nothing once b has grown. */
int trace_event_write(buf_t *b, const char *run_id, int64_t seq, const trace_ev_t *ev);
/* The event of run_id as the database stores it (the body of its events row): the same
 * object without v, run_id and seq, which the row's columns hold, without ev->call, which
 * its tool_calls row holds, and with short keys (trace_body.h). 0 or the buffer's sticky
 * error. */
int trace_body_write(buf_t *b, const char *run_id, const trace_ev_t *ev);
/* Append the whole event (the JSONL line, no newline) of a stored body[0..len) of run_id's
 * event seq to b: the head and the full keys put back, and call (may be NULL) as the last
 * attrs. A body stored whole (before this layout) is copied as it is, one stored with full
 * keys (before short keys) gets its head and call. */
int trace_line_write(buf_t *b, const char *run_id, int64_t seq, const char *body, size_t len,
                     const trace_call_t *call);
/* Both at once, for the writer of an event: its stored body (trace_body_write) to body and
 * its line to line, stamped alike; the line is what trace_line_write would make of that
 * body, written from ev instead of parsed back from the body. 0 or the first sticky error. */
int trace_body_line_write(buf_t *body, buf_t *line, const char *run_id, int64_t seq,
                          const trace_ev_t *ev);
/* Whether a stored body is one of this layout (it leaves run_id, seq and the call's row
 * part out), not a whole event stored by an earlier version. */
int trace_body_is_slim(const char *body, size_t len);
/* trace_event_write as a new string (malloc'd), NULL if memory ran out. */
char *trace_event_build(const char *run_id, int64_t seq, const trace_ev_t *ev);

/* Append line + '\n' to <dir>/<run_id>.jsonl (O_APPEND, created 0644). 0 or ERR_IO. */
int trace_file_append(const char *dir, const char *run_id, const char *line);
/* Open <dir>/<run_id>.jsonl for appending (created 0644); a descriptor or -1. A driver of
 * a run keeps it for the run's life instead of opening the file per event. */
int trace_file_open(const char *dir, const char *run_id);
/* Append line + '\n' with one write (readers never see half a line). 0 or ERR_IO. */
int trace_fd_append(int fd, const char *line);

/* <dir>/<run_id>.jsonl into buf. */
int trace_file_path(const char *dir, const char *run_id, char *buf, size_t len);

/* Rebuild a trace file from the database's events: the file is appended after each commit,
 * so a process killed between the two leaves it short; on resume it is rewritten (to a
 * temporary file, then renamed) so file and database agree again. */
typedef struct trace_rewrite trace_rewrite_t;
trace_rewrite_t *trace_rewrite_begin(const char *dir, const char *run_id);
int trace_rewrite_line(trace_rewrite_t *w, const char *line);
/* Commit (rename) when ok, else discard. Frees w. 0 or ERR_IO. */
int trace_rewrite_end(trace_rewrite_t *w, int ok);

/* New 16-hex span id into buf[17]: a per-thread generator seeded from getrandom (again in a
 * forked child), unique, not unpredictable. */
void trace_span_id(char buf[17]);

/* Replace secrets in s (in place, same length): values of environment variables named
 * *KEY*, *TOKEN*, *SECRET*, *PASSWORD*, and the values after "Bearer " and "x-api-key: " become
 * "[REDACTED]" (padded with '*'). Newlines are kept (redact.h's redact_copy makes one line);
 * OTLP content capture uses it. */
void trace_redact(char *s);

#endif
