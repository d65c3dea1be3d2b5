/* worker.c: the worker's main loop: master link, spools, device actors (see worker.h). */
#include "worker.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "log.h"
#include "proto.h"
#include "spool.h"
#include "upload.h"
#include "units.h"

#define HELLO_RETRY_MS     2000u
#define DEVICE_DRAIN_MAX   256     /* actor messages handled per wake-up */
#define CONSOLE_CHUNK_MAX  16384u  /* console bytes per CONSOLE_DATA */
#define STOP_GRACE_MS      15000u  /* how long running jobs get to end at shutdown */
/* Per-job spool quota: the spool grows while the master does not acknowledge
 * (down, slow). Past it the job is stopped with a clear reason; past twice it
 * further events are dropped (counted in the end's reason), never the end.
 * RACKRUN_SPOOL_QUOTA_BYTES overrides it (tests, small disks). */
#define SPOOL_QUOTA_BYTES  (256ull << 20)


typedef struct {
    rr_worker_t *worker;
    const rr_device_config_t *config;
    zactor_t *actor;
    char state[16];
    char reason[512];
    bool dirty;               /* state not yet acked by a HEARTBEAT_ACK */
    uint64_t sent_in;         /* heartbeat seq that carried it */
    uint64_t job;             /* job running on it, 0 = none */
    bool maintenance;
} wdevice_t;

typedef struct {
    uint64_t id;
    rr_spool_t *spool;
    uint64_t sent;            /* highest seq sent since the last (re)start of sending */
    uint64_t waiting_since;   /* mono ms since when sent > acked without ack progress */
    bool dirty;               /* appended since the last sync */
    zactor_t *actor;          /* device actor running it, NULL after a reload */
    bool over_quota;          /* stopped for its spool quota */
    uint64_t dropped;         /* events dropped past twice the quota */
    rr_uploads_t *uploads;    /* its artifacts not yet stored by the master (upload.h) */
} wjob_t;

struct _rr_worker_t {
    const rr_worker_config_t *config;
    zsock_t *master;
    zloop_t *loop;
    wdevice_t *devices;
    size_t device_count;
    zlistx_t *jobs;           /* wjob_t*, owned */
    uint64_t epoch;
    bool welcomed;
    uint32_t hb_interval_ms, hb_timeout_ms;
    uint64_t hb_seq, hb_last, heard_at, hello_at;
    atomic_bool stop;
};

/* ---- jobs and spools ---- */

static wjob_t *job_find(rr_worker_t *self, uint64_t id)
{
    for (wjob_t *job = zlistx_first(self->jobs); job; job = zlistx_next(self->jobs))
        if (job->id == id)
            return job;
    return NULL;
}

static void job_free(wjob_t **job_p)
{
    if (*job_p) {
        rr_spool_destroy(&(*job_p)->spool);
        rr_uploads_destroy(&(*job_p)->uploads);
        free(*job_p);
        *job_p = NULL;
    }
}

static void job_destructor(void **item)
{
    job_free((wjob_t **)item);
}

static wjob_t *job_add(rr_worker_t *self, uint64_t id, char *err, size_t errlen)
{
    wjob_t *job = calloc(1, sizeof *job);
    if (!job) {
        snprintf(err, errlen, "job %" PRIu64 ": out of memory", id);
        return NULL;
    }
    job->id = id;
    job->spool = rr_spool_open(self->config->spool_dir, id, err, errlen);
    if (!job->spool) {
        free(job);
        return NULL;
    }
    job->sent = rr_spool_acked(job->spool);
    job->uploads = rr_uploads_new(self->config->artifacts_dir, id);
    zlistx_add_end(self->jobs, job);
    return job;
}

static uint64_t spool_quota(void)
{
    const char *env = getenv("RACKRUN_SPOOL_QUOTA_BYTES");
    uint64_t quota = env && *env ? strtoull(env, NULL, 10) : 0;
    return quota ? quota : SPOOL_QUOTA_BYTES;
}

