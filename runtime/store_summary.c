/*
 * store_summary: the summaries and run_users tables (see store.h), what a conversation keeps
 * beside its messages. Read once per run and written once per compaction or run start,
 * never on a step's hot path, so statements are prepared per call.
 */
#include "store.h"
#include "store_int.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_summary_put(store_t *st, const char *scope, int64_t upto, const char *hash,
                      const char *text, const char *run_id, int64_t created_ns)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(store_sqlite(st),
                           "INSERT OR REPLACE INTO summaries (scope, upto, hash, body, run_id,"
                           " created_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &s, NULL) != SQLITE_OK)
        return ERR_IO;
    sqlite3_bind_text(s, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, upto);
    sqlite3_bind_text(s, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, text, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, created_ns);
    int src = sqlite3_step(s);
    sqlite3_finalize(s);
    return src == SQLITE_DONE ? 0 : store_translate(src);
}

int store_summary_get(store_t *st, const char *scope, int64_t max_upto, int64_t *upto,
                      char hash[17], char **text)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(store_sqlite(st),
                           "SELECT upto, hash, body FROM summaries WHERE scope = ?1 AND"
                           " upto <= ?2 ORDER BY upto DESC LIMIT 1",
                           -1, &s, NULL) != SQLITE_OK)
        return ERR_IO;
    sqlite3_bind_text(s, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, max_upto);
    int src = sqlite3_step(s), rc = 0;
    if (src == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(s, 1);
        const char *b = (const char *)sqlite3_column_text(s, 2);
        char *t = strdup(b ? b : "");
        if (!t) {
            rc = ERR_NOMEM;
        } else {
            *upto = sqlite3_column_int64(s, 0);
            snprintf(hash, 17, "%s", h ? h : "");
            *text = t;
        }
    } else {
        rc = src == SQLITE_DONE ? ERR_NOTFOUND : store_translate(src);
    }
    sqlite3_finalize(s);
    return rc;
}

int store_run_user_put(store_t *st, const char *run_id, const char *user)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(store_sqlite(st),
                           "INSERT OR REPLACE INTO run_users (run_id, user) VALUES (?1, ?2)", -1,
                           &s, NULL) != SQLITE_OK)
        return ERR_IO;
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, user, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    sqlite3_finalize(s);
    return src == SQLITE_DONE ? 0 : store_translate(src);
}

int store_run_user_get(store_t *st, const char *run_id, char *user, size_t len)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(store_sqlite(st), "SELECT user FROM run_users WHERE run_id = ?1", -1,
                           &s, NULL) != SQLITE_OK)
        return ERR_IO;
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    int src = sqlite3_step(s), rc = 0;
    if (src == SQLITE_ROW)
        snprintf(user, len, "%s", (const char *)sqlite3_column_text(s, 0));
    else
        rc = src == SQLITE_DONE ? ERR_NOTFOUND : store_translate(src);
    sqlite3_finalize(s);
    return rc;
}
