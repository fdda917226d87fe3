/*
 * prompt: see prompt.h. Templates are scanned left to right once; the same scanner serves
 * listing, checking and rendering, so the three never disagree about what a variable is.
 */
#include "prompt.h"

#include "buf.h"
#include "err.h"

#include <ctype.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

void prompt_hash(const char *text, char out[17])
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static int name_char(int c)
{
    return isalnum(c) || c == '_' || c == '.' || c == '-';
}

/* The next variable at or after *pos: its name in name[], *pos moved past the closing
 * braces, *start at the opening ones. 1 found, 0 none left, ERR_INVAL for a bad one. */
static int next_var(const char *t, size_t *pos, size_t *start, char name[128], char *errbuf,
                    size_t errlen)
{
    const char *p = strstr(t + *pos, "{{");
    if (!p)
        return 0;
    int line = 1;
    for (const char *q = t; q < p; q++)
        line += *q == '\n';
    const char *s = p + 2;
    while (*s == ' ')
        s++;
    const char *e = s;
    while (name_char((unsigned char)*e))
        e++;
    const char *n_end = e;
    while (*e == ' ')
        e++;
    if (strncmp(e, "}}", 2) != 0 || n_end == s || n_end - s >= 128) {
        const char *close = strstr(p, "}}");
        if (!close)
            return err_set(errbuf, errlen, ERR_INVAL, "line %d: \"{{\" without its \"}}\"", line);
        return err_set(errbuf, errlen, ERR_INVAL,
                       "line %d: \"%.*s\" is not a variable (use {{name}}: letters, digits, _ . -)",
                       line, (int)(close + 2 - p > 60 ? 60 : close + 2 - p), p);
    }
    memcpy(name, s, (size_t)(n_end - s));
    name[n_end - s] = 0;
    *start = (size_t)(p - t);
    *pos = (size_t)(e + 2 - t);
    return 1;
}

int prompt_has_vars(const char *text)
{
    return text && strstr(text, "{{") != NULL;
}

int prompt_vars_each(const char *tmpl, prompt_var_fn cb, void *ud, char *errbuf, size_t errlen)
{
    size_t pos = 0, start;
    char name[128];
    json_object *seen = json_object_new_object();
    if (!seen)
        return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
    int rc;
    while ((rc = next_var(tmpl, &pos, &start, name, errbuf, errlen)) == 1) {
        if (json_object_object_get_ex(seen, name, NULL))
            continue;
        json_object_object_add(seen, name, NULL);
        if (cb && cb(ud, name)) {
            rc = 0;
            break;
        }
    }
    json_object_put(seen);
    return rc < 0 ? rc : 0;
}

static const char *value_of(json_object *vars, json_object *defaults, const char *name)
{
    json_object *v;
    if (vars && json_object_object_get_ex(vars, name, &v) && v)
        return json_object_get_string(v);
    if (defaults && json_object_object_get_ex(defaults, name, &v) && v)
        return json_object_get_string(v);
    return NULL;
}

int prompt_render(const char *tmpl, json_object *vars, json_object *defaults, char **out,
                  char *errbuf, size_t errlen)
{
    buf_t b = {0}, missing = {0};
    size_t pos = 0, start, last = 0;
    char name[128];
    int rc, nmissing = 0;
    while ((rc = next_var(tmpl, &pos, &start, name, errbuf, errlen)) == 1) {
        const char *v = value_of(vars, defaults, name);
        buf_add(&b, tmpl + last, start - last);
        last = pos;
        if (v) {
            buf_adds(&b, v);
        } else {
            char needle[132];
            snprintf(needle, sizeof needle, "{{%s}}", name);
            if (!strstr(buf_str(&missing), needle))
                buf_addf(&missing, "%s%s", nmissing++ ? ", " : "", needle);
        }
    }
    if (rc < 0)
        goto fail;
    if (nmissing) {
        rc = err_set(errbuf, errlen, ERR_INVAL,
                     "no value for %s (give --var NAME=VALUE, a case's vars, or a default in "
                     "the agent's vars table)",
                     buf_str(&missing));
        goto fail;
    }
    buf_adds(&b, tmpl + last);
    char *s = buf_take(&b);
    if (!s) {
        rc = err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        goto fail;
    }
    buf_free(&missing);
    *out = s;
    return 0;
fail:
    buf_free(&b);
    buf_free(&missing);
    return rc;
}

/* Run git (argv[0] == "git") with its stdin and stderr on /dev/null; the first line of its
 * stdout into out. posix_spawnp rather than fork: the server may load an agent while other
 * threads run. Exit status, or -1. */
static int git_line(const char *const argv[], char *out, size_t len)
{
    int fd[2];
    if (len)
        out[0] = 0;
    if (pipe(fd) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    posix_spawn_file_actions_addclose(&fa, fd[1]);
    pid_t pid;
    int src = posix_spawnp(&pid, "git", &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (src != 0) {
        close(fd[0]);
        return -1;
    }
    size_t n = 0;
    ssize_t k;
    char tmp[256];
    while ((k = read(fd[0], tmp, sizeof tmp)) > 0)
        for (ssize_t i = 0; i < k; i++)
            if (n + 1 < len)
                out[n++] = tmp[i];
    close(fd[0]);
    if (len)
        out[n] = 0;
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = 0;
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

int prompt_git_commit(const char *path, char out[41], int *dirty)
{
    char dir[1024], file[1024], line[256];
    const char *slash = strrchr(path, '/');
    if (slash) {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) ? (int)(slash - path) : 1, path);
        snprintf(file, sizeof file, "%s", slash + 1);
    } else {
        snprintf(dir, sizeof dir, ".");
        snprintf(file, sizeof file, "%s", path);
    }
    const char *tracked[] = {"git", "-C", dir, "ls-files", "--error-unmatch", "--", file, NULL};
    if (git_line(tracked, line, sizeof line) != 0)
        return ERR_NOTFOUND;
    const char *log[] = {"git", "-C", dir, "log", "-1", "--format=%H", "--", file, NULL};
    if (git_line(log, line, sizeof line) != 0 || strlen(line) != 40)
        return ERR_NOTFOUND;
    if (dirty) {
        char st[256];
        const char *status[] = {"git", "-C", dir, "status", "--porcelain", "--", file, NULL};
        *dirty = git_line(status, st, sizeof st) == 0 && st[0] != 0;
    }
    memcpy(out, line, 41);
    return 0;
}

int prompt_var_arg(json_object *obj, const char *arg, char *errbuf, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || eq - arg >= 128)
        return err_set(errbuf, errlen, ERR_INVAL, "--var %s: expected NAME=VALUE", arg);
    for (const char *p = arg; p < eq; p++)
        if (!name_char((unsigned char)*p))
            return err_set(errbuf, errlen, ERR_INVAL,
                           "--var %s: a name is letters, digits, _ . - only", arg);
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
    json_object_object_add(obj, name, json_object_new_string(eq + 1));
    return 0;
}
