/* master.c: the master daemon's event loop (see master.h).
 *
 * It owns the zloop, both ROUTER sockets, the store and the heartbeat timer,
 * reads messages and hands each to its room (workers.c, clients.c). A socket
 * handler drains what is queued (up to RR_DRAIN_MAX messages) before it
 * commits the JOB_EVENTs it collected, so a burst of events costs one
 * transaction instead of one per event. The worker socket's drain is one
 * transaction as a whole, its answers held in the outbox (outbox.h) until
 * it commits.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>

#include "artifacts.h"
#include "daemon.h"
#include "scheduler.h"

/* A handler call drains its socket until it is empty, RR_DRAIN_MS passed or
 * RR_DRAIN_MAX messages were read, then other sockets get a turn. The worker
 * socket's drain is one transaction: the longer it runs under a saturating
 * load, the more of its changes fall on pages it already wrote (the job rows
 * and events of one drain share pages; bench_dispatch: the WAL bytes and
 * checkpoints per job fall to a fraction), at the cost of its answers
 * waiting up to that long. An unsaturated master empties its socket and
 * commits within a few ms whatever the bounds. */
#define RR_DRAIN_MAX 65536
#define RR_DRAIN_MS  250
#define RR_DRAIN_CLOCK_EVERY 64   /* messages between two looks at the clock */
#define RR_WAL_CHECKPOINT_PAGES 1000  /* SQLite's autocheckpoint default, taken off the commit */
#define RR_DEFAULT_INTERVAL_MS 1000u
#define RR_DEFAULT_TIMEOUT_MS  5000u
#define RR_DEFAULT_GRACE_MS    60000u
/* glibc hands freed memory at the top of a heap back to the kernel once it
 * exceeds 128 KiB; SQLite's page cache churn then faults the same pages in
 * again on every transaction (bench_dispatch: 1.5 million minor faults for
 * 10,000 jobs, most of the master's time spent in the kernel). Keep more. */
#define RR_MALLOC_TRIM_THRESHOLD (64 << 20)

typedef void (rr_room_fn)(rr_master_t *self, zframe_t *rid, proto_msg_t *msg);

char *rr_peer_name(zframe_t *rid, char *buf, size_t len)
{
    if (!rid) {
        snprintf(buf, len, "-");
        return buf;
    }
    char *hex = zframe_strhex(rid);
    snprintf(buf, len, "%s", hex ? hex : "?");
    free(hex);
    return buf;
}

int rr_master_send(rr_master_t *self, zsock_t *sock, zframe_t *rid, const proto_msg_t *msg)
{
    proto_error_t perr = { 0 };
    if (rr_outbox_is_open(self->outbox) ? rr_outbox_add(self->outbox, sock, rid, msg, &perr) == 0
                                        : proto_send(sock, rid, msg, &perr) == 0)
        return 0;
    char peer[64];
    const char *side = sock == self->worker_sock ? "worker" : "client";
    if (perr.status != PROTO_OK)
        rr_warn("%s %s: cannot send '%s': %s", side, rr_peer_name(rid, peer, sizeof peer),
                proto_type_name(msg->type), perr.text);
    else
        rr_warn("%s %s: '%s' not sent: %s", side, rr_peer_name(rid, peer, sizeof peer),
                proto_type_name(msg->type),
                errno == EAGAIN ? "its queue is full" : zmq_strerror(errno));
    return -1;
}

int rr_master_send_error(rr_master_t *self, zsock_t *sock, zframe_t *rid, const char *code,
                         const char *key, uint64_t job, const char *fmt, ...)
{
    char text[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);

    proto_msg_t msg = { 0 };
    if (proto_error_msg(&msg, code, key, "%s", text) != 0)
        return -1;
    msg.u.error.job = job;
    int rc = rr_master_send(self, sock, rid, &msg);
    proto_msg_free(&msg);
    return rc;
}

