/* artifacts.c: artifacts stored by the master (see artifacts.h).
 *
 * Everything runs on the master's loop. A chunk costs one pwrite, one
 * fdatasync and the SHA-256 of its new bytes (artifact_hashes.h), so the
 * last one needs no pass over the whole file (a 1 GiB artifact held the loop
 * about 2 s that way). Only an upload resumed after a master restart, whose
 * first bytes were written by the process before, is hashed from its file
 * when it is whole. */
#include "artifacts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"

/* Say why into WHY (LEN bytes); an over-long path is cut, never overflowed. */
__attribute__((format(printf, 3, 4)))
static void s_why(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

#define PATH_LEN 4096

typedef struct {
    char part[PATH_LEN];    /* <root>/<job>.partial/<name>: being uploaded */
    char final[PATH_LEN];   /* <root>/<job>/<name>: whole and verified */
    char part_dir[PATH_LEN], final_dir[PATH_LEN];
} art_paths_t;

bool rr_artifact_name_ok(const char *name, char *why, size_t len)
{
    size_t n = strlen(name);
    const char *problem = NULL;
    if (n == 0 || n > RR_ARTIFACT_NAME_MAX)
        problem = "must be 1 to 255 bytes";
    else if (strchr(name, '/') || streq(name, ".") || streq(name, ".."))
        problem = "must be a file name, not a path";
    for (const unsigned char *p = (const unsigned char *)name; !problem && *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            problem = "holds a control character";
    if (problem)
        s_why(why, len, "artifact name %s", problem);
    return problem == NULL;
}

char *rr_artifacts_root(const rr_master_config_t *config, char *buf, size_t len)
{
    char db[PATH_LEN];
    snprintf(db, sizeof db, "%s", config->db_path ? config->db_path : "./master.db");
    snprintf(buf, len, "%s/artifacts", dirname(db));
    return buf;
}

static void s_paths(rr_master_t *self, uint64_t job, const char *name, art_paths_t *p)
{
    char root[PATH_LEN];
    rr_artifacts_root(self->config, root, sizeof root);
    snprintf(p->part_dir, sizeof p->part_dir, "%.3000s/%" PRIu64 ".partial", root, job);
    snprintf(p->final_dir, sizeof p->final_dir, "%.3000s/%" PRIu64, root, job);
    snprintf(p->part, sizeof p->part, "%.3500s/%s", p->part_dir, name);
    snprintf(p->final, sizeof p->final, "%.3500s/%s", p->final_dir, name);
}

/* mkdir DIR's parent and DIR (0750); existing is fine. */
static int s_mkdirs(const char *dir)
{
    char parent[PATH_LEN];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (mkdir(parent, 0750) < 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(dir, 0750) < 0 && errno != EEXIST ? -1 : 0;
}

static int s_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Bytes held of an upload: the partial file's size, else (renamed before a
 * crash could mark the row) the final file's, with *RENAMED. */
static uint64_t s_have(const art_paths_t *p, bool *renamed)
{
    struct stat st;
    *renamed = false;
    if (stat(p->part, &st) == 0)
        return (uint64_t)st.st_size;
    if (stat(p->final, &st) == 0) {
        *renamed = true;
        return (uint64_t)st.st_size;
    }
    return 0;
}

static void s_ack(rr_master_t *self, zframe_t *rid, const proto_artifact_chunk_t *c,
                  uint64_t off, bool done, const char *error)
{
    proto_msg_t msg = { .type = PROTO_MSG_ARTIFACT_ACK, .version = PROTO_VERSION };
    msg.u.artifact_ack = (proto_artifact_ack_t){ .job = c->job, .name = c->name, .off = off,
                                                 .done = done, .error = (char *)error };
    rr_master_send(self, self->worker_sock, rid, &msg);
}

/* Refuse C for good: the row (when the job exists) says why, the worker gives it up. */
static void s_refuse(rr_master_t *self, zframe_t *rid, const proto_artifact_chunk_t *c,
                     const char *why, bool record)
{
    rr_warn("job %" PRIu64 ": artifact '%.200s' refused: %s", c->job, c->name, why);
    if (record && rr_store_artifact_fail(self->store, c->job, c->name, why) != RR_STORE_OK)
        rr_warn("job %" PRIu64 ": %s", c->job, rr_store_error(self->store));
    s_ack(self, rid, c, 0, false, why);
}

static bool s_chunk_valid(const proto_artifact_chunk_t *c, char *why, size_t len)
{
    if (!rr_artifact_name_ok(c->name, why, len))
        return false;
    if (!rr_sha256_valid(c->sha256))
        s_why(why, len, "sha256 '%.80s' is not 64 lower-case hex digits", c->sha256);
    else if (c->data_len > PROTO_ARTIFACT_CHUNK)
        s_why(why, len, "chunk of %zu bytes, more than %u", c->data_len, PROTO_ARTIFACT_CHUNK);
    else if (c->off > c->total || c->data_len > c->total - c->off)
        s_why(why, len, "chunk at %" PRIu64 " of %zu bytes goes past its total of %" PRIu64,
                 c->off, c->data_len, c->total);
    else
        return true;
    return false;
}

/* A new upload (or a new content under the same name): quota, then the row. */
static int s_begin(rr_master_t *self, const proto_artifact_chunk_t *c, const art_paths_t *p,
                   char *why, size_t len)
{
    uint64_t quota = self->config->artifact_quota_bytes ? self->config->artifact_quota_bytes
                                                        : RR_ARTIFACT_QUOTA_DEFAULT;
    uint64_t others = 0;
    rr_artifact_hashes_forget(self->artifact_hashes, c->job, c->name);
    unlink(p->part);
    unlink(p->final);
    int rc = rr_store_artifacts_bytes(self->store, c->job, c->name, &others);
    if (rc == RR_STORE_OK && (c->total > quota || others > quota - c->total))
        s_why(why, len, "%" PRIu64 " bytes would bring job %" PRIu64 "'s artifacts to %"
                 PRIu64 " bytes, over the master's artifact_quota of %" PRIu64 " bytes",
                 c->total, c->job, others + c->total, quota);
    if (rc == RR_STORE_OK)
        rc = rr_store_artifact_begin(self->store, c->job, c->name, c->total, c->sha256,
                                     why[0] ? why : NULL, rr_wall_ms());
    if (rc != RR_STORE_OK)
        s_why(why, len, "%s", rr_store_error(self->store));
    else if (!why[0])
        rr_info("job %" PRIu64 ": artifact '%s' (%" PRIu64 " bytes) uploading", c->job,
                c->name, c->total);
    return rc == RR_STORE_OK && !why[0] ? 0 : -1;
}

/* The row of C as it should be before its bytes: 1 go on, 0 answered already. */
static int s_row(rr_master_t *self, zframe_t *rid, const proto_artifact_chunk_t *c,
                 const art_paths_t *p)
{
    char why[512] = "";
    proto_artinfo_t row;
    int rc = rr_store_artifact_get(self->store, c->job, c->name, &row);
    int go = 1;
    if (rc == RR_STORE_OK && streq(row.state, RR_ARTIFACT_FAILED)) {
        s_ack(self, rid, c, 0, false, row.reason);
        go = 0;
    } else if (rc == RR_STORE_OK && streq(row.state, RR_ARTIFACT_COMPLETE)) {
        if (streq(row.sha256, c->sha256) && row.size == c->total)
            s_ack(self, rid, c, c->total, true, NULL);
        else
            s_ack(self, rid, c, 0, false, "an artifact of that name is stored already, "
                  "with another content (two transfers to the same name?)");
        go = 0;
    } else if (rc == RR_STORE_E_DB) {
        rr_error("job %" PRIu64 ": %s", c->job, rr_store_error(self->store));
        go = 0;                             /* no ack: the worker sends it again */
    } else if ((rc == RR_STORE_E_NOTFOUND || !streq(row.sha256, c->sha256)
                || row.size != c->total) && s_begin(self, c, p, why, sizeof why) < 0) {
        s_ack(self, rid, c, 0, false, why);
        rr_warn("job %" PRIu64 ": artifact '%.200s' refused: %s", c->job, c->name, why);
        go = 0;
    }
    rr_store_artinfo_clear(&row);
    return go;
}

/* Write C's bytes at its offset (creating the partial file) and fdatasync. */
static int s_write(const art_paths_t *p, const proto_artifact_chunk_t *c, uint64_t *have)
{
    if (s_mkdirs(p->part_dir) < 0)
        return -1;
    int fd = open(p->part, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < c->data_len) {
        ssize_t n = pwrite(fd, c->data + done, c->data_len - done, (off_t)(c->off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    struct stat st;
    int rc = done == c->data_len && fdatasync(fd) == 0 && fstat(fd, &st) == 0 ? 0 : -1;
    if (rc == 0)
        *have = (uint64_t)st.st_size;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* All bytes are in: verify, move into place, mark complete. 0, or -1 with why. */
static int s_complete(rr_master_t *self, const proto_artifact_chunk_t *c, const art_paths_t *p,
                      bool renamed, char *why, size_t len)
{
    char sha[RR_SHA256_HEX];
    const char *path = renamed ? p->final : p->part;
    if (!renamed && truncate(p->part, (off_t)c->total) < 0) {
        s_why(why, len, "truncate %s: %s", p->part, strerror(errno));
        return -1;
    }
    if (rr_artifact_hashes_take(self->artifact_hashes, c->job, c->name, c->total, sha) < 0
        && rr_sha256_file(path, sha, NULL) < 0) {
        s_why(why, len, "read %s: %s", path, strerror(errno));
        return -1;
    }
    if (!streq(sha, c->sha256)) {
        s_why(why, len, "sha256 mismatch: the worker sent %s, the master stored %s",
                 c->sha256, sha);
        unlink(path);
        rr_store_artifact_fail(self->store, c->job, c->name, why);
        return -2;
    }
    if (!renamed && (s_mkdirs(p->final_dir) < 0 || rename(p->part, p->final) < 0
                     || s_fsync_dir(p->final_dir) < 0)) {
        s_why(why, len, "store %s: %s", p->final, strerror(errno));
        return -1;
    }
    if (rr_store_artifact_complete(self->store, c->job, c->name) != RR_STORE_OK) {
        s_why(why, len, "%s", rr_store_error(self->store));
        return -1;
    }
    rr_info("job %" PRIu64 ": artifact '%s' stored: %" PRIu64 " bytes, sha256 %s", c->job,
            c->name, c->total, c->sha256);
    return 0;
}

void rr_artifacts_chunk(rr_master_t *self, zframe_t *rid, const proto_artifact_chunk_t *c)
{
    char why[512] = "";
    art_paths_t p;
    bool renamed = false;
    if (!s_chunk_valid(c, why, sizeof why)) {
        s_refuse(self, rid, c, why, false);
        return;
    }
    if (!self->artifact_hashes && !(self->artifact_hashes = rr_artifact_hashes_new())) {
        rr_error("job %" PRIu64 ": artifact '%s': out of memory (not acked)", c->job, c->name);
        return;
    }
    s_paths(self, c->job, c->name, &p);
    if (s_row(self, rid, c, &p) == 0)
        return;
    uint64_t have = s_have(&p, &renamed);
    if (!renamed && c->off <= have && (c->off + c->data_len > have || have == 0)) {
        if (s_write(&p, c, &have) < 0) {
            rr_error("job %" PRIu64 ": artifact '%s': write %s: %s (not acked: the worker "
                     "sends it again)", c->job, c->name, p.part, strerror(errno));
            return;
        }
        rr_artifact_hashes_feed(self->artifact_hashes, c->job, c->name, c->off, c->data,
                                c->data_len);
    }
    if (have < c->total) {
        s_ack(self, rid, c, have, false, NULL);
        return;
    }
    int rc = s_complete(self, c, &p, renamed, why, sizeof why);
    if (rc == -2)
        s_refuse(self, rid, c, why, false);
    else if (rc < 0)
        rr_error("job %" PRIu64 ": artifact '%s': %s (not acked)", c->job, c->name, why);
    else
        s_ack(self, rid, c, c->total, true, NULL);
}

/* Delete the files of directory DIR and DIR itself, adding their sizes to *BYTES. */
static int s_remove_dir(const char *dir, uint64_t *bytes)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (streq(e->d_name, ".") || streq(e->d_name, ".."))
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            *bytes += (uint64_t)st.st_size;
        if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT)
            rc = -1;
    }
    int saved = errno;
    closedir(d);
    if (rc == 0 && rmdir(dir) < 0 && errno != ENOENT)
        return -1;
    errno = saved;
    return rc;
}

int rr_artifacts_remove_files(const char *root, uint64_t job, uint64_t *bytes)
{
    char dir[PATH_LEN];
    *bytes = 0;
    snprintf(dir, sizeof dir, "%.3000s/%" PRIu64, root, job);
    int rc = s_remove_dir(dir, bytes);
    snprintf(dir, sizeof dir, "%.3000s/%" PRIu64 ".partial", root, job);
    return s_remove_dir(dir, bytes) < 0 ? -1 : rc;
}

/* ---- clients ---- */

static void s_client_error(rr_master_t *self, zframe_t *rid, const char *code, uint64_t job,
                           const char *text)
{
    rr_master_send_error(self, self->client_sock, rid, code, "job", job, "%s", text);
}

void rr_artifacts_list(rr_master_t *self, zframe_t *rid, const proto_artifacts_t *req)
{
    proto_msg_t msg = { .type = PROTO_MSG_ARTIFACT_LIST, .version = PROTO_VERSION };
    proto_jobinfo_t info = { 0 };
    int rc = rr_store_job_get(self->store, req->job, &info);
    rr_store_jobinfo_clear(&info);
    if (rc == RR_STORE_OK)
        rc = rr_store_artifacts_list(self->store, req->job, &msg.u.artifact_list.arts,
                                     &msg.u.artifact_list.arts_count);
    if (rc != RR_STORE_OK) {
        s_client_error(self, rid, rc == RR_STORE_E_NOTFOUND ? "not_found" : "internal",
                       req->job, rr_store_error(self->store));
        return;
    }
    msg.u.artifact_list.job = req->job;
    for (size_t i = 0; i < msg.u.artifact_list.arts_count; i++) {
        proto_artinfo_t *a = &msg.u.artifact_list.arts[i];
        art_paths_t p;
        bool renamed;
        s_paths(self, req->job, a->name, &p);
        a->stored = streq(a->state, RR_ARTIFACT_COMPLETE) ? a->size
                    : streq(a->state, RR_ARTIFACT_UPLOADING) ? s_have(&p, &renamed) : 0;
    }
    rr_master_send(self, self->client_sock, rid, &msg);
    proto_msg_free(&msg);
}

/* Read up to PROTO_ARTIFACT_CHUNK bytes of ROW's file from OFF into MSG. */
static int s_read(const art_paths_t *p, uint64_t off, uint64_t total, proto_artifact_data_t *d,
                  char *why, size_t len)
{
    size_t want = total - off < PROTO_ARTIFACT_CHUNK ? (size_t)(total - off)
                                                     : PROTO_ARTIFACT_CHUNK;
    int fd = open(p->final, O_RDONLY | O_CLOEXEC);
    d->data = malloc(want ? want : 1);
    ssize_t n = fd >= 0 && d->data ? pread(fd, d->data, want, (off_t)off) : -1;
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)want) {
        s_why(why, len, "artifact '%s': read %s: %s", d->name, p->final,
                 n < 0 ? strerror(errno) : "file shorter than recorded");
        return -1;
    }
    d->data_len = want;
    return 0;
}

void rr_artifacts_fetch(rr_master_t *self, zframe_t *rid, const proto_fetch_t *req)
{
    char why[600];
    proto_artinfo_t row;
    int rc = rr_store_artifact_get(self->store, req->job, req->name, &row);
    if (rc != RR_STORE_OK) {
        s_client_error(self, rid, rc == RR_STORE_E_NOTFOUND ? "not_found" : "internal",
                       req->job, rr_store_error(self->store));
        return;
    }
    proto_msg_t msg = { .type = PROTO_MSG_ARTIFACT_DATA, .version = PROTO_VERSION };
    proto_artifact_data_t *d = &msg.u.artifact_data;
    art_paths_t p;
    s_paths(self, req->job, req->name, &p);
    *d = (proto_artifact_data_t){ .job = req->job, .name = row.name, .off = req->off,
                                  .total = row.size, .sha256 = row.sha256 };
    if (!streq(row.state, RR_ARTIFACT_COMPLETE))
        snprintf(why, sizeof why, "job %" PRIu64 ": artifact '%s' is %s%s%s", req->job,
                 req->name, row.state, row.reason ? ": " : " (not all of it is stored yet)",
                 row.reason ? row.reason : "");
    else if (req->off > row.size)
        snprintf(why, sizeof why, "job %" PRIu64 ": artifact '%s': offset %" PRIu64
                 " past its size of %" PRIu64 " bytes", req->job, req->name, req->off, row.size);
    if (streq(row.state, RR_ARTIFACT_COMPLETE) && req->off <= row.size
        && s_read(&p, req->off, row.size, d, why, sizeof why) == 0)
        rr_master_send(self, self->client_sock, rid, &msg);
    else
        s_client_error(self, rid, streq(row.state, RR_ARTIFACT_COMPLETE) && req->off <= row.size
                       ? "internal" : "invalid", req->job, why);
    free(d->data);
    rr_store_artinfo_clear(&row);
}
