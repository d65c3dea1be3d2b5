/* fake_master.c: a scripted master client endpoint (see fake_master.h). */
#include "fake_master.h"

#include <czmq.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

#define T0 1795608003120ull /* 2026-11-25 12:00:03.120 UTC */

struct _rr_fake_master_t {
    zactor_t *actor;
    char endpoint[64];
    char cert_path[4096];
    bool curve;
    pthread_mutex_t lock;
    rr_fake_seen_t seen;
};

static void reply(zsock_t *router, zframe_t *id, const proto_msg_t *msg)
{
    proto_error_t err = { 0 };
    if (proto_send(router, id, msg, &err) != 0)
        fprintf(stderr, "fake master: send %s: %s\n", proto_type_name(msg->type), err.text);
}

static void reply_error(zsock_t *router, zframe_t *id, const char *code, const char *key,
                        uint32_t line, uint32_t col, const char *text)
{
    proto_msg_t m = { .type = PROTO_MSG_ERROR, .version = PROTO_VERSION };
    m.u.error.code = (char *)code;
    m.u.error.key = (char *)key;
    m.u.error.text = (char *)text;
    m.u.error.line = line;
    m.u.error.col = col;
    reply(router, id, &m);
}

static void on_jobs(rr_fake_master_t *self, zsock_t *router, zframe_t *id, const proto_jobs_t *req)
{
    pthread_mutex_lock(&self->lock);
    snprintf(self->seen.jobs_state, sizeof self->seen.jobs_state, "%s", req->state ? req->state : "");
    self->seen.jobs_limit = req->limit;
    pthread_mutex_unlock(&self->lock);
    proto_jobinfo_t jobs[2] = {
        { .id = 7, .name = "highbank smoke", .state = "running", .device_type = "highbank",
          .device = "n01", .worker = "rack01", .priority = 50, .submitted = T0, .started = T0 + 1000 },
        { .id = 6, .name = "disk test", .state = "finished", .outcome = "incomplete",
          .reason = "worker lost", .device_type = "highbank", .priority = 75, .submitted = T0 - 60000,
          .started = T0 - 59000, .ended = T0 - 1000 },
    };
    proto_msg_t m = { .type = PROTO_MSG_JOB_LIST, .version = PROTO_VERSION };
    m.u.job_list.jobs = jobs;
    m.u.job_list.jobs_count = 2;
    reply(router, id, &m);
}

static void on_submit(zsock_t *router, zframe_t *id, const proto_submit_t *req)
{
    if (strstr(req->yaml, "bad")) {
        reply_error(router, id, "invalid", "actions[0].boot.method", 3, 5,
                    "line 3, column 5: actions[0].boot.method: unknown boot method 'floppy' "
                    "(ipmi-pxe, ipmi-disk, uboot-pxe)");
        return;
    }
    proto_msg_t m = { .type = PROTO_MSG_SUBMITTED, .version = PROTO_VERSION };
    m.u.submitted.job = strstr(req->yaml, "incomplete") ? 8 : 7;
    reply(router, id, &m);
}

static void send_event(zsock_t *router, zframe_t *id, proto_job_event_t ev)
{
    proto_msg_t m = { .type = PROTO_MSG_JOB_EVENT, .version = PROTO_VERSION };
    m.u.job_event = ev;
    reply(router, id, &m);
}

/* Job 9: a follower gets seq 1 and then silence, as from a master that
 * restarted and forgot it; asked without follow, the whole stream. */
static void on_logs_silent(zsock_t *router, zframe_t *id, const proto_logs_t *req)
{
    send_event(router, id, (proto_job_event_t){ .job = req->job, .seq = 1, .ts = T0, .kind = "state", .name = "running" });
    if (req->follow)
        return;
    send_event(router, id, (proto_job_event_t){ .job = req->job, .seq = 2, .ts = T0 + 1000, .kind = "end", .value = "complete" });
    proto_msg_t end = { .type = PROTO_MSG_LOGS_END, .version = PROTO_VERSION };
    end.u.logs_end.job = req->job;
    end.u.logs_end.last_seq = 2;
    end.u.logs_end.finished = true;
    reply(router, id, &end);
}

/* The stream of job 7 (complete) or 8 (incomplete, boot failed). Seq 3 is
 * sent twice, as a re-sent stream would: the CLI must print it once. */
