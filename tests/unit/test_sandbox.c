/*
 * Unit tests for sandbox: the Lua<->JSON rules, the sandbox, the caps, sandbox_load_table,
 * and the measured cost of one state (printed for docs/tools.md).
 */
#include "check.h"
#include "err.h"
#include "sandbox.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static sandbox_t *H;

/* Evaluate `return <expr>` and convert; returns rc, JSON text or error in buf. */
static int eval(const char *expr, int allow_fn, char *buf, size_t len)
{
    lua_State *L = sandbox_state(H);
    char code[2048], err[512];
    snprintf(code, sizeof code, "return %s", expr);
    sandbox_reset_budget(H, 0, NULL);
    if (luaL_loadstring(L, code) != LUA_OK) {
        snprintf(buf, len, "syntax: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return ERR_LUA;
    }
    int rc = sandbox_pcall(H, 0, 1, err, sizeof err);
    if (rc) {
        snprintf(buf, len, "%s", err);
        return rc;
    }
    json_object *j = NULL;
    rc = sandbox_to_json(L, -1, allow_fn, "v", &j, err, sizeof err);
    lua_pop(L, 1);
    if (rc) {
        snprintf(buf, len, "%s", err);
        return rc;
    }
    snprintf(buf, len, "%s", j ? json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN) : "null");
    json_object_put(j);
    return 0;
}

#define EXPECT_JSON(expr, want)                                                                \
    do {                                                                                       \
        char b_[1024];                                                                         \
        int rc_ = eval(expr, 0, b_, sizeof b_);                                                \
        CHECK_EQ_INT(rc_, 0);                                                                  \
        CHECK_EQ_STR(b_, want);                                                                \
    } while (0)

#define EXPECT_ERR(expr, rcwant, needle)                                                       \
    do {                                                                                       \
        char b_[1024];                                                                         \
        int rc_ = eval(expr, 0, b_, sizeof b_);                                                \
        CHECK_EQ_INT(rc_, rcwant);                                                             \
        if (!strstr(b_, needle))                                                               \
            fprintf(stderr, "  got: %s\n", b_);                                                \
        CHECK(strstr(b_, needle) != NULL);                                                     \
    } while (0)

static void test_to_json_rules(void)
{
    EXPECT_JSON("nil", "null");
    EXPECT_JSON("{1, 2, 3}", "[1,2,3]");
    EXPECT_JSON("{b = 1, a = {x = true}}", "{\"a\":{\"x\":true},\"b\":1}");
    EXPECT_JSON("{}", "{}");
    EXPECT_JSON("json.array()", "[]");
    EXPECT_JSON("json.array{}", "[]");
    EXPECT_JSON("json.object{}", "{}");
    EXPECT_JSON("{json.null, 2}", "[null,2]");
    EXPECT_JSON("{a = json.null}", "{\"a\":null}");
    EXPECT_JSON("3", "3");
    EXPECT_JSON("3.0", "3.0");
    EXPECT_JSON("0.1", "0.1");
    EXPECT_JSON("1e300", "1e+300");
    EXPECT_JSON("-0.5", "-0.5");
    EXPECT_JSON("math.maxinteger", "9223372036854775807");
    EXPECT_JSON("'caf\\u{E9} \\n \"q\"'", "\"caf\xc3\xa9 \\n \\\"q\\\"\"");
    EXPECT_JSON("json.object{[1] = 'a', [2] = 'b'}", "{\"1\":\"a\",\"2\":\"b\"}");
    EXPECT_ERR("0/0", ERR_INVAL, "v: NaN cannot become JSON");
    EXPECT_ERR("{x = 1/0}", ERR_INVAL, "v.x: inf cannot become JSON");
    EXPECT_ERR("{x = {-1/0}}", ERR_INVAL, "v.x[1]: -inf cannot become JSON");
    EXPECT_ERR("{1, 2, x = 3}", ERR_INVAL, "table mixes array items and string keys such as \"x\"");
    EXPECT_ERR("{[1] = 1, [3] = 3}", ERR_INVAL, "sparse array (highest index 3 but only 2 items)");
    EXPECT_ERR("{[true] = 1}", ERR_INVAL, "a key of type boolean cannot become JSON");
    EXPECT_ERR("{[1.5] = 1}", ERR_INVAL, "a key of type number (not a positive integer)");
    EXPECT_ERR("{f = print}", ERR_INVAL, "v.f: a function cannot become JSON");
    EXPECT_ERR("'\\xff'", ERR_INVAL, "v: string is not valid UTF-8 (byte 0)");
    EXPECT_ERR("(function() local t = {}; t[1] = t; return t end)()", ERR_INVAL,
               "v[1]: table contains itself");
    /* Deep nesting is refused before the C stack is at risk. */
    EXPECT_ERR("(function() local t = {}; local c = t; for i = 1, 200 do c.n = {}; c = c.n end "
               "return t end)()",
               ERR_INVAL, "nested deeper than 100 levels");
    /* A shared (not cyclic) subtable is fine. */
    EXPECT_JSON("(function() local s = {1}; return {a = s, b = s} end)()", "{\"a\":[1],\"b\":[1]}");
    char b[256];
    CHECK_EQ_INT(eval("{n = 1, run = print, list = {1, print}}", 1, b, sizeof b), ERR_INVAL);
    CHECK(strstr(b, "v.list[2]: a function cannot become JSON") != NULL);
    CHECK_EQ_INT(eval("{n = 1, run = print}", 1, b, sizeof b), 0);
    CHECK_EQ_STR(b, "{\"n\":1}");
}

