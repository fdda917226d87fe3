/*
 * rag_eval: retrieval quality of a KB against labelled questions. Per question and mode,
 * the 50 best chunks are reduced to distinct documents in rank order; recall@k is the share
 * of the question's labelled pages among the first k documents, MRR the reciprocal rank of
 * the first labelled page (0 when none is in the list).
 */
#include "rag_int.h"

#include "err.h"
#include "schema/schema.h"
#include "jx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH 50
#define MAXQ 10000

typedef struct qa {
    char *q;
    char **pages;
    size_t npages;
} qa_t;

static void qa_clear(qa_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].q);
        for (size_t j = 0; j < v[i].npages; j++)
            free(v[i].pages[j]);
        free(v[i].pages);
    }
    free(v);
}

static int load(const char *path, qa_t **out, size_t *nout, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(err, errlen, ERR_IO, "%s: %s", path, strerror(errno));
    qa_t *v = NULL;
    size_t n = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (!len || line[0] == '#')
            continue;
        json_object *j = NULL, *q = NULL, *pages = NULL;
        char perr[200];
        if (schema_parse_json(line, (size_t)len, &j, perr, sizeof perr)) {
            rc = err_set(err, errlen, ERR_INVAL, "%s:%d: %s", path, lineno, perr);
            break;
        }
        if (!json_object_object_get_ex(j, "q", &q) || !json_object_is_type(q, json_type_string) ||
            !json_object_object_get_ex(j, "pages", &pages) ||
            !json_object_is_type(pages, json_type_array) || !json_object_array_length(pages)) {
            json_object_put(j);
            rc = err_set(err, errlen, ERR_INVAL,
                         "%s:%d: want {\"q\": \"question\", \"pages\": [\"page.html\", ...]}",
                         path, lineno);
            break;
        }
        if (n == MAXQ) {
            json_object_put(j);
            rc = err_set(err, errlen, ERR_LIMIT, "%s: more than %d questions", path, MAXQ);
            break;
        }
        qa_t *nv = realloc(v, (n + 1) * sizeof *nv);
        if (!nv) {
            json_object_put(j);
            rc = ERR_NOMEM;
            break;
        }
        v = nv;
        qa_t *x = &v[n++];
        memset(x, 0, sizeof *x);
        x->q = strdup(json_object_get_string(q));
        x->npages = json_object_array_length(pages);
        x->pages = calloc(x->npages, sizeof *x->pages);
        for (size_t i = 0; x->pages && i < x->npages; i++)
            x->pages[i] = strdup(json_object_get_string(json_object_array_get_idx(pages, i)));
        json_object_put(j);
        if (!x->q || !x->pages) {
            rc = ERR_NOMEM;
            break;
        }
    }
    free(line);
    fclose(f);
    if (!rc && !n)
        rc = err_set(err, errlen, ERR_INVAL, "%s: no questions", path);
    if (rc) {
        if (rc == ERR_NOMEM)
            err_set(err, errlen, rc, "out of memory");
        qa_clear(v, n);
        return rc;
    }
    *out = v;
    *nout = n;
    return 0;
}

static int page_match(const char *path, const char *page)
{
    size_t n = strlen(path), m = strlen(page);
    if (n == m)
        return !strcmp(path, page);
    return n > m && path[n - m - 1] == '/' && !strcmp(path + n - m, page);
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int rag_eval(rag_t *r, const char *kb, const char *questions_path, json_object **out,
             char *err, size_t errlen)
{
    rag_kb_t k;
    int rc = rag_kb_get(r, kb, &k, err, errlen);
    if (rc)
        return rc;
    qa_t *qs = NULL;
    size_t nq = 0;
    if ((rc = load(questions_path, &qs, &nq, err, errlen)))
        return rc;
    double *lat = malloc(nq * 2 * sizeof *lat), *cpu = lat ? lat + nq : NULL;
    if (!lat) {
        qa_clear(qs, nq);
        return err_set(err, errlen, ERR_NOMEM, "out of memory");
    }
    json_object *res = json_object_new_object(), *modes = json_object_new_object();
    json_object_object_add(res, "kb", json_object_new_string(k.name));
    json_object_object_add(res, "strategy", json_object_new_string(k.strategy));
    json_object_object_add(res, "size", json_object_new_int(k.size));
    json_object_object_add(res, "overlap", json_object_new_int(k.overlap));
    json_object_object_add(res, "embedder", json_object_new_string(k.embedder));
    json_object_object_add(res, "quant", json_object_new_string(k.quant));
    json_object_object_add(res, "questions", json_object_new_int64((int64_t)nq));
    static const char *const names[] = {"keyword", "vector", "hybrid"};
    for (int mode = RAG_KEYWORD; mode <= RAG_HYBRID && !rc; mode++) {
        double rec[3] = {0}, mrr = 0;
        static const size_t at[3] = {1, 5, 10};
        for (size_t i = 0; i < nq; i++) {
            rag_query_t q = {.text = qs[i].q, .mode = mode, .k = DEPTH};
            rag_hits_t h;
            if ((rc = rag_search(r, kb, &q, &h, err, errlen)))
                break;
            lat[i] = h.ms;
            cpu[i] = h.cpu_ms;
            /* distinct documents in rank order */
            const char *docs[DEPTH];
            size_t nd = 0;
            for (size_t j = 0; j < h.n; j++) {
                size_t d = 0;
                while (d < nd && strcmp(docs[d], h.v[j].path))
                    d++;
                if (d == nd)
                    docs[nd++] = h.v[j].path;
            }
            for (size_t d = 0; d < nd; d++) {
                int rel = 0;
                for (size_t p = 0; p < qs[i].npages && !rel; p++)
                    rel = page_match(docs[d], qs[i].pages[p]);
                if (rel) {
                    mrr += 1.0 / (double)(d + 1);
                    break;
                }
            }
            for (int a = 0; a < 3; a++) {
                size_t found = 0;
                for (size_t p = 0; p < qs[i].npages; p++)
                    for (size_t d = 0; d < nd && d < at[a]; d++)
                        if (page_match(docs[d], qs[i].pages[p])) {
                            found++;
                            break;
                        }
                rec[a] += (double)found / (double)qs[i].npages;
            }
            rag_hits_clear(&h);
        }
        if (rc)
            break;
        qsort(lat, nq, sizeof *lat, dbl_cmp);
        qsort(cpu, nq, sizeof *cpu, dbl_cmp);
        size_t i95 = (size_t)((double)nq * 0.95) < nq ? (size_t)((double)nq * 0.95) : nq - 1;
        json_object *m = json_object_new_object();
        json_object_object_add(m, "recall@1", jx_new_num(rec[0] / (double)nq));
        json_object_object_add(m, "recall@5", jx_new_num(rec[1] / (double)nq));
        json_object_object_add(m, "recall@10", jx_new_num(rec[2] / (double)nq));
        json_object_object_add(m, "mrr", jx_new_num(mrr / (double)nq));
        json_object_object_add(m, "p50_ms", jx_new_num(lat[nq / 2]));
        json_object_object_add(m, "p95_ms", jx_new_num(lat[i95]));
        json_object_object_add(m, "p50_cpu_ms", jx_new_num(cpu[nq / 2]));
        json_object_object_add(m, "p95_cpu_ms", jx_new_num(cpu[i95]));
        json_object_object_add(modes, names[mode], m);
    }
    json_object_object_add(res, "modes", modes);
    free(lat);
    qa_clear(qs, nq);
    if (rc) {
        json_object_put(res);
        return rc;
    }
    *out = res;
    return 0;
}
