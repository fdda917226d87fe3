/*
 * store_summary: the summaries and run_users tables (see store.h), what a conversation keeps
 * beside its messages. Read once per run and written once per compaction or run start,
 * never on a step's hot path; their statements are cached by the connection. The column
 * "user" is quoted: a reserved word in PostgreSQL.
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
    int rc;
    db_stmt_t *s = store_stmt(st,
                              "INSERT INTO summaries (scope, upto, hash, body, run_id, created_ns)"
                              " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (scope, upto) DO"
                              " UPDATE SET hash = excluded.hash, body = excluded.body,"
                              " run_id = excluded.run_id, created_ns = excluded.created_ns",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, scope);
    db_bind_int64(s, 2, upto);
    db_bind_text(s, 3, hash);
    db_bind_text(s, 4, text);
    db_bind_text(s, 5, run_id);
    db_bind_int64(s, 6, created_ns);
    return store_step_done(s);
}

int store_summary_get(store_t *st, const char *scope, int64_t max_upto, int64_t *upto,
                      char hash[17], char **text)
{
    int rc;
    db_stmt_t *s = store_stmt(st,
                              "SELECT upto, hash, body FROM summaries WHERE scope = ?1 AND"
                              " upto <= ?2 ORDER BY upto DESC LIMIT 1",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, scope);
    db_bind_int64(s, 2, max_upto);
    rc = db_step(s);
    if (rc == DB_ROW) {
        const char *b = db_col_text(s, 2);
        char *t = strdup(b ? b : "");
        if (!t) {
            rc = ERR_NOMEM;
        } else {
            rc = 0;
            *upto = db_col_int64(s, 0);
            store_col_copy(s, 1, hash, 17);
            *text = t;
        }
    } else if (rc == DB_DONE) {
        rc = ERR_NOTFOUND;
    }
    db_reset(s);
    return rc;
}

int store_run_user_put(store_t *st, const char *run_id, const char *user)
{
    int rc;
    db_stmt_t *s = store_stmt(st,
                              "INSERT INTO run_users (run_id, \"user\") VALUES (?1, ?2)"
                              " ON CONFLICT (run_id) DO UPDATE SET \"user\" = excluded.\"user\"",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    db_bind_text(s, 2, user);
    return store_step_done(s);
}

int store_run_user_get(store_t *st, const char *run_id, char *user, size_t len)
{
    int rc;
    db_stmt_t *s = store_stmt(st, "SELECT \"user\" FROM run_users WHERE run_id = ?1", &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    rc = db_step(s);
    if (rc == DB_ROW)
        store_col_copy(s, 0, user, len);
    db_reset(s);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? ERR_NOTFOUND : rc;
}