static void test_json_lib(void)
{
    EXPECT_JSON("json.encode({a = {}, b = json.array{}, c = json.null})",
                "\"{\\\"a\\\":{},\\\"b\\\":[],\\\"c\\\":null}\"");
    EXPECT_JSON("json.decode('{\"x\":[],\"y\":{},\"z\":null,\"n\":2,\"f\":2.5}')",
                "{\"f\":2.5,\"n\":2,\"x\":[],\"y\":{},\"z\":null}");
    EXPECT_JSON("math.type(json.decode('2'))", "\"integer\"");
    EXPECT_JSON("math.type(json.decode('2.0'))", "\"float\"");
    EXPECT_JSON("json.decode('null') == json.null", "true");
    EXPECT_JSON("select(2, json.decode('[1,'))", "\"json.decode: invalid JSON at byte 3: unexpected end of input\"");
    EXPECT_JSON("select(2, json.decode('{} x'))", "\"json.decode: invalid JSON at byte 3: trailing text after the value\"");
    EXPECT_ERR("json.encode({0/0})", ERR_LUA, "json.encode: [1]: NaN cannot become JSON");
}

static void test_sandbox_globals(void)
{
    EXPECT_JSON("{io == nil, debug == nil, package == nil, require == nil, dofile == nil, "
                "loadfile == nil, os.execute == nil, os.exit == nil, os.getenv == nil, "
                "os.remove == nil, os.rename == nil, os.tmpname == nil, string.dump == nil}",
                "[true,true,true,true,true,true,true,true,true,true,true,true,true]");
    EXPECT_JSON("{type(os.time()), type(os.clock()), type(os.date('!%Y')), type(string.format), "
                "type(table.sort), type(math.floor), type(utf8.char), type(coroutine.wrap)}",
                "[\"number\",\"number\",\"string\",\"function\",\"function\",\"function\","
                "\"function\",\"function\"]");
    /* load: text only, and the chunk sees the sandbox. */
    EXPECT_JSON("load('return 1 + 1')()", "2");
    EXPECT_JSON("select(2, load('\\27Lua'))", "\"attempt to load a binary chunk (mode is 't')\"");
    EXPECT_JSON("select(2, load('\\27Lua', 'x', 'b'))",
                "\"attempt to load a binary chunk (mode is 't')\"");
    EXPECT_JSON("load('return io')() == nil", "true");
    EXPECT_ERR("setmetatable({}, {__gc = print})", ERR_LUA, "__gc finalizers are not available");
    EXPECT_ERR("collectgarbage('stop')", ERR_LUA, "option 'stop' is not available");
    EXPECT_JSON("type(collectgarbage('count'))", "\"number\"");
}

