/*
 * The example tools in tools/ (calculator, current_time, http_get) and the ctx.http door,
 * against an HTTP server on 127.0.0.1 running on the same loop (libevent's evhttp).
 */
#include "check.h"
#include "err.h"
#include "http.h"
#include "loop.h"
#include "tools.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct res {
    int done;
    char status[16];
    char error[1024];
    char result[8192];
    int attempts;
} res_t;

static loop_t *lp;
static http_t *hp;
static tools_t *tl;
static struct evhttp *srv;
static int port;
static int hits_flaky;
static tools_policy_t policy;
static tools_call_info_t info = {.run_id = "r", .call_id = "c", .policy = &policy};

static void on_done(void *ud, const tools_result_t *r)
{
    res_t *x = ud;
    x->done++;
    snprintf(x->status, sizeof x->status, "%s", tcall_state_name(r->status));
    snprintf(x->error, sizeof x->error, "%s", r->error ? r->error : "");
    snprintf(x->result, sizeof x->result, "%s",
             r->result ? json_object_to_json_string_ext(
                             r->result, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                       : "null");
    x->attempts = r->attempts;
    /* The HTTP server keeps the loop alive; stop it once the call has reported. */
    loop_stop(lp);
}

static void run_one(const char *name, const char *args, res_t *r)
{
    memset(r, 0, sizeof *r);
    CHECK_EQ_INT(tools_call(tl, name, args, &info, on_done, r, NULL), 0);
    loop_run(lp);
    CHECK_EQ_INT(r->done, 1);
}

/* /hello: text; /json: echoes method and body as JSON; /flaky: 503 twice then 200;
 * /big: 300 KB. */
static void reply_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out, "late");
    evhttp_send_reply(arg, 200, "OK", out);
    evbuffer_free(out);
}

static void serve(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *uri = evhttp_request_get_uri(req);
    if (strcmp(uri, "/hang") == 0)
        return; /* never answered; the client's cancel closes the connection */
    if (strcmp(uri, "/slow") == 0) {
        struct timeval tv = {0, 100000};
        event_base_once(loop_base(lp), -1, EV_TIMEOUT, reply_later, req, &tv);
        return;
    }
    struct evbuffer *out = evbuffer_new();
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    int code = 200;
    if (strncmp(uri, "/hello", 6) == 0) {
        evhttp_add_header(oh, "Content-Type", "text/plain; charset=utf-8");
        evbuffer_add_printf(out, "hello from %s", uri);
    } else if (strcmp(uri, "/json") == 0) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        char *body = calloc(1, n + 1);
        evbuffer_remove(in, body, n);
        const char *ua = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Test");
        json_object *o = json_object_new_object();
        json_object_object_add(o, "method",
                               json_object_new_string(evhttp_request_get_command(req) ==
                                                              EVHTTP_REQ_POST
                                                          ? "POST"
                                                          : "GET"));
        json_object_object_add(o, "body", json_object_new_string(body));
        json_object_object_add(o, "x_test", json_object_new_string(ua ? ua : ""));
        evhttp_add_header(oh, "Content-Type", "application/json");
        evbuffer_add_printf(out, "%s", json_object_to_json_string(o));
        json_object_put(o);
        free(body);
    } else if (strcmp(uri, "/flaky") == 0) {
        code = ++hits_flaky <= 2 ? 503 : 200;
        evbuffer_add_printf(out, "attempt %d", hits_flaky);
    } else if (strcmp(uri, "/big") == 0) {
        for (int i = 0; i < 30000; i++)
            evbuffer_add(out, "0123456789", 10);
    } else {
        code = 404;
        evbuffer_add_printf(out, "not found");
    }
    evhttp_send_reply(req, code, code == 200 ? "OK" : "ERR", out);
    evbuffer_free(out);
}

static void setup(void)
{
    char err[512];
    lp = loop_new();
    hp = http_new(lp);
    tl = tools_new(lp, hp, NULL);
    if (tools_load_dir(tl, "tools", err, sizeof err))
        fprintf(stderr, "load tools: %s\n", err);
    if (tools_load_file(tl, "tests/fixtures/tools/good/http_door.lua", err, sizeof err) ||
        tools_load_file(tl, "tests/fixtures/tools/good/http_hang.lua", err, sizeof err))
        fprintf(stderr, "load fixtures: %s\n", err);
    srv = evhttp_new(loop_base(lp));
    struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(srv, "127.0.0.1", 0);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(s);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    evhttp_set_gencb(srv, serve, NULL);
    policy.agent = "test";
    policy.http_allow = json_tokener_parse("[\"127.0.0.1\"]");
}

static void teardown(void)
{
    tools_free(tl);
    http_free(hp);
    evhttp_free(srv);
    loop_free(lp);
    json_object_put(policy.http_allow);
    http_global_cleanup();
}

static void test_calculator(void)
{
    res_t r;
    run_one("calculator", "{\"expression\":\"2 * (3 + 4) - 10 / 4\"}", &r);
    CHECK_EQ_STR(r.result, "{\"expression\":\"2 * (3 + 4) - 10 / 4\",\"result\":11.5}");
    run_one("calculator", "{\"expression\":\"round(89.99 * 1.2, 2)\"}", &r);
    CHECK(strstr(r.result, "\"result\":107.99") != NULL);
    run_one("calculator", "{\"expression\":\"-2^2 + max(1, 7, 3) + sqrt(16)\"}", &r);
    CHECK(strstr(r.result, "\"result\":7}") != NULL);
    run_one("calculator", "{\"expression\":\"1/0\"}", &r);
    CHECK_EQ_STR(r.status, "error");
    CHECK(strstr(r.error, "division by zero") != NULL);
    run_one("calculator", "{\"expression\":\"os.execute('id')\"}", &r);
    CHECK_EQ_STR(r.status, "error");
    CHECK(strstr(r.error, "unknown name 'os'") != NULL);
    run_one("calculator", "{\"expression\":\"(1 + 2\"}", &r);
    CHECK(strstr(r.error, "expected ')'") != NULL);
}

