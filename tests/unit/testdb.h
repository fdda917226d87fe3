/*
 * testdb: where a unit test's store lives, so the same tests run on both engines.
 *
 *   testdb_target(name, buf, len)  a fresh, empty database for the test called name, as a
 *                                  target for store_open: by default the file
 *                                  /tmp/agentd-test-<name>-<pid>.db (an older copy and its
 *                                  -wal/-shm removed first); with AGENTD_TEST_DB set (a
 *                                  postgres:// URL of a server the tests may use), a fresh
 *                                  database on that server (testdb_pg_fresh, testdb_pg.h).
 *   testdb_remove(target)          drop it at the end of the test.
 *   testdb_is_file()               whether targets are files (tests of file behaviour, such
 *                                  as a read-only folder, apply only then).
 *
 * Header-only like check.h: each test program includes it once.
 */
#ifndef AGENTD_TESTDB_H
#define AGENTD_TESTDB_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef AGENTD_WITH_PG
#include "testdb_pg.h"
#endif

static inline const char *testdb_url(void)
{
    const char *u = getenv("AGENTD_TEST_DB");
    return u && *u ? u : NULL;
}

static inline int testdb_is_file(void)
{
    return testdb_url() == NULL;
}

static inline void testdb_remove(const char *target)
{
#ifdef AGENTD_WITH_PG
    if (testdb_url()) {
        testdb_pg_drop(testdb_url(), target);
        return;
    }
#endif
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        char p[1100];
        snprintf(p, sizeof p, "%s%s", target, sfx[i]);
        unlink(p);
    }
}

static inline const char *testdb_target(const char *name, char *buf, size_t len)
{
    if (testdb_url()) {
#ifdef AGENTD_WITH_PG
        return testdb_pg_fresh(testdb_url(), name, buf, len);
#else
        fprintf(stderr, "AGENTD_TEST_DB is set, but this build has no PostgreSQL driver\n");
        exit(2);
#endif
    }
    snprintf(buf, len, "/tmp/agentd-test-%s-%d.db", name, (int)getpid());
    testdb_remove(buf);
    return buf;
}

#endif
