/*
 * tools_cli: `agentd tools list|check|call` and `agentd new tool NAME` — the tool author's
 * loop: write a file, check it, call it by hand, then give it to an agent.
 */
#include "tools_cli.h"

#include "agent.h"
#include "cli.h"
#include "err.h"
#include "http.h"
#include "loop.h"
#include "store.h"
#include "tools.h"
#include "jx.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const usage_text =
    "usage: agentd tools list [--json] [--tools DIR]\n"
    "       agentd tools check [FILE...] [--tools DIR]\n"
    "       agentd tools call NAME ['{json}'|-] [--tools DIR] [--db PATH] [--agent FILE]\n"
    "                         [--allow-host H] [--allow-exec PROG] [--allow-secret VAR]\n"
    "       agentd new tool NAME [--tools DIR]\n";

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int load_registry(tools_t *t, const char *dir)
{
    char err[1024];
    if (!is_dir(dir)) {
        fprintf(stderr, "agentd: %s: no tools folder here (use --tools DIR)\n", dir);
        return CLI_USAGE;
    }
    if (tools_load_dir(t, dir, err, sizeof err) != 0) {
        fprintf(stderr, "agentd: %s\n", err);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* ---- list ---- */

static json_object *describe_full(const tool_t *tl)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(tool_name(tl)));
    json_object_object_add(o, "description", json_object_new_string(tool_description(tl)));
    json_object_object_add(o, "parameters", json_object_get(tool_parameters(tl)));
    json_object_object_add(o, "timeout", jx_new_num(tool_timeout_ms(tl) / 1000.0));
    json_object_object_add(o, "retries", json_object_new_int(tool_retries(tl)));
    json_object_object_add(o, "idempotent", json_object_new_boolean(tool_idempotent(tl)));
    json_object_object_add(o, "approval", json_object_new_boolean(tool_approval(tl)));
    json_object_object_add(o, "path", json_object_new_string(tool_path(tl)));
    return o;
}

static int jstr_eq(json_object *v, const char *s)
{
    return json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), s) == 0;
}

static int cmd_list(tools_t *t, int json)
{
    if (json) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < tools_count(t); i++)
            json_object_array_add(a, describe_full(tools_at(t, i)));
        printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_SPACED |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(a);
        return CLI_OK;
    }
    printf("%-16s %-8s %-40s %s\n", "NAME", "TIMEOUT", "POLICY", "DESCRIPTION");
    for (size_t i = 0; i < tools_count(t); i++) {
        const tool_t *tl = tools_at(t, i);
        char pol[64];
        snprintf(pol, sizeof pol, "%s%s%s", tool_idempotent(tl) ? "idempotent" : "side-effects",
                 tool_retries(tl) ? ", retries" : "", tool_approval(tl) ? ", approval" : "");
        const char *d = tool_description(tl);
        int dl = (int)strcspn(d, ".\n");
        printf("%-16s %6.1fs  %-40s %.*s\n", tool_name(tl), tool_timeout_ms(tl) / 1000.0, pol,
               dl > 70 ? 70 : dl, d);
        json_object *props = NULL, *req = NULL;
        json_object_object_get_ex(tool_parameters(tl), "required", &req);
        if (json_object_object_get_ex(tool_parameters(tl), "properties", &props)) {
            json_object_object_foreach(props, k, v)
            {
                int required = 0;
                for (size_t j = 0; json_object_is_type(req, json_type_array) &&
                                   j < json_object_array_length(req);
                     j++)
                    required |= jstr_eq(json_object_array_get_idx(req, j), k);
                const char *ty = jx_str(v, "type"), *fmt = jx_str(v, "format");
                printf("%-16s   %s %s: %s%s%s%s%s\n", "", required ? "*" : "-", k, ty ? ty : "any",
                       fmt ? " (" : "", fmt ? fmt : "", fmt ? ")" : "",
                       required ? "  required" : "");
            }
        }
    }
    return CLI_OK;
}

