/* spool.c: per-job append-only spool of encoded JOB_EVENTs (see spool.h). */
#include "spool.h"
#include "grow.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REC_HEADER 13u           /* type + len + seq */
#define REC_MAX    (8u << 20)    /* a record larger than this is corruption */

typedef struct {
    uint64_t seq;
    uint64_t off;
    uint32_t len;
} spool_entry_t;

struct _rr_spool_t {
    uint64_t job;
    char path[4096];
    int fd;
    uint64_t size;          /* bytes of whole records in the file */
    spool_entry_t *index;   /* unacked events, seq ascending, contiguous */
    size_t count, cap, head;/* live entries are index[head .. count) */
    uint64_t last_seq, acked;
    bool final, dirty;
};

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int index_push(rr_spool_t *self, uint64_t seq, uint64_t off, uint32_t len)
{
    spool_entry_t *grown = rr_grow(self->index, self->count, &self->cap, sizeof *grown, 64);
    if (!grown)
        return -1;
    self->index = grown;
    self->index[self->count++] = (spool_entry_t){ seq, off, len };
    return 0;
}

/* Drop index entries <= SEQ; compacts the array when the head is half of it. */
static void index_drop(rr_spool_t *self, uint64_t seq)
{
    while (self->head < self->count && self->index[self->head].seq <= seq)
        self->head++;
    if (self->head == self->count) {
        self->head = self->count = 0;
    } else if (self->head > self->count / 2) {
        memmove(self->index, self->index + self->head,
                (self->count - self->head) * sizeof *self->index);
        self->count -= self->head;
        self->head = 0;
    }
}

static void apply_ack(rr_spool_t *self, uint64_t seq)
{
    if (seq > self->last_seq)
        seq = self->last_seq;
    if (seq <= self->acked)
        return;
    self->acked = seq;
    index_drop(self, seq);
}

/* Walk the file's records; a torn tail is cut off. */
static int spool_reload(rr_spool_t *self, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(self->fd, &st) < 0) {
        snprintf(err, errlen, "spool %s: stat: %s", self->path, strerror(errno));
        return -1;
    }
    uint64_t off = 0, end = (uint64_t)st.st_size;
    uint8_t h[REC_HEADER];
    while (off + REC_HEADER <= end) {
        if (pread(self->fd, h, REC_HEADER, (off_t)off) != (ssize_t)REC_HEADER)
            break;
        uint32_t len = (uint32_t)get_le(h + 1, 4);
        uint64_t seq = get_le(h + 5, 8);
        bool event = h[0] == 'E' || h[0] == 'F';
        if ((!event && h[0] != 'A') || len > REC_MAX || off + REC_HEADER + len > end)
            break;
        if (event && seq == self->last_seq + 1) {
            if (index_push(self, seq, off + REC_HEADER, len) < 0) {
                snprintf(err, errlen, "spool %s: out of memory", self->path);
                return -1;
            }
            self->last_seq = seq;
            self->final = self->final || h[0] == 'F';
        } else if (!event) {
            if (seq > self->last_seq)   /* events up to seq were acked and cut */
                self->last_seq = seq;
            apply_ack(self, seq);
        } else {
            break;  /* a gap in seq: nothing after it can be trusted */
        }
        off += REC_HEADER + len;
    }
    self->size = off;
    if (off != end && ftruncate(self->fd, (off_t)off) < 0) {
        snprintf(err, errlen, "spool %s: cut torn tail: %s", self->path, strerror(errno));
        return -1;
    }
    return 0;
}

rr_spool_t *rr_spool_open(const char *dir, uint64_t job, char *err, size_t errlen)
{
    rr_spool_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "spool job %" PRIu64 ": out of memory", job);
        return NULL;
    }
    self->job = job;
    self->fd = -1;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "spool dir %s: %s", dir, strerror(errno));
        goto err_free;
    }
    snprintf(self->path, sizeof self->path, "%s/job-%" PRIu64 ".spool", dir, job);
    self->fd = open(self->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (self->fd < 0) {
        snprintf(err, errlen, "spool %s: open: %s", self->path, strerror(errno));
        goto err_free;
    }
    if (spool_reload(self, err, errlen) < 0)
        goto err_close;
    return self;

err_close:
    close(self->fd);
err_free:
    free(self->index);
    free(self);
    return NULL;
}

void rr_spool_destroy(rr_spool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rr_spool_t *self = *self_p;
    if (self->fd >= 0)
        close(self->fd);
    free(self->index);
    free(self);
    *self_p = NULL;
}

void rr_spool_remove(rr_spool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    unlink((*self_p)->path);
    rr_spool_destroy(self_p);
}

