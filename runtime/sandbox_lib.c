/*
 * sandbox_lib: the standard-library functions the sandbox replaces or guards because they
 * could otherwise run unbounded C loops, or run Lua code where the count hook cannot see it.
 *
 * The count hook only runs between VM instructions. A C function that loops over numbers
 * the tool chose (string.rep("", 1 << 40), table.move({}, 1, 1 << 40, 1), table.insert into
 * a table whose __len says 2^40) never reaches an instruction and so can hold the loop
 * thread past every budget and deadline. Each such loop here is Lua 5.4's own (ltablib.c,
 * lstrlib.c, lcorolib.c; same arguments, results and errors) with its iterations charged to
 * the CPU budget, which ends it with the usual error; charges also check the deadline and
 * arm the hook when the time slice is used up.
 *
 * Audit of what the sandbox exposes (docs/tools.md lists it): every other library loop is
 * bounded by the size of a string or table that already fits the memory cap, by the Lua
 * stack (table.unpack, string.byte, utf8.codepoint: at most ~1M values), by the format
 * (string.format: widths and precisions are at most two digits; string.pack pads into the
 * capped heap), or runs Lua functions the hook sees (sort comparators, __index/__lt/__close
 * functions, load readers). Patterns are in sandbox_match.c.
 *
 * Message handlers and finalizers: Lua calls an xpcall message handler for the error the
 * hook itself raises while hooks are off for that thread, and runs __gc with hooks off, so
 * either could spin unseen. xpcall's handler is skipped once the tool is stopped, __gc is
 * refused by setmetatable, and coroutine.close / coroutine.wrap do not close a coroutine's
 * to-be-closed variables once the tool is stopped (its thread died inside the hook).
 */
#include "sandbox.h"
#include "sandbox_int.h"

#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>

/* Budget steps per element moved by a table function (about what a VM instruction costs
 * per step), and how many elements go between two charges. */
#define ELEM_STEPS 16
#define CHARGE_EVERY 256

typedef struct charger {
    lua_State *L;
    unsigned n;
} charger_t;

static void tick(charger_t *c)
{
    if (++c->n == CHARGE_EVERY) {
        c->n = 0;
        sandbox_charge(c->L, (uint64_t)CHARGE_EVERY * ELEM_STEPS);
    }
}

/* ---- string.rep ---- */

static int sb_rep(lua_State *L)
{
    size_t l, lsep;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || l + lsep == 0) {
        /* Lua loops n times even when nothing is copied. */
        lua_pushliteral(L, "");
        return 1;
    }
    double total = (double)l * (double)n + (double)lsep * (double)(n - 1);
    /* Only results that could never fit get this message; a result that does not fit right
     * now fails in the allocator with the memory-limit message. */
    if (total > (double)sandbox_mem_cap(L)) {
        /* lua_pushfstring knows no %zu or %.0f; format here. */
        char msg[160];
        snprintf(msg, sizeof msg,
                 "string.rep: result of %.0f bytes is over the memory limit of %zu bytes", total,
                 sandbox_mem_cap(L));
        return luaL_error(L, "%s", msg);
    }
    sandbox_charge(L, (uint64_t)n / CHARGE_EVERY * ELEM_STEPS);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* ---- table: ltablib.c's loops, charged ---- */

#define TAB_R 1
#define TAB_W 2
#define TAB_L 4
#define TAB_RW (TAB_R | TAB_W)

static int checkfield(lua_State *L, const char *key, int n)
{
    lua_pushstring(L, key);
    return lua_rawget(L, -n) != LUA_TNIL;
}

static void checktab(lua_State *L, int arg, int what)
{
    if (lua_type(L, arg) != LUA_TTABLE) {
        int n = 1;
        if (lua_getmetatable(L, arg) && (!(what & TAB_R) || checkfield(L, "__index", ++n)) &&
            (!(what & TAB_W) || checkfield(L, "__newindex", ++n)) &&
            (!(what & TAB_L) || checkfield(L, "__len", ++n))) {
            lua_pop(L, n);
        } else {
            luaL_checktype(L, arg, LUA_TTABLE);
        }
    }
}

