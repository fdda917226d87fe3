/*
 * rag_chunk: the three chunking strategies. A "token" here is a whitespace-separated word
 * (cheap, model-independent, and within ~1.3x of BPE tokens for English prose).
 *
 * The document's paragraph words go into one flat array in reading order, each remembering
 * its block and section (the heading path it sits under), so every strategy only chooses
 * contiguous ranges [a, b) of that array:
 *   fixed      windows of `size` words, each starting size - overlap after the previous,
 *              across paragraphs and headings;
 *   structure  whole paragraphs of one section merged while they fit in `size`; a longer
 *              paragraph is cut into windows of `size`;
 *   sentence   sentences of one section packed while they fit in `size`; a longer sentence
 *              is cut. A sentence ends at a word ending in . ! or ? (before closing quotes
 *              or brackets) and at a paragraph end; code blocks are one sentence.
 * A chunk's text is the source text of its range, paragraph pieces joined by a blank line.
 */
#include "rag_int.h"

#include "err.h"
#include "offline/offline_text.h"

#include <stdlib.h>
#include <string.h>

typedef struct tok {
    uint32_t block, section;
    uint32_t off, len; /* in the block's text */
    int eos;           /* ends a sentence */
} tok_t;

typedef struct toks {
    tok_t *v;
    size_t n, cap;
    char **paths; /* heading path per section */
    size_t nsec, capsec;
} toks_t;

static int is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static int ends_sentence(const char *w, size_t n)
{
    while (n && strchr("\"')]*_`”’", w[n - 1]))
        n--;
    if (n < 2)
        return 0;
    char c = w[n - 1];
    if (c != '.' && c != '!' && c != '?')
        return 0;
    /* "e.g." "i.e." "Dr." "v1.2.": not an end when the word is a short abbreviation */
    /* "e.g." "Dr." "v1.2.": a short or dotted word is an abbreviation, not an end */
    if (c == '.' && (n <= 3 || memchr(w, '.', n - 1)))
        return 0;
    return 1;
}

static int add_section(toks_t *t, const char *const *stack)
{
    if (t->nsec == t->capsec) {
        size_t nc = t->capsec ? t->capsec * 2 : 16;
        char **p = realloc(t->paths, nc * sizeof *p);
        if (!p)
            return ERR_NOMEM;
        t->paths = p;
        t->capsec = nc;
    }
    buf_t b = {0};
    for (int i = 1; i <= 6; i++) {
        if (!stack[i])
            continue;
        if (b.len)
            buf_adds(&b, " > ");
        buf_adds(&b, stack[i]);
    }
    char *s = b.len ? buf_take(&b) : strdup("");
    if (!s)
        return ERR_NOMEM;
    t->paths[t->nsec++] = s;
    return 0;
}

static int tokenize(const rag_doc_t *d, toks_t *t)
{
    const char *stack[7] = {0};
    if (add_section(t, stack))
        return ERR_NOMEM;
    for (size_t bi = 0; bi < d->n; bi++) {
        const rag_block_t *b = &d->v[bi];
        if (b->level) {
            stack[b->level] = b->text;
            for (int i = b->level + 1; i <= 6; i++)
                stack[i] = NULL;
            if (add_section(t, stack))
                return ERR_NOMEM;
            continue;
        }
        const char *s = b->text;
        size_t i = 0, first = t->n;
        while (s[i]) {
            while (s[i] && is_space(s[i]))
                i++;
            if (!s[i])
                break;
            size_t st = i;
            while (s[i] && !is_space(s[i]))
                i++;
            if (t->n == t->cap) {
                size_t nc = t->cap ? t->cap * 2 : 256;
                tok_t *v = realloc(t->v, nc * sizeof *v);
                if (!v)
                    return ERR_NOMEM;
                t->v = v;
                t->cap = nc;
            }
            t->v[t->n++] = (tok_t){(uint32_t)bi, (uint32_t)(t->nsec - 1), (uint32_t)st,
                                   (uint32_t)(i - st), !b->pre && ends_sentence(s + st, i - st)};
        }
        if (t->n > first)
            t->v[t->n - 1].eos = 1; /* a paragraph ends its last sentence */
    }
    return 0;
}

