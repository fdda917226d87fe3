/* retry: classification table, backoff bounds, Retry-After forms, breaker transitions. */
#include "check.h"
#include "err.h"
#include "retry.h"

static void test_classify_table(void)
{
    static const struct {
        int err, status;
        const char *cls;
        int retryable;
    } t[] = {
        {0, 200, "", 0},
        {ERR_HTTP, 429, "rate_limited", 1},
        {ERR_HTTP, 408, "timeout", 1},
        {ERR_HTTP, 500, "server", 1},
        {ERR_HTTP, 502, "server", 1},
        {ERR_HTTP, 503, "server", 1},
        {ERR_HTTP, 529, "server", 1},
        {ERR_HTTP, 400, "client", 0},
        {ERR_HTTP, 401, "auth", 0},
        {ERR_HTTP, 403, "auth", 0},
        {ERR_HTTP, 404, "client", 0},
        {ERR_HTTP, 422, "client", 0},
        {ERR_TIMEOUT, 0, "timeout", 1},
        {ERR_HTTP, 0, "transport", 1},
        {ERR_PROTO, 200, "malformed", 1},
        {ERR_PROTO, 0, "malformed", 1},
        {ERR_TOOBIG, 200, "malformed", 0},
        {ERR_CANCELLED, 0, "cancelled", 0},
        {ERR_INVAL, 0, "client", 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        retry_class_t c = retry_classify(t[i].err, t[i].status);
        CHECK_EQ_STR(c.errclass, t[i].cls);
        CHECK_EQ_INT(c.retryable, t[i].retryable);
    }
    /* Client errors say nothing about the endpoint's health; server errors do. */
    CHECK_EQ_INT(retry_classify(ERR_HTTP, 400).breaker, 0);
    CHECK_EQ_INT(retry_classify(ERR_HTTP, 503).breaker, 1);
    CHECK_EQ_INT(retry_classify(ERR_TIMEOUT, 0).breaker, 1);
}

static void test_backoff_bounds(void)
{
    retry_policy_t p;
    retry_policy_default(&p);
    p.base_ms = 100;
    p.cap_ms = 1000;
    uint64_t rng = 42;
    for (int retry = 1; retry <= 10; retry++) {
        uint64_t ceil = 100ull << (retry - 1);
        if (ceil > 1000)
            ceil = 1000;
        uint64_t max = 0, min = UINT64_MAX, sum = 0;
        for (int i = 0; i < 2000; i++) {
            uint64_t d = retry_backoff_ms(&p, retry, &rng);
            max = d > max ? d : max;
            min = d < min ? d : min;
            sum += d;
        }
        CHECK(max <= ceil);
        /* Full jitter: spread over the whole range, mean near the middle. */
        CHECK(min < ceil / 10);
        CHECK(max > ceil * 9 / 10);
        double mean = (double)sum / 2000;
        CHECK(mean > ceil * 0.4 && mean < ceil * 0.6);
    }
    /* Huge retry numbers do not overflow past the cap. */
    CHECK(retry_backoff_ms(&p, 1000, &rng) <= 1000);
    p.base_ms = 0;
    CHECK_EQ_INT(retry_backoff_ms(&p, 3, &rng), 0);
}

static void test_retry_after(void)
{
    uint64_t ms = 0;
    CHECK_EQ_INT(retry_after_parse("120", 0, &ms), 0);
    CHECK_EQ_INT(ms, 120000);
    CHECK_EQ_INT(retry_after_parse(" 0 ", 0, &ms), 0);
    CHECK_EQ_INT(ms, 0);
    CHECK_EQ_INT(retry_after_parse("1.5", 0, &ms), 0);
    CHECK_EQ_INT(ms, 2000);
    /* 1445412480 is Wed, 21 Oct 2015 07:28:00 GMT. */
    int64_t now = 1445412480 - 30;
    CHECK_EQ_INT(retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", now, &ms), 0);
    CHECK_EQ_INT(ms, 30000);
    CHECK_EQ_INT(retry_after_parse("Wednesday, 21-Oct-15 07:28:00 GMT", now, &ms), 0);
    CHECK_EQ_INT(ms, 30000);
    CHECK_EQ_INT(retry_after_parse("Wed Oct 21 07:28:00 2015", now, &ms), 0);
    CHECK_EQ_INT(ms, 30000);
    /* A date in the past means "now". */
    CHECK_EQ_INT(retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", now + 3600, &ms), 0);
    CHECK_EQ_INT(ms, 0);
    CHECK_EQ_INT(retry_after_parse("soon", now, &ms), ERR_INVAL);
    CHECK_EQ_INT(retry_after_parse("12abc", now, &ms), ERR_INVAL);
    CHECK_EQ_INT(retry_after_parse("Wed, 99 Foo 2015 07:28:00 GMT", now, &ms), ERR_INVAL);
    CHECK_EQ_INT(retry_after_parse(NULL, now, &ms), ERR_INVAL);
}

static void test_breaker(void)
{
    retry_policy_t p;
    retry_policy_default(&p);
    p.breaker_threshold = 3;
    p.breaker_cooldown_ms = 1000;
    retry_breaker_t b = {0};
    int probe;
    uint64_t t = 5000;
    for (int i = 0; i < 2; i++) {
        CHECK(retry_breaker_allow(&b, &p, t, &probe));
        CHECK_EQ_INT(probe, 0);
        retry_breaker_record(&b, &p, 0, 1, t);
    }
    CHECK_EQ_STR(retry_breaker_state_name(&b), "closed");
    /* A client error does not count and resets the streak. */
    retry_breaker_record(&b, &p, 0, 0, t);
    CHECK_EQ_INT(b.failures, 0);
    for (int i = 0; i < 3; i++)
        retry_breaker_record(&b, &p, 0, 1, t);
    CHECK_EQ_STR(retry_breaker_state_name(&b), "open");
    CHECK(!retry_breaker_allow(&b, &p, t + 999, &probe));
    /* After the cooldown exactly one probe goes through. */
    CHECK(retry_breaker_allow(&b, &p, t + 1000, &probe));
    CHECK_EQ_INT(probe, 1);
    CHECK_EQ_STR(retry_breaker_state_name(&b), "half_open");
    int probe2;
    CHECK(!retry_breaker_allow(&b, &p, t + 1001, &probe2));
    /* The probe fails: open again, for a fresh cooldown. */
    retry_breaker_record(&b, &p, 0, 1, t + 1100);
    CHECK_EQ_STR(retry_breaker_state_name(&b), "open");
    CHECK(!retry_breaker_allow(&b, &p, t + 2000, &probe));
    CHECK(retry_breaker_allow(&b, &p, t + 2100, &probe));
    CHECK_EQ_INT(probe, 1);
    /* An abandoned probe lets the next caller probe. */
    retry_breaker_abandon(&b);
    CHECK(retry_breaker_allow(&b, &p, t + 2101, &probe));
    CHECK_EQ_INT(probe, 1);
    /* The probe succeeds: closed, and everyone may pass. */
    retry_breaker_record(&b, &p, 1, 0, t + 2200);
    CHECK_EQ_STR(retry_breaker_state_name(&b), "closed");
    CHECK(retry_breaker_allow(&b, &p, t + 2201, &probe));
    CHECK_EQ_INT(probe, 0);
    CHECK_EQ_INT(b.failures, 0);
}

int main(void)
{
    RUN(test_classify_table);
    RUN(test_backoff_bounds);
    RUN(test_retry_after);
    RUN(test_breaker);
    return check_report();
}
