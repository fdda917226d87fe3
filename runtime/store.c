/*
 * store: see store.h. One db.h connection per store_t; the hottest statements (a run's row,
 * its messages, tool calls and events) are kept here by number, prepared on first use and
 * reset right after use, so the hot path of a transition is a handful of db_run calls inside
 * one transaction. Every other statement is cached by the driver by its text.
 */
#include "store.h"
#include "store_int.h"

#include "db/db.h"
#include "err.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    Q_RUN_INSERT,
    Q_RUN_UPDATE,
    Q_RUN_GET,
    Q_RUN_PREFIX,
    Q_MSG_ADD,
    Q_MSG_EACH,
    Q_TC_PUT,
    Q_TC_EACH,
    Q_EV_ADD,
    Q_EV_EACH,
    Q_KV_GET,
    Q_KV_PUT,
    Q_KV_DEL,
    Q_KV_EACH,
    Q_CACHE_GET,
    Q_CACHE_PUT,
    Q__COUNT
};

#define RUN_COLS                                                                                   \
    "id, agent, agent_path, model, state, step, input, answer, error, reason, spec, "              \
    "created_ns, updated_ns, ended_ns, input_tokens, output_tokens, cost_usd, "                    \
    "model_calls, tool_calls, last_seq, msg_count, owner, lease_until_ns, answered_by, "           \
    "fallback"

static const char *const sql_text[Q__COUNT] = {
    [Q_RUN_INSERT] = "INSERT INTO runs (" RUN_COLS ") VALUES "
                     "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,"
                     "?21,?22,?23,?24,?25)",
    /* Not the columns only the insert writes (agent ?2, agent_path ?3, input ?7, spec ?11,
     * created_ns ?12; bound, unused): rewriting them cost two index updates (runs_created,
     * runs_agent_created) per unit. */
    [Q_RUN_UPDATE] = "UPDATE runs SET model=?4, state=?5, step=?6, answer=?8, error=?9, "
                     "reason=?10, updated_ns=?13, ended_ns=?14, input_tokens=?15, "
                     "output_tokens=?16, cost_usd=?17, model_calls=?18, tool_calls=?19, "
                     "last_seq=?20, msg_count=?21, owner=?22, lease_until_ns=?23, "
                     "answered_by=?24, fallback=?25 WHERE id=?1 AND owner=?26",
    [Q_RUN_GET] = "SELECT " RUN_COLS " FROM runs WHERE id=?1",
    [Q_RUN_PREFIX] = "SELECT id FROM runs WHERE id >= ?1 AND id < ?1 || 'g' LIMIT 2",
    [Q_MSG_ADD] = "INSERT INTO messages (run_id, idx, body) VALUES (?1, ?2, ?3)",
    [Q_MSG_EACH] = "SELECT idx, body FROM messages WHERE run_id=?1 ORDER BY idx",
    [Q_TC_PUT] = "INSERT INTO tool_calls (run_id, call_id, step, ord, name, args, state, "
                 "idem_key, result, error, started_ns, ended_ns, attempts, wire_id) "
                 "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14) "
                 "ON CONFLICT (run_id, call_id) DO UPDATE SET step=excluded.step, "
                 "ord=excluded.ord, name=excluded.name, args=excluded.args, "
                 "state=excluded.state, idem_key=excluded.idem_key, result=excluded.result, "
                 "error=excluded.error, started_ns=excluded.started_ns, "
                 "ended_ns=excluded.ended_ns, attempts=excluded.attempts, "
                 "wire_id=excluded.wire_id",
    /* idem_key and wire_id are NULL when they are the ones derived (store_toolcall_put) */
    [Q_TC_EACH] = "SELECT run_id, call_id, step, ord, name, args, state,"
                  " coalesce(idem_key, run_id || ':' || call_id), result, error, started_ns,"
                  " ended_ns, attempts, coalesce(wire_id, call_id) FROM tool_calls "
                  "WHERE run_id=?1 ORDER BY step, ord",
    [Q_EV_ADD] = "INSERT INTO events (run_id, seq, body) VALUES (?1, ?2, ?3)",
    [Q_EV_EACH] = "SELECT seq, body FROM events WHERE run_id=?1 AND seq>?2 ORDER BY seq",
    [Q_KV_GET] = "SELECT value FROM kv WHERE ns=?1 AND key=?2",
    [Q_KV_PUT] = "INSERT INTO kv (ns, key, value) VALUES (?1, ?2, ?3) "
                 "ON CONFLICT (ns, key) DO UPDATE SET value=excluded.value",
    [Q_KV_DEL] = "DELETE FROM kv WHERE ns=?1 AND key=?2",
    [Q_KV_EACH] = "SELECT key, value FROM kv WHERE ns=?1 AND substr(key, 1, length(?2))=?2 "
                  "ORDER BY key",
    [Q_CACHE_GET] = "SELECT body FROM cache WHERE key=?1",
    [Q_CACHE_PUT] = "INSERT INTO cache (key, model, body, created_ns) VALUES (?1, ?2, ?3, ?4) "
                    "ON CONFLICT (key) DO UPDATE SET model=excluded.model, body=excluded.body, "
                    "created_ns=excluded.created_ns",
};

