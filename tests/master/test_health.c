/* test_health.c: health-check jobs (master/health.h) against a real store:
 * when a device is due (new, every_jobs, every_hours with an injected clock,
 * back from bad), what a check's end does to its device (pass resets, fail
 * and incomplete make it bad with the reason, cancel leaves it due), that the
 * master's bad mark survives the worker's reports, and how the master config
 * and the job file are checked (located errors). */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "health.h"
#include "jobyaml.h"
#include "store.h"
#include "tmpdir.h"

#define HOUR_MS 3600000ull
#define T0 1700000000000ull     /* an injected wall clock */

static const char *const CHECK_YAML =
    "job_name: smoke\n"
    "device_type: hb\n"
    "actions:\n"
    "  - boot: {method: ipmi-disk}\n"
    "  - test:\n"
    "      steps:\n"
    "        - {name: alive, run: 'true'}\n";

typedef struct {
    char *dir;
    rr_store_t *store;
    rr_health_check_config_t check;
    rr_master_config_t config;
    rr_health_t *health;
} fixture_t;

static void assert_ok(rr_store_t *store, int rc)
{
    if (rc != RR_STORE_OK)
        fail_msg("store: %d: %s", rc, rr_store_error(store));
}

static char *put(const char *dir, const char *name, const char *text)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(tmpdir_write_text(path, text, 0644), 0);
    return strdup(path);
}

/* Rule for type "hb": EVERY_JOBS, EVERY_HOURS; worker w1 says HELLO with
 * devices d1 (hb) and o1 (other type, no health check). */
static int setup_rule(void **state, uint32_t every_jobs, uint32_t every_hours)
{
    fixture_t *f = calloc(1, sizeof *f);
    char err[1024] = "", db[4200];
    f->dir = tmpdir_new("health");
    snprintf(db, sizeof db, "%s/master.db", f->dir);
    f->store = rr_store_open(db, err, sizeof err);
    if (!f->store)
        fail_msg("%s", err);
    f->check = (rr_health_check_config_t) { .device_type = "hb", .every_jobs = every_jobs,
                                            .every_hours = every_hours };
    f->check.job = put(f->dir, "hc.yaml", CHECK_YAML);
    f->config.health_checks = &f->check;
    f->config.health_check_count = 1;
    f->health = rr_health_new(&f->config, err, sizeof err);
    if (!f->health)
        fail_msg("%s", err);
    proto_device_t devs[] = { { .name = "d1", .type = "hb", .state = "idle" },
                              { .name = "o1", .type = "other", .state = "idle" } };
    proto_hello_t hello = { .worker = "w1", .version = "t", .devices = devs,
                            .devices_count = 2 };
    assert_ok(f->store, rr_store_worker_hello(f->store, &hello, T0));
    *state = f;
    return 0;
}

static int setup(void **state) { return setup_rule(state, 3, 0); }
static int setup_hours(void **state) { return setup_rule(state, 0, 24); }

