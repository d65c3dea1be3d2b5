/* test_health_cluster.c: health-check jobs end to end: the real
 * rackrun-master and rackrun-worker on an emulated rack of two fast-shell
 * nodes (tests/chaos/cluster.h) whose device type declares a health check
 * that fails on node n01 only. Each new device's first job is its health
 * check; n01 goes bad with the check's reason, and a user job submitted while
 * the checks run waits for them and then runs on n02, after its check passed. */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cluster.h"
#include "store.h"
#include "tmpdir.h"

/* Passes on every node but n01 (the rig's node shell has RR_NODE=nXX). */
static const char *const CHECK_YAML =
    "job_name: node sanity\n"
    "device_type: chaos\n"
    "timeouts: {job: 2m, action: 30s}\n"
    "actions:\n"
    "  - boot: {method: ipmi-disk, prompts: [\"# \"], timeout: 30s}\n"
    "  - test:\n"
    "      steps:\n"
    "        - {name: node-ok, run: 'test \"$RR_NODE\" != n01'}\n";

typedef struct {
    uint64_t id;
    char name[128];
    char state[16];
    char outcome[16];
    char reason[512];
    char device[32];
    uint64_t started, ended;
} job_t;

static job_t get_job(cluster_t *c, uint64_t id)
{
    proto_msg_t reply;
    job_t job = { .id = id };
    assert_int_equal(cluster_job(c, id, &reply, 5000), 0);
    assert_int_equal(reply.type, PROTO_MSG_JOB_DETAIL);
    const proto_jobinfo_t *info = reply.u.job_detail.info;
    snprintf(job.name, sizeof job.name, "%s", info->name);
    snprintf(job.state, sizeof job.state, "%s", info->state);
    snprintf(job.outcome, sizeof job.outcome, "%s", info->outcome ? info->outcome : "");
    snprintf(job.reason, sizeof job.reason, "%s", info->reason ? info->reason : "");
    snprintf(job.device, sizeof job.device, "%s", info->device ? info->device : "");
    job.started = info->started;
    job.ended = info->ended;
    proto_msg_free(&reply);
    return job;
}

/* Wait until DEVICE is bad; its reason into REASON. */
static bool wait_bad(cluster_t *c, const char *device, char *reason, size_t len, int timeout_ms)
{
    uint64_t deadline = cluster_now_ms() + (uint64_t) timeout_ms;
    while (cluster_now_ms() < deadline) {
        char state[32] = "";
        if (cluster_device_state(c, device, state, sizeof state, reason, len) == 0
            && !strcmp(state, RR_DEVICE_BAD))
            return true;
        usleep(100 * 1000);
    }
    return false;
}

static void test_new_devices_run_their_health_check_first_and_a_failed_one_goes_bad(void **state)
{
    (void) state;
    char *dir = tmpdir_new("hcjob");
    assert_non_null(dir);
    char check[4200], extra[4400];
    snprintf(check, sizeof check, "%s/check.yaml", dir);
    assert_int_equal(tmpdir_write_text(check, CHECK_YAML, 0644), 0);
    snprintf(extra, sizeof extra, "health_checks:\n  chaos: {job: %s, every_jobs: 5}\n", check);
    cluster_opts_t opts = { .nodes_per_worker = 2, .master_extra = extra,
                            .wait_known_only = true };
    cluster_t *c = cluster_new(&opts);
    assert_non_null(c);

    /* Submitted while the checks run: it must wait for a device that passed. */
    char yaml[2048];
    cluster_job_yaml(yaml, sizeof yaml, "user", 3, 10, 30);
    uint64_t user = cluster_submit(c, yaml);
    assert_true(user > 0);

    char reason[512] = "";
    assert_true(wait_bad(c, "n01", reason, sizeof reason, 30000));
    char outcome[32] = "", why[256] = "";
    assert_true(cluster_wait_finished(c, user, 30000, outcome, sizeof outcome, why, sizeof why));
    assert_string_equal(outcome, RR_OUTCOME_COMPLETE);

    /* Jobs 1 and 2 are the health checks, one per device, made at HELLO. */
    job_t checks[2] = { get_job(c, 1), get_job(c, 2) };
    assert_true(user > 2);
    job_t *n01 = !strcmp(checks[0].device, "n01") ? &checks[0] : &checks[1];
    job_t *n02 = n01 == &checks[0] ? &checks[1] : &checks[0];
    assert_string_equal(n01->device, "n01");
    assert_string_equal(n02->device, "n02");
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(checks[i].name, "[health check] node sanity");
        assert_string_equal(checks[i].outcome, RR_OUTCOME_COMPLETE);   /* a step failed */
    }
    char expect[128];
    snprintf(expect, sizeof expect, "health check job %" PRIu64 " failed: result 'node-ok' "
             "failed", n01->id);
    if (!strstr(reason, expect))
        fail_msg("n01's reason '%s' lacks '%s'", reason, expect);

    job_t job = get_job(c, user);
    assert_string_equal(job.device, "n02");             /* never the bad n01 */
    assert_true(job.started >= n02->ended);             /* after n02's check passed */
    char state_now[32];
    assert_int_equal(cluster_device_state(c, "n01", state_now, sizeof state_now, NULL, 0), 0);
    assert_string_equal(state_now, RR_DEVICE_BAD);      /* the worker's idle did not undo it */

    cluster_destroy(&c, true);
    tmpdir_remove(&dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_devices_run_their_health_check_first_and_a_failed_one_goes_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
