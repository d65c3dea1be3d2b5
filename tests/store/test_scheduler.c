/* test_scheduler.c: which queued job each idle device gets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sched_index.h"
#include "scheduler.h"
#include "store_fixture.h"

/* The master's scheduler state for the test's store: its queue in memory,
 * kept from pass to pass as the master keeps it. */
static rr_sched_index_t *s_index;

static int setup(void **state)
{
    s_index = rr_sched_index_new();
    return s_index ? fixture_setup(state) : -1;
}

static int teardown(void **state)
{
    rr_sched_index_destroy(&s_index);
    return fixture_teardown(state);
}

/* Run the scheduler; *COUNT assignments, caller frees. */
static rr_assignment_t *pick(fixture_t *f, size_t *count)
{
    rr_assignment_t *out = NULL;
    char err[512] = "";
    if (rr_scheduler_pick_indexed(f->store, s_index, &out, count, err, sizeof err) != 0)
        fail_msg("pick: %s", err);
    return out;
}

/* The job assigned to DEVICE in LIST, 0 if none. */
static uint64_t job_on(const rr_assignment_t *list, size_t count, const char *device)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(list[i].device, device) == 0)
            return list[i].job;
    return 0;
}

static const char *job_state(fixture_t *f, uint64_t job, char *buf, size_t len)
{
    proto_jobinfo_t info;
    assert_int_equal(rr_store_job_get(f->store, job, &info), RR_STORE_OK);
    snprintf(buf, len, "%s", info.state);
    rr_store_jobinfo_clear(&info);
    return buf;
}

/* An assignment a scheduling pass must make. */
typedef struct {
    const char *device;
    uint64_t job;
} pick_t;

