/* daemon.h: the master daemon's shared state and its rooms, private to master/.
 *
 * rr_master_t (master.c) owns the zloop, both sockets and the store; the
 * rooms keep their own state and are called from its socket handlers and
 * its timer:
 *   workers.c   worker sessions: HELLO/WELCOME, HEARTBEAT, JOB_ACCEPT, ACK,
 *               lost detection and grace expiry
 *   dispatch.c  master -> worker commands re-sent until acknowledged
 *   events.c    JOB_EVENT batches: one transaction, then EVENT_ACK
 *   logs.c      LOGS cursors, including followers
 *   console.c   CONSOLE followers of a device's live console
 *   clients.c   client requests
 *   auth.c      the ZAP handler (auth.h)
 * Everything runs on the loop's thread: nothing here is locked.
 */
#ifndef RACKRUN_MASTER_DAEMON_H
#define RACKRUN_MASTER_DAEMON_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "artifact_hashes.h"
#include "auth.h"
#include "common.h"
#include "health.h"
#include "master.h"
#include "http.h"
#include "metrics.h"
#include "notify.h"
#include "outbox.h"
#include "proto.h"
#include "retention.h"
#include "sched_index.h"
#include "store.h"

typedef struct _rr_sessions_t rr_sessions_t;
typedef struct _rr_dispatch_t rr_dispatch_t;
typedef struct _rr_batch_t rr_batch_t;
typedef struct _rr_cursors_t rr_cursors_t;
typedef struct _rr_consoles_t rr_consoles_t;

struct _rr_master_t {
    const rr_master_config_t *config;   /* borrowed */
    rr_store_t *store;
    zloop_t *loop;
    zsock_t *worker_sock;               /* ROUTER, workers (DEALER) connect */
    zsock_t *client_sock;               /* ROUTER, clients (DEALER) connect */
    rr_auth_t *auth;                    /* NULL when insecure */
    uint64_t epoch;                     /* wall ms at start */
    uint32_t interval_ms;               /* heartbeat interval (config or default) */
    uint32_t timeout_ms;                /* heartbeat timeout: silent longer -> lost */
    uint64_t grace_ms;                  /* lost longer -> its jobs end "worker lost" */
    int tick_timer;
    rr_sessions_t *sessions;
    rr_dispatch_t *dispatch;
    rr_batch_t *batch;
    rr_cursors_t *cursors;
    rr_consoles_t *consoles;            /* console followers (console.c) */
    rr_outbox_t *outbox;                /* answers held for the worker drain's commit */
    rr_sched_index_t *sched_index;      /* queued jobs in memory (sched_index.h) */
    uint64_t worker_caught_up;          /* mono ms: a drain last read all the worker socket held */
    rr_metrics_t metrics;               /* counters for /metrics (metrics.h) */
    rr_http_t *http;                    /* JSON API, /metrics, dashboard; NULL = off */
    rr_notify_t *notify;                /* job notifications (notify.h) */
    rr_retention_t *retention;          /* log retention (retention.h); NULL = keep all */
    rr_health_t *health;                /* health-check jobs (health.h) */
    rr_artifact_hashes_t *artifact_hashes; /* uploads' running SHA-256s; made at the first chunk */
    char worker_endpoint[256];
    char client_endpoint[256];
};

/* ---- master.c: replies and shared actions ---- */

/* Short printable name of a peer's routing id (hex) into BUF; returns BUF. */
char *rr_peer_name(zframe_t *rid, char *buf, size_t len);

/* Send MSG to RID on SOCK; a failure is logged (never blocks). 0 or -1. */
int rr_master_send(rr_master_t *self, zsock_t *sock, zframe_t *rid, const proto_msg_t *msg);

