/*
 * retry: see retry.h. The classification table is the policy users read about in
 * docs/models.md; keep the two in step.
 */
#include "retry.h"

#include "err.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void retry_policy_default(retry_policy_t *p)
{
    p->max_attempts = 4;
    p->base_ms = 500;
    p->cap_ms = 20000;
    p->budget_ms = 60000;
    p->breaker_threshold = 5;
    p->breaker_cooldown_ms = 30000;
}

static retry_class_t cls(const char *c, int retryable, int breaker)
{
    retry_class_t r = {c, retryable, breaker};
    return r;
}

retry_class_t retry_classify(int err, int status)
{
    if (err == ERR_CANCELLED)
        return cls("cancelled", 0, 0);
    if (status >= 400) {
        /* 429 and 408 mean "not now": retry, and let a flood of them open the breaker. */
        if (status == 429)
            return cls("rate_limited", 1, 1);
        if (status == 408)
            return cls("timeout", 1, 1);
        if (status == 409 || status == 425)
            return cls("client", 1, 0);
        if (status == 401 || status == 403)
            return cls("auth", 0, 0);
        if (status >= 500)
            return cls("server", 1, 1);
        /* 400, 404, 422 and the rest: the same request fails the same way again. */
        return cls("client", 0, 0);
    }
    switch (err) {
    case 0: return cls("", 0, 0);
    case ERR_TIMEOUT: return cls("timeout", 1, 1);
    case ERR_HTTP: return cls("transport", 1, 1);
    /* A cut-off or garbled body is usually a proxy or server hiccup: try again. */
    case ERR_PROTO: return cls("malformed", 1, 1);
    /* An oversized reply will be oversized again. */
    case ERR_TOOBIG: return cls("malformed", 0, 0);
    case ERR_NOMEM: return cls("transport", 1, 0);
    default: return cls("client", 0, 0);
    }
}

uint64_t retry_rand(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

uint64_t retry_backoff_ms(const retry_policy_t *p, int retry, uint64_t *rng)
{
    if (retry < 1)
        retry = 1;
    uint64_t ceil = p->base_ms;
    /* Double without overflowing; the cap bounds it anyway. */
    for (int i = 1; i < retry && ceil < p->cap_ms; i++)
        ceil = ceil > UINT64_MAX / 2 ? UINT64_MAX : ceil * 2;
    if (ceil > p->cap_ms)
        ceil = p->cap_ms;
    if (!ceil)
        return 0;
    return ceil == UINT64_MAX ? retry_rand(rng) : retry_rand(rng) % (ceil + 1);
}

static int month_of(const char *s)
{
    static const char *const names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                        "jul", "aug", "sep", "oct", "nov", "dec"};
    for (int i = 0; i < 12; i++)
        if (strncasecmp(s, names[i], 3) == 0)
            return i;
    return -1;
}

/* Reads "HH:MM:SS" at *s. */
static int parse_clock(const char **s, struct tm *tm)
{
    char *end;
    tm->tm_hour = (int)strtol(*s, &end, 10);
    if (*end != ':')
        return -1;
    tm->tm_min = (int)strtol(end + 1, &end, 10);
    if (*end != ':')
        return -1;
    tm->tm_sec = (int)strtol(end + 1, &end, 10);
    *s = end;
    return 0;
}

/* The three date forms RFC 9110 makes recipients accept, parsed without the C locale's
 * help (strptime's %b depends on LC_TIME). */
