/*
 * trace_body: see trace_body.h. The reader splits the body's top level and its attrs into
 * key and value texts (no value is parsed: each is copied as it was written) and writes them
 * back with full keys, in the same order.
 */
#include "trace_body.h"

#include "err.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* attrs keys with a one-character token: ALPHABET[i] stands for KEYS[i]. Append only. */
static const char ALPHABET[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
static const char *const KEYS[] = {
    "gen_ai.tool.name",
    "gen_ai.tool.call.id",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.provider.name",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cached_tokens",
    "gen_ai.usage.cost",
    "gen_ai.response.finish_reasons",
    "gen_ai.agent.name",
    "gen_ai.conversation.id",
    "agentd.tool.state",
    "agentd.attempts",
    "agentd.duration_ms",
    "agentd.latency_ms",
    "agentd.messages",
    "agentd.context.tokens",
    "agentd.prompt.hash",
    "agentd.prompt_hash",
    "agentd.prompt.git_commit",
    "agentd.prompt.git_dirty",
    "agentd.prompt.file",
    "agentd.prompt_file",
    "agentd.prompt.rendered_hash",
    "agentd.agent.path",
    "agentd.input",
    "agentd.answer",
    "agentd.delay_ms",
    "agentd.retry.delay_ms",
    "agentd.reason",
    "agentd.fallback.from",
    "agentd.fallback.reason",
    "agentd.guardrail",
    "agentd.guardrail.hook",
    "agentd.guardrail.failed",
    "agentd.resumed_state",
    "agentd.parent_run_id",
    "agentd.tool.call.wire_id",
    "agentd.purpose",
    "agentd.context.tokens_before",
    "agentd.context.omitted_messages",
    "agentd.compact.upto",
    "agentd.compact.from",
    "agentd.compact.summary_tokens",
    "agentd.session.history_messages",
    "agentd.cached",
    "agentd.args_edited",
    "agentd.args_before",
    "agentd.plan.version",
    "agentd.plan.steps",
    "agentd.plan.step",
    "agentd.plan.step.status",
    "agentd.plan.status",
    "agentd.plan.replans",
    "agentd.plan.intent",
    "agentd.plan.failed_step",
    "agentd.plan.action",
    "agentd.offline.decision",
    "agentd.span.unfinished",
    "gen_ai.request.temperature",
    "agentd.owner",
};
_Static_assert(sizeof KEYS / sizeof KEYS[0] <= sizeof ALPHABET - 1, "one character per key");
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

const char *const trace_body_name_attr[] = {
    [TB_NAME_AGENT] = "gen_ai.agent.name",
    [TB_NAME_TOOL] = "gen_ai.tool.name",
    [TB_NAME_REQ_MODEL] = "gen_ai.request.model",
    [TB_NAME_RESP_MODEL] = "gen_ai.response.model",
};

/* The values of phase and op a stored body holds as their position here. Append only. */
static const char *const PHASES[] = {"\"begin\"", "\"end\"", "\"point\""};
static const char *const OPS[] = {"\"invoke_agent\"", "\"plan\"", "\"act\"",          "\"observe\"",
                                  "\"wait\"",         "\"chat\"", "\"execute_tool\"", "\"retry\"",
                                  "\"guardrail\"",    "\"log\""};
static const char *const STATUSES[] = {"\"ok\"", "\"error\""};
#define NPHASES   (sizeof PHASES / sizeof PHASES[0])
#define NSTATUSES (sizeof STATUSES / sizeof STATUSES[0])

/* A stored array's slots, and the order of the fields in the line (trace.c put_fields). */
static const char SLOTS[] = {TB_TS[0],    TB_MONO[0],   TB_SPAN[0],  TB_PARENT[0],
                             TB_PHASE[0], TB_OP[0],     TB_NAME[0],  TB_STEP[0],
                             TB_ATTRS[0], TB_STATUS[0], TB_ERROR[0], TB_END_SPAN[0]};
static const char LINE_ORDER[] = {TB_TS[0],    TB_MONO[0],   TB_SPAN[0],  TB_PARENT[0],
                                  TB_PHASE[0], TB_OP[0],     TB_NAME[0],  TB_END_SPAN[0],
                                  TB_STEP[0],  TB_STATUS[0], TB_ERROR[0], TB_ATTRS[0]};
#define NSLOTS (sizeof SLOTS)
#define NOPS   (sizeof OPS / sizeof OPS[0])

/* Top-level short keys and what they stand for. */
static const char *const FIELDS[][2] = {
    {TB_TS, "ts_ns"},    {TB_MONO, "mono_ns"},  {TB_SPAN, "span_id"}, {TB_PARENT, "parent_id"},
    {TB_PHASE, "phase"}, {TB_OP, "op"},         {TB_NAME, "name"},    {TB_END_SPAN, "end_span"},
    {TB_STEP, "step"},   {TB_STATUS, "status"}, {TB_ERROR, "error"},  {TB_ATTRS, "attrs"},
};

char trace_body_attr_token(const char *key)
{
    /* Every dictionary key starts "gen_ai." or "agentd."; others fail at once. */
    if (strncmp(key, "gen_ai.", 7) != 0 && strncmp(key, "agentd.", 7) != 0)
        return 0;
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(key + 7, KEYS[i] + 7) && key[0] == KEYS[i][0])
            return ALPHABET[i];
    return 0;
}

