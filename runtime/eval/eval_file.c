/*
 * eval_file: load an eval file (docs/eval.md). The file runs in a sandbox that stays open
 * (custom assertion functions live in it) after a prelude that defines the assertion
 * constructors (contains, tool_called, llm_rubric, ...). Each case becomes one eval_case_t
 * per variant; cases may also come from a JSONL file (cases_file) beside the Lua config.
 */
#include "eval_int.h"

#include "err.h"
#include "jx.h"
#include "schema/schema.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char prelude[] =
    "local function A(kind, t) t.kind = kind; return t end\n"
    "function contains(v) return A('contains', {value = v}) end\n"
    "function not_contains(v) return A('not_contains', {value = v}) end\n"
    "function icontains(v) return A('contains', {value = v, ignore_case = true}) end\n"
    "function regex(p) return A('regex', {pattern = p}) end\n"
    "function equals(v) return A('equals', {value = v}) end\n"
    "function json_schema(s) return A('json_schema', {schema = s}) end\n"
    "function tool_called(n, args) return A('tool_called', {name = n, args = args}) end\n"
    "function tool_not_called(n) return A('tool_not_called', {name = n}) end\n"
    "function tool_order(names) return A('tool_order', {names = names}) end\n"
    "function max_steps(n) return A('max_steps', {value = n}) end\n"
    "function max_cost(usd) return A('max_cost', {value = usd}) end\n"
    "function max_latency_ms(ms) return A('max_latency_ms', {value = ms}) end\n"
    "function final_state(s) return A('final_state', {value = s}) end\n"
    "function similar(text, threshold)\n"
    "  if type(text) == 'number' then text, threshold = nil, text end\n"
    "  return A('similar', {value = text, threshold = threshold or 0.6}) end\n"
    "function llm_rubric(r) return A('llm_rubric', {rubric = r}) end\n";

static const char *const kinds[] = {
    "contains",       "not_contains",    "regex",      "equals",     "json_schema",
    "tool_called",    "tool_not_called", "tool_order", "max_steps",  "max_cost",
    "max_latency_ms", "final_state",     "similar",    "llm_rubric", NULL};

static char *dupn(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void case_clear(eval_case_t *c)
{
    free(c->id);
    free(c->base);
    free(c->family);
    free(c->input);
    free(c->expected);
    json_object_put(c->vars);
    for (size_t i = 0; i < c->nasserts; i++)
        json_object_put(c->asserts[i].spec);
    free(c->asserts);
}

void eval_free(eval_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->ncases; i++)
        case_clear(&e->cases[i]);
    free(e->cases);
    sandbox_free(e->sb);
    json_object_put(e->gate);
    free(e->path);
    free(e->dir);
    free(e->name);
    free(e->agent_path);
    free(e->judge);
    free(e->model);
    free(e);
}

const char *eval_name(const eval_t *e)
{
    return e->name;
}

const char *eval_agent_path(const eval_t *e)
{
    return e->agent_path;
}

size_t eval_case_count(const eval_t *e)
{
    return e->ncases;
}

json_object *eval_gate_conf(const eval_t *e)
{
    return e->gate;
}

static char *resolve(const eval_t *e, const char *p)
{
    if (p[0] == '/')
        return strdup(p);
    size_t n = strlen(e->dir) + strlen(p) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", e->dir, p);
    return s;
}

