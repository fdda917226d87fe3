/*
 * rag_embed: turning text into unit vectors.
 *
 * offline: the default, deterministic, no network. Features of a text are its stemmed
 * content words (the offline model's stemmer and stop list), word bigrams (weight 0.5) and
 * character trigrams of each word with boundary marks (weight 0.25, so "index"/"indexes"/
 * "indices" share most of their mass). Each feature hashes (64-bit, seeded) to one of `dim`
 * buckets with a hashed sign ("feature hashing"), its weight scaled by 1 + log(count), and
 * the vector is L2-normalised. This is a lexical model: it finds paraphrases that share
 * word stems or spellings, never synonyms ("car" vs "automobile"), which a neural model does.
 *
 * openai:MODEL: POST {OPENAI_BASE_URL}/embeddings {"model","input":[...]} through the HTTP
 * engine on a private loop, in batches of 64 inputs, each attempt with connect/idle/total
 * timeouts (AGENTD_MODEL_CONNECT_MS, AGENTD_MODEL_IDLE_MS, AGENTD_EMBED_TIMEOUT_MS) and the
 * model client's retry policy (retry.h: classification, full-jitter backoff honouring
 * Retry-After, AGENTD_RETRY_* knobs). Vectors are cached in kb_embcache by model and
 * SHA-256 of the text, so re-indexing unchanged text costs nothing.
 */
#include "rag_int.h"

#include "err.h"
#include "http.h"
#include "loop.h"
#include "offline/offline_text.h"
#include "prices.h"
#include "redact.h"
#include "retry.h"
#include "schema/schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 64

struct rag_embedder {
    rag_t *r;
    char model[RAG_NAME_MAX]; /* "offline" or "openai:NAME" */
    int dim;
    /* HTTP only */
    loop_t *lp;
    http_t *http;
    char url[1024];
    char *auth; /* "Authorization: Bearer ..." or NULL; never printed */
    retry_policy_t policy;
    uint64_t rng;
    long connect_ms, idle_ms, total_ms;
    size_t calls, inputs, cached;
    int64_t tokens;
    prices_t *prices;
    double cost;
};

/* ---- offline ---- */

/* Feature kinds live in the top 2 bits of the hash so a weight can be recovered from the
 * key: 0 word, 1 bigram, 2 trigram. */
#define KIND(h, k) (((h) & ~(3ULL << 62)) | ((uint64_t)(k) << 62))

/* Counting features: an open-addressed table (a sort of the features was a third of ingest
 * time). Slots are visited in index order afterwards, so the result is deterministic. */
typedef struct feat {
    uint64_t key;
    uint32_t n;
} feat_t;

static void feat_count(feat_t *t, size_t mask, uint64_t key)
{
    size_t i = (size_t)(key * 0x9e3779b97f4a7c15ULL >> 17) & mask;
    while (t[i].n && t[i].key != key)
        i = (i + 1) & mask;
    t[i].key = key;
    t[i].n++;
}

