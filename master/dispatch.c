/* dispatch.c: master -> worker commands (JOB_START, JOB_CANCEL, DEVICE_SET,
 * CONSOLE_FOLLOW),
 * each re-sent with backoff (from half a heartbeat interval up to 8) until the
 * worker acknowledges it (JOB_ACCEPT for a start, ACK for the others).
 *
 * Commands live in memory only: after a master restart they are rebuilt from
 * the store when the worker says HELLO (workers.c: a scheduled job not yet
 * accepted gets its JOB_START again, a canceling one its JOB_CANCEL). The
 * list keeps send order for the timer; a hash on (kind, job or device)
 * finds a command in O(1). A master of many racks holds thousands of
 * commands at once (10,000 devices getting their jobs): a linear search
 * there cost a third of the master's time in bench_dispatch.
 */
#include "daemon.h"

typedef struct {
    rr_cmd_kind_t kind;
    uint64_t job;           /* START, CANCEL */
    char *device;           /* START, DEVSET */
    char *worker;
    bool maintenance;       /* DEVSET */
    bool on;                /* CONSFOLLOW */
    proto_jobdef_t *def;    /* START: the definition, read once for all its sends */
    uint64_t sent_at;       /* mono ms of the last send, 0 = never */
    uint32_t tries;
    void *handle;           /* its place in cmds */
    char key[160];          /* its key in by_key */
} rr_cmd_t;

struct _rr_dispatch_t {
    zlistx_t *cmds;         /* of rr_cmd_t, owned, in send order */
    zhashx_t *by_key;       /* s_key() -> rr_cmd_t, borrowed */
};

static const char *s_kind_name[] = { "start", "jcancel", "devset", "consfollow" };

static void s_cmd_destroy(void **item)
{
    rr_cmd_t *cmd = *item;
    if (!cmd)
        return;
    free(cmd->device);
    free(cmd->worker);
    proto_jobdef_destroy(&cmd->def);
    free(cmd);
    *item = NULL;
}

rr_dispatch_t *rr_dispatch_new(void)
{
    rr_dispatch_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cmds = zlistx_new();
    self->by_key = zhashx_new();
    if (!self->cmds || !self->by_key) {
        zlistx_destroy(&self->cmds);
        zhashx_destroy(&self->by_key);
        free(self);
        return NULL;
    }
    zlistx_set_destructor(self->cmds, s_cmd_destroy);
    return self;
}

void rr_dispatch_destroy(rr_dispatch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy(&(*self_p)->by_key);
    zlistx_destroy(&(*self_p)->cmds);
    free(*self_p);
    *self_p = NULL;
}

/* The key of a command: its kind and its job (START/CANCEL) or device (DEVSET). */
static const char *s_key(char *buf, size_t len, rr_cmd_kind_t kind, uint64_t job,
                         const char *device)
{
    if (kind == RR_CMD_DEVSET || kind == RR_CMD_CONSFOLLOW)
        snprintf(buf, len, "%s:%s", s_kind_name[kind], device);
    else
        snprintf(buf, len, "%s:%" PRIu64, s_kind_name[kind], job);
    return buf;
}

/* The pending command of KIND for JOB (START/CANCEL) or DEVICE (DEVSET). */
static rr_cmd_t *s_find(rr_dispatch_t *self, rr_cmd_kind_t kind, uint64_t job, const char *device)
{
    char key[sizeof ((rr_cmd_t *) 0)->key];
    if ((kind == RR_CMD_DEVSET || kind == RR_CMD_CONSFOLLOW) && !device)
        return NULL;
    return zhashx_lookup(self->by_key, s_key(key, sizeof key, kind, job, device));
}

static void s_remove(rr_dispatch_t *self, rr_cmd_t *cmd)
{
    zhashx_delete(self->by_key, cmd->key);
    zlistx_delete(self->cmds, cmd->handle);
}

static rr_cmd_t *s_add(rr_dispatch_t *self, rr_cmd_kind_t kind, uint64_t job,
                       const char *device, const char *worker)
{
    rr_cmd_t *cmd = calloc(1, sizeof *cmd);
    if (!cmd)
        return NULL;
    cmd->kind = kind;
    cmd->job = job;
    cmd->device = device ? strdup(device) : NULL;
    cmd->worker = strdup(worker);
    s_key(cmd->key, sizeof cmd->key, kind, job, device);
    if ((device && !cmd->device) || !cmd->worker
        || !(cmd->handle = zlistx_add_end(self->cmds, cmd))) {
        s_cmd_destroy((void **) &cmd);
        return NULL;
    }
    if (zhashx_insert(self->by_key, cmd->key, cmd) != 0) {
        zlistx_delete(self->cmds, cmd->handle);     /* frees cmd */
        return NULL;
    }
    return cmd;
}

