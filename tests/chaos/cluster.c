/* cluster.c: rig + rackrun-master + rackrun-worker processes for fault tests (cluster.h). */
#include "cluster.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "tmpdir.h"

#define MAX_WORKERS 8
#define CLIENT_TIMEOUT_MS 2000

struct _cluster_t {
    cluster_opts_t opts;
    char *dir;
    char bin_dir[4096];
    rr_rig_t *rig;
    pid_t master;
    pid_t workers[MAX_WORKERS];
    char worker_ep[64], client_ep[64];
    zsock_t *client;
    char path_buf[4400];
};

uint64_t cluster_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *cluster_path(cluster_t *self, const char *name)
{
    snprintf(self->path_buf, sizeof self->path_buf, "%s/%s", self->dir, name);
    return self->path_buf;
}

rr_rig_t *cluster_rig(cluster_t *self)
{
    return self->rig;
}

const char *cluster_device(cluster_t *self, size_t index)
{
    const rr_rig_node_t *node = rr_rig_node(self->rig, index);
    return node ? node->name : NULL;
}

int cluster_node_of(cluster_t *self, const char *device)
{
    for (size_t i = 0; i < rr_rig_size(self->rig); i++)
        if (!strcmp(rr_rig_node(self->rig, i)->name, device))
            return (int)i;
    return -1;
}

/* ---- processes ---- */

/* Two distinct free TCP ports on 127.0.0.1, chosen by the kernel. */
static int free_ports(int *a, int *b)
{
    int fds[2] = { -1, -1 }, ports[2] = { -1, -1 };
    for (int i = 0; i < 2; i++) {
        struct sockaddr_in addr = { .sin_family = AF_INET,
                                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof addr;
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] >= 0 && bind(fds[i], (struct sockaddr *)&addr, sizeof addr) == 0
            && getsockname(fds[i], (struct sockaddr *)&addr, &alen) == 0)
            ports[i] = ntohs(addr.sin_port);
    }
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    *a = ports[0];
    *b = ports[1];
    return ports[0] > 0 && ports[1] > 0 ? 0 : -1;
}

