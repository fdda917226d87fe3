/*
 * rag_ingest: `kb add`. Walk the paths, skip files whose SHA-256 matches the stored one,
 * parse / chunk / embed the rest, and write each document in one transaction (old chunks,
 * their FTS rows and vectors out, new ones in, the KB's gen bumped). Embedding happens
 * before the transaction opens, so a failing embedder leaves every document whole and the
 * next add resumes where this one stopped. Documents under a walked folder (or named files)
 * that are gone from disk are removed.
 *
 * Paths are stored as written on the command line joined with the walked names, minus a
 * leading "./" and trailing "/": add the same folder the same way to update it.
 */
#include "rag_int.h"

#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct file {
    char *path;
    uint64_t size;
    int fmt;
    int named; /* given on the command line (errors are errors, not warnings) */
} file_t;

typedef struct walk {
    file_t *v;
    size_t n, cap;
    char **dirs;  /* walked folders (for removals) */
    size_t ndirs;
    char **gone;  /* named files that do not exist (removed if indexed) */
    size_t ngone;
} walk_t;

static char *norm_path(const char *p)
{
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    char *s = strdup(*p ? p : ".");
    if (!s)
        return NULL;
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '/' && w > s && w[-1] == '/')
            continue;
        *w++ = *r;
    }
    while (w > s + 1 && w[-1] == '/')
        w--;
    *w = 0;
    return s;
}

static int push_str(char ***v, size_t *n, char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv) {
        free(s);
        return ERR_NOMEM;
    }
    *v = nv;
    (*v)[(*n)++] = s;
    return 0;
}

