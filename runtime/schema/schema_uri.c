/*
 * schema_uri: RFC 3986 reference resolution for $id, $ref and $dynamicRef.
 *
 * JSON Schema identifies schemas by absolute URIs; a reference is resolved against the
 * base URI of the schema object it appears in (section 5.2 of RFC 3986: merge paths,
 * then remove dot segments). URNs and other non-hierarchical URIs only ever take a
 * fragment from a reference, which the same algorithm handles.
 */
#include "schema_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct uparts {
    const char *scheme, *auth, *path, *query, *frag;
    size_t lscheme, lauth, lpath, lquery, lfrag;
    int has_scheme, has_auth, has_query, has_frag;
} uparts_t;

static void uri_split(const char *u, uparts_t *p)
{
    memset(p, 0, sizeof *p);
    const char *s = u;
    /* scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
    const char *q = s;
    while (*q && *q != ':' && *q != '/' && *q != '?' && *q != '#')
        q++;
    if (*q == ':' && q > s) {
        p->has_scheme = 1;
        p->scheme = s;
        p->lscheme = (size_t)(q - s);
        s = q + 1;
    }
    if (s[0] == '/' && s[1] == '/') {
        s += 2;
        q = s;
        while (*q && *q != '/' && *q != '?' && *q != '#')
            q++;
        p->has_auth = 1;
        p->auth = s;
        p->lauth = (size_t)(q - s);
        s = q;
    }
    q = s;
    while (*q && *q != '?' && *q != '#')
        q++;
    p->path = s;
    p->lpath = (size_t)(q - s);
    s = q;
    if (*s == '?') {
        q = ++s;
        while (*q && *q != '#')
            q++;
        p->has_query = 1;
        p->query = s;
        p->lquery = (size_t)(q - s);
        s = q;
    }
    if (*s == '#') {
        p->has_frag = 1;
        p->frag = s + 1;
        p->lfrag = strlen(s + 1);
    }
}

/* Remove "." and ".." segments (RFC 3986 5.2.4) from in[0..n) into out. */
static size_t remove_dots(const char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        if (n - i >= 3 && !strncmp(in + i, "../", 3)) {
            i += 3;
        } else if (n - i >= 2 && !strncmp(in + i, "./", 2)) {
            i += 2;
        } else if (n - i >= 3 && !strncmp(in + i, "/./", 3)) {
            i += 2;
        } else if (n - i == 2 && !strncmp(in + i, "/.", 2)) {
            i += 1;
            out[o++] = '/';
            i += 1;
        } else if (n - i >= 4 && !strncmp(in + i, "/../", 4)) {
            i += 3;
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else if (n - i == 3 && !strncmp(in + i, "/..", 3)) {
            i += 3;
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            out[o++] = '/';
        } else if ((n - i == 1 && in[i] == '.') || (n - i == 2 && !strncmp(in + i, "..", 2))) {
            i = n;
        } else {
            if (in[i] == '/')
                out[o++] = in[i++];
            while (i < n && in[i] != '/')
                out[o++] = in[i++];
        }
    }
    return o;
}

static void put(char *buf, size_t *o, const char *s, size_t n)
{
    memcpy(buf + *o, s, n);
    *o += n;
}

char *schema_uri_resolve(const char *base, const char *ref)
{
    uparts_t b, r;
    uri_split(base ? base : "", &b);
    uri_split(ref, &r);
    size_t cap = strlen(ref) + (base ? strlen(base) : 0) + 8;
    char *out = malloc(cap), *tmp = malloc(cap);
    if (!out || !tmp) {
        free(out);
        free(tmp);
        return NULL;
    }
    size_t o = 0;
    const uparts_t *sch = r.has_scheme ? &r : &b;
    if (sch->has_scheme) {
        put(out, &o, sch->scheme, sch->lscheme);
        out[o++] = ':';
    }
    const uparts_t *q = &r; /* where query comes from */
    if (r.has_scheme || r.has_auth) {
        if (r.has_auth) {
            put(out, &o, "//", 2);
            put(out, &o, r.auth, r.lauth);
        }
        o += remove_dots(r.path, r.lpath, out + o);
    } else {
        if (b.has_auth) {
            put(out, &o, "//", 2);
            put(out, &o, b.auth, b.lauth);
        }
        if (r.lpath == 0) {
            put(out, &o, b.path, b.lpath);
            if (!r.has_query)
                q = &b;
        } else if (r.path[0] == '/') {
            o += remove_dots(r.path, r.lpath, out + o);
        } else {
            size_t t = 0;
            if (b.has_auth && b.lpath == 0) {
                tmp[t++] = '/';
            } else {
                size_t keep = b.lpath;
                while (keep > 0 && b.path[keep - 1] != '/')
                    keep--;
                put(tmp, &t, b.path, keep);
            }
            put(tmp, &t, r.path, r.lpath);
            o += remove_dots(tmp, t, out + o);
        }
    }
    if (q->has_query) {
        out[o++] = '?';
        put(out, &o, q->query, q->lquery);
    }
    if (r.has_frag) {
        out[o++] = '#';
        put(out, &o, r.frag, r.lfrag);
    }
    out[o] = 0;
    free(tmp);
    return out;
}
