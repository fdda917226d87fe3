/*
 * mcp_stdio: an MCP server as a child process, speaking newline-delimited JSON-RPC on its
 * stdin and stdout (the MCP stdio transport).
 *
 * The child gets its own process group (so a server started through npx or a shell dies
 * whole), a minimal environment (HOME, LOGNAME, PATH, SHELL, TERM, USER, LANG, plus the
 * `env` the agent declares — never the rest of agentd's environment, which holds model
 * keys), stdin on a socket (writing to a child that quit is EPIPE, never SIGPIPE) and
 * stdout/stderr on pipes, all watched by the loop; nothing here blocks while the server
 * runs. stderr is the server's log: its tail is kept for the message when the server dies.
 * The end of stdout is the end of the server: the connection is told, and the calls in
 * flight become tool errors.
 */
#include "mcp_int.h"

#include "err.h"
#include "redact.h"
#include "child.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ERR_TAIL 2048

struct mcp_stdio {
    loop_reap_t reap; /* freed from the loop's reap step */
    loop_t *lp;
    mcp_conn_t *c;
    pid_t pid;
    int reaped, status;
    int fd_in, fd_out, fd_err;
    struct event *ev_in, *ev_out, *ev_err;
    struct evbuffer *rbuf, *wbuf;
    char tail[ERR_TAIL]; /* last bytes of stderr */
    size_t tail_len;
    int closed;
};

static void close_ev(struct event **ev, int *fd)
{
    if (*ev) {
        event_free(*ev);
        *ev = NULL;
    }
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void stdio_free(void *arg)
{
    mcp_stdio_t *s = arg;
    close_ev(&s->ev_in, &s->fd_in);
    close_ev(&s->ev_out, &s->fd_out);
    close_ev(&s->ev_err, &s->fd_err);
    if (s->rbuf)
        evbuffer_free(s->rbuf);
    if (s->wbuf)
        evbuffer_free(s->wbuf);
    free(s);
}

static int try_reap(mcp_stdio_t *s)
{
    if (!s->reaped && s->pid > 0 && waitpid(s->pid, &s->status, WNOHANG) == s->pid)
        s->reaped = 1;
    return s->reaped;
}

/* The last non-empty line of the server's stderr, for error messages. */
static void last_line(const mcp_stdio_t *s, char *out, size_t len)
{
    size_t end = s->tail_len;
    while (end > 0 && (s->tail[end - 1] == '\n' || s->tail[end - 1] == '\r' ||
                       s->tail[end - 1] == ' '))
        end--;
    size_t start = end;
    while (start > 0 && s->tail[start - 1] != '\n')
        start--;
    snprintf(out, len, "%.*s", (int)(end - start), s->tail + start);
}

static void report_lost(mcp_stdio_t *s, int rc, const char *what)
{
    if (s->closed)
        return;
    char line[300], why[600];
    /* The child has usually exited by the time its stdout ends; give it a moment. */
    for (int i = 0; i < 20 && !try_reap(s); i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    last_line(s, line, sizeof line);
    /* It goes to the trace and the model: keep key-shaped strings out. */
    char clean[300];
    redact_copy(clean, sizeof clean, line, NULL);
    if (s->reaped && WIFEXITED(s->status))
        snprintf(why, sizeof why, "%s (exit code %d)", what, WEXITSTATUS(s->status));
    else if (s->reaped && WIFSIGNALED(s->status))
        snprintf(why, sizeof why, "%s (killed by signal %d)", what, WTERMSIG(s->status));
    else
        snprintf(why, sizeof why, "%s", what);
    if (clean[0]) {
        size_t n = strlen(why);
        snprintf(why + n, sizeof why - n, "; its last words: %s", clean);
    }
    mcp_conn_lost(s->c, rc, why);
}

static void read_out(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    mcp_stdio_t *s = arg;
    int n = evbuffer_read(s->rbuf, fd, 65536);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        close_ev(&s->ev_out, &s->fd_out);
        report_lost(s, ERR_HTTP, "the MCP server exited");
        return;
    }
    char *line;
    size_t len;
    while (!s->closed && (line = evbuffer_readln(s->rbuf, &len, EVBUFFER_EOL_LF))) {
        if (len && line[len - 1] == '\r')
            line[--len] = '\0';
        json_object *msg = NULL;
        char perr[200];
        if (len && schema_parse_json(line, len, &msg, perr, sizeof perr) == 0 &&
            json_object_is_type(msg, json_type_object))
            mcp_conn_message(s->c, msg);
        else if (len)
            /* Not a message: servers must keep stdout for JSON-RPC, but some print a
             * banner there. Show it rather than fail the server for it. */
            fprintf(stderr, "agentd: MCP server wrote a line that is not JSON-RPC: %.200s\n",
                    line);
        json_object_put(msg);
        free(line);
    }
    if (!s->closed && evbuffer_get_length(s->rbuf) > MCP_MAX_MESSAGE)
        report_lost(s, ERR_PROTO, "the MCP server sent a line over 16 MiB");
}

static void read_err(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    mcp_stdio_t *s = arg;
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        close_ev(&s->ev_err, &s->fd_err);
        return;
    }
    size_t k = (size_t)n;
    if (k >= ERR_TAIL) {
        memcpy(s->tail, chunk + k - ERR_TAIL, ERR_TAIL);
        s->tail_len = ERR_TAIL;
        return;
    }
    if (s->tail_len + k > ERR_TAIL) {
        size_t drop = s->tail_len + k - ERR_TAIL;
        memmove(s->tail, s->tail + drop, s->tail_len - drop);
        s->tail_len -= drop;
    }
    memcpy(s->tail + s->tail_len, chunk, k);
    s->tail_len += k;
}

