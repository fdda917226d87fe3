/* callsig: a counted set of tool-call signatures (see callsig.h). */
#include "callsig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct sig_ent {
    uint64_t h;
    int count;
    char s[];
} sig_ent_t;

struct callsig {
    size_t n, cap; /* cap: a power of two */
    sig_ent_t *slot[];
};

static uint64_t sig_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a, 64 bits */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot holding sig, or the empty slot where it would go. */
static size_t sig_find(const callsig_t *set, uint64_t h, const char *sig)
{
    size_t mask = set->cap - 1, i = (size_t)h & mask;
    while (set->slot[i] && (set->slot[i]->h != h || strcmp(set->slot[i]->s, sig) != 0))
        i = (i + 1) & mask;
    return i;
}

int callsig_count(const callsig_t *set, const char *sig)
{
    if (!set)
        return 0;
    sig_ent_t *e = set->slot[sig_find(set, sig_hash(sig), sig)];
    return e ? e->count : 0;
}

static callsig_t *sig_table(size_t cap)
{
    callsig_t *t = calloc(1, sizeof *t + cap * sizeof t->slot[0]);
    if (t)
        t->cap = cap;
    return t;
}

int callsig_add(callsig_t **set, const char *sig)
{
    uint64_t h = sig_hash(sig);
    if (!*set && !(*set = sig_table(8)))
        return -1;
    callsig_t *t = *set;
    size_t i = sig_find(t, h, sig);
    if (t->slot[i])
        return ++t->slot[i]->count;
    if ((t->n + 1) * 4 > t->cap * 3) {
        callsig_t *g = sig_table(t->cap * 2);
        if (!g)
            return -1;
        for (size_t k = 0; k < t->cap; k++)
            if (t->slot[k])
                g->slot[sig_find(g, t->slot[k]->h, t->slot[k]->s)] = t->slot[k];
        g->n = t->n;
        free(t);
        *set = t = g;
        i = sig_find(t, h, sig);
    }
    size_t len = strlen(sig);
    sig_ent_t *e = malloc(sizeof *e + len + 1);
    if (!e)
        return -1;
    e->h = h;
    e->count = 1;
    memcpy(e->s, sig, len + 1);
    t->slot[i] = e;
    t->n++;
    return 1;
}

void callsig_free(callsig_t *set)
{
    if (!set)
        return;
    for (size_t k = 0; k < set->cap; k++)
        free(set->slot[k]);
    free(set);
}
