/*
 * guard: see guard.h.
 */
#include "guard.h"

#include "err.h"
#include "loop.h"
#include "sandbox.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

/* A hook decides from a few kilobytes of JSON: 16 MiB and 20 million instructions (tens of
 * milliseconds) are far more than one needs, and small enough not to stall the loop. */
#define GUARD_MEM ((size_t)16 << 20)
#define GUARD_INSTR ((uint64_t)20000000)

static const char *const hook_names[] = {"on_input", "on_tool_call", "on_output"};

const char *guard_verdict_name(guard_verdict_t v)
{
    return v == GUARD_DENY ? "deny" : v == GUARD_ASK ? "ask" : "allow";
}

/* A fresh sandbox with the table the agent file returns on top. */
static sandbox_t *load_agent(const char *path, char *errbuf, size_t errlen)
{
    sandbox_limits_t lim = {.mem_bytes = GUARD_MEM, .instructions = GUARD_INSTR};
    sandbox_t *h = sandbox_new(&lim, NULL, NULL);
    char msg[512];
    if (!h) {
        err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    sandbox_reset_budget(h, 0, NULL);
    int rc = sandbox_loadfile(h, path, errbuf, errlen);
    if (!rc && (rc = sandbox_pcall(h, 0, 1, msg, sizeof msg))) {
        int named = !strncmp(msg, path, strlen(path)); /* Lua's "path:12: ..." */
        err_set(errbuf, errlen, rc, "%s%s%s", named ? "" : path, named ? "" : ": ", msg);
    }
    if (!rc && !lua_istable(sandbox_state(h), -1))
        rc = err_set(errbuf, errlen, ERR_INVAL, "%s: must return a table", path);
    if (rc) {
        sandbox_free(h);
        return NULL;
    }
    return h;
}

/* Functions anywhere but guardrails.on_* are an error (a typo such as `run = function` in an
 * agent file must fail loudly, not be dropped). */
static int scan_table(lua_State *L, int idx, const char *where, int depth, unsigned *hooks,
                      const char *path, char *errbuf, size_t errlen)
{
    if (depth > 16)
        return 0;
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        char field[256];
        if (lua_type(L, -2) == LUA_TSTRING)
            snprintf(field, sizeof field, "%s%s%s", where, *where ? "." : "", lua_tostring(L, -2));
        else if (lua_type(L, -2) == LUA_TNUMBER)
            snprintf(field, sizeof field, "%s[%lld]", where, (long long)lua_tointeger(L, -2));
        else
            snprintf(field, sizeof field, "%s[?]", where);
        if (lua_type(L, -1) == LUA_TFUNCTION) {
            unsigned bit = 0;
            for (unsigned i = 0; i < 3; i++)
                if (depth == 1 && !strcmp(where, "guardrails") &&
                    lua_type(L, -2) == LUA_TSTRING && !strcmp(lua_tostring(L, -2), hook_names[i]))
                    bit = 1u << i;
            if (!bit) {
                lua_pop(L, 2);
                return err_set(errbuf, errlen, ERR_INVAL,
                               "%s: %s: a function is only allowed as a guardrails hook "
                               "(guardrails.on_input, on_tool_call, on_output)", path, field);
            }
            *hooks |= bit;
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            int rc = scan_table(L, -1, field, depth + 1, hooks, path, errbuf, errlen);
            if (rc) {
                lua_pop(L, 2);
                return rc;
            }
        }
        lua_pop(L, 1);
    }
    return 0;
}

int guard_scan(const char *path, unsigned *hooks, char *errbuf, size_t errlen)
{
    sandbox_t *h = load_agent(path, errbuf, errlen);
    if (!h)
        return ERR_INVAL;
    unsigned found = 0;
    int rc = scan_table(sandbox_state(h), -1, "", 0, &found, path, errbuf, errlen);
    sandbox_free(h);
    if (!rc)
        *hooks = found;
    return rc;
}

