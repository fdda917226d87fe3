/*
 * rag_db: the module's schema (own numbered migrations in kb_schema, so the run database's
 * user_version stays the store's), KB rows, list, stats and rm.
 */
#include "rag_int.h"

#include "db/db.h"
#include "err.h"
#include "mem.h"
#include "model_int.h"
#include "jx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Migration i brings kb_schema.version from i to i+1. Append; never edit a shipped one.
 * Each KB also has an FTS5 table of its own, kb_fts_<id> (title, heading, text; rowid = the
 * chunk id), made by rag_kb_create: BM25's statistics are then the KB's, and a keyword query
 * touches no other KB's postings. */
static const char *const migrations[] = {
    /* 1 */
    "CREATE TABLE kb (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, strategy TEXT NOT NULL,"
    "  size INTEGER NOT NULL, overlap INTEGER NOT NULL, embedder TEXT NOT NULL,"
    "  dim INTEGER NOT NULL, quant TEXT NOT NULL, gen INTEGER NOT NULL DEFAULT 0,"
    "  created_ns INTEGER, updated_ns INTEGER);"
    "CREATE TABLE kb_docs (id INTEGER PRIMARY KEY, kb_id INTEGER NOT NULL REFERENCES kb(id)"
    "  ON DELETE CASCADE, path TEXT NOT NULL, title TEXT, hash TEXT NOT NULL,"
    "  bytes INTEGER NOT NULL, chunks INTEGER NOT NULL, indexed_ns INTEGER,"
    "  UNIQUE (kb_id, path));"
    "CREATE TABLE kb_chunks (id INTEGER PRIMARY KEY, kb_id INTEGER NOT NULL,"
    "  doc_id INTEGER NOT NULL REFERENCES kb_docs(id) ON DELETE CASCADE, ord INTEGER NOT NULL,"
    "  heading TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,"
    "  tokens INTEGER NOT NULL, text TEXT NOT NULL, vec BLOB NOT NULL);"
    "CREATE INDEX kb_chunks_kb ON kb_chunks (kb_id, id);"
    "CREATE INDEX kb_chunks_doc ON kb_chunks (doc_id);"
    "CREATE TABLE kb_embcache (model TEXT NOT NULL, hash TEXT NOT NULL, vec BLOB NOT NULL,"
    "  PRIMARY KEY (model, hash)) WITHOUT ROWID;",
    /* 2: what HTTP embedders cost, one row per add (like a model call's usage and cost) */
    "CREATE TABLE kb_usage (id INTEGER PRIMARY KEY, kb_id INTEGER NOT NULL REFERENCES kb(id)"
    "  ON DELETE CASCADE, op TEXT NOT NULL, model TEXT NOT NULL, requests INTEGER NOT NULL,"
    "  inputs INTEGER NOT NULL, cached INTEGER NOT NULL, tokens INTEGER NOT NULL,"
    "  cost_usd REAL NOT NULL, at_ns INTEGER NOT NULL);"
    "CREATE INDEX kb_usage_kb ON kb_usage (kb_id);",
};

int rag_sql_rc(int src)
{
    return db_sqlite_rc(src);
}

int rag_exec(rag_t *r, const char *sql, char *err, size_t errlen)
{
    int src = sqlite3_exec(r->db, sql, NULL, NULL, NULL);
    if (src == SQLITE_OK)
        return 0;
    return err_set(err, errlen, rag_sql_rc(src), "%s: %s", r->path, sqlite3_errmsg(r->db));
}

static int schema_version(rag_t *r, int *out)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT max(version) FROM kb_schema", -1, &s, NULL))
        return ERR_IO;
    int src = sqlite3_step(s);
    *out = src == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlite3_finalize(s);
    return src == SQLITE_ROW ? 0 : rag_sql_rc(src);
}

