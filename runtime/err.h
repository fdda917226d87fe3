/*
 * err: the project's error codes and their human text.
 *
 * Every fallible function returns int: 0 on success, one of these negative codes on
 * failure. Library codes (SQLite, libcurl, Lua) are translated at the module boundary;
 * the library's own message travels separately in an error buffer the caller owns.
 */
#ifndef AGENTD_ERR_H
#define AGENTD_ERR_H

#include <stddef.h>

enum {
    ERR_OK = 0,
    ERR_NOMEM = -1,     /* allocation failed */
    ERR_IO = -2,        /* file or database I/O failed */
    ERR_INVAL = -3,     /* bad input: argument, file, JSON */
    ERR_NOTFOUND = -4,  /* named thing does not exist */
    ERR_TIMEOUT = -5,   /* deadline passed */
    ERR_STATE = -6,     /* illegal state transition or operation in this state */
    ERR_BUSY = -7,      /* resource held by someone else (lease, lock) */
    ERR_CANCELLED = -8, /* operation cancelled before completion */
    ERR_LUA = -9,       /* Lua code raised an error */
    ERR_SCHEMA = -10,   /* JSON Schema invalid, or instance failed validation */
    ERR_HTTP = -11,     /* transport failure: connect, reset, TLS */
    ERR_BUDGET = -12,   /* a run budget would be exceeded */
    ERR_PROTO = -13,    /* peer sent something malformed (bad JSON, truncated body) */
    ERR_TOOBIG = -14,   /* response or value larger than the cap */
    ERR_LIMIT = -15,    /* a configured limit was reached (steps, calls, memory, CPU) */
    ERR_INTERNAL = -16, /* a bug: invariant broken */
    ERR_DENIED = -17,   /* refused by policy (http_allow, exec_allow, secrets): never retried */
};

/* On a function whose failure the caller must handle (curl's WARN_UNUSED_RESULT): ignoring
 * the result is a -Werror build failure. A cast to void does not silence it in gcc: handle
 * the error or restructure so the function cannot fail. */
#if defined(__GNUC__)
#define AGENTD_WUR __attribute__((warn_unused_result))
#else
#define AGENTD_WUR
#endif

/* Static text for a code ("out of memory", ...); never NULL. */
const char *err_str(int rc);

/* Format into buf (always NUL-terminated, truncated if needed); returns rc unchanged so
 * callers can write `return err_set(buf, len, ERR_INVAL, "%s: ...", path);`. */
int err_set(char *buf, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
