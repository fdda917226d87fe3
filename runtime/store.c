/*
 * store: see store.h. One connection per store_t; every statement is prepared once
 * (lazily, on first use) and reset right after use, so the hot path of a transition is a
 * handful of sqlite3_step calls inside one BEGIN IMMEDIATE ... COMMIT.
 */
#include "store.h"
#include "store_int.h"

#include "err.h"
#include "mem.h"

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    Q_BEGIN,
    Q_COMMIT,
    Q_SP,
    Q_RELEASE,
    Q__COUNT
};

#define RUN_COLS                                                                         \
    "id, agent, agent_path, model, state, step, input, answer, error, reason, spec, "    \
    "created_ns, updated_ns, ended_ns, input_tokens, output_tokens, cost_usd, "          \
    "model_calls, tool_calls, last_seq, msg_count, owner, lease_until_ns, answered_by, "   \
    "fallback"

static const char *const sql_text[Q__COUNT] = {
    [Q_RUN_INSERT] = "INSERT INTO runs (" RUN_COLS ") VALUES "
                     "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,"
                     "?21,?22,?23,?24,?25)",
    [Q_RUN_UPDATE] = "UPDATE runs SET agent=?2, agent_path=?3, model=?4, state=?5, step=?6, "
                     "input=?7, answer=?8, error=?9, reason=?10, spec=?11, created_ns=?12, "
                     "updated_ns=?13, ended_ns=?14, input_tokens=?15, output_tokens=?16, "
                     "cost_usd=?17, model_calls=?18, tool_calls=?19, last_seq=?20, "
                     "msg_count=?21, owner=?22, lease_until_ns=?23, answered_by=?24, "
                     "fallback=?25 WHERE id=?1 AND owner=?26",
    [Q_RUN_GET] = "SELECT " RUN_COLS " FROM runs WHERE id=?1",
    [Q_RUN_PREFIX] = "SELECT id FROM runs WHERE id >= ?1 AND id < ?1 || 'g' LIMIT 2",
    [Q_MSG_ADD] = "INSERT INTO messages (run_id, idx, body) VALUES (?1, ?2, ?3)",
    [Q_MSG_EACH] = "SELECT idx, body FROM messages WHERE run_id=?1 ORDER BY idx",
    [Q_TC_PUT] = "INSERT OR REPLACE INTO tool_calls (run_id, call_id, step, ord, name, args, "
                 "state, idem_key, result, error, started_ns, ended_ns, attempts, wire_id) "
                 "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
    [Q_TC_EACH] = "SELECT run_id, call_id, step, ord, name, args, state, idem_key, result, "
                  "error, started_ns, ended_ns, attempts, wire_id FROM tool_calls "
                  "WHERE run_id=?1 ORDER BY step, ord",
    [Q_EV_ADD] = "INSERT INTO events (run_id, seq, body) VALUES (?1, ?2, ?3)",
    [Q_EV_EACH] = "SELECT seq, body FROM events WHERE run_id=?1 AND seq>?2 ORDER BY seq",
    [Q_KV_GET] = "SELECT value FROM kv WHERE ns=?1 AND key=?2",
    [Q_KV_PUT] = "INSERT OR REPLACE INTO kv (ns, key, value) VALUES (?1, ?2, ?3)",
    [Q_KV_DEL] = "DELETE FROM kv WHERE ns=?1 AND key=?2",
    [Q_KV_EACH] = "SELECT key, value FROM kv WHERE ns=?1 AND substr(key, 1, length(?2))=?2 "
                  "ORDER BY key",
    [Q_CACHE_GET] = "SELECT body FROM cache WHERE key=?1",
    [Q_CACHE_PUT] = "INSERT OR REPLACE INTO cache (key, model, body, created_ns) VALUES "
                    "(?1, ?2, ?3, CAST((julianday('now') - 2440587.5) * 86400e9 AS INTEGER))",
    /* Transaction control is prepared too: sqlite3_exec would parse it every time, and a
     * batch runs one SAVEPOINT/RELEASE pair per transition. */
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_SP] = "SAVEPOINT tr",
    [Q_RELEASE] = "RELEASE tr",
};

/* Numbered migrations; migration i brings user_version from i to i+1. Never edit a
 * shipped one: append. */
