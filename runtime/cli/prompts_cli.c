/*
 * prompts_cli: `agentd prompts list [DIR|AGENT.lua...] [--json]`. Every agent file found
 * (default: the agents/ folder) is loaded; each prompt is listed once with its hash, the
 * git commit that last changed it, its {{variables}} and the agents that use it. Prompt
 * files beside them (prompts/NAME.md or .txt) that no agent uses are listed too, so a stale
 * prompt shows.
 */
#include "prompt_cli.h"

#include "agent.h"
#include "cli.h"
#include "err.h"
#include "prompt/prompt.h"

#include <dirent.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct plist {
    json_object *by_file; /* key (real path or "inline:agent") -> entry */
    int bad;
} plist_t;

static int add_var(void *ud, const char *name)
{
    json_object_array_add(ud, json_object_new_string(name));
    return 0;
}

static json_object *entry_for(plist_t *pl, const char *key, const char *label, const char *text,
                              const char *commit, int dirty)
{
    json_object *e;
    if (json_object_object_get_ex(pl->by_file, key, &e))
        return e;
    e = json_object_new_object();
    char h[17], err[300];
    prompt_hash(text, h);
    json_object *vars = json_object_new_array();
    if (prompt_vars_each(text, add_var, vars, err, sizeof err))
        json_object_object_add(e, "error", json_object_new_string(err));
    json_object_object_add(e, "prompt", json_object_new_string(label));
    json_object_object_add(e, "hash", json_object_new_string(h));
    json_object_object_add(e, "git_commit", commit && *commit ? json_object_new_string(commit)
                                                              : NULL);
    json_object_object_add(e, "git_dirty", json_object_new_boolean(dirty));
    json_object_object_add(e, "bytes", json_object_new_int64((int64_t)strlen(text)));
    json_object_object_add(e, "vars", vars);
    json_object_object_add(e, "agents", json_object_new_array());
    json_object_object_add(pl->by_file, key, e);
    return e;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static void add_agent(plist_t *pl, const char *path)
{
    char err[1024];
    agent_t *a = agent_load(path, err, sizeof err);
    if (!a) {
        fprintf(stderr, "agentd: %s\n", err);
        pl->bad++;
        return;
    }
    char key[PATH_MAX + 16];
    const char *label;
    if (a->prompt_file) {
        if (!realpath(a->prompt_file, key))
            snprintf(key, sizeof key, "%s", a->prompt_file);
        label = a->prompt_file;
    } else {
        snprintf(key, sizeof key, "inline:%s", a->path);
        label = key;
    }
    json_object *e = entry_for(pl, key, label, a->system_prompt, a->prompt_commit, a->prompt_dirty);
    json_object *agents;
    json_object_object_get_ex(e, "agents", &agents);
    json_object_array_add(agents, json_object_new_string(a->path));
    agent_free(a);
}

/* Prompt files in dir/prompts that no agent uses yet. */
static void add_loose_prompts(plist_t *pl, const char *dir)
{
    char pdir[PATH_MAX];
    snprintf(pdir, sizeof pdir, "%s/prompts", dir);
    DIR *d = opendir(pdir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!has_suffix(de->d_name, ".md") && !has_suffix(de->d_name, ".txt"))
            continue;
        char path[PATH_MAX + 300], key[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", pdir, de->d_name);
        if (!realpath(path, key))
            continue;
        if (json_object_object_get_ex(pl->by_file, key, NULL))
            continue;
        char *text = cli_read_file(path, NULL), commit[41] = "";
        int dirty = 0;
        if (!text)
            continue;
        if (prompt_git_commit(path, commit, &dirty))
            commit[0] = 0;
        entry_for(pl, key, path, text, commit, dirty);
        free(text);
    }
    closedir(d);
}

static void scan_dir(plist_t *pl, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "agentd: %s: cannot open the folder\n", dir);
        pl->bad++;
        return;
    }
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    while ((de = readdir(d)))
        if (has_suffix(de->d_name, ".lua")) {
            char **nn = realloc(names, (n + 1) * sizeof *nn);
            if (!nn)
                break;
            names = nn;
            names[n++] = strdup(de->d_name);
        }
    closedir(d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (names[i] && names[j] && strcmp(names[i], names[j]) > 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        add_agent(pl, path);
        free(names[i]);
    }
    free(names);
    add_loose_prompts(pl, dir);
}

int prompts_cli_main(int argc, char **argv)
{
    int json = 0;
    const char *paths[64];
    int np = 0;
    if (argc < 2 || strcmp(argv[1], "list") != 0) {
        fprintf(stderr, "usage: agentd prompts list [DIR|AGENT.lua...] [--json]\n");
        return CLI_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "agentd: %s: unknown option\n", argv[i]);
            return CLI_USAGE;
        } else if (np < 64)
            paths[np++] = argv[i];
    }
    if (!np)
        paths[np++] = "agents";
    plist_t pl = {.by_file = json_object_new_object()};
    for (int i = 0; i < np; i++) {
        struct stat sb;
        if (stat(paths[i], &sb) == 0 && S_ISDIR(sb.st_mode))
            scan_dir(&pl, paths[i]);
        else
            add_agent(&pl, paths[i]);
    }
    json_object *arr = json_object_new_array();
    json_object_object_foreach(pl.by_file, key, ent) {
        (void)key;
        json_object_array_add(arr, json_object_get(ent));
    }
    if (json) {
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    } else {
        printf("%-40s  %-16s  %-12s  %-24s  %s\n", "PROMPT", "HASH", "COMMIT", "VARS", "AGENTS");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *e = json_object_array_get_idx(arr, i), *v;
            char vars[256] = "", agents[1024] = "", commit[16] = "untracked";
            json_object_object_get_ex(e, "vars", &v);
            for (size_t j = 0; j < json_object_array_length(v); j++)
                snprintf(vars + strlen(vars), sizeof vars - strlen(vars), "%s%s", j ? "," : "",
                         json_object_get_string(json_object_array_get_idx(v, j)));
            json_object_object_get_ex(e, "agents", &v);
            for (size_t j = 0; j < json_object_array_length(v); j++)
                snprintf(agents + strlen(agents), sizeof agents - strlen(agents), "%s%s",
                         j ? ", " : "", json_object_get_string(json_object_array_get_idx(v, j)));
            const char *c = json_object_get_string(json_object_object_get(e, "git_commit"));
            if (c)
                snprintf(commit, sizeof commit, "%.10s%s", c,
                         json_object_get_boolean(json_object_object_get(e, "git_dirty")) ? "+"
                                                                                          : "");
            printf("%-40s  %-16s  %-12s  %-24s  %s\n",
                   json_object_get_string(json_object_object_get(e, "prompt")),
                   json_object_get_string(json_object_object_get(e, "hash")), commit,
                   *vars ? vars : "-", *agents ? agents : "(none)");
            const char *perr = json_object_get_string(json_object_object_get(e, "error"));
            if (perr)
                printf("  error: %s\n", perr);
        }
    }
    json_object_put(arr);
    json_object_put(pl.by_file);
    return pl.bad ? CLI_USAGE : CLI_OK;
}
