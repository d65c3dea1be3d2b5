/* test_system_console.c: `rackrun console DEVICE` end to end.
 *
 * Real processes: rackrun-master, one rackrun-worker holding one emulated
 * node's SOL console, and `rackrun console n01` running beside them while a
 * job runs on the node. The follower must see what the job's step printed
 * (through the worker's held session, not a second one), and when it is
 * stopped with Ctrl-C the master must switch the worker's forwarding off,
 * the CLI exit 0, and the device go on taking jobs. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.h"
#include "testtime.h"
#include "tmpdir.h"

#define JOB_TIMEOUT_MS 60000

typedef struct {
    rr_cluster_t *cluster;
    rr_rig_t *rig;
    pid_t console;              /* the `rackrun console` subprocess, 0 = none */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    *state = f;
    if (!f || !(f->cluster = rr_cluster_new(1)))
        return -1;
    f->rig = rr_cluster_rig(f->cluster, "n", 1);
    if (!f->rig || rr_cluster_add_worker(f->cluster, "rack01", f->rig, NULL, true) < 0)
        return -1;
    return rr_cluster_wait_devices(f->cluster, "rack01", "idle", 1, 30000) ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f && f->console > 0) {
        kill(f->console, SIGKILL);
        waitpid(f->console, NULL, 0);
    }
    int rc = f ? rr_cluster_stop(&f->cluster) : 0;
    free(f);
    return rc;
}

/* A job whose one step prints MARKER (built by printf, so the typed command
 * line the node echoes does not contain it). */
static uint64_t submit_marker_job(rr_cluster_t *c, const char *marker)
{
    char deploy[4096], yaml[8192];
    snprintf(yaml, sizeof yaml,
             "job_name: console-%s\n"
             "device_type: highbank\n"
             "timeouts: {job: 2m, action: 30s}\n"
             "actions:\n%s"
             "  - boot: {method: ipmi-pxe, prompts: [\"# \"], timeout: 20s}\n"
             "  - test:\n"
             "      steps:\n"
             "        - {name: mark, run: \"printf '%%s-%%s\\\\n' console-marker %s\"}\n",
             marker, rr_cluster_deploy_yaml(c, NULL, deploy, sizeof deploy), marker);
    uint64_t job = 0;
    assert_int_equal(rr_cluster_submit(c, yaml, &job, NULL), 0);
    return job;
}

/* Wait until the console subprocess's stdout contains TEXT. */
static bool wait_console_output(rr_cluster_t *c, const char *text, int timeout_ms)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/console.out", rr_cluster_dir(c));
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        char *out = tmpdir_slurp(path, NULL);
        bool found = out && strstr(out, text);
        free(out);
        if (found)
            return true;
        testtime_nap_ms(50);
    }
    return false;
}

static void assert_job_complete(rr_cluster_t *c, uint64_t id)
{
    rr_cluster_job_t job;
    assert_true(rr_cluster_wait_job(c, id, "finished", JOB_TIMEOUT_MS));
    assert_int_equal(rr_cluster_job(c, id, &job), 0);
    assert_string_equal(job.outcome, "complete");
}

static void test_console_follows_a_job_and_stops_on_ctrl_c(void **state)
{
    fixture_t *f = *state;
    rr_cluster_t *c = f->cluster;

    f->console = rr_cluster_cli_start(c, "console", "console", "n01", NULL);
    assert_true(f->console > 0);
    assert_true(rr_cluster_wait_log(c, "rack01", "device n01: console following on", 10000));

    uint64_t job = submit_marker_job(c, "first-7f3a");
    assert_job_complete(c, job);
    if (!wait_console_output(c, "console-marker-first-7f3a", 10000)) {
        rr_cluster_dump(c);
        fail_msg("the console follower never saw the job's output");
    }

    assert_int_equal(kill(f->console, SIGINT), 0);
    int rc = rr_cluster_cli_wait(f->console, 5000);
    f->console = 0;
    assert_int_equal(rc, 0);
    assert_true(rr_cluster_wait_log(c, "rack01", "device n01: console following off", 10000));

    /* Nothing broke: the device takes the next job. */
    assert_true(rr_cluster_wait_devices(c, "rack01", "idle", 1, 10000));
    assert_job_complete(c, submit_marker_job(c, "second-91c2"));
    rr_cluster_passed(c);
}

static void test_console_of_unknown_device_is_not_found(void **state)
{
    fixture_t *f = *state;
    char *err = NULL;
    assert_int_equal(rr_cluster_cli(f->cluster, NULL, &err, "console", "nosuch", NULL), 1);
    assert_non_null(err);
    assert_non_null(strstr(err, "not_found"));
    free(err);
    rr_cluster_passed(f->cluster);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_console_follows_a_job_and_stops_on_ctrl_c,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_of_unknown_device_is_not_found,
                                        setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + rr_cluster_stop_failures() ? 1 : 0;
}
