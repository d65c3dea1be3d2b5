/* bench_memory.c: resident memory of the real rackrun-worker process driving
 * a rack of 48 emulated nodes (tests/rig/rig.py: stock ipmi_sim BMCs, fast
 * shell nodes), connected to a master (in-process, tests/master/harness.h).
 *
 * idle     every device actor started, its SOL console probed (opened on
 *          demand since session 3: closed while unused), every device
 *          reported idle to the master;
 * running  48 jobs (boot ipmi-disk, then a test step that sleeps) running at
 *          once, one per device, each with its console streaming to the
 *          spool and the master.
 * VmRSS is read from /proc/PID/status a few times in each state; the largest
 * reading counts. Figures: worker_rss_idle_MB, worker_rss_running_MB (both
 * <= 30 MB). --smoke: 4 nodes. */
#include <czmq.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "fleet.h"
#include "harness.h"
#include "procstat.h"
#include "report.h"
#include "rig.h"

#define RACK_NODES     48
#define RSS_TARGET_MB  30.0
#define WAIT_MS        90000
#define SAMPLES        5

extern char **environ;

static const char *s_job_yaml =
    "job_name: memory\n"
    "device_type: bench\n"
    "priority: 50\n"
    "timeouts: {job: 10m, action: 5m}\n"
    "actions:\n"
    "  - boot: {method: ipmi-disk, prompts: [\"# \"], timeout: 1m}\n"
    "  - test:\n"
    "      steps:\n"
    "        - {name: hold, run: \"echo holding; sleep 300\"}\n";

/* worker.yaml for every node of RIG, talking to ENDPOINT; 0 or -1. */
static int s_worker_config(const rr_rig_t *rig, const char *dir, const char *endpoint,
                           char *path, size_t len)
{
    snprintf(path, len, "%s/worker.yaml", dir);
    FILE *out = fopen(path, "w");
    if (!out)
        return -1;
    fprintf(out, "worker: bench-rack\nrack: bench-rack\nmaster: %s\ntftp_root: %s/tftp\n"
            "spool_dir: %s/spool\nheartbeat_interval: 1s\n"
            "device_types:\n  bench:\n    prompts: [\"# \"]\n"
            "    serial: {bootloader_delay_ms: 0, test_shell_delay_ms: 0}\n"
            "    ipmi: {timeout: 5s, retries: 3}\n    sol: {timeout: 10s}\n"
            "devices:\n", endpoint, dir, dir);
    for (size_t i = 0; i < rr_rig_size(rig); i++) {
        const rr_rig_node_t *node = rr_rig_node(rig, i);
        fprintf(out, "  - name: mem-%s\n    type: bench\n    mac: \"%s\"\n"
                "    bmc: {host: %s, port: %u, user: %s, password_file: %s}\n", node->name,
                node->mac, node->host, node->port, node->user, rr_rig_password_file(rig));
    }
    char sub[600];
    snprintf(sub, sizeof sub, "%s/tftp", dir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof sub, "%s/spool", dir);
    mkdir(sub, 0700);
    return fclose(out) == 0 ? 0 : -1;
}

static pid_t s_worker_spawn(const char *config, const char *dir)
{
    char log[600];
    snprintf(log, sizeof log, "%s/worker.log", dir);
    /* RR_BENCH_WRAPPER="valgrind --tool=massif ..." runs the worker under a profiler. */
    char *argv[16] = { 0 }, *wrapper = getenv("RR_BENCH_WRAPPER") ? strdup(getenv("RR_BENCH_WRAPPER"))
                                                                  : NULL;
    size_t argc = 0;
    for (char *save = NULL, *word = wrapper ? strtok_r(wrapper, " ", &save) : NULL;
         word && argc < 8; word = strtok_r(NULL, " ", &save))
        argv[argc++] = word;
    char *args[] = { RR_WORKER_BIN, "--config", (char *) config, "--insecure", "--log-level",
                     "warn" };
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
        argv[argc++] = args[i];
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log, O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    free(wrapper);
    return rc == 0 ? pid : -1;
}

/* How many of the master's devices (or jobs, JOBS = true) are in STATE. -1 on error. */
static long s_count(zsock_t *client, bool jobs, const char *state)
{
    proto_msg_t msg = { .version = PROTO_VERSION };
    msg.type = jobs ? PROTO_MSG_JOBS : PROTO_MSG_DEVICES;
    if (jobs)
        msg.u.jobs = (proto_jobs_t) { .state = (char *) state, .limit = 1000 };
    proto_msg_t reply;
    if (fleet_send(client, &msg) != 0 || fleet_recv(client, 5000, &reply) != 1)
        return -1;
    long count = 0;
    if (jobs && reply.type == PROTO_MSG_JOB_LIST)
        count = (long) reply.u.job_list.jobs_count;
    else if (!jobs && reply.type == PROTO_MSG_DEVICE_LIST)
        for (size_t i = 0; i < reply.u.device_list.devices_count; i++)
            count += streq(reply.u.device_list.devices[i].state, state);
    else
        count = -1;
    proto_msg_free(&reply);
    return count;
}

