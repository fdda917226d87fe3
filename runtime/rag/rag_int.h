/*
 * rag_int: what the files of the rag module share (rag_db.c: the schema and KB rows;
 * rag_parse.c / rag_html.c: documents as blocks; rag_chunk.c: the three strategies;
 * rag_embed.c: embedders; rag_ingest.c, rag_search.c, rag_eval.c).
 */
#ifndef AGENTD_RAG_INT_H
#define AGENTD_RAG_INT_H

#include "rag/rag.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define RAG_NAME_MAX 128

/* A KB row: its parameters as stored. gen grows with every committed change, so a search
 * knows when its cached vector matrix is stale. */
typedef struct rag_kb {
    int64_t id;
    char name[RAG_NAME_MAX];
    char strategy[16];
    int size, overlap;
    char embedder[RAG_NAME_MAX];
    int dim;
    char quant[8];
    int64_t gen;
} rag_kb_t;

/* A KB's vectors, loaded once into one contiguous block for the scan. */
typedef struct rag_mat {
    int64_t kb_id, gen;
    int dim, int8;
    size_t n;
    int64_t *ids;
    float *f;     /* n * dim, when !int8 */
    int8_t *q;    /* n * dim, when int8 (value = q / 127) */
    struct rag_mat *next;
} rag_mat_t;

typedef struct rag_kwix rag_kwix_t; /* rag_bm25.c: a KB's FTS5 postings in memory */

struct rag {
    sqlite3 *db;
    char path[1024];
    rag_mat_t *mats;
    rag_kwix_t *kwix;
    fts5_tokenizer *tok_api; /* FTS5's porter tokenizer, for query terms */
    Fts5Tokenizer *tok;
    int empty; /* opened by rag_open_reader on a file that never held a KB: no KB tables */
};

int rag_sql_rc(int src);
int rag_exec(rag_t *r, const char *sql, char *err, size_t errlen);
/* The KB named name: 0, ERR_NOTFOUND (err names it and says how to create one), ERR_IO. */
int rag_kb_get(rag_t *r, const char *name, rag_kb_t *out, char *err, size_t errlen);
/* Create kb from o (defaults filled in). 0 or ERR_INVAL (bad option, named) / ERR_IO. */
int rag_kb_create(rag_t *r, const char *name, const rag_kb_opts_t *o, rag_kb_t *out, char *err,
                  size_t errlen);
/* Fail with ERR_INVAL when o asks for something the stored kb does not use. */
int rag_kb_check(const rag_kb_t *kb, const rag_kb_opts_t *o, char *err, size_t errlen);
/* Bump kb's gen (inside the caller's transaction); also records dim when it was 0. */
int rag_kb_touch(rag_t *r, rag_kb_t *kb);

/* ---- documents ---- */

typedef struct rag_block {
    int level;           /* 0: a paragraph; 1..6: a heading */
    int pre;             /* preformatted (code): never split into sentences */
    char *text;          /* UTF-8, whitespace as in the source for text/Markdown */
    int64_t start, end;  /* byte offsets in the source file */
} rag_block_t;

typedef struct rag_doc {
    char *title;
    rag_block_t *v;
    size_t n, cap;
} rag_doc_t;

int rag_doc_add(rag_doc_t *d, int level, int pre, const char *text, size_t len, int64_t start,
                int64_t end);
void rag_doc_clear(rag_doc_t *d);

enum { RAG_FMT_TEXT, RAG_FMT_MD, RAG_FMT_HTML };
/* The format of a file by its name, or -1 when the walker should not take it. */
int rag_format_of(const char *path);
/* Check buf is indexable text (not binary, valid UTF-8, not empty): 0 or ERR_INVAL with the
 * reason ("binary file", "invalid UTF-8 at byte N", "empty file"). */
int rag_text_check(const char *buf, size_t len, char *err, size_t errlen);
int rag_parse_text(const char *buf, size_t len, rag_doc_t *d);
int rag_parse_md(const char *buf, size_t len, rag_doc_t *d);
/* HTML through libxml2's HTML parser: script, style, head (but the title) and navigation
 * (nav, header, footer, aside, form; role=navigation/banner/search; class or id naming a
 * menu, navbar, sidebar, breadcrumb, toc or nosearch) dropped, headings kept. */