static void test_caps(void)
{
    sandbox_limits_t lim = {.mem_bytes = 4u << 20, .instructions = 5000000};
    sandbox_free(H);
    H = sandbox_new(&lim, NULL, NULL);
    EXPECT_ERR("(function() while true do end end)()", ERR_LIMIT,
               "CPU budget of 5000000 instructions exhausted");
    /* pcall cannot swallow the stop: it fires again right after. */
    EXPECT_ERR("(function() for i = 1, 1e9 do pcall(function() while true do end end) end end)()",
               ERR_LIMIT, "CPU budget");
    EXPECT_ERR("(function() local t = {} for i = 1, 1e9 do t[i] = i end end)()", ERR_LIMIT,
               "memory limit of 4194304 bytes (4.0 MiB) exceeded");
    EXPECT_ERR("('x'):rep(1e9)", ERR_LUA,
               "string.rep: result of 1000000000 bytes is over the memory limit of 4194304");
    EXPECT_ERR("string.rep('ab', 3e6, ',')", ERR_LUA, "string.rep: result of 8999999 bytes");
    /* After a cap fired, the same state still works once the budget is reset. */
    EXPECT_JSON("#('x'):rep(1000)", "1000");
    sandbox_free(H);
    H = sandbox_new(NULL, NULL, NULL);
    /* A deadline stops code too. */
    lua_State *L = sandbox_state(H);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    sandbox_reset_budget(H, now + 20000000ull, NULL);
    luaL_loadstring(L, "local x = 0 while true do x = x + 1 end");
    char err[256];
    int rc = sandbox_pcall(H, 0, 0, err, sizeof err);
    CHECK_EQ_INT(rc, ERR_TIMEOUT);
    CHECK(strstr(err, "timed out") != NULL);
    sandbox_free(H);
    H = sandbox_new(NULL, NULL, NULL);
}

static void test_errmsg_objects(void)
{
    EXPECT_ERR("error({code = 7})", ERR_LUA, "error object is a table: {\"code\":7}");
    EXPECT_ERR("error(12)", ERR_LUA, "error object is the number 12");
    EXPECT_ERR("error(true)", ERR_LUA, "error object is the boolean true");
    EXPECT_ERR("error()", ERR_LUA, "error called with nil");
    EXPECT_ERR("error('two\\nlines')", ERR_LUA, "two lines");
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_load_table(void)
{
    char path[128], err[512];
    snprintf(path, sizeof path, "/tmp/agentd_lh_%d.lua", (int)getpid());
    json_object *j = NULL;
    write_file(path, "return { name = 'a', limits = { max_steps = 3 }, tools = {'x', 'y'},\n"
                     "  hook = function() end }\n");
    CHECK_EQ_INT(sandbox_load_table(path, 1, &j, err, sizeof err), 0);
    CHECK_EQ_STR(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN),
                 "{\"limits\":{\"max_steps\":3},\"name\":\"a\",\"tools\":[\"x\",\"y\"]}");
    json_object_put(j);
    CHECK_EQ_INT(sandbox_load_table(path, 0, &j, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, path) && strstr(err, ": hook: a function cannot become JSON"));
    write_file(path, "return { model = { fallbacks = { 1, 0/0 } } }\n");
    CHECK_EQ_INT(sandbox_load_table(path, 0, &j, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, ": model.fallbacks[2]: NaN cannot become JSON") != NULL);
    write_file(path, "return 'x'\n");
    CHECK_EQ_INT(sandbox_load_table(path, 0, &j, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "must return a table (it returned string)") != NULL);
    write_file(path, "return {\n  a = \n");
    CHECK_EQ_INT(sandbox_load_table(path, 0, &j, err, sizeof err), ERR_LUA);
    CHECK(strncmp(err, path, strlen(path)) == 0 && strstr(err, ":3:") != NULL);
    write_file(path, "error('boom')\n");
    CHECK_EQ_INT(sandbox_load_table(path, 0, &j, err, sizeof err), ERR_LUA);
    CHECK(strstr(err, ":1: boom") != NULL);
    write_file(path, "local t = io.open('x')\n");
    CHECK_EQ_INT(sandbox_load_table(path, 0, &j, err, sizeof err), ERR_LUA);
    CHECK(strstr(err, "global 'io'") != NULL);
    write_file(path, "while true do end\n");
    CHECK_EQ_INT(sandbox_load_table(path, 0, &j, err, sizeof err), ERR_LIMIT);
    CHECK(strstr(err, path) && strstr(err, "CPU budget") != NULL);
    unlink(path);
    CHECK_EQ_INT(sandbox_load_table(path, 0, &j, err, sizeof err), ERR_IO);
    CHECK(strstr(err, "cannot open") != NULL);
}