/* Each call of these functions costs CALL_STEPS on top of its elements: they can be each
 * other's C metamethods (__index = table.concat), so a call per element must not be free. */
#define CALL_STEPS 64

static lua_Integer getn(lua_State *L, int arg, int what)
{
    sandbox_charge(L, CALL_STEPS);
    checktab(L, arg, what | TAB_L);
    return luaL_len(L, arg);
}

static int sb_insert(lua_State *L)
{
    charger_t c = {L, 0};
    lua_Integer pos;
    lua_Integer e = getn(L, 1, TAB_RW);
    e = (lua_Integer)((lua_Unsigned)e + 1u);
    switch (lua_gettop(L)) {
    case 2:
        pos = e;
        break;
    case 3:
        pos = luaL_checkinteger(L, 2);
        luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2, "position out of bounds");
        for (lua_Integer i = e; i > pos; i--) {
            tick(&c);
            lua_geti(L, 1, i - 1);
            lua_seti(L, 1, i);
        }
        break;
    default:
        return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_seti(L, 1, pos);
    return 0;
}

static int sb_remove(lua_State *L)
{
    charger_t c = {L, 0};
    lua_Integer size = getn(L, 1, TAB_RW);
    lua_Integer pos = luaL_optinteger(L, 2, size);
    if (pos != size)
        luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2,
                      "position out of bounds");
    lua_geti(L, 1, pos);
    for (; pos < size; pos++) {
        tick(&c);
        lua_geti(L, 1, pos + 1);
        lua_seti(L, 1, pos);
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    return 1;
}

static int sb_move(lua_State *L)
{
    charger_t c = {L, 0};
    lua_Integer f = luaL_checkinteger(L, 2);
    lua_Integer e = luaL_checkinteger(L, 3);
    lua_Integer t = luaL_checkinteger(L, 4);
    int tt = !lua_isnoneornil(L, 5) ? 5 : 1;
    sandbox_charge(L, CALL_STEPS);
    checktab(L, 1, TAB_R);
    checktab(L, tt, TAB_W);
    if (e >= f) {
        luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
        lua_Integer n = e - f + 1;
        luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
        if (t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ))) {
            for (lua_Integer i = 0; i < n; i++) {
                tick(&c);
                lua_geti(L, 1, f + i);
                lua_seti(L, tt, t + i);
            }
        } else {
            for (lua_Integer i = n - 1; i >= 0; i--) {
                tick(&c);
                lua_geti(L, 1, f + i);
                lua_seti(L, tt, t + i);
            }
        }
    }
    lua_pushvalue(L, tt);
    return 1;
}

static void addfield(lua_State *L, luaL_Buffer *b, lua_Integer i)
{
    lua_geti(L, 1, i);
    if (!lua_isstring(L, -1))
        luaL_error(L, "invalid value (at index %I) in table for 'concat'", (LUAI_UACINT)i);
    luaL_addvalue(b);
}

static int sb_concat(lua_State *L)
{
    charger_t c = {L, 0};
    luaL_Buffer b;
    lua_Integer last = getn(L, 1, TAB_R);
    size_t lsep;
    const char *sep = luaL_optlstring(L, 2, "", &lsep);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    last = luaL_optinteger(L, 4, last);
    luaL_buffinit(L, &b);
    for (; i < last; i++) {
        tick(&c);
        addfield(L, &b, i);
        luaL_addlstring(&b, sep, lsep);
    }
    if (i == last)
        addfield(L, &b, i);
    luaL_pushresult(&b);
    return 1;
}