void rag_embed_offline(const char *text, int dim, float *out)
{
    memset(out, 0, (size_t)dim * sizeof *out);
    offline_words_t ws = {0};
    if (offline_words_add(&ws, text, 0) || !ws.n) {
        offline_words_clear(&ws);
        return;
    }
    size_t cap = 0; /* per word: itself, a bigram, and len + 2 - 2 trigrams */
    for (size_t i = 0; i < ws.n; i++)
        cap += 2 + strlen(ws.w[i]);
    size_t slots = 64;
    while (slots < cap * 2)
        slots *= 2;
    feat_t stackbuf[4096];
    feat_t *t = slots <= 4096 ? stackbuf : malloc(slots * sizeof *t);
    if (!t) {
        offline_words_clear(&ws);
        return;
    }
    memset(t, 0, slots * sizeof *t);
    size_t mask = slots - 1;
    for (size_t i = 0; i < ws.n; i++) {
        const char *w = ws.w[i];
        size_t wl = strlen(w);
        feat_count(t, mask, KIND(rag_hash64(w, wl, 1), 0));
        if (i + 1 < ws.n) {
            char bg[2 * OFFLINE_WORD_MAX + 2];
            size_t nl = strlen(ws.w[i + 1]);
            memcpy(bg, w, wl);
            bg[wl] = ' ';
            memcpy(bg + wl + 1, ws.w[i + 1], nl);
            feat_count(t, mask, KIND(rag_hash64(bg, wl + 1 + nl, 2), 1));
        }
        char b[OFFLINE_WORD_MAX + 2];
        b[0] = '^';
        memcpy(b + 1, w, wl);
        b[wl + 1] = '$';
        for (size_t j = 0; j + 3 <= wl + 2; j++)
            feat_count(t, mask, KIND(rag_hash64(b + j, 3, 3), 2));
    }
    static const float weight[3] = {1.0f, 0.5f, 0.25f};
    for (size_t i = 0; i < slots; i++) {
        if (!t[i].n)
            continue;
        uint64_t h = t[i].key;
        float w = weight[h >> 62] * (t[i].n == 1 ? 1.0f : 1.0f + logf((float)t[i].n));
        uint64_t m = h * 0x9e3779b97f4a7c15ULL;
        size_t bucket = (size_t)((m >> 20) % (uint64_t)dim);
        out[bucket] += (m >> 19 & 1) ? w : -w;
    }
    if (t != stackbuf)
        free(t);
    offline_words_clear(&ws);
    rag_normalise(out, dim);
}

