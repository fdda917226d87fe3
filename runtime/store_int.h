/*
 * store_int: what the store's own files share (store.c holds the connection, migrations and
 * run/message/event SQL; store_session.c the conversation tables). Not for use outside the
 * store module.
 */
#ifndef AGENTD_STORE_INT_H
#define AGENTD_STORE_INT_H

#include "store.h"

#include <sqlite3.h>

/* The connection, borrowed. */
sqlite3 *store_sqlite(store_t *st);
/* SQLite result code -> ERR_* (0 for OK/DONE/ROW). */
int store_translate(int src);

#endif
