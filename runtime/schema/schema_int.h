/*
 * schema_int: the compiled form shared by the schema_*.c files; not a public API.
 *
 * A schema object compiles to an snode: a type mask plus a flat array of sop
 * (keyword operations) run in order. Each sop names the instance types it applies to,
 * so the validator skips it with one AND. Sub-schemas are snode pointers; $ref targets
 * are resolved at compile time, so the graph may contain cycles. All nodes, strings and
 * tables belong to the schema's arena list and die with schema_free.
 */
#ifndef AGENTD_SCHEMA_INT_H
#define AGENTD_SCHEMA_INT_H

#include "schema.h"

#include <stdatomic.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Instance type bits. An integral double is both T_NUM and T_INT. */
enum {
    T_NULL = 1, T_BOOL = 2, T_OBJ = 4, T_ARR = 8, T_STR = 16, T_NUM = 32, T_INT = 64,
    T_ANY = 127,
};

enum sop_kind {
    K_TYPE, K_ENUM, K_ENUM_STR, K_CONST, K_MULTOF, K_MAX, K_XMAX, K_MIN, K_XMIN,
    K_MAXLEN, K_MINLEN, K_PATTERN, K_FORMAT,
    K_MAXITEMS, K_MINITEMS, K_UNIQUE, K_MAXPROPS, K_MINPROPS, K_REQUIRED, K_DEPREQ,
    K_REF, K_DYNREF, K_ALLOF, K_ANYOF, K_ONEOF, K_NOT, K_IF, K_DEPSCHEMA,
    K_ITEMS, K_CONTAINS, K_PROPS, K_PROPNAMES, K_UNEVAL_ITEMS, K_UNEVAL_PROPS,
};

/* 1 if an op of this kind reads only the instance's type, length, string or number:
 * a node of such ops only is a leaf (snode.leaf), checked by a fast path. */
static inline int schema_kind_scalar(int kind)
{
    switch (kind) {
    case K_TYPE: case K_ENUM_STR: case K_MAX: case K_XMAX: case K_MIN: case K_XMIN:
    case K_MAXLEN: case K_MINLEN: case K_PATTERN: case K_FORMAT: case K_MAXITEMS:
    case K_MAXPROPS: case K_MINITEMS: case K_MINPROPS: return 1;
    default: return 0;
    }
}

typedef struct snode snode_t;
typedef struct sres sres_t;

/* Up to this many properties, a lookup compares lengths and first bytes in a row; that
 * beats hashing the key (one multiply per byte) for the object sizes tool schemas have. */
#define SPROPS_LINEAR_MAX 16

typedef struct sprops {
    size_t n;
    const char **names; /* schema's strings */
    size_t *lens;
    snode_t **subs;
    uint32_t *hash;     /* open-addressing table of indexes+1 when n is large */
    size_t hcap;
    size_t npat;
    pcre2_code **pats;
    const char **patsrc;
    snode_t **patsubs;
    snode_t *additional; /* NULL: no additionalProperties */
    /* "required" folded in when every required name is a listed property: the walk
     * over the instance sees them anyway, so no hash lookups are needed. */
    uint64_t *reqbit;    /* per property: its bit in req_mask, or 0 */
    uint64_t req_mask;
    const char **req_names;
    size_t nreq;
} sprops_t;

typedef struct sop {
    uint16_t kind;
    uint8_t tmask;         /* instance types this op applies to */
    const char *kw;        /* keyword name, for the error's keyword location */
    union {
        double num;
        struct { double num; const char *txt; } bound; /* numeric keywords: u.num, and its
                                                        * text for messages */
        size_t len;
        uint32_t types;
        json_object *val;                   /* const, enum (array) */
        struct { json_object *val; const char **v; size_t *lens; size_t n; } strs; /* enum of strings only */
        snode_t *sub;                       /* $ref, not, propertyNames, uneval */
        struct { snode_t **v; size_t n; } subs;   /* allOf/anyOf/oneOf */
        struct { const char **v; size_t n; } names; /* required */
        struct { pcre2_code *re; const char *src; } pat;
        struct { int (*fn)(const char *, size_t); const char *name; } fmt;
        struct { snode_t *target; const char *anchor; } dyn;
        struct { snode_t *cond, *then, *els; } cond;
        struct { const char **keys; void **v; size_t n; int schemas; } dep;
        struct { snode_t **prefix; size_t nprefix; snode_t *rest; const char *restkw; } items;
        struct { snode_t *sub; size_t min, max; } contains;
        sprops_t *props;
    } u;
} sop_t;

/* A leaf's checks gathered in one place (snode.lf): schema_v_leaf_ok runs them as
 * straight-line code instead of dispatching op by op. Bounds absent from the schema hold
 * values no instance fails (0, SIZE_MAX, -inf, +inf). */
