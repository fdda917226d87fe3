/*
 * child: see child.h. posix_spawnp, so nothing runs between fork and exec in the parent's
 * address space (safe with the loop's threads and a large heap).
 */
#include "child.h"

#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int child_start(char *const argv[], char *const envp[], const char *cwd, child_t *c,
                char *errbuf, size_t errlen)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    int rc = ERR_IO, fa_ok = 0, at_ok = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pin) || pipe2(pout, O_CLOEXEC) ||
        pipe2(perr, O_CLOEXEC)) {
        err_set(errbuf, errlen, ERR_IO, "pipe: %s", strerror(errno));
        goto done;
    }
    if (posix_spawn_file_actions_init(&fa) || (fa_ok = 1, 0) || posix_spawnattr_init(&at) ||
        (at_ok = 1, 0)) {
        rc = err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        goto done;
    }
    posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (cwd)
        posix_spawn_file_actions_addchdir_np(&fa, cwd);
    posix_spawnattr_setpgroup(&at, 0);
    sigset_t none, dfl;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGTERM);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    int e = posix_spawnp(&c->pid, argv[0], &fa, &at, argv, envp);
    if (e) {
        if (cwd)
            err_set(errbuf, errlen, ERR_IO, "cannot run '%s' (in %s): %s", argv[0], cwd,
                    strerror(e));
        else
            err_set(errbuf, errlen, ERR_IO, "cannot run '%s': %s", argv[0], strerror(e));
        goto done;
    }
    c->in = pin[1];
    c->out = pout[0];
    c->err = perr[0];
    pin[1] = pout[0] = perr[0] = -1;
    rc = 0;
done:
    for (int i = 0; i < 2; i++) {
        if (pin[i] >= 0)
            close(pin[i]);
        if (pout[i] >= 0)
            close(pout[i]);
        if (perr[i] >= 0)
            close(perr[i]);
    }
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (at_ok)
        posix_spawnattr_destroy(&at);
    return rc;
}
