/* bench_rack_power.c: power on, then read power status of a whole rack of
 * stock ipmi_sim BMCs (tests/rig/rig.py), three ways in the same run:
 *   rackrun    worker/ipmi.h in-process, one thread per node (as the device
 *              actors do), the session opened by "on" reused by "status"
 *   ipmitool   a sequential loop of `ipmitool -I lanplus -C 3` subprocesses,
 *              one per node and operation (the LAVA way)
 *   ipmipower  one `ipmipower` call per operation over all hosts
 * Every node is switched off behind the BMC's back (rig, no IPMI) before each
 * run, so each run powers on the same cold rack. The BMCs run the C
 * chassis_control hook (rig_hook.c), not the Python one, whose start-up
 * would dominate every method, and the nodes boot only after the timed runs
 * (NODE_BOOT_MS). The methods are interleaved
 * over several rounds and each one's median time is kept: the machine is
 * noisy, and the ratios compare runs made minutes apart at most.
 *
 * Figures: rack_power_<method>_s, rack_power_vs_ipmitool (>= 10),
 * rack_power_vs_ipmipower (>= 1.0). --smoke: 4 nodes, one round. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipmi.h"
#include "report.h"
#include "rig.h"

#define RACK_NODES     48
#define ROUNDS         3
#define IPMI_TIMEOUT   5000
#define IPMI_RETRIES   3
#define OUTPUT_MAX     65536
/* A node boots (the rig starts its shell) this long after power on: after
 * every timed run, which switches the rack off again first. Booting is the
 * node's own work, not its BMC's: on a real rack it costs the IPMI client
 * nothing, but in the rig one Python process would do it in the middle of
 * the timed power-ons (about 5 ms per node, a third of the parallel runs). */
#define NODE_BOOT_MS   "60000"

extern char **environ;

typedef struct {
    const rr_rig_t *rig;
    size_t index;
    rr_ipmi_t *bmc;
    bool on;
    int rc;
    char error[512];
} node_run_t;

/* ---- subprocesses ---- */

