/*
 * testdb_pg: a fresh PostgreSQL database per unit test, on the server that env
 * AGENTD_TEST_DB points at (a postgres:// URL whose user may create databases, such as the
 * throwaway cluster of scripts/pg.sh). Each database is named after the test and the
 * process, created empty (dropped first if a crashed run left it), and dropped by
 * testdb_pg_drop or else at exit. testdb.h calls these; test_db_pg.c too.
 */
#ifndef AGENTD_TESTDB_PG_H
#define AGENTD_TESTDB_PG_H

#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char testdb_pg_admin[1024];
static char testdb_pg_names[64][64];
static int testdb_pg_count;

/* url with its database name replaced by name. */
static inline void testdb_pg_url_with(const char *url, const char *name, char *out, size_t len)
{
    const char *auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    size_t host = strcspn(auth, "/?");
    const char *query = strchr(auth + host, '?');
    snprintf(out, len, "%.*s/%s%s", (int)(auth + host - url), url, name, query ? query : "");
}

static inline void testdb_pg_quiet(void *ud, const char *msg)
{
    (void)ud;
    (void)msg;
}

static inline int testdb_pg_sql(const char *sql)
{
    PGconn *c = PQconnectdb(testdb_pg_admin);
    int ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PQsetNoticeProcessor(c, testdb_pg_quiet, NULL);
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "testdb_pg: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    } else {
        fprintf(stderr, "testdb_pg: cannot connect: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

static inline void testdb_pg_drop_all(void)
{
    char sql[256];
    for (int i = 0; i < testdb_pg_count; i++) {
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %.63s WITH (FORCE)", testdb_pg_names[i]);
        (void)testdb_pg_sql(sql);
    }
    testdb_pg_count = 0;
}

/* A new empty database for the test called name: its URL in out, returned. A server that
 * cannot make one ends the test program (exit 2), saying why on stderr. */
static inline const char *testdb_pg_fresh(const char *url, const char *name, char *out, size_t len)
{
    int first = !testdb_pg_admin[0];
    if (first)
        snprintf(testdb_pg_admin, sizeof testdb_pg_admin, "%s", url);
    char db[64];
    int n = snprintf(db, sizeof db, "agentd_t%d_", (int)getpid());
    for (const char *p = name; *p && n < (int)sizeof db - 1; p++)
        db[n++] = isalnum((unsigned char)*p) ? (char)tolower((unsigned char)*p) : '_';
    db[n] = 0;
    char sql[200];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    if (testdb_pg_sql(sql))
        exit(2);
    /* registered after libpq's first connection set up OpenSSL, whose own exit handler
     * must run after this one (handlers run in reverse order) */
    if (first)
        atexit(testdb_pg_drop_all);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    if (testdb_pg_sql(sql))
        exit(2);
    int known = 0;
    for (int i = 0; i < testdb_pg_count; i++)
        known |= strcmp(testdb_pg_names[i], db) == 0;
    if (!known && testdb_pg_count < 64)
        snprintf(testdb_pg_names[testdb_pg_count++], sizeof testdb_pg_names[0], "%s", db);
    testdb_pg_url_with(url, db, out, len);
    return out;
}

/* Drop the database of target (a URL testdb_pg_fresh made). */
static inline void testdb_pg_drop(const char *url, const char *target)
{
    if (!testdb_pg_admin[0])
        snprintf(testdb_pg_admin, sizeof testdb_pg_admin, "%s", url);
    const char *auth = strstr(target, "://");
    auth = auth ? auth + 3 : target;
    const char *slash = strchr(auth, '/');
    if (!slash)
        return;
    char db[64];
    snprintf(db, sizeof db, "%.*s", (int)strcspn(slash + 1, "?"), slash + 1);
    for (int i = 0; i < testdb_pg_count; i++)
        if (strcmp(testdb_pg_names[i], db) == 0) {
            memmove(testdb_pg_names[i], testdb_pg_names[i + 1],
                    (size_t)(testdb_pg_count - i - 1) * sizeof testdb_pg_names[0]);
            testdb_pg_count--;
            char sql[256];
            snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %.63s WITH (FORCE)", db);
            (void)testdb_pg_sql(sql);
            return;
        }
}

#endif
