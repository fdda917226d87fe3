/*
 * text: what makes bytes from outside acceptable as text — valid UTF-8 and no NUL byte.
 *
 * Every string agentd keeps travels through JSON (the database, traces, requests to models)
 * and through C strings: invalid UTF-8 makes a request body or a trace that is not JSON, and
 * a NUL byte cuts a C string short without a word. So text from outside (run inputs, batch
 * lines, agent and tool files, tool results, model replies, JSON parsed by the runtime) is
 * checked at the door with these and refused with one line naming where it came from.
 * Pure functions, no state.
 */
#ifndef AGENTD_TEXT_H
#define AGENTD_TEXT_H

#include "err.h"

#include <stddef.h>

/* Length (1-4) of the UTF-8 sequence at s (at most n bytes, n > 0), or 0 when it is not a
 * valid one: truncated, overlong, a surrogate or past U+10FFFF. */
size_t text_utf8_len(const unsigned char *s, size_t n);
/* Byte offset of the first invalid UTF-8 sequence in s[0..n), or -1 when valid. */
long text_utf8_bad(const char *s, size_t n);
/* 0 when s[0..n) is valid UTF-8 without a NUL byte; else ERR_INVAL with one line in errbuf:
 * "SOURCE: not valid UTF-8 (byte N); ..." or "SOURCE: contains a NUL byte (byte N)". */
int text_check(const char *s, size_t n, const char *source, char *errbuf,
               size_t errlen) AGENTD_WUR;

/* Make s (NUL-terminated) safe to show and store as text, in place: each byte of an
 * invalid UTF-8 sequence (a peer's raw bytes, a sequence cut by truncation) becomes '?',
 * each control character but newline and tab a space (no terminal escapes). For messages
 * that quote what came from outside: errors, log lines. */
void text_scrub(char *s);

#endif