/* Run ARGV, its stdout into OUT (NUL-terminated). Returns the exit status, -1 on error. */
static int s_run(char *const argv[], char *out, size_t out_len)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, pipefd[0]);
    posix_spawn_file_actions_addclose(&actions, pipefd[1]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        fprintf(stderr, "bench_rack_power: cannot run %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    size_t used = 0;
    ssize_t got;
    while ((got = read(pipefd[0], out + used, out_len - 1 - used)) > 0 || (got < 0 && errno == EINTR))
        if (got > 0 && (used += (size_t) got) == out_len - 1)
            break;
    out[used] = '\0';
    close(pipefd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- rackrun: worker/ipmi.h, one thread per node ---- */

static void *s_power_on(void *arg)
{
    node_run_t *run = arg;
    const rr_rig_node_t *node = rr_rig_node(run->rig, run->index);
    run->bmc = rr_ipmi_new(node->host, node->port, node->user, node->password, IPMI_TIMEOUT,
                           IPMI_RETRIES);
    run->rc = run->bmc ? rr_ipmi_power(run->bmc, RR_POWER_ON) : -1;
    if (run->rc != 0)
        snprintf(run->error, sizeof run->error, "%s",
                 run->bmc ? rr_ipmi_error(run->bmc) : "out of memory");
    return NULL;
}

static void *s_power_status(void *arg)
{
    node_run_t *run = arg;
    run->rc = rr_ipmi_power_status(run->bmc, &run->on);
    if (run->rc != 0)
        snprintf(run->error, sizeof run->error, "%s", rr_ipmi_error(run->bmc));
    else if (!run->on) {
        run->rc = -1;
        snprintf(run->error, sizeof run->error, "%s: off after power on",
                 rr_ipmi_target(run->bmc));
    }
    return NULL;
}

/* Run FN on every node in parallel; 0 when every node succeeded. */
static int s_parallel(node_run_t *runs, size_t n, void *(*fn)(void *))
{
    pthread_t threads[RACK_NODES];
    size_t started = 0;
    for (; started < n; started++)
        if (pthread_create(&threads[started], NULL, fn, &runs[started]) != 0)
            break;
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    int rc = started == n ? 0 : -1;
    for (size_t i = 0; i < n; i++)
        if (runs[i].rc != 0) {
            fprintf(stderr, "bench_rack_power: rackrun: %s\n", runs[i].error);
            rc = -1;
        }
    return rc;
}

static int s_rackrun(const rr_rig_t *rig, size_t n)
{
    node_run_t runs[RACK_NODES] = { 0 };
    for (size_t i = 0; i < n; i++) {
        runs[i].rig = rig;
        runs[i].index = i;
    }
    double start = bench_now();
    int rc = s_parallel(runs, n, s_power_on);
    double on_done = bench_now();
    if (rc == 0)
        rc = s_parallel(runs, n, s_power_status);
    fprintf(stderr, "bench_rack_power: rackrun: power on %.3f s, status %.3f s\n",
            on_done - start, bench_now() - on_done);
    for (size_t i = 0; i < n; i++)
        rr_ipmi_destroy(&runs[i].bmc);
    return rc;
}

/* ---- ipmitool: one subprocess per node and operation, in sequence ---- */

static int s_ipmitool_one(const rr_rig_t *rig, size_t index, const char *op, const char *expect)
{
    const rr_rig_node_t *node = rr_rig_node(rig, index);
    char port[16], out[OUTPUT_MAX];
    snprintf(port, sizeof port, "%u", node->port);
    char *argv[] = { "ipmitool", "-I", "lanplus", "-C", "3", "-H", (char *) node->host,
                     "-p", port, "-U", (char *) node->user,
                     "-f", (char *) rr_rig_password_file(rig), "chassis", "power", (char *) op,
                     NULL };
    int rc = s_run(argv, out, sizeof out);
    if (rc != 0 || !strstr(out, expect)) {
        fprintf(stderr, "bench_rack_power: ipmitool %s:%s power %s: exit %d, output '%s'\n",
                node->host, port, op, rc, out);
        return -1;
    }
    return 0;
}

static int s_ipmitool(const rr_rig_t *rig, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s_ipmitool_one(rig, i, "on", "Up/On") != 0)
            return -1;
    for (size_t i = 0; i < n; i++)
        if (s_ipmitool_one(rig, i, "status", "is on") != 0)
            return -1;
    return 0;
}

/* ---- ipmipower: one call per operation over every host ---- */

typedef struct {
    char hosts[RACK_NODES * 24];
    char config[4200];      /* FreeIPMI config file holding the password (0600) */
} ipmipower_t;

static int s_ipmipower_setup(const rr_rig_t *rig, size_t n, ipmipower_t *ip)
{
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const rr_rig_node_t *node = rr_rig_node(rig, i);
        used += (size_t) snprintf(ip->hosts + used, sizeof ip->hosts - used, "%s%s:%u",
                                  i ? "," : "", node->host, node->port);
    }
    snprintf(ip->config, sizeof ip->config, "%s/ipmipower.conf", rr_rig_dir(rig));
    int fd = open(ip->config, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    const rr_rig_node_t *first = rr_rig_node(rig, 0);
    dprintf(fd, "username %s\npassword %s\n", first->user, first->password);
    close(fd);
    return 0;
}

/* Every host's line of OUT must read "<host>: <expect>". */
static int s_ipmipower_check(const char *out, const char *op, size_t n, const char *expect)
{
    size_t good = 0;
    char pattern[32];
    snprintf(pattern, sizeof pattern, ": %s\n", expect);
    for (const char *p = out; (p = strstr(p, pattern)); p += strlen(pattern))
        good++;
    if (good != n) {
        fprintf(stderr, "bench_rack_power: ipmipower --%s: %zu of %zu hosts '%s': '%s'\n", op,
                good, n, expect, out);
        return -1;
    }
    return 0;
}

static int s_ipmipower(const ipmipower_t *ip, size_t n)
{
    static char out[OUTPUT_MAX];
    const char *ops[2][2] = { { "--on", "ok" }, { "--stat", "on" } };
    for (size_t k = 0; k < 2; k++) {
        char *argv[] = { "ipmipower", "-D", "LAN_2_0", "-I", "3", "-W", "opensesspriv",
                         "--config-file",
                         (char *) ip->config, "-h", (char *) ip->hosts, (char *) ops[k][0],
                         NULL };
        int rc = s_run(argv, out, sizeof out);
        if (rc != 0 || s_ipmipower_check(out, ops[k][0] + 2, n, ops[k][1]) != 0)
            return -1;
    }
    return 0;
}

/* ---- the emulator's own floor ---- */

/* Seconds the rig takes to power on every node when each BMC's hook is called
 * at once, without IPMI: one rig.py process serves all 48 emulated BMCs in
 * turn, so this is the least any parallel client can take (a real rack's
 * BMCs work in parallel). -1 on error. */
static double s_rig_floor(const rr_rig_t *rig, size_t n)
{
    pid_t pids[RACK_NODES];
    double start = bench_now();
    size_t started = 0;
    for (; started < n; started++) {
        const rr_rig_node_t *node = rr_rig_node(rig, started);
        char *argv[] = { RR_RIG_HOOK, (char *) rr_rig_dir(rig), (char *) node->name, "set",
                         "power", "1", NULL };
        if (posix_spawn(&pids[started], argv[0], NULL, NULL, argv, environ) != 0)
            break;
    }
    bool ok = started == n;
    for (size_t i = 0; i < started; i++) {
        int status;
        ok &= waitpid(pids[i], &status, 0) == pids[i] && WIFEXITED(status)
              && WEXITSTATUS(status) == 0;
    }
    return ok ? bench_now() - start : -1;
}

/* ---- the comparison ---- */

static int s_all_off(rr_rig_t *rig, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rr_rig_power(rig, i) != 0 && rr_rig_node_power(rig, i, "off") != 0)
            return -1;
    return 0;
}

enum { M_RACKRUN, M_IPMITOOL, M_IPMIPOWER, M_COUNT };
static const char *s_method[M_COUNT] = { "rackrun", "ipmitool", "ipmipower" };

static int s_time_method(rr_rig_t *rig, size_t n, const ipmipower_t *ip, int method,
                         double *seconds)
{
    if (s_all_off(rig, n) != 0) {
        fprintf(stderr, "bench_rack_power: cannot switch the rack off\n");
        return -1;
    }
    double start = bench_now();
    int rc = method == M_RACKRUN ? s_rackrun(rig, n)
           : method == M_IPMITOOL ? s_ipmitool(rig, n) : s_ipmipower(ip, n);
    *seconds = bench_now() - start;
    return rc;
}

int main(int argc, char **argv)
{
    bool smoke = bench_smoke(argc, argv);
    size_t n = smoke ? 4 : RACK_NODES;
    size_t rounds = smoke ? 1 : ROUNDS;
    rr_rig_t *rig = rr_rig_start(n, "--hook " RR_RIG_HOOK " --boot-delay-ms " NODE_BOOT_MS);
    if (!rig) {
        fprintf(stderr, "bench_rack_power: the rig did not start\n");
        return 1;
    }
    ipmipower_t ip;
    memset(&ip, 0, sizeof ip);
    double times[M_COUNT][ROUNDS];
    int rc = s_ipmipower_setup(rig, n, &ip);
    for (size_t r = 0; r < rounds && rc == 0; r++)
        for (int m = 0; m < M_COUNT && rc == 0; m++) {
            rc = s_time_method(rig, n, &ip, m, &times[m][r]);
            fprintf(stderr, "bench_rack_power: round %zu: %s %.3f s\n", r + 1, s_method[m],
                    times[m][r]);
        }
    double floor_s = -1;
    if (rc == 0 && s_all_off(rig, n) == 0)
        floor_s = s_rig_floor(rig, n);
    rr_rig_stop(&rig);
    if (rc == 0 && floor_s < 0) {
        fprintf(stderr, "bench_rack_power: the rig's hooks failed\n");
        rc = -1;
    }
    if (rc != 0) {
        fprintf(stderr, "bench_rack_power: failed\n");
        return 1;
    }
    double median[M_COUNT];
    for (int m = 0; m < M_COUNT; m++) {
        median[m] = bench_median(times[m], rounds);
        char name[64];
        snprintf(name, sizeof name, "rack_power_%s_s", s_method[m]);
        bench_info(name, median[m], "s");
    }
    bench_info("rack_power_rig_floor_s", floor_s, "s");
    if (n != RACK_NODES)
        bench_note("rack_power: smoke run, %zu nodes", n);
    bench_result("rack_power_vs_ipmitool", median[M_IPMITOOL] / median[M_RACKRUN], "x", ">=", 10);
    bench_result("rack_power_vs_ipmipower", median[M_IPMIPOWER] / median[M_RACKRUN], "x", ">=",
                 1.0);
    return 0;
}
