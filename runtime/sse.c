/*
 * sse: see sse.h. Follows the WHATWG event-stream rules that matter for model APIs: lines
 * end in LF, CR or CRLF; "field: value" with one optional space; ':' starts a comment; an
 * empty line dispatches; several data lines are joined with LF.
 */
#include "sse.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

void sse_init(sse_t *p, sse_event_fn cb, void *ud, size_t max_event)
{
    memset(p, 0, sizeof *p);
    p->cb = cb;
    p->ud = ud;
    p->max_event = max_event ? max_event : (size_t)8 << 20;
}

void sse_clear(sse_t *p)
{
    free(p->line);
    free(p->data);
    p->line = p->data = NULL;
    p->line_len = p->line_cap = p->data_len = p->data_cap = 0;
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    char *b = realloc(*buf, n);
    if (!b)
        return ERR_NOMEM;
    *buf = b;
    *cap = n;
    return 0;
}

static int dispatch(sse_t *p)
{
    int rc = 0;
    if (p->has_data) {
        if (grow(&p->data, &p->data_cap, p->data_len + 1))
            return ERR_NOMEM;
        p->data[p->data_len] = '\0';
        rc = p->cb(p->ud, p->event, p->data, p->data_len);
    }
    p->data_len = 0;
    p->has_data = 0;
    p->event[0] = '\0';
    return rc;
}

static int field(sse_t *p, const char *line, size_t len)
{
    if (len == 0)
        return dispatch(p);
    if (line[0] == ':')
        return 0;
    const char *colon = memchr(line, ':', len);
    size_t nlen = colon ? (size_t)(colon - line) : len;
    const char *val = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - val);
    if (vlen && *val == ' ') {
        val++;
        vlen--;
    }
    if (nlen == 4 && memcmp(line, "data", 4) == 0) {
        size_t need = p->data_len + vlen + 2;
        if (need > p->max_event)
            return ERR_TOOBIG;
        if (grow(&p->data, &p->data_cap, need))
            return ERR_NOMEM;
        if (p->has_data)
            p->data[p->data_len++] = '\n';
        memcpy(p->data + p->data_len, val, vlen);
        p->data_len += vlen;
        p->has_data = 1;
    } else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
        size_t n = vlen < sizeof p->event - 1 ? vlen : sizeof p->event - 1;
        memcpy(p->event, val, n);
        p->event[n] = '\0';
    }
    /* "id" and "retry" only matter to reconnecting browsers. */
    return 0;
}

int sse_feed(sse_t *p, const char *buf, size_t len)
{
    size_t i = 0;
    if (p->skip_lf && len && buf[0] == '\n')
        i = 1;
    p->skip_lf = 0;
    while (i < len) {
        const char *start = buf + i;
        size_t rest = len - i, n = 0;
        while (n < rest && start[n] != '\n' && start[n] != '\r')
            n++;
        if (n == rest) { /* no line end yet: keep the piece for the next chunk */
            if (p->line_len + n > p->max_event)
                return ERR_TOOBIG;
            if (grow(&p->line, &p->line_cap, p->line_len + n + 1))
                return ERR_NOMEM;
            memcpy(p->line + p->line_len, start, n);
            p->line_len += n;
            return 0;
        }
        int rc;
        if (p->line_len) {
            if (grow(&p->line, &p->line_cap, p->line_len + n + 1))
                return ERR_NOMEM;
            memcpy(p->line + p->line_len, start, n);
            p->line_len += n;
            rc = field(p, p->line, p->line_len);
            p->line_len = 0;
        } else {
            rc = field(p, start, n);
        }
        if (rc)
            return rc;
        i += n + 1;
        if (start[n] == '\r') {
            if (i < len && buf[i] == '\n')
                i++;
            else if (i == len)
                p->skip_lf = 1;
        }
    }
    return 0;
}

int sse_pending(const sse_t *p)
{
    return p->has_data || p->line_len > 0;
}
