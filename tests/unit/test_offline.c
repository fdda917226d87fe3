/*
 * Unit tests of the offline provider, driven through a loop the way model.c drives it.
 *
 * The tools are the shipped ones (the tools/ folder) run on the shipped data (agents/data) by a
 * small stand-in executor in plain Lua (mock ctx: data, kv, log, now, idempotency_key), so
 * the conversations here are the ones `agentd run agents/support.lua` has, without needing
 * the tool runtime. Run from the repository root (tests/run.sh does).
 */
#include "check.h"
#include "err.h"
#include "loop.h"
#include "offline/offline_args.h"
#include "offline/offline_summary.h"
#include "provider.h"
#include "rag/rag.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a stand-in tool executor ---- */

static const char *const tool_files[] = {"tools/lookup_order.lua", "tools/search_kb.lua",
                                         "tools/create_ticket.lua"};
#define NTOOLS 3

typedef struct exec {
    lua_State *L;
    int refs[NTOOLS];
    json_object *descs; /* [{"name","description","parameters"}] */
    int ran;            /* tool runs so far */
    int run_id;         /* part of ctx.idempotency_key, as a run id would be */
} exec_t;

static void push_json(lua_State *L, json_object *j)
{
    switch (json_object_get_type(j)) {
    case json_type_null: lua_pushnil(L); break;
    case json_type_boolean: lua_pushboolean(L, json_object_get_boolean(j)); break;
    case json_type_int: lua_pushinteger(L, json_object_get_int64(j)); break;
    case json_type_double: lua_pushnumber(L, json_object_get_double(j)); break;
    case json_type_string: lua_pushstring(L, json_object_get_string(j)); break;
    case json_type_array:
        lua_createtable(L, (int)json_object_array_length(j), 0);
        for (size_t i = 0; i < json_object_array_length(j); i++) {
            push_json(L, json_object_array_get_idx(j, i));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    case json_type_object:
        lua_newtable(L);
        json_object_object_foreach(j, k, v)
        {
            push_json(L, v);
            lua_setfield(L, -2, k);
        }
        break;
    }
}

static json_object *to_json(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: return json_object_new_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        return lua_isinteger(L, idx) ? json_object_new_int64(lua_tointeger(L, idx))
                                     : json_object_new_double(lua_tonumber(L, idx));
    case LUA_TSTRING: return json_object_new_string(lua_tostring(L, idx));
    case LUA_TTABLE: break;
    default: return NULL;
    }
    size_t n = lua_rawlen(L, idx);
    if (n > 0) {
        json_object *a = json_object_new_array();
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, (lua_Integer)i);
            json_object_array_add(a, to_json(L, -1));
            lua_pop(L, 1);
        }
        return a;
    }
    json_object *o = json_object_new_object();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) != LUA_TFUNCTION)
            json_object_object_add(o, lua_tostring(L, -2), to_json(L, -1));
        lua_pop(L, 1);
    }
    return o;
}

static int l_data(lua_State *L)
{
    char path[512];
    snprintf(path, sizeof path, "agents/data/%s", luaL_checkstring(L, 1));
    json_object *j = json_object_from_file(path);
    if (!j)
        return luaL_error(L, "ctx.data: cannot read %s", path);
    push_json(L, j);
    json_object_put(j);
    return 1;
}

/* ctx.kb.search over a real knowledge base: the shipped help articles indexed into a
 * temporary database once, as the support agent's kb_sources would. */
static rag_t *kb_rag;
static char kb_path[64];

static int l_kb_search(lua_State *L)
{
    const char *kb = luaL_checkstring(L, 1), *q = luaL_checkstring(L, 2);
    char err[512];
    if (!kb_rag) {
        snprintf(kb_path, sizeof kb_path, "/tmp/agentd-test-offline-kb-%d.db", (int)getpid());
        const char *src[1] = {"agents/data/help"};
        if (!(kb_rag = rag_open(kb_path, err, sizeof err)) ||
            rag_add(kb_rag, "help", src, 1, NULL, NULL, err, sizeof err))
            return luaL_error(L, "ctx.kb: %s", err);
    }
    rag_query_t rq = {.text = q, .mode = RAG_HYBRID, .k = 5};
    lua_getfield(L, 3, "k");
    if (lua_isinteger(L, -1))
        rq.k = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    rag_hits_t h;
    if (rag_search(kb_rag, kb, &rq, &h, err, sizeof err)) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    json_object *j = rag_hits_json(&h);
    rag_hits_clear(&h);
    push_json(L, j);
    json_object_put(j);
    return 1;
}

static void kb_cleanup(void)
{
    rag_close(kb_rag);
    if (kb_rag) {
        char p[80];
        unlink(kb_path);
        snprintf(p, sizeof p, "%s-wal", kb_path);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", kb_path);
        unlink(p);
    }
}

static const char *const ctx_lua =
    "local data, kb_search = ...\n"
    "local store = {}\n"
    "return function(key)\n"
    "  return { data = data, idempotency_key = key, now = function() return 1795000000.5 end,\n"
    "    log = function() end, kb = { search = kb_search },\n"
    "    kv = { get = function(k) return store[k] end, put = function(k, v) store[k] = v end,\n"
    "           list = function() local t = {} for k in pairs(store) do t[#t+1] = k end\n"
    "                  return t end } }\n"
    "end\n";

