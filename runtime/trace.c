/*
 * trace: see trace.h. Builds event JSON with json-c and appends JSONL lines. The file is
 * opened, appended and closed per event: thousands of concurrent runs would otherwise hold
 * thousands of descriptors, and the per-event cost is dwarfed by the SQLite commit.
 */
#include "trace.h"

#include "err.h"
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* Absent fields are omitted rather than written as null: events are the bulk of a run's
 * bytes, and readers treat a missing field as null. */
static void add_str(json_object *o, const char *key, const char *v)
{
    if (v)
        json_object_object_add(o, key, json_object_new_string(v));
}

char *trace_event_build(const char *run_id, int64_t seq, const trace_ev_t *ev)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "v", json_object_new_int(TRACE_VERSION));
    json_object_object_add(o, "run_id", json_object_new_string(run_id));
    json_object_object_add(o, "seq", json_object_new_int64(seq));
    json_object_object_add(o, "ts_ns", json_object_new_int64((int64_t)loop_wall_ns()));
    json_object_object_add(o, "mono_ns", json_object_new_int64((int64_t)loop_mono_ns()));
    add_str(o, "span_id", ev->span_id);
    add_str(o, "parent_id", ev->parent_id);
    add_str(o, "phase", ev->phase);
    add_str(o, "op", ev->op);
    add_str(o, "name", ev->name);
    add_str(o, "state_from", ev->state_from);
    add_str(o, "state_to", ev->state_to);
    add_str(o, "event", ev->event);
    add_str(o, "end_span", ev->end_span);
    json_object_object_add(o, "step", json_object_new_int(ev->step));
    add_str(o, "status", ev->status);
    add_str(o, "error", ev->error);
    if (ev->attrs)
        json_object_object_add(o, "attrs", json_object_get(ev->attrs));
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE);
    char *out = s ? strdup(s) : NULL;
    json_object_put(o);
    return out;
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
