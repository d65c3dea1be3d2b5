/* clients.c: client requests on the master's client endpoint: SUBMIT, JOBS,
 * JOB, CANCEL, LOGS (logs.c), WORKERS, DEVICES, DEVICE_SET, CONSOLE (console.c).
 *
 * Each request gets exactly one reply (LOGS: a stream ending in LOGS_END).
 * A store failure is an ERROR "internal" to the client and an error line in
 * the master's log; a bad request is an ERROR naming the key.
 */
#include "daemon.h"
#include "jobyaml.h"

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

/* The configured job size limit (max_job_yaml): refused before parsing. */
static bool s_submit_too_big(rr_master_t *self, zframe_t *rid, const proto_submit_t *req)
{
    uint64_t limit = self->config->max_job_yaml_bytes ? self->config->max_job_yaml_bytes
                                                      : RR_MAX_JOB_YAML_DEFAULT;
    size_t len = strlen(req->yaml);
    if (len <= limit)
        return false;
    rr_info("submit refused: job definition of %zu bytes > max_job_yaml %" PRIu64, len, limit);
    rr_master_send_error(self, self->client_sock, rid, "too_big", "yaml", 0,
                         "job definition is %zu bytes, larger than the master's limit of %"
                         PRIu64 " bytes (max_job_yaml)", len, limit);
    return true;
}

/* Append TYPE to the ", "-separated list OFFERED unless it is there already. */
static void s_add_type(char *offered, size_t len, const char *type)
{
    size_t at = strlen(offered), n = strlen(type);
    for (const char *p = offered; (p = strstr(p, type)); p += n)
        if ((p == offered || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
            return;
    snprintf(offered + at, len - at, "%s%s", at ? ", " : "", type);
}

/* A job that no device can ever take is refused at submit, naming the types
 * that are offered: the master knows every device type of every worker that
 * ever said HELLO (any state but retired: a lost worker comes back). A master
 * that knows no device at all yet (a fresh install, workers still starting)
 * cannot tell a typo from a rack not yet connected, so it queues the job.
 * Returns true when the job was refused (the reply is sent). */
static bool s_submit_type_unknown(rr_master_t *self, zframe_t *rid, const proto_jobdef_t *def)
{
    proto_deviceinfo_t *devices = NULL;
    size_t count = 0, known = 0;
    int rc = rr_store_devices_list(self->store, NULL, &devices, &count);
    if (rc != RR_STORE_OK) {
        s_store_failed(self, rid, rc, "submit", NULL, 0);
        return true;
    }
    char offered[512] = "";
    bool found = false;
    for (size_t i = 0; i < count && !found; i++) {
        if (streq(devices[i].state, RR_DEVICE_RETIRED))
            continue;
        known++;
        found = streq(devices[i].type, def->device_type);
        s_add_type(offered, sizeof offered, devices[i].type);
    }
    rr_store_deviceinfos_free(&devices, count);
    if (found || known == 0)
        return false;
    rr_master_send_error(self, self->client_sock, rid, "invalid", "device_type", 0,
                         "device_type '%s': no worker offers this device type (offered: %s)",
                         def->device_type, offered);
    rr_info("submit refused: device_type '%s': no worker offers it (offered: %s)",
            def->device_type, offered);
    return true;
}

static void s_on_submit(rr_master_t *self, zframe_t *rid, const proto_submit_t *req)
{
    proto_jobdef_t *def = NULL;
    rr_jobyaml_error_t yerr = { 0 };
    if (s_submit_too_big(self, rid, req))
        return;
    if (rr_jobyaml_parse(req->yaml, strlen(req->yaml), &def, &yerr) != 0) {
        proto_msg_t msg = { 0 };
        if (proto_error_msg(&msg, "invalid", yerr.path[0] ? yerr.path : NULL, "%s",
                            yerr.text) == 0) {
            msg.u.error.line = yerr.line;
            msg.u.error.col = yerr.col;
            rr_master_send(self, self->client_sock, rid, &msg);
        }
        proto_msg_free(&msg);
        rr_info("submit refused: %s", yerr.text);
        return;
    }
    if (s_submit_type_unknown(self, rid, def)) {
        proto_jobdef_destroy(&def);
        return;
    }
    uint64_t id = 0;
    int rc = rr_store_job_insert(self->store, req->yaml, def, rr_wall_ms(), &id);
    if (rc != RR_STORE_OK)
        s_store_failed(self, rid, rc, "submit", NULL, 0);
    else {
        rr_info("job %" PRIu64 ": submitted '%s' (%s, priority %u)", id, def->name,
                def->device_type, def->priority);
        self->metrics.jobs_submitted++;
        proto_msg_t msg = { .type = PROTO_MSG_SUBMITTED, .version = PROTO_VERSION };
        msg.u.submitted.job = id;
        rr_master_send(self, self->client_sock, rid, &msg);
        rr_master_schedule(self);
    }
    proto_jobdef_destroy(&def);
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
    int rc = rr_store_job_cancel(self->store, req->job, rr_wall_ms(), &state);
    if (rc != RR_STORE_OK) {
        s_store_failed(self, rid, rc, "cancel", "job", req->job);
        return;
    }
    char text[128];
    if (streq(state, RR_JOB_CANCELING)) {
        proto_jobinfo_t info = { 0 };
        if (rr_store_job_get(self->store, req->job, &info) == RR_STORE_OK && info.worker)
            rr_dispatch_cancel(self, req->job, info.worker);
        rr_store_jobinfo_clear(&info);
        snprintf(text, sizeof text, "job %" PRIu64 ": canceling", req->job);
    }
    else {
        rr_master_job_ended(self, req->job);
        snprintf(text, sizeof text, "job %" PRIu64 ": canceled", req->job);
    }
    rr_info("%s", text);
    s_send_ok(self, rid, text);
    rr_master_schedule(self);
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
