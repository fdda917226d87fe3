/*
 * kb_cli: `agentd kb add|list|stats|rm|search|eval` over rag/rag.h.
 */
#include "kb_cli.h"

#include "cli.h"
#include "db/db.h"
#include "err.h"
#include "rag/rag.h"
#include "jx.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char kb_cli_usage[] =
    "agentd kb add KB PATH... [--strategy fixed|structure|sentence] [--size N] [--overlap N]\n"
    "              [--embedder offline|openai:MODEL] [--dim N] [--quant f32|int8]\n"
    "              [--max-file-mb N]\n"
    "agentd kb list [--json]\n"
    "agentd kb stats KB [--json]\n"
    "agentd kb rm KB\n"
    "agentd kb search KB QUERY [--mode keyword|vector|hybrid|all] [-k N] [--path GLOB]\n"
    "              [--heading TEXT] [--kw-weight W] [--vec-weight W] [--rrf-k N]\n"
    "              [--embedder E (refused unless it is the KB's)] [--json]\n"
    "agentd kb eval KB[,KB...] QUESTIONS.jsonl [--json]\n"
    "\n"
    "Knowledge bases for retrieval (docs/rag.md). add indexes text, Markdown and HTML files\n"
    "(folders are walked), skipping unchanged files, re-indexing changed ones and removing\n"
    "deleted ones; the chunking and embedding options are fixed when a KB is created.\n"
    "search ranks chunks by keyword (BM25), vector (cosine) or hybrid (reciprocal rank\n"
    "fusion) and prints the latency of each mode. eval reports recall@1/5/10 and MRR per\n"
    "mode for questions labelled with the pages that answer them.\n"
    "  --kb-db PATH  the KB database (default $AGENTD_KB_DB, else the run database: --db,\n"
    "                $AGENTD_DB, ./agentd.db; when that is a PostgreSQL URL, ./agentd.kb.db:\n"
    "                knowledge bases are SQLite files)\n";

static const char *kb_db_path(const char *kbdb, const char *db)
{
    if (kbdb)
        return kbdb;
    return rag_default_path(cli_db_path(db));
}

typedef struct opts {
    const char *kbdb, *db, *mode, *path, *heading;
    int json, k, rrf_k;
    double wk, wv;
    long max_mb;
    rag_kb_opts_t kb;
    const char **pos; /* argc entries, freed by the caller */
    int npos;
} opts_t;

static int weight(const char *opt, const char *v, double *out)
{
    char *end;
    double w = strtod(v, &end);
    if (end == v || *end || w < 0 || w > 1000) {
        fprintf(stderr, "agentd kb: %s %s: want a weight from 0 to 1000\n", opt, v);
        return -1;
    }
    *out = w;
    return 0;
}

static int parse(int argc, char **argv, opts_t *o)
{
    o->kb.overlap = -1;
    o->k = 5;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m;
        long n;
        if (!strcmp(argv[i], "--json")) {
            o->json = 1;
        } else if ((m = cli_opt(argc, argv, &i, "--kb-db", &o->kbdb)) ||
                   (m = cli_opt(argc, argv, &i, "--db", &o->db)) ||
                   (m = cli_opt(argc, argv, &i, "--mode", &o->mode)) ||
                   (m = cli_opt(argc, argv, &i, "--path", &o->path)) ||
                   (m = cli_opt(argc, argv, &i, "--heading", &o->heading)) ||
                   (m = cli_opt(argc, argv, &i, "--strategy", &o->kb.strategy)) ||
                   (m = cli_opt(argc, argv, &i, "--embedder", &o->kb.embedder)) ||
                   (m = cli_opt(argc, argv, &i, "--quant", &o->kb.quant))) {
            if (m < 0)
                return -1;
        } else if ((m = cli_opt(argc, argv, &i, "--size", &v)) > 0) {
            if ((n = cli_long("--size", v, 8, 8192)) < 0)
                return -1;
            o->kb.size = (int)n;
        } else if ((m = cli_opt(argc, argv, &i, "--overlap", &v)) > 0) {
            if ((n = cli_long("--overlap", v, 0, 8191)) < 0)
                return -1;
            o->kb.overlap = (int)n;
        } else if ((m = cli_opt(argc, argv, &i, "--dim", &v)) > 0) {
            if ((n = cli_long("--dim", v, 16, 4096)) < 0)
                return -1;
            o->kb.dim = (int)n;
        } else if ((m = cli_opt(argc, argv, &i, "-k", &v)) > 0) {
            if ((n = cli_long("-k", v, 1, 1000)) < 0)
                return -1;
            o->k = (int)n;
        } else if ((m = cli_opt(argc, argv, &i, "--rrf-k", &v)) > 0) {
            if ((n = cli_long("--rrf-k", v, 1, 100000)) < 0)
                return -1;
            o->rrf_k = (int)n;
        } else if ((m = cli_opt(argc, argv, &i, "--max-file-mb", &v)) > 0) {
            if ((n = cli_long("--max-file-mb", v, 1, 4096)) < 0)
                return -1;
            o->max_mb = n;
        } else if ((m = cli_opt(argc, argv, &i, "--kw-weight", &v)) > 0) {
            if (weight("--kw-weight", v, &o->wk))
                return -1;
        } else if ((m = cli_opt(argc, argv, &i, "--vec-weight", &v)) > 0) {
            if (weight("--vec-weight", v, &o->wv))
                return -1;
        } else if (m < 0) {
            return -1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "agentd kb: unknown option %s; see agentd help kb\n", argv[i]);
            return -1;
        } else {
            o->pos[o->npos++] = argv[i];
        }
    }
    return 0;
}

