/* bench_dispatch.c: how fast the master turns a deep queue into JOB_STARTs,
 * and how soon an idle device gets its next job.
 *
 * The master runs in-process (tests/master/harness.h) with its real SQLite
 * store: every assignment, accept and end is committed. A client first
 * queues the jobs with SUBMIT (pipelined; the submit rate is a figure of its
 * own), mixed over 3 device types, 0-2 of 3 tags and priorities 0..100.
 * Then 200 simulated workers with 50 devices each (10,000 devices: 3 types,
 * every tag combination in every rack) say HELLO and answer every JOB_START
 * at once with JOB_ACCEPT and "state running"; a job ends ("end complete")
 * when the benchmark says so:
 *   fill        the HELLOs until every device holds a job (then the
 *               master settles: no JOB_START re-sent for 2 s);
 *   latency     jobs end at a paced LATENCY_RATE per second (a farm well
 *               below the master's capacity): from the worker sending "end"
 *               (the master commits it, the device is idle) to the next
 *               JOB_START for that device: p50, p99 (target p99 < 5 ms);
 *   throughput  every job ends as soon as it runs: JOB_STARTs per second
 *               over THROUGHPUT_S at most (target >= 10,000), with the
 *               idle->start latency of a saturated master as info.
 * --smoke: 32 devices, 500 jobs, short phases.
 * RR_BENCH_DISPATCH_SCALE="workers,devices,jobs" overrides the scale (noted). */
#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "fleet.h"
#include "harness.h"
#include "procstat.h"
#include "report.h"

#define TYPES          3
#define TAG_SETS       8        /* every subset of the 3 tags */
#define SUBMIT_WINDOW  128
#define RUN_TIMEOUT_MS 120000
#define STALL_MS       15000    /* no JOB_START this long: the rest will not come */
#define LATENCY_RATE   100.0    /* jobs ending per second in the latency phase */
#define LATENCY_SAMPLES 1000
#define THROUGHPUT_S   30.0     /* longest throughput phase */
#define SETTLE_MS      2000     /* no re-sent JOB_START this long: the master caught up */

static const char *const s_types[TYPES] = { "highbank", "midway", "x86" };

typedef struct {
    size_t workers;
    size_t devices_per_worker;
    size_t jobs;
} scale_t;

typedef struct {
    zsock_t *sock;
    uint64_t *job;              /* per device: the job it runs, 0 = none */
    double *end_sent;           /* per device: when its last "end" left, 0 = never */
} sim_t;

typedef enum { PHASE_FILL, PHASE_LATENCY, PHASE_THROUGHPUT } phase_t;

typedef struct {
    sim_t *sim;
    size_t device;
} held_t;

typedef struct {
    const scale_t *scale;
    sim_t *sims;
    phase_t phase;
    size_t started;             /* distinct jobs started */
    size_t duplicates;          /* JOB_STARTs re-sent for a job already started */
    uint8_t *seen;              /* per job id */
    size_t max_job;
    held_t *held;               /* running jobs not yet ended, FIFO ring of all devices */
    size_t held_head, held_count;
    double *latency_ms[2];      /* [0] paced, [1] saturated */
    size_t samples[2];
} run_t;

/* ---- queueing ---- */

static char *s_random_job(unsigned *seed)
{
    /* 0-2 tags: a job with all three would fit only 1 device in 8. */
    static const char *const job_tags[] = { "", "", "sata", "usb", "net", "sata,usb", "net,usb" };
    const char *type = s_types[rand_r(seed) % TYPES];
    const char *tags = job_tags[rand_r(seed) % (sizeof job_tags / sizeof job_tags[0])];
    return fleet_job_yaml("dispatch", type, tags, (unsigned) (rand_r(seed) % 101));
}

