/* test_sched_index.c: the scheduler's queue in memory (master/sched_index.h)
 * and the scheduling pass that uses it (rr_scheduler_pick_indexed) on a
 * real store: the same picks as a brute-force search, and the store stays
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

/* A queued job as the brute-force reference sees it. */
typedef struct {
    uint64_t id;
    const char *type;
    const char *tags;           /* comma list, "" = none */
    uint32_t priority;
    bool taken;
} ref_job_t;

/* Every tag of the comma list TAGS is one of DEV's. */
static bool ref_fits(const char *tags, const proto_deviceinfo_t *dev)
{
    for (const char *at = tags; *at;) {
        size_t len = strcspn(at, ",");
        bool found = false;
        for (size_t i = 0; i < dev->tags_count && !found; i++)
            found = strlen(dev->tags[i]) == len && strncmp(dev->tags[i], at, len) == 0;
        if (!found)
            return false;
        at += len + (at[len] == ',');
    }
    return true;
}

/* The reference pick for DEV: of the jobs not taken whose type and tags fit,
 * the highest priority, then the lowest id (0 = none); marks it taken. */
static uint64_t ref_pick(ref_job_t *jobs, size_t n, const proto_deviceinfo_t *dev)
{
    ref_job_t *best = NULL;
    for (size_t i = 0; i < n; i++) {
        ref_job_t *j = &jobs[i];
        if (j->taken || strcmp(j->type, dev->type) != 0 || !ref_fits(j->tags, dev))
            continue;
        if (!best || j->priority > best->priority
            || (j->priority == best->priority && j->id < best->id))
            best = j;
    }
    if (!best)
        return 0;
    best->taken = true;
    return best->id;
}

static void test_indexed_pass_makes_the_picks_of_a_brute_force_search(void **state)
{
    env_t *env = *state;
    const char *const devs[] = { "a1:hb::idle", "a2:hb:sata:idle", "a3:hb:sata+usb:idle",
                                 "a4:hb:sata+usb:idle", "a5:midway:usb:idle", "a6:hb::idle",
                                 "a7:hb:pcie:idle", NULL };
    const char *const tags[] = { "", "sata", "usb", "sata,usb", "pcie" };
    fixture_hello(env->f, "rack01", devs);
    ref_job_t jobs[40];
    for (uint32_t i = 0; i < 40; i++) {         /* a mixed queue, priorities 0..40 */
        jobs[i] = (ref_job_t) { .type = i % 3 ? "hb" : "midway", .tags = tags[i % 5],
                                .priority = (i * 37) % 5 * 10 };
        jobs[i].id = fixture_job(env->f, jobs[i].type, jobs[i].priority, jobs[i].tags, i + 1);
    }
    proto_deviceinfo_t *idle = NULL;
    size_t n_idle = 0;
    assert_int_equal(rr_store_devices_idle(env->f->store, &idle, &n_idle), RR_STORE_OK);
    assert_int_equal(n_idle, 7);
    size_t n = 0;
    rr_assignment_t *picks = pick(env, &n);
    size_t at = 0;
    for (size_t d = 0; d < n_idle; d++) {       /* the pass goes through them in this order */
        uint64_t want = ref_pick(jobs, 40, &idle[d]);
        if (want == 0)
            continue;
        assert_true(at < n);
        assert_string_equal(picks[at].device, idle[d].name);
        assert_int_equal(picks[at].job, want);
        at++;
    }
    assert_int_equal(at, n);
    assert_true(n >= 6);                        /* the test is not vacuous */
    rr_assignments_free(&picks, n);
    rr_store_deviceinfos_free(&idle, n_idle);
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
        cmocka_unit_test_setup_teardown(test_indexed_pass_makes_the_picks_of_a_brute_force_search,
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
