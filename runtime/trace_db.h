/*
 * trace_db: a run's trace events read back from the database as whole JSONL lines. A row
 * stores the event's body without what its columns hold (run_id, seq; trace.h); every reader
 * that shows, exports or streams events goes through here so it sees the same lines the
 * trace files get.
 */
#ifndef AGENTD_TRACE_DB_H
#define AGENTD_TRACE_DB_H

#include "store.h"

/* cb(ud, seq, line) for each event of run_id after after_seq, in seq order; line is valid
 * during the call. cb returns nonzero to stop. 0, ERR_NOMEM, or the store's error. */
int trace_db_events_each(store_t *st, const char *run_id, int64_t after_seq, store_text_fn cb,
                         void *ud);

#endif
