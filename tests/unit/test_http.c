/* The HTTP engine against the fake provider (tests/helpers/fakellm.c, at $BUILD/fakellm or
 * beside this binary's directory): plain requests, headers, the three timeouts, resets,
 * the size cap, cancellation (done never fires), streaming, keep-alive reuse and 1,000
 * concurrent transfers. Every wait has a watchdog, so a hang fails instead of blocking. */
#include "check.h"
#include "err.h"
#include "http.h"
#include "loop.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_fakellm[1024];

typedef struct fake {
    pid_t pid;
    int port;
    char base[64];
} fake_t;

/* Start fakellm with extra arguments (NULL-terminated); 0 on success. */
static int fake_start(fake_t *f, const char *const *args)
{
    int fd[2];
    if (pipe(fd))
        return -1;
    const char *argv[24] = {g_fakellm, "--port", "0"};
    int n = 3;
    for (int i = 0; args && args[i] && n < 23; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    f->pid = fork();
    if (f->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a crashed test leaves no server behind */
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execv(g_fakellm, (char *const *)argv);
        _exit(127);
    }
    close(fd[1]);
    char buf[64] = "";
    size_t got = 0;
    struct pollfd pfd = {.fd = fd[0], .events = POLLIN};
    while (got < sizeof buf - 1 && poll(&pfd, 1, 5000) == 1) {
        ssize_t r = read(fd[0], buf + got, 1);
        if (r <= 0 || buf[got] == '\n')
            break;
        got++;
    }
    buf[got] = '\0';
    close(fd[0]);
    if (sscanf(buf, "PORT=%d", &f->port) != 1) {
        fprintf(stderr, "  fakellm did not start (%s): \"%s\"\n", g_fakellm, buf);
        return -1;
    }
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
    return 0;
}

static void fake_stop(fake_t *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
    }
    f->pid = 0;
}

/* ---- one engine per test, a watchdog on every wait ---- */

typedef struct env {
    loop_t *lp;
    http_t *h;
    int timed_out;
    loop_timer_t *dog;
} env_t;

static void env_init(env_t *e)
{
    memset(e, 0, sizeof *e);
    e->lp = loop_new();
    e->h = e->lp ? http_new(e->lp) : NULL;
}

static void env_done(env_t *e)
{
    http_free(e->h);
    loop_free(e->lp);
}

static void on_dog(void *arg)
{
    env_t *e = arg;
    e->dog = NULL;
    e->timed_out = 1;
    loop_stop(e->lp);
}

/* Run until something calls loop_stop, the loop runs dry, or ms pass. 0 if not timed out. */
static int run_for(env_t *e, uint64_t ms)
{
    e->timed_out = 0;
    CHECK(loop_after(e->lp, ms, on_dog, e, &e->dog) == 0);
    loop_run(e->lp);
    if (e->dog) {
        loop_timer_cancel(e->dog);
        e->dog = NULL;
    }
    return e->timed_out;
}

/* What a done callback saw, copied out (resp is valid only during the call). */
typedef struct got {
    env_t *e;
    int calls, err, status;
    char body[8192];
    size_t body_len;
    char msg[256], ctype[128], retry_after[32];
    int has_missing;
    double ms;
    int chunks;
    size_t chunk_bytes;
    char streamed[8192];
    int chunks_after_done;
    int abort_at; /* on_chunk returns 1 at this chunk number (1-based); 0: never */
    int stop;     /* loop_stop when done */
} got_t;

static void on_done(void *ud, const http_resp_t *r)
{
    got_t *g = ud;
    g->calls++;
    g->err = r->err;
    g->status = r->status;
    g->ms = r->total_ms;
    g->body_len = r->body_len;
    snprintf(g->body, sizeof g->body, "%s", r->body);
    snprintf(g->msg, sizeof g->msg, "%s", r->err_msg ? r->err_msg : "(null)");
    const char *ct = http_resp_header(r, "content-type");
    const char *ra = http_resp_header(r, "Retry-After");
    snprintf(g->ctype, sizeof g->ctype, "%s", ct ? ct : "");
    snprintf(g->retry_after, sizeof g->retry_after, "%s", ra ? ra : "");
    g->has_missing = http_resp_header(r, "X-Not-There") != NULL;
    if (g->stop)
        loop_stop(g->e->lp);
}