static int code_of(int rc)
{
    switch (rc) {
    case 0: return CLI_OK;
    case ERR_INVAL:
    case ERR_NOTFOUND:
    case ERR_TOOBIG:
    case ERR_LIMIT: return CLI_USAGE;
    case ERR_HTTP:
    case ERR_TIMEOUT:
    case ERR_PROTO: return CLI_FAILED;
    default: return CLI_INTERNAL;
    }
}

typedef struct prog {
    int tty;
    size_t warned;
} prog_t;

static void on_progress(void *ud, size_t fd, size_t ft, uint64_t bd, uint64_t bt,
                        const char *path)
{
    prog_t *p = ud;
    if (!p->tty)
        return;
    int width = 30, fill = bt ? (int)((double)bd / (double)bt * width) : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    size_t pl = strlen(path);
    fprintf(stderr, "\r[%s] %zu/%zu files  %.1f/%.1f MB  %-30.30s", bar, fd, ft, (double)bd / 1e6,
            (double)bt / 1e6, pl > 30 ? path + pl - 30 : path);
    if (fd == ft)
        fputc('\n', stderr);
    fflush(stderr);
}

static void on_warn(void *ud, const char *msg)
{
    prog_t *p = ud;
    if (p->tty)
        fputs("\r\033[K", stderr);
    fprintf(stderr, "agentd kb add: skipped %s\n", msg);
    p->warned++;
}

static int cmd_add(rag_t *r, opts_t *o)
{
    if (o->npos < 2) {
        fprintf(stderr, "usage: agentd kb add KB PATH... (files or folders)\n");
        return CLI_USAGE;
    }
    prog_t p = {.tty = isatty(2)};
    rag_add_opts_t ao = {.kb = &o->kb, .progress = on_progress, .warn = on_warn, .ud = &p,
                         .max_file_bytes = (uint64_t)o->max_mb << 20};
    rag_add_stats_t st;
    char err[1024] = "";
    int rc = rag_add(r, o->pos[0], o->pos + 1, (size_t)o->npos - 1, &ao, &st, err, sizeof err);
    if (o->json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "kb", json_object_new_string(o->pos[0]));
        json_object_object_add(j, "files", json_object_new_int64((int64_t)st.files));
        json_object_object_add(j, "added", json_object_new_int64((int64_t)st.added));
        json_object_object_add(j, "updated", json_object_new_int64((int64_t)st.updated));
        json_object_object_add(j, "unchanged", json_object_new_int64((int64_t)st.unchanged));
        json_object_object_add(j, "removed", json_object_new_int64((int64_t)st.removed));
        json_object_object_add(j, "skipped", json_object_new_int64((int64_t)st.skipped));
        json_object_object_add(j, "chunks", json_object_new_int64((int64_t)st.chunks));
        json_object_object_add(j, "bytes", json_object_new_int64((int64_t)st.bytes));
        json_object_object_add(j, "seconds", jx_new_num(st.secs));
        json_object_object_add(j, "embed_requests", json_object_new_int64((int64_t)st.embed_calls));
        json_object_object_add(j, "embed_cached", json_object_new_int64((int64_t)st.embed_cached));
        json_object_object_add(j, "embed_tokens", json_object_new_int64(st.embed_tokens));
        json_object_object_add(j, "embed_cost_usd", jx_new_num(st.embed_cost));
        if (rc)
            json_object_object_add(j, "error", json_object_new_string(err));
        printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
        json_object_put(j);
    } else {
        printf("kb %s: %zu file(s): %zu added, %zu updated, %zu unchanged, %zu removed, "
               "%zu skipped; %llu chunks, %.2f MB in %.2f s (%.1f MB/s)\n",
               o->pos[0], st.files, st.added, st.updated, st.unchanged, st.removed, st.skipped,
               (unsigned long long)st.chunks, (double)st.bytes / 1e6, st.secs,
               st.secs > 0 ? (double)st.bytes / 1e6 / st.secs : 0.0);
        if (st.embed_calls || st.embed_cached)
            printf("  embeddings: %zu request(s), %zu text(s) from the cache, %lld tokens, "
                   "$%.6f\n",
                   st.embed_calls, st.embed_cached, (long long)st.embed_tokens, st.embed_cost);
    }
    if (rc)
        fprintf(stderr, "agentd kb add: %s\n", err);
    return code_of(rc);
}

