/* worker.h: the rackrun worker's main loop.
 *
 * One zloop owns the master link (DEALER, CURVE unless insecure), the job
 * spools and the device actors' pipes; it never blocks on a device or on the
 * master. It says HELLO (again on a new master epoch, on ERROR hello_required
 * and when the master falls silent), beats at the interval WELCOME gives,
 * turns JOB_START / JOB_CANCEL / DEVICE_SET into actor commands (and ACKs
 * them), and moves each job's events actor -> spool (fdatasync per batch) ->
 * master, at most RR_WORKER_WINDOW unacked per job; what does not fit, or
 * meets a full send queue (EAGAIN), stays spooled and goes later. EVENT_ACK
 * drops events; WELCOME makes it resend what the master lacks. */
#ifndef RACKRUN_WORKER_H
#define RACKRUN_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define RR_WORKER_WINDOW     64u     /* unacked events in flight per job */
#define RR_WORKER_RESEND_MS  5000u   /* no ack progress this long: resend from the last ack */
#define RR_WORKER_TICK_MS    100u

typedef struct _rr_worker_t rr_worker_t;

/* New worker for CONFIG (borrowed; must outlive it): loads the certificates,
 * reloads the spools, starts one actor per device and connects. INSECURE
 * allows plaintext. NULL with ERR filled on failure. */
rr_worker_t *rr_worker_new(const rr_worker_config_t *config, bool insecure, char *err,
                           size_t errlen);

/* Run until interrupted (SIGINT/SIGTERM) or rr_worker_stop; running jobs end
 * incomplete "worker stopping" and their last events are spooled. Returns 0. */
int rr_worker_run(rr_worker_t *self);

/* Ask a running worker to stop (thread-safe: sets a flag the loop polls). */
void rr_worker_stop(rr_worker_t *self);

/* Stop the actors, close the spools (kept on disk) and free; NULLs *SELF. */
void rr_worker_destroy(rr_worker_t **self);

#endif
