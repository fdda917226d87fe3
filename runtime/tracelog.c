/*
 * tracelog: the segment log of trace lines; see tracelog.h for the modes and what a kill
 * leaves.
 */
#include "tracelog.h"

#include "buf.h"
#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_FMT "segment-%06u.jsonl"
#define CURRENT "current.jsonl"
/* Lines between two looks at the segment's real size (other processes append to it too). */
#define RESTAT_EVERY 64
/* A batch larger than this is written before more lines are queued. */
#define QUEUE_MAX (1u << 20)

struct tracelog {
    char dir[1024];
    char path[1100];
    size_t max;
    int fd;
    unsigned seg;     /* number of the open segment */
    size_t size;      /* its size as far as this process knows */
    unsigned since;   /* lines written since the last fstat */
    unsigned queued;  /* lines in q */
    int lost;         /* a line was dropped for want of memory since the last flush */
    buf_t q;          /* lines waiting for the flush, each with its newline */
};

int tracelog_mode_parse(const char *s, int *mode)
{
    static const char *const names[] = {"segments", "runs", "off"};
    if (!s || !*s) {
        *mode = TRACELOG_SEGMENTS;
        return 0;
    }
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) {
            *mode = i;
            return 0;
        }
    return ERR_INVAL;
}

tracelog_t *tracelog_new(const char *dir, size_t max_bytes)
{
    tracelog_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    snprintf(t->dir, sizeof t->dir, "%s", dir);
    t->max = max_bytes ? max_bytes : (size_t)TRACELOG_SEGMENT_MB << 20;
    t->fd = -1;
    buf_init(&t->q, 0);
    return t;
}

/* The segment number of a file name, 0 if it is not a segment. */
static unsigned seg_number(const char *name)
{
    unsigned n = 0;
    int end = 0;
    if (sscanf(name, "segment-%6u.jsonl%n", &n, &end) == 1 && name[end] == 0 &&
        strlen(name) == sizeof "segment-000000.jsonl" - 1)
        return n;
    return 0;
}

/* The highest segment number in dir, 0 when there is none. -1 when dir cannot be read. */
static long newest_segment(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    unsigned best = 0;
    for (struct dirent *e; (e = readdir(d));) {
        unsigned n = seg_number(e->d_name);
        if (n > best)
            best = n;
    }
    closedir(d);
    return best;
}

/* Point current.jsonl at the open segment (a relative link, replaced atomically so a reader
 * following the name never finds it missing). Best effort: the segments are what counts. */
static void link_current(tracelog_t *t)
{
    char want[64], have[64], link[1100], tmp[1150];
    snprintf(want, sizeof want, SEG_FMT, t->seg);
    snprintf(link, sizeof link, "%s/" CURRENT, t->dir);
    ssize_t n = readlink(link, have, sizeof have - 1);
    if (n >= 0) {
        have[n] = 0;
        if (!strcmp(have, want))
            return;
        /* Another process has already moved on: never point the name backwards. */
        if (seg_number(have) > t->seg)
            return;
    }
    snprintf(tmp, sizeof tmp, "%s/." CURRENT ".%ld", t->dir, (long)getpid());
    unlink(tmp);
    if (symlink(want, tmp) != 0 || rename(tmp, link) != 0)
        unlink(tmp);
}

/* Open the newest segment that still has room, creating the next one when the newest is
 * full. 0 or ERR_IO. */
static int open_segment(tracelog_t *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    mkdir(t->dir, 0755); /* the folder may have been removed while we ran */
    long newest = newest_segment(t->dir);
    if (newest < 0)
        return ERR_IO;
    unsigned n = newest > 0 ? (unsigned)newest : 1;
    if (n < t->seg)
        n = t->seg;
    for (int tries = 0; tries < 4; tries++, n++) {
        snprintf(t->path, sizeof t->path, "%s/" SEG_FMT, t->dir, n);
        int fd = open(t->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        struct stat sb;
        if (fd < 0)
            return ERR_IO;
        if (fstat(fd, &sb) == 0 && (size_t)sb.st_size < t->max) {
            t->fd = fd;
            t->seg = n;
            t->size = (size_t)sb.st_size;
            t->since = 0;
            link_current(t);
            return 0;
        }
        close(fd);
    }
    return ERR_IO; /* four full segments in a row: others are racing ahead; retry later */
}

int tracelog_add(tracelog_t *t, const char *line, size_t len)
{
    if (t->q.len + len + 1 > QUEUE_MAX && t->q.len)
        tracelog_flush(t); /* its failure is reported by the next flush's result */
    if (buf_add(&t->q, line, len) || buf_add(&t->q, "\n", 1)) {
        buf_reset(&t->q);
        t->queued = 0;
        t->lost = 1;
        return ERR_NOMEM;
    }
    t->queued++;
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return ERR_IO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int tracelog_flush(tracelog_t *t)
{
    int rc = t->lost ? ERR_NOMEM : 0;
    t->lost = 0;
    if (!t->q.len)
        return rc;
    int gone = 0;
    if (t->fd >= 0 && t->since >= RESTAT_EVERY) {
        struct stat sb;
        if (fstat(t->fd, &sb) == 0) {
            t->size = (size_t)sb.st_size;
            gone = sb.st_nlink == 0; /* deleted under us (rm, another gc): write a new one */
        }
        t->since = 0;
    }
    int orc = t->fd < 0 || gone || t->size >= t->max ? open_segment(t) : 0;
    if (!orc)
        orc = write_all(t->fd, t->q.s, t->q.len);
    if (!orc) {
        t->size += t->q.len;
        t->since += t->queued;
    }
    buf_reset(&t->q);
    t->queued = 0;
    return orc ? orc : rc;
}

const char *tracelog_path(const tracelog_t *t)
{
    return t->fd >= 0 ? t->path : "";
}

void tracelog_free(tracelog_t *t)
{
    if (!t)
        return;
    if (t->fd >= 0)
        close(t->fd);
    buf_free(&t->q);
    free(t);
}

int tracelog_prune(const char *dir, int64_t before_ns, int *removed)
{
    *removed = 0;
    long newest = newest_segment(dir);
    if (newest < 0)
        return ERR_IO;
    DIR *d = opendir(dir);
    if (!d)
        return 0; /* no folder, no segments */
    for (struct dirent *e; (e = readdir(d));) {
        unsigned n = seg_number(e->d_name);
        char path[1100];
        struct stat sb;
        if (!n || n == (unsigned)newest)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &sb) != 0)
            continue;
        int64_t mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
        if (mtime < before_ns && unlink(path) == 0)
            (*removed)++;
    }
    closedir(d);
    return 0;
}