/* Send ERROR (CODE, KEY may be NULL, JOB 0 = none) to RID on SOCK. */
int rr_master_send_error(rr_master_t *self, zsock_t *sock, zframe_t *rid, const char *code,
                         const char *key, uint64_t job, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Match queued jobs to idle devices and dispatch JOB_START for each pick. */
void rr_master_schedule(rr_master_t *self);

/* A job just finished (by its stream, a cancel, or grace expiry): forget its
 * commands and tell its log followers. The caller schedules. */
void rr_master_job_ended(rr_master_t *self, uint64_t job);

/* Finish an open job with OUTCOME/REASON now; logs and calls rr_master_job_ended. */
int rr_master_finish_job(rr_master_t *self, uint64_t job, const char *outcome, const char *reason);

/* A transaction rolled back after its JOB_STARTs were queued: forget what
 * memory holds that the store does not (starts of jobs not scheduled, job owners). */
void rr_master_store_rolled_back(rr_master_t *self);

/* ---- workers.c ---- */

rr_sessions_t *rr_sessions_new(void);
void rr_sessions_destroy(rr_sessions_t **self_p);

/* Start watching the workers the store says are online or lost (master restart). */
int rr_workers_restore(rr_master_t *self);

/* Handle one decoded message from the worker socket. */
void rr_workers_on_message(rr_master_t *self, zframe_t *rid, proto_msg_t *msg);

/* Timer: mark silent workers lost, end jobs of workers lost beyond the grace. */
void rr_workers_tick(rr_master_t *self, uint64_t now_mono);

/* Routing id of WORKER when it has a live session, else NULL (borrowed). */
zframe_t *rr_workers_route(rr_master_t *self, const char *worker);

/* JOB (scheduled, running or canceling) belongs to WORKER: its messages
 * about JOB are taken without asking the store. */
void rr_workers_own(rr_master_t *self, uint64_t job, const char *worker);

/* JOB ended or went back to the queue: ask the store again. */
void rr_workers_disown(rr_master_t *self, uint64_t job);

/* Forget every job owner (the store rolled back). */
void rr_workers_disown_all(rr_master_t *self);

/* ---- dispatch.c ---- */

typedef enum { RR_CMD_START, RR_CMD_CANCEL, RR_CMD_DEVSET, RR_CMD_CONSFOLLOW } rr_cmd_kind_t;

rr_dispatch_t *rr_dispatch_new(void);
void rr_dispatch_destroy(rr_dispatch_t **self_p);

/* Queue JOB_START of JOB on DEVICE of WORKER and send it now if possible. */
void rr_dispatch_start(rr_master_t *self, uint64_t job, const char *device, const char *worker);

/* Queue JOB_CANCEL of JOB (dropping an unsent JOB_START) and send it now if possible. */
void rr_dispatch_cancel(rr_master_t *self, uint64_t job, const char *worker);

/* Queue DEVICE_SET for DEVICE of WORKER (replacing an older one) and send it. */
void rr_dispatch_devset(rr_master_t *self, const char *device, const char *worker,
                        bool maintenance);

/* Queue CONSOLE_FOLLOW (ON) for DEVICE of WORKER (replacing an older one) and send it. */
void rr_dispatch_consfollow(rr_master_t *self, const char *device, const char *worker, bool on);

/* The worker acknowledged a command: drop it. True when one was pending. */
bool rr_dispatch_acked(rr_master_t *self, rr_cmd_kind_t kind, uint64_t job, const char *device);

/* Forget every command about JOB (it ended). */
void rr_dispatch_forget_job(rr_master_t *self, uint64_t job);

/* Drop the JOB_STARTs whose job the store does not hold scheduled on that
 * worker's device (after a rollback). */
void rr_dispatch_forget_unstored(rr_master_t *self);

/* Send the commands for WORKER (NULL = all) that are due; FORCE sends all of them now. */
void rr_dispatch_flush(rr_master_t *self, const char *worker, bool force, uint64_t now_mono);

/* ---- events.c ---- */

rr_batch_t *rr_batch_new(void);
void rr_batch_destroy(rr_batch_t **self_p);

/* Take EVENT (its members move into the batch) from RID; commits when full. */
void rr_events_add(rr_master_t *self, zframe_t *rid, proto_job_event_t *event);

/* Commit the pending batch in one transaction, then EVENT_ACK per job. */
void rr_events_commit(rr_master_t *self);

/* ---- logs.c ---- */

rr_cursors_t *rr_cursors_new(void);
void rr_cursors_destroy(rr_cursors_t **self_p);

/* Client LOGS: send stored events, then LOGS_END or keep following. */
void rr_logs_request(rr_master_t *self, zframe_t *rid, const proto_logs_t *req);

/* New events of JOB were stored (or it ended): feed its cursors and HTTP
 * waiters; while the drain's transaction is open (outbox open), at rr_logs_flush. */
void rr_logs_job_changed(rr_master_t *self, uint64_t job);

/* The drain's transaction ended (committed or not): feed what changed in it. */
void rr_logs_flush(rr_master_t *self);

/* Timer: retry cursors a full client queue held back, drop those of revoked client keys. */
void rr_logs_tick(rr_master_t *self);

/* ---- console.c ---- */

rr_consoles_t *rr_consoles_new(void);
void rr_consoles_destroy(rr_consoles_t **self_p);

/* Client CONSOLE: start (or keep alive) or stop following a device's console. */
void rr_console_request(rr_master_t *self, zframe_t *rid, const proto_console_t *req);

/* CONSOLE_DATA from WORKER: forward it to the device's followers. */
void rr_console_data(rr_master_t *self, const char *worker, const proto_console_data_t *data);

/* Client CONSOLE_INPUT: forward the bytes to the device's worker when the
 * device is in maintenance, answering OK or an ERROR that says why not. */
void rr_console_input(rr_master_t *self, zframe_t *rid, const proto_console_input_t *req);

/* WORKER said HELLO (it may have restarted): tell it again which consoles are followed. */
void rr_console_worker_hello(rr_master_t *self, const char *worker);

/* Timer: drop followers that stopped repeating their CONSOLE. */
void rr_console_tick(rr_master_t *self, uint64_t now_mono);

/* ---- health.c (health.h: the rules; this: running them) ---- */

/* Before a scheduling pass: start the health check of every idle device that
 * is due. -1 when that failed: then no normal job may be scheduled now. */
int rr_master_health_pass(rr_master_t *self);

/* JOB finished: when it is a health check, its verdict on its device. */
void rr_master_health_job_ended(rr_master_t *self, uint64_t job);

/* True when JOB is a health check (false on any doubt). */
bool rr_master_health_is_check(rr_master_t *self, uint64_t job);

/* Timer: when a rule counts hours, run the health pass once a minute. */
void rr_master_health_tick(rr_master_t *self, uint64_t now_mono);

/* ---- clients.c ---- */

/* Handle one decoded message from the client socket. */
void rr_clients_on_message(rr_master_t *self, zframe_t *rid, proto_msg_t *msg);

#endif
