/*
 * offline_answer: see offline_answer.h. The prose is built for people reading a support
 * transcript: one paragraph per tool result ("Lookup order (order ID 1042): the status is
 * shipped; the carrier is UPS; ..."), lists of records (search hits, line items) as bullets
 * or inline, long text fields as their own sentence, and errors as "I could not ...".
 */
#include "offline_answer.h"

#include "err.h"
#include "offline_text.h"
#include "jx.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TEXT_CLIP 280
#define MAX_CLAUSES 10 /* facts per result sentence: the rest is in the trace */

/* Keys that usually carry the point of a record come first, in this order. */
static const char *const key_order[] = {"id",
                                        "order_id",
                                        "ticket_id",
                                        "title",
                                        "name",
                                        "status",
                                        "state",
                                        "carrier",
                                        "tracking_number",
                                        "tracking",
                                        "tracking_url",
                                        "eta",
                                        "estimated_delivery",
                                        "delivered_at",
                                        "last_update",
                                        "message",
                                        "summary",
                                        "shipped_at",
                                        "placed_at",
                                        "created_at",
                                        "total",
                                        "currency",
                                        "items",
                                        "qty",
                                        "quantity",
                                        "price",
                                        NULL};
/* Ranking internals that mean nothing to a customer. */
static const char *const key_skip[] = {"score", "rank", "relevance", "_score", NULL};
static const char *const label_keys[] = {"title", "name", "label", "subject", "id", NULL};
static const char *const answer_names[] = {"answer",     "reply",        "response", "message",
                                           "summary",    "text",         "content",  "explanation",
                                           "resolution", "final_answer", "output",   NULL};

static const char *const confidence_names[] = {"confidence", "certainty", "probability", NULL};
/* Arrays of strings with these names list the tools the answer rests on. */
static const char *const source_names[] = {"sources",    "citations", "references",
                                           "tools_used", "tools",     NULL};

/* Amounts that read with their currency. */
static const char *const money_keys[] = {"total", "price", "amount", "subtotal", "balance", NULL};

static int in_list(const char *k, const char *const *list)
{
    for (; *list; list++)
        if (!strcasecmp(k, *list))
            return 1;
    return 0;
}

