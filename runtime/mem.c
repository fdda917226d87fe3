/*
 * mem: counted allocation with one injectable failure (see mem.h).
 *
 * The switch is read from the environment lazily, at the first allocation, so the binary,
 * the unit tests and the fake model server share it without an init call. Counting is one
 * atomic increment, made only once something asked for counts or failures (an environment
 * variable, mem_fail_nth, mem_count); the per-site table is kept only when
 * AGENTD_FAIL_ALLOC_LOG asks for it.
 */
#include "mem.h"

#include "err.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <malloc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SITES = 4096 };

typedef struct site {
    const char *file;
    int line;
    long count;
} site_t;

static int inited;          /* 0 not read, 1 read */
static int counting;        /* 1 once anything asked for counts or failures (else nothing is
                               counted: an atomic add per allocation is not free) */
static long count;          /* allocations so far, since counting began */
static long fail_at;        /* fail when count reaches this (0: never) */
static const char *fail_file; /* or: fail at this site ... */
static int fail_line;
static long fail_kth = 1;   /* ... on its kth allocation */
static int fired;
static char fired_site[256];
static long fired_n;
static const char *log_path;
static site_t sites[SITES];
static pthread_mutex_t site_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const char *base(const char *file)
{
    const char *s = strrchr(file, '/');
    return s ? s + 1 : file;
}

static void write_log(void)
{
    FILE *f = fopen(log_path, "a");
    if (!f)
        return;
    fprintf(f, "count %ld\n", __atomic_load_n(&count, __ATOMIC_SEQ_CST));
    if (fired)
        fprintf(f, "fail %ld %s\n", fired_n, fired_site);
    for (size_t i = 0; i < SITES; i++)
        if (sites[i].file)
            fprintf(f, "site %s:%d %ld\n", base(sites[i].file), sites[i].line, sites[i].count);
    fclose(f);
}

static void read_env(void)
{
    const char *n = getenv("AGENTD_FAIL_ALLOC");
    if (n && *n)
        fail_at = atol(n);
    const char *s = getenv("AGENTD_FAIL_ALLOC_SITE");
    static char file[200];
    if (s && *s) {
        const char *colon = strrchr(s, ':');
        if (colon && (size_t)(colon - s) < sizeof file) {
            memcpy(file, s, (size_t)(colon - s));
            file[colon - s] = 0;
            fail_file = file;
            fail_line = atoi(colon + 1);
            const char *hash = strchr(colon, '#');
            if (hash && atol(hash + 1) > 0)
                fail_kth = atol(hash + 1);
        }
    }
    const char *l = getenv("AGENTD_FAIL_ALLOC_LOG");
    if (l && *l) {
        log_path = l;
        atexit(write_log);
    }
    if (fail_at || fail_file || log_path)
        __atomic_store_n(&counting, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&inited, 1, __ATOMIC_RELEASE);
}

/* The site's slot (found or claimed), or NULL when the table is full. Under site_lock. */
static site_t *site_slot(const char *file, int line)
{
    size_t h = (size_t)line * 2654435761u;
    for (const char *p = base(file); *p; p++)
        h = h * 31 + (unsigned char)*p;
    for (size_t i = 0; i < SITES; i++) {
        site_t *s = &sites[(h + i) % SITES];
        if (!s->file) {
            s->file = file;
            s->line = line;
            return s;
        }
        if (s->line == line && strcmp(base(s->file), base(file)) == 0)
            return s;
    }
    return NULL;
}

static void fire(long n, const char *file, int line)
{
    fired = 1;
    fired_n = n;
    snprintf(fired_site, sizeof fired_site, "%s:%d", base(file), line);
}

/* Count one allocation; 1 if it must fail. */
static int should_fail(const char *file, int line)
{
    if (!__atomic_load_n(&inited, __ATOMIC_ACQUIRE))
        pthread_once(&once, read_env);
    if (!__atomic_load_n(&counting, __ATOMIC_ACQUIRE))
        return 0;
    long n = __atomic_add_fetch(&count, 1, __ATOMIC_SEQ_CST);
    int fail = 0;
    if (log_path || fail_file) {
        pthread_mutex_lock(&site_lock);
        site_t *s = site_slot(file, line);
        long k = s ? ++s->count : 0;
        if (fail_file && !fired && k == fail_kth && strcmp(base(file), fail_file) == 0 &&
            line == fail_line) {
            fire(n, file, line);
            fail = 1;
        }
        pthread_mutex_unlock(&site_lock);
    }
    long at = __atomic_load_n(&fail_at, __ATOMIC_SEQ_CST);
    if (at > 0 && n == at && __atomic_compare_exchange_n(&fail_at, &at, 0, 0, __ATOMIC_SEQ_CST,
                                                          __ATOMIC_SEQ_CST)) {
        fire(n, file, line);
        fail = 1;
    }
    return fail;
}

