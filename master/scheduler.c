/* scheduler.c: match queued jobs to idle devices (the matching only; the
 * store does the queries and the marking).
 *
 * Idle devices come from the store sorted by type then tags, so devices that
 * are interchangeable (same type, same tag set) form one group. For a group
 * of K devices the queue of that type is walked once, in (priority DESC,
 * id ASC) order on the partial index jobs_queue, taking the first K jobs whose
 * tags the group has. Every device so gets the oldest job of the highest
 * priority that fits it.
 *
 * Cost: one index walk per group, stopping after K matches; with 100k queued
 * jobs and 10k devices in a few dozen groups a pass is a few dozen short index
 * scans. The worst case is a group whose tags fit none of the queued jobs of
 * its type: that walk reads the whole queue of the type. Road not taken:
 * bucketing jobs by their exact tag string and asking one indexed query per
 * subset of the device's tags (2^tags queries), exact and O(log n) per bucket
 * but only sane for a handful of tags per device; worth it if labs grow
 * many tag combinations.
 *
 * The master uses rr_scheduler_pick_indexed: the queue in memory
 * (sched_index.h), bucketed by type and exact tag set, so a device's pick
 * looks at the head of each bucket whose tags it has instead of walking the
 * queue in SQL (bench_dispatch: 100,000 queued jobs). Idle devices still come
 * from the store, and an assignment still takes only a job that is queued
 * there, so the store stays the one truth.
 */
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool rr_scheduler_tags_match(char *const *job_tags, size_t job_count,
                             char *const *device_tags, size_t device_count)
{
    for (size_t i = 0; i < job_count; i++) {
        bool found = false;
        for (size_t j = 0; j < device_count && !found; j++)
            found = strcmp(job_tags[i], device_tags[j]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* A group of interchangeable idle devices and the jobs picked for them. */
typedef struct {
    const proto_deviceinfo_t *devices;  /* first device of the group */
    size_t size;                        /* devices in the group */
    uint64_t *jobs;                     /* picked, at most SIZE */
    size_t picked;
} group_t;

static bool same_group(const proto_deviceinfo_t *a, const proto_deviceinfo_t *b)
{
    if (strcmp(a->type, b->type) != 0 || a->tags_count != b->tags_count)
        return false;
    for (size_t i = 0; i < a->tags_count; i++)   /* the store keeps tags sorted */
        if (strcmp(a->tags[i], b->tags[i]) != 0)
            return false;
    return true;
}

static bool pick_job(uint64_t job, char **tags, size_t tag_count, void *arg)
{
    group_t *group = arg;
    if (rr_scheduler_tags_match(tags, tag_count, group->devices[0].tags,
                                group->devices[0].tags_count))
        group->jobs[group->picked++] = job;
    return group->picked < group->size;
}

void rr_assignments_free(rr_assignment_t **list, size_t count)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < count; i++) {
        free((*list)[i].device);
        free((*list)[i].worker);
    }
    free(*list);
    *list = NULL;
}

/* Walk the queue for GROUP and mark its picks, appending them to OUT (room
 * for every idle device was made by the caller). */
static int schedule_group(rr_store_t *store, group_t *group, rr_assignment_t *out,
                          size_t *count)
{
    int rc = rr_store_queue_walk(store, group->devices[0].type, pick_job, group);
    for (size_t i = 0; i < group->picked && rc == RR_STORE_OK; i++) {
        const proto_deviceinfo_t *dev = &group->devices[i];
        rc = rr_store_job_assign_in_tx(store, group->jobs[i], dev->name, dev->worker);
        if (rc != RR_STORE_OK)
            break;
        rr_assignment_t *a = &out[(*count)++];
        a->job = group->jobs[i];
        a->device = strdup(dev->name);
        a->worker = strdup(dev->worker);
        if (!a->device || !a->worker)
            rc = RR_STORE_E_DB;
    }
    return rc;
}

static int schedule_all(rr_store_t *store, const proto_deviceinfo_t *idle, size_t idle_count,
                        rr_assignment_t *out, size_t *count, uint64_t *jobs)
{
    int rc = RR_STORE_OK;
    for (size_t first = 0; first < idle_count && rc == RR_STORE_OK;) {
        group_t group = { .devices = &idle[first], .size = 1, .jobs = jobs };
        while (first + group.size < idle_count && same_group(&idle[first],
                                                             &idle[first + group.size]))
            group.size++;
        rc = schedule_group(store, &group, out, count);
        first += group.size;
    }
    return rc;
}

int rr_scheduler_pick(rr_store_t *store, rr_assignment_t **out, size_t *count,
                      char *err, size_t errlen)
{
    proto_deviceinfo_t *idle = NULL;
    size_t idle_count = 0;
    rr_assignment_t *picked = NULL;
    uint64_t *jobs = NULL;
    *out = NULL;
    *count = 0;

    /* An empty queue needs no idle devices: listing them costs O(devices) and
     * every HELLO schedules (bench_heartbeat: 1,000 workers x 48 devices
     * saying HELLO spent 92% of the master in rr_store_devices_idle, and
     * workers were declared lost while waiting for their WELCOME). */
    uint64_t oldest = 0;
    int rc = rr_store_queue_oldest(store, &oldest);
    if (rc != RR_STORE_OK)
        goto err_store;
    if (oldest == 0)
        return 0;
    rc = rr_store_devices_idle(store, &idle, &idle_count);
    if (rc != RR_STORE_OK)
        goto err_store;
    if (idle_count == 0)
        return 0;
    picked = calloc(idle_count, sizeof *picked);
    jobs = calloc(idle_count, sizeof *jobs);
    if (!picked || !jobs) {
        snprintf(err, errlen, "scheduler: out of memory");
        goto err_free;
    }
    if ((rc = rr_store_begin(store)) != RR_STORE_OK)
        goto err_store;
    rc = schedule_all(store, idle, idle_count, picked, count, jobs);
    if (rc == RR_STORE_OK)
        rc = rr_store_commit(store);
    else
        rr_store_rollback(store);
    if (rc != RR_STORE_OK)
        goto err_store;
    free(jobs);
    rr_store_deviceinfos_free(&idle, idle_count);
    if (*count == 0)
        free(picked);
    else
        *out = picked;
    return 0;

err_store:
    snprintf(err, errlen, "scheduler: %s", rc == RR_STORE_E_DB && !*rr_store_error(store)
             ? "out of memory" : rr_store_error(store));
err_free:
    rr_assignments_free(&picked, *count);
    *count = 0;
    free(jobs);
    rr_store_deviceinfos_free(&idle, idle_count);
    return -1;
}

/* ---- with the queue in memory ---- */

static int s_err_store(rr_store_t *store, int rc, char *err, size_t errlen)
{
    snprintf(err, errlen, "scheduler: %s", rc == RR_STORE_E_DB && !*rr_store_error(store)
             ? "out of memory" : rr_store_error(store));
    return -1;
}

/* The next job of INDEX that is still queued goes to DEVICE (appended to OUT). */
static int s_assign_device(rr_store_t *store, rr_sched_index_t *index,
                           const proto_deviceinfo_t *dev, rr_assignment_t *out, size_t *count)
{
    uint64_t job;
    while ((job = rr_sched_index_pop(index, dev->type, dev->tags, dev->tags_count))) {
        bool assigned = false;
        int rc = rr_store_job_assign_queued(store, job, dev->name, dev->worker, &assigned);
        if (rc != RR_STORE_OK)
            return rc;
        if (!assigned)
            continue;                       /* left the queue meanwhile (canceled) */
        rr_assignment_t *a = &out[(*count)++];
        a->job = job;
        a->device = strdup(dev->name);
        a->worker = strdup(dev->worker);
        return a->device && a->worker ? RR_STORE_OK : RR_STORE_E_DB;
    }
    return RR_STORE_OK;
}

static int s_assign_all(rr_store_t *store, rr_sched_index_t *index,
                        const proto_deviceinfo_t *idle, size_t idle_count,
                        rr_assignment_t *out, size_t *count)
{
    int rc = rr_store_begin(store);
    for (size_t i = 0; i < idle_count && rc == RR_STORE_OK; i++)
        if (rr_sched_index_size(index) > 0)
            rc = s_assign_device(store, index, &idle[i], out, count);
    if (rc == RR_STORE_OK)
        return rr_store_commit(store);
    rr_store_rollback(store);
    return rc;
}

int rr_scheduler_pick_indexed(rr_store_t *store, rr_sched_index_t *index,
                              rr_assignment_t **out, size_t *count, char *err, size_t errlen)
{
    proto_deviceinfo_t *idle = NULL;
    size_t idle_count = 0;
    rr_assignment_t *picked = NULL;
    *out = NULL;
    *count = 0;
    int rc = rr_sched_index_sync(index, store);
    if (rc != RR_STORE_OK)
        return s_err_store(store, rc, err, errlen);
    if (rr_sched_index_size(index) == 0)
        return 0;                           /* an empty queue needs no idle devices */
    if ((rc = rr_store_devices_idle(store, &idle, &idle_count)) != RR_STORE_OK)
        return s_err_store(store, rc, err, errlen);
    if (idle_count == 0)
        return 0;
    if (!(picked = calloc(idle_count, sizeof *picked))) {
        rr_store_deviceinfos_free(&idle, idle_count);
        snprintf(err, errlen, "scheduler: out of memory");
        return -1;
    }
    rc = s_assign_all(store, index, idle, idle_count, picked, count);
    rr_store_deviceinfos_free(&idle, idle_count);
    if (rc != RR_STORE_OK) {
        rr_sched_index_mark_stale(index);   /* its popped jobs are queued again */
        s_err_store(store, rc, err, errlen);
        rr_assignments_free(&picked, *count);
        *count = 0;
        return -1;
    }
    if (*count == 0)
        free(picked);
    else
        *out = picked;
    return 0;
}
