/*
 * cwatch: the loop's side of commits sent without waiting (store_tx_commit_start: the
 * machine's group commit on PostgreSQL). The loop starts a commit, tagged with a sequence
 * number that only grows, and goes on; cwatch watches the connection's socket with a
 * libevent read event and reports back on the loop: done(ud, upto, err) for every outcome in
 * the order the commits were sent (every commit tagged <= upto not yet reported committed,
 * or failed with err). A call on the store that reads a commit's result before the socket
 * tells (a query behind the COMMIT in the pipeline) wakes the watcher too
 * (store_commit_notify). Never called inline from cwatch_commit.
 * It also drives the store's reconnects (store_reconnect_wait / store_reconnect_poll): a
 * store with a watcher holds the loop 100 ms at most for a reconnect, the calls meanwhile
 * failing at once, and cwatch advances the connect as its socket becomes ready.
 */
#ifndef AGENTD_CWATCH_H
#define AGENTD_CWATCH_H

#include "err.h"
#include "loop.h"
#include "store.h"
#include "syncer.h"

#include <stdint.h>

typedef struct cwatch cwatch_t;

/* NULL when the store commits in line (SQLite) or on allocation failure: commit in line. */
cwatch_t *cwatch_new(loop_t *lp, store_t *st, syncer_done_fn done, void *ud);
/* Commit the store's open transaction as `seq` without waiting: 0 (done reports it later),
 * or the ERR_* of a failure to send, the transaction rolled back (store_why says why). */
int cwatch_commit(cwatch_t *w, uint64_t seq) AGENTD_WUR;
/* The message of the last failed outcome reported. */
const char *cwatch_why(const cwatch_t *w);
/* Waits for the commits in flight (so they are decided before the store closes); no done
 * call after this. NULL is a no-op. */
void cwatch_free(cwatch_t *w);

#endif
