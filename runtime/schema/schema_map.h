/*
 * schema_map: byte-string -> pointer hash map for the schema compiler (internal).
 */
#ifndef AGENTD_SCHEMA_MAP_H
#define AGENTD_SCHEMA_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct smap_slot {
    char *key;
    size_t len;
    uint64_t hash;
    void *val;
} smap_slot_t;

typedef struct smap {
    smap_slot_t *slots;
    size_t cap, count;
} smap_t;

/* NULL if absent. */
void *schema_map_get(const smap_t *m, const void *k, size_t n);
/* Insert or replace; 0 or -1 on allocation failure. */
int schema_map_put(smap_t *m, const void *k, size_t n, void *val);
void schema_map_free(smap_t *m);

#endif
