/* clients.c: client requests on the master's client endpoint: SUBMIT, JOBS,
 * JOB, CANCEL (both through jobctl.c), LOGS (logs.c), WORKERS, DEVICES,
 * DEVICE_SET, CONSOLE and CONSOLE_INPUT (console.c),
 * ARTIFACTS and FETCH (artifacts.c).
 *
 * Each request gets exactly one reply (LOGS: a stream ending in LOGS_END).
 * A store failure is an ERROR "internal" to the client and an error line in
 * the master's log; a bad request is an ERROR naming the key.
 */
#include "artifacts.h"
#include "daemon.h"
#include "jobctl.h"

/* Reply to a request whose store call failed with RC. */
static void s_store_failed(rr_master_t *self, zframe_t *rid, int rc, const char *what,
                           const char *key, uint64_t job)
{
    const char *text = rr_store_error(self->store);
    if (rc == RR_STORE_E_NOTFOUND)
        rr_master_send_error(self, self->client_sock, rid, "not_found", key, job, "%s: %s",
                             what, text);
    else if (rc == RR_STORE_E_STATE || rc == RR_STORE_E_INVALID)
        rr_master_send_error(self, self->client_sock, rid, "invalid", key, job, "%s: %s",
                             what, text);
    else {
        rr_error("%s: %s", what, text);
        rr_master_send_error(self, self->client_sock, rid, "internal", NULL, job, "%s: %s",
                             what, text);
    }
}

static void s_send_ok(rr_master_t *self, zframe_t *rid, const char *text)
{
    proto_msg_t msg = { .type = PROTO_MSG_OK, .version = PROTO_VERSION };
    msg.u.ok.text = (char *) text;          /* borrowed: not freed */
    rr_master_send(self, self->client_sock, rid, &msg);
}

/* Tell RID why a submit or cancel (jobctl.h) was refused. */
static void s_send_jobctl_error(rr_master_t *self, zframe_t *rid, uint64_t job,
                                const rr_jobctl_error_t *err)
{
    proto_msg_t msg = { 0 };
    if (proto_error_msg(&msg, err->code, err->key[0] ? err->key : NULL, "%s", err->text) == 0) {
        msg.u.error.job = job;
        msg.u.error.line = err->line;
        msg.u.error.col = err->col;
        rr_master_send(self, self->client_sock, rid, &msg);
    }
    proto_msg_free(&msg);
}

static void s_on_submit(rr_master_t *self, zframe_t *rid, const proto_submit_t *req)
{
    uint64_t id = 0;
    rr_jobctl_error_t err;
    if (rr_jobctl_submit(self, req->yaml, strlen(req->yaml), &id, &err) != 0) {
        s_send_jobctl_error(self, rid, 0, &err);
        return;
    }
    proto_msg_t msg = { .type = PROTO_MSG_SUBMITTED, .version = PROTO_VERSION };
    msg.u.submitted.job = id;
    rr_master_send(self, self->client_sock, rid, &msg);
}

static void s_on_jobs(rr_master_t *self, zframe_t *rid, const proto_jobs_t *req)
{
    proto_msg_t msg = { .type = PROTO_MSG_JOB_LIST, .version = PROTO_VERSION };
    int rc = rr_store_jobs_list(self->store, req->state, req->limit, &msg.u.job_list.jobs,
                                &msg.u.job_list.jobs_count);
    if (rc != RR_STORE_OK)
        s_store_failed(self, rid, rc, "jobs", "st", 0);
    else
        rr_master_send(self, self->client_sock, rid, &msg);
    proto_msg_free(&msg);
}

static void s_on_job(rr_master_t *self, zframe_t *rid, const proto_job_t *req)
{
    proto_msg_t msg = { .type = PROTO_MSG_JOB_DETAIL, .version = PROTO_VERSION };
    proto_jobinfo_t *info = calloc(1, sizeof *info);
    if (!info)
        return;
    msg.u.job_detail.info = info;
    int rc = rr_store_job_get(self->store, req->job, info);
    if (rc == RR_STORE_OK)
        rc = rr_store_job_yaml(self->store, req->job, &msg.u.job_detail.yaml);
    if (rc != RR_STORE_OK)
        s_store_failed(self, rid, rc, "job", "job", req->job);
    else
        rr_master_send(self, self->client_sock, rid, &msg);
    proto_msg_free(&msg);
}

static void s_on_cancel(rr_master_t *self, zframe_t *rid, const proto_cancel_t *req)
{
    const char *state = NULL;
    rr_jobctl_error_t err;
    if (rr_jobctl_cancel(self, req->job, &state, &err) != 0) {
        s_send_jobctl_error(self, rid, req->job, &err);
        return;
    }
    char text[128];
    snprintf(text, sizeof text, "job %" PRIu64 ": %s", req->job,
             streq(state, RR_JOB_CANCELING) ? "canceling" : "canceled");
    s_send_ok(self, rid, text);
}

static void s_on_workers(rr_master_t *self, zframe_t *rid, const proto_workers_t *req)
{
    proto_msg_t msg = { .type = PROTO_MSG_WORKER_LIST, .version = PROTO_VERSION };
    int rc = rr_store_workers_list(self->store, req->state, rr_wall_ms(),
                                   &msg.u.worker_list.workers, &msg.u.worker_list.workers_count);
    if (rc != RR_STORE_OK)
        s_store_failed(self, rid, rc, "workers", "st", 0);
    else
        rr_master_send(self, self->client_sock, rid, &msg);
    proto_msg_free(&msg);
}

