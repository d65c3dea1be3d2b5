/* retention.c: log retention passes on the master's loop (see retention.h).
 *
 * A pass walks finished jobs in (ended_ms, id) order from the watermark. A
 * job older than the age limit is pruned outright; a younger one only while
 * the database is over its size budget (checked again before each such job,
 * as pruning frees pages). The walk stops at the first job that qualifies
 * for neither, so the watermark never passes a job whose log is kept. */
#include "retention.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifacts.h"
#include "log.h"
#include "units.h"

#define CATCH_UP_MS 1000u       /* next pass when one had more work than max_jobs */
#define KICK_MS 100u            /* a pass this soon after a job ended */

struct _rr_retention_t {
    rr_store_t *store;
    zloop_t *loop;
    rr_retention_options_t options;
    int timer;                  /* the periodic pass, -1 without loop */
    int soon;                   /* a one-shot pass pending, -1 none */
    uint64_t mark_ms, mark_job; /* every job up to here is pruned */
    bool behind;                /* the last pass stopped at max_jobs: more may be due */
    rr_retention_stats_t stats;
};

static int s_on_timer(zloop_t *loop, int timer_id, void *arg);

static void s_soon(rr_retention_t *self, uint32_t delay_ms)
{
    if (!self->loop || self->soon >= 0)
        return;
    self->soon = zloop_timer(self->loop, delay_ms, 1, s_on_timer, self);
}

static int s_on_timer(zloop_t *loop, int timer_id, void *arg)
{
    rr_retention_t *self = arg;
    (void)loop;
    if (timer_id == self->soon)
        self->soon = -1;
    else if (timer_id != self->timer)
        return 0;               /* a one-shot cancelled in this pass */
    rr_retention_run(self, rr_wall_ms());
    if (self->behind)
        s_soon(self, CATCH_UP_MS);
    return 0;
}

rr_retention_t *rr_retention_new(rr_store_t *store, zloop_t *loop,
                                 const rr_retention_options_t *options)
{
    rr_retention_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->loop = loop;
    self->options = *options;
    self->options.artifacts_dir = NULL;
    if (options->artifacts_dir && !(self->options.artifacts_dir = strdup(options->artifacts_dir))) {
        free(self);
        return NULL;
    }
    self->options.interval_ms = options->interval_ms ? options->interval_ms : 60000;
    self->options.max_jobs = options->max_jobs ? options->max_jobs : 50;
    self->timer = self->soon = -1;
    if (loop && (self->timer = zloop_timer(loop, self->options.interval_ms, 0, s_on_timer,
                                           self)) < 0) {
        free((char *)self->options.artifacts_dir);
        free(self);
        return NULL;
    }
    return self;
}

void rr_retention_destroy(rr_retention_t **self_p)
{
    rr_retention_t *self = *self_p;
    if (!self)
        return;
    if (self->loop && self->timer >= 0)
        zloop_timer_end(self->loop, self->timer);
    if (self->loop && self->soon >= 0)
        zloop_timer_end(self->loop, self->soon);
    free((char *)self->options.artifacts_dir);
    free(self);
    *self_p = NULL;
}

/* Is the database over its size budget? (false without one, or on error) */
static bool s_over_budget(rr_retention_t *self)
{
    uint64_t used = 0;
    if (!self->options.size_bytes)
        return false;
    if (rr_store_used_bytes(self->store, &used) != RR_STORE_OK) {
        rr_warn("retention: %s", rr_store_error(self->store));
        return false;
    }
    return used > self->options.size_bytes;
}

/* Remove JOB's artifacts: rows first (a crash then leaves files that the
 * walk after a restart deletes), then the files. 0, or -1 on a store error. */
static int s_prune_artifacts(rr_retention_t *self, uint64_t job, const char *why)
{
    char reason[128];
    size_t rows = 0;
    uint64_t bytes = 0;
    snprintf(reason, sizeof reason, "removed by log retention (%s)", why);
    if (rr_store_artifacts_remove(self->store, job, reason, &rows) != RR_STORE_OK) {
        rr_warn("retention: job %" PRIu64 ": %s", job, rr_store_error(self->store));
        return -1;
    }
    if (rr_artifacts_remove_files(self->options.artifacts_dir, job, &bytes) < 0)
        rr_warn("retention: job %" PRIu64 ": artifacts in %s: %s (left on disk)", job,
                self->options.artifacts_dir, strerror(errno));
    if (rows || bytes)
        rr_info("retention: job %" PRIu64 ": %zu artifact(s) removed (%" PRIu64 " bytes; %s)",
                job, rows, bytes, why);
    self->stats.artifact_bytes += bytes;
    return 0;
}

static int s_prune(rr_retention_t *self, const rr_store_ended_t *job, const char *why)
{
    uint64_t bytes = 0;
    if (rr_store_logs_prune(self->store, job->job, RR_RETENTION_MARKER, &bytes) != RR_STORE_OK) {
        rr_warn("retention: job %" PRIu64 ": %s", job->job, rr_store_error(self->store));
        return -1;
    }
    if (self->options.artifacts_dir && s_prune_artifacts(self, job->job, why) < 0)
        return -1;
    if (bytes) {
        rr_info("retention: job %" PRIu64 ": console log removed (%" PRIu64 " bytes; %s)",
                job->job, bytes, why);
        self->stats.jobs++;
        self->stats.bytes += bytes;
    }
    self->mark_ms = job->ended_ms;
    self->mark_job = job->job;
    return bytes ? 1 : 0;
}

int rr_retention_run(rr_retention_t *self, uint64_t now_ms)
{
    uint64_t age_cut = self->options.age_ms && now_ms > self->options.age_ms
                           ? now_ms - self->options.age_ms : 0;
    bool over = s_over_budget(self);
    self->behind = false;
    if (!age_cut && !over)
        return 0;
    rr_store_ended_t *jobs = NULL;
    size_t count = 0;
    if (rr_store_jobs_ended(self->store, self->mark_ms, self->mark_job, over ? now_ms + 1 : age_cut,
                            self->options.max_jobs, &jobs, &count) != RR_STORE_OK) {
        rr_warn("retention: %s", rr_store_error(self->store));
        return -1;
    }
    int pruned = 0;
    size_t i;
    for (i = 0; i < count; i++) {
        bool old = jobs[i].ended_ms < age_cut;
        if (!old && !s_over_budget(self))
            break;
        int rc = s_prune(self, &jobs[i], old ? "older than log_retention_age"
                                             : "database over log_retention_size");
        if (rc < 0) {
            pruned = -1;
            break;
        }
        pruned += rc;
    }
    self->behind = i == count && count == self->options.max_jobs;
    free(jobs);
    return pruned;
}

void rr_retention_kick(rr_retention_t *self)
{
    if (self)
        s_soon(self, KICK_MS);
}

void rr_retention_stats(rr_retention_t *self, rr_retention_stats_t *stats)
{
    *stats = self->stats;
}
