/* test_system_first_job.c: the "first job" end to end on the smallest rack.
 *
 * Real processes only: rackrun-master, one rackrun-worker driving two
 * emulated nodes (stock ipmi_sim BMCs, IPMI 2.0 + SOL, PXE from the worker's
 * TFTP root), and four jobs submitted with `rackrun submit`. Everything is
 * checked where it ends up: the master's database, the node-side capture
 * (console.out, hook.log, the TFTP root) and the CLI's --json output. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "capture.h"
#include "cluster.h"

#define JOBS 4
#define JOB_TIMEOUT_MS 60000

typedef struct {
    rr_cluster_t *cluster;
    rr_rig_t *rig;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    *state = f;
    if (!f || !(f->cluster = rr_cluster_new(1)))
        return -1;
    f->rig = rr_cluster_rig(f->cluster, "n", 2);
    if (!f->rig || rr_cluster_add_worker(f->cluster, "rack01", f->rig, NULL, true) < 0)
        return -1;
    /* idle = the worker has each node's SOL console up */
    return rr_cluster_wait_devices(f->cluster, "rack01", "idle", 2, 30000) ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = f ? rr_cluster_stop(&f->cluster) : 0;
    free(f);
    return rc;
}

static void first_job_yaml(rr_cluster_t *c, int n, char *buf, size_t len)
{
    char deploy[4096];
    snprintf(buf, len,
             "job_name: first-job-%d\n"
             "device_type: highbank\n"
             "priority: medium\n"
             "timeouts: {job: 2m, action: 30s}\n"
             "actions:\n%s"
             "  - boot: {method: ipmi-pxe, prompts: [\"# \"], timeout: 20s}\n"
             "  - test:\n"
             "      steps:\n"
             "        - {name: hello, run: \"echo hello from job %d on $RR_NODE\"}\n"
             "        - {name: pxe-kernel, run: \"test \\\"$RR_BOOTDEV\\\" = pxe && echo \\\"booted $RR_KERNEL\\\"\"}\n"
             "        - name: measure\n"
             "          run: \"printf '\\\\nRR_%%s name=widgets result=pass measurement=%d units=w\\\\n' RESULT\"\n",
             n, rr_cluster_deploy_yaml(c, NULL, deploy, sizeof deploy), n, n * 10);
}

/* The job's events, one "kind:name:value:code[:measurement units]" word per
 * event, logs left out; an action's end carries its duration: "ms". */