static const char *const migrations[] = {
    /* 1: the initial schema */
    "CREATE TABLE runs ("
    "  id TEXT PRIMARY KEY, agent TEXT NOT NULL, agent_path TEXT NOT NULL, model TEXT,"
    "  state TEXT NOT NULL, step INTEGER NOT NULL DEFAULT 0, input TEXT, answer TEXT,"
    "  error TEXT, reason TEXT, spec TEXT, created_ns INTEGER, updated_ns INTEGER,"
    "  ended_ns INTEGER, input_tokens INTEGER DEFAULT 0, output_tokens INTEGER DEFAULT 0,"
    "  cost_usd REAL DEFAULT 0, model_calls INTEGER DEFAULT 0, tool_calls INTEGER DEFAULT 0,"
    "  last_seq INTEGER DEFAULT 0, msg_count INTEGER DEFAULT 0, owner TEXT DEFAULT '',"
    "  lease_until_ns INTEGER DEFAULT 0);"
    "CREATE INDEX runs_state ON runs(state, created_ns);"
    "CREATE INDEX runs_created ON runs(created_ns);"
    "CREATE TABLE messages (run_id TEXT NOT NULL, idx INTEGER NOT NULL, body TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, idx)) WITHOUT ROWID;"
    "CREATE TABLE tool_calls (run_id TEXT NOT NULL, call_id TEXT NOT NULL, step INTEGER,"
    "  ord INTEGER, name TEXT, args TEXT, state TEXT NOT NULL, idem_key TEXT, result TEXT,"
    "  error TEXT, started_ns INTEGER, ended_ns INTEGER, attempts INTEGER DEFAULT 0,"
    "  PRIMARY KEY (run_id, call_id)) WITHOUT ROWID;"
    "CREATE TABLE events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, seq)) WITHOUT ROWID;"
    "CREATE VIEW transitions AS SELECT run_id, seq,"
    "  json_extract(body, '$.step') AS step,"
    "  json_extract(body, '$.state_from') AS from_state,"
    "  json_extract(body, '$.state_to') AS to_state,"
    "  json_extract(body, '$.event') AS event,"
    "  json_extract(body, '$.ts_ns') AS ts_ns"
    "  FROM events WHERE json_extract(body, '$.state_to') IS NOT NULL;"
    "CREATE TABLE kv (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    "  PRIMARY KEY (ns, key)) WITHOUT ROWID;"
    "CREATE TABLE cache (key TEXT PRIMARY KEY, model TEXT, body TEXT NOT NULL,"
    "  created_ns INTEGER) WITHOUT ROWID;",
    /* 2: sessions (conversations of runs, store_session.c); a run belongs to at most one */
    "CREATE TABLE sessions (name TEXT PRIMARY KEY, agent TEXT NOT NULL,"
    "  created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE session_runs (session TEXT NOT NULL, turn INTEGER NOT NULL,"
    "  run_id TEXT NOT NULL UNIQUE, PRIMARY KEY (session, turn)) WITHOUT ROWID;",
    /* 3: a tool call is identified by the runtime (call_<step>_<n>); the model's own id,
     * which models reuse across turns, is kept only for the wire */
    "ALTER TABLE tool_calls ADD COLUMN wire_id TEXT;",
    /* 4: which model answered the run last, and why the chain's first one did not */
    "ALTER TABLE runs ADD COLUMN answered_by TEXT;"
    "ALTER TABLE runs ADD COLUMN fallback TEXT;",
    /* 5: labels of a run (eval id, case, variant: store_label.c); they go with their run */
    "CREATE TABLE run_labels (run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, key)) WITHOUT ROWID;"
    "CREATE INDEX run_labels_kv ON run_labels(key, value);"
    "CREATE TRIGGER run_labels_gone AFTER DELETE ON runs BEGIN"
    "  DELETE FROM run_labels WHERE run_id = OLD.id; END;",
    /* 6: the HTTP API's own record of a run it started (store_api.c): the Idempotency-Key of
     * the POST (unique, so a retried POST finds the first run), a hash of its body, and the
     * options (model, limits) a resume must apply again, with the caller's metadata */
    "CREATE TABLE api_runs (run_id TEXT PRIMARY KEY, idem_key TEXT UNIQUE, body_hash TEXT,"
    "  options TEXT, metadata TEXT, created_ns INTEGER) WITHOUT ROWID;"
    "CREATE INDEX runs_agent_created ON runs(agent, created_ns);",
    /* 7: strategies (store_plan.c): a plan_execute run's plans, one row per version with
     * its steps' status; a sub-agent's run linked to the parent call that started it */
    "CREATE TABLE plans (run_id TEXT NOT NULL, version INTEGER NOT NULL, plan TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, version)) WITHOUT ROWID;"
    "CREATE TABLE subruns (run_id TEXT PRIMARY KEY, parent_run_id TEXT NOT NULL,"
    "  parent_call_id TEXT NOT NULL, limits TEXT,"
    "  UNIQUE (parent_run_id, parent_call_id)) WITHOUT ROWID;",
    /* 8: summaries of a conversation's older messages, made by summarising compaction
     * (store_summary.c): scope is the session (or the run outside one), upto the number of
     * conversation messages covered, hash their fingerprint */
    "CREATE TABLE summaries (scope TEXT NOT NULL, upto INTEGER NOT NULL, hash TEXT NOT NULL,"
    "  body TEXT NOT NULL, run_id TEXT, created_ns INTEGER,"
    "  PRIMARY KEY (scope, upto)) WITHOUT ROWID;",
    /* 9: the user a run was started for (--user): it scopes the agent's long-term memory */
    "CREATE TABLE run_users (run_id TEXT PRIMARY KEY, user TEXT NOT NULL) WITHOUT ROWID;",
    /* 10: batches (store_batch.c): every input recorded before the first run starts; an input's
     * run_id is set in the transaction that creates its run, so each runs exactly once */
    "CREATE TABLE batches (id TEXT PRIMARY KEY, agent_path TEXT NOT NULL, model TEXT,"
    "  concurrency INTEGER NOT NULL, inputs INTEGER NOT NULL, created_ns INTEGER NOT NULL,"
    "  owner TEXT NOT NULL DEFAULT '', lease_until_ns INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE batch_inputs (batch_id TEXT NOT NULL, n INTEGER NOT NULL,"
    "  input TEXT NOT NULL, run_id TEXT, PRIMARY KEY (batch_id, n)) WITHOUT ROWID;",
    /* 11: cancel requests for runs another process drives (store_cancel.c): the driver polls
     * the requests of the runs it holds and cancels them */
    "CREATE TABLE run_cancels (run_id TEXT PRIMARY KEY, reason TEXT NOT NULL,"
    "  created_ns INTEGER NOT NULL) WITHOUT ROWID;",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *q[Q__COUNT];
    char path[1024];
};