/* Check one assertion's JSON form: a known kind with the fields it needs. */
static int check_assert(json_object *a, const char *where, char *errbuf, size_t errlen)
{
    json_object *k, *v;
    if (!json_object_is_type(a, json_type_object) || !json_object_object_get_ex(a, "kind", &k) ||
        !json_object_is_type(k, json_type_string))
        return err_set(errbuf, errlen, ERR_INVAL,
                       "%s: an assertion is a table made by contains(...), tool_called(...), "
                       "... or a function (output, run) -> pass, score, reason",
                       where);
    const char *kind = json_object_get_string(k);
    size_t i = 0;
    while (kinds[i] && strcmp(kinds[i], kind))
        i++;
    if (!kinds[i])
        return err_set(errbuf, errlen, ERR_INVAL, "%s: unknown assertion kind \"%s\"", where, kind);
    static const struct {
        const char *kind, *field;
        json_type type;
    } need[] = {
        {"contains", "value", json_type_string},       {"not_contains", "value", json_type_string},
        {"regex", "pattern", json_type_string},        {"equals", "value", json_type_string},
        {"json_schema", "schema", json_type_object},   {"tool_called", "name", json_type_string},
        {"tool_not_called", "name", json_type_string}, {"tool_order", "names", json_type_array},
        {"max_steps", "value", json_type_int},         {"max_cost", "value", json_type_double},
        {"max_latency_ms", "value", json_type_double}, {"final_state", "value", json_type_string},
        {"llm_rubric", "rubric", json_type_string},
    };
    for (size_t j = 0; j < sizeof need / sizeof need[0]; j++) {
        if (strcmp(need[j].kind, kind))
            continue;
        int ok = json_object_object_get_ex(a, need[j].field, &v) && v;
        if (ok && need[j].type == json_type_double)
            ok = json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int);
        else if (ok)
            ok = json_object_is_type(v, need[j].type);
        if (!ok)
            return err_set(errbuf, errlen, ERR_INVAL, "%s: %s needs %s (%s)", where, kind,
                           need[j].field, json_type_to_name(need[j].type));
    }
    if (!strcmp(kind, "regex")) {
        char rerr[256];
        int pass;
        double sc;
        json_object *probe = json_object_new_object();
        int rc = eval_check(a, probe, NULL, &pass, &sc, rerr, sizeof rerr);
        json_object_put(probe);
        if (rc)
            return err_set(errbuf, errlen, ERR_INVAL, "%s: %s", where, rerr);
    }
    if (!strcmp(kind, "json_schema")) {
        char serr[300];
        schema_t *s = schema_compile(json_object_object_get(a, "schema"), NULL, serr, sizeof serr);
        if (!s)
            return err_set(errbuf, errlen, ERR_INVAL, "%s: json_schema: %s", where, serr);
        schema_free(s);
    }
    return 0;
}

/* The case's asserts: Lua list at index idx (may be nil), or JSON array ja. */
static int load_asserts(eval_t *e, eval_case_t *c, lua_State *L, int idx, json_object *ja,
                        const char *where, char *errbuf, size_t errlen)
{
    size_t n = L && lua_istable(L, idx) ? lua_rawlen(L, idx)
               : ja                     ? json_object_array_length(ja)
                                        : 0;
    c->asserts = calloc(n ? n : 1, sizeof *c->asserts);
    if (!c->asserts)
        return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        eval_assert_t *a = &c->asserts[c->nasserts];
        char w[300];
        snprintf(w, sizeof w, "%s.assert[%zu]", where, i + 1);
        a->fn_ref = EVAL_NOREF;
        if (L && lua_istable(L, idx)) {
            lua_rawgeti(L, idx, (lua_Integer)(i + 1));
            if (lua_isfunction(L, -1)) {
                a->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
                a->spec = json_object_new_object();
                json_object_object_add(a->spec, "kind", json_object_new_string("lua"));
                json_object_object_add(a->spec, "name", json_object_new_string(w));
                c->nasserts++;
                continue;
            }
            int rc = sandbox_to_json(L, -1, 0, w, &a->spec, errbuf, errlen);
            lua_pop(L, 1);
            if (rc)
                return rc;
        } else {
            a->spec = json_object_get(json_object_array_get_idx(ja, i));
        }
        c->nasserts++;
        if (check_assert(a->spec, w, errbuf, errlen))
            return ERR_INVAL;
    }
    (void)e;
    return 0;
}

static int grow(eval_t *e)
{
    if (e->ncases % 32)
        return 0;
    eval_case_t *n = realloc(e->cases, (e->ncases + 32) * sizeof *n);
    if (!n)
        return ERR_NOMEM;
    e->cases = n;
    return 0;
}