static int on_chunk(void *ud, const char *data, size_t len)
{
    got_t *g = ud;
    if (g->calls)
        g->chunks_after_done++;
    g->chunks++;
    if (g->chunk_bytes + len < sizeof g->streamed) {
        memcpy(g->streamed + g->chunk_bytes, data, len);
        g->streamed[g->chunk_bytes + len] = '\0';
    }
    g->chunk_bytes += len;
    return g->abort_at && g->chunks >= g->abort_at;
}

/* A URL that stays valid for the next 15 calls (a ring, so a test can hold several). */
static const char *url(const fake_t *f, const char *path)
{
    static char ring[16][256];
    static unsigned next;
    char *u = ring[next++ % 16];
    snprintf(u, sizeof ring[0], "%s%s", f->base, path);
    return u;
}

#define CHAT "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}"
#define CHAT_STREAM                                                                                \
    "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"a "           \
    "streamed answer long enough for many fragments\"}]}"

/* Start one transfer and wait for its done (or the watchdog). */
static void fetch(env_t *e, got_t *g, http_req_t *req, uint64_t watchdog_ms)
{
    g->e = e;
    g->stop = 1;
    uint64_t id = 0;
    int rc = http_start(e->h, req, on_done, g, &id);
    CHECK_EQ_INT(rc, 0);
    CHECK(id != 0);
    if (rc == 0)
        run_for(e, watchdog_ms);
}

static fake_t g_fake; /* the shared server: no faults unless a request asks */

/* ---- tests ---- */

static void test_get_and_post(void)
{
    env_t e;
    env_init(&e);
    got_t g = {0};
    http_req_t get = {.url = url(&g_fake, "/stats")};
    fetch(&e, &g, &get, 5000);
    CHECK_EQ_INT(g.calls, 1);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_INT(g.status, 200);
    CHECK(strstr(g.body, "\"requests\"") != NULL);
    CHECK_EQ_STR(g.ctype, "application/json"); /* looked up case-insensitively */
    CHECK_EQ_INT(g.has_missing, 0);
    CHECK_EQ_STR(g.msg, "");

    got_t p = {0};
    http_req_t post = {
        .url = url(&g_fake, "/v1/chat/completions"), .body = CHAT, .body_len = strlen(CHAT)};
    fetch(&e, &p, &post, 5000);
    CHECK_EQ_INT(p.calls, 1);
    CHECK_EQ_INT(p.err, 0);
    CHECK_EQ_INT(p.status, 200);
    CHECK(strstr(p.body, "\"echo: hello\"") != NULL);
    CHECK(strstr(p.body, "\"cached_tokens\"") != NULL);
    CHECK_EQ_INT(p.body_len, strlen(p.body));
    CHECK(p.ms > 0);
    /* The method can be forced: GET on a POST-only endpoint is answered 405. */
    got_t m = {0};
    http_req_t wrong = {.method = "GET", .url = url(&g_fake, "/v1/messages")};
    fetch(&e, &m, &wrong, 5000);
    CHECK_EQ_INT(m.err, 0);
    CHECK_EQ_INT(m.status, 405);
    CHECK_EQ_INT(http_active(e.h), 0);
    env_done(&e);
}