/* Queue SCALE->jobs with SUBMIT, SUBMIT_WINDOW in flight. Returns seconds, or -1. */
static double s_submit_all(harness_t *h, const scale_t *scale, uint64_t *max_job)
{
    zsock_t *client = peer_new(h->client_ep, NULL, NULL);
    if (!client)
        return -1;
    unsigned seed = 42;
    size_t sent = 0, answered = 0;
    double start = bench_now();
    int rc = 0;
    while (answered < scale->jobs && rc == 0) {
        while (sent < scale->jobs && sent - answered < SUBMIT_WINDOW && rc == 0) {
            char *yaml = s_random_job(&seed);
            proto_msg_t msg = { .type = PROTO_MSG_SUBMIT, .version = PROTO_VERSION };
            msg.u.submit.yaml = yaml;
            rc = yaml ? fleet_send(client, &msg) : -1;
            free(yaml);
            sent++;
        }
        proto_msg_t reply;
        if (rc == 0 && fleet_recv(client, 10000, &reply) != 1)
            rc = -1;
        else if (rc == 0) {
            if (reply.type == PROTO_MSG_SUBMITTED && reply.u.submitted.job > *max_job)
                *max_job = reply.u.submitted.job;
            if (reply.type != PROTO_MSG_SUBMITTED) {
                fprintf(stderr, "bench_dispatch: SUBMIT: %s\n", reply.type == PROTO_MSG_ERROR
                        ? reply.u.error.text : proto_type_name(reply.type));
                rc = -1;
            }
            answered++;
            proto_msg_free(&reply);
        }
    }
    zsock_destroy(&client);
    return rc == 0 ? bench_now() - start : -1;
}

/* ---- the simulated fleet ---- */

static int s_fleet_hello(harness_t *h, const scale_t *scale, run_t *run)
{
    size_t n = scale->devices_per_worker;
    proto_device_t *devices = calloc(n, sizeof *devices);
    char (*names)[48] = calloc(n, sizeof *names);
    char **tags = calloc(n * 3, sizeof *tags);
    int rc = devices && names && tags ? 0 : -1;
    for (size_t w = 0; w < scale->workers && rc == 0; w++) {
        char worker[24];
        snprintf(worker, sizeof worker, "dispatch-w%03zu", w % 1000);
        for (size_t d = 0; d < n; d++) {
            snprintf(names[d], sizeof names[d], "%s-d%02zu", worker, d % 1000);
            static const char *const tag_names[3] = { "sata", "usb", "net" };
            size_t count = 0;
            for (size_t t = 0; t < 3; t++)
                if (d % TAG_SETS & (1u << t))
                    tags[d * 3 + count++] = (char *) tag_names[t];
            devices[d] = (proto_device_t) { .name = names[d], .type = (char *) s_types[w % TYPES],
                                            .tags = &tags[d * 3], .tags_count = count,
                                            .state = "idle" };
        }
        run->sims[w].sock = peer_new(h->worker_ep, NULL, NULL);
        run->sims[w].end_sent = calloc(n, sizeof(double));
        run->sims[w].job = calloc(n, sizeof(uint64_t));
        if (!run->sims[w].sock || !run->sims[w].end_sent || !run->sims[w].job
            || fleet_hello(run->sims[w].sock, worker, devices, n) != 0)
            rc = -1;
    }
    free(tags);
    free(names);
    free(devices);
    return rc;
}

/* Device index from its name "dispatch-wNNN-dMM". */
static size_t s_device_index(const char *device)
{
    const char *d = strrchr(device, 'd');
    return d ? (size_t) strtoul(d + 1, NULL, 10) : 0;
}

static int s_accept(sim_t *sim, uint64_t job)
{
    proto_msg_t accept = { .type = PROTO_MSG_JOB_ACCEPT, .version = PROTO_VERSION };
    accept.u.job_accept = (proto_job_accept_t) { .job = job, .ok = true };
    return fleet_send(sim->sock, &accept);
}

/* End the job DEVICE of SIM runs: the device is idle once the master commits it. */
static int s_end(sim_t *sim, size_t device)
{
    uint64_t job = sim->job[device];
    sim->job[device] = 0;
    sim->end_sent[device] = bench_now();
    return fleet_event(sim->sock, job, 2, "end", NULL, "complete", NULL, 0);
}

