/*
 * mem: the runtime's allocation functions, and the switch that makes one of them fail.
 *
 * Every allocation the runtime makes goes through mem_alloc/mem_calloc/mem_realloc/
 * mem_strdup/mem_strndup (macros that record the call site), and so do the sandbox's Lua
 * allocator and SQLite's (mem_sqlite_install). A test can therefore fail each allocation in
 * turn and check that nothing crashes, leaks or corrupts the database, as SQLite's fault
 * injection, Lua's ltests `failnext` and curl's torture mode do (scripts/alloc-torture.sh,
 * docs/internals.md). Memory from these functions is released with plain free().
 *
 * Routed: the runtime's own calls (runtime/mem_route.h, forced into every file by the
 * Makefile), Lua states (the sandbox's allocator), SQLite, libevent and libcurl (mem_install,
 * mem_curl_global_init). Not covered: json-c, PCRE2 and ncurses call malloc themselves
 * (json-c has no allocator hook; json_object_new_* return NULL on failure, which the
 * runtime checks).
 *
 * Switches (read once, at the first allocation):
 *   AGENTD_FAIL_ALLOC=N          fail the Nth counted allocation (1-based), once
 *   AGENTD_FAIL_ALLOC_SITE=F:L   fail the first allocation made at source line F:L, once
 *                                (F:L#K: the Kth one there)
 *   AGENTD_FAIL_ALLOC_LOG=FILE   at exit, append "count N", "fail N F:L" (if one was
 *                                injected) and one "site F:L K" line per call site seen
 * Thread-safe: the counter is atomic and the site table takes a lock (only when logging).
 */
#ifndef AGENTD_MEM_H
#define AGENTD_MEM_H

#include <stddef.h>

void *mem_alloc_at(size_t n, const char *file, int line);
void *mem_calloc_at(size_t n, size_t size, const char *file, int line);
void *mem_realloc_at(void *p, size_t n, const char *file, int line);
char *mem_strdup_at(const char *s, const char *file, int line);
char *mem_strndup_at(const char *s, size_t n, const char *file, int line);

/* Each returns NULL when memory runs out (or the switch says so); free() releases. */
#define mem_alloc(n) mem_alloc_at((n), __FILE__, __LINE__)
#define mem_calloc(n, size) mem_calloc_at((n), (size), __FILE__, __LINE__)
#define mem_realloc(p, n) mem_realloc_at((p), (n), __FILE__, __LINE__)
#define mem_strdup(s) mem_strdup_at((s), __FILE__, __LINE__)
#define mem_strndup(s, n) mem_strndup_at((s), (n), __FILE__, __LINE__)

/* Test API. Fail the nth allocation counted from now (1 = the next one), once; 0 disarms. */
void mem_fail_nth(long n);
/* Allocations counted so far (every thread). Counting starts with the first call of this or
 * mem_fail_nth, or at start when an AGENTD_FAIL_ALLOC* variable is set. */
long mem_count(void);
/* Has the armed failure fired? Then *site (if given) names where ("file.c:123"). */
int mem_failed(const char **site);

/* Route SQLite's allocator through mem_*; call before SQLite is first used. Idempotent;
 * 0 or ERR_INTERNAL when SQLite was already initialised. Also switches off SQLite's memory
 * statistics and puts it in multi-thread mode (no mutex per call on a connection): from
 * then on a connection must be used by one thread at a time, as every one of agentd's is. */
int mem_sqlite_install(void);

/* Route SQLite (when not yet initialised) and libevent through mem_*. Idempotent; the
 * store, the knowledge base and the loop call it before they first use either library. */
void mem_install(void);

/* curl_global_init with libcurl's allocations routed through mem_* (CURLE_OK or its code). */
int mem_curl_global_init(long flags);

#endif
