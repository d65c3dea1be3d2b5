/* results.h: a job's test results as `rackrun results` reports them: one
 * case per result event (each test step, each RR_RESULT line), with its
 * duration and the tail of the console log that led to it, plus the job's
 * outcome. Built from the job's event stream (results.c) and written as a
 * table, JSON or JUnit XML (junit.c). */
#ifndef RACKRUN_CLI_RESULTS_H
#define RACKRUN_CLI_RESULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto.h"

#define RR_RESULTS_TAIL_MAX 4096u   /* console bytes kept per case (its last ones) */

typedef struct {
    char *name;
    char *value;            /* pass | fail | skip (as the worker sent it) */
    int64_t code;           /* exit code of the step */
    char *measurement;      /* NULL = none */
    char *units;
    uint64_t start_ms;      /* end of the previous case, or start of its action */
    uint64_t end_ms;        /* the result event's time */
    char *tail;             /* console bytes before the result (raw, NUL-terminated) */
    size_t tail_len;
} rr_result_case_t;

typedef struct _rr_results_t rr_results_t;

/* An empty report for job INFO (borrowed: it must outlive the report). */
rr_results_t *rr_results_new(const proto_jobinfo_t *info);

/* Destroy the report and NULL *SELF_P. */
void rr_results_destroy(rr_results_t **self_p);

/* Take in one event of the job's stream (in seq order). 0, or -1 on ENOMEM. */
int rr_results_feed(rr_results_t *self, const proto_job_event_t *ev);

/* The job as the master described it. */
const proto_jobinfo_t *rr_results_job(const rr_results_t *self);

/* The cases in stream order; *COUNT gets their number. */
const rr_result_case_t *rr_results_cases(const rr_results_t *self, size_t *count);

/* Cases with VALUE ("pass", "fail", "skip"). */
size_t rr_results_count(const rr_results_t *self, const char *value);

/* The console tail since the last case (for a job that did not complete). */
const char *rr_results_open_tail(const rr_results_t *self, size_t *len);

/* The failing action of the stream ("boot"), NULL when none failed. */
const char *rr_results_failed_action(const rr_results_t *self);

/* DATA as text fit for XML and JSON, malloc'd (NULL on ENOMEM): valid
 * UTF-8 (a byte that is not becomes U+FFFD), terminal escape sequences,
 * carriage returns and other control characters but tab and newline removed. */
char *rr_results_clean_text(const char *data, size_t len);

/* Write the report as JUnit XML (Jenkins/Surefire dialect, UTF-8) to OUT. 0 or -1. */
int rr_results_write_junit(const rr_results_t *self, FILE *out);

#endif
