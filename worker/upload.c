/* upload.c: artifacts from the worker to the master (see upload.h). */
#include "upload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "log.h"

#define PATH_LEN 4096
#define DIR_LEN  3400     /* a directory: room left in PATH_LEN for a 255-byte name */

typedef struct {
    char *name;
    char sha256[RR_SHA256_HEX];
    uint64_t total;
    uint64_t acked;             /* bytes the master said it holds */
    uint64_t sent;              /* next byte to send */
    bool awaiting;              /* chunks sent, no ack since */
    uint64_t waiting_since;     /* mono ms of the last ack progress (or first send) */
    int fd;                     /* the pending link, open */
} upload_t;

struct _rr_uploads_t {
    char *dir;                  /* artifacts_dir */
    uint64_t job;
    upload_t *items;            /* in upload order */
    size_t count, cap;
    uint8_t *buf;               /* one chunk */
};

static void pending_dir(const char *artifacts_dir, uint64_t job, char *buf, size_t len)
{
    snprintf(buf, len, "%.3300s/%" PRIu64 ".pending", artifacts_dir, job);
}

int rr_upload_mark(const char *artifacts_dir, uint64_t job, const char *name, char *err,
                   size_t errlen)
{
    char dir[DIR_LEN], link_path[PATH_LEN], target[PATH_LEN];
    pending_dir(artifacts_dir, job, dir, sizeof dir);
    snprintf(link_path, sizeof link_path, "%s/%.255s", dir, name);
    snprintf(target, sizeof target, "%.3000s/%" PRIu64 "/%.255s", artifacts_dir, job, name);
    if ((mkdir(dir, 0750) < 0 && errno != EEXIST)
        || (unlink(link_path) < 0 && errno != ENOENT) || link(target, link_path) < 0) {
        snprintf(err, errlen, "cannot queue %s for the master: %s: %s", name, link_path,
                 strerror(errno));
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);   /* the link survives a crash */
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return 0;
}

rr_uploads_t *rr_uploads_new(const char *artifacts_dir, uint64_t job)
{
    if (!artifacts_dir)
        return NULL;
    rr_uploads_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->dir = strdup(artifacts_dir);
    self->job = job;                /* buf: at the first chunk (most jobs upload nothing) */
    if (!self->dir)
        rr_uploads_destroy(&self);
    return self;
}

static void upload_clear(upload_t *u)
{
    if (u->fd >= 0)
        close(u->fd);
    free(u->name);
}

