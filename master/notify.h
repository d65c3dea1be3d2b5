/* notify.h: job notifications. A job that says
 *
 *   notify: {callback: "https://ci.example/hook", on: [incomplete, canceled]}
 *
 * (on: any of finished = every end, complete, incomplete, canceled; default
 * [finished]) gets, when it ends with a listed outcome, one HTTP POST of
 *
 *   {"event": "finished", "job": {...as /api/v1/jobs/ID...},
 *    "results": {"pass": N, "fail": N, "skip": N}}
 *
 * (Content-Type: application/json). Deliveries run on libcurl's multi
 * interface driven by the master's zloop (its sockets as zloop pollers, its
 * timeout as a zloop timer): the scheduler never waits for a receiver. An
 * attempt that fails (no connection, a timeout, a status other than 2xx) is
 * retried after 1 s, 2 s, 4 s... (capped), up to max_tries attempts; the
 * queue of deliveries is bounded, and a notification that does not fit is
 * dropped with a warning. Nothing is persisted: notifications pending when
 * the master stops are lost (the job's state in the store is the truth).
 *
 * Only http:// and https:// are fetched, redirects are not followed, and
 * the log names only the callback's scheme, host and port (a URL may carry
 * a token). Not thread-safe: the loop's thread only.
 */
#ifndef RACKRUN_MASTER_NOTIFY_H
#define RACKRUN_MASTER_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct _rr_notify_t rr_notify_t;
typedef struct _zloop_t zloop_t;

typedef struct {
    uint32_t max_queue;         /* deliveries waiting or in flight; 0 = 256 */
    uint32_t max_tries;         /* attempts per notification; 0 = 6 */
    uint32_t backoff_ms;        /* delay before the first retry, doubling; 0 = 1000 */
    uint32_t backoff_max_ms;    /* 0 = 60000 */
    uint32_t timeout_ms;        /* one attempt, connect included; 0 = 10000 */
} rr_notify_options_t;

typedef struct {
    uint64_t delivered;         /* answered 2xx */
    uint64_t retried;           /* attempts that failed and were retried */
    uint64_t failed;            /* given up after max_tries */
    uint64_t dropped;           /* the queue was full */
} rr_notify_stats_t;

/* Deliveries on LOOP (borrowed; must outlive the notifier). OPTIONS may be NULL. */
rr_notify_t *rr_notify_new(zloop_t *loop, const rr_notify_options_t *options);

/* Abandon pending deliveries, detach from the loop, NULL *SELF_P. */
void rr_notify_destroy(rr_notify_t **self_p);

/* Queue a POST of BODY (JSON) to URL; WHAT names it in the log ("job 42").
 * 0, or -1 when the queue is full or out of memory (logged, dropped). */
int rr_notify_post(rr_notify_t *self, const char *url, const char *body, const char *what);

/* Job JOB just ended: queue its notification if its definition asks for
 * one for this outcome. 0 also when none is due; -1 on a store error. */
int rr_notify_job(rr_notify_t *self, rr_store_t *store, uint64_t job);

/* Deliveries queued, in flight or waiting to retry. */
size_t rr_notify_pending(rr_notify_t *self);

/* Counters since rr_notify_new. */
void rr_notify_stats(rr_notify_t *self, rr_notify_stats_t *stats);

#endif