void *mem_alloc_at(size_t n, const char *file, int line)
{
    return should_fail(file, line) ? NULL : malloc(n);
}

void *mem_calloc_at(size_t n, size_t size, const char *file, int line)
{
    return should_fail(file, line) ? NULL : calloc(n, size);
}

void *mem_realloc_at(void *p, size_t n, const char *file, int line)
{
    return should_fail(file, line) ? NULL : realloc(p, n);
}

char *mem_strdup_at(const char *s, const char *file, int line)
{
    return should_fail(file, line) ? NULL : strdup(s);
}

char *mem_strndup_at(const char *s, size_t n, const char *file, int line)
{
    return should_fail(file, line) ? NULL : strndup(s, n);
}

void mem_fail_nth(long n)
{
    if (!__atomic_load_n(&inited, __ATOMIC_ACQUIRE))
        pthread_once(&once, read_env);
    fired = 0;
    __atomic_store_n(&counting, 1, __ATOMIC_RELEASE);
    long now = __atomic_load_n(&count, __ATOMIC_SEQ_CST);
    __atomic_store_n(&fail_at, n > 0 ? now + n : 0, __ATOMIC_SEQ_CST);
}

long mem_count(void)
{
    if (!__atomic_load_n(&inited, __ATOMIC_ACQUIRE))
        pthread_once(&once, read_env);
    __atomic_store_n(&counting, 1, __ATOMIC_RELEASE);
    return __atomic_load_n(&count, __ATOMIC_SEQ_CST);
}

int mem_failed(const char **site)
{
    if (fired && site)
        *site = fired_site;
    return fired;
}

/* SQLite's allocator. Sizes come from malloc_usable_size, as SQLite's own default does
 * where the C library offers it. */
static void *sq_malloc(int n)
{
    return n > 0 ? mem_alloc_at((size_t)n, "sqlite", 0) : NULL;
}

static void sq_free(void *p)
{
    free(p);
}

static void *sq_realloc(void *p, int n)
{
    return n > 0 ? mem_realloc_at(p, (size_t)n, "sqlite", 0) : NULL;
}

static int sq_size(void *p)
{
    return p ? (int)malloc_usable_size(p) : 0;
}

static int sq_roundup(int n)
{
    return (n + 7) & ~7;
}

static int sq_init(void *ud)
{
    (void)ud;
    return SQLITE_OK;
}

static void sq_shutdown(void *ud)
{
    (void)ud;
}

int mem_sqlite_install(void)
{
    static int installed;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static const sqlite3_mem_methods methods = {sq_malloc,  sq_free, sq_realloc, sq_size,
                                                sq_roundup, sq_init, sq_shutdown, NULL};
    int rc = 0;
    pthread_mutex_lock(&lock);
    if (!installed) {
        /* No memory statistics: SQLite would take a global mutex around every allocation
         * to keep them, and nothing reads them. Multi-thread mode: no mutex per call on a
         * connection, since each connection is used by one thread only (the loop's; the
         * syncer thread syncs the WAL through a descriptor of its own, syncer.h).
         * Both are speed only: a library that refuses them works as before. */
        if (sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) == SQLITE_OK) {
            installed = 1;
            (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
            (void)sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
        } else {
            rc = ERR_INTERNAL;
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static void *ev_malloc(size_t n)
{
    return mem_alloc_at(n, "libevent", 0);
}

static void *ev_realloc(void *p, size_t n)
{
    return mem_realloc_at(p, n, "libevent", 0);
}

static void ev_free(void *p)
{
    free(p);
}

static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void install(void)
{
    (void)mem_sqlite_install(); /* fails only when SQLite is already in use: then unrouted */
    event_set_mem_functions(ev_malloc, ev_realloc, ev_free);
}

void mem_install(void)
{
    pthread_once(&install_once, install);
}

static void *cu_malloc(size_t n)
{
    return mem_alloc_at(n, "libcurl", 0);
}

static void *cu_calloc(size_t n, size_t size)
{
    return mem_calloc_at(n, size, "libcurl", 0);
}

static void *cu_realloc(void *p, size_t n)
{
    return mem_realloc_at(p, n, "libcurl", 0);
}

static char *cu_strdup(const char *s)
{
    return mem_strdup_at(s, "libcurl", 0);
}

int mem_curl_global_init(long flags)
{
    return (int)curl_global_init_mem(flags, cu_malloc, ev_free, cu_realloc, cu_strdup, cu_calloc);
}
