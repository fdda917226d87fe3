/*
 * store_int: what the store's own files share (store.c holds the connection, migrations and
 * run/message/event SQL; store_session.c the conversation tables, store_batch.c the batch tables). Not for use outside the
 * store module.
 */
#ifndef AGENTD_STORE_INT_H
#define AGENTD_STORE_INT_H

#include "store.h"

#include <sqlite3.h>

/* The numbered migrations of each engine, numbered alike: migration i brings the schema from
 * version i to i + 1 (store_schema.c, store_schema_pg.c). Never edit a shipped one: append. */
extern const char *const store_schema_sqlite[];
extern const int store_schema_sqlite_n;
#ifdef AGENTD_WITH_PG
extern const char *const store_schema_pg[];
extern const int store_schema_pg_n;
#endif

/* The connection, borrowed. */
sqlite3 *store_sqlite(store_t *st);
/* SQLite result code -> ERR_* (0 for OK/DONE/ROW). */
int store_translate(int src);
/* Is owner ("host:pid") a process on this host that no longer exists? */
int store_owner_dead(const char *owner);
/* Rows of sql (selecting id, agent_path, owner, lease_until_ns) whose lease is claimable at
 * now_ns: no owner, an expired lease, or a dead owner on this host. */
int store_orphans_each(store_t *st, const char *sql, int64_t now_ns, store_id_fn cb, void *ud);

#endif
