#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_opt(int argc, char **argv, int *i, const char *name, const char **out)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *out = a + n + 1;
        return 1;
    }
    if (a[n] != 0)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "agentd: %s needs a value\n", name);
        return -1;
    }
    *out = argv[++*i];
    return 1;
}

const char *cli_db_path(const char *explicit_path)
{
    if (explicit_path && *explicit_path)
        return explicit_path;
    const char *env = getenv("AGENTD_DB");
    return env && *env ? env : "agentd.db";
}

long cli_long(const char *opt, const char *value, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || *end || end == value || v < min || v > max) {
        fprintf(stderr, "agentd: %s: expected a whole number from %ld to %ld, got \"%s\"\n", opt,
                min, max, value);
        return -1;
    }
    return v;
}