static int emit(const rag_doc_t *d, const toks_t *t, size_t a, size_t b, rag_chunks_t *out)
{
    if (a >= b)
        return 0;
    buf_t buf = {0};
    size_t i = a;
    while (i < b) {
        uint32_t blk = t->v[i].block;
        size_t j = i;
        while (j + 1 < b && t->v[j + 1].block == blk)
            j++;
        if (buf.len)
            buf_adds(&buf, "\n\n");
        const char *s = d->v[blk].text;
        buf_add(&buf, s + t->v[i].off, t->v[j].off + t->v[j].len - t->v[i].off);
        i = j + 1;
    }
    char *text = buf_take(&buf);
    char *heading = strdup(t->paths[t->v[a].section]);
    if (!text || !heading)
        goto oom;
    if (out->n == out->cap) {
        size_t nc = out->cap ? out->cap * 2 : 32;
        rag_chunk_t *v = realloc(out->v, nc * sizeof *v);
        if (!v)
            goto oom;
        out->v = v;
        out->cap = nc;
    }
    const rag_block_t *ba = &d->v[t->v[a].block], *bb = &d->v[t->v[b - 1].block];
    int64_t s0 = ba->start + t->v[a].off, s1 = bb->start + t->v[b - 1].off + t->v[b - 1].len;
    if (s0 > ba->end)
        s0 = ba->end;
    if (s1 > bb->end)
        s1 = bb->end;
    if (s1 < s0)
        s1 = s0;
    out->v[out->n++] = (rag_chunk_t){text, heading, s0, s1, (int)(b - a)};
    return 0;
oom:
    free(text);
    free(heading);
    return ERR_NOMEM;
}

/* Cut [a, b) into windows of at most size. */
static int windows(const rag_doc_t *d, const toks_t *t, size_t a, size_t b, size_t size,
                   size_t overlap, rag_chunks_t *out)
{
    for (size_t s = a; s < b; s += size - overlap) {
        size_t e = s + size < b ? s + size : b;
        if (emit(d, t, s, e, out))
            return ERR_NOMEM;
        if (e == b)
            break;
    }
    return 0;
}

/* Pack units (ranges of tokens ending where unit_end says) of one section into chunks of
 * at most size tokens; a unit longer than size is cut into windows. */
static int pack(const rag_doc_t *d, const toks_t *t, size_t size, int by_sentence,
                rag_chunks_t *out)
{
    size_t cs = 0, i = 0; /* current chunk: [cs, i) */
    while (i < t->n) {
        size_t u = i;
        while (u < t->n && t->v[u].section == t->v[i].section &&
               !(by_sentence ? t->v[u].eos
                             : (u + 1 == t->n || t->v[u + 1].block != t->v[u].block)))
            u++;
        size_t ue = u < t->n ? u + 1 : t->n; /* unit: [i, ue) */
        if (ue > i && t->v[ue - 1].section != t->v[i].section)
            ue--;
        int new_section = cs < i && t->v[cs].section != t->v[i].section;
        if (cs < i && (new_section || ue - cs > size)) {
            if (emit(d, t, cs, i, out))
                return ERR_NOMEM;
            cs = i;
        }
        if (ue - i > size) {
            if (windows(d, t, i, ue, size, 0, out))
                return ERR_NOMEM;
            cs = ue;
        }
        i = ue;
    }
    return emit(d, t, cs, i, out);
}

int rag_chunk_doc(const rag_doc_t *d, const rag_kb_t *kb, rag_chunks_t *out)
{
    toks_t t = {0};
    int rc = tokenize(d, &t);
    if (!rc && t.n) {
        size_t size = (size_t)kb->size;
        if (!strcmp(kb->strategy, "fixed"))
            rc = windows(d, &t, 0, t.n, size, (size_t)kb->overlap, out);
        else
            rc = pack(d, &t, size, !strcmp(kb->strategy, "sentence"), out);
    }
    for (size_t i = 0; i < t.nsec; i++)
        free(t.paths[i]);
    free(t.paths);
    free(t.v);
    return rc;
}

void rag_chunks_clear(rag_chunks_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].text);
        free(c->v[i].heading);
    }
    free(c->v);
    memset(c, 0, sizeof *c);
}
