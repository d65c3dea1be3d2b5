/* transport.c: rackrun messages over ZMQ (czmq): one msgpack frame per message,
 * after the identity frame on a ROUTER.
 *
 * Sends never block: a peer whose queue is full makes proto_send fail with
 * EAGAIN and the caller keeps its data (the worker spools events; the master
 * re-sends on the next beat). On a ROUTER that needs ZMQ_ROUTER_MANDATORY,
 * else ZMQ drops the message silently; the cost is that a send to a peer that
 * is gone fails with EHOSTUNREACH, which callers treat like any failed send.
 */
#include "proto.h"

#include <czmq.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void proto_socket_setup(zsock_t *sock)
{
    zsock_set_maxmsgsize(sock, (int)PROTO_ZMQ_MAXMSGSIZE);
    zsock_set_linger(sock, 0);
    zsock_set_sndtimeo(sock, 0);
    if (zsock_type(sock) == ZMQ_ROUTER)
        zsock_set_router_mandatory(sock, 1);
}

int proto_send(zsock_t *sock, zframe_t *routing_id, const proto_msg_t *msg, proto_error_t *err)
{
    uint8_t *buf;
    size_t len;
    int rc = 0, saved_errno;
    if (proto_encode(msg, &buf, &len, err) != 0) {
        errno = EINVAL;                 /* not EAGAIN: retrying cannot help */
        return -1;
    }
    zframe_t *body = zframe_new(buf, len);
    free(buf);
    if (!body) {
        errno = ENOMEM;
        return -1;
    }
    /* ZMQ queues a multipart message whole: once the first frame is accepted
     * the second cannot hit the high-water mark. */
    if (routing_id)
        rc = zframe_send(&routing_id, sock, ZFRAME_MORE | ZFRAME_REUSE | ZFRAME_DONTWAIT);
    if (rc == 0)
        rc = zframe_send(&body, sock, ZFRAME_DONTWAIT);
    saved_errno = errno;
    zframe_destroy(&body);              /* still ours when a send failed */
    errno = saved_errno;
    return rc == 0 ? 0 : -1;
}

static int frame_error(proto_error_t *err, proto_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int frame_error(proto_error_t *err, proto_status_t status, const char *fmt, ...)
{
    va_list ap;
    err->status = status;
    err->key[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
    return -1;
}

/* The last received message's metadata, per thread (proto_recv_meta). */
static _Thread_local char s_user_id[128];
static _Thread_local char s_peer_address[64];
static _Thread_local bool s_have_user_id, s_have_peer_address;

static void keep_meta(zframe_t *frame)
{
    const char *user_id = frame ? zframe_meta(frame, "User-Id") : NULL;
    const char *address = frame ? zframe_meta(frame, "Peer-Address") : NULL;
    s_have_user_id = user_id != NULL;
    s_have_peer_address = address != NULL;
    snprintf(s_user_id, sizeof s_user_id, "%s", user_id ? user_id : "");
    snprintf(s_peer_address, sizeof s_peer_address, "%s", address ? address : "");
}

const char *proto_recv_meta(const char *property)
{
    if (strcmp(property, "User-Id") == 0)
        return s_have_user_id ? s_user_id : NULL;
    if (strcmp(property, "Peer-Address") == 0)
        return s_have_peer_address ? s_peer_address : NULL;
    return NULL;
}

int proto_recv(zsock_t *sock, zframe_t **routing_id, proto_msg_t *msg, proto_error_t *err)
{
    proto_error_t scratch;
    int rc;
    err = err ? err : &scratch;
    memset(msg, 0, sizeof *msg);
    memset(err, 0, sizeof *err);
    if (routing_id)
        *routing_id = NULL;
    zmsg_t *frames = zmsg_recv(sock);
    if (!frames)
        return -2;
    if (routing_id)
        *routing_id = zmsg_pop(frames);
    zframe_t *body = zmsg_first(frames);
    keep_meta(body);
    if (zmsg_size(frames) != 1)
        rc = frame_error(err, PROTO_E_MALFORMED, "message: %zu frames, expected 1",
                         zmsg_size(frames));
    else if (zframe_size(body) > PROTO_MAX_MSG)
        rc = frame_error(err, PROTO_E_TOO_BIG, "message: frame of %zu bytes > limit %u",
                         zframe_size(body), PROTO_MAX_MSG);
    else
        rc = proto_decode(zframe_data(body), zframe_size(body), msg, err);
    zmsg_destroy(&frames);
    return rc;
}
