/*
 * store_int: what the store's own files share (store.c holds the connection, the migration
 * runner and the run/message/event SQL; store_schema.c the SQLite migrations; store_session.c
 * the conversation tables, store_batch.c the batch tables, store_purge.c the deletion of
 * runs...). Not for use outside the store module. Every statement is written in db.h's
 * common dialect and goes through db.h, so the same code runs on SQLite and PostgreSQL.
 */
#ifndef AGENTD_STORE_INT_H
#define AGENTD_STORE_INT_H

#include "store.h"

#include "db/db.h"

/* The numbered migrations of each engine, numbered alike: migration i brings the schema from
 * version i to i + 1 (store_schema.c, store_schema_pg.c). Never edit a shipped one: append. */
extern const char *const store_schema_sqlite[];
extern const int store_schema_sqlite_n;
#ifdef AGENTD_WITH_PG
extern const char *const store_schema_pg[];
extern const int store_schema_pg_n;
#endif

/* The connection, borrowed. */
db_t *store_db(store_t *st);
/* The connection's statement for sql (cached by its text: a callback that re-enters the same
 * text while the statement is being stepped would reset it), or NULL with *rc = ERR_IO.
 * Reset it (db_reset) after use. */
db_stmt_t *store_stmt(store_t *st, const char *sql, int *rc);
/* Step a statement that returns no rows (or whose rows are ignored) once and reset it: 0 or
 * the ERR_*. */
int store_step_done(db_stmt_t *s);
/* Step a compare-and-set UPDATE of a lease once and reset it: 0 when it changed one row,
 * ERR_BUSY when it changed none (another owner won), ERR_IO for a database error (a lock
 * held past the busy timeout included). */
int store_cas_done(db_stmt_t *s);
/* Hand each row's two text columns of s (bound) to cb until it returns nonzero; reset s.
 * 0 or the ERR_* (store_label.c). */
int store_each_pair(db_stmt_t *s, int (*cb)(void *, const char *, const char *), void *ud);
/* Column i of the current row as text into dst (NULL: nothing; SQL NULL: ""), or malloc'd
 * (NULL for SQL NULL or out of memory). */
void store_col_copy(db_stmt_t *s, int i, char *dst, size_t len);
char *store_col_dup(db_stmt_t *s, int i);
/* Is owner ("host:pid") a process on this host that no longer exists? */
int store_owner_dead(const char *owner);
/* Rows of sql (selecting id, agent_path, owner, lease_until_ns) whose lease is claimable at
 * now_ns: no owner, an expired lease, or a dead owner on this host. */
int store_orphans_each(store_t *st, const char *sql, int64_t now_ns, store_id_fn cb, void *ud);

/* Purging runs (store_purge.c), inside an open write transaction: select fills the
 * connection's temporary id list with the ids ids_sql ("SELECT id FROM runs ...") selects,
 * its ?1 bound to text when given, then the n ints (?1.. without text, ?2.. with it); each
 * calls cb for every listed run (before anything is deleted) and counts them; commit
 * deletes them with every row naming them, and the sessions and batches left empty. */
int store_purge_select(store_t *st, const char *ids_sql, const char *text, const int64_t *ints,
                       int n);
int store_purge_each(store_t *st, store_id_fn cb, void *ud, int *n);
int store_purge_commit(store_t *st);

#endif
