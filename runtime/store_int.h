/*
 * store_int: what the store's own files share (store.c holds the connection, migrations and
 * run/message/event SQL; store_session.c the conversation tables, store_batch.c the batch
 * tables, store_purge.c the deletion of runs). Not for use outside the store module.
 */
#ifndef AGENTD_STORE_INT_H
#define AGENTD_STORE_INT_H

#include "store.h"

#include <sqlite3.h>

/* The connection, borrowed. */
sqlite3 *store_sqlite(store_t *st);
/* SQLite result code -> ERR_* (0 for OK/DONE/ROW). */
int store_translate(int src);
/* Is owner ("host:pid") a process on this host that no longer exists? */
int store_owner_dead(const char *owner);
/* Rows of sql (selecting id, agent_path, owner, lease_until_ns) whose lease is claimable at
 * now_ns: no owner, an expired lease, or a dead owner on this host. */
int store_orphans_each(store_t *st, const char *sql, int64_t now_ns, store_id_fn cb, void *ud);

/* Purging runs (store_purge.c), inside an open write transaction: select fills the
 * connection's temporary id list with the ids ids_sql ("SELECT id FROM runs ...") selects,
 * its ?1 bound to text when given (else to a) and ?2 to b; each calls cb for every listed
 * run (before anything is deleted) and counts them; commit deletes them with every row
 * naming them, and the sessions and batches left empty. */
int store_purge_select(store_t *st, const char *ids_sql, int64_t a, int64_t b, const char *text);
int store_purge_each(store_t *st, store_id_fn cb, void *ud, int *n);
int store_purge_commit(store_t *st);

#endif
