/* test_device_job.c: a device actor runs whole jobs on an emulated rack node
 * (stock ipmi_sim BMC + fast shell node): deploy tftp from file:// artifacts,
 * boot ipmi-pxe to "# ", test steps; and a cancel in the middle of a step.
 *
 * The rig and the actor are shared; each test's teardown leaves the actor idle
 * (cancels a job a failed test left running, or replaces the actor), so one
 * failure does not run into the next test. Every wait is cut to the program's
 * deadline, and a watchdog thread ends the program with a message naming the
 * test if it is still running past it, before ctest's timeout would kill it
 * without a word. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "device.h"
#include "proto.h"
#include "rig.h"
#include "tmpdir.h"

#define HELLO_SHA "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
#define PROGRAM_DEADLINE_MS 165000u   /* ctest's TIMEOUT (tests/worker/CMakeLists.txt) is 180 s */
#define TEARDOWN_MARGIN_MS 15000u     /* kept for the teardown of a test that timed out */

typedef struct {
    rr_rig_t *rig;
    char *dir;
    char root[4096];
    rr_device_config_t device;
    zactor_t *actor;
    uint64_t running_job;   /* started and not yet seen DONE, 0 = none */
} fixture_t;

/* Every event of one job, decoded, in the order the actor sent them. */
typedef struct {
    proto_msg_t *msgs;
    size_t count;
    char *log;           /* all log bytes concatenated */
    size_t log_len;
    size_t biggest_chunk;
} stream_t;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t program_deadline;          /* mono ms */
static const char *volatile running_test;  /* set by RUNNING() in each test */
#define RUNNING() (running_test = __func__)

/* WANT ms, or less: what is left before the program's deadline, minus room for a teardown. */
static int budget_ms(int want)
{
    uint64_t now = now_ms(), end = program_deadline - TEARDOWN_MARGIN_MS;
    uint64_t left = end > now ? end - now : 0;
    return left < (uint64_t)want ? (int)(left < 1000 ? 1000 : left) : want;
}

/* Still running at the deadline: something hangs (maybe a teardown). Say which
 * test and stop; the rig stops with this process (rig.h). */
static void *watchdog(void *arg)
{
    (void)arg;
    while (now_ms() < program_deadline)
        usleep(200 * 1000);
    fprintf(stderr, "test_device_job: FAILED: %s still running at the program deadline "
            "(%u ms); giving up\n", running_test ? running_test : "setup", PROGRAM_DEADLINE_MS);
    fflush(stdout);
    _exit(1);
}

/* Wait for the actor to report STATE WANT. */
static bool wait_state(zactor_t *actor, const char *want, int timeout_ms)
{
    zpoller_t *poller = zpoller_new(actor, NULL);
    uint64_t deadline = now_ms() + (uint64_t)budget_ms(timeout_ms);
    bool found = false;
    while (!found && now_ms() < deadline) {
        if (!zpoller_wait(poller, 200))
            continue;
        rr_device_msg_t m;
        if (rr_device_recv(actor, &m) < 0)
            break;
        found = m.kind == RR_DEVICE_MSG_STATE && !strcmp(m.state, want);
        if (m.kind == RR_DEVICE_MSG_STATE)
            fprintf(stderr, "# device state %s %s\n", m.state, m.reason ? m.reason : "");
        rr_device_msg_free(&m);
    }
    zpoller_destroy(&poller);
    return found;
}

static void stream_add(stream_t *s, rr_device_msg_t *m)
{
    proto_msg_t msg;
    proto_error_t err;
    if (proto_decode(m->data, m->len, &msg, &err) < 0)
        fail_msg("undecodable event: %s", err.text);
    assert_int_equal(msg.type, PROTO_MSG_JOB_EVENT);
    s->msgs = realloc(s->msgs, (s->count + 1) * sizeof *s->msgs);
    s->msgs[s->count++] = msg;
    const proto_job_event_t *ev = &msg.u.job_event;
    if (!strcmp(ev->kind, "log")) {
        s->log = realloc(s->log, s->log_len + ev->data_len + 1);
        memcpy(s->log + s->log_len, ev->data, ev->data_len);
        s->log_len += ev->data_len;
        s->log[s->log_len] = '\0';
        if (ev->data_len > s->biggest_chunk)
            s->biggest_chunk = ev->data_len;
    }
}

