/* fleet.h: simulated workers and clients for the benchmarks.
 *
 * A simulated worker is a DEALER socket that speaks the real protocol
 * (proto_send/proto_recv, the same structs as rackrun-worker) without device
 * actors behind it, so one thread can drive hundreds of them and the master
 * under test sees exactly the traffic a fleet of racks would send. The
 * master itself runs in-process through the test harness (tests/master/
 * harness.h) or as the real binary (fleet_master_spawn). */
#ifndef RACKRUN_BENCH_FLEET_H
#define RACKRUN_BENCH_FLEET_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

/* Send MSG on SOCK, waiting (at most 5 s) while the queue is full. 0 or -1. */
int fleet_send(zsock_t *sock, const proto_msg_t *msg);

/* Send HELLO for WORKER with its DEVICES (borrowed). 0 or -1. */
int fleet_hello(zsock_t *sock, const char *worker, proto_device_t *devices, size_t count);

/* Receive one message if one is waiting within TIMEOUT_MS: 1, 0 (none), -1 (bad). */
int fleet_recv(zsock_t *sock, int timeout_ms, proto_msg_t *msg);

/* Send a JOB_EVENT: KIND, NAME/VALUE (may be NULL), DATA of LEN bytes (may be NULL). */
int fleet_event(zsock_t *sock, uint64_t job, uint64_t seq, const char *kind, const char *name,
                const char *value, const uint8_t *data, size_t len);

/* A job definition's YAML (malloc'd) for DEVICE_TYPE with TAGS (comma list or "")
 * and PRIORITY; its one test step never runs on a simulated worker. */
char *fleet_job_yaml(const char *name, const char *device_type, const char *tags,
                     unsigned priority);

/* Submit YAML on CLIENT and wait for SUBMITTED (job id into *JOB). 0 or -1 (reason on stderr). */
int fleet_submit(zsock_t *client, const char *yaml, uint64_t *job);

/* Wait for every sock in SOCKS to receive a message of TYPE (others dropped). 0 or -1. */
int fleet_expect_all(zsock_t **socks, size_t count, proto_type_t type, int timeout_ms);

/* ---- the real master binary, as a separate process ---- */

typedef struct {
    pid_t pid;
    char dir[256];              /* scratch dir: db, config, certs, log */
    char worker_ep[128];
    char client_ep[128];
    char public_key[64];        /* z85 of the master's public key ("" when insecure) */
    bool curve;
} fleet_master_t;

/* A scratch dir with the master's config (and, when CURVE, its cert and
 * empty allow-lists workers.d/ and clients.d/ to fill before starting it),
 * beating at INTERVAL_MS with TIMEOUT_MS. 0 or -1. */
int fleet_master_init(fleet_master_t *master, bool curve, uint32_t interval_ms,
                      uint32_t timeout_ms);

/* Start RR_MASTER_BIN on that dir; waits until it logs its endpoints. 0 or -1. */
int fleet_master_start(fleet_master_t *master);

/* SIGTERM the master, wait for it (SIGKILL after 10 s), remove its dir. */
void fleet_master_stop(fleet_master_t *master);

#endif