int rag_parse_html(const char *buf, size_t len, rag_doc_t *d, char *err, size_t errlen);

/* ---- chunks ---- */

typedef struct rag_chunk {
    char *text;
    char *heading; /* "Top > Section > Sub", "" when none */
    int64_t start, end;
    int tokens;
} rag_chunk_t;

typedef struct rag_chunks {
    rag_chunk_t *v;
    size_t n, cap;
} rag_chunks_t;

/* Cut d by kb's strategy and sizes. 0 or ERR_NOMEM. */
int rag_chunk_doc(const rag_doc_t *d, const rag_kb_t *kb, rag_chunks_t *out);
void rag_chunks_clear(rag_chunks_t *c);

/* ---- embedders ---- */

typedef struct rag_embedder rag_embedder_t;

/* The embedder kb records. NULL with err on failure. */
rag_embedder_t *rag_embedder_new(rag_t *r, const rag_kb_t *kb, char *err, size_t errlen);
void rag_embedder_free(rag_embedder_t *e);
/* Embed n texts into out (n * dim floats, each row unit length). *dim is the KB's (0 for an
 * HTTP model not used yet: set from the first answer). Cached by model + text hash. */
int rag_embed(rag_embedder_t *e, const char *const *texts, size_t n, float *out, int *dim,
              char *err, size_t errlen);
/* What an HTTP embedder did so far (all 0 offline): requests made (retries included), texts
 * sent, texts served by the cache, input tokens the replies reported and their price. */
typedef struct rag_embed_usage {
    size_t calls, inputs, cached;
    int64_t tokens;
    double cost;
} rag_embed_usage_t;
void rag_embedder_usage(const rag_embedder_t *e, rag_embed_usage_t *out);
int rag_embedder_is_http(const rag_embedder_t *e);
/* Append e's usage to kb_usage (op "add") unless it made no request and hit no cache. */
int rag_usage_record(rag_t *r, const rag_kb_t *kb, const char *op, const rag_embedder_t *e);
/* The offline embedder: hashed features of stemmed words, word bigrams and character
 * trigrams, sublinear counts, signed hashing, L2-normalised. Deterministic. */
void rag_embed_offline(const char *text, int dim, float *out);
/* Normalise v in place (a zero vector stays zero). */
void rag_normalise(float *v, int dim);

/* 64-bit FNV-1a, the feature and content-fingerprint hash of this module. */
uint64_t rag_hash64(const void *p, size_t n, uint64_t seed);
/* Hex SHA-256 of a buffer (content hashes of files and cache keys). */
void rag_sha256_hex(const void *p, size_t n, char out[65]);

/* Vector scan over the KB's matrix (loaded or refreshed as needed): the best k ids by
 * cosine, optionally only ids for which allow (sorted ascending, nallow) holds. */
int rag_vec_topk(rag_t *r, const rag_kb_t *kb, const float *q, int k, const int64_t *allow,
                 size_t nallow, int64_t *ids, double *scores, size_t *nout, char *err,
                 size_t errlen);
void rag_mats_free(rag_t *r);
/* Keep the k best (score, id) of a stream in sc / ids, descending; *n of them so far. */
void rag_topk_push(double *sc, int64_t *ids, size_t *n, size_t k, double s, int64_t id);

/* Keyword search: FTS5's bm25 (title 2, heading 3, text 1) over the KB's postings, loaded
 * into memory on first use (rag_kwix_load, also to warm up before a timed query) and reloaded
 * when the KB changes. The best k ids, only those in allow (sorted) when allow is set. */
int rag_kwix_load(rag_t *r, const rag_kb_t *kb, rag_kwix_t **out, char *err, size_t errlen);
int rag_bm25_topk(rag_t *r, const rag_kb_t *kb, const char *text, int k, const int64_t *allow,
                  size_t nallow, int64_t *ids, double *scores, size_t *nout, char *err,
                  size_t errlen);
void rag_kwix_free_all(rag_t *r);

#endif