/* For a reader: the schema as it is, without writing. */
static int check_schema(rag_t *r, char *err, size_t errlen)
{
    int n = (int)(sizeof migrations / sizeof migrations[0]), v = 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT 1 FROM sqlite_master WHERE type='table' AND name='kb_schema'",
                           -1, &s, NULL))
        return err_set(err, errlen, ERR_IO, "%s: %s", r->path, sqlite3_errmsg(r->db));
    int src = sqlite3_step(s);
    sqlite3_finalize(s);
    if (src == SQLITE_DONE) {
        r->empty = 1;
        return 0;
    }
    if (src != SQLITE_ROW || schema_version(r, &v))
        return err_set(err, errlen, ERR_IO, "%s: %s", r->path, sqlite3_errmsg(r->db));
    if (v > n)
        return err_set(err, errlen, ERR_INVAL,
                       "%s: knowledge-base schema version %d is newer than this agentd (%d); "
                       "upgrade agentd",
                       r->path, v, n);
    if (v < n)
        return err_set(err, errlen, ERR_INVAL,
                       "%s: knowledge-base schema version %d is older than this agentd's (%d); "
                       "`agentd kb list --kb-db %s` upgrades it",
                       r->path, v, n, r->path);
    return 0;
}

/* Like store.c: the version is read again under the write lock, so concurrent openers run
 * each migration once. */
static int migrate(rag_t *r, char *err, size_t errlen)
{
    int n = (int)(sizeof migrations / sizeof migrations[0]);
    if (rag_exec(r, "CREATE TABLE IF NOT EXISTS kb_schema (version INTEGER NOT NULL)", err,
                 errlen))
        return ERR_IO;
    for (;;) {
        int v = 0;
        if (schema_version(r, &v))
            return err_set(err, errlen, ERR_IO, "%s: %s", r->path, sqlite3_errmsg(r->db));
        if (v > n)
            return err_set(err, errlen, ERR_INVAL,
                           "%s: knowledge-base schema version %d is newer than this agentd (%d); "
                           "upgrade agentd",
                           r->path, v, n);
        if (v == n)
            return 0;
        if (rag_exec(r, "BEGIN IMMEDIATE", err, errlen))
            return ERR_IO;
        if (schema_version(r, &v))
            goto fail;
        if (v < n) {
            char sql[96];
            snprintf(sql, sizeof sql, "INSERT INTO kb_schema (version) VALUES (%d)", v + 1);
            if (sqlite3_exec(r->db, migrations[v], NULL, NULL, NULL) ||
                sqlite3_exec(r->db, sql, NULL, NULL, NULL)) {
                err_set(err, errlen, ERR_IO, "%s: knowledge-base migration %d failed: %s",
                        r->path, v + 1, sqlite3_errmsg(r->db));
                sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
                return ERR_IO;
            }
        }
        if (rag_exec(r, "COMMIT", err, errlen))
            goto fail;
    }
fail:
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    return err_set(err, errlen, ERR_IO, "%s: %s", r->path, sqlite3_errmsg(r->db));
}

const char *rag_default_path(const char *run_db)
{
    const char *e = getenv("AGENTD_KB_DB");
    if (e && *e)
        return e;
    /* a run database on PostgreSQL: the knowledge bases stay SQLite, in this host's file */
    return db_is_url(run_db) ? "agentd.kb.db" : run_db;
}

