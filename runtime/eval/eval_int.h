/*
 * eval_int: what the eval module's files share (eval_file.c loads, eval_check.c checks,
 * eval_run.c drives runs, eval_report.c prints and gates). Not for use outside eval/.
 */
#ifndef AGENTD_EVAL_INT_H
#define AGENTD_EVAL_INT_H

#include "eval.h"
#include "sandbox.h"

#include <json-c/json.h>

#define EVAL_NOREF (-2) /* LUA_NOREF */

typedef struct eval_assert {
    json_object *spec; /* {"kind": ..., ...}; for a Lua function {"kind": "lua", "name"} */
    int fn_ref;        /* registry ref of the function in the eval's sandbox, or EVAL_NOREF */
} eval_assert_t;

typedef struct eval_case {
    char *id;     /* "order-status", "order-status~typos" */
    char *base;   /* the case it varies ("order-status") */
    char *family; /* "original", "typos", "casing", "whitespace", "paraphrase" */
    char *input;
    char *expected;    /* or NULL */
    json_object *vars; /* object or NULL */
    eval_assert_t *asserts;
    size_t nasserts;
} eval_case_t;

struct eval {
    char *path, *dir, *name;
    char *agent_path;
    char *judge; /* model for llm_rubric, or NULL */
    char *model; /* default model, or NULL (the agent's) */
    int repeat, concurrency;
    json_object *gate;
    eval_case_t *cases;
    size_t ncases;
    sandbox_t *sb;
};

/* eval_check.c: a Lua function assertion, run in the eval's sandbox. */
int eval_check_lua(eval_t *e, const eval_assert_t *a, json_object *run, int *pass, double *score,
                   char *reason, size_t rlen);
/* eval_check.c: the judge's request for an llm_rubric assertion (new references). */
json_object *eval_judge_messages(const char *rubric, const char *input, const char *output);
json_object *eval_judge_schema(void);
/* Parse the judge's reply text: 0 with pass and reason, else ERR_PROTO with why. */
int eval_judge_parse(const char *text, int *pass, char *reason, size_t rlen);

#endif
