/* health.h: health-check jobs. A device type may declare one in the master
 * config (health_checks.<type>: job, every_jobs, every_hours). The master runs
 * it on a device of that type before any normal job when the device is new,
 * has left bad, has run every_jobs jobs or every_hours hours have passed since
 * its last passed check. A check that ends complete with no failed result
 * passes (the counters start again); anything else but a cancel makes the
 * device bad ("health check job N failed: ..."), a mark only an operator's
 * maintenance on/off clears, after which the device is due again.
 *
 * The class holds the validated jobs and decides; the store (store.h, "health
 * checks") keeps the counters; the master's glue (daemon.h, health.c) calls it
 * before every scheduling pass and when a job ends. */
#ifndef RACKRUN_MASTER_HEALTH_H
#define RACKRUN_MASTER_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

typedef struct _rr_health_t rr_health_t;

/* When a device of one type is due again (0 = that rule is off). */
typedef struct {
    uint32_t every_jobs;
    uint32_t every_hours;
} rr_health_rule_t;

/* What a finished job meant for its device. */
typedef enum {
    RR_HEALTH_NOT_A_CHECK,  /* a normal job */
    RR_HEALTH_PASSED,       /* the device is healthy: counters reset */
    RR_HEALTH_FAILED,       /* the device is bad now */
    RR_HEALTH_ABORTED,      /* canceled: no verdict, the device stays due */
} rr_health_verdict_t;

/* Load every health check of CONFIG (borrowed) and validate its job YAML
 * (jobyaml.h) and device_type. NULL with ERR ("health_checks.T.job:
 * FILE:LINE:COL: ...") when one is invalid: the master must not start. */
rr_health_t *rr_health_new(const rr_master_config_t *config, char *err, size_t errlen);

/* Destroy and NULL *SELF_P. */
void rr_health_destroy(rr_health_t **self_p);

/* True when some device type declares a health check. */
bool rr_health_enabled(rr_health_t *self);

/* True when some rule counts hours (the master then looks again on its timer). */
bool rr_health_timed(rr_health_t *self);

/* Whether DEVICE is due a check under RULE at NOW_MS (wall ms); WHY gets why. */
bool rr_health_due(const rr_health_rule_t *rule, const rr_store_health_t *device,
                   uint64_t now_ms, char *why, size_t whylen);

/* Told about each health-check job rr_health_start_due started. */
typedef void (rr_health_started_fn)(uint64_t job, const rr_store_health_t *device,
                                    const char *why, void *arg);

/* Start the health-check job on every idle device that is due at NOW_MS
 * (assigned to it at once: it never waits in the queue). Returns how many
 * started, or -1 with ERR: then some due device may have none, and no normal
 * job may be scheduled this round. */
int rr_health_start_due(rr_health_t *self, rr_store_t *store, uint64_t now_ms,
                        rr_health_started_fn *started, void *arg, char *err, size_t errlen);

/* JOB has finished: when it is a health check, record its verdict on its
 * device (*VERDICT; REASON gets the bad reason or what happened). 0, or -1
 * with REASON holding the store's error. */
int rr_health_job_ended(rr_health_t *self, rr_store_t *store, uint64_t job, uint64_t now_ms,
                        rr_health_verdict_t *verdict, char *reason, size_t len);

#endif