struct store {
    db_t *db;
    db_stmt_t *q[Q__COUNT]; /* borrowed from the connection's cache */
    char path[1024];
};

db_t *store_db(store_t *st)
{
    return st->db;
}

const char *store_path(const store_t *st)
{
    return st->path;
}

const char *store_errmsg(store_t *st)
{
    return st && st->db ? db_errmsg(st->db) : "no database";
}

const char *store_why(store_t *st, int rc)
{
    if (st && st->db && db_failed(st->db))
        return db_errmsg(st->db);
    return err_str(rc ? rc : ERR_INTERNAL);
}

db_stmt_t *store_stmt(store_t *st, const char *sql, int *rc)
{
    db_stmt_t *s = db_prepare(st->db, sql, NULL);
    if (!s)
        *rc = ERR_IO;
    return s;
}

static db_stmt_t *stmt(store_t *st, int which)
{
    if (!st->q[which])
        st->q[which] = db_prepare(st->db, sql_text[which], NULL);
    return st->q[which];
}

int store_step_done(db_stmt_t *s)
{
    int rc = db_step(s);
    db_reset(s);
    return rc == DB_ROW ? 0 : rc;
}

/* A write whose failure the caller does not branch on (the hot path): the driver may
 * pipeline it, a failure then surfacing from the commit. */
static int run_write(db_stmt_t *s)
{
    int rc = db_run(s);
    db_reset(s);
    return rc == DB_ROW ? 0 : rc;
}

void store_col_copy(db_stmt_t *s, int i, char *dst, size_t len)
{
    const char *v = db_col_text(s, i);
    if (dst)
        snprintf(dst, len, "%s", v ? v : "");
}

char *store_col_dup(db_stmt_t *s, int i)
{
    const char *v = db_col_text(s, i);
    return v ? strdup(v) : NULL;
}

/* The migrations of the connection's engine. */
static const char *const *schema_of(db_t *db, int *n)
{
#ifdef AGENTD_WITH_PG
    if (db_kind(db) == DB_PG) {
        *n = store_schema_pg_n;
        return store_schema_pg;
    }
#endif
    (void)db;
    *n = store_schema_sqlite_n;
    return store_schema_sqlite;
}

static int too_new(store_t *st, int version, int n, char *errbuf, size_t errlen)
{
    return err_set(errbuf, errlen, ERR_INVAL,
                   "%s: database schema version %d is newer than this agentd (%d); "
                   "upgrade agentd",
                   st->path, version, n);
}

/* Several processes may open a new database at once: the version is read again under the
 * write lock (db_begin) so each migration runs exactly once. */