/* False when the event must be dropped (past twice the quota; never an end). */
static bool job_quota(wjob_t *job, size_t len, bool final, char *reason, size_t reason_len)
{
    uint64_t quota = spool_quota(), size = rr_spool_size(job->spool) + len;
    if (size > quota && !job->over_quota && job->actor) {
        char why[300];
        job->over_quota = true;
        snprintf(why, sizeof why, "worker: the job's spool passed its quota of %" PRIu64
                 " bytes (the master has not acknowledged its events)", quota);
        rr_warn("job %" PRIu64 ": %s: stopping it", job->id, why);
        rr_device_abort(job->actor, job->id, why);
    }
    if (final || size <= 2 * quota) {
        if (final && job->dropped && reason)
            snprintf(reason, reason_len, "; %" PRIu64 " events dropped past twice the spool "
                     "quota", job->dropped);
        return true;
    }
    job->dropped++;
    return false;
}

/* Number EVENT (seq 0) as the job's next and spool it. */
static int job_append(wjob_t *job, const uint8_t *data, size_t len)
{
    proto_msg_t msg;
    proto_error_t perr;
    char err[512], note[96] = "", *reason = NULL;
    if (proto_decode(data, len, &msg, &perr) < 0 || msg.type != PROTO_MSG_JOB_EVENT) {
        rr_error("job %" PRIu64 ": bad event from device actor: %s", job->id, perr.text);
        proto_msg_free(&msg);
        return -1;
    }
    bool final = !strcmp(msg.u.job_event.kind, "end");
    if (!job_quota(job, len, final, note, sizeof note)) {
        proto_msg_free(&msg);
        return -1;
    }
    if (note[0] && (reason = malloc(strlen(note) + (msg.u.job_event.reason
                                    ? strlen(msg.u.job_event.reason) : 0) + 1))) {
        sprintf(reason, "%s%s", msg.u.job_event.reason ? msg.u.job_event.reason : "", note);
        free(msg.u.job_event.reason);
        msg.u.job_event.reason = reason;
    }
    msg.u.job_event.seq = rr_spool_last_seq(job->spool) + 1;
    uint8_t *buf = NULL;
    size_t buf_len = 0;
    int rc = proto_encode(&msg, &buf, &buf_len, &perr);
    if (rc < 0)
        rr_error("job %" PRIu64 ": encode event: %s", job->id, perr.text);
    else if ((rc = rr_spool_append(job->spool, msg.u.job_event.seq, buf, buf_len, final, err,
                                   sizeof err)) < 0)
        rr_error("job %" PRIu64 ": %s", job->id, err);
    if (final && rc == 0)
        rr_info("job %" PRIu64 ": end %s%s%s", job->id, msg.u.job_event.value,
                msg.u.job_event.reason ? ": " : "",
                msg.u.job_event.reason ? msg.u.job_event.reason : "");
    job->dirty = job->dirty || rc == 0;
    if (rc == 0 && !strcmp(msg.u.job_event.kind, "artifact") && msg.u.job_event.name
        && msg.u.job_event.value)
        rr_uploads_add(job->uploads, msg.u.job_event.name, msg.u.job_event.value,
                       (uint64_t)msg.u.job_event.code);
    free(buf);
    proto_msg_free(&msg);
    return rc;
}

/* Append a worker-made event (no device) such as the end of an orphaned job. */
static void job_append_end(wjob_t *job, const char *outcome, const char *reason)
{
    proto_msg_t msg = { .type = PROTO_MSG_JOB_EVENT, .version = PROTO_VERSION };
    msg.u.job_event = (proto_job_event_t){ .job = job->id, .ts = rr_wall_ms(), .kind = "end",
                                           .value = (char *)outcome, .reason = (char *)reason };
    uint8_t *buf = NULL;
    size_t len = 0;
    proto_error_t perr;
    if (proto_encode(&msg, &buf, &len, &perr) == 0)
        job_append(job, buf, len);
    free(buf);
}

static void jobs_sync(rr_worker_t *self)
{
    char err[512];
    for (wjob_t *job = zlistx_first(self->jobs); job; job = zlistx_next(self->jobs)) {
        if (job->dirty && rr_spool_sync(job->spool, err, sizeof err) < 0)
            rr_error("job %" PRIu64 ": %s", job->id, err);
        job->dirty = false;
    }
}

