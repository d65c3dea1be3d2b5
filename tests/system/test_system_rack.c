/* test_system_rack.c: two racks, one rackrun-worker each, four emulated
 * nodes per rack, one rackrun-master: 20 jobs of mixed priorities and tags
 * (one with a failing step, one whose action times out), then the order in
 * which jobs start when only one device can take them.
 *
 * Real processes only (see cluster.h); results are read from the master's
 * database and compared with what the nodes printed (console.out). */
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

#define MIXED_JOBS     20
#define FAILING_JOB    7    /* index of the job with a failing step */
#define TIMEOUT_JOB    13   /* index of the job whose test action times out */
#define WAIT_MS        60000

typedef struct {
    rr_cluster_t *cluster;
    rr_rig_t *rack_a, *rack_b;
} fixture_t;

/* Tags per device; "solo" is on a04 only (the scarce device). */
static const rr_cluster_device_t rack_a_devices[] = {
    { NULL, "[sata]", NULL }, { NULL, "[sata, usb]", NULL }, { NULL, NULL, NULL },
    { NULL, "[solo]", NULL },
};
static const rr_cluster_device_t rack_b_devices[] = {
    { NULL, "[usb]", NULL }, { NULL, "[sata]", NULL }, { NULL, NULL, NULL }, { NULL, NULL, NULL },
};

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    *state = f;
    if (!f || !(f->cluster = rr_cluster_new(2)))
        return -1;
    rr_cluster_t *c = f->cluster;
    f->rack_a = rr_cluster_rig(c, "a", 4);
    f->rack_b = rr_cluster_rig(c, "b", 4);
    if (!f->rack_a || !f->rack_b
        || rr_cluster_add_worker(c, "rack-a", f->rack_a, rack_a_devices, true) < 0
        || rr_cluster_add_worker(c, "rack-b", f->rack_b, rack_b_devices, true) < 0)
        return -1;
    return rr_cluster_wait_devices(c, "rack-a", "idle", 4, 30000)
           && rr_cluster_wait_devices(c, "rack-b", "idle", 4, 30000) ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = f ? rr_cluster_stop(&f->cluster) : 0;
    free(f);
    return rc;
}

/* The tags each device was given, as the master stores a job's: "sata,usb". */
static const char *device_tags(const char *device)
{
    static const struct { const char *device, *tags; } table[] = {
        { "a01", "sata" }, { "a02", "sata,usb" }, { "a03", "" }, { "a04", "solo" },
        { "b01", "usb" }, { "b02", "sata" }, { "b03", "" }, { "b04", "" },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(table[i].device, device))
            return table[i].tags;
    return NULL;
}

/* Every tag of JOB_TAGS ("a,b") is among DEVICE_TAGS ("a,b,c"). */
static bool tags_cover(const char *device_tags_list, const char *job_tags)
{
    char copy[128];
    snprintf(copy, sizeof copy, "%s", job_tags);
    for (char *save = NULL, *tag = strtok_r(copy, ",", &save); tag;
         tag = strtok_r(NULL, ",", &save)) {
        char padded[160], tag_padded[64];
        snprintf(padded, sizeof padded, ",%s,", device_tags_list);
        snprintf(tag_padded, sizeof tag_padded, ",%s,", tag);
        if (!strstr(padded, tag_padded))
            return false;
    }
    return true;
}

/* The steps of mixed job I: a greeting, plus its special step. */
static const char *mixed_steps(int i, char *buf, size_t len)
{
    int n = snprintf(buf, len, "        - {name: greet, run: \"echo job %d on $RR_NODE\"}\n", i);
    if (i == FAILING_JOB)
        snprintf(buf + n, len - (size_t)n,
                 "        - {name: fails, run: \"echo about to fail; (exit 3)\"}\n"
                 "        - {name: after, run: \"echo still here\"}\n");
    if (i == TIMEOUT_JOB)
        snprintf(buf + n, len - (size_t)n, "        - {name: hang, run: \"sleep 30\"}\n");
    return buf;
}

