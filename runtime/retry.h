/*
 * retry: the one place that decides what a failed model attempt means and what to do next.
 * model.c asks it to classify an error, to choose a backoff delay (exponential, full jitter,
 * capped, at least the server's Retry-After), and keeps one circuit breaker per endpoint.
 *
 * Everything here is pure bookkeeping over values the caller passes in (clocks, random
 * state), so it is deterministic under test and holds no global state. Nothing re-enters.
 */
#ifndef AGENTD_RETRY_H
#define AGENTD_RETRY_H

#include <stdint.h>

typedef struct retry_policy {
    int max_attempts;             /* attempts per model in the chain (first try included) */
    uint64_t base_ms;             /* first backoff ceiling; doubles per retry */
    uint64_t cap_ms;              /* backoff ceiling never exceeds this */
    uint64_t budget_ms;           /* total time one call may spend waiting between attempts */
    int breaker_threshold;        /* consecutive failures that open an endpoint's breaker */
    uint64_t breaker_cooldown_ms; /* open this long before one half-open probe is allowed */
} retry_policy_t;

/* Defaults: 4 attempts, 500 ms base, 20 s cap, 60 s budget, breaker 5 failures / 30 s. */
void retry_policy_default(retry_policy_t *p);

typedef struct retry_class {
    const char *errclass; /* "", "rate_limited", "server", "timeout", "transport",
                             "malformed", "client", "auth", "cancelled" */
    int retryable;        /* worth another attempt at the same endpoint */
    int breaker;          /* counts as an endpoint failure for the circuit breaker */
} retry_class_t;

/* Classify an attempt outcome: err is 0 or ERR_*, status the HTTP status (0 if none).
 * A status >= 400 decides over err. */
retry_class_t retry_classify(int err, int status);

/* Backoff before retry number `retry` (1 = the wait after the first failed attempt):
 * uniform in [0, min(cap, base * 2^(retry-1))] ("full jitter"), drawn from *rng. */
uint64_t retry_backoff_ms(const retry_policy_t *p, int retry, uint64_t *rng);

/* Parse a Retry-After value: delta-seconds ("120") or an HTTP date
 * ("Wed, 21 Oct 2015 07:28:00 GMT"; RFC 850 and asctime forms too), relative to now_wall_s.
 * A date in the past gives 0. 0 and *out_ms on success, ERR_INVAL if unparseable. */
int retry_after_parse(const char *value, int64_t now_wall_s, uint64_t *out_ms);

/* xorshift64* step; state must be nonzero. */
uint64_t retry_rand(uint64_t *state);

enum { RETRY_CLOSED = 0, RETRY_OPEN = 1, RETRY_HALF_OPEN = 2 };

typedef struct retry_breaker {
    int state;
    int failures;      /* consecutive breaker-counting failures */
    uint64_t opened_ms;
    int probing;       /* a half-open probe is in flight */
} retry_breaker_t;

/* May an attempt go to this endpoint now? Closed: yes. Open: no until the cooldown has
 * passed, then the breaker turns half-open and exactly one caller (the probe) gets yes.
 * *probe is set to 1 for that caller, who must later report success, failure or abandon. */
int retry_breaker_allow(retry_breaker_t *b, const retry_policy_t *p, uint64_t now_ms,
                        int *probe);
/* Outcome of an attempt let through by allow(). counts: the error counts for the breaker
 * (retry_class_t.breaker); success closes it. */
void retry_breaker_record(retry_breaker_t *b, const retry_policy_t *p, int ok, int counts,
                          uint64_t now_ms);
/* A probe was cancelled before an outcome: let the next caller probe instead. */
void retry_breaker_abandon(retry_breaker_t *b);
const char *retry_breaker_state_name(const retry_breaker_t *b);

#endif
