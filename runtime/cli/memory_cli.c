/*
 * memory_cli: see memory_cli.h. A SCOPE is what `memory list` prints: AGENT,
 * AGENT/user/NAME or AGENT/session/NAME (docs/memory.md).
 */
#include "memory_cli.h"

#include "cli.h"
#include "err.h"
#include "memory/memory.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int usage(void)
{
    fprintf(stderr,
            "usage: agentd memory list [--json]\n"
            "       agentd memory show SCOPE [--json]\n"
            "       agentd memory search SCOPE QUERY [-k N] [--json]\n"
            "       agentd memory rm SCOPE [ID]\n"
            "  SCOPE: AGENT, AGENT/user/NAME or AGENT/session/NAME (see `agentd memory list`)\n"
            "  --db PATH: the run database the memory database sits beside ($AGENTD_MEMORY_DB "
            "overrides)\n");
    return CLI_USAGE;
}

static void print_json(json_object *o)
{
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
}

int memory_cli_main(int argc, char **argv)
{
    const char *db = NULL, *pos[4] = {0};
    int npos = 0, json = 0;
    long k = 5;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int m;
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if ((m = cli_opt(argc, argv, &i, "--db", &db)) != 0) {
            if (m < 0)
                return CLI_USAGE;
        } else if ((m = cli_opt(argc, argv, &i, "-k", &v)) != 0) {
            if (m < 0 || (k = cli_long("-k", v, 1, 50)) < 0)
                return CLI_USAGE;
        } else if (argv[i][0] == '-' || npos == 4) {
            fprintf(stderr, "agentd memory: unexpected argument %s\n", argv[i]);
            return usage();
        } else {
            pos[npos++] = argv[i];
        }
    }
    if (!npos)
        return usage();
    const char *cmd = pos[0];
    int want = !strcmp(cmd, "list") ? 1 : !strcmp(cmd, "show") ? 2 : !strcmp(cmd, "search") ? 3
               : !strcmp(cmd, "rm") ? -1 : 0;
    if (!want || (want > 0 && npos != want) || (want < 0 && (npos < 2 || npos > 3)))
        return usage();
    char path[1100], err[1024] = "";
    memory_db_path(cli_db_path(db), path, sizeof path);
    if (access(path, F_OK) != 0) {
        if (!strcmp(cmd, "list")) {
            printf(json ? "[]\n" : "no memories (%s does not exist yet)\n", path);
            return CLI_OK;
        }
        fprintf(stderr, "agentd memory: %s: no memory database (nothing was remembered yet)\n",
                path);
        return CLI_USAGE;
    }
    rag_t *r = rag_open(path, err, sizeof err);
    if (!r) {
        fprintf(stderr, "agentd memory: %s\n", err);
        return CLI_INTERNAL;
    }
    json_object *out = NULL;
    int rc, code = CLI_OK;
    if (!strcmp(cmd, "list") || !strcmp(cmd, "show")) {
        rc = memory_list(r, npos > 1 ? pos[1] : NULL, &out, err, sizeof err);
    } else if (!strcmp(cmd, "search")) {
        rc = memory_recall(r, pos[1], pos[2], (int)k, &out, err, sizeof err);
    } else {
        rc = memory_forget(r, pos[1], npos > 2 ? pos[2] : NULL, err, sizeof err);
        if (!rc)
            printf("deleted %s%s%s\n", npos > 2 ? "memory " : "scope ", npos > 2 ? pos[2] : pos[1],
                   npos > 2 ? "" : " with every memory in it");
    }
    if (rc) {
        fprintf(stderr, "agentd memory: %s\n", err);
        code = rc == ERR_NOTFOUND || rc == ERR_INVAL ? CLI_USAGE : CLI_INTERNAL;
    } else if (out && json) {
        print_json(out);
    } else if (out) {
        for (size_t i = 0; i < json_object_array_length(out); i++) {
            json_object *o = json_object_array_get_idx(out, i), *v;
            if (json_object_object_get_ex(o, "scope", &v))
                printf("%-40s %d memories\n", json_object_get_string(v),
                       json_object_get_int(json_object_object_get(o, "memories")));
            else if (json_object_object_get_ex(o, "score", &v))
                printf("%s  %.4f  %s\n", json_object_get_string(json_object_object_get(o, "id")),
                       json_object_get_double(v),
                       json_object_get_string(json_object_object_get(o, "text")));
            else
                printf("%s  %s\n", json_object_get_string(json_object_object_get(o, "id")),
                       json_object_get_string(json_object_object_get(o, "text")));
        }
        if (!json_object_array_length(out))
            printf("no memories\n");
    }
    json_object_put(out);
    rag_close(r);
    return code;
}