static void on_logs(zsock_t *router, zframe_t *id, const proto_logs_t *req)
{
    uint64_t job = req->job;
    bool ok = job == 7;
    if (job == 9 || job == 10) {
        on_logs_silent(router, id, req);
        return;
    }
    if (job != 7 && job != 8) {
        reply_error(router, id, "not_found", NULL, 0, 0, "no job with that id");
        return;
    }
    send_event(router, id, (proto_job_event_t){ .job = job, .seq = 1, .ts = T0, .kind = "state", .name = "running" });
    send_event(router, id, (proto_job_event_t){ .job = job, .seq = 2, .ts = T0, .kind = "action", .name = "boot", .value = "start" });
    proto_job_event_t log = { .job = job, .seq = 3, .ts = T0 + 100, .kind = "log",
                              .data = (uint8_t *)"U-Boot\r\n# ", .data_len = 10 };
    send_event(router, id, log);
    send_event(router, id, log);
    send_event(router, id, (proto_job_event_t){ .job = job, .seq = 4, .ts = T0 + 3200, .since = T0 + 0, .kind = "console_gap", .reason = "bmc lost" });
    send_event(router, id, (proto_job_event_t){ .job = job, .seq = 5, .ts = T0 + 4200, .kind = "action", .name = "boot",
                                               .value = ok ? "end" : "fail", .code = 4200,
                                               .reason = ok ? NULL : "no prompt '# ' within 300 s" });
    if (ok)
        send_event(router, id, (proto_job_event_t){ .job = job, .seq = 6, .ts = T0 + 5000, .kind = "result", .name = "kernel-version", .value = "pass", .code = 0 });
    send_event(router, id, (proto_job_event_t){ .job = job, .seq = 7, .ts = T0 + 6000, .kind = "end",
                                               .value = ok ? "complete" : "incomplete",
                                               .reason = ok ? NULL : "boot: no prompt" });
    proto_msg_t end = { .type = PROTO_MSG_LOGS_END, .version = PROTO_VERSION };
    end.u.logs_end.job = job;
    end.u.logs_end.last_seq = 7;
    end.u.logs_end.finished = true;
    reply(router, id, &end);
}

static void on_job(zsock_t *router, zframe_t *id, const proto_job_t *req)
{
    if (req->job == 10)
        return; /* a master that stopped answering */
    if (req->job != 7 && req->job != 9) {
        reply_error(router, id, "not_found", NULL, 0, 0, "no job 999");
        return;
    }
    proto_jobinfo_t info = { .id = req->job, .name = "highbank smoke", .state = "finished", .outcome = "complete",
                             .device_type = "highbank", .device = "n01", .worker = "rack01", .priority = 50,
                             .submitted = T0, .started = T0 + 1000, .ended = T0 + 7000 };
    proto_msg_t m = { .type = PROTO_MSG_JOB_DETAIL, .version = PROTO_VERSION };
    m.u.job_detail.info = &info;
    m.u.job_detail.yaml = "job_name: highbank smoke\n";
    reply(router, id, &m);
}

static void on_workers(zsock_t *router, zframe_t *id)
{
    proto_workerinfo_t w = { .name = "rack01", .rack = "r1", .state = "online", .version = "0.1.0",
                             .heartbeat_age_ms = 400, .device_count = 2 };
    proto_msg_t m = { .type = PROTO_MSG_WORKER_LIST, .version = PROTO_VERSION };
    m.u.worker_list.workers = &w;
    m.u.worker_list.workers_count = 1;
    reply(router, id, &m);
}

static void on_devices(zsock_t *router, zframe_t *id)
{
    char *tags[] = { "sata", "fast" };
    proto_deviceinfo_t d[2] = {
        { .name = "n01", .worker = "rack01", .type = "highbank", .tags = tags, .tags_count = 2,
          .state = "running", .job = 7 },
        { .name = "n02", .worker = "rack01", .type = "highbank", .state = "maintenance", .reason = "operator" },
    };
    proto_msg_t m = { .type = PROTO_MSG_DEVICE_LIST, .version = PROTO_VERSION };
    m.u.device_list.devices = d;
    m.u.device_list.devices_count = 2;
    reply(router, id, &m);
}