static int write_record(rr_spool_t *self, char type, uint64_t seq, const void *data, uint32_t len)
{
    uint8_t h[REC_HEADER];
    h[0] = (uint8_t)type;
    put_le(h + 1, len, 4);
    put_le(h + 5, seq, 8);
    if (pwrite(self->fd, h, REC_HEADER, (off_t)self->size) != (ssize_t)REC_HEADER)
        return -1;
    if (len && pwrite(self->fd, data, len, (off_t)(self->size + REC_HEADER)) != (ssize_t)len)
        return -1;
    self->size += REC_HEADER + len;
    return 0;
}

int rr_spool_append(rr_spool_t *self, uint64_t seq, const void *data, size_t len, bool final,
                    char *err, size_t errlen)
{
    if (seq != self->last_seq + 1 || len > REC_MAX) {
        snprintf(err, errlen, "spool %s: append seq %" PRIu64 " (%zu bytes) after %" PRIu64
                 ": out of order or too big", self->path, seq, len, self->last_seq);
        return -1;
    }
    uint64_t off = self->size;
    if (write_record(self, final ? 'F' : 'E', seq, data, (uint32_t)len) < 0) {
        snprintf(err, errlen, "spool %s: write seq %" PRIu64 ": %s", self->path, seq,
                 strerror(errno));
        if (ftruncate(self->fd, (off_t)off) == 0)
            self->size = off;
        return -1;
    }
    if (index_push(self, seq, off + REC_HEADER, (uint32_t)len) < 0) {
        snprintf(err, errlen, "spool %s: out of memory", self->path);
        return -1;
    }
    self->last_seq = seq;
    self->final = self->final || final;
    self->dirty = true;
    return 0;
}

int rr_spool_sync(rr_spool_t *self, char *err, size_t errlen)
{
    if (!self->dirty)
        return 0;
    if (fdatasync(self->fd) < 0) {
        snprintf(err, errlen, "spool %s: fdatasync: %s", self->path, strerror(errno));
        return -1;
    }
    self->dirty = false;
    return 0;
}

int rr_spool_ack(rr_spool_t *self, uint64_t seq)
{
    if (seq > self->last_seq)
        seq = self->last_seq;
    if (seq <= self->acked)
        return 0;
    apply_ack(self, seq);
    if (self->acked == self->last_seq && !self->final) {
        /* Nothing left to resend: start the file over (keeps it small). The
         * ack mark goes to offset 0 BEFORE the cut, so a crash between the two
         * still leaves the numbering (what follows the mark is an event's
         * msgpack body, never a record type, and is cut at reload): a file cut
         * first would restart seqs at 1, which the master drops as duplicates. */
        self->size = 0;
        if (write_record(self, 'A', seq, NULL, 0) < 0 || ftruncate(self->fd, REC_HEADER) < 0)
            return -1;
        return 0;
    }
    return write_record(self, 'A', seq, NULL, 0);
}

int rr_spool_read(rr_spool_t *self, uint64_t seq, uint8_t **data, size_t *len)
{
    if (self->head >= self->count || seq < self->index[self->head].seq || seq > self->last_seq)
        return -1;
    const spool_entry_t *e = &self->index[self->head + (seq - self->index[self->head].seq)];
    uint8_t *buf = malloc(e->len ? e->len : 1);
    if (!buf)
        return -1;
    if (pread(self->fd, buf, e->len, (off_t)e->off) != (ssize_t)e->len) {
        free(buf);
        return -1;
    }
    *data = buf;
    *len = e->len;
    return 0;
}

uint64_t rr_spool_job(const rr_spool_t *self) { return self->job; }
uint64_t rr_spool_last_seq(const rr_spool_t *self) { return self->last_seq; }
uint64_t rr_spool_acked(const rr_spool_t *self) { return self->acked; }
uint64_t rr_spool_size(const rr_spool_t *self) { return self->size; }
size_t rr_spool_pending(const rr_spool_t *self) { return self->count - self->head; }
bool rr_spool_final(const rr_spool_t *self) { return self->final; }

bool rr_spool_done(const rr_spool_t *self)
{
    return self->final && self->acked == self->last_seq;
}

int rr_spool_list(const char *dir, uint64_t **jobs, size_t *count, char *err, size_t errlen)
{
    *jobs = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "spool dir %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    size_t cap = 0;
    while ((de = readdir(d))) {
        uint64_t job;
        char tail[8];
        if (sscanf(de->d_name, "job-%" SCNu64 ".%7s", &job, tail) != 2 || strcmp(tail, "spool"))
            continue;
        uint64_t *grown = rr_grow(*jobs, *count, &cap, sizeof *grown, 16);
        if (!grown) {
            snprintf(err, errlen, "spool dir %s: out of memory", dir);
            free(*jobs);
            *jobs = NULL;
            *count = 0;
            closedir(d);
            return -1;
        }
        *jobs = grown;
        (*jobs)[(*count)++] = job;
    }
    closedir(d);
    return 0;
}