static void fail_closed(guard_decision_t *d, const char *hook, const char *why)
{
    d->verdict = GUARD_DENY;
    d->failed = 1;
    snprintf(d->reason, sizeof d->reason, "guardrail %s failed (so it denies): %.400s", hook,
             why);
}

/* The hook's return values, at the top of L: verdict, reason. */
static void read_verdict(lua_State *L, const char *hook, guard_decision_t *d)
{
    int vt = lua_type(L, -2);
    if (lua_type(L, -1) == LUA_TSTRING)
        snprintf(d->reason, sizeof d->reason, "%s", lua_tostring(L, -1));
    else if (lua_type(L, -1) != LUA_TNIL) {
        fail_closed(d, hook, "its second value (the reason) must be a string");
        return;
    }
    if (vt == LUA_TNIL || (vt == LUA_TBOOLEAN && lua_toboolean(L, -2))) {
        d->verdict = GUARD_ALLOW;
        return;
    }
    if (vt == LUA_TBOOLEAN) {
        d->verdict = GUARD_DENY;
        return;
    }
    const char *v = vt == LUA_TSTRING ? lua_tostring(L, -2) : "";
    if (!strcmp(v, "allow"))
        d->verdict = GUARD_ALLOW;
    else if (!strcmp(v, "deny") || (!strcmp(v, "reject") && !strcmp(hook, "on_output")))
        d->verdict = GUARD_DENY;
    else if (!strcmp(v, "ask") && !strcmp(hook, "on_tool_call"))
        d->verdict = GUARD_ASK;
    else {
        char why[200];
        snprintf(why, sizeof why, "it returned %s%s%s; expected %s", vt == LUA_TSTRING ? "\"" : "",
                 vt == LUA_TSTRING ? v : lua_typename(L, vt), vt == LUA_TSTRING ? "\"" : "",
                 !strcmp(hook, "on_tool_call") ? "\"allow\", \"deny\" or \"ask\" (and a reason)"
                 : !strcmp(hook, "on_output")  ? "\"allow\" or \"reject\" (and a reason)"
                                               : "\"allow\" or \"deny\" (and a reason)");
        fail_closed(d, hook, why);
    }
}

/* Runs in protected mode: pushes the hook's arguments and calls it. */
static int call_hook(lua_State *L)
{
    json_object *arg = lua_touserdata(L, 1), *ctx = lua_touserdata(L, 2);
    const char *hook = lua_tostring(L, 3);
    lua_settop(L, 4); /* 4: the agent's table */
    lua_getfield(L, 4, "guardrails");
    if (!lua_istable(L, -1))
        return luaL_error(L, "the agent file has no guardrails table");
    lua_getfield(L, -1, hook);
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "guardrails.%s is not a function", hook);
    sandbox_push_json(L, arg);
    sandbox_push_json(L, ctx);
    lua_call(L, 2, 2);
    return 2;
}

int guard_run(const char *path, const char *hook, json_object *arg, json_object *ctx,
              guard_decision_t *d)
{
    uint64_t t0 = loop_mono_ns();
    char msg[512];
    memset(d, 0, sizeof *d);
    sandbox_t *h = load_agent(path, msg, sizeof msg);
    if (!h) {
        fail_closed(d, hook, msg);
        return 0;
    }
    lua_State *L = sandbox_state(h);
    /* The agent's table is below; call_hook gets it as its 4th argument. */
    lua_pushcfunction(L, call_hook);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, arg);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, ctx);
    lua_insert(L, -2);
    lua_pushstring(L, hook);
    lua_insert(L, -2);
    sandbox_reset_budget(h, 0, NULL);
    int rc = sandbox_pcall(h, 4, 2, msg, sizeof msg);
    if (rc == ERR_NOMEM) {
        sandbox_free(h);
        return ERR_NOMEM;
    }
    if (rc)
        fail_closed(d, hook, msg);
    else
        read_verdict(L, hook, d);
    sandbox_free(h);
    d->ms = (double)(loop_mono_ns() - t0) / 1e6;
    return 0;
}
