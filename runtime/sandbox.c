/*
 * sandbox: see sandbox.h. The allocator, the count hook and the sandboxed globals.
 * Lua<->JSON lives in sandbox_json.c.
 */
#include "sandbox.h"

#include "err.h"
#include "sandbox_int.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The hook runs every HOOK_EVERY instructions: often enough to stop a loop within
 * microseconds, rarely enough that reading the clock costs well under 1%. */
#define HOOK_EVERY 1000
/* An instruction can be expensive (a concatenation copying megabytes, a full collection of
 * a large heap): allocations of at least BIG_ALLOC bytes are charged to the budget, one step
 * per ALLOC_STEP bytes, and arm the hook for the very next instruction, so a loop of a few
 * costly instructions is stopped and preempted on time like any other. */
#define BIG_ALLOC ((size_t)64 << 10)
#define ALLOC_STEP 64

struct sandbox {
    lua_State *L;
    size_t used, peak, cap;
    int capped;     /* the cap is enforced only while Lua code of the tool runs */
    int mem_failed; /* the cap refused an allocation since the last reset */
    uint64_t instr, budget;
    uint64_t deadline_ns;
    uint64_t slice_ns, slice_start;
    lua_State *preempt_co;
    lua_State *running; /* thread of the tool running now (whose hook a big alloc arms) */
    int preempted;
    int armed; /* the hook was armed for the next instruction (count 1) */
    int stop;
    sandbox_log_fn log;
    void *log_ud;
    int reusable; /* sandbox_make_reusable() ran: the registry holds the snapshots */
    size_t base;  /* bytes after the snapshot's full collection */
    uint64_t seed; /* math.random seeds of the calls (splitmix64) */
    /* The guarded tables' entries as identities, in lua_next order: table i's are
     * fp[fp_start[i] .. fp_start[i + 1]). See "reuse" below. */
    struct sb_fp *fp;
    size_t *fp_start;
    size_t nguard;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void count_hook(lua_State *L, lua_Debug *ar);
static const lua_Hook count_hook_fn = count_hook;

static void *host_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    sandbox_t *h = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        h->used -= old;
        return NULL;
    }
    if (h->capped && nsize > old && h->used - old + nsize > h->cap) {
        h->mem_failed = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p) {
        h->mem_failed = 1;
        return NULL;
    }
    if (h->capped && nsize >= old + BIG_ALLOC && h->running && !h->stop) {
        /* Only fields are written here: safe in the middle of any VM operation. */
        h->instr += (nsize - old) / ALLOC_STEP;
        h->armed = 1;
        lua_sethook(h->running, count_hook_fn, LUA_MASKCOUNT, 1);
    }
    h->used = h->used - old + nsize;
    if (h->used > h->peak)
        h->peak = h->used;
    return p;
}

sandbox_t *sandbox_of(lua_State *L)
{
    return *(sandbox_t **)lua_getextraspace(L);
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    sandbox_t *h = sandbox_of(L);
    if (!h->stop) {
        if (h->armed) {
            /* Armed for one instruction by a big allocation or a charge: back to normal. */
            h->armed = 0;
            lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
        } else {
            h->instr += HOOK_EVERY;
        }
        h->running = L;
        uint64_t now = mono_ns();
        if (h->instr > h->budget)
            h->stop = LUA_HOST_STOP_CPU;
        else if (h->deadline_ns && now >= h->deadline_ns)
            h->stop = LUA_HOST_STOP_DEADLINE;
        else if (h->slice_ns && h->preempt_co && now - h->slice_start >= h->slice_ns &&
                 lua_isyieldable(L)) {
            /* Time slice used up: give the loop a turn. Count hooks may yield (5.4). A
             * coroutine of the tool's own yields too: the sandbox's coroutine.resume
             * passes the preemption up to the tool's main coroutine (sandbox_lib.c). */
            h->preempted = 1;
            lua_yield(L, 0);
            return;
        }
    }
    if (h->stop) {
        /* Sticky: raise again at the very next instruction of this thread, so a pcall in
         * the tool cannot swallow the stop and carry on. */
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "%s", h->stop == LUA_HOST_STOP_CPU ? "CPU budget exhausted" : "deadline");
    }
}