static int has_money(json_object *o)
{
    json_object *v;
    for (int i = 0; money_keys[i]; i++)
        if (json_object_object_get_ex(o, money_keys[i], &v) &&
            (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
            return 1;
    return 0;
}

static int key_rank(const char *k)
{
    for (int i = 0; key_order[i]; i++)
        if (!strcmp(k, key_order[i]))
            return i;
    return 1000;
}

static int cmp_keys(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int rx = key_rank(x), ry = key_rank(y);
    return rx != ry ? rx - ry : strcmp(x, y);
}

static const char **ordered_keys(json_object *o, size_t *n)
{
    const char **keys = offline_keys_sorted(o, n);
    if (keys)
        qsort(keys, *n, sizeof *keys, cmp_keys);
    return keys;
}

static int is_scalar(json_object *v)
{
    return v && !json_object_is_type(v, json_type_object) &&
           !json_object_is_type(v, json_type_array);
}

/* A scalar as text, strings clipped to max characters on one line. */
/* "in_transit" reads as "in transit": lower-case snake_case values are enum codes. */
static int is_code(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n < 40 && strspn(s, "abcdefghijklmnopqrstuvwxyz_") == n && strchr(s, '_');
}

static void add_scalar(buf_t *b, json_object *v, size_t max)
{
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        size_t n = strcspn(s, "\n");
        if (is_code(s)) {
            for (size_t i = 0; i < n; i++)
                buf_add(b, s[i] == '_' ? " " : s + i, 1);
            return;
        }
        while (n > 1 && s[n - 1] == '.' && s[n - 2] != '.') /* the sentence adds its own */
            n--;
        if (n > max) {
            n = max;
            while (n > max / 2 && s[n] != ' ')
                n--;
            buf_add(b, s, n);
            buf_adds(b, "...");
        } else {
            buf_add(b, s, n);
        }
    } else if (json_object_is_type(v, json_type_double)) {
        buf_addf(b, "%.2f", json_object_get_double(v));
    } else if (json_object_is_type(v, json_type_boolean)) {
        buf_adds(b, json_object_get_boolean(v) ? "yes" : "no");
    } else {
        buf_adds(b, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    }
}

static int is_long_text(json_object *v)
{
    return json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 80;
}

static const char *label_of(json_object *o)
{
    json_object *v;
    for (int i = 0; label_keys[i]; i++)
        if (json_object_object_get_ex(o, label_keys[i], &v) && is_scalar(v) &&
            !json_object_is_type(v, json_type_null))
            return label_keys[i];
    return NULL;
}

/* One record of a list: "Trail shoes (qty 1, price 89.00)" or, with long text,
 * "Late deliveries (ID KB-104): If your order ...". */
static void add_record(buf_t *b, json_object *o)
{
    const char *label = label_of(o);
    size_t n;
    const char **keys = ordered_keys(o, &n);
    char hk[96];
    int paren = 0;
    if (label)
        add_scalar(b, json_object_object_get(o, label), 120);
    for (size_t i = 0; keys && i < n; i++) {
        json_object *v = json_object_object_get(o, keys[i]);
        if (!is_scalar(v) || json_object_is_type(v, json_type_null) || is_long_text(v) ||
            (label && !strcmp(keys[i], label)) || in_list(keys[i], key_skip))
            continue;
        offline_humanize(keys[i], hk, sizeof hk);
        buf_adds(b, paren ? ", " : label ? " (" : "(");
        paren = 1;
        buf_addf(b, "%s ", hk);
        add_scalar(b, v, 60);
    }
    if (paren)
        buf_adds(b, ")");
    for (size_t i = 0; keys && i < n; i++) {
        json_object *v = json_object_object_get(o, keys[i]);
        if (is_long_text(v)) {
            buf_adds(b, ": ");
            add_scalar(b, v, TEXT_CLIP);
            buf_adds(b, ".");
            break;
        }
    }
    free(keys);
}

static int list_of_records(json_object *a)
{
    json_object *first = json_object_array_get_idx(a, 0);
    return first && json_object_is_type(first, json_type_object);
}

static int has_long_text(json_object *a)
{
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *o = json_object_array_get_idx(a, i);
        json_object_object_foreach(o, k, v)
        {
            (void)k;
            if (is_long_text(v))
                return 1;
        }
    }
    return 0;
}

/* Does the call's argument key already say this ("order ID 1042" in the heading)? */
static int said_in_args(json_object *args, const char *k, json_object *v)
{
    json_object *a;
    return args && json_object_object_get_ex(args, k, &a) &&
           (json_object_equal(a, v) ||
            !strcmp(json_object_get_string(a), json_object_get_string(v)));
}

static void add_object(buf_t *b, json_object *o, json_object *args)
{
    size_t n;
    const char **keys = ordered_keys(o, &n);
    char hk[96];
    int clauses = 0, lists = 0, others = 0;
    buf_t tail = {0}; /* long text and record lists go after the sentence */
    for (size_t i = 0; keys && i < n; i++)
        lists += json_object_is_type(json_object_object_get(o, keys[i]), json_type_array);
    for (size_t i = 0; keys && i < n; i++) {
        json_object *v = json_object_object_get(o, keys[i]);
        if (!v || json_object_is_type(v, json_type_null) || in_list(keys[i], key_skip) ||
            keys[i][0] == '_' || said_in_args(args, keys[i], v) ||
            (lists && !strcmp(keys[i], "count")) || (!strcmp(keys[i], "currency") && has_money(o)))
            continue;
        offline_humanize(keys[i], hk, sizeof hk);
        if (!strcmp(keys[i], "answer") && json_object_is_type(v, json_type_string)) {
            /* Another agent's answer (a sub-agent called as a tool) is prose already: quoted
             * whole, its paragraphs kept. */
            buf_addf(&tail, "\n%c%s:\n", toupper((unsigned char)hk[0]), hk + 1);
            buf_add(&tail, json_object_get_string(v),
                             strnlen(json_object_get_string(v), 4000));
            others++;
            continue;
        }
        if (is_long_text(v)) {
            others++;
            buf_addf(&tail, "\n%c%s: ", toupper((unsigned char)hk[0]), hk + 1);
            add_scalar(&tail, v, TEXT_CLIP);
            buf_adds(&tail, ".");
            continue;
        }
        if (json_object_is_type(v, json_type_array) && list_of_records(v) && has_long_text(v)) {
            if (lists > 1 || others)
                buf_addf(&tail, "\n%c%s:", toupper((unsigned char)hk[0]), hk + 1);
            for (size_t k = 0; k < json_object_array_length(v) && k < 5; k++) {
                buf_adds(&tail, "\n- ");
                add_record(&tail, json_object_array_get_idx(v, k));
            }
            continue;
        }
        if (clauses >= MAX_CLAUSES)
            continue;
        size_t hl = strlen(hk);
        buf_adds(b, clauses++ ? "; " : "");
        if (hl > 3 && !strcmp(hk + hl - 3, " at") && is_scalar(v)) {
            /* "shipped_at" -> "shipped on 2026-11-22" */
            buf_addf(b, "%.*s on ", (int)(hl - 3), hk);
            add_scalar(b, v, 120);
            continue;
        }
        buf_addf(b, "the %s ", hk);
        if (json_object_is_type(v, json_type_array)) {
            size_t len = json_object_array_length(v);
            buf_adds(b, len > 1 || hk[hl - 1] == 's' ? "are " : "is ");
            if (!len)
                buf_adds(b, "none");
            for (size_t k = 0; k < len && k < 8; k++) {
                json_object *item = json_object_array_get_idx(v, k);
                buf_adds(b, k == 0 ? "" : k + 1 == len ? " and " : ", ");
                if (json_object_is_type(item, json_type_object))
                    add_record(b, item);
                else if (item)
                    add_scalar(b, item, 60);
            }
        } else if (json_object_is_type(v, json_type_object)) {
            buf_adds(b, "is ");
            add_record(b, v);
        } else {
            buf_adds(b, "is ");
            add_scalar(b, v, 120);
            json_object *cur; /* "the total is 113.00 USD" */
            if ((json_object_is_type(v, json_type_double) ||
                 json_object_is_type(v, json_type_int)) &&
                in_list(keys[i], money_keys) && json_object_object_get_ex(o, "currency", &cur) &&
                json_object_is_type(cur, json_type_string))
                buf_addf(b, " %s", json_object_get_string(cur));
        }
    }
    if (clauses)
        buf_adds(b, ".");
    if (tail.len && !clauses && b->len && b->s[b->len - 1] == ' ')
        b->s[--b->len] = 0; /* the list starts on its own line after "Heading:" */
    if (tail.len)
        buf_adds(b, tail.s);
    buf_free(&tail);
    free(keys);
}

/* "Lookup order (order ID 1042)". */
static void add_heading(buf_t *b, const offline_obs_t *ob, int capital)
{
    char h[96];
    offline_humanize(ob->tool, h, sizeof h);
    buf_addf(b, "%c%s", capital ? toupper((unsigned char)h[0]) : h[0], h + 1);
    size_t n;
    const char **keys = ordered_keys(ob->args, &n);
    int any = 0;
    for (size_t i = 0; keys && i < n; i++) {
        json_object *v = json_object_object_get(ob->args, keys[i]);
        if (!is_scalar(v) || json_object_is_type(v, json_type_null) ||
            (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 40))
            continue;
        offline_humanize(keys[i], h, sizeof h);
        buf_addf(b, "%s%s ", any++ ? ", " : " (", h);
        int quote =
            json_object_is_type(v, json_type_string) && strchr(json_object_get_string(v), ' ');
        buf_adds(b, quote ? "\"" : "");
        add_scalar(b, v, 60);
        buf_adds(b, quote ? "\"" : "");
    }
    if (any)
        buf_adds(b, ")");
    free(keys);
}

static void add_error(buf_t *b, const offline_obs_t *ob)
{
    json_object *m;
    buf_adds(b, "I could not complete ");
    add_heading(b, ob, 0);
    buf_adds(b, ": ");
    if (json_object_is_type(ob->result, json_type_object) &&
        (json_object_object_get_ex(ob->result, "error", &m) ||
         json_object_object_get_ex(ob->result, "message", &m)) &&
        is_scalar(m))
        add_scalar(b, m, TEXT_CLIP);
    else if (json_object_is_type(ob->result, json_type_string))
        add_scalar(b, ob->result, TEXT_CLIP);
    else
        buf_add(b, ob->text ? ob->text : "unknown error",
                         ob->text ? strcspn(ob->text, "\n") : 13);
    if (b->len && !strchr(".!?", b->s[b->len - 1]))
        buf_adds(b, ".");
}

static void add_ask(buf_t *b, const offline_ask_t *ask, int first)
{
    char t[96], p[96];
    json_object *v;
    offline_humanize(ask->tool, t, sizeof t);
    offline_humanize(ask->param, p, sizeof p);
    buf_addf(b, "%s use %s, I need the %s", first ? "To" : "\n\nTo", t, p);
    if (json_object_object_get_ex(ask->schema, "description", &v) &&
        json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0) {
        const char *d = json_object_get_string(v);
        buf_addf(b, " (%c", tolower((unsigned char)d[0]));
        buf_add(b, d + 1, strcspn(d + 1, "\n"));
        buf_adds(b, ")");
    }
    json_object *ex;
    if (json_object_object_get_ex(ask->schema, "examples", &ex) &&
        (v = json_object_array_get_idx(ex, 0)) && is_scalar(v)) {
        buf_adds(b, ", for example ");
        add_scalar(b, v, 60);
    }
    buf_addf(b, ". Could you tell me the %s?", p);
}

static void add_help(buf_t *b, json_object *tools)
{
    size_t n = json_object_is_type(tools, json_type_array) ? json_object_array_length(tools) : 0;
    if (!n) {
        buf_adds(b, "I am the offline model and this agent has no tools, so I cannot act "
                           "on the request; configure a real model with --model for open-ended "
                           "answers.");
        return;
    }
    buf_adds(b, "I could not tell which of my tools fits your request. I can:");
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(tools, i), *v;
        char h[96];
        offline_humanize(json_object_get_string(json_object_object_get(t, "name")), h, sizeof h);
        buf_addf(b, "\n- %s", h);
        if (json_object_object_get_ex(t, "description", &v) && is_scalar(v)) {
            const char *d = json_object_get_string(v);
            buf_adds(b, ": ");
            buf_add(b, d, strcspn(d, ".\n"));
        }
    }
    buf_adds(b, "\nPlease tell me a little more about what you need.");
}

