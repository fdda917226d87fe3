/*
 * rag_parse: plain text and Markdown into blocks (paragraphs and headings with their byte
 * offsets in the file), and the checks that keep binary or broken files out.
 *
 * Markdown is read line by line for what retrieval needs: ATX (# ..) and setext (=== / ---
 * underlined) headings, fenced code blocks kept whole (a # inside is not a heading), and
 * paragraphs separated by blank lines. Inline markup is kept as written: it is searchable
 * text and the offsets stay exact.
 */
#include "rag_int.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int rag_doc_add(rag_doc_t *d, int level, int pre, const char *text, size_t len, int64_t start,
                int64_t end)
{
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\n' || text[len - 1] == '\t' ||
                   text[len - 1] == '\r'))
        len--;
    while (len && (*text == ' ' || *text == '\n' || *text == '\t' || *text == '\r')) {
        text++;
        len--;
        if (start < end)
            start++;
    }
    if (!len)
        return 0;
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 32;
        rag_block_t *v = realloc(d->v, nc * sizeof *v);
        if (!v)
            return ERR_NOMEM;
        d->v = v;
        d->cap = nc;
    }
    char *t = strndup(text, len);
    if (!t)
        return ERR_NOMEM;
    d->v[d->n++] = (rag_block_t){level, pre, t, start, end};
    return 0;
}

void rag_doc_clear(rag_doc_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].text);
    free(d->v);
    free(d->title);
    memset(d, 0, sizeof *d);
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcasecmp(s + n - m, suf) == 0;
}

int rag_format_of(const char *path)
{
    if (ends_with(path, ".html") || ends_with(path, ".htm") || ends_with(path, ".xhtml"))
        return RAG_FMT_HTML;
    if (ends_with(path, ".md") || ends_with(path, ".markdown"))
        return RAG_FMT_MD;
    if (ends_with(path, ".txt") || ends_with(path, ".text") || ends_with(path, ".rst"))
        return RAG_FMT_TEXT;
    return -1;
}

/* Length of the UTF-8 sequence at s (at most n bytes) or 0 when invalid (overlong forms,
 * surrogates and code points past U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned min, cp;
    if ((c & 0xe0) == 0xc0) {
        len = 2, min = 0x80, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, min = 0x800, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int rag_text_check(const char *buf, size_t len, char *err, size_t errlen)
{
    size_t i = 0, ink = 0, ctl = 0;
    const unsigned char *s = (const unsigned char *)buf;
    if (len >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf)
        i = 3; /* BOM */
    /* Like git and grep: a NUL near the start means binary, whatever else the bytes are. */
    const unsigned char *nul = memchr(s, 0, len < 8000 ? len : 8000);
    if (nul)
        return err_set(err, errlen, ERR_INVAL, "binary file (a NUL byte at %zu)",
                       (size_t)(nul - s));
    while (i < len) {
        if (s[i] == 0)
            return err_set(err, errlen, ERR_INVAL, "binary file (a NUL byte at %zu)", i);
        size_t l = utf8_len(s + i, len - i);
        if (!l)
            return err_set(err, errlen, ERR_INVAL,
                           "invalid UTF-8 at byte %zu (convert it to UTF-8 first)", i);
        if (s[i] > ' ')
            ink++;
        else if (s[i] < ' ' && !strchr("\t\n\r\f\v\033", s[i]))
            ctl++;
        i += l;
    }
    /* A few stray control bytes happen in text; many mean a binary format. */
    if (ctl > 8 && ctl * 100 > len)
        return err_set(err, errlen, ERR_INVAL, "binary file (%zu control bytes)", ctl);
    if (!ink)
        return err_set(err, errlen, ERR_INVAL, "empty file (no text to index)");
    return 0;
}

/* The line starting at p: its end (at '\n' or the end) and the start of the next. */
static const char *line_end(const char *p, const char *end)
{
    const char *e = memchr(p, '\n', (size_t)(end - p));
    return e ? e : end;
}

