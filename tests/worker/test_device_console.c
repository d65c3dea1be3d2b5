/* test_device_console.c: a device actor's SOL console is opened on demand
 * (device.c): closed while nobody uses it (the BMC's one SOL session is free);
 * opened for a job before the node is powered on (the boot banner is in the
 * job's log); kept open while a client follows it, also past the linger;
 * closed SOL_LINGER_MS (5 s) after the job's end or the follower's leaving;
 * probed every sol.probe_interval while unused (a dead BMC: offline).
 *
 * Whether the console is open is seen in the UDP sockets this process holds:
 * an open session is one (the SOL engine's, to the BMC), the job's IPMI
 * session another. A console held for the actor's life fails every test.
 * Every wait has a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>
#include <inttypes.h>

#include "device.h"
#include "proto.h"
#include "rig.h"

#define LINGER_MS 5000      /* device.c SOL_LINGER_MS */
/* UDP sockets of an open console (the job's IPMI session is another). */
#define CONSOLE_SOCKETS 1

typedef struct {
    rr_rig_t *rig;
    rr_device_config_t device;
    zactor_t *actor;
    char *console;          /* CONSOLE bytes passed up while following */
    size_t console_len;
    bool lost;              /* the actor reported offline (console lost) */
    int job_sockets;        /* the most sockets seen while a job ran */
} fixture_t;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Whether INODE is a UDP socket (in /proc/self/net/udp or udp6). */
static bool udp_inode(unsigned long inode)
{
    static const char *const tables[] = { "/proc/self/net/udp", "/proc/self/net/udp6" };
    bool found = false;
    for (size_t t = 0; t < 2 && !found; t++) {
        FILE *f = fopen(tables[t], "r");
        char line[512];
        while (f && !found && fgets(line, sizeof line, f)) {
            unsigned long ino = 0;
            /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
            if (sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %lu", &ino) == 1)
                found = ino == inode;
        }
        if (f)
            fclose(f);
    }
    return found;
}

/* UDP sockets this process holds: one per open console (the SOL engine's
 * session to the BMC) and one per open IPMI session (a job's power calls);
 * none while neither is open: nothing else here uses UDP (the rig's
 * processes are others). The engine closes a session's socket a little
 * after it was told to (it closes the session with the BMC first). */
static int sockets_open(void)
{
    DIR *dir = opendir("/proc/self/fd");
    assert_non_null(dir);
    int count = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        char path[300], target[64];
        unsigned long inode;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (sscanf(target, "socket:[%lu]", &inode) == 1 && udp_inode(inode))
            count++;
    }
    closedir(dir);
    return count;
}

/* Handle one message of the actor: STATE (offline counts as lost) and
 * CONSOLE are recorded; an EVENT's log bytes go to LOG (when not NULL).
 * Returns the message's kind, and the job in *DONE_JOB for a DONE. */
static rr_device_msg_kind_t take(fixture_t *fx, char **log, size_t *log_len, uint64_t *done_job)
{
    rr_device_msg_t m;
    assert_int_equal(rr_device_recv(fx->actor, &m), 0);
    rr_device_msg_kind_t kind = m.kind;
    if (kind == RR_DEVICE_MSG_STATE) {
        fprintf(stderr, "# device state %s %s\n", m.state, m.reason ? m.reason : "");
        fx->lost |= !strcmp(m.state, "offline");
    } else if (kind == RR_DEVICE_MSG_CONSOLE) {
        fx->console = realloc(fx->console, fx->console_len + m.len + 1);
        memcpy(fx->console + fx->console_len, m.data, m.len);
        fx->console_len += m.len;
        fx->console[fx->console_len] = '\0';
    } else if (kind == RR_DEVICE_MSG_EVENT && log) {
        int now = sockets_open();
        fx->job_sockets = now > fx->job_sockets ? now : fx->job_sockets;
        proto_msg_t msg;
        proto_error_t err;
        assert_int_equal(proto_decode(m.data, m.len, &msg, &err), 0);
        const proto_job_event_t *ev = &msg.u.job_event;
        if (!strcmp(ev->kind, "log")) {
            *log = realloc(*log, *log_len + ev->data_len + 1);
            memcpy(*log + *log_len, ev->data, ev->data_len);
            *log_len += ev->data_len;
            (*log)[*log_len] = '\0';
        }
        if (!strcmp(ev->kind, "end"))
            fprintf(stderr, "# job end %s %s\n", ev->value, ev->reason ? ev->reason : "");
        proto_msg_free(&msg);
    } else if (kind == RR_DEVICE_MSG_DONE && done_job) {
        *done_job = m.job;
    }
    rr_device_msg_free(&m);
    return kind;
}

