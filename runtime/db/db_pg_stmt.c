/*
 * db_pg_stmt: the PostgreSQL driver's statements (db_pg_int.h). A statement is the SQL
 * rewritten to PostgreSQL's $N parameters, prepared under its own name on the connection it
 * first runs on, cached by its text in a hash table. Values travel as text (the server
 * converts them to the column's type) and results come back as text, which the col_*
 * functions parse. A SELECT's rows are all read at once: another statement may run while
 * they are stepped through.
 */
#include "db_pg_int.h"

#include "err.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { PG_INT8 = 20, PG_TEXT = 25, PG_FLOAT8 = 701 };

char *pgi_rewrite(const char *sql, int *nparams)
{
    size_t n = strlen(sql);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    int max = 0;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        char c = sql[i];
        if (c == '\'' || c == '"') { /* a string or quoted name: '' inside is one quote */
            size_t j = i + 1;
            while (j < n && sql[j] != c)
                j++;
            j = j < n ? j + 1 : n;
            memcpy(out + o, sql + i, j - i);
            o += j - i;
            i = j;
        } else if (c == '-' && sql[i + 1] == '-') {
            size_t j = i + strcspn(sql + i, "\n");
            memcpy(out + o, sql + i, j - i);
            o += j - i;
            i = j;
        } else if (c == '/' && sql[i + 1] == '*') {
            const char *end = strstr(sql + i + 2, "*/");
            size_t j = end ? (size_t)(end - sql) + 2 : n;
            memcpy(out + o, sql + i, j - i);
            o += j - i;
            i = j;
        } else if (c == '?' && isdigit((unsigned char)sql[i + 1])) {
            out[o++] = '$';
            int v = 0;
            for (i++; isdigit((unsigned char)sql[i]); i++) {
                v = v < 100000 ? v * 10 + (sql[i] - '0') : v;
                out[o++] = sql[i];
            }
            if (v > max)
                max = v;
        } else {
            out[o++] = sql[i++];
        }
    }
    out[o] = 0;
    *nparams = max;
    return out;
}

/* Whether rewritten sql names $k (not as the start of a longer number). */
static int names_param(const char *sql, int k)
{
    char tag[16];
    int len = snprintf(tag, sizeof tag, "$%d", k);
    for (const char *p = sql; (p = strstr(p, tag)); p += len)
        if (!isdigit((unsigned char)p[len]))
            return 1;
    return 0;
}

/* A query (rows, no writes) need not be wrapped in a statement savepoint. */
static int is_query(const char *sql)
{
    while (isspace((unsigned char)*sql) || *sql == '(')
        sql++;
    return strncasecmp(sql, "SELECT", 6) == 0 || strncasecmp(sql, "VALUES", 6) == 0;
}

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static void stmt_free(pg_stmt_t *s)
{
    PQclear(s->res);
    for (int i = 0; i < s->nparams; i++)
        free(s->bufs[i]);
    free(s->bufs);
    free(s->caps);
    free(s->types);
    free(s->ptypes);
    free(s->unused);
    free(s->vals);
    free(s->sql);
    free(s->sql_pg);
    free(s);
}

void pgs_free_all(pg_db_t *pg)
{
    for (size_t i = 0; i < pg->tabcap; i++)
        for (pg_stmt_t *s = pg->tab[i], *next; s; s = next) {
            next = s->next;
            stmt_free(s);
        }
    free(pg->tab);
    pg->tab = NULL;
    pg->tabcap = pg->tabn = 0;
}

static int cache_add(pg_db_t *pg, pg_stmt_t *s)
{
    if ((pg->tabn + 1) * 4 > pg->tabcap * 3) {
        size_t cap = pg->tabcap ? pg->tabcap * 2 : 64;
        pg_stmt_t **tab = calloc(cap, sizeof *tab);
        if (!tab)
            return ERR_NOMEM;
        for (size_t i = 0; i < pg->tabcap; i++)
            for (pg_stmt_t *e = pg->tab[i], *next; e; e = next) {
                next = e->next;
                size_t b = hash(e->sql) & (cap - 1);
                e->next = tab[b];
                tab[b] = e;
            }
        free(pg->tab);
        pg->tab = tab;
        pg->tabcap = cap;
    }
    size_t b = hash(s->sql) & (pg->tabcap - 1);
    s->next = pg->tab[b];
    pg->tab[b] = s;
    pg->tabn++;
    return 0;
}