void rr_master_schedule(rr_master_t *self)
{
    rr_assignment_t *picks = NULL;
    size_t count = 0;
    char err[256];
    if (rr_master_health_pass(self) != 0)   /* a due device gets its health check first */
        return;
    if (rr_scheduler_pick_indexed(self->store, self->sched_index, &picks, &count, err,
                                  sizeof err) != 0) {
        rr_error("scheduler: %s", err);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        rr_info("job %" PRIu64 ": scheduled on %s (worker %s)", picks[i].job, picks[i].device,
                picks[i].worker);
        rr_dispatch_start(self, picks[i].job, picks[i].device, picks[i].worker);
    }
    rr_assignments_free(&picks, count);
}

void rr_master_job_ended(rr_master_t *self, uint64_t job)
{
    self->metrics.jobs_finished++;
    rr_workers_disown(self, job);
    rr_master_health_job_ended(self, job);
    rr_dispatch_forget_job(self, job);
    rr_logs_job_changed(self, job);
    rr_notify_job(self->notify, self->store, job);
    rr_retention_kick(self->retention);
}

int rr_master_finish_job(rr_master_t *self, uint64_t job, const char *outcome, const char *reason)
{
    int rc = rr_store_job_finish(self->store, job, outcome, reason, rr_wall_ms());
    if (rc != RR_STORE_OK) {
        rr_warn("job %" PRIu64 ": cannot finish %s: %s", job, outcome,
                rr_store_error(self->store));
        return rc;
    }
    rr_info("job %" PRIu64 ": finished %s%s%s", job, outcome, reason ? ": " : "",
            reason ? reason : "");
    rr_master_job_ended(self, job);
    return 0;
}

void rr_master_store_rolled_back(rr_master_t *self)
{
    rr_workers_disown_all(self);
    rr_dispatch_forget_unstored(self);
    rr_sched_index_mark_stale(self->sched_index);   /* its picks are queued again */
}

/* Receive one message and hand it to ROOM; a bad one gets ERROR naming the
 * key. False when the socket held none (it never waits: s_open_router). */
static bool s_receive_one(rr_master_t *self, zsock_t *sock, rr_room_fn *room)
{
    zframe_t *rid = NULL;
    proto_msg_t msg = { 0 };
    proto_error_t perr = { 0 };
    int rc = proto_recv(sock, &rid, &msg, &perr);
    if (rc != -2) {
        if (sock == self->worker_sock)
            self->metrics.worker_messages++;
        else
            self->metrics.client_requests++;
    }
    if (rc == 0)
        room(self, rid, &msg);
    else if (rc == -1) {
        self->metrics.bad_messages++;
        char peer[64];
        rr_warn("%s %s: bad message: %s", sock == self->worker_sock ? "worker" : "client",
                rr_peer_name(rid, peer, sizeof peer), perr.text);
        if (rid)
            rr_master_send_error(self, sock, rid, proto_status_name(perr.status),
                                 perr.key[0] ? perr.key : NULL, 0, "%s", perr.text);
    }
    proto_msg_free(&msg);
    zframe_destroy(&rid);
    return rc != -2;
}

/* Hand what SOCK holds to ROOM (bounds: RR_DRAIN_*); true when it read all of it. */
static bool s_drain(rr_master_t *self, zsock_t *sock, rr_room_fn *room)
{
    bool emptied = false;
    uint64_t until = rr_mono_ms() + RR_DRAIN_MS;
    for (int n = 0; n < RR_DRAIN_MAX && !emptied; n++) {
        if (n % RR_DRAIN_CLOCK_EVERY == RR_DRAIN_CLOCK_EVERY - 1 && rr_mono_ms() >= until)
            break;
        emptied = !s_receive_one(self, sock, room);
    }
    rr_events_commit(self);
    return emptied;
}

/* Have the WAL checkpointed when it grew past RR_WAL_CHECKPOINT_PAGES (on the
 * store's checkpointer thread, store_wal.c). */
static void s_checkpoint(rr_master_t *self)
{
    if (rr_store_checkpoint_due(self->store) != RR_STORE_OK)
        rr_warn("store: %s", rr_store_error(self->store));
}