/* Take the actor's messages for MS milliseconds (or until STATE WANT, when
 * not NULL). True when WANT came (or WANT is NULL). */
static bool pump(fixture_t *fx, int ms, const char *want)
{
    if (ms <= 0)
        return !want;
    zpoller_t *poller = zpoller_new(fx->actor, NULL);
    uint64_t deadline = now_ms() + (uint64_t)ms;
    bool found = !want;
    while (now_ms() < deadline && !(want && found)) {
        if (!zpoller_wait(poller, 100))
            continue;
        rr_device_msg_t m;
        if (want) {
            assert_int_equal(rr_device_recv(fx->actor, &m), 0);
            if (m.kind == RR_DEVICE_MSG_STATE) {
                fprintf(stderr, "# device state %s %s\n", m.state, m.reason ? m.reason : "");
                fx->lost |= !strcmp(m.state, "offline");
                found = !strcmp(m.state, want);
            }
            rr_device_msg_free(&m);
        } else {
            take(fx, NULL, NULL, NULL);
        }
    }
    zpoller_destroy(&poller);
    return found;
}

/* Take the actor's messages until this process holds WANT sockets (at most
 * MS milliseconds). True when it did. */
static bool wait_sockets(fixture_t *fx, int want, int ms)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;
    while (sockets_open() != want && now_ms() < deadline)
        pump(fx, 100, NULL);
    int have = sockets_open();
    if (have != want)
        fprintf(stderr, "# %d sockets open, want %d\n", have, want);
    return have == want;
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    *state = fx;
    if (!fx || !(fx->rig = rr_rig_start(1, NULL)))
        return -1;
    const rr_rig_node_t *node = rr_rig_node(fx->rig, 0);
    fx->device = (rr_device_config_t){
        .name = (char *)node->name, .type = "highbank", .bmc_host = (char *)node->host,
        .bmc_port = node->port, .bmc_user = (char *)node->user,
        .bmc_password = (char *)node->password, .mac = (char *)node->mac,
        .test_shell_delay_ms = 1, .ipmi_timeout_ms = 2000, .ipmi_retries = 2,
        .sol_timeout_ms = 10000 };
    fx->actor = rr_device_new(&fx->device, "/nonexistent-tftp-root");
    if (!fx->actor || !pump(fx, 30000, "idle"))
        return -1;
    /* The probe's session is closed right after "idle" (and the last test's). */
    return wait_sockets(fx, 0, 15000) ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    if (!fx)
        return 0;
    rr_device_destroy(&fx->actor);
    rr_rig_stop(&fx->rig);
    free(fx->console);
    free(fx);
    return 0;
}

/* Run a job (boot from disk to "# ", one step) to its end; its log in *LOG. */
static void run_job(fixture_t *fx, uint64_t job, char **log)
{
    char *prompts[] = { "# " };
    proto_step_t steps[] = { { "hello", "echo hello from the node", 0 } };
    proto_action_t acts[] = {
        { .kind = "boot", .method = "ipmi-disk", .prompts = prompts, .prompts_count = 1,
          .timeout_s = 60 },
        { .kind = "test", .steps = steps, .steps_count = 1, .timeout_s = 60 },
    };
    proto_jobdef_t def = { .name = "console", .device_type = "highbank", .priority = 50,
                           .job_timeout_s = 120, .action_timeout_s = 60, .actions = acts,
                           .actions_count = 2 };
    assert_int_equal(rr_device_start_job(fx->actor, job, &def), 0);
    zpoller_t *poller = zpoller_new(fx->actor, NULL);
    uint64_t deadline = now_ms() + 90000, done = 0;
    size_t len = 0;
    while (done != job && now_ms() < deadline)
        if (zpoller_wait(poller, 200))
            take(fx, log, &len, &done);
    zpoller_destroy(&poller);
    if (done != job)
        fail_msg("job %" PRIu64 " not done within 90 s; log: %s", job, *log ? *log : "");
}

