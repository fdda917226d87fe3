/*
 * store: every byte agentd keeps, in one database behind db/db.h: a SQLite file (WAL), the
 * default, or PostgreSQL (a postgres:// URL). The store's SQL is written once, in the dialect
 * both engines accept (db.h); only the migrations differ by engine (store_schema.c).
 *
 * Schema (numbered migrations, the same numbers on both engines):
 *   runs        one row per run: state, step, counters, answer, lease
 *   messages    each conversation message stored once, ordered by (run_id, idx)
 *   tool_calls  one row per tool call: state, idempotency key, args, result, timings
 *   events      trace events, (run_id, seq) gap-free, body is the event JSON
 *   transitions a VIEW over events (the state-machine transitions of each run)
 *   kv          per-agent storage for ctx.kv
 *   cache       model response cache (key = hash of the normalised request)
 *   sessions    named conversations; session_runs lists their runs, one per turn
 *               (store_session.c)
 *   run_labels  key/value labels of a run (eval id, case, variant), deleted with it
 *               (store_label.c)
 *   plans       plan_execute plans by version; subruns links a sub-agent's run to its
 *               parent's call (store_plan.c)
 *   batches     `agentd batch`: the batch and each of its inputs, recorded before the first
 *               run starts; an input's run_id is set with its run (store_batch.c)
 *   run_cancels a cancel asked of a run another process drives; its driver polls them
 *               (store_cancel.c)
 *
 * Invariants: writes happen between store_tx_begin (db_begin: SQLite's BEGIN IMMEDIATE) and
 * store_tx_commit.
 * Group commit: the machine opens one transaction per loop iteration and every transition
 * staged in that iteration is a savepoint inside it (store_sp_begin / store_sp_release /
 * store_sp_rollback), so a transition is atomic on its own and many share one fsync.
 * Statements are prepared once and reset after use. Not thread-safe; one store per thread.
 */
#ifndef AGENTD_STORE_H
#define AGENTD_STORE_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct store store_t;

enum { STORE_DURABLE_FULL = 0, STORE_DURABLE_NORMAL = 1 };

typedef struct store_run {
    char id[40];
    char agent[128];
    char agent_path[1024];
    char model[128];
    char state[16];
    int step;
    char *input;        /* owned by the struct after store_run_get; free with store_run_clear */
    char *answer;       /* final answer (or partial), may be NULL */
    char *error;        /* one-line failure message, may be NULL */
    char reason[32];    /* failure reason: "budget_exceeded", "max_steps", ... */
    char *spec;         /* agent configuration JSON as resolved at start */
    int64_t created_ns, updated_ns, ended_ns;
    int64_t input_tokens, output_tokens;
    double cost_usd;
    int model_calls, tool_calls;
    int64_t last_seq;   /* seq of the last committed trace event */
    int msg_count;      /* messages stored so far (next idx) */
    char owner[64];     /* lease holder, "" when free */
    int64_t lease_until_ns;
    char answered_by[128]; /* "provider:model" of the last model that answered, "" if none */
    char fallback[256];    /* "" or why the chain's first model did not answer (first time) */
} store_run_t;

typedef struct store_toolcall {
    char run_id[40];
    char call_id[64];   /* the runtime's id, unique in the run */
    char wire_id[64];   /* the model's id for it (the call id in rows of older versions) */
    int step;
    int ord;            /* position in the model turn */
    char name[128];
    const char *args;   /* JSON text */
    char state[20];     /* a tcall_state_name() (tcall.h): names only at this boundary */
    char idem_key[80];
    const char *result; /* JSON text or NULL */
    const char *error;  /* or NULL */
    int64_t started_ns, ended_ns;
    int attempts;
} store_toolcall_t;

/* Open (creating and migrating) the database at path. NULL on failure with a one-line
 * message naming the path in errbuf. */