char *offline_answer_text(const offline_src_t *src, json_object *tools, const offline_ask_t *ask)
{
    buf_t b = {0};
    size_t ok = 0, bad = 0;
    for (size_t i = 0; i < src->nobs; i++)
        src->obs[i].is_error ? bad++ : ok++;
    if (!ok && !bad) {
        if (ask)
            add_ask(&b, ask, 1);
        else
            add_help(&b, tools);
        return buf_take(&b);
    }
    if (ok)
        buf_adds(&b, "Here is what I found.");
    for (size_t i = 0; i < src->nobs; i++) {
        const offline_obs_t *ob = &src->obs[i];
        if (ob->is_error)
            continue;
        buf_adds(&b, "\n\n");
        add_heading(&b, ob, 1);
        buf_adds(&b, ":");
        if (json_object_is_type(ob->result, json_type_object))
            buf_adds(&b, " ");
        if (json_object_is_type(ob->result, json_type_object))
            add_object(&b, ob->result, ob->args);
        else if (ob->result && json_object_is_type(ob->result, json_type_array)) {
            json_object *wrap = json_object_new_object();
            if (wrap && !json_object_object_add(wrap, "results", json_object_get(ob->result)))
                add_object(&b, wrap, NULL);
            json_object_put(wrap);
        } else if (ob->result) {
            buf_adds(&b, " ");
            add_scalar(&b, ob->result, TEXT_CLIP * 2);
        } else {
            buf_adds(&b, " ");
            buf_adds(&b, ob->text ? ob->text : "");
        }
    }
    for (size_t i = 0; i < src->nobs; i++)
        if (src->obs[i].is_error) {
            buf_adds(&b, b.len ? "\n\n" : "");
            add_error(&b, &src->obs[i]);
        }
    if (ask)
        add_ask(&b, ask, 0);
    else
        buf_adds(&b, ok ? "\n\nLet me know if there is anything else I can do."
                               : "\n\nPlease check the details and try again.");
    return buf_take(&b);
}