/* The copy of base for one variant (input changed, asserts shared by reference). */
static int add_variant(eval_t *e, size_t base_i, const char *suffix, const char *family,
                       char *input)
{
    if (!input || grow(e)) {
        free(input);
        return ERR_NOMEM;
    }
    eval_case_t *b = &e->cases[base_i], *c = &e->cases[e->ncases];
    memset(c, 0, sizeof *c);
    size_t n = strlen(b->base) + strlen(suffix) + 2;
    c->id = malloc(n);
    if (c->id)
        snprintf(c->id, n, "%s~%s", b->base, suffix);
    c->base = dupn(b->base);
    c->family = dupn(family);
    c->input = input;
    c->expected = dupn(b->expected);
    c->vars = json_object_get(b->vars);
    c->asserts = calloc(b->nasserts ? b->nasserts : 1, sizeof *c->asserts);
    e->ncases++;
    if (!c->id || !c->base || !c->family || !c->asserts || (b->expected && !c->expected))
        return ERR_NOMEM;
    for (size_t i = 0; i < b->nasserts; i++)
        c->asserts[i] = (eval_assert_t){json_object_get(b->asserts[i].spec), b->asserts[i].fn_ref};
    c->nasserts = b->nasserts;
    return 0;
}

/* Expand the variants of case base_i: a JSON array of kinds ("typos", "casing",
 * "whitespace") and an array of paraphrases. */
static int add_variants(eval_t *e, size_t base_i, json_object *kinds_arr, json_object *para,
                        const char *where, char *errbuf, size_t errlen)
{
    for (size_t i = 0; kinds_arr && i < json_object_array_length(kinds_arr); i++) {
        const char *k = json_object_get_string(json_object_array_get_idx(kinds_arr, i));
        if (!k || (strcmp(k, "typos") && strcmp(k, "casing") && strcmp(k, "whitespace")))
            return err_set(errbuf, errlen, ERR_INVAL,
                           "%s.variants[%zu]: \"%s\" is not a variant (typos, casing, "
                           "whitespace, or paraphrases = {...})",
                           where, i + 1, k ? k : "?");
        if (add_variant(e, base_i, k, k, eval_variant(e->cases[base_i].input, k)))
            return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; para && i < json_object_array_length(para); i++) {
        json_object *p = json_object_array_get_idx(para, i);
        if (!json_object_is_type(p, json_type_string) || !*json_object_get_string(p))
            return err_set(errbuf, errlen, ERR_INVAL,
                           "%s.variants.paraphrases[%zu]: must be a non-empty string", where,
                           i + 1);
        char suf[32];
        snprintf(suf, sizeof suf, "p%zu", i + 1);
        if (add_variant(e, base_i, suf, "paraphrase", strdup(json_object_get_string(p))))
            return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
    }
    return 0;
}

/* One case from its JSON form; from a Lua file, its assert list is at stack index idx of L
 * (functions allowed), else in the JSON. */