int store_translate(int src)
{
    return store_sqlite_rc(src);
}

int store_sqlite_rc(int src)
{
    switch (src & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW: return 0;
    case SQLITE_NOMEM: return ERR_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return ERR_BUSY;
    case SQLITE_CONSTRAINT: return ERR_STATE;
    default: return ERR_IO;
    }
}

static int translate(int src)
{
    return store_translate(src);
}

sqlite3 *store_sqlite(store_t *st)
{
    return st->db;
}

const char *store_path(const store_t *st)
{
    return st->path;
}

const char *store_errmsg(store_t *st)
{
    return st && st->db ? sqlite3_errmsg(st->db) : "no database";
}

const char *store_why(store_t *st, int rc)
{
    if (st && st->db && sqlite3_errcode(st->db) != SQLITE_OK)
        return sqlite3_errmsg(st->db);
    return err_str(rc ? rc : ERR_INTERNAL);
}

static int exec(store_t *st, const char *sql)
{
    return translate(sqlite3_exec(st->db, sql, NULL, NULL, NULL));
}

static sqlite3_stmt *stmt(store_t *st, int which)
{
    if (!st->q[which] &&
        sqlite3_prepare_v3(st->db, sql_text[which], -1, SQLITE_PREPARE_PERSISTENT, &st->q[which],
                           NULL) != SQLITE_OK)
        return NULL;
    return st->q[which];
}

/* Step a write statement to completion and reset it. */
static int run_write(store_t *st, sqlite3_stmt *s)
{
    int src = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    (void)st;
    return src == SQLITE_DONE ? 0 : translate(src);
}

static int user_version(store_t *st, int *out)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return ERR_IO;
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return src == SQLITE_ROW ? 0 : translate(src);
}

/* Several processes may open a new database at once: the version is read again under the
 * write lock (BEGIN IMMEDIATE) so each migration runs exactly once. */