/* fork + exec ARGV with stderr (and stdout) appended to LOG; dies with us. */
static pid_t spawn(char *const argv[], const char *log)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int null = open("/dev/null", O_RDONLY);
    if (fd < 0 || null < 0)
        _exit(127);
    dup2(null, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv);
    dprintf(2, "cluster: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static void reap(pid_t *pid, int sig)
{
    if (*pid <= 0)
        return;
    kill(*pid, sig);
    int64_t deadline = zclock_mono() + 5000;
    while (waitpid(*pid, NULL, WNOHANG) == 0) {
        if (zclock_mono() > deadline) {
            kill(*pid, SIGKILL);
            waitpid(*pid, NULL, 0);
            break;
        }
        zclock_sleep(10);
    }
    *pid = 0;
}

static bool alive(pid_t pid)
{
    return pid > 0 && waitpid(pid, NULL, WNOHANG) == 0;
}

bool cluster_master_alive(cluster_t *self)
{
    return alive(self->master);
}

bool cluster_worker_alive(cluster_t *self, size_t w)
{
    return w < self->opts.workers && alive(self->workers[w]);
}

int cluster_master_start(cluster_t *self)
{
    char bin[4200], config[4400], log[4400];
    if (self->master > 0)
        return -1;
    snprintf(bin, sizeof bin, "%s/master/rackrun-master", self->bin_dir);
    snprintf(config, sizeof config, "%s/master.yaml", self->dir);
    snprintf(log, sizeof log, "%s/master.log", self->dir);
    char *argv[] = { bin, "--config", config, "--insecure", "--log-level", "debug", NULL };
    self->master = spawn(argv, log);
    return self->master > 0 ? 0 : -1;
}

int cluster_master_kill(cluster_t *self)
{
    if (self->master <= 0)
        return -1;
    reap(&self->master, SIGKILL);
    return 0;
}

int cluster_worker_start(cluster_t *self, size_t w)
{
    char bin[4200], config[4400], log[4400];
    if (w >= self->opts.workers || self->workers[w] > 0)
        return -1;
    snprintf(bin, sizeof bin, "%s/worker/rackrun-worker", self->bin_dir);
    snprintf(config, sizeof config, "%s/worker%zu.yaml", self->dir, w);
    snprintf(log, sizeof log, "%s/worker%zu.log", self->dir, w);
    char *argv[] = { bin, "--config", config, "--insecure", "--log-level", "debug", NULL };
    self->workers[w] = spawn(argv, log);
    return self->workers[w] > 0 ? 0 : -1;
}

int cluster_worker_kill(cluster_t *self, size_t w)
{
    if (w >= self->opts.workers || self->workers[w] <= 0)
        return -1;
    kill(self->workers[w], SIGCONT);   /* a stopped process must be able to die */
    reap(&self->workers[w], SIGKILL);
    return 0;
}

int cluster_worker_signal(cluster_t *self, size_t w, int sig)
{
    if (w >= self->opts.workers || self->workers[w] <= 0)
        return -1;
    return kill(self->workers[w], sig);
}

/* ---- configuration ---- */

static int write_text(const char *path, const char *text)
{
    return tmpdir_write(path, text, strlen(text));
}

static int write_master_config(cluster_t *self)
{
    char text[8192];
    snprintf(text, sizeof text,
             "db: %s/master.db\n"
             "worker_endpoint: %s\n"
             "client_endpoint: %s\n"
             "http_listen: \"off\"\n"
             "heartbeat_interval: %" PRIu32 "ms\n"
             "heartbeat_timeout: %" PRIu32 "ms\n"
             "worker_grace: %" PRIu32 "ms\n%s",
             self->dir, self->worker_ep, self->client_ep, self->opts.heartbeat_interval_ms,
             self->opts.heartbeat_timeout_ms, self->opts.worker_grace_ms,
             self->opts.master_extra ? self->opts.master_extra : "");
    return write_text(cluster_path(self, "master.yaml"), text);
}

static int write_worker_config(cluster_t *self, size_t w)
{
    size_t cap = 65536, n = 0;
    char *text = malloc(cap);
    if (!text)
        return -1;
    n += (size_t)snprintf(text + n, cap - n,
                          "worker: rack%zu\nmaster: %s\ntftp_root: %s/tftp\n"
                          "spool_dir: %s/spool%zu\nheartbeat_interval: %" PRIu32 "ms\n"
                          "device_types:\n  chaos:\n    prompts: [\"# \"]\n"
                          "    serial: {test_shell_delay_ms: %" PRIu32 "}\n"
                          "    ipmi: {timeout: %" PRIu32 "ms, retries: %" PRIu32 "}\n"
                          "    sol: {timeout: %" PRIu32 "ms}\n"
                          "devices:\n",
                          w, self->worker_ep, self->dir, self->dir, w,
                          self->opts.heartbeat_interval_ms, self->opts.test_shell_delay_ms,
                          self->opts.ipmi_timeout_ms, self->opts.ipmi_retries,
                          self->opts.sol_timeout_ms);
    size_t k = self->opts.nodes_per_worker;
    for (size_t i = w * k; i < (w + 1) * k && n < cap; i++) {
        const rr_rig_node_t *node = rr_rig_node(self->rig, i);
        n += (size_t)snprintf(text + n, cap - n,
                              "  - name: %s\n    type: chaos\n"
                              "    bmc: {host: \"%s\", port: %u, user: %s, password_file: %s}\n"
                              "    mac: \"%s\"\n",
                              node->name, node->host, node->port, node->user,
                              rr_rig_password_file(self->rig), node->mac);
    }
    char name[64];
    snprintf(name, sizeof name, "worker%zu.yaml", w);
    int rc = n < cap ? write_text(cluster_path(self, name), text) : -1;
    free(text);
    return rc;
}

static void defaults(cluster_opts_t *o)
{
    if (!o->workers) o->workers = 1;
    if (!o->nodes_per_worker) o->nodes_per_worker = 1;
    if (!o->heartbeat_interval_ms) o->heartbeat_interval_ms = 200;
    if (!o->heartbeat_timeout_ms) o->heartbeat_timeout_ms = 1000;
    if (!o->worker_grace_ms) o->worker_grace_ms = 3000;
    if (!o->sol_timeout_ms) o->sol_timeout_ms = 5000;
    if (!o->ipmi_timeout_ms) o->ipmi_timeout_ms = 1000;
    if (!o->ipmi_retries) o->ipmi_retries = 2;
    if (!o->test_shell_delay_ms) o->test_shell_delay_ms = 1;
}

static bool all_idle(cluster_t *self)
{
    for (size_t i = 0; i < rr_rig_size(self->rig); i++) {
        char state[32] = "";
        if (cluster_device_state(self, cluster_device(self, i), state, sizeof state, NULL, 0)
            < 0 || (self->opts.wait_known_only ? !strcmp(state, RR_DEVICE_OFFLINE)
                                               : strcmp(state, RR_DEVICE_IDLE) != 0))
            return false;
    }
    return true;
}

cluster_t *cluster_new(const cluster_opts_t *opts)
{
    cluster_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->opts = opts ? *opts : (cluster_opts_t){ 0 };
    defaults(&self->opts);
    if (self->opts.workers > MAX_WORKERS)
        goto err;
    const char *bin = getenv("RR_BINARY_DIR");
    snprintf(self->bin_dir, sizeof self->bin_dir, "%s", bin && *bin ? bin : ".");
    self->dir = tmpdir_new("cluster");
    if (!self->dir)
        goto err;
    char tftp[4400], rig_opts[8192];
    snprintf(tftp, sizeof tftp, "%s/tftp", self->dir);
    mkdir(tftp, 0755);
    snprintf(rig_opts, sizeof rig_opts, "--tftp-root %s %s", tftp,
             self->opts.rig_options ? self->opts.rig_options : "");
    self->rig = rr_rig_start(self->opts.workers * self->opts.nodes_per_worker, rig_opts);
    if (!self->rig) {
        fprintf(stderr, "cluster: the rig did not start\n");
        goto err;
    }
    int wport = -1, cport = -1;
    if (free_ports(&wport, &cport) < 0) {
        fprintf(stderr, "cluster: no free ports (%d, %d)\n", wport, cport);
        goto err;
    }
    snprintf(self->worker_ep, sizeof self->worker_ep, "tcp://127.0.0.1:%d", wport);
    snprintf(self->client_ep, sizeof self->client_ep, "tcp://127.0.0.1:%d", cport);
    if (write_master_config(self) < 0 || cluster_master_start(self) < 0) {
        fprintf(stderr, "cluster: cannot start the master\n");
        goto err;
    }
    for (size_t w = 0; w < self->opts.workers; w++) {
        if (write_worker_config(self, w) < 0 || cluster_worker_start(self, w) < 0) {
            fprintf(stderr, "cluster: cannot start worker %zu\n", w);
            goto err;
        }
    }
    int64_t deadline = zclock_mono() + 30000;
    while (!all_idle(self)) {
        if (zclock_mono() > deadline) {
            fprintf(stderr, "cluster %s: devices not idle within 30 s\n", self->dir);
            goto err;
        }
        zclock_sleep(100);
    }
    return self;

err:
    fprintf(stderr, "cluster: setup failed (dir %s)\n", self->dir ? self->dir : "-");
    cluster_destroy(&self, false);
    return NULL;
}

void cluster_destroy(cluster_t **self_p, bool passed)
{
    if (!self_p || !*self_p)
        return;
    cluster_t *self = *self_p;
    for (size_t w = 0; w < MAX_WORKERS; w++) {
        if (self->workers[w] > 0)
            kill(self->workers[w], SIGCONT);
        reap(&self->workers[w], SIGTERM);
    }
    reap(&self->master, SIGTERM);
    zsock_destroy(&self->client);
    rr_rig_stop(&self->rig);
    const char *keep = getenv("RR_KEEP_RIG");
    if (self->dir && passed && !(keep && !strcmp(keep, "1")))
        tmpdir_remove(&self->dir);
    else if (self->dir)
        fprintf(stderr, "cluster: logs kept in %s\n", self->dir);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

/* ---- client ---- */

/* One request, one reply of any type within TIMEOUT_MS. A fresh socket after
 * a timeout, so a stale reply (or a request queued to a dead master) never
 * answers the next question. */
static int request(cluster_t *self, const proto_msg_t *req, proto_msg_t *reply, int timeout_ms)
{
    proto_error_t err;
    if (!self->client) {
        self->client = zsock_new(ZMQ_DEALER);
        if (!self->client)
            return -1;
        proto_socket_setup(self->client);
        if (zsock_connect(self->client, "%s", self->client_ep) < 0)
            return -1;
    }
    if (proto_send(self->client, NULL, req, &err) < 0)
        goto reset;
    zpoller_t *poller = zpoller_new(self->client, NULL);
    bool ready = poller && zpoller_wait(poller, timeout_ms);
    zpoller_destroy(&poller);
    if (ready && proto_recv(self->client, NULL, reply, &err) == 0)
        return 0;
reset:
    zsock_destroy(&self->client);
    return -1;
}

uint64_t cluster_submit(cluster_t *self, const char *yaml)
{
    proto_msg_t req = { .type = PROTO_MSG_SUBMIT, .version = PROTO_VERSION };
    req.u.submit.yaml = (char *)yaml;
    proto_msg_t reply;
    if (request(self, &req, &reply, 5000) < 0) {
        fprintf(stderr, "cluster: submit: no answer from the master\n");
        return 0;
    }
    uint64_t job = reply.type == PROTO_MSG_SUBMITTED ? reply.u.submitted.job : 0;
    if (!job)
        fprintf(stderr, "cluster: submit refused: %s\n",
                reply.type == PROTO_MSG_ERROR ? reply.u.error.text : proto_type_name(reply.type));
    proto_msg_free(&reply);
    return job;
}

int cluster_cancel(cluster_t *self, uint64_t job)
{
    proto_msg_t req = { .type = PROTO_MSG_CANCEL, .version = PROTO_VERSION };
    req.u.cancel.job = job;
    proto_msg_t reply;
    if (request(self, &req, &reply, CLIENT_TIMEOUT_MS) < 0)
        return -1;
    int rc = reply.type == PROTO_MSG_OK ? 0 : -1;
    proto_msg_free(&reply);
    return rc;
}

int cluster_job(cluster_t *self, uint64_t job, proto_msg_t *detail, int timeout_ms)
{
    proto_msg_t req = { .type = PROTO_MSG_JOB, .version = PROTO_VERSION };
    req.u.job.job = job;
    if (request(self, &req, detail, timeout_ms) < 0)
        return -1;
    if (detail->type != PROTO_MSG_JOB_DETAIL) {
        proto_msg_free(detail);
        return -1;
    }
    return 0;
}

bool cluster_wait_finished(cluster_t *self, uint64_t job, int timeout_ms, char *outcome,
                           size_t outcome_len, char *reason, size_t reason_len)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    while (zclock_mono() < deadline) {
        proto_msg_t m;
        if (cluster_job(self, job, &m, CLIENT_TIMEOUT_MS) == 0) {
            const proto_jobinfo_t *info = m.u.job_detail.info;
            bool done = !strcmp(info->state, RR_JOB_FINISHED);
            if (done) {
                snprintf(outcome, outcome_len, "%s", info->outcome ? info->outcome : "");
                snprintf(reason, reason_len, "%s", info->reason ? info->reason : "");
            }
            proto_msg_free(&m);
            if (done)
                return true;
        }
        zclock_sleep(100);
    }
    return false;
}

int cluster_device_state(cluster_t *self, const char *device, char *state, size_t state_len,
                         char *reason, size_t reason_len)
{
    proto_msg_t req = { .type = PROTO_MSG_DEVICES, .version = PROTO_VERSION };
    proto_msg_t reply;
    if (request(self, &req, &reply, CLIENT_TIMEOUT_MS) < 0)
        return -1;
    int rc = -1;
    if (reply.type == PROTO_MSG_DEVICE_LIST) {
        for (size_t i = 0; i < reply.u.device_list.devices_count; i++) {
            const proto_deviceinfo_t *d = &reply.u.device_list.devices[i];
            if (strcmp(d->name, device))
                continue;
            snprintf(state, state_len, "%s", d->state);
            if (reason)
                snprintf(reason, reason_len, "%s", d->reason ? d->reason : "");
            rc = 0;
        }
    }
    proto_msg_free(&reply);
    return rc;
}

bool cluster_wait_device(cluster_t *self, const char *device, const char *state, int timeout_ms)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    while (zclock_mono() < deadline) {
        char now[32] = "";
        if (cluster_device_state(self, device, now, sizeof now, NULL, 0) == 0
            && !strcmp(now, state))
            return true;
        zclock_sleep(50);
    }
    return false;
}

