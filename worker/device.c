/* device.c: one device's actor: its BMC, its on-demand SOL console and its job.
 *
 * The console is open only while someone uses it: a job (opened before the
 * runner starts, so before power on), a follower, an operator typing. It is
 * closed SOL_LINGER_MS after its last user left, which frees the BMC's SOL
 * slot (many BMCs allow one session) and the session's memory (docs/benchmarks.md,
 * sessions 3 and 4). The actor's first open is a probe: the
 * device is idle once its console came up, offline while opening fails
 * (retried with bounded backoff); the probe's session is closed at once. An
 * unused console is probed so again every sol.probe_interval (60 s), so a
 * BMC that died while its device sat idle shows it offline, with the reason. */
#include "device.h"

#include <inttypes.h>
#include <string.h>

#include "heap.h"
#include "ipmi.h"
#include "log.h"
#include "runner.h"
#include "sol.h"
#include "units.h"

#define SOL_BACKOFF_MIN_MS 1000u
#define SOL_BACKOFF_MAX_MS 60000u
/* An unused console stays open this long after its last user left: a job
 * queued right behind the last one, or a follower reattaching, reuses it. */
#define SOL_LINGER_MS 5000u
/* An idle device's console is opened and closed this often unless configured
 * (sol.probe_interval): a BMC that died shows the device offline. */
#define SOL_PROBE_DEFAULT_MS 60000u
/* Consecutive jobs ending incomplete for a reason naming the BMC (power,
 * console) that make the device bad: never scheduled until an operator puts
 * it in maintenance and back (DEVICE_SET). */
#define RR_DEVICE_BAD_AFTER 3u

typedef struct {
    const rr_device_config_t *config;
    const char *tftp_root;
} device_args_t;

typedef struct {
    zsock_t *pipe;
    const rr_device_config_t *config;
    const char *tftp_root;
    rr_ipmi_t *ipmi;
    rr_sol_t *sol;                /* open while used (console_wanted) or lingering */
    uint64_t sol_close_at;        /* mono ms an unused console closes, 0 = none due */
    uint64_t sol_retry_at;        /* mono ms of the next reopen attempt (sol_error set) */
    uint64_t sol_probe_at;        /* mono ms an unused console is tried again (it worked) */
    uint32_t sol_backoff_ms;
    char sol_error[512];          /* why the last open failed: offline; "" = it worked */
    bool maintenance;
    bool following;               /* pass every console byte up ("CONSOLE") */
    unsigned infra_failures;      /* consecutive, see RR_DEVICE_BAD_AFTER */
    char bad_reason[600];         /* "" = not bad */
    bool terminated;
    uint64_t job;                 /* running job, 0 = none */
    const char *stop_reason;      /* set by a CANCEL / $TERM / ABORT during the job */
    char abort_reason[300];       /* ABORT's reason (stop_reason points here) */
    const char *state;            /* last state reported */
} device_t;

/* zsock_send's "8" travels as a decimal string frame. */
static uint64_t pop_u64(zmsg_t *msg)
{
    char *text = zmsg_popstr(msg);
    uint64_t value = text ? strtoull(text, NULL, 10) : 0;
    free(text);
    return value;
}

/* The console's last open worked (it may be closed since: nobody uses it). */
static bool console_ok(const device_t *self)
{
    return self->sol || !self->sol_error[0];
}

/* Someone uses the console: the job, or a client following it. */
static bool console_wanted(const device_t *self)
{
    return self->job || self->following;
}

static void send_state(device_t *self)
{
    const char *state = self->job ? "running"
                      : self->maintenance ? "maintenance"
                      : self->bad_reason[0] ? "bad"
                      : console_ok(self) ? "idle" : "offline";
    const char *reason = !strcmp(state, "bad") ? self->bad_reason
                       : !self->job && !console_ok(self) && !self->maintenance ? self->sol_error
                       : "";
    if (self->state == state && strcmp(state, "offline"))
        return;
    self->state = state;
    zsock_send(self->pipe, "sss", "STATE", state, reason);
}

static int sol_open(device_t *self, char *err, size_t errlen)
{
    const rr_device_config_t *c = self->config;
    rr_sol_destroy(&self->sol);
    self->sol = rr_sol_open(c->bmc_host, c->bmc_port, c->bmc_user, c->bmc_password,
                            c->sol_timeout_ms ? c->sol_timeout_ms : 10000, err, errlen);
    return self->sol ? 0 : -1;
}