static int exec_init(exec_t *x)
{
    memset(x, 0, sizeof *x);
    x->L = luaL_newstate();
    luaL_openlibs(x->L);
    x->descs = json_object_new_array();
    for (int i = 0; i < NTOOLS; i++) {
        if (luaL_dofile(x->L, tool_files[i])) {
            fprintf(stderr, "  %s: %s\n", tool_files[i], lua_tostring(x->L, -1));
            return -1;
        }
        json_object *t = to_json(x->L, -1), *d = json_object_new_object();
        json_object_object_add(d, "name", json_object_get(json_object_object_get(t, "name")));
        json_object_object_add(d, "description",
                               json_object_get(json_object_object_get(t, "description")));
        json_object_object_add(d, "parameters",
                               json_object_get(json_object_object_get(t, "parameters")));
        json_object_array_add(x->descs, d);
        json_object_put(t);
        x->refs[i] = luaL_ref(x->L, LUA_REGISTRYINDEX);
    }
    if (luaL_loadstring(x->L, ctx_lua))
        return -1;
    lua_pushcfunction(x->L, l_data);
    lua_pushcfunction(x->L, l_kb_search);
    lua_call(x->L, 2, 1);
    lua_setglobal(x->L, "make_ctx");
    return 0;
}

static void exec_free(exec_t *x)
{
    lua_close(x->L);
    json_object_put(x->descs);
}

/* Run one call; returns the neutral tool message. */
static json_object *exec_call(exec_t *x, json_object *call)
{
    const char *name = json_object_get_string(json_object_object_get(call, "name"));
    const char *id = json_object_get_string(json_object_object_get(call, "id"));
    json_object *args =
        json_tokener_parse(json_object_get_string(json_object_object_get(call, "arguments")));
    json_object *msg = json_object_new_object();
    json_object_object_add(msg, "role", json_object_new_string("tool"));
    json_object_object_add(msg, "tool_call_id", json_object_new_string(id));
    json_object_object_add(msg, "name", json_object_new_string(name));
    int i = 0;
    while (i < NTOOLS && strcmp(json_object_get_string(json_object_object_get(
                                    json_object_array_get_idx(x->descs, (size_t)i), "name")),
                                name))
        i++;
    const char *content;
    int is_error = 1;
    x->ran++;
    if (i == NTOOLS || !args) {
        content = "unknown tool or arguments";
        lua_pushnil(x->L);
    } else {
        lua_rawgeti(x->L, LUA_REGISTRYINDEX, x->refs[i]);
        lua_getfield(x->L, -1, "run");
        lua_remove(x->L, -2);
        push_json(x->L, args);
        lua_getglobal(x->L, "make_ctx");
        lua_pushfstring(x->L, "run-%d:%s", x->run_id, id); /* one kv for all tests */
        lua_call(x->L, 1, 1);
        if (lua_pcall(x->L, 2, 1, 0) == LUA_OK) {
            json_object *r = to_json(x->L, -1);
            content = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN);
            lua_pushstring(x->L, content); /* keep the text alive past r */
            lua_replace(x->L, -2);
            content = lua_tostring(x->L, -1);
            json_object_put(r);
            is_error = 0;
        } else {
            content = lua_tostring(x->L, -1);
        }
    }
    json_object_object_add(msg, "content", json_object_new_string(content));
    json_object_object_add(msg, "is_error", json_object_new_boolean(is_error));
    lua_pop(x->L, 1);
    json_object_put(args);
    return msg;
}

/* ---- driving the provider through a loop ---- */

typedef struct reply {
    int fired;
    int err;
    json_object *message;
    const char *finish;
    model_usage_t usage;
    json_object *decision;
} reply_t;

static void on_done(void *ud, provider_result_t *res)
{
    reply_t *r = ud;
    r->fired++;
    r->err = res->err;
    r->message = res->message; /* take it */
    res->message = NULL;
    r->finish = res->finish;
    r->usage = res->usage;
    r->decision = res->response_body;
    res->response_body = NULL;
}

static reply_t ask_model(json_object *messages, json_object *tools, json_object *schema)
{
    reply_t r = {0};
    loop_t *lp = loop_new();
    provider_env_t env = {.lp = lp};
    model_req_t req = {.messages = messages,
                       .tools = tools,
                       .output_schema = schema,
                       .temperature = -1,
                       .budget_tokens = -1,
                       .budget_cost_usd = -1};
    void *h = NULL;
    int rc = provider_offline.start(&env, "offline", &req, on_done, &r, &h);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(r.fired, 0); /* never inline */
    loop_run(lp);
    CHECK_EQ_INT(r.fired, 1);
    loop_free(lp);
    return r;
}

static json_object *new_msg(const char *role, const char *content)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", json_object_new_string(content));
    return m;
}

typedef struct run {
    int id;                /* 0: a fresh one */
    json_object *messages; /* whole conversation */
    char *answer;          /* final content */
    int model_turns;
    int tool_calls;
    int repeated; /* (name, args) pairs issued more than once */
    int ids_ok;   /* call ids are call_1, call_2, ... in order */
    int64_t in_tokens, out_tokens;
} run_t;