/* Send what the window allows. Never blocks: EAGAIN leaves it spooled. The
 * end event waits until the master holds every artifact of the job, so a job
 * is never reported finished while one is still uploading. */
static void job_pump(rr_worker_t *self, wjob_t *job)
{
    uint64_t acked = rr_spool_acked(job->spool), now = rr_mono_ms();
    uint64_t last = rr_spool_last_seq(job->spool);
    if (rr_spool_final(job->spool) && rr_uploads_pending(job->uploads) && last > 0)
        last--;
    if (job->sent < acked)
        job->sent = acked;
    if (job->sent > acked && now - job->waiting_since >= RR_WORKER_RESEND_MS) {
        rr_warn("job %" PRIu64 ": no ack beyond seq %" PRIu64 " for %u ms: resending",
                job->id, acked, RR_WORKER_RESEND_MS);
        job->sent = acked;
    }
    if (!self->welcomed)
        return;
    rr_uploads_pump(job->uploads, self->master, now);
    void *sock = zsock_resolve(self->master);
    while (job->sent < last && job->sent - acked < RR_WORKER_WINDOW) {
        uint8_t *data = NULL;
        size_t len = 0;
        if (rr_spool_read(job->spool, job->sent + 1, &data, &len) < 0) {
            rr_error("job %" PRIu64 ": spooled event %" PRIu64 " unreadable", job->id,
                     job->sent + 1);
            return;
        }
        int rc = zmq_send(sock, data, len, ZMQ_DONTWAIT);
        free(data);
        if (rc < 0)
            return;   /* EAGAIN (queue full) or down: stays spooled, retried next tick */
        if (job->sent == acked)
            job->waiting_since = now;
        job->sent++;
    }
}

static void jobs_pump(rr_worker_t *self)
{
    for (wjob_t *job = zlistx_first(self->jobs); job; job = zlistx_next(self->jobs))
        job_pump(self, job);
}

/* A job whose stream the master holds completely is forgotten. */
static void job_ack(rr_worker_t *self, wjob_t *job, uint64_t seq)
{
    uint64_t before = rr_spool_acked(job->spool);
    rr_spool_ack(job->spool, seq);
    if (rr_spool_acked(job->spool) > before)
        job->waiting_since = rr_mono_ms();
    if (!rr_spool_done(job->spool))
        return;
    for (size_t i = 0; i < self->device_count; i++)
        if (self->devices[i].job == job->id)
            return;   /* its runner has not said DONE yet */
    /* The master ignores device reports while a job holds the device and
     * makes it idle when the end commits: tell it again what each one is
     * (offline after a lost BMC, bad...). */
    for (size_t i = 0; i < self->device_count; i++) {
        self->devices[i].dirty = true;
        self->devices[i].sent_in = 0;
    }
    rr_spool_remove(&job->spool);
    void *handle = zlistx_find(self->jobs, job);
    if (handle)
        zlistx_delete(self->jobs, handle);
}

