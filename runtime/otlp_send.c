/*
 * otlp_send: see otlp_send.h. One request at a time on a private loop: the command waits
 * for each outcome anyway, and the loop keeps libcurl driven the way the rest of agentd
 * drives it (http.h), timers included.
 */
#include "otlp_send.h"

#include "err.h"
#include "http.h"
#include "jx.h"
#include "loop.h"
#include "retry.h"

#include <ctype.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int otlp_send_url(const char *endpoint, char *out, size_t len)
{
    if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)
        return err_set(out, len, ERR_INVAL,
                       "--endpoint \"%s\": not an http:// or https:// URL (for example "
                       "http://127.0.0.1:4318)",
                       endpoint);
    size_t n = strlen(endpoint);
    while (n > 8 && endpoint[n - 1] == '/')
        n--;
    const char *suffix = "/v1/traces";
    int has =
        n >= strlen(suffix) && !strncmp(endpoint + n - strlen(suffix), suffix, strlen(suffix));
    if ((size_t)snprintf(out, len, "%.*s%s", (int)n, endpoint, has ? "" : suffix) >= len)
        return err_set(out, len, ERR_INVAL, "--endpoint: URL too long");
    return 0;
}

static void trim(char *s)
{
    size_t n = strlen(s), k = 0;
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    while (isspace((unsigned char)s[k]))
        k++;
    memmove(s, s + k, n - k + 1);
}

/* %XX decoding in place (the W3C baggage encoding the OTel environment variables use). */
static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '%' && isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2])) {
            char hex[3] = {s[1], s[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

int otlp_send_env_headers(const char *spec, char **list, int n, int cap)
{
    char *copy = strdup(spec ? spec : "");
    if (!copy)
        return ERR_NOMEM;
    int rc = n;
    char *save = NULL;
    for (char *pair = strtok_r(copy, ",", &save); pair && rc >= 0;
         pair = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(pair, '=');
        if (!eq) {
            trim(pair);
            if (*pair)
                rc = ERR_INVAL;
            continue;
        }
        *eq = 0;
        char *k = pair, *v = eq + 1;
        trim(k);
        trim(v);
        unescape(k);
        unescape(v);
        if (!*k) {
            rc = ERR_INVAL;
            break;
        }
        if (rc + 1 >= cap)
            break;
        if (asprintf(&list[rc], "%s: %s", k, v) < 0) {
            rc = ERR_NOMEM;
            break;
        }
        list[++rc] = NULL;
    }
    free(copy);
    return rc;
}

typedef struct attempt {
    loop_t *lp;
    int done;
    int err, status;
    char retry_after[64];
    char *body;
} attempt_t;

static void on_done(void *ud, const http_resp_t *r)
{
    attempt_t *a = ud;
    a->done = 1;
    a->err = r->err;
    a->status = r->status;
    const char *ra = http_resp_header(r, "Retry-After");
    snprintf(a->retry_after, sizeof a->retry_after, "%s", ra ? ra : "");
    a->body = r->body ? strndup(r->body, r->body_len < 2000 ? r->body_len : 2000) : NULL;
    if (!a->body && r->err_msg && *r->err_msg)
        a->body = strdup(r->err_msg);
}

static void on_timer(void *arg)
{
    *(int *)arg = 1;
}

/* Run the loop until *flag is set. */
static int wait_for(loop_t *lp, const int *flag)
{
    while (!*flag)
        if (event_base_loop(loop_base(lp), EVLOOP_ONCE) < 0)
            return ERR_INTERNAL;
    return 0;
}

/* OTLP/HTTP: 429, 502, 503 and 504 are worth another try; other statuses are not. */
static int retryable(const attempt_t *a)
{
    if (a->status >= 200)
        return a->status == 429 || a->status == 502 || a->status == 503 || a->status == 504;
    return retry_classify(a->err, 0).retryable;
}

/* The receiver's own words: an OTLP Status {"message": …} body, else the body's start. */
static void describe(const attempt_t *a, char *out, size_t len)
{
    if (!a->status) {
        snprintf(out, len, "%s", a->body ? a->body : err_str(a->err));
        return;
    }
    json_object *o = a->body ? jx_parse(a->body) : NULL;
    const char *msg = o ? jx_str(o, "message") : NULL;
    if (!msg && a->body)
        msg = a->body;
    snprintf(out, len, "HTTP %d%s%.300s", a->status, msg && *msg ? ": " : "", msg ? msg : "");
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    json_object_put(o);
}

int otlp_send(const otlp_send_opts_t *o, const char *body, size_t len, otlp_send_result_t *res)
{
    memset(res, 0, sizeof *res);
    retry_policy_t pol;
    retry_policy_default(&pol);
    pol.base_ms = o->base_ms ? o->base_ms : 500;
    pol.cap_ms = o->cap_ms ? o->cap_ms : 10000;
    int max = o->max_attempts > 0 ? o->max_attempts : 5;
    uint64_t rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)(uintptr_t)res ^ 0x9e3779b97f4a7c15ull;
    const char *hdrs[66];
    int nh = 0;
    hdrs[nh++] = "Content-Type: application/json";
    for (int i = 0; o->headers && o->headers[i] && nh < 65; i++)
        hdrs[nh++] = o->headers[i];
    hdrs[nh] = NULL;
    loop_t *lp = loop_new();
    http_t *h = lp ? http_new(lp) : NULL;
    int rc = h ? ERR_HTTP : ERR_NOMEM;
    for (int i = 1; h && i <= max; i++) {
        attempt_t a = {.lp = lp};
        http_req_t req = {.method = "POST",
                          .url = o->url,
                          .headers = hdrs,
                          .body = body,
                          .body_len = len,
                          .total_timeout_ms = o->timeout_ms ? o->timeout_ms : 10000,
                          .max_response = 1 << 20};
        res->attempts = i;
        int src = http_start(h, &req, on_done, &a, NULL);
        if (src == 0)
            src = wait_for(lp, &a.done);
        if (src) {
            rc = src;
            snprintf(res->message, sizeof res->message, "%s", err_str(src));
            free(a.body);
            break;
        }
        res->status = a.status;
        if (a.status >= 200 && a.status < 300) {
            /* Accepted; a partial success names the spans the receiver dropped. */
            json_object *ob = a.body ? jx_parse(a.body) : NULL, *ps = NULL;
            if (ob && json_object_object_get_ex(ob, "partialSuccess", &ps) && ps) {
                json_object *rj = jx_get(ps, "rejectedSpans");
                res->rejected = rj ? json_object_get_int64(rj) : 0;
                const char *em = jx_str(ps, "errorMessage");
                if (res->rejected > 0 || (em && *em))
                    snprintf(res->message, sizeof res->message,
                             "receiver rejected %lld span(s)%s%.300s", (long long)res->rejected,
                             em && *em ? ": " : "", em ? em : "");
            }
            json_object_put(ob);
            rc = res->rejected > 0 ? ERR_HTTP : 0;
            free(a.body);
            break;
        }
        describe(&a, res->message, sizeof res->message);
        int again = retryable(&a) && i < max;
        if (again) {
            uint64_t wait = retry_backoff_ms(&pol, i, &rng), ra = 0;
            if (a.retry_after[0] && retry_after_parse(a.retry_after, time(NULL), &ra) == 0 &&
                ra > wait)
                wait = ra < 60000 ? ra : 60000;
            int fired = 0;
            if (loop_after(lp, wait, on_timer, &fired, NULL) == 0)
                wait_for(lp, &fired);
        }
        free(a.body);
        if (!again)
            break;
    }
    http_free(h);
    loop_free(lp);
    return rc;
}
