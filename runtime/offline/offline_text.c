/*
 * offline_text: see offline_text.h. The stemmer is deliberately tiny (plural, -ing, -ed,
 * -ly, final e/y): the offline model matches a request against a handful of tool
 * descriptions, where "arrived"/"arrive"/"arrival" meeting is what matters, not linguistics.
 */
#include "offline_text.h"

#include "err.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Sorted for bsearch. Words carry no apostrophes (they are removed before the lookup). */
static const char *const stop_words[] = {
    "a",      "about",  "above",  "after",  "again", "all",   "also",   "am",     "an",     "and",
    "any",    "are",    "as",     "at",     "be",    "been",  "before", "being",  "but",    "by",
    "can",    "cant",   "could",  "did",    "didnt", "do",    "does",   "doesnt", "dont",   "e",
    "eg",     "etc",    "for",    "from",   "g",     "get",   "got",    "had",    "has",    "hasnt",
    "have",   "havent", "having", "he",     "hello", "her",   "here",   "hey",    "hi",     "him",
    "his",    "how",    "i",      "ie",     "if",    "im",    "in",     "into",   "is",     "isnt",
    "it",     "its",    "ive",    "just",   "know",  "let",   "lets",   "like",   "me",     "might",
    "my",     "need",   "no",     "not",    "of",    "on",    "or",     "our",    "please", "she",
    "should", "so",     "some",   "still",  "tell",  "than",  "thank",  "thanks", "that",   "the",
    "their",  "them",   "then",   "there",  "these", "they",  "this",   "those",  "to",     "too",
    "up",     "us",     "use",    "via",    "want",  "was",   "wasnt",  "we",     "were",   "what",
    "whats",  "when",   "where",  "wheres", "which", "while", "who",    "why",    "will",   "with",
    "wont",   "would",  "yes",    "yet",    "you",   "your",  "yours",
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int offline_is_stop(const char *w)
{
    return bsearch(&w, stop_words, sizeof stop_words / sizeof *stop_words, sizeof *stop_words,
                   cmp_str) != NULL;
}

static int ends(const char *w, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n >= k && memcmp(w + n - k, suf, k) == 0;
}

static int is_vowel(char c)
{
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

/* "shipp" -> "ship" after removing -ing/-ed, but keep "ss"/"ll" words ("pressed" -> "press"). */
static void undouble(char *w, size_t *n)
{
    if (*n >= 3 && w[*n - 1] == w[*n - 2] && !is_vowel(w[*n - 1]) && w[*n - 1] != 's' &&
        w[*n - 1] != 'l' && w[*n - 1] != 'z')
        w[--*n] = 0;
}

void offline_stem(const char *word, char *out, size_t len)
{
    snprintf(out, len, "%s", word);
    size_t n = strlen(out);
    int digits = 1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)out[i]))
            digits = 0;
    if (digits || n <= 3)
        return;
    if (ends(out, n, "ies") && n > 4) {
        n -= 2;
        out[n - 1] = 'y';
    } else if (ends(out, n, "sses")) {
        n -= 2;
    } else if (!ends(out, n, "ss") && !ends(out, n, "us") && !ends(out, n, "is") &&
               ends(out, n, "s")) {
        n -= 1;
    }
    out[n] = 0;
    if (ends(out, n, "ing") && n >= 6) {
        n -= 3;
        out[n] = 0;
        undouble(out, &n);
    } else if (ends(out, n, "ed") && n >= 5) {
        n -= 2;
        out[n] = 0;
        undouble(out, &n);
    } else if (ends(out, n, "ly") && n >= 6) {
        n -= 2;
    }
    out[n] = 0;
    if (n > 4 && out[n - 1] == 'e')
        out[--n] = 0;
    else if (n > 4 && out[n - 1] == 'y' && !is_vowel(out[n - 2]))
        out[n - 1] = 'i';
}

double offline_stem_similar(const char *a, const char *b)
{
    if (strcmp(a, b) == 0)
        return 1.0;
    size_t la = strlen(a), lb = strlen(b), p = 0;
    while (a[p] && a[p] == b[p])
        p++;
    size_t shorter = la < lb ? la : lb, longer = la < lb ? lb : la;
    if (shorter >= 4 && p == shorter && longer - shorter <= 3)
        return 0.7;
    return 0.0;
}

int offline_words_push(offline_words_t *ws, const char *stem)
{
    if (ws->n == ws->cap) {
        size_t cap = ws->cap ? ws->cap * 2 : 32;
        void *nw = realloc(ws->w, cap * sizeof *ws->w);
        if (!nw)
            return ERR_NOMEM;
        ws->w = nw;
        ws->cap = cap;
    }
    snprintf(ws->w[ws->n++], OFFLINE_WORD_MAX, "%s", stem);
    return 0;
}

static int flush_word(offline_words_t *ws, char *raw, size_t *n, int keep_stop)
{
    if (*n == 0)
        return 0;
    static const char *const negations[] = {"cant", "didnt", "doesnt", "dont",  "hasnt", "havent",
                                            "isnt", "wasnt", "wont",   "never", NULL};
    raw[*n] = 0;
    *n = 0;
    if (!keep_stop && offline_is_stop(raw))
        return 0;
    /* With stop words kept (enum matching), "hasn't arrived" must meet "not_arrived". */
    for (int i = 0; keep_stop && negations[i]; i++)
        if (!strcmp(raw, negations[i]))
            return offline_words_push(ws, "not");
    char stem[OFFLINE_WORD_MAX];
    offline_stem(raw, stem, sizeof stem);
    return offline_words_push(ws, stem);
}

