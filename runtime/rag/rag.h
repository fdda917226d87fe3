/*
 * rag: retrieval over knowledge bases kept in SQLite beside the runs (or in a file of their
 * own, copied to every worker). A knowledge base (KB) is a named set of documents, cut into
 * chunks by one of three strategies, each chunk indexed twice: in an FTS5 table (keyword
 * search, BM25) and as a normalised float32 (or int8) vector (exact cosine search over a
 * contiguous in-memory matrix). Hybrid search fuses both rankings by reciprocal rank fusion.
 *
 * The schema is the module's own (tables kb, kb_docs, kb_chunks, kb_fts, kb_embcache) with
 * its own numbered migrations in the table kb_schema, so the same code serves the run
 * database and a --kb-db file; store.c's user_version is left alone.
 *
 * Invariants: one document is indexed in one transaction (its row, its chunks, their FTS
 * rows and vectors), so an interrupted ingest leaves every document either fully old or
 * fully new, and running `add` again resumes. A KB records its chunking strategy, sizes,
 * embedder and dimension; a query embedded by another model is refused. Keyword ranking is
 * FTS5's bm25 computed over the KB's FTS5 postings held in memory (rag_bm25.c).
 *
 * Nothing here re-enters: calls are synchronous (an HTTP embedder runs a private loop, so
 * never call it from inside a loop callback with an HTTP-embedded KB). A rag_t is for one
 * thread. The first query of a KB loads what it needs and keeps it until the KB changes or
 * rag_close(): its vectors (1 KB per chunk at dimension 256, a quarter with int8) for vector
 * and hybrid, its postings (8 bytes per distinct word of a chunk, about 0.6 KB per 100-word
 * chunk) for keyword and hybrid. That first load takes 2-6 s per 100,000 chunks.
 */
#ifndef AGENTD_RAG_H
#define AGENTD_RAG_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rag rag_t;

/* Options for a new KB; 0 / NULL fields take the defaults. Stored with the KB: later adds
 * must not contradict them (ERR_INVAL naming the field). */
typedef struct rag_kb_opts {
    const char *strategy; /* "fixed" | "structure" (default) | "sentence" */
    int size;             /* tokens per chunk (whitespace-separated words); 0: 200 */
    int overlap;          /* fixed windows: tokens shared by neighbours; < 0: size / 5 */
    const char *embedder; /* "offline" (default) or "openai:MODEL" (any OpenAI-compatible
                             /v1/embeddings: OPENAI_BASE_URL, OPENAI_API_KEY) */
    int dim;              /* offline embedder dimension; 0: 256 (HTTP: the model's) */
    const char *quant;    /* "f32" (default) or "int8" */
} rag_kb_opts_t;

/* Where KBs live unless --kb-db says otherwise: $AGENTD_KB_DB, else run_db (the run
 * database's path), or agentd.kb.db in the working directory when run_db is a PostgreSQL
 * URL (knowledge bases are SQLite files). */
const char *rag_default_path(const char *run_db);

/* Open (creating and migrating) the KB tables in the SQLite file at path. NULL on failure
 * with one line in err. */
rag_t *rag_open(const char *path, char *err, size_t errlen);
/* Open for queries only (ctx.kb inside a run): never writes, so it cannot wait on the run
 * database's write lock, which this same process may hold for its group commit. A file
 * that never held a KB opens as one with no KBs (each lookup: no knowledge base named X);
 * one whose KB schema is older than this agentd's fails with how to upgrade it. */
rag_t *rag_open_reader(const char *path, char *err, size_t errlen);
void rag_close(rag_t *r);

/* Progress of an add: called after each file (bytes of files done / of all files). */
typedef void (*rag_progress_fn)(void *ud, size_t files_done, size_t files_total,
                                uint64_t bytes_done, uint64_t bytes_total, const char *path);
/* A file that was skipped (binary, invalid UTF-8, empty, too big, unreadable): one line. */
typedef void (*rag_warn_fn)(void *ud, const char *msg);

typedef struct rag_add_stats {
    size_t files, added, updated, unchanged, removed, skipped;
    uint64_t chunks, bytes; /* chunks written, bytes of files (re)indexed */
    double secs;
    size_t embed_calls, embed_cached; /* HTTP embedder: requests, inputs served by the cache */
    int64_t embed_tokens; /* HTTP embedder: input tokens the replies reported */
    double embed_cost;    /* ... priced from the price table (prices.h), USD */
} rag_add_stats_t;

typedef struct rag_add_opts {
    const rag_kb_opts_t *kb; /* used when the KB is new; checked against an existing one */
    rag_progress_fn progress;
    rag_warn_fn warn;
    void *ud;
    uint64_t max_file_bytes; /* 0: 64 MiB; bigger files are skipped with a warning */
} rag_add_opts_t;