/* A worker whose node runs the job until the benchmark ends it. */
static int s_on_start(run_t *run, sim_t *sim, const proto_job_start_t *start)
{
    double now = bench_now();
    size_t dev = s_device_index(start->device);
    if (start->job > run->max_job || dev >= run->scale->devices_per_worker || sim->job[dev]) {
        if (start->job <= run->max_job && run->seen[start->job]) {
            run->duplicates++;          /* a re-send: accept again, nothing else */
            return s_accept(sim, start->job);
        }
        fprintf(stderr, "bench_dispatch: job %" PRIu64 " on %s: unexpected\n", start->job,
                start->device);
        return -1;
    }
    if (run->seen[start->job]) {
        run->duplicates++;
        return s_accept(sim, start->job);
    }
    run->seen[start->job] = 1;
    run->started++;
    if (sim->end_sent[dev] > 0 && run->phase != PHASE_FILL) {
        int k = run->phase == PHASE_LATENCY ? 0 : 1;
        run->latency_ms[k][run->samples[k]++] = (now - sim->end_sent[dev]) * 1000;
    }
    sim->job[dev] = start->job;
    if (s_accept(sim, start->job) != 0
        || fleet_event(sim->sock, start->job, 1, "state", "running", NULL, NULL, 0) != 0)
        return -1;
    if (run->phase == PHASE_THROUGHPUT)
        return s_end(sim, dev);
    size_t total = run->scale->workers * run->scale->devices_per_worker;
    run->held[(run->held_head + run->held_count++) % total] = (held_t) { sim, dev };
    return 0;
}

static int s_sim_read(run_t *run, sim_t *sim)
{
    proto_msg_t msg;
    int got;
    while ((got = fleet_recv(sim->sock, 0, &msg)) == 1) {
        int rc = 0;
        if (msg.type == PROTO_MSG_JOB_START)
            rc = s_on_start(run, sim, &msg.u.job_start);
        else if (msg.type == PROTO_MSG_ERROR) {
            fprintf(stderr, "bench_dispatch: master: %s\n", msg.u.error.text);
            rc = -1;
        }
        proto_msg_free(&msg);
        if (rc != 0)
            return -1;
    }
    return got < 0 ? -1 : 0;
}

/* End up to COUNT held jobs, oldest first. */
static int s_release(run_t *run, size_t count)
{
    size_t total = run->scale->workers * run->scale->devices_per_worker;
    for (; count > 0 && run->held_count > 0; count--) {
        held_t held = run->held[run->held_head];
        run->held_head = (run->held_head + 1) % total;
        run->held_count--;
        if (s_end(held.sim, held.device) != 0)
            return -1;
    }
    return 0;
}

/* Poll every simulated worker once (at most WAIT_MS) and answer what came. */
static int s_poll_once(run_t *run, zmq_pollitem_t *items, int wait_ms)
{
    if (zmq_poll(items, (int) run->scale->workers, wait_ms) < 0)
        return -1;
    for (size_t w = 0; w < run->scale->workers; w++)
        if ((items[w].revents & ZMQ_POLLIN) && s_sim_read(run, &run->sims[w]) != 0)
            return -1;
    return 0;
}

typedef struct {
    double fill_s;              /* HELLO -> every device holds a job */
    double throughput_s;        /* length of the throughput phase */
    size_t throughput_jobs;     /* jobs started in it */
    double master_cpu_s;        /* the master's thread's CPU time in it */
    double checkpoint_cpu_s;    /* the store's checkpointer's */
    double process_cpu_s;       /* every thread's: master, fleet, ZMQ I/O, checkpointer */
} timing_t;

/* CPU seconds so far: the master's thread, the checkpointer's, the whole process. */
static void s_cpu_now(double cpu[3])
{
    cpu[0] = procstat_threads_cpu_s(getpid(), "rr-master");
    cpu[1] = procstat_threads_cpu_s(getpid(), "rr-checkpoint");
    cpu[2] = procstat_cpu_s(getpid());
}

