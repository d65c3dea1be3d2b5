/* jobs.c: `rackrun jobs`, `rackrun show ID` and `rackrun cancel ID`. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "connection.h"
#include "format.h"
#include "json.h"
#include "logs.h"
#include "units.h"

/* How long a job ran: ended - started, or so far (now - started), or "-". */
static char *job_duration(const proto_jobinfo_t *job, uint64_t now_ms, char *buf, size_t len)
{
    uint64_t end = job->ended ? job->ended : now_ms;
    if (!job->started || end < job->started)
        snprintf(buf, len, "-");
    else
        rr_duration_format(end - job->started, buf, len);
    return buf;
}

static void print_job_table(const proto_job_list_t *list)
{
    static const char *const headers[] = { "ID", "STATE", "OUTCOME", "TYPE", "DEVICE", "PRIO",
                                           "SUBMITTED", "TOOK", "NAME" };
    uint64_t now = rr_wall_ms();
    rr_table_t *table = rr_table_new(9, headers);
    for (size_t i = 0; table && i < list->jobs_count; i++) {
        const proto_jobinfo_t *j = &list->jobs[i];
        char id[24], prio[16], submitted[32], took[32];
        snprintf(id, sizeof id, "%" PRIu64, j->id);
        snprintf(prio, sizeof prio, "%u", j->priority);
        const char *cells[] = { id, j->state, j->outcome, j->device_type, j->device, prio,
                                rr_fmt_datetime(j->submitted, submitted, sizeof submitted),
                                job_duration(j, now, took, sizeof took), j->name };
        rr_table_add(table, cells);
    }
    if (table)
        rr_table_print(table, stdout);
    rr_table_destroy(&table);
}

int rr_cmd_jobs(const rr_cli_opts_t *opts, int argc, char **args)
{
    proto_msg_t req = { .type = PROTO_MSG_JOBS, .version = PROTO_VERSION };
    proto_msg_t reply = { 0 };
    (void)argc, (void)args;
    req.u.jobs.state = (char *)opts->state;
    req.u.jobs.limit = opts->limit;
    int rc = rr_connection_call(opts, &req, PROTO_MSG_JOB_LIST, &reply);
    if (rc == 0 && opts->json) {
        json_t *array = json_array();
        for (size_t i = 0; array && i < reply.u.job_list.jobs_count; i++)
            json_array_append_new(array, proto_json_jobinfo(&reply.u.job_list.jobs[i]));
        rr_json_print(array, stdout);
    } else if (rc == 0) {
        print_job_table(&reply.u.job_list);
    }
    proto_msg_free(&reply);
    return rc;
}

static void print_job_detail(const proto_jobinfo_t *j)
{
    char name[256], buf[256], when[32], took[32];
    printf("job %" PRIu64 ": %s\n", j->id, rr_fmt_sanitize(j->name, name, sizeof name));
    printf("  state      %s\n", rr_fmt_sanitize(j->state, buf, sizeof buf));
    if (j->outcome)
        printf("  outcome    %s%s%s\n", rr_fmt_sanitize(j->outcome, buf, sizeof buf),
               j->reason ? ": " : "", j->reason ? rr_fmt_sanitize(j->reason, name, sizeof name) : "");
    printf("  type       %s (priority %u)\n", rr_fmt_sanitize(j->device_type, buf, sizeof buf), j->priority);
    if (j->device)
        printf("  device     %s (worker %s)\n", rr_fmt_sanitize(j->device, buf, sizeof buf),
               rr_fmt_sanitize(j->worker, name, sizeof name));
    printf("  submitted  %s\n", rr_fmt_datetime(j->submitted, when, sizeof when));
    printf("  started    %s\n", rr_fmt_datetime(j->started, when, sizeof when));
    printf("  ended      %s\n", rr_fmt_datetime(j->ended, when, sizeof when));
    printf("  took       %s\n", job_duration(j, rr_wall_ms(), took, sizeof took));
}

static int show_json(const proto_job_detail_t *detail, const rr_jobstream_t *stream)
{
    json_t *obj = rr_jobstream_summary_json(stream);
    if (obj) {
        json_object_set_new(obj, "job", proto_json_jobinfo(detail->info));
        json_object_set_new(obj, "yaml", detail->yaml ? json_string(detail->yaml) : json_null());
    }
    return rr_json_print(obj, stdout);
}

/* The job's details, then its actions and results read from its stream. */
int rr_cmd_show(const rr_cli_opts_t *opts, int argc, char **args)
{
    proto_msg_t req = { .type = PROTO_MSG_JOB, .version = PROTO_VERSION };
    proto_msg_t reply = { 0 };
    rr_connection_t *conn = NULL;
    rr_jobstream_t *stream = NULL;
    (void)argc;
    int rc = rr_connection_open_for_job(opts, args[0], &req.u.job.job, &conn);
    if (rc != 0)
        return rc;
    rc = rr_connection_request(conn, &req, PROTO_MSG_JOB_DETAIL, &reply);
    if (rc != 0)
        goto out;
    stream = rr_jobstream_new(NULL, false);
    rc = stream ? rr_logs_fetch(conn, req.u.job.job, false, stream) : RR_EXIT_FAILED;
    if (rc != 0)
        goto out;
    if (opts->json) {
        show_json(&reply.u.job_detail, stream);
    } else {
        print_job_detail(reply.u.job_detail.info);
        rr_jobstream_print_tables(stream, stdout);
    }
out:
    rr_jobstream_destroy(&stream);
    proto_msg_free(&reply);
    rr_connection_destroy(&conn);
    return rc;
}

int rr_cmd_cancel(const rr_cli_opts_t *opts, int argc, char **args)
{
    proto_msg_t req = { .type = PROTO_MSG_CANCEL, .version = PROTO_VERSION };
    proto_msg_t reply = { 0 };
    char text[256];
    (void)argc;
    int rc = rr_cli_job_id(args[0], &req.u.cancel.job);
    if (rc == 0)
        rc = rr_connection_call(opts, &req, PROTO_MSG_OK, &reply);
    if (rc == 0 && opts->json)
        rr_json_print(json_pack("{s:I, s:s?}", "job", (json_int_t)req.u.cancel.job, "text",
                                reply.u.ok.text), stdout);
    else if (rc == 0 && reply.u.ok.text)
        printf("%s\n", rr_fmt_sanitize(reply.u.ok.text, text, sizeof text)); /* the master's words */
    else if (rc == 0)
        printf("job %" PRIu64 ": cancel requested\n", req.u.cancel.job);
    proto_msg_free(&reply);
    return rc;
}