static int cmd_list(rag_t *r, opts_t *o)
{
    json_object *a = NULL;
    char err[512] = "";
    int rc = rag_list(r, &a, err, sizeof err);
    if (rc) {
        fprintf(stderr, "agentd kb list: %s\n", err);
        return code_of(rc);
    }
    if (o->json) {
        printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
    } else if (!json_object_array_length(a)) {
        printf("no knowledge bases (create one with agentd kb add KB PATH)\n");
    } else {
        printf("%-20s %-10s %6s %8s  %-28s %5s %s\n", "KB", "STRATEGY", "DOCS", "CHUNKS",
               "EMBEDDER", "DIM", "QUANT");
        for (size_t i = 0; i < json_object_array_length(a); i++) {
            json_object *k = json_object_array_get_idx(a, i), *v;
#define S(f) (json_object_object_get_ex(k, f, &v) ? json_object_get_string(v) : "")
#define I(f) (json_object_object_get_ex(k, f, &v) ? json_object_get_int64(v) : 0)
            printf("%-20s %-10s %6lld %8lld  %-28s %5lld %s\n", S("name"), S("strategy"),
                   (long long)I("docs"), (long long)I("chunks"), S("embedder"),
                   (long long)I("dim"), S("quant"));
        }
    }
    json_object_put(a);
    return CLI_OK;
}

static int cmd_stats(rag_t *r, opts_t *o)
{
    if (o->npos != 1) {
        fprintf(stderr, "usage: agentd kb stats KB [--json]\n");
        return CLI_USAGE;
    }
    json_object *k = NULL, *v;
    char err[512] = "";
    int rc = rag_stats(r, o->pos[0], &k, err, sizeof err);
    if (rc) {
        fprintf(stderr, "agentd kb stats: %s\n", err);
        return code_of(rc);
    }
    if (o->json) {
        printf("%s\n", json_object_to_json_string_ext(k, JSON_C_TO_STRING_PRETTY));
    } else {
        printf("kb %s  (%s)\n", S("name"), S("database"));
        if (!strcmp(S("strategy"), "fixed"))
            printf("  chunking   fixed windows of %lld tokens, overlap %lld\n",
                   (long long)I("size"), (long long)I("overlap"));
        else
            printf("  chunking   %s, at most %lld tokens per chunk\n", S("strategy"),
                   (long long)I("size"));
        printf("  embedder   %s, dimension %lld, vectors %s\n", S("embedder"),
               (long long)I("dim"), S("quant"));
        printf("  documents  %lld (%.2f MB)\n", (long long)I("docs"), (double)I("bytes") / 1e6);
        printf("  chunks     %lld, tokens %lld (per chunk min %lld, avg %.1f, max %lld)\n",
               (long long)I("chunks"), (long long)I("tokens"), (long long)I("chunk_tokens_min"),
               json_object_object_get_ex(k, "chunk_tokens_avg", &v) ? json_object_get_double(v)
                                                                   : 0.0,
               (long long)I("chunk_tokens_max"));
        printf("  vectors    %.2f MB\n", (double)I("vector_bytes") / 1e6);
        if (I("embed_requests"))
            printf("  embedding  %lld request(s), %lld tokens, $%.6f (every add)\n",
                   (long long)I("embed_requests"), (long long)I("embed_tokens"),
                   json_object_object_get_ex(k, "embed_cost_usd", &v) ? json_object_get_double(v)
                                                                     : 0.0);
    }
#undef S
#undef I
    json_object_put(k);
    return CLI_OK;
}

