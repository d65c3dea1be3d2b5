/* test_device_job.c: a device actor runs whole jobs on an emulated rack node
 * (stock ipmi_sim BMC + fast shell node): deploy tftp from file:// artifacts,
 * boot ipmi-pxe to "# ", test steps; and a cancel in the middle of a step. */
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

typedef struct {
    rr_rig_t *rig;
    char *dir;
    char root[4096];
    rr_device_config_t device;
    zactor_t *actor;
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

/* Wait for the actor to report STATE WANT. */
static bool wait_state(zactor_t *actor, const char *want, int timeout_ms)
{
    zpoller_t *poller = zpoller_new(actor, NULL);
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
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

/* Collect JOB's events until DONE. ON_EVENT (may be NULL) sees each one. */
static void collect(zactor_t *actor, uint64_t job, stream_t *s, int timeout_ms,
                    void (*on_event)(zactor_t *, const proto_job_event_t *))
{
    zpoller_t *poller = zpoller_new(actor, NULL);
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
                on_event(actor, &s->msgs[s->count - 1].u.job_event);
        }
        done = m.kind == RR_DEVICE_MSG_DONE && m.job == job;
        rr_device_msg_free(&m);
    }
    zpoller_destroy(&poller);
    stream_dump(s);
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

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    *state = fx;
    fx->dir = tmpdir_new("devjob");
    if (!fx->dir)
        return -1;
    snprintf(fx->root, sizeof fx->root, "%s/tftp", fx->dir);
    mkdir(fx->root, 0755);
    char opts[4200];
    snprintf(opts, sizeof opts, "--tftp-root %s", fx->root);
    fx->rig = rr_rig_start(1, opts);
    if (!fx->rig)
        return -1;
    const rr_rig_node_t *node = rr_rig_node(fx->rig, 0);
    fx->device = (rr_device_config_t){
        .name = (char *)node->name, .type = "highbank", .bmc_host = (char *)node->host,
        .bmc_port = node->port, .bmc_user = (char *)node->user,
        .bmc_password = (char *)node->password, .mac = (char *)node->mac,
        .bootloader_delay_ms = 0, .test_shell_delay_ms = 1, .ipmi_timeout_ms = 2000,
        .ipmi_retries = 2, .sol_timeout_ms = 10000 };
    fx->actor = rr_device_new(&fx->device, fx->root);
    if (!fx->actor)
        return -1;
    /* The console comes up at actor start, before anything powers the node on. */
    return wait_state(fx->actor, "idle", 30000) ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    rr_device_destroy(&fx->actor);
    rr_rig_stop(&fx->rig);
    tmpdir_remove(&fx->dir);
    free(fx);
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
    assert_int_equal(rr_device_start_job(fx->actor, 11, &def), 0);
    stream_t s = { 0 };
    collect(fx->actor, 11, &s, 120000, NULL);

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

/* Cancel once the node echoed the step: it is running (or about to). */
static void cancel_when_step_runs(zactor_t *actor, const proto_job_event_t *ev)
{
    if (!cancel_sent_at && !strcmp(ev->kind, "log")
        && memmem(ev->data, ev->data_len, "sleep 1000", 10)) {
        cancel_sent_at = now_ms();
        rr_device_cancel(actor, ev->job);
    }
}

static void test_cancel_stops_a_running_step_and_powers_off(void **state)
{
    fixture_t *fx = *state;
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
    assert_int_equal(rr_device_start_job(fx->actor, 12, &def), 0);
    stream_t s = { 0 };
    cancel_sent_at = 0;
    collect(fx->actor, 12, &s, 60000, cancel_when_step_runs);
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
}

static void test_boot_without_prompt_ends_incomplete_naming_the_action(void **state)
{
    fixture_t *fx = *state;
    char *prompts[] = { "never-printed> " };
    proto_action_t acts[] = {
        { .kind = "boot", .method = "ipmi-disk", .prompts = prompts, .prompts_count = 1,
          .timeout_s = 3 },
    };
    proto_jobdef_t def = { .name = "no prompt", .device_type = "highbank", .priority = 50,
                           .job_timeout_s = 60, .action_timeout_s = 60, .actions = acts,
                           .actions_count = 1 };
    assert_int_equal(rr_device_start_job(fx->actor, 13, &def), 0);
    stream_t s = { 0 };
    collect(fx->actor, 13, &s, 60000, NULL);
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
    assert_int_equal(rr_device_start_job(fx->actor, 15, &def), 0);
    stream_t s = { 0 };
    collect(fx->actor, 15, &s, 60000, NULL);
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
    char *prompts[] = { "# " };
    proto_action_t acts[] = {
        { .kind = "boot", .method = "ipmi-pxe", .prompts = prompts, .prompts_count = 1,
          .timeout_s = 30 },
    };
    proto_jobdef_t def = { .name = "dead bmc", .device_type = "highbank", .priority = 50,
                           .job_timeout_s = 120, .action_timeout_s = 60, .actions = acts,
                           .actions_count = 1 };
    assert_int_equal(rr_rig_bmc(fx->rig, 0, "kill"), 0);
    assert_int_equal(rr_device_start_job(fx->actor, 14, &def), 0);
    stream_t s = { 0 };
    collect(fx->actor, 14, &s, 90000, NULL);
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
        cmocka_unit_test(test_job_deploys_boots_and_runs_steps),
        cmocka_unit_test(test_cancel_stops_a_running_step_and_powers_off),
        cmocka_unit_test(test_boot_without_prompt_ends_incomplete_naming_the_action),
        cmocka_unit_test(test_step_without_end_marker_times_out_naming_the_step),
        cmocka_unit_test(test_unreachable_bmc_ends_job_incomplete_naming_the_bmc),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