/* ---- check ---- */

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_paths(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Sorted paths of the *.lua files in dir; -1 if it cannot be read, -2 out of memory. */
static int scan_dir(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char **v = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || e->d_name[0] == '.' || strcmp(e->d_name + l - 4, ".lua") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv)
                goto nomem;
            v = nv;
        }
        size_t pl = strlen(dir) + l + 2;
        if (!(v[n] = malloc(pl)))
            goto nomem;
        snprintf(v[n], pl, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(v, (size_t)n, sizeof *v, str_cmp);
    *out = v;
    return n;
nomem:
    closedir(d);
    free_paths(v, n);
    return -2;
}

/* "FAIL path" and one indented line per problem ("path: field: what" lines from the
 * loader, path dropped); a single problem stays on the FAIL line. */
static void print_problems(const char *path, const char *err)
{
    size_t pl = strlen(path);
    if (!strchr(err, '\n')) {
        printf("FAIL %s\n", err);
        return;
    }
    int n = 1;
    for (const char *q = err; (q = strchr(q, '\n')); q++)
        n++;
    printf("FAIL %s: %d problems\n", path, n);
    for (const char *line = err; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > pl + 2 && strncmp(line, path, pl) == 0 && line[pl] == ':' && line[pl + 1] == ' ')
            printf("       %.*s\n", (int)(len - pl - 2), line + pl + 2);
        else
            printf("       %.*s\n", (int)len, line);
        line += len + (end != NULL);
    }
}

static int cmd_check(int nfiles, char **files, const char *dir)
{
    int bad = 0, good = 0;
    char **owned = NULL;
    if (nfiles == 0) {
        nfiles = scan_dir(dir, &owned);
        if (nfiles == -2) {
            fprintf(stderr, "agentd: %s: out of memory listing the folder\n", dir);
            return CLI_INTERNAL;
        }
        if (nfiles < 0) {
            fprintf(stderr, "agentd: %s: no tools folder here (use --tools DIR)\n", dir);
            return CLI_USAGE;
        }
        files = owned;
    }
    loop_t *lp = loop_new();
    tools_t *all = lp ? tools_new(lp, NULL, NULL) : NULL;
    if (!all) {
        fprintf(stderr, "agentd: out of memory\n");
        loop_free(lp);
        free_paths(owned, owned ? nfiles : 0);
        return CLI_INTERNAL;
    }
    /* Each file alone in a fresh registry, so one bad file does not hide the others. */
    for (int i = 0; i < nfiles; i++) {
        char err[1024];
        tools_t *one = tools_new(lp, NULL, NULL);
        int rc = one ? tools_load_file(one, files[i], err, sizeof err) : ERR_NOMEM;
        if (rc == ERR_NOMEM && !one)
            snprintf(err, sizeof err, "%s: out of memory", files[i]);
        const tool_t *dup = rc == 0 ? tools_get(all, tool_name(tools_at(one, 0))) : NULL;
        if (dup) {
            snprintf(err, sizeof err, "%s: name: \"%s\" is already defined by %s", files[i],
                     tool_name(dup), tool_path(dup));
            rc = ERR_INVAL;
        }
        if (rc == 0) {
            printf("ok   %s (%s)\n", files[i], tool_name(tools_at(one, 0)));
            tools_load_file(all, files[i], err, sizeof err);
            good++;
        } else {
            print_problems(files[i], err);
            bad++;
        }
        tools_free(one);
    }
    free_paths(owned, owned ? nfiles : 0);
    tools_free(all);
    loop_free(lp);
    printf("%d ok, %d failed\n", good, bad);
    return bad ? CLI_FAILED : CLI_OK;
}

/* ---- call ---- */

typedef struct call_out {
    int done;
    char status[16];
    char *error;
    char *result;
    double ms;
    int attempts;
    loop_t *lp;
} call_out_t;

static void call_done(void *ud, const tools_result_t *r)
{
    call_out_t *o = ud;
    o->done = 1;
    snprintf(o->status, sizeof o->status, "%s", tcall_state_name(r->status));
    o->error = r->error ? strdup(r->error) : NULL;
    o->result = r->result ? strdup(json_object_to_json_string_ext(
                                r->result, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                               JSON_C_TO_STRING_NOSLASHESCAPE))
                          : strdup("null");
    o->ms = r->ms;
    o->attempts = r->attempts;
    loop_stop(o->lp);
}