static int cmd_rm(rag_t *r, opts_t *o)
{
    if (o->npos != 1) {
        fprintf(stderr, "usage: agentd kb rm KB\n");
        return CLI_USAGE;
    }
    char err[512] = "";
    int rc = rag_rm(r, o->pos[0], err, sizeof err);
    if (rc) {
        fprintf(stderr, "agentd kb rm: %s\n", err);
        return code_of(rc);
    }
    printf("kb %s removed\n", o->pos[0]);
    return CLI_OK;
}

static int mode_of(const char *s)
{
    if (!s || !strcmp(s, "hybrid"))
        return RAG_HYBRID;
    if (!strcmp(s, "keyword"))
        return RAG_KEYWORD;
    if (!strcmp(s, "vector"))
        return RAG_VECTOR;
    if (!strcmp(s, "all"))
        return 3;
    return -1;
}

static void print_hits(const rag_hits_t *h, const char *mode)
{
    printf("%s: %zu result(s) in %.2f ms\n", mode, h->n, h->ms);
    for (size_t i = 0; i < h->n; i++) {
        const rag_hit_t *x = &h->v[i];
        printf("%2zu. %8.4f  %s#%lld  [%lld-%lld]%s%s\n", i + 1, x->score, x->path,
               (long long)x->chunk_id, (long long)x->start, (long long)x->end,
               *x->heading ? "  § " : "", x->heading);
        /* a one-line snippet */
        char snip[161];
        size_t n = 0;
        for (const char *p = x->text; *p && n < sizeof snip - 1; p++)
            snip[n++] = (*p == '\n' || *p == '\t' || *p == '\r') ? ' ' : *p;
        while (n && ((unsigned char)snip[n - 1] & 0xc0) == 0x80)
            n--; /* do not cut a UTF-8 sequence */
        if (n && (unsigned char)snip[n - 1] >= 0xc0)
            n--;
        snip[n] = 0;
        printf("              %s%s\n", snip, strlen(x->text) > n ? " …" : "");
    }
}

static int cmd_search(rag_t *r, opts_t *o)
{
    int mode = mode_of(o->mode);
    if (o->npos != 2 || mode < 0) {
        fprintf(stderr, "usage: agentd kb search KB QUERY [--mode keyword|vector|hybrid|all] "
                        "[-k N] [--json]\n");
        return CLI_USAGE;
    }
    static const char *const names[] = {"keyword", "vector", "hybrid"};
    json_object *all = o->json ? json_object_new_object() : NULL;
    int rc = 0;
    for (int m = mode == 3 ? 0 : mode; m <= (mode == 3 ? 2 : mode); m++) {
        rag_query_t q = {.text = o->pos[1], .mode = m, .k = o->k, .w_keyword = o->wk,
                         .w_vector = o->wv, .rrf_k = o->rrf_k, .path_glob = o->path,
                         .heading = o->heading, .embedder = o->kb.embedder};
        rag_hits_t h;
        char err[1024] = "";
        if ((rc = rag_search(r, o->pos[0], &q, &h, err, sizeof err))) {
            fprintf(stderr, "agentd kb search: %s\n", err);
            break;
        }
        if (all) {
            json_object *j = json_object_new_object();
            json_object_object_add(j, "ms", jx_new_num(h.ms));
            if (h.embed_tokens)
                json_object_object_add(j, "embed_tokens", json_object_new_int64(h.embed_tokens));
            json_object_object_add(j, "results", rag_hits_json(&h));
            json_object_object_add(all, names[m], j);
        } else {
            print_hits(&h, names[m]);
        }
        rag_hits_clear(&h);
    }
    if (all) {
        if (!rc)
            printf("%s\n", json_object_to_json_string_ext(all, JSON_C_TO_STRING_PLAIN));
        json_object_put(all);
    }
    return code_of(rc);
}