static int add_case(eval_t *e, json_object *jc, lua_State *L, int idx, const char *where,
                    char *errbuf, size_t errlen)
{
    json_object *v;
    if (!json_object_is_type(jc, json_type_object))
        return err_set(errbuf, errlen, ERR_INVAL, "%s: a case is a table with input, assert, ...",
                       where);
    const char *input =
        json_object_object_get_ex(jc, "input", &v) && json_object_is_type(v, json_type_string)
            ? json_object_get_string(v)
            : NULL;
    if (!input || !*input)
        return err_set(errbuf, errlen, ERR_INVAL, "%s.input: a non-empty string is required",
                       where);
    if (grow(e))
        return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
    size_t bi = e->ncases;
    eval_case_t *c = &e->cases[e->ncases++];
    memset(c, 0, sizeof *c);
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "case-%zu", bi + 1);
    const char *id =
        json_object_object_get_ex(jc, "id", &v) && v ? json_object_get_string(v) : idbuf;
    for (size_t i = 0; i < bi; i++)
        if (!strcmp(e->cases[i].id, id))
            return err_set(errbuf, errlen, ERR_INVAL, "%s.id: \"%s\" is used by another case",
                           where, id);
    if (strchr(id, '~'))
        return err_set(errbuf, errlen, ERR_INVAL, "%s.id: \"~\" is kept for variants", where);
    c->id = strdup(id);
    c->base = strdup(id);
    c->family = strdup("original");
    c->input = strdup(input);
    if (json_object_object_get_ex(jc, "expected", &v) && v) {
        if (!json_object_is_type(v, json_type_string))
            return err_set(errbuf, errlen, ERR_INVAL, "%s.expected: must be a string", where);
        c->expected = strdup(json_object_get_string(v));
    }
    if (json_object_object_get_ex(jc, "vars", &v) && v) {
        if (!json_object_is_type(v, json_type_object))
            return err_set(errbuf, errlen, ERR_INVAL, "%s.vars: must be a table of values", where);
        c->vars = json_object_get(v);
    }
    if (!c->id || !c->base || !c->family || !c->input)
        return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
    json_object *ja = NULL;
    if (json_object_object_get_ex(jc, "assert", &ja) && ja && !L &&
        !json_object_is_type(ja, json_type_array))
        return err_set(errbuf, errlen, ERR_INVAL, "%s.assert: must be a list of assertions", where);
    int rc = load_asserts(e, c, L, idx, ja, where, errbuf, errlen);
    if (rc)
        return rc;
    if (!c->nasserts && !c->expected)
        return err_set(errbuf, errlen, ERR_INVAL,
                       "%s: give assert = {...} or expected (else nothing is checked)", where);
    if (!c->nasserts) { /* expected alone: the answer must be similar to it */
        c->asserts[0].spec = json_object_new_object();
        json_object_object_add(c->asserts[0].spec, "kind", json_object_new_string("similar"));
        json_object_object_add(c->asserts[0].spec, "threshold", jx_new_num(0.6));
        c->asserts[0].fn_ref = EVAL_NOREF;
        c->nasserts = 1;
    }
    json_object *vars = NULL, *para = NULL, *kinds_arr = NULL;
    if (json_object_object_get_ex(jc, "variants", &vars) && vars) {
        if (json_object_is_type(vars, json_type_array)) {
            kinds_arr = vars;
        } else if (json_object_is_type(vars, json_type_object)) {
            /* {1: "typos", paraphrases = {...}} arrives as an object with string keys "1".. */
            kinds_arr = json_object_new_array();
            json_object_object_foreach(vars, k, val)
            {
                if (!strcmp(k, "paraphrases"))
                    para = val;
                else
                    json_object_array_add(kinds_arr, json_object_get(val));
            }
            rc = add_variants(e, bi, kinds_arr, para, where, errbuf, errlen);
            json_object_put(kinds_arr);
            return rc;
        } else {
            return err_set(errbuf, errlen, ERR_INVAL,
                           "%s.variants: a list like {\"typos\", \"casing\", paraphrases = {...}}",
                           where);
        }
    }
    /* JSONL cases give paraphrases beside the kinds: "paraphrases": ["...", ...] */
    json_object *jp = NULL;
    if (json_object_object_get_ex(jc, "paraphrases", &jp) && jp &&
        !json_object_is_type(jp, json_type_array))
        return err_set(errbuf, errlen, ERR_INVAL, "%s.paraphrases: a list of strings", where);
    return add_variants(e, bi, kinds_arr, jp, where, errbuf, errlen);
}

static int load_jsonl(eval_t *e, const char *path, char *errbuf, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(errbuf, errlen, ERR_IO, "%s: cannot open the cases file", path);
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int rc = 0;
    while (!rc && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0)
            continue;
        json_object *o = NULL;
        char perr[200], where[1100];
        snprintf(where, sizeof where, "%s:%zu", path, lineno);
        if (schema_parse_json(line, (size_t)n, &o, perr, sizeof perr))
            rc = err_set(errbuf, errlen, ERR_INVAL, "%s: %s", where, perr);
        else
            rc = add_case(e, o, NULL, 0, where, errbuf, errlen);
        json_object_put(o);
    }
    free(line);
    fclose(f);
    return rc;
}

static int get_str(lua_State *L, int t, const char *key, int required, char **out, const char *path,
                   char *errbuf, size_t errlen)
{
    lua_getfield(L, t, key);
    int ty = lua_type(L, -1);
    if (ty == LUA_TNIL && !required) {
        lua_pop(L, 1);
        return 0;
    }
    if (ty != LUA_TSTRING) {
        lua_pop(L, 1);
        return err_set(errbuf, errlen, ERR_INVAL, "%s: %s: %s", path, key,
                       ty == LUA_TNIL ? "required (a string)" : "must be a string");
    }
    *out = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    return *out ? 0 : ERR_NOMEM;
}

