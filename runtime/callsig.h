/*
 * callsig: a counted set of tool-call signatures ("name\x1fcanonical args"), what loop
 * detection asks "how many times was this call made in this run?" of.
 *
 * Per run, so small: NULL is the empty set (a run that calls no tool pays nothing); each
 * signature is one allocation (its hash, count and text) in an open-addressed table of
 * pointers that doubles at 3/4 full. Signatures are compared by text, so a hash collision
 * never counts one call as another. Not thread-safe (the machine's loop thread only).
 */
#ifndef AGENTD_CALLSIG_H
#define AGENTD_CALLSIG_H

typedef struct callsig callsig_t;

/* How many times sig was added to the set (0 when never; set may be NULL). */
int callsig_count(const callsig_t *set, const char *sig);
/* Count one more sig, creating the set on first use. The new count, or -1 when out of
 * memory (the set is unchanged). */
int callsig_add(callsig_t **set, const char *sig);
/* Free the set (NULL is fine). */
void callsig_free(callsig_t *set);

#endif
