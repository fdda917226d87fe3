/*
 * rag_html: HTML into blocks through libxml2's HTML parser (SAX mode, so a page is read in
 * one pass with no tree). Text accumulates into the current block; a block element (p, li,
 * div, pre, td, br, ...) ends it, a heading element makes a heading block. Script, style,
 * the head (except its title) and navigation are dropped: nav, header, footer, aside, form,
 * menu elements; role=navigation|banner|search|contentinfo; and elements whose class or id
 * names a menu, navbar, sidebar, breadcrumb, toc or "nosearch" (a common marker for page
 * chrome). Offsets come from the parser's consumed-byte count and point into the file.
 */
#include "rag_int.h"

#include "err.h"
#include "offline/offline_text.h"

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct hstate {
    htmlParserCtxtPtr ctxt;
    rag_doc_t *d;
    buf_t text;   /* the block being collected */
    buf_t title;  /* <title> text */
    int64_t start;        /* offset of the first text in the block, -1 when none */
    int64_t last;         /* offset just past the last text seen */
    int skip;             /* depth inside a dropped element, 0 when collecting */
    int depth;
    int heading;          /* inside <hN>: N */
    int pre;
    int in_title;
    int rc;
} hstate_t;

static const char *const drop_tags[] = {"script", "style", "noscript", "template", "nav",
                                        "header", "footer", "aside", "form", "menu",
                                        "svg", "iframe", "button", "select", NULL};
static const char *const block_tags[] = {
    "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "pre", "blockquote", "table", "tr", "td",
    "th", "section", "article", "main", "br", "hr", "figure", "figcaption", "body", "tbody",
    "thead", "caption", "center", "address", "details", "summary", NULL};
static const char *const chrome_words[] = {"menu",       "nav",     "navbar", "sidebar",
                                           "breadcrumb", "toc",     "nosearch", "fancy_toc",
                                           "skip-link",  "cookie",  NULL};

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcasecmp(s, *list))
            return 1;
    return 0;
}

static int64_t offset(hstate_t *h)
{
    long n = xmlByteConsumed(h->ctxt);
    return n < 0 ? h->last : (int64_t)n;
}

static void flush(hstate_t *h)
{
    if (h->rc)
        return;
    if (h->text.failed) {
        h->rc = ERR_NOMEM;
        return;
    }
    if (h->text.len) {
        int64_t start = h->start < 0 ? h->last : h->start;
        if (rag_doc_add(h->d, h->heading, h->pre, h->text.s, h->text.len, start, h->last))
            h->rc = ERR_NOMEM;
    }
    buf_free(&h->text);
    h->start = -1;
}

/* Does a class or id attribute value name page chrome? Whole words only ("toc" but not
 * "protocol"). */
static int chrome_attr(const char *v)
{
    char w[64];
    while (*v) {
        size_t n = strcspn(v, " \t\n");
        if (n && n < sizeof w) {
            memcpy(w, v, n);
            w[n] = 0;
            if (in_list(w, chrome_words))
                return 1;
            /* "mainmenu", "site-nav", "toc-left": a chrome word as a dash/underscore part */
            char *save = NULL;
            for (char *part = strtok_r(w, "-_", &save); part; part = strtok_r(NULL, "-_", &save))
                if (in_list(part, chrome_words))
                    return 1;
        }
        v += n;
        while (*v == ' ' || *v == '\t' || *v == '\n')
            v++;
    }
    return 0;
}

static int dropped(const char *name, const xmlChar **attrs)
{
    if (in_list(name, drop_tags))
        return 1;
    for (const xmlChar **a = attrs; a && a[0]; a += 2) {
        const char *k = (const char *)a[0], *v = a[1] ? (const char *)a[1] : "";
        if (!strcasecmp(k, "role") && (!strcasecmp(v, "navigation") || !strcasecmp(v, "banner") ||
                                       !strcasecmp(v, "search") || !strcasecmp(v, "contentinfo")))
            return 1;
        if ((!strcasecmp(k, "class") || !strcasecmp(k, "id")) && chrome_attr(v))
            return 1;
        if (!strcasecmp(k, "hidden") || (!strcasecmp(k, "aria-hidden") && !strcasecmp(v, "true")))
            return 1;
    }
    return 0;
}

static int heading_level(const char *name)
{
    if ((name[0] == 'h' || name[0] == 'H') && name[1] >= '1' && name[1] <= '6' && !name[2])
        return name[1] - '0';
    return 0;
}

