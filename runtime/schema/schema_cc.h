/*
 * schema_cc: compiler state shared by schema_scan.c (identifiers, $ref resolution,
 * loading documents) and schema_compile.c (keywords -> operations). Internal.
 */
#ifndef AGENTD_SCHEMA_CC_H
#define AGENTD_SCHEMA_CC_H

#include "schema_int.h"
#include "schema_map.h"

/* Vocabularies a meta-schema can switch off. */
enum { V_APPLICATOR = 1, V_VALIDATION = 2, V_UNEVAL = 4, V_FORMAT_ASSERT = 8, V_ALL = 7 };

typedef struct dynent {
    const char *name;
    json_object *obj;
    struct dynent *next;     /* next in its resource */
    struct dynent *all_next; /* next in cctx.dyns, for freeing */
} dynent_t;

/* What the scan learnt about one schema object. */
typedef struct oinfo {
    char *base;       /* absolute base URI, no fragment */
    int draft;        /* 7 or 2020 */
    unsigned vocab;
    int is_res;       /* has its own $id, or is a document root */
    snode_t *node;    /* compiled node once compile started */
    dynent_t *dyn;    /* resources: their $dynamicAnchors */
    struct oinfo *resinfo; /* the resource this object belongs to */
    sres_t *sres;     /* resources: runtime form, made when first needed */
    int dyn_done;     /* sres->dyn filled in */
} oinfo_t;

typedef struct cctx {
    schema_t *s;
    const schema_opts_t *opts;
    char *err;
    size_t errlen;
    int failed;
    smap_t res;      /* absolute URI -> resource root json_object */
    smap_t anchors;  /* "URI#name" -> json_object */
    smap_t info;     /* json_object address -> oinfo_t */
    oinfo_t **infos; /* for freeing */
    size_t ninfos, capinfos;
    dynent_t *dyns;  /* for freeing */
    char path[1024]; /* schema location being compiled, for messages */
    size_t plen;
    int depth;
    snode_t *t_node, *f_node;
    char *dir_uri;   /* file://<base_dir>/ or NULL */
} cctx_t;

/* Record a compile error (first one wins); returns ERR_SCHEMA. */
int schema_cc_fail(cctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Push/pop a location segment for messages; push returns the old length. */
size_t schema_cc_push(cctx_t *c, const char *seg, const char *seg2);
void schema_cc_pop(cctx_t *c, size_t old);

/* Scan a document root: register $id/$anchor/$dynamicAnchor beneath it. */
int schema_cc_scan_doc(cctx_t *c, json_object *root, const char *uri, int draft);
oinfo_t *schema_cc_info(cctx_t *c, json_object *o);
/* Resolve ref against base to a schema object; *frag_out (borrowed from *abs_out,
 * which the caller frees) is the fragment. NULL after cc_fail if unresolvable. */
json_object *schema_cc_resolve(cctx_t *c, const char *base, int draft, const char *ref,
                        char **abs_out, const char **frag_out);
/* 7 or 2020 for a known meta-schema URI, else 0. */
int schema_cc_draft_of(const char *uri);
/* Draft and vocabularies for a $schema value (loads custom meta-schemas). */
int schema_cc_meta(cctx_t *c, const char *uri, int draft, int *draft_out, unsigned *vocab_out);
void schema_cc_free(cctx_t *c);

/* Compile a schema value (object or boolean). NULL after cc_fail. */
snode_t *schema_cc_node(cctx_t *c, json_object *o);

#endif
