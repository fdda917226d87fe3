/*
 * rag_bm25: keyword ranking — FTS5's own bm25, evaluated over an in-memory copy of the KB's
 * FTS5 postings.
 *
 * Why: `ORDER BY rank` in FTS5 scores every row that matches any query term through the
 * auxiliary-function API (about 1.3 µs a row here), and an OR of a question's words matches
 * most of a large KB: 120 ms of CPU for a query at 100,000 chunks. The postings themselves
 * are small, so they are read once from FTS5 (the fts5vocab "instance" table: term, row,
 * column) into one contiguous array grouped by term — a row index and the column-weighted
 * term frequency per (term, row) — and a query walks only its terms' lists.
 *
 * FTS5 stays the tokenizer, the index and the source of truth: the query is tokenized by
 * FTS5's own tokenizer ("porter unicode61", as the table was made), and the score is FTS5's
 * bm25 formula (fts5_aux.c: k1 1.2, b 0.75, idf log((N - n + 0.5) / (n + 0.5)) floored at
 * 1e-6, row length = its tokens in all columns) with the column weights title 2, heading 3,
 * text 1. test_rag checks the ranking and scores against bm25() in SQL.
 *
 * Like the vector matrix, the copy is loaded on first use, kept in the rag_t, and reloaded
 * when the KB's gen moves. Memory: 8 bytes per distinct (term, chunk) plus 12 per chunk.
 */
#include "rag_int.h"

#include "err.h"
#include "offline/offline_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rag_kwix {
    int64_t kb_id, gen;
    size_t n;        /* rows (chunks) */
    int64_t *ids;    /* chunk ids, ascending; a row's index is its position */
    int64_t lo;      /* direct map from id - lo to the row index (-1: none), or NULL */
    int32_t *map;
    size_t maplen;
    float *len;      /* tokens of each row, all columns */
    double avgdl;
    uint32_t *pdoc;  /* postings, grouped by term: row index and weighted frequency */
    float *ptf;
    size_t np, pcap;
    char *arena;     /* term strings, NUL-terminated, one after another */
    size_t alen, acap;
    uint32_t *slot;  /* open-addressed term table: 1 + term number, 0 empty */
    size_t nslot;
    uint32_t *tstr, *toff, *tcnt; /* per term: arena offset, first posting, postings */
    size_t nterm, tcap;
    double *acc;     /* per-query scratch: score per row, and the rows touched */
    uint32_t *touched;
    unsigned char *allowed;
    struct rag_kwix *next;
};

static const double K1 = 1.2, B = 0.75;

static void kwix_free(rag_kwix_t *x)
{
    if (!x)
        return;
    free(x->ids);
    free(x->map);
    free(x->len);
    free(x->pdoc);
    free(x->ptf);
    free(x->arena);
    free(x->slot);
    free(x->tstr);
    free(x->toff);
    free(x->tcnt);
    free(x->acc);
    free(x->touched);
    free(x->allowed);
    free(x);
}

void rag_kwix_free_all(rag_t *r)
{
    while (r->kwix) {
        rag_kwix_t *n = r->kwix->next;
        kwix_free(r->kwix);
        r->kwix = n;
    }
    if (r->tok && r->tok_api)
        r->tok_api->xDelete(r->tok);
    free(r->tok_api);
    r->tok = NULL;
    r->tok_api = NULL;
}

static uint64_t str_hash(const char *s, size_t n)
{
    return rag_hash64(s, n, 7);
}

/* The row index of chunk id, or -1. */
static int64_t row_of(const rag_kwix_t *x, int64_t id)
{
    if (x->map) {
        int64_t d = id - x->lo;
        return d >= 0 && (size_t)d < x->maplen ? x->map[d] : -1;
    }
    size_t lo = 0, hi = x->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < x->n && x->ids[lo] == id ? (int64_t)lo : -1;
}

/* Term number of s, or -1. */
static int64_t term_find(const rag_kwix_t *x, const char *s, size_t n)
{
    if (!x->nslot)
        return -1;
    size_t m = x->nslot - 1, i = (size_t)str_hash(s, n) & m;
    for (; x->slot[i]; i = (i + 1) & m) {
        uint32_t t = x->slot[i] - 1;
        const char *ts = x->arena + x->tstr[t];
        if (!strncmp(ts, s, n) && ts[n] == 0)
            return t;
    }
    return -1;
}

static int grow(void **p, size_t *cap, size_t need, size_t each)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 1024;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * each);
    if (!np)
        return ERR_NOMEM;
    *p = np;
    *cap = nc;
    return 0;
}