static int cmd_eval(rag_t *r, opts_t *o)
{
    if (o->npos != 2) {
        fprintf(stderr, "usage: agentd kb eval KB[,KB...] QUESTIONS.jsonl [--json]\n");
        return CLI_USAGE;
    }
    char *list = strdup(o->pos[0]);
    if (!list)
        return CLI_INTERNAL;
    json_object *arr = json_object_new_array();
    int rc = 0;
    if (!o->json)
        printf("%-16s %-10s %5s %-8s %9s %9s %10s %7s %8s %8s %8s\n", "KB", "STRATEGY", "SIZE",
               "MODE", "RECALL@1", "RECALL@5", "RECALL@10", "MRR", "P50 ms", "P95 ms", "CPU P50");
    char *save = NULL;
    for (char *kb = strtok_r(list, ",", &save); kb && !rc; kb = strtok_r(NULL, ",", &save)) {
        json_object *res = NULL;
        char err[1024] = "";
        if ((rc = rag_eval(r, kb, o->pos[1], &res, err, sizeof err))) {
            fprintf(stderr, "agentd kb eval: %s\n", err);
            break;
        }
        if (!o->json) {
            json_object *modes, *v, *m;
            json_object_object_get_ex(res, "modes", &modes);
            static const char *const names[] = {"keyword", "vector", "hybrid"};
            for (int i = 0; i < 3; i++) {
                json_object_object_get_ex(modes, names[i], &m);
#define D(obj, f) (json_object_object_get_ex(obj, f, &v) ? json_object_get_double(v) : 0.0)
#define T(obj, f) (json_object_object_get_ex(obj, f, &v) ? json_object_get_string(v) : "")
                printf("%-16s %-10s %5d %-8s %9.3f %9.3f %10.3f %7.3f %8.2f %8.2f %8.2f\n", kb,
                       T(res, "strategy"), (int)D(res, "size"), names[i], D(m, "recall@1"),
                       D(m, "recall@5"), D(m, "recall@10"), D(m, "mrr"), D(m, "p50_ms"),
                       D(m, "p95_ms"), D(m, "p50_cpu_ms"));
#undef D
#undef T
            }
        }
        json_object_array_add(arr, res);
    }
    if (!rc && o->json)
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY));
    json_object_put(arr);
    free(list);
    return code_of(rc);
}

int kb_cli_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(kb_cli_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    static const struct {
        const char *name;
        int (*fn)(rag_t *, opts_t *);
    } subs[] = {{"add", cmd_add},       {"list", cmd_list},     {"stats", cmd_stats},
                {"rm", cmd_rm},         {"search", cmd_search}, {"eval", cmd_eval}};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(argv[1], subs[i].name))
            continue;
        opts_t o = {0};
        if (!(o.pos = calloc((size_t)argc, sizeof *o.pos)))
            return CLI_INTERNAL;
        if (parse(argc - 1, argv + 1, &o)) {
            free(o.pos);
            return CLI_USAGE;
        }
        const char *path = kb_db_path(o.kbdb, o.db);
        char err[1024];
        const char *env = getenv("AGENTD_KB_DB");
        if (!o.kbdb && !(env && *env) && db_is_url(cli_db_path(o.db)))
            fprintf(stderr,
                    "agentd kb: the run database is PostgreSQL and knowledge bases are "
                    "SQLite files: using %s in this folder (--kb-db or AGENTD_KB_DB to "
                    "choose another)\n",
                    path);
        if (strcmp(argv[1], "add") && access(path, F_OK) != 0) {
            fprintf(stderr, "agentd kb %s: %s: no such database (create a KB with agentd kb add "
                            "KB PATH, or pass --kb-db)\n",
                    argv[1], path);
            free(o.pos);
            return CLI_USAGE;
        }
        rag_t *r = rag_open(path, err, sizeof err);
        if (!r) {
            fprintf(stderr, "agentd kb: %s\n", err);
            free(o.pos);
            return CLI_INTERNAL;
        }
        int code = subs[i].fn(r, &o);
        rag_close(r);
        free(o.pos);
        return code;
    }
    fprintf(stderr, "agentd kb: unknown subcommand \"%s\"; see agentd help kb\n", argv[1]);
    return CLI_USAGE;
}