static void test_request_headers_and_auth(void)
{
    fake_t f;
    const char *args[] = {"--require-key", "sekrit", NULL};
    if (fake_start(&f, args)) {
        CHECK(0);
        return;
    }
    env_t e;
    env_init(&e);
    const char *good[] = {"Authorization: Bearer sekrit", "Content-Type: application/json", NULL};
    got_t g = {0};
    http_req_t ok = {.url = url(&f, "/v1/chat/completions"),
                     .headers = good,
                     .body = CHAT,
                     .body_len = strlen(CHAT)};
    fetch(&e, &g, &ok, 5000);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_INT(g.status, 200);
    const char *anth[] = {"x-api-key: sekrit", NULL};
    got_t a = {0};
    http_req_t ok2 = {
        .url = url(&f, "/v1/messages"), .headers = anth, .body = CHAT, .body_len = strlen(CHAT)};
    fetch(&e, &a, &ok2, 5000);
    CHECK_EQ_INT(a.status, 200);
    CHECK(strstr(a.body, "\"type\":\"message\"") != NULL);
    /* A 4xx is an answer, not a transport error: err 0, the status and the body. */
    got_t b = {0};
    http_req_t bad = {
        .url = url(&f, "/v1/chat/completions"), .body = CHAT, .body_len = strlen(CHAT)};
    fetch(&e, &b, &bad, 5000);
    CHECK_EQ_INT(b.err, 0);
    CHECK_EQ_INT(b.status, 401);
    CHECK(strstr(b.body, "invalid API key") != NULL);
    env_done(&e);
    fake_stop(&f);
}

static void test_retry_after_header(void)
{
    env_t e;
    env_init(&e);
    const char *hd[] = {"X-Fake-Fault: 429", NULL};
    got_t g = {0};
    http_req_t r = {.url = url(&g_fake, "/v1/chat/completions"),
                    .headers = hd,
                    .body = CHAT,
                    .body_len = strlen(CHAT)};
    fetch(&e, &g, &r, 5000);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_INT(g.status, 429);
    CHECK_EQ_STR(g.retry_after, "1");
    const char *hd5[] = {"X-Fake-Fault: 503", NULL};
    got_t s = {0};
    r.headers = hd5;
    fetch(&e, &s, &r, 5000);
    CHECK_EQ_INT(s.status, 503);
    CHECK_EQ_STR(s.retry_after, "");
    env_done(&e);
}

static const char *const g_stall[] = {"X-Fake-Fault: stall", NULL};

static void test_idle_timeout(void)
{
    env_t e;
    env_init(&e);
    got_t g = {0};
    http_req_t r = {.url = url(&g_fake, "/v1/chat/completions"),
                    .headers = g_stall,
                    .body = CHAT,
                    .body_len = strlen(CHAT),
                    .idle_timeout_ms = 300};
    fetch(&e, &g, &r, 5000);
    CHECK_EQ_INT(g.calls, 1);
    CHECK_EQ_INT(g.err, ERR_TIMEOUT);
    CHECK_EQ_INT(g.status, 0);
    CHECK(strstr(g.msg, "idle") != NULL);
    CHECK(g.ms >= 290 && g.ms < 3000); /* its own setting, not the 30 s default */
    env_done(&e);
}

static void test_total_timeout(void)
{
    env_t e;
    env_init(&e);
    got_t g = {0};
    http_req_t r = {.url = url(&g_fake, "/v1/chat/completions"),
                    .headers = g_stall,
                    .body = CHAT,
                    .body_len = strlen(CHAT),
                    .idle_timeout_ms = 10000,
                    .total_timeout_ms = 250};
    fetch(&e, &g, &r, 5000);
    CHECK_EQ_INT(g.err, ERR_TIMEOUT);
    CHECK(g.ms >= 240 && g.ms < 3000);
    CHECK(g.msg[0] != '\0');
    /* A slow drip keeps an idle timer happy but not a total deadline. */
    const char *drip[] = {"X-Fake-Fault: drip", NULL};
    got_t d = {0};
    r.headers = drip;
    r.idle_timeout_ms = 200;
    r.total_timeout_ms = 400;
    fetch(&e, &d, &r, 5000);
    CHECK_EQ_INT(d.err, ERR_TIMEOUT);
    CHECK(d.ms >= 390 && d.ms < 3000);
    CHECK(d.body_len > 0); /* some bytes came, then the deadline */
    env_done(&e);
}

