/* The tool-call state table: every allowed move is the one the design describes, every other
 * pair of states is refused, final states have no way out, names round-trip, and the one
 * setter (tcall_set) follows the table. */
#include "check.h"
#include "machine_int.h"
#include "tcall.h"

static const tcall_move_t want[] = {
    {TC_PENDING, TC_RUNNING},
    {TC_PENDING, TC_REJECTED},
    {TC_PENDING, TC_AWAITING_APPROVAL},
    {TC_AWAITING_APPROVAL, TC_APPROVED},
    {TC_AWAITING_APPROVAL, TC_REJECTED},
    {TC_APPROVED, TC_RUNNING},
    {TC_RUNNING, TC_OK},
    {TC_RUNNING, TC_ERROR},
    {TC_RUNNING, TC_TIMEOUT},
    {TC_RUNNING, TC_REJECTED},
    {TC_RUNNING, TC_UNKNOWN},
    {TC_RUNNING, TC_APPROVED},
};

static int wanted(int from, int to)
{
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if ((int)want[i].from == from && (int)want[i].to == to)
            return 1;
    return 0;
}

static void test_every_pair(void)
{
    size_t n;
    tcall_moves(&n);
    CHECK_EQ_INT(n, sizeof want / sizeof want[0]);
    int allowed = 0;
    for (int f = 0; f < TC__COUNT; f++)
        for (int t = 0; t < TC__COUNT; t++) {
            int ok = tcall_move_allowed((tcall_state_t)f, (tcall_state_t)t);
            if (ok != wanted(f, t))
                fprintf(stderr, "  %s -> %s: table says %d\n", tcall_state_name((tcall_state_t)f),
                        tcall_state_name((tcall_state_t)t), ok);
            CHECK_EQ_INT(ok, wanted(f, t));
            allowed += ok;
        }
    CHECK_EQ_INT(allowed, n);
}

static void test_final_states_have_no_way_out(void)
{
    int finals = 0;
    for (int f = 0; f < TC__COUNT; f++) {
        if (!tcall_state_final((tcall_state_t)f))
            continue;
        finals++;
        for (int t = 0; t < TC__COUNT; t++)
            CHECK(!tcall_move_allowed((tcall_state_t)f, (tcall_state_t)t));
    }
    CHECK_EQ_INT(finals, 5);
    CHECK(!tcall_state_final(TC_AWAITING_APPROVAL));
    CHECK(!tcall_state_final(TC_RUNNING));
}

/* Every non-final state can reach a final one: no call is stuck by construction. */
static void test_every_state_can_finish(void)
{
    for (int s = 0; s < TC__COUNT; s++) {
        int reach[TC__COUNT] = {0}, changed = 1, done = 0;
        reach[s] = 1;
        while (changed) {
            changed = 0;
            for (int f = 0; f < TC__COUNT; f++)
                for (int t = 0; reach[f] && t < TC__COUNT; t++)
                    if (!reach[t] && tcall_move_allowed((tcall_state_t)f, (tcall_state_t)t))
                        reach[t] = changed = 1;
        }
        for (int t = 0; t < TC__COUNT; t++)
            done |= reach[t] && tcall_state_final((tcall_state_t)t);
        CHECK(done);
    }
}

static void test_names_round_trip(void)
{
    for (int s = 0; s < TC__COUNT; s++) {
        const char *name = tcall_state_name((tcall_state_t)s);
        CHECK(name && strcmp(name, "?") != 0);
        CHECK_EQ_INT(tcall_state_parse(name), s);
    }
    CHECK_EQ_STR(tcall_state_name(TC_AWAITING_APPROVAL), "awaiting_approval");
    CHECK_EQ_STR(tcall_state_name(TC__COUNT), "?");
    CHECK_EQ_INT(tcall_state_parse("approve"), -1);
    CHECK_EQ_INT(tcall_state_parse(NULL), -1);
}

static void test_setter_follows_the_table(void)
{
    for (int f = 0; f < TC__COUNT; f++)
        for (int t = 0; t < TC__COUNT; t++) {
            tcall_t c = {.id = "call_1", .state = (tcall_state_t)f};
            int rc = tcall_set(&c, (tcall_state_t)t);
            if (wanted(f, t)) {
                CHECK_EQ_INT(rc, 0);
                CHECK_EQ_INT(c.state, t);
            } else {
                CHECK_EQ_INT(rc, ERR_INTERNAL);
                CHECK_EQ_INT(c.state, f); /* unchanged */
            }
        }
}

int main(void)
{
    RUN(test_every_pair);
    RUN(test_final_states_have_no_way_out);
    RUN(test_every_state_can_finish);
    RUN(test_names_round_trip);
    RUN(test_setter_follows_the_table);
    return check_report();
}
