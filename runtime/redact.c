/*
 * redact: see redact.h. Errs on the side of masking: a false positive costs a few
 * characters of an error message, a false negative leaks a credential.
 */
#include "redact.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static const char MASK[] = "[REDACTED]";

static int token_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == '~' ||
           c == '+' || c == '/' || c == '=';
}

/* Length of a secret-looking token at s after a known prefix, or 0. */
static size_t after_prefix(const char *s, const char *prefix, size_t min)
{
    size_t pl = strlen(prefix);
    if (strncasecmp(s, prefix, pl) != 0)
        return 0;
    size_t n = pl;
    while (s[n] == ' ' || s[n] == '\t')
        n++;
    size_t t = n;
    while (token_char(s[t]))
        t++;
    return t - n >= min ? t : 0;
}

size_t redact_copy(char *dst, size_t dstlen, const char *src, const char *secret)
{
    if (!dstlen)
        return 0;
    size_t o = 0, slen = secret && strlen(secret) >= 4 ? strlen(secret) : 0;
    if (!src)
        src = "";
    for (size_t i = 0; src[i] && o + 1 < dstlen;) {
        size_t skip = 0;
        const char *keep = "";
        if (slen && strncmp(src + i, secret, slen) == 0) {
            skip = slen;
        } else if ((skip = after_prefix(src + i, "Bearer", 4))) {
            keep = "Bearer ";
        } else if ((skip = after_prefix(src + i, "x-api-key:", 1))) {
            keep = "x-api-key: ";
        } else if ((i == 0 || !token_char(src[i - 1])) &&
                   (skip = after_prefix(src + i, "sk-", 8))) {
            keep = "sk-";
        }
        if (skip) {
            size_t kl = strlen(keep);
            for (size_t k = 0; k < kl && o + 1 < dstlen; k++)
                dst[o++] = keep[k];
            for (size_t k = 0; k < sizeof MASK - 1 && o + 1 < dstlen; k++)
                dst[o++] = MASK[k];
            i += skip;
            continue;
        }
        char c = src[i++];
        dst[o++] = (unsigned char)c < 0x20 || c == 0x7f ? ' ' : c;
    }
    dst[o] = '\0';
    return o;
}