/* With RR_TEST_VERBOSE set, print the stream (for debugging a failure). */
static void stream_dump(const stream_t *s)
{
    if (!getenv("RR_TEST_VERBOSE"))
        return;
    for (size_t i = 0; i < s->count; i++) {
        const proto_job_event_t *ev = &s->msgs[i].u.job_event;
        if (!strcmp(ev->kind, "log"))
            fprintf(stderr, "# %s log %zu bytes: %.*s\n", "", ev->data_len, (int)ev->data_len,
                    (const char *)ev->data);
        else
            fprintf(stderr, "# %s name=%s value=%s code=%" PRId64 " reason=%s\n", ev->kind,
                    ev->name ? ev->name : "", ev->value ? ev->value : "", ev->code,
                    ev->reason ? ev->reason : "");
    }
}

/* Collect JOB's events until DONE. ON_EVENT (may be NULL) sees the stream so
 * far after each event. */
static void collect(fixture_t *fx, uint64_t job, stream_t *s, int timeout_ms,
                    void (*on_event)(zactor_t *, const stream_t *))
{
    zactor_t *actor = fx->actor;
    zpoller_t *poller = zpoller_new(actor, NULL);
    timeout_ms = budget_ms(timeout_ms);
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    bool done = false;
    while (!done && now_ms() < deadline) {
        if (!zpoller_wait(poller, 200))
            continue;
        rr_device_msg_t m;
        assert_int_equal(rr_device_recv(actor, &m), 0);
        if (m.kind == RR_DEVICE_MSG_EVENT) {
            assert_int_equal(m.job, job);
            stream_add(s, &m);
            if (on_event)
                on_event(actor, s);
        }
        done = m.kind == RR_DEVICE_MSG_DONE && m.job == job;
        rr_device_msg_free(&m);
    }
    zpoller_destroy(&poller);
    stream_dump(s);
    if (done)
        fx->running_job = 0;
    if (!done)
        fail_msg("job %" PRIu64 " not done within %d ms; log so far:\n%s", job, timeout_ms,
                 s->log ? s->log : "");
}

static void stream_free(stream_t *s)
{
    for (size_t i = 0; i < s->count; i++)
        proto_msg_free(&s->msgs[i]);
    free(s->msgs);
    free(s->log);
    memset(s, 0, sizeof *s);
}

/* The first event of KIND (and NAME, VALUE when not NULL) at or after *POS; advances *POS. */
static const proto_job_event_t *find(const stream_t *s, size_t *pos, const char *kind,
                                     const char *name, const char *value)
{
    for (size_t i = *pos; i < s->count; i++) {
        const proto_job_event_t *ev = &s->msgs[i].u.job_event;
        if (strcmp(ev->kind, kind) || (name && (!ev->name || strcmp(ev->name, name)))
            || (value && (!ev->value || strcmp(ev->value, value))))
            continue;
        *pos = i + 1;
        return ev;
    }
    return NULL;
}

/* A fresh actor for the node (typing at 1 ms a character); true once its
 * console is up (at actor start, before anything powers the node on). */
static bool start_actor(fixture_t *fx)
{
    const rr_rig_node_t *node = rr_rig_node(fx->rig, 0);
    rr_device_destroy(&fx->actor);
    fx->running_job = 0;
    fx->device = (rr_device_config_t){
        .name = (char *)node->name, .type = "highbank", .bmc_host = (char *)node->host,
        .bmc_port = node->port, .bmc_user = (char *)node->user,
        .bmc_password = (char *)node->password, .mac = (char *)node->mac,
        .bootloader_delay_ms = 0, .test_shell_delay_ms = 1, .ipmi_timeout_ms = 2000,
        .ipmi_retries = 2, .sol_timeout_ms = 10000 };
    fx->actor = rr_device_new(&fx->device, fx->root);
    return fx->actor && wait_state(fx->actor, "idle", 30000);
}

/* The rig (one node), the TFTP root and the device actor, shared by all tests:
 * the actor holds one SOL session throughout, as a worker does (a new session
 * risks stock ipmi_sim dropping its first packet, docs/rig.md). */
static int group_setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    *state = fx;
    if (!fx)
        return -1;
    fx->dir = tmpdir_new("devjob");
    if (!fx->dir)
        return -1;
    snprintf(fx->root, sizeof fx->root, "%s/tftp", fx->dir);
    mkdir(fx->root, 0755);
    char opts[4200];
    snprintf(opts, sizeof opts, "--tftp-root %s", fx->root);
    fx->rig = rr_rig_start(1, opts);
    return fx->rig && start_actor(fx) ? 0 : -1;
}

