/*
 * store_plan: the strategies' tables (see store.h): plans of plan_execute runs and the links
 * of sub-agent runs to their parents. Written once per plan change or child start, never per
 * event, so statements here are prepared per call like store_session.c's.
 */
#include "store.h"
#include "store_int.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int prep(store_t *st, const char *sql, sqlite3_stmt **out)
{
    return sqlite3_prepare_v2(store_sqlite(st), sql, -1, out, NULL) == SQLITE_OK ? 0 : ERR_IO;
}

static void col_copy(sqlite3_stmt *s, int i, char *dst, size_t len)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    if (dst)
        snprintf(dst, len, "%s", v ? (const char *)v : "");
}

int store_plan_put(store_t *st, const char *run_id, int version, const char *json)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(st, "INSERT OR REPLACE INTO plans (run_id, version, plan) VALUES (?1, ?2, ?3)",
                  &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, version);
    sqlite3_bind_text(s, 3, json, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    sqlite3_finalize(s);
    return src == SQLITE_DONE ? 0 : store_translate(src);
}

int store_plan_latest(store_t *st, const char *run_id, int *version, char **json)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(st, "SELECT version, plan FROM plans WHERE run_id = ?1"
                      " ORDER BY version DESC LIMIT 1", &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(s, 1);
        char *copy = strdup(v ? (const char *)v : "{}");
        if (!copy)
            rc = ERR_NOMEM;
        else {
            *version = sqlite3_column_int(s, 0);
            *json = copy;
        }
    } else
        rc = src == SQLITE_DONE ? ERR_NOTFOUND : store_translate(src);
    sqlite3_finalize(s);
    return rc;
}

int store_subrun_add(store_t *st, const char *run_id, const char *parent_run_id,
                     const char *parent_call_id, const char *limits)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(st, "INSERT INTO subruns (run_id, parent_run_id, parent_call_id, limits)"
                      " VALUES (?1, ?2, ?3, ?4)", &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, parent_run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, parent_call_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, limits, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    sqlite3_finalize(s);
    if ((src & 0xff) == SQLITE_CONSTRAINT)
        return ERR_STATE;
    return src == SQLITE_DONE ? 0 : store_translate(src);
}

int store_subrun_find(store_t *st, const char *parent_run_id, const char *parent_call_id,
                      char child[40])
{
    sqlite3_stmt *s = NULL;
    int rc = prep(st, "SELECT run_id FROM subruns WHERE parent_run_id = ?1 AND parent_call_id = ?2",
                  &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, parent_run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, parent_call_id, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        col_copy(s, 0, child, 40);
    else
        rc = src == SQLITE_DONE ? ERR_NOTFOUND : store_translate(src);
    sqlite3_finalize(s);
    return rc;
}

int store_subrun_parent(store_t *st, const char *run_id, char parent[40], char call[64],
                        char **limits)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(st, "SELECT parent_run_id, parent_call_id, limits FROM subruns WHERE run_id = ?1",
                  &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        const unsigned char *l = sqlite3_column_text(s, 2);
        char *copy = NULL;
        if (limits && l && !(copy = strdup((const char *)l)))
            rc = ERR_NOMEM;
        if (!rc) {
            col_copy(s, 0, parent, 40);
            col_copy(s, 1, call, 64);
            if (limits)
                *limits = copy;
        }
    } else
        rc = src == SQLITE_DONE ? ERR_NOTFOUND : store_translate(src);
    sqlite3_finalize(s);
    return rc;
}

int store_subruns_each(store_t *st, const char *parent_run_id, store_id_fn cb, void *ud)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(st, "SELECT s.run_id, COALESCE(r.agent_path, '') FROM subruns s"
                      " LEFT JOIN runs r ON r.id = s.run_id WHERE s.parent_run_id = ?1"
                      " ORDER BY r.created_ns", &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, parent_run_id, -1, SQLITE_STATIC);
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW)
        if (cb(ud, (const char *)sqlite3_column_text(s, 0),
               (const char *)sqlite3_column_text(s, 1)))
            break;
    sqlite3_finalize(s);
    return src == SQLITE_ROW || src == SQLITE_DONE ? 0 : store_translate(src);
}