/* Run PHASE until DONE(run) or LIMIT_S; paced releases at RATE per second (0 = none). */
static int s_phase(run_t *run, zmq_pollitem_t *items, phase_t phase, double limit_s,
                   double rate, size_t target_samples)
{
    size_t devices = run->scale->workers * run->scale->devices_per_worker;
    size_t jobs = run->scale->jobs;
    run->phase = phase;
    double start = bench_now(), last_progress = start;
    size_t released = 0, before = run->started;
    while (run->started < jobs && bench_now() - start < limit_s) {
        if (phase == PHASE_FILL && run->held_count == devices)
            return 0;
        if (phase == PHASE_LATENCY && run->samples[0] >= target_samples)
            return 0;
        if (rate > 0) {
            size_t due = (size_t) ((bench_now() - start) * rate);
            if (due > released && s_release(run, due - released) != 0)
                return -1;
            released = due > released ? due : released;
        }
        if (s_poll_once(run, items, rate > 0 ? 1 : 100) != 0)
            return -1;
        if (run->started != before) {
            before = run->started;
            last_progress = bench_now();
        }
        if (bench_now() - last_progress > STALL_MS / 1000.0) {
            fprintf(stderr, "bench_dispatch: no JOB_START for %d s (phase %d, %zu started)\n",
                    STALL_MS / 1000, (int) phase, run->started);
            return -1;
        }
    }
    return phase == PHASE_THROUGHPUT || run->started == jobs ? 0 : -1;
}

/* Wait until the master has worked off the fill (every accept committed, no
 * JOB_START re-sent for SETTLE_MS), so the latency phase measures an idle
 * device on a master that is not still catching up. */
static int s_settle(run_t *run, zmq_pollitem_t *items)
{
    double start = bench_now(), quiet_since = start;
    while (bench_now() - quiet_since < SETTLE_MS / 1000.0) {
        if (bench_now() - start > RUN_TIMEOUT_MS / 1000.0) {
            fprintf(stderr, "bench_dispatch: the master did not settle after the fill\n");
            return -1;
        }
        size_t before = run->duplicates;
        if (s_poll_once(run, items, 100) != 0)
            return -1;
        if (run->duplicates != before)
            quiet_since = bench_now();
    }
    fprintf(stderr, "bench_dispatch: settled %.1f s after the fill\n", bench_now() - start);
    return 0;
}

static int s_serve(harness_t *h, run_t *run, bool smoke, timing_t *timing)
{
    const scale_t *scale = run->scale;
    zmq_pollitem_t *items = calloc(scale->workers, sizeof *items);
    if (!items)
        return -1;
    double start = bench_now();
    int rc = s_fleet_hello(h, scale, run);
    for (size_t w = 0; w < scale->workers && rc == 0; w++)
        items[w] = (zmq_pollitem_t) { .socket = zsock_resolve(run->sims[w].sock),
                                      .events = ZMQ_POLLIN };
    if (rc == 0)
        rc = s_phase(run, items, PHASE_FILL, RUN_TIMEOUT_MS / 1000.0, 0, 0);
    timing->fill_s = bench_now() - start;
    if (rc == 0)
        rc = s_settle(run, items);
    if (rc == 0)
        rc = s_phase(run, items, PHASE_LATENCY, RUN_TIMEOUT_MS / 1000.0, LATENCY_RATE,
                     smoke ? 50 : LATENCY_SAMPLES);
    size_t before = run->started;
    double phase_start = bench_now(), cpu_start[3], cpu_end[3];
    s_cpu_now(cpu_start);
    if (rc == 0)
        rc = s_release(run, run->held_count);   /* the saturated phase starts with every device */
    if (rc == 0)
        rc = s_phase(run, items, PHASE_THROUGHPUT, smoke ? 5 : THROUGHPUT_S, 0, 0);
    timing->throughput_s = bench_now() - phase_start;
    timing->throughput_jobs = run->started - before;
    s_cpu_now(cpu_end);
    timing->master_cpu_s = cpu_end[0] - cpu_start[0];
    timing->checkpoint_cpu_s = cpu_end[1] - cpu_start[1];
    timing->process_cpu_s = cpu_end[2] - cpu_start[2];
    free(items);
    return rc;
}

