/*
 * tcall: the states of one tool call and the table of what may follow what.
 *
 *   pending ──> running ──> ok | error | timeout | rejected | unknown
 *      │           └──> approved (resume: an idempotent call interrupted while running)
 *      ├──> rejected                       (a guardrail refused it: unknown tool, limit, loop)
 *      └──> awaiting_approval ──> approved ──> running
 *                          └──> rejected   (an operator denied it)
 *
 * `pending`: the model asked for it, no guardrail has looked at it yet. `running`: committed
 * with its idempotency key before it starts (intent before effect). `approved`: it passed the
 * guardrails or a human approved it, and will start without being checked again; not in
 * DESIGN.md's list because a call can wait in it across a process restart. `rejected` also
 * covers arguments the schema refused (the tool never ran). `unknown`: the process stopped
 * while it ran and the tool is not idempotent. ok, error, timeout, rejected and unknown are
 * final.
 *
 * The enum is the only form inside the runtime; names appear only where a call leaves it:
 * the tool_calls table, trace attributes and the observation the model reads.
 */
#ifndef AGENTD_TCALL_H
#define AGENTD_TCALL_H

#include <stddef.h>

typedef enum tcall_state {
    TC_PENDING,
    TC_AWAITING_APPROVAL,
    TC_APPROVED,
    TC_RUNNING,
    TC_OK,
    TC_ERROR,
    TC_TIMEOUT,
    TC_REJECTED,
    TC_UNKNOWN,
    TC__COUNT
} tcall_state_t;

typedef struct tcall_move {
    tcall_state_t from, to;
} tcall_move_t;

/* "pending", "awaiting_approval", ...; "?" for a value out of range. */
const char *tcall_state_name(tcall_state_t s);
/* The state named name, or -1 (a row written by something else: say so, do not guess). */
int tcall_state_parse(const char *name);
/* 1 for ok, error, timeout, rejected, unknown. */
int tcall_state_final(tcall_state_t s);
/* 1 when from -> to is in the table. */
int tcall_move_allowed(tcall_state_t from, tcall_state_t to);
/* The table, for tests and docs. */
const tcall_move_t *tcall_moves(size_t *n);

#endif
