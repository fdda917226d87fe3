/*
 * tcall: see tcall.h. The table below is the single source of truth for tool-call states;
 * the machine changes a call's state only through tcall_set (machine_act.c), which checks it.
 */
#include "tcall.h"

#include <string.h>

static const char *const names[] = {
    [TC_PENDING] = "pending", [TC_AWAITING_APPROVAL] = "awaiting_approval",
    [TC_APPROVED] = "approved", [TC_RUNNING] = "running",
    [TC_OK] = "ok",           [TC_ERROR] = "error",
    [TC_TIMEOUT] = "timeout", [TC_REJECTED] = "rejected",
    [TC_UNKNOWN] = "unknown",
};
_Static_assert(sizeof names / sizeof names[0] == TC__COUNT, "a name for every tool-call state");

static const tcall_move_t moves[] = {
    {TC_PENDING, TC_RUNNING},           /* guardrails passed, intent committed */
    {TC_PENDING, TC_REJECTED},          /* a guardrail refused it */
    {TC_PENDING, TC_AWAITING_APPROVAL}, /* the agent or the tool asks a human first */
    {TC_AWAITING_APPROVAL, TC_APPROVED},
    {TC_AWAITING_APPROVAL, TC_REJECTED},
    {TC_APPROVED, TC_RUNNING},
    {TC_RUNNING, TC_OK},
    {TC_RUNNING, TC_ERROR},
    {TC_RUNNING, TC_TIMEOUT},
    {TC_RUNNING, TC_REJECTED}, /* the arguments failed the schema: the tool never ran */
    {TC_RUNNING, TC_UNKNOWN},  /* interrupted, not idempotent */
    {TC_RUNNING, TC_APPROVED}, /* interrupted, idempotent: run again on resume */
};

const char *tcall_state_name(tcall_state_t s)
{
    return (unsigned)s < TC__COUNT ? names[s] : "?";
}

int tcall_state_parse(const char *name)
{
    for (int i = 0; name && i < TC__COUNT; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

int tcall_state_final(tcall_state_t s)
{
    return s == TC_OK || s == TC_ERROR || s == TC_TIMEOUT || s == TC_REJECTED || s == TC_UNKNOWN;
}

int tcall_move_allowed(tcall_state_t from, tcall_state_t to)
{
    for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++)
        if (moves[i].from == from && moves[i].to == to)
            return 1;
    return 0;
}

const tcall_move_t *tcall_moves(size_t *n)
{
    *n = sizeof moves / sizeof moves[0];
    return moves;
}