store_t *store_open(const char *path, int durability, char *errbuf, size_t errlen);
enum { STORE_OPEN_READ = 0, STORE_OPEN_WRITE = 1 };
/* Open a database that must already exist, for a command that only reads it
 * (STORE_OPEN_READ: a read-only connection that creates, converts and migrates nothing, so
 * it works on a read-only file or folder; a database of an older schema is migrated
 * through a writing connection first) or changes existing rows (STORE_OPEN_WRITE). NULL
 * with a one-line message naming the path in errbuf; *why is ERR_NOTFOUND when there is
 * no such file (the user's mistake), ERR_IO for every database error (not a database,
 * malformed, newer schema, cannot open, locked). */
store_t *store_open_existing(const char *path, int mode, char *errbuf, size_t errlen,
                             int *why);
void store_close(store_t *st);
/* The database engine's last error message for this connection. */
const char *store_errmsg(store_t *st);
/* Why a store call failed with rc: the engine's message when the engine reported the
 * failure, else rc's own text (an allocation failed outside it, a lease was held...). */
const char *store_why(store_t *st, int rc);
/* The database as opened: the file's path, or the URL with its password masked. */
const char *store_path(const store_t *st);
/* Call once at process exit, after every store_close. */
void store_global_shutdown(void);

int store_tx_begin(store_t *st);   /* BEGIN IMMEDIATE */
int store_tx_commit(store_t *st);
/* A transaction whose COMMIT does not wait for the disk (the machine's group commit, with
 * its fsync on a thread, docs/durability.md "The disk off the loop"): under durability full
 * on SQLite its commit is durable once fdatasync(store_sync_fd) has returned after it;
 * otherwise it is store_tx_begin. Every other transaction stays durable when its commit
 * returns (db_begin_deferred). */
int store_tx_begin_deferred(store_t *st) AGENTD_WUR;
/* The file whose fdatasync makes every commit so far durable, open until store_close; -1
 * when a commit needs nothing more. ERR_IO when it cannot be opened (db_sync_fd). */
int store_sync_fd(store_t *st, int *fd);
/* The commit of the open transaction sent without waiting for its result (PostgreSQL; the
 * machine's group commit): db_commit_start, db_commit_poll and db_commit_notify (db.h) on the
 * store's connection. store_commit_async: whether the engine does (else start commits in
 * line, *fd = -1). */
int store_commit_async(store_t *st);
int store_tx_commit_start(store_t *st, uint64_t tag, int *fd) AGENTD_WUR;
int store_commit_poll(store_t *st, int block, uint64_t *upto, int *err, char *why, size_t n);
void store_commit_notify(store_t *st, void (*fn)(void *ud), void *ud);
/* Could a write start now (db_ready: SQLite takes the write lock and gives it back, the
 * PostgreSQL driver tells without a round trip)? 0 or the ERR_* (store_errmsg says why). */
int store_ready(store_t *st);
/* The connection's reconnect without blocking, and what its calls waited for the server:
 * db_reconnect_wait, db_reconnect_poll and db_waits (db.h) on the store's connection. */
int store_reconnect_wait(store_t *st, int *fd, int *write);
int store_reconnect_poll(store_t *st);
void store_db_waits(store_t *st, uint64_t *round_trips, uint64_t *wait_ns, uint64_t *reconnects);
void store_tx_rollback(store_t *st);
/* Nested atomic unit inside an open transaction (SAVEPOINT): lets several transitions share
 * one commit (group commit) while each stays all-or-nothing. */
int store_sp_begin(store_t *st);
int store_sp_release(store_t *st);
void store_sp_rollback(store_t *st);
/* Is a transaction open on this connection? */
int store_in_tx(store_t *st);

/* Runs. store_run_get fills *out (owned strings: call store_run_clear). */
int store_run_insert(store_t *st, const store_run_t *r);
/* Update the run's row, only while it is held by held_by (the owner the row holds now: the
 * caller's, or "" once the caller has released it in this transaction): the fence that
 * keeps a process whose lease ran out (and was claimed by another) from writing over the
 * new driver's rows. ERR_STATE when the row is not held by held_by (or is gone). The columns
 * a run keeps from its creation (agent, agent_path, input, spec, created_ns) are written by
 * store_run_insert only. */
