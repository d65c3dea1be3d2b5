/* verify.h: checks a job's stored event stream (read from the master's
 * database) against what its node really printed (the rig's console.out
 * capture), and counts what was lost or duplicated, from the data.
 *
 * The stream must be seq 1..N without a hole, have at most one `end` event
 * and nothing after it (a job the master ended, e.g. "worker lost", has
 * none: the caller checks `ended` against the job's record), and hold each result name at most once (exactly once for the names
 * in EXPECT_RESULTS when the job completed). Its log bytes are aligned with
 * the capture chunk by chunk, from CURSOR (where the node's previous job
 * stopped): each chunk must be found after the previous one; bytes the
 * capture holds between two chunks are lost unless a console_gap event lies
 * between them; a chunk found only before the cursor is a duplicate; a chunk
 * found nowhere is lost (altered). */
#ifndef RR_TEST_VERIFY_H
#define RR_TEST_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

typedef struct {
    uint64_t events;            /* events stored */
    uint64_t lost_events;       /* seq holes, missing end, missing results, unaligned chunks */
    uint64_t duplicated;        /* repeated seq, results, end; log chunks seen twice */
    uint64_t lost_bytes;        /* capture bytes missing from the log outside any gap */
    uint64_t log_bytes;         /* bytes of the stored log */
    uint64_t gaps;              /* console_gap events */
    uint64_t silent_gaps;       /* of which the console was up but silent */
    uint64_t first_ts, last_ts; /* wall ms of the first and last event */
    bool ended;
    char outcome[32];
    char reason[512];
    char problem[512];          /* first thing found wrong, "" when none */
} verdict_t;

/* Check EVENTS (seq order) of JOB against CAPTURE[0..LEN) from *CURSOR (moved
 * past the job's last aligned byte). EXPECT_RESULTS: NULL-terminated names. */
void verify_job(uint64_t job, const proto_job_event_t *events, size_t count,
                const char *capture, size_t len, size_t *cursor,
                const char *const *expect_results, verdict_t *out);

/* Number of console_gap events in EVENTS. */
size_t verify_gaps(const proto_job_event_t *events, size_t count);

#endif