/* Run the agent loop: model, tools, model, ... until a final answer (at most 12 turns). */
static void run_turn(exec_t *x, run_t *rn, const char *question, json_object *schema)
{
    static int next_id = 1;
    if (!rn->id)
        rn->id = next_id++;
    x->run_id = rn->id;
    if (!rn->messages) {
        rn->messages = json_object_new_array();
        json_object_array_add(rn->messages, new_msg("system", "You are Acme's support agent."));
        rn->ids_ok = 1;
    }
    json_object_array_add(rn->messages, new_msg("user", question));
    free(rn->answer);
    rn->answer = NULL;
    for (int turn = 0; turn < 12; turn++) {
        reply_t r = ask_model(rn->messages, x->descs, schema);
        rn->model_turns++;
        rn->in_tokens += r.usage.input_tokens;
        rn->out_tokens += r.usage.output_tokens;
        if (r.decision) /* the model's reasoning, as the trace shows it */
            printf("  decision: %s\n",
                   json_object_to_json_string_ext(r.decision, JSON_C_TO_STRING_PLAIN));
        json_object_put(r.decision);
        CHECK_EQ_INT(r.err, 0);
        if (!r.message)
            return;
        json_object_array_add(rn->messages, r.message);
        json_object *tc = json_object_object_get(r.message, "tool_calls");
        if (!tc || json_object_array_length(tc) == 0) {
            CHECK_EQ_STR(r.finish, "stop");
            rn->answer =
                strdup(json_object_get_string(json_object_object_get(r.message, "content")));
            return;
        }
        CHECK_EQ_STR(r.finish, "tool_calls");
        for (size_t i = 0; i < json_object_array_length(tc); i++) {
            json_object *call = json_object_array_get_idx(tc, i);
            char want[32];
            snprintf(want, sizeof want, "call_%d", rn->tool_calls + 1);
            if (strcmp(json_object_get_string(json_object_object_get(call, "id")), want))
                rn->ids_ok = 0;
            rn->tool_calls++;
            json_object_array_add(rn->messages, exec_call(x, call));
        }
    }
    CHECK(!"the offline model did not finish within 12 turns");
}

/* Every call of the conversation as "name args", and whether any repeats. */
static int count_calls(json_object *messages, const char *name, const char *args_substr,
                       int *repeated)
{
    int n = 0;
    json_object *seen = json_object_new_object();
    *repeated = 0;
    for (size_t i = 0; i < json_object_array_length(messages); i++) {
        json_object *tc =
            json_object_object_get(json_object_array_get_idx(messages, i), "tool_calls");
        for (size_t k = 0; tc && k < json_object_array_length(tc); k++) {
            json_object *c = json_object_array_get_idx(tc, k);
            const char *cn = json_object_get_string(json_object_object_get(c, "name"));
            const char *ca = json_object_get_string(json_object_object_get(c, "arguments"));
            char key[1024];
            snprintf(key, sizeof key, "%s %s", cn, ca);
            if (json_object_object_get_ex(seen, key, NULL))
                (*repeated)++;
            json_object_object_add(seen, key, NULL);
            if (!strcmp(cn, name) && (!args_substr || strstr(ca, args_substr)))
                n++;
        }
    }
    json_object_put(seen);
    return n;
}

static void run_free(run_t *rn)
{
    json_object_put(rn->messages);
    free(rn->answer);
}

static exec_t X;

static void print_answer(const char *q, const run_t *rn)
{
    printf("  Q: %s\n  A: %s\n", q, rn->answer ? rn->answer : "(none)");
}

/* ---- tests ---- */

static void test_demo_question(void)
{
    const char *q = "Where is my order 1042? It hasn't arrived.";
    run_t rn = {0};
    int rep;
    run_turn(&X, &rn, q, NULL);
    print_answer(q, &rn);
    CHECK(rn.answer != NULL);
    CHECK_EQ_INT(count_calls(rn.messages, "lookup_order", "\"order_id\":\"1042\"", &rep), 1);
    CHECK_EQ_INT(count_calls(rn.messages, "search_kb", NULL, &rep), 1);
    CHECK_EQ_INT(count_calls(rn.messages, "create_ticket", NULL, &rep), 0);
    CHECK_EQ_INT(rep, 0);
    CHECK(rn.ids_ok);
    /* Both calls go out in one parallel turn; the second turn answers. */
    CHECK_EQ_INT(rn.model_turns, 2);
    CHECK(rn.answer && strstr(rn.answer, "in transit"));
    CHECK(rn.answer && strstr(rn.answer, "UPS"));
    CHECK(rn.answer && strstr(rn.answer, "2026-12-01"));
    CHECK(rn.answer && strstr(rn.answer, "1Z999AA10123451042"));
    CHECK(rn.answer && strstr(rn.answer, "hasn't arrived yet")); /* the KB article's title */
    printf("  usage: %lld input, %lld output tokens over %d model calls\n", (long long)rn.in_tokens,
           (long long)rn.out_tokens, rn.model_turns);
    CHECK(rn.in_tokens > 100 && rn.out_tokens > 20);
    run_free(&rn);
}