static int teardown(void **state)
{
    fixture_t *f = *state;
    rr_health_destroy(&f->health);
    assert_null(f->health);
    rr_store_destroy(&f->store);
    free(f->check.job);
    tmpdir_remove(&f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---- */

typedef struct {
    uint64_t jobs[8];
    char devices[8][16];
    size_t count;
} started_t;

static void on_started(uint64_t job, const rr_store_health_t *device, const char *why,
                       void *arg)
{
    started_t *s = arg;
    assert_non_null(why);
    s->jobs[s->count] = job;
    snprintf(s->devices[s->count], sizeof s->devices[0], "%s", device->device);
    s->count++;
}

/* Run the health pass at NOW; the jobs it started. */
static started_t pass(fixture_t *f, uint64_t now)
{
    started_t s = { 0 };
    char err[512] = "";
    int n = rr_health_start_due(f->health, f->store, now, on_started, &s, err, sizeof err);
    if (n < 0)
        fail_msg("%s", err);
    assert_int_equal((size_t) n, s.count);
    return s;
}

static void device_state(fixture_t *f, const char *device, const char *state, const char *reason)
{
    proto_deviceinfo_t info;
    assert_ok(f->store, rr_store_device_get(f->store, device, &info));
    assert_string_equal(info.state, state);
    if (reason && (!info.reason || !strstr(info.reason, reason)))
        fail_msg("device %s: reason '%s' lacks '%s'", device, info.reason ? info.reason : "",
                 reason);
    rr_store_deviceinfo_clear(&info);
}

/* JOB runs and ends with OUTCOME (REASON) at NOW; returns the verdict. */
static rr_health_verdict_t end_job(fixture_t *f, uint64_t job, const char *outcome,
                                   const char *reason, uint64_t now, char *why, size_t len)
{
    rr_health_verdict_t verdict;
    assert_ok(f->store, rr_store_job_running(f->store, job, now));
    assert_ok(f->store, rr_store_job_finish(f->store, job, outcome, reason, now));
    assert_int_equal(rr_health_job_ended(f->health, f->store, job, now, &verdict, why, len), 0);
    return verdict;
}

/* The health pass at NOW starts the check on d1; it runs and ends with
 * OUTCOME (REASON), which must give VERDICT. */
static void check_ends(fixture_t *f, uint64_t now, const char *outcome, const char *reason,
                       rr_health_verdict_t verdict)
{
    started_t s = pass(f, now);
    assert_int_equal(s.count, 1);
    char why[512];
    assert_int_equal(end_job(f, s.jobs[0], outcome, reason, now, why, sizeof why), verdict);
}

/* The health check on d1 runs and passes at NOW. */
static void check_passes(fixture_t *f, uint64_t now)
{
    check_ends(f, now, RR_OUTCOME_COMPLETE, NULL, RR_HEALTH_PASSED);
}

/* A normal job of type hb runs on d1 and completes. */
static void run_normal_job(fixture_t *f, uint64_t now)
{
    proto_jobdef_t *def = NULL;
    rr_jobyaml_error_t yerr;
    uint64_t job = 0;
    char why[256];
    assert_int_equal(rr_jobyaml_parse(CHECK_YAML, strlen(CHECK_YAML), &def, &yerr), 0);
    assert_ok(f->store, rr_store_job_insert(f->store, CHECK_YAML, def, now, &job));
    proto_jobdef_destroy(&def);
    assert_ok(f->store, rr_store_job_assign(f->store, job, "d1", "w1"));
    assert_int_equal(end_job(f, job, RR_OUTCOME_COMPLETE, NULL, now, why, sizeof why),
                     RR_HEALTH_NOT_A_CHECK);
}

/* ---- when a device is due ---- */

static void test_new_device_gets_its_health_check_assigned_at_once(void **state)
{
    fixture_t *f = *state;
    started_t s = pass(f, T0);
    assert_int_equal(s.count, 1);                       /* d1 only: o1's type has none */
    assert_string_equal(s.devices[0], "d1");
    proto_jobinfo_t info;
    assert_ok(f->store, rr_store_job_get(f->store, s.jobs[0], &info));
    assert_string_equal(info.state, RR_JOB_SCHEDULED);  /* never queued for another device */
    assert_string_equal(info.device, "d1");
    assert_string_equal(info.name, "[health check] smoke");
    assert_int_equal(info.priority, 100);
    rr_store_jobinfo_clear(&info);
    bool is = false;
    assert_ok(f->store, rr_store_health_job(f->store, s.jobs[0], &is, NULL));
    assert_true(is);
    device_state(f, "d1", RR_DEVICE_RESERVED, NULL);
    device_state(f, "o1", RR_DEVICE_IDLE, NULL);
}

static void test_no_second_health_check_while_one_is_open(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(pass(f, T0).count, 1);
    assert_int_equal(pass(f, T0 + 1).count, 0);
    assert_int_equal(pass(f, T0 + 100 * HOUR_MS).count, 0);
}

static void test_passed_check_resets_the_counters_and_is_not_due(void **state)
{
    fixture_t *f = *state;
    check_passes(f, T0 + 5);
    rr_store_health_t h;
    assert_ok(f->store, rr_store_health_get(f->store, "d1", &h));
    assert_false(h.due);
    assert_int_equal(h.jobs_since, 0);
    assert_int_equal(h.last_check_ms, T0 + 5);
    rr_store_health_clear(&h);
    device_state(f, "d1", RR_DEVICE_IDLE, NULL);
    assert_int_equal(pass(f, T0 + 10).count, 0);
}

static void test_due_again_after_every_jobs_jobs(void **state)
{
    fixture_t *f = *state;                              /* every_jobs: 3 */
    check_passes(f, T0);
    run_normal_job(f, T0 + 1);
    run_normal_job(f, T0 + 2);
    assert_int_equal(pass(f, T0 + 3).count, 0);
    run_normal_job(f, T0 + 3);
    started_t s = pass(f, T0 + 4);
    assert_int_equal(s.count, 1);
    assert_string_equal(s.devices[0], "d1");
}

static void test_due_again_after_every_hours_by_the_clock(void **state)
{
    fixture_t *f = *state;                              /* every_hours: 24 */
    check_passes(f, T0);
    run_normal_job(f, T0 + HOUR_MS);                    /* jobs do not count here */
    assert_int_equal(pass(f, T0 + 24 * HOUR_MS - 1).count, 0);
    assert_int_equal(pass(f, T0 + 24 * HOUR_MS).count, 1);
}

static void test_due_reasons_name_the_rule(void **state)
{
    (void) state;
    char why[128];
    rr_health_rule_t rule = { .every_jobs = 2, .every_hours = 1 };
    rr_store_health_t fresh = { .due = true };
    assert_true(rr_health_due(&rule, &fresh, T0, why, sizeof why));
    assert_string_equal(why, "new device");
    rr_store_health_t back = { .due = true, .last_check_ms = T0 };
    assert_true(rr_health_due(&rule, &back, T0, why, sizeof why));
    assert_string_equal(why, "back from bad");
    rr_store_health_t used = { .jobs_since = 2, .last_check_ms = T0 };
    assert_true(rr_health_due(&rule, &used, T0, why, sizeof why));
    assert_non_null(strstr(why, "every_jobs 2"));
    rr_store_health_t fine = { .jobs_since = 1, .last_check_ms = T0 };
    assert_false(rr_health_due(&rule, &fine, T0 + HOUR_MS - 1, why, sizeof why));
    assert_true(rr_health_due(&rule, &fine, T0 + HOUR_MS, why, sizeof why));
    rr_health_rule_t off = { 0 };
    assert_false(rr_health_due(&off, &used, T0 + 1000 * HOUR_MS, why, sizeof why));
}

/* ---- verdicts ---- */

static void test_failed_result_makes_the_device_bad_with_the_reason(void **state)
{
    fixture_t *f = *state;
    started_t s = pass(f, T0);
    proto_job_event_t ev[] = {
        { .job = s.jobs[0], .seq = 1, .ts = T0, .kind = "result", .name = "alive",
          .value = "pass", .code = 0 },
        { .job = s.jobs[0], .seq = 2, .ts = T0, .kind = "result", .name = "disk",
          .value = "fail", .code = 1 },
    };
    rr_store_ack_t *acks = NULL;
    size_t n = 0;
    assert_ok(f->store, rr_store_events_append(f->store, ev, 2, &acks, &n));
    free(acks);
    char why[512];
    assert_int_equal(end_job(f, s.jobs[0], RR_OUTCOME_COMPLETE, NULL, T0, why, sizeof why),
                     RR_HEALTH_FAILED);
    char expect[128];
    snprintf(expect, sizeof expect, "health check job %" PRIu64 " failed: result 'disk' "
             "failed (code 1)", s.jobs[0]);
    assert_string_equal(why, expect);
    device_state(f, "d1", RR_DEVICE_BAD, expect);
    assert_int_equal(pass(f, T0 + 1).count, 0);         /* bad: nothing runs on it */
}

static void test_incomplete_check_makes_the_device_bad(void **state)
{
    fixture_t *f = *state;
    check_ends(f, T0, RR_OUTCOME_INCOMPLETE, "boot: no prompt", RR_HEALTH_FAILED);
    device_state(f, "d1", RR_DEVICE_BAD, "failed: incomplete: boot: no prompt");
}

static void test_canceled_check_leaves_the_device_idle_and_due(void **state)
{
    fixture_t *f = *state;
    check_ends(f, T0, RR_OUTCOME_CANCELED, "operator", RR_HEALTH_ABORTED);
    device_state(f, "d1", RR_DEVICE_IDLE, NULL);
    assert_int_equal(pass(f, T0 + 1).count, 1);
}

static void test_master_bad_mark_outlives_worker_reports_and_loss(void **state)
{
    fixture_t *f = *state;
    check_ends(f, T0, RR_OUTCOME_INCOMPLETE, "x", RR_HEALTH_FAILED);
    proto_devstate_t idle = { .name = "d1", .state = "idle" };
    assert_ok(f->store, rr_store_device_report(f->store, "w1", &idle));
    device_state(f, "d1", RR_DEVICE_BAD, "health check job");
    assert_ok(f->store, rr_store_worker_set_state(f->store, "w1", RR_WORKER_LOST, T0));
    device_state(f, "d1", RR_DEVICE_BAD, "health check job");
    proto_device_t devs[] = { { .name = "d1", .type = "hb", .state = "idle" } };
    proto_hello_t hello = { .worker = "w1", .version = "t", .devices = devs,
                            .devices_count = 1 };
    assert_ok(f->store, rr_store_worker_hello(f->store, &hello, T0));
    device_state(f, "d1", RR_DEVICE_BAD, "health check job");
}

static void test_device_back_from_bad_is_due_again(void **state)
{
    fixture_t *f = *state;
    check_passes(f, T0);                                /* checked once: not "new" */
    started_t s = { 0 };
    assert_ok(f->store, rr_store_health_failed(f->store, "d1", "health check job 9 failed: x"));
    assert_int_equal(pass(f, T0 + 1).count, 0);
    /* the operator's way out: maintenance on, then off */
    assert_ok(f->store, rr_store_device_set_state(f->store, "d1", RR_DEVICE_MAINTENANCE, "op"));
    assert_int_equal(pass(f, T0 + 2).count, 0);
    assert_ok(f->store, rr_store_device_set_state(f->store, "d1", RR_DEVICE_IDLE, NULL));
    rr_store_health_t h;
    assert_ok(f->store, rr_store_health_get(f->store, "d1", &h));
    char why[128];
    rr_health_rule_t rule = { 0 };
    assert_true(rr_health_due(&rule, &h, T0 + 3, why, sizeof why));
    assert_string_equal(why, "back from bad");
    rr_store_health_clear(&h);
    s = pass(f, T0 + 3);
    assert_int_equal(s.count, 1);
}

static void test_worker_reported_bad_then_idle_is_due(void **state)
{
    fixture_t *f = *state;
    check_passes(f, T0);
    proto_devstate_t bad = { .name = "d1", .state = "bad", .reason = "3 BMC failures" };
    assert_ok(f->store, rr_store_device_report(f->store, "w1", &bad));
    proto_devstate_t idle = { .name = "d1", .state = "idle" };
    assert_ok(f->store, rr_store_device_report(f->store, "w1", &idle));
    device_state(f, "d1", RR_DEVICE_IDLE, NULL);        /* the worker's bad: its to clear */
    assert_int_equal(pass(f, T0 + 1).count, 1);
}

/* ---- configuration and the job file ---- */

static void expect_refused(fixture_t *f, const char *yaml, const char *needle)
{
    char err[1024] = "";
    free(f->check.job);
    f->check.job = put(f->dir, "bad.yaml", yaml);
    rr_health_t *health = rr_health_new(&f->config, err, sizeof err);
    assert_null(health);
    if (!strstr(err, needle))
        fail_msg("error '%s' lacks '%s'", err, needle);
}

static void test_invalid_check_job_is_refused_with_file_line_and_column(void **state)
{
    fixture_t *f = *state;
    char where[4300];
    snprintf(where, sizeof where, "health_checks.hb.job: %s/bad.yaml:4:", f->dir);
    expect_refused(f, "job_name: x\ndevice_type: hb\nactions:\n  - boot: {method: ipxe}\n",
                   where);
    expect_refused(f, "job_name: x\ndevice_type: hb\nactions:\n  - boot: {method: ipxe}\n",
                   "unknown method 'ipxe'");
    expect_refused(f, "job_name: x\ndevice_type: other\nactions:\n  - boot: {method: ipmi-disk}\n",
                   "device_type 'other' is not the device type it checks");
    free(f->check.job);
    f->check.job = strdup("/nonexistent/hc.yaml");
    char err[512];
    assert_null(rr_health_new(&f->config, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/hc.yaml: No such file"));
}

static void test_master_config_reads_health_checks(void **state)
{
    fixture_t *f = *state;
    char *path = put(f->dir, "master.yaml",
                     "health_checks:\n"
                     "  hb: {job: checks/hb.yaml, every_jobs: 10, every_hours: 24}\n"
                     "  other: {job: /etc/rackrun/o.yaml}\n");
    rr_master_config_t *c = NULL;
    char err[512] = "", expect[4300];
    assert_int_equal(rr_master_config_load(path, &c, err, sizeof err), 0);
    assert_int_equal(c->health_check_count, 2);
    assert_string_equal(c->health_checks[0].device_type, "hb");
    snprintf(expect, sizeof expect, "%s/checks/hb.yaml", f->dir);   /* beside the config */
    assert_string_equal(c->health_checks[0].job, expect);
    assert_int_equal(c->health_checks[0].every_jobs, 10);
    assert_int_equal(c->health_checks[0].every_hours, 24);
    assert_string_equal(c->health_checks[1].job, "/etc/rackrun/o.yaml");
    assert_int_equal(c->health_checks[1].every_jobs, 0);
    rr_master_config_destroy(&c);
    free(path);
}

static void test_master_config_refuses_a_bad_health_check_key(void **state)
{
    fixture_t *f = *state;
    char *path = put(f->dir, "master.yaml", "health_checks:\n  hb: {job: x.yaml, every: 3}\n");
    rr_master_config_t *c = NULL;
    char err[512] = "";
    assert_int_equal(rr_master_config_load(path, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "master.yaml:2:"));
    assert_non_null(strstr(err, "health_checks.hb: unknown key 'every'"));
    free(path);
    path = put(f->dir, "master.yaml", "health_checks:\n  hb: {every_jobs: 3}\n");
    assert_int_equal(rr_master_config_load(path, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing required key 'job'"));
    free(path);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_new_device_gets_its_health_check_assigned_at_once),
        T(test_no_second_health_check_while_one_is_open),
        T(test_passed_check_resets_the_counters_and_is_not_due),
        T(test_due_again_after_every_jobs_jobs),
        cmocka_unit_test_setup_teardown(test_due_again_after_every_hours_by_the_clock,
                                        setup_hours, teardown),
        cmocka_unit_test(test_due_reasons_name_the_rule),
        T(test_failed_result_makes_the_device_bad_with_the_reason),
        T(test_incomplete_check_makes_the_device_bad),
        T(test_canceled_check_leaves_the_device_idle_and_due),
        T(test_master_bad_mark_outlives_worker_reports_and_loss),
        T(test_device_back_from_bad_is_due_again),
        T(test_worker_reported_bad_then_idle_is_due),
        T(test_invalid_check_job_is_refused_with_file_line_and_column),
        T(test_master_config_reads_health_checks),
        T(test_master_config_refuses_a_bad_health_check_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