static int migrate(store_t *st, char *errbuf, size_t errlen)
{
    int n = (int)(sizeof migrations / sizeof migrations[0]);
    for (;;) {
        int version = 0;
        if (user_version(st, &version))
            goto fail;
        if (version > n)
            return err_set(errbuf, errlen, ERR_INVAL,
                           "%s: database schema version %d is newer than this agentd (%d); "
                           "upgrade agentd",
                           st->path, version, n);
        if (version == n)
            return 0;
        if (exec(st, "BEGIN IMMEDIATE"))
            goto fail;
        if (user_version(st, &version)) {
            exec(st, "ROLLBACK");
            goto fail;
        }
        if (version != n) {
            char pragma[64];
            snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", version + 1);
            if (exec(st, migrations[version]) || exec(st, pragma)) {
                err_set(errbuf, errlen, ERR_IO, "%s: migration %d failed: %s", st->path,
                        version + 1, sqlite3_errmsg(st->db));
                exec(st, "ROLLBACK");
                return ERR_IO;
            }
        }
        if (exec(st, "COMMIT"))
            goto fail;
    }
fail:
    return err_set(errbuf, errlen, ERR_IO, "%s: %s", st->path, sqlite3_errmsg(st->db));
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

/* A read-only connection creates and changes nothing: no WAL switch (a WAL database stays
 * WAL), no migration. A WAL database in a folder we cannot write, whose -shm file is gone,
 * cannot be read through the shared-memory index; nobody can be writing it then (a writer
 * would need that folder), so it is opened immutable. */
static int open_readonly(store_t *st, char *errbuf, size_t errlen)
{
    int version = 0, rc;
    for (int attempt = 0; attempt < 2; attempt++) {
        char uri[1200];
        if (attempt)
            snprintf(uri, sizeof uri, "file:%s?immutable=1", st->path);
        int flags = SQLITE_OPEN_READONLY | (attempt ? SQLITE_OPEN_URI : 0);
        if (sqlite3_open_v2(attempt ? uri : st->path, &st->db, flags, NULL) != SQLITE_OK)
            return err_set(errbuf, errlen, ERR_IO, "%s: cannot open the database: %s", st->path,
                           st->db ? sqlite3_errmsg(st->db) : "out of memory");
        sqlite3_busy_timeout(st->db, busy_ms());
        sqlite3_extended_result_codes(st->db, 1);
        if (!(rc = user_version(st, &version)))
            break;
        int src = sqlite3_extended_errcode(st->db);
        if (attempt || ((src & 0xff) != SQLITE_CANTOPEN && (src & 0xff) != SQLITE_READONLY))
            return err_set(errbuf, errlen, rc, "%s: %s", st->path, sqlite3_errmsg(st->db));
        sqlite3_close(st->db);
        st->db = NULL;
    }
    int n = (int)(sizeof migrations / sizeof migrations[0]);
    if (version > n)
        return err_set(errbuf, errlen, ERR_INVAL,
                       "%s: database schema version %d is newer than this agentd (%d); "
                       "upgrade agentd",
                       st->path, version, n);
    if (version < n)
        return 1; /* older: migrate it through a writing connection */
    if (exec(st, "PRAGMA temp_store=MEMORY") || exec(st, "PRAGMA cache_size=-4096"))
        return err_set(errbuf, errlen, ERR_IO, "%s: %s", st->path, sqlite3_errmsg(st->db));
    return 0;
}

static store_t *open_mode(const char *path, int durability, int readonly, char *errbuf,
                          size_t errlen)
{
    mem_install();
    store_t *st = calloc(1, sizeof *st);
    if (!st) {
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(st->path, sizeof st->path, "%s", path);
    if (readonly) {
        int rc = open_readonly(st, errbuf, errlen);
        if (rc == 1) {
            store_close(st);
            return open_mode(path, durability, 0, errbuf, errlen);
        }
        if (rc)
            goto fail;
        return st;
    }
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        err_set(errbuf, errlen, ERR_IO, "%s: cannot open database: %s", path,
                st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, busy_ms());
    sqlite3_extended_result_codes(st->db, 1);
    /* SQLite quietly falls back to reading a file it cannot write; a writer must know now,
     * not at its first commit. */
    if (sqlite3_db_readonly(st->db, "main") == 1) {
        err_set(errbuf, errlen, ERR_IO,
                "%s: the database (or its folder) is read-only; this command writes to it",
                path);
        goto fail;
    }
    const char *sync = durability == STORE_DURABLE_NORMAL ? "PRAGMA synchronous=NORMAL"
                                                          : "PRAGMA synchronous=FULL";
    /* temp_store=MEMORY: savepoints would otherwise spill statement journals to
     * /var/tmp files on every batch. */
    if (exec(st, "PRAGMA journal_mode=WAL") || exec(st, sync) ||
        exec(st, "PRAGMA temp_store=MEMORY") || exec(st, "PRAGMA wal_autocheckpoint=4000") ||
        exec(st, "PRAGMA cache_size=-4096") ||
        exec(st, "PRAGMA foreign_keys=ON")) {
        err_set(errbuf, errlen, ERR_IO, "%s: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (migrate(st, errbuf, errlen))
        goto fail;
    return st;
fail:
    store_close(st);
    return NULL;
}

store_t *store_open(const char *path, int durability, char *errbuf, size_t errlen)
{
    return open_mode(path, durability, 0, errbuf, errlen);
}

store_t *store_open_existing(const char *path, int mode, char *errbuf, size_t errlen,
                             int *why)
{
    *why = ERR_NOTFOUND;
    if (access(path, F_OK) != 0) {
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
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(st->q[i]);
    sqlite3_close(st->db);
    free(st);
}

void store_global_shutdown(void)
{
    sqlite3_shutdown();
}

static int control(store_t *st, int which)
{
    sqlite3_stmt *s = stmt(st, which);
    if (!s)
        return translate(sqlite3_errcode(st->db));
    int src = sqlite3_step(s);
    sqlite3_reset(s);
    return src == SQLITE_DONE ? 0 : translate(src);
}

int store_tx_begin(store_t *st)
{
    return control(st, Q_BEGIN);
}

int store_tx_commit(store_t *st)
{
    int rc = control(st, Q_COMMIT);
    if (rc)
        store_tx_rollback(st);
    return rc;
}

void store_tx_rollback(store_t *st)
{
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

int store_sp_begin(store_t *st)
{
    return control(st, Q_SP);
}

int store_sp_release(store_t *st)
{
    return control(st, Q_RELEASE);
}

void store_sp_rollback(store_t *st)
{
    sqlite3_exec(st->db, "ROLLBACK TO tr; RELEASE tr", NULL, NULL, NULL);
}

int store_in_tx(store_t *st)
{
    return !sqlite3_get_autocommit(st->db);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static void bind_run(sqlite3_stmt *s, const store_run_t *r)
{
    bind_text(s, 1, r->id);
    bind_text(s, 2, r->agent);
    bind_text(s, 3, r->agent_path);
    bind_text(s, 4, r->model);
    bind_text(s, 5, r->state);
    sqlite3_bind_int(s, 6, r->step);
    bind_text(s, 7, r->input);
    bind_text(s, 8, r->answer);
    bind_text(s, 9, r->error);
    bind_text(s, 10, r->reason[0] ? r->reason : NULL);
    bind_text(s, 11, r->spec);
    sqlite3_bind_int64(s, 12, r->created_ns);
    sqlite3_bind_int64(s, 13, r->updated_ns);
    sqlite3_bind_int64(s, 14, r->ended_ns);
    sqlite3_bind_int64(s, 15, r->input_tokens);
    sqlite3_bind_int64(s, 16, r->output_tokens);
    sqlite3_bind_double(s, 17, r->cost_usd);
    sqlite3_bind_int(s, 18, r->model_calls);
    sqlite3_bind_int(s, 19, r->tool_calls);
    sqlite3_bind_int64(s, 20, r->last_seq);
    sqlite3_bind_int(s, 21, r->msg_count);
    bind_text(s, 22, r->owner);
    sqlite3_bind_int64(s, 23, r->lease_until_ns);
    bind_text(s, 24, r->answered_by[0] ? r->answered_by : NULL);
    bind_text(s, 25, r->fallback[0] ? r->fallback : NULL);
}

int store_run_insert(store_t *st, const store_run_t *r)
{
    sqlite3_stmt *s = stmt(st, Q_RUN_INSERT);
    if (!s)
        return ERR_IO;
    bind_run(s, r);
    return run_write(st, s);
}

int store_run_update(store_t *st, const store_run_t *r, const char *held_by)
{
    sqlite3_stmt *s = stmt(st, Q_RUN_UPDATE);
    if (!s)
        return ERR_IO;
    bind_run(s, r);
    bind_text(s, 26, held_by);
    int rc = run_write(st, s);
    if (!rc && sqlite3_changes(st->db) != 1)
        return ERR_STATE;
    return rc;
}

static void col_copy(sqlite3_stmt *s, int i, char *dst, size_t len)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    snprintf(dst, len, "%s", v ? (const char *)v : "");
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    return v ? strdup((const char *)v) : NULL;
}

static void read_run(sqlite3_stmt *s, store_run_t *r)
{
    memset(r, 0, sizeof *r);
    col_copy(s, 0, r->id, sizeof r->id);
    col_copy(s, 1, r->agent, sizeof r->agent);
    col_copy(s, 2, r->agent_path, sizeof r->agent_path);
    col_copy(s, 3, r->model, sizeof r->model);
    col_copy(s, 4, r->state, sizeof r->state);
    r->step = sqlite3_column_int(s, 5);
    r->input = col_dup(s, 6);
    r->answer = col_dup(s, 7);
    r->error = col_dup(s, 8);
    col_copy(s, 9, r->reason, sizeof r->reason);
    r->spec = col_dup(s, 10);
    r->created_ns = sqlite3_column_int64(s, 11);
    r->updated_ns = sqlite3_column_int64(s, 12);
    r->ended_ns = sqlite3_column_int64(s, 13);
    r->input_tokens = sqlite3_column_int64(s, 14);
    r->output_tokens = sqlite3_column_int64(s, 15);
    r->cost_usd = sqlite3_column_double(s, 16);
    r->model_calls = sqlite3_column_int(s, 17);
    r->tool_calls = sqlite3_column_int(s, 18);
    r->last_seq = sqlite3_column_int64(s, 19);
    r->msg_count = sqlite3_column_int(s, 20);
    col_copy(s, 21, r->owner, sizeof r->owner);
    r->lease_until_ns = sqlite3_column_int64(s, 22);
    col_copy(s, 23, r->answered_by, sizeof r->answered_by);
    col_copy(s, 24, r->fallback, sizeof r->fallback);
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
    sqlite3_stmt *s = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT owner, lease_until_ns FROM runs WHERE id=?1", -1, &s,
                           NULL) != SQLITE_OK)
        return ERR_IO;
    bind_text(s, 1, run_id);
    int src = sqlite3_step(s);
    if (src != SQLITE_ROW) {
        sqlite3_finalize(s);
        return src == SQLITE_DONE ? ERR_NOTFOUND : translate(src);
    }
    char cur[64];
    col_copy(s, 0, cur, sizeof cur);
    int64_t until = sqlite3_column_int64(s, 1);
    sqlite3_finalize(s);
    if (cur[0] && strcmp(cur, owner) != 0 && until > now_ns && !store_owner_dead(cur))
        return ERR_BUSY;
    /* Compare-and-set on the owner and lease we saw, so two claimers cannot both win, and a
     * claim cannot take a lease its owner renewed since we looked: the UPDATE re-reads the
     * row under the write lock (SQLite) or the row lock (PostgreSQL), and changes no row
     * when either moved. */
    if (sqlite3_prepare_v2(st->db,
                           "UPDATE runs SET owner=?2, lease_until_ns=?3 WHERE id=?1 AND owner=?4 "
                           "AND lease_until_ns=?5",
                           -1, &s, NULL) != SQLITE_OK)
        return ERR_IO;
    bind_text(s, 1, run_id);
    bind_text(s, 2, owner);
    sqlite3_bind_int64(s, 3, lease_until_ns);
    bind_text(s, 4, cur);
    sqlite3_bind_int64(s, 5, until);
    src = sqlite3_step(s);
    /* ERR_BUSY means another owner; a lock held past the busy timeout is a database error. */
    rc = src == SQLITE_DONE ? (sqlite3_changes(st->db) == 1 ? 0 : ERR_BUSY)
         : (src & 0xff) == SQLITE_BUSY ? ERR_IO
                                       : translate(src);
    sqlite3_finalize(s);
    return rc;
}

int store_lease_renew(store_t *st, const char *owner, int64_t now_ns, int64_t lease_until_ns)
{
    /* Runs, and the batches whose inputs this process is starting; a lease already over is
     * not renewed: another process may have claimed it, and renewing it could not tell. */
    static const char *const sql[] = {
        "UPDATE runs SET lease_until_ns=?2 WHERE owner=?1 AND lease_until_ns>?3",
        "UPDATE batches SET lease_until_ns=?2 WHERE owner=?1 AND lease_until_ns>?3"};
    int src = SQLITE_DONE;
    for (size_t i = 0; i < 2 && src == SQLITE_DONE; i++) {
        sqlite3_stmt *s = NULL;
        if (sqlite3_prepare_v2(st->db, sql[i], -1, &s, NULL) != SQLITE_OK)
            return ERR_IO;
        bind_text(s, 1, owner);
        sqlite3_bind_int64(s, 2, lease_until_ns);
        sqlite3_bind_int64(s, 3, now_ns);
        src = sqlite3_step(s);
        sqlite3_finalize(s);
    }
    return src == SQLITE_DONE ? 0 : translate(src);
}

int store_orphans_each(store_t *st, const char *sql, int64_t now_ns, store_id_fn cb, void *ud)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return ERR_IO;
    int src, rc = 0;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        char owner[64];
        col_copy(s, 2, owner, sizeof owner);
        if (owner[0] && sqlite3_column_int64(s, 3) > now_ns && !store_owner_dead(owner))
            continue;
        if (cb(ud, (const char *)sqlite3_column_text(s, 0),
               (const char *)sqlite3_column_text(s, 1)))
            break;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        rc = translate(src);
    sqlite3_finalize(s);
    return rc;
}

int store_runs_orphaned(store_t *st, int64_t now_ns, store_id_fn cb, void *ud)
{
    return store_orphans_each(st,
                              "SELECT id, agent_path, owner, lease_until_ns FROM runs WHERE state "
                              "IN ('created','planning','acting','observing') ORDER BY created_ns",
                              now_ns, cb, ud);
}

int store_gc(store_t *st, int64_t before_ns, int keep, store_id_fn cb, void *ud, int *deleted)
{
    sqlite3_stmt *s = NULL;
    int rc = store_tx_begin(st), n = 0;
    if (rc)
        return rc;
    const char *sql = "SELECT id, agent_path FROM runs WHERE state IN ('done','failed','cancelled')"
                      " AND (?1 = 0 OR created_ns < ?1)"
                      " AND (?2 < 0 OR id NOT IN (SELECT id FROM runs ORDER BY created_ns DESC"
                      " LIMIT ?2))";
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
        rc = ERR_IO;
        goto fail;
    }
    sqlite3_bind_int64(s, 1, before_ns);
    sqlite3_bind_int(s, 2, keep);
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        if (cb)
            cb(ud, id, (const char *)sqlite3_column_text(s, 1));
        n++;
    }
    sqlite3_finalize(s);
    s = NULL;
    if (src != SQLITE_DONE) {
        rc = translate(src);
        goto fail;
    }
    /* The run itself last: the others find their rows through it. */
    static const char *const del[] = {"events", "messages", "tool_calls", "plans", "subruns",
                                      "run_users", "run_cancels", "runs"};
    const size_t ndel = sizeof del / sizeof del[0];
    for (size_t i = 0; i < ndel; i++) {
        char q[600];
        snprintf(q, sizeof q,
                 "DELETE FROM %s WHERE %s IN (SELECT id FROM runs WHERE state IN "
                 "('done','failed','cancelled') AND (?1 = 0 OR created_ns < ?1) AND (?2 < 0 OR "
                 "id NOT IN (SELECT id FROM runs ORDER BY created_ns DESC LIMIT ?2)))",
                 del[i], i == ndel - 1 ? "id" : "run_id");
        if (sqlite3_prepare_v2(st->db, q, -1, &s, NULL) != SQLITE_OK) {
            rc = ERR_IO;
            goto fail;
        }
        sqlite3_bind_int64(s, 1, before_ns);
        sqlite3_bind_int(s, 2, keep);
        src = sqlite3_step(s);
        sqlite3_finalize(s);
        s = NULL;
        if (src != SQLITE_DONE) {
            rc = translate(src);
            goto fail;
        }
    }
    rc = store_tx_commit(st);
    if (!rc && deleted)
        *deleted = n;
    return rc;
fail:
    sqlite3_finalize(s);
    store_tx_rollback(st);
    return rc;
}

int store_vacuum(store_t *st)
{
    return exec(st, "VACUUM");
}

/* Resolve a unique id prefix to the full id (users type the first few characters). */
static int resolve_prefix(store_t *st, const char *prefix, char *out, size_t len)
{
    sqlite3_stmt *s = stmt(st, Q_RUN_PREFIX);
    if (!s)
        return ERR_IO;
    bind_text(s, 1, prefix);
    int found = 0, rc = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (found++ == 0)
            col_copy(s, 0, out, len);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (found == 0)
        rc = ERR_NOTFOUND;
    else if (found > 1)
        rc = ERR_INVAL;
    return rc;
}

int store_run_get(store_t *st, const char *id_or_prefix, store_run_t *out)
{
    char id[40];
    if (!id_or_prefix || !*id_or_prefix)
        return ERR_INVAL;
    int rc = resolve_prefix(st, id_or_prefix, id, sizeof id);
    if (rc)
        return rc;
    sqlite3_stmt *s = stmt(st, Q_RUN_GET);
    if (!s)
        return ERR_IO;
    bind_text(s, 1, id);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        read_run(s, out);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return src == SQLITE_ROW ? 0 : src == SQLITE_DONE ? ERR_NOTFOUND : translate(src);
}

int store_runs_each(store_t *st, const char *state_filter, int limit, store_run_fn cb, void *ud)
{
    return store_runs_range(st, state_filter, 0, limit, cb, ud);
}

int store_runs_count(store_t *st, const char *state_filter, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM runs WHERE (?1 IS NULL OR state=?1)",
                           -1, &s, NULL) != SQLITE_OK)
        return ERR_IO;
    bind_text(s, 1, state_filter);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return src == SQLITE_ROW ? 0 : translate(src);
}