/* ---- the database ---- */

int cluster_events(cluster_t *self, uint64_t job, proto_job_event_t **events, size_t *count)
{
    char err[512], db[4400];
    *events = NULL;
    *count = 0;
    snprintf(db, sizeof db, "%s/master.db", self->dir);
    rr_store_t *store = rr_store_open(db, err, sizeof err);
    if (!store) {
        fprintf(stderr, "cluster: %s\n", err);
        return -1;
    }
    int rc = 0;
    size_t cap = 0;
    uint64_t from = 0;
    for (;;) {
        proto_job_event_t *part = NULL;
        size_t n = 0;
        if (rr_store_events_read(store, job, from, 1000, &part, &n) != RR_STORE_OK) {
            fprintf(stderr, "cluster: events of job %" PRIu64 ": %s\n", job,
                    rr_store_error(store));
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        if (*count + n > cap) {
            cap = (*count + n) * 2;
            proto_job_event_t *grown = realloc(*events, cap * sizeof *grown);
            if (!grown) {
                rr_store_events_free(&part, n);
                rc = -1;
                break;
            }
            *events = grown;
        }
        memcpy(*events + *count, part, n * sizeof *part);
        *count += n;
        from = part[n - 1].seq;
        free(part);     /* members moved into *events */
    }
    rr_store_destroy(&store);
    return rc;
}

bool cluster_wait_event(cluster_t *self, uint64_t job, const char *kind, const char *name,
                        const char *value, int timeout_ms)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    while (zclock_mono() < deadline) {
        proto_job_event_t *ev = NULL;
        size_t n = 0;
        bool found = false;
        if (cluster_events(self, job, &ev, &n) == 0) {
            for (size_t i = 0; i < n && !found; i++)
                found = !strcmp(ev[i].kind, kind)
                        && (!name || (ev[i].name && !strcmp(ev[i].name, name)))
                        && (!value || (ev[i].value && !strcmp(ev[i].value, value)));
        }
        rr_store_events_free(&ev, n);
        if (found)
            return true;
        zclock_sleep(100);
    }
    return false;
}

