/*
 * redact: keep secrets out of everything agentd writes (errors, traces, the DB). Model
 * providers sometimes echo the key back ("Incorrect API key provided: sk-abc..."), and
 * libcurl's messages can carry headers, so every string that came from a provider passes
 * through redact_copy() before anyone stores or prints it.
 */
#ifndef AGENTD_REDACT_H
#define AGENTD_REDACT_H

#include <stddef.h>

/* Copy src into dst (always NUL-terminated, truncated to dstlen), replacing: every
 * occurrence of secret (when not NULL and at least 4 bytes), "Bearer <token>",
 * "x-api-key: <value>", and key-shaped tokens ("sk-..." of 8+ characters) with
 * "[REDACTED]". Control characters become spaces so the result is one line.
 * Returns the length written. */
size_t redact_copy(char *dst, size_t dstlen, const char *src, const char *secret);

#endif
