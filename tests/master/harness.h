/* harness.h: run a real rr_master in-process (a zactor) with a scratch
 * directory and database, and talk to it as workers and clients do: DEALER
 * sockets speaking proto_send/proto_recv. */
#ifndef RR_TEST_MASTER_HARNESS_H
#define RR_TEST_MASTER_HARNESS_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "proto.h"

typedef struct {
    char dir[256];                  /* scratch directory, removed by harness_destroy */
    rr_master_config_t *config;     /* defaults + db in dir, 100 ms beat, 500 ms timeout */
    zactor_t *master;
    char worker_ep[256];
    char client_ep[256];
    char start_error[512];          /* why harness_start failed */
    zcert_t *master_cert;           /* harness_curve: the master's CURVE key pair */
    zsock_t *peers[8];              /* harness_peer's sockets, closed by harness_destroy */
} harness_t;

/* A scratch directory and a test configuration (master not started). */
harness_t *harness_new(void);

/* Start the master on ephemeral ports. 0, or -1 with start_error filled. */
int harness_start(harness_t *h);

/* Stop the master (no-op when not running). */
void harness_stop(harness_t *h);

/* Stop, remove the scratch directory, free, NULL *H_P. */
void harness_destroy(harness_t **h_p);

/* Replace the string *FIELD with a copy of VALUE (for config fields). */
void harness_set(char **field, const char *value);

/* Path of NAME in the scratch directory (static buffer, one of 4 slots). */
const char *harness_path(harness_t *h, int slot, const char *name);

/* CURVE on both endpoints: a new master key pair saved as "master" (secret
 * 0600) and empty allow-list directories "workers" and "clients", all set in
 * the configuration. 0 or -1. */
int harness_curve(harness_t *h);

/* A CURVE DEALER with CERT on ENDPOINT that trusts the master of harness_curve;
 * the harness closes it (harness_destroy). NULL when it fails or 8 are open. */
zsock_t *harness_peer(harness_t *h, const char *endpoint, zcert_t *cert);

/* Run the shell COMMAND; what it writes to stdout (at most LEN - 1 bytes) in OUT.
 * Its exit status, or -1 when it could not run or died of a signal. */
int harness_shell(const char *command, char *out, size_t len);

/* A DEALER connected to ENDPOINT; CURVE client when CERT (with SERVER_KEY z85). */
zsock_t *peer_new(const char *endpoint, zcert_t *cert, const char *server_key);

/* Send MSG (borrowed strings); 0 or -1. */
int peer_send(zsock_t *sock, const proto_msg_t *msg);

/* Send HELLO as worker NAME with one idle highbank device "hb-01"; 0 or -1. */
int peer_send_hello(zsock_t *sock, const char *name);

/* Receive one message within TIMEOUT_MS: 0, or -1 on timeout / bad message. */
int peer_recv(zsock_t *sock, int timeout_ms, proto_msg_t *msg);

/* Receive until a message of TYPE arrives (others are dropped) within TIMEOUT_MS. */
int peer_expect(zsock_t *sock, proto_type_t type, int timeout_ms, proto_msg_t *msg);

#endif
