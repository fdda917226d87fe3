/*
 * malloc_count: an LD_PRELOAD library that counts heap allocations (malloc, calloc,
 * realloc, aligned forms) of the process it is loaded into and, at exit, appends
 * "PROGRAM allocs N bytes B" to the file named by $MALLOC_COUNT_OUT. Not a test:
 * scripts/bench-step.sh uses it to report allocations per step. glibc's __libc_*
 * entry points do the work, so there is no dlsym bootstrap problem.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_ulong n_alloc, n_bytes;

void *malloc(size_t n)
{
    atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_bytes, n, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_bytes, a * b, memory_order_relaxed);
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_bytes, n, memory_order_relaxed);
    return __libc_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
    void *p = __libc_memalign(align, n);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
    return __libc_memalign(align, n);
}

__attribute__((destructor)) static void report(void)
{
    const char *out = getenv("MALLOC_COUNT_OUT");
    FILE *f = out ? fopen(out, "a") : NULL;
    if (!f)
        return;
    /* Children (tools, shells) inherit the preload: name each process's line. */
    fprintf(f, "%s allocs %lu bytes %lu\n", program_invocation_short_name,
            (unsigned long)n_alloc, (unsigned long)n_bytes);
    fclose(f);
}
