#include "err.h"

#include <stdarg.h>
#include <stdio.h>

const char *err_str(int rc)
{
    switch (rc) {
    case ERR_OK: return "ok";
    case ERR_NOMEM: return "out of memory";
    case ERR_IO: return "I/O error";
    case ERR_INVAL: return "invalid input";
    case ERR_NOTFOUND: return "not found";
    case ERR_TIMEOUT: return "timed out";
    case ERR_STATE: return "illegal state";
    case ERR_BUSY: return "busy";
    case ERR_CANCELLED: return "cancelled";
    case ERR_LUA: return "Lua error";
    case ERR_SCHEMA: return "schema validation failed";
    case ERR_HTTP: return "transport error";
    case ERR_BUDGET: return "budget exceeded";
    case ERR_PROTO: return "malformed response";
    case ERR_TOOBIG: return "too large";
    case ERR_LIMIT: return "limit reached";
    case ERR_INTERNAL: return "internal error";
    case ERR_DENIED: return "denied by policy";
    default: return "unknown error";
    }
}

int err_set(char *buf, size_t len, int rc, const char *fmt, ...)
{
    if (buf && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
    }
    return rc;
}