/* ---- structured answers ---- */

static json_object *fill_value(const char *name, json_object *s, const char *prose,
                               const offline_src_t *src, int depth);

static json_object *fill_object(json_object *schema, const char *prose, const offline_src_t *src,
                                int depth)
{
    json_object *props = NULL, *req = NULL;
    json_object *o = json_object_new_object();
    json_object_object_get_ex(schema, "properties", &props);
    json_object_object_get_ex(schema, "required", &req);
    size_t n;
    const char **keys = offline_keys_sorted(props, &n);
    for (size_t i = 0; o && keys && i < n; i++) {
        int required = 0;
        for (size_t r = 0; req && r < json_object_array_length(req); r++)
            required |= !strcmp(json_object_get_string(json_object_array_get_idx(req, r)), keys[i]);
        json_object *ps = json_object_object_get(props, keys[i]);
        json_object *v = required || in_list(keys[i], answer_names)
                             ? fill_value(keys[i], ps, prose, src, depth + 1)
                             : offline_obs_lookup(src, keys[i], ps);
        /* A required property with no value is JSON null ("type": "null" asks for it). */
        if ((v || required) && json_object_object_add(o, keys[i], v)) {
            json_object_put(v);
            json_object_put(o);
            o = NULL;
        }
    }
    free(keys);
    return o;
}

