/*
 * guard: guardrail hooks, Lua functions an agent file declares in its `guardrails` table
 * (docs/guardrails.md):
 *
 *   guardrails = {
 *     on_input = function(input, ctx) ... end,      -- the run's question
 *     on_tool_call = function(call, ctx) ... end,   -- {name, args, id, step}
 *     on_output = function(output, ctx) ... end,    -- the final answer (text)
 *     max_output_retries = 2,
 *   }
 *
 * A hook returns a verdict and a reason: nothing, true or "allow" lets it through; false or
 * "deny" (on_output also "reject") stops it, with the second value as the reason the model
 * or the user reads; "ask" (on_tool_call only) pauses the call for a person's approval.
 *
 * Strategy: like a tool call, each hook call gets a fresh sandbox (sandbox.h) that runs the
 * agent file again and calls the function, with a small memory cap and CPU budget, so a
 * hook cannot keep state between calls, block the loop for long or see anything but its
 * arguments. It runs synchronously (no ctx doors: a hook decides from what it is given).
 * A hook that raises, runs out of budget or returns something unreadable fails closed: the
 * verdict is deny, and the reason says what went wrong.
 *
 * No global state; nothing re-enters.
 */
#ifndef AGENTD_GUARD_H
#define AGENTD_GUARD_H

#include <json-c/json.h>
#include <stddef.h>

enum { GUARD_ON_INPUT = 1, GUARD_ON_TOOL_CALL = 2, GUARD_ON_OUTPUT = 4 };

typedef enum guard_verdict { GUARD_ALLOW = 0, GUARD_DENY, GUARD_ASK } guard_verdict_t;

typedef struct guard_decision {
    guard_verdict_t verdict;
    int failed;       /* the hook itself failed (raised, budget, bad return): verdict DENY */
    char reason[512]; /* "" when the hook gave none */
    double ms;        /* how long the hook took */
} guard_decision_t;

/* Run the agent file at path once and check where it has functions: only
 * guardrails.on_input / on_tool_call / on_output may be. *hooks gets the GUARD_ON_* bits
 * declared. 0, or ERR_* with one line naming the file and field. */
int guard_scan(const char *path, unsigned *hooks, char *errbuf, size_t errlen);

/* Call guardrails[hook] of the agent file with (arg, ctx): arg and ctx are borrowed JSON
 * values handed to Lua. Always fills d; returns 0, or ERR_NOMEM. */
int guard_run(const char *path, const char *hook, json_object *arg, json_object *ctx,
              guard_decision_t *d);

/* "allow", "deny", "ask". */
const char *guard_verdict_name(guard_verdict_t v);

#endif
