/*
 * buf: growable byte buffer with a cap (see buf.h).
 */
#include "buf.h"

#include "err.h"
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf_t *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

int buf_add(buf_t *b, const void *p, size_t n)
{
    if (b->failed)
        return b->failed;
    if ((b->max && n > b->max - b->len) || n > (size_t)-1 / 2 - b->len) {
        b->failed = ERR_TOOBIG;
        return ERR_TOOBIG;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s = mem_realloc(b->s, cap);
        if (!s) {
            b->failed = ERR_NOMEM;
            return ERR_NOMEM;
        }
        b->s = s;
        b->cap = cap;
    }
    if (n)
        memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

int buf_fail(buf_t *b, int code)
{
    if (!b->failed)
        b->failed = code;
    return b->failed;
}

int buf_adds(buf_t *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

int buf_addf(buf_t *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (!b->failed)
            b->failed = ERR_INVAL;
        return b->failed;
    }
    if ((size_t)n < sizeof small)
        return buf_add(b, small, (size_t)n);
    char *big = mem_alloc((size_t)n + 1);
    if (!big) {
        if (!b->failed)
            b->failed = ERR_NOMEM;
        return b->failed;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = buf_add(b, big, (size_t)n);
    free(big);
    return rc;
}

const char *buf_str(const buf_t *b)
{
    return b->s ? b->s : "";
}

char *buf_take(buf_t *b)
{
    char *s = NULL;
    if (!b->failed) {
        s = b->s ? b->s : mem_strdup("");
        b->s = NULL;
    }
    size_t max = b->max;
    free(b->s);
    buf_init(b, max);
    return s;
}

void buf_reset(buf_t *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->s)
        b->s[0] = '\0';
}

void buf_free(buf_t *b)
{
    size_t max = b->max;
    free(b->s);
    buf_init(b, max);
}
