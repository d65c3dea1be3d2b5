/* test_system_bad_input.c: what goes wrong, end to end, with real processes
 * (see cluster.h): job definitions the master must refuse at submit, a BMC
 * that stops answering under a running job, and a worker whose key is not in
 * the master's allow-list. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "capture.h"
#include "cluster.h"
#include "held_http.h"

#define TESTS   6
#define WAIT_MS 60000

typedef struct {
    rr_cluster_t *cluster;
    rr_rig_t *rig;
} fixture_t;

/* n01 takes the [good] jobs; n02's BMC is the one that dies: short IPMI
 * and SOL timeouts so that its job fails fast. */
static const rr_cluster_device_t devices[] = {
    { NULL, "[good]", NULL },
    { NULL, "[flaky]", "ipmi: {timeout: 1s, retries: 1}, sol: {timeout: 3s}" },
};

static int start_rogue(rr_cluster_t *c, rr_rig_t *rig)
{
    char yaml[4096];
    /* Its one device points at a port where no BMC answers: it only has to exist. */
    snprintf(yaml, sizeof yaml,
             "  - {name: rogue-01, type: rogue-board, mac: \"52:54:00:99:00:01\",\n"
             "     bmc: {host: 127.0.0.1, port: 9, user: admin, password_file: \"%s\"}}\n",
             rr_rig_password_file(rig));
    return rr_cluster_add_worker_yaml(c, "rogue", yaml, false);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    *state = f;
    if (!f || !(f->cluster = rr_cluster_new(TESTS)))
        return -1;
    f->rig = rr_cluster_rig(f->cluster, "n", 2);
    if (!f->rig || rr_cluster_add_worker(f->cluster, "rack01", f->rig, devices, true) < 0
        || start_rogue(f->cluster, f->rig) < 0)
        return -1;
    return rr_cluster_wait_devices(f->cluster, "rack01", "idle", 2, 30000) ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = f ? rr_cluster_stop(&f->cluster) : 0;
    free(f);
    return rc;
}

/* Submit YAML: refused (exit 1, no job id) with every piece of WANT (NULL-
 * terminated) in the one error line; nothing stored. */
static void expect_refused(rr_cluster_t *c, const char *yaml, ...)
{
    char *err = NULL;
    uint64_t job = 0;
    int64_t jobs_before = rr_cluster_count(c, "SELECT count(*) FROM jobs");
    int rc = rr_cluster_submit(c, yaml, &job, &err);
    assert_non_null(err);
    if (rc != 1)
        fail_msg("submit: exit %d (want 1), stderr: %s", rc, err);
    va_list ap;
    va_start(ap, yaml);
    for (const char *want = va_arg(ap, const char *); want; want = va_arg(ap, const char *))
        if (!strstr(err, want))
            fail_msg("submit error lacks \"%s\": %s", want, err);
    va_end(ap);
    assert_non_null(strchr(err, '\n'));
    assert_string_equal(strchr(err, '\n'), "\n");   /* one line */
    print_message("refused as it should be: %s", err);
    free(err);
    assert_int_equal(rr_cluster_count(c, "SELECT count(*) FROM jobs"), jobs_before);
    assert_int_equal(rr_cluster_count(c, "SELECT count(*) FROM events e"
                                         " WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = e.job)"),
                     0);
}

static void test_unknown_action_is_refused_at_submit(void **state)
{
    fixture_t *f = *state;
    expect_refused(f->cluster,
                   "job_name: bad-action\n"
                   "device_type: highbank\n"
                   "actions:\n"
                   "  - boot: {method: ipmi-pxe}\n"
                   "  - flash: {to: emmc}\n",
                   ".yaml:5:5: ", "actions[1].flash", "unknown action 'flash'", NULL);
    rr_cluster_passed(f->cluster);
}

static void test_missing_device_type_is_refused_at_submit(void **state)
{
    fixture_t *f = *state;
    expect_refused(f->cluster,
                   "job_name: no-type\n"
                   "actions:\n"
                   "  - boot: {method: ipmi-pxe}\n",
                   ".yaml:1:1: ", "device_type: missing (required)", NULL);
    rr_cluster_passed(f->cluster);
}

static void test_device_type_no_worker_offers_is_refused_at_submit(void **state)
{
    fixture_t *f = *state;
    expect_refused(f->cluster,
                   "job_name: wrong-board\n"
                   "device_type: arndale\n"
                   "actions:\n"
                   "  - boot: {method: ipmi-pxe}\n",
                   "device_type 'arndale': no worker offers this device type (offered: highbank)",
                   NULL);
    rr_cluster_passed(f->cluster);
}

static void test_malformed_yaml_is_refused_at_submit(void **state)
{
    fixture_t *f = *state;
    expect_refused(f->cluster,
                   "job_name: broken\n"
                   "device_type: highbank\n"
                   "actions:\n"
                   "  - boot: {method: ipmi-pxe\n"
                   "  - test: {steps: []}\n",
                   ".yaml:5:9: ", "did not find expected ',' or '}'",
                   "while parsing a flow mapping at line 4", NULL);
    rr_cluster_passed(f->cluster);
}

/* A worker whose certificate is not in workers.d never gets in: the master
 * logs the refusal with its key, and neither it nor its devices exist for
 * the master (a job for its device type is refused as offered by no one). */
