/*
 * schema_regex: ECMA-262 patterns on PCRE2.
 *
 * PCRE2 is close to ECMA-262 once configured: UTF mode without UCP keeps \d and \w
 * ASCII as in JavaScript; DOLLAR_ENDONLY makes $ match only at the end; ALT_BSUX and
 * EXTRA_ALT_BSUX read \uHHHH and \u{H...}; ALLOW_EMPTY_CLASS gives [] and [^] their
 * JavaScript meaning. What differs is rewritten before compiling: JavaScript's \s
 * includes Unicode spaces, and escapes that JavaScript rejects (\a, \e, \z, \Q ...) are
 * errors here too rather than silently meaning something else. Patterns are JIT
 * compiled when the platform allows, and every match runs under the schema's match
 * and depth limits so a catastrophic pattern fails instead of hanging.
 *
 * Not PCRE2_MATCH_INVALID_UTF: with JIT in PCRE2 10.42 it makes "^\D$" miss non-ASCII
 * characters. Subjects are checked as UTF-8 instead; a string that is not valid UTF-8
 * (which no JSON text can carry) simply does not match.
 */
#include "schema_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* \\x{...} is unavailable under ALT_BSUX, so code points are written \\uHHHH. */
#define ECMA_SPACES "\\s\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"

/* PCRE2 10.42 knows only the short general-category names. */
static const char *const long_props[][2] = {
    {"Letter", "L"}, {"Cased_Letter", "L&"}, {"Uppercase_Letter", "Lu"},
    {"Lowercase_Letter", "Ll"}, {"Titlecase_Letter", "Lt"}, {"Modifier_Letter", "Lm"},
    {"Other_Letter", "Lo"}, {"Mark", "M"}, {"Nonspacing_Mark", "Mn"},
    {"Spacing_Mark", "Mc"}, {"Enclosing_Mark", "Me"}, {"Number", "N"},
    {"Decimal_Number", "Nd"}, {"digit", "Nd"}, {"Letter_Number", "Nl"},
    {"Other_Number", "No"}, {"Punctuation", "P"}, {"Connector_Punctuation", "Pc"},
    {"Dash_Punctuation", "Pd"}, {"Open_Punctuation", "Ps"}, {"Close_Punctuation", "Pe"},
    {"Initial_Punctuation", "Pi"}, {"Final_Punctuation", "Pf"}, {"Other_Punctuation", "Po"},
    {"Symbol", "S"}, {"Math_Symbol", "Sm"}, {"Currency_Symbol", "Sc"},
    {"Modifier_Symbol", "Sk"}, {"Other_Symbol", "So"}, {"Separator", "Z"},
    {"Space_Separator", "Zs"}, {"Line_Separator", "Zl"}, {"Paragraph_Separator", "Zp"},
    {"Other", "C"}, {"Control", "Cc"}, {"Format", "Cf"}, {"Surrogate", "Cs"},
    {"Private_Use", "Co"}, {"Unassigned", "Cn"},
};

static int put(char **buf, size_t *n, size_t *cap, const char *s, size_t l)
{
    if (*n + l + 1 > *cap) {
        size_t nc = (*cap + l + 1) * 2;
        char *b = realloc(*buf, nc);
        if (!b)
            return -1;
        *buf = b;
        *cap = nc;
    }
    memcpy(*buf + *n, s, l);
    *n += l;
    (*buf)[*n] = 0;
    return 0;
}