int offline_words_add(offline_words_t *ws, const char *text, int keep_stop)
{
    char raw[OFFLINE_WORD_MAX];
    size_t n = 0;
    unsigned char prev = 0;
    for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p; p++) {
        unsigned char c = *p;
        if (c == '\'') /* "hasn't" -> "hasnt": apostrophes vanish inside words */
            continue;
        int word_char = isalnum(c) || c >= 0x80;
        if (!word_char || (isupper(c) && islower(prev) && n)) {
            if (flush_word(ws, raw, &n, keep_stop))
                return ERR_NOMEM;
        }
        if (word_char && n < sizeof raw - 1)
            raw[n++] = (char)tolower(c);
        prev = c;
    }
    return flush_word(ws, raw, &n, keep_stop);
}

void offline_words_clear(offline_words_t *ws)
{
    free(ws->w);
    memset(ws, 0, sizeof *ws);
}

double offline_words_match(const offline_words_t *ws, const char *s)
{
    double best = 0;
    for (size_t i = 0; i < ws->n && best < 1.0; i++) {
        double m = offline_stem_similar(ws->w[i], s);
        if (m > best)
            best = m;
    }
    return best;
}

int offline_spans_split(const char *text, offline_spans_t *out)
{
    size_t cap = 0, word = 0;
    out->v = NULL;
    out->n = 0;
    const char *p = text ? text : "";
    while (*p) {
        while (*p && isspace((unsigned char)*p))
            p++;
        const char *start = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        const char *end = p;
        if (start == end)
            break;
        while (start < end && strchr("\"'([{<#*`", *start))
            start++;
        while (end > start && strchr("\"'.,;:!?)]}>*`", end[-1]))
            end--;
        size_t at = word++;
        if (start == end)
            continue;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            void *nv = realloc(out->v, cap * sizeof *out->v);
            if (!nv)
                goto nomem;
            out->v = nv;
        }
        out->v[out->n].s = strndup(start, (size_t)(end - start));
        if (!out->v[out->n].s)
            goto nomem;
        out->v[out->n++].word = at;
    }
    return 0;
nomem:
    offline_spans_clear(out);
    return ERR_NOMEM;
}

void offline_spans_clear(offline_spans_t *sp)
{
    for (size_t i = 0; i < sp->n; i++)
        free(sp->v[i].s);
    free(sp->v);
    sp->v = NULL;
    sp->n = 0;
}

void offline_shape(const char *s, char *out, size_t len)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = isdigit(c) ? '9' : isupper(c) ? 'A' : islower(c) ? 'a' : (char)c;
    }
    if (len)
        out[i] = 0;
}

const char **offline_keys_sorted(json_object *obj, size_t *n)
{
    *n = 0;
    if (!json_object_is_type(obj, json_type_object))
        return NULL;
    size_t cnt = (size_t)json_object_object_length(obj);
    const char **keys = calloc(cnt + 1, sizeof *keys);
    if (!keys)
        return NULL;
    size_t i = 0;
    json_object_object_foreach(obj, k, v)
    {
        (void)v;
        keys[i++] = k;
    }
    qsort(keys, i, sizeof *keys, cmp_str);
    *n = i;
    return keys;
}

json_object *offline_json_sorted(json_object *j)
{
    if (json_object_is_type(j, json_type_array)) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < json_object_array_length(j); i++) {
            json_object *item = json_object_array_get_idx(j, i);
            json_object *c = item ? offline_json_sorted(item) : NULL;
            if ((item && !c) || json_object_array_add(a, c)) {
                json_object_put(c);
                json_object_put(a);
                return NULL;
            }
        }
        return a;
    }
    if (!json_object_is_type(j, json_type_object))
        return json_object_get(j); /* scalars are immutable in our use: share them */
    size_t n;
    const char **keys = offline_keys_sorted(j, &n);
    json_object *o = keys ? json_object_new_object() : NULL;
    for (size_t i = 0; o && i < n; i++) {
        json_object *item = json_object_object_get(j, keys[i]);
        json_object *c = item ? offline_json_sorted(item) : NULL;
        if ((item && !c) || json_object_object_add(o, keys[i], c)) {
            json_object_put(c);
            json_object_put(o);
            o = NULL;
        }
    }
    free(keys);
    return o;
}

void offline_humanize(const char *key, char *out, size_t len)
{
    static const char *const acronyms[] = {"id", "eta", "url", "sku", "kb", "api", "usd", "faq"};
    size_t o = 0;
    const char *p = key;
    while (*p && o + 1 < len) {
        while (*p == '_' || *p == '-' || *p == ' ')
            p++;
        const char *start = p;
        while (*p && *p != '_' && *p != '-' && *p != ' ' &&
               !(p > start && isupper((unsigned char)*p) && islower((unsigned char)p[-1])))
            p++;
        size_t wl = (size_t)(p - start);
        if (!wl)
            break;
        int acro = 0;
        for (size_t i = 0; i < sizeof acronyms / sizeof *acronyms; i++)
            if (strlen(acronyms[i]) == wl && strncasecmp(acronyms[i], start, wl) == 0)
                acro = 1;
        if (o && o + 1 < len)
            out[o++] = ' ';
        for (size_t i = 0; i < wl && o + 1 < len; i++)
            out[o++] =
                (char)(acro ? toupper((unsigned char)start[i]) : tolower((unsigned char)start[i]));
    }
    if (len)
        out[o] = 0;
}
