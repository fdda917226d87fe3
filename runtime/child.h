/*
 * child: start a child process for the loop to watch — the one way agentd runs programs
 * (ctx.exec, MCP stdio servers).
 *
 * The child runs in its own process group (kill(-pid, ...) stops it and whatever it
 * started), with an empty signal mask and default SIGPIPE/SIGINT/SIGTERM, no inherited
 * descriptors beyond 0-2, and exactly the environment given. Its stdin is a socket (so the
 * parent writes with send(MSG_NOSIGNAL): a child that quit is EPIPE, never SIGPIPE); stdout
 * and stderr are pipes. The parent's ends are close-on-exec and blocking: set O_NONBLOCK
 * before handing them to the loop.
 */
#ifndef AGENTD_CHILD_H
#define AGENTD_CHILD_H

#include <stddef.h>
#include <sys/types.h>

typedef struct child {
    pid_t pid;
    int in, out, err; /* the parent's ends */
} child_t;

/* Start argv[0] (searched in the parent's PATH) with envp, in cwd (NULL: the parent's).
 * 0 and *c filled, or ERR_IO / ERR_NOMEM with "cannot run 'prog': why" in errbuf. */
int child_start(char *const argv[], char *const envp[], const char *cwd, child_t *c,
                char *errbuf, size_t errlen);

#endif
