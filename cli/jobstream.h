/* jobstream.h: a job's event stream as the CLI shows it (logs, submit --wait,
 * show): log bytes go out raw as they come, structured events as readable
 * lines (or JSON lines with --json), and the stream keeps what the closing
 * summary needs: the outcome, each action's end and each test result.
 *
 * Events are fed in seq order; one at or below the last seq seen is a
 * duplicate (a re-sent stream) and is dropped, so nothing prints twice. */
#ifndef RACKRUN_CLI_JOBSTREAM_H
#define RACKRUN_CLI_JOBSTREAM_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "proto.h"

typedef struct _rr_jobstream_t rr_jobstream_t;

/* A stream printing to OUT (NULL: record only), as JSON lines when JSON. */
rr_jobstream_t *rr_jobstream_new(FILE *out, bool json);

/* Destroy the stream and NULL *SELF. */
void rr_jobstream_destroy(rr_jobstream_t **self);

/* Show and record one event. Returns 0, or -1 on ENOMEM. */
int rr_jobstream_feed(rr_jobstream_t *self, const proto_job_event_t *ev);

/* The highest seq fed so far (0 = none). */
uint64_t rr_jobstream_last_seq(const rr_jobstream_t *self);

/* The outcome of the "end" event (complete | incomplete | canceled), NULL before it. */
const char *rr_jobstream_outcome(const rr_jobstream_t *self);

/* Print the summary: outcome line, then rr_jobstream_print_tables. */
void rr_jobstream_print_summary(const rr_jobstream_t *self, uint64_t job, FILE *out);

/* Print the table of finished actions and the one of test results. */
void rr_jobstream_print_tables(const rr_jobstream_t *self, FILE *out);

/* The summary as JSON: {"outcome", "reason", "actions": [...], "results": [...]}. */
json_t *rr_jobstream_summary_json(const rr_jobstream_t *self);

/* The closing report of JOB on OUT: the summary as a table, or with JSON its
 * object plus "job". True when the job completed (the exit status to give). */
bool rr_jobstream_report(const rr_jobstream_t *self, uint64_t job, bool json, FILE *out);

#endif