/* Build and send CMD. Returns false when it should be dropped (its job is gone). */
static bool s_send(rr_master_t *self, rr_cmd_t *cmd, zframe_t *rid)
{
    proto_msg_t msg = { .version = PROTO_VERSION };
    switch (cmd->kind) {
    case RR_CMD_START:
        if (!cmd->def && rr_store_job_def(self->store, cmd->job, &cmd->def) != RR_STORE_OK) {
            rr_warn("job %" PRIu64 ": start: %s", cmd->job, rr_store_error(self->store));
            return false;
        }
        msg.type = PROTO_MSG_JOB_START;
        msg.u.job_start = (proto_job_start_t) { .job = cmd->job, .device = cmd->device,
                                                .def = cmd->def };
        break;
    case RR_CMD_CANCEL:
        msg.type = PROTO_MSG_JOB_CANCEL;
        msg.u.job_cancel.job = cmd->job;
        break;
    case RR_CMD_DEVSET:
        msg.type = PROTO_MSG_DEVICE_SET;
        msg.u.device_set = (proto_device_set_t) { .device = cmd->device,
                                                  .maintenance = cmd->maintenance };
        break;
    case RR_CMD_CONSFOLLOW:
        msg.type = PROTO_MSG_CONSOLE_FOLLOW;
        msg.u.console_follow = (proto_console_follow_t) { .device = cmd->device, .on = cmd->on };
        break;
    }
    /* msg borrows cmd's strings and definition: not proto_msg_free'd */
    rr_master_send(self, self->worker_sock, rid, &msg);
    return true;
}

/* Send CMD now if its worker is connected. */
static void s_try_send(rr_master_t *self, rr_cmd_t *cmd, uint64_t now)
{
    zframe_t *rid = rr_workers_route(self, cmd->worker);
    if (!rid)
        return;                         /* sent when the worker says HELLO */
    cmd->tries++;
    cmd->sent_at = now ? now : 1;
    if (cmd->tries > 1 && cmd->tries % 10 == 0)
        rr_warn("worker %s: %s %" PRIu64 "%s%s not acknowledged after %u tries", cmd->worker,
                s_kind_name[cmd->kind], cmd->job, cmd->device ? " " : "",
                cmd->device ? cmd->device : "", cmd->tries);
    if (!s_send(self, cmd, rid))
        s_remove(self->dispatch, cmd);
}

void rr_dispatch_start(rr_master_t *self, uint64_t job, const char *device, const char *worker)
{
    rr_workers_own(self, job, worker);      /* the store holds it scheduled on WORKER */
    rr_cmd_t *cmd = s_find(self->dispatch, RR_CMD_START, job, NULL);
    if (!cmd)
        cmd = s_add(self->dispatch, RR_CMD_START, job, device, worker);
    if (!cmd) {
        rr_error("job %" PRIu64 ": start: out of memory", job);
        return;
    }
    s_try_send(self, cmd, rr_mono_ms());
}

void rr_dispatch_cancel(rr_master_t *self, uint64_t job, const char *worker)
{
    rr_cmd_t *start = s_find(self->dispatch, RR_CMD_START, job, NULL);
    if (start)
        s_remove(self->dispatch, start);
    rr_cmd_t *cmd = s_find(self->dispatch, RR_CMD_CANCEL, job, NULL);
    if (!cmd)
        cmd = s_add(self->dispatch, RR_CMD_CANCEL, job, NULL, worker);
    if (!cmd) {
        rr_error("job %" PRIu64 ": cancel: out of memory", job);
        return;
    }
    s_try_send(self, cmd, rr_mono_ms());
}

void rr_dispatch_devset(rr_master_t *self, const char *device, const char *worker,
                        bool maintenance)
{
    rr_cmd_t *old = s_find(self->dispatch, RR_CMD_DEVSET, 0, device);
    if (old)
        s_remove(self->dispatch, old);
    rr_cmd_t *cmd = s_add(self->dispatch, RR_CMD_DEVSET, 0, device, worker);
    if (!cmd) {
        rr_error("device %s: set: out of memory", device);
        return;
    }
    cmd->maintenance = maintenance;
    s_try_send(self, cmd, rr_mono_ms());
}