/* How often an idle device's unused console is tried (sol.probe_interval). */
static uint64_t probe_ms(const device_t *self)
{
    return self->config->sol_probe_ms ? self->config->sol_probe_ms : SOL_PROBE_DEFAULT_MS;
}

/* Close the console (nobody uses it); its memory goes back to the system. */
static void sol_close(device_t *self)
{
    rr_sol_destroy(&self->sol);
    self->sol_close_at = 0;
    self->sol_probe_at = rr_mono_ms() + probe_ms(self);
    rr_debug("device %s: console closed (unused)", self->config->name);
    /* The job that used it is over: what its runner and console freed lies
     * in this thread's malloc arena; give those pages back. */
    rr_heap_trim();
}

/* Idle-time (re)open with bounded exponential backoff. A console opened
 * with no user (the probe, an offline device's retry) closes at once. The
 * periodic probes of a device that was fine log at debug level only. */
static void sol_try_open(device_t *self)
{
    bool news = self->sol_error[0] || !self->state;
    if (sol_open(self, self->sol_error, sizeof self->sol_error) == 0) {
        if (news)
            rr_info("device %s: console up (bmc %s)", self->config->name,
                    rr_ipmi_target(self->ipmi));
        self->sol_backoff_ms = SOL_BACKOFF_MIN_MS;
        self->sol_error[0] = '\0';
        self->sol_close_at = console_wanted(self) ? 0 : rr_mono_ms();
    } else {
        rr_warn("device %s: %s; retry in %" PRIu32 " ms", self->config->name, self->sol_error,
                self->sol_backoff_ms);
        self->sol_retry_at = rr_mono_ms() + self->sol_backoff_ms;
        self->sol_backoff_ms = self->sol_backoff_ms * 2 > SOL_BACKOFF_MAX_MS
                             ? SOL_BACKOFF_MAX_MS : self->sol_backoff_ms * 2;
    }
    send_state(self);
}

/* A job ended: count infrastructure failures (an incomplete end whose reason
 * names the BMC; a test failure completes the job and is none). */
static void count_outcome(device_t *self, const proto_job_event_t *end)
{
    if (!end->value || !strcmp(end->value, "canceled"))
        return;
    if (!strcmp(end->value, "complete")) {
        self->infra_failures = 0;
        return;
    }
    if (!end->reason || !strstr(end->reason, "bmc "))
        return;
    if (++self->infra_failures < RR_DEVICE_BAD_AFTER || self->bad_reason[0])
        return;
    snprintf(self->bad_reason, sizeof self->bad_reason, "%u consecutive infrastructure "
             "failures, the last: %.500s", self->infra_failures, end->reason);
    rr_warn("device %s: bad: %s", self->config->name, self->bad_reason);
}

/* An operator's maintenance on/off also clears a bad mark. */
static void set_maintenance(device_t *self, bool on)
{
    self->maintenance = on;
    self->infra_failures = 0;
    self->bad_reason[0] = '\0';
}

/* A client follows the console: pass BUF up (live view, not the job's record). */
static void console_pass(device_t *self, const void *buf, size_t len)
{
    if (self->following && len > 0)
        zsock_send(self->pipe, "sb", "CONSOLE", buf, len);
}

/* "FOLLOW" on(int): console_pass on or off. */
static void set_following(device_t *self, zmsg_t *msg)
{
    char *on = zmsg_popstr(msg);
    self->following = on && atoi(on);
    rr_info("device %s: console following %s", self->config->name,
            self->following ? "on" : "off");
    free(on);
}

static void input_sink(void *arg, const char *data, size_t len)
{
    console_pass(arg, data, len);
}

/* "INPUT" bytes: an operator types into the console of a device in
 * maintenance; output read meanwhile goes to the followers. */
static void type_input(device_t *self, zmsg_t *msg)
{
    zframe_t *data = zmsg_pop(msg);
    if (data && !self->job && self->maintenance && !self->sol && console_ok(self))
        sol_try_open(self);             /* on demand; lingers after the typing */
    const char *why = !data ? "empty" : self->job ? "a job runs" : !self->maintenance
                    ? "not in maintenance" : !self->sol ? "console not up" : NULL;
    if (why)
        rr_warn("device %s: console input dropped: %s", self->config->name, why);
    else if (rr_sol_type(self->sol, (const char *) zframe_data(data), zframe_size(data),
                         self->config->test_shell_delay_ms, input_sink, self) < 0)
        rr_warn("device %s: console input: %s", self->config->name, rr_sol_error(self->sol));
    if (self->sol && !console_wanted(self))     /* the operator may type more: linger */
        self->sol_close_at = rr_mono_ms() + SOL_LINGER_MS;
    zframe_destroy(&data);
}

