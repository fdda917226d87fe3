/*
 * sandbox: one sandboxed Lua state, its memory-capped allocator, its CPU budget, and the
 * conversion between Lua values and JSON (json-c).
 *
 * Strategy (docs/tools.md): every tool call runs in a coroutine of a sandbox (one lua_State)
 * that no other call uses meanwhile: a new one, or one an earlier call of the same tool left
 * and sandbox_recycle() put back as its snapshot says (the reuse functions below); agent and
 * tool *files* are read in a new state, which is then closed. This buys an exact memory cap
 * per call, a CPU budget per call, no value leaking between calls or runs, and cancellation
 * by lua_close() with nothing left behind (a stopped or cancelled state is never reused).
 *
 * Sandbox: only allow-listed globals (base without dofile/loadfile/require, string without
 * dump, table, math, utf8, coroutine, os.{time,date,clock,difftime}); `load` accepts text
 * chunks only; library functions that loop in C (string.rep, table.*) or run Lua code where
 * hooks are off (xpcall handlers, __gc, __close after a stop) are bounded or guarded
 * (sandbox_lib.c); the pattern functions (string.find/match/gmatch/gsub, sandbox_match.c)
 * charge each matcher step to the CPU budget; print goes to the host's log sink. Large
 * allocations are charged to the budget too. A computing tool is preempted every slice,
 * also inside coroutines of its own.
 *
 * Invariants: the memory cap and the CPU budget apply only while Lua code runs inside
 * sandbox_resume()/sandbox_pcall(); the host's own pushes are not capped, so they cannot
 * raise outside protected mode. Once the CPU budget, the deadline or a stop request fires,
 * the hook raises on every following instruction, so pcall cannot swallow it.
 */
#ifndef AGENTD_SANDBOX_H
#define AGENTD_SANDBOX_H

#include "err.h"

#include <json-c/json.h>
#include <lua.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sandbox sandbox_t;

typedef struct sandbox_limits {
    size_t mem_bytes;      /* cap on the state's live bytes; 0: LUA_HOST_DEFAULT_MEM */
    uint64_t instructions; /* VM instructions per run; 0: LUA_HOST_DEFAULT_INSTR */
    uint64_t slice_us;     /* yield to the loop after running this long; 0: never */
} sandbox_limits_t;

#define LUA_HOST_DEFAULT_MEM ((size_t)64 << 20)
#define LUA_HOST_DEFAULT_INSTR ((uint64_t)200000000)

/* Why the hook stopped the code (sticky until sandbox_reset_budget). */
enum { LUA_HOST_RUNNING = 0, LUA_HOST_STOP_CPU, LUA_HOST_STOP_DEADLINE };

/* New sandboxed state. log(ud, level, msg) receives print() output (may be NULL).
 * NULL on allocation failure. */
typedef void (*sandbox_log_fn)(void *ud, const char *level, const char *msg);
sandbox_t *sandbox_new(const sandbox_limits_t *lim, sandbox_log_fn log, void *log_ud);
/* Closes the state (finalizers run under a zero budget). NULL is a no-op. */
void sandbox_free(sandbox_t *h);

lua_State *sandbox_state(sandbox_t *h);
/* The host of any thread of its state. */
sandbox_t *sandbox_of(lua_State *L);
/* Live bytes of the state, and the peak seen so far. */
size_t sandbox_mem(const sandbox_t *h);
size_t sandbox_mem_peak(const sandbox_t *h);
/* Instructions counted since the last reset (granularity 1000). */
uint64_t sandbox_instructions(const sandbox_t *h);

/* Per-run accounting: clear the instruction count, set an absolute monotonic deadline
 * (0: none) and the coroutine that may be preempted (NULL: none). */
void sandbox_reset_budget(sandbox_t *h, uint64_t deadline_ns, lua_State *preemptible);
/* Why the hook stopped the code: LUA_HOST_RUNNING or LUA_HOST_STOP_*. */
int sandbox_stopped(const sandbox_t *h);
/* True once if the last yield of the preemptible coroutine came from the time slice. */
int sandbox_take_preempted(sandbox_t *h);

/* ---- reuse (docs/tools.md, "Lua-state strategy") ----
 * A state may serve several calls one after another:
 *   sandbox_make_reusable() once, after the host has put what it keeps in the registry:
 *     records every table a tool can reach without making it (the globals, the library
 *     tables, the string metatable, the JSON marker metatables) as a snapshot (a copy in
 *     the state, which keeps its objects alive, and each entry's identity in C), switches
 *     the state to the generational collector, and records its size after a full
 *     collection;
 *   sandbox_begin_call() at the start of each call, in protected mode;
 *   sandbox_recycle() after a call ended without a stop: checks each of those tables
 *     against the identities (same entries, same objects, same order, no metatable), puts
 *     any that differs back as its snapshot says (keys the call added cleared, values it
 *     replaced or deleted given the snapshot's very objects back, metatables it set
 *     removed), and answers whether the state may serve again: only when a young
 *     collection, or if that is not enough a full one, brings it back to its recorded
 *     size. Whatever the call made is then unreachable, so the next call can find none of
 *     it; the collection only bounds the state's memory. */

