/*
 * check: the unit-test harness. Each test file defines test functions, lists them in
 * main() with RUN(), and ends with `return check_report();`, which prints
 * "N passed, N failed" for tests/run.sh to add up.
 */
#ifndef AGENTD_CHECK_H
#define AGENTD_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed, check_cur_failed;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
            check_cur_failed = 1;                                                        \
        }                                                                                \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                               \
    do {                                                                                 \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                  \
        if (check_a_ != check_b_) {                                                      \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__,  \
                    #a, check_a_, check_b_);                                             \
            check_cur_failed = 1;                                                        \
        }                                                                                \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                               \
    do {                                                                                 \
        const char *check_a_ = (a), *check_b_ = (b);                                     \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                 \
            fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__,        \
                    __LINE__, #a, check_a_ ? check_a_ : "(null)",                        \
                    check_b_ ? check_b_ : "(null)");                                     \
            check_cur_failed = 1;                                                        \
        }                                                                                \
    } while (0)

#define RUN(fn)                                                                          \
    do {                                                                                 \
        check_cur_failed = 0;                                                            \
        fn();                                                                            \
        if (check_cur_failed) {                                                          \
            check_failed++;                                                              \
            printf("FAIL %s\n", #fn);                                                    \
        } else {                                                                         \
            check_passed++;                                                              \
            printf("ok   %s\n", #fn);                                                    \
        }                                                                                \
        fflush(stdout);                                                                  \
    } while (0)

static inline int check_report(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
