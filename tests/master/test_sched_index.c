/* test_sched_index.c: the scheduler's queue in memory (master/sched_index.h)
 * and the scheduling pass that uses it (rr_scheduler_pick_indexed) on a
 * real store: the same picks as the store's queue walk, and the store stays
 * the truth (cancels, maintenance, bad devices, requeues, restarts). */
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

typedef struct {
    fixture_t *f;
    rr_sched_index_t *index;
} env_t;

static int setup(void **state)
{
    env_t *env = calloc(1, sizeof *env);
    void *fixture = NULL;
    if (!env || fixture_setup(&fixture) != 0)
        return -1;
    env->f = fixture;
    env->index = rr_sched_index_new();
    *state = env;
    return env->index ? 0 : -1;
}

static int teardown(void **state)
{
    env_t *env = *state;
    rr_sched_index_destroy(&env->index);
    void *fixture = env->f;
    fixture_teardown(&fixture);
    free(env);
    return 0;
}

/* One indexed pass; *COUNT assignments, caller frees. */
static rr_assignment_t *pick(env_t *env, size_t *count)
{
    rr_assignment_t *out = NULL;
    char err[512] = "";
    if (rr_scheduler_pick_indexed(env->f->store, env->index, &out, count, err, sizeof err) != 0)
        fail_msg("pick: %s", err);
    return out;
}

/* The job DEVICE got in one indexed pass (0 = none); asserts it made COUNT picks. */
static uint64_t pick_one(env_t *env, const char *device, size_t count)
{
    size_t n = 0;
    rr_assignment_t *list = pick(env, &n);
    assert_int_equal(n, count);
    uint64_t job = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].device, device) == 0)
            job = list[i].job;
    rr_assignments_free(&list, n);
    return job;
}

static const char *job_state(fixture_t *f, uint64_t job, char *buf, size_t len)
{
    proto_jobinfo_t info;
    assert_int_equal(rr_store_job_get(f->store, job, &info), RR_STORE_OK);
    snprintf(buf, len, "%s", info.state);
    rr_store_jobinfo_clear(&info);
    return buf;
}

/* ---- the index alone ---- */

static void test_index_pops_by_priority_then_oldest(void **state)
{
    env_t *env = *state;
    char *none[] = { NULL };
    assert_int_equal(rr_sched_index_add(env->index, 5, "hb", none, 0, 10), 0);
    assert_int_equal(rr_sched_index_add(env->index, 3, "hb", none, 0, 50), 0);
    assert_int_equal(rr_sched_index_add(env->index, 9, "hb", none, 0, 50), 0);
    assert_int_equal(rr_sched_index_add(env->index, 1, "hb", none, 0, 10), 0);
    assert_int_equal(rr_sched_index_add(env->index, 7, "hb", none, 0, 99), 0);
    const uint64_t want[] = { 7, 3, 9, 1, 5 };
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(rr_sched_index_pop(env->index, "hb", none, 0), want[i]);
    assert_int_equal(rr_sched_index_pop(env->index, "hb", none, 0), 0);
    assert_int_equal(rr_sched_index_size(env->index), 0);
}

static void test_index_gives_only_jobs_whose_tags_the_device_has(void **state)
{
    env_t *env = *state;
    char *sata[] = { "sata" }, *sata_usb[] = { "sata", "usb" }, *pcie[] = { "pcie" };
    char *none[] = { NULL };
    assert_int_equal(rr_sched_index_add(env->index, 1, "hb", pcie, 1, 90), 0);
    assert_int_equal(rr_sched_index_add(env->index, 2, "hb", sata_usb, 2, 50), 0);
    assert_int_equal(rr_sched_index_add(env->index, 3, "hb", sata, 1, 50), 0);
    assert_int_equal(rr_sched_index_add(env->index, 4, "hb", none, 0, 10), 0);
    assert_int_equal(rr_sched_index_add(env->index, 5, "midway", none, 0, 99), 0);
    /* a sata+usb device: the pcie job never, the other type never */
    assert_int_equal(rr_sched_index_pop(env->index, "hb", sata_usb, 2), 2);
    assert_int_equal(rr_sched_index_pop(env->index, "hb", sata_usb, 2), 3);
    assert_int_equal(rr_sched_index_pop(env->index, "hb", sata_usb, 2), 4);
    assert_int_equal(rr_sched_index_pop(env->index, "hb", sata_usb, 2), 0);
    /* an untagged device takes only untagged jobs */
    assert_int_equal(rr_sched_index_pop(env->index, "hb", none, 0), 0);
    assert_int_equal(rr_sched_index_pop(env->index, "hb", pcie, 1), 1);
    assert_int_equal(rr_sched_index_pop(env->index, "midway", none, 0), 5);
}

