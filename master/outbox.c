/* outbox.c: messages held back until their transaction commits (outbox.h).
 *
 * Each held message is already encoded (the proto_msg_t it came from may
 * borrow strings that are gone by the commit) with a copy of its routing id.
 */
#include "outbox.h"
#include "grow.h"

#include <errno.h>
#include <stdlib.h>

typedef struct {
    zsock_t *sock;          /* borrowed: the master's ROUTERs outlive the outbox's use */
    zframe_t *rid;          /* owned copy, NULL on a DEALER */
    zframe_t *body;         /* owned, encoded */
    proto_type_t type;
} held_t;

struct _rr_outbox_t {
    held_t *items;
    size_t count, cap;
    bool open;
};

rr_outbox_t *rr_outbox_new(void)
{
    return calloc(1, sizeof(rr_outbox_t));
}

void rr_outbox_destroy(rr_outbox_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rr_outbox_drop(*self_p);
    free((*self_p)->items);
    free(*self_p);
    *self_p = NULL;
}

void rr_outbox_open(rr_outbox_t *self)
{
    self->open = true;
}

bool rr_outbox_is_open(const rr_outbox_t *self)
{
    return self && self->open;
}

size_t rr_outbox_size(const rr_outbox_t *self)
{
    return self->count;
}

static int s_grow(rr_outbox_t *self, proto_error_t *err)
{
    held_t *items = rr_grow(self->items, self->count, &self->cap, sizeof *items, 256);
    if (!items) {
        err->status = PROTO_E_NOMEM;
        snprintf(err->text, sizeof err->text, "outbox: out of memory");
        return -1;
    }
    self->items = items;
    return 0;
}

int rr_outbox_add(rr_outbox_t *self, zsock_t *sock, zframe_t *rid, const proto_msg_t *msg,
                  proto_error_t *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (s_grow(self, err) != 0 || proto_encode(msg, &buf, &len, err) != 0)
        return -1;
    held_t held = { .sock = sock, .type = msg->type, .body = zframe_new(buf, len),
                    .rid = rid ? zframe_dup(rid) : NULL };
    free(buf);
    if (!held.body || (rid && !held.rid)) {
        zframe_destroy(&held.body);
        zframe_destroy(&held.rid);
        err->status = PROTO_E_NOMEM;
        snprintf(err->text, sizeof err->text, "outbox: out of memory");
        return -1;
    }
    self->items[self->count++] = held;
    return 0;
}

/* Send one held message (as proto_send does: the ROUTER queues both frames or none). */
static int s_send_one(held_t *held)
{
    int rc = 0;
    if (held->rid)
        rc = zframe_send(&held->rid, held->sock, ZFRAME_MORE | ZFRAME_REUSE | ZFRAME_DONTWAIT);
    if (rc == 0)
        rc = zframe_send(&held->body, held->sock, ZFRAME_DONTWAIT);
    return rc;
}

void rr_outbox_send(rr_outbox_t *self, rr_outbox_fail_fn *fail, void *arg)
{
    self->open = false;
    for (size_t i = 0; i < self->count; i++) {
        held_t *held = &self->items[i];
        if (s_send_one(held) != 0 && fail)
            fail(arg, held->sock, held->rid, held->type, errno);
        zframe_destroy(&held->rid);
        zframe_destroy(&held->body);    /* still ours when its send failed */
    }
    self->count = 0;
}

void rr_outbox_drop(rr_outbox_t *self)
{
    self->open = false;
    for (size_t i = 0; i < self->count; i++) {
        zframe_destroy(&self->items[i].rid);
        zframe_destroy(&self->items[i].body);
    }
    self->count = 0;
}