int sandbox_charge(lua_State *L, uint64_t steps)
{
    sandbox_t *h = sandbox_of(L);
    if (!h->stop) {
        uint64_t now = mono_ns();
        h->instr += steps > h->budget ? h->budget + 1 : steps;
        if (h->instr > h->budget)
            h->stop = LUA_HOST_STOP_CPU;
        else if (h->deadline_ns && now >= h->deadline_ns)
            h->stop = LUA_HOST_STOP_DEADLINE;
        else if (h->slice_ns && h->preempt_co && now - h->slice_start >= h->slice_ns) {
            /* The C work cannot yield here; the hook does it at the next instruction. */
            h->armed = 1;
            lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        }
    }
    if (h->stop) {
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        return luaL_error(L, "%s", h->stop == LUA_HOST_STOP_CPU ? "CPU budget exhausted"
                                                                 : "deadline");
    }
    return 0;
}

size_t sandbox_mem_cap(lua_State *L)
{
    return sandbox_of(L)->cap;
}

int sandbox_preempt_pending(lua_State *L)
{
    return sandbox_of(L)->preempted;
}

void sandbox_preempt_absorb(lua_State *L)
{
    sandbox_t *h = sandbox_of(L);
    h->preempted = 0;
    h->slice_start = mono_ns();
}

lua_State *sandbox_running(lua_State *L, lua_State *co)
{
    sandbox_t *h = sandbox_of(L);
    lua_State *prev = h->running;
    h->running = co;
    return prev;
}

/* ---- sandboxed library functions ---- */

static int sb_print(lua_State *L)
{
    sandbox_t *h = sandbox_of(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    if (h->log)
        h->log(h->log_ud, "info", lua_tostring(L, -1));
    return 0;
}

static int sb_load(lua_State *L)
{
    /* load(chunk [, chunkname [, mode [, env]]]) with mode forced to "t": binary chunks
     * skip the parser's checks and can crash the VM. */
    int n = lua_gettop(L);
    luaL_checkany(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    if (n >= 2)
        lua_pushvalue(L, 2);
    else
        lua_pushnil(L);
    lua_pushliteral(L, "t");
    if (n >= 4)
        lua_pushvalue(L, 4);
    lua_call(L, n >= 4 ? 4 : 3, 2);
    return 2;
}

/* Replace t[name] (t at top) by a C closure over the original value. */
static void wrap(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_getfield(L, -1, name);
    lua_pushcclosure(L, fn, 1);
    lua_setfield(L, -2, name);
}

static void drop(lua_State *L, const char *const *names)
{
    for (int i = 0; names[i]; i++) {
        lua_pushnil(L);
        lua_setfield(L, -2, names[i]);
    }
}

static int open_sandbox(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},          {LUA_TABLIBNAME, luaopen_table},
        {LUA_STRLIBNAME, luaopen_string},   {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8},    {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_OSLIBNAME, luaopen_os},        {NULL, NULL},
    };
    static const char *const base_drop[] = {"dofile", "loadfile", "require", NULL};
    static const char *const os_drop[] = {"execute", "exit",      "getenv",  "remove",
                                          "rename",  "setlocale", "tmpname", NULL};
    static const char *const str_drop[] = {"dump", NULL};
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);
    drop(L, base_drop);
    wrap(L, "load", sb_load);
    lua_pushcfunction(L, sb_print);
    lua_setfield(L, -2, "print");
    lua_getfield(L, -1, LUA_OSLIBNAME);
    drop(L, os_drop);
    lua_pop(L, 1);
    lua_getfield(L, -1, LUA_STRLIBNAME);
    drop(L, str_drop);
    sandbox_match_open(L);
    lua_pop(L, 1);
    sandbox_lib_open(L);
    lua_pop(L, 1);
    /* The registry's loaded-modules table would hand out the unfiltered library tables
     * through package.loaded if package were ever exposed; keep it empty. */
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    return 0;
}

