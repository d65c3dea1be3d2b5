/* device.h: one device's actor (a czmq zactor: a thread and an inproc pipe).
 *
 * The actor owns the node's rr_ipmi_t, its SOL console and the job running on
 * it. The console is opened on demand: for a job (before the node is powered
 * on), for a follower, for an operator's input; closed a few seconds after its
 * last user left. Opened once as a probe when the actor starts: the device is
 * offline while that fails (retried with bounded backoff), idle once it
 * worked. A slow BMC blocks only this thread, never the worker's main loop.
 *
 * Commands, main loop -> actor (use the functions below):
 *   "START" job(8) jobdef(msgpack)  run a job (the main loop checked the device is free)
 *   "CANCEL" job(8)                 stop the job within bounded time, power off, end canceled
 *   "MAINT" on(int)                 maintenance on/off
 *   "FOLLOW" on(int)                a client follows the console: pass every byte up
 *   "INPUT" bytes                   type into the console (only in maintenance, no job)
 *   "STOP"                          the worker stops: end the job incomplete
 * Messages, actor -> main loop (read with rr_device_recv):
 *   "EVENT" job(8) event(msgpack JOB_EVENT with seq 0)
 *   "STATE" state reason            idle | running | offline | maintenance
 *   "DONE" job(8)                   the runner returned; the device is free again
 *   "CONSOLE" bytes                 console bytes read (idle or in a job) while following */
#ifndef RACKRUN_DEVICE_H
#define RACKRUN_DEVICE_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "proto.h"

/* Start the actor of DEVICE (borrowed: must outlive the actor). */
zactor_t *rr_device_new(const rr_device_config_t *device, const char *tftp_root);

/* Stop the actor (a running job ends incomplete "worker stopping"); NULLs *SELF. */
void rr_device_destroy(zactor_t **self);

/* Ask the actor to run JOB. Returns 0, or -1 when DEF cannot be encoded. */
int rr_device_start_job(zactor_t *self, uint64_t job, const proto_jobdef_t *def);

/* Ask the actor to cancel JOB. */
void rr_device_cancel(zactor_t *self, uint64_t job);

/* Stop JOB (if it runs) as incomplete with REASON (e.g. its spool quota was exceeded). */
void rr_device_abort(zactor_t *self, uint64_t job, const char *reason);

/* Switch maintenance on or off. */
void rr_device_maintenance(zactor_t *self, bool on);

/* Pass every console byte up as RR_DEVICE_MSG_CONSOLE (on) or stop. */
void rr_device_console_follow(zactor_t *self, bool on);

/* Type DATA into the console, paced by test_shell_delay_ms, when the device
 * is in maintenance and runs no job (else dropped with a warning). */
void rr_device_console_input(zactor_t *self, const void *data, size_t len);

typedef enum { RR_DEVICE_MSG_NONE = 0, RR_DEVICE_MSG_EVENT, RR_DEVICE_MSG_STATE,
               RR_DEVICE_MSG_DONE, RR_DEVICE_MSG_CONSOLE } rr_device_msg_kind_t;

/* One message from an actor. */
typedef struct {
    rr_device_msg_kind_t kind;
    uint64_t job;
    uint8_t *data;      /* EVENT: encoded JOB_EVENT (seq 0); CONSOLE: bytes; malloc'd */
    size_t len;
    char *state;        /* STATE */
    char *reason;       /* STATE, may be "" */
} rr_device_msg_t;

/* Receive one message from the actor (blocking; poll first). 0, or -1. */
int rr_device_recv(zactor_t *self, rr_device_msg_t *msg);

/* Free what MSG holds and zero it. */
void rr_device_msg_free(rr_device_msg_t *msg);

#endif
