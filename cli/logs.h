/* logs.h: fetching a job's event stream from the master (LOGS), used by
 * `rackrun logs`, `submit --wait` and `show`. */
#ifndef RACKRUN_CLI_LOGS_H
#define RACKRUN_CLI_LOGS_H

#include <stdbool.h>
#include <stdint.h>

#include "connection.h"
#include "jobstream.h"

/* Feed job JOB's events after STREAM's last seq into STREAM until LOGS_END;
 * with FOLLOW, until the job ends (after 3 request timeouts of silence the
 * master is asked about the job, and given up on if it does not answer). Returns 0 or a RR_EXIT_* code (printed). */
int rr_logs_fetch(rr_connection_t *conn, uint64_t job, bool follow, rr_jobstream_t *stream);

#endif