static int open_all(lua_State *L)
{
    open_sandbox(L);
    sandbox_json_init(L);
    return 0;
}

sandbox_t *sandbox_new(const sandbox_limits_t *lim, sandbox_log_fn log, void *log_ud)
{
    sandbox_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->cap = lim && lim->mem_bytes ? lim->mem_bytes : LUA_HOST_DEFAULT_MEM;
    h->budget = lim && lim->instructions ? lim->instructions : LUA_HOST_DEFAULT_INSTR;
    h->slice_ns = lim ? lim->slice_us * 1000 : 0;
    h->log = log;
    h->log_ud = log_ud;
    h->L = lua_newstate(host_alloc, h);
    if (!h->L) {
        free(h);
        return NULL;
    }
    *(sandbox_t **)lua_getextraspace(h->L) = h;
    lua_pushcfunction(h->L, open_all);
    if (lua_pcall(h->L, 0, 0, 0) != LUA_OK) {
        lua_close(h->L);
        free(h);
        return NULL;
    }
    /* Threads inherit the hook of the thread that creates them, so setting it on the
     * main thread covers every coroutine the tool or the host makes. */
    lua_sethook(h->L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
    return h;
}

void sandbox_free(sandbox_t *h)
{
    if (!h)
        return;
    /* __gc metamethods run during lua_close; give them no budget so a hostile finalizer
     * cannot spin (their errors become ignored warnings). */
    h->stop = LUA_HOST_STOP_CPU;
    h->capped = 1;
    lua_close(h->L);
    free(h->fp);
    free(h->fp_start);
    free(h);
}

/* ---- reuse: see sandbox.h ---- */

/* Registry key of a reusable state's guard list: {t1, snapshot1, t2, snapshot2, ...}, every
 * table a tool can reach without making it (the globals, the libraries, the string
 * metatable, the JSON marker metatables), each with its snapshot: what repair() puts back,
 * and what keeps every snapshot object alive, so the C fingerprints (below) may stand for
 * an object by its address. */
static const char guard_key = 'S';

/* A value that is not an object (a number, a boolean, a light userdata, a light C function):
 * its fingerprint is enough to push it again, so a snapshot need not hold it. */
static int is_light(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
    case LUA_TBOOLEAN:
    case LUA_TLIGHTUSERDATA:
        return 1;
    case LUA_TFUNCTION:
        return lua_iscfunction(L, idx) &&
               (uintptr_t)lua_tocfunction(L, idx) == (uintptr_t)lua_topointer(L, idx);
    default:
        return 0;
    }
}

/* Push the snapshot of the table at idx, in lua_next order: {k1, ..., kn, then the values
 * that are objects, in the same order}. The other values are pushed back from their
 * fingerprints (snap_expand), which are recorded in the same order. */
static void snapshot(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    int n = 0, m = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        n++;
        m += !is_light(L, -1);
        lua_pop(L, 1);
    }
    lua_createtable(L, n + m, 0);
    lua_Integer k = 0, v = n;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (is_light(L, -1))
            lua_pop(L, 1);
        else
            lua_rawseti(L, -3, ++v);
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, ++k);
    }
}

/* Guard the table at idx and every table reachable from it (values and metatables) that
 * `seen` does not hold yet. */
static void guard_walk(lua_State *L, int guard, int seen, int idx)
{
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 6, "sandbox snapshot");
    lua_pushvalue(L, idx);
    if (lua_rawget(L, seen) != LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, seen);
    lua_Integer n = (lua_Integer)lua_rawlen(L, guard);
    lua_pushvalue(L, idx);
    lua_rawseti(L, guard, n + 1);
    snapshot(L, idx);
    lua_rawseti(L, guard, n + 2);
    if (lua_getmetatable(L, idx)) {
        guard_walk(L, guard, seen, -1);
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_istable(L, -1))
            guard_walk(L, guard, seen, -1);
        lua_pop(L, 1);
    }
}