static void test_current_time(void)
{
    res_t r;
    time_t before = time(NULL);
    run_one("current_time", "{}", &r);
    CHECK_EQ_STR(r.status, "ok");
    json_object *j = json_tokener_parse(r.result), *v = NULL;
    CHECK(j && json_object_object_get_ex(j, "unix", &v));
    long long unix_s = v ? json_object_get_int64(v) : 0;
    CHECK(unix_s >= before && unix_s <= before + 2);
    char want[32];
    struct tm tm;
    time_t u = (time_t)unix_s;
    gmtime_r(&u, &tm);
    strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%SZ", &tm);
    CHECK(json_object_object_get_ex(j, "iso8601", &v));
    CHECK_EQ_STR(v ? json_object_get_string(v) : "", want);
    json_object_put(j);
    run_one("current_time", "{\"utc_offset\":\"-05:30\"}", &r);
    CHECK(strstr(r.result, "-05:30\"") != NULL);
}

static void test_http_get(void)
{
    res_t r;
    char args[300];
    snprintf(args, sizeof args, "{\"url\":\"http://127.0.0.1:%d/hello?x=1\"}", port);
    run_one("http_get", args, &r);
    CHECK_EQ_STR(r.status, "ok");
    CHECK(strstr(r.result, "\"body\":\"hello from /hello?x=1\"") != NULL);
    CHECK(strstr(r.result, "\"status\":200") && strstr(r.result, "text/plain"));
    /* 5xx is raised so the idempotent tool is retried with backoff. */
    snprintf(args, sizeof args, "{\"url\":\"http://127.0.0.1:%d/flaky\"}", port);
    run_one("http_get", args, &r);
    CHECK_EQ_STR(r.status, "ok");
    CHECK_EQ_INT(r.attempts, 3);
    snprintf(args, sizeof args, "{\"url\":\"http://127.0.0.1:%d/big\",\"max_chars\":100}", port);
    run_one("http_get", args, &r);
    CHECK(strstr(r.result, "\"truncated\":true") != NULL);
    run_one("http_get", "{\"url\":\"http://example.com/\"}", &r);
    CHECK_EQ_STR(r.status, "error");
    CHECK(strstr(r.error, "host 'example.com' is not in this agent's http_allow list") != NULL);
    /* A policy refusal is not transient: the retrying tool gives up at once. */
    CHECK_EQ_INT(r.attempts, 1);
    /* A closed port: a transport error, reported (after the retries) as one line. */
    run_one("http_get", "{\"url\":\"http://127.0.0.1:1/\"}", &r);
    CHECK_EQ_STR(r.status, "error");
    CHECK(strstr(r.error, "ctx.http: GET http://127.0.0.1:1/") != NULL);
}

static void test_http_door(void)
{
    res_t r;
    char args[300];
    snprintf(args, sizeof args, "{\"url\":\"http://127.0.0.1:%d/json\"}", port);
    run_one("http_door", args, &r);
    CHECK_EQ_STR(r.status, "ok");
    CHECK(strstr(r.result, "\"method\":\"POST\"") != NULL);
    CHECK(strstr(r.result, "\"x_test\":\"yes\"") != NULL);
    CHECK(strstr(r.result, "\"sent\":\"{\\\"n\\\":1}\"") != NULL);
}

static int pending;
static void count_done(void *ud, const tools_result_t *r)
{
    res_t *x = ud;
    x->done++;
    snprintf(x->status, sizeof x->status, "%s", tcall_state_name(r->status));
    if (--pending == 0)
        loop_stop(lp);
}

static void test_http_parallel(void)
{
    /* Eight GETs of a URL that answers after 100 ms, in one turn: the doors do not block. */
    res_t r[8];
    char args[200];
    snprintf(args, sizeof args, "{\"url\":\"http://127.0.0.1:%d/slow\"}", port);
    pending = 8;
    uint64_t t0 = loop_mono_ns();
    for (int i = 0; i < 8; i++) {
        memset(&r[i], 0, sizeof r[i]);
        CHECK_EQ_INT(tools_call(tl, "http_get", args, &info, count_done, &r[i], NULL), 0);
    }
    loop_run(lp);
    double ms = (double)(loop_mono_ns() - t0) / 1e6;
    printf("  8 parallel http_get calls of a 100 ms endpoint: %.1f ms\n", ms);
    for (int i = 0; i < 8; i++)
        CHECK_EQ_STR(r[i].status, "ok");
    CHECK(ms < 600);
}

static void test_http_timeout_cancels(void)
{
    res_t r;
    char args[200];
    snprintf(args, sizeof args, "{\"url\":\"http://127.0.0.1:%d/hang\"}", port);
    uint64_t t0 = loop_mono_ns();
    run_one("http_hang", args, &r);
    double ms = (double)(loop_mono_ns() - t0) / 1e6;
    CHECK_EQ_STR(r.status, "timeout");
    CHECK(ms >= 290 && ms < 1500);
    CHECK_EQ_INT((long)http_active(hp), 0);
}

int main(void)
{
    setup();
    RUN(test_calculator);
    RUN(test_current_time);
    RUN(test_http_get);
    RUN(test_http_door);
    RUN(test_http_parallel);
    RUN(test_http_timeout_cancels);
    teardown();
    return check_report();
}