static rag_t *open_kb(const char *path, int reader, char *err, size_t errlen)
{
    mem_install();
    rag_t *r = calloc(1, sizeof *r);
    if (!r) {
        err_set(err, errlen, ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(r->path, sizeof r->path, "%s", path);
    if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        err_set(err, errlen, ERR_IO, "%s: cannot open database: %s", path,
                r->db ? sqlite3_errmsg(r->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(r->db, 10000);
    if (rag_exec(r, "PRAGMA journal_mode=WAL", err, errlen) ||
        rag_exec(r, "PRAGMA synchronous=FULL", err, errlen) ||
        rag_exec(r, "PRAGMA foreign_keys=ON", err, errlen) ||
        rag_exec(r, "PRAGMA temp_store=MEMORY", err, errlen) ||
        rag_exec(r, "PRAGMA cache_size=-65536", err, errlen) ||
        rag_exec(r, "PRAGMA mmap_size=1073741824", err, errlen) ||
        (reader ? check_schema(r, err, errlen) : migrate(r, err, errlen)))
        goto fail;
    return r;
fail:
    rag_close(r);
    return NULL;
}

rag_t *rag_open(const char *path, char *err, size_t errlen)
{
    return open_kb(path, 0, err, errlen);
}

rag_t *rag_open_reader(const char *path, char *err, size_t errlen)
{
    return open_kb(path, 1, err, errlen);
}

void rag_close(rag_t *r)
{
    if (!r)
        return;
    rag_mats_free(r);
    rag_kwix_free_all(r);
    sqlite3_close(r->db);
    free(r);
}

void rag_sha256_hex(const void *p, size_t n, char out[65])
{
    model_sha256_hex(p, n, out);
}

uint64_t rag_hash64(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    /* FNV's low bits mix poorly for short keys; finish with a murmur-style avalanche. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static void copy_col(char *dst, size_t len, sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(dst, len, "%s", t ? (const char *)t : "");
}

int rag_kb_get(rag_t *r, const char *name, rag_kb_t *out, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int rc = 0;
    if (r->empty) {
        /* A KB may have been added since the open (by `agentd kb add` elsewhere). */
        r->empty = 0;
        if ((rc = check_schema(r, err, errlen))) {
            r->empty = 1;
            return rc;
        }
    }
    if (r->empty)
        return err_set(err, errlen, ERR_NOTFOUND,
                       "%s: no knowledge base named \"%s\" (create one with agentd kb add %s PATH)",
                       r->path, name, name);
    if (sqlite3_prepare_v2(r->db,
                           "SELECT id, name, strategy, size, overlap, embedder, dim, quant, gen "
                           "FROM kb WHERE name = ?1",
                           -1, &s, NULL))
        return err_set(err, errlen, ERR_IO, "%s: %s", r->path, sqlite3_errmsg(r->db));
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        out->id = sqlite3_column_int64(s, 0);
        copy_col(out->name, sizeof out->name, s, 1);
        copy_col(out->strategy, sizeof out->strategy, s, 2);
        out->size = sqlite3_column_int(s, 3);
        out->overlap = sqlite3_column_int(s, 4);
        copy_col(out->embedder, sizeof out->embedder, s, 5);
        out->dim = sqlite3_column_int(s, 6);
        copy_col(out->quant, sizeof out->quant, s, 7);
        out->gen = sqlite3_column_int64(s, 8);
    } else if (src == SQLITE_DONE) {
        rc = err_set(err, errlen, ERR_NOTFOUND,
                     "%s: no knowledge base named \"%s\" (create one with agentd kb add %s PATH)",
                     r->path, name, name);
    } else {
        rc = err_set(err, errlen, rag_sql_rc(src), "%s: %s", r->path, sqlite3_errmsg(r->db));
    }
    sqlite3_finalize(s);
    return rc;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= RAG_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!(*s == '-' || *s == '_' || *s == '.' || (*s >= '0' && *s <= '9') ||
              (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
            return 0;
    return 1;
}

/* Fill defaults and validate: the KB row as it would be stored. */
static int kb_from_opts(const char *name, const rag_kb_opts_t *o, rag_kb_t *kb, char *err,
                        size_t errlen)
{
    static const rag_kb_opts_t none = {.overlap = -1};
    if (!o)
        o = &none;
    memset(kb, 0, sizeof *kb);
    if (!valid_name(name))
        return err_set(err, errlen, ERR_INVAL,
                       "kb name \"%s\": use 1-127 letters, digits, '-', '_' or '.'", name);
    snprintf(kb->name, sizeof kb->name, "%s", name);
    const char *strat = o->strategy ? o->strategy : "structure";
    if (strcmp(strat, "fixed") && strcmp(strat, "structure") && strcmp(strat, "sentence"))
        return err_set(err, errlen, ERR_INVAL,
                       "--strategy \"%s\": use fixed, structure or sentence", strat);
    snprintf(kb->strategy, sizeof kb->strategy, "%s", strat);
    kb->size = o->size ? o->size : 200;
    if (kb->size < 8 || kb->size > 8192)
        return err_set(err, errlen, ERR_INVAL, "--size %d: use 8 to 8192 tokens", kb->size);
    kb->overlap = o->overlap < 0 ? kb->size / 5 : o->overlap;
    if (kb->overlap >= kb->size)
        return err_set(err, errlen, ERR_INVAL, "--overlap %d: must be less than --size %d",
                       kb->overlap, kb->size);
    if (strcmp(kb->strategy, "fixed") != 0)
        kb->overlap = 0;
    const char *emb = o->embedder ? o->embedder : "offline";
    if (strcmp(emb, "offline") && (strncmp(emb, "openai:", 7) || !emb[7]))
        return err_set(err, errlen, ERR_INVAL,
                       "--embedder \"%s\": use offline or openai:MODEL (any OpenAI-compatible "
                       "/v1/embeddings server through OPENAI_BASE_URL)",
                       emb);
    snprintf(kb->embedder, sizeof kb->embedder, "%s", emb);
    if (!strcmp(emb, "offline")) {
        kb->dim = o->dim ? o->dim : 256;
        if (kb->dim < 16 || kb->dim > 4096 || kb->dim % 16)
            return err_set(err, errlen, ERR_INVAL, "--dim %d: use a multiple of 16, 16 to 4096",
                           kb->dim);
    } else if (o->dim) {
        return err_set(err, errlen, ERR_INVAL,
                       "--dim: an HTTP embedding model decides its own dimension");
    }
    const char *quant = o->quant ? o->quant : "f32";
    if (strcmp(quant, "f32") && strcmp(quant, "int8"))
        return err_set(err, errlen, ERR_INVAL, "--quant \"%s\": use f32 or int8", quant);
    snprintf(kb->quant, sizeof kb->quant, "%s", quant);
    return 0;
}

int rag_kb_check(const rag_kb_t *kb, const rag_kb_opts_t *o, char *err, size_t errlen)
{
    if (!o)
        return 0;
    const char *what = NULL;
    char have[160] = "";
    if (o->strategy && strcmp(o->strategy, kb->strategy)) {
        what = "--strategy";
        snprintf(have, sizeof have, "%s", kb->strategy);
    } else if (o->size && o->size != kb->size) {
        what = "--size";
        snprintf(have, sizeof have, "%d", kb->size);
    } else if (o->overlap >= 0 && !strcmp(kb->strategy, "fixed") && o->overlap != kb->overlap) {
        what = "--overlap";
        snprintf(have, sizeof have, "%d", kb->overlap);
    } else if (o->embedder && strcmp(o->embedder, kb->embedder)) {
        what = "--embedder";
        snprintf(have, sizeof have, "%s", kb->embedder);
    } else if (o->dim && o->dim != kb->dim) {
        what = "--dim";
        snprintf(have, sizeof have, "%d", kb->dim);
    } else if (o->quant && strcmp(o->quant, kb->quant)) {
        what = "--quant";
        snprintf(have, sizeof have, "%s", kb->quant);
    }
    if (!what)
        return 0;
    return err_set(err, errlen, ERR_INVAL,
                   "kb \"%s\" was built with %s %s; use another name for other settings, or "
                   "agentd kb rm %s first",
                   kb->name, what, have, kb->name);
}

int rag_kb_create(rag_t *r, const char *name, const rag_kb_opts_t *o, rag_kb_t *out, char *err,
                  size_t errlen)
{
    rag_kb_t kb;
    int rc = kb_from_opts(name, o, &kb, err, errlen);
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(r->db,
                           "INSERT INTO kb (name, strategy, size, overlap, embedder, dim, quant, "
                           "created_ns, updated_ns) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?8)",
                           -1, &s, NULL))
        return err_set(err, errlen, ERR_IO, "%s: %s", r->path, sqlite3_errmsg(r->db));
    sqlite3_bind_text(s, 1, kb.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, kb.strategy, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, kb.size);
    sqlite3_bind_int(s, 4, kb.overlap);
    sqlite3_bind_text(s, 5, kb.embedder, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 6, kb.dim);
    sqlite3_bind_text(s, 7, kb.quant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, now_ns());
    if ((rc = rag_exec(r, "BEGIN IMMEDIATE", err, errlen))) {
        sqlite3_finalize(s);
        return rc;
    }
    int src = sqlite3_step(s);
    sqlite3_finalize(s);
    if (src != SQLITE_DONE)
        goto fail;
    kb.id = sqlite3_last_insert_rowid(r->db);
    char sql[160];
    snprintf(sql, sizeof sql,
             "CREATE VIRTUAL TABLE kb_fts_%lld USING fts5 (title, heading, text, "
             "tokenize = 'porter unicode61')",
             (long long)kb.id);
    if ((src = sqlite3_exec(r->db, sql, NULL, NULL, NULL)) ||
        (src = sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL)))
        goto fail;
    *out = kb;
    return 0;
fail:
    err_set(err, errlen, rag_sql_rc(src), "%s: %s", r->path, sqlite3_errmsg(r->db));
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    return rag_sql_rc(src);
}

int rag_kb_touch(rag_t *r, rag_kb_t *kb)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(r->db, "UPDATE kb SET gen = gen + 1, dim = ?2, updated_ns = ?3 "
                                  "WHERE id = ?1 RETURNING gen",
                           -1, &s, NULL))
        return ERR_IO;
    sqlite3_bind_int64(s, 1, kb->id);
    sqlite3_bind_int(s, 2, kb->dim);
    sqlite3_bind_int64(s, 3, now_ns());
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        kb->gen = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return src == SQLITE_ROW ? 0 : rag_sql_rc(src);
}

