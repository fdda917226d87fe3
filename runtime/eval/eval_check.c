/*
 * eval_check: the assertions. Every check reads a run view (eval.h) so it can be tested on a
 * JSON object alone; the driver builds the view from the store after the run ends.
 */
#include "eval_int.h"

#include "err.h"
#include "jx.h"
#include "rag/rag.h"
#include "schema/schema.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <lauxlib.h>
#include <lua.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static double num(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && v ? json_object_get_double(v) : 0;
}

static int verdict(int ok, int *pass, double *score, char *reason, size_t rlen, const char *fmt,
                   ...) __attribute__((format(printf, 6, 7)));
static int verdict(int ok, int *pass, double *score, char *reason, size_t rlen, const char *fmt,
                   ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, rlen, fmt, ap);
    va_end(ap);
    *pass = ok != 0;
    *score = ok ? 1.0 : 0.0;
    return 0;
}

/* Does call args contain every key of want with an equal value? */
static int args_subset(json_object *want, json_object *args)
{
    if (!want)
        return 1;
    if (!json_object_is_type(want, json_type_object) ||
        !json_object_is_type(args, json_type_object))
        return 0;
    json_object_object_foreach(want, k, v)
    {
        json_object *have;
        if (!json_object_object_get_ex(args, k, &have))
            return 0;
        if (json_object_is_type(v, json_type_object)) {
            if (!args_subset(v, have))
                return 0;
        } else if (json_object_is_type(v, json_type_string) &&
                   !json_object_is_type(have, json_type_string)) {
            /* "1042" matches 1042: a model may send a number where the case wrote a string */
            if (strcmp(json_object_get_string(v), json_object_get_string(have)))
                return 0;
        } else if (!json_object_equal(v, have)) {
            return 0;
        }
    }
    return 1;
}

static const char *clip(const char *s, char *buf, size_t len)
{
    size_t n = strlen(s);
    if (n < 60)
        snprintf(buf, len, "%s", s);
    else
        snprintf(buf, len, "%.57s...", s);
    return buf;
}

static int check_regex(const char *pattern, const char *answer, int *pass, double *score,
                       char *reason, size_t rlen)
{
    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ecode, &eoff, NULL);
    if (!re) {
        char msg[200];
        pcre2_get_error_message(ecode, (PCRE2_UCHAR *)msg, sizeof msg);
        return err_set(reason, rlen, ERR_INVAL, "regex /%s/: %s at offset %zu", pattern, msg,
                       (size_t)eoff);
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int m = md ? pcre2_match(re, (PCRE2_SPTR)answer, strlen(answer), 0, 0, md, NULL) : -1;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return verdict(m >= 0, pass, score, reason, rlen, "regex /%s/: %s", pattern,
                   m >= 0 ? "matches" : "no match in the output");
}

static int check_schema(json_object *schema, const char *answer, int *pass, double *score,
                        char *reason, size_t rlen)
{
    json_object *inst = NULL;
    char perr[200], msg[400];
    if (schema_parse_json(answer, strlen(answer), &inst, perr, sizeof perr))
        return verdict(0, pass, score, reason, rlen, "json_schema: the output is not JSON (%s)",
                       perr);
    schema_t *s = schema_compile(schema, NULL, msg, sizeof msg);
    if (!s) {
        json_object_put(inst);
        return err_set(reason, rlen, ERR_INVAL, "json_schema: %s", msg);
    }
    int rc = schema_check(s, inst, msg, sizeof msg);
    schema_free(s);
    json_object_put(inst);
    if (rc && rc != ERR_SCHEMA)
        return err_set(reason, rlen, rc, "json_schema: %s", err_str(rc));
    return verdict(!rc, pass, score, reason, rlen, "json_schema: %s", rc ? msg : "valid");
}

