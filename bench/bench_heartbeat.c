/* bench_heartbeat.c: what a big fleet's heartbeats cost the real master.
 *
 * The master binary runs as its own process with CURVE on (a cert per
 * worker in its allow-list, as in production: a worker's key is bound to its
 * name). 5,000 simulated workers with 48 devices each (240,000 devices) are
 * spread over SIM_PROCS child processes of this program (`--sim`: a process
 * can hold about 20,000 file descriptors here); each child connects its
 * workers (DEALER, CURVE), says HELLO with all devices, and then beats every
 * second (small HEARTBEATs, no device changes) with the fleet's beats spread
 * evenly over the second.
 *
 * Figures, read from /proc/PID of the master: heartbeat_master_cpu_pct (CPU
 * time over a WINDOW_S window / wall time, % of one core, < 25),
 * heartbeat_master_rss_MB (<= 300); and heartbeat_lost_after_s: one worker
 * stops beating and the master's WORKERS answer (polled every 50 ms) lists it
 * lost; the time from its last beat (CLOCK_MONOTONIC, shared by all
 * processes) must be <= heartbeat_timeout + 1 s (6 s).
 * The scale can be lowered with RR_BENCH_HEARTBEAT_WORKERS (noted, and part of
 * the figure names). --smoke: 20 workers x 4 devices, a 2 s window. */
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fleet.h"
#include "harness.h"
#include "procstat.h"
#include "report.h"

#define WORKERS        5000
#define DEVICES        48
#define SIM_PROCS      4
#define INTERVAL_MS    1000
#define TIMEOUT_MS     5000
#define WINDOW_S       20
#define READY_WAIT_S   600
#define LOST_WAIT_S    30

extern char **environ;

static uint64_t s_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static void s_worker_name(char *buf, size_t len, size_t index)
{
    snprintf(buf, len, "hb-%05zu", index % 100000);
}

/* ==== a simulator process: --sim FIRST COUNT DEVICES ENDPOINT SERVERKEY CERTDIR ==== */

typedef struct {
    zsock_t *sock;
    uint64_t seq;
    uint64_t next_beat_ns;
    uint64_t last_beat_ns;
    bool welcomed, stopped;
    char name[16];
} sim_worker_t;

typedef struct {
    sim_worker_t *workers;
    size_t count, devices, welcomed;
    proto_device_t *devs;
    char (*dev_names)[32];
} sim_t;

static int s_sim_hello(sim_t *sim, sim_worker_t *w)
{
    for (size_t d = 0; d < sim->devices; d++) {
        snprintf(sim->dev_names[d], sizeof sim->dev_names[d], "%s-d%02zu", w->name, d % 100);
        sim->devs[d] = (proto_device_t) { .name = sim->dev_names[d], .type = "bench",
                                          .state = "idle" };
    }
    return fleet_hello(w->sock, w->name, sim->devs, sim->devices);
}

static int s_sim_connect(sim_t *sim, size_t first, const char *endpoint, const char *server_key,
                         const char *certdir)
{
    for (size_t i = 0; i < sim->count; i++) {
        sim_worker_t *w = &sim->workers[i];
        s_worker_name(w->name, sizeof w->name, first + i);
        char path[600];
        snprintf(path, sizeof path, "%s/%s", certdir, w->name);
        zcert_t *cert = zcert_load(path);
        w->sock = zsock_new(ZMQ_DEALER);
        if (!cert || !w->sock) {
            fprintf(stderr, "sim: %s: no cert or socket\n", w->name);
            zcert_destroy(&cert);
            return -1;
        }
        proto_socket_setup(w->sock);
        zcert_apply(cert, w->sock);
        zcert_destroy(&cert);
        zsock_set_curve_serverkey(w->sock, server_key);
        if (zsock_connect(w->sock, "%s", endpoint) != 0 || s_sim_hello(sim, w) != 0)
            return -1;
    }
    return 0;
}

static int s_sim_read(sim_t *sim, sim_worker_t *w)
{
    proto_msg_t msg;
    int got;
    while ((got = fleet_recv(w->sock, 0, &msg)) == 1) {
        if (msg.type == PROTO_MSG_WELCOME && !w->welcomed) {
            w->welcomed = true;
            if (++sim->welcomed == sim->count) {
                printf("READY\n");
                fflush(stdout);
            }
        }
        else if (msg.type == PROTO_MSG_ERROR) {
            bool again = msg.u.error.code && streq(msg.u.error.code, "hello_required");
            if (!again)
                fprintf(stderr, "sim: %s: master: %s\n", w->name, msg.u.error.text);
            if (again && !w->stopped && s_sim_hello(sim, w) != 0) {
                proto_msg_free(&msg);
                return -1;
            }
        }
        proto_msg_free(&msg);
    }
    return got < 0 ? -1 : 0;
}