static int migrate(store_t *st, char *errbuf, size_t errlen)
{
    int n;
    const char *const *list = schema_of(st->db, &n);
    for (;;) {
        int version = 0;
        if (db_version_get(st->db, &version))
            goto fail;
        if (version > n)
            return too_new(st, version, n, errbuf, errlen);
        if (version == n)
            return 0;
        if (db_begin(st->db))
            goto fail;
        if (db_version_get(st->db, &version)) {
            db_rollback(st->db);
            goto fail;
        }
        if (version < n &&
            (db_exec(st->db, list[version]) || db_version_set(st->db, version + 1))) {
            err_set(errbuf, errlen, ERR_IO, "%s: migration %d failed: %s", st->path, version + 1,
                    db_errmsg(st->db));
            db_rollback(st->db);
            return ERR_IO;
        }
        if (db_commit(st->db)) {
            err_set(errbuf, errlen, ERR_IO, "%s: %s", st->path, db_errmsg(st->db));
            db_rollback(st->db);
            return ERR_IO;
        }
    }
fail:
    return err_set(errbuf, errlen, ERR_IO, "%s: %s", st->path, db_errmsg(st->db));
}

/* How long a statement waits for another process's lock before failing with "database is
 * locked" (exit 4): 10 s, or $AGENTD_BUSY_TIMEOUT_MS. */
static int busy_ms(void)
{
    const char *v = getenv("AGENTD_BUSY_TIMEOUT_MS");
    char *end;
    long ms = v && *v ? strtol(v, &end, 10) : -1;
    return v && *v && !*end && ms >= 0 && ms <= 3600000 ? (int)ms : 10000;
}

static store_t *open_mode(const char *target, int durability, int readonly, char *errbuf,
                          size_t errlen)
{
    store_t *st = calloc(1, sizeof *st);
    if (!st) {
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        return NULL;
    }
    db_open_opt_t o = {.readonly = readonly,
                       .create = 1,
                       .durable = durability != STORE_DURABLE_NORMAL,
                       .busy_ms = busy_ms()};
    if (!(st->db = db_open(target, &o, errbuf, errlen, NULL)))
        goto fail;
    snprintf(st->path, sizeof st->path, "%s", db_target(st->db));
    if (!readonly) {
        if (migrate(st, errbuf, errlen))
            goto fail;
        return st;
    }
    /* A read-only connection migrates nothing: an older schema is migrated through a
     * writing connection first, a newer one refused. */
    int n, version = 0;
    schema_of(st->db, &n);
    if (db_version_get(st->db, &version)) {
        err_set(errbuf, errlen, ERR_IO, "%s: %s", st->path, db_errmsg(st->db));
        goto fail;
    }
    if (version > n) {
        too_new(st, version, n, errbuf, errlen);
        goto fail;
    }
    if (version < n) {
        store_close(st);
        return open_mode(target, durability, 0, errbuf, errlen);
    }
    return st;
fail:
    store_close(st);
    return NULL;
}

store_t *store_open(const char *path, int durability, char *errbuf, size_t errlen)
{
    return open_mode(path, durability, 0, errbuf, errlen);
}

store_t *store_open_existing(const char *path, int mode, char *errbuf, size_t errlen, int *why)
{
    *why = ERR_NOTFOUND;
    if (!db_is_url(path) && access(path, F_OK) != 0) {
        err_set(errbuf, errlen, ERR_NOTFOUND,
                "%s: no such database; pass --db PATH or set AGENTD_DB (run an agent first to "
                "create one)",
                path);
        return NULL;
    }
    store_t *st = open_mode(path, STORE_DURABLE_FULL, mode == STORE_OPEN_READ, errbuf, errlen);
    *why = st ? 0 : ERR_IO;
    return st;
}

void store_close(store_t *st)
{
    if (!st)
        return;
    db_close(st->db);
    free(st);
}

void store_global_shutdown(void)
{
    db_global_shutdown();
}

int store_tx_begin(store_t *st)
{
    return db_begin(st->db);
}

int store_tx_begin_deferred(store_t *st)
{
    return db_begin_deferred(st->db);
}

int store_sync_fd(store_t *st, int *fd)
{
    return db_sync_fd(st->db, fd);
}

int store_tx_commit(store_t *st)
{
    int rc = db_commit(st->db);
    if (rc)
        db_rollback(st->db);
    return rc;
}

int store_commit_async(store_t *st)
{
    return db_commit_async(st->db);
}

int store_tx_commit_start(store_t *st, uint64_t tag, int *fd)
{
    return db_commit_start(st->db, tag, fd);
}

int store_commit_poll(store_t *st, int block, uint64_t *upto, int *err, char *why, size_t n)
{
    return db_commit_poll(st->db, block, upto, err, why, n);
}