int store_run_update(store_t *st, const store_run_t *r, const char *held_by);
int store_run_get(store_t *st, const char *id_or_prefix, store_run_t *out);
void store_run_clear(store_run_t *r);
/* Each run, newest first; cb returns nonzero to stop. limit <= 0: all. */
typedef int (*store_run_fn)(void *ud, const store_run_t *r);
int store_runs_each(store_t *st, const char *state_filter, int limit, store_run_fn cb, void *ud);
/* The same, skipping the newest offset runs (paging). */
int store_runs_range(store_t *st, const char *state_filter, int offset, int limit,
                     store_run_fn cb, void *ud);
/* How many runs there are (in state_filter, or all when NULL). */
int store_runs_count(store_t *st, const char *state_filter, int64_t *out);

/* Leases: a run is driven by at most one process. Claim succeeds (0) when the run is
 * unowned, already ours, its lease expired, or its owner is a dead process on this host
 * (owner strings are "host:pid"); otherwise ERR_BUSY, also when another claimer (or the
 * owner's renewal) changed the row since it was read: the UPDATE compares owner and lease.
 * A database error (a lock held past the busy timeout included) is ERR_IO. Renew extends
 * every lease owner holds that has not ended by now_ns (an ended one may be another's).
 * Renew and drop are writes the driver may pipeline inside a transaction (db_run): their
 * failure then comes from the commit (the machine stages them in its group commit). */
int store_run_claim(store_t *st, const char *run_id, const char *owner, int64_t now_ns,
                    int64_t lease_until_ns);
int store_lease_renew(store_t *st, const char *owner, int64_t now_ns, int64_t lease_until_ns);
/* End owner's lease of run_id now (no-op when another holds it): a run its process stopped
 * driving (a store error) is free for any process to take over at once, instead of being
 * renewed with the leases the process still drives. */
int store_lease_drop(store_t *st, const char *run_id, const char *owner);
/* Ids of runs not terminal and not waiting whose lease is claimable, oldest first. */
typedef int (*store_id_fn)(void *ud, const char *run_id, const char *agent_path);
int store_runs_orphaned(store_t *st, int64_t now_ns, store_id_fn cb, void *ud);

/* The takeover scan without waiting (store_scan.c): start sends the queries of
 * store_runs_orphaned and store_batches_orphaned; poll, from a timer, reads what has arrived
 * without blocking: 0 not yet, 1 with run_cb and batch_cb called for the claimable rows as
 * those two do, or the ERR_* of either query (the other's rows still handed over). On SQLite
 * the start sends nothing and the poll runs both queries. On PostgreSQL inside a
 * transaction start sends nothing: ERR_BUSY (again after the commit). A scan ends with a
 * poll that returns nonzero; until then start is not called again. */
int store_scan_start(store_t *st) AGENTD_WUR;
int store_scan_poll(store_t *st, int64_t now_ns, store_id_fn run_cb, store_id_fn batch_cb,
                    void *ud);

/* Cancel requests (store_cancel.c): a process that cannot cancel a run because another live
 * process drives it records the request, and the driver cancels the run when it sees it
 * (machine.h). Request: 0 (also when one is pending already), ERR_STATE when the run has
 * ended or does not exist. held_each calls cb for each request on a run held by owner;
 * clear drops the run's request (in the unit that cancels it). */
int store_cancel_request(store_t *st, const char *run_id, const char *reason, int64_t now_ns);
typedef int (*store_cancel_fn)(void *ud, const char *run_id, const char *reason);
int store_cancels_held(store_t *st, const char *owner, store_cancel_fn cb, void *ud);
/* held_each without waiting (db_query_start): start sends the query, poll (from a timer)
 * hands the requests to cb once they are in: 1, 0 not yet, or the ERR_*. On SQLite the
 * poll runs the query in line. */
