/*
 * ctx_exec: the ctx.exec door — a subprocess on the loop.
 *
 *   local r, err = ctx.exec{ argv = {"wc", "-l"}, stdin = "a\nb\n", timeout = 5,
 *                            max_output = 65536 }
 *   -- r = { code = 0, signal = nil, stdout = "2\n", stderr = "", timed_out = false,
 *   --       truncated = false, ms = 3.1 }
 *
 * argv[0] must be in the agent's exec_allow list (matched exactly as written). The child
 * gets its own process group, a minimal environment (PATH, LANG: never the parent's
 * secrets), stdout/stderr on non-blocking pipes and stdin on a socket (so writing to a child
 * that quit is EPIPE, never SIGPIPE) watched by libevent, and no other
 * inherited descriptors. On timeout or when the output cap is passed the whole group is
 * killed. Exit is noticed by polling waitpid(WNOHANG) once both pipes are closed, so no
 * process-wide SIGCHLD handler is needed.
 */
#include "ctx_int.h"

#include "buf.h"

#include "err.h"
#include "child.h"
#include "jx.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>


typedef struct xproc {
    ctx_task_t *t;
    pid_t pid;
    int fd_in, fd_out, fd_err;
    struct event *ev_in, *ev_out, *ev_err;
    loop_timer_t *deadline, *poll;
    char *in;
    size_t in_len, in_off;
    buf_t out, err; /* at most cap bytes each: the rest is cut (truncated) */
    size_t cap;
    int timed_out, truncated, reaped, status;
    uint64_t start_ns;
    unsigned poll_ms;
} xproc_t;

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

static void xproc_free(xproc_t *x)
{
    close_ev(&x->ev_in, &x->fd_in);
    close_ev(&x->ev_out, &x->fd_out);
    close_ev(&x->ev_err, &x->fd_err);
    loop_timer_cancel(x->deadline);
    loop_timer_cancel(x->poll);
    free(x->in);
    buf_free(&x->out);
    buf_free(&x->err);
    free(x);
}