void store_commit_notify(store_t *st, void (*fn)(void *ud), void *ud)
{
    db_commit_notify(st->db, fn, ud);
}

int store_ready(store_t *st)
{
    return db_ready(st->db);
}

int store_reconnect_wait(store_t *st, int *fd, int *write)
{
    return db_reconnect_wait(st->db, fd, write);
}

int store_reconnect_poll(store_t *st)
{
    return db_reconnect_poll(st->db);
}

void store_db_waits(store_t *st, uint64_t *round_trips, uint64_t *wait_ns, uint64_t *reconnects)
{
    db_waits_t w;
    db_waits(st->db, &w);
    *round_trips = w.round_trips;
    *wait_ns = w.wait_ns;
    *reconnects = w.reconnects;
}

void store_tx_rollback(store_t *st)
{
    db_rollback(st->db);
}

int store_sp_begin(store_t *st)
{
    return db_savepoint(st->db);
}

int store_sp_release(store_t *st)
{
    return db_release(st->db);
}

void store_sp_rollback(store_t *st)
{
    db_rollback_to(st->db);
}

int store_in_tx(store_t *st)
{
    return db_in_tx(st->db);
}

static void bind_run(db_stmt_t *s, const store_run_t *r)
{
    db_bind_text(s, 1, r->id);
    db_bind_text(s, 2, r->agent);
    db_bind_text(s, 3, r->agent_path);
    db_bind_text(s, 4, r->model);
    db_bind_text(s, 5, r->state);
    db_bind_int64(s, 6, r->step);
    db_bind_text(s, 7, r->input);
    db_bind_text(s, 8, r->answer);
    db_bind_text(s, 9, r->error);
    db_bind_text(s, 10, r->reason[0] ? r->reason : NULL);
    db_bind_text(s, 11, r->spec);
    db_bind_int64(s, 12, r->created_ns);
    db_bind_int64(s, 13, r->updated_ns);
    db_bind_int64(s, 14, r->ended_ns);
    db_bind_int64(s, 15, r->input_tokens);
    db_bind_int64(s, 16, r->output_tokens);
    db_bind_double(s, 17, r->cost_usd);
    db_bind_int64(s, 18, r->model_calls);
    db_bind_int64(s, 19, r->tool_calls);
    db_bind_int64(s, 20, r->last_seq);
    db_bind_int64(s, 21, r->msg_count);
    db_bind_text(s, 22, r->owner);
    db_bind_int64(s, 23, r->lease_until_ns);
    db_bind_text(s, 24, r->answered_by[0] ? r->answered_by : NULL);
    db_bind_text(s, 25, r->fallback[0] ? r->fallback : NULL);
}

int store_run_insert(store_t *st, const store_run_t *r)
{
    db_stmt_t *s = stmt(st, Q_RUN_INSERT);
    if (!s)
        return ERR_IO;
    bind_run(s, r);
    return store_step_done(s);
}

int store_run_update(store_t *st, const store_run_t *r, const char *held_by)
{
    db_stmt_t *s = stmt(st, Q_RUN_UPDATE);
    if (!s)
        return ERR_IO;
    bind_run(s, r);
    db_bind_text(s, 26, held_by);
    /* Changes are known unless the driver pipelined the update (-1): then the fence is the
     * heartbeat's (a lease that ran out is not renewed and its run stops) and the events'
     * primary key (a new driver's events take the seqs first, and this batch's commit
     * fails). */
    int rc = db_run(s);
    int64_t changed = rc == DB_DONE ? db_changes(s) : -1;
    db_reset(s);
    if (rc == DB_ROW)
        rc = 0;
    return !rc && changed == 0 ? ERR_STATE : rc;
}

