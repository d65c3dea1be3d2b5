/* artifacts.c: `rackrun artifacts ID` (what the master stores of a job's
 * transfers) and `rackrun fetch ID NAME [-o FILE]`.
 *
 * fetch asks for one chunk at a time (FETCH from the offset it got to ->
 * ARTIFACT_DATA of at most PROTO_ARTIFACT_CHUNK bytes), so memory stays
 * bounded whatever the size and a slow link never meets a long silence. The
 * bytes go to a temporary file beside FILE, whose SHA-256 must equal the
 * master's before it is fsynced and renamed over FILE: an interrupted or
 * corrupted download never leaves a FILE that looks whole. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "connection.h"
#include "digest.h"
#include "format.h"

#define PROGRESS_MIN (1024u * 1024u)    /* files this big show progress on a terminal */
#define MIB(n) ((double)(n) / (1024.0 * 1024.0))

static json_t *artinfo_json(const proto_artinfo_t *a)
{
    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:I}", "name", a->name, "size",
                          (json_int_t)a->size, "sha256", a->sha256, "state", a->state,
                          "stored", (json_int_t)a->stored);
    if (o && a->reason)
        json_object_set_new(o, "reason", json_string(a->reason));
    return o;
}

static void print_artifacts(const proto_artifact_list_t *list)
{
    static const char *const headers[] = { "NAME", "SIZE", "SHA256", "STATE" };
    rr_table_t *table = rr_table_new(4, headers);
    for (size_t i = 0; table && i < list->arts_count; i++) {
        const proto_artinfo_t *a = &list->arts[i];
        char size[24], state[600];
        snprintf(size, sizeof size, "%" PRIu64, a->size);
        if (a->reason)
            snprintf(state, sizeof state, "%s: %s", a->state, a->reason);
        else if (!strcmp(a->state, "uploading"))
            snprintf(state, sizeof state, "uploading (%" PRIu64 " bytes stored)", a->stored);
        else
            snprintf(state, sizeof state, "%s", a->state);
        const char *cells[] = { a->name, size, a->sha256, state };
        rr_table_add(table, cells);
    }
    if (table)
        rr_table_print(table, stdout);
    rr_table_destroy(&table);
}

int rr_cmd_artifacts(const rr_cli_opts_t *opts, int argc, char **args)
{
    proto_msg_t req = { .type = PROTO_MSG_ARTIFACTS, .version = PROTO_VERSION };
    proto_msg_t reply = { 0 };
    (void)argc;
    int rc = rr_cli_job_id(args[0], &req.u.artifacts.job);
    if (rc == 0)
        rc = rr_connection_call(opts, &req, PROTO_MSG_ARTIFACT_LIST, &reply);
    if (rc == 0 && opts->json) {
        json_t *array = json_array();
        for (size_t i = 0; array && i < reply.u.artifact_list.arts_count; i++)
            json_array_append_new(array, artinfo_json(&reply.u.artifact_list.arts[i]));
        rr_json_print(array, stdout);
    } else if (rc == 0 && reply.u.artifact_list.arts_count == 0) {
        printf("job %" PRIu64 " has no artifacts\n", req.u.artifacts.job);
    } else if (rc == 0) {
        print_artifacts(&reply.u.artifact_list);
    }
    proto_msg_free(&reply);
    return rc;
}

/* ---- fetch ---- */

typedef struct {
    uint64_t job;
    const char *name;
    const char *path;           /* FILE, NULL for stdout */
    char tmp[4096];             /* the temporary file beside it, "" when none */
    int fd;
    uint64_t off, total;
    char sha256[RR_SHA256_HEX];
    bool progress;
    crypto_hash_sha256_state hash;  /* of the bytes as they come (stdout has no re-read) */
} fetch_t;

