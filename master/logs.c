/* logs.c: client LOGS requests as cursors over a job's stored stream.
 *
 * A cursor remembers the last seq it sent. It is pumped when the request
 * arrives, when new events of its job are committed, and on the timer while
 * a full client queue holds it back (sends never block: a slow client stalls
 * only its own cursor). A reader gets LOGS_END once it has everything stored;
 * a follower only when the job has finished. While a job is open a cursor
 * stops at the highest contiguous seq, so an event that arrived early is
 * never skipped when its predecessors come in later.
 *
 * While the master drains the worker socket inside one transaction (the
 * outbox is open), changed jobs are only noted: rr_logs_flush feeds their
 * cursors after the transaction ended, so a reader is never sent an event
 * that a rolled-back transaction did not store (a pump reads the store).
 *
 * With CURVE a cursor remembers its client's key: once that key is gone from
 * the client allow-list (auth.c reloads it on inotify, SIGHUP and a timer),
 * the cursor is dropped before it would send anything more, at the latest on
 * the next master tick, and the client gets ERROR "denied" (not LOGS_END,
 * which would read as "you have everything"). The other live per-client
 * state, console followers (console.c), expires once their keepalives are
 * refused.
 */
#include "daemon.h"

#define RR_CURSORS_MAX 1024     /* open cursors, all clients together */
#define RR_LOGS_PAGE   256      /* events read from the store at once */

typedef struct {
    zframe_t *rid;
    uint64_t job;
    uint64_t last_seq;          /* highest seq sent */
    bool follow;
    bool stalled;               /* a send found the client's queue full */
    char key[41];               /* the client's Z85 key; "" when insecure */
} rr_cursor_t;

struct _rr_cursors_t {
    zlistx_t *list;             /* of rr_cursor_t, owned */
    uint64_t *changed;          /* jobs changed in the open transaction, may repeat */
    size_t changed_count, changed_cap;
};

typedef enum { PUMP_MORE, PUMP_STALLED, PUMP_DONE } rr_pump_t;

static void s_cursor_destroy(void **item)
{
    rr_cursor_t *cursor = *item;
    if (!cursor)
        return;
    zframe_destroy(&cursor->rid);
    free(cursor);
    *item = NULL;
}

rr_cursors_t *rr_cursors_new(void)
{
    rr_cursors_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->list = zlistx_new();
    if (!self->list) {
        free(self);
        return NULL;
    }
    zlistx_set_destructor(self->list, s_cursor_destroy);
    return self;
}

void rr_cursors_destroy(rr_cursors_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zlistx_destroy(&(*self_p)->list);
    free((*self_p)->changed);
    free(*self_p);
    *self_p = NULL;
}

/* Send MSG to the cursor's client: MORE, STALLED (queue full) or DONE (client gone). */
static rr_pump_t s_send(rr_master_t *self, rr_cursor_t *cursor, const proto_msg_t *msg)
{
    proto_error_t perr = { 0 };
    if (proto_send(self->client_sock, cursor->rid, msg, &perr) == 0)
        return PUMP_MORE;
    if (perr.status == PROTO_OK && errno == EAGAIN)
        return PUMP_STALLED;
    char peer[64];
    rr_warn("client %s: logs of job %" PRIu64 ": stopped: %s",
            rr_peer_name(cursor->rid, peer, sizeof peer), cursor->job,
            perr.status != PROTO_OK ? perr.text : zmq_strerror(errno));
    return PUMP_DONE;
}

/* Send the stored events after last_seq up to LIMIT. */
static rr_pump_t s_send_events(rr_master_t *self, rr_cursor_t *cursor, uint64_t limit)
{
    for (;;) {
        proto_job_event_t *events = NULL;
        size_t count = 0;
        if (rr_store_events_read(self->store, cursor->job, cursor->last_seq, RR_LOGS_PAGE,
                                 &events, &count) != RR_STORE_OK) {
            rr_error("job %" PRIu64 ": logs: %s", cursor->job, rr_store_error(self->store));
            return PUMP_DONE;
        }
        rr_pump_t rc = PUMP_MORE;
        size_t i = 0;
        for (; i < count && rc == PUMP_MORE && events[i].seq <= limit; i++) {
            proto_msg_t msg = { .type = PROTO_MSG_JOB_EVENT, .version = PROTO_VERSION };
            msg.u.job_event = events[i];    /* borrowed: freed with the array */
            rc = s_send(self, cursor, &msg);
            if (rc == PUMP_MORE)
                cursor->last_seq = events[i].seq;
        }
        bool page_full = count == RR_LOGS_PAGE && i == count;
        rr_store_events_free(&events, count);
        if (rc != PUMP_MORE || !page_full)
            return rc;
    }
}

/* Feed CURSOR what it has not seen; DONE when it can be dropped. */
static rr_pump_t s_pump(rr_master_t *self, rr_cursor_t *cursor)
{
    proto_jobinfo_t info = { 0 };
    if (rr_store_job_get(self->store, cursor->job, &info) != RR_STORE_OK)
        return PUMP_DONE;
    bool finished = streq(info.state, RR_JOB_FINISHED);
    rr_store_jobinfo_clear(&info);
    uint64_t limit = UINT64_MAX;
    if (!finished && rr_store_events_acked(self->store, cursor->job, &limit) != RR_STORE_OK)
        return PUMP_DONE;
    rr_pump_t rc = s_send_events(self, cursor, limit);
    cursor->stalled = rc == PUMP_STALLED;
    if (rc != PUMP_MORE || (cursor->follow && !finished))
        return rc;
    proto_msg_t end = { .type = PROTO_MSG_LOGS_END, .version = PROTO_VERSION };
    end.u.logs_end = (proto_logs_end_t) { .job = cursor->job, .last_seq = cursor->last_seq,
                                          .finished = finished };
    rc = s_send(self, cursor, &end);
    cursor->stalled = rc == PUMP_STALLED;
    return rc == PUMP_MORE ? PUMP_DONE : rc;
}