/* true when a successful tool shares a word with the property ("ticket_created" and
 * create_ticket). */
static int tool_did(const char *name, const offline_src_t *src)
{
    offline_words_t nw = {0}, tw = {0};
    int hit = 0;
    if (offline_words_add(&nw, name, 0))
        return 0;
    for (size_t i = 0; i < src->nobs && !hit; i++) {
        if (src->obs[i].is_error)
            continue;
        tw.n = 0;
        if (offline_words_add(&tw, src->obs[i].tool, 0))
            break;
        for (size_t k = 0; k < nw.n && !hit; k++)
            hit = offline_words_match(&tw, nw.w[k]) >= 1.0;
    }
    offline_words_clear(&nw);
    offline_words_clear(&tw);
    return hit;
}

static json_object *from_request(const char *name, json_object *s, const offline_src_t *src)
{
    json_object *params = json_object_new_object(), *props = json_object_new_object(),
                *req = json_object_new_array(), *calls = NULL, *v = NULL;
    const char *missing;
    if (!params || !props || !req || json_object_object_add(props, name, json_object_get(s)) ||
        json_object_array_add(req, json_object_new_string(name)) ||
        json_object_object_add(params, "properties", props)) {
        json_object_put(props);
        goto out;
    }
    props = NULL;
    if (json_object_object_add(params, "required", req))
        goto out;
    req = NULL;
    if (offline_args_fill(params, src, &calls, &missing) == 0)
        v = json_object_get(json_object_object_get(json_object_array_get_idx(calls, 0), name));
out:
    json_object_put(req);
    json_object_put(params);
    json_object_put(calls);
    return v;
}