/* The sandbox's step-counted string.find/match/gmatch/gsub must behave exactly like Lua's
 * own: compare both on fixed cases and on random subjects and patterns. */
static const char probe_src[] =
    "return function(s, p)\n"
    "  local r = {}\n"
    "  local function add(...) local t = table.pack(...)\n"
    "    for i = 1, t.n do r[#r + 1] = tostring(t[i]) end r[#r + 1] = '|' end\n"
    "  add(pcall(string.find, s, p))\n"
    "  add(pcall(string.find, s, p, 3))\n"
    "  add(pcall(string.find, s, p, -2, true))\n"
    "  add(pcall(string.match, s, p))\n"
    "  add(pcall(string.gsub, s, p, '<%0>'))\n"
    "  add(pcall(string.gsub, s, p, '%1', 2))\n"
    "  add(pcall(string.gsub, s, p, function(a, b) return b and a .. b or a:upper() end))\n"
    "  add(pcall(string.gsub, s, p, {a = 'A', b = false}))\n"
    "  add(pcall(function() local n = 0\n"
    "    for a, b in string.gmatch(s, p) do n = n + 1; add(a, b); if n > 20 then break end end\n"
    "    return n end))\n"
    "  return table.concat(r, ',')\n"
    "end\n";

static const char *probe(lua_State *L, int fn, const char *s, const char *p)
{
    lua_pushvalue(L, fn);
    lua_pushstring(L, s);
    lua_pushstring(L, p);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK)
        return lua_tostring(L, -1);
    return lua_tostring(L, -1);
}

