/* sched_index.h: the scheduler's view of the queue, in memory.
 *
 * Queued jobs in buckets of one device type and one exact tag set, each a
 * heap in the queue's order (priority DESC, id ASC). A device takes the best
 * head among the buckets of its type whose tags are all among its own: the
 * oldest job of the highest priority that fits it, at O(log n) per pick
 * instead of a walk past every job its tags do not fit.
 *
 * The store stays the truth. The index learns new jobs by reading those
 * above the highest id it has seen (rr_sched_index_sync), and may hold jobs
 * that left the queue some other way (a cancel): the scheduler's assignment
 * only takes a job that is still queued, and drops the others. A job that
 * goes back to the queue (a refused start) or a rolled-back pass marks it
 * stale: the next sync rebuilds it from the store.
 */
#ifndef RACKRUN_MASTER_SCHED_INDEX_H
#define RACKRUN_MASTER_SCHED_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct _rr_sched_index_t rr_sched_index_t;

/* An empty index, stale (the first sync reads the whole queue). NULL: out of memory. */
rr_sched_index_t *rr_sched_index_new(void);

/* Destroy the index and NULL *SELF_P. */
void rr_sched_index_destroy(rr_sched_index_t **self_p);

/* Bring the index up to date with STORE: new queued jobs, or all of them
 * when stale. RR_STORE_OK or the store's error (the index is stale then). */
int rr_sched_index_sync(rr_sched_index_t *self, rr_store_t *store);

/* Forget it all: the next sync rebuilds from the store. */
void rr_sched_index_mark_stale(rr_sched_index_t *self);

/* Add queued JOB (DEVICE_TYPE, TAGS sorted as the store keeps them, PRIORITY). 0 or -1 (memory). */
int rr_sched_index_add(rr_sched_index_t *self, uint64_t job, const char *device_type,
                       char *const *tags, size_t tag_count, uint32_t priority);

/* Take out the best job for a device of DEVICE_TYPE with DEVICE_TAGS: the
 * highest priority, then the oldest, of those whose tags it has all. 0 = none. */
uint64_t rr_sched_index_pop(rr_sched_index_t *self, const char *device_type,
                            char *const *device_tags, size_t device_tag_count);

/* Jobs held (including any that left the queue unseen). */
size_t rr_sched_index_size(const rr_sched_index_t *self);

#endif