void rr_uploads_destroy(rr_uploads_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rr_uploads_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        upload_clear(&self->items[i]);
    free(self->items);
    free(self->buf);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

static upload_t *find(rr_uploads_t *self, const char *name)
{
    for (size_t i = 0; self && i < self->count; i++)
        if (!strcmp(self->items[i].name, name))
            return &self->items[i];
    return NULL;
}

/* Drop upload U; unlink its pending link (the master holds it, or refused it). */
static void finish(rr_uploads_t *self, upload_t *u)
{
    char path[PATH_LEN], dir[DIR_LEN];
    pending_dir(self->dir, self->job, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%.255s", dir, u->name);
    if (unlink(path) < 0 && errno != ENOENT)
        rr_warn("job %" PRIu64 ": %s: %s", self->job, path, strerror(errno));
    rmdir(dir);                 /* goes once empty */
    upload_clear(u);
    size_t at = (size_t)(u - self->items);
    memmove(u, u + 1, (self->count - at - 1) * sizeof *u);
    self->count--;
}

int rr_uploads_add(rr_uploads_t *self, const char *name, const char *sha256, uint64_t size)
{
    char path[PATH_LEN], dir[DIR_LEN];
    if (!self)
        return 0;
    pending_dir(self->dir, self->job, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%.255s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    upload_t *u = find(self, name);
    if (fd < 0 || !rr_sha256_valid(sha256)) {
        rr_error("job %" PRIu64 ": artifact %s: cannot upload %s: %s", self->job, name, path,
                 fd < 0 ? strerror(errno) : "no valid sha256");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (u) {
        upload_clear(u);                /* a newer transfer to the same name */
    } else {
        if (self->count == self->cap) {
            size_t cap = self->cap ? 2 * self->cap : 4;
            upload_t *items = realloc(self->items, cap * sizeof *items);
            if (!items) {
                close(fd);
                return -1;
            }
            self->items = items;
            self->cap = cap;
        }
        u = &self->items[self->count++];
    }
    *u = (upload_t){ .name = strdup(name), .total = size, .fd = fd };
    snprintf(u->sha256, sizeof u->sha256, "%s", sha256);
    rr_info("job %" PRIu64 ": artifact %s: uploading %" PRIu64 " bytes to the master",
            self->job, name, size);
    return u->name ? 0 : -1;
}

int rr_uploads_reload(rr_uploads_t *self, char *err, size_t errlen)
{
    char dir[DIR_LEN], path[PATH_LEN], sha[RR_SHA256_HEX];
    if (!self)
        return 0;
    pending_dir(self->dir, self->job, dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "job %" PRIu64 ": %s: %s", self->job, dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    uint64_t size;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%.255s", dir, e->d_name);
        if (rr_sha256_file(path, sha, &size) < 0)
            rr_error("job %" PRIu64 ": pending artifact %s: %s", self->job, path,
                     strerror(errno));
        else
            rr_uploads_add(self, e->d_name, sha, size);
    }
    closedir(d);
    return 0;
}

size_t rr_uploads_pending(const rr_uploads_t *self)
{
    return self ? self->count : 0;
}

/* One chunk of U from u->sent; 0 sent, -1 not (queue full, or unreadable). */
static int send_chunk(rr_uploads_t *self, upload_t *u, zsock_t *sock)
{
    uint64_t left = u->total - u->sent;
    size_t n = left < PROTO_ARTIFACT_CHUNK ? (size_t)left : PROTO_ARTIFACT_CHUNK;
    if (n && !self->buf && !(self->buf = malloc(PROTO_ARTIFACT_CHUNK))) {
        rr_error("job %" PRIu64 ": artifact %s: out of memory", self->job, u->name);
        return -1;
    }
    ssize_t got = n ? pread(u->fd, self->buf, n, (off_t)u->sent) : 0;
    if (got != (ssize_t)n) {
        rr_error("job %" PRIu64 ": artifact %s: read at %" PRIu64 ": %s", self->job, u->name,
                 u->sent, got < 0 ? strerror(errno) : "file shorter than its size");
        return -1;
    }
    proto_msg_t msg = { .type = PROTO_MSG_ARTIFACT_CHUNK, .version = PROTO_VERSION };
    msg.u.artifact_chunk = (proto_artifact_chunk_t){ .job = self->job, .name = u->name,
        .off = u->sent, .total = u->total, .sha256 = u->sha256, .data = n ? self->buf : NULL,
        .data_len = n };
    proto_error_t perr = { 0 };
    if (proto_send(sock, NULL, &msg, &perr) < 0) {
        if (perr.status != PROTO_OK)
            rr_error("job %" PRIu64 ": artifact %s: %s", self->job, u->name, perr.text);
        return -1;
    }
    u->sent += n;
    return 0;
}

/* Send again from the last ack; when the master holds every byte but has not
 * said done, the last byte goes again so that it answers. */
static void restart_from_ack(upload_t *u)
{
    u->sent = u->acked < u->total ? u->acked : (u->total ? u->total - 1 : 0);
    u->awaiting = false;
}

void rr_uploads_pump(rr_uploads_t *self, zsock_t *sock, uint64_t now)
{
    upload_t *u = self && self->count ? &self->items[0] : NULL;
    if (!u)
        return;
    if (u->awaiting && now - u->waiting_since >= RR_UPLOAD_RESEND_MS) {
        rr_warn("job %" PRIu64 ": artifact %s: no ack beyond byte %" PRIu64 " for %u ms: "
                "resending", self->job, u->name, u->acked, RR_UPLOAD_RESEND_MS);
        restart_from_ack(u);
    }
    /* An empty artifact still sends one (empty) chunk: the master answers it. */
    while ((u->sent < u->total || (u->total == 0 && !u->awaiting))
           && u->sent < u->acked + (uint64_t)RR_UPLOAD_WINDOW * PROTO_ARTIFACT_CHUNK) {
        if (send_chunk(self, u, sock) < 0)
            return;
        if (!u->awaiting)
            u->waiting_since = now;
        u->awaiting = true;
    }
}

void rr_uploads_ack(rr_uploads_t *self, const proto_artifact_ack_t *ack, uint64_t now)
{
    upload_t *u = find(self, ack->name);
    if (!u)
        return;                         /* a late ack of one already done */
    if (ack->error || ack->done) {
        if (ack->error)
            rr_warn("job %" PRIu64 ": artifact %s: the master refused it: %s", self->job,
                    u->name, ack->error);
        else
            rr_info("job %" PRIu64 ": artifact %s: stored by the master (%" PRIu64 " bytes)",
                    self->job, u->name, u->total);
        finish(self, u);
        return;
    }
    if (ack->off > u->total)
        return;
    if (ack->off != u->acked)
        u->waiting_since = now;
    if (ack->off < u->acked)
        u->sent = ack->off;             /* the master holds less than it said (state lost) */
    u->acked = ack->off;
    if (u->sent < u->acked)
        u->sent = u->acked;             /* it held more: a resumed upload skips ahead */
    u->awaiting = u->sent > u->acked || u->acked == u->total;
}

void rr_uploads_rewind(rr_uploads_t *self)
{
    for (size_t i = 0; self && i < self->count; i++)
        restart_from_ack(&self->items[i]);
}

void rr_uploads_abandon(rr_uploads_t *self, const char *why)
{
    while (self && self->count) {
        rr_warn("job %" PRIu64 ": artifact %s: upload given up: %s", self->job,
                self->items[0].name, why);
        finish(self, &self->items[0]);
    }
}
