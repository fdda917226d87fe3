/*
 * trace_db: see trace_db.h.
 */
#include "trace_db.h"

#include "buf.h"
#include "err.h"
#include "trace.h"

#include <string.h>

typedef struct lines {
    const char *run_id;
    store_text_fn cb;
    void *ud;
    buf_t line; /* reused from row to row */
    int rc;
} lines_t;

static int one(void *ud, int64_t seq, const char *body)
{
    lines_t *l = ud;
    buf_reset(&l->line);
    if ((l->rc = trace_line_write(&l->line, l->run_id, seq, body, strlen(body))))
        return 1;
    return l->cb(l->ud, seq, buf_str(&l->line));
}

int trace_db_events_each(store_t *st, const char *run_id, int64_t after_seq, store_text_fn cb,
                         void *ud)
{
    lines_t l = {.run_id = run_id, .cb = cb, .ud = ud};
    buf_init(&l.line, 0);
    int rc = store_events_each(st, run_id, after_seq, one, &l);
    buf_free(&l.line);
    return rc ? rc : l.rc;
}
