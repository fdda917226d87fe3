/*
 * offline_summary: how the offline model summarises older turns for context compaction
 * (model_req_t.purpose "summarize"): extractively, from a transcript written by the machine
 * (machine_compact.c):
 *
 *   Summary so far:            (when there is one)
 *   - user: ...
 *   Conversation:
 *   user: ...
 *   assistant: ...
 *   tool NAME: ...
 *
 * Each user line and each assistant answer (its first sentence) becomes a bullet; tool
 * traffic is dropped (the answers that used it stay). When the bullets do not fit in
 * max_bytes, the ones that carry identifiers (a token of 4+ characters with a digit, or an
 * e-mail address: order numbers, dates, ids) go first, then the user's lines, then the rest,
 * the oldest first within each rank; the kept bullets stay in conversation order. So a fact
 * such as "my order number is 1042" survives any number of later summaries.
 */
#ifndef AGENTD_OFFLINE_SUMMARY_H
#define AGENTD_OFFLINE_SUMMARY_H

#include <stddef.h>

/* New string (malloc'd) of at most max_bytes; NULL on ERR_NOMEM. */
char *offline_summary(const char *transcript, size_t max_bytes);

#endif