/* Snapshot the state as it is now (see above). 0, ERR_NOMEM, or ERR_INVAL (a guarded
 * table has a string key longer than Lua's short strings). */
int sandbox_make_reusable(sandbox_t *h) AGENTD_WUR;
/* Per call, in protected mode (may raise on memory): what a fresh state would give the
 * call and a reused one must redo (a new math.random seed). No-op on a state that is not
 * reusable. */
void sandbox_begin_call(lua_State *L);
/* After a call: the host has dropped its own references into the call (its coroutine).
 * 1: the state is back as its snapshot says and may serve another call; 0: free it (a stop
 * fired, an allocation was refused, putting a table back ran out of memory, the call left
 * more than SANDBOX_REUSE_MAX_GARBAGE bytes, or the collections leave the state over its
 * recorded size by more than SANDBOX_REUSE_SLACK bytes). Never raises. */
int sandbox_recycle(sandbox_t *h);
#define SANDBOX_REUSE_SLACK 4096
/* A call that leaves more than this over the recorded size is not collected for reuse. */
#define SANDBOX_REUSE_MAX_GARBAGE ((size_t)1 << 20)
/* A state taken for another call: new limits and log sink; the peak starts again. */
void sandbox_rebind(sandbox_t *h, const sandbox_limits_t *lim, sandbox_log_fn log,
                    void *log_ud);

/* Load path as a text chunk named "@path" and push the function. 0, or ERR_IO / ERR_LUA
 * with "path: message" in errbuf. */
int sandbox_loadfile(sandbox_t *h, const char *path, char *errbuf, size_t errlen);
/* lua_pcall with the caps on. On failure the one-line message (see sandbox_errmsg) is in
 * errbuf and the stack is restored; returns 0, ERR_LUA, ERR_LIMIT (memory/CPU) or
 * ERR_TIMEOUT. */
int sandbox_pcall(sandbox_t *h, int nargs, int nres, char *errbuf, size_t errlen);
/* lua_resume of co with the caps on; returns the Lua status and *nres. */
int sandbox_resume(sandbox_t *h, lua_State *co, int nargs, int *nres);
/* After a failed pcall/resume: one-line text for the error object at idx of L, with the
 * cap that fired named ("memory limit of 8 MiB exceeded", "CPU budget of N instructions
 * exhausted"); non-string error objects are described (tables as JSON when possible).
 * Returns ERR_LUA, ERR_LIMIT or ERR_TIMEOUT for the cause. Never raises. */
int sandbox_errmsg(sandbox_t *h, lua_State *L, int idx, int status, char *buf, size_t len);

/* ---- Lua <-> JSON (rules in docs/tools.md) ---- */

/* The value that stands for JSON null inside Lua (a light userdata, also ctx.json.null). */
void sandbox_push_null(lua_State *L);
int sandbox_is_null(lua_State *L, int idx);
/* Mark the table at idx as a JSON array / object (for empty tables). Never raises. */
void sandbox_mark(lua_State *L, int idx, int as_array);

/* New JSON value for the Lua value at idx. nil becomes NULL (JSON null). Functions are
 * skipped inside tables when allow_functions, else an error. Errors name the field path
 * relative to `what` ("result.items[2].price: NaN cannot become JSON"). Never raises;
 * 0 or ERR_INVAL. */
int sandbox_to_json(lua_State *L, int idx, int allow_functions, const char *what,
                     json_object **out, char *errbuf, size_t errlen);
/* Push the Lua value for j (arrays and objects carry a marker metatable so they encode
 * back unchanged, empty ones included). Must run in protected mode (may raise on memory). */
void sandbox_push_json(lua_State *L, json_object *j);
/* Same, then releases one reference of j, also when a memory error interrupts the push. */
void sandbox_push_json_take(lua_State *L, json_object *j);

/* Run a Lua file in a fresh sandboxed state and convert the table it returns to JSON.
   Functions inside the table are an error unless allow_functions (then they are skipped).
   One-line error naming the file (and field path) in errbuf. Used by the lead to load
   agent files. 0, or ERR_IO / ERR_LUA / ERR_INVAL / ERR_LIMIT. */
int sandbox_load_table(const char *path, int allow_functions, json_object **out, char *errbuf,
                        size_t errlen);

#endif