/* A case's variants table ({"typos", "casing", paraphrases = {...}}: a list with a key, which
 * JSON cannot hold) as {"1": "typos", ..., "paraphrases": [...]}; removed from the case
 * table so the rest converts. NULL when there is none. */
static json_object *take_variants(lua_State *L, int ci, const char *where, char *errbuf,
                                  size_t errlen, int *rc)
{
    *rc = 0;
    lua_getfield(L, ci, "variants");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    json_object *o = json_object_new_object();
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        *rc =
            err_set(errbuf, errlen, ERR_INVAL,
                    "%s.variants: a list like {\"typos\", \"casing\", paraphrases = {...}}", where);
        return o;
    }
    size_t n = lua_rawlen(L, -1);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i);
        char k[16];
        snprintf(k, sizeof k, "%zu", i);
        json_object_object_add(
            o, k, json_object_new_string(lua_isstring(L, -1) ? lua_tostring(L, -1) : "?"));
        lua_pop(L, 1);
    }
    lua_getfield(L, -1, "paraphrases");
    if (!lua_isnil(L, -1)) {
        json_object *p = NULL;
        *rc = sandbox_to_json(L, -1, 0, "variants.paraphrases", &p, errbuf, errlen);
        if (!*rc && !json_object_is_type(p, json_type_array))
            *rc = err_set(errbuf, errlen, ERR_INVAL, "%s.variants.paraphrases: a list of strings",
                          where);
        json_object_object_add(o, "paraphrases", p);
    }
    lua_pop(L, 2);
    lua_pushnil(L);
    lua_setfield(L, ci, "variants");
    return o;
}

static const char *const gate_defaults =
    "{\"min_pass_rate\": 1.0, \"max_pass_rate_drop\": 0.0, \"max_cost_increase\": 0.25,"
    " \"max_latency_increase\": 0.5, \"latency_floor_ms\": 250}";

