/*
 * buf: the runtime's one growable byte buffer, with a size cap (curl's dynbuf, Redis's sds).
 *
 * The text is always NUL-terminated once anything was added (buf_str gives "" before), so
 * it can be handed to string functions without a copy; binary data may contain NULs too.
 * An append that would pass the cap, or that cannot get memory, fails and leaves the buffer
 * sticky-failed: later appends are ignored and return the same code, so a caller may build a
 * whole text and check once at the end (buf_take returns NULL then).
 * A zero-initialised buf_t is an empty buffer with no cap.
 */
#ifndef AGENTD_BUF_H
#define AGENTD_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct buf {
    char *s;       /* NULL until the first append */
    size_t len;    /* bytes held, without the NUL */
    size_t cap;    /* bytes allocated */
    size_t max;    /* most bytes it may hold; 0 = no cap */
    int failed;    /* 0, or the sticky ERR_NOMEM / ERR_TOOBIG */
} buf_t;

/* Empty buffer holding at most max bytes (0: no cap). */
void buf_init(buf_t *b, size_t max);
/* Append n bytes: 0, ERR_TOOBIG past the cap, ERR_NOMEM (both sticky). */
int buf_add(buf_t *b, const void *p, size_t n);
/* buf_add for hot paths of many short appends (event JSON): copied in place when the bytes
 * fit the memory already held and the cap, else buf_add (which grows, or fails). */
static inline int buf_add_fast(buf_t *b, const void *p, size_t n)
{
    if (b->failed || n >= b->cap - b->len || (b->max && n > b->max - b->len))
        return buf_add(b, p, n);
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}
/* Append a C string. */
int buf_adds(buf_t *b, const char *s);
/* Append printf-formatted text. */
int buf_addf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text so far ("" when empty); valid until the next append. */
const char *buf_str(const buf_t *b);
/* The text, now owned by the caller (free()); "" is returned as an allocated empty string.
 * NULL if an append failed or memory ran out. The buffer is empty afterwards (cap kept). */
char *buf_take(buf_t *b);
/* Forget the contents and the failure, keep the memory and the cap. */
void buf_reset(buf_t *b);
/* Release the memory; the buffer is empty afterwards (cap kept). */
void buf_free(buf_t *b);

#endif