static int s_sim_beat(sim_t *sim, uint64_t now)
{
    for (size_t i = 0; i < sim->count; i++) {
        sim_worker_t *w = &sim->workers[i];
        if (w->stopped || !w->welcomed || now < w->next_beat_ns)
            continue;
        proto_msg_t beat = { .type = PROTO_MSG_HEARTBEAT, .version = PROTO_VERSION };
        beat.u.heartbeat = (proto_heartbeat_t) { .seq = ++w->seq, .load = 1 };
        if (fleet_send(w->sock, &beat) != 0)
            return -1;
        w->last_beat_ns = now;
        w->next_beat_ns += (uint64_t) INTERVAL_MS * 1000000ULL;
        if (w->next_beat_ns < now)              /* fell behind: no burst of beats */
            w->next_beat_ns = now + (uint64_t) INTERVAL_MS * 1000000ULL;
    }
    return 0;
}

/* stdin: "STOP" silences worker 0 (answers "STOPPED <ns of its last beat>"); EOF ends. */
static bool s_sim_command(sim_t *sim)
{
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return false;
    if (strncmp(line, "STOP", 4) == 0) {
        sim->workers[0].stopped = true;
        printf("STOPPED %" PRIu64 "\n", sim->workers[0].last_beat_ns);
        fflush(stdout);
    }
    return true;
}

static int s_sim_loop(sim_t *sim)
{
    zmq_pollitem_t *items = calloc(sim->count + 1, sizeof *items);
    if (!items)
        return -1;
    for (size_t i = 0; i < sim->count; i++)
        items[i] = (zmq_pollitem_t) { .socket = zsock_resolve(sim->workers[i].sock),
                                      .events = ZMQ_POLLIN };
    items[sim->count] = (zmq_pollitem_t) { .fd = STDIN_FILENO, .events = ZMQ_POLLIN };
    uint64_t start = s_mono_ns();
    for (size_t i = 0; i < sim->count; i++)     /* spread the fleet's beats over a second */
        sim->workers[i].next_beat_ns = start + (uint64_t) INTERVAL_MS * 1000000ULL * i
                                               / sim->count;
    int rc = 0;
    while (rc == 0 && !zsys_interrupted) {
        if (zmq_poll(items, (int) sim->count + 1, 10) < 0)
            break;
        for (size_t i = 0; i < sim->count && rc == 0; i++)
            if (items[i].revents & ZMQ_POLLIN)
                rc = s_sim_read(sim, &sim->workers[i]);
        if (items[sim->count].revents & (ZMQ_POLLIN | ZMQ_POLLERR) && !s_sim_command(sim))
            break;
        if (rc == 0)
            rc = s_sim_beat(sim, s_mono_ns());
    }
    free(items);
    return rc;
}

static int s_sim_main(int argc, char **argv)
{
    if (argc != 8)
        return 2;
    zsys_init();
    zsys_set_linger(0);
    zsys_set_max_sockets(0);
    setvbuf(stdin, NULL, _IONBF, 0);
    sim_t sim = { .count = strtoul(argv[3], NULL, 10), .devices = strtoul(argv[4], NULL, 10) };
    sim.workers = calloc(sim.count, sizeof *sim.workers);
    sim.devs = calloc(sim.devices, sizeof *sim.devs);
    sim.dev_names = calloc(sim.devices, sizeof *sim.dev_names);
    int rc = sim.workers && sim.devs && sim.dev_names ? 0 : -1;
    if (rc == 0)
        rc = s_sim_connect(&sim, strtoul(argv[2], NULL, 10), argv[5], argv[6], argv[7]);
    if (rc == 0)
        rc = s_sim_loop(&sim);
    for (size_t i = 0; sim.workers && i < sim.count; i++)
        zsock_destroy(&sim.workers[i].sock);
    free(sim.workers);
    free(sim.devs);
    free(sim.dev_names);
    return rc == 0 ? 0 : 1;
}

/* ==== the benchmark ==== */

typedef struct {
    pid_t pid;
    FILE *to;       /* its stdin */
    FILE *from;     /* its stdout */
} child_t;

static int s_child_spawn(child_t *child, char *const argv[])
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
        return -1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    int rc = posix_spawn(&child->pid, "/proc/self/exe", &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    child->to = fdopen(in[1], "w");
    child->from = fdopen(out[0], "r");
    return rc == 0 && child->to && child->from ? 0 : -1;
}