void rr_dispatch_consfollow(rr_master_t *self, const char *device, const char *worker, bool on)
{
    rr_cmd_t *old = s_find(self->dispatch, RR_CMD_CONSFOLLOW, 0, device);
    if (old)
        s_remove(self->dispatch, old);
    rr_cmd_t *cmd = s_add(self->dispatch, RR_CMD_CONSFOLLOW, 0, device, worker);
    if (!cmd) {
        rr_error("device %s: console follow: out of memory", device);
        return;
    }
    cmd->on = on;
    s_try_send(self, cmd, rr_mono_ms());
}

bool rr_dispatch_acked(rr_master_t *self, rr_cmd_kind_t kind, uint64_t job, const char *device)
{
    rr_cmd_t *cmd = s_find(self->dispatch, kind, job, device);
    if (!cmd)
        return false;
    s_remove(self->dispatch, cmd);
    return true;
}

void rr_dispatch_forget_job(rr_master_t *self, uint64_t job)
{
    rr_cmd_t *cmd;
    while ((cmd = s_find(self->dispatch, RR_CMD_START, job, NULL)))
        s_remove(self->dispatch, cmd);
    while ((cmd = s_find(self->dispatch, RR_CMD_CANCEL, job, NULL)))
        s_remove(self->dispatch, cmd);
}

/* True when the store holds JOB scheduled on DEVICE of WORKER. */
static bool s_start_stored(rr_master_t *self, const rr_cmd_t *cmd)
{
    proto_jobinfo_t info = { 0 };
    bool stored = rr_store_job_get(self->store, cmd->job, &info) == RR_STORE_OK
                  && streq(info.state, RR_JOB_SCHEDULED) && info.worker && info.device
                  && streq(info.worker, cmd->worker) && streq(info.device, cmd->device);
    rr_store_jobinfo_clear(&info);
    return stored;
}

void rr_dispatch_forget_unstored(rr_master_t *self)
{
    zlistx_t *cmds = self->dispatch->cmds;
    rr_cmd_t *cmd = zlistx_first(cmds);
    while (cmd) {
        rr_cmd_t *next = zlistx_next(cmds);
        if (cmd->kind == RR_CMD_START && !s_start_stored(self, cmd)) {
            rr_warn("job %" PRIu64 ": start on %s forgotten: not scheduled in the store",
                    cmd->job, cmd->device);
            s_remove(self->dispatch, cmd);
        }
        cmd = next;
    }
}

/* How long after its last send CMD is due again: half an interval (the
 * timer's jitter must not skip a whole tick), then doubling up to
 * RR_RESEND_MAX_INTERVALS intervals. Without the backoff a master that fell
 * more than half an interval behind on its input re-sent every pending
 * JOB_START on every tick, each one answered again, until it collapsed
 * (bench_dispatch, 10,000 devices: 1.6 million re-sent starts, 270 jobs/s). */
#define RR_RESEND_MAX_INTERVALS 8u
static uint64_t s_resend_after(const rr_master_t *self, const rr_cmd_t *cmd)
{
    uint64_t wait = self->interval_ms / 2;
    uint64_t cap = (uint64_t) self->interval_ms * RR_RESEND_MAX_INTERVALS;
    for (uint32_t i = 1; i < cmd->tries && wait < cap; i++)
        wait *= 2;
    return wait < cap ? wait : cap;
}

/* Whether CMD, not acknowledged, is due again at NOW. Not before its wait
 * (s_resend_after), and not before the master read everything its worker
 * socket held from half that wait after the send on: an ack waiting in the
 * master's own input is not missing. A master behind on its input (10,000
 * devices ending jobs at once in bench_dispatch: seconds of backlog) re-sent
 * each JOB_START two times on average, every one answered again by an accept
 * and an event, which kept it behind. */
static bool s_resend_due(const rr_master_t *self, const rr_cmd_t *cmd, uint64_t now)
{
    if (cmd->sent_at == 0)
        return true;
    uint64_t wait = s_resend_after(self, cmd);
    return now - cmd->sent_at >= wait && self->worker_caught_up >= cmd->sent_at + wait / 2;
}

void rr_dispatch_flush(rr_master_t *self, const char *worker, bool force, uint64_t now_mono)
{
    /* s_try_send may delete the current entry: collect first, then send. */
    zlistx_t *due = zlistx_new();
    if (!due)
        return;
    for (rr_cmd_t *cmd = zlistx_first(self->dispatch->cmds); cmd;
         cmd = zlistx_next(self->dispatch->cmds)) {
        if (worker && !streq(cmd->worker, worker))
            continue;
        if (force || s_resend_due(self, cmd, now_mono))
            zlistx_add_end(due, cmd);
    }
    for (rr_cmd_t *cmd = zlistx_first(due); cmd; cmd = zlistx_next(due))
        s_try_send(self, cmd, now_mono);
    zlistx_destroy(&due);
}