static int s_wait_count(zsock_t *client, bool jobs, const char *state, long want, pid_t worker)
{
    int64_t deadline = zclock_mono() + WAIT_MS;
    long have = 0;
    while (zclock_mono() < deadline) {
        have = s_count(client, jobs, state);
        if (have >= want)
            return 0;
        if (waitpid(worker, NULL, WNOHANG) == worker) {
            fprintf(stderr, "bench_memory: the worker exited\n");
            return -1;
        }
        zclock_sleep(200);
    }
    fprintf(stderr, "bench_memory: %ld of %ld %s %s within %d s\n", have, want,
            jobs ? "jobs" : "devices", state, WAIT_MS / 1000);
    return -1;
}

/* The largest VmRSS of PID over SAMPLES readings 300 ms apart, in MB. */
static double s_rss_mb(pid_t pid)
{
    long most = -1;
    for (int i = 0; i < SAMPLES; i++) {
        long kb = procstat_rss_kb(pid);
        most = kb > most ? kb : most;
        zclock_sleep(300);
    }
    return most < 0 ? -1 : (double) most / 1024.0;
}

static int s_submit_all(zsock_t *client, size_t n, uint64_t *jobs)
{
    for (size_t i = 0; i < n; i++)
        if (fleet_submit(client, s_job_yaml, &jobs[i]) != 0)
            return -1;
    return 0;
}

static void s_cancel_all(zsock_t *client, const uint64_t *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        proto_msg_t msg = { .type = PROTO_MSG_CANCEL, .version = PROTO_VERSION };
        msg.u.cancel.job = jobs[i];
        proto_msg_t reply;
        if (jobs[i] && fleet_send(client, &msg) == 0 && fleet_recv(client, 5000, &reply) == 1)
            proto_msg_free(&reply);
    }
}

static void s_worker_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 150 && waitpid(pid, NULL, WNOHANG) != pid; i++)
        zclock_sleep(100);
    if (kill(pid, 0) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

static int s_measure(harness_t *h, rr_rig_t *rig, const char *dir, size_t n)
{
    char config[600];
    uint64_t jobs[RACK_NODES] = { 0 };
    zsock_t *client = peer_new(h->client_ep, NULL, NULL);
    pid_t worker = -1;
    int rc = -1;
    if (!client || s_worker_config(rig, dir, h->worker_ep, config, sizeof config) != 0
        || (worker = s_worker_spawn(config, dir)) < 0
        || s_wait_count(client, false, "idle", (long) n, worker) != 0)
        goto out;
    zclock_sleep(2000);                     /* let start-up allocations settle */
    double idle = s_rss_mb(worker);
    if (s_submit_all(client, n, jobs) != 0
        || s_wait_count(client, true, "running", (long) n, worker) != 0)
        goto out;
    zclock_sleep(3000);                     /* every node in its test step */
    double running = s_rss_mb(worker);
    if (getenv("RR_BENCH_HOLD_S")) {        /* keep the jobs running for a look (pmap...) */
        fprintf(stderr, "bench_memory: worker pid %d, holding\n", (int) worker);
        zclock_sleep(atoi(getenv("RR_BENCH_HOLD_S")) * 1000);
    }
    if (idle < 0 || running < 0)
        goto out;
    if (n != RACK_NODES)
        bench_note("memory: smoke run, %zu devices", n);
    bench_result("worker_rss_idle_MB", idle, "MB", "<=", RSS_TARGET_MB);
    bench_result("worker_rss_running_MB", running, "MB", "<=", RSS_TARGET_MB);
    rc = 0;
out:
    s_cancel_all(client, jobs, n);
    s_worker_stop(worker);
    zsock_destroy(&client);
    if (rc != 0) {                          /* the dir goes with the harness: show the log */
        char log[600];
        snprintf(log, sizeof log, "tail -c 3000 %s/worker.log >&2", dir);
        if (system(log) != 0)
            fprintf(stderr, "bench_memory: no worker log\n");
    }
    return rc;
}

int main(int argc, char **argv)
{
    bool smoke = bench_smoke(argc, argv);
    size_t n = smoke ? 4 : RACK_NODES;
    rr_log_init("bench-master", RR_LOG_ERROR);
    zsys_init();
    zsys_set_linger(0);
    rr_rig_t *rig = rr_rig_start(n, "--hook " RR_RIG_HOOK);
    harness_t *h = rig ? harness_new() : NULL;
    int rc = 1;
    if (!h)
        goto out;
    h->config->heartbeat_interval_ms = 1000;
    h->config->heartbeat_timeout_ms = 5000;
    if (harness_start(h) != 0) {
        fprintf(stderr, "bench_memory: master: %s\n", h->start_error);
        goto out;
    }
    rc = s_measure(h, rig, h->dir, n) == 0 ? 0 : 1;
out:
    harness_destroy(&h);
    rr_rig_stop(&rig);
    if (rc != 0)
        fprintf(stderr, "bench_memory: failed\n");
    return rc;
}
