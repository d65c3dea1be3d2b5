/* connection.h: the CLI's DEALER connection to the master's client endpoint
 * (CURVE client unless --insecure): request/reply with a timeout, and
 * errors that name the endpoint ("master tcp://127.0.0.1:5556: no answer
 * within 5 s").
 *
 * Every function returning int returns 0 or a RR_EXIT_* code, and has
 * printed the one error line already. */
#ifndef RACKRUN_CLI_CONNECTION_H
#define RACKRUN_CLI_CONNECTION_H

#include <stdint.h>

#include "cli.h"
#include "proto.h"

typedef struct _rr_connection_t rr_connection_t;

/* Connect to OPTS->master (loading the CURVE certs unless OPTS->insecure) into *OUT. */
int rr_connection_open(const rr_cli_opts_t *opts, rr_connection_t **out);

/* Read the job id TEXT (a command's argument) into *JOB, then rr_connection_open:
 * 0, or the exit code with the error printed. */
int rr_connection_open_for_job(const rr_cli_opts_t *opts, const char *text, uint64_t *job,
                               rr_connection_t **out);

/* Close the connection and NULL *SELF. */
void rr_connection_destroy(rr_connection_t **self);

/* The master endpoint, for messages. */
const char *rr_connection_endpoint(const rr_connection_t *self);

/* Send MSG (refused before sending when over PROTO_MAX_MSG). */
int rr_connection_send(rr_connection_t *self, const proto_msg_t *msg);

/* Wait up to TIMEOUT_MS for a message to be ready, silently: 1 ready,
 * 0 timed out, RR_EXIT_INTERRUPTED on SIGINT. */
int rr_connection_wait(rr_connection_t *self, uint32_t timeout_ms);

/* As rr_connection_wait, also waking when FD is readable (or hung up):
 * 1 a message is ready, 2 FD is readable, 0 timed out, RR_EXIT_INTERRUPTED. */
int rr_connection_wait_fd(rr_connection_t *self, int fd, uint32_t timeout_ms);

/* The request timeout (--timeout). */
uint32_t rr_connection_timeout(const rr_connection_t *self);

/* Wait up to TIMEOUT_MS for one message into MSG (free it with proto_msg_free).
 * RR_EXIT_INTERRUPTED on SIGINT. */
int rr_connection_recv(rr_connection_t *self, proto_msg_t *msg, uint32_t timeout_ms);

/* Send REQUEST and wait (the --timeout) for a reply of type WANT into REPLY.
 * An ERROR reply is printed ("master: not_found: no job 42") and gives
 * RR_EXIT_FAILED; any other type is a protocol error (RR_EXIT_MASTER). */
int rr_connection_request(rr_connection_t *self, const proto_msg_t *request,
                          proto_type_t want, proto_msg_t *reply);

/* Open, request, close: one round trip for the simple commands. */
int rr_connection_call(const rr_cli_opts_t *opts, const proto_msg_t *request,
                       proto_type_t want, proto_msg_t *reply);

/* Print an ERROR reply as one line: "master: CODE: TEXT". */
void rr_connection_print_error(const proto_msg_t *error);

#endif
