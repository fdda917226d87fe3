/*
 * schema_format: checkers for the "format" keyword in assertion mode.
 *
 * Each checker takes the string's bytes and length and returns 1 if valid. They follow
 * the RFCs the specification names (3339 dates and durations, 5321 mailboxes, 1123
 * host names, 3986 URIs, 4291 IPv6, 4122 UUIDs, 6901 JSON pointers, 6570 templates),
 * checking syntax only: no DNS, no punycode decoding.
 */
#include "schema_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hexd(char c)
{
    return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int num(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!digit(s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int f_date(const char *s, size_t n)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d;
    if (n != 10 || s[4] != '-' || s[7] != '-' || !num(s, 4, &y) || !num(s + 5, 2, &m) ||
        !num(s + 8, 2, &d) || m < 1 || m > 12 || d < 1)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

/* full-time; *utc_min gets the UTC minute of day for the leap-second rule. */
static int f_time(const char *s, size_t n)
{
    int h, mi, se;
    if (n < 9 || s[2] != ':' || s[5] != ':' || !num(s, 2, &h) || !num(s + 3, 2, &mi) ||
        !num(s + 6, 2, &se) || h > 23 || mi > 59 || se > 60)
        return 0;
    size_t i = 8;
    if (i < n && s[i] == '.') {
        size_t st = ++i;
        while (i < n && digit(s[i]))
            i++;
        if (i == st)
            return 0;
    }
    int oh = 0, om = 0, sign = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        sign = s[i] == '+' ? 1 : -1;
        if (n - i != 6 || s[i + 3] != ':' || !num(s + i + 1, 2, &oh) || !num(s + i + 4, 2, &om) ||
            oh > 23 || om > 59)
            return 0;
        i += 6;
    } else {
        return 0;
    }
    if (i != n)
        return 0;
    if (se == 60) {
        int utc = ((h * 60 + mi - sign * (oh * 60 + om)) % 1440 + 1440) % 1440;
        return utc == 23 * 60 + 59;
    }
    return 1;
}

static int f_datetime(const char *s, size_t n)
{
    return n > 11 && (s[10] == 'T' || s[10] == 't') && f_date(s, 10) &&
           f_time(s + 11, n - 11);
}

static int f_duration(const char *s, size_t n)
{
    if (n < 2 || s[0] != 'P')
        return 0;
    static const char date_units[] = "YMD", time_units[] = "HMS";
    size_t i = 1;
    int any = 0, in_time = 0, weeks = 0;
    const char *units = date_units;
    int last = -1;
    while (i < n) {
        if (s[i] == 'T') {
            if (in_time)
                return 0;
            in_time = 1;
            units = time_units;
            last = -1;
            i++;
            if (i == n)
                return 0;
            continue;
        }
        size_t st = i;
        while (i < n && digit(s[i]))
            i++;
        if (i == st || i == n)
            return 0;
        if (!in_time && s[i] == 'W') {
            if (any || i + 1 != n)
                return 0;
            weeks = 1;
            i++;
            any = 1;
            continue;
        }
        const char *u = strchr(units, s[i]);
        /* RFC 3339 appendix A: Y[M[D]] and H[M[S]] -- no skipped units */
        if (!u || !*u || (last >= 0 && (int)(u - units) != last + 1))
            return 0;
        last = (int)(u - units);
        any = 1;
        i++;
    }
    (void)weeks;
    return any && !(in_time && last < 0);
}

static int f_ipv4(const char *s, size_t n)
{
    int parts = 0;
    size_t i = 0;
    while (parts < 4) {
        size_t st = i;
        int v = 0;
        while (i < n && digit(s[i]) && i - st < 3)
            v = v * 10 + (s[i++] - '0');
        if (i == st || v > 255 || (i - st > 1 && s[st] == '0'))
            return 0;
        parts++;
        if (parts < 4) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
    }
    return i == n;
}

static int f_ipv6(const char *s, size_t n)
{
    int groups = 0, dbl = 0;
    size_t i = 0;
    if (n < 2)
        return 0;
    if (s[0] == ':') {
        if (s[1] != ':')
            return 0;
        dbl = 1;
        i = 2;
        if (i == n)
            return 1;
    }
    while (i < n) {
        size_t st = i;
        while (i < n && hexd(s[i]) && i - st < 5)
            i++;
        if (i < n && s[i] == '.') { /* embedded IPv4 as the last 32 bits */
            if (!f_ipv4(s + st, n - st))
                return 0;
            groups += 2;
            i = n;
            break;
        }
        if (i == st || i - st > 4)
            return 0;
        groups++;
        if (i == n)
            break;
        if (s[i] != ':')
            return 0;
        i++;
        if (i < n && s[i] == ':') {
            if (dbl)
                return 0;
            dbl = 1;
            i++;
            if (i == n)
                break;
        } else if (i == n) {
            return 0;
        }
    }
    return dbl ? groups < 8 : groups == 8;
}

static int label_ok(const char *s, size_t n, int idn)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(alpha((char)c) || digit((char)c) || c == '-' || (idn && c >= 0x80)))
            return 0;
    }
    if (n >= 4 && s[2] == '-' && s[3] == '-' &&
        !((s[0] == 'x' || s[0] == 'X') && (s[1] == 'n' || s[1] == 'N')))
        return 0; /* "??--" is reserved for A-labels */
    if (n >= 4 && (s[0] == 'x' || s[0] == 'X') && s[2] == '-' && s[3] == '-' && n < 5)
        return 0;
    return 1;
}