int trace_body_code(const char *field, const char *v)
{
    const char *const *t = field[0] == TB_PHASE[0] ? PHASES : field[0] == TB_OP[0] ? OPS : STATUSES;
    size_t n = field[0] == TB_PHASE[0] ? NPHASES : field[0] == TB_OP[0] ? NOPS : NSTATUSES;
    size_t len = strlen(v);
    for (size_t i = 0; i < n; i++)
        if (strlen(t[i]) == len + 2 && !memcmp(t[i] + 1, v, len))
            return (int)i;
    return -1;
}

int64_t trace_body_base_ns(const char *run_id)
{
    uint64_t ms = 0;
    for (int i = 0; i < 16; i++) {
        char c = run_id[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        if (i < 12)
            ms = ms << 4 | (uint64_t)d;
    }
    return run_id[16] || ms > (uint64_t)INT64_MAX / 1000000 ? -1 : (int64_t)(ms * 1000000);
}

/* Ids as 11 characters of 6 bits (the first of 4), most significant first. */
static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int trace_body_id(const char *id, char out[12])
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = id[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    if (id[16])
        return 0;
    for (int i = 10; i >= 0; i--, v >>= 6)
        out[i] = B64[v & 63];
    out[11] = 0;
    return 1;
}

/* The 16 hex of an 11-character id text (quoted), into out[16]; 0 if it is not one. */
static int id_hex(const char *p, size_t n, char out[16])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t v = 0;
    if (n != 13 || p[0] != '"' || p[12] != '"')
        return 0;
    for (int i = 1; i <= 11; i++) {
        const char *c = memchr(B64, p[i], 64);
        if (!c || p[i] == 0 || (i == 1 && c - B64 > 15))
            return 0;
        v = v << 6 | (uint64_t)(c - B64);
    }
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = hex[v & 15];
    return 1;
}

static const char *attr_key(char tok)
{
    const char *p = memchr(ALPHABET, tok, sizeof ALPHABET - 1);
    return p && (size_t)(p - ALPHABET) < NKEYS ? KEYS[p - ALPHABET] : NULL;
}

static const char *field_key(const char *k, size_t n)
{
    if (n == 1)
        for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++)
            if (FIELDS[i][0][0] == k[0])
                return FIELDS[i][1];
    return NULL;
}

typedef struct text {
    const char *p;
    size_t n;
} text_t;

typedef struct pair {
    text_t k; /* the key's text between its quotes */
    text_t v; /* the value's text */
} pair_t;

/* After the string at p (its opening quote), or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* After the value at p, or NULL. */
static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                if (!(p = skip_string(p, end)))
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return NULL;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']')
        p++;
    return p;
}