static void mixed_job_yaml(rr_cluster_t *c, int i, char *buf, size_t len)
{
    static const char *const priorities[] = { "low", "medium", "high", "10", "90" };
    static const char *const tags[] = { "[]", "[sata]", "[usb]", "[sata, usb]", "[]", "[sata]" };
    char deploy[4096], steps[1024];
    snprintf(buf, len,
             "job_name: mixed-%d\n"
             "device_type: highbank\n"
             "priority: %s\n"
             "tags: %s\n"
             "timeouts: {job: 2m, action: 30s}\n"
             "actions:\n%s"
             "  - boot: {method: ipmi-pxe, timeout: 20s}\n"
             "  - test:\n"
             "      timeout: %s\n"
             "      steps:\n%s",
             i, priorities[i % 5], tags[i % 6], rr_cluster_deploy_yaml(c, NULL, deploy, sizeof deploy),
             i == TIMEOUT_JOB ? "3s" : "30s", mixed_steps(i, steps, sizeof steps));
}

static int64_t result_code(rr_cluster_t *c, uint64_t job, const char *step, const char *result)
{
    return rr_cluster_count(c, "SELECT coalesce(code, 0) FROM events WHERE job = %llu"
                               " AND kind = 'result' AND name = '%s' AND value = '%s'",
                            (unsigned long long)job, step, result);
}

static void check_mixed_job(rr_cluster_t *c, int i, uint64_t id)
{
    rr_cluster_job_t job;
    assert_int_equal(rr_cluster_job(c, id, &job), 0);
    const char *tags = device_tags(job.device);
    if (!tags || !tags_cover(tags, job.tags))
        fail_msg("job %llu (tags '%s') ran on %s (tags '%s')", (unsigned long long)id, job.tags,
                 job.device, tags ? tags : "?");
    assert_string_equal(job.worker, job.device[0] == 'a' ? "rack-a" : "rack-b");
    assert_int_equal(result_code(c, id, "greet", "pass"), 0);
    if (i == TIMEOUT_JOB) {
        assert_string_equal(job.outcome, "incomplete");
        assert_string_equal(job.reason, "test: step 'hang': no end marker within 3 s");
        assert_int_equal(rr_cluster_count(c, "SELECT count(*) FROM events WHERE job = %llu"
                                             " AND kind = 'action' AND name = 'test' AND value = 'fail'"
                                             " AND reason = 'test: step ''hang'': no end marker within 3 s'",
                                          (unsigned long long)id), 1);
        assert_int_equal(result_code(c, id, "hang", "fail"), -1);
        /* it gave up after its 3 s, not at the 30 s sleep's end */
        assert_true(job.ended_ms - job.started_ms < 15000);
        return;
    }
    if (job.outcome[0] != 'c' || job.reason[0])
        fail_msg("job %llu: %s (%s)", (unsigned long long)id, job.outcome, job.reason);
    assert_string_equal(job.outcome, "complete");
    if (i == FAILING_JOB) {
        assert_int_equal(result_code(c, id, "fails", "fail"), 3);
        assert_int_equal(result_code(c, id, "after", "pass"), 0);
    }
    /* every step has exactly one result */
    assert_int_equal(rr_cluster_count(c, "SELECT count(*) FROM events WHERE job = %llu"
                                         " AND kind = 'result'", (unsigned long long)id),
                     i == FAILING_JOB ? 3 : 1);
    size_t len = 0;
    uint8_t *log = rr_cluster_job_log(c, id, &len);
    char greeting[128];
    snprintf(greeting, sizeof greeting, "job %d on %s\r\n", i, job.device);
    assert_non_null(memmem(log, len, greeting, strlen(greeting)));
    free(log);
}

/* 2 workers x 4 nodes x 20 jobs: each ends with the right outcome on a device
 * with its tags; the failing step is a fail with exit code 3 in a complete
 * job; the hanging step ends its job incomplete naming the action and the
 * step; every stored log is its node's console byte for byte. */
static void test_twenty_mixed_jobs_on_two_racks_end_as_expected(void **state)
{
    fixture_t *f = *state;
    rr_cluster_t *c = f->cluster;
    uint64_t ids[MIXED_JOBS];
    char yaml[8192], *err = NULL;
    for (int i = 0; i < MIXED_JOBS; i++) {
        mixed_job_yaml(c, i, yaml, sizeof yaml);
        int rc = rr_cluster_submit(c, yaml, &ids[i], &err);
        if (rc != 0)
            fail_msg("submit mixed-%d: exit %d: %s", i, rc, err ? err : "");
        free(err);
        err = NULL;
    }
    for (int i = 0; i < MIXED_JOBS; i++)
        assert_true(rr_cluster_wait_job(c, ids[i], "finished", WAIT_MS));
    for (int i = 0; i < MIXED_JOBS; i++)
        check_mixed_job(c, i, ids[i]);
    assert_int_equal(rr_cluster_count(c, "SELECT count(DISTINCT worker) FROM jobs"), 2);

    size_t checked = 0;
    assert_true(rr_cluster_check_logs(c, f->rack_a, &checked));
    assert_true(rr_cluster_check_logs(c, f->rack_b, &checked));
    assert_int_equal(checked, MIXED_JOBS);
    assert_true(rr_cluster_wait_devices(c, "rack-a", "idle", 4, 5000));
    assert_true(rr_cluster_wait_devices(c, "rack-b", "idle", 4, 5000));
    rr_cluster_passed(c);
}

