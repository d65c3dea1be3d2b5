/* runner.h: runs one job's actions on one device, in its device actor's thread.
 *
 * The runner produces the job's whole event stream through EMIT (seq is left
 * 0: the worker's main loop numbers and spools events): `state running`, per
 * action `action start` then `action end` or `action fail` with a reason,
 * every console byte as `log` events (exact, chunked to at most
 * PROTO_LOG_CHUNK, flushed at least every RR_RUNNER_FLUSH_MS), one `result`
 * per test step and per RR_RESULT line, `console_gap` when SOL was lost and
 * reopened, and finally `end` complete | incomplete | canceled.
 *
 * A failing test step is a test result, not a failed job: the job completes.
 * A job is incomplete when an action cannot do its work (download failed,
 * BMC unreachable, no prompt in time, a step that never ends, SOL lost beyond
 * its bounded reconnects); the reason names the action and the BMC.
 * STOP is polled at least every RR_RUNNER_FLUSH_MS: a cancel is honoured in
 * bounded time; the node is always powered off and its pxelinux config
 * removed at the end. */
#ifndef RACKRUN_RUNNER_H
#define RACKRUN_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "ipmi.h"
#include "proto.h"
#include "sol.h"

#define RR_RUNNER_FLUSH_MS 100u

/* Receives one event (borrowed for the call; job and ts are filled, seq 0). */
typedef void (rr_runner_emit_fn)(void *arg, const proto_job_event_t *event);

/* Polled often; returns NULL to go on, or why to stop ("canceled", "worker stopping"). */
typedef const char *(rr_runner_stop_fn)(void *arg);

/* Reopen the device's SOL after a loss into *SOL (closing the old one).
 * Returns 0, or -1 with the reason (naming the BMC) in ERR. */
typedef int (rr_runner_reopen_fn)(void *arg, rr_sol_t **sol, char *err, size_t errlen);

typedef struct {
    uint64_t job;
    const proto_jobdef_t *def;
    const rr_device_config_t *device;
    const char *tftp_root;
    rr_ipmi_t *ipmi;
    rr_sol_t **sol;              /* the device's console; may be NULL (down) or replaced */
    rr_runner_emit_fn *emit;
    rr_runner_reopen_fn *reopen;
    rr_runner_stop_fn *stop;
    void *arg;                   /* passed to emit, reopen and stop */
} rr_runner_ctx_t;

/* Run the job to its end; returns after the `end` event was emitted. */
void rr_runner_run(const rr_runner_ctx_t *ctx);

/* ---- the node's shell, for actions implemented beside the runner (disk.c, transfer.c) ---- */

/* The running job as an action sees it (its console, events and stop flag). */
typedef struct rr_runner_shell rr_runner_shell_t;

/* Type CMD into the node's shell the way a test step is typed and wait at most
 * TIMEOUT_S for its end marker. Console bytes still go to the job log. Returns 0
 * with the exit status in *CODE and the last OUTLEN-1 bytes printed meanwhile
 * (typed echo included) in OUT; -1 with why in ERR (no end marker in time, console
 * lost, job stopped: check rr_runner_stopped). */
int rr_runner_shell_run(rr_runner_shell_t *sh, const char *cmd, uint32_t timeout_s, int *code,
                        char *out, size_t outlen, char *err, size_t errlen);

/* Emit EV (kind and its fields set by the caller) into the job's event stream. */
void rr_runner_shell_event(rr_runner_shell_t *sh, proto_job_event_t *ev);

/* True once the job is to stop (canceled, worker stopping); an rr_abort_fn. */
bool rr_runner_stopped(void *sh);

#endif