/* A message held for the drain's commit could not go (as rr_master_send says it). */
static void s_outbox_failed(void *arg, zsock_t *sock, zframe_t *rid, proto_type_t type,
                            int error)
{
    rr_master_t *self = arg;
    char peer[64];
    rr_warn("%s %s: '%s' not sent: %s", sock == self->worker_sock ? "worker" : "client",
            rr_peer_name(rid, peer, sizeof peer), proto_type_name(type),
            error == EAGAIN ? "its queue is full" : zmq_strerror(error));
}

/* The worker socket is drained inside one transaction: the events batch,
 * the scheduling pass after it, HELLOs and refusals write the same pages
 * once per drain instead of once each. What the drain answers (EVENT_ACK,
 * JOB_START, WELCOME...) waits in the outbox for the commit, so an ack
 * never covers an event and a JOB_START never names a job that a crash
 * could still lose. Should the commit fail, nothing of it is sent and the
 * starts it made are forgotten (the jobs are queued again in the store). */
static void s_drain_in_tx(rr_master_t *self, zsock_t *sock, rr_room_fn *room)
{
    if (rr_store_begin(self->store) != RR_STORE_OK) {
        rr_error("worker messages: no transaction (%s); one per change instead",
                 rr_store_error(self->store));
        if (s_drain(self, sock, room))
            self->worker_caught_up = rr_mono_ms();
        return;
    }
    rr_outbox_open(self->outbox);
    if (s_drain(self, sock, room))
        self->worker_caught_up = rr_mono_ms();
    if (rr_store_commit(self->store) == RR_STORE_OK) {
        rr_outbox_send(self->outbox, s_outbox_failed, self);
        rr_logs_flush(self);
        s_checkpoint(self);                 /* after the answers left, not before */
        return;
    }
    rr_error("worker messages: %zu answers not sent, their changes not committed: %s",
             rr_outbox_size(self->outbox), rr_store_error(self->store));
    rr_outbox_drop(self->outbox);          /* a failed commit rolled the transaction back */
    rr_master_store_rolled_back(self);
    rr_logs_flush(self);                   /* feeds only what is stored */
}

static int s_on_worker_readable(zloop_t *loop, zsock_t *sock, void *arg)
{
    s_drain_in_tx(arg, sock, rr_workers_on_message);
    return 0;
}

static int s_on_client_readable(zloop_t *loop, zsock_t *sock, void *arg)
{
    s_drain(arg, sock, rr_clients_on_message);
    return 0;
}

static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    rr_master_t *self = arg;
    uint64_t now = rr_mono_ms();
    rr_workers_tick(self, now);
    if (!(zsock_events(self->worker_sock) & ZMQ_POLLIN))
        self->worker_caught_up = now;       /* nothing waiting: no ack is on its way in */
    rr_dispatch_flush(self, NULL, false, now);
    rr_logs_tick(self);
    rr_console_tick(self, now);
    rr_master_health_tick(self, now);
    s_checkpoint(self);                     /* what the other writers added */
    return 0;
}

static int s_on_pipe(zloop_t *loop, zsock_t *pipe, void *arg)
{
    char *command = zstr_recv(pipe);
    bool term = !command || streq(command, "$TERM");
    zstr_free(&command);
    return term ? -1 : 0;
}

/* A ROUTER bound to ENDPOINT (real endpoint into BOUND), CURVE server when secure. */
static zsock_t *s_open_router(rr_master_t *self, const char *endpoint, const char *domain,
                              char *bound, size_t bound_len, char *err, size_t errlen)
{
    zsock_t *sock = zsock_new(ZMQ_ROUTER);
    if (!sock) {
        snprintf(err, errlen, "%s endpoint: cannot create socket", domain);
        return NULL;
    }
    proto_socket_setup(sock);
    zsock_set_router_mandatory(sock, 1);    /* EHOSTUNREACH/EAGAIN instead of silent drops */
    zsock_set_rcvtimeo(sock, 0);            /* a drain reads until nothing is there */
    if (self->config->secret_key && rr_auth_curve_server(sock, self->config->secret_key, domain,
                                                          err, errlen) != 0)
        goto fail;
    if (zsock_bind(sock, "%s", endpoint) < 0) {
        snprintf(err, errlen, "%s endpoint: bind %s: %s", domain, endpoint,
                 zmq_strerror(zmq_errno()));
        goto fail;
    }
    char *last = zsock_last_endpoint(sock);
    snprintf(bound, bound_len, "%s", last ? last : endpoint);
    zstr_free(&last);
    return sock;

fail:
    zsock_destroy(&sock);
    return NULL;
}

