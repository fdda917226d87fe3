/*
 * db_url: what the db layer knows of a PostgreSQL URL without libpq: db_mask (db.h), so a
 * target can be named in a message before, or without, a connection.
 */
#include "db.h"

#include <stdio.h>
#include <string.h>

void db_mask(const char *target, char *out, size_t n)
{
    if (n == 0)
        return;
    snprintf(out, n, "%s", target ? target : "");
    if (!db_is_url(out))
        return;
    char rest[1024];
    /* postgres://user:password@host...: the user info ends at the authority's last '@' */
    char *auth = strstr(out, "://") + 3;
    size_t alen = strcspn(auth, "/?");
    char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) {
        snprintf(rest, sizeof rest, "%s", at);
        snprintf(colon, n - (size_t)(colon - out), ":***%s", rest);
    }
    /* ...?password=secret&... */
    for (char *pw = strstr(out, "password="); pw; pw = strstr(pw + 1, "password=")) {
        if (pw[-1] != '?' && pw[-1] != '&')
            continue;
        char *v = pw + 9;
        snprintf(rest, sizeof rest, "%s", v + strcspn(v, "&"));
        snprintf(v, n - (size_t)(v - out), "***%s", rest);
    }
}