/* ---- passes on a store ---- */

static void test_indexed_pass_makes_the_picks_of_the_queue_walk(void **state)
{
    env_t *env = *state;
    void *other_state = NULL;
    assert_int_equal(fixture_setup(&other_state), 0);
    fixture_t *other = other_state;
    const char *const devs[] = { "a1:hb::idle", "a2:hb:sata:idle", "a3:hb:sata+usb:idle",
                                 "a4:hb:sata+usb:idle", "a5:midway:usb:idle", "a6:hb::idle",
                                 NULL };
    const char *const tags[] = { "", "sata", "usb", "sata,usb", "pcie" };
    fixture_t *both[] = { env->f, other };
    for (int s = 0; s < 2; s++) {
        fixture_hello(both[s], "rack01", devs);
        for (uint32_t i = 0; i < 40; i++)       /* the same mixed queue in both */
            fixture_job(both[s], i % 3 ? "hb" : "midway", (i * 37) % 5 * 10, tags[i % 5], i + 1);
    }
    size_t n_index = 0, n_walk = 0;
    rr_assignment_t *by_index = pick(env, &n_index);
    rr_assignment_t *by_walk = NULL;
    char err[512] = "";
    assert_int_equal(rr_scheduler_pick(other->store, &by_walk, &n_walk, err, sizeof err), 0);
    assert_int_equal(n_index, 6);
    assert_int_equal(n_index, n_walk);
    for (size_t i = 0; i < n_index; i++) {
        assert_string_equal(by_index[i].device, by_walk[i].device);
        assert_int_equal(by_index[i].job, by_walk[i].job);
    }
    rr_assignments_free(&by_index, n_index);
    rr_assignments_free(&by_walk, n_walk);
    fixture_teardown(&other_state);
}

static void test_jobs_submitted_after_a_pass_are_seen_by_the_next(void **state)
{
    env_t *env = *state;
    const char *const devs[] = { "hb01:hb::idle", NULL };
    fixture_hello(env->f, "rack01", devs);
    assert_int_equal(pick_one(env, "hb01", 0), 0);        /* empty queue */
    uint64_t low = fixture_job(env->f, "hb", 10, "", 1);
    uint64_t high = fixture_job(env->f, "hb", 90, "", 2);
    assert_int_equal(pick_one(env, "hb01", 1), high);
    char buf[16];
    assert_string_equal(job_state(env->f, high, buf, sizeof buf), RR_JOB_SCHEDULED);
    assert_string_equal(job_state(env->f, low, buf, sizeof buf), RR_JOB_QUEUED);
}

static void test_canceled_job_in_the_index_is_skipped(void **state)
{
    env_t *env = *state;
    const char *const devs[] = { "hb01:hb::maintenance", NULL };
    fixture_hello(env->f, "rack01", devs);
    uint64_t first = fixture_job(env->f, "hb", 50, "", 1);
    uint64_t second = fixture_job(env->f, "hb", 50, "", 2);
    assert_int_equal(pick_one(env, "hb01", 0), 0);        /* index synced, no idle device */
    assert_int_equal(rr_sched_index_size(env->index), 2);
    assert_int_equal(rr_store_job_cancel(env->f->store, first, 3, NULL), RR_STORE_OK);
    assert_int_equal(rr_store_device_set_state(env->f->store, "hb01", RR_DEVICE_IDLE, NULL),
                     RR_STORE_OK);
    assert_int_equal(pick_one(env, "hb01", 1), second);
    char buf[16];
    assert_string_equal(job_state(env->f, first, buf, sizeof buf), RR_JOB_FINISHED);
}

