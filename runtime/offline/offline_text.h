/*
 * offline_text: the text primitives of the offline model (provider_offline.c): words,
 * a light stemmer, stop words, value-bearing spans, string shapes, sorted-key JSON and a
 * growable string buffer.
 *
 * Everything here is pure and deterministic: the same input gives the same output in every
 * process. That matters because JSON objects that come from Lua tables have no stable key
 * order (Lua seeds its string hash per state), so every walk over object keys in the offline
 * model goes through offline_keys_sorted().
 */
#ifndef AGENTD_OFFLINE_TEXT_H
#define AGENTD_OFFLINE_TEXT_H

#include "buf.h"

#include <json-c/json.h>
#include <stddef.h>

#define OFFLINE_WORD_MAX 48

/* A bag of stemmed words in text order. */
typedef struct offline_words {
    char (*w)[OFFLINE_WORD_MAX];
    size_t n, cap;
} offline_words_t;

/* Append the words of text, lower-cased and stemmed. Stop words are dropped unless
 * keep_stop. Splits on non-alphanumerics and on camelCase humps. 0 or ERR_NOMEM. */
int offline_words_add(offline_words_t *ws, const char *text, int keep_stop);
/* Append one already-stemmed word. 0 or ERR_NOMEM. */
int offline_words_push(offline_words_t *ws, const char *stem);
void offline_words_clear(offline_words_t *ws);
/* Best match strength of stem s in ws: 1 equal, 0.7 related (prefix), 0 none. */
double offline_words_match(const offline_words_t *ws, const char *s);

/* Stem one lower-case word into out (len >= OFFLINE_WORD_MAX). */
void offline_stem(const char *word, char *out, size_t len);
int offline_is_stop(const char *lower_word);
/* 1 equal, 0.7 when one stem is a prefix of the other (shared prefix >= 4, a tail of at most
 * 3 more characters), else 0. */
double offline_stem_similar(const char *a, const char *b);

/* A whitespace-separated piece of text, trimmed of surrounding punctuation and of a leading
 * '#', e.g. "#1042?" -> "1042". These are the candidates for typed argument values. */
typedef struct offline_span {
    char *s;
    size_t word; /* index of the span in the text, for proximity tests */
} offline_span_t;

typedef struct offline_spans {
    offline_span_t *v;
    size_t n;
} offline_spans_t;

int offline_spans_split(const char *text, offline_spans_t *out);
void offline_spans_clear(offline_spans_t *sp);

/* Character-class shape: digit -> '9', upper -> 'A', lower -> 'a', others kept. */
void offline_shape(const char *s, char *out, size_t len);

/* Keys of obj sorted by strcmp, as a new NULL-terminated array of borrowed strings
 * (free() the array only). NULL on ERR_NOMEM or when obj is not an object. *n gets the count. */
const char **offline_keys_sorted(json_object *obj, size_t *n);
/* New deep copy of j with every object's keys inserted in sorted order, so its text form is
 * canonical. NULL on allocation failure. */
json_object *offline_json_sorted(json_object *j);

/* "tracking_number" -> "tracking number", "eta" -> "ETA"; into out. */
void offline_humanize(const char *key, char *out, size_t len);

#endif
