/* jobctl.h: submitting and cancelling jobs, the one path behind both the
 * client endpoint (SUBMIT, CANCEL in clients.c) and the HTTP API
 * (POST /api/v1/jobs, POST /api/v1/jobs/ID/cancel in http_api.c).
 *
 * Submit: the size limit (max_job_yaml), the job YAML parser (jobyaml.h,
 * errors with line and column), a device type some worker offers, then the
 * store; the scheduler runs at once. Cancel: a queued job ends canceled at
 * once; a scheduled or running one becomes canceling and its worker gets
 * JOB_CANCEL, re-sent until acknowledged (dispatch.c). Runs on the master's
 * loop thread like every other handler. */
#ifndef RACKRUN_MASTER_JOBCTL_H
#define RACKRUN_MASTER_JOBCTL_H

#include <stddef.h>
#include <stdint.h>

#include "master.h"

/* Why a submit or cancel was refused: how each caller tells its client. */
typedef enum {
    RR_JOBCTL_INVALID = 1,  /* bad job definition (line/col/key may say where) */
    RR_JOBCTL_TOO_BIG,      /* larger than max_job_yaml */
    RR_JOBCTL_NOT_FOUND,    /* no such job */
    RR_JOBCTL_STATE,        /* the job is in a state that refuses it (finished) */
    RR_JOBCTL_INTERNAL,     /* store failure (logged by the master) */
} rr_jobctl_fail_t;

typedef struct {
    rr_jobctl_fail_t kind;
    const char *code;       /* the wire ERROR code: invalid | too_big | not_found | internal */
    char key[128];          /* the ERROR key ("" = none): "yaml", "device_type", a YAML path */
    uint32_t line, col;     /* position in the YAML (1-based), 0 = none */
    char text[1024];
} rr_jobctl_error_t;

/* Validate YAML (LEN bytes, NUL-terminated) and queue it as a job: 0 with
 * *JOB, or -1 with *ERR. */
int rr_jobctl_submit(rr_master_t *self, const char *yaml, size_t len, uint64_t *job,
                     rr_jobctl_error_t *err);

/* Cancel JOB: 0 with *STATE "finished" (it was queued: canceled now) or
 * "canceling" (its worker is told), or -1 with *ERR. */
int rr_jobctl_cancel(rr_master_t *self, uint64_t job, const char **state, rr_jobctl_error_t *err);

#endif