/* The next "key":value of the object at *pp (after '{' or ','): 1 and *pp after it, 0 at
 * the closing brace, -1 on a malformed text. */
static int next_pair(const char **pp, const char *end, pair_t *out)
{
    const char *p = *pp;
    if (p < end && *p == '}')
        return 0;
    if (p >= end || *p != '"')
        return -1;
    const char *k = skip_string(p, end);
    if (!k || k >= end || *k != ':')
        return -1;
    out->k = (text_t){p + 1, (size_t)(k - p - 2)};
    const char *v = skip_value(k + 1, end);
    if (!v || v >= end)
        return -1;
    out->v = (text_t){k + 1, (size_t)(v - k - 1)};
    if (*v == ',')
        v++;
    *pp = v;
    return 1;
}

static int is_zero(text_t v)
{
    return v.n == 1 && v.p[0] == '0';
}

static int key_is(text_t k, const char *s)
{
    return k.n == strlen(s) && !memcmp(k.p, s, k.n);
}

/* A phase's or op's value as its string: a number stands for its place in PHASES/OPS. */
static text_t coded(const char *const *t, size_t n, text_t v)
{
    if (v.n == 1 && v.p[0] >= '0' && (size_t)(v.p[0] - '0') < n)
        return (text_t){t[v.p[0] - '0'], strlen(t[v.p[0] - '0'])};
    return v;
}

/* The full key an attrs key text stands for, as text. */
static text_t attr_full(text_t k)
{
    if (k.n == 1) {
        const char *full = attr_key(k.p[0]);
        if (full)
            return (text_t){full, strlen(full)};
    } else if (k.n > 1 && k.p[0] == '~') {
        return (text_t){k.p + 1, k.n - 1};
    }
    return k;
}

/* The value text of the attrs object text a under full key key, or n = 0. */
static text_t attr_value(text_t a, const char *key)
{
    const char *p = a.p + 1, *end = a.p + a.n;
    pair_t kv;
    while (next_pair(&p, end, &kv) == 1)
        if (key_is(attr_full(kv.k), key))
            return kv.v;
    return (text_t){NULL, 0};
}

static void put_quoted(buf_t *b, const char *s, size_t n)
{
    buf_add_fast(b, "\"", 1);
    buf_add_fast(b, s, n);
    buf_add_fast(b, "\":", 2);
}

static int put_attrs(buf_t *b, const char *run_id, text_t a)
{
    const char *p = a.p + 1, *end = a.p + a.n;
    pair_t kv;
    int r, first = 1;
    buf_add_fast(b, "{", 1);
    while ((r = next_pair(&p, end, &kv)) == 1) {
        if (!first)
            buf_add_fast(b, ",", 1);
        first = 0;
        text_t k = attr_full(kv.k);
        put_quoted(b, k.p, k.n);
        if (is_zero(kv.v) && key_is(k, "gen_ai.conversation.id")) {
            buf_add_fast(b, "\"", 1);
            buf_adds(b, run_id);
            buf_add_fast(b, "\"", 1);
        } else {
            buf_add_fast(b, kv.v.p, kv.v.n);
        }
    }
    if (r < 0)
        return ERR_INVAL;
    return buf_add_fast(b, "}", 1);
}

int trace_body_is_short(const char *body, size_t len)
{
    /* An array, or an object ending in its TB_FIELDS array (a body of full keys ends in
     * attrs, a string or a number). */
    return len > 2 && (body[0] == '[' || (body[0] == '{' && !memcmp(body + len - 2, "]}", 2)));
}

/* The derived name: op, a space, its source's string (without quotes). */
static int put_name(buf_t *b, text_t op, text_t src)
{
    if (op.n < 2 || src.n < 2 || op.p[0] != '"' || src.p[0] != '"')
        return ERR_INVAL;
    buf_add_fast(b, op.p, op.n - 1);
    buf_add_fast(b, " ", 1);
    return buf_add_fast(b, src.p + 1, src.n - 1);
}