static void test_worker_with_a_key_not_in_the_allow_list_is_refused(void **state)
{
    fixture_t *f = *state;
    rr_cluster_t *c = f->cluster;
    char key[41], refused[128];
    assert_int_equal(rr_cluster_worker_key(c, "rogue", key), 0);
    snprintf(refused, sizeof refused, "refused workers key %s", key);
    assert_true(rr_cluster_wait_log(c, "master", refused, 10000));
    assert_int_equal(rr_cluster_count(c, "SELECT count(*) FROM workers WHERE name = 'rogue'"), 0);
    assert_int_equal(rr_cluster_count(c, "SELECT count(*) FROM devices WHERE name = 'rogue-01'"
                                         " OR worker = 'rogue'"), 0);
    expect_refused(c,
                   "job_name: for-the-rogue\n"
                   "device_type: rogue-board\n"
                   "actions:\n"
                   "  - boot: {method: ipmi-pxe}\n",
                   "device_type 'rogue-board': no worker offers this device type", NULL);
    assert_true(rr_cluster_wait_devices(c, "rack01", "idle", 2, 1000));
    rr_cluster_passed(c);
}

static uint64_t submit_tagged(rr_cluster_t *c, const char *name, const char *tag,
                              const char *kernel_url)
{
    char yaml[8192], deploy[4096], *err = NULL;
    uint64_t id = 0;
    snprintf(yaml, sizeof yaml,
             "job_name: %s\n"
             "device_type: highbank\n"
             "tags: [%s]\n"
             "actions:\n%s"
             "  - boot: {method: ipmi-pxe, timeout: 20s}\n"
             "  - test:\n"
             "      timeout: 20s\n"
             "      steps:\n"
             "        - {name: hello, run: \"echo %s on $RR_NODE\"}\n",
             name, tag, rr_cluster_deploy_yaml(c, kernel_url, deploy, sizeof deploy), name);
    int rc = rr_cluster_submit(c, yaml, &id, &err);
    if (rc != 0)
        fail_msg("submit %s: exit %d: %s", name, rc, err ? err : "");
    free(err);
    return id;
}

/* n02's BMC dies while its job is already running (held in deploy: its kernel
 * comes from an HTTP server that answers only after the BMC was killed). That job ends
 * incomplete in its boot action with a reason naming the BMC; the jobs on
 * n01 run meanwhile and complete; n02 goes offline naming its BMC. */
static void test_unreachable_bmc_ends_its_job_incomplete_while_others_go_on(void **state)
{
    fixture_t *f = *state;
    rr_cluster_t *c = f->cluster;
    char bmc[64];
    snprintf(bmc, sizeof bmc, "bmc 127.0.0.1:%u", rr_rig_node(f->rig, 1)->port);
    rr_held_http_t *held = rr_held_http_new("kernel served late\n");
    assert_non_null(held);

    uint64_t doomed = submit_tagged(c, "doomed", "flaky", rr_held_http_url(held));
    bool requested = rr_held_http_wait_request(held, WAIT_MS);
    int killed = requested ? rr_rig_bmc(f->rig, 1, "kill") : -1;
    rr_held_http_destroy(&held);     /* releases the answer */
    assert_true(requested);
    assert_int_equal(killed, 0);
    uint64_t others[2] = { submit_tagged(c, "other-1", "good", NULL),
                           submit_tagged(c, "other-2", "good", NULL) };

    assert_true(rr_cluster_wait_job(c, doomed, "finished", WAIT_MS));
    rr_cluster_job_t job;
    assert_int_equal(rr_cluster_job(c, doomed, &job), 0);
    assert_string_equal(job.device, "n02");
    assert_string_equal(job.outcome, "incomplete");
    if (!strstr(job.reason, bmc))
        fail_msg("reason '%s' does not name '%s'", job.reason, bmc);
    /* the action that failed is boot, and it says so with the same BMC */
    assert_int_equal(rr_cluster_count(c, "SELECT count(*) FROM events WHERE job = %llu AND"
                                         " kind = 'action' AND name = 'boot' AND value = 'fail'"
                                         " AND instr(reason, '%s') > 0",
                                      (unsigned long long)doomed, bmc), 1);
    assert_int_equal(rr_cluster_count(c, "SELECT count(*) FROM events WHERE job = %llu AND"
                                         " kind = 'action' AND name = 'deploy' AND value = 'end'",
                                      (unsigned long long)doomed), 1);
    assert_false(rr_rig_wait_hook(f->rig, 1, "set power 1", 0));   /* never powered on */

    for (int i = 0; i < 2; i++) {
        assert_true(rr_cluster_wait_job(c, others[i], "finished", WAIT_MS));
        assert_int_equal(rr_cluster_job(c, others[i], &job), 0);
        assert_string_equal(job.device, "n01");
        assert_string_equal(job.outcome, "complete");
    }
    size_t checked = 0;
    assert_true(rr_cluster_check_logs(c, f->rig, &checked));
    assert_int_equal(checked, 2);
    size_t len = 1;
    free(rr_cluster_job_log(c, doomed, &len));
    assert_int_equal(len, 0);

    /* the device is offline for the master, and says why */
    assert_true(rr_cluster_wait_count(c, 1, 20000, "SELECT count(*) FROM devices WHERE name = 'n02'"
                                      " AND state = 'offline' AND instr(reason, '%s') > 0", bmc));
    rr_cluster_passed(c);
}

int main(void)
{
    const struct CMUnitTest tests[TESTS] = {
        cmocka_unit_test(test_unknown_action_is_refused_at_submit),
        cmocka_unit_test(test_missing_device_type_is_refused_at_submit),
        cmocka_unit_test(test_device_type_no_worker_offers_is_refused_at_submit),
        cmocka_unit_test(test_malformed_yaml_is_refused_at_submit),
        cmocka_unit_test(test_worker_with_a_key_not_in_the_allow_list_is_refused),
        cmocka_unit_test(test_unreachable_bmc_ends_its_job_incomplete_while_others_go_on),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return failed + rr_cluster_stop_failures() ? 1 : 0;
}