static void s_on_devices(rr_master_t *self, zframe_t *rid, const proto_devices_t *req)
{
    proto_msg_t msg = { .type = PROTO_MSG_DEVICE_LIST, .version = PROTO_VERSION };
    int rc = rr_store_devices_list(self->store, req->worker, &msg.u.device_list.devices,
                                   &msg.u.device_list.devices_count);
    if (rc != RR_STORE_OK)
        s_store_failed(self, rid, rc, "devices", "wrk", 0);
    else
        rr_master_send(self, self->client_sock, rid, &msg);
    proto_msg_free(&msg);
}

/* Operator: maintenance on/off. The store changes at once; the worker is told until it acks. */
static void s_on_device_set(rr_master_t *self, zframe_t *rid, const proto_device_set_t *req)
{
    proto_deviceinfo_t info = { 0 };
    int rc = rr_store_device_get(self->store, req->device, &info);
    if (rc == RR_STORE_OK && req->maintenance)
        rc = rr_store_device_set_state(self->store, req->device, RR_DEVICE_MAINTENANCE,
                                       "operator");
    else if (rc == RR_STORE_OK && streq(info.state, RR_DEVICE_MAINTENANCE)) {
        /* Off: idle again, unless its worker is away (then the worker's next HELLO decides). */
        bool live = rr_workers_route(self, info.worker) != NULL;
        rc = rr_store_device_set_state(self->store, req->device,
                                       live ? RR_DEVICE_IDLE : RR_DEVICE_OFFLINE,
                                       live ? NULL : "worker not connected");
    }
    if (rc != RR_STORE_OK) {
        s_store_failed(self, rid, rc, "devset", "dev", 0);
        rr_store_deviceinfo_clear(&info);
        return;
    }
    rr_dispatch_devset(self, req->device, info.worker, req->maintenance);
    rr_store_deviceinfo_clear(&info);
    char text[160];
    snprintf(text, sizeof text, "device %s: maintenance %s", req->device,
             req->maintenance ? "on" : "off");
    rr_info("%s", text);
    s_send_ok(self, rid, text);
    if (!req->maintenance)
        rr_master_schedule(self);
}

/* CURVE: the sender's key must still be allowed and its role enough (roles.h). */
static bool s_client_may(rr_master_t *self, zframe_t *rid, const proto_msg_t *msg)
{
    rr_auth_peer_t who;
    rr_role_t needed = rr_role_needed(msg->type);
    if (!self->auth || needed == RR_ROLE_NONE)
        return true;                        /* insecure, or answered "bad_message" below */
    if (rr_auth_peer(self->auth, rid, RR_AUTH_DOMAIN_CLIENTS, &who) != 0) {
        rr_warn("auth: refused '%s' from client key %s at %s: key not in the client allow-list",
                proto_type_name(msg->type), who.key, who.address);
        rr_master_send_error(self, self->client_sock, rid, "denied", NULL, 0,
                             "this client key is not (or no longer) allowed");
        return false;
    }
    if (rr_role_allows(who.role, needed))
        return true;
    rr_warn("auth: refused '%s' from client %s (key %s at %s): role %s, needs %s",
            proto_type_name(msg->type), who.name, who.key, who.address, rr_role_name(who.role),
            rr_role_name(needed));
    rr_master_send_error(self, self->client_sock, rid, "denied", "t", 0,
                         "'%s' needs a client key with role %s%s; key '%s' has role %s",
                         proto_type_name(msg->type), rr_role_name(needed),
                         needed == RR_ROLE_ADMIN ? "" : " or admin", who.name,
                         rr_role_name(who.role));
    return false;
}

void rr_clients_on_message(rr_master_t *self, zframe_t *rid, proto_msg_t *msg)
{
    if (!s_client_may(self, rid, msg))
        return;
    switch (msg->type) {
    case PROTO_MSG_SUBMIT:     s_on_submit(self, rid, &msg->u.submit); break;
    case PROTO_MSG_JOBS:       s_on_jobs(self, rid, &msg->u.jobs); break;
    case PROTO_MSG_JOB:        s_on_job(self, rid, &msg->u.job); break;
    case PROTO_MSG_CANCEL:     s_on_cancel(self, rid, &msg->u.cancel); break;
    case PROTO_MSG_LOGS:       rr_logs_request(self, rid, &msg->u.logs); break;
    case PROTO_MSG_WORKERS:    s_on_workers(self, rid, &msg->u.workers); break;
    case PROTO_MSG_DEVICES:    s_on_devices(self, rid, &msg->u.devices); break;
    case PROTO_MSG_DEVICE_SET: s_on_device_set(self, rid, &msg->u.device_set); break;
    case PROTO_MSG_CONSOLE:    rr_console_request(self, rid, &msg->u.console); break;
    case PROTO_MSG_CONSOLE_INPUT: rr_console_input(self, rid, &msg->u.console_input); break;
    case PROTO_MSG_ARTIFACTS:  rr_artifacts_list(self, rid, &msg->u.artifacts); break;
    case PROTO_MSG_FETCH:      rr_artifacts_fetch(self, rid, &msg->u.fetch); break;
    default: {
        char peer[64];
        self->metrics.bad_messages++;
        rr_warn("client %s: '%s' is not valid on the client endpoint",
                rr_peer_name(rid, peer, sizeof peer), proto_type_name(msg->type));
        if (msg->type != PROTO_MSG_ERROR)
            rr_master_send_error(self, self->client_sock, rid, "bad_message", "t", 0,
                                 "'%s' is not valid on the client endpoint",
                                 proto_type_name(msg->type));
    }
    }
}