/* Spools left by an earlier run: resend them; a job that never ended ends now. */
static int jobs_reload(rr_worker_t *self, char *err, size_t errlen)
{
    uint64_t *ids = NULL;
    size_t count = 0;
    if (rr_spool_list(self->config->spool_dir, &ids, &count, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        wjob_t *job = job_add(self, ids[i], err, errlen);
        if (!job) {
            free(ids);
            return -1;
        }
        if (rr_uploads_reload(job->uploads, err, errlen) < 0)
            rr_error("%s", err);
        if (!rr_spool_final(job->spool))
            job_append_end(job, "incomplete", "worker restarted during the job");
        rr_info("job %" PRIu64 ": %zu spooled events to resend", job->id,
                rr_spool_pending(job->spool));
    }
    free(ids);
    jobs_sync(self);
    return 0;
}

/* ---- master link ---- */

static int master_send(rr_worker_t *self, const proto_msg_t *msg)
{
    proto_error_t perr = { 0 };
    if (proto_send(self->master, NULL, msg, &perr) == 0)
        return 0;
    if (perr.status != PROTO_OK)
        rr_error("send %s: %s", proto_type_name(msg->type), perr.text);
    return -1;
}

static void send_hello(rr_worker_t *self)
{
    proto_msg_t msg = { .type = PROTO_MSG_HELLO, .version = PROTO_VERSION };
    proto_hello_t *h = &msg.u.hello;
    proto_device_t *devs = calloc(self->device_count ? self->device_count : 1, sizeof *devs);
    size_t njobs = zlistx_size(self->jobs);
    proto_jobseq_t *jobs = calloc(njobs ? njobs : 1, sizeof *jobs);
    if (!devs || !jobs)
        goto out;
    for (size_t i = 0; i < self->device_count; i++) {
        const rr_device_config_t *c = self->devices[i].config;
        devs[i] = (proto_device_t){ .name = c->name, .type = c->type, .tags = c->tags,
                                    .tags_count = c->tag_count, .state = self->devices[i].state };
    }
    size_t n = 0;
    for (wjob_t *job = zlistx_first(self->jobs); job; job = zlistx_next(self->jobs))
        jobs[n++] = (proto_jobseq_t){ job->id, rr_spool_last_seq(job->spool) };
    *h = (proto_hello_t){ .worker = self->config->worker, .rack = self->config->rack,
                          .version = RACKRUN_VERSION, .proto_min = PROTO_VERSION_MIN,
                          .proto_max = PROTO_VERSION, .devices = devs,
                          .devices_count = self->device_count, .jobs = jobs, .jobs_count = n };
    if (master_send(self, &msg) == 0)
        rr_debug("hello sent (%zu devices, %zu jobs)", self->device_count, n);
out:
    self->welcomed = false;
    self->hello_at = rr_mono_ms();
    free(devs);
    free(jobs);
}

static void send_heartbeat(rr_worker_t *self)
{
    proto_msg_t msg = { .type = PROTO_MSG_HEARTBEAT, .version = PROTO_VERSION };
    proto_devstate_t *changed = calloc(self->device_count ? self->device_count : 1,
                                       sizeof *changed);
    if (!changed)
        return;
    size_t n = 0;
    double load = 0;
    self->hb_seq++;
    for (size_t i = 0; i < self->device_count; i++) {
        wdevice_t *d = &self->devices[i];
        if (!d->dirty)
            continue;
        changed[n++] = (proto_devstate_t){ .name = d->config->name, .state = d->state,
                                           .reason = d->reason[0] ? d->reason : NULL };
        d->sent_in = self->hb_seq;
    }
    if (getloadavg(&load, 1) < 1)
        load = 0;
    msg.u.heartbeat = (proto_heartbeat_t){ .seq = self->hb_seq, .load = (uint32_t)(load * 100),
                                           .changed = changed, .changed_count = n };
    master_send(self, &msg);
    self->hb_last = rr_mono_ms();
    free(changed);
}

static void send_ack(rr_worker_t *self, const char *of, uint64_t job, const char *device)
{
    proto_msg_t msg = { .type = PROTO_MSG_ACK, .version = PROTO_VERSION };
    msg.u.ack = (proto_ack_t){ .of = (char *)of, .job = job, .device = (char *)device };
    master_send(self, &msg);
}

static void send_accept(rr_worker_t *self, uint64_t job, bool ok, const char *reason)
{
    proto_msg_t msg = { .type = PROTO_MSG_JOB_ACCEPT, .version = PROTO_VERSION };
    msg.u.job_accept = (proto_job_accept_t){ .job = job, .ok = ok, .reason = (char *)reason };
    if (!ok)
        rr_warn("job %" PRIu64 ": refused: %s", job, reason);
    master_send(self, &msg);
}

static wdevice_t *device_find(rr_worker_t *self, const char *name)
{
    for (size_t i = 0; i < self->device_count; i++)
        if (!strcmp(self->devices[i].config->name, name))
            return &self->devices[i];
    return NULL;
}

static void on_job_start(rr_worker_t *self, const proto_job_start_t *m)
{
    char why[600];
    wdevice_t *dev = device_find(self, m->device);
    if (job_find(self, m->job)) {
        send_accept(self, m->job, true, NULL);   /* a repeated JOB_START */
        return;
    }
    if (!dev)
        snprintf(why, sizeof why, "unknown device %s", m->device);
    else if (dev->maintenance)
        snprintf(why, sizeof why, "device %s is in maintenance", m->device);
    else if (dev->job)
        snprintf(why, sizeof why, "device %s is busy with job %" PRIu64, m->device, dev->job);
    else
        why[0] = '\0';
    if (why[0]) {
        send_accept(self, m->job, false, why);
        return;
    }
    wjob_t *job = job_add(self, m->job, why, sizeof why);
    if (!job) {
        send_accept(self, m->job, false, why);
        return;
    }
    if (rr_device_start_job(dev->actor, m->job, m->def) < 0) {
        void *handle = zlistx_find(self->jobs, job);
        rr_spool_remove(&job->spool);
        zlistx_delete(self->jobs, handle);
        send_accept(self, m->job, false, "job definition cannot be encoded");
        return;
    }
    dev->job = m->job;
    job->actor = dev->actor;
    rr_info("job %" PRIu64 ": accepted on %s", m->job, m->device);
    send_accept(self, m->job, true, NULL);
}

static void on_job_cancel(rr_worker_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->device_count; i++) {
        if (self->devices[i].job == id) {
            rr_info("job %" PRIu64 ": canceling", id);
            rr_device_cancel(self->devices[i].actor, id);
        }
    }
    send_ack(self, "jcancel", id, NULL);
}