static void on_start(void *ud, const xmlChar *xname, const xmlChar **attrs)
{
    hstate_t *h = ud;
    const char *name = (const char *)xname;
    h->depth++;
    if (h->skip)
        return;
    if (!strcasecmp(name, "title")) {
        h->in_title = 1;
        return;
    }
    if (!strcasecmp(name, "head") || dropped(name, attrs)) {
        if (!strcasecmp(name, "head")) {
            /* the head is dropped, but its title is wanted: handled by in_title above */
            return;
        }
        flush(h);
        h->skip = h->depth;
        return;
    }
    int lv = heading_level(name);
    if (lv || in_list(name, block_tags)) {
        flush(h);
        if (lv)
            h->heading = lv;
        if (!strcasecmp(name, "pre"))
            h->pre = 1;
    }
}

static void on_end(void *ud, const xmlChar *xname)
{
    hstate_t *h = ud;
    const char *name = (const char *)xname;
    if (h->skip) {
        if (h->depth == h->skip)
            h->skip = 0;
        h->depth--;
        return;
    }
    h->depth--;
    if (!strcasecmp(name, "title")) {
        h->in_title = 0;
        return;
    }
    int lv = heading_level(name);
    if (lv || in_list(name, block_tags)) {
        flush(h);
        h->heading = 0;
        if (!strcasecmp(name, "pre"))
            h->pre = 0;
    }
}

static void on_text(void *ud, const xmlChar *ch, int len)
{
    hstate_t *h = ud;
    if (h->skip || len <= 0)
        return;
    if (h->in_title) {
        buf_add(&h->title, (const char *)ch, (size_t)len);
        return;
    }
    /* Inside <head> nothing but the title is text; libxml2 reports none elsewhere there. */
    int64_t end = offset(h);
    if (h->start < 0) {
        int64_t s = end - len;
        h->start = s < 0 ? 0 : s;
    }
    h->last = end;
    if (h->pre) {
        buf_add(&h->text, (const char *)ch, (size_t)len);
        return;
    }
    /* Collapse runs of whitespace the way a browser renders them. */
    for (int i = 0; i < len; i++) {
        char c = (char)ch[i];
        if (c == '\n' || c == '\t' || c == '\r')
            c = ' ';
        if (c == ' ' && (!h->text.len || h->text.s[h->text.len - 1] == ' '))
            continue;
        buf_add(&h->text, &c, 1);
    }
}

static void on_error(void *ud, const char *msg, ...)
{
    (void)ud;
    (void)msg; /* HTML in the wild is rarely valid; the parser recovers, so stay quiet */
}

int rag_parse_html(const char *buf, size_t len, rag_doc_t *d, char *err, size_t errlen)
{
    htmlSAXHandler sax;
    memset(&sax, 0, sizeof sax);
    sax.startElement = on_start;
    sax.endElement = on_end;
    sax.characters = on_text;
    sax.cdataBlock = on_text;
    sax.error = on_error;
    sax.warning = on_error;
    hstate_t h = {.d = d, .start = -1};
    if (len > (size_t)INT32_MAX)
        return err_set(err, errlen, ERR_TOOBIG, "HTML file too big for the parser");
    h.ctxt = htmlCreateMemoryParserCtxt(buf, (int)len);
    if (!h.ctxt)
        return err_set(err, errlen, ERR_NOMEM, "cannot create an HTML parser");
    htmlSAXHandlerPtr old = (htmlSAXHandlerPtr)h.ctxt->sax;
    h.ctxt->sax = &sax;
    h.ctxt->userData = &h;
    htmlCtxtUseOptions(h.ctxt, HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
                                   HTML_PARSE_NOIMPLIED);
    /* The page says its encoding (meta charset); the bytes were checked as UTF-8 already. */
    xmlSwitchEncoding(h.ctxt, XML_CHAR_ENCODING_UTF8);
    htmlParseDocument(h.ctxt);
    flush(&h);
    h.ctxt->sax = old;
    htmlFreeParserCtxt(h.ctxt);
    int rc = h.rc;
    if (!rc && h.title.len) {
        char *t = buf_take(&h.title);
        if (!t)
            rc = ERR_NOMEM;
        else {
            /* collapse whitespace in the title */
            char *w = t;
            for (char *s = t; *s; s++) {
                char c = (*s == '\n' || *s == '\t' || *s == '\r') ? ' ' : *s;
                if (c == ' ' && (w == t || w[-1] == ' '))
                    continue;
                *w++ = c;
            }
            while (w > t && w[-1] == ' ')
                w--;
            *w = 0;
            d->title = t;
        }
    }
    buf_free(&h.title);
    buf_free(&h.text);
    if (!rc && !d->title) {
        for (size_t i = 0; i < d->n; i++)
            if (d->v[i].level) {
                d->title = strdup(d->v[i].text);
                break;
            }
    }
    if (rc)
        return err_set(err, errlen, rc, "out of memory parsing HTML");
    return 0;
}
