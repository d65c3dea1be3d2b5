/* retention.h: log retention. The console logs of finished jobs are by far
 * the bulk of the master's database; this keeps them within bounds:
 *
 *   log_retention_age: 90d      a finished job's console log is dropped this
 *                               long after the job ended
 *   log_retention_size: 20GiB   while the database holds more than this (pages
 *                               in use), the oldest finished jobs' logs go first
 *
 * Only console bytes are dropped (rr_store_logs_prune): the job, its
 * outcome and reason, its actions and test results stay, and its log
 * becomes one line saying the log was removed by retention. The job's
 * artifacts (artifacts.h) go with its log: their files are deleted, their
 * rows stay, state "removed" with the reason. Open jobs are never touched.
 *
 * Jobs are pruned in the order they ended, from a watermark kept in memory
 * (after a restart the walk starts over; jobs already pruned cost one
 * indexed query each). A pass handles at most max_jobs jobs so it never
 * holds the master's loop for long; passes run every interval, soon after a
 * job ends, and again after 1 s while a pass had more work than it could do.
 */
#ifndef RACKRUN_MASTER_RETENTION_H
#define RACKRUN_MASTER_RETENTION_H

#include <stdint.h>

#include "store.h"

typedef struct _rr_retention_t rr_retention_t;
typedef struct _zloop_t zloop_t;

/* The line a pruned job's log is left with. */
#define RR_RETENTION_MARKER "\r\n[rackrun: console log removed by log retention]\r\n"

typedef struct {
    uint64_t age_ms;            /* 0 = no age limit */
    uint64_t size_bytes;        /* 0 = no size budget */
    uint32_t interval_ms;       /* between passes; 0 = 60000 */
    uint32_t max_jobs;          /* per pass; 0 = 50 */
    const char *artifacts_dir;  /* the artifacts root (copied); NULL = leave artifacts */
} rr_retention_options_t;

typedef struct {
    uint64_t jobs;              /* logs pruned */
    uint64_t bytes;             /* console bytes removed */
    uint64_t artifact_bytes;    /* artifact file bytes removed */
} rr_retention_stats_t;

/* Retention on STORE, its passes run by LOOP (both borrowed; NULL LOOP:
 * only rr_retention_run). NULL on ENOMEM or a timer failure. */
rr_retention_t *rr_retention_new(rr_store_t *store, zloop_t *loop,
                                 const rr_retention_options_t *options);

/* Stop its timers and NULL *SELF_P. */
void rr_retention_destroy(rr_retention_t **self_p);

/* One pass now (NOW_MS wall clock). Returns the jobs pruned, -1 on a store error. */
int rr_retention_run(rr_retention_t *self, uint64_t now_ms);

/* A job ended: run a pass soon (it may push the database over its budget). */
void rr_retention_kick(rr_retention_t *self);

/* Totals since rr_retention_new. */
void rr_retention_stats(rr_retention_t *self, rr_retention_stats_t *stats);

#endif