int eval_check(json_object *a, json_object *run, const char *expected, int *pass, double *score,
               char *reason, size_t rlen)
{
    const char *kind = jx_str_or(a, "kind", "");
    const char *answer = jx_str_or(run, "answer", "");
    const char *val = jx_str(a, "value");
    char c1[64];
    json_object *calls = jx_get(run, "tool_calls");
    size_t ncalls =
        calls && json_object_is_type(calls, json_type_array) ? json_object_array_length(calls) : 0;
    if (!strcmp(kind, "contains") || !strcmp(kind, "not_contains")) {
        json_object *ic = jx_get(a, "ignore_case");
        int found = ic && json_object_get_boolean(ic) ? strcasestr(answer, val) != NULL
                                                      : strstr(answer, val) != NULL;
        int want = !strcmp(kind, "contains");
        return verdict(found == want, pass, score, reason, rlen, "%s \"%s\": %s", kind,
                       clip(val, c1, sizeof c1),
                       found ? "found in the output" : "not in the output");
    }
    if (!strcmp(kind, "equals")) {
        size_t n = strlen(answer);
        while (n && (answer[n - 1] == ' ' || answer[n - 1] == '\n'))
            n--;
        int ok = strlen(val) == n && !strncmp(answer, val, n);
        return verdict(ok, pass, score, reason, rlen, "equals \"%s\": %s", clip(val, c1, sizeof c1),
                       ok ? "equal" : "the output differs");
    }
    if (!strcmp(kind, "regex"))
        return check_regex(jx_str_or(a, "pattern", ""), answer, pass, score, reason, rlen);
    if (!strcmp(kind, "json_schema"))
        return check_schema(jx_get(a, "schema"), answer, pass, score, reason, rlen);
    if (!strcmp(kind, "tool_called") || !strcmp(kind, "tool_not_called")) {
        const char *name = jx_str_or(a, "name", "");
        json_object *want = jx_get(a, "args");
        int n_name = 0, n_match = 0;
        for (size_t i = 0; i < ncalls; i++) {
            json_object *c = json_object_array_get_idx(calls, i);
            if (strcmp(jx_str_or(c, "name", ""), name))
                continue;
            n_name++;
            n_match += args_subset(want, jx_get(c, "args"));
        }
        if (!strcmp(kind, "tool_not_called"))
            return verdict(!n_name, pass, score, reason, rlen, "tool_not_called %s: %s", name,
                           n_name ? "it was called" : "not called");
        if (n_match)
            return verdict(1, pass, score, reason, rlen, "tool_called %s: called", name);
        return verdict(0, pass, score, reason, rlen, "tool_called %s%s%s: %s", name,
                       want ? " " : "",
                       want ? json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN) : "",
                       n_name ? "called, but never with these arguments" : "never called");
    }
    if (!strcmp(kind, "tool_order")) {
        json_object *names = jx_get(a, "names");
        size_t k = 0, n = json_object_array_length(names);
        for (size_t i = 0; i < ncalls && k < n; i++)
            if (!strcmp(jx_str_or(json_object_array_get_idx(calls, i), "name", ""),
                        json_object_get_string(json_object_array_get_idx(names, k))))
                k++;
        return verdict(k == n, pass, score, reason, rlen, "tool_order: %s",
                       k == n  ? "in order"
                       : k < n ? json_object_get_string(json_object_array_get_idx(names, k))
                               : "");
    }
    if (!strcmp(kind, "max_steps")) {
        double v = num(run, "steps"), lim = num(a, "value");
        return verdict(v <= lim, pass, score, reason, rlen, "max_steps %g: %g steps", lim, v);
    }
    if (!strcmp(kind, "max_cost")) {
        double v = num(run, "cost_usd"), lim = num(a, "value");
        return verdict(v <= lim, pass, score, reason, rlen, "max_cost $%g: $%.6f", lim, v);
    }
    if (!strcmp(kind, "max_latency_ms")) {
        double v = num(run, "latency_ms"), lim = num(a, "value");
        return verdict(v <= lim, pass, score, reason, rlen, "max_latency_ms %g: %.0f ms", lim, v);
    }
    if (!strcmp(kind, "final_state")) {
        const char *st = jx_str_or(run, "state", "");
        return verdict(!strcmp(st, val), pass, score, reason, rlen, "final_state %s: %s", val, st);
    }
    if (!strcmp(kind, "similar")) {
        const char *ref = val ? val : expected;
        if (!ref)
            return err_set(reason, rlen, ERR_INVAL,
                           "similar: no text to compare with (give similar(\"...\") or the "
                           "case's expected)");
        double sim = rag_similarity(answer, ref), th = num(a, "threshold");
        verdict(sim >= th, pass, score, reason, rlen, "similar >= %.2f: %.2f", th, sim);
        *score = sim;
        return 0;
    }
    return err_set(reason, rlen, ERR_INVAL, "%s: checked by the eval driver", kind);
}

int eval_check_lua(eval_t *e, const eval_assert_t *a, json_object *run, int *pass, double *score,
                   char *reason, size_t rlen)
{
    lua_State *L = sandbox_state(e->sb);
    int top = lua_gettop(L);
    sandbox_reset_budget(e->sb, 0, NULL);
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->fn_ref);
    lua_pushstring(L, jx_str_or(run, "answer", ""));
    sandbox_push_json(L, run);
    char err[400];
    const char *name = jx_str_or(a->spec, "name", "lua");
    if (sandbox_pcall(e->sb, 2, 3, err, sizeof err)) {
        lua_settop(L, top);
        return verdict(0, pass, score, reason, rlen, "%s: error: %s", name, err);
    }
    int ok = lua_toboolean(L, -3);
    double sc = lua_isnumber(L, -2) ? lua_tonumber(L, -2) : ok ? 1.0 : 0.0;
    const char *why = lua_isstring(L, -1) ? lua_tostring(L, -1) : ok ? "passed" : "failed";
    verdict(ok, pass, score, reason, rlen, "%s", why);
    *score = sc;
    lua_settop(L, top);
    return 0;
}

