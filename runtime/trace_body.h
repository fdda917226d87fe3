/*
 * trace_body: the stored form of an event body (the events row's body column), private to
 * trace.c (which writes it) and trace_db.c (which reads it back through trace_line_write).
 * It is the event without v, run_id and seq (the row's columns) and without the tool call's
 * row part (trace.h's trace_call_t), and, to keep a run's rows small, shorter:
 *   - an event that is no transition is a JSON array of its fields by position (the slots
 *     below; absent ones null, trailing ones left out); a transition is an object of the
 *     fields the transitions view reads, under their names (ts_ns, state_from, state_to,
 *     event, step), and TB_FIELDS: the slots again, those two 0;
 *   - an attrs key in trace_body.c's dictionary is one character; any other key of one
 *     character, or starting with '~', is stored behind a '~'; the rest as they are;
 *   - span_id, parent_id, end_span and attrs' gen_ai.conversation.id equal to the run id
 *     are 0; other ids of 16 lowercase hex are 11 characters (trace_body_id), any other id
 *     of 11 characters, or starting with '~', is stored behind a '~';
 *   - ts_ns of an event that is no transition, when the run id starts with its creation
 *     time (12 hex of wall-clock ms: machine_run.c), is -(offset from that time + 1) (a
 *     wall clock is never negative);
 *   - a phase, op or status of trace.h's lists is its number in trace_body.c's (a string
 *     otherwise);
 *   - a name that is the op, a space and the value of state_to or of attrs'
 *     gen_ai.agent.name, gen_ai.tool.name, gen_ai.request.model, gen_ai.response.model is
 *     that source's number (TB_NAME_*).
 * Values are never changed otherwise, and the reader puts the fields back in the line's
 * order, so it gives back the very text the event had. The dictionary and the lists only
 * ever grow at their end: stored rows refer to their positions. Bodies written before this
 * form (full keys) read as they are.
 */
#ifndef AGENTD_TRACE_BODY_H
#define AGENTD_TRACE_BODY_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

/* The short top-level keys, in the order the fields are written. */
#define TB_TS       "t"
#define TB_MONO     "m"
#define TB_SPAN     "s"
#define TB_PARENT   "p"
#define TB_PHASE    "h"
#define TB_OP       "o"
#define TB_NAME     "n"
#define TB_END_SPAN "x"
#define TB_STEP     "i"
#define TB_STATUS   "u"
#define TB_ERROR    "r"
#define TB_ATTRS    "a"
#define TB_FIELDS   "f" /* a transition's fields other than the view's, as slots */

/* A stored array's slots, in order: TB_TS TB_MONO TB_SPAN TB_PARENT TB_PHASE TB_OP TB_NAME
 * TB_STEP TB_ATTRS TB_STATUS TB_ERROR TB_END_SPAN (trace.c put_slots, trace_body.c SLOTS). */

/* Where a derived name's second half comes from: state_to, then these attrs. */
enum { TB_NAME_STATE_TO = 1, TB_NAME_AGENT, TB_NAME_TOOL, TB_NAME_REQ_MODEL, TB_NAME_RESP_MODEL };
extern const char *const trace_body_name_attr[]; /* [TB_NAME_AGENT..TB_NAME_RESP_MODEL] */

/* The wall-clock ns the run id starts with (its first 12 hex: ms), or -1 if it is not 16
 * lowercase hex or the time does not fit. */
int64_t trace_body_base_ns(const char *run_id);
/* The 11-character form of an id of 16 lowercase hex into out[12]; 0 if it is not one. */
int trace_body_id(const char *id, char out[12]);
/* The code of a phase (field TB_PHASE) or op (TB_OP) value v, stored as a number, or -1
 * for a value without one (stored as it is). */
int trace_body_code(const char *field, const char *v);
/* The one-character token of an attrs key, or 0 when it has none. */
char trace_body_attr_token(const char *key);
/* Whether body[0..len) has short keys (this form), not full keys. */
int trace_body_is_short(const char *body, size_t len);
/* Append body[0..len), a short-key body of run_id, with full keys and the derived values
 * put back (the body as stored before short keys). 0, ERR_INVAL if the text is not a body
 * of this form, or the buffer's sticky error. */
int trace_body_expand(buf_t *b, const char *run_id, const char *body, size_t len);

/* Whether body[0..len) (either form) is an execute_tool event: its phase into phase[8] and
 * its gen_ai.tool.call.id into id[64] (trace_db.c joins the tool_calls row by it). */
int trace_body_tool_call(const char *body, size_t len, char phase[8], char id[64]);

#endif