static void test_patterns_match_lua(void)
{
    static const char *const fixed[][2] = {
        {"hello world", "o"},          {"hello world", "(o)(r)"},     {"  trim me  ", "^%s*(.-)%s*$"},
        {"key = value", "(%w+)%s*=%s*(%w+)"}, {"f(a(b)c)d", "%b()"},   {"THE (quick) fox", "%f[%a]%a+"},
        {"aaa", "a-"},                 {"aaa", "a*"},                 {"abc", "()b()"},
        {"abcabc", "(abc)%1"},         {"x=1, y=2", "(%a)=(%d)"},     {"[x]", "[%]x]"},
        {"a.b", "%."},                 {"a+b", "a+b"},                {"", "^$"},
        {"abc", "$"},                  {"abc", "^(a)"},               {"ab", "[^%a]"},
        {"a1b2", "%d?"},               {"hello", "(h)(e)(l)(l)(o)"},  {"abc", "%"},
        {"abc", "[a"},                 {"abc", "(()"},                {"abc", "%1"},
        {"abc", "%f"},                 {"abc", "%b"},                 {"a-b", "[a-]"},
        {"z", "[a-]"},                 {"caf\xc3\xa9", "[\x80-\xff]+"}, {"a\0b", "%z"},
    };
    lua_State *ref = luaL_newstate();
    luaL_openlibs(ref);
    CHECK_EQ_INT(luaL_dostring(ref, probe_src), 0);
    int rfn = lua_gettop(ref);
    lua_State *L = sandbox_state(H);
    sandbox_reset_budget(H, 0, NULL);
    CHECK_EQ_INT(luaL_dostring(L, probe_src), 0);
    int hfn = lua_gettop(L);
    int bad = 0, n = 0;
    printf("  sample: %s\n", probe(L, hfn, "key = value", "(%w+)%s*=%s*(%w+)"));
    lua_settop(L, hfn);
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++, n++) {
        const char *a = probe(ref, rfn, fixed[i][0], fixed[i][1]);
        const char *b = probe(L, hfn, fixed[i][0], fixed[i][1]);
        if (!a || !b || strcmp(a, b) != 0) {
            if (bad++ < 5)
                fprintf(stderr, "  s=%s p=%s\n  lua:  %s\n  host: %s\n", fixed[i][0],
                        fixed[i][1], a ? a : "(null)", b ? b : "(null)");
        }
        lua_settop(ref, rfn);
        lua_settop(L, hfn);
    }
    /* Random ones from pattern-shaped tokens. */
    static const char *const toks[] = {"a", "b", ".", "%a", "%d", "%s", "[ab]", "[^a]", "*",
                                       "+", "-", "?", "(", ")", "()", "%1", "^", "$", "%b()",
                                       "%f[%a]", "%", "[", "]", "%%", "x", "[%d-]"};
    static const char subj[] = "ab( )1x%-b]a";
    unsigned seed = 12345;
    for (int i = 0; i < 20000; i++, n++) {
        char s[16], p[64] = "";
        int sl = (int)((seed = seed * 1103515245 + 12345) >> 16) % 12;
        for (int k = 0; k < sl; k++)
            s[k] = subj[((seed = seed * 1103515245 + 12345) >> 16) % (sizeof subj - 1)];
        s[sl] = '\0';
        int pl = 1 + (int)((seed = seed * 1103515245 + 12345) >> 16) % 6;
        for (int k = 0; k < pl; k++)
            strcat(p, toks[((seed = seed * 1103515245 + 12345) >> 16) %
                           (sizeof toks / sizeof toks[0])]);
        const char *a = probe(ref, rfn, s, p);
        const char *b = probe(L, hfn, s, p);
        if (!a || !b || strcmp(a, b) != 0) {
            if (bad++ < 5)
                fprintf(stderr, "  s=%s p=%s\n  lua:  %s\n  host: %s\n", s, p, a ? a : "(null)",
                        b ? b : "(null)");
        }
        lua_settop(ref, rfn);
        lua_settop(L, hfn);
    }
    printf("  %d pattern cases compared with Lua's own string library, %d differ\n", n, bad);
    CHECK_EQ_INT(bad, 0);
    lua_settop(L, 0);
    lua_close(ref);
}

static void test_pattern_bomb(void)
{
    sandbox_limits_t lim = {.instructions = 20000000};
    sandbox_free(H);
    H = sandbox_new(&lim, NULL, NULL);
    EXPECT_ERR("string.find(('a'):rep(300), '.-.-.-.-b')", ERR_LIMIT,
               "CPU budget of 20000000 instructions exhausted");
    EXPECT_ERR("(function() for i = 1, 100 do pcall(string.gsub, ('a'):rep(300), '.-.-.-b', '') "
               "end end)()",
               ERR_LIMIT, "CPU budget");
    sandbox_free(H);
    H = sandbox_new(NULL, NULL, NULL);
}

static void test_state_cost(void)
{
    /* The figure docs/tools.md quotes: bytes of a fresh sandboxed state and time to make one. */
    struct timespec a, b;
    enum { N = 200 };
    clock_gettime(CLOCK_MONOTONIC, &a);
    size_t mem = 0;
    for (int i = 0; i < N; i++) {
        sandbox_t *h = sandbox_new(NULL, NULL, NULL);
        CHECK(h != NULL);
        mem = sandbox_mem(h);
        sandbox_free(h);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / N;
    printf("  one sandboxed Lua state: %zu bytes (%.1f KiB), created+closed in %.1f us\n", mem,
           (double)mem / 1024, us);
    CHECK(mem > 4096 && mem < 256 * 1024);
}

int main(void)
{
    H = sandbox_new(NULL, NULL, NULL);
    RUN(test_to_json_rules);
    RUN(test_json_lib);
    RUN(test_sandbox_globals);
    RUN(test_caps);
    RUN(test_errmsg_objects);
    RUN(test_load_table);
    RUN(test_patterns_match_lua);
    RUN(test_pattern_bomb);
    RUN(test_state_cost);
    sandbox_free(H);
    return check_report();
}