static void on_device_set(rr_worker_t *self, const proto_device_set_t *m)
{
    wdevice_t *dev = device_find(self, m->device);
    if (dev) {
        dev->maintenance = m->maintenance;
        rr_device_maintenance(dev->actor, m->maintenance);
    }
    send_ack(self, "devset", 0, m->device);
}

/* A client follows (or stopped following) a device's console through the master. */
static void on_console_follow(rr_worker_t *self, const proto_console_follow_t *m)
{
    wdevice_t *dev = device_find(self, m->device);
    if (dev)
        rr_device_console_follow(dev->actor, m->on);
    send_ack(self, "consfollow", 0, m->device);
}

/* An operator types into the console of a device in maintenance (the master
 * checked; the device actor checks again: the master's view may be stale). */
static void on_console_input(rr_worker_t *self, const proto_console_input_t *m)
{
    wdevice_t *dev = device_find(self, m->device);
    if (!dev)
        rr_warn("console input for unknown device %s dropped", m->device);
    else if (!dev->maintenance)
        rr_warn("device %s: console input dropped: not in maintenance", m->device);
    else
        rr_device_console_input(dev->actor, m->data, m->data_len);
}

/* Console bytes of DEV for its followers: best-effort, never spooled. */
static void send_console(rr_worker_t *self, wdevice_t *dev, const uint8_t *data, size_t len)
{
    proto_msg_t msg = { .type = PROTO_MSG_CONSOLE_DATA, .version = PROTO_VERSION };
    for (size_t at = 0; at < len && self->welcomed; at += CONSOLE_CHUNK_MAX) {
        size_t n = len - at < CONSOLE_CHUNK_MAX ? len - at : CONSOLE_CHUNK_MAX;
        msg.u.console_data = (proto_console_data_t){ .device = (char *)dev->config->name,
                                                     .data = (uint8_t *)data + at,
                                                     .data_len = n };
        if (master_send(self, &msg) < 0)
            break;
    }
}

