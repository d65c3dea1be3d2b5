/* fleet.c: simulated workers, clients and the master binary for the
 * benchmarks (fleet.h). */
#include "fleet.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEND_WAIT_MS 5000

extern char **environ;

int fleet_send(zsock_t *sock, const proto_msg_t *msg)
{
    proto_error_t err;
    int64_t deadline = zclock_mono() + SEND_WAIT_MS;
    for (;;) {
        if (proto_send(sock, NULL, msg, &err) == 0)
            return 0;
        if (errno != EAGAIN || err.status != PROTO_OK || zclock_mono() > deadline) {
            fprintf(stderr, "fleet: cannot send '%s': %s\n", proto_type_name(msg->type),
                    err.status != PROTO_OK ? err.text : zmq_strerror(errno));
            return -1;
        }
        zmq_pollitem_t item = { .socket = zsock_resolve(sock), .events = ZMQ_POLLOUT };
        zmq_poll(&item, 1, 100);
    }
}

int fleet_hello(zsock_t *sock, const char *worker, proto_device_t *devices, size_t count)
{
    proto_msg_t msg = { .type = PROTO_MSG_HELLO, .version = PROTO_VERSION };
    msg.u.hello = (proto_hello_t) { .worker = (char *) worker, .rack = (char *) worker,
                                    .version = "bench", .proto_min = PROTO_VERSION_MIN,
                                    .proto_max = PROTO_VERSION, .devices = devices,
                                    .devices_count = count };
    return fleet_send(sock, &msg);
}

int fleet_recv(zsock_t *sock, int timeout_ms, proto_msg_t *msg)
{
    memset(msg, 0, sizeof *msg);
    if (timeout_ms > 0) {
        zmq_pollitem_t item = { .socket = zsock_resolve(sock), .events = ZMQ_POLLIN };
        if (zmq_poll(&item, 1, timeout_ms) <= 0)
            return 0;
    }
    else if (!(zsock_events(sock) & ZMQ_POLLIN))
        return 0;
    proto_error_t err;
    int rc = proto_recv(sock, NULL, msg, &err);
    if (rc == -1)
        fprintf(stderr, "fleet: bad message: %s\n", err.text);
    return rc == 0 ? 1 : rc == -2 ? 0 : -1;
}

int fleet_event(zsock_t *sock, uint64_t job, uint64_t seq, const char *kind, const char *name,
                const char *value, const uint8_t *data, size_t len)
{
    proto_msg_t msg = { .type = PROTO_MSG_JOB_EVENT, .version = PROTO_VERSION };
    msg.u.job_event = (proto_job_event_t) { .job = job, .seq = seq, .ts = (uint64_t) zclock_time(),
                                            .kind = (char *) kind, .name = (char *) name,
                                            .value = (char *) value, .data = (uint8_t *) data,
                                            .data_len = len };
    return fleet_send(sock, &msg);
}

char *fleet_job_yaml(const char *name, const char *device_type, const char *tags,
                     unsigned priority)
{
    char *yaml = NULL;
    if (asprintf(&yaml,
                 "job_name: %s\n"
                 "device_type: %s\n"
                 "priority: %u\n"
                 "tags: [%s]\n"
                 "timeouts: {job: 10m, action: 5m}\n"
                 "actions:\n"
                 "  - test:\n"
                 "      steps:\n"
                 "        - {name: noop, run: \"true\"}\n",
                 name, device_type, priority, tags) < 0)
        return NULL;
    return yaml;
}

int fleet_submit(zsock_t *client, const char *yaml, uint64_t *job)
{
    proto_msg_t msg = { .type = PROTO_MSG_SUBMIT, .version = PROTO_VERSION };
    msg.u.submit.yaml = (char *) yaml;
    if (fleet_send(client, &msg) != 0)
        return -1;
    proto_msg_t reply;
    if (fleet_recv(client, 10000, &reply) != 1) {
        fprintf(stderr, "fleet: no answer to SUBMIT\n");
        return -1;
    }
    int rc = reply.type == PROTO_MSG_SUBMITTED ? 0 : -1;
    if (rc == 0)
        *job = reply.u.submitted.job;
    else
        fprintf(stderr, "fleet: SUBMIT refused: %s\n",
                reply.type == PROTO_MSG_ERROR ? reply.u.error.text : proto_type_name(reply.type));
    proto_msg_free(&reply);
    return rc;
}

int fleet_expect_all(zsock_t **socks, size_t count, proto_type_t type, int timeout_ms)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    for (size_t i = 0; i < count; i++) {
        for (;;) {
            int64_t left = deadline - zclock_mono();
            proto_msg_t msg;
            if (left <= 0 || fleet_recv(socks[i], (int) left, &msg) != 1) {
                fprintf(stderr, "fleet: peer %zu of %zu: no '%s' in time\n", i, count,
                        proto_type_name(type));
                return -1;
            }
            bool found = msg.type == type;
            proto_msg_free(&msg);
            if (found)
                break;
        }
    }
    return 0;
}

/* ---- the master binary ---- */

static int s_write_file(const char *path, mode_t mode, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    int rc = write(fd, text, len) == (ssize_t) len ? 0 : -1;
    close(fd);
    return rc;
}

