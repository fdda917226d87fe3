#include "cli.h"

#include "db/db.h"
#include "err.h"
#include "store.h"

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

const char *cli_traces_dir(const char *db_path, const char *explicit_dir, char *buf, size_t len)
{
    const char *env = getenv("AGENTD_TRACES");
    if ((explicit_dir && *explicit_dir) || (env && *env)) {
        snprintf(buf, len, "%s", explicit_dir && *explicit_dir ? explicit_dir : env);
        return buf;
    }
    const char *db = cli_db_path(db_path);
    if (db_is_url(db)) {
        snprintf(buf, len, "traces");
        return buf;
    }
    const char *slash = strrchr(db, '/');
    const char *base = slash ? slash + 1 : db;
    int dirlen = slash ? (int)(slash - db + 1) : 0;
    size_t n = strlen(base);
    if (strcmp(base, "agentd.db") == 0)
        snprintf(buf, len, "%.*straces", dirlen, db);
    else if (n > 3 && strcmp(base + n - 3, ".db") == 0)
        snprintf(buf, len, "%.*s.traces", (int)(dirlen + n - 3), db);
    else
        snprintf(buf, len, "%s.traces", db);
    return buf;
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

store_t *cli_open_db(const char *db_opt, int mode, const char *who, int *code)
{
    char err[1400];
    int why;
    store_t *st = store_open_existing(cli_db_path(db_opt), mode, err, sizeof err, &why);
    if (!st) {
        fprintf(stderr, "%s: %s\n", who, err);
        *code = why == ERR_NOTFOUND ? CLI_USAGE : CLI_INTERNAL;
    }
    return st;
}

char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&buf, &n);
    char tmp[8192];
    size_t k;
    int ok = m != NULL;
    while (ok && (k = fread(tmp, 1, sizeof tmp, f)) > 0)
        ok = fwrite(tmp, 1, k, m) == k;
    ok = !ferror(f) && ok;
    fclose(f);
    if (m && fclose(m) != 0)
        ok = 0;
    if (!ok) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = n;
    return buf;
}