static json_object *fill_value(const char *name, json_object *s, const char *prose,
                               const offline_src_t *src, int depth)
{
    const char *type = offline_schema_type(s);
    json_object *v = NULL, *c;
    if (json_object_object_get_ex(s, "const", &c))
        return json_object_get(c);
    if (depth > 8)
        return NULL;
    if (!strcmp(type, "object"))
        return fill_object(s, prose, src, depth);
    if (!strcmp(type, "string") && in_list(name, answer_names) &&
        !json_object_object_get_ex(s, "enum", NULL)) {
        json_object *ml;
        size_t maxl =
            json_object_object_get_ex(s, "maxLength", &ml) && json_object_get_int64(ml) >= 4
                ? (size_t)json_object_get_int64(ml)
                : 0;
        size_t n = strlen(prose);
        if (!maxl || n <= maxl)
            return json_object_new_string(prose);
        /* Cut at a word boundary and say so; byte count <= character count keeps it valid. */
        n = maxl - 3;
        while (n > maxl / 2 && prose[n] != ' ')
            n--;
        while (n > 0 && (((unsigned char)prose[n] & 0xC0) == 0x80 || prose[n - 1] == ' '))
            n--;
        buf_t b = {0};
        buf_add(&b, prose, n);
        buf_adds(&b, "...");
        char *clip = buf_take(&b);
        v = clip ? json_object_new_string(clip) : NULL;
        free(clip);
        return v;
    }
    if (!strcmp(type, "boolean") && !json_object_object_get_ex(s, "default", NULL) &&
        !(v = offline_obs_lookup(src, name, s)))
        return json_object_new_boolean(tool_did(name, src));
    if (!v)
        v = offline_obs_lookup(src, name, s);
    if (!v && (!strcmp(type, "number") || !strcmp(type, "integer")) &&
        in_list(name, confidence_names)) {
        /* A confidence reflects whether the answer rests on tool results. */
        int ok = 0;
        for (size_t i = 0; i < src->nobs; i++)
            ok |= !src->obs[i].is_error;
        double d = ok ? 0.9 : 0.3, lim;
        json_object *b;
        if (json_object_object_get_ex(s, "maximum", &b) && (lim = json_object_get_double(b)) < d)
            d = lim;
        if (json_object_object_get_ex(s, "minimum", &b) && (lim = json_object_get_double(b)) > d)
            d = lim;
        char txt[32];
        snprintf(txt, sizeof txt, "%.2g", d); /* "0.9", not 0.90000000000000002 */
        v = !strcmp(type, "integer") ? json_object_new_int64((int64_t)d)
                                     : json_object_new_double_s(d, txt);
    }
    json_object *items;
    if (!v && !strcmp(type, "array") && in_list(name, source_names) &&
        json_object_object_get_ex(s, "items", &items) &&
        !strcmp(offline_schema_type(items), "string")) {
        v = json_object_new_array();
        for (size_t i = 0; v && i < src->nobs; i++) {
            int seen = src->obs[i].is_error;
            for (size_t k = 0; k < i && !seen; k++)
                seen = !src->obs[k].is_error && !strcmp(src->obs[k].tool, src->obs[i].tool);
            if (!seen)
                json_object_array_add(v, json_object_new_string(src->obs[i].tool));
        }
        return v;
    }
    if (!v && !strcmp(type, "array")) {
        json_object *one, *mi;
        v = json_object_new_array();
        if (v && json_object_object_get_ex(s, "minItems", &mi) && json_object_get_int(mi) > 0 &&
            json_object_object_get_ex(s, "items", &items) &&
            (one = fill_value(name, items, prose, src, depth + 1)) && json_object_array_add(v, one))
            json_object_put(one);
        return v;
    }
    if (!v)
        v = from_request(name, s, src);
    if (v && offline_value_fits(s, v))
        return v;
    json_object_put(v);
    /* Last resort: the smallest value of the right type. */
    double lim;
    if (!strcmp(type, "integer") || !strcmp(type, "number")) {
        json_object *mn;
        lim = json_object_object_get_ex(s, "minimum", &mn) ? json_object_get_double(mn) : 0;
        return !strcmp(type, "integer") ? json_object_new_int64((int64_t)ceil(lim))
                                        : jx_new_num(lim);
    }
    if (!strcmp(type, "null"))
        return NULL;
    v = json_object_new_string(prose);
    if (v && !offline_value_fits(s, v)) {
        json_object_put(v);
        v = json_object_new_string("");
    }
    return v;
}

json_object *offline_answer_schema(json_object *schema, const char *prose, const offline_src_t *src)
{
    if (!strcmp(offline_schema_type(schema), "object") || !offline_schema_type(schema)[0])
        return fill_object(schema, prose, src, 0);
    return fill_value("answer", schema, prose, src, 0);
}
