/* test_chaos.c: 100 jobs on 2 workers x 4 emulated nodes while the master,
 * each worker and BMCs are killed -9 and restarted at random (seeded)
 * moments; then every verdict is read back from the master's database and
 * checked against what the nodes printed:
 *   - every job finished, with an outcome the faults explain (a reason that
 *     names the fault that hit it, never a test failure);
 *   - its stream has no hole and no duplicate; every log byte is in the
 *     node's capture, in order, once; every stretch of the capture missing
 *     from a log lies inside a recorded console_gap (verify.h);
 *   - every result of a completed job is there exactly once;
 *   - no job has a gap unless a worker or a BMC fault touched its node
 *     (the master being down must not cost a byte).
 * Prints `events lost: N, duplicated: M`, counted from the data.
 * RR_CHAOS_SEED=N replays a run; RR_CHAOS_JOBS=N changes the job count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <czmq.h>

#include "cluster.h"
#include "store.h"
#include "verify.h"

#define WORKERS       2
#define NODES         4            /* per worker */
#define DEFAULT_JOBS  100
#define MAX_JOBS      400
#define MAX_FAULTS    64
#define CHAOS_MS      120000       /* faults stop after this (or when the jobs are done) */
#define FINISH_MS     120000       /* then every job must end within this */
/* A SOL session that a fault killed is noticed up to a session timeout later
 * (4 s here), by a job that may start after the fault ended. */
#define SOL_AFTERMATH_MS 10000

typedef enum { F_MASTER, F_WORKER, F_BMC } fault_kind_t;
static const char *const fault_names[] = { "master", "worker", "bmc" };

typedef struct {
    fault_kind_t kind;
    size_t target;                 /* worker index or node index */
    uint64_t down_at, up_at;       /* wall ms */
} fault_t;

typedef struct {
    uint64_t id;
    char device[32];
    int node;
    char outcome[32];
    char reason[1024];
    verdict_t verdict;
} job_t;

typedef struct {
    cluster_t *cluster;
    uint64_t seed;
    job_t jobs[MAX_JOBS];
    size_t job_count;
    fault_t faults[MAX_FAULTS];
    size_t fault_count;
    bool passed;
} chaos_t;

/* xorshift64*: the whole schedule comes from the printed seed. */
static uint64_t rnd_state;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return rnd_state * 2685821657736338717ull;
}

static uint64_t rnd_between(uint64_t lo, uint64_t hi)
{
    return lo + rnd() % (hi - lo + 1);
}

static int setup(void **state)
{
    chaos_t *c = calloc(1, sizeof *c);
    *state = c;
    const char *env = getenv("RR_CHAOS_SEED");
    c->seed = env && *env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
    if (!c->seed)
        c->seed = 1;
    rnd_state = c->seed;
    printf("chaos seed: %" PRIu64 " (RR_CHAOS_SEED=%" PRIu64 " replays it)\n", c->seed, c->seed);
    fflush(stdout);
    env = getenv("RR_CHAOS_JOBS");
    c->job_count = env && *env ? strtoul(env, NULL, 10) : DEFAULT_JOBS;
    if (c->job_count == 0 || c->job_count > MAX_JOBS)
        c->job_count = DEFAULT_JOBS;
    /* grace well above a kill + restart: a restarted worker keeps its jobs */
    cluster_opts_t opts = { .workers = WORKERS, .nodes_per_worker = NODES,
                            .worker_grace_ms = 15000, .sol_timeout_ms = 4000 };
    c->cluster = cluster_new(&opts);
    return c->cluster ? 0 : -1;
}

static int teardown(void **state)
{
    chaos_t *c = *state;
    cluster_destroy(&c->cluster, c->passed);
    free(c);
    return 0;
}

/* ---- the storm ---- */

static void submit_all(chaos_t *c)
{
    for (size_t i = 0; i < c->job_count; i++) {
        char yaml[4096], tag[32];
        snprintf(tag, sizeof tag, "c%zu", i);
        /* 5..40 lines, 20..80 ms apart: jobs of 0.1..3 s of output */
        cluster_job_yaml(yaml, sizeof yaml, tag, (unsigned)rnd_between(5, 40),
                         (unsigned)rnd_between(20, 80), 20);
        c->jobs[i].id = cluster_submit(c->cluster, yaml);
        assert_true(c->jobs[i].id > 0);
    }
}

static size_t finished_count(chaos_t *c)
{
    size_t done = 0;
    for (size_t i = 0; i < c->job_count; i++) {
        job_t *j = &c->jobs[i];
        if (j->outcome[0]) {
            done++;
            continue;
        }
        proto_msg_t m;
        if (cluster_job(c->cluster, j->id, &m, 1000) < 0)
            return done;    /* master down: ask later */
        const proto_jobinfo_t *info = m.u.job_detail.info;
        if (!strcmp(info->state, RR_JOB_FINISHED)) {
            snprintf(j->outcome, sizeof j->outcome, "%s", info->outcome ? info->outcome : "?");
            snprintf(j->reason, sizeof j->reason, "%s", info->reason ? info->reason : "");
            snprintf(j->device, sizeof j->device, "%s", info->device ? info->device : "");
            done++;
        }
        proto_msg_free(&m);
    }
    return done;
}