static void test_device_in_maintenance_or_bad_gets_nothing_until_idle(void **state)
{
    env_t *env = *state;
    const char *const devs[] = { "hb01:hb::idle", "hb02:hb::idle", NULL };
    fixture_hello(env->f, "rack01", devs);
    assert_int_equal(rr_store_device_set_state(env->f->store, "hb01", RR_DEVICE_MAINTENANCE,
                                               "op"), RR_STORE_OK);
    assert_int_equal(rr_store_health_failed(env->f->store, "hb02", "check failed"),
                     RR_STORE_OK);
    uint64_t job = fixture_job(env->f, "hb", 50, "", 1);
    assert_int_equal(pick_one(env, "hb01", 0), 0);
    assert_int_equal(rr_sched_index_size(env->index), 1);  /* still queued, still held */
    assert_int_equal(rr_store_device_set_state(env->f->store, "hb01", RR_DEVICE_IDLE, NULL),
                     RR_STORE_OK);
    assert_int_equal(pick_one(env, "hb01", 1), job);
}

static void test_requeued_job_is_picked_again_after_mark_stale(void **state)
{
    env_t *env = *state;
    const char *const devs[] = { "hb01:hb::idle", NULL };
    fixture_hello(env->f, "rack01", devs);
    uint64_t older = fixture_job(env->f, "hb", 50, "", 1);
    uint64_t newer = fixture_job(env->f, "hb", 50, "", 2);
    assert_int_equal(pick_one(env, "hb01", 1), older);
    assert_int_equal(rr_store_job_requeue(env->f->store, older), RR_STORE_OK);
    rr_sched_index_mark_stale(env->index);     /* what the master does on a refusal */
    assert_int_equal(pick_one(env, "hb01", 1), older);
    char buf[16];
    assert_string_equal(job_state(env->f, newer, buf, sizeof buf), RR_JOB_QUEUED);
}

static void test_restart_rebuilds_the_index_from_the_store(void **state)
{
    env_t *env = *state;
    const char *const devs[] = { "hb01:hb::idle", "hb02:hb:sata:idle", NULL };
    fixture_hello(env->f, "rack01", devs);
    uint64_t first = fixture_job(env->f, "hb", 50, "", 1);
    uint64_t tagged = fixture_job(env->f, "hb", 40, "sata", 2);
    uint64_t last = fixture_job(env->f, "hb", 30, "", 3);
    assert_int_equal(pick_one(env, "hb01", 2), first);     /* hb02 takes tagged */
    fixture_reopen(env->f);                                  /* a master restart */
    rr_sched_index_destroy(&env->index);
    env->index = rr_sched_index_new();
    assert_non_null(env->index);
    assert_int_equal(rr_sched_index_sync(env->index, env->f->store), RR_STORE_OK);
    assert_int_equal(rr_sched_index_size(env->index), 1);   /* only LAST is still queued */
    assert_int_equal(rr_store_job_finish(env->f->store, first, RR_OUTCOME_COMPLETE, NULL, 9),
                     RR_STORE_OK);
    assert_int_equal(pick_one(env, "hb01", 1), last);
    char buf[16];
    assert_string_equal(job_state(env->f, tagged, buf, sizeof buf), RR_JOB_SCHEDULED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_index_pops_by_priority_then_oldest, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_index_gives_only_jobs_whose_tags_the_device_has,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_indexed_pass_makes_the_picks_of_the_queue_walk,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_submitted_after_a_pass_are_seen_by_the_next,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_canceled_job_in_the_index_is_skipped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_device_in_maintenance_or_bad_gets_nothing_until_idle,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeued_job_is_picked_again_after_mark_stale,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_rebuilds_the_index_from_the_store, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
