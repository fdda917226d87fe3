/*
 * db_pg_int: what the PostgreSQL driver's two files share (db_pg.c: the connection, its
 * pipeline and transactions; db_pg_stmt.c: statements). Not for use outside runtime/db/.
 *
 * The connection stays in libpq's pipeline mode. Every command is sent without waiting and
 * leaves an entry in a queue saying what its result is for; a call that needs an answer adds
 * a sync point and drains the queue up to it (pgi_wait). So a transaction of N db_run writes
 * costs one round trip, at its commit. Statements are prepared lazily on the connection they
 * run on (gen: the connection's generation, bumped by each reconnect), with the parameter
 * types of their binds (text, int8, float8; db_bind_text of NULL is a text NULL; a
 * db_bind_null keeps the type of its position's last value), and prepared again under a new name
 * when the binds' types change.
 *
 * Failure inside a transaction: the server aborts the whole transaction at its first error
 * and skips the rest of the pipeline up to the sync point. A statement run by db_step that
 * writes is wrapped in a statement savepoint, so its own failure (a duplicate key the store
 * branches on) is undone as in SQLite and the transaction goes on. Any other failure
 * poisons the transaction (fail_rc): every later call in it returns that failure, commit
 * too, and then rolls back; a rollback_to of the savepoint that was open when it happened
 * (and is still open) cures it, as in SQLite.
 *
 * Queries not waited for (db_query_start, outside a transaction): the statement and a sync
 * point of their own, so a failure ends at it; their entries are marked (query), their
 * failure is the statement's (query_rc), whoever reads it, and the sync point marks the
 * statement's result in. A lost connection fails them like the commits in flight.
 *
 * Commits not waited for (db_commit_start): COMMIT and a sync point whose queue entry carries
 * the commit's tag. Every result before that entry is the commit's: its first failure
 * (c_rc) becomes the commit's outcome when the sync point is read, whoever reads it (the
 * poll, or a later wait draining the queue), kept in done[] for db_commit_poll. A failed
 * commit's transaction stays aborted on the server: c_rollback sends ROLLBACK before the
 * next BEGIN.
 */
#ifndef AGENTD_DB_PG_INT_H
#define AGENTD_DB_PG_INT_H

#include "db_int.h"

#include <libpq-fe.h>

typedef struct pg_stmt pg_stmt_t;

/* What a queued result is for. */
enum { PGQ_CMD = 1, PGQ_PREPARE, PGQ_TARGET, PGQ_SYNC, PGQ_QUERY };

typedef struct pg_q {
    int kind;
    int query;       /* part of a query not waited for (db_query_start): its failure is the
                      * statement's, its sync point ends it */
    pg_stmt_t *stmt; /* PGQ_PREPARE, PGQ_TARGET, PGQ_QUERY; PGQ_SYNC of a query */
    unsigned sp;     /* the savepoint open when sent (0: none) */
    uint64_t tag;    /* PGQ_SYNC after a COMMIT of db_commit_start: its tag (0: none) */
} pg_q_t;

/* A COMMIT of db_commit_start whose result has arrived, not yet polled. */
typedef struct pg_done {
    uint64_t tag;
    int rc;
    char msg[256];
} pg_done_t;

typedef struct pg_db {
    db_t base;
    PGconn *conn;
    db_open_opt_t opt;
    unsigned gen;   /* bumped by each (re)connect: statements of an older one re-prepare */
    unsigned names; /* statement names s1, s2, ... */
    int in_tx;
    unsigned sp; /* the open savepoint's number (0: none); each savepoint a new one */
    unsigned sp_next;
    int fail_rc;      /* the failure that poisons the open transaction (0: none) */
    unsigned fail_sp; /* the savepoint open when that failure happened */
    int broken;       /* the connection was lost; reconnect outside a transaction */
    int64_t retry_ms, retry_at_ms; /* after a failed reconnect: the pause, the next try */
    int connecting;   /* a reconnect under way without blocking (PQresetStart) */
    int poll_write;   /* ... waiting for its socket to be writable (else readable) */
    int64_t connect_at_ms; /* ... started then */
    unsigned long reconnects; /* connections made again, for db_waits */
    int64_t wait_ns;  /* time calls spent waiting for the server (db_waits) */
    int failed;       /* db_failed: the last call failed in the engine */
    pg_q_t *q;        /* results expected, oldest first */
    size_t qhead, qn, qcap;
    int err_target;  /* set by the drain: the first failure was the PGQ_TARGET's */
    unsigned err_sp; /* and the savepoint open when it was sent */
    pg_stmt_t **tab; /* the statement cache: a hash table on the SQL text */
    size_t tabcap, tabn;
    char msg[512];       /* db_errmsg: one line, the password masked */
    unsigned long waits; /* round trips to the server (sync points), for the tests */
    /* Commits sent by db_commit_start: their results are read as they arrive (poll) or by
     * whatever call drains the queue first; the outcomes wait in done[] for the poll. */
    unsigned c_out;       /* commit sync points still in the queue */
    int c_rc;             /* the first failure of the oldest of them (0: none yet) */
    char c_msg[256];      /* and its message */
    int c_rollback;       /* one failed: end its aborted transaction before the next BEGIN */
    int q_got;            /* the queue head's result is read, its end not yet */
    pg_done_t *done;      /* outcomes, oldest first */
    size_t donen, donecap;
    unsigned q_out;       /* queries not waited for still in the queue (db_query_start) */
    int q_query;          /* queuing such a query's entries */
    void (*notify)(void *ud); /* db_commit_notify */
    void *notify_ud;
} pg_db_t;

