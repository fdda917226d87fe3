/*
 * sandbox_int: prototypes shared by the files of the sandbox module (sandbox.c, the
 * allocator and the hook; sandbox_lib.c, the bounded standard-library functions;
 * sandbox_match.c, the budgeted patterns; sandbox_json.c, Lua <-> JSON). Not for other
 * modules: they use sandbox.h.
 */
#ifndef AGENTD_SANDBOX_INT_H
#define AGENTD_SANDBOX_INT_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

/* Charge steps of work done in C to the CPU budget and check the deadline; raises the
 * sticky stop (as the count hook does) when either is gone. When the time slice is used
 * up, the count hook is armed to run at the next instruction, so the tool gives the loop a
 * turn as soon as it is back in Lua code. Returns 0 otherwise. */
int sandbox_charge(lua_State *L, uint64_t steps);

/* The memory cap of L's sandbox, in bytes. */
size_t sandbox_mem_cap(lua_State *L);

/* The coroutine the tool resumed came back with a yield: 1 when the yield was a time-slice
 * preemption (the resumer must pass it on, or resume again at once), else 0. */
int sandbox_preempt_pending(lua_State *L);
/* The resumer cannot yield: forget the pending preemption and start a new slice. */
void sandbox_preempt_absorb(lua_State *L);
/* The thread about to run (the allocator arms the hook of this thread after large
 * allocations); returns the previous one so the caller can restore it. */
lua_State *sandbox_running(lua_State *L, lua_State *co);

void sandbox_lib_open(lua_State *L);   /* sandbox_lib.c: global table at the top */
void sandbox_match_open(lua_State *L); /* sandbox_match.c: string table at the top */
void sandbox_json_init(lua_State *L);  /* sandbox_json.c */
/* sandbox_json.c: push the tables it keeps in the registry (the JSON marker metatables, the
 * box metatable), so a reusable state guards them; returns how many. */
int sandbox_json_push_tables(lua_State *L);

#endif