static void read_run(db_stmt_t *s, store_run_t *r)
{
    memset(r, 0, sizeof *r);
    store_col_copy(s, 0, r->id, sizeof r->id);
    store_col_copy(s, 1, r->agent, sizeof r->agent);
    store_col_copy(s, 2, r->agent_path, sizeof r->agent_path);
    store_col_copy(s, 3, r->model, sizeof r->model);
    store_col_copy(s, 4, r->state, sizeof r->state);
    r->step = (int)db_col_int64(s, 5);
    r->input = store_col_dup(s, 6);
    r->answer = store_col_dup(s, 7);
    r->error = store_col_dup(s, 8);
    store_col_copy(s, 9, r->reason, sizeof r->reason);
    r->spec = store_col_dup(s, 10);
    r->created_ns = db_col_int64(s, 11);
    r->updated_ns = db_col_int64(s, 12);
    r->ended_ns = db_col_int64(s, 13);
    r->input_tokens = db_col_int64(s, 14);
    r->output_tokens = db_col_int64(s, 15);
    r->cost_usd = db_col_double(s, 16);
    r->model_calls = (int)db_col_int64(s, 17);
    r->tool_calls = (int)db_col_int64(s, 18);
    r->last_seq = db_col_int64(s, 19);
    r->msg_count = (int)db_col_int64(s, 20);
    store_col_copy(s, 21, r->owner, sizeof r->owner);
    r->lease_until_ns = db_col_int64(s, 22);
    store_col_copy(s, 23, r->answered_by, sizeof r->answered_by);
    store_col_copy(s, 24, r->fallback, sizeof r->fallback);
}

void store_run_clear(store_run_t *r)
{
    if (!r)
        return;
    free(r->input);
    free(r->answer);
    free(r->error);
    free(r->spec);
    r->input = r->answer = r->error = r->spec = NULL;
}