/* A line from CHILD within TIMEOUT_S into LINE; 0 or -1. */
static int s_child_line(child_t *child, char *line, size_t len, int timeout_s)
{
    zmq_pollitem_t item = { .fd = fileno(child->from), .events = ZMQ_POLLIN };
    if (zmq_poll(&item, 1, timeout_s * 1000) <= 0 || !fgets(line, (int) len, child->from))
        return -1;
    return 0;
}

static void s_child_stop(child_t *child)
{
    if (child->to)
        fclose(child->to);                      /* EOF: the simulator exits */
    child->to = NULL;
    for (int i = 0; child->pid > 0 && i < 100 && waitpid(child->pid, NULL, WNOHANG) == 0; i++)
        zclock_sleep(100);
    if (child->pid > 0 && kill(child->pid, 0) == 0) {
        kill(child->pid, SIGKILL);
        waitpid(child->pid, NULL, 0);
    }
    if (child->from)
        fclose(child->from);
    child->from = NULL;
    child->pid = 0;
}

/* One cert per worker: public in the master's allow-list, both halves for the sims. */
static int s_make_certs(const fleet_master_t *master, const char *certdir, size_t workers,
                        zcert_t **client)
{
    for (size_t i = 0; i < workers; i++) {
        char name[16], path[600];
        s_worker_name(name, sizeof name, i);
        zcert_t *cert = zcert_new();
        if (!cert)
            return -1;
        zcert_set_meta(cert, "name", "%s", name);
        snprintf(path, sizeof path, "%s/workers.d/%s", master->dir, name);
        int rc = zcert_save_public(cert, path);
        snprintf(path, sizeof path, "%s/%s", certdir, name);
        rc |= zcert_save(cert, path);
        zcert_destroy(&cert);
        if (rc != 0)
            return -1;
    }
    char path[600];
    *client = zcert_new();
    if (!*client)
        return -1;
    zcert_set_meta(*client, "name", "bench-client");
    snprintf(path, sizeof path, "%s/clients.d/bench-client", master->dir);
    return zcert_save_public(*client, path);
}

static int s_start_sims(const fleet_master_t *master, const char *certdir, size_t workers,
                        size_t devices, child_t *sims, size_t procs)
{
    size_t per = (workers + procs - 1) / procs;
    for (size_t p = 0; p < procs; p++) {
        size_t first = p * per, count = first + per > workers ? workers - first : per;
        char f[32], c[32], d[32];
        snprintf(f, sizeof f, "%zu", first);
        snprintf(c, sizeof c, "%zu", count);
        snprintf(d, sizeof d, "%zu", devices);
        char *argv[] = { "bench_heartbeat", "--sim", f, c, d, (char *) master->worker_ep,
                         (char *) master->public_key, (char *) certdir, NULL };
        if (s_child_spawn(&sims[p], argv) != 0)
            return -1;
    }
    for (size_t p = 0; p < procs; p++) {
        char line[64];
        if (s_child_line(&sims[p], line, sizeof line, READY_WAIT_S) != 0
            || strncmp(line, "READY", 5) != 0) {
            fprintf(stderr, "bench_heartbeat: simulator %zu not ready in %d s\n", p,
                    READY_WAIT_S);
            return -1;
        }
    }
    return 0;
}

/* True when the master lists worker NAME as lost. */
static bool s_is_lost(zsock_t *client, const char *name)
{
    proto_msg_t msg = { .type = PROTO_MSG_WORKERS, .version = PROTO_VERSION };
    msg.u.workers.state = "lost";
    proto_msg_t reply;
    if (fleet_send(client, &msg) != 0 || fleet_recv(client, 5000, &reply) != 1)
        return false;
    bool lost = false;
    if (reply.type == PROTO_MSG_WORKER_LIST)
        for (size_t i = 0; i < reply.u.worker_list.workers_count; i++)
            lost |= streq(reply.u.worker_list.workers[i].name, name);
    proto_msg_free(&reply);
    return lost;
}

/* Seconds from worker 0's last beat to the master calling it lost, or -1. */
static double s_lost_after(const fleet_master_t *master, zcert_t *client_cert, child_t *sim0)
{
    zsock_t *client = peer_new(master->client_ep, client_cert, master->public_key);
    char line[64], name[16];
    s_worker_name(name, sizeof name, 0);
    uint64_t last = 0;
    if (!client || fprintf(sim0->to, "STOP\n") < 0 || fflush(sim0->to) != 0
        || s_child_line(sim0, line, sizeof line, 10) != 0
        || sscanf(line, "STOPPED %" SCNu64, &last) != 1) {
        zsock_destroy(&client);
        return -1;
    }
    double lost_after = -1;
    while ((s_mono_ns() - last) / 1e9 < LOST_WAIT_S) {
        if (s_is_lost(client, name)) {
            lost_after = (double) (s_mono_ns() - last) / 1e9;
            break;
        }
        zclock_sleep(50);
    }
    zsock_destroy(&client);
    return lost_after;
}