static void on_welcome(rr_worker_t *self, const proto_welcome_t *m)
{
    self->epoch = m->epoch;
    self->welcomed = true;
    self->hb_interval_ms = m->heartbeat_interval_ms ? m->heartbeat_interval_ms : 1000;
    self->hb_timeout_ms = m->heartbeat_timeout_ms ? m->heartbeat_timeout_ms
                                                  : 5 * self->hb_interval_ms;
    rr_info("welcomed by master (epoch %" PRIu64 ", heartbeat %" PRIu32 " ms)", m->epoch,
            self->hb_interval_ms);
    for (size_t i = 0; i < m->jobs_count; i++) {
        wjob_t *job = job_find(self, m->jobs[i].job);
        if (job)
            job_ack(self, job, m->jobs[i].seq);
    }
    /* Everything not acked goes again (the master ignores duplicates). */
    for (wjob_t *job = zlistx_first(self->jobs); job; job = zlistx_next(self->jobs)) {
        job->sent = rr_spool_acked(job->spool);
        rr_uploads_rewind(job->uploads);
    }
    for (size_t i = 0; i < self->device_count; i++)
        self->devices[i].dirty = true;
    send_heartbeat(self);
    jobs_pump(self);
}

static void handle_error(rr_worker_t *self, const proto_msg_t *msg)
{
    const char *code = msg->u.error.code;
    rr_warn("master error %s: %s", code, msg->u.error.text);
    if (!strcmp(code, "hello_required")) {
        send_hello(self);
    } else if (msg->u.error.job && !strcmp(code, "not_found")) {
        wjob_t *job = job_find(self, msg->u.error.job);
        if (job && rr_spool_final(job->spool)) {
            rr_warn("job %" PRIu64 ": master does not know it: dropping its spool", job->id);
            rr_uploads_abandon(job->uploads, "the master does not know the job");
            rr_spool_remove(&job->spool);
            zlistx_delete(self->jobs, zlistx_find(self->jobs, job));
        }
    }
}

static void handle_message(rr_worker_t *self, const proto_msg_t *msg)
{
    switch (msg->type) {
    case PROTO_MSG_WELCOME:
        on_welcome(self, &msg->u.welcome);
        break;
    case PROTO_MSG_HEARTBEAT_ACK:
        if (msg->u.heartbeat_ack.epoch != self->epoch) {
            rr_info("master epoch changed (%" PRIu64 " -> %" PRIu64 "): hello again",
                    self->epoch, msg->u.heartbeat_ack.epoch);
            send_hello(self);
            break;
        }
        for (size_t i = 0; i < self->device_count; i++)
            if (self->devices[i].dirty && self->devices[i].sent_in
                && self->devices[i].sent_in <= msg->u.heartbeat_ack.seq)
                self->devices[i].dirty = false;
        break;
    case PROTO_MSG_JOB_START:
        on_job_start(self, &msg->u.job_start);
        break;
    case PROTO_MSG_JOB_CANCEL:
        on_job_cancel(self, msg->u.job_cancel.job);
        break;
    case PROTO_MSG_DEVICE_SET:
        on_device_set(self, &msg->u.device_set);
        break;
    case PROTO_MSG_CONSOLE_FOLLOW:
        on_console_follow(self, &msg->u.console_follow);
        break;
    case PROTO_MSG_CONSOLE_INPUT:
        on_console_input(self, &msg->u.console_input);
        break;
    case PROTO_MSG_ARTIFACT_ACK: {
        wjob_t *job = job_find(self, msg->u.artifact_ack.job);
        if (job)
            rr_uploads_ack(job->uploads, &msg->u.artifact_ack, rr_mono_ms());
        jobs_pump(self);
        break;
    }
    case PROTO_MSG_EVENT_ACK: {
        wjob_t *job = job_find(self, msg->u.event_ack.job);
        if (job)
            job_ack(self, job, msg->u.event_ack.seq);
        jobs_pump(self);
        break;
    }
    case PROTO_MSG_ERROR:
        handle_error(self, msg);
        break;
    default:
        rr_warn("master sent an unexpected %s", proto_type_name(msg->type));
        break;
    }
}

static int on_master(zloop_t *loop, zsock_t *sock, void *arg)
{
    rr_worker_t *self = arg;
    for (int i = 0; i < DEVICE_DRAIN_MAX && (zsock_events(sock) & ZMQ_POLLIN); i++) {
        proto_msg_t msg;
        proto_error_t perr;
        int rc = proto_recv(sock, NULL, &msg, &perr);
        if (rc == -2)
            break;
        self->heard_at = rr_mono_ms();
        if (rc < 0)
            rr_warn("bad message from master: %s", perr.text);
        else
            handle_message(self, &msg);
        proto_msg_free(&msg);
    }
    return self->stop ? -1 : 0;
}