static int host(const char *s, size_t n, int idn)
{
    if (n == 0 || n > 253)
        return 0;
    size_t st = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.' ||
            (idn && i + 3 <= n && (unsigned char)s[i] == 0xe3 && (unsigned char)s[i + 1] == 0x80 &&
             (unsigned char)s[i + 2] == 0x82)) {
            if (!label_ok(s + st, i - st, idn))
                return 0;
            if (i < n && s[i] != '.')
                i += 2;
            st = i + 1;
        }
    }
    return 1;
}

static int f_hostname(const char *s, size_t n)
{
    return host(s, n, 0);
}

static int f_idn_hostname(const char *s, size_t n)
{
    return host(s, n, 1);
}

static int email(const char *s, size_t n, int idn)
{
    const char *at = NULL;
    size_t i = 0;
    if (n && s[0] == '"') {
        for (i = 1; i < n && s[i] != '"'; i++)
            if (s[i] == '\\')
                i++;
        if (i >= n || i + 1 >= n || s[i + 1] != '@')
            return 0;
        at = s + i + 1;
    } else {
        at = memchr(s, '@', n);
        if (!at || at == s)
            return 0;
        static const char atext[] = "!#$%&'*+-/=?^_`{|}~";
        for (const char *p = s; p < at; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '.') {
                if (p == s || p + 1 == at || p[1] == '.')
                    return 0;
            } else if (!(alpha((char)c) || digit((char)c) || strchr(atext, c) ||
                         (idn && c >= 0x80))) {
                return 0;
            }
        }
    }
    const char *d = at + 1;
    size_t dl = n - (size_t)(d - s);
    if (dl >= 2 && d[0] == '[' && d[dl - 1] == ']') {
        if (dl > 7 && !strncmp(d + 1, "IPv6:", 5))
            return f_ipv6(d + 6, dl - 7);
        return f_ipv4(d + 1, dl - 2);
    }
    return host(d, dl, idn);
}

static int f_email(const char *s, size_t n)
{
    return email(s, n, 0);
}

static int f_idn_email(const char *s, size_t n)
{
    return email(s, n, 1);
}

static int f_uuid(const char *s, size_t n)
{
    if (n != 36)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!hexd(s[i])) {
            return 0;
        }
    }
    return 1;
}

/* Characters RFC 3986 allows outside percent-encoding; iri adds non-ASCII. */
static int uri_chars(const char *s, size_t n, int iri)
{
    static const char ok[] = "-._~!$&'()*+,;=:@/?#[]";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n + 0 && !(i + 2 < n))
                return 0;
            if (!hexd(s[i + 1]) || !hexd(s[i + 2]))
                return 0;
            i += 2;
        } else if (!(alpha((char)c) || digit((char)c) || (c && strchr(ok, c)) ||
                     (iri && c >= 0x80))) {
            return 0;
        }
    }
    return 1;
}

static int authority_ok(const char *a, size_t n, int iri)
{
    const char *at = NULL;
    for (size_t i = 0; i < n; i++) {
        if (a[i] == '@') {
            if (at)
                return 0; /* userinfo cannot hold a second '@' */
            at = a + i;
        }
    }
    for (const char *p = a; at && p < at; p++)
        if (*p == '[' || *p == ']')
            return 0;
    const char *h = at ? at + 1 : a;
    size_t hl = n - (size_t)(h - a);
    if (hl && h[0] == '[') {
        const char *end = memchr(h, ']', hl);
        if (!end || !f_ipv6(h + 1, (size_t)(end - h - 1)))
            return 0;
        h = end + 1;
        hl = n - (size_t)(h - a);
        if (hl && h[0] != ':')
            return 0;
    } else {
        const char *colon = memchr(h, ':', hl);
        size_t nl = colon ? (size_t)(colon - h) : hl;
        for (size_t i = 0; i < nl; i++)
            if (h[i] == '[' || h[i] == ']')
                return 0;
        h += nl;
        hl -= nl;
    }
    if (hl && h[0] == ':')
        for (size_t i = 1; i < hl; i++)
            if (!digit(h[i]))
                return 0;
    return uri_chars(a, n, iri);
}

