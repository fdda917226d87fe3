/*
 * sqlite_count: an LD_PRELOAD library that counts the executions of each SQLite statement
 * (calls of sqlite3_step that start an execution, i.e. the first step after a prepare or
 * reset, keyed by the statement's text) and the sqlite3_exec calls of the process it is
 * loaded into, and at exit appends "COUNT<TAB>SQL" lines to the file named by
 * $SQLITE_COUNT_OUT. Not a test: scripts/bench-stmts.sh uses it to report statements per
 * step. Single-threaded use only (agentd's loop thread runs every statement).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *sql;
    unsigned long n;
} sc_ent_t;

static sc_ent_t *ents;
static size_t nents, cap;

static void sc_count(const char *sql)
{
    if (!sql)
        sql = "(null)";
    for (size_t i = 0; i < nents; i++)
        if (strcmp(ents[i].sql, sql) == 0) {
            ents[i].n++;
            return;
        }
    if (nents == cap) {
        size_t nc = cap ? cap * 2 : 64;
        sc_ent_t *ne = realloc(ents, nc * sizeof *ne);
        if (!ne)
            return;
        ents = ne;
        cap = nc;
    }
    ents[nents].sql = strdup(sql);
    ents[nents].n = 1;
    if (ents[nents].sql)
        nents++;
}

int sqlite3_step(sqlite3_stmt *st)
{
    static int (*real)(sqlite3_stmt *);
    if (!real)
        real = (int (*)(sqlite3_stmt *))dlsym(RTLD_NEXT, "sqlite3_step");
    /* A statement's first step of an execution: not yet stepped since its reset. */
    if (!sqlite3_stmt_busy(st))
        sc_count(sqlite3_sql(st));
    return real(st);
}

int sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **), void *arg,
                 char **err)
{
    static int (*real)(sqlite3 *, const char *, int (*)(void *, int, char **, char **), void *,
                       char **);
    if (!real)
        real = (int (*)(sqlite3 *, const char *, int (*)(void *, int, char **, char **), void *,
                        char **))dlsym(RTLD_NEXT, "sqlite3_exec");
    char key[300];
    snprintf(key, sizeof key, "exec: %s", sql ? sql : "(null)");
    sc_count(key);
    return real(db, sql, cb, arg, err);
}

__attribute__((destructor)) static void sc_dump(void)
{
    const char *out = getenv("SQLITE_COUNT_OUT");
    FILE *f = out ? fopen(out, "a") : NULL;
    if (!f)
        return;
    for (size_t i = 0; i < nents; i++) {
        char one[200];
        snprintf(one, sizeof one, "%s", ents[i].sql);
        for (char *p = one; *p; p++)
            if (*p == '\n' || *p == '\t')
                *p = ' ';
        fprintf(f, "%lu\t%s\n", ents[i].n, one);
    }
    fclose(f);
}