/* ---- runner callbacks ---- */

static void job_emit(void *arg, const proto_job_event_t *event)
{
    device_t *self = arg;
    if (!strcmp(event->kind, "end"))
        count_outcome(self, event);
    if (!strcmp(event->kind, "log"))
        console_pass(self, event->data, event->data_len);
    proto_msg_t msg = { .type = PROTO_MSG_JOB_EVENT, .version = PROTO_VERSION };
    msg.u.job_event = *event;
    uint8_t *buf = NULL;
    size_t len = 0;
    proto_error_t err;
    if (proto_encode(&msg, &buf, &len, &err) < 0) {
        rr_error("device %s: job %" PRIu64 ": %s event dropped: %s", self->config->name,
                 event->job, event->kind, err.text);
        return;
    }
    zsock_send(self->pipe, "s8b", "EVENT", event->job, buf, len);
    free(buf);
}

static int job_reopen(void *arg, rr_sol_t **sol, char *err, size_t errlen)
{
    device_t *self = arg;
    int rc = sol_open(self, err, errlen);
    *sol = self->sol;
    return rc;
}

/* A command that arrived while a job runs. */
static void job_command(device_t *self)
{
    char *cmd = NULL;
    uint64_t job = 0;
    zmsg_t *msg = zmsg_recv(self->pipe);
    if (!msg)
        return;
    cmd = zmsg_popstr(msg);
    if (cmd && !strcmp(cmd, "$TERM")) {
        self->terminated = true;
        self->stop_reason = "worker stopping";
    } else if (cmd && !strcmp(cmd, "STOP")) {
        self->stop_reason = "worker stopping";
    } else if (cmd && !strcmp(cmd, "CANCEL")) {
        job = pop_u64(msg);
        if (job == self->job && !self->stop_reason)
            self->stop_reason = "canceled";
    } else if (cmd && !strcmp(cmd, "ABORT")) {
        job = pop_u64(msg);
        char *why = zmsg_popstr(msg);
        if (job == self->job && !self->stop_reason) {
            snprintf(self->abort_reason, sizeof self->abort_reason, "%s", why ? why : "aborted");
            self->stop_reason = self->abort_reason;
        }
        free(why);
    } else if (cmd && !strcmp(cmd, "MAINT")) {
        char *on = zmsg_popstr(msg);
        set_maintenance(self, on && atoi(on));
        free(on);
    } else if (cmd && !strcmp(cmd, "FOLLOW")) {
        set_following(self, msg);
    } else if (cmd && !strcmp(cmd, "INPUT")) {
        type_input(self, msg);              /* refused: a job runs */
    }
    free(cmd);
    zmsg_destroy(&msg);
}

static const char *job_stop(void *arg)
{
    device_t *self = arg;
    while (!self->stop_reason && (zsock_events(self->pipe) & ZMQ_POLLIN))
        job_command(self);
    return self->stop_reason;
}

/* The job's console, up before the runner powers the node on. When it cannot
 * be opened the runner reopens it with bounded backoff (and says why). */
static void job_console_open(device_t *self, uint64_t job)
{
    char err[512];
    self->sol_close_at = 0;
    if (self->sol || sol_open(self, err, sizeof err) == 0)
        return;
    rr_warn("device %s: job %" PRIu64 ": %s", self->config->name, job, err);
}

static void run_job(device_t *self, uint64_t job, zframe_t *def_frame)
{
    proto_jobdef_t *def = NULL;
    proto_error_t perr;
    self->job = job;
    self->stop_reason = NULL;
    send_state(self);
    if (proto_jobdef_decode(zframe_data(def_frame), zframe_size(def_frame), &def, &perr) < 0) {
        proto_job_event_t ev = { .job = job, .ts = rr_wall_ms(), .kind = "end",
                                 .value = "incomplete", .reason = perr.text };
        job_emit(self, &ev);
    } else {
        rr_info("device %s: job %" PRIu64 ": starting '%s'", self->config->name, job, def->name);
        job_console_open(self, job);
        rr_runner_ctx_t ctx = { .job = job, .def = def, .device = self->config,
                                .tftp_root = self->tftp_root, .ipmi = self->ipmi,
                                .sol = &self->sol, .emit = job_emit, .reopen = job_reopen,
                                .stop = job_stop, .arg = self };
        rr_runner_run(&ctx);
        proto_jobdef_destroy(&def);
        rr_info("device %s: job %" PRIu64 ": finished", self->config->name, job);
    }
    zsock_send(self->pipe, "s8", "DONE", job);
    self->job = 0;
    /* The job's IPMI session (idle since its power off) is not kept either. */
    rr_ipmi_close(self->ipmi);
    if (!self->sol) {
        /* The runner lost the console: offline until it reopens, saying why
         * (the runner's own reopen errors went into the job's reason). */
        self->sol_retry_at = rr_mono_ms();
        snprintf(self->sol_error, sizeof self->sol_error, "bmc %s: console lost during job %"
                 PRIu64, rr_ipmi_target(self->ipmi), job);
    }
    send_state(self);
}