static int group_teardown(void **state)
{
    fixture_t *fx = *state;
    if (!fx)
        return 0;
    rr_device_destroy(&fx->actor);
    rr_rig_stop(&fx->rig);
    tmpdir_remove(&fx->dir);
    free(fx);
    return 0;
}

static void start_job(fixture_t *fx, uint64_t job, const proto_jobdef_t *def)
{
    assert_int_equal(rr_device_start_job(fx->actor, job, def), 0);
    fx->running_job = job;
}

/* Wait (at most TIMEOUT_MS) for DONE of JOB, dropping its events. */
static bool drain_until_done(zactor_t *actor, uint64_t job, int timeout_ms)
{
    zpoller_t *poller = zpoller_new(actor, NULL);
    uint64_t deadline = now_ms() + (uint64_t)budget_ms(timeout_ms);
    bool done = false;
    while (!done && now_ms() < deadline) {
        if (!zpoller_wait(poller, 200))
            continue;
        rr_device_msg_t m;
        if (rr_device_recv(actor, &m) < 0)
            break;
        done = m.kind == RR_DEVICE_MSG_DONE && m.job == job;
        rr_device_msg_free(&m);
    }
    zpoller_destroy(&poller);
    return done;
}

static int setup(void **state)
{
    fixture_t *fx = *state;
    running_test = NULL;
    return fx && fx->actor ? 0 : -1;
}

/* Leave the actor idle for the next test: a job a failed test left running is
 * canceled; an actor that does not end it in bounded time is replaced. The
 * typing pace goes back to 1 ms (only read while a job runs). */
static int teardown(void **state)
{
    fixture_t *fx = *state;
    if (fx->running_job) {
        fprintf(stderr, "# teardown: canceling job %" PRIu64 " left running\n", fx->running_job);
        rr_device_cancel(fx->actor, fx->running_job);
        if (!drain_until_done(fx->actor, fx->running_job, 20000)) {
            fprintf(stderr, "# teardown: job %" PRIu64 " did not end: new actor\n",
                    fx->running_job);
            return start_actor(fx) ? 0 : -1;
        }
        fx->running_job = 0;
    }
    fx->device.test_shell_delay_ms = 1;
    return 0;
}

static void write_artifacts(const fixture_t *fx, char *kernel_url, char *initrd_url, size_t len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/kernel.src", fx->dir);
    assert_int_equal(tmpdir_write(path, "hello\n", 6), 0);
    snprintf(kernel_url, len, "file://%s", path);
    snprintf(path, sizeof path, "%s/initrd.src", fx->dir);
    assert_int_equal(tmpdir_write(path, "initrd bytes\n", 13), 0);
    snprintf(initrd_url, len, "file://%s", path);
}