typedef struct sleaf {
    uint32_t types;               /* "type", or T_ANY */
    size_t minlen, maxlen;        /* code points */
    size_t minitems, maxitems, minprops, maxprops;
    double min, max, xmin, xmax;
    const sop_t *enm, *pat, *fmt; /* enum of strings, pattern, format; NULL if absent */
} sleaf_t;

struct snode {
    uint8_t is_bool;       /* 1: boolean schema, value in bool_val */
    uint8_t bool_val;
    uint8_t has_uneval;    /* needs an annotation collector */
    uint8_t leaf;          /* every op reads only the instance's type, length, string
                            * or number: schema_v_leaf_ok gives the valid verdict */
    sres_t *res;           /* the schema resource this node belongs to */
    const sleaf_t *lf;     /* leaf: its checks in one place (NULL otherwise) */
    size_t nops;
    sop_t *ops;
};

/* A schema resource (document root or object with $id): what $dynamicRef searches. */
struct sres {
    size_t ndyn;
    const char **dyn_names;
    snode_t **dyn_nodes;
};

struct schema {
    snode_t *root;
    json_object *doc;      /* our reference on the caller's document */
    json_object **docs;    /* documents we loaded ($ref to files, meta-schemas) */
    size_t ndocs;
    pcre2_code **codes;    /* compiled patterns */
    size_t ncodes, capcodes;
    void **allocs;         /* everything else we own */
    size_t nallocs, capallocs;
    pcre2_match_context *mctx;
    pcre2_match_data *md;  /* shared while md_busy is held; others make their own */
    atomic_flag md_busy;
    int max_errors;
    int format_assert;
};

/* An instance as a compact tree (schema_parse_tree): nodes in document order, each
 * container followed by its children; a node's next is the index after its subtree, so
 * children are walked as i = first + 1, i = v[i].next. Strings point into the parsed
 * text when they had no escapes (so they are not NUL-terminated), else into sb. */
typedef struct jt_node {
    const char *key;   /* member of an object: its key (klen bytes) */
    union { const char *s; double d; } u; /* strings; numbers */
    uint32_t klen;
    uint32_t n;        /* strings: bytes; arrays: items; objects: members */
    uint32_t next;
    uint8_t t;         /* T_* bits */
    uint8_t soff, koff; /* while parsing: s / key are offsets into sb */
} jt_node_t;

typedef struct jtree {
    jt_node_t *v;
    size_t n, cap;
    char *sb;          /* unescaped strings and keys */
    size_t sn, scap;
    jt_node_t inl[64];
} jtree_t;

/* Parse text (as schema_parse_json, flags 0) into tr; 0, or nonzero when the text is not
 * JSON or holds what the tree does not represent like json-c (duplicate keys, objects
 * of more than 64 members): the caller then parses with schema_parse_json. The tree
 * borrows text. Free with schema_tree_free (also after a failure). */
int schema_parse_tree(const char *text, size_t len, jtree_t *tr);
void schema_tree_free(jtree_t *tr);

/* The process-wide shared copy of key k (kl bytes) that schema_parse_json gives json-c
 * for object keys, or NULL (too long, or the set is full). Never freed. The compiler
 * takes property names from it, so the validator may match a parsed key by pointer. */
const char *schema_key_intern(const char *k, size_t kl);

/* Allocate zeroed memory owned by s (freed by schema_free); NULL on failure. */
void *schema_alloc(schema_t *s, size_t n);
char *schema_strdup(schema_t *s, const char *str);

/* URI references (RFC 3986). Result is malloc'd; NULL on failure. */
char *schema_uri_resolve(const char *base, const char *ref);

/* Embedded meta-schema text for uri (without fragment), or NULL. */
const char *schema_meta_text(const char *uri);

/* ECMA-262 pattern -> compiled PCRE2 code, owned by s (or by the caller if s is NULL);
 * NULL and a message on failure. */
pcre2_code *schema_regex_compile(schema_t *s, const char *pat, size_t len, char *err,
                                 size_t errlen);
/* 1 match, 0 no match, <0 limit hit or error (caller treats as no match). */
int schema_regex_match(const schema_t *s, pcre2_match_data *md, const pcre2_code *re,
                       const char *str, size_t len);

/* Format checker for a format name, or NULL if the name is unknown. Each returns 1 if
 * the string is valid. */
int (*schema_format_fn(const char *name))(const char *, size_t);

/* Structural JSON equality with 1 == 1.0 and key order ignored. */
int schema_json_equal(json_object *a, json_object *b);
/* Instance type bits of v (see T_*). */
unsigned schema_type_of(json_object *v);

#endif