/* One pass makes exactly the N assignments WANT; job QUEUED stays queued. */
static void expect_picks(fixture_t *f, const pick_t *want, size_t n, uint64_t queued)
{
    size_t count;
    rr_assignment_t *list = pick(f, &count);
    assert_int_equal(count, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(job_on(list, count, want[i].device), want[i].job);
    rr_assignments_free(&list, count);
    char buf[16];
    assert_string_equal(job_state(f, queued, buf, sizeof buf), RR_JOB_QUEUED);
}

static void test_higher_priority_job_goes_first(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    fixture_job(f, "highbank", 25, "", 1);
    uint64_t high = fixture_job(f, "highbank", 75, "", 2);
    fixture_job(f, "highbank", 50, "", 3);
    size_t count;
    rr_assignment_t *list = pick(f, &count);
    assert_int_equal(count, 1);
    assert_int_equal(list[0].job, high);
    assert_string_equal(list[0].device, "hb01");
    assert_string_equal(list[0].worker, "rack01");
    rr_assignments_free(&list, count);
    assert_null(list);
}

static void test_oldest_job_first_within_a_priority(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", "hb02:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t first = fixture_job(f, "highbank", 50, "", 1);
    uint64_t second = fixture_job(f, "highbank", 50, "", 2);
    uint64_t third = fixture_job(f, "highbank", 50, "", 3);
    expect_picks(f, (const pick_t[]) { { "hb01", first }, { "hb02", second } }, 2, third);
}

static void test_job_tags_must_all_be_on_the_device(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank:sata:idle", "hb02:highbank:sata+usb:idle",
                                 NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t both = fixture_job(f, "highbank", 90, "sata,usb", 1);
    uint64_t pcie = fixture_job(f, "highbank", 90, "pcie", 2);
    uint64_t sata = fixture_job(f, "highbank", 10, "sata", 3);
    expect_picks(f, (const pick_t[]) { { "hb02", both }, { "hb01", sata } }, 2, pcie);
}

static void test_device_type_must_match(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", "mid01:midway::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t midway = fixture_job(f, "midway", 50, "", 1);
    uint64_t other = fixture_job(f, "qemu-arm", 99, "", 2);
    expect_picks(f, (const pick_t[]) { { "mid01", midway } }, 1, other);
}

static void test_unavailable_devices_are_never_picked(void **state)
{
    fixture_t *f = *state;
    const char *const rack1[] = { "hb01:highbank::maintenance", "hb02:highbank::offline",
                                  "hb03:highbank::bad", "hb04:highbank::retired", NULL };
    const char *const rack2[] = { "hb05:highbank::idle", NULL };
    fixture_hello(f, "rack01", rack1);
    fixture_hello(f, "rack02", rack2);
    assert_int_equal(rr_store_worker_set_state(f->store, "rack02", RR_WORKER_LOST, 5),
                     RR_STORE_OK);
    for (int i = 0; i < 3; i++)
        fixture_job(f, "highbank", 50, "", 1);
    size_t count = 99;
    rr_assignment_t *list = pick(f, &count);
    assert_int_equal(count, 0);
    assert_null(list);
}

static void test_idle_device_of_an_offline_worker_is_not_picked(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    assert_int_equal(rr_store_worker_set_state(f->store, "rack01", RR_WORKER_OFFLINE, 5),
                     RR_STORE_OK);
    /* Even if something set the device idle again, its worker is not online. */
    assert_int_equal(rr_store_device_set_state(f->store, "hb01", RR_DEVICE_IDLE, NULL),
                     RR_STORE_OK);
    fixture_job(f, "highbank", 50, "", 1);
    size_t count;
    rr_assignment_t *list = pick(f, &count);
    assert_int_equal(count, 0);
    rr_assignments_free(&list, count);
}

static void test_a_device_that_refuses_its_job_is_skipped_not_fatal(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", "hb02:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t first = fixture_job(f, "highbank", 90, "", 1);
    uint64_t second = fixture_job(f, "highbank", 50, "", 2);
    /* Idle yet holding a job: the store will not reserve hb01. */
    fixture_raw_exec(f->path, "UPDATE devices SET job = 12345 WHERE name = 'hb01'");
    size_t count;
    rr_assignment_t *list = pick(f, &count);
    assert_int_equal(count, 1);
    assert_string_equal(list[0].device, "hb02");
    assert_int_equal(list[0].job, second);
    rr_assignments_free(&list, count);
    char buf[16];
    assert_string_equal(job_state(f, first, buf, sizeof buf), RR_JOB_QUEUED);
    /* The job hb01 refused is back in the queue for the next pass. */
    fixture_raw_exec(f->path, "UPDATE devices SET job = NULL WHERE name = 'hb01'");
    list = pick(f, &count);
    assert_int_equal(count, 1);
    assert_string_equal(list[0].device, "hb01");
    assert_int_equal(list[0].job, first);
    rr_assignments_free(&list, count);
}

static void test_assignment_marks_job_scheduled_and_device_reserved(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t job = fixture_job(f, "highbank", 50, "", 1);
    size_t count;
    rr_assignment_t *list = pick(f, &count);
    assert_int_equal(count, 1);
    rr_assignments_free(&list, count);

    proto_jobinfo_t info;
    assert_int_equal(rr_store_job_get(f->store, job, &info), RR_STORE_OK);
    assert_string_equal(info.state, RR_JOB_SCHEDULED);
    assert_string_equal(info.device, "hb01");
    assert_string_equal(info.worker, "rack01");
    rr_store_jobinfo_clear(&info);
    proto_deviceinfo_t dev;
    assert_int_equal(rr_store_device_get(f->store, "hb01", &dev), RR_STORE_OK);
    assert_string_equal(dev.state, RR_DEVICE_RESERVED);
    assert_int_equal(dev.job, job);
    rr_store_deviceinfo_clear(&dev);

    /* A second pass has nothing left to do. */
    fixture_job(f, "highbank", 50, "", 2);
    list = pick(f, &count);
    assert_int_equal(count, 0);
    rr_assignments_free(&list, count);
}

static void test_finished_job_frees_device_for_the_next(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t first = fixture_job(f, "highbank", 50, "", 1);
    uint64_t second = fixture_job(f, "highbank", 50, "", 2);
    size_t count;
    rr_assignment_t *list = pick(f, &count);
    assert_int_equal(list[0].job, first);
    rr_assignments_free(&list, count);
    assert_int_equal(rr_store_job_finish(f->store, first, RR_OUTCOME_COMPLETE, NULL, 9),
                     RR_STORE_OK);
    list = pick(f, &count);
    assert_int_equal(count, 1);
    assert_int_equal(list[0].job, second);
    rr_assignments_free(&list, count);
}

static void test_job_submitted_at_time_zero_is_picked(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t job = fixture_job(f, "highbank", 50, "", 0);
    size_t count;
    rr_assignment_t *list = pick(f, &count);
    assert_int_equal(count, 1);
    assert_int_equal(list[0].job, job);
    rr_assignments_free(&list, count);
}

static void test_tags_match_is_a_subset_check(void **state)
{
    char *dev[] = { "a", "b", "c" };
    char *sub[] = { "c", "a" };
    char *miss[] = { "a", "d" };
    assert_true(rr_scheduler_tags_match(NULL, 0, dev, 3));
    assert_true(rr_scheduler_tags_match(sub, 2, dev, 3));
    assert_false(rr_scheduler_tags_match(miss, 2, dev, 3));
    assert_false(rr_scheduler_tags_match(sub, 2, NULL, 0));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_higher_priority_job_goes_first),
        T(test_oldest_job_first_within_a_priority),
        T(test_job_tags_must_all_be_on_the_device),
        T(test_device_type_must_match),
        T(test_unavailable_devices_are_never_picked),
        T(test_idle_device_of_an_offline_worker_is_not_picked),
        T(test_assignment_marks_job_scheduled_and_device_reserved),
        T(test_a_device_that_refuses_its_job_is_skipped_not_fatal),
        T(test_finished_job_frees_device_for_the_next),
        T(test_job_submitted_at_time_zero_is_picked),
        cmocka_unit_test(test_tags_match_is_a_subset_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