static int parse_http_date(const char *v, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *s = v;
    while (*s && !isspace((unsigned char)*s) && *s != ',')
        s++;
    char *end;
    if (*s == ',') { /* IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" or RFC 850 "06-Nov-94" */
        s++;
        while (isspace((unsigned char)*s))
            s++;
        tm.tm_mday = (int)strtol(s, &end, 10);
        if (end == s || (*end != ' ' && *end != '-'))
            return ERR_INVAL;
        if ((tm.tm_mon = month_of(end + 1)) < 0)
            return ERR_INVAL;
        s = end + 4;
        if (*s == '-')
            s++;
        long year = strtol(s, &end, 10);
        if (end == s)
            return ERR_INVAL;
        if (year < 100)
            year += year < 70 ? 2000 : 1900;
        tm.tm_year = (int)year - 1900;
        s = end;
        while (isspace((unsigned char)*s))
            s++;
        if (parse_clock(&s, &tm))
            return ERR_INVAL;
    } else { /* asctime "Sun Nov  6 08:49:37 1994" */
        while (isspace((unsigned char)*s))
            s++;
        if ((tm.tm_mon = month_of(s)) < 0)
            return ERR_INVAL;
        s += 3;
        tm.tm_mday = (int)strtol(s, &end, 10);
        if (end == s)
            return ERR_INVAL;
        s = end;
        while (isspace((unsigned char)*s))
            s++;
        if (parse_clock(&s, &tm))
            return ERR_INVAL;
        long year = strtol(s, &end, 10);
        if (end == s)
            return ERR_INVAL;
        tm.tm_year = (int)year - 1900;
    }
    if (tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60)
        return ERR_INVAL;
    *out = (int64_t)timegm(&tm);
    return 0;
}

int retry_after_parse(const char *value, int64_t now_wall_s, uint64_t *out_ms)
{
    if (!value)
        return ERR_INVAL;
    while (isspace((unsigned char)*value))
        value++;
    if (isdigit((unsigned char)*value)) {
        char *end;
        unsigned long long secs = strtoull(value, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
        /* Only whole delta-seconds are valid, but "1.5" is common enough to round up. */
        if (*end == '.') {
            secs++;
            end++;
            while (isdigit((unsigned char)*end))
                end++;
        }
        if (*end)
            return ERR_INVAL;
        if (secs > 86400ull * 365)
            secs = 86400ull * 365;
        *out_ms = (uint64_t)secs * 1000;
        return 0;
    }
    int64_t when;
    if (parse_http_date(value, &when))
        return ERR_INVAL;
    *out_ms = when > now_wall_s ? (uint64_t)(when - now_wall_s) * 1000 : 0;
    return 0;
}

int retry_breaker_allow(retry_breaker_t *b, const retry_policy_t *p, uint64_t now_ms,
                        int *probe)
{
    *probe = 0;
    if (b->state == RETRY_CLOSED)
        return 1;
    if (b->state == RETRY_OPEN) {
        if (now_ms - b->opened_ms < p->breaker_cooldown_ms)
            return 0;
        b->state = RETRY_HALF_OPEN;
        b->probing = 0;
    }
    if (b->probing)
        return 0;
    b->probing = 1;
    *probe = 1;
    return 1;
}

void retry_breaker_record(retry_breaker_t *b, const retry_policy_t *p, int ok, int counts,
                          uint64_t now_ms)
{
    if (ok || !counts) {
        /* The endpoint answered (even a 400 is an answer): it is healthy. */
        b->state = RETRY_CLOSED;
        b->failures = 0;
        b->probing = 0;
        return;
    }
    b->failures++;
    if (b->state == RETRY_HALF_OPEN) {
        b->state = RETRY_OPEN;
        b->opened_ms = now_ms;
        b->probing = 0;
    } else if (b->state == RETRY_CLOSED && p->breaker_threshold > 0 &&
               b->failures >= p->breaker_threshold) {
        b->state = RETRY_OPEN;
        b->opened_ms = now_ms;
    }
}

void retry_breaker_abandon(retry_breaker_t *b)
{
    if (b->state == RETRY_HALF_OPEN)
        b->probing = 0;
}

const char *retry_breaker_state_name(const retry_breaker_t *b)
{
    switch (b->state) {
    case RETRY_OPEN: return "open";
    case RETRY_HALF_OPEN: return "half_open";
    default: return "closed";
    }
}