/* A command while idle. Returns false on $TERM. */
static bool idle_command(device_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pipe);
    if (!msg)
        return false;
    char *cmd = zmsg_popstr(msg);
    bool go_on = true;
    if (!cmd || !strcmp(cmd, "$TERM")) {
        go_on = false;
    } else if (!strcmp(cmd, "START")) {
        uint64_t job = pop_u64(msg);
        zframe_t *def = zmsg_pop(msg);
        if (job && def)
            run_job(self, job, def);
        zframe_destroy(&def);
        go_on = !self->terminated;
    } else if (!strcmp(cmd, "MAINT")) {
        char *on = zmsg_popstr(msg);
        set_maintenance(self, on && atoi(on));
        free(on);
        send_state(self);
    } else if (!strcmp(cmd, "FOLLOW")) {
        set_following(self, msg);
    } else if (!strcmp(cmd, "INPUT")) {
        type_input(self, msg);
    }
    free(cmd);
    zmsg_destroy(&msg);
    return go_on;
}

/* Console output while no job runs belongs to no job: read and drop it so
 * it never piles up in the BMC or the SOL engine (a follower still sees it). */
static void idle_console(device_t *self)
{
    char buf[4096];
    ssize_t n;
    while ((n = rr_sol_read(self->sol, buf, sizeof buf)) > 0)
        console_pass(self, buf, (size_t) n);
    if (n < 0) {
        snprintf(self->sol_error, sizeof self->sol_error, "%s", rr_sol_error(self->sol));
        rr_warn("device %s: console lost: %s", self->config->name, self->sol_error);
        rr_sol_destroy(&self->sol);
        self->sol_backoff_ms = SOL_BACKOFF_MIN_MS;
        self->sol_retry_at = rr_mono_ms() + SOL_BACKOFF_MIN_MS;
        send_state(self);
    }
}

/* Open a console that is wanted (a follower) or due for a retry (offline);
 * start the linger of one nobody uses, close it when that ran out. */
static void console_tend(device_t *self)
{
    uint64_t now = rr_mono_ms();
    if (!self->sol) {
        if (self->sol_error[0] ? now >= self->sol_retry_at
                               : console_wanted(self) || now >= self->sol_probe_at)
            sol_try_open(self);
        return;
    }
    if (console_wanted(self))
        self->sol_close_at = 0;
    else if (!self->sol_close_at)
        self->sol_close_at = now + SOL_LINGER_MS;
    else if (now >= self->sol_close_at)
        sol_close(self);
}

/* How long the loop may sleep before console_tend has something to do. */
static long console_due_ms(const device_t *self)
{
    uint64_t now = rr_mono_ms();
    uint64_t at = !self->sol && self->sol_error[0] ? self->sol_retry_at
                : !self->sol && self->sol_probe_at < now + 1000 ? self->sol_probe_at
                : self->sol && self->sol_close_at ? self->sol_close_at : now + 1000;
    return at > now ? (long)(at - now) : 0;
}

static void device_loop(device_t *self)
{
    for (;;) {
        zmq_pollitem_t items[2] = { { zsock_resolve(self->pipe), 0, ZMQ_POLLIN, 0 } };
        int count = 1;
        if (self->sol)
            items[count++] = (zmq_pollitem_t){ NULL, rr_sol_fd(self->sol), ZMQ_POLLIN, 0 };
        if (zmq_poll(items, count, console_due_ms(self)) < 0 && zmq_errno() != EINTR)
            break;
        if ((items[0].revents & ZMQ_POLLIN) && !idle_command(self))
            break;
        if (self->sol && count == 2 && (items[1].revents & ZMQ_POLLIN))
            idle_console(self);
        console_tend(self);
    }
}