static void on_device_set(rr_fake_master_t *self, zsock_t *router, zframe_t *id,
                          const proto_device_set_t *req)
{
    pthread_mutex_lock(&self->lock);
    snprintf(self->seen.set_device, sizeof self->seen.set_device, "%s", req->device);
    self->seen.set_maintenance = req->maintenance;
    pthread_mutex_unlock(&self->lock);
    proto_msg_t m = { .type = PROTO_MSG_OK, .version = PROTO_VERSION };
    reply(router, id, &m);
}

static void dispatch(rr_fake_master_t *self, zsock_t *router, zframe_t *id, const proto_msg_t *msg)
{
    pthread_mutex_lock(&self->lock);
    self->seen.requests++;
    pthread_mutex_unlock(&self->lock);
    switch (msg->type) {
    case PROTO_MSG_JOBS: on_jobs(self, router, id, &msg->u.jobs); break;
    case PROTO_MSG_SUBMIT: on_submit(router, id, &msg->u.submit); break;
    case PROTO_MSG_LOGS: on_logs(router, id, &msg->u.logs); break;
    case PROTO_MSG_JOB: on_job(router, id, &msg->u.job); break;
    case PROTO_MSG_WORKERS: on_workers(router, id); break;
    case PROTO_MSG_DEVICES: on_devices(router, id); break;
    case PROTO_MSG_DEVICE_SET: on_device_set(self, router, id, &msg->u.device_set); break;
    case PROTO_MSG_CANCEL: {
        proto_msg_t m = { .type = PROTO_MSG_OK, .version = PROTO_VERSION };
        m.u.ok.text = "job 7: canceling";
        reply(router, id, &m);
        break;
    }
    default: reply_error(router, id, "unknown_type", "t", 0, 0, "not a client request"); break;
    }
}

static zsock_t *bind_router(rr_fake_master_t *self)
{
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    if (!router)
        return NULL;
    proto_socket_setup(router);
    if (self->curve) {
        zcert_t *cert = zcert_load(self->cert_path);
        if (!cert) {
            zsock_destroy(&router);
            return NULL;
        }
        zcert_apply(cert, router);
        zsock_set_curve_server(router, 1);
        zcert_destroy(&cert);
    }
    int port = zsock_bind(router, "tcp://127.0.0.1:*");
    if (port < 0) {
        zsock_destroy(&router);
        return NULL;
    }
    snprintf(self->endpoint, sizeof self->endpoint, "tcp://127.0.0.1:%d", port);
    return router;
}

static void fake_actor(zsock_t *pipe, void *arg)
{
    rr_fake_master_t *self = arg;
    zsock_t *router = bind_router(self);
    zsock_signal(pipe, router ? 0 : 1);
    if (!router)
        return;
    zpoller_t *poller = zpoller_new(pipe, router, NULL);
    while (poller) {
        void *which = zpoller_wait(poller, -1);
        if (which != router)
            break; /* $TERM on the pipe, or interrupted */
        proto_msg_t msg = { 0 };
        proto_error_t err = { 0 };
        zframe_t *id = NULL;
        if (proto_recv(router, &id, &msg, &err) == 0)
            dispatch(self, router, id, &msg);
        else if (id)
            reply_error(router, id, "bad_message", err.key, 0, 0, err.text);
        proto_msg_free(&msg);
        zframe_destroy(&id);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&router);
}

rr_fake_master_t *rr_fake_master_new(const char *server_cert_path)
{
    rr_fake_master_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    self->curve = server_cert_path != NULL;
    if (server_cert_path)
        snprintf(self->cert_path, sizeof self->cert_path, "%s", server_cert_path);
    self->actor = zactor_new(fake_actor, self);
    if (!self->actor || !self->endpoint[0])
        rr_fake_master_destroy(&self);
    return self;
}

void rr_fake_master_destroy(rr_fake_master_t **self_p)
{
    rr_fake_master_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy(&self->actor);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

const char *rr_fake_master_endpoint(const rr_fake_master_t *self)
{
    return self->endpoint;
}

rr_fake_seen_t rr_fake_master_seen(rr_fake_master_t *self)
{
    pthread_mutex_lock(&self->lock);
    rr_fake_seen_t seen = self->seen;
    pthread_mutex_unlock(&self->lock);
    return seen;
}
