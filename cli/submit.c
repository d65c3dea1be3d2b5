/* submit.c: `rackrun submit FILE [--wait]`: send a job definition, print
 * its id, and with --wait follow it to the end and exit by its outcome.
 *
 * The master validates the YAML; its ERROR carries line and column, shown
 * as "FILE:LINE:COL: message" so editors can jump to it. The 1 MiB limit is
 * checked here first, while reading, so an oversized (or endless) file is
 * refused before a byte is sent. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "connection.h"
#include "format.h"
#include "logs.h"

/* Read at most PROTO_MAX_MSG bytes of PATH into a NUL-terminated *TEXT. */
static int read_job_file(const char *path, char **text)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        rr_cli_error("%s: %s", path, strerror(errno));
        return RR_EXIT_USAGE;
    }
    int rc = RR_EXIT_USAGE;
    char *buf = malloc(PROTO_MAX_MSG + 2);
    if (!buf) {
        rr_cli_error("%s: out of memory", path);
        goto out;
    }
    size_t len = fread(buf, 1, PROTO_MAX_MSG + 1, file);
    if (ferror(file)) {
        rr_cli_error("%s: read error: %s", path, strerror(errno));
    } else if (len > PROTO_MAX_MSG) {
        rr_cli_error("%s: larger than %u MiB, the limit of a job definition; not sent", path,
                     PROTO_MAX_MSG / (1024 * 1024));
    } else if (memchr(buf, '\0', len)) {
        rr_cli_error("%s: contains a NUL byte at offset %zu: not a YAML text",
                     path, (size_t)((char *)memchr(buf, '\0', len) - buf));
    } else {
        buf[len] = '\0';
        *text = buf;
        buf = NULL;
        rc = 0;
    }
    free(buf);
out:
    fclose(file);
    return rc;
}

/* The master's text may repeat the location in words ("line 3, column 5:
 * ..."); the FILE:LINE:COL prefix already says it, so drop that part. */
static const char *skip_location(const char *text, uint32_t line, uint32_t col)
{
    char prefix[64];
    int n = snprintf(prefix, sizeof prefix, "line %u, column %u: ", line, col);
    return n > 0 && strncmp(text, prefix, (size_t)n) == 0 ? text + n : text;
}

/* "FILE:LINE:COL: message" for a located error, else "FILE: message". */
static void print_submit_error(const char *path, const proto_msg_t *error)
{
    const char *key = error->u.error.key, *text = error->u.error.text;
    char where[64] = "";
    if (strcmp(error->u.error.code, "invalid") != 0) {
        rr_connection_print_error(error);
        return;
    }
    if (error->u.error.line) {
        snprintf(where, sizeof where, "%u:%u:", error->u.error.line, error->u.error.col);
        text = skip_location(text, error->u.error.line, error->u.error.col);
    }
    if (key && *key && !strstr(text, key))
        fprintf(stderr, "%s:%s %s: %s\n", path, where, key, text);
    else
        fprintf(stderr, "%s:%s %s\n", path, where, text);
}

/* Send the job; on success *JOB holds its id. */
static int send_job(rr_connection_t *conn, const char *path, char *yaml, uint64_t *job)
{
    proto_msg_t req = { .type = PROTO_MSG_SUBMIT, .version = PROTO_VERSION };
    proto_msg_t reply = { 0 };
    req.u.submit.yaml = yaml;
    int rc = rr_connection_send(conn, &req);
    if (rc == 0)
        rc = rr_connection_recv(conn, &reply, rr_connection_timeout(conn));
    if (rc != 0)
        return rc;
    if (reply.type == PROTO_MSG_SUBMITTED) {
        *job = reply.u.submitted.job;
    } else if (reply.type == PROTO_MSG_ERROR) {
        print_submit_error(path, &reply);
        rc = RR_EXIT_FAILED;
    } else {
        rr_cli_error("master %s: answered '%s' to 'submit' (protocol mismatch?)",
                     rr_connection_endpoint(conn), proto_type_name(reply.type));
        rc = RR_EXIT_MASTER;
    }
    proto_msg_free(&reply);
    return rc;
}

/* Follow the job to its end, print the summary; exit 0 only if complete. */
static int wait_for_job(rr_connection_t *conn, const rr_cli_opts_t *opts, uint64_t job)
{
    rr_jobstream_t *stream = rr_jobstream_new(stdout, opts->json);
    if (!stream) {
        rr_cli_error("out of memory");
        return RR_EXIT_FAILED;
    }
    int rc = rr_logs_fetch(conn, job, true, stream);
    if (rc == RR_EXIT_INTERRUPTED) {
        rr_cli_error("stopped waiting; job %" PRIu64 " goes on (rackrun cancel %" PRIu64 " stops it)",
                     job, job);
    } else if (rc == 0) {
        rc = rr_jobstream_report(stream, job, opts->json, stdout) ? RR_EXIT_OK : RR_EXIT_FAILED;
    }
    rr_jobstream_destroy(&stream);
    return rc;
}

int rr_cmd_submit(const rr_cli_opts_t *opts, int argc, char **args)
{
    const char *path = args[0];
    char *yaml = NULL;
    rr_connection_t *conn = NULL;
    uint64_t job = 0;
    (void)argc;

    int rc = read_job_file(path, &yaml);
    if (rc != 0)
        goto out;
    rc = rr_connection_open(opts, &conn);
    if (rc != 0)
        goto out_free;
    rc = send_job(conn, path, yaml, &job);
    if (rc != 0)
        goto out_close;
    if (opts->json)
        rr_json_print(json_pack("{s:I}", "job", (json_int_t)job), stdout);
    else
        printf("%" PRIu64 "\n", job);
    fflush(stdout);
    if (opts->wait)
        rc = wait_for_job(conn, opts, job);
out_close:
    rr_connection_destroy(&conn);
out_free:
    free(yaml);
out:
    return rc;
}