static int seal(lua_State *L)
{
    lua_settop(L, 0);
    lua_newtable(L); /* 1: guard */
    lua_newtable(L); /* 2: seen */
    lua_pushglobaltable(L);
    guard_walk(L, 1, 2, 3);
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1))
        guard_walk(L, 1, 2, -1);
    lua_settop(L, 2);
    int n = sandbox_json_push_tables(L);
    for (int i = 0; i < n; i++)
        guard_walk(L, 1, 2, 3 + i);
    lua_settop(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &guard_key);
    return 0;
}

static int fp_init(sandbox_t *h);

int sandbox_make_reusable(sandbox_t *h)
{
    lua_State *L = h->L;
    lua_pushcfunction(L, seal);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        lua_pop(L, 1);
        return ERR_NOMEM;
    }
    int rc = fp_init(h);
    if (rc)
        return rc;
    /* Generational: after each call a young collection frees the call's objects without
     * walking the state's old ones (sandbox_recycle). Switching does a full collection. */
    lua_gc(L, LUA_GCGEN, 0, 0);
    lua_gc(L, LUA_GCCOLLECT);
    h->base = h->used;
    h->seed = (uint64_t)(uintptr_t)h ^ mono_ns();
    h->reusable = 1;
    return 0;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sandbox_begin_call(lua_State *L)
{
    sandbox_t *h = sandbox_of(L);
    if (!h->reusable)
        return;
    /* math.random's state outlives the call: each call seeds it anew (a fresh state seeds
     * it from the clock), so no call can set or predict another's numbers. The globals are
     * as the snapshot says here (sandbox_recycle), so this is the library's own function. */
    int top = lua_gettop(L);
    lua_pushglobaltable(L);
    if (lua_getfield(L, -1, LUA_MATHLIBNAME) == LUA_TTABLE &&
        lua_getfield(L, -1, "randomseed") == LUA_TFUNCTION) {
        h->seed ^= mono_ns();
        lua_pushinteger(L, (lua_Integer)splitmix64(&h->seed));
        lua_pushinteger(L, (lua_Integer)splitmix64(&h->seed));
        lua_call(L, 2, 0);
    }
    lua_settop(L, top);
}

/* An entry of a guarded table as an identity: two values have the same fingerprint only if
 * they are the same value — the same object (strings, tables, closures, userdata), the same
 * light C function or light userdata, the same boolean, or a number of the same subtype with
 * the same bits. That is stricter than rawequal (1 and 1.0, two equal long strings, 0.0 and
 * -0.0 differ), so a table that is only "equal" goes through repair() and gets the
 * snapshot's very values back. An address can stand for an object because the guard list
 * holds every key and value of every snapshot: none of them can be freed, so no other
 * object can be given its address while the state lives. Packed: 18 bytes an entry, not 24
 * (a state has ~140 of them). */
typedef struct __attribute__((packed)) sb_fp {
    uint64_t k, v;
    unsigned char kt, vt;
} sb_fp_t;

#define FP_INT 0x40 /* added to LUA_TNUMBER for an integer */
#define FP_LFN 0x80 /* recorded with LUA_TFUNCTION for a light C function */
_Static_assert(sizeof(lua_Number) == sizeof(uint64_t), "fingerprints hold a double's bits");

static uint64_t fp_of(lua_State *L, int idx, unsigned char *type)
{
    int t = lua_type(L, idx);
    uint64_t bits;
    if (t == LUA_TNUMBER) {
        if (lua_isinteger(L, idx)) {
            bits = (uint64_t)lua_tointeger(L, idx);
            t |= FP_INT;
        } else {
            lua_Number d = lua_tonumber(L, idx);
            memcpy(&bits, &d, sizeof bits);
        }
    } else if (t == LUA_TBOOLEAN) {
        bits = (uint64_t)lua_toboolean(L, idx);
    } else {
        bits = (uint64_t)(uintptr_t)lua_topointer(L, idx);
    }
    *type = (unsigned char)t;
    return bits;
}