/* Append a new term (the caller checked it is not there yet). */
static int term_add(rag_kwix_t *x, const char *s, size_t n)
{
    size_t tc = x->tcap, ac = x->acap;
    if (grow((void **)&x->tstr, &tc, x->nterm + 1, sizeof *x->tstr))
        return ERR_NOMEM;
    tc = x->tcap;
    if (grow((void **)&x->toff, &tc, x->nterm + 1, sizeof *x->toff))
        return ERR_NOMEM;
    tc = x->tcap;
    if (grow((void **)&x->tcnt, &tc, x->nterm + 1, sizeof *x->tcnt))
        return ERR_NOMEM;
    x->tcap = tc;
    if (grow((void **)&x->arena, &ac, x->alen + n + 1, 1))
        return ERR_NOMEM;
    x->acap = ac;
    if ((x->nterm + 1) * 2 > x->nslot) {
        size_t ns = x->nslot ? x->nslot * 2 : 4096;
        uint32_t *sl = calloc(ns, sizeof *sl);
        if (!sl)
            return ERR_NOMEM;
        for (size_t t = 0; t < x->nterm; t++) {
            const char *ts = x->arena + x->tstr[t];
            size_t i = (size_t)str_hash(ts, strlen(ts)) & (ns - 1);
            while (sl[i])
                i = (i + 1) & (ns - 1);
            sl[i] = (uint32_t)t + 1;
        }
        free(x->slot);
        x->slot = sl;
        x->nslot = ns;
    }
    memcpy(x->arena + x->alen, s, n);
    x->arena[x->alen + n] = 0;
    x->tstr[x->nterm] = (uint32_t)x->alen;
    x->toff[x->nterm] = (uint32_t)x->np;
    x->tcnt[x->nterm] = 0;
    x->alen += n + 1;
    size_t i = (size_t)str_hash(s, n) & (x->nslot - 1);
    while (x->slot[i])
        i = (i + 1) & (x->nslot - 1);
    x->slot[i] = (uint32_t)x->nterm + 1;
    x->nterm++;
    return 0;
}

static int load_ids(rag_t *r, rag_kwix_t *x)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT id FROM kb_chunks WHERE kb_id = ?1 ORDER BY id", -1,
                           &s, NULL))
        return ERR_IO;
    sqlite3_bind_int64(s, 1, x->kb_id);
    size_t cap = 0;
    int src, rc = 0;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if ((rc = grow((void **)&x->ids, &cap, x->n + 1, sizeof *x->ids)))
            break;
        x->ids[x->n++] = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    if (rc)
        return rc;
    if (src != SQLITE_DONE)
        return rag_sql_rc(src);
    if (!(x->len = calloc(x->n + 1, sizeof *x->len)) ||
        !(x->acc = calloc(x->n + 1, sizeof *x->acc)) ||
        !(x->touched = malloc((x->n + 1) * sizeof *x->touched)) ||
        !(x->allowed = calloc(x->n + 1, 1)))
        return ERR_NOMEM;
    /* Chunk ids of one KB are mostly contiguous: a direct map unless they are spread thin. */
    if (x->n && (uint64_t)(x->ids[x->n - 1] - x->ids[0]) < 8 * (uint64_t)x->n + 4096) {
        x->lo = x->ids[0];
        x->maplen = (size_t)(x->ids[x->n - 1] - x->lo) + 1;
        if (!(x->map = malloc(x->maplen * sizeof *x->map)))
            return ERR_NOMEM;
        memset(x->map, 0xff, x->maplen * sizeof *x->map);
        for (size_t i = 0; i < x->n; i++)
            x->map[x->ids[i] - x->lo] = (int32_t)i;
    }
    return 0;
}

