/*
 * schema_cli: `agentd schema check` for tool authors.
 *
 * Compiles SCHEMA.json (relative $refs resolve to files beside it, --map adds URL
 * prefixes served from directories), validates INSTANCE.json ("-" reads stdin) and
 * prints "valid" or one line per error: "<instance pointer>: <message> (<keyword
 * location>)". Exit 0 valid, 1 invalid, 2 usage error, unreadable input or bad schema.
 */
#include "err.h"
#include "schema/schema.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_MAX_MAPS 16
#define CLI_MAX_ERRORS 100

static void usage(FILE *f)
{
    fprintf(f, "usage: agentd schema check [--draft 7|2020-12] [--format-assert]\n"
               "                           [--map URL_PREFIX=DIR]... SCHEMA.json INSTANCE.json\n"
               "  INSTANCE.json may be - for standard input.\n"
               "  exit 0 valid, 1 invalid, 2 usage error or the schema itself is bad\n");
}

#define CLI_MAX_FILE (64 * 1024 * 1024)

/* Parse a JSON file ("-": stdin) into *out (NULL for the literal null); 0 or -1 after
 * printing why. */
static int load(const char *path, const char *what, json_object **out)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "agentd schema: %s %s: cannot open\n", what, path);
        return -1;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || cap >= CLI_MAX_FILE)
            break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int rerr = ferror(f);
    if (f != stdin)
        fclose(f);
    if (!buf || rerr || n >= CLI_MAX_FILE) {
        fprintf(stderr, "agentd schema: %s %s: %s\n", what, path,
                !buf ? "out of memory" : rerr ? "read error" : "too large");
        free(buf);
        return -1;
    }
    json_object *o = NULL;
    char err[160];
    int rc = schema_parse_json_ex(buf, n, SCHEMA_PARSE_DOCUMENT, &o, err, sizeof err);
    free(buf);
    if (rc) {
        fprintf(stderr, "agentd schema: %s %s: %s\n", what, path, err);
        return -1;
    }
    *out = o;
    return 0;
}

int schema_cli_main(int argc, char **argv)
{
    const char *maps[CLI_MAX_MAPS * 2 + 1] = {0};
    char *mapbuf[CLI_MAX_MAPS] = {0};
    size_t nmaps = 0;
    schema_opts_t o = {.max_errors = CLI_MAX_ERRORS};
    const char *paths[2] = {NULL, NULL};
    int npaths = 0, rc = 2;
    json_object *sdoc = NULL, *inst = NULL;
    schema_t *s = NULL;
    schema_result_t *res = NULL;
    char *dir = NULL;

    if (argc < 2 || strcmp(argv[1], "check") != 0) {
        usage(argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? stdout
                                                                                     : stderr);
        return argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? 0 : 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--draft") && i + 1 < argc) {
            const char *d = argv[++i];
            if (!strcmp(d, "7") || !strcmp(d, "draft-07") || !strcmp(d, "draft7"))
                o.draft = 7;
            else if (!strcmp(d, "2020-12") || !strcmp(d, "2020"))
                o.draft = 2020;
            else {
                fprintf(stderr, "agentd schema: --draft takes 7 or 2020-12, not %s\n", d);
                goto done;
            }
        } else if (!strcmp(a, "--format-assert")) {
            o.format_assert = 1;
        } else if (!strcmp(a, "--map") && i + 1 < argc) {
            const char *m = argv[++i];
            const char *eq = strchr(m, '=');
            if (!eq || eq == m || !eq[1] || nmaps == CLI_MAX_MAPS) {
                fprintf(stderr, "agentd schema: --map takes URL_PREFIX=DIR (at most %d)\n",
                        CLI_MAX_MAPS);
                goto done;
            }
            if (!(mapbuf[nmaps] = strdup(m)))
                goto done;
            mapbuf[nmaps][eq - m] = 0;
            maps[2 * nmaps] = mapbuf[nmaps];
            maps[2 * nmaps + 1] = mapbuf[nmaps] + (eq - m) + 1;
            nmaps++;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            rc = 0;
            goto done;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "agentd schema: unknown option %s\n", a);
            usage(stderr);
            goto done;
        } else if (npaths < 2) {
            paths[npaths++] = a;
        } else {
            usage(stderr);
            goto done;
        }
    }
    if (npaths != 2) {
        usage(stderr);
        goto done;
    }
    if (nmaps)
        o.map = maps;
    if (load(paths[0], "schema", &sdoc))
        goto done;
    if (!(dir = strdup(paths[0])))
        goto done;
    o.base_dir = dirname(dir);
    char err[1024];
    if (!(s = schema_compile(sdoc, &o, err, sizeof err))) {
        fprintf(stderr, "agentd schema: %s: %s\n", paths[0], err);
        goto done;
    }
    if (load(paths[1], "instance", &inst))
        goto done;
    if (!(res = schema_result_new()))
        goto done;
    int vrc = schema_validate(s, inst, res);
    if (vrc == 0) {
        printf("valid\n");
        rc = 0;
    } else if (vrc == ERR_SCHEMA) {
        for (size_t i = 0; i < schema_result_count(res); i++) {
            const schema_error_t *e = schema_result_get(res, i);
            printf("%s: %s (%s)\n", e->instance_ptr[0] ? e->instance_ptr : "/", e->message,
                   e->keyword_loc[0] ? e->keyword_loc : "/");
        }
        if (schema_result_count(res) == CLI_MAX_ERRORS)
            printf("(stopped after %d errors)\n", CLI_MAX_ERRORS);
        rc = 1;
    } else {
        fprintf(stderr, "agentd schema: %s\n", err_str(vrc));
    }
done:
    schema_result_free(res);
    schema_free(s);
    json_object_put(sdoc);
    json_object_put(inst);
    free(dir);
    for (size_t i = 0; i < nmaps; i++)
        free(mapbuf[i]);
    return rc;
}
