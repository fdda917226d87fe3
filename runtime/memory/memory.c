/*
 * memory: see memory.h.
 */
#include "memory.h"

#include "db/db.h"
#include "err.h"
#include "jx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KB_PREFIX "memory."

const char *memory_scope(const char *kind, const char *agent, const char *user,
                         const char *session, const char *run_id, char *buf, size_t len)
{
    if (!kind)
        return NULL;
    if (!strcmp(kind, "user")) {
        if (!user || !*user)
            return "";
        snprintf(buf, len, "%s/user/%s", agent, user);
    } else if (!strcmp(kind, "session")) {
        snprintf(buf, len, "%s/session/%s", agent, session && *session ? session : run_id);
    } else {
        snprintf(buf, len, "%s", agent);
    }
    return buf;
}

const char *memory_db_path(const char *run_db, char *buf, size_t len)
{
    const char *env = getenv("AGENTD_MEMORY_DB");
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return buf;
    }
    const char *db = run_db && *run_db ? run_db : "agentd.db";
    if (db_is_url(db)) /* no folder beside a PostgreSQL database: this host's own file */
        db = "agentd.db";
    size_t n = strlen(db);
    if (n > 3 && !strcmp(db + n - 3, ".db"))
        snprintf(buf, len, "%.*s.memory.db", (int)(n - 3), db);
    else
        snprintf(buf, len, "%s.memory.db", db);
    return buf;
}

/* "support/user/ava b" -> "memory.support.user.ava_20b": '/' separates, other bytes outside
 * [0-9A-Za-z-] are written as _XX. */
static int kb_name(const char *scope, char *out, size_t len, char *err, size_t errlen)
{
    size_t n = snprintf(out, len, "%s", KB_PREFIX);
    for (const unsigned char *p = (const unsigned char *)scope; *p && n + 4 < len; p++) {
        if (*p == '/')
            out[n++] = '.';
        else if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                 (*p >= 'A' && *p <= 'Z') || *p == '-')
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, len - n, "_%02x", *p);
        out[n] = 0;
    }
    if (n + 4 >= len || !*scope)
        return err_set(err, errlen, ERR_INVAL, "memory scope \"%s\" is empty or too long", scope);
    return 0;
}

/* The scope back from a KB name, or NULL when it is not a memory KB. */
static char *scope_of_kb(const char *kb)
{
    size_t p = strlen(KB_PREFIX);
    if (strncmp(kb, KB_PREFIX, p))
        return NULL;
    char *out = malloc(strlen(kb) + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *s = kb + p; *s; s++) {
        unsigned x;
        if (*s == '.')
            *o++ = '/';
        else if (*s == '_' && sscanf(s + 1, "%2x", &x) == 1) {
            *o++ = (char)x;
            s += 2;
        } else
            *o++ = *s;
    }
    *o = 0;
    return out;
}

static void mem_id(const char *text, char id[24])
{
    uint64_t h = 1469598103934665603ull;
    for (const char *s = text; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    snprintf(id, 24, "m-%016llx", (unsigned long long)h);
}

int memory_remember(rag_t *r, const char *scope, const char *text, char id[24], char *err,
                    size_t errlen)
{
    char kb[160];
    int rc = kb_name(scope, kb, sizeof kb, err, errlen);
    if (rc)
        return rc;
    if (!text || !*text)
        return err_set(err, errlen, ERR_INVAL, "nothing to remember (empty text)");
    /* One memory, one chunk: facts are short, and "sentence" chunks keep them whole. */
    rag_kb_opts_t o = {.strategy = "sentence", .size = 400};
    char mid[24];
    mem_id(text, mid);
    rc = rag_add_text(r, kb, mid, text, &o, err, errlen);
    if (!rc)
        memcpy(id, mid, sizeof mid);
    return rc;
}

int memory_recall(rag_t *r, const char *scope, const char *query, int k, json_object **out,
                  char *err, size_t errlen)
{
    char kb[160];
    int rc = kb_name(scope, kb, sizeof kb, err, errlen);
    if (rc)
        return rc;
    rag_query_t q = {.text = query, .mode = RAG_HYBRID, .k = k > 0 ? k : 5};
    rag_hits_t h;
    rc = rag_search(r, kb, &q, &h, err, errlen);
    if (rc == ERR_NOTFOUND) { /* nothing saved in this scope yet */
        *out = json_object_new_array();
        return *out ? 0 : ERR_NOMEM;
    }
    if (rc)
        return rc;
    json_object *a = json_object_new_array();
    for (size_t i = 0; a && i < h.n; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(h.v[i].path));
        json_object_object_add(o, "text", json_object_new_string(h.v[i].text));
        json_object_object_add(o, "score", jx_new_num(h.v[i].score));
        json_object_array_add(a, o);
    }
    rag_hits_clear(&h);
    if (!a)
        return err_set(err, errlen, ERR_NOMEM, "out of memory");
    *out = a;
    return 0;
}

int memory_forget(rag_t *r, const char *scope, const char *id, char *err, size_t errlen)
{
    char kb[160];
    int rc = kb_name(scope, kb, sizeof kb, err, errlen);
    if (rc)
        return rc;
    if (id) {
        rc = rag_doc_rm(r, kb, id, err, errlen);
        if (rc == ERR_NOTFOUND)
            err_set(err, errlen, rc, "memory %s: no memory %s", scope, id);
        return rc;
    }
    rc = rag_rm(r, kb, err, errlen);
    if (rc == ERR_NOTFOUND)
        err_set(err, errlen, rc, "memory %s: no such scope (see agentd memory list)", scope);
    return rc;
}

int memory_list(rag_t *r, const char *scope, json_object **out, char *err, size_t errlen)
{
    char kb[160];
    if (scope) {
        int rc = kb_name(scope, kb, sizeof kb, err, errlen);
        json_object *docs = NULL;
        if (!rc)
            rc = rag_docs(r, kb, &docs, err, errlen);
        if (rc == ERR_NOTFOUND)
            err_set(err, errlen, rc, "memory %s: no such scope (see agentd memory list)", scope);
        if (rc)
            return rc;
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < json_object_array_length(docs); i++) {
            json_object *d = json_object_array_get_idx(docs, i), *o = json_object_new_object();
            json_object_object_add(o, "id", json_object_get(json_object_object_get(d, "name")));
            json_object_object_add(o, "text", json_object_get(json_object_object_get(d, "text")));
            json_object_object_add(o, "saved_ns",
                                   json_object_get(json_object_object_get(d, "indexed_ns")));
            json_object_array_add(a, o);
        }
        json_object_put(docs);
        if (!a)
            return err_set(err, errlen, ERR_NOMEM, "out of memory");
        *out = a;
        return 0;
    }
    json_object *kbs = NULL;
    int rc = rag_list(r, &kbs, err, errlen);
    if (rc)
        return rc;
    json_object *a = json_object_new_array();
    for (size_t i = 0; a && i < json_object_array_length(kbs); i++) {
        json_object *k = json_object_array_get_idx(kbs, i);
        char *sc = scope_of_kb(json_object_get_string(json_object_object_get(k, "name")));
        if (!sc)
            continue;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "scope", json_object_new_string(sc));
        json_object_object_add(o, "memories", json_object_get(json_object_object_get(k, "docs")));
        json_object_array_add(a, o);
        free(sc);
    }
    json_object_put(kbs);
    if (!a)
        return err_set(err, errlen, ERR_NOMEM, "out of memory");
    *out = a;
    return 0;
}