static void test_job_deploys_boots_and_runs_steps(void **state)
{
    fixture_t *fx = *state;
    RUNNING();
    char kernel_url[4300], initrd_url[4300];
    write_artifacts(fx, kernel_url, initrd_url, sizeof kernel_url);
    proto_artifact_t arts[] = { { "kernel", kernel_url, HELLO_SHA }, { "initrd", initrd_url, NULL } };
    char *prompts[] = { "# " };
    proto_step_t steps[] = {
        { "kernel-version", "uname -a", 0 },
        { "always-false", "false", 0 },
        { "reports", "echo RR_RESULT name=speed result=pass measurement=$((40+2)) units=ms", 0 },
        { "big-output", "head -c 100000 /dev/zero | tr '\\0' x; echo", 0 },
        { "commented", "true # a trailing comment cannot hide the marker", 0 },
    };
    proto_action_t acts[] = {
        { .kind = "deploy", .to = "tftp", .artifacts = arts, .artifacts_count = 2,
          .append = "console=ttyAMA0 rr-test" },
        { .kind = "boot", .method = "ipmi-pxe", .prompts = prompts, .prompts_count = 1,
          .timeout_s = 60 },
        { .kind = "test", .steps = steps, .steps_count = 5, .timeout_s = 60 },
    };
    proto_jobdef_t def = { .name = "smoke", .device_type = "highbank", .priority = 50,
                           .job_timeout_s = 120, .action_timeout_s = 60, .actions = acts,
                           .actions_count = 3 };
    start_job(fx, 11, &def);
    stream_t s = { 0 };
    collect(fx, 11, &s, 120000, NULL);

    size_t pos = 0;
    const proto_job_event_t *ev = find(&s, &pos, "state", "running", NULL);
    assert_non_null(ev);
    assert_int_equal(pos, 1);     /* the first event */
    static const char *const kinds[] = { "deploy", "boot", "test" };
    for (size_t i = 0; i < 3; i++) {
        assert_non_null(find(&s, &pos, "action", kinds[i], "start"));
        if (!find(&s, &pos, "action", kinds[i], "end"))
            fail_msg("action %s did not end; log:\n%s", kinds[i], s.log);
    }
    pos = 0;
    ev = find(&s, &pos, "result", "kernel-version", NULL);
    assert_non_null(ev);
    assert_string_equal(ev->value, "pass");
    assert_int_equal(ev->code, 0);
    ev = find(&s, &pos, "result", "always-false", NULL);
    assert_non_null(ev);
    assert_string_equal(ev->value, "fail");
    assert_int_equal(ev->code, 1);
    size_t rpos = pos;
    ev = find(&s, &rpos, "result", "speed", NULL);   /* the RR_RESULT line */
    assert_non_null(ev);
    assert_string_equal(ev->value, "pass");
    assert_string_equal(ev->measurement, "42");
    assert_string_equal(ev->units, "ms");
    ev = find(&s, &pos, "result", "reports", "pass");
    assert_non_null(ev);
    assert_non_null(find(&s, &pos, "result", "big-output", "pass"));
    assert_non_null(find(&s, &pos, "result", "commented", "pass"));

    const proto_job_event_t *end = &s.msgs[s.count - 1].u.job_event;
    assert_string_equal(end->kind, "end");
    if (strcmp(end->value, "complete"))
        fail_msg("end %s: %s", end->value, end->reason ? end->reason : "");

    /* The node PXE-booted our config, and the log kept the boot lines. */
    assert_non_null(strstr(s.log, "U-Boot"));
    assert_non_null(strstr(s.log, "append: console=ttyAMA0 rr-test"));
    assert_non_null(strstr(s.log, "Retrieving file: files/"));
    assert_non_null(strstr(s.log, "Linux"));
    /* Exactly the node's bytes: the log is one stretch of its console output. */
    size_t out_len = 0;
    char *out = rr_rig_console_out(fx->rig, 0, &out_len);
    assert_non_null(out);
    assert_non_null(memmem(out, out_len, s.log, s.log_len));
    free(out);
    /* 100000 bytes of one step's output: all there, in chunks no bigger than the limit */
    char *xs = malloc(100001);
    memset(xs, 'x', 100000);
    xs[100000] = '\0';
    assert_non_null(strstr(s.log, xs));
    free(xs);
    assert_true(s.biggest_chunk <= PROTO_LOG_CHUNK);

    /* After the job: node off, 01-<mac> gone, artifacts in files/<device>/. */
    assert_int_equal(rr_rig_power(fx->rig, 0), 0);
    char path[4300];
    snprintf(path, sizeof path, "%s/pxelinux.cfg/01-52-54-00-00-00-01", fx->root);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/files/%s/kernel", fx->root, fx->device.name);
    assert_int_equal(access(path, F_OK), 0);
    assert_true(rr_rig_wait_hook(fx->rig, 0, "set boot pxe", 1000));
    stream_free(&s);
}

static uint64_t cancel_sent_at;

static uint64_t cancel_job;
static const char *cancel_needle;

/* Cancel CANCEL_JOB once CANCEL_NEEDLE is in the log so far (an echo may
 * arrive split across log events). */
static void cancel_on_needle(zactor_t *actor, const stream_t *s)
{
    if (!cancel_sent_at && s->log && strstr(s->log, cancel_needle)) {
        cancel_sent_at = now_ms();
        rr_device_cancel(actor, cancel_job);
    }
}