static void xproc_cancel(void *arg)
{
    xproc_t *x = arg;
    if (!x->reaped) {
        kill(-x->pid, SIGKILL);
        /* SIGKILL cannot be ignored; the wait is for the kernel to tear the process down. */
        while (waitpid(x->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    xproc_free(x);
}

static void finish(xproc_t *x)
{
    ctx_task_t *t = x->t;
    json_object *o = json_object_new_object();
    if (WIFEXITED(x->status))
        json_object_object_add(o, "code", json_object_new_int(WEXITSTATUS(x->status)));
    else
        json_object_object_add(o, "code", NULL);
    if (WIFSIGNALED(x->status))
        json_object_object_add(o, "signal", json_object_new_int(WTERMSIG(x->status)));
    json_object_object_add(o, "stdout",
                           json_object_new_string_len(buf_str(&x->out), (int)x->out.len));
    json_object_object_add(o, "stderr",
                           json_object_new_string_len(buf_str(&x->err), (int)x->err.len));
    json_object_object_add(o, "timed_out", json_object_new_boolean(x->timed_out));
    json_object_object_add(o, "truncated", json_object_new_boolean(x->truncated));
    json_object_object_add(o, "ms",
                           jx_new_num((double)(loop_mono_ns() - x->start_ns) / 1e6));
    xproc_free(x);
    ctx_door_complete(t, CTX_RES_VALUE, o, NULL);
}

static void poll_cb(void *arg);

static void try_reap(xproc_t *x)
{
    if (x->fd_out >= 0 || x->fd_err >= 0)
        return;
    pid_t r = waitpid(x->pid, &x->status, WNOHANG);
    if (r == x->pid) {
        x->reaped = 1;
        finish(x);
        return;
    }
    /* Pipes closed but the child lingers: poll with a growing interval. */
    if (!x->poll) {
        x->poll_ms = x->poll_ms ? (x->poll_ms * 2 > 100 ? 100 : x->poll_ms * 2) : 1;
        if (loop_after(ctx_task_env(x->t)->lp, x->poll_ms, poll_cb, x, &x->poll) != 0) {
            /* No timer to poll with: end the child now rather than never. Its pipes are
             * closed, so it is exiting or detached; waitpid after SIGKILL returns at once. */
            kill(-x->pid, SIGKILL);
            pid_t w;
            while ((w = waitpid(x->pid, &x->status, 0)) < 0 && errno == EINTR)
                ;
            x->reaped = w == x->pid;
            finish(x);
        }
    }
}

static void poll_cb(void *arg)
{
    xproc_t *x = arg;
    x->poll = NULL;
    try_reap(x);
}

static void kill_group(xproc_t *x)
{
    kill(-x->pid, SIGKILL);
}

static void deadline_cb(void *arg)
{
    xproc_t *x = arg;
    x->deadline = NULL;
    x->timed_out = 1;
    kill_group(x);
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    xproc_t *x = arg;
    int is_out = fd == x->fd_out;
    buf_t *b = is_out ? &x->out : &x->err;
    char chunk[16384];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (is_out)
            close_ev(&x->ev_out, &x->fd_out);
        else
            close_ev(&x->ev_err, &x->fd_err);
        try_reap(x);
        return;
    }
    size_t keep = (size_t)n;
    if (b->len + keep > x->cap) {
        keep = x->cap - b->len;
        if (!x->truncated) {
            x->truncated = 1;
            kill_group(x);
        }
    }
    if (keep && buf_add(b, chunk, keep) != 0) {
        x->truncated = 1;
        kill_group(x);
    }
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    xproc_t *x = arg;
    while (x->in_off < x->in_len) {
        /* stdin is a socket so MSG_NOSIGNAL applies: a child that exits without reading
         * gives EPIPE here instead of a process-killing SIGPIPE. */
        ssize_t n = send(fd, x->in + x->in_off, x->in_len - x->in_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0)
            break; /* EPIPE: the child stopped reading; that is its business */
        x->in_off += (size_t)n;
    }
    close_ev(&x->ev_in, &x->fd_in);
}

static int spawn(xproc_t *x, char **argv, char *errbuf, size_t errlen)
{
    char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", NULL};
    child_t c;
    int rc = child_start(argv, envp, NULL, &c, errbuf, errlen);
    if (rc)
        return rc;
    x->pid = c.pid;
    x->fd_in = c.in;
    x->fd_out = c.out;
    x->fd_err = c.err;
    return 0;
}

static int door_exec(lua_State *L)
{
    ctx_task_t *t = ctx_door_enter(L, "exec");
    const ctx_env_t *env = ctx_task_env(t);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "argv");       /* 2 */
    lua_getfield(L, 1, "stdin");      /* 3 */
    lua_getfield(L, 1, "timeout");    /* 4 */
    lua_getfield(L, 1, "max_output"); /* 5 */
    if (!lua_istable(L, 2))
        return luaL_error(L, "ctx.exec: argv: must be a list of strings");
    lua_Integer argc = (lua_Integer)lua_rawlen(L, 2);
    if (argc < 1 || argc > 256)
        return luaL_error(L, "ctx.exec: argv: needs 1 to 256 strings");
    char **argv = lua_newuserdatauv(L, sizeof(char *) * (size_t)(argc + 1), 0); /* 6 */
    for (lua_Integer i = 1; i <= argc; i++) {
        if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
            return luaL_error(L, "ctx.exec: argv[%d]: must be a string", (int)i);
        argv[i - 1] = (char *)lua_tostring(L, -1);
        lua_pop(L, 1); /* still referenced by the argv table */
    }
    argv[argc] = NULL;
    if (!env->policy || !ctx_allowed(env->policy->exec_allow, argv[0]))
        return ctx_door_deny(L, "ctx.exec: '%s' is not in this agent's exec_allow list", argv[0]);
    size_t in_len = 0;
    const char *in = lua_isnil(L, 3) ? NULL : luaL_checklstring(L, 3, &in_len);
    double timeout = luaL_optnumber(L, 4, ctx_task_time_left(t, 30));
    lua_Integer cap = luaL_optinteger(L, 5, 1 << 20);
    if (timeout <= 0 || cap <= 0)
        return luaL_error(L, "ctx.exec: timeout and max_output must be positive");
    xproc_t *x = calloc(1, sizeof *x);
    if (!x)
        return luaL_error(L, "ctx.exec: out of memory");
    x->t = t;
    x->fd_in = x->fd_out = x->fd_err = -1;
    x->cap = (size_t)cap;
    x->start_ns = loop_mono_ns();
    if (in_len && !(x->in = malloc(in_len))) {
        xproc_free(x);
        return luaL_error(L, "ctx.exec: out of memory");
    }
    if (in_len)
        memcpy(x->in, in, in_len);
    x->in_len = in_len;
    char msg[300];
    if (spawn(x, argv, msg, sizeof msg) != 0) {
        xproc_free(x);
        lua_pushnil(L);
        lua_pushfstring(L, "ctx.exec: %s", msg);
        return 2;
    }
    struct event_base *base = loop_base(env->lp);
    fcntl(x->fd_in, F_SETFL, O_NONBLOCK);
    fcntl(x->fd_out, F_SETFL, O_NONBLOCK);
    fcntl(x->fd_err, F_SETFL, O_NONBLOCK);
    x->ev_out = event_new(base, x->fd_out, EV_READ | EV_PERSIST, read_cb, x);
    x->ev_err = event_new(base, x->fd_err, EV_READ | EV_PERSIST, read_cb, x);
    if (x->in_len)
        x->ev_in = event_new(base, x->fd_in, EV_WRITE | EV_PERSIST, write_cb, x);
    else
        close_ev(&x->ev_in, &x->fd_in);
    if (!x->ev_out || !x->ev_err || (x->in_len && !x->ev_in) || event_add(x->ev_out, NULL) ||
        event_add(x->ev_err, NULL) || (x->ev_in && event_add(x->ev_in, NULL)) ||
        loop_after(env->lp, (uint64_t)(timeout * 1000), deadline_cb, x, &x->deadline)) {
        xproc_cancel(x);
        return luaL_error(L, "ctx.exec: cannot watch the child process");
    }
    ctx_door_wait(t, xproc_cancel, x);
    return ctx_door_yield(L, t);
}

void ctx_exec_push(lua_State *L, ctx_task_t *t)
{
    lua_pushlightuserdata(L, t);
    lua_pushcclosure(L, door_exec, 1);
}
