/*
 * store_session: the conversation tables (see store.h). Sessions are read and written once
 * per turn, never on a step's hot path; their statements are cached by the connection.
 */
#include "store.h"
#include "store_int.h"

#include "err.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static int finished(const char *state)
{
    return !strcmp(state, "done") || !strcmp(state, "failed") || !strcmp(state, "cancelled");
}

/* The latest turn of a session and its run's state; *turn = 0 when the session has none. */
static int latest_turn(store_t *st, const char *name, int *turn, char run[40], char state[16])
{
    int rc;
    db_stmt_t *s =
        store_stmt(st,
                   "SELECT s.turn, s.run_id, COALESCE(r.state, 'done') FROM session_runs s"
                   " LEFT JOIN runs r ON r.id = s.run_id WHERE s.session = ?1"
                   " ORDER BY s.turn DESC LIMIT 1",
                   &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, name);
    rc = db_step(s);
    *turn = 0;
    if (rc == DB_ROW) {
        *turn = (int)db_col_int64(s, 0);
        store_col_copy(s, 1, run, 40);
        store_col_copy(s, 2, state, 16);
    }
    db_reset(s);
    return rc == DB_ROW ? 0 : rc;
}

/* Run sql bound to the texts a, b, c (those not NULL) as ?1..?3 and n as ?4 (when n >= 0). */
static int exec_bind(store_t *st, const char *sql, const char *a, const char *b, const char *c,
                     int64_t n)
{
    int rc;
    db_stmt_t *s = store_stmt(st, sql, &rc);
    if (!s)
        return rc;
    const char *v[3] = {a, b, c};
    for (int i = 0; i < 3; i++)
        if (v[i])
            db_bind_text(s, i + 1, v[i]);
    if (n >= 0)
        db_bind_int64(s, 4, n);
    return store_step_done(s);
}

static int check(store_t *st, const char *name, int *turn, char busy_run[40], char busy_state[16])
{
    char run[40] = "", state[16] = "";
    int rc = latest_turn(st, name, turn, run, state);
    if (rc)
        return rc;
    if (*turn > 0 && !finished(state)) {
        snprintf(busy_run, 40, "%s", run);
        snprintf(busy_state, 16, "%s", state);
        return ERR_BUSY;
    }
    return 0;
}

int store_session_check(store_t *st, const char *name, char busy_run[40], char busy_state[16])
{
    int turn;
    return check(st, name, &turn, busy_run, busy_state);
}

int store_session_join(store_t *st, const char *name, const char *agent, const char *run_id,
                       int64_t now_ns, char busy_run[40], char busy_state[16])
{
    if (!name || !*name)
        return ERR_INVAL;
    int turn;
    int rc = check(st, name, &turn, busy_run, busy_state);
    if (rc)
        return rc;
    rc = exec_bind(st,
                   "INSERT INTO sessions (name, agent, created_ns, updated_ns)"
                   " VALUES (?1, ?2, ?4, ?4)"
                   " ON CONFLICT (name) DO UPDATE SET updated_ns = excluded.updated_ns",
                   name, agent, NULL, now_ns);
    if (!rc)
        rc = exec_bind(st, "INSERT INTO session_runs (session, turn, run_id) VALUES (?1, ?4, ?2)",
                       name, run_id, NULL, turn + 1);
    return rc;
}