/* Step s (prepared, bound) handing each run row to cb until it returns nonzero; finalizes
 * s. 0 or the SQLite error's code. */
static int each_run(sqlite3_stmt *s, store_run_fn cb, void *ud)
{
    int src, rc = 0;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        store_run_t r;
        read_run(s, &r);
        int stop = cb(ud, &r);
        store_run_clear(&r);
        if (stop)
            break;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        rc = translate(src);
    sqlite3_finalize(s);
    return rc;
}

int store_runs_range(store_t *st, const char *state_filter, int offset, int limit,
                     store_run_fn cb, void *ud)
{
    /* Not on a hot path: prepared per call so the filter can vary. */
    sqlite3_stmt *s = NULL;
    const char *sql = "SELECT " RUN_COLS " FROM runs WHERE (?1 IS NULL OR state=?1) "
                      "ORDER BY created_ns DESC, id LIMIT ?2 OFFSET ?3";
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return ERR_IO;
    bind_text(s, 1, state_filter);
    sqlite3_bind_int(s, 2, limit > 0 ? limit : -1);
    sqlite3_bind_int(s, 3, offset > 0 ? offset : 0);
    return each_run(s, cb, ud);
}

int store_runs_since(store_t *st, int64_t since_ns, const char *agent, store_run_fn cb,
                     void *ud)
{
    sqlite3_stmt *s = NULL;
    const char *sql = "SELECT " RUN_COLS " FROM runs WHERE created_ns >= ?1 "
                      "AND (?2 IS NULL OR agent=?2) ORDER BY created_ns, id";
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return ERR_IO;
    sqlite3_bind_int64(s, 1, since_ns);
    bind_text(s, 2, agent);
    return each_run(s, cb, ud);
}

