/*
 * offline_summary: see offline_summary.h.
 */
#include "offline_summary.h"

#include "offline_text.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct bullet {
    char *text;
    size_t len; /* with its newline */
    int rank;
    size_t at;
    int keep;
} bullet_t;

static int has_identifier(const char *s)
{
    while (*s) {
        while (*s && isspace((unsigned char)*s))
            s++;
        int digit = 0, at = 0, alnum = 0;
        while (*s && !isspace((unsigned char)*s)) {
            digit |= isdigit((unsigned char)*s);
            alnum += isalnum((unsigned char)*s) != 0;
            at |= *s == '@';
            s++;
        }
        if (at || (digit && alnum >= 4))
            return 1;
    }
    return 0;
}

/* "- role: text" with text cut at max bytes (at a space when there is one). */
static char *bullet_text(const char *role, const char *text, size_t len, size_t max)
{
    while (len && isspace((unsigned char)text[len - 1]))
        len--;
    if (len > max) {
        size_t cut = max;
        while (cut > max / 2 && !isspace((unsigned char)text[cut]))
            cut--;
        len = cut > max / 2 ? cut : max;
    }
    buf_t b = {0};
    buf_addf(&b, "- %s: %.*s", role, (int)len, text);
    return buf_take(&b);
}

static int by_rank(const void *a, const void *b)
{
    const bullet_t *x = *(bullet_t *const *)a, *y = *(bullet_t *const *)b;
    if (x->rank != y->rank)
        return y->rank - x->rank;
    return x->at < y->at ? -1 : x->at > y->at;
}

char *offline_summary(const char *transcript, size_t max_bytes)
{
    bullet_t *v = NULL;
    bullet_t **order = NULL;
    size_t n = 0, cap = 0;
    char *out = NULL;
    for (const char *p = transcript ? transcript : ""; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *role = NULL, *text = NULL;
        size_t tlen = 0, max = 200;
        if (len > 2 && !strncmp(p, "- ", 2)) { /* a bullet of the summary so far */
            const char *colon = memchr(p, ':', len);
            if (colon && colon - p < 14) {
                role = !strncmp(p + 2, "user", 4) ? "user" : "assistant";
                text = colon + 2 <= p + len ? colon + 2 : p + len;
                tlen = (size_t)(p + len - text);
                max = 400;
            }
        } else if (len > 6 && !strncmp(p, "user: ", 6)) {
            role = "user";
            text = p + 6;
            tlen = len - 6;
        } else if (len > 11 && !strncmp(p, "assistant: ", 11)) {
            role = "assistant";
            text = p + 11;
            tlen = len - 11;
            size_t end = 0; /* its first sentence */
            while (end < tlen && !(strchr(".!?", text[end]) &&
                                   (end + 1 == tlen || isspace((unsigned char)text[end + 1]))))
                end++;
            tlen = end < tlen ? end + 1 : tlen;
            max = 160;
        }
        if (role && tlen) {
            if (n == cap) {
                cap = cap ? cap * 2 : 32;
                bullet_t *nv = realloc(v, cap * sizeof *v);
                if (!nv)
                    goto out;
                v = nv;
            }
            char *t = bullet_text(role, text, tlen, max);
            if (!t)
                goto out;
            v[n] = (bullet_t){t, strlen(t) + 1,
                              has_identifier(t) * 2 + !strcmp(role, "user"), n, 0};
            n++;
        }
        p += len + (eol != NULL);
    }
    order = calloc(n + 1, sizeof *order);
    if (!order)
        goto out;
    for (size_t i = 0; i < n; i++)
        order[i] = &v[i];
    qsort(order, n, sizeof *order, by_rank);
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        if (used + order[i]->len <= max_bytes) {
            order[i]->keep = 1;
            used += order[i]->len;
        }
    buf_t b = {0};
    for (size_t i = 0; i < n; i++)
        if (v[i].keep)
            buf_addf(&b, "%s%s", b.len ? "\n" : "", v[i].text);
    if (b.len == 0)
        buf_adds(&b, "");
    out = buf_take(&b);
out:
    for (size_t i = 0; i < n; i++)
        free(v[i].text);
    free(v);
    free(order);
    return out;
}