/* Keys: the master cert and empty allow-lists. */
static int s_master_keys(fleet_master_t *master)
{
    char path[512];
    zcert_t *cert = zcert_new();
    if (!cert)
        return -1;
    snprintf(master->public_key, sizeof master->public_key, "%s", zcert_public_txt(cert));
    snprintf(path, sizeof path, "%s/master", master->dir);
    int rc = zcert_save(cert, path);
    zcert_destroy(&cert);
    snprintf(path, sizeof path, "%s/workers.d", master->dir);
    rc |= mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/clients.d", master->dir);
    rc |= mkdir(path, 0700);
    return rc;
}

static int s_master_config(fleet_master_t *master, bool curve, uint32_t interval_ms,
                           uint32_t timeout_ms)
{
    char path[512], *text = NULL;
    const char *d = master->dir;
    int n = curve ? asprintf(&text,
                             "db: %s/master.db\nworker_endpoint: tcp://127.0.0.1:*\n"
                             "client_endpoint: tcp://127.0.0.1:*\nhttp_listen: \"off\"\n"
                             "secret_key: %s/master\nworker_keys_dir: %s/workers.d\n"
                             "client_keys_dir: %s/clients.d\nheartbeat_interval: %ums\n"
                             "heartbeat_timeout: %ums\nworker_grace: 10m\n",
                             d, d, d, d, interval_ms, timeout_ms)
                  : asprintf(&text,
                             "db: %s/master.db\nworker_endpoint: tcp://127.0.0.1:*\n"
                             "client_endpoint: tcp://127.0.0.1:*\nhttp_listen: \"off\"\n"
                             "heartbeat_interval: %ums\nheartbeat_timeout: %ums\n"
                             "worker_grace: 10m\n", d, interval_ms, timeout_ms);
    if (n < 0)
        return -1;
    snprintf(path, sizeof path, "%s/master.yaml", d);
    int rc = s_write_file(path, 0600, text);
    free(text);
    return rc;
}

/* The endpoints from the master's start line in its log ("workers on X, clients on Y"). */
static int s_master_endpoints(fleet_master_t *master, int timeout_ms)
{
    char path[512];
    snprintf(path, sizeof path, "%s/master.log", master->dir);
    int64_t deadline = zclock_mono() + timeout_ms;
    while (zclock_mono() < deadline) {
        FILE *log = fopen(path, "r");
        char line[1024];
        while (log && fgets(line, sizeof line, log)) {
            char *w = strstr(line, "workers on "), *c = strstr(line, ", clients on ");
            if (!w || !c)
                continue;
            snprintf(master->worker_ep, sizeof master->worker_ep, "%.*s",
                     (int) (c - w - 11), w + 11);
            sscanf(c + 13, "%127[^,\n ]", master->client_ep);
            fclose(log);
            return 0;
        }
        if (log)
            fclose(log);
        if (waitpid(master->pid, NULL, WNOHANG) == master->pid) {
            master->pid = 0;
            fprintf(stderr, "fleet: the master exited; see %s\n", path);
            return -1;
        }
        zclock_sleep(20);
    }
    fprintf(stderr, "fleet: the master did not start in time; see %s\n", path);
    return -1;
}

int fleet_master_init(fleet_master_t *master, bool curve, uint32_t interval_ms,
                      uint32_t timeout_ms)
{
    memset(master, 0, sizeof *master);
    snprintf(master->dir, sizeof master->dir, "/tmp/rr-bench-master-XXXXXX");
    if (!mkdtemp(master->dir))
        return -1;
    master->curve = curve;
    if ((curve && s_master_keys(master) != 0)
        || s_master_config(master, curve, interval_ms, timeout_ms) != 0) {
        fprintf(stderr, "fleet: cannot write the master's files in %s\n", master->dir);
        return -1;
    }
    return 0;
}

int fleet_master_start(fleet_master_t *master)
{
    char config[512], logpath[512];
    snprintf(config, sizeof config, "%s/master.yaml", master->dir);
    snprintf(logpath, sizeof logpath, "%s/master.log", master->dir);
    char *argv[] = { RR_MASTER_BIN, "--config", config, "--log-level", "info",
                     master->curve ? NULL : "--insecure", NULL };
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, logpath,
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    int rc = posix_spawn(&master->pid, argv[0], &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        master->pid = 0;
        fprintf(stderr, "fleet: cannot run %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    return s_master_endpoints(master, 60000);
}

void fleet_master_stop(fleet_master_t *master)
{
    if (master->pid > 0) {
        kill(master->pid, SIGTERM);
        int64_t deadline = zclock_mono() + 10000;
        while (waitpid(master->pid, NULL, WNOHANG) != master->pid) {
            if (zclock_mono() > deadline) {
                kill(master->pid, SIGKILL);
                waitpid(master->pid, NULL, 0);
                break;
            }
            zclock_sleep(20);
        }
        master->pid = 0;
    }
    if (master->dir[0] && !getenv("RR_KEEP_BENCH")) {
        zdir_t *dir = zdir_new(master->dir, NULL);
        if (dir) {
            zdir_remove(dir, true);
            zdir_destroy(&dir);
        }
    }
}