/* Rewrite pat into PCRE2 syntax; NULL + message if JavaScript would reject it. */
static char *translate(const char *pat, size_t len, char *err, size_t errlen)
{
    static const char ok_escapes[] = "dDwWsSbBfnrtvcxupPk0123456789";
    char *out = NULL;
    size_t n = 0, cap = 0;
    int in_class = 0;
    if (put(&out, &n, &cap, "", 0))
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char ch = pat[i];
        int rc = 0;
        if (ch == '\\' && i + 1 < len) {
            char e = pat[++i];
            if (((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) && !strchr(ok_escapes, e)) {
                snprintf(err, errlen, "\\%c is not a valid escape in ECMA-262 patterns", e);
                free(out);
                return NULL;
            }
            if (e == 's')
                rc = in_class ? put(&out, &n, &cap, ECMA_SPACES, strlen(ECMA_SPACES))
                              : (put(&out, &n, &cap, "[", 1) ||
                                 put(&out, &n, &cap, ECMA_SPACES, strlen(ECMA_SPACES)) ||
                                 put(&out, &n, &cap, "]", 1));
            else if (e == 'S' && !in_class)
                rc = put(&out, &n, &cap, "[^", 2) ||
                     put(&out, &n, &cap, ECMA_SPACES, strlen(ECMA_SPACES)) ||
                     put(&out, &n, &cap, "]", 1);
            else if ((e == 'p' || e == 'P') && i + 1 < len && pat[i + 1] == '{') {
                const char *end = memchr(pat + i + 2, '}', len - i - 2);
                size_t nl = end ? (size_t)(end - (pat + i + 2)) : 0;
                const char *shortname = NULL;
                for (size_t k = 0; end && k < sizeof long_props / sizeof long_props[0]; k++)
                    if (strlen(long_props[k][0]) == nl &&
                        !strncmp(long_props[k][0], pat + i + 2, nl))
                        shortname = long_props[k][1];
                if (shortname) {
                    char tmp[16];
                    int w = snprintf(tmp, sizeof tmp, "\\%c{%s}", e, shortname);
                    rc = put(&out, &n, &cap, tmp, (size_t)w);
                    i += nl + 2;
                } else {
                    rc = put(&out, &n, &cap, pat + i - 1, 2);
                }
            } else
                rc = put(&out, &n, &cap, pat + i - 1, 2);
        } else {
            /* In ECMA-262 the first ']' always ends a class ("[]" is empty). */
            /* ECMA-262 groups: (?:  (?=  (?!  (?<=  (?<!  (?<name>; no inline flags,
             * comments or Python's (?P. */
            if (ch == '(' && !in_class && i + 1 < len && pat[i + 1] == '?' &&
                !(i + 2 < len && strchr(":=!<", pat[i + 2]))) {
                snprintf(err, errlen, "(?%c is not an ECMA-262 group",
                         i + 2 < len ? pat[i + 2] : ' ');
                free(out);
                return NULL;
            }
            if (ch == '[' && !in_class)
                in_class = 1;
            else if (ch == ']' && in_class)
                in_class = 0;
            rc = put(&out, &n, &cap, &ch, 1);
        }
        if (rc) {
            free(out);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
    }
    return out;
}

pcre2_code *schema_regex_compile(schema_t *s, const char *pat, size_t len, char *err,
                                 size_t errlen)
{
    char *tr = translate(pat, len, err, errlen);
    if (!tr)
        return NULL;
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc) {
        free(tr);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
    pcre2_set_newline(cc, PCRE2_NEWLINE_ANY);
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)tr, strlen(tr),
                                   PCRE2_UTF | PCRE2_DOLLAR_ENDONLY |
                                       PCRE2_ALT_BSUX | PCRE2_ALLOW_EMPTY_CLASS,
                                   &ec, &off, cc);
    pcre2_compile_context_free(cc);
    free(tr);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        snprintf(err, errlen, "%s", (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional speed-up; falls back if absent */
    if (!s)
        return re;
    if (s->ncodes == s->capcodes) {
        size_t nc = s->capcodes ? s->capcodes * 2 : 8;
        pcre2_code **v = realloc(s->codes, nc * sizeof *v);
        if (!v) {
            pcre2_code_free(re);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        s->codes = v;
        s->capcodes = nc;
    }
    s->codes[s->ncodes++] = re;
    return re;
}

int schema_regex_match(const schema_t *s, pcre2_match_data *md, const pcre2_code *re,
                       const char *str, size_t len)
{
    /* ASCII is valid UTF-8, so PCRE2's own UTF check (which costs as much as a match
     * on short strings) and pcre2_match's other entry checks can be skipped: straight
     * into the JIT code, if the pattern has some. Other subjects take the checked path. */
    pcre2_match_context *mc = s ? s->mctx : NULL;
    size_t i = 0;
    while (i < len && !((unsigned char)str[i] & 0x80))
        i++;
    int rc = PCRE2_ERROR_JIT_BADOPTION;
    if (i == len)
        rc = pcre2_jit_match(re, (PCRE2_SPTR)str, len, 0, 0, md, mc);
    if (rc == PCRE2_ERROR_JIT_BADOPTION)
        rc = pcre2_match(re, (PCRE2_SPTR)str, len, 0, i == len ? PCRE2_NO_UTF_CHECK : 0, md, mc);
    if (rc >= 0)
        return 1;
    return rc == PCRE2_ERROR_NOMATCH ? 0 : rc;
}