/* The same value at a and b (see sb_fp_t). */
static int identical(lua_State *L, int a, int b)
{
    unsigned char ta, tb;
    uint64_t va = fp_of(L, a, &ta), vb = fp_of(L, b, &tb);
    return ta == tb && va == vb;
}

/* Write the fingerprints of the table at idx, in lua_next order, to fp[from .. from + n);
 * 0 if it does not hold exactly n entries (nothing is written past the range). A string key
 * longer than a short string (40 bytes) also answers 0: Lua interns only short strings, and
 * repair() finds keys by equality, so only for short strings is an equal key the same key. */
static int fp_record(sandbox_t *h, lua_State *L, int idx, size_t from, size_t n)
{
    size_t j = from;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t len = 0;
        if (j == from + n ||
            (lua_type(L, -2) == LUA_TSTRING && (lua_tolstring(L, -2, &len), len > 40))) {
            lua_pop(L, 2);
            return 0;
        }
        sb_fp_t *f = &h->fp[j++];
        unsigned char kt, vt;
        f->v = fp_of(L, -1, &vt);
        f->k = fp_of(L, -2, &kt);
        f->kt = kt;
        f->vt = (unsigned char)(vt | (vt == LUA_TFUNCTION && is_light(L, -1) ? FP_LFN : 0));
        lua_pop(L, 1);
    }
    return j == from + n;
}

/* 1 when guarded table i, at idx, has no metatable and holds exactly the entries its
 * fingerprints say, in the same order: one traversal, no lookups, no pushes but lua_next's. */
static int fp_same(sandbox_t *h, lua_State *L, int idx, size_t i)
{
    if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        return 0;
    }
    const sb_fp_t *f = h->fp + h->fp_start[i], *end = h->fp + h->fp_start[i + 1];
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        unsigned char kt, vt;
        uint64_t v = fp_of(L, -1, &vt);
        uint64_t k = fp_of(L, -2, &kt);
        lua_pop(L, 1);
        if (f == end || f->k != k || f->v != v || f->kt != kt || (f->vt & ~FP_LFN) != vt) {
            lua_pop(L, 1);
            return 0;
        }
        f++;
    }
    return f == end;
}

/* Put the table at idx back as its snapshot at sidx says: no metatable, the keys the
 * snapshot does not have cleared, every other key given the snapshot's very value back
 * (identical(), not merely equal). Their order may differ from before (a fresh state's order
 * is its own too); the caller records the new order. */
