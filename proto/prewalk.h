/* prewalk.h: proto-private bounds check of raw msgpack bytes (see prewalk.c). */
#ifndef RACKRUN_PROTO_PREWALK_H
#define RACKRUN_PROTO_PREWALK_H

#include "proto.h"

/* Check that BUF holds exactly one msgpack object whose every declared
 * length/count fits the bytes left and PROTO_MAX_ITEMS, nested at most
 * PROTO_MAX_DEPTH deep. Returns PROTO_OK or the status, with ERR->text. */
proto_status_t proto_prewalk(const uint8_t *buf, size_t len, proto_error_t *err);

#endif
