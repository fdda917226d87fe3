/*
 * rag_search: keyword (FTS5's bm25 over the postings in memory: rag_bm25.c), vector (exact
 * cosine over the KB's vectors held in one contiguous block) and hybrid (reciprocal rank
 * fusion of both) search.
 *
 * The matrix is loaded on the first vector query and kept in the rag_t; the KB's gen
 * (bumped by every committed change) tells when it is stale. The scan is a plain dot
 * product per row over unit vectors, written so the compiler vectorises it (-O2 -ftree-
 * vectorize with restrict pointers and a fixed stride), with a k-sized insertion list for
 * the best hits.
 */
#include "rag_int.h"

#include "err.h"
#include "offline/offline_text.h"
#include "jx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

static double clock_ms(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void mat_free(rag_mat_t *m)
{
    if (!m)
        return;
    free(m->ids);
    free(m->f);
    free(m->q);
    free(m);
}

void rag_mats_free(rag_t *r)
{
    while (r->mats) {
        rag_mat_t *n = r->mats->next;
        mat_free(r->mats);
        r->mats = n;
    }
}

static int mat_load(rag_t *r, const rag_kb_t *kb, rag_mat_t **out, char *err, size_t errlen)
{
    rag_mat_t **pp = &r->mats;
    for (; *pp; pp = &(*pp)->next) {
        if ((*pp)->kb_id != kb->id)
            continue;
        if ((*pp)->gen == kb->gen && (*pp)->dim == kb->dim) {
            *out = *pp;
            return 0;
        }
        rag_mat_t *stale = *pp;
        *pp = stale->next;
        mat_free(stale);
        break;
    }
    rag_mat_t *m = calloc(1, sizeof *m);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    if (!m)
        return err_set(err, errlen, ERR_NOMEM, "out of memory");
    m->kb_id = kb->id;
    m->gen = kb->gen;
    m->dim = kb->dim;
    m->int8 = !strcmp(kb->quant, "int8");
    if (sqlite3_prepare_v2(r->db, "SELECT count(*) FROM kb_chunks WHERE kb_id = ?1", -1, &s,
                           NULL))
        goto sqlfail;
    sqlite3_bind_int64(s, 1, kb->id);
    size_t cap = sqlite3_step(s) == SQLITE_ROW ? (size_t)sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    s = NULL;
    size_t d = (size_t)kb->dim;
    m->ids = malloc((cap ? cap : 1) * sizeof *m->ids);
    if (m->int8)
        m->q = malloc((cap ? cap : 1) * d);
    else
        m->f = malloc((cap ? cap : 1) * d * sizeof *m->f);
    if (!m->ids || (!m->q && !m->f)) {
        rc = err_set(err, errlen, ERR_NOMEM, "out of memory loading %zu vectors", cap);
        goto fail;
    }
    if (sqlite3_prepare_v2(r->db, "SELECT id, vec FROM kb_chunks WHERE kb_id = ?1 ORDER BY id",
                           -1, &s, NULL))
        goto sqlfail;
    sqlite3_bind_int64(s, 1, kb->id);
    size_t want = m->int8 ? d : d * sizeof(float);
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW && m->n < cap) {
        if ((size_t)sqlite3_column_bytes(s, 1) != want) {
            rc = err_set(err, errlen, ERR_INVAL,
                         "%s: chunk %lld: vector of %d bytes, the KB's dimension says %zu",
                         r->path, (long long)sqlite3_column_int64(s, 0),
                         sqlite3_column_bytes(s, 1), want);
            goto fail;
        }
        m->ids[m->n] = sqlite3_column_int64(s, 0);
        const void *b = sqlite3_column_blob(s, 1);
        if (m->int8)
            memcpy(m->q + m->n * d, b, d);
        else
            memcpy(m->f + m->n * d, b, want);
        m->n++;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        goto sqlfail;
    sqlite3_finalize(s);
    m->next = r->mats;
    r->mats = m;
    *out = m;
    return 0;
sqlfail:
    rc = err_set(err, errlen, ERR_IO, "%s: %s", r->path, sqlite3_errmsg(r->db));
fail:
    sqlite3_finalize(s);
    mat_free(m);
    return rc;
}

/* The dot products: blocks of fixed width with one partial sum per lane, which GCC's -O2
 * (cheap cost model) turns into SIMD code without -ffast-math reassociation, and a scalar
 * tail for dimensions that are not a multiple of the block (HTTP models choose theirs). */
static inline float dot_f32(const float *restrict a, const float *restrict b, size_t d)
{
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (size_t j = 0; j < 8; j++)
            s[j] += a[i + j] * b[i + j];
    float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < d; i++)
        t += a[i] * b[i];
    return t;
}

