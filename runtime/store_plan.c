/*
 * store_plan: the strategies' tables (see store.h): plans of plan_execute runs and the links
 * of sub-agent runs to their parents. Written once per plan change or child start, never per
 * event; their statements are cached by the connection like store_session.c's.
 */
#include "store.h"
#include "store_int.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_plan_put(store_t *st, const char *run_id, int version, const char *json)
{
    int rc;
    db_stmt_t *s = store_stmt(st,
                              "INSERT INTO plans (run_id, version, plan) VALUES (?1, ?2, ?3)"
                              " ON CONFLICT (run_id, version) DO UPDATE SET plan = excluded.plan",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    db_bind_int64(s, 2, version);
    db_bind_text(s, 3, json);
    return store_step_done(s);
}

int store_plan_latest(store_t *st, const char *run_id, int *version, char **json)
{
    int rc;
    db_stmt_t *s = store_stmt(st,
                              "SELECT version, plan FROM plans WHERE run_id = ?1"
                              " ORDER BY version DESC LIMIT 1",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    rc = db_step(s);
    if (rc == DB_ROW) {
        const char *v = db_col_text(s, 1);
        char *copy = strdup(v ? v : "{}");
        if (!copy) {
            rc = ERR_NOMEM;
        } else {
            rc = 0;
            *version = (int)db_col_int64(s, 0);
            *json = copy;
        }
    } else if (rc == DB_DONE) {
        rc = ERR_NOTFOUND;
    }
    db_reset(s);
    return rc;
}

int store_subrun_add(store_t *st, const char *run_id, const char *parent_run_id,
                     const char *parent_call_id, const char *limits)
{
    int rc;
    db_stmt_t *s = store_stmt(st,
                              "INSERT INTO subruns (run_id, parent_run_id, parent_call_id, limits)"
                              " VALUES (?1, ?2, ?3, ?4)",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    db_bind_text(s, 2, parent_run_id);
    db_bind_text(s, 3, parent_call_id);
    db_bind_text(s, 4, limits);
    return store_step_done(s); /* a constraint (the call has a child) is ERR_STATE */
}

int store_subrun_find(store_t *st, const char *parent_run_id, const char *parent_call_id,
                      char child[40])
{
    int rc;
    db_stmt_t *s = store_stmt(
        st, "SELECT run_id FROM subruns WHERE parent_run_id = ?1 AND parent_call_id = ?2", &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, parent_run_id);
    db_bind_text(s, 2, parent_call_id);
    rc = db_step(s);
    if (rc == DB_ROW)
        store_col_copy(s, 0, child, 40);
    db_reset(s);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? ERR_NOTFOUND : rc;
}

int store_subrun_parent(store_t *st, const char *run_id, char parent[40], char call[64],
                        char **limits)
{
    int rc;
    db_stmt_t *s = store_stmt(
        st, "SELECT parent_run_id, parent_call_id, limits FROM subruns WHERE run_id = ?1", &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    rc = db_step(s);
    if (rc == DB_ROW) {
        const char *l = db_col_text(s, 2);
        char *copy = NULL;
        rc = limits && l && !(copy = strdup(l)) ? ERR_NOMEM : 0;
        if (!rc) {
            store_col_copy(s, 0, parent, 40);
            store_col_copy(s, 1, call, 64);
            if (limits)
                *limits = copy;
        }
    } else if (rc == DB_DONE) {
        rc = ERR_NOTFOUND;
    }
    db_reset(s);
    return rc;
}

typedef struct child {
    char id[40];
    char *agent_path;
} child_t;

int store_subruns_each(store_t *st, const char *parent_run_id, store_id_fn cb, void *ud)
{
    int rc;
    db_stmt_t *s = store_stmt(st,
                              "SELECT s.run_id, COALESCE(r.agent_path, '') FROM subruns s"
                              " LEFT JOIN runs r ON r.id = s.run_id WHERE s.parent_run_id = ?1"
                              " ORDER BY r.created_ns",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, parent_run_id);
    /* Children first, callbacks after: a callback walks the tree (the viewer loads the
     * grandchildren), re-entering this statement. */
    child_t *kids = NULL;
    size_t n = 0, cap = 0;
    while ((rc = db_step(s)) == DB_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            child_t *nk = realloc(kids, ncap * sizeof *nk);
            if (!nk) {
                rc = ERR_NOMEM;
                break;
            }
            kids = nk;
            cap = ncap;
        }
        store_col_copy(s, 0, kids[n].id, sizeof kids[n].id);
        if (!(kids[n].agent_path = store_col_dup(s, 1))) {
            rc = ERR_NOMEM;
            break;
        }
        n++;
    }
    db_reset(s);
    for (size_t i = 0; rc == DB_DONE && i < n; i++)
        if (cb(ud, kids[i].id, kids[i].agent_path))
            break;
    for (size_t i = 0; i < n; i++)
        free(kids[i].agent_path);
    free(kids);
    return rc;
}