int store_session_of(store_t *st, const char *run_id, char name[128])
{
    int rc;
    db_stmt_t *s = store_stmt(st, "SELECT session FROM session_runs WHERE run_id = ?1", &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    rc = db_step(s);
    if (rc == DB_ROW)
        store_col_copy(s, 0, name, 128);
    db_reset(s);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? ERR_NOTFOUND : rc;
}

/* The note that stands for the answer of a turn that did not end done. */
static int emit_note(store_text_fn cb, void *ud, int turn, const char *state, const char *why)
{
    char text[400];
    snprintf(text, sizeof text, "(no answer: this turn ended %s%s%s)", state, *why ? ": " : "",
             why);
    json_object *m = json_object_new_object();
    if (!m)
        return ERR_NOMEM;
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    json_object_object_add(m, "content", json_object_new_string(text));
    int stop = cb(ud, turn, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
    json_object_put(m);
    return stop;
}

int store_session_history(store_t *st, const char *run_id, store_text_fn cb, void *ud)
{
    int rc;
    /* Earlier turns only; of an unfinished or failed turn only its user message (idx 1). */
    db_stmt_t *s =
        store_stmt(st,
                   "SELECT t.turn, r.state, COALESCE(r.reason, ''), m.body FROM session_runs t"
                   " JOIN runs r ON r.id = t.run_id JOIN messages m ON m.run_id = t.run_id"
                   " WHERE t.session = (SELECT session FROM session_runs WHERE run_id = ?1)"
                   "   AND t.turn < (SELECT turn FROM session_runs WHERE run_id = ?1)"
                   "   AND m.idx > 0 AND (r.state = 'done' OR m.idx = 1)"
                   " ORDER BY t.turn, m.idx",
                   &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    int stop = 0, turn = -1;
    char state[16] = "", why[32] = "";
    rc = DB_DONE;
    while (!stop && (rc = db_step(s)) == DB_ROW) {
        int t = (int)db_col_int64(s, 0);
        if (t != turn && turn >= 0 && strcmp(state, "done") != 0)
            stop = emit_note(cb, ud, turn, state, why);
        if (stop)
            break;
        turn = t;
        store_col_copy(s, 1, state, sizeof state);
        store_col_copy(s, 2, why, sizeof why);
        stop = cb(ud, t, db_col_text(s, 3));
    }
    if (!stop && turn >= 0 && strcmp(state, "done") != 0)
        stop = emit_note(cb, ud, turn, state, why);
    db_reset(s);
    if (stop)
        return stop < 0 ? stop : 0;
    return rc == DB_ROW ? 0 : rc;
}

int store_sessions_each(store_t *st, store_session_fn cb, void *ud)
{
    int rc;
    db_stmt_t *s = store_stmt(st,
                              "SELECT s.name, s.agent, s.created_ns, s.updated_ns,"
                              " (SELECT COUNT(*) FROM session_runs t WHERE t.session = s.name),"
                              " (SELECT r.state FROM session_runs t JOIN runs r ON r.id = t.run_id"
                              "  WHERE t.session = s.name ORDER BY t.turn DESC LIMIT 1)"
                              " FROM sessions s ORDER BY s.updated_ns DESC",
                              &rc);
    if (!s)
        return rc;
    while ((rc = db_step(s)) == DB_ROW) {
        store_session_t ss;
        memset(&ss, 0, sizeof ss);
        store_col_copy(s, 0, ss.name, sizeof ss.name);
        store_col_copy(s, 1, ss.agent, sizeof ss.agent);
        ss.created_ns = db_col_int64(s, 2);
        ss.updated_ns = db_col_int64(s, 3);
        ss.turns = (int)db_col_int64(s, 4);
        store_col_copy(s, 5, ss.last_state, sizeof ss.last_state);
        if (cb(ud, &ss))
            break;
    }
    db_reset(s);
    return rc == DB_ROW ? 0 : rc;
}

static int session_exists(store_t *st, const char *name)
{
    int rc;
    db_stmt_t *s = store_stmt(st, "SELECT 1 FROM sessions WHERE name = ?1", &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, name);
    rc = db_step(s);
    db_reset(s);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? ERR_NOTFOUND : rc;
}

int store_session_turns(store_t *st, const char *name, store_turn_fn cb, void *ud)
{
    int rc = session_exists(st, name);
    if (rc)
        return rc;
    db_stmt_t *s = store_stmt(st,
                              "SELECT t.turn, r.id, r.state, r.input, r.answer, r.input_tokens,"
                              " r.output_tokens, r.cost_usd, r.created_ns, r.ended_ns, r.agent"
                              " FROM session_runs t JOIN runs r ON r.id = t.run_id"
                              " WHERE t.session = ?1 ORDER BY t.turn",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, name);
    while ((rc = db_step(s)) == DB_ROW) {
        store_run_t r;
        memset(&r, 0, sizeof r);
        store_col_copy(s, 1, r.id, sizeof r.id);
        store_col_copy(s, 2, r.state, sizeof r.state);
        r.input = (char *)db_col_text(s, 3);
        r.answer = (char *)db_col_text(s, 4);
        r.input_tokens = db_col_int64(s, 5);
        r.output_tokens = db_col_int64(s, 6);
        r.cost_usd = db_col_double(s, 7);
        r.created_ns = db_col_int64(s, 8);
        r.ended_ns = db_col_int64(s, 9);
        store_col_copy(s, 10, r.agent, sizeof r.agent);
        if (cb(ud, (int)db_col_int64(s, 0), &r))
            break;
    }
    db_reset(s);
    return rc == DB_ROW ? 0 : rc;
}

int store_session_rm(store_t *st, const char *name, store_id_fn cb, void *ud)
{
    int rc = store_tx_begin(st);
    if (rc) /* a lock held past the busy timeout: a database error, not an unfinished turn */
        return rc == ERR_BUSY ? ERR_IO : rc;
    int turn;
    char run[40] = "", state[16] = "";
    rc = session_exists(st, name);
    if (!rc)
        rc = latest_turn(st, name, &turn, run, state);
    if (!rc && turn > 0 && !finished(state))
        rc = ERR_BUSY;
    if (!rc)
        rc = store_purge_select(st, "SELECT run_id FROM session_runs WHERE session = ?1", name,
                                NULL, 0);
    if (!rc)
        rc = store_purge_each(st, cb, ud, NULL);
    if (!rc)
        rc = store_purge_commit(st);
    /* the purge removed the session with its last turn; one that never had a turn is left */
    if (!rc)
        rc = exec_bind(st, "DELETE FROM summaries WHERE scope = ?1", name, NULL, NULL, -1);
    if (!rc)
        rc = exec_bind(st, "DELETE FROM sessions WHERE name = ?1", name, NULL, NULL, -1);
    if (rc)
        goto fail;
    return store_tx_commit(st);
fail:
    store_tx_rollback(st);
    return rc;
}