static inline int32_t dot_i8(const int8_t *restrict a, const int8_t *restrict b, size_t d)
{
    int32_t s[16] = {0};
    size_t i = 0;
    for (; i + 16 <= d; i += 16)
        for (size_t j = 0; j < 16; j++)
            s[j] += (int32_t)a[i + j] * (int32_t)b[i + j];
    int32_t t = 0;
    for (size_t j = 0; j < 16; j++)
        t += s[j];
    for (; i < d; i++)
        t += (int32_t)a[i] * (int32_t)b[i];
    return t;
}

/* The scan kernels score a block of rows into out[]. On x86-64 they are compiled twice, for
 * AVX2 and for the baseline, and the loader picks one per machine (GCC's target_clones,
 * resolved once through an ifunc): twice the lanes where the CPU has them. */
#if defined(__x86_64__) && defined(__GNUC__)
#define RAG_SIMD __attribute__((target_clones("avx2", "default")))
#else
#define RAG_SIMD
#endif

RAG_SIMD static void scores_f32(const float *restrict mat, const float *restrict q, size_t d,
                                size_t rows, float *restrict out)
{
    for (size_t r = 0; r < rows; r++)
        out[r] = dot_f32(mat + r * d, q, d);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* int8 rows against the query widened to int16 once: vpmaddwd multiplies 16 pairs and adds
 * neighbours into 8 int32 lanes per instruction (the vectoriser widens each product on its
 * own, which made int8 no faster than float32). */
__attribute__((target("avx2"))) static void scores_i8_avx2(const int8_t *restrict mat,
                                                           const int16_t *restrict q16,
                                                           size_t d, size_t rows,
                                                           float *restrict out)
{
    for (size_t r = 0; r < rows; r++) {
        const int8_t *a = mat + r * d;
        __m256i acc = _mm256_setzero_si256();
        size_t i = 0;
        for (; i + 16 <= d; i += 16) {
            __m256i va = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
            __m256i vq = _mm256_loadu_si256((const __m256i *)(q16 + i));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(va, vq));
        }
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
        int32_t t = _mm_cvtsi128_si32(s);
        for (; i < d; i++)
            t += (int32_t)a[i] * (int32_t)q16[i];
        out[r] = (float)t * (1.0f / (127.0f * 127.0f));
    }
}
#endif

static void scores_i8(const int8_t *restrict mat, const int8_t *restrict q,
                      const int16_t *restrict q16, size_t d, size_t rows, float *restrict out)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2")) {
        scores_i8_avx2(mat, q16, d, rows, out);
        return;
    }
#endif
    (void)q16;
    for (size_t r = 0; r < rows; r++)
        out[r] = (float)dot_i8(mat + r * d, q, d) * (1.0f / (127.0f * 127.0f));
}

static int in_sorted(const int64_t *v, size_t n, int64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == x;
}

