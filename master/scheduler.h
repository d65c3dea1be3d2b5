/* scheduler.h: match queued jobs to idle devices.
 *
 * For each idle device (its worker online), the oldest queued job of the
 * highest priority whose device_type equals the device's type and whose tags
 * are all among the device's tags (health-check jobs are not queued here:
 * master/health.c assigns them). Event-driven: the master calls it on
 * submit, when a device becomes idle and when a worker comes up; never a poll.
 * All SQL is in the store; this file is only the matching.
 */
#ifndef RACKRUN_SCHEDULER_H
#define RACKRUN_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "sched_index.h"
#include "store.h"

typedef struct {
    uint64_t job;
    char *device;
    char *worker;
} rr_assignment_t;

/* Pick assignments with the queue in INDEX (sched_index.h), synced from
 * STORE first, and mark them (job scheduled, device reserved) in one
 * transaction. *OUT gets them (free with rr_assignments_free; NULL when
 * none). Returns 0, or -1 with ERR filled, nothing marked and INDEX stale
 * (rebuilt at the next pass). */
int rr_scheduler_pick_indexed(rr_store_t *store, rr_sched_index_t *index,
                              rr_assignment_t **out, size_t *count, char *err, size_t errlen);

/* Free an assignment array and NULL it. */
void rr_assignments_free(rr_assignment_t **list, size_t count);

/* True when every one of the job's tags is among the device's tags. */
bool rr_scheduler_tags_match(char *const *job_tags, size_t job_count,
                             char *const *device_tags, size_t device_count);

#endif
