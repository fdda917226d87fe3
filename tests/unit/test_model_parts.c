/* The model client's parts that need no network: SSE parsing, redaction, prices, the
 * cache key (SHA-256 and normalisation), model_check_creds. */
#include "check.h"
#include "err.h"
#include "model.h"
#include "model_int.h"
#include "prices.h"
#include "redact.h"
#include "sse.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct evs {
    char log[2048];
    int n;
} evs_t;

static int on_ev(void *ud, const char *event, const char *data, size_t len)
{
    evs_t *e = ud;
    size_t l = strlen(e->log);
    snprintf(e->log + l, sizeof e->log - l, "[%s|%.*s]", event, (int)len, data);
    e->n++;
    return 0;
}

static const char stream[] = ": comment\r\n"
                             "event: message_start\r\n"
                             "data: {\"a\":1}\r\n"
                             "\r\n"
                             "data: line1\n"
                             "data:line2\n"
                             "id: 7\n"
                             "\n"
                             "data: [DONE]\r\r";

static void test_sse_whole_and_split(void)
{
    const char *want = "[message_start|{\"a\":1}][|line1\nline2][|[DONE]]";
    evs_t e = {.n = 0};
    sse_t p;
    sse_init(&p, on_ev, &e, 0);
    CHECK_EQ_INT(sse_feed(&p, stream, sizeof stream - 1), 0);
    CHECK_EQ_STR(e.log, want);
    CHECK(!sse_pending(&p));
    sse_clear(&p);
    /* Every split point, including inside CRLF pairs, gives the same events. */
    for (size_t cut = 1; cut < sizeof stream - 1; cut++) {
        evs_t f = {.n = 0};
        sse_init(&p, on_ev, &f, 0);
        CHECK_EQ_INT(sse_feed(&p, stream, cut), 0);
        CHECK_EQ_INT(sse_feed(&p, stream + cut, sizeof stream - 1 - cut), 0);
        if (strcmp(f.log, want) != 0) {
            fprintf(stderr, "  cut %zu: %s\n", cut, f.log);
            CHECK(0);
        }
        sse_clear(&p);
    }
    /* One byte at a time. */
    evs_t g = {.n = 0};
    sse_init(&p, on_ev, &g, 0);
    for (size_t i = 0; i < sizeof stream - 1; i++)
        sse_feed(&p, stream + i, 1);
    CHECK_EQ_STR(g.log, want);
    sse_clear(&p);
}

static void test_sse_truncated_and_limit(void)
{
    evs_t e = {.n = 0};
    sse_t p;
    sse_init(&p, on_ev, &e, 64);
    CHECK_EQ_INT(sse_feed(&p, "data: {\"par", 11), 0);
    CHECK_EQ_INT(e.n, 0);
    CHECK(sse_pending(&p));
    char big[200];
    memset(big, 'x', sizeof big);
    CHECK_EQ_INT(sse_feed(&p, big, sizeof big), ERR_TOOBIG);
    sse_clear(&p);
}

static void test_redact(void)
{
    char out[256];
    redact_copy(out, sizeof out, "Incorrect API key provided: sk-abc123456789xyz. See docs", NULL);
    CHECK(strstr(out, "abc123456789") == NULL);
    CHECK(strstr(out, "sk-[REDACTED]") != NULL);
    redact_copy(out, sizeof out, "header Authorization: Bearer tok_12345678 sent", NULL);
    CHECK_EQ_STR(out, "header Authorization: Bearer [REDACTED] sent");
    redact_copy(out, sizeof out, "key=mysecretvalue; again mysecretvalue", "mysecretvalue");
    CHECK_EQ_STR(out, "key=[REDACTED]; again [REDACTED]");
    redact_copy(out, sizeof out, "x-api-key: abcd\nnext", NULL);
    CHECK_EQ_STR(out, "x-api-key: [REDACTED] next");
    /* Truncation keeps the string terminated and never shows half a secret. */
    redact_copy(out, 12, "ab mysecretvalue", "mysecretvalue");
    CHECK_EQ_STR(out, "ab [REDACTE");
    redact_copy(out, sizeof out, "task-1234567890 is fine", NULL);
    CHECK_EQ_STR(out, "task-1234567890 is fine");
}

static void test_prices(void)
{
    char err[256];
    prices_t *p = prices_new(NULL, err, sizeof err);
    CHECK(p != NULL);
    price_t pr;
    CHECK_EQ_INT(prices_lookup(p, "openai:gpt-4o-mini-2024-07-18", &pr), 0);
    CHECK(pr.input == 0.15 && pr.output == 0.60);
    CHECK_EQ_INT(prices_lookup(p, "openai:gpt-4o", &pr), 0);
    CHECK(pr.input == 2.50);
    CHECK_EQ_INT(prices_lookup(p, "openai:no-such-model", &pr), ERR_NOTFOUND);
    model_usage_t u = {.input_tokens = 1000000, .output_tokens = 1000000, .cached_tokens = 0};
    double c = prices_cost(p, "openai:gpt-4o-mini", &u);
    CHECK(c > 0.7499 && c < 0.7501);
    u.cached_tokens = 1000000;
    c = prices_cost(p, "openai:gpt-4o-mini", &u);
    CHECK(c > 0.6749 && c < 0.6751);
    CHECK(prices_cost(p, "ollama:llama3.1", &u) == 0);
    CHECK(prices_cost(p, "offline", &u) == 0);
    prices_free(p);

    char path[] = "/tmp/agentd-prices-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *json = "{\"openai:any\": {\"input\": 1, \"output\": 2},"
                       " \"openai:gpt-4o*\": {\"input\": 9, \"output\": 9, \"cached_input\": 1}}";
    CHECK(write(fd, json, strlen(json)) == (ssize_t)strlen(json));
    close(fd);
    p = prices_new(path, err, sizeof err);
    CHECK(p != NULL);
    u = (model_usage_t){.input_tokens = 500000, .output_tokens = 250000};
    c = prices_cost(p, "openai:any", &u);
    CHECK(c > 0.9999 && c < 1.0001);
    /* The file wins over the shipped table for the same pattern. */
    CHECK_EQ_INT(prices_lookup(p, "openai:gpt-4o-2024", &pr), 0);
    CHECK(pr.input == 9);
    /* But a longer shipped pattern still wins over a shorter file pattern? No: file first. */
    CHECK_EQ_INT(prices_lookup(p, "openai:gpt-4o-mini", &pr), 0);
    CHECK(pr.input == 9);
    prices_free(p);

    const char *bad = "{\"openai:x\": {\"input\": \"cheap\", \"output\": 1}}";
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad));
    close(fd);
    err[0] = '\0';
    CHECK(prices_new(path, err, sizeof err) == NULL);
    CHECK(strstr(err, path) != NULL && strstr(err, "openai:x") != NULL);
    unlink(path);
    CHECK(prices_new("/nonexistent/prices.json", err, sizeof err) == NULL);
    CHECK(strstr(err, "/nonexistent/prices.json") != NULL);
}