int store_owner_dead(const char *owner)
{
    char host[256] = "";
    const char *colon = strrchr(owner, ':');
    if (!colon || gethostname(host, sizeof host - 1) != 0)
        return 0;
    if ((size_t)(colon - owner) != strlen(host) || strncmp(owner, host, strlen(host)) != 0)
        return 0;
    long pid = strtol(colon + 1, NULL, 10);
    if (pid <= 0)
        return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int store_run_claim(store_t *st, const char *run_id, const char *owner, int64_t now_ns,
                    int64_t lease_until_ns)
{
    int rc;
    db_stmt_t *s = store_stmt(st, "SELECT owner, lease_until_ns FROM runs WHERE id=?1", &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    rc = db_step(s);
    if (rc != DB_ROW) {
        db_reset(s);
        return rc == DB_DONE ? ERR_NOTFOUND : rc;
    }
    char cur[64];
    store_col_copy(s, 0, cur, sizeof cur);
    int64_t until = db_col_int64(s, 1);
    db_reset(s);
    if (cur[0] && strcmp(cur, owner) != 0 && until > now_ns && !store_owner_dead(cur))
        return ERR_BUSY;
    /* Compare-and-set on the owner and lease we saw, so two claimers cannot both win, and a
     * claim cannot take a lease its owner renewed since we looked: the UPDATE re-reads the
     * row under the write lock (SQLite) or the row lock (PostgreSQL), and changes no row
     * when either moved. */
    s = store_stmt(st,
                   "UPDATE runs SET owner=?2, lease_until_ns=?3 WHERE id=?1 AND owner=?4 AND "
                   "lease_until_ns=?5",
                   &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    db_bind_text(s, 2, owner);
    db_bind_int64(s, 3, lease_until_ns);
    db_bind_text(s, 4, cur);
    db_bind_int64(s, 5, until);
    return store_cas_done(s);
}

int store_cas_done(db_stmt_t *s)
{
    int rc = db_step(s);
    /* ERR_BUSY means another owner; a lock held past the busy timeout is a database error. */
    if (rc == DB_DONE || rc == DB_ROW)
        rc = db_changes(s) == 1 ? 0 : ERR_BUSY;
    else if (rc == ERR_BUSY)
        rc = ERR_IO;
    db_reset(s);
    return rc;
}

int store_lease_drop(store_t *st, const char *run_id, const char *owner)
{
    int rc;
    db_stmt_t *s = store_stmt(st, "UPDATE runs SET lease_until_ns=0 WHERE id=?1 AND owner=?2", &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    db_bind_text(s, 2, owner);
    return run_write(s);
}

int store_lease_renew(store_t *st, const char *owner, int64_t now_ns, int64_t lease_until_ns)
{
    /* Runs, and the batches whose inputs this process is starting; a lease already over is
     * not renewed: another process may have claimed it, and renewing it could not tell. */
    static const char *const sql[] = {
        "UPDATE runs SET lease_until_ns=?2 WHERE owner=?1 AND lease_until_ns>?3",
        "UPDATE batches SET lease_until_ns=?2 WHERE owner=?1 AND lease_until_ns>?3"};
    int rc = 0;
    for (size_t i = 0; i < 2 && !rc; i++) {
        db_stmt_t *s = store_stmt(st, sql[i], &rc);
        if (!s)
            return rc;
        db_bind_text(s, 1, owner);
        db_bind_int64(s, 2, lease_until_ns);
        db_bind_int64(s, 3, now_ns);
        rc = run_write(s);
    }
    return rc;
}

int store_orphans_each(store_t *st, const char *sql, int64_t now_ns, store_id_fn cb, void *ud)
{
    int rc;
    db_stmt_t *s = store_stmt(st, sql, &rc);
    if (!s)
        return rc;
    while ((rc = db_step(s)) == DB_ROW) {
        char owner[64];
        store_col_copy(s, 2, owner, sizeof owner);
        if (owner[0] && db_col_int64(s, 3) > now_ns && !store_owner_dead(owner))
            continue;
        if (cb(ud, db_col_text(s, 0), db_col_text(s, 1)))
            break;
    }
    db_reset(s);
    return rc == DB_ROW ? 0 : rc;
}

int store_runs_orphaned(store_t *st, int64_t now_ns, store_id_fn cb, void *ud)
{
    return store_orphans_each(st,
                              "SELECT id, agent_path, owner, lease_until_ns FROM runs WHERE state "
                              "IN ('created','planning','acting','observing') ORDER BY created_ns",
                              now_ns, cb, ud);
}

int store_vacuum(store_t *st)
{
    return db_exec(st->db, "VACUUM");
}

/* Resolve a unique id prefix to the full id (users type the first few characters). */
static int resolve_prefix(store_t *st, const char *prefix, char *out, size_t len)
{
    db_stmt_t *s = stmt(st, Q_RUN_PREFIX);
    if (!s)
        return ERR_IO;
    db_bind_text(s, 1, prefix);
    int found = 0, rc;
    while ((rc = db_step(s)) == DB_ROW) {
        if (found++ == 0)
            store_col_copy(s, 0, out, len);
    }
    db_reset(s);
    if (rc)
        return rc;
    return found == 0 ? ERR_NOTFOUND : found > 1 ? ERR_INVAL : 0;
}

int store_run_get(store_t *st, const char *id_or_prefix, store_run_t *out)
{
    char id[40];
    if (!id_or_prefix || !*id_or_prefix)
        return ERR_INVAL;
    int rc = resolve_prefix(st, id_or_prefix, id, sizeof id);
    if (rc)
        return rc;
    db_stmt_t *s = stmt(st, Q_RUN_GET);
    if (!s)
        return ERR_IO;
    db_bind_text(s, 1, id);
    rc = db_step(s);
    if (rc == DB_ROW)
        read_run(s, out);
    db_reset(s);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? ERR_NOTFOUND : rc;
}

int store_runs_each(store_t *st, const char *state_filter, int limit, store_run_fn cb, void *ud)
{
    return store_runs_range(st, state_filter, 0, limit, cb, ud);
}

int store_runs_count(store_t *st, const char *state_filter, int64_t *out)
{
    int rc;
    db_stmt_t *s = store_stmt(st, "SELECT count(*) FROM runs WHERE (?1 IS NULL OR state=?1)", &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, state_filter);
    rc = db_step(s);
    if (rc == DB_ROW)
        *out = db_col_int64(s, 0);
    db_reset(s);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? ERR_IO : rc;
}

/* Step s (bound) handing each run row to cb until it returns nonzero; resets s. */
static int each_run(db_stmt_t *s, store_run_fn cb, void *ud)
{
    int rc;
    while ((rc = db_step(s)) == DB_ROW) {
        store_run_t r;
        read_run(s, &r);
        int stop = cb(ud, &r);
        store_run_clear(&r);
        if (stop)
            break;
    }
    db_reset(s);
    return rc == DB_ROW ? 0 : rc;
}

int store_runs_range(store_t *st, const char *state_filter, int offset, int limit, store_run_fn cb,
                     void *ud)
{
    int rc;
    db_stmt_t *s = store_stmt(st,
                              "SELECT " RUN_COLS " FROM runs WHERE (?1 IS NULL OR state=?1) "
                              "ORDER BY created_ns DESC, id LIMIT ?2 OFFSET ?3",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, state_filter);
    db_bind_int64(s, 2, limit > 0 ? limit : INT64_MAX);
    db_bind_int64(s, 3, offset > 0 ? offset : 0);
    return each_run(s, cb, ud);
}

int store_runs_since(store_t *st, int64_t since_ns, const char *agent, store_run_fn cb, void *ud)
{
    int rc;
    db_stmt_t *s = store_stmt(st,
                              "SELECT " RUN_COLS " FROM runs WHERE created_ns >= ?1 "
                              "AND (?2 IS NULL OR agent=?2) ORDER BY created_ns, id",
                              &rc);
    if (!s)
        return rc;
    db_bind_int64(s, 1, since_ns);
    db_bind_text(s, 2, agent);
    return each_run(s, cb, ud);
}

/* Insert (run_id, n, json) with one of the keyed-row statements (messages, events). */
static int add_keyed(store_t *st, int which, const char *run_id, int64_t n, const char *json)
{
    db_stmt_t *s = stmt(st, which);
    if (!s)
        return ERR_IO;
    db_bind_text(s, 1, run_id);
    db_bind_int64(s, 2, n);
    db_bind_text(s, 3, json);
    return run_write(s);
}

int store_message_add(store_t *st, const char *run_id, int idx, const char *json)
{
    return add_keyed(st, Q_MSG_ADD, run_id, idx, json);
}

/* Visit rows of a (int64, text) query bound to (text, optional int64). Statement cached, so
 * callbacks must not re-enter the same query. */
static int each_text(store_t *st, int which, const char *key, int64_t after, int bind_after,
                     store_text_fn cb, void *ud)
{
    db_stmt_t *s = stmt(st, which);
    if (!s)
        return ERR_IO;
    db_bind_text(s, 1, key);
    if (bind_after)
        db_bind_int64(s, 2, after);
    int rc;
    while ((rc = db_step(s)) == DB_ROW) {
        if (cb(ud, db_col_int64(s, 0), db_col_text(s, 1)))
            break;
    }
    db_reset(s);
    return rc == DB_ROW ? 0 : rc;
}

int store_messages_each(store_t *st, const char *run_id, store_text_fn cb, void *ud)
{
    return each_text(st, Q_MSG_EACH, run_id, 0, 0, cb, ud);
}

int store_toolcall_put(store_t *st, const store_toolcall_t *tc)
{
    db_stmt_t *s = stmt(st, Q_TC_PUT);
    if (!s)
        return ERR_IO;
    db_bind_text(s, 1, tc->run_id);
    db_bind_text(s, 2, tc->call_id);
    db_bind_int64(s, 3, tc->step);
    db_bind_int64(s, 4, tc->ord);
    db_bind_text(s, 5, tc->name);
    db_bind_text(s, 6, tc->args);
    db_bind_text(s, 7, tc->state);
    /* Left NULL when it is what a read derives (Q_TC_EACH): the run's key for its call,
     * the model's id equal to the runtime's; a run's rows are smaller. */
    char idem[128];
    snprintf(idem, sizeof idem, "%s:%s", tc->run_id, tc->call_id);
    db_bind_text(s, 8, strcmp(tc->idem_key, idem) ? tc->idem_key : NULL);
    db_bind_text(s, 9, tc->result);
    db_bind_text(s, 10, tc->error);
    db_bind_int64(s, 11, tc->started_ns);
    db_bind_int64(s, 12, tc->ended_ns);
    db_bind_int64(s, 13, tc->attempts);
    db_bind_text(s, 14, strcmp(tc->wire_id, tc->call_id) ? tc->wire_id : NULL);
    return run_write(s);
}

int store_toolcalls_each(store_t *st, const char *run_id, store_toolcall_fn cb, void *ud)
{
    db_stmt_t *s = stmt(st, Q_TC_EACH);
    if (!s)
        return ERR_IO;
    db_bind_text(s, 1, run_id);
    int rc;
    while ((rc = db_step(s)) == DB_ROW) {
        store_toolcall_t tc;
        memset(&tc, 0, sizeof tc);
        store_col_copy(s, 0, tc.run_id, sizeof tc.run_id);
        store_col_copy(s, 1, tc.call_id, sizeof tc.call_id);
        tc.step = (int)db_col_int64(s, 2);
        tc.ord = (int)db_col_int64(s, 3);
        store_col_copy(s, 4, tc.name, sizeof tc.name);
        tc.args = db_col_text(s, 5);
        store_col_copy(s, 6, tc.state, sizeof tc.state);
        store_col_copy(s, 7, tc.idem_key, sizeof tc.idem_key);
        tc.result = db_col_text(s, 8);
        tc.error = db_col_text(s, 9);
        tc.started_ns = db_col_int64(s, 10);
        tc.ended_ns = db_col_int64(s, 11);
        tc.attempts = (int)db_col_int64(s, 12);
        store_col_copy(s, 13, tc.wire_id, sizeof tc.wire_id);
        if (cb(ud, &tc))
            break;
    }
    db_reset(s);
    return rc == DB_ROW ? 0 : rc;
}

int store_event_add(store_t *st, const char *run_id, int64_t seq, const char *json)
{
    return add_keyed(st, Q_EV_ADD, run_id, seq, json);
}

int store_events_each(store_t *st, const char *run_id, int64_t after_seq, store_text_fn cb,
                      void *ud)
{
    return each_text(st, Q_EV_EACH, run_id, after_seq, 1, cb, ud);
}

static int get_one(store_t *st, int which, const char *a, const char *b, char **out)
{
    db_stmt_t *s = stmt(st, which);
    if (!s)
        return ERR_IO;
    db_bind_text(s, 1, a);
    if (b)
        db_bind_text(s, 2, b);
    int rc = db_step(s);
    if (rc == DB_ROW) {
        *out = store_col_dup(s, 0);
        rc = *out ? 0 : ERR_NOMEM;
    } else if (rc == DB_DONE) {
        rc = ERR_NOTFOUND;
    }
    db_reset(s);
    return rc;
}

int store_kv_get(store_t *st, const char *ns, const char *key, char **out)
{
    return get_one(st, Q_KV_GET, ns, key, out);
}

/* Run a write statement whose parameters are the first n of (a, b, c), all text, then
 * created_ns when with_time. */
static int write_texts(store_t *st, int which, int n, const char *a, const char *b, const char *c,
                       int with_time)
{
    db_stmt_t *s = stmt(st, which);
    if (!s)
        return ERR_IO;
    const char *v[3] = {a, b, c};
    for (int i = 0; i < n; i++)
        db_bind_text(s, i + 1, v[i]);
    if (with_time) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        db_bind_int64(s, n + 1, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
    }
    return store_step_done(s);
}

int store_kv_put(store_t *st, const char *ns, const char *key, const char *value)
{
    return write_texts(st, Q_KV_PUT, 3, ns, key, value, 0);
}

int store_kv_del(store_t *st, const char *ns, const char *key)
{
    return write_texts(st, Q_KV_DEL, 2, ns, key, NULL, 0);
}

int store_kv_each(store_t *st, const char *ns, const char *prefix, store_kv_fn cb, void *ud)
{
    db_stmt_t *s = stmt(st, Q_KV_EACH);
    if (!s)
        return ERR_IO;
    db_bind_text(s, 1, ns);
    db_bind_text(s, 2, prefix ? prefix : "");
    int rc;
    while ((rc = db_step(s)) == DB_ROW) {
        if (cb(ud, db_col_text(s, 0), db_col_text(s, 1)))
            break;
    }
    db_reset(s);
    return rc == DB_ROW ? 0 : rc;
}

int store_cache_get(store_t *st, const char *key, char **out)
{
    return get_one(st, Q_CACHE_GET, key, NULL, out);
}

int store_cache_put(store_t *st, const char *key, const char *model, const char *json)
{
    return write_texts(st, Q_CACHE_PUT, 3, key, model, json, 1);
}