static void test_selection(void)
{
    static const struct {
        const char *q;
        int lookup, kb, ticket;
        const char *must; /* in the answer */
    } cases[] = {
        {"What is your return policy?", 0, 1, 0, "30 days"},
        {"How long do refunds take to show up on my card?", 0, 1, 0, "business days"},
        {"The blender from order 1039 arrived broken. Please open a ticket.", 1, 0, 1, "T-"},
        {"Can you check orders 1043 and 1048 for me?", 2, 0, 0, "DHL"},
        {"Hello!", 0, 0, 0, "I can:"},
        {"Where is my order? It hasn't arrived.", 0, 1, 0, "order ID"},
        {"Where is order 9999?", 1, 0, 0, "no order with number 9999"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_t rn = {0};
        int rep;
        run_turn(&X, &rn, cases[i].q, NULL);
        print_answer(cases[i].q, &rn);
        int lookup = count_calls(rn.messages, "lookup_order", NULL, &rep);
        int kb = count_calls(rn.messages, "search_kb", NULL, &rep);
        int ticket = count_calls(rn.messages, "create_ticket", NULL, &rep);
        if (lookup != cases[i].lookup || kb != cases[i].kb || ticket != cases[i].ticket || rep ||
            !rn.answer || !strstr(rn.answer, cases[i].must)) {
            fprintf(stderr, "  case %zu \"%s\": lookup %d kb %d ticket %d repeated %d\n", i,
                    cases[i].q, lookup, kb, ticket, rep);
            CHECK(!"tool selection or answer differs");
        }
        run_free(&rn);
    }
}

static json_object *fill(const char *schema, const char *text, const char *history,
                         const char **missing)
{
    json_object *params = json_tokener_parse(schema), *calls = NULL;
    offline_src_t src = {text, history ? history : "", NULL, 0};
    int rc = offline_args_fill(params, &src, &calls, missing);
    json_object *out = rc == 0 ? calls : NULL;
    if (rc && rc != ERR_NOTFOUND)
        CHECK(!"unexpected error");
    if (rc == ERR_NOTFOUND) /* *missing points into params */
        *missing = *missing && !strcmp(*missing, "order_id") ? "order_id" : "?";
    json_object_put(params);
    return out;
}

static const char *args_text(json_object *calls, size_t i)
{
    return json_object_to_json_string_ext(json_object_array_get_idx(calls, i),
                                          JSON_C_TO_STRING_PLAIN);
}

static void test_argument_extraction(void)
{
    const char *missing;
    const char *ticket =
        "{\"type\":\"object\",\"required\":[\"subject\",\"description\"],"
        "\"properties\":{\"subject\":{\"type\":\"string\",\"maxLength\":30},"
        "\"description\":{\"type\":\"string\"},"
        "\"priority\":{\"type\":\"string\",\"enum\":[\"low\",\"normal\",\"high\",\"urgent\"],"
        "\"default\":\"normal\"},"
        "\"order_id\":{\"type\":\"string\",\"pattern\":\"^[0-9]{4}$\"},"
        "\"email\":{\"type\":\"string\",\"format\":\"email\"},"
        "\"qty\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10},"
        "\"tracking\":{\"type\":\"string\",\"examples\":[\"1Z999AA10123456784\"]}}}";
    json_object *c = fill(ticket,
                          "This is urgent: my kettle (order #1044) leaks, qty 2 broken. "
                          "Reply to ava@example.com, tracking 1Z999AA10123451044.",
                          NULL, &missing);
    CHECK(c && json_object_array_length(c) == 1);
    if (c)
        CHECK_EQ_STR(args_text(c, 0),
                     "{\"description\":\"This is urgent: my kettle (order #1044) leaks, qty 2 "
                     "broken. Reply to ava@example.com, tracking 1Z999AA10123451044.\","
                     "\"email\":\"ava@example.com\",\"order_id\":\"1044\",\"priority\":\"urgent\","
                     "\"qty\":2,\"subject\":\"This is urgent: my kettle\","
                     "\"tracking\":\"1Z999AA10123451044\"}");
    json_object_put(c);

    /* No priority word: optional enum is left to the tool's default; a bare number far from
     * "qty" does not become the quantity; a required pattern with no match is missing. */
    c = fill(ticket, "I bought 3 lamps", NULL, &missing);
    CHECK(c && !strstr(args_text(c, 0), "priority") && !strstr(args_text(c, 0), "qty"));
    json_object_put(c);
    c = fill("{\"type\":\"object\",\"required\":[\"order_id\"],\"properties\":{\"order_id\":"
             "{\"type\":\"string\",\"pattern\":\"^[0-9]{4}$\"}}}",
             "where is my parcel?", NULL, &missing);
    CHECK(c == NULL);
    CHECK_EQ_STR(missing, "order_id");

    /* Several ids: one call each (parallel), at most OFFLINE_MAX_FANOUT. */
    c = fill("{\"type\":\"object\",\"required\":[\"order_id\"],\"properties\":{\"order_id\":"
             "{\"type\":\"string\",\"pattern\":\"^[0-9]{4}$\"}}}",
             "orders 1043, 1048 and 1043 again", NULL, &missing);
    CHECK(c && json_object_array_length(c) == 2);
    if (c && json_object_array_length(c) == 2) {
        CHECK_EQ_STR(args_text(c, 0), "{\"order_id\":\"1043\"}");
        CHECK_EQ_STR(args_text(c, 1), "{\"order_id\":\"1048\"}");
    }
    json_object_put(c);

    /* Integer ids within bounds; out-of-range numbers are not candidates. */
    c = fill("{\"type\":\"object\",\"required\":[\"id\"],\"properties\":{\"id\":"
             "{\"type\":\"integer\",\"minimum\":1000,\"maximum\":9999}}}",
             "I have 2 problems with 12345 and 1042", NULL, &missing);
    CHECK(c && !strcmp(args_text(c, 0), "{\"id\":1042}"));
    json_object_put(c);

    /* Earlier turns fill what the latest request leaves out. */
    c = fill("{\"type\":\"object\",\"required\":[\"order_id\"],\"properties\":{\"order_id\":"
             "{\"type\":\"string\",\"pattern\":\"^[0-9]{4}$\"}}}",
             "and when will it arrive?", "Where is order 1050?", &missing);
    CHECK(c && !strcmp(args_text(c, 0), "{\"order_id\":\"1050\"}"));
    json_object_put(c);

    /* Query-like strings get the content words; enums match multi-word values. */
    c = fill("{\"type\":\"object\",\"required\":[\"query\",\"kind\"],\"properties\":{"
             "\"query\":{\"type\":\"string\"},\"kind\":{\"type\":\"string\","
             "\"enum\":[\"not_arrived\",\"damaged\",\"other\"]}}}",
             "My package hasn't arrived and it is late", NULL, &missing);
    CHECK(c && !strcmp(args_text(c, 0),
                       "{\"kind\":\"not_arrived\",\"query\":\"package arrived late\"}"));
    json_object_put(c);
}

/* Several required parameters of one kind, filled from one request by the words before
 * each value, not fanned out into one call per value. */
static void test_multi_param(void)
{
    const char *missing;
    const char *flights =
        "{\"type\":\"object\",\"required\":[\"origin\",\"destination\",\"date\"],"
        "\"properties\":{\"origin\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}$\"},"
        "\"destination\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}$\"},"
        "\"date\":{\"type\":\"string\",\"format\":\"date\"}}}";
    json_object *c = fill(flights, "Find me a flight from OSL to LIS on 2026-12-20", NULL,
                          &missing);
    CHECK(c && json_object_array_length(c) == 1);
    if (c)
        CHECK_EQ_STR(args_text(c, 0),
                     "{\"date\":\"2026-12-20\",\"destination\":\"LIS\",\"origin\":\"OSL\"}");
    json_object_put(c);
    /* The cue words decide, not the order of the text. */
    c = fill(flights, "I need to get to LIS from OSL, 2026-12-20", NULL, &missing);
    CHECK(c && !strcmp(args_text(c, 0),
                       "{\"date\":\"2026-12-20\",\"destination\":\"LIS\",\"origin\":\"OSL\"}"));
    json_object_put(c);
    /* No cue: the schema's order. */
    c = fill(flights, "OSL LIS 2026-12-20", NULL, &missing);
    CHECK(c && !strcmp(args_text(c, 0),
                       "{\"date\":\"2026-12-20\",\"destination\":\"LIS\",\"origin\":\"OSL\"}"));
    json_object_put(c);
    /* One code after "to" is the destination; the origin is missing and asked for. */
    c = fill(flights, "a flight to LIS on 2026-12-20", NULL, &missing);
    CHECK(c == NULL);
    json_object_put(c);
    const char *hotel =
        "{\"type\":\"object\",\"required\":[\"city\",\"check_in\",\"check_out\"],"
        "\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":40},"
        "\"check_in\":{\"type\":\"string\",\"format\":\"date\"},"
        "\"check_out\":{\"type\":\"string\",\"format\":\"date\"}}}";
    c = fill(hotel, "A room in Lisbon: check in 2026-12-20, check out 2026-12-24", NULL,
             &missing);
    CHECK(c && json_object_array_length(c) == 1);
    if (c) {
        json_object *a = json_object_array_get_idx(c, 0);
        CHECK_EQ_STR(json_object_get_string(json_object_object_get(a, "check_in")), "2026-12-20");
        CHECK_EQ_STR(json_object_get_string(json_object_object_get(a, "check_out")),
                     "2026-12-24");
    }
    json_object_put(c);
    c = fill(hotel, "check out 2026-12-24 and check in 2026-12-20 please, Lisbon", NULL,
             &missing);
    if (c) {
        json_object *a = json_object_array_get_idx(c, 0);
        CHECK_EQ_STR(json_object_get_string(json_object_object_get(a, "check_in")), "2026-12-20");
        CHECK_EQ_STR(json_object_get_string(json_object_object_get(a, "check_out")),
                     "2026-12-24");
    } else {
        CHECK(!"hotel dates in reverse order not filled");
    }
    json_object_put(c);
    /* One required id among optional ones still fans out, as before. */
    c = fill("{\"type\":\"object\",\"required\":[\"order_id\"],\"properties\":{\"order_id\":"
             "{\"type\":\"string\",\"pattern\":\"^[0-9]{4}$\"}}}",
             "orders 1043 and 1048", NULL, &missing);
    CHECK(c && json_object_array_length(c) == 2);
    json_object_put(c);
}