static void test_sha256(void)
{
    char hex[65];
    model_sha256_hex("", 0, hex);
    CHECK_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    model_sha256_hex("abc", 3, hex);
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    model_sha256_hex(m, strlen(m), hex);
    CHECK_EQ_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_cache_key(void)
{
    json_object *m1 = json_tokener_parse("[{\"role\":\"user\",\"content\":\"hi\"}]");
    json_object *m2 = json_tokener_parse("[{\"content\":\"hi\",\"role\":\"user\"}]");
    json_object *m3 = json_tokener_parse("[{\"content\":\"hi!\",\"role\":\"user\"}]");
    model_req_t r = {.messages = m1, .temperature = -1};
    char k1[65], k2[65], k3[65], k4[65];
    CHECK_EQ_INT(model_cache_key("openai:a", &r, k1), 0);
    r.messages = m2;
    CHECK_EQ_INT(model_cache_key("openai:a", &r, k2), 0);
    CHECK_EQ_STR(k1, k2);
    r.messages = m3;
    CHECK_EQ_INT(model_cache_key("openai:a", &r, k3), 0);
    CHECK(strcmp(k1, k3) != 0);
    r.messages = m1;
    CHECK_EQ_INT(model_cache_key("openai:b", &r, k4), 0);
    CHECK(strcmp(k1, k4) != 0);
    r.temperature = 0.5;
    CHECK_EQ_INT(model_cache_key("openai:a", &r, k4), 0);
    CHECK(strcmp(k1, k4) != 0);
    json_object_put(m1);
    json_object_put(m2);
    json_object_put(m3);
}

static void test_resolve(void)
{
    char why[400];
    unsetenv("AGENTD_CACHE");
    unsetenv("OPENAI_API_KEY");
    unsetenv("OPENAI_BASE_URL");
    CHECK(model_check_creds("openai:gpt-4o-mini", NULL, why, sizeof why) == ERR_INVAL);
    CHECK(strstr(why, "OPENAI_API_KEY is not set") && strstr(why, "OPENAI_BASE_URL"));
    setenv("OPENAI_API_KEY", "k", 1);
    CHECK(model_check_creds("openai:gpt-4o-mini", NULL, why, sizeof why) == 0);
    unsetenv("OPENAI_API_KEY");
    /* A compatible server at another URL needs no key; OpenAI's own URL does. */
    setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1", 1);
    CHECK(model_check_creds("openai:llama3", NULL, why, sizeof why) == 0);
    setenv("OPENAI_BASE_URL", "https://api.openai.com/v1/", 1);
    CHECK(model_check_creds("openai:llama3", NULL, why, sizeof why) == ERR_INVAL);
    unsetenv("OPENAI_BASE_URL");
    json_object *ep = json_tokener_parse(
        "{\"openai\": {\"base_url\": \"http://10.0.0.5:8000/v1\"},"
        " \"anthropic\": {\"api_key_env\": \"ACME_KEY\"}}");
    CHECK(model_check_creds("openai:x", ep, why, sizeof why) == 0);
    unsetenv("ACME_KEY");
    CHECK(model_check_creds("anthropic:x", ep, why, sizeof why) == ERR_INVAL);
    CHECK(strstr(why, "ACME_KEY is not set") && strstr(why, "endpoints.anthropic.api_key_env"));
    json_object_put(ep);
    CHECK(model_check_creds("ollama:llama3.1", NULL, why, sizeof why) == 0);
    CHECK(model_check_creds("offline", NULL, why, sizeof why) == 0);
    unsetenv("ANTHROPIC_API_KEY");
    CHECK(model_check_creds("anthropic:claude-3-5-haiku-latest", NULL, why, sizeof why) ==
          ERR_INVAL);
    CHECK(strstr(why, "ANTHROPIC_API_KEY"));
    setenv("AGENTD_CACHE", "replay", 1);
    CHECK(model_check_creds("anthropic:claude-3-5-haiku-latest", NULL, why, sizeof why) == 0);
    unsetenv("AGENTD_CACHE");
}

int main(void)
{
    RUN(test_sse_whole_and_split);
    RUN(test_sse_truncated_and_limit);
    RUN(test_redact);
    RUN(test_prices);
    RUN(test_sha256);
    RUN(test_cache_key);
    RUN(test_resolve);
    return check_report();
}