int rag_usage_record(rag_t *r, const rag_kb_t *kb, const char *op, const rag_embedder_t *e)
{
    rag_embed_usage_t u;
    rag_embedder_usage(e, &u);
    if (!u.calls && !u.cached)
        return 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(r->db,
                           "INSERT INTO kb_usage (kb_id, op, model, requests, inputs, cached, "
                           "tokens, cost_usd, at_ns) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
                           -1, &s, NULL))
        return ERR_IO;
    sqlite3_bind_int64(s, 1, kb->id);
    sqlite3_bind_text(s, 2, op, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, kb->embedder, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (int64_t)u.calls);
    sqlite3_bind_int64(s, 5, (int64_t)u.inputs);
    sqlite3_bind_int64(s, 6, (int64_t)u.cached);
    sqlite3_bind_int64(s, 7, u.tokens);
    sqlite3_bind_double(s, 8, u.cost);
    sqlite3_bind_int64(s, 9, now_ns());
    int src = sqlite3_step(s);
    sqlite3_finalize(s);
    return src == SQLITE_DONE ? 0 : rag_sql_rc(src);
}

int rag_rm(rag_t *r, const char *kb, char *err, size_t errlen)
{
    rag_kb_t k;
    int rc = rag_kb_get(r, kb, &k, err, errlen);
    if (rc)
        return rc;
    char sql[512];
    snprintf(sql, sizeof sql,
             "BEGIN IMMEDIATE;"
             "DROP TABLE IF EXISTS kb_fts_%lld;"
             "DELETE FROM kb_chunks WHERE kb_id = %lld;"
             "DELETE FROM kb_usage WHERE kb_id = %lld;"
             "DELETE FROM kb_docs WHERE kb_id = %lld;"
             "DELETE FROM kb WHERE id = %lld;"
             "COMMIT;",
             (long long)k.id, (long long)k.id, (long long)k.id, (long long)k.id,
             (long long)k.id);
    rc = rag_exec(r, sql, err, errlen);
    if (rc)
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static json_object *kb_json(const rag_kb_t *k)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(k->name));
    json_object_object_add(o, "strategy", json_object_new_string(k->strategy));
    json_object_object_add(o, "size", json_object_new_int(k->size));
    json_object_object_add(o, "overlap", json_object_new_int(k->overlap));
    json_object_object_add(o, "embedder", json_object_new_string(k->embedder));
    json_object_object_add(o, "dim", json_object_new_int(k->dim));
    json_object_object_add(o, "quant", json_object_new_string(k->quant));
    return o;
}

