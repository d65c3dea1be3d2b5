/* scheduler.c: match queued jobs to idle devices (the matching only; the
 * store does the queries and the marking).
 *
 * The queue is in memory (sched_index.h): queued jobs bucketed by device type
 * and exact tag set, each bucket a heap in (priority DESC, id ASC) order. A
 * pass lists the idle devices from the store (sorted by type, tags, name) and
 * gives each the best head among the buckets whose tags it has all: the
 * oldest job of the highest priority that fits it, at O(buckets + log n) per
 * pick (bench_dispatch: 100,000 queued jobs, 24 buckets). An assignment takes
 * a job only while the store holds it queued, so the store stays the one
 * truth; the SQL queue walk this replaced is gone (session 4).
 */
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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
        if (rc == RR_STORE_E_STATE) {
            /* The device would not take it (the store undid the job's part):
             * the next device instead, the job back from the store. */
            rr_warn("scheduler: %s", rr_store_error(store));
            rr_sched_index_mark_stale(index);
            return RR_STORE_OK;
        }
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
    int rc = rr_store_join(store);          /* the drain's transaction: no savepoint */
    for (size_t i = 0; i < idle_count && rc == RR_STORE_OK; i++)
        if (rr_sched_index_size(index) > 0)
            rc = s_assign_device(store, index, &idle[i], out, count);
    return rr_store_leave(store, rc);
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