/* Ended transfers' easy handles serve the next ones, reset: nothing of a request (method,
 * body, headers, total deadline) carries into the next on the same engine. */
static void test_reused_handles_forget(void)
{
    env_t e;
    env_init(&e);
    for (int round = 0; round < 2; round++) {
        got_t t = {0};
        http_req_t stall = {.url = url(&g_fake, "/v1/chat/completions"),
                            .headers = g_stall,
                            .body = CHAT,
                            .body_len = strlen(CHAT),
                            .total_timeout_ms = 200};
        fetch(&e, &t, &stall, 5000);
        CHECK_EQ_INT(t.err, ERR_TIMEOUT);
        got_t m = {0};
        http_req_t forced = {.method = "GET", .url = url(&g_fake, "/v1/messages")};
        fetch(&e, &m, &forced, 5000);
        CHECK_EQ_INT(m.status, 405);
        /* No method, body, header or deadline given: a plain GET, answered in full. */
        got_t g = {0};
        http_req_t get = {.url = url(&g_fake, "/stats")};
        fetch(&e, &g, &get, 5000);
        CHECK_EQ_INT(g.err, 0);
        CHECK_EQ_INT(g.status, 200);
        CHECK(strstr(g.body, "\"requests\"") != NULL);
        /* A 503 asked by a header, then the same request without it: a 200. */
        const char *hd[] = {"X-Fake-Fault: 503", NULL};
        got_t f = {0}, p = {0};
        http_req_t post = {.url = url(&g_fake, "/v1/chat/completions"),
                           .headers = hd,
                           .body = CHAT,
                           .body_len = strlen(CHAT)};
        fetch(&e, &f, &post, 5000);
        CHECK_EQ_INT(f.status, 503);
        post.headers = NULL;
        fetch(&e, &p, &post, 5000);
        CHECK_EQ_INT(p.status, 200);
        CHECK(strstr(p.body, "\"echo: hello\"") != NULL);
    }
    CHECK_EQ_INT(http_active(e.h), 0);
    env_done(&e);
}

/* A listener with a full accept queue: Linux drops further SYNs, so connect hangs. */
static void test_connect_timeout(void)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    CHECK(bind(ls, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(listen(ls, 0) == 0);
    CHECK(getsockname(ls, (struct sockaddr *)&sa, &sl) == 0);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)!connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
    }
    usleep(50000);
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    env_t e;
    env_init(&e);
    got_t g = {0};
    http_req_t r = {.url = u, .connect_timeout_ms = 300};
    fetch(&e, &g, &r, 5000);
    CHECK_EQ_INT(g.err, ERR_TIMEOUT);
    CHECK(g.ms >= 290 && g.ms < 3000);
    if (g.err != ERR_TIMEOUT)
        fprintf(stderr, "  connect: err %d (%s) after %.0f ms\n", g.err, g.msg, g.ms);
    env_done(&e);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(ls);
}