static int s_open_sockets(rr_master_t *self, char *err, size_t errlen)
{
    const rr_master_config_t *config = self->config;
    if (config->secret_key) {
        self->auth = rr_auth_new(self->loop, config->worker_keys_dir, config->client_keys_dir,
                                 err, errlen);
        if (!self->auth)
            return -1;
    }
    else
        rr_warn("insecure mode: no CURVE, any peer that reaches the endpoints is trusted");
    self->worker_sock = s_open_router(self, config->worker_endpoint, RR_AUTH_DOMAIN_WORKERS,
                                      self->worker_endpoint, sizeof self->worker_endpoint,
                                      err, errlen);
    if (!self->worker_sock)
        return -1;
    self->client_sock = s_open_router(self, config->client_endpoint, RR_AUTH_DOMAIN_CLIENTS,
                                      self->client_endpoint, sizeof self->client_endpoint,
                                      err, errlen);
    if (!self->client_sock)
        return -1;
    if (zloop_reader(self->loop, self->worker_sock, s_on_worker_readable, self) != 0
        || zloop_reader(self->loop, self->client_sock, s_on_client_readable, self) != 0) {
        snprintf(err, errlen, "cannot register socket handlers");
        return -1;
    }
    return 0;
}

rr_master_t *rr_master_new(const rr_master_config_t *config, char *err, size_t errlen)
{
    rr_master_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->config = config;
    mallopt(M_TRIM_THRESHOLD, RR_MALLOC_TRIM_THRESHOLD);
    self->epoch = rr_wall_ms();
    self->interval_ms = config->heartbeat_interval_ms ? config->heartbeat_interval_ms
                                                      : RR_DEFAULT_INTERVAL_MS;
    self->timeout_ms = config->heartbeat_timeout_ms ? config->heartbeat_timeout_ms
                                                    : RR_DEFAULT_TIMEOUT_MS;
    self->grace_ms = config->worker_grace_ms ? config->worker_grace_ms : RR_DEFAULT_GRACE_MS;
    self->health = rr_health_new(config, err, errlen);     /* a bad health check: no start */
    if (!self->health)
        goto fail;
    self->store = rr_store_open(config->db_path, err, errlen);
    if (!self->store)
        goto fail;
    if (rr_store_defer_checkpoints(self->store, RR_WAL_CHECKPOINT_PAGES) != RR_STORE_OK) {
        snprintf(err, errlen, "%s", rr_store_error(self->store));
        goto fail;
    }
    self->loop = zloop_new();
    self->sessions = rr_sessions_new();
    self->dispatch = rr_dispatch_new();
    self->batch = rr_batch_new();
    self->cursors = rr_cursors_new();
    self->consoles = rr_consoles_new();
    self->outbox = rr_outbox_new();
    self->sched_index = rr_sched_index_new();
    self->notify = self->loop ? rr_notify_new(self->loop, NULL) : NULL;
    if (!self->loop || !self->sessions || !self->dispatch || !self->batch || !self->cursors
        || !self->consoles || !self->outbox || !self->sched_index
        || !self->notify) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (s_open_sockets(self, err, errlen) != 0)
        goto fail;
    self->tick_timer = zloop_timer(self->loop, self->interval_ms, 0, s_on_tick, self);
    if (self->tick_timer < 0) {
        snprintf(err, errlen, "cannot create the heartbeat timer");
        goto fail;
    }
    if (config->log_retention_age_ms || config->log_retention_size_bytes) {
        char artifacts_dir[4096];
        rr_retention_options_t retention = {
            .age_ms = config->log_retention_age_ms,
            .size_bytes = config->log_retention_size_bytes,
            .artifacts_dir = rr_artifacts_root(config, artifacts_dir, sizeof artifacts_dir) };
        if (!(self->retention = rr_retention_new(self->store, self->loop, &retention))) {
            snprintf(err, errlen, "cannot start log retention");
            goto fail;
        }
    }
    if (rr_workers_restore(self) != 0) {
        snprintf(err, errlen, "store: %s", rr_store_error(self->store));
        goto fail;
    }
    if (config->http_listen) {
        rr_http_options_t http_options = { .listen = config->http_listen,
                                           .metrics = &self->metrics,
                                           .www_dir = config->http_www,
                                           .tokens_file = config->http_tokens,
                                           .master = self };
        self->http = rr_http_new(self->store, &http_options, err, errlen);
        if (!self->http || rr_http_attach(self->http, self->loop) != 0) {
            if (self->http)
                snprintf(err, errlen, "http %s: cannot attach to the loop", config->http_listen);
            goto fail;
        }
    }
    rr_info("master epoch %" PRIu64 ": workers on %s, clients on %s, db %s", self->epoch,
            self->worker_endpoint, self->client_endpoint, config->db_path);
    return self;

fail:
    rr_master_destroy(&self);
    return NULL;
}

