/*
 * store_scan: the takeover scan without waiting on the loop (store.h, docs/scaling.md). A
 * worker looks for runs and batches a dead or stalled process left every few seconds; on
 * PostgreSQL each look is a round trip, which the loop would wait for with every run it
 * drives. store_scan_start sends both queries (db_query_start) and returns; store_scan_poll,
 * called from a timer, reads what has arrived and, once both results are in, hands each
 * claimable row to the callbacks as store_runs_orphaned and store_batches_orphaned do. On
 * SQLite (a local file) the start sends nothing and the poll runs the queries in line.
 *
 * The statements' texts are this module's own, so a synchronous store_runs_orphaned (same
 * connection, another caller) never steps a statement whose query is in flight.
 */
#include "store_int.h"

#include "err.h"

static const char *const scan_sql[2] = {
    "SELECT id, agent_path, owner, lease_until_ns FROM runs WHERE state IN "
    "('created','planning','acting','observing') ORDER BY created_ns -- takeover scan",
    "SELECT id, agent_path, owner, lease_until_ns FROM batches b WHERE EXISTS (SELECT 1 FROM "
    "batch_inputs i WHERE i.batch_id = b.id AND i.run_id IS NULL) ORDER BY created_ns -- "
    "takeover scan"};

int store_scan_start(store_t *st)
{
    int rc = 0;
    db_stmt_t *s[2];
    for (int i = 0; i < 2; i++)
        if (!(s[i] = store_stmt(st, scan_sql[i], &rc)))
            return rc;
    for (int i = 0; i < 2 && !rc; i++)
        rc = db_query_start(s[i]);
    if (rc)
        for (int i = 0; i < 2; i++)
            db_reset(s[i]);
    return rc;
}

int store_scan_poll(store_t *st, int64_t now_ns, store_id_fn run_cb, store_id_fn batch_cb,
                    void *ud)
{
    int rc = 0;
    db_stmt_t *s[2];
    for (int i = 0; i < 2; i++)
        if (!(s[i] = store_stmt(st, scan_sql[i], &rc)))
            return rc;
    if (!db_query_poll(s[0]) || !db_query_poll(s[1]))
        return 0;
    rc = store_orphans_each(st, scan_sql[0], now_ns, run_cb, ud);
    int brc = store_orphans_each(st, scan_sql[1], now_ns, batch_cb, ud);
    return rc ? rc : brc ? brc : 1;
}
