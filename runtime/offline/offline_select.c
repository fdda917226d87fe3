/*
 * offline_select: see offline_select.h. Documents are rebuilt per request: a request offers
 * a handful of tools and the words of a description number in the dozens, so caching would
 * buy microseconds and cost an invalidation story.
 */
#include "offline_select.h"

#include "err.h"
#include "offline_args.h"
#include "offline_text.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct doc {
    offline_words_t all, name;
} doc_t;

static int add_str(offline_words_t *ws, json_object *o, const char *key)
{
    json_object *v;
    if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
        return offline_words_add(ws, json_object_get_string(v), 0);
    return 0;
}

static int build_doc(json_object *tool, doc_t *d)
{
    json_object *params, *props, *en;
    if (add_str(&d->name, tool, "name") || add_str(&d->all, tool, "name") ||
        add_str(&d->all, tool, "description"))
        return ERR_NOMEM;
    if (!json_object_object_get_ex(tool, "parameters", &params) ||
        !json_object_object_get_ex(params, "properties", &props) ||
        !json_object_is_type(props, json_type_object))
        return 0;
    json_object_object_foreach(props, key, schema)
    {
        if (offline_words_add(&d->all, key, 0) || add_str(&d->all, schema, "description"))
            return ERR_NOMEM;
        if (!json_object_object_get_ex(schema, "enum", &en) ||
            !json_object_is_type(en, json_type_array))
            continue;
        for (size_t i = 0; i < json_object_array_length(en); i++) {
            json_object *v = json_object_array_get_idx(en, i);
            if (json_object_is_type(v, json_type_string) &&
                offline_words_add(&d->all, json_object_get_string(v), 0))
                return ERR_NOMEM;
        }
    }
    return 0;
}

/* Unique words of text. */
static int unique_words(const char *text, offline_words_t *out)
{
    offline_words_t all = {0};
    int rc = offline_words_add(&all, text, 0);
    for (size_t i = 0; !rc && i < all.n; i++) {
        int seen = 0;
        for (size_t j = 0; j < out->n && !seen; j++)
            seen = strcmp(out->w[j], all.w[i]) == 0;
        if (!seen)
            rc = offline_words_push(out, all.w[i]);
    }
    offline_words_clear(&all);
    return rc;
}

static void add_terms(const offline_words_t *q, double weight, doc_t *docs, size_t n,
                      double *scores)
{
    for (size_t k = 0; k < q->n; k++) {
        size_t df = 0;
        for (size_t i = 0; i < n; i++)
            df += offline_words_match(&docs[i].all, q->w[k]) > 0;
        if (!df)
            continue;
        double idf = 1.0 + log((double)n / (double)df);
        for (size_t i = 0; i < n; i++) {
            double m = offline_words_match(&docs[i].all, q->w[k]);
            if (m > 0)
                scores[i] +=
                    weight * m * idf * (offline_words_match(&docs[i].name, q->w[k]) > 0 ? 2 : 1);
        }
    }
}

/* Verbs that name a side effect. A tool named "<verb>_<thing>" is only called when the
 * request itself mentions one of its name's words ("open a ticket"): shared vocabulary in a
 * description is not enough reason to write something. */
static const char *const effect_verbs[] = {
    "add",   "book", "cancel", "charge",   "close",  "create", "delete",
    "issue", "open", "pay",    "place",    "post",   "refund", "remove",
    "send",  "set",  "submit", "transfer", "update", "write",  "remember",
    "save",  "store", "forget", NULL};

static int has_effect(const offline_words_t *name)
{
    char stem[OFFLINE_WORD_MAX];
    for (int i = 0; name->n && effect_verbs[i]; i++) {
        offline_stem(effect_verbs[i], stem, sizeof stem);
        if (!strcmp(name->w[0], stem))
            return 1;
    }
    return 0;
}

static int named_in(const offline_words_t *name, const offline_words_t *q)
{
    for (size_t k = 0; k < name->n; k++)
        if (offline_words_match(q, name->w[k]) > 0)
            return 1;
    return 0;
}

int offline_select_score(json_object *tools, const char *text, const char *history, double *scores)
{
    size_t n = json_object_is_type(tools, json_type_array) ? json_object_array_length(tools) : 0;
    offline_words_t q = {0}, h = {0};
    doc_t *docs = calloc(n + 1, sizeof *docs);
    int rc = ERR_NOMEM;
    if (!docs)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        scores[i] = 0;
        if (build_doc(json_object_array_get_idx(tools, i), &docs[i]))
            goto out;
    }
    if (unique_words(text, &q) || unique_words(history, &h))
        goto out;
    add_terms(&q, 1.0, docs, n, scores);
    add_terms(&h, 1.0 / 3.0, docs, n, scores);
    for (size_t i = 0; i < n; i++) {
        json_object *params;
        if (json_object_object_get_ex(json_object_array_get_idx(tools, i), "parameters", &params))
            scores[i] += OFFLINE_HIT_BONUS * (double)offline_args_typed_hits(params, text);
        if (has_effect(&docs[i].name) && !named_in(&docs[i].name, &q))
            scores[i] = 0;
        scores[i] = round(scores[i] * 1000.0) / 1000.0; /* stable text in traces */
    }
    rc = 0;
out:
    for (size_t i = 0; i < n; i++) {
        offline_words_clear(&docs[i].all);
        offline_words_clear(&docs[i].name);
    }
    free(docs);
    offline_words_clear(&q);
    offline_words_clear(&h);
    return rc;
}

int offline_select_wanted(const double *scores, size_t n, size_t i)
{
    double best = 0;
    for (size_t k = 0; k < n; k++)
        if (scores[k] > best)
            best = scores[k];
    return scores[i] >= OFFLINE_MIN_SCORE && scores[i] >= OFFLINE_REL_SCORE * best;
}