eval_t *eval_load(const char *path, char *errbuf, size_t errlen)
{
    eval_t *e = calloc(1, sizeof *e);
    if (!e) {
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        return NULL;
    }
    e->path = strdup(path);
    const char *slash = strrchr(path, '/');
    e->dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    sandbox_limits_t lim = {0};
    e->sb = sandbox_new(&lim, NULL, NULL);
    e->gate = json_tokener_parse(gate_defaults);
    if (!e->path || !e->dir || !e->sb || !e->gate) {
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        goto fail;
    }
    lua_State *L = sandbox_state(e->sb);
    char lerr[512];
    if (luaL_loadbufferx(L, prelude, sizeof prelude - 1, "=eval prelude", "t") != LUA_OK ||
        sandbox_pcall(e->sb, 0, 0, lerr, sizeof lerr)) {
        err_set(errbuf, errlen, ERR_INTERNAL, "eval prelude: %s", lua_tostring(L, -1));
        goto fail;
    }
    if (sandbox_loadfile(e->sb, path, errbuf, errlen) || sandbox_pcall(e->sb, 0, 1, errbuf, errlen))
        goto fail;
    if (!lua_istable(L, -1)) {
        err_set(errbuf, errlen, ERR_INVAL, "%s: the file must return a table with agent and cases",
                path);
        goto fail;
    }
    int t = lua_gettop(L);
    char *agent = NULL, *cases_file = NULL;
    if (get_str(L, t, "name", 0, &e->name, path, errbuf, errlen) ||
        get_str(L, t, "agent", 1, &agent, path, errbuf, errlen) ||
        get_str(L, t, "judge", 0, &e->judge, path, errbuf, errlen) ||
        get_str(L, t, "model", 0, &e->model, path, errbuf, errlen) ||
        get_str(L, t, "cases_file", 0, &cases_file, path, errbuf, errlen)) {
        free(agent);
        goto fail;
    }
    e->agent_path = resolve(e, agent);
    free(agent);
    if (!e->name) {
        const char *b = slash ? slash + 1 : path;
        size_t n = strcspn(b, ".");
        e->name = strndup(b, n ? n : strlen(b));
    }
    static const char *const ints[] = {"repeat", "concurrency"};
    for (int i = 0; i < 2; i++) {
        lua_getfield(L, t, ints[i]);
        if (!lua_isnil(L, -1)) {
            if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > 10000) {
                err_set(errbuf, errlen, ERR_INVAL, "%s: %s: a whole number from 1", path, ints[i]);
                lua_pop(L, 1);
                goto fail;
            }
            *(i ? &e->concurrency : &e->repeat) = (int)lua_tointeger(L, -1);
        }
        lua_pop(L, 1);
    }
    lua_getfield(L, t, "gate");
    if (!lua_isnil(L, -1)) {
        json_object *g = NULL;
        if (sandbox_to_json(L, -1, 0, "gate", &g, errbuf, errlen) ||
            !json_object_is_type(g, json_type_object)) {
            if (g)
                err_set(errbuf, errlen, ERR_INVAL, "%s: gate: must be a table", path);
            json_object_put(g);
            lua_pop(L, 1);
            goto fail;
        }
        json_object_object_foreach(g, k, v)
        {
            json_object *d;
            if (!json_object_object_get_ex(e->gate, k, &d) ||
                !(json_object_is_type(v, json_type_double) ||
                  json_object_is_type(v, json_type_int))) {
                err_set(errbuf, errlen, ERR_INVAL,
                        "%s: gate.%s: unknown or not a number (min_pass_rate, max_pass_rate_drop, "
                        "max_cost_increase, max_latency_increase, latency_floor_ms)",
                        path, k);
                json_object_put(g);
                lua_pop(L, 1);
                goto fail;
            }
            json_object_object_add(e->gate, k, jx_new_num(json_object_get_double(v)));
        }
        json_object_put(g);
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "cases");
    int ct = lua_gettop(L);
    if (!lua_isnil(L, ct) && !lua_istable(L, ct)) {
        err_set(errbuf, errlen, ERR_INVAL, "%s: cases: must be a list of case tables", path);
        goto fail_cf;
    }
    size_t ncases = lua_istable(L, ct) ? lua_rawlen(L, ct) : 0;
    for (size_t i = 0; i < ncases; i++) {
        char where[1100];
        lua_rawgeti(L, ct, (lua_Integer)(i + 1));
        json_object *jc = NULL;
        snprintf(where, sizeof where, "%s: cases[%zu]", path, i + 1);
        json_object *variants = NULL;
        int rc = lua_istable(L, -1)
                     ? 0
                     : err_set(errbuf, errlen, ERR_INVAL, "%s: must be a table", where);
        if (!rc)
            variants = take_variants(L, lua_gettop(L), where, errbuf, errlen, &rc);
        int ci = lua_gettop(L);
        lua_getfield(L, ci, "assert"); /* kept on the stack: it may hold functions */
        int ai = lua_gettop(L);
        if (!rc && !lua_isnil(L, ai) && !lua_istable(L, ai))
            rc = err_set(errbuf, errlen, ERR_INVAL, "%s.assert: must be a list of assertions",
                         where);
        lua_pushnil(L);
        lua_setfield(L, ci, "assert");
        if (!rc)
            rc = sandbox_to_json(L, ci, 1, "case", &jc, errbuf, errlen);
        if (!rc && variants)
            json_object_object_add(jc, "variants", json_object_get(variants));
        json_object_put(variants);
        if (!rc) {
            json_object *idv;
            if (json_object_object_get_ex(jc, "id", &idv) && idv)
                snprintf(where, sizeof where, "%s: case %s", path, json_object_get_string(idv));
            rc = add_case(e, jc, L, ai, where, errbuf, errlen);
        }
        json_object_put(jc);
        lua_settop(L, ct);
        if (rc)
            goto fail_cf;
    }
    if (cases_file) {
        char *cf = resolve(e, cases_file);
        int rc = cf ? load_jsonl(e, cf, errbuf, errlen) : ERR_NOMEM;
        free(cf);
        if (rc)
            goto fail_cf;
    }
    free(cases_file);
    lua_settop(L, 0);
    if (!e->ncases) {
        err_set(errbuf, errlen, ERR_INVAL, "%s: no cases (cases = {...} or cases_file)", path);
        goto fail;
    }
    return e;
fail_cf:
    free(cases_file);
fail:
    eval_free(e);
    return NULL;
}