static void test_cancel_stops_a_running_step_and_powers_off(void **state)
{
    fixture_t *fx = *state;
    RUNNING();
    char *prompts[] = { "# " };
    proto_step_t steps[] = { { "forever", "sleep 1000", 0 } };
    proto_action_t acts[] = {
        { .kind = "boot", .method = "ipmi-disk", .prompts = prompts, .prompts_count = 1,
          .timeout_s = 60 },
        { .kind = "test", .steps = steps, .steps_count = 1, .timeout_s = 600 },
    };
    proto_jobdef_t def = { .name = "cancel me", .device_type = "highbank", .priority = 50,
                           .job_timeout_s = 900, .action_timeout_s = 600, .actions = acts,
                           .actions_count = 2 };
    start_job(fx, 12, &def);
    stream_t s = { 0 };
    cancel_sent_at = 0;
    cancel_job = 12;
    cancel_needle = "sleep 1000";   /* the node echoed the step: it runs (or is about to) */
    collect(fx, 12, &s, 60000, cancel_on_needle);
    assert_true(cancel_sent_at > 0);
    /* stopped, powered off and ended within bounded time of the cancel */
    assert_true(now_ms() - cancel_sent_at < 5000);
    size_t pos = 0;
    const proto_job_event_t *fail = find(&s, &pos, "action", "test", "fail");
    assert_non_null(fail);
    assert_string_equal(fail->reason, "canceled");
    const proto_job_event_t *end = &s.msgs[s.count - 1].u.job_event;
    assert_string_equal(end->kind, "end");
    assert_string_equal(end->value, "canceled");
    assert_int_equal(rr_rig_power(fx->rig, 0), 0);
    pos = 0;
    assert_null(find(&s, &pos, "result", "forever", NULL));
    stream_free(&s);
    assert_true(wait_state(fx->actor, "idle", 5000));

    /* The same actor takes the next job and runs it to the end. */
    proto_step_t next_steps[] = { { "after-cancel", "true", 0 } };
    acts[1].steps = next_steps;
    def.name = "after cancel";
    start_job(fx, 16, &def);
    collect(fx, 16, &s, 60000, NULL);
    end = &s.msgs[s.count - 1].u.job_event;
    assert_string_equal(end->kind, "end");
    if (strcmp(end->value, "complete"))
        fail_msg("job after the cancel: end %s: %s", end->value, end->reason ? end->reason : "");
    pos = 0;
    assert_non_null(find(&s, &pos, "result", "after-cancel", "pass"));
    stream_free(&s);
}

/* Number of times BYTE reached the node's serial line. */
static size_t bytes_received(const fixture_t *fx, uint8_t byte)
{
    size_t count = 0, n = 0;
    rr_rig_rx_t *rx = rr_rig_console_in(fx->rig, 0, &count);
    for (size_t i = 0; i < count; i++)
        n += rx[i].byte == byte;
    free(rx);
    return n;
}

/* A long step typed slowly (600 characters at 20 ms: 12 s): a cancel while it
 * is typed stops the typing and ends the job within bounded time, and the
 * rest of the line and its end marker never reach the node. */
static void test_cancel_while_typing_stops_typing_in_bounded_time(void **state)
{
    fixture_t *fx = *state;
    RUNNING();
    fx->device.test_shell_delay_ms = 20;   /* read by the idle actor's next job only */
    char run[700] = "echo ";
    memset(run + 5, 'Q', 600);
    run[605] = '\0';
    char *prompts[] = { "# " };
    proto_step_t steps[] = { { "long-line", run, 0 } };
    proto_action_t acts[] = {
        { .kind = "boot", .method = "ipmi-disk", .prompts = prompts, .prompts_count = 1,
          .timeout_s = 60 },
        { .kind = "test", .steps = steps, .steps_count = 1, .timeout_s = 600 },
    };
    proto_jobdef_t def = { .name = "cancel while typing", .device_type = "highbank",
                           .priority = 50, .job_timeout_s = 900, .action_timeout_s = 600,
                           .actions = acts, .actions_count = 2 };
    size_t before = bytes_received(fx, 'Q');
    start_job(fx, 17, &def);
    stream_t s = { 0 };
    cancel_sent_at = 0;
    cancel_job = 17;
    cancel_needle = "{ echo QQ";   /* typing has begun */
    collect(fx, 17, &s, 60000, cancel_on_needle);
    assert_true(cancel_sent_at > 0);
    uint64_t took = now_ms() - cancel_sent_at;
    if (took >= 5000)
        fail_msg("job ended %" PRIu64 " ms after the cancel", took);
    size_t pos = 0;
    const proto_job_event_t *fail = find(&s, &pos, "action", "test", "fail");
    assert_non_null(fail);
    assert_string_equal(fail->reason, "canceled");
    const proto_job_event_t *end = &s.msgs[s.count - 1].u.job_event;
    assert_string_equal(end->value, "canceled");
    assert_int_equal(rr_rig_power(fx->rig, 0), 0);
    size_t typed = bytes_received(fx, 'Q') - before;
    if (typed >= 600)
        fail_msg("all %zu characters were typed after the cancel", typed);
    assert_null(strstr(s.log, "RR_END_"));   /* the end marker was never typed */
    stream_free(&s);
}