/* A field's place in the line (trace.c put_fields); other keys go last. */
static int rank(text_t k)
{
    static const char *const whole[] = {"ts_ns", "state_from", "state_to", "event", "step"};
    static const int place[] = {0, 7, 8, 9, 11};
    if (k.n == 1) {
        const char *p = memchr(LINE_ORDER, k.p[0], sizeof LINE_ORDER);
        int i = p ? (int)(p - LINE_ORDER) : -1;
        if (i >= 0)
            return i < 7 ? i : i + 3; /* state_from, state_to, event come after the name */
    }
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
        if (key_is(k, whole[i]))
            return place[i];
    return 100;
}

/* The slots of the array text a as pairs under their short keys, nulls left out, appended
 * to top[n..max); view: a transition's slots, whose ts_ns and step its object holds. The
 * new count, or -1. */
static int add_slots(text_t a, pair_t *top, size_t n, size_t max, int view)
{
    const char *p = a.p + 1, *end = a.p + a.n;
    text_t slot[NSLOTS];
    size_t ns = 0;
    while (p < end && *p != ']' && ns < NSLOTS) {
        const char *v = skip_value(p, end);
        if (!v || v >= end)
            return -1;
        slot[ns++] = (text_t){p, (size_t)(v - p)};
        p = *v == ',' ? v + 1 : v;
    }
    if (p >= end || *p != ']')
        return -1;
    for (size_t i = 0; i < NSLOTS; i++) {
        if (i >= ns || (slot[i].n == 4 && !memcmp(slot[i].p, "null", 4)) || n >= max)
            continue;
        if (view && (SLOTS[i] == TB_TS[0] || SLOTS[i] == TB_STEP[0]))
            continue;
        top[n++] = (pair_t){{&SLOTS[i], 1}, slot[i]};
    }
    return (int)n;
}

/* The fields of a stored body as pairs in the line's order (an array's slots, or a
 * transition's TB_FIELDS slots, under their short keys): their count, or -1 if the text is
 * not a body. */
static int split(const char *body, size_t len, pair_t *top, size_t max)
{
    const char *p = body + 1, *end = body + len;
    size_t n = 0;
    int r = 0;
    text_t slots = {0};
    if (len < 2)
        return -1;
    if (body[0] == '[')
        r = add_slots((text_t){body, len}, top, 0, max, 0);
    else if (body[0] != '{')
        return -1;
    else {
        while (n < max && (r = next_pair(&p, end, &top[n])) == 1) {
            if (key_is(top[n].k, TB_FIELDS) && top[n].v.n && top[n].v.p[0] == '[')
                slots = top[n].v;
            else
                n++;
        }
        if (r != 0)
            return -1;
        if (!slots.n)
            return (int)n;
        r = add_slots(slots, top, n, max, 1);
    }
    if (r < 0)
        return -1;
    n = (size_t)r;
    for (size_t i = 1; i < n; i++) /* insertion sort by place: a few pairs */
        for (size_t j = i; j > 0 && rank(top[j - 1].k) > rank(top[j].k); j--) {
            pair_t t = top[j];
            top[j] = top[j - 1];
            top[j - 1] = t;
        }
    return (int)n;
}

