/*
 * mem_route: sends the C library's allocation calls in runtime code through mem.h.
 *
 * The Makefile forces this header into every translation unit of the runtime, its unit
 * tests and helpers (-include runtime/mem_route.h), except mem.c itself, in the manner of
 * curl's memdebug.h: code keeps writing malloc/calloc/realloc/strdup/strndup, and every such
 * call is counted and can be made to fail (AGENTD_FAIL_ALLOC, see mem.h). Memory is still
 * released with plain free(). The system headers that declare these functions are included
 * first, so their declarations are not rewritten.
 */
#ifndef AGENTD_MEM_ROUTE_H
#define AGENTD_MEM_ROUTE_H

#include <stdlib.h>
#include <string.h>

#include "mem.h"

#define malloc(n) mem_alloc(n)
#define calloc(n, size) mem_calloc((n), (size))
#define realloc(p, n) mem_realloc((p), (n))
#define strdup(s) mem_strdup(s)
#define strndup(s, n) mem_strndup((s), (n))

#endif