/* Queue the statement's preparation when the connection has not seen it yet, or saw it with
 * other parameter types than the binds' (a NULL fits the type its position had). */
static int ensure_prepared(pg_stmt_t *s)
{
    pg_db_t *pg = s->pg;
    int same = s->gen == pg->gen;
    for (int i = 0; i < s->nparams; i++) {
        Oid t = s->types[i] ? s->types[i] : s->unused[i] ? PG_TEXT : same ? s->ptypes[i] : 0;
        same &= t == s->ptypes[i];
        s->ptypes[i] = t;
    }
    if (same)
        return 0;
    /* a statement prepared under this name stays on the server until the connection ends:
     * a handful per statement at most (one per combination of types bound) */
    snprintf(s->name, sizeof s->name, "s%u", ++pg->names);
    if (!PQsendPrepare(pg->conn, s->name, s->sql_pg, s->nparams, s->ptypes))
        return pgi_lost(pg);
    s->gen = pg->gen;
    return pgi_queued(pg, PGQ_PREPARE, s);
}

db_stmt_t *pgs_prepare(db_t *db, const char *sql, int *rc)
{
    pg_db_t *pg = (pg_db_t *)db;
    int dummy;
    rc = rc ? rc : &dummy;
    if (pg->tabcap)
        for (pg_stmt_t *s = pg->tab[hash(sql) & (pg->tabcap - 1)]; s; s = s->next)
            if (strcmp(s->sql, sql) == 0)
                return &s->base;
    pg_stmt_t *s = calloc(1, sizeof *s);
    if (!s) {
        *rc = pgi_fail(pg, ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->base.ops = pg->base.ops;
    s->pg = pg;
    s->sql = strdup(sql);
    s->sql_pg = pgi_rewrite(sql, &s->nparams);
    int n = s->nparams > 0 ? s->nparams : 1;
    s->vals = calloc((size_t)n, sizeof *s->vals);
    s->bufs = calloc((size_t)n, sizeof *s->bufs);
    s->caps = calloc((size_t)n, sizeof *s->caps);
    s->types = calloc((size_t)n, sizeof *s->types);
    s->ptypes = calloc((size_t)n, sizeof *s->ptypes);
    s->unused = calloc((size_t)n, 1);
    if (!s->sql || !s->sql_pg || !s->vals || !s->bufs || !s->caps || !s->types || !s->ptypes ||
        !s->unused) {
        stmt_free(s);
        *rc = pgi_fail(pg, ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->writes = !is_query(sql);
    for (int i = 0; i < s->nparams; i++)
        s->unused[i] = !names_param(s->sql_pg, i + 1);
    /* Without parameters (whose types come from the binds) and outside a transaction,
     * prepare now so a mistake in the SQL is reported here; otherwise on first use, with the
     * rest of the pipeline. */
    if (s->nparams == 0 && !pg->in_tx && pg->qn == 0 && pgi_ready(pg) == 0) {
        int prc = ensure_prepared(s);
        if (!prc)
            prc = pgi_wait(pg);
        if (prc) {
            stmt_free(s);
            *rc = prc;
            return NULL;
        }
    }
    if ((*rc = cache_add(pg, s)) != 0) {
        stmt_free(s);
        pgi_fail(pg, ERR_NOMEM, "out of memory");
        return NULL;
    }
    return &s->base;
}

/* The type OIDs of pg_type (catalog constants) of the values binds give. */

static int bind_copy(pg_stmt_t *s, int i, const char *v, size_t len, Oid type)
{
    if (i < 1 || i > s->nparams)
        return s->bind_rc =
                   pgi_fail(s->pg, ERR_INVAL, "parameter %d out of range (the statement has %d)", i,
                            s->nparams);
    i--;
    if (s->caps[i] < len + 1) {
        size_t cap = len + 1 < 32 ? 32 : len + 1;
        char *b = realloc(s->bufs[i], cap);
        if (!b)
            return s->bind_rc = pgi_fail(s->pg, ERR_NOMEM, "out of memory");
        s->bufs[i] = b;
        s->caps[i] = cap;
    }
    memcpy(s->bufs[i], v, len);
    s->bufs[i][len] = 0;
    s->vals[i] = s->bufs[i];
    s->types[i] = type;
    return 0;
}

int pgs_bind_text(db_stmt_t *b, int i, const char *text)
{
    pg_stmt_t *s = (pg_stmt_t *)b;
    if (!text) { /* a NULL of type text: `?1 IS NULL OR state = ?1` needs the type */
        int rc = pgs_bind_null(b, i);
        if (!rc)
            s->types[i - 1] = PG_TEXT;
        return rc;
    }
    return bind_copy(s, i, text, strlen(text), PG_TEXT);
}

int pgs_bind_int64(db_stmt_t *b, int i, int64_t v)
{
    char t[32];
    int n = snprintf(t, sizeof t, "%lld", (long long)v);
    return bind_copy((pg_stmt_t *)b, i, t, (size_t)n, PG_INT8);
}

int pgs_bind_double(db_stmt_t *b, int i, double v)
{
    char t[40];
    if (isnan(v))
        snprintf(t, sizeof t, "NaN");
    else if (isinf(v))
        snprintf(t, sizeof t, "%sInfinity", v < 0 ? "-" : "");
    else
        snprintf(t, sizeof t, "%.17g", v);
    return bind_copy((pg_stmt_t *)b, i, t, strlen(t), PG_FLOAT8);
}

int pgs_bind_null(db_stmt_t *b, int i)
{
    pg_stmt_t *s = (pg_stmt_t *)b;
    if (i < 1 || i > s->nparams)
        return s->bind_rc =
                   pgi_fail(s->pg, ERR_INVAL, "parameter %d out of range (the statement has %d)", i,
                            s->nparams);
    s->vals[i - 1] = NULL;
    s->types[i - 1] = 0;
    return 0;
}

/* Send the statement; with wait, read its result into s->res. A write run by step inside a
 * transaction runs in a statement savepoint, so its failure undoes it alone. */
static int execute(pg_stmt_t *s, int wait)
{
    pg_db_t *pg = s->pg;
    if (s->bind_rc)
        return pgi_fail(pg, s->bind_rc, "a value could not be bound: %s", err_str(s->bind_rc));
    int rc = pgi_ready(pg);
    if (!rc)
        rc = ensure_prepared(s);
    int sp = wait && pg->in_tx && s->writes;
    if (!rc && sp)
        rc = pgi_send(pg, "SAVEPOINT agentd_stmt");
    if (rc)
        return rc;
    if (!PQsendQueryPrepared(pg->conn, s->name, s->nparams, s->vals, NULL, NULL, 0))
        return pgi_lost(pg);
    if ((rc = pgi_queued(pg, wait ? PGQ_TARGET : PGQ_CMD, s)) != 0)
        return rc;
    if (!wait)
        return pgi_pace(pg);
    PQclear(s->res);
    s->res = NULL;
    rc = pgi_wait(pg);
    if (!rc) {
        if (sp && (rc = pgi_send(pg, "RELEASE SAVEPOINT agentd_stmt")) != 0)
            pgi_poison(pg, rc);
        return rc;
    }
    if (sp && pg->err_target && !pg->broken) {
        char msg[sizeof pg->msg];
        memcpy(msg, pg->msg, sizeof msg);
        if (pgi_send(pg, "ROLLBACK TO SAVEPOINT agentd_stmt") ||
            pgi_send(pg, "RELEASE SAVEPOINT agentd_stmt"))
            pgi_poison(pg, rc);
        memcpy(pg->msg, msg, sizeof msg);
        pg->failed = 1;
        return rc;
    }
    pgi_poison(pg, rc);
    return rc;
}

/* Sent with a sync point of its own, not waited for; outside a transaction only (inside
 * one, its failure would abort the transaction, and its sync point end it). */
int pgs_query_start(db_stmt_t *b)
{
    pg_stmt_t *s = (pg_stmt_t *)b;
    pg_db_t *pg = s->pg;
    if (s->inflight)
        return pgi_fail(pg, ERR_STATE, "the statement's previous query is still in flight");
    if (pg->in_tx)
        return pgi_fail(pg, ERR_BUSY, "a transaction is open: the query waits for its end");
    if (s->bind_rc)
        return pgi_fail(pg, s->bind_rc, "a value could not be bound: %s", err_str(s->bind_rc));
    int rc = pgi_ready(pg);
    if (rc)
        return rc;
    pg->q_query = 1;
    rc = ensure_prepared(s);
    if (!rc && !PQsendQueryPrepared(pg->conn, s->name, s->nparams, s->vals, NULL, NULL, 0))
        rc = pgi_lost(pg);
    if (!rc)
        rc = pgi_queued(pg, PGQ_QUERY, s);
    if (!rc && !PQpipelineSync(pg->conn))
        rc = pgi_lost(pg);
    if (!rc)
        rc = pgi_queued(pg, PGQ_SYNC, s);
    pg->q_query = 0;
    if (rc)
        return rc; /* the queue was dropped with the connection, or memory ran out */
    PQclear(s->res);
    s->res = NULL;
    s->inflight = s->query = 1;
    s->query_done = s->query_rc = 0;
    pg->q_out++;
    return 0;
}

int pgs_query_poll(db_stmt_t *b)
{
    pg_stmt_t *s = (pg_stmt_t *)b;
    if (!s->query)
        return 1; /* run in line by the step */
    if (!s->query_done)
        pgi_poll(s->pg);
    return s->query_done;
}

int pgs_step(db_stmt_t *b)
{
    pg_stmt_t *s = (pg_stmt_t *)b;
    if (s->query) { /* db_query_start's: its result is in (db_query_poll said so) */
        if (!s->query_done)
            return pgi_fail(s->pg, ERR_STATE, "the query's result is not in yet");
        s->query = 0;
        if (s->query_rc)
            return pgi_fail(s->pg, s->query_rc, "%s", s->query_msg);
        s->executed = 1;
        s->row = -1;
        s->nrows = s->res ? PQntuples(s->res) : 0;
        s->changes = s->res ? strtoll(PQcmdTuples(s->res), NULL, 10) : 0;
        s->pg->failed = 0;
    }
    if (!s->executed) {
        int rc = execute(s, 1);
        if (rc)
            return rc;
        s->executed = 1;
        s->row = -1;
        s->nrows = s->res ? PQntuples(s->res) : 0;
        s->changes = s->res ? strtoll(PQcmdTuples(s->res), NULL, 10) : 0;
    }
    if (s->row + 1 < s->nrows) {
        s->row++;
        return DB_ROW;
    }
    s->row = s->nrows;
    return DB_DONE;
}

int pgs_run(db_stmt_t *b)
{
    pg_stmt_t *s = (pg_stmt_t *)b;
    if (!s->pg->in_tx) {
        int rc = pgs_step(b);
        return rc < 0 ? rc : 0;
    }
    int rc = execute(s, 0);
    s->changes = -1;
    return rc;
}

static const char *value(pg_stmt_t *s, int i)
{
    if (!s->res || s->row < 0 || s->row >= s->nrows || i < 0 || i >= PQnfields(s->res) ||
        PQgetisnull(s->res, s->row, i))
        return NULL;
    return PQgetvalue(s->res, s->row, i);
}

const char *pgs_col_text(db_stmt_t *b, int i)
{
    return value((pg_stmt_t *)b, i);
}

int64_t pgs_col_int64(db_stmt_t *b, int i)
{
    const char *v = value((pg_stmt_t *)b, i);
    if (!v)
        return 0;
    if (strcmp(v, "t") == 0) /* a boolean (x IS NULL, EXISTS): SQLite says 1 */
        return 1;
    if (strcmp(v, "f") == 0)
        return 0;
    return strtoll(v, NULL, 10);
}

double pgs_col_double(db_stmt_t *b, int i)
{
    const char *v = value((pg_stmt_t *)b, i);
    return v ? strtod(v, NULL) : 0;
}

int pgs_col_null(db_stmt_t *b, int i)
{
    return value((pg_stmt_t *)b, i) == NULL;
}

int64_t pgs_changes(db_stmt_t *b)
{
    return ((pg_stmt_t *)b)->changes;
}

void pgs_reset(db_stmt_t *b)
{
    pg_stmt_t *s = (pg_stmt_t *)b;
    PQclear(s->res);
    s->res = NULL;
    s->executed = 0;
    s->row = s->nrows = 0;
    s->bind_rc = 0;
    s->query = 0; /* a query still in flight: its result is dropped when it comes */
    for (int i = 0; i < s->nparams; i++) {
        s->vals[i] = NULL;
        s->types[i] = 0;
    }
}