/* Insert (run_id, n, json) with one of the keyed-row statements (messages, events). */
static int add_keyed(store_t *st, int which, const char *run_id, int64_t n, const char *json)
{
    sqlite3_stmt *s = stmt(st, which);
    if (!s)
        return ERR_IO;
    bind_text(s, 1, run_id);
    sqlite3_bind_int64(s, 2, n);
    bind_text(s, 3, json);
    return run_write(st, s);
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
    sqlite3_stmt *s = stmt(st, which);
    if (!s)
        return ERR_IO;
    bind_text(s, 1, key);
    if (bind_after)
        sqlite3_bind_int64(s, 2, after);
    int src, rc = 0;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if (cb(ud, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1)))
            break;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        rc = translate(src);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int store_messages_each(store_t *st, const char *run_id, store_text_fn cb, void *ud)
{
    return each_text(st, Q_MSG_EACH, run_id, 0, 0, cb, ud);
}

int store_toolcall_put(store_t *st, const store_toolcall_t *tc)
{
    sqlite3_stmt *s = stmt(st, Q_TC_PUT);
    if (!s)
        return ERR_IO;
    bind_text(s, 1, tc->run_id);
    bind_text(s, 2, tc->call_id);
    sqlite3_bind_int(s, 3, tc->step);
    sqlite3_bind_int(s, 4, tc->ord);
    bind_text(s, 5, tc->name);
    bind_text(s, 6, tc->args);
    bind_text(s, 7, tc->state);
    bind_text(s, 8, tc->idem_key);
    bind_text(s, 9, tc->result);
    bind_text(s, 10, tc->error);
    sqlite3_bind_int64(s, 11, tc->started_ns);
    sqlite3_bind_int64(s, 12, tc->ended_ns);
    sqlite3_bind_int(s, 13, tc->attempts);
    bind_text(s, 14, tc->wire_id);
    return run_write(st, s);
}

