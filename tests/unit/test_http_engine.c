/* The HTTP engine against the fake provider (a child process on 127.0.0.1): POST and
 * headers, Retry-After, a stall ended by the idle timeout, a reset mid-body, the size cap,
 * cancel (done never fires), streamed chunks, and 1,000 concurrent requests. */
#include "check.h"
#include "err.h"
#include "http.h"
#include "loop.h"

#include <event2/event.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t fake_pid;
static char base_url[128];
static loop_t *lp;
static http_t *h;

static int start_fake(const char *self)
{
    char dir[1024], exe[1100], portf[128];
    snprintf(dir, sizeof dir, "%s", self);
    const char *b = getenv("BUILD");
    snprintf(exe, sizeof exe, "%s/fakellm", b ? b : dirname(dirname(dir)));
    snprintf(portf, sizeof portf, "/tmp/agentd-http-test-%d.port", getpid());
    unlink(portf);
    fake_pid = fork();
    if (fake_pid == 0) {
        freopen("/dev/null", "w", stdout);
        execl(exe, exe, "--port", "0", "--port-file", portf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(portf, "r");
        int port = 0;
        if (f && fscanf(f, "%d", &port) == 1 && port > 0) {
            fclose(f);
            unlink(portf);
            snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", port);
            return 0;
        }
        if (f)
            fclose(f);
        usleep(20000);
    }
    fprintf(stderr, "cannot start %s\n", exe);
    return -1;
}

typedef struct res {
    int done, err, status, saw_done_marker;
    size_t len, chunks, chunk_bytes;
    char retry_after[32];
    char body[256];
} res_t;

static void on_done(void *ud, const http_resp_t *r)
{
    res_t *x = ud;
    x->done++;
    x->err = r->err;
    x->status = r->status;
    x->len = r->body_len;
    snprintf(x->body, sizeof x->body, "%s", r->body);
    x->saw_done_marker = strstr(r->body, "[DONE]") != NULL;
    const char *ra = http_resp_header(r, "Retry-After");
    snprintf(x->retry_after, sizeof x->retry_after, "%s", ra ? ra : "");
}

static int on_chunk(void *ud, const char *data, size_t len)
{
    (void)data;
    res_t *x = ud;
    x->chunks++;
    x->chunk_bytes += len;
    return 0;
}

static void wait_for(int *counter, int n, int max_ms)
{
    uint64_t t0 = loop_mono_ns();
    while (*counter < n && (loop_mono_ns() - t0) / 1000000 < (uint64_t)max_ms)
        event_base_loop(loop_base(lp), EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(200);
}

static const char *chat_body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

static int post(const char *fault, res_t *x, long idle_ms, size_t cap, int stream, uint64_t *id)
{
    char url[200], hdr[64];
    snprintf(url, sizeof url, "%s/v1/chat/completions", base_url);
    snprintf(hdr, sizeof hdr, "X-Fake-Fault: %s", fault ? fault : "none");
    const char *headers[] = {"Content-Type: application/json", hdr, NULL};
    const char *sbody = "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                        "\"content\":\"a somewhat longer question to stream back\"}]}";
    http_req_t rq = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = stream ? sbody : chat_body,
        .body_len = strlen(stream ? sbody : chat_body),
        .idle_timeout_ms = idle_ms,
        .max_response = cap,
        .on_chunk = stream ? on_chunk : NULL,
    };
    return http_start(h, &rq, on_done, x, id);
}

static void test_post_ok(void)
{
    res_t x = {0};
    CHECK_EQ_INT(post(NULL, &x, 0, 0, 0, NULL), 0);
    wait_for(&x.done, 1, 5000);
    CHECK_EQ_INT(x.done, 1);
    CHECK_EQ_INT(x.err, 0);
    CHECK_EQ_INT(x.status, 200);
    CHECK(strstr(x.body, "echo: hi") != NULL);
}

static void test_429_retry_after(void)
{
    res_t x = {0};
    CHECK_EQ_INT(post("429", &x, 0, 0, 0, NULL), 0);
    wait_for(&x.done, 1, 5000);
    CHECK_EQ_INT(x.status, 429);
    CHECK_EQ_STR(x.retry_after, "1");
}

static void test_stall_times_out(void)
{
    res_t x = {0};
    uint64_t t0 = loop_mono_ns();
    CHECK_EQ_INT(post("stall", &x, 1000, 0, 0, NULL), 0);
    wait_for(&x.done, 1, 8000);
    double ms = (double)(loop_mono_ns() - t0) / 1e6;
    CHECK_EQ_INT(x.done, 1);
    CHECK_EQ_INT(x.err, ERR_TIMEOUT);
    CHECK(ms >= 900 && ms < 4000);
    printf("  stall ended by the idle timeout after %.0f ms\n", ms);
}

static void test_reset_is_transport_error(void)
{
    res_t x = {0};
    CHECK_EQ_INT(post("reset", &x, 0, 0, 0, NULL), 0);
    wait_for(&x.done, 1, 5000);
    CHECK_EQ_INT(x.done, 1);
    CHECK(x.err == ERR_HTTP || x.err == ERR_TIMEOUT);
}

static void test_size_cap(void)
{
    res_t x = {0};
    CHECK_EQ_INT(post(NULL, &x, 0, 16, 0, NULL), 0);
    wait_for(&x.done, 1, 5000);
    CHECK_EQ_INT(x.err, ERR_TOOBIG);
}

static void test_cancel_never_calls_done(void)
{
    res_t x = {0};
    uint64_t id;
    CHECK_EQ_INT(post("stall", &x, 0, 0, 0, &id), 0);
    CHECK_EQ_INT(http_cancel(h, id), 0);
    CHECK_EQ_INT(http_cancel(h, id), ERR_NOTFOUND);
    int never = 0;
    wait_for(&never, 1, 300);
    CHECK_EQ_INT(x.done, 0);
    CHECK_EQ_INT(http_active(h), 0);
}

static void test_streaming_chunks(void)
{
    res_t x = {0};
    CHECK_EQ_INT(post(NULL, &x, 0, 0, 1, NULL), 0);
    wait_for(&x.done, 1, 5000);
    CHECK_EQ_INT(x.err, 0);
    CHECK(x.chunks >= 1);
    CHECK_EQ_INT(x.chunk_bytes, x.len);
    CHECK(x.saw_done_marker);
}

static int many_done, many_ok;

static void many_cb(void *ud, const http_resp_t *r)
{
    (void)ud;
    many_done++;
    many_ok += r->status == 200 && r->err == 0;
}

static void test_thousand_concurrent(void)
{
    char url[200];
    snprintf(url, sizeof url, "%s/v1/chat/completions", base_url);
    uint64_t t0 = loop_mono_ns();
    for (int i = 0; i < 1000; i++) {
        http_req_t rq = {.method = "POST", .url = url, .body = chat_body,
                         .body_len = strlen(chat_body)};
        CHECK_EQ_INT(http_start(h, &rq, many_cb, NULL, NULL), 0);
    }
    CHECK_EQ_INT(http_active(h), 1000);
    wait_for(&many_done, 1000, 30000);
    CHECK_EQ_INT(many_done, 1000);
    CHECK_EQ_INT(many_ok, 1000);
    printf("  1000 concurrent requests: %.0f ms\n", (double)(loop_mono_ns() - t0) / 1e6);
}

int main(int argc, char **argv)
{
    (void)argc;
    signal(SIGPIPE, SIG_IGN);
    if (start_fake(argv[0]))
        return 1;
    lp = loop_new();
    h = http_new(lp);
    RUN(test_post_ok);
    RUN(test_429_retry_after);
    RUN(test_stall_times_out);
    RUN(test_reset_is_transport_error);
    RUN(test_size_cap);
    RUN(test_cancel_never_calls_done);
    RUN(test_streaming_chunks);
    RUN(test_thousand_concurrent);
    http_free(h);
    loop_free(lp);
    http_global_cleanup();
    libevent_global_shutdown();
    kill(fake_pid, SIGTERM);
    waitpid(fake_pid, NULL, 0);
    return check_report();
}