int store_cancels_start(store_t *st, const char *owner) AGENTD_WUR;
int store_cancels_poll(store_t *st, store_cancel_fn cb, void *ud);
int store_cancel_clear(store_t *st, const char *run_id);

/* Retention: delete finished runs (done/failed/cancelled) created before before_ns (0: any
 * age) that are not among the newest keep runs (keep < 0: no such guard), with every row
 * that names them (messages, tool calls, events, plans, sub-run links, labels, users, the
 * API's records, summaries, session turns, batch inputs) and the sessions and batches
 * left without any (store_purge.c). cb sees each deleted id (to remove trace files) before
 * the deletion commits. *deleted gets the count. */
int store_gc(store_t *st, int64_t before_ns, int keep, store_id_fn cb, void *ud, int *deleted);
int store_vacuum(store_t *st);

/* Messages: JSON text of one neutral message (model.h) at position idx. */
int store_message_add(store_t *st, const char *run_id, int idx, const char *json);
typedef int (*store_text_fn)(void *ud, int64_t n, const char *json);
int store_messages_each(store_t *st, const char *run_id, store_text_fn cb, void *ud);

/* Tool calls: insert or replace by (run_id, call_id). */
int store_toolcall_put(store_t *st, const store_toolcall_t *tc);
typedef int (*store_toolcall_fn)(void *ud, const store_toolcall_t *tc);
int store_toolcalls_each(store_t *st, const char *run_id, store_toolcall_fn cb, void *ud);

/* Trace events: JSON text at (run_id, seq). store_events_each visits seq > after_seq in
 * order; n passed to cb is the seq. */
int store_event_add(store_t *st, const char *run_id, int64_t seq, const char *json);
int store_events_each(store_t *st, const char *run_id, int64_t after_seq, store_text_fn cb,
                      void *ud);

/* Per-agent key/value (ctx.kv). get: *out is malloc'd, ERR_NOTFOUND if absent. */
int store_kv_get(store_t *st, const char *ns, const char *key, char **out);
int store_kv_put(store_t *st, const char *ns, const char *key, const char *value);
int store_kv_del(store_t *st, const char *ns, const char *key);
typedef int (*store_kv_fn)(void *ud, const char *key, const char *value);
int store_kv_each(store_t *st, const char *ns, const char *prefix, store_kv_fn cb, void *ud);

/* The HTTP API's record of the runs it started (store_api.c). */
typedef struct store_api_run {
    char run_id[40];
    char body_hash[24];
    char *options;  /* JSON object text (model, limits) or NULL; owned */
    char *metadata; /* JSON object text or NULL; owned */
} store_api_run_t;
/* Record run_id (already inserted, possibly in the open batch transaction: the row then
 * commits or rolls back with the run) with its Idempotency-Key (may be NULL). ERR_STATE
 * when the key is already taken. Opens its own transaction when none is open. */
int store_api_put(store_t *st, const char *run_id, const char *idem_key, const char *body_hash,
                  const char *options, const char *metadata, int64_t now_ns);
/* By run id, or by Idempotency-Key; ERR_NOTFOUND when absent. Free with store_api_clear. */
int store_api_get(store_t *st, const char *run_id, store_api_run_t *out);
int store_api_by_key(store_t *st, const char *idem_key, store_api_run_t *out);
void store_api_clear(store_api_run_t *a);
/* Runs newest first by (created_ns, id), filtered (every field optional: NULL / 0), starting
 * after the cursor (before_ns, before_id) when before_id is set. limit rows at most. */
typedef struct store_runs_query {
    const char *state, *agent;
    int64_t since_ns, until_ns; /* created_ns in [since, until); 0: unbounded */
    int64_t before_ns;
    const char *before_id;
    int limit;
} store_runs_query_t;
int store_runs_query(store_t *st, const store_runs_query_t *q, store_run_fn cb, void *ud);

/* Sessions. A session is a named conversation; each run started in it is its next turn
 * and reads the messages of the earlier turns from their own rows (never a copy), so the
 * bytes stored grow linearly with the turns. */
