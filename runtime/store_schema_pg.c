/*
 * store_schema_pg: the PostgreSQL schema of the store (store.h), the same numbered migrations
 * as store_schema.c's SQLite list, one for one. Migration i brings agentd_schema's version
 * from i to i + 1 (db_version_set), run by store.c's runner in one transaction each.
 * Translation rules: every integer column is BIGINT (times are nanoseconds), reals DOUBLE
 * PRECISION; WITHOUT ROWID has no equivalent (every PostgreSQL table is a heap, its primary
 * key an index); SQLite's json_extract is jsonb's ->>; a trigger body is a PL/pgSQL function.
 * Text keys (ids, names) compare and sort bytewise (COLLATE "C") as in SQLite, whatever
 * the database's default collation. Never edit a shipped migration: append one to both lists.
 */
#include "store_int.h"

#define KEY "TEXT COLLATE \"C\""

const char *const store_schema_pg[] = {
    /* 1: the initial schema */
    "CREATE TABLE runs ("
    "  id " KEY " PRIMARY KEY, agent " KEY " NOT NULL, agent_path TEXT NOT NULL, model TEXT,"
    "  state " KEY " NOT NULL, step BIGINT NOT NULL DEFAULT 0, input TEXT, answer TEXT,"
    "  error TEXT, reason TEXT, spec TEXT, created_ns BIGINT, updated_ns BIGINT,"
    "  ended_ns BIGINT, input_tokens BIGINT DEFAULT 0, output_tokens BIGINT DEFAULT 0,"
    "  cost_usd DOUBLE PRECISION DEFAULT 0, model_calls BIGINT DEFAULT 0,"
    "  tool_calls BIGINT DEFAULT 0, last_seq BIGINT DEFAULT 0, msg_count BIGINT DEFAULT 0,"
    "  owner " KEY " DEFAULT '', lease_until_ns BIGINT DEFAULT 0);"
    "CREATE INDEX runs_state ON runs(state, created_ns);"
    "CREATE INDEX runs_created ON runs(created_ns);"
    "CREATE TABLE messages (run_id " KEY " NOT NULL, idx BIGINT NOT NULL, body TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, idx));"
    "CREATE TABLE tool_calls (run_id " KEY " NOT NULL, call_id " KEY " NOT NULL, step BIGINT,"
    "  ord BIGINT, name TEXT, args TEXT, state TEXT NOT NULL, idem_key TEXT, result TEXT,"
    "  error TEXT, started_ns BIGINT, ended_ns BIGINT, attempts BIGINT DEFAULT 0,"
    "  PRIMARY KEY (run_id, call_id));"
    "CREATE TABLE events (run_id " KEY " NOT NULL, seq BIGINT NOT NULL, body TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, seq));"
    "CREATE VIEW transitions AS SELECT run_id, seq,"
    "  (body::jsonb ->> 'step')::bigint AS step,"
    "  body::jsonb ->> 'state_from' AS from_state,"
    "  body::jsonb ->> 'state_to' AS to_state,"
    "  body::jsonb ->> 'event' AS event,"
    "  (body::jsonb ->> 'ts_ns')::bigint AS ts_ns"
    "  FROM events WHERE body::jsonb ->> 'state_to' IS NOT NULL;"
    "CREATE TABLE kv (ns " KEY " NOT NULL, key " KEY " NOT NULL, value TEXT NOT NULL,"
    "  PRIMARY KEY (ns, key));"
    "CREATE TABLE cache (key " KEY " PRIMARY KEY, model TEXT, body TEXT NOT NULL,"
    "  created_ns BIGINT);",
    /* 2: sessions (conversations of runs, store_session.c); a run belongs to at most one */
    "CREATE TABLE sessions (name " KEY " PRIMARY KEY, agent TEXT NOT NULL,"
    "  created_ns BIGINT NOT NULL, updated_ns BIGINT NOT NULL);"
    "CREATE TABLE session_runs (session " KEY " NOT NULL, turn BIGINT NOT NULL,"
    "  run_id " KEY " NOT NULL UNIQUE, PRIMARY KEY (session, turn));",
    /* 3: a tool call is identified by the runtime (call_<step>_<n>); the model's own id,
     * which models reuse across turns, is kept only for the wire */
    "ALTER TABLE tool_calls ADD COLUMN wire_id TEXT;",
    /* 4: which model answered the run last, and why the chain's first one did not */
    "ALTER TABLE runs ADD COLUMN answered_by TEXT;"
    "ALTER TABLE runs ADD COLUMN fallback TEXT;",
    /* 5: labels of a run (eval id, case, variant: store_label.c); they go with their run */
    "CREATE TABLE run_labels (run_id " KEY " NOT NULL, key " KEY " NOT NULL,"
    "  value " KEY " NOT NULL, PRIMARY KEY (run_id, key));"
    "CREATE INDEX run_labels_kv ON run_labels(key, value);"
    "CREATE FUNCTION run_labels_gone() RETURNS trigger LANGUAGE plpgsql AS"
    "  $$BEGIN DELETE FROM run_labels WHERE run_id = OLD.id; RETURN OLD; END$$;"
    "CREATE TRIGGER run_labels_gone AFTER DELETE ON runs FOR EACH ROW"
    "  EXECUTE FUNCTION run_labels_gone();",
    /* 6: the HTTP API's own record of a run it started (store_api.c): the Idempotency-Key of
     * the POST (unique, so a retried POST finds the first run), a hash of its body, and the
     * options (model, limits) a resume must apply again, with the caller's metadata */
    "CREATE TABLE api_runs (run_id " KEY " PRIMARY KEY, idem_key " KEY " UNIQUE,"
    "  body_hash TEXT, options TEXT, metadata TEXT, created_ns BIGINT);"
    "CREATE INDEX runs_agent_created ON runs(agent, created_ns);",
    /* 7: strategies (store_plan.c): a plan_execute run's plans, one row per version with
     * its steps' status; a sub-agent's run linked to the parent call that started it */
    "CREATE TABLE plans (run_id " KEY " NOT NULL, version BIGINT NOT NULL, plan TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, version));"
    "CREATE TABLE subruns (run_id " KEY " PRIMARY KEY, parent_run_id " KEY " NOT NULL,"
    "  parent_call_id " KEY " NOT NULL, limits TEXT,"
    "  UNIQUE (parent_run_id, parent_call_id));",
    /* 8: summaries of a conversation's older messages, made by summarising compaction
     * (store_summary.c): scope is the session (or the run outside one), upto the number of
     * conversation messages covered, hash their fingerprint */
    "CREATE TABLE summaries (scope " KEY " NOT NULL, upto BIGINT NOT NULL, hash TEXT NOT NULL,"
    "  body TEXT NOT NULL, run_id TEXT, created_ns BIGINT, PRIMARY KEY (scope, upto));",
    /* 9: the user a run was started for (--user): it scopes the agent's long-term memory
     * ("user" is a reserved word in PostgreSQL: quoted here and in every statement) */
    "CREATE TABLE run_users (run_id " KEY " PRIMARY KEY, \"user\" TEXT NOT NULL);",
    /* 10: batches (store_batch.c): every input recorded before the first run starts; an input's
     * run_id is set in the transaction that creates its run, so each runs exactly once */
    "CREATE TABLE batches (id " KEY " PRIMARY KEY, agent_path TEXT NOT NULL, model TEXT,"
    "  concurrency BIGINT NOT NULL, inputs BIGINT NOT NULL, created_ns BIGINT NOT NULL,"
    "  owner " KEY " NOT NULL DEFAULT '', lease_until_ns BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE batch_inputs (batch_id " KEY " NOT NULL, n BIGINT NOT NULL,"
    "  input TEXT NOT NULL, run_id " KEY ", PRIMARY KEY (batch_id, n));",
    /* 11: cancel requests for runs another process drives (store_cancel.c): the driver polls
     * the requests of the runs it holds and cancels them */
    "CREATE TABLE run_cancels (run_id " KEY " PRIMARY KEY, reason TEXT NOT NULL,"
    "  created_ns BIGINT NOT NULL);",
};

const int store_schema_pg_n = (int)(sizeof store_schema_pg / sizeof store_schema_pg[0]);