static void s_report(const fleet_master_t *master, size_t workers, size_t devices,
                     double window_s, double cpu_s, double lost_s, bool scaled)
{
    char name[96];
    const char *suffix = scaled ? "_scaled" : "";
    if (scaled)
        bench_note("heartbeat: scaled down to %zu workers x %zu devices (%zu devices); figures "
                   "named *_scaled", workers, devices, workers * devices);
    snprintf(name, sizeof name, "heartbeat_workers%s", suffix);
    bench_info(name, (double) workers, "workers");
    snprintf(name, sizeof name, "heartbeat_master_cpu_pct%s", suffix);
    bench_result(name, cpu_s / window_s * 100.0, "%", "<", 25);
    snprintf(name, sizeof name, "heartbeat_master_rss_MB%s", suffix);
    bench_result(name, (double) procstat_rss_kb(master->pid) / 1024.0, "MB", "<=", 300);
    snprintf(name, sizeof name, "heartbeat_master_peak_rss_MB%s", suffix);
    bench_info(name, (double) procstat_peak_rss_kb(master->pid) / 1024.0, "MB");
    snprintf(name, sizeof name, "heartbeat_lost_after_s%s", suffix);
    bench_result(name, lost_s, "s", "<=", (TIMEOUT_MS + 1000) / 1000.0);
}

static void s_raise_fd_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

static void s_remove_dir(const char *path)
{
    zdir_t *dir = zdir_new(path, NULL);
    if (dir) {
        zdir_remove(dir, true);
        zdir_destroy(&dir);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && streq(argv[1], "--sim"))
        return s_sim_main(argc, argv);
    bool smoke = bench_smoke(argc, argv);
    size_t workers = smoke ? 20 : WORKERS, devices = smoke ? 4 : DEVICES;
    size_t procs = smoke ? 2 : SIM_PROCS;
    const char *override = getenv("RR_BENCH_HEARTBEAT_WORKERS");
    bool scaled = !smoke && override && strtoul(override, NULL, 10) > 0;
    if (scaled)
        workers = strtoul(override, NULL, 10);
    double window_s = smoke ? 2 : WINDOW_S;
    s_raise_fd_limit();
    zsys_init();
    zsys_set_linger(0);
    fleet_master_t master;
    child_t sims[SIM_PROCS] = { { 0 } };
    zcert_t *client_cert = NULL;
    char certdir[] = "/tmp/rr-bench-certs-XXXXXX";
    int rc = -1;
    if (!mkdtemp(certdir) || fleet_master_init(&master, true, INTERVAL_MS, TIMEOUT_MS) != 0
        || s_make_certs(&master, certdir, workers, &client_cert) != 0
        || fleet_master_start(&master) != 0)
        goto out;
    double start = bench_now();
    if (s_start_sims(&master, certdir, workers, devices, sims, procs) != 0)
        goto out;
    fprintf(stderr, "bench_heartbeat: %zu workers x %zu devices online in %.1f s\n", workers,
            devices, bench_now() - start);
    zclock_sleep(smoke ? 1000 : 5000);         /* the HELLO storm is over: steady beats */
    double cpu0 = procstat_cpu_s(master.pid), t0 = bench_now();
    zclock_sleep((int64_t) (window_s * 1000));
    double cpu_s = procstat_cpu_s(master.pid) - cpu0, wall_s = bench_now() - t0;
    double lost_s = s_lost_after(&master, client_cert, &sims[0]);
    if (cpu0 < 0 || lost_s < 0) {
        fprintf(stderr, "bench_heartbeat: %s\n", lost_s < 0 ? "the silent worker was not "
                "declared lost" : "cannot read the master's CPU time");
        goto out;
    }
    if (smoke)
        bench_note("heartbeat: smoke run, %zu workers x %zu devices", workers, devices);
    s_report(&master, workers, devices, wall_s, cpu_s, lost_s, scaled);
    rc = 0;
out:
    for (size_t p = 0; p < procs; p++)
        s_child_stop(&sims[p]);
    if (rc != 0)
        fprintf(stderr, "bench_heartbeat: failed; master log in %s/master.log\n", master.dir);
    fleet_master_stop(&master);
    zcert_destroy(&client_cert);
    s_remove_dir(certdir);
    return rc == 0 ? 0 : 1;
}
