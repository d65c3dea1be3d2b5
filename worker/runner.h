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

/* rr_runner_console_expect's outcomes besides a needle's index (>= 0). */
#define RR_CONSOLE_TIMEOUT (-1)  /* no needle within the time given (or the job's deadline) */
#define RR_CONSOLE_QUIET   (-2)  /* no needle, and nothing printed for QUIET_MS */
#define RR_CONSOLE_FAILED  (-3)  /* console lost beyond its reconnects, or the job stopped */

/* Wait for any of NEEDLES in the console output read since the last
 * rr_runner_console_type (what came while it paced the last characters) or
 * from now on, at most
 * TIMEOUT_MS, or until nothing was printed for QUIET_MS (0: no such limit).
 * Bytes still go to the job log. OUT gets the last OUTLEN-1 bytes printed since
 * the last rr_runner_console_type (or since this call, if none came between);
 * ERR why on RR_CONSOLE_FAILED. Returns the needle's index or RR_CONSOLE_*. */
int rr_runner_console_expect(rr_runner_shell_t *sh, const char *const *needles, size_t count,
                             uint32_t timeout_ms, uint32_t quiet_ms, char *out, size_t outlen,
                             char *err, size_t errlen);

/* Type TEXT paced by DELAY_MS per character, for a bootloader, DELAY_MS also
 * before the first one (reading the console meanwhile): unlike a shell step, no
 * echo is required (a bootloader may drop characters; what it shows is
 * for the caller to judge). Returns 0, or -1 with why in ERR (lost, stopped). */
int rr_runner_console_type(rr_runner_shell_t *sh, const char *text, uint32_t delay_ms,
                           char *err, size_t errlen);

/* Emit EV (kind and its fields set by the caller) into the job's event stream. */
void rr_runner_shell_event(rr_runner_shell_t *sh, proto_job_event_t *ev);

/* True once the job is to stop (canceled, worker stopping); an rr_abort_fn. */
bool rr_runner_stopped(void *sh);

#endif
