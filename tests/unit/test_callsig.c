/* callsig: the counted set of tool-call signatures loop detection reads (callsig.h). */
#include "callsig.h"
#include "check.h"

#include <stdio.h>

static void test_empty_set(void)
{
    callsig_t *s = NULL;
    CHECK_EQ_INT(callsig_count(s, "search\x1f{}"), 0);
    callsig_free(s);
}

static void test_counts_by_text(void)
{
    callsig_t *s = NULL;
    CHECK_EQ_INT(callsig_add(&s, "search\x1f{\"q\":\"a\"}"), 1);
    CHECK_EQ_INT(callsig_add(&s, "search\x1f{\"q\":\"a\"}"), 2);
    CHECK_EQ_INT(callsig_add(&s, "search\x1f{\"q\":\"b\"}"), 1);
    CHECK_EQ_INT(callsig_add(&s, "fetch\x1f{\"q\":\"a\"}"), 1);
    CHECK_EQ_INT(callsig_count(s, "search\x1f{\"q\":\"a\"}"), 2);
    CHECK_EQ_INT(callsig_count(s, "search\x1f{\"q\":\"b\"}"), 1);
    CHECK_EQ_INT(callsig_count(s, "search\x1f{\"q\":\"c\"}"), 0);
    CHECK_EQ_INT(callsig_count(s, "search"), 0);
    CHECK_EQ_INT(callsig_add(&s, ""), 1);
    CHECK_EQ_INT(callsig_count(s, ""), 1);
    callsig_free(s);
}

/* Many signatures: the table grows and keeps every count. */
static void test_grows(void)
{
    callsig_t *s = NULL;
    char sig[64];
    for (int round = 1; round <= 3; round++)
        for (int i = 0; i < 1000; i++) {
            snprintf(sig, sizeof sig, "tool_%d\x1f{\"n\":%d}", i % 7, i);
            CHECK_EQ_INT(callsig_add(&s, sig), round);
        }
    for (int i = 0; i < 1000; i++) {
        snprintf(sig, sizeof sig, "tool_%d\x1f{\"n\":%d}", i % 7, i);
        CHECK_EQ_INT(callsig_count(s, sig), 3);
    }
    CHECK_EQ_INT(callsig_count(s, "tool_0\x1f{\"n\":1000}"), 0);
    callsig_free(s);
}

int main(void)
{
    RUN(test_empty_set);
    RUN(test_counts_by_text);
    RUN(test_grows);
    return check_report();
}