static void repair(lua_State *L, int idx, int sidx)
{
    if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_setmetatable(L, idx);
    }
    /* The snapshot as key -> value, for lookups. */
    lua_Integer n = (lua_Integer)lua_rawlen(L, sidx);
    lua_createtable(L, 0, (int)(n / 2));
    int map = lua_gettop(L);
    for (lua_Integer i = 1; i < n; i += 2) {
        lua_rawgeti(L, sidx, i);
        lua_rawgeti(L, sidx, i + 1);
        lua_rawset(L, map);
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        lua_rawget(L, map);
        if (!identical(L, -2, -1)) {
            /* Clearing or changing existing fields during a traversal is allowed. */
            lua_pushvalue(L, -3);
            lua_insert(L, -2);
            lua_rawset(L, idx);
        } else {
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    for (lua_Integer i = 1; i < n; i += 2) {
        lua_rawgeti(L, sidx, i);
        lua_pushvalue(L, -1);
        lua_rawget(L, idx);
        lua_rawgeti(L, sidx, i + 1);
        if (!identical(L, -2, -1)) {
            lua_remove(L, -2);
            lua_rawset(L, idx);
        } else {
            lua_pop(L, 3);
        }
    }
    lua_pop(L, 1);
}

/* Push guarded table i's snapshot (at sidx) as {k1, v1, k2, v2, ...}: the values that are
 * not objects made again from their fingerprints. */
static void snap_expand(sandbox_t *h, lua_State *L, size_t i, int sidx)
{
    size_t from = h->fp_start[i], n = h->fp_start[i + 1] - from;
    lua_Integer gi = (lua_Integer)n;
    lua_createtable(L, (int)(2 * n), 0);
    for (size_t j = 0; j < n; j++) {
        const sb_fp_t *f = &h->fp[from + j];
        lua_Number d;
        lua_rawgeti(L, sidx, (lua_Integer)j + 1);
        lua_rawseti(L, -2, (lua_Integer)(2 * j + 1));
        switch (f->vt) {
        case LUA_TNUMBER | FP_INT:
            lua_pushinteger(L, (lua_Integer)f->v);
            break;
        case LUA_TNUMBER:
            memcpy(&d, &f->v, sizeof d);
            lua_pushnumber(L, d);
            break;
        case LUA_TBOOLEAN:
            lua_pushboolean(L, (int)f->v);
            break;
        case LUA_TLIGHTUSERDATA:
            lua_pushlightuserdata(L, (void *)(uintptr_t)f->v);
            break;
        case LUA_TFUNCTION | FP_LFN:
            lua_pushcfunction(L, (lua_CFunction)(uintptr_t)f->v);
            break;
        default:
            lua_rawgeti(L, sidx, ++gi);
        }
        lua_rawseti(L, -2, (lua_Integer)(2 * j + 2));
    }
}

/* Protected (re-adding a deleted key may allocate): check every guarded table against its
 * fingerprints, repair the ones that differ and snapshot them again in their new order
 * (their entries are the snapshot's very objects again). */
static int repair_all(lua_State *L)
{
    sandbox_t *h = sandbox_of(L);
    lua_settop(L, 0);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &guard_key) != LUA_TTABLE)
        return luaL_error(L, "not a reusable state");
    for (size_t i = 0; i < h->nguard; i++) {
        lua_rawgeti(L, 1, (lua_Integer)(2 * i + 1));
        if (!fp_same(h, L, 2, i)) {
            lua_rawgeti(L, 1, (lua_Integer)(2 * i + 2));
            snap_expand(h, L, i, 3);
            repair(L, 2, 4);
            snapshot(L, 2);
            lua_rawseti(L, 1, (lua_Integer)(2 * i + 2));
            size_t from = h->fp_start[i];
            if (!fp_record(h, L, 2, from, h->fp_start[i + 1] - from))
                return luaL_error(L, "a guarded table did not come back to its snapshot");
        }
        lua_settop(L, 1);
    }
    return 0;
}

/* After seal(): the fingerprints of every guarded table, as it is now. Unprotected, but
 * nothing here allocates in the state. 0, or ERR_NOMEM / ERR_INVAL. */
static int fp_init(sandbox_t *h)
{
    lua_State *L = h->L;
    int rc = 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &guard_key);
    int guard = lua_gettop(L);
    size_t n = (size_t)lua_rawlen(L, guard) / 2, total = 0;
    if (!(h->fp_start = calloc(n + 1, sizeof *h->fp_start))) {
        rc = ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, guard, (lua_Integer)(2 * i + 1));
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            total++;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        h->fp_start[i + 1] = total;
    }
    if (!(h->fp = malloc((total ? total : 1) * sizeof *h->fp))) {
        rc = ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        lua_rawgeti(L, guard, (lua_Integer)(2 * i + 1));
        if (!fp_record(h, L, lua_gettop(L), h->fp_start[i], h->fp_start[i + 1] - h->fp_start[i]))
            rc = ERR_INVAL;
        lua_pop(L, 1);
    }
    h->nguard = n;
done:
    lua_settop(L, guard - 1);
    return rc;
}

