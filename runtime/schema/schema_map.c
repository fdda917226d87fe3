/*
 * schema_map: a small open-addressing hash map from byte strings to pointers, used only
 * while compiling (URIs -> documents, anchors -> schema objects, schema object
 * addresses -> compile state). Keys are copied; values are borrowed.
 */
#include "schema_map.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const void *k, size_t n)
{
    const unsigned char *p = k;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

void schema_map_free(smap_t *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static smap_slot_t *find(const smap_t *m, const void *k, size_t n, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        smap_slot_t *s = &m->slots[i];
        if (!s->key || (s->hash == h && s->len == n && !memcmp(s->key, k, n)))
            return s;
    }
}

void *schema_map_get(const smap_t *m, const void *k, size_t n)
{
    if (!m->cap)
        return NULL;
    smap_slot_t *s = find(m, k, n, hash_bytes(k, n));
    return s->key ? s->val : NULL;
}

static int grow(smap_t *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    smap_slot_t *old = m->slots;
    size_t ocap = m->cap;
    m->slots = calloc(ncap, sizeof *m->slots);
    if (!m->slots) {
        m->slots = old;
        return -1;
    }
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key)
            *find(m, old[i].key, old[i].len, old[i].hash) = old[i];
    free(old);
    return 0;
}

int schema_map_put(smap_t *m, const void *k, size_t n, void *val)
{
    if ((m->count + 1) * 2 > m->cap && grow(m) != 0)
        return -1;
    uint64_t h = hash_bytes(k, n);
    smap_slot_t *s = find(m, k, n, h);
    if (!s->key) {
        s->key = malloc(n ? n : 1);
        if (!s->key)
            return -1;
        memcpy(s->key, k, n);
        s->len = n;
        s->hash = h;
        m->count++;
    }
    s->val = val;
    return 0;
}
