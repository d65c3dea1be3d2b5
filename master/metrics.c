/* metrics.c: Prometheus text exposition of the store's state and the
 * daemon's counters; see metrics.h.
 *
 * Gauges are read from the store at scrape time (a few indexed COUNTs and
 * one pass over devices and workers), not kept up to date by the daemon:
 * a scrape every 15 s costs less than bookkeeping on every state change,
 * and the numbers cannot drift from the database. */
#include "metrics.h"

#include <inttypes.h>
#include <string.h>

static const char *const job_states[] = { RR_JOB_QUEUED, RR_JOB_SCHEDULED, RR_JOB_RUNNING,
                                          RR_JOB_CANCELING, RR_JOB_FINISHED };
static const char *const device_states[] = { RR_DEVICE_IDLE, RR_DEVICE_RESERVED,
    RR_DEVICE_RUNNING, RR_DEVICE_OFFLINE, RR_DEVICE_MAINTENANCE, RR_DEVICE_BAD, RR_DEVICE_RETIRED };
static const char *const worker_states[] = { RR_WORKER_ONLINE, RR_WORKER_LOST, RR_WORKER_OFFLINE };

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

void rr_metrics_header(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Index of STATE in STATES, or -1. */
static int state_index(const char *state, const char *const *states, size_t n)
{
    for (size_t i = 0; state && i < n; i++)
        if (strcmp(state, states[i]) == 0)
            return (int) i;
    return -1;
}

static void write_by_state(FILE *out, const char *name, const char *const *states,
                           const uint64_t *counts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s{state=\"%s\"} %" PRIu64 "\n", name, states[i], counts[i]);
}

static int write_jobs(rr_store_t *store, uint64_t now_ms, FILE *out)
{
    uint64_t counts[COUNT_OF(job_states)] = { 0 };
    for (size_t i = 0; i < COUNT_OF(job_states); i++)
        if (rr_store_jobs_count(store, job_states[i], &counts[i]) != RR_STORE_OK)
            return -1;
    rr_metrics_header(out, "rackrun_jobs", "gauge", "Jobs by state.");
    write_by_state(out, "rackrun_jobs", job_states, counts, COUNT_OF(job_states));

    bool queued;
    uint64_t oldest_ms;
    if (rr_store_queue_oldest(store, &queued, &oldest_ms) != RR_STORE_OK)
        return -1;
    double age = queued && now_ms > oldest_ms ? (double) (now_ms - oldest_ms) / 1000.0 : 0.0;
    rr_metrics_header(out, "rackrun_queue_depth", "gauge", "Jobs waiting for a device.");
    fprintf(out, "rackrun_queue_depth %" PRIu64 "\n", counts[0]);
    rr_metrics_header(out, "rackrun_queue_oldest_age_seconds", "gauge",
                      "Time the oldest queued job has waited (0 when the queue is empty).");
    fprintf(out, "rackrun_queue_oldest_age_seconds %.3f\n", age);
    return 0;
}

static int write_devices(rr_store_t *store, FILE *out)
{
    proto_deviceinfo_t *devices;
    size_t n;
    if (rr_store_devices_list(store, NULL, &devices, &n) != RR_STORE_OK)
        return -1;
    uint64_t counts[COUNT_OF(device_states)] = { 0 };
    for (size_t i = 0; i < n; i++) {
        int at = state_index(devices[i].state, device_states, COUNT_OF(device_states));
        if (at >= 0)
            counts[at]++;
    }
    rr_store_deviceinfos_free(&devices, n);
    rr_metrics_header(out, "rackrun_devices", "gauge", "Devices by state.");
    write_by_state(out, "rackrun_devices", device_states, counts, COUNT_OF(device_states));
    return 0;
}

/* Heartbeat ages of the workers that should be beating (online or lost). */
static void write_age_histogram(FILE *out, const proto_workerinfo_t *workers, size_t n)
{
    static const double bounds[] = RR_METRICS_AGE_BUCKETS;
    uint64_t below[COUNT_OF(bounds)] = { 0 }, total = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(workers[i].state, RR_WORKER_OFFLINE) == 0)
            continue;
        double age = (double) workers[i].heartbeat_age_ms / 1000.0;
        for (size_t b = 0; b < COUNT_OF(bounds); b++)
            below[b] += age <= bounds[b];
        total++;
        sum += age;
    }
    const char *name = "rackrun_worker_heartbeat_age_seconds";
    rr_metrics_header(out, name, "histogram",
                      "Time since the last heartbeat of each online or lost worker.");
    for (size_t b = 0; b < COUNT_OF(bounds); b++)
        fprintf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bounds[b], below[b]);
    fprintf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, total);
    fprintf(out, "%s_sum %.3f\n%s_count %" PRIu64 "\n", name, sum, name, total);
}

static int write_workers(rr_store_t *store, uint64_t now_ms, FILE *out)
{
    proto_workerinfo_t *workers;
    size_t n;
    if (rr_store_workers_list(store, NULL, now_ms, &workers, &n) != RR_STORE_OK)
        return -1;
    uint64_t counts[COUNT_OF(worker_states)] = { 0 };
    for (size_t i = 0; i < n; i++) {
        int at = state_index(workers[i].state, worker_states, COUNT_OF(worker_states));
        if (at >= 0)
            counts[at]++;
    }
    rr_metrics_header(out, "rackrun_workers", "gauge", "Workers by state.");
    write_by_state(out, "rackrun_workers", worker_states, counts, COUNT_OF(worker_states));
    write_age_histogram(out, workers, n);
    rr_store_workerinfos_free(&workers, n);
    return 0;
}

static void write_counters(const rr_metrics_t *counters, FILE *out)
{
    static const rr_metrics_t zero;
    if (!counters)
        counters = &zero;
#define RR_METRICS_WRITE(field, name, help) \
    rr_metrics_header(out, name, "counter", help); \
    fprintf(out, "%s %" PRIu64 "\n", name, counters->field);
    RR_METRICS_COUNTERS(RR_METRICS_WRITE)
#undef RR_METRICS_WRITE
}

int rr_metrics_write(rr_store_t *store, const rr_metrics_t *counters, uint64_t now_ms, FILE *out)
{
    rr_metrics_header(out, "rackrun_build_info", "gauge", "Version of this master; always 1.");
    fprintf(out, "rackrun_build_info{version=\"%s\"} 1\n", RACKRUN_VERSION);
    if (write_jobs(store, now_ms, out) != 0 || write_devices(store, out) != 0
        || write_workers(store, now_ms, out) != 0)
        return -1;
    write_counters(counters, out);
    return 0;
}