static void write_in(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    mcp_stdio_t *s = arg;
    while (evbuffer_get_length(s->wbuf) > 0) {
        size_t len = evbuffer_get_contiguous_space(s->wbuf);
        const unsigned char *p = evbuffer_pullup(s->wbuf, (ev_ssize_t)len);
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            event_del(s->ev_in);
            report_lost(s, ERR_HTTP, "the MCP server stopped reading its stdin");
            return;
        }
        evbuffer_drain(s->wbuf, (size_t)n);
    }
    event_del(s->ev_in);
}

int mcp_stdio_send(mcp_stdio_t *s, json_object *msg)
{
    if (s->closed || s->fd_in < 0)
        return ERR_IO;
    size_t len;
    const char *text = mcp_msg_text(msg, &len);
    if (!text || evbuffer_add(s->wbuf, text, len) || evbuffer_add(s->wbuf, "\n", 1))
        return ERR_NOMEM;
    return event_add(s->ev_in, NULL) == 0 ? 0 : ERR_IO;
}

/* "NAME=value" strings for the child: the usual login variables, then cfg's. */
static char **child_env(const mcp_cfg_t *cfg)
{
    static const char *const pass[] = {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER",
                                       "LANG", NULL};
    size_t n = 0;
    for (size_t i = 0; cfg->env && cfg->env[i]; i++)
        n++;
    char **env = calloc(n + 8, sizeof *env);
    size_t k = 0;
    for (int i = 0; env && pass[i]; i++) {
        const char *v = getenv(pass[i]);
        int overridden = 0;
        for (size_t j = 0; cfg->env && cfg->env[j]; j++)
            overridden |= strncmp(cfg->env[j], pass[i], strlen(pass[i])) == 0 &&
                          cfg->env[j][strlen(pass[i])] == '=';
        if (!v || overridden)
            continue;
        size_t l = strlen(pass[i]) + strlen(v) + 2;
        if (!(env[k] = malloc(l)))
            goto fail;
        snprintf(env[k++], l, "%s=%s", pass[i], v);
    }
    for (size_t j = 0; env && cfg->env && cfg->env[j]; j++)
        if (!(env[k++] = mcp_expand(cfg->env[j])))
            goto fail;
    return env;
fail:
    for (size_t j = 0; j < k; j++)
        free(env[j]);
    free(env);
    return NULL;
}

static int spawn(mcp_stdio_t *s, const mcp_cfg_t *cfg, char *errbuf, size_t errlen)
{
    char **envp = child_env(cfg);
    if (!envp)
        return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
    child_t c;
    int rc = child_start(cfg->argv, envp, cfg->cwd, &c, errbuf, errlen);
    for (size_t i = 0; envp[i]; i++)
        free(envp[i]);
    free(envp);
    if (rc)
        return rc;
    s->pid = c.pid;
    s->fd_in = c.in;
    s->fd_out = c.out;
    s->fd_err = c.err;
    return 0;
}

mcp_stdio_t *mcp_stdio_open(loop_t *lp, const mcp_cfg_t *cfg, mcp_conn_t *c, char *errbuf,
                            size_t errlen)
{
    mcp_stdio_t *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->lp = lp;
    s->c = c;
    s->fd_in = s->fd_out = s->fd_err = -1;
    s->rbuf = evbuffer_new();
    s->wbuf = evbuffer_new();
    if (!s->rbuf || !s->wbuf) {
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        stdio_free(s);
        return NULL;
    }
    if (spawn(s, cfg, errbuf, errlen) != 0) {
        stdio_free(s);
        return NULL;
    }
    struct event_base *base = loop_base(lp);
    fcntl(s->fd_in, F_SETFL, O_NONBLOCK);
    fcntl(s->fd_out, F_SETFL, O_NONBLOCK);
    fcntl(s->fd_err, F_SETFL, O_NONBLOCK);
    s->ev_out = event_new(base, s->fd_out, EV_READ | EV_PERSIST, read_out, s);
    s->ev_err = event_new(base, s->fd_err, EV_READ | EV_PERSIST, read_err, s);
    s->ev_in = event_new(base, s->fd_in, EV_WRITE | EV_PERSIST, write_in, s);
    if (!s->ev_out || !s->ev_err || !s->ev_in || event_add(s->ev_out, NULL) ||
        event_add(s->ev_err, NULL)) {
        err_set(errbuf, errlen, ERR_NOMEM, "cannot watch the server process");
        mcp_stdio_close(s, 0);
        return NULL;
    }
    return s;
}

/* Wait up to ms for the child to exit. Only used at close, never while a run is driven
 * by a live server. */
static int wait_exit(mcp_stdio_t *s, long ms)
{
    for (long waited = 0; !try_reap(s) && waited < ms; waited += 5) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return s->reaped;
}

void mcp_stdio_close(mcp_stdio_t *s, long grace_ms)
{
    if (!s || s->closed)
        return;
    s->closed = 1;
    /* The MCP way to stop a stdio server: close its stdin, then SIGTERM, then SIGKILL. */
    close_ev(&s->ev_in, &s->fd_in);
    close_ev(&s->ev_out, &s->fd_out);
    close_ev(&s->ev_err, &s->fd_err);
    if (s->pid > 0) {
        if (!wait_exit(s, grace_ms)) {
            kill(-s->pid, SIGTERM);
            if (!wait_exit(s, grace_ms))
                kill(-s->pid, SIGKILL);
        }
        /* The whole group: a wrapper (npx, sh) may have left its child behind. */
        kill(-s->pid, SIGKILL);
        while (!s->reaped && waitpid(s->pid, &s->status, 0) < 0 && errno == EINTR)
            ;
        s->reaped = 1;
    }
    loop_reap(s->lp, &s->reap, stdio_free, s);
}