/* The extractive summary: bullets from user lines and first sentences of answers; tool
 * traffic dropped; under a small budget identifiers and the user's words go first. */
static void test_summary(void)
{
    const char *t = "Summary so far:\n- user: My order number is 1042.\n"
                    "Conversation:\nuser: Thanks, noted.\ncall lookup_order: {\"order_id\":\"1042\"}\n"
                    "tool lookup_order: {\"status\":\"in_transit\"}\n"
                    "assistant: It is in transit. More text follows here.\nuser: ok\n";
    char *s = offline_summary(t, 4096);
    CHECK(s && !strcmp(s, "- user: My order number is 1042.\n- user: Thanks, noted.\n"
                          "- assistant: It is in transit.\n- user: ok"));
    free(s);
    s = offline_summary(t, 40);
    CHECK(s && !strcmp(s, "- user: My order number is 1042."));
    free(s);
    s = offline_summary("", 100);
    CHECK(s && !*s);
    free(s);
}

/* After a guardrail rejected an answer, the same question is answered again from the same
 * observations, without the fields the reason names. */
static void test_guardrail_feedback(void)
{
    json_object *msgs = json_object_new_array(), *call = new_msg("assistant", ""),
                *tcs = json_object_new_array(), *tc = json_object_new_object();
    json_object_array_add(msgs, new_msg("system", "s"));
    json_object_array_add(msgs, new_msg("user", "Where is my order 1042?"));
    json_object_object_add(tc, "id", json_object_new_string("call_1"));
    json_object_object_add(tc, "name", json_object_new_string("lookup_order"));
    json_object_object_add(tc, "arguments", json_object_new_string("{\"order_id\":\"1042\"}"));
    json_object_array_add(tcs, tc);
    json_object_object_add(call, "tool_calls", tcs);
    json_object_array_add(msgs, call);
    json_object *res = new_msg("tool", "{\"status\":\"in_transit\",\"customer_email\":\"ava@example.com\"}");
    json_object_object_add(res, "tool_call_id", json_object_new_string("call_1"));
    json_object_array_add(msgs, res);
    reply_t a = ask_model(msgs, X.descs, NULL);
    const char *t = json_object_get_string(json_object_object_get(a.message, "content"));
    CHECK(t && strstr(t, "ava@example.com") && strstr(t, "in transit"));
    json_object_array_add(msgs, json_object_get(a.message));
    json_object *fb = new_msg("user", "[guardrail] Your answer was rejected: no email addresses.");
    json_object_object_add(fb, "agentd_guardrail", json_object_new_string("on_output"));
    json_object_object_add(fb, "agentd_reason",
                           json_object_new_string("answers must not contain email addresses"));
    json_object_array_add(msgs, fb);
    reply_t b = ask_model(msgs, X.descs, NULL);
    t = json_object_get_string(json_object_object_get(b.message, "content"));
    CHECK(t && !strstr(t, "ava@example.com") && strstr(t, "in transit"));
    CHECK(!json_object_object_get_ex(b.message, "tool_calls", NULL)); /* no new tool round */
    json_object_put(a.message);
    json_object_put(a.decision);
    json_object_put(b.message);
    json_object_put(b.decision);
    json_object_put(msgs);
}

