/*
 * compact: keep a model request inside the model's context window.
 *
 * A run's conversation (its session's earlier turns, then its own messages) is stored whole
 * and never edited; before each model call the machine asks compact_view() for the request's
 * messages. When their estimated tokens fit under threshold × limit, that is the
 * conversation itself. Otherwise whole older turns (a user message and everything up to the
 * next user message, so no tool call is ever separated from its result) are left out of the
 * request, oldest first (the newest turns that fit are kept), and a note appended to the
 * system prompt says how many messages were omitted. Always kept: the system prompt
 * (message 0), every message marked "pinned": true — a pinned user message with its turn's
 * final text answer, not its tool traffic — and the current turn (the latest user message
 * with every later message: the task and the latest tool results). So a fact the user
 * pinned at turn 1 is still in the request at turn 200. If even those do not fit, the
 * request is sent as compacted as it can be and the provider decides.
 *
 * Token estimate: ceil(bytes / 4) of each message's text fields plus 4 per message, the
 * rule of thumb of OpenAI's tokenizer for English (it over-estimates code and JSON a
 * little, which errs on the safe side). No global state; pure functions.
 */
#ifndef AGENTD_COMPACT_H
#define AGENTD_COMPACT_H

#include <json-c/json.h>
#include <stdint.h>

typedef struct compact_policy {
    int64_t limit;    /* context window in tokens; <= 0: unlimited (no compaction) */
    double threshold; /* compact when the estimate passes threshold × limit (0 < t <= 1) */
    int64_t reserved; /* tokens the request spends outside the messages (tool definitions) */
    /* Summarising compaction (docs/sessions.md). summary_reserve > 0 turns it on: that many
     * tokens of the budget are kept for a summary of older turns. summary (may be NULL)
     * stands for messages [1, summary_upto): when the request must be compacted, they are
     * replaced by one user message holding it (pinned ones among them are still kept
     * whole), and only turns from summary_upto on compete for the rest of the budget. */
    int64_t summary_reserve;
    const char *summary;
    size_t summary_upto;
} compact_policy_t;

typedef struct compact_stats {
    int64_t tokens_before, tokens_after;
    int omitted; /* messages left out of the request (summarised ones included) */
    /* With summary_reserve: messages left out that the summary does not cover yet. When
     * > 0, a new summary of [max(1, summary_upto), cover_to) is due; cover_to is a turn
     * boundary chosen so that what stays fits in half the budget, so summaries are made
     * every few turns rather than every turn. */
    int uncovered;
    size_t cover_to;
} compact_stats_t;

/* Estimated tokens of one neutral message (model.h). */
int64_t compact_estimate(json_object *msg);

/* The context window of "provider:model" from the shipped table (prefix match), or a
 * conservative default of 8,192 for models it does not know. */
int64_t compact_model_limit(const char *model);

/* The messages to send: a new reference to messages when they fit, else a new array
 * holding references to the kept messages and one note. NULL on allocation failure. */
json_object *compact_view(json_object *messages, const compact_policy_t *p,
                          compact_stats_t *st);

#endif
