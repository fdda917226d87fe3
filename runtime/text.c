#include "text.h"

#include "err.h"

#include <string.h>

size_t text_utf8_len(const unsigned char *s, size_t n)
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

long text_utf8_bad(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = text_utf8_len(u + i, n - i);
        if (!l)
            return (long)i;
        i += l;
    }
    return -1;
}

int text_check(const char *s, size_t n, const char *source, char *errbuf, size_t errlen)
{
    const char *nul = memchr(s, 0, n);
    long bad = text_utf8_bad(s, nul ? (size_t)(nul - s) : n);
    if (bad >= 0)
        return err_set(errbuf, errlen, ERR_INVAL,
                       "%s: not valid UTF-8 (byte %ld); convert it to UTF-8 first", source, bad);
    if (nul)
        return err_set(errbuf, errlen, ERR_INVAL, "%s: contains a NUL byte (byte %ld)", source,
                       (long)(nul - s));
    return 0;
}

void text_scrub(char *s)
{
    unsigned char *u = (unsigned char *)s;
    size_t n = strlen(s), i = 0;
    while (i < n) {
        if ((u[i] < 0x20 && u[i] != '\n' && u[i] != '\t') || u[i] == 0x7f) {
            u[i++] = ' ';
            continue;
        }
        size_t l = u[i] < 0x80 ? 1 : text_utf8_len(u + i, n - i);
        if (!l) {
            u[i++] = '?';
            continue;
        }
        i += l;
    }
}
