/* outbox.h: messages held back until the transaction that justifies them
 * commits.
 *
 * The master drains the worker socket inside one store transaction (the
 * events batch and the scheduling pass that follows it share it). What it
 * answers meanwhile (EVENT_ACK, JOB_START, WELCOME...) must not leave before
 * that commit: an ack would cover an event a crash could still lose, a
 * JOB_START would name a job not yet durably scheduled. rr_master_send puts
 * such messages here; the drain sends them, in order, after the commit, or
 * drops them when it rolled back.
 */
#ifndef RACKRUN_MASTER_OUTBOX_H
#define RACKRUN_MASTER_OUTBOX_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto.h"

typedef struct _rr_outbox_t rr_outbox_t;

/* A message the outbox could not send: SOCK, the peer's RID, its type, errno. */
typedef void (rr_outbox_fail_fn)(void *arg, zsock_t *sock, zframe_t *rid,
                                 proto_type_t type, int error);

/* An empty, closed outbox (messages go out at once while it is closed). */
rr_outbox_t *rr_outbox_new(void);

/* Destroy the outbox (dropping what it holds) and NULL *SELF_P. */
void rr_outbox_destroy(rr_outbox_t **self_p);

/* Open: from now on rr_outbox_add holds messages back. */
void rr_outbox_open(rr_outbox_t *self);

/* True while open. */
bool rr_outbox_is_open(const rr_outbox_t *self);

/* Encode MSG for RID (copied; NULL on a DEALER) on SOCK and hold it. 0, or
 * -1 with ERR filled (not encodable, out of memory). */
int rr_outbox_add(rr_outbox_t *self, zsock_t *sock, zframe_t *rid, const proto_msg_t *msg,
                  proto_error_t *err);

/* Send everything held, in order (never blocks; FAIL is told of each that
 * could not go), and close. */
void rr_outbox_send(rr_outbox_t *self, rr_outbox_fail_fn *fail, void *arg);

/* Drop everything held (its transaction rolled back) and close. */
void rr_outbox_drop(rr_outbox_t *self);

/* Messages held now. */
size_t rr_outbox_size(const rr_outbox_t *self);

#endif