static void test_output_schema(void)
{
    const char *schema_text =
        "{\"type\":\"object\",\"required\":[\"answer\",\"order_status\",\"order_id\",\"eta\","
        "\"needs_human\",\"confidence\",\"sources\"],\"additionalProperties\":false,"
        "\"properties\":{\"answer\":{\"type\":\"string\",\"maxLength\":400},"
        "\"order_status\":{\"type\":\"string\",\"enum\":[\"processing\",\"shipped\","
        "\"in_transit\",\"delivered\",\"unknown\"]},"
        "\"order_id\":{\"type\":\"string\",\"pattern\":\"^[0-9]{4}$\"},"
        "\"eta\":{\"type\":[\"string\",\"null\"]},"
        "\"needs_human\":{\"type\":\"boolean\"},"
        "\"confidence\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"
        "\"sources\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}";
    json_object *schema = json_tokener_parse(schema_text);
    run_t rn = {0};
    run_turn(&X, &rn, "Where is my order 1042? It hasn't arrived.", schema);
    print_answer("(structured) Where is my order 1042?", &rn);
    json_object *ans = rn.answer ? json_tokener_parse(rn.answer) : NULL;
    CHECK(ans != NULL);
    json_object *v;
    CHECK(json_object_object_get_ex(ans, "answer", &v) &&
          json_object_is_type(v, json_type_string) && json_object_get_string_len(v) <= 400 &&
          json_object_get_string_len(v) > 20);
    CHECK(json_object_object_get_ex(ans, "order_status", &v) &&
          !strcmp(json_object_get_string(v), "in_transit"));
    CHECK(json_object_object_get_ex(ans, "order_id", &v) &&
          !strcmp(json_object_get_string(v), "1042"));
    CHECK(json_object_object_get_ex(ans, "eta", &v) &&
          !strcmp(json_object_get_string(v), "2026-12-01"));
    CHECK(json_object_object_get_ex(ans, "needs_human", &v) &&
          json_object_is_type(v, json_type_boolean));
    CHECK(json_object_object_get_ex(ans, "confidence", &v) &&
          (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)));
    CHECK(json_object_object_get_ex(ans, "sources", &v) && json_object_is_type(v, json_type_array));
    CHECK_EQ_INT(json_object_object_length(ans), 7);
    /* Every property satisfies its own schema (the offline model's own checker). */
    json_object *props = json_object_object_get(schema, "properties");
    json_object_object_foreach(ans, k, val)
    {
        json_object *ps = json_object_object_get(props, k);
        CHECK(ps && offline_value_fits(ps, val));
    }
    json_object_put(ans);
    run_free(&rn);

    /* Nothing observed (no tools matched): still a valid object, enum from the allowed set. */
    rn = (run_t){0};
    run_turn(&X, &rn, "Hello!", schema);
    ans = rn.answer ? json_tokener_parse(rn.answer) : NULL;
    CHECK(ans && json_object_object_length(ans) == 7);
    CHECK(ans && offline_value_fits(json_object_object_get(props, "order_status"),
                                    json_object_object_get(ans, "order_status")));
    json_object_put(ans);
    run_free(&rn);
    json_object_put(schema);
}

/* Same tools with every object's keys inserted in reverse order (what a Lua table may give). */
static json_object *reversed(json_object *j)
{
    if (json_object_is_type(j, json_type_array)) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(j); i++)
            json_object_array_add(a, reversed(json_object_array_get_idx(j, i)));
        return a;
    }
    if (!json_object_is_type(j, json_type_object))
        return json_object_get(j);
    const char *keys[64];
    size_t n = 0;
    json_object_object_foreach(j, k, v)
    {
        (void)v;
        if (n < 64)
            keys[n++] = k;
    }
    json_object *o = json_object_new_object();
    while (n-- > 0)
        json_object_object_add(o, keys[n], reversed(json_object_object_get(j, keys[n])));
    return o;
}