static int load_postings(rag_t *r, rag_kwix_t *x, char *err, size_t errlen)
{
    char sql[200];
    long long id = (long long)x->kb_id;
    snprintf(sql, sizeof sql,
             "CREATE VIRTUAL TABLE IF NOT EXISTS temp.kb_vi_%lld USING fts5vocab(main, "
             "kb_fts_%lld, instance)",
             id, id);
    if (sqlite3_exec(r->db, sql, NULL, NULL, NULL))
        return err_set(err, errlen, ERR_IO, "%s: %s", r->path, sqlite3_errmsg(r->db));
    snprintf(sql, sizeof sql, "SELECT term, doc, col FROM temp.kb_vi_%lld", id);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(r->db, sql, -1, &s, NULL))
        return err_set(err, errlen, ERR_IO, "%s: %s", r->path, sqlite3_errmsg(r->db));
    int rc = 0, src;
    int64_t cur = -1, cur_row = -1;
    double total = 0;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        size_t tl = (size_t)sqlite3_column_bytes(s, 0);
        const char *ts = cur >= 0 ? x->arena + x->tstr[cur] : NULL;
        if (!ts || strncmp(ts, t, tl) || ts[tl]) {
            if (term_find(x, t, tl) >= 0) {
                rc = err_set(err, errlen, ERR_STATE,
                             "%s: fts5vocab gave term \"%.*s\" twice (not grouped)", r->path,
                             (int)tl, t);
                break;
            }
            if ((rc = term_add(x, t, tl)))
                break;
            cur = (int64_t)x->nterm - 1;
            cur_row = -1;
        }
        int64_t row = row_of(x, sqlite3_column_int64(s, 1));
        if (row < 0)
            continue;
        const char *col = (const char *)sqlite3_column_text(s, 2);
        /* title 2, heading 3, text 1: the weights the SQL path gave bm25() */
        float w = !col ? 1.0f : col[0] == 'h' ? 3.0f : col[1] == 'i' ? 2.0f : 1.0f;
        if (row != cur_row) {
            if (x->np == x->pcap) {
                size_t nc = x->pcap ? x->pcap * 2 : 65536;
                uint32_t *nd = realloc(x->pdoc, nc * sizeof *nd);
                if (nd)
                    x->pdoc = nd;
                float *nf = nd ? realloc(x->ptf, nc * sizeof *nf) : NULL;
                if (!nf) {
                    rc = ERR_NOMEM;
                    break;
                }
                x->ptf = nf;
                x->pcap = nc;
            }
            x->pdoc[x->np] = (uint32_t)row;
            x->ptf[x->np] = 0;
            x->np++;
            x->tcnt[cur]++;
            cur_row = row;
        }
        x->ptf[x->np - 1] += w;
        x->len[row] += 1;
        total += 1;
    }
    if (!rc && src != SQLITE_DONE)
        rc = err_set(err, errlen, rag_sql_rc(src), "%s: %s", r->path, sqlite3_errmsg(r->db));
    else if (rc == ERR_NOMEM)
        err_set(err, errlen, rc, "out of memory loading the keyword index");
    sqlite3_finalize(s);
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS temp.kb_vi_%lld", id);
    sqlite3_exec(r->db, sql, NULL, NULL, NULL);
    x->avgdl = x->n ? total / (double)x->n : 1;
    if (x->avgdl <= 0)
        x->avgdl = 1;
    return rc;
}

int rag_kwix_load(rag_t *r, const rag_kb_t *kb, rag_kwix_t **out, char *err, size_t errlen)
{
    rag_kwix_t **pp = &r->kwix;
    for (; *pp; pp = &(*pp)->next) {
        if ((*pp)->kb_id != kb->id)
            continue;
        if ((*pp)->gen == kb->gen) {
            *out = *pp;
            return 0;
        }
        rag_kwix_t *stale = *pp;
        *pp = stale->next;
        kwix_free(stale);
        break;
    }
    rag_kwix_t *x = calloc(1, sizeof *x);
    if (!x)
        return err_set(err, errlen, ERR_NOMEM, "out of memory");
    x->kb_id = kb->id;
    x->gen = kb->gen;
    int rc = load_ids(r, x);
    if (rc) {
        err_set(err, errlen, rc, "%s: loading the keyword index: %s", r->path,
                rc == ERR_NOMEM ? "out of memory" : sqlite3_errmsg(r->db));
        kwix_free(x);
        return rc;
    }
    if ((rc = load_postings(r, x, err, errlen))) {
        kwix_free(x);
        return rc;
    }
    x->next = r->kwix;
    r->kwix = x;
    *out = x;
    return 0;
}

/* ---- the query's terms, through FTS5's tokenizer ---- */

static int tokenizer(rag_t *r, char *err, size_t errlen)
{
    if (r->tok)
        return 0;
    fts5_api *api = NULL;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT fts5(?1)", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_pointer(s, 1, (void *)&api, "fts5_api_ptr", NULL);
        sqlite3_step(s);
    }
    sqlite3_finalize(s);
    fts5_tokenizer *t = calloc(1, sizeof *t);
    void *ud = NULL;
    const char *args[] = {"unicode61"};
    if (!t || !api || api->xFindTokenizer(api, "porter", &ud, t) ||
        t->xCreate(ud, args, 1, &r->tok)) {
        free(t);
        r->tok = NULL;
        return err_set(err, errlen, ERR_STATE, "%s: FTS5's porter tokenizer is not available",
                       r->path);
    }
    r->tok_api = t;
    return 0;
}

typedef struct qterms {
    char (*v)[64];
    size_t n, cap;
} qterms_t;