static void call_log(void *ud, const char *level, const char *msg)
{
    (void)ud;
    fprintf(stderr, "[%s] %s\n", level, msg);
}

static void on_sigint(void *arg)
{
    loop_stop(arg);
}

static char *read_all(FILE *f)
{
    size_t n = 0, cap = 4096;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
        if (n + 1 == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
        }
    }
    if (b)
        b[n] = '\0';
    return b;
}

static json_object *append(json_object *arr, const char *s)
{
    if (!arr)
        arr = json_object_new_array();
    json_object_array_add(arr, json_object_new_string(s));
    return arr;
}

/* New array with the strings of a then b (either may be NULL); NULL if both are. */
static json_object *merge(json_object *a, json_object *b)
{
    if (!a && !b)
        return NULL;
    json_object *m = json_object_new_array();
    for (size_t i = 0; a && i < json_object_array_length(a); i++)
        json_object_array_add(m, json_object_get(json_object_array_get_idx(a, i)));
    for (size_t i = 0; b && i < json_object_array_length(b); i++)
        json_object_array_add(m, json_object_get(json_object_array_get_idx(b, i)));
    return m;
}

typedef struct call_opts {
    const char *name, *args, *dir, *db, *agent;
    json_object *hosts, *progs, *secrets;
} call_opts_t;

static int cmd_call(call_opts_t *co)
{
    int code = CLI_INTERNAL;
    char err[1024];
    char *stdin_args = NULL;
    agent_t *ag = NULL;
    store_t *st = NULL;
    http_t *h = NULL;
    tools_t *t = NULL;
    call_out_t out = {0};
    json_object *allow_h = NULL, *allow_e = NULL, *allow_s = NULL;
    loop_t *lp = loop_new();
    if (!lp)
        goto done;
    out.lp = lp;
    if (co->args && strcmp(co->args, "-") == 0) {
        if (!(stdin_args = read_all(stdin)))
            goto done;
        co->args = stdin_args;
    }
    tools_policy_t pol = {.agent = "cli"};
    if (co->agent) {
        if (!(ag = agent_load(co->agent, err, sizeof err))) {
            fprintf(stderr, "agentd: %s\n", err);
            code = CLI_INTERNAL;
            goto done;
        }
        pol.agent = ag->name;
        pol.http_allow = ag->http_allow;
        pol.exec_allow = ag->exec_allow;
        pol.secrets_allow = ag->secrets_allow;
    }
    /* Flags add to the agent's allow-lists. */
    pol.http_allow = allow_h = merge(pol.http_allow, co->hosts);
    pol.exec_allow = allow_e = merge(pol.exec_allow, co->progs);
    pol.secrets_allow = allow_s = merge(pol.secrets_allow, co->secrets);
    /* ctx.kv needs a database; open one only when asked for or already present, so a
     * quick `tools call` does not leave an agentd.db behind. */
    const char *db = cli_db_path(co->db);
    if (co->db || getenv("AGENTD_DB") || access(db, F_OK) == 0) {
        if (!(st = store_open(db, STORE_DURABLE_FULL, err, sizeof err))) {
            fprintf(stderr, "agentd: %s\n", err);
            code = CLI_USAGE;
            goto done;
        }
    }
    h = http_new(lp);
    t = tools_new(lp, h, st);
    if (!t)
        goto done;
    if ((code = load_registry(t, co->dir)) != CLI_OK)
        goto done;
    if (!tools_get(t, co->name)) {
        fprintf(stderr, "agentd: no tool named \"%s\" in %s (see agentd tools list)\n", co->name,
                co->dir);
        code = CLI_USAGE;
        goto done;
    }
    tools_call_info_t info = {
        .run_id = "cli",
        .call_id = "call_1",
        .idempotency_key = NULL,
        .policy = &pol,
        .on_log = call_log,
    };
    if (loop_on_signal(lp, SIGINT, on_sigint, lp))
        fprintf(stderr, "agentd: warning: cannot install the Ctrl-C handler\n");
    tools_call_t *c = NULL;
    if (tools_call(t, co->name, co->args ? co->args : "{}", &info, call_done, &out, &c) != 0)
        goto done;
    loop_run(lp);
    if (!out.done) {
        tools_call_cancel(c);
        fprintf(stderr, "agentd: interrupted\n");
        code = CLI_FAILED;
        goto done;
    }
    if (strcmp(out.status, "ok") == 0) {
        printf("%s\n", out.result);
        code = CLI_OK;
    } else {
        fprintf(stderr, "%s: %s\n", out.status, out.error ? out.error : "");
        code = CLI_FAILED;
    }
    fprintf(stderr, "%s · %s · %.1f ms · %d attempt%s\n", co->name, out.status, out.ms,
            out.attempts, out.attempts == 1 ? "" : "s");
done:
    if (code == CLI_INTERNAL)
        fprintf(stderr, "agentd: out of memory\n");
    tools_free(t);
    http_free(h);
    store_close(st);
    /* Let queued frees (reaped calls and tasks) run before the loop goes. */
    loop_free(lp);
    agent_free(ag);
    json_object_put(allow_h);
    json_object_put(allow_e);
    json_object_put(allow_s);
    free(stdin_args);
    free(out.error);
    free(out.result);
    return code;
}