/* ---- jobs and verdicts ---- */

const char *const CLUSTER_RESULTS[] = { "count", "probe-line", "probe", NULL };

void cluster_job_yaml(char *buf, size_t len, const char *tag, unsigned lines, unsigned period_ms,
                      unsigned action_timeout_s)
{
    snprintf(buf, len,
             "job_name: %s\n"
             "device_type: chaos\n"
             "timeouts: {job: 10m, action: %us}\n"
             "actions:\n"
             "  - boot: {method: ipmi-disk, prompts: [\"# \"], timeout: 30s}\n"
             "  - test:\n"
             "      steps:\n"
             "        - name: count\n"
             "          run: 'i=0; while [ $i -lt %u ]; do i=$((i+1)); echo \"%s line $i\"; "
             "sleep %u.%03u; done'\n"
             "        - name: probe\n"
             "          run: 'printf \"\\nRR_%%s name=probe-line result=pass\\n\" RESULT'\n",
             tag, action_timeout_s, lines, tag, period_ms / 1000, period_ms % 1000);
}

int cluster_verify_job(cluster_t *self, uint64_t job, const char *device, size_t *cursor,
                       verdict_t *verdict)
{
    int index = cluster_node_of(self, device);
    proto_job_event_t *events = NULL;
    size_t count = 0, len = 0, from = 0;
    if (index < 0 || cluster_events(self, job, &events, &count) < 0)
        return -1;
    char *capture = rr_rig_console_out(self->rig, (size_t)index, &len);
    if (!capture) {
        rr_store_events_free(&events, count);
        return -1;
    }
    verify_job(job, events, count, capture, len, cursor ? cursor : &from, CLUSTER_RESULTS,
               verdict);
    free(capture);
    rr_store_events_free(&events, count);
    return 0;
}
