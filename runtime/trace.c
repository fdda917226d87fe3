/*
 * trace: see trace.h. Writes event JSON straight into a byte buffer (a json-c tree per
 * event cost ~20 allocations; the buffer is reused) and appends JSONL lines.
 */
#include "trace.h"
#include "jx.h"

#include "err.h"
#include "loop.h"
#include "trace_body.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* JSON string literal of s[0..n), escaped as json-c escapes (with NOSLASHESCAPE), so
 * events read the same as when json-c wrote them. */
static void put_strn(buf_t *b, const char *s, size_t n)
{
    jx_put_str(b, s, n, JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* key NULL: a stored array's slot, the value alone (trace_body.h). */
static void put_key(buf_t *b, const char *key)
{
    buf_add_fast(b, ",", 1);
    if (!key)
        return;
    put_strn(b, key, strlen(key));
    buf_add_fast(b, ":", 1);
}

static void put_i64(buf_t *b, int64_t v)
{
    char t[24];
    size_t n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        t[sizeof t - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        t[sizeof t - 1 - n++] = '-';
    buf_add_fast(b, t + sizeof t - n, n);
}

/* An object key: as it is, or for a stored body's attrs (run_id set) its token
 * (trace_body.h), behind a '~' when it could be read as one. */
static void put_obj_key(buf_t *b, const char *k, const char *run_id)
{
    char tok = run_id ? trace_body_attr_token(k) : 0;
    if (tok) {
        char t[4] = {'"', tok, '"', ':'};
        buf_add_fast(b, t, 4);
        return;
    }
    size_t at = b->len;
    put_strn(b, k, strlen(k));
    if (run_id && (k[0] == '~' || (k[0] && !k[1])) && !b->failed) {
        buf_add_fast(b, "~", 1); /* room for the '~' after the opening quote */
        if (!b->failed) {
            memmove(b->s + at + 2, b->s + at + 1, b->len - at - 2);
            b->s[at + 1] = '~';
        }
    }
    buf_add_fast(b, ":", 1);
}

static void put_value(buf_t *b, json_object *v);

/* An object; the attrs of run_id's stored body (run_id set): short keys, the conversation
 * id as 0 when it is the run id. */
static void put_object(buf_t *b, json_object *o, const char *run_id)
{
    int first = 1;
    buf_add_fast(b, "{", 1);
    json_object_object_foreach(o, k, v)
    {
        if (!first)
            buf_add_fast(b, ",", 1);
        first = 0;
        put_obj_key(b, k, run_id);
        if (run_id && !strcmp(k, "gen_ai.conversation.id") &&
            json_object_is_type(v, json_type_string) && !strcmp(json_object_get_string(v), run_id))
            buf_add_fast(b, "0", 1);
        else
            put_value(b, v);
    }
    buf_add_fast(b, "}", 1);
}

static void put_value(buf_t *b, json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null: buf_adds(b, "null"); break;
    case json_type_boolean: buf_adds(b, json_object_get_boolean(v) ? "true" : "false"); break;
    case json_type_int: {
        int64_t i = json_object_get_int64(v);
        if (i == INT64_MAX) { /* json-c keeps larger values as uint64 */
            char t[24];
            int n = snprintf(t, sizeof t, "%" PRIu64, json_object_get_uint64(v));
            buf_add_fast(b, t, n > 0 ? (size_t)n : 0);
        } else {
            put_i64(b, i);
        }
        break;
    }
    case json_type_double: {
        /* json-c's own text: doubles may carry the form they were written in
         * (jx_new_num, the strict parser), which only json-c's serializer knows. */
        const char *t = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        if (t)
            buf_adds(b, t);
        else if (!b->failed)
            b->failed = ERR_NOMEM; /* sticky, as if the append had failed */
        break;
    }
    case json_type_string:
        put_strn(b, json_object_get_string(v), (size_t)json_object_get_string_len(v));
        break;
    case json_type_array: {
        size_t n = json_object_array_length(v);
        buf_add_fast(b, "[", 1);
        for (size_t i = 0; i < n; i++) {
            if (i)
                buf_add_fast(b, ",", 1);
            put_value(b, json_object_array_get_idx(v, i));
        }
        buf_add_fast(b, "]", 1);
        break;
    }
    case json_type_object: put_object(b, v, NULL); break;
    }
}

/* Absent fields are omitted rather than written as null: events are the bulk of a run's
 * bytes, and readers treat a missing field as null. */
static void put_field(buf_t *b, const char *key, const char *v)
{
    if (!v) {
        if (!key) /* an array's slot stays in place */
            buf_add_fast(b, ",null", 5);
        return;
    }
    put_key(b, key);
    put_strn(b, v, strlen(v));
}

static void put_int_field(buf_t *b, const char *key, int64_t v)
{
    put_key(b, key);
    put_i64(b, v);
}

/* The row's part of a tool call, after the other attrs. */
static void put_call(buf_t *b, const trace_call_t *c)
{
    if (c->args) {
        put_key(b, "gen_ai.tool.call.arguments");
        put_strn(b, c->args, strlen(c->args));
    }
    if (c->idem) {
        put_key(b, "agentd.idempotency_key");
        put_strn(b, c->idem, strlen(c->idem));
    }
    if (c->result) {
        size_t n = strlen(c->result);
        put_key(b, "gen_ai.tool.call.result");
        put_strn(b, c->result, n > TRACE_RESULT_MAX ? TRACE_RESULT_MAX : n);
    }
}

/* A field's key: its short key in a stored body (trace_body.h), else the whole one. */
#define KEY(full, tok) (run_id ? (tok) : (full))

/* A span id; stored: 0 when it is the run id, else its short form (trace_body.h). */
static void put_id(buf_t *b, const char *key, const char *id, const char *run_id)
{
    char s[12];
    if (!run_id || !id) {
        put_field(b, key, id);
    } else if (!strcmp(id, run_id)) {
        put_key(b, key);
        buf_add_fast(b, "0", 1);
    } else if (trace_body_id(id, s)) {
        put_key(b, key);
        buf_add_fast(b, "\"", 1);
        buf_add_fast(b, s, 11);
        buf_add_fast(b, "\"", 1);
    } else if (id[0] == '~' || strlen(id) == 11) { /* not to be read as one */
        put_key(b, key);
        buf_add_fast(b, "\"~", 2);
        size_t at = b->len;
        put_strn(b, id, strlen(id));
        if (!b->failed) { /* put_strn's opening quote is already written */
            memmove(b->s + at, b->s + at + 1, b->len - at - 1);
            b->s[--b->len] = 0;
        }
    } else {
        put_field(b, key, id);
    }
}

/* A phase, op or status under key; stored (run_id set): its code when it has one. */
static void put_coded(buf_t *b, const char *key, const char *tok, const char *v, const char *run_id)
{
    int code = run_id && v ? trace_body_code(tok, v) : -1;
    if (code >= 0)
        put_int_field(b, key, code);
    else
        put_field(b, key, v);
}

/* The string value of attrs' key, or NULL. */
static const char *attr_str(json_object *attrs, const char *key)
{
    json_object *v;
    return attrs && json_object_object_get_ex(attrs, key, &v) &&
                   json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* Which source a stored body's name is derived from (TB_NAME_*), or 0: the name is the op,
 * a space and that source's value. */
static int name_source(const trace_ev_t *ev)
{
    size_t n = ev->op ? strlen(ev->op) : 0;
    if (!ev->name || !n || strncmp(ev->name, ev->op, n) != 0 || ev->name[n] != ' ')
        return 0;
    const char *rest = ev->name + n + 1;
    if (ev->state_to && !strcmp(rest, ev->state_to))
        return TB_NAME_STATE_TO;
    for (int i = TB_NAME_AGENT; i <= TB_NAME_RESP_MODEL; i++) {
        const char *v = attr_str(ev->attrs, trace_body_name_attr[i]);
        if (v && !strcmp(rest, v))
            return i;
    }
    return 0;
}

/* The name under key; stored: its source's number when it is derived. */
static void put_name(buf_t *b, const char *key, const trace_ev_t *ev, const char *run_id)
{
    int src = run_id ? name_source(ev) : 0;
    if (src)
        put_int_field(b, key, src);
    else
        put_field(b, key, ev->name);
}

/* attrs under key; stored: short keys (put_object). */
static void put_attrs(buf_t *b, const char *key, json_object *attrs, const char *run_id)
{
    put_key(b, key);
    if (!attrs)
        buf_adds(b, "null");
    else if (json_object_is_type(attrs, json_type_object))
        put_object(b, attrs, run_id);
    else
        put_value(b, attrs);
}

static int64_t ts_of(const trace_ev_t *ev)
{
    return ev->ts_ns ? ev->ts_ns : (int64_t)loop_wall_ns();
}

static int64_t mono_of(const trace_ev_t *ev)
{
    return ev->mono_ns ? ev->mono_ns : (int64_t)loop_mono_ns();
}

/* The fields after seq, each with its leading comma, and the closing brace. run_id NULL:
 * the line's form, with the row's part of a tool call when with_call; else the stored
 * object of run_id's transition event (trace_body.h; without the call's part). */
static int put_fields(buf_t *b, const trace_ev_t *ev, int with_call, const char *run_id)
{
    /* The transitions view reads these from a transition's stored body. */
    int view = ev->state_to != NULL;
    put_int_field(b, view ? "ts_ns" : KEY("ts_ns", TB_TS), ts_of(ev));
    put_int_field(b, KEY("mono_ns", TB_MONO), mono_of(ev));
    put_id(b, KEY("span_id", TB_SPAN), ev->span_id, run_id);
    put_id(b, KEY("parent_id", TB_PARENT), ev->parent_id, run_id);
    put_coded(b, KEY("phase", TB_PHASE), TB_PHASE, ev->phase, run_id);
    put_coded(b, KEY("op", TB_OP), TB_OP, ev->op, run_id);
    put_name(b, KEY("name", TB_NAME), ev, run_id);
    put_field(b, "state_from", ev->state_from);
    put_field(b, "state_to", ev->state_to);
    put_field(b, "event", ev->event);
    put_id(b, KEY("end_span", TB_END_SPAN), ev->end_span, run_id);
    put_int_field(b, view ? "step" : KEY("step", TB_STEP), ev->step);
    put_coded(b, KEY("status", TB_STATUS), TB_STATUS, ev->status, run_id);
    put_field(b, KEY("error", TB_ERROR), ev->error);
    if (ev->attrs) {
        put_attrs(b, KEY("attrs", TB_ATTRS), ev->attrs, run_id);
        /* Inside the attrs object, as trace_line_write puts it back: before its brace. */
        if (with_call && ev->call && !b->failed && b->s[b->len - 2] != '{') {
            b->len--;
            put_call(b, ev->call);
            buf_add_fast(b, "}", 1);
        }
    }
    return buf_add_fast(b, "}", 1);
}

/* The stored array of run_id's event that is no transition: its fields in trace_body.h's
 * slot order, each with its leading comma, absent ones null, trailing nulls left out, and
 * the closing bracket. */
static int put_slots(buf_t *b, const trace_ev_t *ev, const char *run_id, int view)
{
    int64_t ts = ts_of(ev), base = trace_body_base_ns(run_id);
    put_int_field(b, NULL, view ? 0 : base >= 0 && ts >= base ? -(ts - base) - 1 : ts);
    put_int_field(b, NULL, mono_of(ev));
    put_id(b, NULL, ev->span_id, run_id);
    put_id(b, NULL, ev->parent_id, run_id);
    put_coded(b, NULL, TB_PHASE, ev->phase, run_id);
    put_coded(b, NULL, TB_OP, ev->op, run_id);
    put_name(b, NULL, ev, run_id);
    put_int_field(b, NULL, view ? 0 : ev->step);
    put_attrs(b, NULL, ev->attrs, run_id);
    put_coded(b, NULL, TB_STATUS, ev->status, run_id);
    put_field(b, NULL, ev->error);
    put_id(b, NULL, ev->end_span, run_id);
    while (!b->failed && b->len >= 5 && !memcmp(b->s + b->len - 5, ",null", 5))
        b->len -= 5;
    return buf_add_fast(b, "]", 1);
}

/* {"v":1,"run_id":"...","seq":N — the head the stored body leaves to its row. */
static void put_head(buf_t *b, const char *run_id, int64_t seq)
{
    buf_adds(b, "{\"v\":");
    put_i64(b, TRACE_VERSION);
    put_field(b, "run_id", run_id);
    put_int_field(b, "seq", seq);
}

int trace_body_is_slim(const char *body, size_t len)
{
    return len >= 2 && (body[0] == '[' || (body[0] == '{' && strncmp(body, "{\"v\":", 5) != 0));
}

int trace_line_write(buf_t *b, const char *run_id, int64_t seq, const char *body, size_t len,
                     const trace_call_t *call)
{
    if (!trace_body_is_slim(body, len))
        return buf_add_fast(b, body, len);
    put_head(b, run_id, seq);
    size_t at = b->len;
    int rc = trace_body_is_short(body, len) ? trace_body_expand(b, run_id, body, len)
                                            : buf_add_fast(b, body, len);
    if (rc == ERR_INVAL) { /* not of this form after all: shown as it is stored */
        b->len = at;
        rc = buf_add_fast(b, body, len);
    }
    if (rc)
        return rc;
    b->s[at] = ','; /* the body's opening brace: its fields follow the head */
    /* attrs is the body's last field: the call's part goes before its closing brace. A
     * body without attrs has nowhere to put it (its writer passes no call). */
    if (call && b->len - at >= 4 && !memcmp(b->s + b->len - 2, "}}", 2) &&
        b->s[b->len - 3] != '{') {
        b->len -= 2;
        put_call(b, call);
        return buf_add_fast(b, "}}", 2);
    }
    return 0;
}

int trace_event_write(buf_t *b, const char *run_id, int64_t seq, const trace_ev_t *ev)
{
    put_head(b, run_id, seq);
    return put_fields(b, ev, 1, NULL);
}

int trace_body_line_write(buf_t *body, buf_t *line, const char *run_id, int64_t seq,
                          const trace_ev_t *ev)
{
    trace_ev_t e = *ev; /* one stamp for both */
    e.ts_ns = ts_of(ev);
    e.mono_ns = mono_of(ev);
    int rc = trace_body_write(body, run_id, &e);
    return rc ? rc : trace_event_write(line, run_id, seq, &e);
}

int trace_body_write(buf_t *b, const char *run_id, const trace_ev_t *ev)
{
    size_t at = b->len;
    if (!ev->state_from && !ev->state_to && !ev->event) {
        int rc = put_slots(b, ev, run_id, 0);
        if (!rc)
            b->s[at] = '['; /* the first slot's comma opens it */
        return rc;
    }
    /* A transition: what the view reads by name, the rest as slots. */
    put_int_field(b, "ts_ns", ts_of(ev));
    b->s[at] = '{';
    put_field(b, "state_from", ev->state_from);
    put_field(b, "state_to", ev->state_to);
    put_field(b, "event", ev->event);
    put_int_field(b, "step", ev->step);
    put_key(b, TB_FIELDS);
    size_t open = b->len;
    int rc = put_slots(b, ev, run_id, 1);
    if (!rc)
        b->s[open] = '[';
    return rc ? rc : buf_add_fast(b, "}", 1);
}

char *trace_event_build(const char *run_id, int64_t seq, const trace_ev_t *ev)
{
    buf_t b;
    buf_init(&b, 0);
    if (trace_event_write(&b, run_id, seq, ev)) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b);
}

int trace_file_path(const char *dir, const char *run_id, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s.jsonl", dir, run_id);
    return n < 0 || (size_t)n >= len ? ERR_INVAL : 0;
}

int trace_file_open(const char *dir, const char *run_id)
{
    char path[1200];
    if (trace_file_path(dir, run_id, path, sizeof path))
        return -1;
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

int trace_fd_append(int fd, const char *line)
{
    size_t n = strlen(line);
    /* One write per line so concurrent readers (follow mode) never see half an event;
     * O_APPEND makes each write land at the end. */
    char stackbuf[4096];
    char *buf = n + 1 <= sizeof stackbuf ? stackbuf : malloc(n + 1);
    int rc = 0;
    if (!buf)
        return ERR_NOMEM;
    memcpy(buf, line, n);
    buf[n] = '\n';
    size_t off = 0;
    while (off < n + 1) {
        ssize_t w = write(fd, buf + off, n + 1 - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = ERR_IO;
            break;
        }
        off += (size_t)w;
    }
    if (buf != stackbuf)
        free(buf);
    return rc;
}

int trace_file_append(const char *dir, const char *run_id, const char *line)
{
    int fd = trace_file_open(dir, run_id);
    if (fd < 0)
        return ERR_IO;
    int rc = trace_fd_append(fd, line);
    if (close(fd) < 0)
        rc = ERR_IO;
    return rc;
}

/* Span ids come from a generator per thread (splitmix64), seeded from getrandom once, and
 * again in a child after fork: a syscall per span was five per step. Ids need only be
 * unique, not unpredictable. */
static _Thread_local uint64_t span_state;
static _Thread_local int span_seeded;
static int span_atfork_set;

static void span_atfork_child(void)
{
    span_seeded = 0;
}

void trace_span_id(char buf[17])
{
    if (!span_seeded) {
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
            seed = loop_mono_ns() * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
        span_state = seed;
        span_seeded = 1;
        /* Without the handler a forked child would repeat its parent's ids: try again on
         * the next seeding. */
        if (!__atomic_exchange_n(&span_atfork_set, 1, __ATOMIC_ACQ_REL) &&
            pthread_atfork(NULL, NULL, span_atfork_child) != 0)
            __atomic_store_n(&span_atfork_set, 0, __ATOMIC_RELEASE);
    }
    uint64_t z = (span_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, z >>= 4)
        buf[i] = hex[z & 15];
    buf[16] = 0;
}

static void mask(char *p, size_t n)
{
    /* Overwrite in place with a fixed marker; shorter secrets become all '*'. */
    static const char marker[] = "[REDACTED]";
    size_t m = sizeof marker - 1;
    if (n >= m) {
        memcpy(p, marker, m);
        memset(p + m, '*', n - m);
    } else {
        memset(p, '*', n);
    }
}

static int secret_name(const char *name, size_t len)
{
    static const char *const words[] = {"KEY", "TOKEN", "SECRET", "PASSWORD"};
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
        size_t wl = strlen(words[w]);
        for (size_t i = 0; i + wl <= len; i++)
            if (strncmp(name + i, words[w], wl) == 0)
                return 1;
    }
    return 0;
}

void trace_redact(char *s)
{
    if (!s)
        return;
    /* Values of secret-looking environment variables, wherever they appear. */
    extern char **environ;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || !secret_name(*e, (size_t)(eq - *e)))
            continue;
        const char *val = eq + 1;
        size_t vl = strlen(val);
        if (vl < 4)
            continue;
        for (char *p = strstr(s, val); p; p = strstr(p + vl, val))
            mask(p, vl);
    }
    /* Credentials in header-like text. */
    static const char *const heads[] = {"Bearer ", "x-api-key: ", "Authorization: "};
    for (size_t h = 0; h < sizeof heads / sizeof heads[0]; h++) {
        size_t hl = strlen(heads[h]);
        for (char *p = strcasestr(s, heads[h]); p; p = strcasestr(p + hl, heads[h])) {
            char *v = p + hl;
            size_t vl = 0;
            while (v[vl] && !isspace((unsigned char)v[vl]) && v[vl] != '"' && v[vl] != ',')
                vl++;
            if (vl > 0 && strncmp(v, "[REDACTED]", vl < 10 ? vl : 10) != 0 &&
                strncmp(v, "Bearer", 6) != 0)
                mask(v, vl);
        }
    }
}

struct trace_rewrite {
    FILE *f;
    char path[1200];
    char tmp[1210];
};

trace_rewrite_t *trace_rewrite_begin(const char *dir, const char *run_id)
{
    trace_rewrite_t *w = calloc(1, sizeof *w);
    if (!w || trace_file_path(dir, run_id, w->path, sizeof w->path)) {
        free(w);
        return NULL;
    }
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp", w->path);
    w->f = fopen(w->tmp, "w");
    if (!w->f) {
        free(w);
        return NULL;
    }
    return w;
}

int trace_rewrite_line(trace_rewrite_t *w, const char *line)
{
    return w && fputs(line, w->f) >= 0 && fputc('\n', w->f) != EOF ? 0 : ERR_IO;
}

int trace_rewrite_end(trace_rewrite_t *w, int ok)
{
    if (!w)
        return ERR_IO;
    int rc = fclose(w->f) == 0 && ok ? 0 : ERR_IO;
    if (!rc && rename(w->tmp, w->path) != 0)
        rc = ERR_IO;
    if (rc)
        unlink(w->tmp);
    free(w);
    return rc;
}