typedef struct store_session {
    char name[128];
    char agent[128];       /* the agent of its first turn */
    int64_t created_ns, updated_ns;
    int turns;
    char last_state[16];   /* state of the latest turn's run */
} store_session_t;
/* Inside an open write transaction: make run_id (already inserted) the next turn of session
 * name, creating the session for agent when it is new. ERR_BUSY when the latest turn has not
 * finished (done, failed or cancelled) — one writer per session; busy_run/busy_state then
 * name it. ERR_INVAL for an empty name. */
int store_session_join(store_t *st, const char *name, const char *agent, const char *run_id,
                       int64_t now_ns, char busy_run[40], char busy_state[16]);
/* 0 when session name can take a new turn (also when it does not exist yet), ERR_BUSY with
 * busy_run/busy_state naming its unfinished latest turn. */
int store_session_check(store_t *st, const char *name, char busy_run[40], char busy_state[16]);
/* The session run_id is a turn of (name[128]), ERR_NOTFOUND when it is in none. */
int store_session_of(store_t *st, const char *run_id, char name[128]);
/* The conversation before run_id's turn, oldest first, as neutral message JSON: every
 * message but the system prompt of each earlier turn that ended done; of a turn that did
 * not, its user message and a note saying how it ended (so the roles still alternate and no
 * tool call is left without its result). n passed to cb is the turn number. */
int store_session_history(store_t *st, const char *run_id, store_text_fn cb, void *ud);
typedef int (*store_session_fn)(void *ud, const store_session_t *s);
/* Every session, most recently updated first. */
int store_sessions_each(store_t *st, store_session_fn cb, void *ud);
/* A session's turns in order; rec holds id, state, input, answer, tokens, cost (borrowed
 * for the callback). ERR_NOTFOUND when there is no such session. */
typedef int (*store_turn_fn)(void *ud, int turn, const store_run_t *rec);
int store_session_turns(store_t *st, const char *name, store_turn_fn cb, void *ud);
/* Delete a session with its runs and every row naming them (as store_gc); cb sees each run id (to
 * remove trace files) before the deletion commits. ERR_BUSY while a turn is unfinished,
 * ERR_NOTFOUND when there is no such session. Opens its own transaction. */
int store_session_rm(store_t *st, const char *name, store_id_fn cb, void *ud);

/* Labels (store_label.c). put: inside an open write transaction, insert or replace. */
int store_label_put(store_t *st, const char *run_id, const char *key, const char *value);
typedef int (*store_label_fn)(void *ud, const char *key, const char *value);
/* A run's labels, by key. */
int store_labels_each(store_t *st, const char *run_id, store_label_fn cb, void *ud);
/* Ids of the runs labelled key=value, oldest first. */
int store_runs_labelled(store_t *st, const char *key, const char *value, store_id_fn cb,
                        void *ud);
/* Runs created at or after since_ns (0: all), oldest first, optionally only those of agent
 * (name; NULL: every agent). rec is borrowed for the callback. */
int store_runs_since(store_t *st, int64_t since_ns, const char *agent, store_run_fn cb,
                     void *ud);
/* Strategies (store_plan.c). A plan_execute run's plan, one row per version (a re-plan is
 * the next version), the JSON text holding its steps and their status; put replaces. */
int store_plan_put(store_t *st, const char *run_id, int version, const char *json);
/* The latest version: *version and *json (malloc'd); ERR_NOTFOUND when the run has none. */
int store_plan_latest(store_t *st, const char *run_id, int *version, char **json);
/* A sub-agent's run, linked to the parent run's call that started it (one child per call);
 * limits is the JSON of the limits carved from the parent's. ERR_STATE: the call has one. */
int store_subrun_add(store_t *st, const char *run_id, const char *parent_run_id,
                     const char *parent_call_id, const char *limits);
/* The child run of (parent_run_id, parent_call_id) into child[40]; ERR_NOTFOUND. */
int store_subrun_find(store_t *st, const char *parent_run_id, const char *parent_call_id,
                      char child[40]);
