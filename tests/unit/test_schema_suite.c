/*
 * The official JSON-Schema-Test-Suite against schema.c. Required: every file in
 * tests/draft2020-12 and tests/draft7. Informational: optional/ and optional/format/
 * (format in assertion mode), reported but never failing the run. The suite lives
 * outside the repo: $AGENTD_TESTDATA or ../shared/testdata relative to the repo root.
 * `-v` prints each failing test; a file name argument runs only matching files.
 */
#include "err.h"
#include "schema/schema.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct counts {
    int pass, fail;
} counts_t;

static int verbose;
static const char *only;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* schema_validate_text must give what schema_parse_json + schema_validate give, on the
 * instance as text: the verdict, the error count and the first error. */
static int text_diffs;

static int text_differs(const schema_t *s, json_object *data)
{
    const char *text = json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN);
    size_t n = strlen(text);
    char e1[256] = "", e2[256] = "";
    schema_result_t *r1 = schema_result_new(), *r2 = schema_result_new();
    json_object *inst = NULL;
    int rc1 = schema_parse_json(text, n, &inst, e1, sizeof e1);
    if (!rc1)
        rc1 = schema_validate(s, inst, r1);
    json_object_put(inst);
    int rc2 = schema_validate_text(s, text, n, r2, e2, sizeof e2);
    int differs = rc1 != rc2 || strcmp(e1, e2) ||
                  schema_result_count(r1) != schema_result_count(r2);
    if (!differs && schema_result_count(r1)) {
        const schema_error_t *a = schema_result_get(r1, 0), *b = schema_result_get(r2, 0);
        differs = strcmp(a->instance_ptr, b->instance_ptr) || strcmp(a->message, b->message);
    }
    schema_result_free(r1);
    schema_result_free(r2);
    return differs;
}

static void run_file(const char *path, const char *name, int draft, int fmt_assert,
                     const char *remotes, counts_t *total)
{
    json_object *doc = json_object_from_file(path);
    counts_t fc = {0, 0};
    if (!doc) {
        printf("  %-40s cannot parse\n", name);
        total->fail++;
        return;
    }
    const char *map[] = {"http://localhost:1234/", remotes, NULL};
    schema_opts_t o = {.draft = draft, .format_assert = fmt_assert, .map = map};
    for (size_t g = 0; g < json_object_array_length(doc); g++) {
        json_object *grp = json_object_array_get_idx(doc, g), *sch, *tests, *v;
        json_object_object_get_ex(grp, "schema", &sch);
        json_object_object_get_ex(grp, "tests", &tests);
        char err[512];
        schema_t *s = schema_compile(sch, &o, err, sizeof err);
        for (size_t t = 0; t < json_object_array_length(tests); t++) {
            json_object *tc = json_object_array_get_idx(tests, t), *data;
            json_object_object_get_ex(tc, "data", &data);
            json_object_object_get_ex(tc, "valid", &v);
            int want = json_object_get_boolean(v);
            int got = s ? schema_validate(s, data, NULL) == 0 : -1;
            if (s && text_differs(s, data)) {
                text_diffs++;
                printf("    TEXT PATH DIFFERS %s: group %zu test %zu\n", name, g, t);
            }
            if (got == want) {
                fc.pass++;
            } else {
                fc.fail++;
                if (verbose) {
                    json_object *d;
                    json_object_object_get_ex(grp, "description", &d);
                    json_object *td;
                    json_object_object_get_ex(tc, "description", &td);
                    printf("    FAIL %s: %s / %s%s%s\n", name, json_object_get_string(d),
                           json_object_get_string(td), s ? "" : ": ", s ? "" : err);
                }
            }
        }
        schema_free(s);
    }
    json_object_put(doc);
    printf("  %-40s %4d passed, %d failed\n", name, fc.pass, fc.fail);
    total->pass += fc.pass;
    total->fail += fc.fail;
}

static void run_dir(const char *dir, int draft, int fmt_assert, const char *remotes,
                    counts_t *total)
{
    DIR *d = opendir(dir);
    if (!d) {
        printf("  cannot open %s\n", dir);
        total->fail++;
        return;
    }
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".json"))
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!only || strstr(names[i], only))
            run_file(path, names[i], draft, fmt_assert, remotes, total);
        free(names[i]);
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else
            only = argv[i];
    }
    /* The suite stays outside the repo: $AGENTD_TESTDATA, else ../shared/testdata beside
     * the checkout, else the workplace's shared folder (a clone made elsewhere). */
    const char *td = getenv("AGENTD_TESTDATA");
    static const char *const places[] = {"../shared/testdata", "/work/shared/testdata"};
    char root[1024], remotes[1100], dir[1200];
    for (size_t i = 0; !td && i < sizeof places / sizeof places[0]; i++) {
        snprintf(dir, sizeof dir, "%s/JSON-Schema-Test-Suite", places[i]);
        DIR *probe = opendir(dir);
        if (probe) {
            closedir(probe);
            td = places[i];
        }
    }
    snprintf(root, sizeof root, "%s/JSON-Schema-Test-Suite", td ? td : "../shared/testdata");
    snprintf(remotes, sizeof remotes, "%s/remotes/", root);
    counts_t req = {0, 0}, opt = {0, 0}, fmt = {0, 0};
    static const struct { const char *d; int draft; } drafts[] = {
        {"draft2020-12", 2020}, {"draft7", 7},
    };
    for (int i = 0; i < 2; i++) {
        printf("%s (required)\n", drafts[i].d);
        snprintf(dir, sizeof dir, "%s/tests/%s", root, drafts[i].d);
        run_dir(dir, drafts[i].draft, 0, remotes, &req);
        printf("%s optional (informational)\n", drafts[i].d);
        snprintf(dir, sizeof dir, "%s/tests/%s/optional", root, drafts[i].d);
        run_dir(dir, drafts[i].draft, 0, remotes, &opt);
        printf("%s optional/format, assertion mode (informational)\n", drafts[i].d);
        snprintf(dir, sizeof dir, "%s/tests/%s/optional/format", root, drafts[i].d);
        run_dir(dir, drafts[i].draft, 1, remotes, &fmt);
    }
    printf("optional: %d passed, %d failed (informational)\n", opt.pass, opt.fail);
    printf("optional/format: %d passed, %d failed (informational)\n", fmt.pass, fmt.fail);
    printf("required (draft2020-12 + draft7):\n");
    printf("%d passed, %d failed\n", req.pass, req.fail);
    printf("schema_validate_text against parse + schema_validate, every test above: %d differ\n",
           text_diffs);
    return req.fail || text_diffs ? 1 : 0;
}
