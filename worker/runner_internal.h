/* runner_internal.h: what the runner's files share (runner.c: the job and its
 * actions; runner_console.c: its console and event stream). Not a contract for
 * anyone else: runner.h is. */
#ifndef RACKRUN_RUNNER_INTERNAL_H
#define RACKRUN_RUNNER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mask.h"
#include "runner.h"
#include "scanner.h"

#define CAPTURE_MAX              8192   /* console tail kept for rr_runner_shell_run */

typedef enum { RUN_OK = 0, RUN_FAIL, RUN_STOP } run_status_t;
typedef enum { W_OK = 0, W_TIMEOUT, W_STOP, W_LOST } wait_status_t;

typedef struct rr_runner_shell {
    const rr_runner_ctx_t *ctx;
    rr_scanner_t *scan;
    rr_mask_t *mask;             /* the job's secrets, masked in every event (mask.h) */
    bool capturing;              /* rr_runner_shell_run: keep the console's tail */
    size_t capture_len;
    char capture[CAPTURE_MAX];
    char *log;                   /* PROTO_LOG_CHUNK bytes, malloc'd: touched only as used */
    size_t log_len;
    uint64_t log_since;          /* mono ms of the oldest byte buffered */
    uint64_t job_deadline;       /* mono ms */
    uint64_t action_deadline;    /* mono ms: a lost SOL is reopened until then */
    uint64_t last_rx_wall;       /* wall ms of the last console byte: where a gap starts */
    uint64_t last_rx_mono;       /* mono ms of the last console byte */
    uint32_t quiet_ms;           /* rr_runner_console_expect: gives up after this silence */
    uint64_t quiet_start;        /* mono ms that expect began */
    uint64_t started_wall;       /* wall ms of the job's start (the console was up then) */
    uint64_t expect_by;          /* mono ms by which output is due (power on, echo), 0 = none */
    uint64_t rx_bytes;           /* console bytes received in this job */
    uint64_t echo_due;           /* rx_bytes that make the due output arrived */
    unsigned silences;           /* times due output did not come in this job */
    unsigned gaps;               /* console_gap events emitted in this job */
    bool booting;                /* between power on and the prompt */
    const char *stop_reason;
    char reason[1024];           /* why the job cannot complete */
} runner_t;

/* runner_console_wait's condition: true when what it waits for came. */
typedef bool (done_fn)(const runner_t *r);

/* Out with EV (job and ts filled), every string in it masked. */
void runner_emit(runner_t *r, proto_job_event_t *ev);
/* Emit the buffered console bytes as one `log` event. */
void runner_log_flush(runner_t *r);
/* `action` event: KIND start/end/fail with REASON and the duration. */
void runner_emit_action(runner_t *r, const char *kind, const char *value, const char *reason,
                        int64_t duration_ms);
/* `result` event, after the output that produced it. */
void runner_emit_result(runner_t *r, const char *name, const char *value, int64_t code,
                        const char *reason, const char *measurement, const char *units);
/* The scanner found an RR_RESULT line (rr_scan_result_fn). */
void runner_on_result_line(void *arg, const rr_scan_result_t *res);
/* Console bytes (already masked) into the log buffer (rr_mask_sink_fn). */
void runner_log_append(void *arg, const char *data, size_t len);
/* "host:port" of the device's BMC, for reasons. */
const char *runner_bmc_name(const runner_t *r);
/* Polls STOP; true (stop_reason set) once the job must stop. */
bool runner_stop_requested(runner_t *r);
/* SOL is down (CAUSE): reopen with bounded backoff, record a console_gap.
 * 0, or -1 with r->reason set. */
int runner_console_recover(runner_t *r, const char *cause);
/* How long due output may take before the console counts as silent. */
uint32_t runner_silent_ms(const runner_t *r);
/* Read what is waiting into the log. 0, or -1 when the session was lost. */
int runner_console_drain(runner_t *r);
/* Read the console until DONE, DEADLINE (mono ms) or STOP, recovering a lost
 * or silent session on the way. */
wait_status_t runner_console_wait(runner_t *r, done_fn *done, uint64_t deadline);
/* Type TEXT at DELAY_MS per character, output meanwhile to the log; -1 when
 * the session was lost (r->reason) or the job stopped. */
int runner_type_paced(runner_t *r, const char *text, uint32_t delay_ms);
/* runner_type_paced, then output (the echo) is due. */
int runner_console_type(runner_t *r, const char *text, uint32_t delay_ms);

#endif