static void test_refused_and_reset(void)
{
    /* A port nobody listens on (bound, then closed). */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    bind(s, (struct sockaddr *)&sa, sizeof sa);
    getsockname(s, (struct sockaddr *)&sa, &sl);
    close(s);
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    env_t e;
    env_init(&e);
    got_t g = {0};
    http_req_t r = {.url = u};
    fetch(&e, &g, &r, 5000);
    CHECK_EQ_INT(g.err, ERR_HTTP);
    CHECK(strstr(g.msg, "onnect") != NULL); /* libcurl's own words, e.g. "Failed to connect" */
    CHECK(g.ms < 3000);

    static const char *const kinds[] = {"X-Fake-Fault: reset", "X-Fake-Fault: truncated"};
    for (int i = 0; i < 2; i++) {
        const char *hd[] = {kinds[i], NULL};
        got_t x = {0};
        http_req_t rr = {.url = url(&g_fake, "/v1/chat/completions"),
                         .headers = hd,
                         .body = CHAT_STREAM,
                         .body_len = strlen(CHAT_STREAM)};
        fetch(&e, &x, &rr, 5000);
        CHECK_EQ_INT(x.calls, 1);
        CHECK_EQ_INT(x.err, ERR_HTTP);
        CHECK_EQ_INT(x.status, 200);
        CHECK(x.body_len > 0 && strstr(x.body, "[DONE]") == NULL);
    }
    /* malformed is a transport success: the caller judges the body. */
    const char *mal[] = {"X-Fake-Fault: malformed", NULL};
    got_t m = {0};
    http_req_t mr = {.url = url(&g_fake, "/v1/chat/completions"),
                     .headers = mal,
                     .body = CHAT,
                     .body_len = strlen(CHAT)};
    fetch(&e, &m, &mr, 5000);
    CHECK_EQ_INT(m.err, 0);
    CHECK_EQ_INT(m.status, 200);
    env_done(&e);
}

static void test_size_cap(void)
{
    env_t e;
    env_init(&e);
    /* Content-Length known: refused before the body is read. */
    got_t g = {0};
    http_req_t r = {.url = url(&g_fake, "/v1/chat/completions"),
                    .body = CHAT,
                    .body_len = strlen(CHAT),
                    .max_response = 64};
    fetch(&e, &g, &r, 5000);
    CHECK_EQ_INT(g.err, ERR_TOOBIG);
    CHECK(g.body_len <= 64);
    /* Chunked (no length): cut when the bytes pass the cap. */
    const char *drip[] = {"X-Fake-Fault: drip", NULL};
    got_t d = {0};
    r.headers = drip;
    fetch(&e, &d, &r, 5000);
    CHECK_EQ_INT(d.err, ERR_TOOBIG);
    CHECK(d.body_len <= 64);
    CHECK(d.ms < 3000);
    /* Exactly at the cap is fine. */
    got_t full = {0};
    http_req_t fr = r;
    fr.headers = NULL;
    fr.max_response = 0;
    fetch(&e, &full, &fr, 5000);
    got_t at = {0};
    fr.max_response = full.body_len;
    fetch(&e, &at, &fr, 5000);
    CHECK_EQ_INT(at.err, 0);
    CHECK_EQ_INT(at.body_len, full.body_len);
    env_done(&e);
}

static void test_cancel(void)
{
    env_t e;
    env_init(&e);
    http_req_t r = {.url = url(&g_fake, "/v1/chat/completions"),
                    .headers = g_stall,
                    .body = CHAT,
                    .body_len = strlen(CHAT),
                    .idle_timeout_ms = 200};
    got_t a = {0}, b = {0}, c = {0};
    a.e = b.e = c.e = &e;
    uint64_t ia, ib, ic;
    CHECK_EQ_INT(http_start(e.h, &r, on_done, &a, &ia), 0);
    CHECK_EQ_INT(http_start(e.h, &r, on_done, &b, &ib), 0);
    http_req_t ok = {
        .url = url(&g_fake, "/v1/chat/completions"), .body = CHAT, .body_len = strlen(CHAT)};
    CHECK_EQ_INT(http_start(e.h, &ok, on_done, &c, &ic), 0);
    CHECK_EQ_INT(http_active(e.h), 3);
    /* Cancelled before the loop ever ran, and cancelled in flight. */
    CHECK_EQ_INT(http_cancel(e.h, ia), 0);
    CHECK_EQ_INT(http_cancel(e.h, ia), ERR_NOTFOUND);
    run_for(&e, 100);
    CHECK_EQ_INT(c.calls, 1); /* the uncancelled one finished */
    CHECK_EQ_INT(http_cancel(e.h, ic), ERR_NOTFOUND);
    CHECK_EQ_INT(http_cancel(e.h, ib), 0);
    CHECK_EQ_INT(http_active(e.h), 0);
    run_for(&e, 600); /* past the idle timeout: a live timer would fire done */
    CHECK_EQ_INT(a.calls, 0);
    CHECK_EQ_INT(b.calls, 0);
    CHECK_EQ_INT(http_cancel(e.h, 999999), ERR_NOTFOUND);
    env_done(&e);
}