/* Take the actor's messages until this process holds at least WANT sockets
 * (at most MS milliseconds). True when it did. */
static bool wait_sockets_at_least(fixture_t *fx, int want, int ms)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;
    while (sockets_open() < want && now_ms() < deadline)
        pump(fx, 50, NULL);
    return sockets_open() >= want;
}

static void test_job_opens_the_console_before_power_on_and_logs_the_boot_banner(void **state)
{
    fixture_t *fx = *state;
    char *log = NULL;
    run_job(fx, 21, &log);
    assert_non_null(log);
    /* The banner's first line, printed the moment the node powers on. */
    if (!strstr(log, "U-Boot (rackrun rig)"))
        fail_msg("no boot banner in the job's log: %s", log);
    assert_non_null(strstr(log, "hello from the node"));
    assert_true(fx->job_sockets >= CONSOLE_SOCKETS);  /* it had one */
    free(log);
}

static void test_console_closes_after_the_job_and_its_linger(void **state)
{
    fixture_t *fx = *state;
    char *log = NULL;
    run_job(fx, 22, &log);
    free(log);
    assert_true(fx->job_sockets >= CONSOLE_SOCKETS);
    pump(fx, 2000, NULL);
    assert_true(wait_sockets_at_least(fx, CONSOLE_SOCKETS, 2000)); /* linger */
    assert_true(wait_sockets(fx, 0, LINGER_MS + 5000));
    assert_false(fx->lost);
}

static void test_follower_keeps_the_console_open_past_the_linger(void **state)
{
    fixture_t *fx = *state;
    rr_device_console_follow(fx->actor, true);
    assert_true(wait_sockets_at_least(fx, CONSOLE_SOCKETS, 15000)); /* opened */
    pump(fx, LINGER_MS + 1500, NULL);
    assert_true(wait_sockets_at_least(fx, CONSOLE_SOCKETS, 2000)); /* kept */
    fx->console_len = 0;
    assert_int_equal(rr_rig_node_power(fx->rig, 0, "on"), 0);
    uint64_t deadline = now_ms() + 15000;
    while (now_ms() < deadline && !(fx->console && strstr(fx->console, "U-Boot (rackrun rig)")))
        pump(fx, 200, NULL);
    assert_int_equal(rr_rig_node_power(fx->rig, 0, "off"), 0);
    if (!fx->console || !strstr(fx->console, "U-Boot (rackrun rig)"))
        fail_msg("the follower did not get the boot banner: %s", fx->console ? fx->console : "");
    /* Followed no more: closed after the linger. */
    rr_device_console_follow(fx->actor, false);
    assert_true(wait_sockets(fx, 0, LINGER_MS + 5000));
    assert_false(fx->lost);
}

/* Nobody uses the console; its BMC dies: the next probe finds out (offline,
 * naming the BMC), and once the BMC is back the device is idle again. */
static void test_idle_device_whose_bmc_died_goes_offline_at_the_next_probe(void **state)
{
    fixture_t *fx = *state;
    rr_device_destroy(&fx->actor);                  /* again, probing every second */
    fx->device.sol_probe_ms = 1000;
    fx->device.sol_timeout_ms = 3000;
    fx->actor = rr_device_new(&fx->device, "/nonexistent-tftp-root");
    assert_non_null(fx->actor);
    assert_true(pump(fx, 30000, "idle"));
    assert_true(wait_sockets(fx, 0, 15000));        /* the probe's session closed */
    assert_int_equal(rr_rig_bmc(fx->rig, 0, "kill"), 0);
    assert_true(pump(fx, 30000, "offline"));
    assert_int_equal(rr_rig_bmc(fx->rig, 0, "start"), 0);
    assert_true(pump(fx, 30000, "idle"));
    assert_true(wait_sockets(fx, 0, 15000));
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_job_opens_the_console_before_power_on_and_logs_the_boot_banner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_closes_after_the_job_and_its_linger, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_follower_keeps_the_console_open_past_the_linger,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_idle_device_whose_bmc_died_goes_offline_at_the_next_probe, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