static int blank(const char *p, const char *e)
{
    for (; p < e; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r')
            return 0;
    return 1;
}

static void set_title(rag_doc_t *d, const char *text, size_t len)
{
    if (d->title)
        return;
    while (len && (*text == ' ' || *text == '\t'))
        text++, len--;
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\r' || text[len - 1] == '\t'))
        len--;
    if (len > 200)
        len = 200;
    if (len)
        d->title = strndup(text, len);
}

int rag_parse_text(const char *buf, size_t len, rag_doc_t *d)
{
    const char *p = buf, *end = buf + len, *para = NULL;
    while (p < end) {
        const char *e = line_end(p, end);
        if (blank(p, e)) {
            if (para && rag_doc_add(d, 0, 0, para, (size_t)(p - para), para - buf, p - buf))
                return ERR_NOMEM;
            para = NULL;
        } else {
            if (!para)
                para = p;
            if (!d->title)
                set_title(d, p, (size_t)(e - p));
        }
        p = e < end ? e + 1 : end;
    }
    if (para && rag_doc_add(d, 0, 0, para, (size_t)(end - para), para - buf, end - buf))
        return ERR_NOMEM;
    return 0;
}

static int atx_level(const char *p, const char *e, const char **text)
{
    int n = 0;
    while (p < e && *p == ' ' && n < 3)
        p++, n++;
    int level = 0;
    while (p < e && *p == '#' && level < 7)
        p++, level++;
    if (level < 1 || level > 6 || (p < e && *p != ' ' && *p != '\t' && *p != '\r'))
        return 0;
    *text = p;
    return level;
}

static int underline(const char *p, const char *e, char c)
{
    while (p < e && *p == ' ')
        p++;
    int n = 0;
    while (p < e && *p == c)
        p++, n++;
    return n >= 2 && blank(p, e);
}

static int fence(const char *p, const char *e)
{
    while (p < e && *p == ' ')
        p++;
    return e - p >= 3 && (!strncmp(p, "```", 3) || !strncmp(p, "~~~", 3));
}

int rag_parse_md(const char *buf, size_t len, rag_doc_t *d)
{
    const char *p = buf, *end = buf + len, *para = NULL;
    int in_code = 0;
    const char *code = NULL;
#define FLUSH(to)                                                                          \
    do {                                                                                   \
        if (para && rag_doc_add(d, 0, 0, para, (size_t)((to)-para), para - buf, (to)-buf)) \
            return ERR_NOMEM;                                                              \
        para = NULL;                                                                       \
    } while (0)
    while (p < end) {
        const char *e = line_end(p, end), *next = e < end ? e + 1 : end;
        const char *t;
        int level;
        if (in_code) {
            if (fence(p, e)) {
                if (rag_doc_add(d, 0, 1, code, (size_t)(next - code), code - buf, next - buf))
                    return ERR_NOMEM;
                in_code = 0;
            }
        } else if (fence(p, e)) {
            FLUSH(p);
            in_code = 1;
            code = p;
        } else if ((level = atx_level(p, e, &t))) {
            FLUSH(p);
            const char *te = e;
            while (te > t && (te[-1] == '#' || te[-1] == ' ' || te[-1] == '\r'))
                te--;
            if (level == 1)
                set_title(d, t, (size_t)(te - t));
            if (rag_doc_add(d, level, 0, t, (size_t)(te - t), p - buf, e - buf))
                return ERR_NOMEM;
        } else if (para && !memchr(para, '\n', (size_t)(p - para - 1)) &&
                   (underline(p, e, '=') || underline(p, e, '-'))) {
            /* setext: the paragraph so far is one line, underlined */
            level = underline(p, e, '=') ? 1 : 2;
            size_t hl = (size_t)(p - para);
            if (level == 1)
                set_title(d, para, hl);
            if (rag_doc_add(d, level, 0, para, hl, para - buf, e - buf))
                return ERR_NOMEM;
            para = NULL;
        } else if (blank(p, e)) {
            FLUSH(p);
        } else if (!para) {
            para = p;
        }
        p = next;
    }
    if (in_code && rag_doc_add(d, 0, 1, code, (size_t)(end - code), code - buf, end - buf))
        return ERR_NOMEM;
    FLUSH(end);
#undef FLUSH
    if (!d->title) {
        for (size_t i = 0; i < d->n && !d->title; i++)
            set_title(d, d->v[i].text, strcspn(d->v[i].text, "\n"));
    }
    return 0;
}