/* table.sort: the elements are copied into a plain table (charged), sorted there by Lua's
 * own sort, then written back (charged). Lua's sort reads the length and the elements
 * through metamethods that may be C functions and compares up to n log n times; on a plain
 * copy n is what memory holds, and the comparisons are charged before they start. */
static int sb_sort(lua_State *L)
{
    charger_t c = {L, 0};
    lua_Integer n = getn(L, 1, TAB_RW);
    if (n > 1) {
        luaL_argcheck(L, n < INT_MAX, 1, "array too big");
        if (!lua_isnoneornil(L, 2))
            luaL_checktype(L, 2, LUA_TFUNCTION);
        lua_settop(L, 2);
        lua_newtable(L);
        for (lua_Integer i = 1; i <= n; i++) {
            tick(&c);
            lua_geti(L, 1, i);
            lua_rawseti(L, 3, i);
        }
        uint64_t logn = 1;
        while (((lua_Integer)1 << logn) < n)
            logn++;
        sandbox_charge(L, (uint64_t)n * logn * ELEM_STEPS);
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_pushvalue(L, 3);
        lua_pushvalue(L, 2);
        lua_call(L, 2, 0);
        for (lua_Integer i = 1; i <= n; i++) {
            tick(&c);
            lua_rawgeti(L, 3, i);
            lua_seti(L, 1, i);
        }
    }
    return 0;
}

/* ---- xpcall, setmetatable, collectgarbage ---- */

static int msgh_guard(lua_State *L)
{
    /* Once the tool is stopped the error may come from inside the hook, where Lua runs the
     * handler with hooks off: the user's handler would run unseen. Pass the error on. */
    if (sandbox_stopped(sandbox_of(L)))
        return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int xpcall_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return lua_gettop(L);
}

static int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, msgh_guard, 1);
    lua_replace(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    /* xpcall is yieldable (a ctx door may wait inside it); the continuation keeps it so
     * through the wrapper. */
    lua_callk(L, n, LUA_MULTRET, 0, xpcall_k);
    return lua_gettop(L);
}

static int sb_setmetatable(lua_State *L)
{
    /* The GC runs finalizers with hooks disabled, so a __gc could spin past the CPU budget;
     * tools do not get finalizers (to-be-closed variables remain available). Lua registers
     * a finalizer only for a raw __gc present now, so a __gc added later never runs. */
    if (lua_istable(L, 2)) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc finalizers are not available to tools");
    }
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

static int sb_collectgarbage(lua_State *L)
{
    static const char *const ok[] = {"collect", "count", "step", "isrunning", NULL};
    const char *opt = luaL_optstring(L, 1, "collect");
    for (int i = 0; ok[i]; i++) {
        if (strcmp(opt, ok[i]) == 0) {
            /* One call walks the whole heap: charge it as the work it is. */
            if (i == 0 || i == 2)
                sandbox_charge(L, sandbox_mem(sandbox_of(L)) / 64);
            lua_pushvalue(L, lua_upvalueindex(1));
            lua_insert(L, 1);
            lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
            return lua_gettop(L);
        }
    }
    return luaL_error(L, "collectgarbage: option '%s' is not available to tools", opt);
}

/* ---- coroutines: pass preemptions up, never close after a stop ---- */

static int resume_k(lua_State *L, int status, lua_KContext again);

/* Stack: [co, orig-resume, co, args...] -> call, then resume_k. */
static int call_resume(lua_State *L, int nargs)
{
    lua_State *co = lua_tothread(L, 1);
    lua_State *prev = sandbox_running(L, co ? co : L);
    lua_callk(L, nargs + 1, LUA_MULTRET, 0, resume_k);
    sandbox_running(L, prev);
    return resume_k(L, LUA_OK, 0);
}

static int resume_again(lua_State *L)
{
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    return call_resume(L, 0);
}