/* done cancels a sibling, starts a follow-up; the engine stays consistent. */
typedef struct chain {
    env_t *e;
    http_req_t next;
    uint64_t sibling;
    got_t follow;
    int cancel_rc, start_rc;
} chain_t;

static void chain_done(void *ud, const http_resp_t *r)
{
    chain_t *c = ud;
    (void)r;
    c->cancel_rc = http_cancel(c->e->h, c->sibling);
    c->follow.e = c->e;
    c->follow.stop = 1;
    c->start_rc = http_start(c->e->h, &c->next, on_done, &c->follow, NULL);
}

static void test_reentrant_done(void)
{
    env_t e;
    env_init(&e);
    http_req_t stall = {.url = url(&g_fake, "/v1/chat/completions"),
                        .headers = g_stall,
                        .body = CHAT,
                        .body_len = strlen(CHAT),
                        .idle_timeout_ms = 300};
    http_req_t ok = {
        .url = url(&g_fake, "/v1/chat/completions"), .body = CHAT, .body_len = strlen(CHAT)};
    got_t sib = {0};
    sib.e = &e;
    chain_t c = {.e = &e, .next = ok};
    CHECK_EQ_INT(http_start(e.h, &stall, on_done, &sib, &c.sibling), 0);
    CHECK_EQ_INT(http_start(e.h, &ok, chain_done, &c, NULL), 0);
    run_for(&e, 3000);
    CHECK_EQ_INT(c.cancel_rc, 0);
    CHECK_EQ_INT(c.start_rc, 0);
    CHECK_EQ_INT(c.follow.calls, 1);
    CHECK_EQ_INT(c.follow.status, 200);
    run_for(&e, 500);
    CHECK_EQ_INT(sib.calls, 0);
    CHECK_EQ_INT(http_active(e.h), 0);
    env_done(&e);
}

/* Freeing the engine with transfers in flight and completions queued: no callbacks,
 * nothing leaked (the ASan build checks). */
static void free_from_done(void *ud, const http_resp_t *r)
{
    env_t *e = ud;
    (void)r;
    http_free(e->h);
    e->h = NULL;
    loop_stop(e->lp);
}