/* One fault: down for a random while, then up again. */
static void strike(chaos_t *c, fault_kind_t kind)
{
    fault_t *f = &c->faults[c->fault_count++];
    f->kind = kind;
    f->target = kind == F_WORKER ? rnd() % WORKERS : kind == F_BMC ? rnd() % (WORKERS * NODES) : 0;
    uint64_t down_ms = kind == F_MASTER ? rnd_between(300, 3000)
                     : kind == F_WORKER ? rnd_between(200, 2000) : rnd_between(500, 3000);
    f->down_at = cluster_now_ms();
    if (kind == F_MASTER)
        assert_int_equal(cluster_master_kill(c->cluster), 0);
    else if (kind == F_WORKER)
        assert_int_equal(cluster_worker_kill(c->cluster, f->target), 0);
    else
        assert_int_equal(rr_rig_bmc(cluster_rig(c->cluster), f->target, "kill"), 0);
    zclock_sleep((int)down_ms);
    if (kind == F_MASTER)
        assert_int_equal(cluster_master_start(c->cluster), 0);
    else if (kind == F_WORKER)
        assert_int_equal(cluster_worker_start(c->cluster, f->target), 0);
    else
        assert_int_equal(rr_rig_bmc(cluster_rig(c->cluster), f->target, "start"), 0);
    f->up_at = cluster_now_ms();
    printf("fault %zu: kill -9 %s %zu for %" PRIu64 " ms (wall ms %" PRIu64 "..%" PRIu64 ")\n",
           c->fault_count, fault_names[kind], f->target, f->up_at - f->down_at, f->down_at,
           f->up_at);
    fflush(stdout);
}

static void storm(chaos_t *c)
{
    /* every kind at least twice, in a seeded order, then random ones */
    fault_kind_t plan[] = { F_MASTER, F_WORKER, F_BMC, F_MASTER, F_WORKER, F_BMC };
    size_t planned = sizeof plan / sizeof plan[0];
    for (size_t i = planned - 1; i > 0; i--) {
        size_t k = rnd() % (i + 1);
        fault_kind_t t = plan[i];
        plan[i] = plan[k];
        plan[k] = t;
    }
    int64_t until = zclock_mono() + CHAOS_MS;
    while (zclock_mono() < until && c->fault_count < MAX_FAULTS) {
        zclock_sleep((int)rnd_between(1500, 6000));
        if (c->fault_count >= planned && finished_count(c) >= c->job_count * 9 / 10)
            break;
        strike(c, c->fault_count < planned ? plan[c->fault_count] : (fault_kind_t)(rnd() % 3));
    }
}

/* ---- the verdict ---- */

static bool overlaps(const fault_t *f, uint64_t from, uint64_t to)
{
    return f->down_at <= to && f->up_at >= from;
}

/* Did a fault that can cost NODE its console (its BMC, its worker) come
 * before TO? A stuck console (stock ipmi_sim) outlives the fault itself. */
static bool console_fault_before(const chaos_t *c, int node, uint64_t from, uint64_t to,
                                 bool any_time_before)
{
    for (size_t i = 0; i < c->fault_count; i++) {
        const fault_t *f = &c->faults[i];
        bool mine = (f->kind == F_BMC && (int)f->target == node)
                    || (f->kind == F_WORKER && (int)f->target == node / NODES);
        fault_t late = *f;
        late.up_at += SOL_AFTERMATH_MS;
        if (mine && (overlaps(&late, from, to) || (any_time_before && f->down_at <= to)))
            return true;
    }
    return false;
}

/* The job's outcome is one the faults explain; prints why not. */
static bool truthful(const chaos_t *c, const job_t *j)
{
    const verdict_t *v = &j->verdict;
    uint64_t from = v->first_ts ? v->first_ts : 0, to = v->last_ts ? v->last_ts : UINT64_MAX;
    if (!strcmp(j->outcome, RR_OUTCOME_COMPLETE))
        return true;
    if (strcmp(j->outcome, RR_OUTCOME_INCOMPLETE))
        return false;
    char bmc[96] = "?";
    if (j->node >= 0) {
        const rr_rig_node_t *n = rr_rig_node(cluster_rig(c->cluster), (size_t)j->node);
        snprintf(bmc, sizeof bmc, "bmc %s:%u", n->host, n->port);
    }
    if (!strcmp(j->reason, "worker restarted during the job")) {
        for (size_t i = 0; i < c->fault_count; i++)
            if (c->faults[i].kind == F_WORKER && (int)c->faults[i].target == j->node / NODES
                && overlaps(&c->faults[i], from, to))
                return true;
        return false;
    }
    /* the console went silent and stayed so (stock ipmi_sim after a session
     * died mid-output), or the BMC itself failed: the reason names the BMC */
    if (strstr(j->reason, bmc))
        return console_fault_before(c, j->node, from, to, strstr(j->reason, "console silent"));
    return false;
}

