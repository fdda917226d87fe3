/*
 * schema_scan: identifiers and references.
 *
 * Before compiling, each document is walked once through the keywords that hold
 * schemas (never through const/enum or unknown keywords, whose "$id" members are data)
 * to learn every schema object's base URI, draft and vocabularies, and to register
 * resources ($id), anchors ($anchor, draft-07 "$id": "#name") and dynamic anchors.
 * A $ref is then resolved to a schema object: resource by URI, then the fragment as a
 * JSON pointer or anchor name. Documents not yet known are loaded from the embedded
 * meta-schemas, the caller's URL-prefix map or base_dir -- never from the network.
 */
#include "schema_cc.h"

#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DOCS 256
#define MAX_FILE (16 * 1024 * 1024)

int schema_cc_fail(cctx_t *c, const char *fmt, ...)
{
    if (c->failed)
        return ERR_SCHEMA;
    c->failed = 1;
    if (c->err && c->errlen) {
        int n = snprintf(c->err, c->errlen, "schema #%.*s: ", (int)c->plen, c->path);
        if (n >= 0 && (size_t)n < c->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return ERR_SCHEMA;
}

static void push_escaped(cctx_t *c, const char *seg)
{
    if (c->plen + 1 < sizeof c->path)
        c->path[c->plen++] = '/';
    for (; *seg && c->plen + 2 < sizeof c->path; seg++) {
        if (*seg == '~' || *seg == '/') {
            c->path[c->plen++] = '~';
            c->path[c->plen++] = *seg == '~' ? '0' : '1';
        } else {
            c->path[c->plen++] = *seg;
        }
    }
}

size_t schema_cc_push(cctx_t *c, const char *seg, const char *seg2)
{
    size_t old = c->plen;
    push_escaped(c, seg);
    if (seg2)
        push_escaped(c, seg2);
    return old;
}

void schema_cc_pop(cctx_t *c, size_t old)
{
    c->plen = old;
}

oinfo_t *schema_cc_info(cctx_t *c, json_object *o)
{
    return schema_map_get(&c->info, &o, sizeof o);
}

int schema_cc_draft_of(const char *uri)
{
    const char *p = strstr(uri, "://json-schema.org/");
    if (!p)
        return 0;
    p += strlen("://json-schema.org/");
    if (!strncmp(p, "draft/2020-12/schema", 20) || !strncmp(p, "draft/2019-09/schema", 20))
        return 2020;
    if (!strncmp(p, "draft-07/schema", 15) || !strncmp(p, "draft-06/schema", 15) ||
        !strncmp(p, "draft-04/schema", 15))
        return 7;
    return 0;
}

static oinfo_t *new_info(cctx_t *c, json_object *o, const char *base, int draft,
                         unsigned vocab)
{
    if (c->ninfos == c->capinfos) {
        size_t ncap = c->capinfos ? c->capinfos * 2 : 64;
        oinfo_t **n = realloc(c->infos, ncap * sizeof *n);
        if (!n)
            return NULL;
        c->infos = n;
        c->capinfos = ncap;
    }
    oinfo_t *inf = calloc(1, sizeof *inf);
    if (!inf)
        return NULL;
    inf->base = strdup(base);
    if (!inf->base || schema_map_put(&c->info, &o, sizeof o, inf) != 0) {
        free(inf->base);
        free(inf);
        return NULL;
    }
    inf->draft = draft;
    inf->vocab = vocab;
    c->infos[c->ninfos++] = inf;
    return inf;
}

static int add_anchor(cctx_t *c, const char *base, const char *name, json_object *o)
{
    size_t bl = strlen(base), nl = strlen(name);
    char *k = malloc(bl + nl + 2);
    if (!k)
        return schema_cc_fail(c, "out of memory");
    memcpy(k, base, bl);
    k[bl] = '#';
    memcpy(k + bl + 1, name, nl + 1);
    int rc = schema_map_put(&c->anchors, k, bl + nl + 1, o);
    free(k);
    return rc ? schema_cc_fail(c, "out of memory") : 0;
}

static const char *const subschema_kw[] = {
    "additionalProperties", "contains", "propertyNames", "not", "if", "then", "else",
    "unevaluatedProperties", "unevaluatedItems", "contentSchema", "additionalItems", NULL,
};
static const char *const map_kw[] = {
    "properties", "patternProperties", "$defs", "definitions", "dependentSchemas",
    "dependencies", NULL,
};
static const char *const array_kw[] = {"allOf", "anyOf", "oneOf", "prefixItems", NULL};

static int scan(cctx_t *c, json_object *o, const char *base, int draft, unsigned vocab,
                oinfo_t *res, int depth);

static int scan_children(cctx_t *c, json_object *o, const char *base, int draft,
                         unsigned vocab, oinfo_t *res, int depth)
{
    json_object *v;
    for (int i = 0; subschema_kw[i]; i++)
        if (json_object_object_get_ex(o, subschema_kw[i], &v) &&
            scan(c, v, base, draft, vocab, res, depth + 1))
            return ERR_SCHEMA;
    if (json_object_object_get_ex(o, "items", &v)) {
        if (json_object_is_type(v, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(v); i++)
                if (scan(c, json_object_array_get_idx(v, i), base, draft, vocab, res,
                         depth + 1))
                    return ERR_SCHEMA;
        } else if (scan(c, v, base, draft, vocab, res, depth + 1)) {
            return ERR_SCHEMA;
        }
    }
    for (int i = 0; map_kw[i]; i++) {
        if (!json_object_object_get_ex(o, map_kw[i], &v) ||
            !json_object_is_type(v, json_type_object))
            continue;
        json_object_object_foreach(v, k, sub)
        {
            (void)k;
            if (scan(c, sub, base, draft, vocab, res, depth + 1))
                return ERR_SCHEMA;
        }
    }
    for (int i = 0; array_kw[i]; i++) {
        if (!json_object_object_get_ex(o, array_kw[i], &v) ||
            !json_object_is_type(v, json_type_array))
            continue;
        for (size_t j = 0; j < json_object_array_length(v); j++)
            if (scan(c, json_object_array_get_idx(v, j), base, draft, vocab, res, depth + 1))
                return ERR_SCHEMA;
    }
    return 0;
}

static int scan(cctx_t *c, json_object *o, const char *base, int draft, unsigned vocab,
                oinfo_t *res, int depth)
{
    if (!json_object_is_type(o, json_type_object) || schema_cc_info(c, o))
        return 0;
    if (depth > SCHEMA_MAX_DEPTH)
        return schema_cc_fail(c, "schema nested deeper than %d levels", SCHEMA_MAX_DEPTH);
    json_object *v;
    char *nbase = NULL;
    int rc = ERR_SCHEMA;
    int has_ref = json_object_object_get_ex(o, "$ref", NULL);
    int is_res = 0;
    if (json_object_object_get_ex(o, "$schema", &v) && json_object_is_type(v, json_type_string) &&
        json_object_object_get_ex(o, "$id", NULL)) {
        if (schema_cc_meta(c, json_object_get_string(v), draft, &draft, &vocab))
            return ERR_SCHEMA;
    }
    if (json_object_object_get_ex(o, "$id", &v) && json_object_is_type(v, json_type_string) &&
        !(draft == 7 && has_ref)) {
        nbase = schema_uri_resolve(base, json_object_get_string(v));
        if (!nbase)
            return schema_cc_fail(c, "out of memory");
        char *hash = strchr(nbase, '#');
        if (hash) {
            *hash = 0;
            if (draft == 7 && hash[1] && add_anchor(c, nbase, hash + 1, o))
                goto done;
        }
        if (!hash || hash != nbase) {
            if (schema_map_put(&c->res, nbase, strlen(nbase), o)) {
                schema_cc_fail(c, "out of memory");
                goto done;
            }
            is_res = 1;
        } else {
            strcpy(nbase, base);
        }
    }
    const char *b = nbase ? nbase : base;
    oinfo_t *inf = new_info(c, o, b, draft, vocab);
    if (!inf) {
        schema_cc_fail(c, "out of memory");
        goto done;
    }
    if (is_res || !res) { /* res == NULL: a document root */
        inf->is_res = 1;
        res = inf;
    }
    inf->resinfo = res;
    if (draft != 7) {
        if (json_object_object_get_ex(o, "$anchor", &v) &&
            json_object_is_type(v, json_type_string) &&
            add_anchor(c, b, json_object_get_string(v), o))
            goto done;
        if (json_object_object_get_ex(o, "$dynamicAnchor", &v) &&
            json_object_is_type(v, json_type_string)) {
            if (add_anchor(c, b, json_object_get_string(v), o))
                goto done;
            dynent_t *d = calloc(1, sizeof *d);
            if (!d) {
                schema_cc_fail(c, "out of memory");
                goto done;
            }
            d->name = json_object_get_string(v);
            d->obj = o;
            d->next = res->dyn;
            res->dyn = d;
            d->all_next = c->dyns;
            c->dyns = d;
        }
    }
    rc = scan_children(c, o, b, draft, vocab, res, depth);
done:
    free(nbase);
    return c->failed ? ERR_SCHEMA : rc;
}

int schema_cc_scan_doc(cctx_t *c, json_object *root, const char *uri, int draft)
{
    unsigned vocab = V_ALL;
    json_object *v;
    if (json_object_object_get_ex(root, "$schema", &v) &&
        json_object_is_type(v, json_type_string) &&
        schema_cc_meta(c, json_object_get_string(v), draft, &draft, &vocab))
        return ERR_SCHEMA;
    if (schema_map_put(&c->res, uri, strlen(uri), root))
        return schema_cc_fail(c, "out of memory");
    if (!json_object_is_type(root, json_type_object))
        return 0;
    /* The root is a resource under its retrieval URI even if its $id names another. */
    return scan(c, root, uri, draft, vocab, NULL, 0);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, MAX_FILE + 1, f) : 0;
    fclose(f);
    if (!buf || n > MAX_FILE) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

/* Find the local file for uri, if the caller allowed one. Returns malloc'd path. */
static char *local_path(cctx_t *c, const char *uri)
{
    const char *const *m = c->opts ? c->opts->map : NULL;
    for (; m && m[0] && m[1]; m += 2) {
        size_t pl = strlen(m[0]);
        if (strncmp(uri, m[0], pl) != 0)
            continue;
        const char *rest = uri + pl;
        if (strstr(rest, ".."))
            return NULL;
        size_t dl = strlen(m[1]);
        char *p = malloc(dl + strlen(rest) + 2);
        if (!p)
            return NULL;
        int slash = dl && m[1][dl - 1] == '/';
        sprintf(p, "%s%s%s", m[1], slash || rest[0] == '/' ? "" : "/", rest);
        return p;
    }
    if (c->dir_uri && !strncmp(uri, c->dir_uri, strlen(c->dir_uri)) && !strstr(uri, "..")) {
        const char *path = uri + strlen("file://");
        return strdup(path);
    }
    return NULL;
}

static json_object *load_doc(cctx_t *c, const char *uri, int draft)
{
    json_object *doc = schema_map_get(&c->res, uri, strlen(uri));
    if (doc)
        return doc;
    if (c->s->ndocs >= MAX_DOCS)
        return NULL;
    const char *text = schema_meta_text(uri);
    char *owned = NULL;
    if (!text) {
        char *path = local_path(c, uri);
        if (!path)
            return NULL;
        owned = read_file(path);
        free(path);
        text = owned;
        if (!text)
            return NULL;
    }
    char why[200];
    int rc = schema_parse_json(text, strlen(text), &doc, why, sizeof why);
    free(owned);
    if (rc || !doc)
        return NULL;
    json_object **nd = realloc(c->s->docs, (c->s->ndocs + 1) * sizeof *nd);
    if (!nd) {
        json_object_put(doc);
        return NULL;
    }
    c->s->docs = nd;
    nd[c->s->ndocs++] = doc;
    json_object *sv;
    if (json_object_object_get_ex(doc, "$schema", &sv) &&
        json_object_is_type(sv, json_type_string) && schema_cc_draft_of(json_object_get_string(sv)))
        draft = schema_cc_draft_of(json_object_get_string(sv));
    if (schema_cc_scan_doc(c, doc, uri, draft))
        return NULL;
    return doc;
}

int schema_cc_meta(cctx_t *c, const char *uri, int draft, int *draft_out, unsigned *vocab_out)
{
    int forced = c->opts && c->opts->draft ? (c->opts->draft == 7 ? 7 : 2020) : 0;
    int d = schema_cc_draft_of(uri);
    if (forced && d) {
        *draft_out = forced;
        *vocab_out = V_ALL;
        return 0;
    }
    if (d) {
        *draft_out = d;
        *vocab_out = V_ALL;
        return 0;
    }
    char *abs = schema_uri_resolve(NULL, uri);
    if (!abs)
        return schema_cc_fail(c, "out of memory");
    char *h = strchr(abs, '#');
    if (h)
        *h = 0;
    json_object *meta = load_doc(c, abs, draft);
    free(abs);
    if (c->failed)
        return ERR_SCHEMA;
    if (!meta)
        return 0; /* an unknown meta-schema: keep the current draft, all vocabularies */
    json_object *v, *voc;
    if (json_object_object_get_ex(meta, "$schema", &v) &&
        json_object_is_type(v, json_type_string) && schema_cc_draft_of(json_object_get_string(v)))
        *draft_out = schema_cc_draft_of(json_object_get_string(v));
    if (forced)
        *draft_out = forced;
    if (json_object_object_get_ex(meta, "$vocabulary", &voc) &&
        json_object_is_type(voc, json_type_object)) {
        unsigned m = 0;
        json_object_object_foreach(voc, k, val)
        {
            (void)val;
            const char *p = strstr(k, "/vocab/");
            if (!p)
                continue;
            p += 7;
            if (!strcmp(p, "applicator"))
                m |= V_APPLICATOR;
            else if (!strcmp(p, "validation"))
                m |= V_VALIDATION;
            else if (!strcmp(p, "unevaluated"))
                m |= V_UNEVAL;
            else if (!strcmp(p, "format-assertion"))
                m |= V_FORMAT_ASSERT;
        }
        *vocab_out = m;
    }
    return 0;
}

/* Decode one JSON-pointer token (percent-decoded already) into out; 0 or -1. */
static json_object *pointer_get(json_object *o, const char *ptr)
{
    char tok[512];
    while (*ptr == '/') {
        ptr++;
        size_t n = 0;
        while (*ptr && *ptr != '/') {
            if (n + 1 >= sizeof tok)
                return NULL;
            if (ptr[0] == '~' && ptr[1] == '0') {
                tok[n++] = '~';
                ptr += 2;
            } else if (ptr[0] == '~' && ptr[1] == '1') {
                tok[n++] = '/';
                ptr += 2;
            } else {
                tok[n++] = *ptr++;
            }
        }
        tok[n] = 0;
        if (json_object_is_type(o, json_type_object)) {
            if (!json_object_object_get_ex(o, tok, &o))
                return NULL;
        } else if (json_object_is_type(o, json_type_array)) {
            char *end;
            long i = strtol(tok, &end, 10);
            if (!n || *end || i < 0 || (size_t)i >= json_object_array_length(o))
                return NULL;
            o = json_object_array_get_idx(o, (size_t)i);
        } else {
            return NULL;
        }
    }
    return *ptr ? NULL : o;
}

static void percent_decode(char *s)
{
    char *o = s;
    for (; *s; s++) {
        int hi, lo;
        if (s[0] == '%' && s[1] && s[2] && sscanf(s + 1, "%1x%1x", &hi, &lo) == 2) {
            *o++ = (char)(hi * 16 + lo);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

json_object *schema_cc_resolve(cctx_t *c, const char *base, int draft, const char *ref,
                               char **abs_out, const char **frag_out)
{
    char *abs = schema_uri_resolve(base, ref);
    if (!abs) {
        schema_cc_fail(c, "out of memory");
        return NULL;
    }
    char *h = strchr(abs, '#');
    char *frag = h ? h + 1 : abs + strlen(abs);
    if (h)
        *h = 0;
    oinfo_t *rinfo = NULL;
    json_object *doc = schema_map_get(&c->res, abs, strlen(abs));
    if (!doc && !c->failed)
        doc = load_doc(c, abs, draft); /* documents without $schema inherit the draft */
    json_object *target = NULL;
    if (doc) {
        rinfo = schema_cc_info(c, doc);
        if (!*frag) {
            target = doc;
        } else if (*frag == '/') {
            char *dec = strdup(frag);
            if (dec) {
                percent_decode(dec);
                target = pointer_get(doc, dec);
                free(dec);
            }
            /* A pointer may lead outside the scanned keywords; give it the base of
             * the resource it starts from. */
            if (target && !schema_cc_info(c, target) &&
                json_object_is_type(target, json_type_object) && rinfo) {
                if (!new_info(c, target, rinfo->base, rinfo->draft, rinfo->vocab)) {
                    schema_cc_fail(c, "out of memory");
                    target = NULL;
                } else {
                    oinfo_t *ti = schema_cc_info(c, target);
                    ti->resinfo = rinfo->resinfo ? rinfo->resinfo : rinfo;
                    if (scan_children(c, target, ti->base, ti->draft, ti->vocab, rinfo, 1))
                        target = NULL;
                }
            }
        } else {
            size_t al = strlen(abs);
            abs[al] = '#';
            target = schema_map_get(&c->anchors, abs, strlen(abs));
            abs[al] = 0;
        }
    }
    if (!target) {
        if (!c->failed)
            schema_cc_fail(c, "cannot resolve reference \"%s\"%s", ref,
                           doc ? "" : " (no such schema in the document, base_dir or map)");
        free(abs);
        return NULL;
    }
    if (h)
        *h = '#';
    *abs_out = abs;
    *frag_out = h ? h + 1 : abs + strlen(abs);
    return target;
}

void schema_cc_free(cctx_t *c)
{
    for (size_t i = 0; i < c->ninfos; i++) {
        free(c->infos[i]->base);
        free(c->infos[i]);
    }
    free(c->infos);
    while (c->dyns) {
        dynent_t *d = c->dyns;
        c->dyns = d->all_next;
        free(d);
    }
    schema_map_free(&c->res);
    schema_map_free(&c->anchors);
    schema_map_free(&c->info);
    free(c->dir_uri);
}