/* ---- device actors ---- */

static void device_set_state(wdevice_t *dev, const char *state, const char *reason)
{
    if (!strcmp(dev->state, state) && !strcmp(dev->reason, reason))
        return;
    snprintf(dev->state, sizeof dev->state, "%s", state);
    snprintf(dev->reason, sizeof dev->reason, "%s", reason);
    dev->dirty = true;
    dev->sent_in = 0;
    rr_info("device %s: %s%s%s", dev->config->name, state, reason[0] ? ": " : "", reason);
}

static void device_message(rr_worker_t *self, wdevice_t *dev, rr_device_msg_t *m)
{
    wjob_t *job;
    switch (m->kind) {
    case RR_DEVICE_MSG_EVENT:
        if ((job = job_find(self, m->job)))
            job_append(job, m->data, m->len);
        else
            rr_error("device %s: event of unknown job %" PRIu64, dev->config->name, m->job);
        break;
    case RR_DEVICE_MSG_CONSOLE:
        send_console(self, dev, m->data, m->len);
        break;
    case RR_DEVICE_MSG_STATE:
        device_set_state(dev, m->state, m->reason ? m->reason : "");
        break;
    case RR_DEVICE_MSG_DONE:
        if (dev->job == m->job)
            dev->job = 0;
        if ((job = job_find(self, m->job)) && rr_spool_done(job->spool))
            job_ack(self, job, rr_spool_acked(job->spool));
        break;
    default:
        break;
    }
}

static int on_device(zloop_t *loop, zsock_t *pipe, void *arg)
{
    wdevice_t *dev = arg;
    rr_worker_t *self = dev->worker;
    for (int i = 0; i < DEVICE_DRAIN_MAX && (zsock_events(dev->actor) & ZMQ_POLLIN); i++) {
        rr_device_msg_t m;
        if (rr_device_recv(dev->actor, &m) < 0)
            break;
        device_message(self, dev, &m);
        rr_device_msg_free(&m);
    }
    jobs_sync(self);    /* one fdatasync per batch, before anything is sent */
    jobs_pump(self);
    return self->stop ? -1 : 0;
}

static int on_tick(zloop_t *loop, int timer_id, void *arg)
{
    rr_worker_t *self = arg;
    uint64_t now = rr_mono_ms();
    if (self->stop)
        return -1;
    if (!self->welcomed && now - self->hello_at >= HELLO_RETRY_MS) {
        send_hello(self);
    } else if (self->welcomed && now - self->heard_at >= self->hb_timeout_ms) {
        rr_warn("master silent for %" PRIu64 " ms: hello again", now - self->heard_at);
        send_hello(self);
    } else if (self->welcomed && now - self->hb_last >= self->hb_interval_ms) {
        send_heartbeat(self);
    }
    jobs_pump(self);
    return 0;
}

/* ---- life cycle ---- */