int rag_vec_topk(rag_t *r, const rag_kb_t *kb, const float *q, int k, const int64_t *allow,
                 size_t nallow, int64_t *ids, double *scores, size_t *nout, char *err,
                 size_t errlen)
{
    rag_mat_t *m = NULL;
    int rc = mat_load(r, kb, &m, err, errlen);
    if (rc)
        return rc;
    size_t d = (size_t)m->dim, n = 0;
    enum { BLOCK = 1024 };
    float sc[BLOCK];
    int8_t *qq = NULL;
    int16_t *q16 = NULL;
    if (m->int8) {
        qq = malloc(d);
        q16 = malloc(d * sizeof *q16);
        if (!qq || !q16) {
            free(qq);
            free(q16);
            return err_set(err, errlen, ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < d; i++) {
            float x = q[i] * 127.0f;
            qq[i] = (int8_t)(x > 127 ? 127 : x < -127 ? -127 : (x >= 0 ? x + 0.5f : x - 0.5f));
            q16[i] = qq[i];
        }
    }
    for (size_t b = 0; b < m->n; b += BLOCK) {
        size_t rows = m->n - b < BLOCK ? m->n - b : BLOCK;
        if (m->int8)
            scores_i8(m->q + b * d, qq, q16, d, rows, sc);
        else
            scores_f32(m->f + b * d, q, d, rows, sc);
        for (size_t i = 0; i < rows; i++) {
            if (allow && !in_sorted(allow, nallow, m->ids[b + i]))
                continue;
            rag_topk_push(scores, ids, &n, (size_t)k, sc[i], m->ids[b + i]);
        }
    }
    free(qq);
    free(q16);
    *nout = n;
    return 0;
}

static int i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Chunk ids the metadata filters let through, sorted; *n 0 and *out NULL when unfiltered. */
static int filter_ids(rag_t *r, const rag_kb_t *kb, const rag_query_t *q, int64_t **out,
                      size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!q->path_glob && !q->heading)
        return 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT c.id FROM kb_chunks c JOIN kb_docs d ON d.id = c.doc_id "
                           "WHERE c.kb_id = ?1 AND (?2 IS NULL OR d.path GLOB ?2) "
                           "AND (?3 IS NULL OR instr(lower(c.heading), lower(?3)) > 0) "
                           "ORDER BY c.id",
                           -1, &s, NULL))
        return err_set(err, errlen, ERR_IO, "%s: %s", r->path, sqlite3_errmsg(r->db));
    sqlite3_bind_int64(s, 1, kb->id);
    if (q->path_glob)
        sqlite3_bind_text(s, 2, q->path_glob, -1, SQLITE_STATIC);
    if (q->heading)
        sqlite3_bind_text(s, 3, q->heading, -1, SQLITE_STATIC);
    int64_t *v = malloc(sizeof *v);
    size_t cap = 1;
    int rc = v ? 0 : ERR_NOMEM;
    while (!rc && sqlite3_step(s) == SQLITE_ROW) {
        if (*n == cap) {
            int64_t *nv = realloc(v, cap * 2 * sizeof *nv);
            if (!nv) {
                rc = ERR_NOMEM;
                break;
            }
            v = nv;
            cap *= 2;
        }
        v[(*n)++] = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    if (rc) {
        free(v);
        return err_set(err, errlen, rc, "out of memory");
    }
    qsort(v, *n, sizeof *v, i64_cmp);
    *out = v;
    return 0;
}

static int keyword_topk(rag_t *r, const rag_kb_t *kb, const rag_query_t *q, int k,
                        int64_t *ids, double *scores, size_t *nout, char *err, size_t errlen)
{
    int64_t *allow = NULL;
    size_t nallow = 0;
    *nout = 0;
    int rc = filter_ids(r, kb, q, &allow, &nallow, err, errlen);
    if (!rc && (!(q->path_glob || q->heading) || nallow))
        rc = rag_bm25_topk(r, kb, q->text, k, allow, nallow, ids, scores, nout, err, errlen);
    free(allow);
    return rc;
}

static int vector_topk(rag_t *r, const rag_kb_t *kb, const rag_query_t *q, int k, int64_t *ids,
                       double *scores, size_t *nout, rag_hits_t *usage, char *err,
                       size_t errlen)
{
    *nout = 0;
    if (!kb->dim) /* an HTTP model never used: nothing indexed yet */
        return 0;
    rag_embedder_t *e = rag_embedder_new(r, kb, err, errlen);
    if (!e)
        return ERR_NOMEM;
    float *qv = malloc((size_t)kb->dim * sizeof *qv);
    int64_t *allow = NULL;
    size_t nallow = 0;
    int dim = kb->dim, rc;
    if (!qv) {
        rc = err_set(err, errlen, ERR_NOMEM, "out of memory");
        goto done;
    }
    const char *texts[1] = {q->text};
    rc = rag_embed(e, texts, 1, qv, &dim, err, errlen);
    rag_embed_usage_t u;
    rag_embedder_usage(e, &u);
    usage->embed_tokens = u.tokens;
    usage->embed_cost = u.cost;
    if (rc)
        goto done;
    int any = 0;
    for (int i = 0; i < dim && !any; i++)
        any = qv[i] != 0;
    if (!any) /* no feature at all (only stop words): every cosine would be 0 */
        goto done;
    if ((rc = filter_ids(r, kb, q, &allow, &nallow, err, errlen)))
        goto done;
    if ((q->path_glob || q->heading) && !nallow)
        goto done;
    rc = rag_vec_topk(r, kb, qv, k, allow, nallow, ids, scores, nout, err, errlen);
done:
    free(allow);
    free(qv);
    rag_embedder_free(e);
    return rc;
}