void rag_normalise(float *v, int dim)
{
    double s = 0;
    for (int i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    if (s <= 0)
        return;
    float inv = (float)(1.0 / sqrt(s));
    for (int i = 0; i < dim; i++)
        v[i] *= inv;
}

/* ---- HTTP ---- */

static long env_ms(const char *name, long def)
{
    const char *v = getenv(name);
    long n = v ? strtol(v, NULL, 10) : 0;
    return n > 0 ? n : def;
}

rag_embedder_t *rag_embedder_new(rag_t *r, const rag_kb_t *kb, char *err, size_t errlen)
{
    rag_embedder_t *e = calloc(1, sizeof *e);
    if (!e) {
        err_set(err, errlen, ERR_NOMEM, "out of memory");
        return NULL;
    }
    e->r = r;
    snprintf(e->model, sizeof e->model, "%s", kb->embedder);
    e->dim = kb->dim;
    if (!strcmp(kb->embedder, "offline"))
        return e;
    const char *base = getenv("OPENAI_BASE_URL");
    if (!base || !*base)
        base = "https://api.openai.com/v1";
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    snprintf(e->url, sizeof e->url, "%.*s/embeddings", (int)bl, base);
    const char *key = getenv("OPENAI_API_KEY");
    if (key && *key) {
        size_t n = strlen(key) + 32;
        if (!(e->auth = malloc(n)))
            goto oom;
        snprintf(e->auth, n, "Authorization: Bearer %s", key);
    }
    retry_policy_default(&e->policy);
    e->policy.base_ms = (uint64_t)env_ms("AGENTD_RETRY_BASE_MS", (long)e->policy.base_ms);
    e->policy.cap_ms = (uint64_t)env_ms("AGENTD_RETRY_CAP_MS", (long)e->policy.cap_ms);
    e->policy.budget_ms = (uint64_t)env_ms("AGENTD_RETRY_BUDGET_MS", (long)e->policy.budget_ms);
    e->connect_ms = env_ms("AGENTD_MODEL_CONNECT_MS", 10000);
    e->idle_ms = env_ms("AGENTD_MODEL_IDLE_MS", 60000);
    e->total_ms = env_ms("AGENTD_EMBED_TIMEOUT_MS", 120000);
    e->rng = (uint64_t)time(NULL) * 2654435761u | 1;
    char perr[256];
    if (!(e->prices = prices_new(getenv("AGENTD_PRICES"), perr, sizeof perr))) {
        err_set(err, errlen, ERR_INVAL, "AGENTD_PRICES: %s", perr);
        rag_embedder_free(e);
        return NULL;
    }
    if (!(e->lp = loop_new()) || !(e->http = http_new(e->lp)))
        goto oom;
    return e;
oom:
    err_set(err, errlen, ERR_NOMEM, "out of memory starting the embedder");
    rag_embedder_free(e);
    return NULL;
}

void rag_embedder_free(rag_embedder_t *e)
{
    if (!e)
        return;
    http_free(e->http);
    loop_free(e->lp);
    prices_free(e->prices);
    if (e->auth) {
        memset(e->auth, 0, strlen(e->auth));
        free(e->auth);
    }
    free(e);
}


typedef struct attempt {
    loop_t *lp;
    int done, err, status;
    char *body;
    char retry_after[64];
    char msg[256];
} attempt_t;

static void on_http(void *ud, const http_resp_t *resp)
{
    attempt_t *a = ud;
    a->done = 1;
    a->err = resp->err;
    a->status = resp->status;
    snprintf(a->msg, sizeof a->msg, "%s", resp->err_msg ? resp->err_msg : "");
    a->body = resp->body ? strndup(resp->body, resp->body_len) : NULL;
    const char *ra = http_resp_header(resp, "Retry-After");
    snprintf(a->retry_after, sizeof a->retry_after, "%s", ra ? ra : "");
    loop_stop(a->lp);
}

static void on_timer(void *arg)
{
    loop_stop(arg);
}

static void wait_ms(rag_embedder_t *e, uint64_t ms)
{
    if (!ms || loop_after(e->lp, ms, on_timer, e->lp, NULL))
        return;
    loop_run(e->lp);
}

/* Parse {"data":[{"index":i,"embedding":[...]}...],"usage":{"prompt_tokens":n}} into out
 * (n rows). Sets e->dim on first use; a different dimension is an error. */
static int parse_reply(rag_embedder_t *e, const char *body, size_t n, float *out, size_t cap,
                       char *err, size_t errlen)
{
    json_object *j = NULL;
    char perr[200];
    if (schema_parse_json(body, strlen(body), &j, perr, sizeof perr))
        return err_set(err, errlen, ERR_PROTO, "%s: reply is not JSON: %s", e->url, perr);
    int rc = 0;
    json_object *data = NULL, *usage = NULL, *pt = NULL;
    if (!json_object_object_get_ex(j, "data", &data) || !json_object_is_type(data, json_type_array) ||
        json_object_array_length(data) != n) {
        rc = err_set(err, errlen, ERR_PROTO, "%s: reply: /data must be an array of %zu embeddings",
                     e->url, n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *it = json_object_array_get_idx(data, i), *idx = NULL, *emb = NULL;
        size_t at = i;
        if (json_object_object_get_ex(it, "index", &idx))
            at = (size_t)json_object_get_int64(idx);
        if (at >= n || !json_object_object_get_ex(it, "embedding", &emb) ||
            !json_object_is_type(emb, json_type_array)) {
            rc = err_set(err, errlen, ERR_PROTO, "%s: reply: /data/%zu/embedding missing", e->url,
                         i);
            goto done;
        }
        int d = (int)json_object_array_length(emb);
        if (!e->dim)
            e->dim = d;
        if (d != e->dim || d == 0 || (size_t)d > cap) {
            rc = err_set(err, errlen, ERR_PROTO,
                         "%s: reply: /data/%zu/embedding has %d numbers, the KB's dimension is %d",
                         e->url, i, d, e->dim);
            goto done;
        }
        for (int k = 0; k < d; k++)
            out[at * (size_t)d + (size_t)k] =
                (float)json_object_get_double(json_object_array_get_idx(emb, (size_t)k));
        rag_normalise(out + at * (size_t)d, d);
    }
    if (json_object_object_get_ex(j, "usage", &usage) &&
        json_object_object_get_ex(usage, "prompt_tokens", &pt)) {
        model_usage_t u = {.input_tokens = json_object_get_int64(pt)};
        e->tokens += u.input_tokens;
        if (e->prices)
            e->cost += prices_cost(e->prices, e->model, &u);
    }
done:
    json_object_put(j);
    return rc;
}

/* One batch through the retry policy. */
static int http_batch(rag_embedder_t *e, const char *const *texts, size_t n, float *out,
                      size_t cap, char *err, size_t errlen)
{
    json_object *req = json_object_new_object(), *in = json_object_new_array();
    json_object_object_add(req, "model", json_object_new_string(e->model + 7));
    for (size_t i = 0; i < n; i++)
        json_object_array_add(in, json_object_new_string(texts[i]));
    json_object_object_add(req, "input", in);
    const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    const char *headers[3] = {"Content-Type: application/json", e->auth, NULL};
    uint64_t waited = 0;
    int rc = 0;
    for (int attempt_n = 1;; attempt_n++) {
        attempt_t a = {.lp = e->lp};
        http_req_t hr = {.method = "POST",
                         .url = e->url,
                         .headers = headers,
                         .body = body,
                         .body_len = strlen(body),
                         .connect_timeout_ms = e->connect_ms,
                         .total_timeout_ms = e->total_ms,
                         .idle_timeout_ms = e->idle_ms,
                         .max_response = (size_t)256 << 20};
        e->calls++;
        e->inputs += n;
        if ((rc = http_start(e->http, &hr, on_http, &a, NULL))) {
            err_set(err, errlen, rc, "%s: cannot start the request: %s", e->url, err_str(rc));
            break;
        }
        while (!a.done)
            loop_run(e->lp);
        if (!a.err && a.status == 200) {
            rc = parse_reply(e, a.body ? a.body : "", n, out, cap, err, errlen);
            free(a.body);
            if (rc != ERR_PROTO)
                break;
            a.err = ERR_PROTO;
        } else {
            /* The server's own message, cut and with the key redacted. */
            char line[300] = "";
            const char *src = a.err ? a.msg : (a.body ? a.body : "");
            redact_copy(line, sizeof line, src, e->auth ? e->auth + 22 : NULL);
            for (char *p = line; *p; p++)
                if (*p == '\n' || *p == '\r')
                    *p = ' ';
            if (a.status)
                err_set(err, errlen, a.err ? a.err : ERR_HTTP, "%s: HTTP %d: %.200s", e->url,
                        a.status, line);
            else
                err_set(err, errlen, a.err ? a.err : ERR_HTTP, "%s: %s", e->url,
                        *line ? line : err_str(a.err));
            free(a.body);
        }
        retry_class_t cls = retry_classify(a.err, a.status);
        rc = a.err ? a.err : (a.status >= 400 ? ERR_HTTP : ERR_PROTO);
        if (!cls.retryable || attempt_n >= e->policy.max_attempts)
            break;
        uint64_t delay = retry_backoff_ms(&e->policy, attempt_n, &e->rng), ra = 0;
        if (*a.retry_after &&
            retry_after_parse(a.retry_after, (int64_t)time(NULL), &ra) == 0 && ra > delay)
            delay = ra;
        if (waited + delay > e->policy.budget_ms)
            break;
        waited += delay;
        wait_ms(e, delay);
    }
    json_object_put(req);
    return rc;
}

static int cache_get(rag_embedder_t *e, sqlite3_stmt *s, const char *hash, float *out)
{
    sqlite3_bind_text(s, 1, e->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, hash, -1, SQLITE_STATIC);
    int hit = 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        int bytes = sqlite3_column_bytes(s, 0);
        if (e->dim && bytes == e->dim * (int)sizeof(float)) {
            memcpy(out, sqlite3_column_blob(s, 0), (size_t)bytes);
            hit = 1;
        }
    }
    sqlite3_reset(s);
    return hit;
}

int rag_embed(rag_embedder_t *e, const char *const *texts, size_t n, float *out, int *dim,
              char *err, size_t errlen)
{
    if (!strcmp(e->model, "offline")) {
        for (size_t i = 0; i < n; i++)
            rag_embed_offline(texts[i], e->dim, out + i * (size_t)e->dim);
        *dim = e->dim;
        return 0;
    }
    /* Until the dimension is known nothing can come from the cache; embed one text first. */
    sqlite3_stmt *get = NULL, *put = NULL;
    int rc = 0;
    char (*hashes)[65] = calloc(n ? n : 1, sizeof *hashes);
    size_t *miss = calloc(n ? n : 1, sizeof *miss);
    const char **mtext = calloc(n ? n : 1, sizeof *mtext);
    float *tmp = NULL;
    if (!hashes || !miss || !mtext) {
        rc = err_set(err, errlen, ERR_NOMEM, "out of memory");
        goto done;
    }
    if (sqlite3_prepare_v2(e->r->db, "SELECT vec FROM kb_embcache WHERE model = ?1 AND hash = ?2",
                           -1, &get, NULL) ||
        sqlite3_prepare_v2(e->r->db,
                           "INSERT OR REPLACE INTO kb_embcache (model, hash, vec) VALUES (?1,?2,?3)",
                           -1, &put, NULL)) {
        rc = err_set(err, errlen, ERR_IO, "%s: %s", e->r->path, sqlite3_errmsg(e->r->db));
        goto done;
    }
    size_t nmiss = 0;
    for (size_t i = 0; i < n; i++) {
        rag_sha256_hex(texts[i], strlen(texts[i]), hashes[i]);
        if (e->dim && cache_get(e, get, hashes[i], out + i * (size_t)e->dim)) {
            e->cached++;
            continue;
        }
        miss[nmiss] = i;
        mtext[nmiss++] = texts[i];
    }
    for (size_t b = 0, m; b < nmiss; b += m) {
        /* an unknown dimension is learnt from a first batch of one text */
        m = !e->dim ? 1 : (nmiss - b < BATCH ? nmiss - b : BATCH);
        size_t cap = (size_t)(e->dim ? e->dim : 8192);
        float *nt = realloc(tmp, m * cap * sizeof *tmp);
        if (!nt) {
            rc = err_set(err, errlen, ERR_NOMEM, "out of memory");
            goto done;
        }
        tmp = nt;
        if ((rc = http_batch(e, mtext + b, m, tmp, cap, err, errlen)))
            goto done;
        /* one transaction per batch: a cache row is not worth an fsync of its own */
        sqlite3_exec(e->r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        for (size_t i = 0; i < m; i++) {
            size_t at = miss[b + i];
            memcpy(out + at * (size_t)e->dim, tmp + i * (size_t)e->dim,
                   (size_t)e->dim * sizeof *tmp);
            sqlite3_bind_text(put, 1, e->model, -1, SQLITE_STATIC);
            sqlite3_bind_text(put, 2, hashes[at], -1, SQLITE_STATIC);
            sqlite3_bind_blob(put, 3, tmp + i * (size_t)e->dim,
                              e->dim * (int)sizeof(float), SQLITE_STATIC);
            int src = sqlite3_step(put);
            sqlite3_reset(put);
            if (src != SQLITE_DONE) {
                rc = err_set(err, errlen, rag_sql_rc(src), "%s: %s", e->r->path,
                             sqlite3_errmsg(e->r->db));
                sqlite3_exec(e->r->db, "ROLLBACK", NULL, NULL, NULL);
                goto done;
            }
        }
        if (sqlite3_exec(e->r->db, "COMMIT", NULL, NULL, NULL)) {
            rc = err_set(err, errlen, ERR_IO, "%s: %s", e->r->path, sqlite3_errmsg(e->r->db));
            sqlite3_exec(e->r->db, "ROLLBACK", NULL, NULL, NULL);
            goto done;
        }
    }
    *dim = e->dim;
done:
    sqlite3_finalize(get);
    sqlite3_finalize(put);
    free(tmp);
    free(hashes);
    free(miss);
    free(mtext);
    return rc;
}

void rag_embedder_usage(const rag_embedder_t *e, rag_embed_usage_t *out)
{
    *out = (rag_embed_usage_t){e->calls, e->inputs, e->cached, e->tokens, e->cost};
}

int rag_embedder_is_http(const rag_embedder_t *e)
{
    return e->http != NULL;
}
