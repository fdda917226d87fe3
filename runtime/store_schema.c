/*
 * store_schema: the SQLite schema of the store (store.h), as numbered migrations: migration i
 * brings PRAGMA user_version from i to i + 1, run by store.c's migration runner inside one
 * BEGIN IMMEDIATE each. PostgreSQL's list (store_schema_pg.c) is numbered alike. Never edit a
 * shipped migration: append one.
 */
#include "store_int.h"

const char *const store_schema_sqlite[] = {
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

const int store_schema_sqlite_n = (int)(sizeof store_schema_sqlite / sizeof store_schema_sqlite[0]);
