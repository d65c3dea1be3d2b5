/* master.h: rackrun's master daemon as a class.
 *
 * One zloop owns everything: the worker endpoint (ROUTER, CURVE domain
 * "workers"), the client endpoint (ROUTER, domain "clients"), the ZAP
 * handler that checks both allow-lists, the store, and one timer ticking at
 * the heartbeat interval (lost workers, grace expiry, re-sending commands a
 * worker has not acknowledged). Scheduling is driven by events, never by the
 * timer. main.c is a thin shell over this class; tests and benchmarks run it
 * in-process, usually through rr_master_actor.
 */
#ifndef RACKRUN_MASTER_H
#define RACKRUN_MASTER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"

typedef struct _rr_master_t rr_master_t;
typedef struct _zsock_t zsock_t;

/* Open the store, bind both endpoints (":*" ports allowed), set up CURVE
 * (unless CONFIG has no secret_key: then insecure, with a warning). CONFIG is
 * borrowed and must outlive the master. NULL with ERR filled on failure. */
rr_master_t *rr_master_new(const rr_master_config_t *config, char *err, size_t errlen);

/* Destroy the master (closes sockets and store) and NULL *SELF_P. */
void rr_master_destroy(rr_master_t **self_p);

/* Run the event loop until interrupted (SIGINT/SIGTERM) or a handler stops it. */
int rr_master_run(rr_master_t *self);

/* Also stop the loop when PIPE receives "$TERM" (zactor protocol). */
int rr_master_attach_pipe(rr_master_t *self, zsock_t *pipe);

/* The endpoint the worker socket is bound to (the real port for ":*"). */
const char *rr_master_worker_endpoint(rr_master_t *self);

/* The endpoint the client socket is bound to. */
const char *rr_master_client_endpoint(rr_master_t *self);

/* The master epoch: wall-clock ms when it started. */
uint64_t rr_master_epoch(rr_master_t *self);

/* The daemon's counters (metrics.h); read them on the loop's thread only. */
const rr_metrics_t *rr_master_counters(rr_master_t *self);

/* zactor body: ARGS is a const rr_master_config_t *. After the start signal
 * it sends one message on the pipe: "OK" worker-endpoint client-endpoint,
 * or "ERROR" text; then it runs until "$TERM". */
void rr_master_actor(zsock_t *pipe, void *args);

#endif