static int on_token(void *ud, int tflags, const char *tok, int n, int start, int end)
{
    (void)tflags;
    (void)start;
    (void)end;
    qterms_t *q = ud;
    if (n <= 0 || n >= 64)
        return SQLITE_OK;
    for (size_t i = 0; i < q->n; i++)
        if (!strncmp(q->v[i], tok, (size_t)n) && q->v[i][n] == 0)
            return SQLITE_OK; /* a repeated word counts once */
    if (q->n == q->cap) {
        size_t nc = q->cap ? q->cap * 2 : 16;
        void *nv = realloc(q->v, nc * sizeof *q->v);
        if (!nv)
            return SQLITE_NOMEM;
        q->v = nv;
        q->cap = nc;
    }
    memcpy(q->v[q->n], tok, (size_t)n);
    q->v[q->n][n] = 0;
    q->n++;
    return SQLITE_OK;
}

static int is_word_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
}

/* The query's words (short stop words left out, as the offline model does), each through
 * FTS5's tokenizer. */
static int query_terms(rag_t *r, const char *text, qterms_t *q, char *err, size_t errlen)
{
    int rc = tokenizer(r, err, errlen);
    if (rc)
        return rc;
    const fts5_tokenizer *t = r->tok_api;
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        while (*p && !is_word_byte(*p))
            p++;
        const unsigned char *s = p;
        while (*p && is_word_byte(*p))
            p++;
        size_t n = (size_t)(p - s);
        if (!n)
            continue;
        char low[64];
        size_t m = n < sizeof low - 1 ? n : sizeof low - 1;
        for (size_t i = 0; i < m; i++)
            low[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] | 32 : s[i]);
        low[m] = 0;
        if (m < 4 && offline_is_stop(low))
            continue;
        if (t->xTokenize(r->tok, q, FTS5_TOKENIZE_QUERY, (const char *)s, (int)n, on_token))
            return err_set(err, errlen, ERR_NOMEM, "out of memory");
    }
    return 0;
}

/* Keep the k best (score, id) in descending order. */
void rag_topk_push(double *sc, int64_t *ids, size_t *n, size_t k, double s, int64_t id)
{
    if (*n == k && s <= sc[k - 1])
        return;
    size_t i = *n < k ? (*n)++ : k - 1;
    while (i > 0 && sc[i - 1] < s) {
        sc[i] = sc[i - 1];
        ids[i] = ids[i - 1];
        i--;
    }
    sc[i] = s;
    ids[i] = id;
}

int rag_bm25_topk(rag_t *r, const rag_kb_t *kb, const char *text, int k, const int64_t *allow,
                  size_t nallow, int64_t *ids, double *scores, size_t *nout, char *err,
                  size_t errlen)
{
    *nout = 0;
    rag_kwix_t *x = NULL;
    qterms_t q = {0};
    int rc = rag_kwix_load(r, kb, &x, err, errlen);
    if (rc || (rc = query_terms(r, text, &q, err, errlen)) || !x->n)
        goto done;
    if (allow)
        for (size_t i = 0; i < nallow; i++) {
            int64_t row = row_of(x, allow[i]);
            if (row >= 0)
                x->allowed[row] = 1;
        }
    size_t nt = 0;
    double N = (double)x->n;
    for (size_t i = 0; i < q.n; i++) {
        int64_t t = term_find(x, q.v[i], strlen(q.v[i]));
        if (t < 0)
            continue;
        double hits = x->tcnt[t];
        double idf = log((N - hits + 0.5) / (hits + 0.5));
        if (idf <= 0.0)
            idf = 1e-6;
        const uint32_t *pd = x->pdoc + x->toff[t];
        const float *pf = x->ptf + x->toff[t];
        for (size_t j = 0; j < x->tcnt[t]; j++) {
            uint32_t row = pd[j];
            if (allow && !x->allowed[row])
                continue;
            double f = pf[j];
            if (x->acc[row] == 0)
                x->touched[nt++] = row;
            x->acc[row] += idf * (f * (K1 + 1.0)) /
                           (f + K1 * (1.0 - B + B * (double)x->len[row] / x->avgdl));
        }
    }
    for (size_t i = 0; i < nt; i++) {
        uint32_t row = x->touched[i];
        rag_topk_push(scores, ids, nout, (size_t)k, x->acc[row], x->ids[row]);
        x->acc[row] = 0;
    }
    if (allow)
        for (size_t i = 0; i < nallow; i++) {
            int64_t row = row_of(x, allow[i]);
            if (row >= 0)
                x->allowed[row] = 0;
        }
done:
    free(q.v);
    return rc;
}
