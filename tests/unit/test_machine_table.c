/* The transition table: every allowed pair leads where the design says, every other pair
 * is rejected, terminal states have no way out. */
#include "check.h"
#include "machine_int.h"

static void test_allowed(void)
{
    static const struct {
        machine_state_t from;
        machine_event_t ev;
        machine_state_t to;
    } want[] = {
        {MS_CREATED, ME_START, MS_PLANNING},
        {MS_PLANNING, ME_TOOL_CALLS, MS_ACTING},
        {MS_PLANNING, ME_FINAL, MS_DONE},
        {MS_PLANNING, ME_MODEL_FAILED, MS_FAILED},
        {MS_PLANNING, ME_LIMIT, MS_FAILED},
        {MS_ACTING, ME_TOOLS_DONE, MS_OBSERVING},
        {MS_ACTING, ME_APPROVAL_NEEDED, MS_WAITING},
        {MS_ACTING, ME_LIMIT, MS_FAILED},
        {MS_WAITING, ME_DECIDED, MS_ACTING},
        {MS_OBSERVING, ME_OBSERVED, MS_PLANNING},
        {MS_OBSERVING, ME_LIMIT, MS_FAILED},
        {MS_CREATED, ME_CANCEL, MS_CANCELLED},
        {MS_PLANNING, ME_CANCEL, MS_CANCELLED},
        {MS_ACTING, ME_CANCEL, MS_CANCELLED},
        {MS_OBSERVING, ME_CANCEL, MS_CANCELLED},
        {MS_WAITING, ME_CANCEL, MS_CANCELLED},
        /* plan_execute */
        {MS_PLANNING, ME_PLANNED, MS_PLANNING},
        {MS_PLANNING, ME_STEP, MS_ACTING},
        {MS_PLANNING, ME_REPLAN, MS_PLANNING},
        {MS_OBSERVING, ME_REPLAN, MS_PLANNING},
        {MS_OBSERVING, ME_HANDOFF, MS_DONE},
    };
    size_t n;
    machine_table(&n);
    CHECK_EQ_INT(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const machine_transition_t *t = machine_lookup(want[i].from, want[i].ev);
        CHECK(t != NULL);
        if (t) {
            CHECK_EQ_INT(t->to, want[i].to);
            CHECK(mact_enter[t->to].run != NULL);
        }
    }
}

static void test_illegal_pairs_rejected(void)
{
    int allowed = 0, rejected = 0;
    for (int s = 0; s < MS__COUNT; s++)
        for (int e = 0; e < ME__COUNT; e++) {
            if (machine_lookup((machine_state_t)s, (machine_event_t)e))
                allowed++;
            else
                rejected++;
        }
    size_t n;
    machine_table(&n);
    CHECK_EQ_INT(allowed, n);
    CHECK_EQ_INT(rejected, MS__COUNT * ME__COUNT - (int)n);
    /* A few that must never happen. */
    CHECK(machine_lookup(MS_DONE, ME_START) == NULL);
    CHECK(machine_lookup(MS_CREATED, ME_TOOLS_DONE) == NULL);
    CHECK(machine_lookup(MS_ACTING, ME_FINAL) == NULL);
    CHECK(machine_lookup(MS_WAITING, ME_TOOLS_DONE) == NULL);
    CHECK(machine_lookup(MS_OBSERVING, ME_TOOL_CALLS) == NULL);
}

static void test_terminal_states_are_final(void)
{
    for (int s = 0; s < MS__COUNT; s++) {
        if (!machine_state_terminal((machine_state_t)s))
            continue;
        for (int e = 0; e < ME__COUNT; e++)
            CHECK(machine_lookup((machine_state_t)s, (machine_event_t)e) == NULL);
    }
    CHECK(machine_state_terminal(MS_DONE));
    CHECK(machine_state_terminal(MS_FAILED));
    CHECK(machine_state_terminal(MS_CANCELLED));
    CHECK(!machine_state_terminal(MS_WAITING));
}

static void test_every_nonterminal_state_can_be_cancelled(void)
{
    for (int s = 0; s < MS__COUNT; s++)
        if (!machine_state_terminal((machine_state_t)s))
            CHECK(machine_lookup((machine_state_t)s, ME_CANCEL) != NULL);
}

/* One way into every state: each state, terminal or not, has a run hook (menter asserts it). */
static void test_every_state_has_an_enter_hook(void)
{
    for (int s = 0; s < MS__COUNT; s++)
        CHECK(mact_enter[s].run != NULL);
    CHECK(mact_enter[MS_PLANNING].stage != NULL);
    CHECK(mact_enter[MS_ACTING].stage != NULL);
    CHECK(mact_enter[MS_DONE].stage == NULL);
}

static void test_names_round_trip(void)
{
    for (int s = 0; s < MS__COUNT; s++)
        CHECK_EQ_INT(machine_state_parse(machine_state_name((machine_state_t)s)), s);
    CHECK_EQ_INT(machine_state_parse("sleeping"), -1);
    CHECK_EQ_STR(machine_event_name(ME_TOOL_CALLS), "model_tool_calls");
    CHECK_EQ_STR(machine_state_name(MS_OBSERVING), "observing");
}

int main(void)
{
    RUN(test_allowed);
    RUN(test_illegal_pairs_rejected);
    RUN(test_terminal_states_are_final);
    RUN(test_every_nonterminal_state_can_be_cancelled);
    RUN(test_every_state_has_an_enter_hook);
    RUN(test_names_round_trip);
    return check_report();
}
