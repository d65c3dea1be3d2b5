/* logs.c: `rackrun logs ID [-f]` and the LOGS exchange it shares with
 * `submit --wait` and `show` (see logs.h).
 *
 * Following a job may mean minutes without a byte (a slow boot), so silence
 * alone is no error. After PROBE_FACTOR request timeouts of it (15 s by
 * default) the CLI asks for the job
 * (JOB): an answer proves the master alive, and if the job has meanwhile
 * finished (a master that restarted forgets followers), one more LOGS
 * without follow collects the rest. No answer within the request timeout:
 * the master is gone, exit 3. */
#include "logs.h"

#include <inttypes.h>
#include <string.h>

#define PROBE_FACTOR 3u /* silence of 3 request timeouts: probe */

typedef struct {
    rr_connection_t *conn;
    uint64_t job;
    bool follow;
    bool probing;      /* a JOB probe is unanswered */
    rr_jobstream_t *stream;
} fetch_t;

static int send_logs(fetch_t *f)
{
    proto_msg_t req = { .type = PROTO_MSG_LOGS, .version = PROTO_VERSION };
    req.u.logs.job = f->job;
    req.u.logs.from = rr_jobstream_last_seq(f->stream);
    req.u.logs.follow = f->follow;
    return rr_connection_send(f->conn, &req);
}

static int send_probe(fetch_t *f)
{
    proto_msg_t req = { .type = PROTO_MSG_JOB, .version = PROTO_VERSION };
    req.u.job.job = f->job;
    f->probing = true;
    return rr_connection_send(f->conn, &req);
}

/* A probe answer: if the job already finished, stop following and drain. */
static int on_detail(fetch_t *f, const proto_job_detail_t *detail)
{
    f->probing = false;
    if (!f->follow || !detail->info || detail->info->id != f->job || detail->info->ended == 0)
        return 0;
    f->follow = false;
    return send_logs(f);
}

/* Handle one message: 0 go on, 1 done, else an exit code. */
static int on_message(fetch_t *f, const proto_msg_t *msg)
{
    switch (msg->type) {
    case PROTO_MSG_JOB_EVENT:
        f->probing = false;
        if (msg->u.job_event.job != f->job)
            return 0;
        return rr_jobstream_feed(f->stream, &msg->u.job_event) == 0 ? 0 : RR_EXIT_FAILED;
    case PROTO_MSG_LOGS_END:
        f->probing = false;
        return !f->follow || msg->u.logs_end.finished ? 1 : 0;
    case PROTO_MSG_JOB_DETAIL:
        return on_detail(f, &msg->u.job_detail);
    case PROTO_MSG_ERROR:
        rr_connection_print_error(msg);
        return RR_EXIT_FAILED;
    default:
        rr_cli_error("master %s: sent '%s' while streaming job %" PRIu64 " (protocol mismatch?)",
                     rr_connection_endpoint(f->conn), proto_type_name(msg->type), f->job);
        return RR_EXIT_MASTER;
    }
}

/* Wait for the next message: in follow mode silence first triggers a probe. */
static int next_message(fetch_t *f, proto_msg_t *msg)
{
    uint32_t timeout = rr_connection_timeout(f->conn);
    if (f->follow && !f->probing) {
        uint32_t silence = timeout > UINT32_MAX / PROBE_FACTOR ? UINT32_MAX : timeout * PROBE_FACTOR;
        int ready = rr_connection_wait(f->conn, silence);
        if (ready == 0) {
            int rc = send_probe(f);
            if (rc != 0)
                return rc;
        } else if (ready != 1) {
            return ready;
        }
    }
    return rr_connection_recv(f->conn, msg, timeout);
}

int rr_logs_fetch(rr_connection_t *conn, uint64_t job, bool follow, rr_jobstream_t *stream)
{
    fetch_t f = { .conn = conn, .job = job, .follow = follow, .stream = stream };
    int rc = send_logs(&f);
    while (rc == 0) {
        proto_msg_t msg = { 0 };
        rc = next_message(&f, &msg);
        if (rc == 0)
            rc = on_message(&f, &msg);
        proto_msg_free(&msg);
    }
    return rc == 1 ? 0 : rc;
}

int rr_cmd_logs(const rr_cli_opts_t *opts, int argc, char **args)
{
    uint64_t job;
    rr_connection_t *conn = NULL;
    rr_jobstream_t *stream = NULL;
    int rc = rr_cli_job_id(args[0], &job);
    (void)argc;
    if (rc != 0)
        return rc;
    rc = rr_connection_open(opts, &conn);
    if (rc != 0)
        return rc;
    stream = rr_jobstream_new(stdout, opts->json);
    if (!stream) {
        rr_cli_error("out of memory");
        rc = RR_EXIT_FAILED;
        goto out;
    }
    rc = rr_logs_fetch(conn, job, opts->follow, stream);
out:
    rr_jobstream_destroy(&stream);
    rr_connection_destroy(&conn);
    return rc;
}
