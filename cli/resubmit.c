/* resubmit.c: `rackrun resubmit ID` (submit the job's stored YAML again, as
 * a new job) and `rackrun wait ID` (block until the job ends; exit 0 only if
 * it completed), the two commands a CI script needs around a job:
 *
 *   job=$(rackrun resubmit 41) && rackrun wait "$job"; rackrun results "$job" --junit out.xml
 *
 * resubmit sends the text the master stored at submit time, so the new job
 * is validated again against today's rules, exactly as if it were submitted
 * from the original file. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "connection.h"
#include "format.h"
#include "logs.h"

/* The YAML job ID was submitted with, into *REPLY (JOB_DETAIL; its yaml member). */
static int fetch_yaml(rr_connection_t *conn, uint64_t job, proto_msg_t *reply)
{
    proto_msg_t req = { .type = PROTO_MSG_JOB, .version = PROTO_VERSION };
    req.u.job.job = job;
    int rc = rr_connection_request(conn, &req, PROTO_MSG_JOB_DETAIL, reply);
    if (rc == 0 && !reply->u.job_detail.yaml) {
        rr_cli_error("job %" PRIu64 ": the master has no job text for it to resubmit", job);
        rc = RR_EXIT_FAILED;
    }
    return rc;
}

int rr_cmd_resubmit(const rr_cli_opts_t *opts, int argc, char **args)
{
    proto_msg_t detail = { 0 }, req = { .type = PROTO_MSG_SUBMIT, .version = PROTO_VERSION };
    proto_msg_t reply = { 0 };
    rr_connection_t *conn = NULL;
    uint64_t job;
    (void)argc;
    int rc = rr_connection_open_for_job(opts, args[0], &job, &conn);
    if (rc != 0)
        return rc;
    rc = fetch_yaml(conn, job, &detail);
    if (rc != 0)
        goto out;
    req.u.submit.yaml = detail.u.job_detail.yaml;
    rc = rr_connection_request(conn, &req, PROTO_MSG_SUBMITTED, &reply);
    if (rc == 0 && opts->json)
        rr_json_print(json_pack("{s:I, s:I}", "job", (json_int_t)reply.u.submitted.job,
                                "resubmitted", (json_int_t)job), stdout);
    else if (rc == 0)
        printf("%" PRIu64 "\n", reply.u.submitted.job);
out:
    proto_msg_free(&reply);
    proto_msg_free(&detail);
    rr_connection_destroy(&conn);
    return rc;
}

int rr_cmd_wait(const rr_cli_opts_t *opts, int argc, char **args)
{
    rr_connection_t *conn = NULL;
    rr_jobstream_t *stream = NULL;
    uint64_t job;
    (void)argc;
    int rc = rr_connection_open_for_job(opts, args[0], &job, &conn);
    if (rc != 0)
        return rc;
    stream = rr_jobstream_new(NULL, false); /* record only: the summary says what matters */
    rc = stream ? rr_logs_fetch(conn, job, true, stream) : RR_EXIT_FAILED;
    if (rc == 0) {
        rc = rr_jobstream_report(stream, job, opts->json, stdout) ? RR_EXIT_OK : RR_EXIT_FAILED;
    } else if (rc == RR_EXIT_INTERRUPTED) {
        rr_cli_error("stopped waiting; job %" PRIu64 " goes on", job);
    }
    rr_jobstream_destroy(&stream);
    rr_connection_destroy(&conn);
    return rc;
}