static int fetch_hit(rag_t *r, sqlite3_stmt *s, int64_t id, double score, rag_hit_t *h)
{
    sqlite3_bind_int64(s, 1, id);
    int src = sqlite3_step(s);
    int rc = 0;
    if (src == SQLITE_ROW) {
        h->chunk_id = id;
        h->score = score;
        h->path = strdup((const char *)sqlite3_column_text(s, 0));
        h->title = strdup(sqlite3_column_text(s, 1) ? (const char *)sqlite3_column_text(s, 1) : "");
        h->heading = strdup((const char *)sqlite3_column_text(s, 2));
        h->text = strdup((const char *)sqlite3_column_text(s, 3));
        h->start = sqlite3_column_int64(s, 4);
        h->end = sqlite3_column_int64(s, 5);
        if (!h->path || !h->title || !h->heading || !h->text)
            rc = ERR_NOMEM;
    } else {
        rc = src == SQLITE_DONE ? ERR_NOTFOUND : rag_sql_rc(src);
    }
    sqlite3_reset(s);
    (void)r;
    return rc;
}

int rag_search(rag_t *r, const char *kbname, const rag_query_t *q, rag_hits_t *out, char *err,
               size_t errlen)
{
    memset(out, 0, sizeof *out);
    rag_kb_t kb;
    int rc = rag_kb_get(r, kbname, &kb, err, errlen);
    if (rc)
        return rc;
    if (!q->text || !*q->text)
        return err_set(err, errlen, ERR_INVAL, "empty query");
    if (q->mode < RAG_KEYWORD || q->mode > RAG_HYBRID)
        return err_set(err, errlen, ERR_INVAL, "mode %d: use keyword, vector or hybrid", q->mode);
    int k = q->k > 0 ? q->k : 5;
    if (k > 1000)
        k = 1000;
    if (q->embedder && *q->embedder && strcmp(q->embedder, kb.embedder))
        return err_set(err, errlen, ERR_INVAL,
                       "kb \"%s\" is embedded with %s; a query embedded with %s cannot be "
                       "compared with it",
                       kb.name, kb.embedder, q->embedder);
    /* Load (or refresh) the vectors and postings before the clock starts: latency is the
     * search's. */
    rag_mat_t *warm = NULL;
    rag_kwix_t *kwarm = NULL;
    if (q->mode != RAG_KEYWORD && kb.dim && (rc = mat_load(r, &kb, &warm, err, errlen)))
        return rc;
    if (q->mode != RAG_VECTOR && (rc = rag_kwix_load(r, &kb, &kwarm, err, errlen)))
        return rc;
    double t0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
    /* Hybrid fuses deeper lists than it returns: a chunk ranked 30th by one and 2nd by the
     * other should still win. */
    int depth = q->mode == RAG_HYBRID ? (k * 4 > 50 ? k * 4 : 50) : k;
    int64_t *kid = malloc((size_t)depth * 2 * sizeof *kid), *vid = kid ? kid + depth : NULL;
    double *ksc = malloc((size_t)depth * 2 * sizeof *ksc), *vsc = ksc ? ksc + depth : NULL;
    size_t nk = 0, nv = 0;
    int64_t *fid = NULL;
    double *fsc = NULL;
    size_t nf = 0;
    sqlite3_stmt *s = NULL;
    if (!kid || !ksc) {
        rc = err_set(err, errlen, ERR_NOMEM, "out of memory");
        goto done;
    }
    if (q->mode != RAG_VECTOR && (rc = keyword_topk(r, &kb, q, depth, kid, ksc, &nk, err, errlen)))
        goto done;
    if (q->mode != RAG_KEYWORD && (rc = vector_topk(r, &kb, q, depth, vid, vsc, &nv, out, err, errlen)))
        goto done;
    if (q->mode == RAG_KEYWORD) {
        fid = kid, fsc = ksc, nf = nk;
    } else if (q->mode == RAG_VECTOR) {
        fid = vid, fsc = vsc, nf = nv;
    } else {
        double wk = q->w_keyword, wv = q->w_vector;
        if (wk <= 0 && wv <= 0)
            wk = wv = 1;
        double c = q->rrf_k > 0 ? q->rrf_k : 60;
        /* fused list: every id of either list; ids at most 2 * depth */
        fid = malloc((nk + nv + 1) * sizeof *fid);
        fsc = malloc((nk + nv + 1) * sizeof *fsc);
        if (!fid || !fsc) {
            free(fid);
            free(fsc);
            fid = NULL;
            fsc = NULL;
            rc = err_set(err, errlen, ERR_NOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < nk; i++) {
            fid[nf] = kid[i];
            fsc[nf++] = wk / (c + (double)i + 1);
        }
        for (size_t i = 0; i < nv; i++) {
            double add = wv / (c + (double)i + 1);
            size_t j = 0;
            while (j < nf && fid[j] != vid[i])
                j++;
            if (j < nf) {
                fsc[j] += add;
            } else {
                fid[nf] = vid[i];
                fsc[nf++] = add;
            }
        }
        /* sort by fused score (stable on the keyword-first order for ties) */
        for (size_t i = 1; i < nf; i++) {
            int64_t id = fid[i];
            double sc = fsc[i];
            size_t j = i;
            while (j > 0 && fsc[j - 1] < sc) {
                fid[j] = fid[j - 1];
                fsc[j] = fsc[j - 1];
                j--;
            }
            fid[j] = id;
            fsc[j] = sc;
        }
    }
    if (nf > (size_t)k)
        nf = (size_t)k;
    out->ms = clock_ms(CLOCK_MONOTONIC) - t0;
    out->cpu_ms = clock_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
    if (!nf)
        goto done;
    if (!(out->v = calloc(nf, sizeof *out->v))) {
        rc = err_set(err, errlen, ERR_NOMEM, "out of memory");
        goto done;
    }
    if (sqlite3_prepare_v2(r->db,
                           "SELECT d.path, d.title, c.heading, c.text, c.start, c.end "
                           "FROM kb_chunks c JOIN kb_docs d ON d.id = c.doc_id WHERE c.id = ?1",
                           -1, &s, NULL)) {
        rc = err_set(err, errlen, ERR_IO, "%s: %s", r->path, sqlite3_errmsg(r->db));
        goto done;
    }
    for (size_t i = 0; i < nf; i++) {
        if ((rc = fetch_hit(r, s, fid[i], fsc[i], &out->v[out->n]))) {
            rag_hit_t *h = &out->v[out->n];
            free(h->path);
            free(h->title);
            free(h->heading);
            free(h->text);
            memset(h, 0, sizeof *h);
            if (rc == ERR_NOTFOUND) {
                rc = 0;
                continue;
            }
            err_set(err, errlen, rc, "%s: %s", r->path, sqlite3_errmsg(r->db));
            goto done;
        }
        out->n++;
    }
done:
    sqlite3_finalize(s);
    if (q->mode == RAG_HYBRID) {
        free(fid);
        free(fsc);
    }
    free(kid);
    free(ksc);
    if (rc)
        rag_hits_clear(out);
    return rc;
}

void rag_hits_clear(rag_hits_t *h)
{
    for (size_t i = 0; h->v && i < h->n; i++) {
        free(h->v[i].path);
        free(h->v[i].title);
        free(h->v[i].heading);
        free(h->v[i].text);
    }
    free(h->v);
    memset(h, 0, sizeof *h);
}

json_object *rag_hits_json(const rag_hits_t *h)
{
    json_object *a = json_object_new_array();
    if (!a)
        return NULL;
    for (size_t i = 0; i < h->n; i++) {
        const rag_hit_t *x = &h->v[i];
        json_object *o = json_object_new_object();
        char id[1200];
        snprintf(id, sizeof id, "%s#%lld", x->path, (long long)x->chunk_id);
        json_object_object_add(o, "id", json_object_new_string(id));
        json_object_object_add(o, "source", json_object_new_string(x->path));
        json_object_object_add(o, "title", json_object_new_string(x->title));
        json_object_object_add(o, "heading", json_object_new_string(x->heading));
        json_object_object_add(o, "start", json_object_new_int64(x->start));
        json_object_object_add(o, "end", json_object_new_int64(x->end));
        json_object_object_add(o, "score", jx_new_num(x->score));
        json_object_object_add(o, "text", json_object_new_string(x->text));
        json_object_array_add(a, o);
    }
    return a;
}