/* Run one aggregate query with ?1 = kb id and add its columns to o under names. */
static int add_counts(rag_t *r, json_object *o, const char *sql, int64_t id,
                      const char *const *names, int n)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(r->db, sql, -1, &s, NULL))
        return ERR_IO;
    sqlite3_bind_int64(s, 1, id);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        for (int i = 0; i < n; i++) {
            if (sqlite3_column_type(s, i) == SQLITE_FLOAT)
                json_object_object_add(o, names[i],
                                       jx_new_num(sqlite3_column_double(s, i)));
            else
                json_object_object_add(o, names[i],
                                       json_object_new_int64(sqlite3_column_int64(s, i)));
        }
    }
    sqlite3_finalize(s);
    return src == SQLITE_ROW ? 0 : rag_sql_rc(src);
}

int rag_list(rag_t *r, json_object **out, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT name FROM kb ORDER BY name", -1, &s, NULL))
        return err_set(err, errlen, ERR_IO, "%s: %s", r->path, sqlite3_errmsg(r->db));
    json_object *a = json_object_new_array();
    int rc = 0, src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        rag_kb_t k;
        if ((rc = rag_kb_get(r, (const char *)sqlite3_column_text(s, 0), &k, err, errlen)))
            break;
        json_object *o = kb_json(&k);
        static const char *const names[] = {"docs", "chunks"};
        if ((rc = add_counts(r, o,
                             "SELECT (SELECT count(*) FROM kb_docs WHERE kb_id = ?1),"
                             " (SELECT count(*) FROM kb_chunks WHERE kb_id = ?1)",
                             k.id, names, 2))) {
            json_object_put(o);
            break;
        }
        json_object_array_add(a, o);
    }
    if (!rc && src != SQLITE_DONE)
        rc = err_set(err, errlen, rag_sql_rc(src), "%s: %s", r->path, sqlite3_errmsg(r->db));
    else if (rc && !*err)
        err_set(err, errlen, rc, "%s: %s", r->path, sqlite3_errmsg(r->db));
    sqlite3_finalize(s);
    if (rc) {
        json_object_put(a);
        return rc;
    }
    *out = a;
    return 0;
}