/* Remember which key asked (clients.c checked it is allowed just now). */
static void s_remember_key(rr_master_t *self, rr_cursor_t *cursor, zframe_t *rid)
{
    rr_auth_peer_t who;
    if (self->auth && rr_auth_peer(self->auth, rid, RR_AUTH_DOMAIN_CLIENTS, &who) == 0)
        snprintf(cursor->key, sizeof cursor->key, "%s", who.key);
}

void rr_logs_request(rr_master_t *self, zframe_t *rid, const proto_logs_t *req)
{
    proto_jobinfo_t info = { 0 };
    int rc = rr_store_job_get(self->store, req->job, &info);
    rr_store_jobinfo_clear(&info);
    if (rc == RR_STORE_E_NOTFOUND) {
        rr_master_send_error(self, self->client_sock, rid, "not_found", "job", req->job,
                             "logs: no job %" PRIu64, req->job);
        return;
    }
    if (rc != RR_STORE_OK || zlistx_size(self->cursors->list) >= RR_CURSORS_MAX) {
        rr_master_send_error(self, self->client_sock, rid, "internal", NULL, req->job,
                             "logs: job %" PRIu64 ": %s", req->job,
                             rc != RR_STORE_OK ? rr_store_error(self->store)
                                               : "too many log readers, try again later");
        return;
    }
    rr_cursor_t *cursor = calloc(1, sizeof *cursor);
    if (!cursor || !(cursor->rid = zframe_dup(rid))) {
        free(cursor);
        return;
    }
    cursor->job = req->job;
    cursor->last_seq = req->from;
    cursor->follow = req->follow;
    s_remember_key(self, cursor, rid);
    if (s_pump(self, cursor) == PUMP_DONE || !zlistx_add_end(self->cursors->list, cursor))
        s_cursor_destroy((void **) &cursor);
}

/* Whether the key CURSOR's client used is gone from the allow-list; if so
 * the client is told (ERROR "denied") and the cursor is to be dropped. */
static bool s_revoked(rr_master_t *self, rr_cursor_t *cursor)
{
    if (!self->auth || !cursor->key[0]
        || rr_auth_key_allowed(self->auth, RR_AUTH_DOMAIN_CLIENTS, cursor->key))
        return false;
    rr_warn("auth: client key %s removed from the allow-list: logs of job %" PRIu64
            " stopped", cursor->key, cursor->job);
    rr_master_send_error(self, self->client_sock, cursor->rid, "denied", NULL, cursor->job,
                         "logs of job %" PRIu64 ": this client key was removed from the "
                         "allow-list", cursor->job);
    return true;
}

/* Pump the cursors of JOB, or with JOB 0 those a full queue held back; drop
 * every cursor whose client key was revoked (a tick checks them all). */
static void s_pump_some(rr_master_t *self, uint64_t job)
{
    zlistx_t *list = self->cursors->list;
    void *handle = zlistx_first(list) ? zlistx_cursor(list) : NULL;
    while (handle) {
        rr_cursor_t *cursor = zlistx_handle_item(handle);
        void *next = zlistx_next(list) ? zlistx_cursor(list) : NULL;
        bool revoked = (!job || cursor->job == job) && s_revoked(self, cursor);
        bool chosen = job ? cursor->job == job : cursor->stalled;
        if (revoked || (chosen && s_pump(self, cursor) == PUMP_DONE))
            zlistx_delete(list, handle);
        handle = next;
    }
}

/* Feed JOB's cursors and HTTP waiters now. */
static void s_job_changed_now(rr_master_t *self, uint64_t job)
{
    s_pump_some(self, job);
    if (self->http)
        rr_http_notify_job(self->http, job);
}

/* Remember JOB for rr_logs_flush; false when out of memory. */
static bool s_defer(rr_cursors_t *cursors, uint64_t job)
{
    if (cursors->changed_count > 0 && cursors->changed[cursors->changed_count - 1] == job)
        return true;
    uint64_t *changed = rr_grow(cursors->changed, cursors->changed_count,
                                &cursors->changed_cap, sizeof *changed, 64);
    if (!changed)
        return false;
    cursors->changed = changed;
    cursors->changed[cursors->changed_count++] = job;
    return true;
}

void rr_logs_job_changed(rr_master_t *self, uint64_t job)
{
    if (zlistx_size(self->cursors->list) == 0 && !self->http)
        return;                 /* nobody reads or waits */
    if (rr_outbox_is_open(self->outbox) && s_defer(self->cursors, job))
        return;                 /* rr_logs_flush, once the drain's transaction ended */
    s_job_changed_now(self, job);
}

static int s_job_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

void rr_logs_flush(rr_master_t *self)
{
    rr_cursors_t *cursors = self->cursors;
    if (cursors->changed_count == 0)
        return;
    qsort(cursors->changed, cursors->changed_count, sizeof *cursors->changed, s_job_cmp);
    for (size_t i = 0; i < cursors->changed_count; i++)
        if (i == 0 || cursors->changed[i] != cursors->changed[i - 1])
            s_job_changed_now(self, cursors->changed[i]);
    cursors->changed_count = 0;
}

void rr_logs_tick(rr_master_t *self)
{
    s_pump_some(self, 0);
}