static void test_determinism(void)
{
    const char *q = "My blender from order 1039 arrived broken, it's urgent. Open a ticket please.";
    run_t a = {.id = 1000}, b = {.id = 1000}; /* b's ticket call is a retry of a's */
    run_turn(&X, &a, q, NULL);
    json_object *saved = X.descs;
    X.descs = reversed(saved);
    run_turn(&X, &b, q, NULL);
    json_object_put(X.descs);
    X.descs = saved;
    print_answer(q, &a);
    CHECK(a.answer && b.answer && !strcmp(a.answer, b.answer));
    const char *ta = json_object_to_json_string_ext(a.messages, JSON_C_TO_STRING_PLAIN);
    char *copy = strdup(ta);
    CHECK_EQ_STR(json_object_to_json_string_ext(b.messages, JSON_C_TO_STRING_PLAIN), copy);
    CHECK_EQ_INT(a.in_tokens, b.in_tokens);
    CHECK_EQ_INT(a.out_tokens, b.out_tokens);
    int rep;
    CHECK_EQ_INT(count_calls(a.messages, "create_ticket", "\"priority\":\"urgent\"", &rep), 1);
    CHECK_EQ_INT(count_calls(a.messages, "create_ticket", "\"order_id\":\"1039\"", &rep), 1);
    free(copy);
    run_free(&a);
    run_free(&b);
}

static void test_follow_up_turn(void)
{
    run_t rn = {0};
    int rep;
    run_turn(&X, &rn, "Where is my order 1045?", NULL);
    CHECK(rn.answer && strstr(rn.answer, "XPO Freight"));
    /* The next turn asks for a ticket: the order id comes from the earlier turn and the
     * customer's email from the earlier lookup's result. */
    run_turn(&X, &rn, "That is too slow. Please open a ticket, it's urgent.", NULL);
    print_answer("(follow-up) Please open a ticket, it's urgent.", &rn);
    CHECK_EQ_INT(count_calls(rn.messages, "create_ticket", "\"order_id\":\"1045\"", &rep), 1);
    CHECK_EQ_INT(count_calls(rn.messages, "create_ticket", "lucas.martin@example.com", &rep), 1);
    CHECK_EQ_INT(count_calls(rn.messages, "lookup_order", NULL, &rep), 1);
    CHECK_EQ_INT(rep, 0);
    /* A third turn repeating the first question reuses the observation instead of calling. */
    int before = rn.tool_calls;
    run_turn(&X, &rn, "Where is my order 1045?", NULL);
    CHECK_EQ_INT(rn.tool_calls, before);
    CHECK(rn.answer && strstr(rn.answer, "XPO Freight"));
    run_free(&rn);
}

/* A tool that fails every time: the model stops after a bounded number of rounds and never
 * repeats a call. */
static void test_bounded_and_no_repeat(void)
{
    json_object *msgs = json_object_new_array();
    json_object_array_add(msgs, new_msg("user", "Check orders 1041, 1042 and 1043 and search "
                                                "the knowledge base for refunds"));
    int turns = 0, calls = 0;
    for (; turns < 20; turns++) {
        reply_t r = ask_model(msgs, X.descs, NULL);
        json_object_put(r.decision);
        if (!r.message)
            break;
        json_object_array_add(msgs, r.message);
        json_object *tc = json_object_object_get(r.message, "tool_calls");
        if (!tc)
            break;
        for (size_t i = 0; i < json_object_array_length(tc); i++) {
            json_object *m = new_msg("tool", "{\"error\":\"service unavailable\"}");
            json_object_object_add(
                m, "tool_call_id",
                json_object_get(json_object_object_get(json_object_array_get_idx(tc, i), "id")));
            json_object_object_add(m, "is_error", json_object_new_boolean(1));
            json_object_array_add(msgs, m);
            calls++;
        }
    }
    int rep;
    CHECK(turns <= 4);
    CHECK_EQ_INT(calls, 4);
    count_calls(msgs, "lookup_order", NULL, &rep);
    CHECK_EQ_INT(rep, 0);
    const char *last = json_object_get_string(json_object_object_get(
        json_object_array_get_idx(msgs, json_object_array_length(msgs) - 1), "content"));
    CHECK(last && strstr(last, "service unavailable"));
    json_object_put(msgs);
}

/* Conversations a real model (earlier in a fallback chain) or a hand-edited resume may leave
 * behind: malformed arguments, orphan tool messages, content parts, odd schemas. The model
 * must still answer, deterministically, without crashing. */