static int write_all(int fd, const uint8_t *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Take one ARTIFACT_DATA: it must go on where the last one ended. */
static int take_chunk(fetch_t *f, const proto_artifact_data_t *d)
{
    if (f->off == 0) {
        f->total = d->total;
        snprintf(f->sha256, sizeof f->sha256, "%s", d->sha256);
        f->progress = f->path && f->total >= PROGRESS_MIN && isatty(2);
    }
    if (d->off != f->off || d->total != f->total || strcmp(d->sha256, f->sha256)
        || (d->data_len == 0 && f->off < f->total) || d->data_len > f->total - f->off) {
        rr_cli_error("fetch %s: the master sent bytes %" PRIu64 "+%zu of %" PRIu64
                     " where %" PRIu64 " of %" PRIu64 " were due (did the artifact change?)",
                     f->name, d->off, d->data_len, d->total, f->off, f->total);
        return RR_EXIT_MASTER;
    }
    if (write_all(f->fd, d->data, d->data_len) < 0) {
        rr_cli_error("fetch %s: write %s: %s", f->name, f->path ? f->tmp : "stdout",
                     strerror(errno));
        return RR_EXIT_FAILED;
    }
    crypto_hash_sha256_update(&f->hash, d->data, d->data_len);
    f->off += d->data_len;
    if (f->progress)
        fprintf(stderr, "\rfetch %s: %.1f / %.1f MiB", f->name, MIB(f->off), MIB(f->total));
    return 0;
}

/* stdout: the bytes are out already; say when they were not the master's. */
static int verify_stream(fetch_t *f)
{
    char sha[RR_SHA256_HEX];
    rr_sha256_final_hex(&f->hash, sha);
    if (!strcmp(sha, f->sha256))
        return 0;
    rr_cli_error("fetch %s: the bytes written have sha256 %s, the master stores %s", f->name,
                 sha, f->sha256);
    return RR_EXIT_FAILED;
}

static int fetch_all(rr_connection_t *conn, fetch_t *f)
{
    int rc = 0;
    crypto_hash_sha256_init(&f->hash);
    do {
        proto_msg_t req = { .type = PROTO_MSG_FETCH, .version = PROTO_VERSION }, reply = { 0 };
        req.u.fetch = (proto_fetch_t){ .job = f->job, .name = (char *)f->name, .off = f->off };
        rc = rr_connection_request(conn, &req, PROTO_MSG_ARTIFACT_DATA, &reply);
        if (rc == 0)
            rc = take_chunk(f, &reply.u.artifact_data);
        proto_msg_free(&reply);
    } while (rc == 0 && f->off < f->total);
    if (f->progress)
        fputc('\n', stderr);
    return rc;
}

/* The bytes in the temporary file must be the master's; then they become FILE. */
static int verify_and_place(fetch_t *f)
{
    char sha[RR_SHA256_HEX];
    uint64_t size = 0;
    if (rr_sha256_fd(f->fd, UINT64_MAX, sha, &size) < 0 || fsync(f->fd) < 0) {
        rr_cli_error("fetch %s: %s: %s", f->name, f->tmp, strerror(errno));
        return RR_EXIT_FAILED;
    }
    if (size != f->total || strcmp(sha, f->sha256)) {
        rr_cli_error("fetch %s: got %" PRIu64 " bytes with sha256 %s, the master stores %"
                     PRIu64 " bytes with sha256 %s; %s not written", f->name, size, sha,
                     f->total, f->sha256, f->path);
        return RR_EXIT_FAILED;
    }
    if (rename(f->tmp, f->path) < 0) {
        rr_cli_error("fetch %s: rename %s to %s: %s", f->name, f->tmp, f->path,
                     strerror(errno));
        return RR_EXIT_FAILED;
    }
    f->tmp[0] = '\0';
    printf("%s: %" PRIu64 " bytes, sha256 %s (verified) -> %s\n", f->name, f->total,
           f->sha256, f->path);
    return 0;
}

static int open_output(fetch_t *f)
{
    if (!f->path) {
        f->fd = 1;
        return 0;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", f->path);
    snprintf(f->tmp, sizeof f->tmp, "%.4000s/.rackrun-fetch-XXXXXX", dirname(dir));
    f->fd = mkostemp(f->tmp, O_CLOEXEC);
    if (f->fd < 0) {
        rr_cli_error("fetch %s: cannot create a file beside %s: %s", f->name, f->path,
                     strerror(errno));
        f->tmp[0] = '\0';
        return RR_EXIT_USAGE;
    }
    fchmod(f->fd, 0644);
    return 0;
}

int rr_cmd_fetch(const rr_cli_opts_t *opts, int argc, char **args)
{
    fetch_t f = { .name = args[1], .fd = -1 };
    rr_connection_t *conn = NULL;
    (void)argc;
    int rc = rr_cli_job_id(args[0], &f.job);
    if (rc != 0)
        return rc;
    if (!*f.name || strchr(f.name, '/')) {
        rr_cli_error("fetch: '%s' is not an artifact name", f.name);
        return RR_EXIT_USAGE;
    }
    f.path = opts->output ? (strcmp(opts->output, "-") ? opts->output : NULL) : f.name;
    rc = rr_connection_open(opts, &conn);
    if (rc == 0)
        rc = open_output(&f);
    if (rc == 0)
        rc = fetch_all(conn, &f);
    if (rc == 0)
        rc = f.path ? verify_and_place(&f) : verify_stream(&f);
    if (f.fd > 1)
        close(f.fd);
    if (f.tmp[0])
        unlink(f.tmp);
    rr_connection_destroy(&conn);
    return rc;
}