static int uri_ref(const char *s, size_t n, int absolute, int iri)
{
    size_t i = 0;
    while (i < n && s[i] != ':' && s[i] != '/' && s[i] != '?' && s[i] != '#')
        i++;
    int has_scheme = i < n && s[i] == ':' && i > 0;
    if (has_scheme) {
        if (!alpha(s[0]))
            has_scheme = 0;
        for (size_t j = 1; j < i && has_scheme; j++)
            if (!(alpha(s[j]) || digit(s[j]) || s[j] == '+' || s[j] == '-' || s[j] == '.'))
                has_scheme = 0;
        if (!has_scheme && absolute)
            return 0;
    }
    if (absolute && !has_scheme)
        return 0;
    if (!has_scheme) {
        /* a relative path's first segment must not contain ':' */
        for (size_t j = 0; j < n && s[j] != '/' && s[j] != '?' && s[j] != '#'; j++)
            if (s[j] == ':')
                return 0;
        i = 0;
    } else {
        i++;
    }
    if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        size_t st = i + 2, e = st;
        while (e < n && s[e] != '/' && s[e] != '?' && s[e] != '#')
            e++;
        if (!authority_ok(s + st, e - st, iri))
            return 0;
        i = e;
    }
    for (size_t j = i; j < n; j++)
        if (s[j] == '[' || s[j] == ']')
            return 0;
    return uri_chars(s + i, n - i, iri);
}

static int f_uri(const char *s, size_t n)
{
    return uri_ref(s, n, 1, 0);
}

static int f_uri_reference(const char *s, size_t n)
{
    return uri_ref(s, n, 0, 0);
}

static int f_iri(const char *s, size_t n)
{
    return uri_ref(s, n, 1, 1);
}

static int f_iri_reference(const char *s, size_t n)
{
    return uri_ref(s, n, 0, 1);
}

/* RFC 6570 level 4: literals, and {op var[:len|*],...} expressions. */
static int f_uri_template(const char *s, size_t n)
{
    static const char bad_lit[] = " \"<>\\^`{|}";
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n || !hexd(s[i + 1]) || !hexd(s[i + 2]))
                return 0;
            i += 3;
            continue;
        }
        if (c != '{') {
            if (c < 0x21 || c == 0x7f || strchr(bad_lit, c))
                return 0;
            i++;
            continue;
        }
        i++;
        if (i < n && strchr("+#./;?&", s[i]))
            i++;
        for (;;) { /* varspec */
            size_t st = i;
            int dot_ok = 0;
            while (i < n) {
                if (alpha(s[i]) || digit(s[i]) || s[i] == '_') {
                    i++;
                    dot_ok = 1;
                } else if (s[i] == '%' && i + 2 < n && hexd(s[i + 1]) && hexd(s[i + 2])) {
                    i += 3;
                    dot_ok = 1;
                } else if (s[i] == '.' && dot_ok && i + 1 < n && s[i + 1] != '.' &&
                           s[i + 1] != '}' && s[i + 1] != ',') {
                    i++;
                    dot_ok = 0;
                } else {
                    break;
                }
            }
            if (i == st || i >= n)
                return 0;
            if (s[i] == ':') {
                size_t ds = ++i;
                while (i < n && digit(s[i]))
                    i++;
                if (i == ds || i - ds > 4 || s[ds] == '0')
                    return 0;
            } else if (s[i] == '*') {
                i++;
            }
            if (i >= n)
                return 0;
            if (s[i] == ',') {
                i++;
                continue;
            }
            if (s[i] != '}')
                return 0;
            i++;
            break;
        }
    }
    return 1;
}

static int f_json_pointer(const char *s, size_t n)
{
    if (n && s[0] != '/')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '~' && (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1')))
            return 0;
    return 1;
}

static int f_rel_json_pointer(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && digit(s[i]))
        i++;
    if (i == 0 || (i > 1 && s[0] == '0'))
        return 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        size_t st = ++i;
        while (i < n && digit(s[i]))
            i++;
        if (i == st || (i - st > 1 && s[st] == '0') || (i - st == 1 && s[st] == '0'))
            return 0;
    }
    if (i < n && s[i] == '#')
        return i + 1 == n;
    return f_json_pointer(s + i, n - i);
}

static int f_regex(const char *s, size_t n)
{
    char err[128];
    pcre2_code *re = schema_regex_compile(NULL, s, n, err, sizeof err);
    pcre2_code_free(re);
    return re != NULL;
}

int (*schema_format_fn(const char *name))(const char *, size_t)
{
    static const struct {
        const char *name;
        int (*fn)(const char *, size_t);
    } fmts[] = {
        {"date-time", f_datetime}, {"date", f_date}, {"time", f_time},
        {"duration", f_duration}, {"email", f_email}, {"idn-email", f_idn_email},
        {"hostname", f_hostname}, {"idn-hostname", f_idn_hostname}, {"ipv4", f_ipv4},
        {"ipv6", f_ipv6}, {"uri", f_uri}, {"uri-reference", f_uri_reference},
        {"iri", f_iri}, {"iri-reference", f_iri_reference}, {"uri-template", f_uri_template},
        {"uuid", f_uuid}, {"json-pointer", f_json_pointer},
        {"relative-json-pointer", f_rel_json_pointer}, {"regex", f_regex},
    };
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++)
        if (!strcmp(name, fmts[i].name))
            return fmts[i].fn;
    return NULL;
}