int rag_stats(rag_t *r, const char *kb, json_object **out, char *err, size_t errlen)
{
    rag_kb_t k;
    int rc = rag_kb_get(r, kb, &k, err, errlen);
    if (rc)
        return rc;
    json_object *o = kb_json(&k);
    static const char *const docn[] = {"docs", "bytes"};
    static const char *const chn[] = {"chunks", "tokens", "chunk_tokens_min",
                                      "chunk_tokens_avg", "chunk_tokens_max", "vector_bytes"};
    rc = add_counts(r, o, "SELECT count(*), coalesce(sum(bytes), 0) FROM kb_docs WHERE kb_id = ?1",
                    k.id, docn, 2);
    static const char *const usen[] = {"embed_requests", "embed_tokens", "embed_cost_usd"};
    if (!rc)
        rc = add_counts(r, o,
                        "SELECT coalesce(sum(requests), 0), coalesce(sum(tokens), 0),"
                        " coalesce(sum(cost_usd), 0.0) + 0.0 FROM kb_usage WHERE kb_id = ?1",
                        k.id, usen, 3);
    if (!rc)
        rc = add_counts(r, o,
                        "SELECT count(*), coalesce(sum(tokens), 0), coalesce(min(tokens), 0),"
                        " coalesce(round(avg(tokens), 1), 0.0), coalesce(max(tokens), 0),"
                        " coalesce(sum(length(vec)), 0) FROM kb_chunks WHERE kb_id = ?1",
                        k.id, chn, 6);
    if (rc) {
        json_object_put(o);
        return err_set(err, errlen, rc, "%s: %s", r->path, sqlite3_errmsg(r->db));
    }
    json_object_object_add(o, "database", json_object_new_string(r->path));
    *out = o;
    return 0;
}

int rag_docs(rag_t *r, const char *kb, json_object **out, char *err, size_t errlen)
{
    rag_kb_t k;
    int rc = rag_kb_get(r, kb, &k, err, errlen);
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT d.path, d.indexed_ns, group_concat(c.text, ' ') FROM kb_docs d"
                           " LEFT JOIN (SELECT doc_id, text FROM kb_chunks ORDER BY doc_id, ord) c"
                           " ON c.doc_id = d.id WHERE d.kb_id = ?1 GROUP BY d.id"
                           " ORDER BY d.indexed_ns, d.id",
                           -1, &s, NULL))
        return err_set(err, errlen, ERR_IO, "%s: %s", r->path, sqlite3_errmsg(r->db));
    sqlite3_bind_int64(s, 1, k.id);
    json_object *a = json_object_new_array();
    int src;
    while (a && (src = sqlite3_step(s)) == SQLITE_ROW) {
        json_object *o = json_object_new_object();
        const char *text = (const char *)sqlite3_column_text(s, 2);
        json_object_object_add(o, "name",
                               json_object_new_string((const char *)sqlite3_column_text(s, 0)));
        json_object_object_add(o, "text", json_object_new_string(text ? text : ""));
        json_object_object_add(o, "indexed_ns", json_object_new_int64(sqlite3_column_int64(s, 1)));
        json_object_array_add(a, o);
    }
    if (!a)
        rc = err_set(err, errlen, ERR_NOMEM, "out of memory");
    else if (src != SQLITE_DONE)
        rc = err_set(err, errlen, rag_sql_rc(src), "%s: %s", r->path, sqlite3_errmsg(r->db));
    sqlite3_finalize(s);
    if (rc) {
        json_object_put(a);
        return rc;
    }
    *out = a;
    return 0;
}