int trace_body_expand(buf_t *b, const char *run_id, const char *body, size_t len)
{
    pair_t top[24];
    text_t op = {0}, state_to = {0}, attrs = {0};
    int r, got = split(body, len, top, sizeof top / sizeof top[0]);
    if (got < 0)
        return ERR_INVAL;
    size_t n = (size_t)got;
    for (size_t i = 0; i < n; i++) {
        text_t k = top[i].k;
        if (key_is(k, TB_OP))
            op = top[i].v = coded(OPS, NOPS, top[i].v);
        else if (key_is(k, TB_PHASE))
            top[i].v = coded(PHASES, NPHASES, top[i].v);
        else if (key_is(k, TB_STATUS))
            top[i].v = coded(STATUSES, NSTATUSES, top[i].v);
        else if (key_is(k, "state_to"))
            state_to = top[i].v;
        else if (key_is(k, TB_ATTRS))
            attrs = top[i].v;
    }
    buf_add_fast(b, "{", 1);
    for (size_t i = 0; i < n; i++) {
        text_t k = top[i].k, v = top[i].v;
        const char *full = field_key(k.p, k.n);
        if (i)
            buf_add_fast(b, ",", 1);
        if (full)
            put_quoted(b, full, strlen(full));
        else
            put_quoted(b, k.p, k.n);
        int id = full && (!strcmp(full, "span_id") || !strcmp(full, "parent_id") ||
                          !strcmp(full, "end_span"));
        char hex[16], num[24];
        int64_t base = full && !strcmp(full, "ts_ns") ? trace_body_base_ns(run_id) : -1;
        if (base >= 0 && v.n > 1 && v.p[0] == '-') { /* -(offset + 1) from the run id's time */
            int64_t off = strtoll(v.p + 1, NULL, 10);
            if (off < 1 || off - 1 > INT64_MAX - base)
                return ERR_INVAL;
            int w = snprintf(num, sizeof num, "%" PRId64, base + off - 1);
            r = buf_add_fast(b, num, w > 0 ? (size_t)w : 0);
        } else if (id && is_zero(v)) {
            buf_add_fast(b, "\"", 1);
            buf_adds(b, run_id);
            r = buf_add_fast(b, "\"", 1);
        } else if (id && id_hex(v.p, v.n, hex)) {
            buf_add_fast(b, "\"", 1);
            buf_add_fast(b, hex, 16);
            r = buf_add_fast(b, "\"", 1);
        } else if (id && v.n > 2 && v.p[0] == '"' && v.p[1] == '~') {
            buf_add_fast(b, "\"", 1);
            r = buf_add_fast(b, v.p + 2, v.n - 2);
        } else if (full && !strcmp(full, "name") && v.n == 1 && v.p[0] >= '1' && v.p[0] <= '5') {
            int src = v.p[0] - '0';
            r = put_name(b, op,
                         src == TB_NAME_STATE_TO ? state_to
                         : attrs.n               ? attr_value(attrs, trace_body_name_attr[src])
                                                 : (text_t){NULL, 0});
        } else if (full && !strcmp(full, "attrs") && v.n && v.p[0] == '{') {
            r = put_attrs(b, run_id, v);
        } else {
            r = buf_add_fast(b, v.p, v.n);
        }
        if (r)
            return r;
    }
    return buf_add_fast(b, "}", 1);
}

/* The string text v without its quotes into out[len]; 0 if it is not one or too long. */
static int copy_string(text_t v, char *out, size_t len)
{
    if (v.n < 2 || v.p[0] != '"' || v.n - 2 >= len)
        return 0;
    memcpy(out, v.p + 1, v.n - 2);
    out[v.n - 2] = 0;
    return 1;
}

int trace_body_tool_call(const char *body, size_t len, char phase[8], char id[64])
{
    int is_short = trace_body_is_short(body, len), tool = 0;
    text_t attrs = {0};
    pair_t top[24], kv;
    phase[0] = id[0] = 0;
    int n = split(body, len, top, sizeof top / sizeof top[0]);
    for (int i = 0; i < n; i++) {
        kv = top[i];
        if (key_is(kv.k, is_short ? TB_OP : "op"))
            tool = key_is(coded(OPS, NOPS, kv.v), "\"execute_tool\"");
        else if (key_is(kv.k, is_short ? TB_PHASE : "phase"))
            copy_string(coded(PHASES, NPHASES, kv.v), phase, 8);
        else if (key_is(kv.k, is_short ? TB_ATTRS : "attrs") && kv.v.n && kv.v.p[0] == '{')
            attrs = kv.v;
    }
    if (!tool || !phase[0] || !attrs.n)
        return 0;
    text_t v = is_short ? attr_value(attrs, "gen_ai.tool.call.id") : (text_t){0};
    if (!is_short) { /* full keys: no tokens to expand */
        const char *q = attrs.p + 1, *e = attrs.p + attrs.n;
        while (next_pair(&q, e, &kv) == 1)
            if (key_is(kv.k, "gen_ai.tool.call.id"))
                v = kv.v;
    }
    return copy_string(v, id, 64);
}