static void test_free_in_flight(void)
{
    env_t e;
    env_init(&e);
    http_req_t stall = {.url = url(&g_fake, "/v1/chat/completions"),
                        .headers = g_stall,
                        .body = CHAT,
                        .body_len = strlen(CHAT)};
    got_t g[8];
    memset(g, 0, sizeof g);
    for (int i = 0; i < 8; i++)
        CHECK_EQ_INT(http_start(e.h, &stall, on_done, &g[i], NULL), 0);
    http_req_t ok = {.url = url(&g_fake, "/stats")};
    CHECK_EQ_INT(http_start(e.h, &ok, free_from_done, &e, NULL), 0);
    CHECK_EQ_INT(run_for(&e, 3000), 0);
    CHECK(e.h == NULL);
    run_for(&e, 100);
    for (int i = 0; i < 8; i++)
        CHECK_EQ_INT(g[i].calls, 0);
    env_done(&e);

    /* And from outside any callback, with a completion already queued. */
    env_init(&e);
    got_t q = {0};
    CHECK_EQ_INT(http_start(e.h, &ok, on_done, &q, NULL), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(http_start(e.h, &stall, on_done, &g[i], NULL), 0);
    run_for(&e, 150);
    http_free(e.h);
    e.h = NULL;
    run_for(&e, 100);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(g[i].calls, 0);
    env_done(&e);
}

static void test_streaming_chunks(void)
{
    env_t e;
    env_init(&e);
    const char *drip[] = {"X-Fake-Fault: drip", NULL};
    got_t g = {0};
    http_req_t r = {.url = url(&g_fake, "/v1/chat/completions"),
                    .headers = drip,
                    .body = CHAT_STREAM,
                    .body_len = strlen(CHAT_STREAM),
                    .on_chunk = on_chunk};
    fetch(&e, &g, &r, 30000);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_INT(g.status, 200);
    CHECK(g.chunks >= 5); /* 16 bytes per 50 ms arrive as separate chunks */
    CHECK_EQ_INT(g.chunks_after_done, 0);
    CHECK_EQ_INT(g.chunk_bytes, g.body_len);
    CHECK_EQ_STR(g.streamed, g.body);
    CHECK(strstr(g.body, "data: [DONE]") != NULL);
    CHECK_EQ_STR(g.ctype, "text/event-stream");

    /* The consumer aborts at its second chunk: done comes now with ERR_CANCELLED, not
     * when the drip would have ended. */
    got_t a = {0};
    a.abort_at = 2;
    fetch(&e, &a, &r, 30000);
    CHECK_EQ_INT(a.calls, 1);
    CHECK_EQ_INT(a.err, ERR_CANCELLED);
    CHECK_EQ_INT(a.chunks, 2);
    CHECK(a.ms < g.ms / 2);

    /* Without drip, a fast stream still arrives through on_chunk, all of it. */
    got_t f = {0};
    r.headers = NULL;
    fetch(&e, &f, &r, 5000);
    CHECK_EQ_INT(f.err, 0);
    CHECK(f.chunks >= 1);
    CHECK_EQ_INT(f.chunk_bytes, f.body_len);
    env_done(&e);
}

/* Sequential requests reuse one kept-alive connection. */
typedef struct seq {
    env_t *e;
    http_req_t req;
    int left, ok;
} seq_t;

static void seq_done(void *ud, const http_resp_t *r)
{
    seq_t *s = ud;
    s->ok += r->err == 0 && r->status == 200;
    if (--s->left > 0)
        http_start(s->e->h, &s->req, seq_done, s, NULL);
    else
        loop_stop(s->e->lp);
}

static long stat_of(const char *body, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(body, pat);
    return p ? atol(p + strlen(pat)) : -1;
}

static void test_keepalive(void)
{
    env_t e;
    env_init(&e);
    got_t s0 = {0};
    http_req_t st = {.url = url(&g_fake, "/stats")};
    fetch(&e, &s0, &st, 5000);
    long c0 = stat_of(s0.body, "connections");
    seq_t s = {.e = &e,
               .req = {.url = url(&g_fake, "/v1/chat/completions"),
                       .body = CHAT,
                       .body_len = strlen(CHAT)},
               .left = 20};
    http_start(e.h, &s.req, seq_done, &s, NULL);
    run_for(&e, 10000);
    CHECK_EQ_INT(s.ok, 20);
    got_t s1 = {0};
    st.url = url(&g_fake, "/stats");
    fetch(&e, &s1, &st, 5000);
    long c1 = stat_of(s1.body, "connections");
    CHECK(c0 > 0);
    CHECK_EQ_INT(c1 - c0, 0); /* 21 more requests, not one new connection */
    env_done(&e);
}

/* 1,000 transfers in flight at once, each with its own body, each answer checked. */
typedef struct many {
    env_t *e;
    int left, ok, wrong;
} many_t;

typedef struct one {
    many_t *m;
    int i;
    char body[160];
} one_t;

static void many_done(void *ud, const http_resp_t *r)
{
    one_t *o = ud;
    char want[64];
    snprintf(want, sizeof want, "\"echo: request %d\"", o->i);
    if (r->err == 0 && r->status == 200 && strstr(r->body, want))
        o->m->ok++;
    else if (o->m->wrong++ < 3)
        fprintf(stderr, "  request %d: err %d status %d %s\n", o->i, r->err, r->status, r->err_msg);
    if (--o->m->left == 0)
        loop_stop(o->m->e->lp);
}

static double concurrent(const fake_t *f, int n, uint64_t watchdog_ms)
{
    env_t e;
    env_init(&e);
    many_t m = {.e = &e, .left = n};
    one_t *ones = calloc((size_t)n, sizeof *ones);
    char u[128];
    snprintf(u, sizeof u, "%s/v1/chat/completions", f->base);
    uint64_t t0 = loop_mono_ns();
    for (int i = 0; i < n; i++) {
        ones[i].m = &m;
        ones[i].i = i;
        snprintf(ones[i].body, sizeof ones[i].body,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"request %d\"}]}",
                 i);
        http_req_t r = {.url = u, .body = ones[i].body, .body_len = strlen(ones[i].body)};
        if (http_start(e.h, &r, many_done, &ones[i], NULL) != 0)
            m.left--;
    }
    CHECK_EQ_INT(http_active(e.h), n);
    CHECK_EQ_INT(run_for(&e, watchdog_ms), 0);
    double ms = (double)(loop_mono_ns() - t0) / 1e6;
    CHECK_EQ_INT(m.ok, n);
    CHECK_EQ_INT(m.wrong, 0);
    CHECK_EQ_INT(http_active(e.h), 0);
    env_done(&e);
    free(ones);
    return ms;
}

static void test_1000_concurrent(void)
{
    fake_t f;
    const char *args[] = {"--latency-ms", "20", NULL};
    if (fake_start(&f, args)) {
        CHECK(0);
        return;
    }
    double ms = concurrent(&f, 1000, 60000);
    printf("     1000 concurrent transfers: %.0f ms wall\n", ms);
    const char *n = getenv("HTTP_TEST_CONCURRENCY"); /* a bigger run, on request */
    if (n && atoi(n) > 0) {
        ms = concurrent(&f, atoi(n), 600000);
        printf("     %d concurrent transfers: %.0f ms wall\n", atoi(n), ms);
    }
    fake_stop(&f);
}

static int find_fakellm(const char *argv0)
{
    const char *b = getenv("BUILD");
    if (b && *b) {
        snprintf(g_fakellm, sizeof g_fakellm, "%s/fakellm", b);
        if (access(g_fakellm, X_OK) == 0)
            return 0;
    }
    char self[1024];
    snprintf(self, sizeof self, "%s", argv0);
    snprintf(g_fakellm, sizeof g_fakellm, "%s/../fakellm", dirname(self));
    if (access(g_fakellm, X_OK) == 0)
        return 0;
    fprintf(stderr, "fakellm not found at $BUILD/fakellm or %s (build it: make build-all)\n",
            g_fakellm);
    return -1;
}

int main(int argc, char **argv)
{
    (void)argc;
    signal(SIGPIPE, SIG_IGN);
    if (find_fakellm(argv[0]) || fake_start(&g_fake, NULL)) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    RUN(test_get_and_post);
    RUN(test_request_headers_and_auth);
    RUN(test_retry_after_header);
    RUN(test_idle_timeout);
    RUN(test_total_timeout);
    RUN(test_reused_handles_forget);
    RUN(test_connect_timeout);
    RUN(test_refused_and_reset);
    RUN(test_size_cap);
    RUN(test_cancel);
    RUN(test_reentrant_done);
    RUN(test_free_in_flight);
    RUN(test_streaming_chunks);
    RUN(test_keepalive);
    RUN(test_1000_concurrent);
    fake_stop(&g_fake);
    http_global_cleanup();
    libevent_global_shutdown();
    return check_report();
}