/* ---- new tool ---- */

static const char *const skeleton =
    "-- %s: <one line: what this tool does and when the model should use it>.\n"
    "--\n"
    "-- A tool is a table: the model reads name, description and parameters (a JSON Schema)\n"
    "-- to decide when and how to call it; agentd validates the arguments against the schema\n"
    "-- before run() is called. Reference: docs/tools.md.  Try it:\n"
    "--   agentd tools check tools/%s.lua\n"
    "--   agentd tools call %s '{\"text\": \"hello\"}'\n"
    "return {\n"
    "  name = \"%s\",\n"
    "  description = \"Describe what the tool returns and when to use it, in one or two \"\n"
    "    .. \"sentences the model can act on.\",\n"
    "  parameters = {\n"
    "    type = \"object\",\n"
    "    properties = {\n"
    "      text = { type = \"string\", description = \"What to work on\", maxLength = 1000 },\n"
    "    },\n"
    "    required = { \"text\" },\n"
    "    additionalProperties = false,\n"
    "  },\n"
    "\n"
    "  -- Policy\n"
    "  timeout = 10,         -- seconds for one attempt; the call is cancelled after that\n"
    "  idempotent = true,    -- safe to run twice with the same arguments?\n"
    "  retries = 0,          -- extra attempts after an error or timeout (idempotent only)\n"
    "  approval = false,     -- true: a human must approve each call (agentd approve)\n"
    "\n"
    "  -- args: the validated arguments. ctx: the tool's only door to the world, e.g.\n"
    "  -- ctx.http{url=...}, ctx.exec{argv={...}}, ctx.kv.get/put, ctx.data(\"file.json\"),\n"
    "  -- ctx.sleep(s), ctx.log(\"info\", fmt, ...), ctx.secret(\"ENV_NAME\"), ctx.json.\n"
    "  -- Return a value that can become JSON; raise error(\"...\") to report a failure\n"
    "  -- the model will see.\n"
    "  run = function(args, ctx)\n"
    "    ctx.log(\"info\", \"working on %%d bytes\", #args.text)\n"
    "    return { text = args.text, length = #args.text }\n"
    "  end,\n"
    "}\n";