static int master_connect(rr_worker_t *self, bool insecure, char *err, size_t errlen)
{
    const rr_worker_config_t *c = self->config;
    self->master = zsock_new(ZMQ_DEALER);
    if (!self->master) {
        snprintf(err, errlen, "master %s: cannot create socket", c->master);
        return -1;
    }
    proto_socket_setup(self->master);
    if (!c->master_public_key || !c->secret_key) {
        if (!insecure) {
            snprintf(err, errlen, "master %s: master_public_key and secret_key are needed "
                     "for CURVE (or --insecure for plaintext)", c->master);
            return -1;
        }
        rr_warn("master %s: INSECURE: plaintext, no authentication", c->master);
    } else {
        zcert_t *own = zcert_load(c->secret_key);
        zcert_t *server = zcert_load(c->master_public_key);
        bool ok = own && server && strcmp(zcert_secret_txt(own),
                                          "0000000000000000000000000000000000000000");
        if (ok) {
            zcert_apply(own, self->master);
            zsock_set_curve_serverkey(self->master, zcert_public_txt(server));
        } else {
            snprintf(err, errlen, "certificates: cannot load %s (with its secret key) or %s",
                     c->secret_key, c->master_public_key);
        }
        zcert_destroy(&own);
        zcert_destroy(&server);
        if (!ok)
            return -1;
    }
    if (zsock_connect(self->master, "%s", c->master) < 0) {
        snprintf(err, errlen, "master %s: connect: %s", c->master, zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

static int devices_start(rr_worker_t *self, char *err, size_t errlen)
{
    const rr_worker_config_t *c = self->config;
    self->devices = calloc(c->device_count ? c->device_count : 1, sizeof *self->devices);
    if (!self->devices) {
        snprintf(err, errlen, "devices: out of memory");
        return -1;
    }
    for (size_t i = 0; i < c->device_count; i++) {
        wdevice_t *d = &self->devices[i];
        d->worker = self;
        d->config = &c->devices[i];
        snprintf(d->state, sizeof d->state, "offline");
        snprintf(d->reason, sizeof d->reason, "console not up yet");
        d->actor = rr_device_new(d->config, c->tftp_root);
        if (!d->actor) {
            snprintf(err, errlen, "device %s: cannot start its actor", d->config->name);
            return -1;
        }
        self->device_count++;
        zloop_reader(self->loop, (zsock_t *)d->actor, on_device, d);
    }
    return 0;
}

rr_worker_t *rr_worker_new(const rr_worker_config_t *config, bool insecure, char *err,
                           size_t errlen)
{
    rr_worker_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "worker: out of memory");
        return NULL;
    }
    self->config = config;
    self->hb_interval_ms = config->heartbeat_interval_ms ? config->heartbeat_interval_ms : 1000;
    self->hb_timeout_ms = 5 * self->hb_interval_ms;
    self->jobs = zlistx_new();
    self->loop = zloop_new();
    if (!self->jobs || !self->loop) {
        snprintf(err, errlen, "worker: out of memory");
        goto err;
    }
    zlistx_set_destructor(self->jobs, job_destructor);
    if (jobs_reload(self, err, errlen) < 0 || master_connect(self, insecure, err, errlen) < 0
        || devices_start(self, err, errlen) < 0)
        goto err;
    zloop_reader(self->loop, self->master, on_master, self);
    zloop_timer(self->loop, RR_WORKER_TICK_MS, 0, on_tick, self);
    return self;

err:
    rr_worker_destroy(&self);
    return NULL;
}

/* Let running jobs end (incomplete "worker stopping") and spool their last events. */
static void jobs_wind_down(rr_worker_t *self)
{
    uint64_t deadline = rr_mono_ms() + STOP_GRACE_MS;
    for (size_t i = 0; i < self->device_count; i++)
        if (self->devices[i].job)
            zsock_send(self->devices[i].actor, "s", "STOP");
    for (;;) {
        bool busy = false;
        for (size_t i = 0; i < self->device_count; i++) {
            wdevice_t *d = &self->devices[i];
            on_device(self->loop, NULL, d);
            busy = busy || d->job;
        }
        if (!busy || rr_mono_ms() >= deadline)
            break;
        zclock_sleep(20);
    }
    jobs_sync(self);
    jobs_pump(self);
}

int rr_worker_run(rr_worker_t *self)
{
    send_hello(self);
    zloop_start(self->loop);
    rr_info("worker stopping");
    self->stop = true;
    jobs_wind_down(self);
    return 0;
}

void rr_worker_stop(rr_worker_t *self)
{
    self->stop = true;
}

void rr_worker_destroy(rr_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rr_worker_t *self = *self_p;
    for (size_t i = 0; i < self->device_count; i++)
        rr_device_destroy(&self->devices[i].actor);
    free(self->devices);
    zloop_destroy(&self->loop);
    zsock_destroy(&self->master);
    zlistx_destroy(&self->jobs);
    free(self);
    *self_p = NULL;
}
