/*
 * model_cache: the response cache's keys and entries. Two requests get the same key exactly
 * when a model would see the same thing, whatever order the caller built its JSON objects
 * in, so the key is SHA-256 over a canonical serialisation (sorted keys, json-c's number and
 * string forms) streamed straight into the hash. An entry is the validated answer
 * ({"v":1, "model", "message", "finish", "usage"}) as JSON text in the store.
 */
#include "model_int.h"
#include "jx.h"

#include "err.h"
#include "store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sha256 {
    uint32_t h[8];
    uint8_t buf[64];
    size_t nbuf;
    uint64_t bits;
} sha256_t;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(sha256_t *s, const uint8_t *p)
{
    uint32_t w[64], a[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(a, s->h, sizeof a);
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = ROR(a[4], 6) ^ ROR(a[4], 11) ^ ROR(a[4], 25);
        uint32_t ch = (a[4] & a[5]) ^ (~a[4] & a[6]);
        uint32_t t1 = a[7] + S1 + ch + K[i] + w[i];
        uint32_t S0 = ROR(a[0], 2) ^ ROR(a[0], 13) ^ ROR(a[0], 22);
        uint32_t maj = (a[0] & a[1]) ^ (a[0] & a[2]) ^ (a[1] & a[2]);
        uint32_t t2 = S0 + maj;
        memmove(a + 1, a, 7 * sizeof a[0]);
        a[4] += t1;
        a[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        s->h[i] += a[i];
}

static void sha_init(sha256_t *s)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->nbuf = 0;
    s->bits = 0;
}

static void sha_add(sha256_t *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->bits += (uint64_t)len * 8;
    while (len) {
        size_t n = 64 - s->nbuf < len ? 64 - s->nbuf : len;
        memcpy(s->buf + s->nbuf, p, n);
        s->nbuf += n;
        p += n;
        len -= n;
        if (s->nbuf == 64) {
            sha_block(s, s->buf);
            s->nbuf = 0;
        }
    }
}

static void sha_hex(sha256_t *s, char out[65])
{
    uint64_t bits = s->bits;
    uint8_t pad = 0x80, zero = 0, len[8];
    sha_add(s, &pad, 1);
    while (s->nbuf != 56)
        sha_add(s, &zero, 1);
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha_add(s, len, 8);
    for (int i = 0; i < 8; i++)
        snprintf(out + 8 * i, 9, "%08x", s->h[i]);
}

void model_sha256_hex(const void *data, size_t len, char out[65])
{
    sha256_t s;
    sha_init(&s);
    sha_add(&s, data, len);
    sha_hex(&s, out);
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void put_str(sha256_t *s, const char *str)
{
    json_object *j = json_object_new_string(str);
    const char *t = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
    sha_add(s, t, strlen(t));
    json_object_put(j);
}

static int canon(sha256_t *s, json_object *o, int depth)
{
    if (depth > 200)
        return ERR_LIMIT;
    if (json_object_is_type(o, json_type_object)) {
        size_t n = (size_t)json_object_object_length(o), i = 0;
        const char **keys = malloc((n ? n : 1) * sizeof *keys);
        if (!keys)
            return ERR_NOMEM;
        json_object_object_foreach(o, k, v)
        {
            (void)v;
            keys[i++] = k;
        }
        qsort(keys, n, sizeof *keys, cmp_keys);
        sha_add(s, "{", 1);
        int rc = 0;
        for (i = 0; i < n && !rc; i++) {
            if (i)
                sha_add(s, ",", 1);
            put_str(s, keys[i]);
            sha_add(s, ":", 1);
            rc = canon(s, json_object_object_get(o, keys[i]), depth + 1);
        }
        sha_add(s, "}", 1);
        free(keys);
        return rc;
    }
    if (json_object_is_type(o, json_type_array)) {
        sha_add(s, "[", 1);
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            if (i)
                sha_add(s, ",", 1);
            int rc = canon(s, json_object_array_get_idx(o, i), depth + 1);
            if (rc)
                return rc;
        }
        sha_add(s, "]", 1);
        return 0;
    }
    const char *t = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : "null";
    sha_add(s, t, strlen(t));
    return 0;
}

int model_cache_key(const char *model, const model_req_t *req, char out[65])
{
    sha256_t s;
    char num[64];
    sha_init(&s);
    /* Versioned, so a change to what the key covers never serves stale entries. */
    sha_add(&s, "agentd-cache-v1\n", 16);
    put_str(&s, model);
    int rc = canon(&s, req->messages, 0);
    sha_add(&s, "\n", 1);
    if (!rc)
        rc = canon(&s, req->tools, 0);
    sha_add(&s, "\n", 1);
    if (!rc)
        rc = canon(&s, req->output_schema, 0);
    snprintf(num, sizeof num, "\n%.6g\n%d", req->temperature < 0 ? -1.0 : req->temperature,
             req->max_tokens);
    sha_add(&s, num, strlen(num));
    if (rc)
        return rc;
    sha_hex(&s, out);
    return 0;
}

const char *model_finish_reason(const char *f)
{
    if (f && strcmp(f, "tool_calls") == 0)
        return "tool_calls";
    if (f && strcmp(f, "length") == 0)
        return "length";
    return "stop";
}

int model_cache_load(store_t *st, const char *key, json_object **msg, const char **fin)
{
    char *text = NULL;
    int rc = store_cache_get(st, key, &text);
    if (rc)
        return rc;
    json_object *e = jx_parse(text), *m = NULL, *f = NULL;
    free(text);
    /* An entry that does not parse is a miss: the answer is fetched (and stored) again. */
    if (!json_object_object_get_ex(e, "message", &m) || !json_object_is_type(m, json_type_object)) {
        json_object_put(e);
        return ERR_NOTFOUND;
    }
    json_object_object_get_ex(e, "finish", &f);
    *fin = model_finish_reason(f ? json_object_get_string(f) : NULL);
    *msg = json_object_get(m);
    json_object_put(e);
    return 0;
}

int model_cache_save(store_t *st, const char *key, const char *model, json_object *msg,
                     const char *fin, const model_usage_t *u)
{
    json_object *e = json_object_new_object(), *us = json_object_new_object();
    if (!e || !us) {
        json_object_put(e);
        json_object_put(us);
        return ERR_NOMEM;
    }
    json_object_object_add(e, "v", json_object_new_int(1));
    json_object_object_add(e, "model", json_object_new_string(model));
    json_object_object_add(e, "message", json_object_get(msg));
    json_object_object_add(e, "finish", json_object_new_string(model_finish_reason(fin)));
    json_object_object_add(us, "input_tokens", json_object_new_int64(u->input_tokens));
    json_object_object_add(us, "output_tokens", json_object_new_int64(u->output_tokens));
    json_object_object_add(us, "cached_tokens", json_object_new_int64(u->cached_tokens));
    json_object_object_add(e, "usage", us);
    int rc = store_cache_put(st, key, model,
                             json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
    json_object_put(e);
    return rc;
}