int tools_new_main(int argc, char **argv)
{
    const char *dir = "tools", *name = NULL;
    for (int i = 1; i < argc; i++) {
        int r = cli_opt(argc, argv, &i, "--tools", &dir);
        if (r < 0)
            return CLI_USAGE;
        if (r)
            continue;
        if (strcmp(argv[i], "tool") == 0 && !name && i == 1)
            continue;
        if (argv[i][0] == '-' || name) {
            fprintf(stderr, "agentd: new tool: unexpected \"%s\"\n%s", argv[i], usage_text);
            return CLI_USAGE;
        }
        name = argv[i];
    }
    if (argc < 2 || strcmp(argv[1], "tool") != 0 || !name) {
        fprintf(stderr, "%s", usage_text);
        return CLI_USAGE;
    }
    size_t nl = strlen(name);
    int ok = nl > 0 && nl <= 64;
    for (const char *p = name; *p; p++)
        ok &= (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-';
    if (!ok) {
        fprintf(stderr, "agentd: new tool: NAME must be 1-64 of [A-Za-z0-9_-], got \"%s\"\n",
                name);
        return CLI_USAGE;
    }
    if (!is_dir(dir) && mkdir(dir, 0755) != 0) {
        fprintf(stderr, "agentd: %s: cannot create the folder: %s\n", dir, strerror(errno));
        return CLI_USAGE;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.lua", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        fprintf(stderr, "agentd: %s: %s\n", path,
                errno == EEXIST ? "already exists; pick another name" : strerror(errno));
        return CLI_USAGE;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return CLI_INTERNAL;
    }
    fprintf(f, skeleton, name, name, name, name);
    if (fclose(f) != 0) {
        fprintf(stderr, "agentd: %s: write failed\n", path);
        return CLI_INTERNAL;
    }
    printf("wrote %s\nnext: edit it, then  agentd tools check %s  and  agentd tools call %s "
           "'{\"text\": \"hello\"}' --tools %s\n",
           path, path, name, dir);
    return CLI_OK;
}

/* ---- entry ---- */

int tools_cli_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(argc < 2 ? stderr : stdout, "%s", usage_text);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *sub = argv[1];
    call_opts_t co = {.dir = "tools"};
    int json = 0, npos = 0, code = CLI_USAGE;
    char **pos = calloc((size_t)argc, sizeof *pos);
    if (!pos) {
        fprintf(stderr, "agentd tools: out of memory\n");
        return CLI_INTERNAL;
    }
    for (int i = 2; i < argc; i++) {
        const char *v;
        int r;
        if ((r = cli_opt(argc, argv, &i, "--tools", &co.dir)) ||
            (r = cli_opt(argc, argv, &i, "--db", &co.db)) ||
            (r = cli_opt(argc, argv, &i, "--agent", &co.agent))) {
            if (r < 0)
                goto done;
        } else if ((r = cli_opt(argc, argv, &i, "--allow-host", &v)) > 0) {
            co.hosts = append(co.hosts, v);
        } else if ((r = cli_opt(argc, argv, &i, "--allow-exec", &v)) > 0) {
            co.progs = append(co.progs, v);
        } else if ((r = cli_opt(argc, argv, &i, "--allow-secret", &v)) > 0) {
            co.secrets = append(co.secrets, v);
        } else if (r < 0) {
            goto done;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "agentd: tools %s: unknown option %s\n%s", sub, argv[i], usage_text);
            goto done;
        } else {
            pos[npos++] = argv[i];
        }
    }
    if (strcmp(sub, "list") == 0 && npos == 0) {
        loop_t *lp = loop_new();
        tools_t *t = lp ? tools_new(lp, NULL, NULL) : NULL;
        code = !t ? CLI_INTERNAL : load_registry(t, co.dir);
        if (code == CLI_OK)
            code = cmd_list(t, json);
        tools_free(t);
        loop_free(lp);
    } else if (strcmp(sub, "check") == 0) {
        code = cmd_check(npos, pos, co.dir);
    } else if (strcmp(sub, "call") == 0 && (npos == 1 || npos == 2)) {
        co.name = pos[0];
        co.args = npos == 2 ? pos[1] : NULL;
        code = cmd_call(&co);
    } else {
        fprintf(stderr, "agentd: tools: bad command line\n%s", usage_text);
    }
done:
    json_object_put(co.hosts);
    json_object_put(co.progs);
    json_object_put(co.secrets);
    free(pos);
    return code;
}