static int push_file(walk_t *w, char *path, uint64_t size, int fmt, int named)
{
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 64;
        file_t *v = realloc(w->v, nc * sizeof *v);
        if (!v) {
            free(path);
            return ERR_NOMEM;
        }
        w->v = v;
        w->cap = nc;
    }
    w->v[w->n++] = (file_t){path, size, fmt, named};
    return 0;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(walk_t *w, const char *dir, int depth, char *err, size_t errlen)
{
    if (depth > 64)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return err_set(err, errlen, ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue; /* ., .., and hidden files such as .git */
        char *s = strdup(e->d_name);
        if (!s || push_str(&names, &n, s)) {
            rc = ERR_NOMEM;
            break;
        }
    }
    closedir(d);
    if (!rc)
        qsort(names, n, sizeof *names, str_cmp);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t l = strlen(dir) + strlen(names[i]) + 2;
        char *p = malloc(l);
        if (!p) {
            rc = ERR_NOMEM;
            break;
        }
        snprintf(p, l, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", names[i]);
        struct stat st;
        if (stat(p, &st) != 0) {
            free(p);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            rc = walk_dir(w, p, depth + 1, err, errlen);
            free(p);
        } else if (S_ISREG(st.st_mode) && rag_format_of(p) >= 0) {
            rc = push_file(w, p, (uint64_t)st.st_size, rag_format_of(p), 0);
        } else {
            free(p);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static void walk_clear(walk_t *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->v[i].path);
    for (size_t i = 0; i < w->ndirs; i++)
        free(w->dirs[i]);
    for (size_t i = 0; i < w->ngone; i++)
        free(w->gone[i]);
    free(w->v);
    free(w->dirs);
    free(w->gone);
}

static int collect(walk_t *w, const char *const *paths, size_t npaths, char *err, size_t errlen)
{
    for (size_t i = 0; i < npaths; i++) {
        char *p = norm_path(paths[i]);
        if (!p)
            return ERR_NOMEM;
        struct stat st;
        if (stat(p, &st) != 0) {
            if (errno != ENOENT) {
                err_set(err, errlen, ERR_IO, "%s: %s", p, strerror(errno));
                free(p);
                return ERR_IO;
            }
            if (push_str(&w->gone, &w->ngone, p))
                return ERR_NOMEM;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            int rc = walk_dir(w, p, 0, err, errlen);
            if (rc || push_str(&w->dirs, &w->ndirs, p)) {
                if (rc)
                    free(p);
                return rc ? rc : ERR_NOMEM;
            }
        } else {
            int fmt = rag_format_of(p);
            /* A named file of another extension is read as plain text (and checked). */
            if (push_file(w, p, (uint64_t)st.st_size, fmt < 0 ? RAG_FMT_TEXT : fmt, 1))
                return ERR_NOMEM;
        }
    }
    return 0;
}

typedef struct ing {
    rag_t *r;
    rag_kb_t kb;
    rag_embedder_t *emb;
    sqlite3_stmt *doc_get, *doc_put, *chunk_put, *fts_put, *fts_del, *chunk_del;
} ing_t;

static const char *const sql_doc_get =
    "SELECT id, hash FROM kb_docs WHERE kb_id = ?1 AND path = ?2";
static const char *const sql_doc_put =
    "INSERT INTO kb_docs (kb_id, path, title, hash, bytes, chunks, indexed_ns) "
    "VALUES (?1,?2,?3,?4,?5,?6,?7) ON CONFLICT (kb_id, path) DO UPDATE SET title = ?3, "
    "hash = ?4, bytes = ?5, chunks = ?6, indexed_ns = ?7 RETURNING id";
static const char *const sql_chunk_put =
    "INSERT INTO kb_chunks (kb_id, doc_id, ord, heading, start, end, tokens, text, vec) "
    "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)";

static const char *const sql_chunk_del = "DELETE FROM kb_chunks WHERE doc_id = ?1";

static int prep(rag_t *r, const char *sql, sqlite3_stmt **s)
{
    return sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL) ? ERR_IO : 0;
}

/* The statements on the KB's own FTS table. */
static int prep_fts(rag_t *r, int64_t kb_id, sqlite3_stmt **put, sqlite3_stmt **del)
{
    char a[160], b[160];
    snprintf(a, sizeof a,
             "INSERT INTO kb_fts_%lld (rowid, title, heading, text) VALUES (?1,?3,?4,?5)",
             (long long)kb_id);
    snprintf(b, sizeof b,
             "DELETE FROM kb_fts_%lld WHERE rowid IN (SELECT id FROM kb_chunks WHERE doc_id = ?1)",
             (long long)kb_id);
    return prep(r, a, put) || prep(r, b, del) ? ERR_IO : 0;
}

static int step_done(sqlite3_stmt *s)
{
    int src = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return src == SQLITE_DONE ? 0 : rag_sql_rc(src);
}

static int read_file(const char *path, uint64_t max, char **out, size_t *len, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, errlen, ERR_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return err_set(err, errlen, ERR_IO, "not a regular file");
    }
    if ((uint64_t)st.st_size > max) {
        fclose(f);
        return err_set(err, errlen, ERR_TOOBIG,
                       "too big (%.1f MiB; the limit is %.0f MiB: split it, or raise "
                       "--max-file-mb)",
                       (double)st.st_size / 1048576.0, (double)max / 1048576.0);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return err_set(err, errlen, ERR_NOMEM, "out of memory reading %zu bytes", n);
    }
    size_t got = fread(buf, 1, n, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != n) {
        free(buf);
        return err_set(err, errlen, ERR_IO, "read error");
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int delete_doc(ing_t *g, int64_t doc_id)
{
    sqlite3_bind_int64(g->fts_del, 1, doc_id);
    int rc = step_done(g->fts_del);
    sqlite3_bind_int64(g->chunk_del, 1, doc_id);
    if (!rc)
        rc = step_done(g->chunk_del);
    if (!rc) {
        char sql[96];
        snprintf(sql, sizeof sql, "DELETE FROM kb_docs WHERE id = %lld", (long long)doc_id);
        rc = rag_sql_rc(sqlite3_exec(g->r->db, sql, NULL, NULL, NULL));
    }
    return rc;
}

/* The vector as stored: f32 or int8 (round(v * 127)). */
static void vec_blob(const rag_kb_t *kb, const float *v, void *out, int *bytes)
{
    if (!strcmp(kb->quant, "int8")) {
        int8_t *q = out;
        for (int i = 0; i < kb->dim; i++) {
            float x = v[i] * 127.0f;
            q[i] = (int8_t)(x > 127 ? 127 : x < -127 ? -127 : (x >= 0 ? x + 0.5f : x - 0.5f));
        }
        *bytes = kb->dim;
    } else {
        memcpy(out, v, (size_t)kb->dim * sizeof *v);
        *bytes = kb->dim * (int)sizeof(float);
    }
}

/* Parse, chunk, embed and write one file. *outcome: 1 added, 2 updated, 0 unchanged. */
static int index_file(ing_t *g, const file_t *f, uint64_t max, int *outcome, uint64_t *chunks,
                      char *err, size_t errlen)
{
    char *buf = NULL, hash[65];
    size_t len = 0;
    rag_doc_t doc = {0};
    rag_chunks_t ch = {0};
    float *vecs = NULL;
    char **etext = NULL;
    void *blob = NULL;
    int rc = read_file(f->path, max, &buf, &len, err, errlen);
    if (rc)
        return rc;
    rag_sha256_hex(buf, len, hash);
    int64_t old_id = 0;
    sqlite3_bind_int64(g->doc_get, 1, g->kb.id);
    sqlite3_bind_text(g->doc_get, 2, f->path, -1, SQLITE_STATIC);
    if (sqlite3_step(g->doc_get) == SQLITE_ROW) {
        old_id = sqlite3_column_int64(g->doc_get, 0);
        const char *h = (const char *)sqlite3_column_text(g->doc_get, 1);
        if (h && !strcmp(h, hash)) {
            sqlite3_reset(g->doc_get);
            free(buf);
            *outcome = 0;
            return 0;
        }
    }
    sqlite3_reset(g->doc_get);
    if ((rc = rag_text_check(buf, len, err, errlen)))
        goto done;
    if (f->fmt == RAG_FMT_HTML)
        rc = rag_parse_html(buf, len, &doc, err, errlen);
    else if (f->fmt == RAG_FMT_MD)
        rc = rag_parse_md(buf, len, &doc);
    else
        rc = rag_parse_text(buf, len, &doc);
    if (rc || (rc = rag_chunk_doc(&doc, &g->kb, &ch))) {
        if (!*err)
            err_set(err, errlen, rc, "out of memory");
        goto done;
    }
    if (!ch.n) {
        rc = err_set(err, errlen, ERR_INVAL, "no text to index (only markup or headings)");
        goto done;
    }
    const char *title = doc.title ? doc.title : f->path;
    /* What gets embedded: the chunk with its title and heading path, so a vector knows
     * which page and section it came from. */
    if (!(etext = calloc(ch.n, sizeof *etext))) {
        rc = ERR_NOMEM;
        goto oom;
    }
    for (size_t i = 0; i < ch.n; i++) {
        size_t l = strlen(title) + strlen(ch.v[i].heading) + strlen(ch.v[i].text) + 8;
        if (!(etext[i] = malloc(l)))
            goto oom;
        snprintf(etext[i], l, "%s\n%s\n%s", title, ch.v[i].heading, ch.v[i].text);
    }
    int dim0 = g->kb.dim ? g->kb.dim : 8192;
    if (!(vecs = malloc(ch.n * (size_t)dim0 * sizeof *vecs)))
        goto oom;
    int dim = g->kb.dim;
    if ((rc = rag_embed(g->emb, (const char *const *)etext, ch.n, vecs, &dim, err, errlen)))
        goto done;
    if (!g->kb.dim && dim > dim0) {
        rc = err_set(err, errlen, ERR_PROTO, "embedding dimension %d is over 8192", dim);
        goto done;
    }
    g->kb.dim = dim;
    if (!(blob = malloc((size_t)dim * sizeof(float))))
        goto oom;
    if ((rc = rag_exec(g->r, "BEGIN IMMEDIATE", err, errlen)))
        goto done;
    if (old_id && (rc = delete_doc(g, old_id)))
        goto sqlfail;
    sqlite3_stmt *s = g->doc_put;
    sqlite3_bind_int64(s, 1, g->kb.id);
    sqlite3_bind_text(s, 2, f->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, title, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, (int64_t)len);
    sqlite3_bind_int64(s, 6, (int64_t)ch.n);
    sqlite3_bind_int64(s, 7, wall_ns());
    int src = sqlite3_step(s);
    int64_t doc_id = src == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (!doc_id) {
        rc = rag_sql_rc(src ? src : SQLITE_ERROR);
        goto sqlfail;
    }
    for (size_t i = 0; i < ch.n; i++) {
        int bytes;
        vec_blob(&g->kb, vecs + i * (size_t)dim, blob, &bytes);
        s = g->chunk_put;
        sqlite3_bind_int64(s, 1, g->kb.id);
        sqlite3_bind_int64(s, 2, doc_id);
        sqlite3_bind_int64(s, 3, (int64_t)i);
        sqlite3_bind_text(s, 4, ch.v[i].heading, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, ch.v[i].start);
        sqlite3_bind_int64(s, 6, ch.v[i].end);
        sqlite3_bind_int(s, 7, ch.v[i].tokens);
        sqlite3_bind_text(s, 8, ch.v[i].text, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 9, blob, bytes, SQLITE_STATIC);
        if ((rc = step_done(s)))
            goto sqlfail;
        int64_t cid = sqlite3_last_insert_rowid(g->r->db);
        s = g->fts_put;
        sqlite3_bind_int64(s, 1, cid);
        sqlite3_bind_text(s, 3, title, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, ch.v[i].heading, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, ch.v[i].text, -1, SQLITE_STATIC);
        if ((rc = step_done(s)))
            goto sqlfail;
    }
    if ((rc = rag_kb_touch(g->r, &g->kb)))
        goto sqlfail;
    if ((rc = rag_exec(g->r, "COMMIT", err, errlen))) {
        sqlite3_exec(g->r->db, "ROLLBACK", NULL, NULL, NULL);
        goto done;
    }
    *outcome = old_id ? 2 : 1;
    *chunks += ch.n;
    goto done;
sqlfail:
    err_set(err, errlen, rc, "%s: %s", g->r->path, sqlite3_errmsg(g->r->db));
    sqlite3_exec(g->r->db, "ROLLBACK", NULL, NULL, NULL);
    goto done;
oom:
    rc = err_set(err, errlen, ERR_NOMEM, "out of memory");
done:
    if (etext)
        for (size_t i = 0; i < ch.n; i++)
            free(etext[i]);
    free(etext);
    free(vecs);
    free(blob);
    rag_chunks_clear(&ch);
    rag_doc_clear(&doc);
    free(buf);
    return rc;
}

/* Remove documents of the KB under a walked folder that the walk did not see, and named
 * files that no longer exist. */
static int remove_gone(ing_t *g, const walk_t *w, size_t *removed, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    if (prep(g->r, "SELECT id, path FROM kb_docs WHERE kb_id = ?1 ORDER BY path", &s))
        return err_set(err, errlen, ERR_IO, "%s: %s", g->r->path, sqlite3_errmsg(g->r->db));
    sqlite3_bind_int64(s, 1, g->kb.id);
    int64_t *ids = NULL;
    size_t n = 0;
    int rc = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(s, 1);
        int drop = 0;
        for (size_t i = 0; i < w->ngone && !drop; i++)
            drop = !strcmp(p, w->gone[i]);
        for (size_t i = 0; i < w->ndirs && !drop; i++) {
            size_t l = strlen(w->dirs[i]);
            int under = !strcmp(w->dirs[i], ".") ? p[0] != '/'
                                                  : !strncmp(p, w->dirs[i], l) && p[l] == '/';
            if (!under)
                continue;
            int seen = 0;
            for (size_t j = 0; j < w->n && !seen; j++)
                seen = !strcmp(w->v[j].path, p);
            drop = !seen;
        }
        if (drop) {
            int64_t *ni = realloc(ids, (n + 1) * sizeof *ni);
            if (!ni) {
                rc = ERR_NOMEM;
                break;
            }
            ids = ni;
            ids[n++] = sqlite3_column_int64(s, 0);
        }
    }
    sqlite3_finalize(s);
    if (!rc && n) {
        if ((rc = rag_exec(g->r, "BEGIN IMMEDIATE", err, errlen)))
            goto done;
        for (size_t i = 0; i < n && !rc; i++)
            rc = delete_doc(g, ids[i]);
        if (!rc)
            rc = rag_kb_touch(g->r, &g->kb);
        if (!rc)
            rc = rag_exec(g->r, "COMMIT", err, errlen);
        if (rc) {
            if (!*err)
                err_set(err, errlen, rc, "%s: %s", g->r->path, sqlite3_errmsg(g->r->db));
            sqlite3_exec(g->r->db, "ROLLBACK", NULL, NULL, NULL);
        } else {
            *removed = n;
        }
    }
done:
    free(ids);
    return rc;
}

int rag_add(rag_t *r, const char *kb, const char *const *paths, size_t npaths,
            const rag_add_opts_t *o, rag_add_stats_t *st, char *err, size_t errlen)
{
    rag_add_opts_t none = {0};
    if (!o)
        o = &none;
    rag_add_stats_t stats = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    walk_t w = {0};
    ing_t g = {.r = r};
    int rc = rag_kb_get(r, kb, &g.kb, err, errlen);
    if (rc == ERR_NOTFOUND) {
        *err = 0;
        rc = rag_kb_create(r, kb, o->kb, &g.kb, err, errlen);
    } else if (!rc) {
        rc = rag_kb_check(&g.kb, o->kb, err, errlen);
    }
    if (rc)
        return rc;
    if ((rc = collect(&w, paths, npaths, err, errlen)))
        goto done;
    /* A KB is derived from files on disk, so an add commits with synchronous=NORMAL: in WAL
     * mode a power cut can then lose the last commits but never corrupts the file, and a lost
     * document is re-indexed by the next add (its hash never landed). One fsync per document
     * was half of the ingest time. FULL is back for everything else on this handle. */
    sqlite3_exec(r->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    for (size_t i = 0; i < w.ngone; i++) {
        sqlite3_stmt *s = NULL;
        int known = 0;
        if (!prep(r, sql_doc_get, &s)) {
            sqlite3_bind_int64(s, 1, g.kb.id);
            sqlite3_bind_text(s, 2, w.gone[i], -1, SQLITE_STATIC);
            known = sqlite3_step(s) == SQLITE_ROW;
        }
        sqlite3_finalize(s);
        if (!known) {
            rc = err_set(err, errlen, ERR_NOTFOUND, "%s: no such file or folder", w.gone[i]);
            goto done;
        }
    }
    if (!(g.emb = rag_embedder_new(r, &g.kb, err, errlen))) {
        rc = ERR_NOMEM;
        goto done;
    }
    if (prep(r, sql_doc_get, &g.doc_get) || prep(r, sql_doc_put, &g.doc_put) ||
        prep(r, sql_chunk_put, &g.chunk_put) || prep_fts(r, g.kb.id, &g.fts_put, &g.fts_del) || prep(r, sql_chunk_del, &g.chunk_del)) {
        rc = err_set(err, errlen, ERR_IO, "%s: %s", r->path, sqlite3_errmsg(r->db));
        goto done;
    }
    uint64_t total = 0, done_bytes = 0;
    for (size_t i = 0; i < w.n; i++)
        total += w.v[i].size;
    uint64_t max = o->max_file_bytes ? o->max_file_bytes : (uint64_t)64 << 20;
    int named_bad = 0;
    char first_bad[1024] = "";
    for (size_t i = 0; i < w.n; i++) {
        const file_t *f = &w.v[i];
        int outcome = 0;
        char ferr[400] = "";
        int frc = index_file(&g, f, max, &outcome, &stats.chunks, ferr, sizeof ferr);
        stats.files++;
        if (frc == ERR_INVAL || frc == ERR_TOOBIG || (frc == ERR_IO && !strstr(ferr, r->path))) {
            /* the file's fault: skip it, keep going */
            stats.skipped++;
            char line[1024];
            snprintf(line, sizeof line, "%s: %s", f->path, ferr);
            /* The first bad named file is the call's error; a warning would say it twice. */
            if (f->named && !named_bad++)
                snprintf(first_bad, sizeof first_bad, "%s", line);
            else if (o->warn)
                o->warn(o->ud, line);
        } else if (frc) {
            /* the embedder or the database: stop; what is committed stays */
            rc = err_set(err, errlen, frc, "%s: %s (the %zu file(s) before it are indexed; "
                                           "run the same add again to resume)",
                         f->path, ferr, stats.added + stats.updated + stats.unchanged);
            goto done;
        } else if (outcome == 0) {
            stats.unchanged++;
        } else {
            stats.bytes += f->size;
            if (outcome == 1)
                stats.added++;
            else
                stats.updated++;
        }
        done_bytes += f->size;
        if (o->progress)
            o->progress(o->ud, i + 1, w.n, done_bytes, total, f->path);
    }
    if ((rc = remove_gone(&g, &w, &stats.removed, err, errlen)))
        goto done;
    if (named_bad)
        rc = err_set(err, errlen, ERR_INVAL, "%s", first_bad);
done:
    if (g.emb) {
        rag_embed_usage_t u;
        rag_embedder_usage(g.emb, &u);
        stats.embed_calls = u.calls;
        stats.embed_cached = u.cached;
        stats.embed_tokens = u.tokens;
        stats.embed_cost = u.cost;
        /* Recorded even when the add failed: the provider bills what it answered. */
        if (rag_usage_record(r, &g.kb, "add", g.emb) && !rc)
            rc = err_set(err, errlen, ERR_IO, "%s: recording the embedding cost: %s", r->path,
                         sqlite3_errmsg(r->db));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    stats.secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (st)
        *st = stats;
    sqlite3_finalize(g.doc_get);
    sqlite3_finalize(g.doc_put);
    sqlite3_finalize(g.chunk_put);
    sqlite3_finalize(g.fts_put);
    sqlite3_finalize(g.fts_del);
    sqlite3_finalize(g.chunk_del);
    rag_embedder_free(g.emb);
    walk_clear(&w);
    sqlite3_exec(r->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    return rc;
}