static void test_boot_without_prompt_ends_incomplete_naming_the_action(void **state)
{
    fixture_t *fx = *state;
    RUNNING();
    char *prompts[] = { "never-printed> " };
    proto_action_t acts[] = {
        { .kind = "boot", .method = "ipmi-disk", .prompts = prompts, .prompts_count = 1,
          .timeout_s = 3 },
    };
    proto_jobdef_t def = { .name = "no prompt", .device_type = "highbank", .priority = 50,
                           .job_timeout_s = 60, .action_timeout_s = 60, .actions = acts,
                           .actions_count = 1 };
    start_job(fx, 13, &def);
    stream_t s = { 0 };
    collect(fx, 13, &s, 60000, NULL);
    const proto_job_event_t *end = &s.msgs[s.count - 1].u.job_event;
    assert_string_equal(end->value, "incomplete");
    assert_non_null(end->reason);
    assert_non_null(strstr(end->reason, "boot: no prompt 'never-printed> ' within 3 s"));
    assert_non_null(strstr(end->reason, fx->device.bmc_host));
    assert_int_equal(rr_rig_power(fx->rig, 0), 0);
    stream_free(&s);
}

static void test_step_without_end_marker_times_out_naming_the_step(void **state)
{
    fixture_t *fx = *state;
    RUNNING();
    char *prompts[] = { "# " };
    proto_step_t steps[] = { { "slow", "sleep 30", 1 } };
    proto_action_t acts[] = {
        { .kind = "boot", .method = "ipmi-disk", .prompts = prompts, .prompts_count = 1,
          .timeout_s = 60 },
        { .kind = "test", .steps = steps, .steps_count = 1, .timeout_s = 60 },
    };
    proto_jobdef_t def = { .name = "slow step", .device_type = "highbank", .priority = 50,
                           .job_timeout_s = 120, .action_timeout_s = 60, .actions = acts,
                           .actions_count = 2 };
    start_job(fx, 15, &def);
    stream_t s = { 0 };
    collect(fx, 15, &s, 60000, NULL);
    size_t pos = 0;
    const proto_job_event_t *res = find(&s, &pos, "result", "slow", "fail");
    assert_non_null(res);
    assert_non_null(strstr(res->reason, "no end marker within 1 s"));
    const proto_job_event_t *end = &s.msgs[s.count - 1].u.job_event;
    assert_string_equal(end->value, "incomplete");
    assert_non_null(strstr(end->reason, "test: step 'slow': no end marker within 1 s"));
    assert_int_equal(rr_rig_power(fx->rig, 0), 0);
    stream_free(&s);
}

/* Runs last: it leaves the node's BMC dead. */
static void test_unreachable_bmc_ends_job_incomplete_naming_the_bmc(void **state)
{
    fixture_t *fx = *state;
    RUNNING();
    char *prompts[] = { "# " };
    proto_action_t acts[] = {
        { .kind = "boot", .method = "ipmi-pxe", .prompts = prompts, .prompts_count = 1,
          .timeout_s = 30 },
    };
    proto_jobdef_t def = { .name = "dead bmc", .device_type = "highbank", .priority = 50,
                           .job_timeout_s = 120, .action_timeout_s = 60, .actions = acts,
                           .actions_count = 1 };
    assert_int_equal(rr_rig_bmc(fx->rig, 0, "kill"), 0);
    start_job(fx, 14, &def);
    stream_t s = { 0 };
    collect(fx, 14, &s, 90000, NULL);
    const proto_job_event_t *end = &s.msgs[s.count - 1].u.job_event;
    assert_string_equal(end->kind, "end");
    assert_string_equal(end->value, "incomplete");
    assert_non_null(end->reason);
    char bmc[96];
    snprintf(bmc, sizeof bmc, "%s:%u", fx->device.bmc_host, fx->device.bmc_port);
    if (!strstr(end->reason, bmc) || !strstr(end->reason, "boot: "))
        fail_msg("reason does not name the action and bmc %s: %s", bmc, end->reason);
    stream_free(&s);
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_job_deploys_boots_and_runs_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_stops_a_running_step_and_powers_off, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_while_typing_stops_typing_in_bounded_time,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_boot_without_prompt_ends_incomplete_naming_the_action,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_step_without_end_marker_times_out_naming_the_step,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_bmc_ends_job_incomplete_naming_the_bmc,
                                        setup, teardown),
    };
    program_deadline = now_ms() + PROGRAM_DEADLINE_MS;
    pthread_t dog;
    if (pthread_create(&dog, NULL, watchdog, NULL) != 0)
        return 1;
    pthread_detach(dog);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