void rr_master_destroy(rr_master_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rr_master_t *self = *self_p;
    rr_http_destroy(&self->http);           /* answers waiting requests: before loop and store */
    rr_notify_destroy(&self->notify);       /* ends its pollers and timers: before the loop */
    rr_retention_destroy(&self->retention);
    rr_cursors_destroy(&self->cursors);
    rr_consoles_destroy(&self->consoles);
    rr_outbox_destroy(&self->outbox);
    rr_sched_index_destroy(&self->sched_index);
    rr_batch_destroy(&self->batch);
    rr_dispatch_destroy(&self->dispatch);
    rr_sessions_destroy(&self->sessions);
    rr_auth_destroy(&self->auth);           /* unregisters from the loop: before it goes */
    zloop_destroy(&self->loop);
    zsock_destroy(&self->client_sock);
    zsock_destroy(&self->worker_sock);
    rr_store_destroy(&self->store);
    rr_health_destroy(&self->health);
    rr_artifact_hashes_destroy(&self->artifact_hashes);
    free(self);
    *self_p = NULL;
}

int rr_master_run(rr_master_t *self)
{
    /* zloop_start also returns (0) when a signal with a handler interrupts
     * its poll: SIGHUP (auth.c: re-read the keys) must not stop the master. */
    while (zloop_start(self->loop) == 0 && !zsys_interrupted && errno == EINTR)
        ;
    rr_info("master epoch %" PRIu64 ": stopping", self->epoch);
    return 0;
}

int rr_master_attach_pipe(rr_master_t *self, zsock_t *pipe)
{
    return zloop_reader(self->loop, pipe, s_on_pipe, self);
}

const char *rr_master_worker_endpoint(rr_master_t *self)
{
    return self->worker_endpoint;
}

const char *rr_master_client_endpoint(rr_master_t *self)
{
    return self->client_endpoint;
}

uint64_t rr_master_epoch(rr_master_t *self)
{
    return self->epoch;
}

const rr_metrics_t *rr_master_counters(rr_master_t *self)
{
    return &self->metrics;
}

void rr_master_actor(zsock_t *pipe, void *args)
{
    char err[512] = "";
    pthread_setname_np(pthread_self(), "rr-master");   /* top -H, perf, the benchmarks */
    rr_master_t *self = rr_master_new(args, err, sizeof err);
    zsock_signal(pipe, 0);
    if (!self) {
        zstr_sendx(pipe, "ERROR", err, NULL);
        char *command;
        while ((command = zstr_recv(pipe))) {   /* wait for $TERM, as zactor expects */
            bool term = streq(command, "$TERM");
            zstr_free(&command);
            if (term)
                break;
        }
        return;
    }
    zstr_sendx(pipe, "OK", self->worker_endpoint, self->client_endpoint, NULL);
    if (rr_master_attach_pipe(self, pipe) == 0)
        rr_master_run(self);
    rr_master_destroy(&self);
}