static int by_first_ts(const void *a, const void *b)
{
    const job_t *x = *(job_t *const *)a, *y = *(job_t *const *)b;
    return x->verdict.first_ts < y->verdict.first_ts ? -1 : x->verdict.first_ts > y->verdict.first_ts;
}

static void judge(chaos_t *c)
{
    uint64_t lost = 0, duplicated = 0, lost_bytes = 0, gaps = 0, bad_gaps = 0, untrue = 0;
    size_t outcomes[3] = { 0 };
    job_t *order[MAX_JOBS];
    size_t n = 0;
    /* first a verdict without the capture to learn each job's time span */
    for (size_t i = 0; i < c->job_count; i++) {
        job_t *j = &c->jobs[i];
        j->node = cluster_node_of(c->cluster, j->device);
        order[n++] = j;
        size_t skip = SIZE_MAX;     /* no capture: only stream-level checks here */
        assert_int_equal(cluster_verify_job(c->cluster, j->id, j->device[0] ? j->device : "n01",
                                            &skip, &j->verdict), 0);
    }
    qsort(order, n, sizeof *order, by_first_ts);
    size_t cursors[WORKERS * NODES] = { 0 };
    for (size_t k = 0; k < n; k++) {
        job_t *j = order[k];
        size_t fallback = 0;
        size_t *cursor = j->node >= 0 ? &cursors[j->node] : &fallback;
        if (j->node >= 0)
            assert_int_equal(cluster_verify_job(c->cluster, j->id, j->device, cursor,
                                                &j->verdict), 0);
        verdict_t *v = &j->verdict;
        lost += v->lost_events;
        duplicated += v->duplicated;
        lost_bytes += v->lost_bytes;
        gaps += v->gaps;
        outcomes[!strcmp(j->outcome, "complete") ? 0 : !strcmp(j->outcome, "incomplete") ? 1 : 2]++;
        if (v->ended && strcmp(v->outcome, j->outcome)
            && strncmp(j->reason, "worker lost", strlen("worker lost"))) {
            printf("job %" PRIu64 ": record says %s, stream says %s\n", j->id, j->outcome,
                   v->outcome);
            untrue++;
        }
        if (!truthful(c, j)) {
            printf("job %" PRIu64 " on %s: %s: %s: no fault explains it\n", j->id, j->device,
                   j->outcome, j->reason);
            untrue++;
        }
        /* a console lost during the job, or one left silent by an earlier fault */
        bool gap_ok = (v->gaps == v->silent_gaps
                       || console_fault_before(c, j->node, v->first_ts, v->last_ts, false))
                      && (!v->silent_gaps
                          || console_fault_before(c, j->node, v->first_ts, v->last_ts, true));
        if (v->gaps && !gap_ok) {
            printf("job %" PRIu64 " on %s: %" PRIu64 " console gaps, but only the master was "
                   "down\n", j->id, j->device, v->gaps);
            bad_gaps++;
        }
        if (v->problem[0])
            printf("%s\n", v->problem);
    }
    printf("%zu jobs: %zu complete, %zu incomplete, %zu other; %zu faults; %" PRIu64
           " console gaps\n", n, outcomes[0], outcomes[1], outcomes[2], c->fault_count, gaps);
    for (size_t i = 0; i < c->job_count; i++)
        if (strcmp(c->jobs[i].outcome, "complete"))
            printf("  job %" PRIu64 " on %s: %s: %s\n", c->jobs[i].id, c->jobs[i].device,
                   c->jobs[i].outcome, c->jobs[i].reason);
    printf("events lost: %" PRIu64 ", duplicated: %" PRIu64 "\n", lost, duplicated);
    fflush(stdout);
    assert_int_equal(lost, 0);
    assert_int_equal(duplicated, 0);
    assert_int_equal(lost_bytes, 0);
    assert_int_equal(untrue, 0);
    assert_int_equal(bad_gaps, 0);
    assert_int_equal(outcomes[2], 0);
}

static void test_chaos_loses_and_duplicates_nothing(void **state)
{
    chaos_t *c = *state;
    int64_t started = zclock_mono();
    submit_all(c);
    storm(c);
    int64_t deadline = zclock_mono() + FINISH_MS;
    size_t done;
    while ((done = finished_count(c)) < c->job_count && zclock_mono() < deadline)
        zclock_sleep(500);
    printf("%zu of %zu jobs finished in %" PRId64 " s\n", done, c->job_count,
           (zclock_mono() - started) / 1000);
    if (done < c->job_count)
        for (size_t i = 0; i < c->job_count; i++)
            if (!c->jobs[i].outcome[0])
                printf("  job %" PRIu64 " not finished\n", c->jobs[i].id);
    assert_int_equal(done, c->job_count);
    judge(c);
    c->passed = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chaos_loses_and_duplicates_nothing, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