struct pg_stmt {
    db_stmt_t base;
    pg_db_t *pg;
    pg_stmt_t *next; /* hash chain */
    char *sql;       /* as given: the cache key */
    char *sql_pg;    /* ?N rewritten to $N */
    char name[16];   /* its name on the server: a new one for each new preparation */
    unsigned gen;    /* the connection generation it is prepared on (0: none) */
    Oid *types;      /* the bound values' types (text, int8, float8; 0: db_bind_null) */
    Oid *ptypes;     /* the parameter types it was prepared with (0: left to the server) */
    unsigned char *unused; /* ?N that the SQL never names (given text: the server cannot
                            * infer a type for it) */
    int bind_rc;     /* a failed bind: the next step or run fails with it */
    int writes;      /* not a query (SELECT, VALUES): savepoint-wrapped by step in a tx */
    int nparams;
    const char **vals; /* bound values (NULL: SQL NULL), pointing into bufs */
    char **bufs;       /* one growable buffer per parameter, owned */
    size_t *caps;
    PGresult *res; /* the result being read */
    int row, nrows;
    int executed;
    int64_t changes;
    /* db_query_start: sent, its result read by whoever drains the queue first */
    int inflight;      /* its entries are in the queue */
    int query;         /* the caller waits for it (cleared by reset: an abandoned result) */
    int query_done;    /* its result (or failure) is in */
    int query_rc;      /* its failure, and the message */
    char query_msg[512];
};

/* Rewrite ?N to $N outside quotes and comments; *nparams gets the highest N. Malloc'd, or
 * NULL (out of memory). */
char *pgi_rewrite(const char *sql, int *nparams);
/* Map a failed result (its SQLSTATE) to ERR_*. */
int pgi_sqlstate_rc(const char *sqlstate);

/* Set the connection's message (one line, the password masked) and its failed flag. */
int pgi_fail(pg_db_t *pg, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A call to libpq failed: ERR_IO, the connection marked lost when it is. */
int pgi_lost(pg_db_t *pg);
/* Ready to send: 0, or the poisoning failure, or ERR_IO when the connection is lost inside
 * a transaction; outside one, a lost connection is reconnected first. */
int pgi_ready(pg_db_t *pg);
/* Queue an entry for a command just sent; failures to send are the connection's. */
int pgi_queued(pg_db_t *pg, int kind, pg_stmt_t *s);
/* Send a command of fixed text (no parameters) and queue it as PGQ_CMD. */
int pgi_send(pg_db_t *pg, const char *sql);
/* Add a sync point and read every queued result up to it: 0, or the first failure (its
 * message set, err_target telling whether it was the PGQ_TARGET's). */
int pgi_wait(pg_db_t *pg);
/* After a failure at a wait: poison the transaction (when one is open). */
void pgi_poison(pg_db_t *pg, int rc);
/* Called for a queued command that is not waited for: drains once the queue is long, so
 * neither side's socket buffer fills (both blocked writing: a deadlock). */
int pgi_pace(pg_db_t *pg);

/* Statements (db_pg_stmt.c), for the ops table and close. */
db_stmt_t *pgs_prepare(db_t *db, const char *sql, int *rc);
int pgs_bind_text(db_stmt_t *s, int i, const char *text);
int pgs_bind_int64(db_stmt_t *s, int i, int64_t v);
int pgs_bind_double(db_stmt_t *s, int i, double v);
int pgs_bind_null(db_stmt_t *s, int i);
int pgs_step(db_stmt_t *s);
int pgs_query_start(db_stmt_t *s);
int pgs_query_poll(db_stmt_t *s);
/* Read what the socket holds and the results it completes, without blocking (commits' and
 * queries' outcomes); a failed read marks the connection lost. */
void pgi_poll(pg_db_t *pg);
int pgs_run(db_stmt_t *s);
const char *pgs_col_text(db_stmt_t *s, int i);
int64_t pgs_col_int64(db_stmt_t *s, int i);
double pgs_col_double(db_stmt_t *s, int i);
int pgs_col_null(db_stmt_t *s, int i);
int64_t pgs_changes(db_stmt_t *s);
void pgs_reset(db_stmt_t *s);
void pgs_free_all(pg_db_t *pg);

#endif
