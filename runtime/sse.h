/*
 * sse: an incremental parser for Server-Sent Events (text/event-stream), as both model APIs
 * stream them. Bytes arrive in arbitrary chunks; each complete event is handed to the
 * callback with its "event" name ("" when absent, i.e. "message") and its joined "data".
 *
 * Invariant: the callback is called only from sse_feed(), never re-entrantly.
 */
#ifndef AGENTD_SSE_H
#define AGENTD_SSE_H

#include <stddef.h>

/* Return 0 to go on, nonzero to stop: sse_feed then returns that value. */
typedef int (*sse_event_fn)(void *ud, const char *event, const char *data, size_t len);

typedef struct sse {
    char *line;          /* partial line carried between chunks */
    size_t line_len, line_cap;
    char *data;          /* data of the event being built */
    size_t data_len, data_cap;
    char event[64];
    int has_data;
    int skip_lf;         /* last chunk ended in CR: a leading LF is part of that line end */
    size_t max_event;    /* bytes; an event larger than this is an error (ERR_TOOBIG) */
    sse_event_fn cb;
    void *ud;
} sse_t;

void sse_init(sse_t *p, sse_event_fn cb, void *ud, size_t max_event);
/* 0, ERR_NOMEM, ERR_TOOBIG, or the callback's nonzero return. */
int sse_feed(sse_t *p, const char *buf, size_t len);
/* Whether bytes of an unfinished event remain (a stream cut off mid-event). */
int sse_pending(const sse_t *p);
void sse_clear(sse_t *p);

#endif