static int resume_k(lua_State *L, int status, lua_KContext again)
{
    (void)status;
    if (again) {
        sandbox_running(L, L);
        return resume_again(L);
    }
    lua_State *co = lua_tothread(L, 1);
    if (co && lua_status(co) == LUA_YIELD && sandbox_preempt_pending(L) && lua_gettop(L) == 2 &&
        lua_toboolean(L, 2)) {
        /* The coroutine was preempted by the time slice: yield this thread too so the loop
         * gets its turn, then resume the coroutine where it stopped. */
        if (lua_isyieldable(L)) {
            lua_settop(L, 1);
            return lua_yieldk(L, 0, 1, resume_k);
        }
        sandbox_preempt_absorb(L);
        return resume_again(L);
    }
    return lua_gettop(L) - 1;
}

static int sb_resume(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 1, LUA_TTHREAD);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_rotate(L, 2, 2);
    return call_resume(L, n - 1);
}

static int sb_close(lua_State *L)
{
    /* After a stop the coroutine may have died inside the hook with hooks still off for
     * it; its __close handlers would run unseen. The tool is ending anyway. */
    sandbox_charge(L, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* coroutine.wrap's function: upvalues (co, sandboxed resume, close). */
static int wrap_k(lua_State *L, int status, lua_KContext base)
{
    (void)status;
    int first = (int)base + 1;
    if (!lua_toboolean(L, first)) {
        lua_State *co = lua_tothread(L, lua_upvalueindex(1));
        int st = lua_status(co);
        if (st != LUA_OK && st != LUA_YIELD) {
            /* As lcorolib: close its to-be-closed variables (guarded after a stop). */
            sandbox_charge(L, 0);
            lua_pushvalue(L, lua_upvalueindex(3));
            lua_pushvalue(L, lua_upvalueindex(1));
            lua_call(L, 1, 0);
        }
        if (lua_type(L, -1) == LUA_TSTRING) {
            luaL_where(L, 1);
            lua_insert(L, -2);
            lua_concat(L, 2);
        }
        return lua_error(L);
    }
    return lua_gettop(L) - first;
}

static int wrap_call(lua_State *L)
{
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_rotate(L, 1, 2);
    lua_callk(L, n + 1, LUA_MULTRET, 0, wrap_k);
    return wrap_k(L, LUA_OK, 0);
}

static int sb_wrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushcclosure(L, wrap_call, 3);
    return 1;
}

/* ---- installation ---- */

/* Replace t[name] (t at the top) by fn closing over the original value. */
static void wrap(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_getfield(L, -1, name);
    lua_pushcclosure(L, fn, 1);
    lua_setfield(L, -2, name);
}

void sandbox_lib_open(lua_State *L)
{
    wrap(L, "xpcall", sb_xpcall);
    wrap(L, "setmetatable", sb_setmetatable);
    wrap(L, "collectgarbage", sb_collectgarbage);

    lua_getfield(L, -1, LUA_STRLIBNAME);
    wrap(L, "rep", sb_rep);
    lua_pop(L, 1);

    lua_getfield(L, -1, LUA_TABLIBNAME);
    lua_pushcfunction(L, sb_insert);
    lua_setfield(L, -2, "insert");
    lua_pushcfunction(L, sb_remove);
    lua_setfield(L, -2, "remove");
    lua_pushcfunction(L, sb_move);
    lua_setfield(L, -2, "move");
    lua_pushcfunction(L, sb_concat);
    lua_setfield(L, -2, "concat");
    wrap(L, "sort", sb_sort);
    lua_pop(L, 1);

    lua_getfield(L, -1, LUA_COLIBNAME);
    wrap(L, "resume", sb_resume);
    wrap(L, "close", sb_close);
    /* wrap closes over the sandboxed resume and close. */
    lua_getfield(L, -1, "resume");
    lua_getfield(L, -2, "close");
    lua_pushcclosure(L, sb_wrap, 2);
    lua_setfield(L, -2, "wrap");
    lua_pop(L, 1);
}