int sandbox_recycle(sandbox_t *h)
{
    lua_State *L = h->L;
    if (!h->reusable || h->stop || h->mem_failed)
        return 0;
    /* A call that left a large heap: a collection would cost what closing costs, and the
     * state might not shrink back anyway. */
    if (h->used > h->base + SANDBOX_REUSE_MAX_GARBAGE)
        return 0;
    lua_settop(L, 0);
    lua_pushcfunction(L, repair_all);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        lua_settop(L, 0);
        return 0;
    }
    /* The state runs the generational collector (sandbox_make_reusable): a young collection
     * frees what the call made and left unreachable without walking the libraries and the
     * snapshot, which are old. What a collection during the call aged survives it; when
     * that leaves the state over its recorded size, a full collection follows. Isolation
     * does not rest on either: nothing the call made is reachable any more. */
    lua_gc(L, LUA_GCSTEP, 0);
    if (h->used > h->base + SANDBOX_REUSE_SLACK)
        lua_gc(L, LUA_GCCOLLECT);
    return h->used <= h->base + SANDBOX_REUSE_SLACK;
}

void sandbox_rebind(sandbox_t *h, const sandbox_limits_t *lim, sandbox_log_fn log, void *log_ud)
{
    h->cap = lim && lim->mem_bytes ? lim->mem_bytes : LUA_HOST_DEFAULT_MEM;
    h->budget = lim && lim->instructions ? lim->instructions : LUA_HOST_DEFAULT_INSTR;
    h->slice_ns = lim ? lim->slice_us * 1000 : 0;
    h->log = log;
    h->log_ud = log_ud;
    h->peak = h->used;
}

lua_State *sandbox_state(sandbox_t *h)
{
    return h->L;
}

size_t sandbox_mem(const sandbox_t *h)
{
    return h->used;
}

size_t sandbox_mem_peak(const sandbox_t *h)
{
    return h->peak;
}

uint64_t sandbox_instructions(const sandbox_t *h)
{
    return h->instr;
}

