/*
 * trace: see trace.h. Writes event JSON straight into a byte buffer (a json-c tree per
 * event cost ~20 allocations; the buffer is reused) and appends JSONL lines.
 */
#include "trace.h"

#include "err.h"
#include "loop.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* JSON string literal of s[0..n), escaped as json-c escapes (with NOSLASHESCAPE), so
 * events read the same as when json-c wrote them. */
static void put_strn(buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_add(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, added in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        switch (ch) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (ch >= 0x20)
                continue;
            memcpy(u, "\\u00", 4);
            u[4] = hex[ch >> 4];
            u[5] = hex[ch & 15];
            u[6] = 0;
            esc = u;
        }
        buf_add(b, s + run, i - run);
        buf_adds(b, esc);
        run = i + 1;
    }
    buf_add(b, s + run, n - run);
    buf_add(b, "\"", 1);
}

static void put_key(buf_t *b, const char *key)
{
    buf_add(b, ",", 1);
    put_strn(b, key, strlen(key));
    buf_add(b, ":", 1);
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
    buf_add(b, t + sizeof t - n, n);
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
            buf_add(b, t, n > 0 ? (size_t)n : 0);
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
        buf_add(b, "[", 1);
        for (size_t i = 0; i < n; i++) {
            if (i)
                buf_add(b, ",", 1);
            put_value(b, json_object_array_get_idx(v, i));
        }
        buf_add(b, "]", 1);
        break;
    }
    case json_type_object: {
        int first = 1;
        buf_add(b, "{", 1);
        json_object_object_foreach(v, k, mv)
        {
            if (!first)
                buf_add(b, ",", 1);
            first = 0;
            put_strn(b, k, strlen(k));
            buf_add(b, ":", 1);
            put_value(b, mv);
        }
        buf_add(b, "}", 1);
        break;
    }
    }
}

/* Absent fields are omitted rather than written as null: events are the bulk of a run's
 * bytes, and readers treat a missing field as null. */
static void put_field(buf_t *b, const char *key, const char *v)
{
    if (!v)
        return;
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

/* The fields after seq, each with its leading comma, and the closing brace; with_call: the
 * row's part of a tool call too (the line; the stored body leaves it out). */
static int put_fields(buf_t *b, const trace_ev_t *ev, int with_call)
{
    put_int_field(b, "ts_ns", (int64_t)loop_wall_ns());
    put_int_field(b, "mono_ns", (int64_t)loop_mono_ns());
    put_field(b, "span_id", ev->span_id);
    put_field(b, "parent_id", ev->parent_id);
    put_field(b, "phase", ev->phase);
    put_field(b, "op", ev->op);
    put_field(b, "name", ev->name);
    put_field(b, "state_from", ev->state_from);
    put_field(b, "state_to", ev->state_to);
    put_field(b, "event", ev->event);
    put_field(b, "end_span", ev->end_span);
    put_int_field(b, "step", ev->step);
    put_field(b, "status", ev->status);
    put_field(b, "error", ev->error);
    if (ev->attrs) {
        put_key(b, "attrs");
        put_value(b, ev->attrs);
        /* Inside the attrs object, as trace_line_write puts it back: before its brace. */
        if (with_call && ev->call && !b->failed && b->s[b->len - 2] != '{') {
            b->len--;
            put_call(b, ev->call);
            buf_add(b, "}", 1);
        }
    }
    return buf_add(b, "}", 1);
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
    return len >= 2 && body[0] == '{' && strncmp(body, "{\"v\":", 5) != 0;
}

int trace_line_write(buf_t *b, const char *run_id, int64_t seq, const char *body, size_t len,
                     const trace_call_t *call)
{
    if (!trace_body_is_slim(body, len))
        return buf_add(b, body, len);
    put_head(b, run_id, seq);
    buf_add(b, ",", 1);
    /* attrs is the body's last field: the call's part goes before its closing brace. A
     * body without attrs has nowhere to put it (its writer passes no call). */
    if (call && len >= 4 && !memcmp(body + len - 2, "}}", 2) && body[len - 3] != '{') {
        buf_add(b, body + 1, len - 3);
        put_call(b, call);
        return buf_add(b, "}}", 2);
    }
    return buf_add(b, body + 1, len - 1);
}

int trace_event_write(buf_t *b, const char *run_id, int64_t seq, const trace_ev_t *ev)
{
    put_head(b, run_id, seq);
    return put_fields(b, ev, 1);
}

int trace_body_write(buf_t *b, const trace_ev_t *ev)
{
    size_t at = b->len;
    int rc = put_fields(b, ev, 0);
    if (!rc)
        b->s[at] = '{'; /* the first field's comma opens the object */
    return rc;
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

void trace_span_id(char buf[17])
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = loop_mono_ns() * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    snprintf(buf, 17, "%016llx", (unsigned long long)v);
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