int store_toolcalls_each(store_t *st, const char *run_id, store_toolcall_fn cb, void *ud)
{
    sqlite3_stmt *s = stmt(st, Q_TC_EACH);
    if (!s)
        return ERR_IO;
    bind_text(s, 1, run_id);
    int src, rc = 0;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        store_toolcall_t tc;
        memset(&tc, 0, sizeof tc);
        col_copy(s, 0, tc.run_id, sizeof tc.run_id);
        col_copy(s, 1, tc.call_id, sizeof tc.call_id);
        tc.step = sqlite3_column_int(s, 2);
        tc.ord = sqlite3_column_int(s, 3);
        col_copy(s, 4, tc.name, sizeof tc.name);
        tc.args = (const char *)sqlite3_column_text(s, 5);
        col_copy(s, 6, tc.state, sizeof tc.state);
        col_copy(s, 7, tc.idem_key, sizeof tc.idem_key);
        tc.result = (const char *)sqlite3_column_text(s, 8);
        tc.error = (const char *)sqlite3_column_text(s, 9);
        tc.started_ns = sqlite3_column_int64(s, 10);
        tc.ended_ns = sqlite3_column_int64(s, 11);
        tc.attempts = sqlite3_column_int(s, 12);
        col_copy(s, 13, tc.wire_id, sizeof tc.wire_id);
        if (cb(ud, &tc))
            break;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        rc = translate(src);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
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
    sqlite3_stmt *s = stmt(st, which);
    if (!s)
        return ERR_IO;
    bind_text(s, 1, a);
    if (b)
        bind_text(s, 2, b);
    int src = sqlite3_step(s), rc;
    if (src == SQLITE_ROW) {
        *out = col_dup(s, 0);
        rc = *out ? 0 : ERR_NOMEM;
    } else {
        rc = src == SQLITE_DONE ? ERR_NOTFOUND : translate(src);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int store_kv_get(store_t *st, const char *ns, const char *key, char **out)
{
    return get_one(st, Q_KV_GET, ns, key, out);
}

/* Run a write statement whose parameters are the first n of (a, b, c), all text. */
static int write_texts(store_t *st, int which, int n, const char *a, const char *b,
                       const char *c)
{
    sqlite3_stmt *s = stmt(st, which);
    if (!s)
        return ERR_IO;
    const char *v[3] = {a, b, c};
    for (int i = 0; i < n; i++)
        bind_text(s, i + 1, v[i]);
    return run_write(st, s);
}

int store_kv_put(store_t *st, const char *ns, const char *key, const char *value)
{
    return write_texts(st, Q_KV_PUT, 3, ns, key, value);
}

int store_kv_del(store_t *st, const char *ns, const char *key)
{
    return write_texts(st, Q_KV_DEL, 2, ns, key, NULL);
}

int store_kv_each(store_t *st, const char *ns, const char *prefix, store_kv_fn cb, void *ud)
{
    sqlite3_stmt *s = stmt(st, Q_KV_EACH);
    if (!s)
        return ERR_IO;
    bind_text(s, 1, ns);
    bind_text(s, 2, prefix ? prefix : "");
    int src, rc = 0;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if (cb(ud, (const char *)sqlite3_column_text(s, 0),
               (const char *)sqlite3_column_text(s, 1)))
            break;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        rc = translate(src);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int store_cache_get(store_t *st, const char *key, char **out)
{
    return get_one(st, Q_CACHE_GET, key, NULL, out);
}

int store_cache_put(store_t *st, const char *key, const char *model, const char *json)
{
    return write_texts(st, Q_CACHE_PUT, 3, key, model, json);
}