static void test_odd_input(void)
{
    const char *convo =
        "[{\"role\":\"system\",\"content\":null},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Where is order 1042?\"}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"x1\","
        "\"name\":\"lookup_order\",\"arguments\":\"{not json\"}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"x1\",\"content\":\"/order_id: required\","
        "\"is_error\":true},"
        "{\"role\":\"tool\",\"tool_call_id\":\"nobody\",\"content\":\"[1,2,3]\"},"
        "{\"role\":\"critic\",\"content\":\"ignored\"},{\"content\":\"no role\"}]";
    const char *tools =
        "[{\"name\":\"lookup_order\",\"description\":\"Look up an order by number\","
        "\"parameters\":{\"type\":\"object\",\"required\":[\"order_id\"],\"properties\":"
        "{\"order_id\":{\"type\":[\"string\",\"null\"],\"pattern\":\"^[0-9]{4}$\"}}}},"
        "{\"name\":\"weird\",\"description\":\"order things with a broken pattern\","
        "\"parameters\":{\"type\":\"object\",\"required\":[\"id\",\"missing_prop\"],"
        "\"properties\":{\"id\":{\"type\":\"string\",\"pattern\":\"([\"}}}},"
        "{\"name\":\"no_params\",\"description\":\"order summary\"},"
        "{\"description\":\"nameless\"},"
        "{\"name\":\"array_params\",\"parameters\":[1,2]}]";
    json_object *msgs = json_tokener_parse(convo), *tl = json_tokener_parse(tools);
    CHECK(msgs && tl);
    reply_t a = ask_model(msgs, tl, NULL), b = ask_model(msgs, tl, NULL);
    CHECK_EQ_INT(a.err, 0);
    CHECK(a.message != NULL);
    const char *ta = json_object_to_json_string_ext(a.message, JSON_C_TO_STRING_PLAIN);
    char *copy = strdup(ta);
    CHECK_EQ_STR(json_object_to_json_string_ext(b.message, JSON_C_TO_STRING_PLAIN), copy);
    /* The earlier call's arguments were not JSON, so {"order_id":"1042"} is a new call. */
    CHECK(strstr(copy, "\\\"order_id\\\":\\\"1042\\\"") != NULL);
    printf("  odd input reply: %s\n", copy);
    free(copy);
    json_object_put(a.message);
    json_object_put(b.message);
    json_object_put(a.decision);
    json_object_put(b.decision);

    /* An output schema that is not an object schema still gets a value of its type. */
    json_object *schema = json_tokener_parse("{\"type\":\"integer\",\"minimum\":3}");
    json_object *one = json_object_new_array();
    json_object_array_add(one, new_msg("user", "hi"));
    reply_t c = ask_model(one, NULL, schema);
    CHECK_EQ_STR(json_object_get_string(json_object_object_get(c.message, "content")), "3");
    json_object_put(c.message);
    json_object_put(c.decision);
    json_object_put(one);
    json_object_put(schema);
    json_object_put(msgs);
    json_object_put(tl);
}

static void test_cancel_and_bad_input(void)
{
    loop_t *lp = loop_new();
    provider_env_t env = {.lp = lp};
    reply_t r = {0};
    json_object *msgs = json_object_new_array();
    json_object_array_add(msgs, new_msg("user", "Where is my order 1042?"));
    model_req_t req = {.messages = msgs, .tools = X.descs};
    void *h = NULL;
    CHECK_EQ_INT(provider_offline.start(&env, "offline", &req, on_done, &r, &h), 0);
    provider_offline.cancel(h);
    loop_run(lp);
    CHECK_EQ_INT(r.fired, 0);

    /* Messages that are not an array: an error delivered through done, not a crash. */
    json_object *bad = json_object_new_object();
    req.messages = bad;
    CHECK_EQ_INT(provider_offline.start(&env, "offline", &req, on_done, &r, &h), 0);
    loop_run(lp);
    CHECK_EQ_INT(r.fired, 1);
    CHECK_EQ_INT(r.err, ERR_INVAL);
    CHECK(r.message == NULL);
    json_object_put(r.decision);
    json_object_put(bad);
    json_object_put(msgs);
    loop_free(lp);
}

static void test_usage_counts(void)
{
    json_object *msgs = json_object_new_array();
    json_object_array_add(msgs, new_msg("user", "Hello!"));
    reply_t r = ask_model(msgs, NULL, NULL);
    size_t in = strlen(json_object_to_json_string_ext(msgs, JSON_C_TO_STRING_PLAIN));
    size_t out = (size_t)json_object_get_string_len(json_object_object_get(r.message, "content"));
    CHECK_EQ_INT(r.usage.input_tokens, (int64_t)((in + 3) / 4));
    CHECK_EQ_INT(r.usage.output_tokens, (int64_t)((out + 3) / 4));
    json_object_put(r.message);
    json_object_put(r.decision);
    json_object_put(msgs);
}

/* The reply is computed in start(); it must stay cheap next to any real model call. */
static void test_speed(void)
{
    json_object *msgs = json_object_new_array();
    json_object_array_add(msgs, new_msg("user", "Where is my order 1042? It hasn't arrived."));
    uint64_t t0 = loop_mono_ns();
    int n = 200;
    for (int i = 0; i < n; i++) {
        reply_t r = ask_model(msgs, X.descs, NULL);
        json_object_put(r.message);
        json_object_put(r.decision);
    }
    double per_ms = (double)(loop_mono_ns() - t0) / 1e6 / n;
    printf("  %.3f ms per offline model call (tool-choice turn, incl. loop setup)\n", per_ms);
    CHECK(per_ms < 50);
    json_object_put(msgs);
}

int main(void)
{
    if (exec_init(&X)) {
        fprintf(stderr, "cannot load the shipped tools (run from the repository root)\n");
        return 1;
    }
    RUN(test_demo_question);
    RUN(test_selection);
    RUN(test_argument_extraction);
    RUN(test_multi_param);
    RUN(test_summary);
    RUN(test_guardrail_feedback);
    RUN(test_output_schema);
    RUN(test_determinism);
    RUN(test_follow_up_turn);
    RUN(test_bounded_and_no_repeat);
    RUN(test_odd_input);
    RUN(test_cancel_and_bad_input);
    RUN(test_usage_counts);
    RUN(test_speed);
    exec_free(&X);
    kb_cleanup();
    return check_report();
}