void sandbox_reset_budget(sandbox_t *h, uint64_t deadline_ns, lua_State *preemptible)
{
    h->instr = 0;
    h->stop = LUA_HOST_RUNNING;
    h->mem_failed = 0;
    h->deadline_ns = deadline_ns;
    h->preempt_co = preemptible;
    h->preempted = 0;
    h->armed = 0;
    lua_sethook(h->L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
    if (preemptible)
        lua_sethook(preemptible, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
}

int sandbox_stopped(const sandbox_t *h)
{
    return h->stop;
}

int sandbox_take_preempted(sandbox_t *h)
{
    int p = h->preempted;
    h->preempted = 0;
    return p;
}

int sandbox_loadfile(sandbox_t *h, const char *path, char *errbuf, size_t errlen)
{
    int st = luaL_loadfilex(h->L, path, "t");
    if (st == LUA_OK)
        return 0;
    int rc = st == LUA_ERRFILE ? ERR_IO : ERR_LUA;
    const char *msg = lua_tostring(h->L, -1);
    /* Syntax errors already start with "path:line:"; file errors say "cannot open path". */
    if (st == LUA_ERRFILE || !msg || strncmp(msg, path, strlen(path)) != 0)
        err_set(errbuf, errlen, rc, "%s: %s", path, msg ? msg : "cannot load");
    else
        err_set(errbuf, errlen, rc, "%s", msg);
    lua_pop(h->L, 1);
    return rc;
}

int sandbox_pcall(sandbox_t *h, int nargs, int nres, char *errbuf, size_t errlen)
{
    h->capped = 1;
    h->slice_start = mono_ns();
    h->running = h->L;
    int st = lua_pcall(h->L, nargs, nres, 0);
    h->running = NULL;
    h->capped = 0;
    if (st == LUA_OK)
        return 0;
    int rc = sandbox_errmsg(h, h->L, -1, st, errbuf, errlen);
    lua_pop(h->L, 1);
    return rc;
}

int sandbox_resume(sandbox_t *h, lua_State *co, int nargs, int *nres)
{
    h->capped = 1;
    h->slice_start = mono_ns();
    h->running = co;
    int st = lua_resume(co, h->L, nargs, nres);
    h->running = NULL;
    h->capped = 0;
    return st;
}

/* Copy s into buf as one line (newlines and tabs become spaces). */
static void one_line(char *buf, size_t len, const char *prefix, const char *s, size_t n)
{
    size_t o = 0;
    if (!len)
        return;
    for (const char *p = prefix; *p && o + 1 < len; p++)
        buf[o++] = *p;
    for (size_t i = 0; i < n && o + 1 < len; i++)
        buf[o++] = (s[i] == '\n' || s[i] == '\r' || s[i] == '\t') ? ' ' : s[i];
    buf[o] = '\0';
}

int sandbox_errmsg(sandbox_t *h, lua_State *L, int idx, int status, char *buf, size_t len)
{
    if (h->stop == LUA_HOST_STOP_CPU)
        return err_set(buf, len, ERR_LIMIT,
                       "CPU budget of %llu instructions exhausted (endless loop?)",
                       (unsigned long long)h->budget);
    if (h->stop == LUA_HOST_STOP_DEADLINE)
        return err_set(buf, len, ERR_TIMEOUT, "timed out while running Lua code");
    if (status == LUA_ERRMEM)
        return err_set(buf, len, ERR_LIMIT, "memory limit of %zu bytes (%.1f MiB) exceeded",
                       h->cap, (double)h->cap / (1 << 20));
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        one_line(buf, len, "", s, n);
        return ERR_LUA;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return err_set(buf, len, ERR_LUA, "error object is the number %lld",
                           (long long)lua_tointeger(L, idx));
        return err_set(buf, len, ERR_LUA, "error object is the number %.14g",
                       lua_tonumber(L, idx));
    case LUA_TNIL:
        return err_set(buf, len, ERR_LUA, "error called with nil (no message)");
    case LUA_TBOOLEAN:
        return err_set(buf, len, ERR_LUA, "error object is the boolean %s",
                       lua_toboolean(L, idx) ? "true" : "false");
    case LUA_TTABLE: {
        json_object *j = NULL;
        char tmp[64];
        if (sandbox_to_json(L, idx, 1, "error", &j, tmp, sizeof tmp) == 0 && j) {
            const char *s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
            one_line(buf, len, "error object is a table: ", s, strlen(s));
            json_object_put(j);
            return ERR_LUA;
        }
        return err_set(buf, len, ERR_LUA, "error object is a table with no message");
    }
    default:
        return err_set(buf, len, ERR_LUA, "error object is a %s with no message",
                       lua_typename(L, lua_type(L, idx)));
    }
}

int sandbox_load_table(const char *path, int allow_functions, json_object **out, char *errbuf,
                        size_t errlen)
{
    char msg[512];
    json_object *j = NULL;
    int rc;
    sandbox_t *h = sandbox_new(NULL, NULL, NULL);
    if (!h)
        return err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", path);
    sandbox_reset_budget(h, 0, NULL);
    rc = sandbox_loadfile(h, path, errbuf, errlen);
    if (rc)
        goto done;
    rc = sandbox_pcall(h, 0, 1, msg, sizeof msg);
    if (rc) {
        err_set(errbuf, errlen, rc, "%s%s%s", strncmp(msg, path, strlen(path)) ? path : "",
                strncmp(msg, path, strlen(path)) ? ": " : "", msg);
        goto done;
    }
    if (!lua_istable(h->L, -1)) {
        rc = err_set(errbuf, errlen, ERR_INVAL, "%s: must return a table (it returned %s)", path,
                     luaL_typename(h->L, -1));
        goto done;
    }
    rc = sandbox_to_json(h->L, -1, allow_functions, "", &j, msg, sizeof msg);
    if (rc) {
        err_set(errbuf, errlen, rc, "%s: %s", path, msg);
        goto done;
    }
    *out = j;
done:
    sandbox_free(h);
    return rc;
}