static void device_actor(zsock_t *pipe, void *arg)
{
    device_args_t *args = arg;
    device_t self = { .pipe = pipe, .config = args->config, .tftp_root = args->tftp_root,
                      .sol_backoff_ms = SOL_BACKOFF_MIN_MS };
    free(args);
    const rr_device_config_t *c = self.config;
    self.ipmi = rr_ipmi_new(c->bmc_host, c->bmc_port, c->bmc_user, c->bmc_password,
                            c->ipmi_timeout_ms ? c->ipmi_timeout_ms : 5000,
                            c->ipmi_retries ? c->ipmi_retries : 3);
    zsock_signal(pipe, 0);
    if (self.ipmi) {
        sol_try_open(&self);
        device_loop(&self);
    } else {
        rr_error("device %s: cannot create an IPMI handle", c->name);
        while (idle_command(&self))
            ;
    }
    rr_sol_destroy(&self.sol);
    rr_ipmi_destroy(&self.ipmi);
}

zactor_t *rr_device_new(const rr_device_config_t *device, const char *tftp_root)
{
    device_args_t *args = malloc(sizeof *args);
    if (!args)
        return NULL;
    *args = (device_args_t){ device, tftp_root };
    zactor_t *actor = zactor_new(device_actor, args);
    if (!actor)
        free(args);
    return actor;
}

void rr_device_destroy(zactor_t **self)
{
    zactor_destroy(self);
}

int rr_device_start_job(zactor_t *self, uint64_t job, const proto_jobdef_t *def)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    proto_error_t err;
    if (proto_jobdef_encode(def, &buf, &len, &err) < 0)
        return -1;
    int rc = zsock_send(self, "s8b", "START", job, buf, len);
    free(buf);
    return rc;
}

void rr_device_cancel(zactor_t *self, uint64_t job)
{
    zsock_send(self, "s8", "CANCEL", job);
}

void rr_device_abort(zactor_t *self, uint64_t job, const char *reason)
{
    zsock_send(self, "s8s", "ABORT", job, reason);
}

void rr_device_maintenance(zactor_t *self, bool on)
{
    zsock_send(self, "si", "MAINT", on ? 1 : 0);
}

void rr_device_console_follow(zactor_t *self, bool on)
{
    zsock_send(self, "si", "FOLLOW", on ? 1 : 0);
}

void rr_device_console_input(zactor_t *self, const void *data, size_t len)
{
    zsock_send(self, "sb", "INPUT", data, len);
}

int rr_device_recv(zactor_t *self, rr_device_msg_t *msg)
{
    memset(msg, 0, sizeof *msg);
    zmsg_t *m = zmsg_recv(self);
    if (!m)
        return -1;
    char *kind = zmsg_popstr(m);
    zframe_t *f = NULL;
    int rc = 0;
    if (kind && !strcmp(kind, "EVENT")) {
        msg->kind = RR_DEVICE_MSG_EVENT;
    } else if (kind && !strcmp(kind, "DONE")) {
        msg->kind = RR_DEVICE_MSG_DONE;
    } else if (kind && !strcmp(kind, "CONSOLE")) {
        msg->kind = RR_DEVICE_MSG_CONSOLE;
        f = zmsg_pop(m);
        msg->len = f ? zframe_size(f) : 0;
        msg->data = msg->len ? malloc(msg->len) : NULL;
        if (msg->data)
            memcpy(msg->data, zframe_data(f), msg->len);
        rc = msg->data ? 0 : -1;
        zframe_destroy(&f);
        goto out;
    } else if (kind && !strcmp(kind, "STATE")) {
        msg->kind = RR_DEVICE_MSG_STATE;
        msg->state = zmsg_popstr(m);
        msg->reason = zmsg_popstr(m);
        rc = msg->state ? 0 : -1;
        goto out;
    } else {
        rc = -1;
        goto out;
    }
    msg->job = pop_u64(m);
    if (!msg->job) {
        rc = -1;
        goto out;
    }
    if (msg->kind == RR_DEVICE_MSG_EVENT) {
        f = zmsg_pop(m);
        msg->len = f ? zframe_size(f) : 0;
        msg->data = f ? malloc(msg->len ? msg->len : 1) : NULL;
        if (!msg->data)
            rc = -1;
        else
            memcpy(msg->data, zframe_data(f), msg->len);
        zframe_destroy(&f);
    }
out:
    free(kind);
    zmsg_destroy(&m);
    if (rc < 0)
        rr_device_msg_free(msg);
    return rc;
}

void rr_device_msg_free(rr_device_msg_t *msg)
{
    free(msg->data);
    free(msg->state);
    free(msg->reason);
    memset(msg, 0, sizeof *msg);
}