static uint64_t submit_solo(rr_cluster_t *c, const char *name, const char *priority,
                            const char *run)
{
    char yaml[8192], deploy[4096], *err = NULL;
    uint64_t id = 0;
    snprintf(yaml, sizeof yaml,
             "job_name: %s\n"
             "device_type: highbank\n"
             "priority: %s\n"
             "tags: [solo]\n"
             "actions:\n%s"
             "  - boot: {method: ipmi-pxe, timeout: 20s}\n"
             "  - test:\n"
             "      timeout: 60s\n"
             "      steps:\n"
             "        - {name: run, run: \"%s\"}\n",
             name, priority, rr_cluster_deploy_yaml(c, NULL, deploy, sizeof deploy), run);
    int rc = rr_cluster_submit(c, yaml, &id, &err);
    if (rc != 0)
        fail_msg("submit %s: exit %d: %s", name, rc, err ? err : "");
    free(err);
    return id;
}

/* One device ("solo") for seven jobs: while a blocker holds it, jobs of
 * priorities low, medium, high, 90, high, 10 queue up; once it is free they
 * start highest priority first, oldest first within a priority. */
static void test_higher_priority_jobs_start_first_when_devices_are_scarce(void **state)
{
    fixture_t *f = *state;
    rr_cluster_t *c = f->cluster;
    char release[2048], run[2200];
    snprintf(release, sizeof release, "%s/release-blocker", rr_cluster_dir(c));
    snprintf(run, sizeof run, "while [ ! -e %s ]; do sleep 0.05; done; echo released", release);

    uint64_t blocker = submit_solo(c, "blocker", "low", run);
    assert_true(rr_cluster_wait_job(c, blocker, "running", WAIT_MS));
    struct { const char *name, *priority; uint64_t id; } queued[] = {
        { "low", "low", 0 }, { "medium", "medium", 0 }, { "high-1", "high", 0 }, { "ninety", "90", 0 },
        { "high-2", "high", 0 }, { "ten", "10", 0 },
    };
    const size_t n = sizeof queued / sizeof queued[0];
    for (size_t i = 0; i < n; i++)
        queued[i].id = submit_solo(c, queued[i].name, queued[i].priority, "echo done");
    /* scarce: the blocker holds the one device, the rest wait */
    assert_int_equal(rr_cluster_count(c, "SELECT count(*) FROM jobs WHERE state = 'queued'"
                                         " AND id > %llu", (unsigned long long)blocker), (int64_t)n);
    FILE *go = fopen(release, "w");
    assert_non_null(go);
    fclose(go);
    for (size_t i = 0; i < n; i++)
        assert_true(rr_cluster_wait_job(c, queued[i].id, "finished", WAIT_MS));

    const char *expected[] = { "blocker", "ninety", "high-1", "high-2", "medium", "low", "ten" };
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(rr_cluster_db(c),
                                        "SELECT name, device, outcome, started_ms, ended_ms FROM jobs"
                                        " WHERE id >= ? ORDER BY started_ms, id", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)blocker);
    int64_t previous_end = 0;
    for (size_t i = 0; i < n + 1; i++) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), expected[i]);
        assert_string_equal((const char *)sqlite3_column_text(st, 1), "a04");
        assert_string_equal((const char *)sqlite3_column_text(st, 2), "complete");
        /* one at a time: each started once the one before had ended */
        assert_true(sqlite3_column_int64(st, 3) >= previous_end);
        previous_end = sqlite3_column_int64(st, 4);
    }
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);

    size_t checked = 0;
    assert_true(rr_cluster_check_logs(c, f->rack_a, &checked));
    rr_cluster_passed(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twenty_mixed_jobs_on_two_racks_end_as_expected),
        cmocka_unit_test(test_higher_priority_jobs_start_first_when_devices_are_scarce),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return failed + rr_cluster_stop_failures() ? 1 : 0;
}
