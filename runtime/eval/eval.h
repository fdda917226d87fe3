/*
 * eval: evaluation of agents. An eval file (Lua, docs/eval.md) names an agent and its cases:
 * an input, optional {{variables}}, an optional expected answer and assertions on the
 * output (contains, not_contains, regex, equals, json_schema), on the trajectory
 * (tool_called with an argument subset, tool_not_called, tool_order), on limits (max_steps,
 * max_cost, max_latency_ms, final_state), semantic similarity to the expected answer, a
 * model-graded rubric (llm_rubric: the eval's judge model answers {pass, reason} as
 * structured output) and custom Lua functions (output, run) -> pass, score, reason. Cases
 * may name variants (typos, casing, whitespace, paraphrases) that test a prompt survives
 * small changes of its input; the report gives the pass rate per variant family.
 *
 * eval_run drives every case as an ordinary durable run on one loop (concurrently, tagged
 * with the eval id, case and variant in run_labels), repeats them for pass@k and flakiness,
 * over a matrix of agents and models, and returns one results document: the report, the
 * JSON output, the JUnit file and the next run's baseline are all read from it.
 *
 * The eval file's Lua state is a sandbox (sandbox.h) that lives as long as the eval_t:
 * custom assertion functions run in it with its CPU and memory caps. Nothing here is
 * re-entered from callbacks other than the machine's on_end and the judge's done.
 */
#ifndef AGENTD_EVAL_H
#define AGENTD_EVAL_H

#include <json-c/json.h>
#include <stdio.h>

typedef struct eval eval_t;

/* Load and check an eval file. NULL with a one-line error naming the file and the case or
 * field in errbuf. */
eval_t *eval_load(const char *path, char *errbuf, size_t errlen);
void eval_free(eval_t *e);
const char *eval_name(const eval_t *e);
/* The agent file the eval names (resolved against the eval file's folder). */
const char *eval_agent_path(const eval_t *e);
/* Cases after variant expansion. */
size_t eval_case_count(const eval_t *e);
/* The gate thresholds of the file merged over the defaults (borrowed). */
json_object *eval_gate_conf(const eval_t *e);

typedef struct eval_opts {
    const char *const *agents; /* NULL-terminated agent files (NULL: the eval's agent) */
    const char *const *models; /* NULL-terminated models (NULL: the eval's or agent's) */
    int repeat;                /* attempts per case (0: the file's, else 1) */
    int concurrency;           /* runs in flight (0: the file's, else 8) */
    const char *cache_mode;    /* model response cache (NULL: off) */
    const char *db_path, *traces_dir;
    const char *judge; /* overrides the file's judge model (NULL: the file's) */
    int progress;      /* draw a progress bar on stderr */
} eval_opts_t;

/* Run every case of every variant (agent x model). 0 and a new results document in *out;
 * else ERR_* with a one-line message (a harness error: the runs themselves failing is a
 * result, not an error). */
int eval_run(eval_t *e, const eval_opts_t *o, json_object **out, char *errbuf, size_t errlen);

/* The table (case, result, score, latency, tokens, cost, reason) and the summary per
 * variant (pass rate, pass rate per family, p50/p95 latency, error rate, cost). */
void eval_print(FILE *f, json_object *results);
/* JUnit XML of the results (one testsuite per variant, one testcase per case). */
int eval_junit_write(const char *path, json_object *results, char *errbuf, size_t errlen);

/* The regression gate. Without a baseline: every variant's pass rate must reach
 * gate.min_pass_rate. With one: per variant (matched by name, or the only one), a case that
 * passed and now fails, a pass-rate drop beyond gate.max_pass_rate_drop, a cost per case
 * beyond gate.max_cost_increase (a fraction) and a p95 latency beyond
 * gate.max_latency_increase (a fraction, and at least gate.latency_floor_ms more) are
 * regressions. One line per finding goes to f. Returns the number of regressions. */
int eval_gate(json_object *results, json_object *baseline, json_object *gate, FILE *f);

/* One assertion (as the eval file states it, in JSON: {"kind": "contains", "value": ...})
 * against a run view ({"answer", "state", "steps", "latency_ms", "cost_usd", "tool_calls":
 * [{"name", "args", "state"}], ...}) with the case's expected answer (may be NULL). Writes
 * pass (0/1), score (0..1) and a one-line reason. Returns 0, or ERR_INVAL for an assertion
 * that cannot be checked here (llm_rubric and Lua functions are run by eval_run). */
int eval_check(json_object *assertion, json_object *run, const char *expected, int *pass,
               double *score, char *reason, size_t rlen);

/* Deterministic input variants: kind is "typos", "casing" or "whitespace". malloc'd. */
char *eval_variant(const char *input, const char *kind);

#endif