static char *event_summary(rr_cluster_t *c, uint64_t job)
{
    static const char sql[] =
        "SELECT kind || ':' || coalesce(name, '') || ':' || coalesce(value, '') || ':'"
        " || CASE WHEN kind = 'action' AND value = 'end' THEN 'ms'"
        "    WHEN kind = 'result' THEN coalesce(code, '') ELSE '' END"
        " || coalesce(':' || measurement || units, '')"
        " FROM events WHERE job = ? AND kind != 'log' ORDER BY seq";
    sqlite3_stmt *st = NULL;
    char *text = calloc(1, 4096);
    size_t at = 0;
    assert_int_equal(sqlite3_prepare_v2(rr_cluster_db(c), sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)job);
    while (sqlite3_step(st) == SQLITE_ROW && at < 4000)
        at += (size_t)snprintf(text + at, 4096 - at, "%s%s", at ? " " : "",
                               (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return text;
}

/* What `rackrun --json logs JOB` prints: the log data of its events, joined. */
static char *cli_log(rr_cluster_t *c, uint64_t job, size_t *len)
{
    char id[32], *out = NULL;
    snprintf(id, sizeof id, "%llu", (unsigned long long)job);
    assert_int_equal(rr_cluster_cli(c, &out, NULL, "--json", "logs", id, NULL), 0);
    assert_non_null(out);
    char *joined = calloc(1, strlen(out) + 1);
    *len = 0;
    for (char *line = out, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        json_t *ev = json_loads(line, 0, NULL);
        assert_non_null(ev);
        assert_null(json_object_get(ev, "data_base64"));   /* the rig prints ASCII */
        json_t *data = json_object_get(ev, "data");
        if (data) {
            memcpy(joined + *len, json_string_value(data), json_string_length(data));
            *len += json_string_length(data);
        }
        json_decref(ev);
    }
    free(out);
    return joined;
}

/* 1 worker x 2 nodes x 4 jobs: each completes on one of the nodes, with its
 * actions, step results and RR_RESULT measurement stored in order; the
 * stored log is the node's console byte for byte; the nodes end powered off
 * with their pxelinux configs removed. */
static void test_four_jobs_on_two_nodes_complete_with_exact_logs(void **state)
{
    fixture_t *f = *state;
    rr_cluster_t *c = f->cluster;
    uint64_t jobs[JOBS];
    char yaml[8192], *err = NULL;

    for (int i = 0; i < JOBS; i++) {
        first_job_yaml(c, i + 1, yaml, sizeof yaml);
        int rc = rr_cluster_submit(c, yaml, &jobs[i], &err);
        if (rc != 0)
            fail_msg("submit %d: exit %d: %s", i + 1, rc, err ? err : "");
        free(err);
        err = NULL;
    }
    for (int i = 0; i < JOBS; i++)
        assert_true(rr_cluster_wait_job(c, jobs[i], "finished", JOB_TIMEOUT_MS));

    bool used[2] = { false, false };
    for (int i = 0; i < JOBS; i++) {
        rr_cluster_job_t job;
        assert_int_equal(rr_cluster_job(c, jobs[i], &job), 0);
        assert_string_equal(job.outcome, "complete");
        assert_string_equal(job.reason, "");
        assert_string_equal(job.worker, "rack01");
        assert_true(!strcmp(job.device, "n01") || !strcmp(job.device, "n02"));
        used[!strcmp(job.device, "n02")] = true;
        assert_true(job.started_ms >= job.submitted_ms && job.ended_ms > job.started_ms);

        /* one ordered stream: seq 1..N without holes, running first, end last */
        assert_int_equal(rr_cluster_count(c, "SELECT max(seq) - count(*) FROM events WHERE job = %llu",
                                          (unsigned long long)jobs[i]), 0);
        char want[1024];
        snprintf(want, sizeof want,
                 "state:running:: action:deploy:start: action:deploy:end:ms"
                 " action:boot:start: action:boot:end:ms action:test:start:"
                 " result:hello:pass:0 result:pxe-kernel:pass:0"
                 " result:widgets:pass:0:%dw result:measure:pass:0 action:test:end:ms"
                 " end::complete:", (i + 1) * 10);
        char *events = event_summary(c, jobs[i]);
        if (strcmp(events, want) != 0)
            fail_msg("job %llu events:\n  got  %s\n  want %s", (unsigned long long)jobs[i],
                     events, want);
        free(events);

        /* the job ran where the master says: the node's shell named itself */
        size_t len = 0;
        uint8_t *log = rr_cluster_job_log(c, jobs[i], &len);
        char hello[160];
        snprintf(hello, sizeof hello, "hello from job %d on %s\r\n", i + 1, job.device);
        assert_non_null(memmem(log, len, hello, strlen(hello)));

        /* the CLI serves the same bytes */
        size_t cli_len = 0;
        char *cli = cli_log(c, jobs[i], &cli_len);
        assert_int_equal(cli_len, len);
        assert_memory_equal(cli, log, len);
        free(cli);
        free(log);
    }
    assert_true(used[0] && used[1]);   /* two idle nodes, two jobs at once */

    size_t checked = 0;
    assert_true(rr_cluster_check_logs(c, f->rig, &checked));
    assert_int_equal(checked, JOBS);

    for (size_t n = 0; n < 2; n++) {
        assert_int_equal(rr_rig_power(f->rig, n), 0);
        assert_true(rr_rig_wait_hook(f->rig, n, "set boot pxe", 0));
        /* the pxelinux config of the last job went: the node falls back to the default */
        char path[8192];
        int at = snprintf(path, sizeof path, "%s/n-tftp/pxelinux.cfg/01-%s", rr_cluster_dir(c),
                          rr_rig_node(f->rig, n)->mac);
        for (char *p = path + at - 17; *p; p++)
            if (*p == ':')
                *p = '-';
        assert_int_equal(access(path, F_OK), -1);
    }
    assert_true(rr_cluster_wait_devices(c, "rack01", "idle", 2, 5000));

    char id[32], *out = NULL;
    snprintf(id, sizeof id, "%llu", (unsigned long long)jobs[0]);
    assert_int_equal(rr_cluster_cli(c, &out, NULL, "--json", "show", id, NULL), 0);
    json_t *shown = json_loads(out, 0, NULL);
    assert_non_null(shown);
    assert_string_equal(json_string_value(json_object_get(json_object_get(shown, "job"), "outcome")),
                        "complete");
    json_decref(shown);
    free(out);
    rr_cluster_passed(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_four_jobs_on_two_nodes_complete_with_exact_logs,
                                        setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + rr_cluster_stop_failures() ? 1 : 0;
}