/* Index paths (files or folders, walked recursively for .txt .text .md .markdown .html .htm)
 * into kb, creating it if needed: unchanged files (same content hash) are skipped, changed
 * ones re-indexed, files gone from a walked folder (or a named file that no longer exists)
 * removed. A named file that cannot be indexed makes the call fail after the rest are done
 * (ERR_INVAL); files inside folders are skipped with a warning. An embedder failure stops
 * the add with what was committed kept (ERR_HTTP / ERR_TIMEOUT ...). An add that called an
 * HTTP embedder records one kb_usage row (requests, inputs, cache hits, tokens, cost), failed
 * or not: the provider bills what it answered. */
int rag_add(rag_t *r, const char *kb, const char *const *paths, size_t npaths,
            const rag_add_opts_t *o, rag_add_stats_t *st, char *err, size_t errlen);

/* Index one document from memory: text (plain text) under name (its path in the KB), into
 * kb, created from o (may be NULL: defaults) when new. Same text again: unchanged; other
 * text under the same name replaces it. One transaction, like a file of rag_add. */
int rag_add_text(rag_t *r, const char *kb, const char *name, const char *text,
                 const rag_kb_opts_t *o, char *err, size_t errlen);
/* Delete one document of kb (its chunks, FTS rows and vectors). ERR_NOTFOUND names it. */
int rag_doc_rm(rag_t *r, const char *kb, const char *name, char *err, size_t errlen);

/* New array of kb's documents, oldest first: {"name","text" (its chunks joined),
 * "indexed_ns"}. ERR_NOTFOUND names the KB. */
int rag_docs(rag_t *r, const char *kb, json_object **out, char *err, size_t errlen);

/* Delete kb with everything in it. ERR_NOTFOUND if there is none. */
int rag_rm(rag_t *r, const char *kb, char *err, size_t errlen);

/* New JSON array of {"name","strategy","docs","chunks","embedder","dim"}. */
int rag_list(rag_t *r, json_object **out, char *err, size_t errlen);
/* New JSON object: the KB's stored parameters and counts (docs, chunks, bytes, tokens,
 * chunk size min/avg/max, vector bytes) and what its HTTP embedder cost over every add
 * (embed_requests, embed_tokens, embed_cost_usd). ERR_NOTFOUND names the KB. */
int rag_stats(rag_t *r, const char *kb, json_object **out, char *err, size_t errlen);

enum { RAG_KEYWORD = 0, RAG_VECTOR = 1, RAG_HYBRID = 2 };

typedef struct rag_query {
    const char *text;
    int mode;              /* RAG_* */
    int k;                 /* results; 0: 5 */
    double w_keyword;      /* hybrid weights; both 0: 1 and 1 */
    double w_vector;
    int rrf_k;             /* hybrid: 0: 60 */
    const char *path_glob; /* only chunks whose source path matches (SQLite GLOB); NULL: all */
    const char *heading;   /* only chunks whose heading path contains this; NULL: all */
    const char *embedder;  /* when set, must be the KB's embedder (else ERR_INVAL) */
} rag_query_t;

typedef struct rag_hit {
    int64_t chunk_id;
    double score; /* keyword: -bm25; vector: cosine; hybrid: fused RRF score */
    char *path, *title, *heading, *text;
    int64_t start, end; /* byte offsets of the chunk in the source file */
} rag_hit_t;

typedef struct rag_hits {
    rag_hit_t *v;
    size_t n;
    double ms; /* search time, without loading the vectors on first use */
    double cpu_ms; /* the thread's CPU time for it (what ms would be on an idle machine) */
    int64_t embed_tokens; /* the query's embedding over HTTP: tokens and USD (0 offline) */
    double embed_cost;
} rag_hits_t;

/* Search kb. ERR_NOTFOUND (no such KB), ERR_INVAL (empty query, another embedder...). */
int rag_search(rag_t *r, const char *kb, const rag_query_t *q, rag_hits_t *out, char *err,
               size_t errlen);
void rag_hits_clear(rag_hits_t *h);
/* New JSON array of the hits: {"id","source","title","heading","start","end","score","text"}
 * ("id" is "path#chunk_id", what answers cite). NULL on allocation failure. */
json_object *rag_hits_json(const rag_hits_t *h);

/* Retrieval quality: QUESTIONS.jsonl lines {"q": "...", "pages": ["wal.html", ...]} (a page
 * matches a document whose path equals it or ends with "/" + it). For each mode, recall@1,
 * 5 and 10 (share of the labelled pages among the first k distinct documents, averaged),
 * MRR (first relevant document) and latency p50/p95 (wall clock, and the thread's CPU time,
 * which a busy machine does not inflate). New JSON object in *out: {"kb","strategy",
 * "questions","modes":{"keyword":{"recall@1",...,"mrr","p50_ms","p95_ms","p50_cpu_ms",
 * "p95_cpu_ms"}}}. */
int rag_eval(rag_t *r, const char *kb, const char *questions_path, json_object **out,
             char *err, size_t errlen);

/* Semantic similarity of two texts with the offline embedder (rag_sim.c): the cosine of
 * their vectors, 0..1 for texts (1: the same words). Deterministic, no I/O; what an eval's
 * similar() assertion measures. */
double rag_similarity(const char *a, const char *b);

#endif
