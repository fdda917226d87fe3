/*
 * syncer: fdatasync on a thread of its own, so the loop never waits on the disk. The loop
 * asks for "everything written to fd so far" to become durable, tagged with a sequence
 * number that only grows; the thread syncs (one fdatasync covers every request made before
 * it started) and reports back on the loop: done(ud, upto, err) once every request tagged
 * <= upto is durable, or err (an ERR_* code) if a sync failed. A failed sync fails every
 * later request too: after an fdatasync error the kernel may have dropped the pages, so
 * nothing written before it can be called durable again.
 */
#ifndef AGENTD_SYNCER_H
#define AGENTD_SYNCER_H

#include "err.h"
#include "loop.h"

#include <stdint.h>

typedef struct syncer syncer_t;
typedef void (*syncer_done_fn)(void *ud, uint64_t upto, int err);

/* NULL when the thread or its wake-up pipe cannot be made (the caller syncs in line). */
syncer_t *syncer_new(loop_t *lp, syncer_done_fn done, void *ud);
/* Make what was written to fd before this call durable, as request `seq`. */
void syncer_request(syncer_t *s, int fd, uint64_t seq);
/* Waits for a sync in progress, then stops the thread; no done call after this. */
void syncer_free(syncer_t *s);

#endif