static void s_report(const scale_t *scale, bool smoke, double submit_s, run_t *run,
                     const timing_t *timing)
{
    size_t devices = scale->workers * scale->devices_per_worker;
    fprintf(stderr, "bench_dispatch: %zu devices filled in %.1f s; %zu jobs started in the %.1f s "
            "throughput phase; %zu re-sent starts; %zu + %zu latency samples\n", devices,
            timing->fill_s, timing->throughput_jobs, timing->throughput_s, run->duplicates,
            run->samples[0], run->samples[1]);
    if (smoke)
        bench_note("dispatch: smoke run, %zu devices, %zu jobs", devices, scale->jobs);
    bench_info("dispatch_submit_per_s", (double) scale->jobs / submit_s, "jobs/s");
    bench_info("dispatch_fill_per_s", (double) devices / timing->fill_s, "jobs/s");
    bench_result("dispatch_jobs_per_s", (double) timing->throughput_jobs / timing->throughput_s,
                 "jobs/s", ">=", 10000);
    bench_info("dispatch_idle_to_start_p50_ms",
               bench_percentile(run->latency_ms[0], run->samples[0], 50), "ms");
    bench_result("dispatch_idle_to_start_p99_ms",
                 bench_percentile(run->latency_ms[0], run->samples[0], 99), "ms", "<", 5);
    bench_info("dispatch_saturated_idle_to_start_p99_ms",
               bench_percentile(run->latency_ms[1], run->samples[1], 99), "ms");
    /* Where the throughput phase's CPU went, per job started: the master's
     * thread alone bounds the rate at 1e6 / its figure (one core of its own). */
    double jobs = (double) timing->throughput_jobs;
    bench_info("dispatch_master_cpu_us_per_job", timing->master_cpu_s * 1e6 / jobs, "us");
    bench_info("dispatch_checkpoint_cpu_us_per_job", timing->checkpoint_cpu_s * 1e6 / jobs, "us");
    bench_info("dispatch_process_cpu_us_per_job", timing->process_cpu_s * 1e6 / jobs, "us");
}

int main(int argc, char **argv)
{
    bool smoke = bench_smoke(argc, argv);
    rr_log_init("bench-master", RR_LOG_WARN);
    zsys_init();
    zsys_set_linger(0);
    zsys_set_max_sockets(0);
    scale_t scale = smoke ? (scale_t) { 4, TAG_SETS, 500 } : (scale_t) { 200, 50, 100000 };
    const char *override = getenv("RR_BENCH_DISPATCH_SCALE");  /* "workers,devices,jobs" */
    if (override && sscanf(override, "%zu,%zu,%zu", &scale.workers, &scale.devices_per_worker,
                           &scale.jobs) == 3)
        bench_note("dispatch: scale from RR_BENCH_DISPATCH_SCALE: %zu workers x %zu devices, "
                   "%zu jobs", scale.workers, scale.devices_per_worker, scale.jobs);
    size_t devices = scale.workers * scale.devices_per_worker;
    harness_t *h = harness_new();
    run_t run = { .scale = &scale };
    timing_t timing = { 0 };
    int rc = 1;
    if (!h)
        return 1;
    h->config->heartbeat_interval_ms = 1000;
    h->config->heartbeat_timeout_ms = 600000;  /* simulated workers do not beat */
    if (harness_start(h) != 0) {
        fprintf(stderr, "bench_dispatch: master: %s\n", h->start_error);
        goto out;
    }
    uint64_t max_job = 0;
    double submit_s = s_submit_all(h, &scale, &max_job);
    if (submit_s < 0)
        goto out;
    fprintf(stderr, "bench_dispatch: %zu jobs queued in %.1f s\n", scale.jobs, submit_s);
    run.max_job = max_job;
    run.seen = calloc(max_job + 1, 1);
    run.sims = calloc(scale.workers, sizeof *run.sims);
    run.held = calloc(devices, sizeof *run.held);
    run.latency_ms[0] = calloc(scale.jobs, sizeof(double));
    run.latency_ms[1] = calloc(scale.jobs, sizeof(double));
    if (!run.seen || !run.sims || !run.held || !run.latency_ms[0] || !run.latency_ms[1]
        || s_serve(h, &run, smoke, &timing) != 0 || timing.throughput_jobs == 0
        || run.samples[0] == 0)
        goto out;
    s_report(&scale, smoke, submit_s, &run, &timing);
    rc = 0;
out:
    for (size_t w = 0; run.sims && w < scale.workers; w++) {
        zsock_destroy(&run.sims[w].sock);
        free(run.sims[w].end_sent);
        free(run.sims[w].job);
    }
    free(run.sims);
    free(run.seen);
    free(run.held);
    free(run.latency_ms[0]);
    free(run.latency_ms[1]);
    harness_destroy(&h);
    if (rc != 0)
        fprintf(stderr, "bench_dispatch: failed\n");
    return rc;
}
