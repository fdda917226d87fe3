/*
 * Unit tests for guard (guardrail hooks): which hooks an agent file declares, functions
 * anywhere else refused, every verdict form read, and hooks that fail — raise, loop, return
 * nonsense — deny with a reason that says why.
 */
#include "check.h"
#include "err.h"
#include "guard/guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/agentd-guardXXXXXX";

static const char *agent(const char *name, const char *body)
{
    static char path[300];
    snprintf(path, sizeof path, "%s/%s.lua", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(body, f);
        fclose(f);
    }
    return path;
}

static void test_scan(void)
{
    char err[512];
    unsigned hooks = 99;
    CHECK(guard_scan(agent("none", "return { name = 'a' }"), &hooks, err, sizeof err) == 0);
    CHECK_EQ_INT(hooks, 0);
    CHECK(guard_scan(agent("all", "return { name = 'a', guardrails = {"
                                  " on_input = function() end, on_tool_call = function() end,"
                                  " on_output = function() end } }"),
                     &hooks, err, sizeof err) == 0);
    CHECK_EQ_INT(hooks, GUARD_ON_INPUT | GUARD_ON_TOOL_CALL | GUARD_ON_OUTPUT);
    CHECK(guard_scan(agent("one", "return { name = 'a', guardrails = { on_output = function() "
                                  "end } }"),
                     &hooks, err, sizeof err) == 0);
    CHECK_EQ_INT(hooks, GUARD_ON_OUTPUT);
    CHECK(guard_scan(agent("stray", "return { name = 'a', limits = { f = print } }"), &hooks,
                     err, sizeof err) == ERR_INVAL);
    CHECK(strstr(err, "stray.lua: limits.f: a function is only allowed as a guardrails hook"));
    CHECK(guard_scan(agent("deep", "return { name = 'a', guardrails = { x = { on_input = print } "
                                   "} }"),
                     &hooks, err, sizeof err) == ERR_INVAL);
    CHECK(strstr(err, "guardrails.x.on_input"));
    CHECK(guard_scan(agent("syntax", "return {"), &hooks, err, sizeof err) != 0);
    CHECK(strstr(err, "syntax.lua"));
}

static guard_decision_t run(const char *file, const char *hook, const char *arg)
{
    guard_decision_t d;
    json_object *a = json_object_new_string(arg), *ctx = json_object_new_object();
    json_object_object_add(ctx, "step", json_object_new_int(1));
    CHECK(guard_run(file, hook, a, ctx, &d) == 0);
    json_object_put(a);
    json_object_put(ctx);
    return d;
}

static void test_verdicts(void)
{
    const char *f = agent("v", "return { name = 'a', guardrails = {\n"
                               " on_input = function(x, ctx)\n"
                               "  if x == 'nil' then return nil end\n"
                               "  if x == 'true' then return true end\n"
                               "  if x == 'false' then return false, 'no: ' .. ctx.step end\n"
                               "  if x == 'deny' then return 'deny', 'because' end\n"
                               "  if x == 'ask' then return 'ask' end\n"
                               "  if x == 'boom' then error('kaput') end\n"
                               "  if x == 'loop' then while true do end end\n"
                               "  if x == 'num' then return 'deny', 42 end\n"
                               "  return 'allow' end,\n"
                               " on_tool_call = function(c) return c end,\n"
                               " on_output = function(o) return o, 'r' end } }");
    guard_decision_t d = run(f, "on_input", "nil");
    CHECK(d.verdict == GUARD_ALLOW && !d.failed);
    d = run(f, "on_input", "true");
    CHECK(d.verdict == GUARD_ALLOW);
    d = run(f, "on_input", "allow");
    CHECK(d.verdict == GUARD_ALLOW);
    d = run(f, "on_input", "false");
    CHECK(d.verdict == GUARD_DENY && !d.failed);
    CHECK_EQ_STR(d.reason, "no: 1");
    d = run(f, "on_input", "deny");
    CHECK(d.verdict == GUARD_DENY);
    CHECK_EQ_STR(d.reason, "because");
    d = run(f, "on_input", "ask"); /* ask is for tool calls only */
    CHECK(d.verdict == GUARD_DENY && d.failed);
    CHECK(strstr(d.reason, "it returned \"ask\"; expected \"allow\" or \"deny\""));
    d = run(f, "on_tool_call", "ask");
    CHECK(d.verdict == GUARD_ASK && !d.failed);
    d = run(f, "on_output", "reject");
    CHECK(d.verdict == GUARD_DENY && !d.failed);
    CHECK_EQ_STR(d.reason, "r");
    d = run(f, "on_tool_call", "reject"); /* reject is for answers only */
    CHECK(d.verdict == GUARD_DENY && d.failed);
    d = run(f, "on_input", "boom");
    CHECK(d.verdict == GUARD_DENY && d.failed);
    CHECK(strstr(d.reason, "guardrail on_input failed (so it denies):") && strstr(d.reason, "kaput"));
    d = run(f, "on_input", "loop");
    CHECK(d.verdict == GUARD_DENY && d.failed && strstr(d.reason, "CPU budget"));
    d = run(f, "on_input", "num");
    CHECK(d.verdict == GUARD_DENY && d.failed && strstr(d.reason, "reason) must be a string"));
    d = run(agent("nohook", "return { name = 'a', guardrails = {} }"), "on_input", "x");
    CHECK(d.verdict == GUARD_DENY && d.failed && strstr(d.reason, "not a function"));
    CHECK(d.ms >= 0);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    RUN(test_scan);
    RUN(test_verdicts);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return check_report();
}