json_object *eval_judge_schema(void)
{
    return json_tokener_parse(
        "{\"type\":\"object\",\"required\":[\"pass\",\"reason\"],\"additionalProperties\":false,"
        "\"properties\":{\"pass\":{\"type\":\"boolean\",\"description\":\"true when the output "
        "meets the rubric\"},\"score\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"
        "\"reason\":{\"type\":\"string\",\"maxLength\":300}}}");
}

json_object *eval_judge_messages(const char *rubric, const char *input, const char *output)
{
    json_object *msgs = json_object_new_array(), *sys = json_object_new_object(),
                *user = json_object_new_object();
    json_object_object_add(sys, "role", json_object_new_string("system"));
    json_object_object_add(
        sys, "content",
        json_object_new_string(
            "You grade the output of an AI assistant against a rubric. Read the customer's "
            "input, the assistant's output and the rubric. Answer with JSON only: {\"pass\": "
            "true|false, \"score\": 0..1, \"reason\": \"one sentence\"}. Pass only when every "
            "point of the rubric is met; the reason names what is missing when it fails."));
    char *text = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&text, &n);
    if (m) {
        fprintf(m, "Rubric: %s\n\nInput: %s\n\nOutput:\n%s\n", rubric, input, output);
        fclose(m);
    }
    json_object_object_add(user, "role", json_object_new_string("user"));
    json_object_object_add(user, "content", json_object_new_string(text ? text : ""));
    free(text);
    json_object_array_add(msgs, sys);
    json_object_array_add(msgs, user);
    return msgs;
}

int eval_judge_parse(const char *text, int *pass, char *reason, size_t rlen)
{
    json_object *o = NULL, *p;
    char perr[200];
    if (schema_parse_json(text, strlen(text), &o, perr, sizeof perr))
        return err_set(reason, rlen, ERR_PROTO, "the judge's reply is not JSON: %s", perr);
    if (!json_object_object_get_ex(o, "pass", &p) || !json_object_is_type(p, json_type_boolean)) {
        json_object_put(o);
        return err_set(reason, rlen, ERR_PROTO, "the judge's reply has no boolean \"pass\"");
    }
    *pass = json_object_get_boolean(p);
    snprintf(reason, rlen, "llm_rubric: %s", jx_str_or(o, "reason", *pass ? "pass" : "fail"));
    json_object_put(o);
    return 0;
}

/* ---- variants ----------------------------------------------------------------------- */

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Typos as people make them: two adjacent letters swapped in the two longest words (four
 * letters or more; words with digits or an apostrophe are left alone). */
static void typos(char *s)
{
    size_t best[2] = {0, 0}, blen[2] = {0, 0};
    for (size_t i = 0; s[i];) {
        if (!is_alpha(s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (is_alpha(s[j]))
            j++;
        int clean = !(s[j] >= '0' && s[j] <= '9') && s[j] != '\'' && !(i && s[i - 1] == '\'');
        size_t len = j - i;
        if (clean && len >= 4) {
            if (len > blen[0]) {
                best[1] = best[0], blen[1] = blen[0];
                best[0] = i, blen[0] = len;
            } else if (len > blen[1]) {
                best[1] = i, blen[1] = len;
            }
        }
        i = j;
    }
    for (int k = 0; k < 2; k++) {
        if (!blen[k])
            continue;
        size_t p = best[k] + blen[k] / 2;
        if (s[p] == s[p + 1])
            p--;
        char t = s[p];
        s[p] = s[p + 1];
        s[p + 1] = t;
    }
}

char *eval_variant(const char *input, const char *kind)
{
    size_t n = strlen(input);
    if (!strcmp(kind, "whitespace")) {
        /* leading and trailing blank lines, doubled spaces, a tab */
        char *s = malloc(2 * n + 8), *p = s;
        if (!s)
            return NULL;
        *p++ = '\n';
        *p++ = ' ';
        for (size_t i = 0; i < n; i++) {
            *p++ = input[i];
            if (input[i] == ' ')
                *p++ = ' ';
        }
        *p++ = ' ';
        *p++ = '\t';
        *p++ = '\n';
        *p = 0;
        return s;
    }
    char *s = strdup(input);
    if (!s)
        return NULL;
    if (!strcmp(kind, "casing")) {
        int has_lower = 0;
        for (size_t i = 0; i < n; i++)
            has_lower |= s[i] >= 'a' && s[i] <= 'z';
        for (size_t i = 0; i < n; i++)
            if (has_lower && s[i] >= 'a' && s[i] <= 'z')
                s[i] = (char)(s[i] - 'a' + 'A');
            else if (!has_lower && s[i] >= 'A' && s[i] <= 'Z')
                s[i] = (char)(s[i] - 'A' + 'a');
    } else if (!strcmp(kind, "typos")) {
        typos(s);
    }
    return s;
}