/* The parent of run_id: parent[40], call[64] and *limits (malloc'd, may be NULL);
 * ERR_NOTFOUND when run_id is not a sub-agent's run. Any out-parameter may be NULL. */
int store_subrun_parent(store_t *st, const char *run_id, char parent[40], char call[64],
                        char **limits);
/* Each child run of parent_run_id, oldest first (cb's agent_path is the child's). */
int store_subruns_each(store_t *st, const char *parent_run_id, store_id_fn cb, void *ud);

/* Batches. Every input of `agentd batch` is recorded (store_batch_create, one transaction)
 * before its first run starts; an input is taken by the transaction that creates its run
 * (store_batch_take), so a kill at any moment leaves each input either with exactly one run
 * or with none, to be started by `agentd batch --resume` / `agentd resume --all`. A batch is
 * driven by one process at a time, with the same leases as runs. */
typedef struct store_batch {
    char id[40];
    char agent_path[1024];
    char model[128];      /* --model of the batch, "" for the agent's */
    int concurrency;
    int64_t inputs;       /* inputs recorded */
    int64_t pending;      /* inputs without a run yet (store_batch_get) */
    int64_t created_ns;
    char owner[64];
    int64_t lease_until_ns;
} store_batch_t;
/* Opens and commits its own transaction: the batch row (owned by b->owner until
 * b->lease_until_ns) and inputs[0..n-1] as inputs 1..n. */
int store_batch_create(store_t *st, const store_batch_t *b, const char *const *inputs,
                       size_t n) AGENTD_WUR;
/* The batch with this id (or unique id prefix): ERR_NOTFOUND, ERR_INVAL when ambiguous. */
int store_batch_get(store_t *st, const char *id_or_prefix, store_batch_t *out);
/* Take the batch for owner, as store_run_claim does for a run (ERR_BUSY when a live process
 * drives it). */
int store_batch_claim(store_t *st, const char *id, const char *owner, int64_t now_ns,
                      int64_t lease_until_ns) AGENTD_WUR;
/* Inputs of batch id that have no run yet, in order; n passed to cb is the input's number. */
int store_batch_pending(store_t *st, const char *id, store_text_fn cb, void *ud);
/* Inside the transaction that inserts run_id: mark input n of batch id as taken by it.
 * ERR_BUSY when the input already has a run (it must not run twice). */
int store_batch_take(store_t *st, const char *id, int64_t n, const char *run_id) AGENTD_WUR;
/* Batches with inputs not yet started whose lease is claimable (their process is gone),
 * oldest first; cb gets the batch id and its agent's path. */
int store_batches_orphaned(store_t *st, int64_t now_ns, store_id_fn cb, void *ud);

/* Model response cache. get: *out malloc'd JSON text, ERR_NOTFOUND on miss. */
int store_cache_get(store_t *st, const char *key, char **out);
int store_cache_put(store_t *st, const char *key, const char *model, const char *json);

/* Summaries of a conversation's older messages (summarising compaction, compact.h), in the
 * open transaction. scope: the session name, or the run id outside a session; upto: it
 * stands for conversation messages [1, upto) (0 is the system prompt); hash: their
 * fingerprint, so a summary is used only for the messages it was made from. */
int store_summary_put(store_t *st, const char *scope, int64_t upto, const char *hash,
                      const char *text, const char *run_id, int64_t created_ns);
/* The summary of scope with the largest upto <= max_upto: *upto, hash (17 bytes) and *text
 * (malloc'd). ERR_NOTFOUND when there is none. */
int store_summary_get(store_t *st, const char *scope, int64_t max_upto, int64_t *upto,
                      char hash[17], char **text);
/* The user a run was started for (run_users), which scopes long-term memory. get: ERR_NOTFOUND
 * when the run has none; user gets at most len - 1 bytes. */
int store_run_user_put(store_t *st, const char *run_id, const char *user);
int store_run_user_get(store_t *st, const char *run_id, char *user, size_t len);

#endif
