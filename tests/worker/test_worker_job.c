/* test_worker_job.c: the whole worker (main loop + device actor + runner +
 * spool) runs a job from a fake master's JOB_START on an emulated rack node
 * and delivers one contiguous, acked event stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "proto.h"
#include "rig.h"
#include "tmpdir.h"
#include "master_peer.h"
#include "worker.h"

typedef struct {
    master_peer_t link;
    rr_rig_t *rig;
    rr_device_config_t device;
    rr_worker_config_t config;
    proto_msg_t held[256];       /* JOB_EVENTs that came while waiting for something else */
    size_t held_count;
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    *state = fx;
    if (!fx || master_peer_init(&fx->link, "wjob") < 0)
        return -1;
    char opts[4200];
    snprintf(opts, sizeof opts, "--tftp-root %s", fx->link.tftp_root);
    fx->rig = rr_rig_start(1, opts);
    if (!fx->rig)
        return -1;
    const rr_rig_node_t *node = rr_rig_node(fx->rig, 0);
    static char *tags[] = { "sata" };
    fx->device = (rr_device_config_t){
        .name = (char *)node->name, .type = "highbank", .tags = tags, .tag_count = 1,
        .bmc_host = (char *)node->host, .bmc_port = node->port, .bmc_user = (char *)node->user,
        .bmc_password = (char *)node->password, .mac = (char *)node->mac,
        .test_shell_delay_ms = 1, .ipmi_timeout_ms = 2000, .ipmi_retries = 2,
        .sol_timeout_ms = 10000 };
    fx->config = (rr_worker_config_t){ .worker = "rack-rig", .master = fx->link.endpoint,
                                       .tftp_root = fx->link.tftp_root,
                                       .spool_dir = fx->link.spool_dir,
                                       .heartbeat_interval_ms = 100, .devices = &fx->device,
                                       .device_count = 1 };
    char err[1024] = "";
    if (master_peer_start_worker(&fx->link, &fx->config, true, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    master_peer_fini(&fx->link);
    rr_rig_stop(&fx->rig);
    for (size_t i = 0; i < fx->held_count; i++)
        proto_msg_free(&fx->held[i]);
    free(fx);
    return 0;
}

/* Next message from the worker, any type; false after TIMEOUT_MS. */
static bool recv_any(fixture_t *fx, proto_msg_t *msg, int timeout_ms)
{
    zpoller_t *poller = zpoller_new(fx->link.router, NULL);
    int64_t deadline = zclock_mono() + timeout_ms;
    bool got = false;
    while (!got && zclock_mono() < deadline) {
        if (!zpoller_wait(poller, 50))
            continue;
        zframe_t *rid = NULL;
        proto_error_t err;
        got = proto_recv(fx->link.router, &rid, msg, &err) == 0;
        if (rid) {
            zframe_destroy(&fx->link.peer);
            fx->link.peer = rid;
        }
    }
    zpoller_destroy(&poller);
    return got;
}

static void expect_msg(fixture_t *fx, proto_type_t type, proto_msg_t *msg, int timeout_ms)
{
    if (type == PROTO_MSG_JOB_EVENT && fx->held_count) {
        *msg = fx->held[0];
        memmove(fx->held, fx->held + 1, --fx->held_count * sizeof *fx->held);
        return;
    }
    int64_t deadline = zclock_mono() + timeout_ms;
    while (zclock_mono() < deadline) {
        if (!recv_any(fx, msg, (int)(deadline - zclock_mono())))
            break;
        if (msg->type == type)
            return;
        if (msg->type == PROTO_MSG_JOB_EVENT && fx->held_count < 256)
            fx->held[fx->held_count++] = *msg;
        else
            proto_msg_free(msg);
    }
    fail_msg("no %s from the worker within %d ms", proto_type_name(type), timeout_ms);
}

static void send_msg(fixture_t *fx, proto_msg_t *msg)
{
    proto_error_t err;
    msg->version = PROTO_VERSION;
    if (proto_send(fx->link.router, fx->link.peer, msg, &err) < 0)
        fail_msg("send %s: %s", proto_type_name(msg->type), err.text);
}

static void welcome(fixture_t *fx)
{
    proto_msg_t msg;
    expect_msg(fx, PROTO_MSG_HELLO, &msg, 5000);
    assert_int_equal(msg.u.hello.devices_count, 1);
    assert_string_equal(msg.u.hello.devices[0].name, fx->device.name);
    assert_string_equal(msg.u.hello.devices[0].type, "highbank");
    assert_int_equal(msg.u.hello.devices[0].tags_count, 1);
    proto_msg_free(&msg);
    proto_msg_t w = { .type = PROTO_MSG_WELCOME };
    w.u.welcome = (proto_welcome_t){ .epoch = 77, .heartbeat_interval_ms = 100,
                                     .heartbeat_timeout_ms = 5000 };
    send_msg(fx, &w);
}

/* Beats until one reports the device STATE (acking each beat). */
static void wait_device_state(fixture_t *fx, const char *state, int timeout_ms)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    proto_msg_t msg;
    while (zclock_mono() < deadline) {
        expect_msg(fx, PROTO_MSG_HEARTBEAT, &msg, (int)(deadline - zclock_mono()));
        bool found = false;
        for (size_t i = 0; i < msg.u.heartbeat.changed_count; i++)
            found = found || !strcmp(msg.u.heartbeat.changed[i].state, state);
        proto_msg_t ack = { .type = PROTO_MSG_HEARTBEAT_ACK };
        ack.u.heartbeat_ack = (proto_heartbeat_ack_t){ .epoch = 77, .seq = msg.u.heartbeat.seq };
        proto_msg_free(&msg);
        send_msg(fx, &ack);
        if (found)
            return;
    }
    fail_msg("device never reported %s", state);
}

static void start_job(fixture_t *fx, uint64_t id, proto_jobdef_t *def)
{
    proto_msg_t start = { .type = PROTO_MSG_JOB_START };
    start.u.job_start = (proto_job_start_t){ .job = id, .device = fx->device.name, .def = def };
    send_msg(fx, &start);
}

static void test_worker_runs_job_from_master_and_streams_contiguous_acked_events(void **state)
{
    fixture_t *fx = *state;
    welcome(fx);
    wait_device_state(fx, "idle", 30000);

    char *prompts[] = { "# " };
    proto_step_t steps[] = { { "kernel-version", "uname -a", 0 }, { "no", "false", 0 } };
    proto_action_t acts[] = {
        { .kind = "boot", .method = "ipmi-disk", .prompts = prompts, .prompts_count = 1,
          .timeout_s = 60 },
        { .kind = "test", .steps = steps, .steps_count = 2, .timeout_s = 60 },
    };
    proto_jobdef_t def = { .name = "via master", .device_type = "highbank", .priority = 50,
                           .job_timeout_s = 120, .action_timeout_s = 60, .actions = acts,
                           .actions_count = 2 };
    start_job(fx, 31, &def);
    proto_msg_t msg;
    expect_msg(fx, PROTO_MSG_JOB_ACCEPT, &msg, 2000);
    assert_int_equal(msg.u.job_accept.job, 31);
    assert_true(msg.u.job_accept.ok);
    proto_msg_free(&msg);
    /* a repeated JOB_START is a no-op + accept; another job on the busy device is refused */
    start_job(fx, 31, &def);
    expect_msg(fx, PROTO_MSG_JOB_ACCEPT, &msg, 2000);
    assert_true(msg.u.job_accept.ok);
    proto_msg_free(&msg);
    start_job(fx, 32, &def);
    expect_msg(fx, PROTO_MSG_JOB_ACCEPT, &msg, 2000);
    assert_int_equal(msg.u.job_accept.job, 32);
    assert_false(msg.u.job_accept.ok);
    assert_non_null(strstr(msg.u.job_accept.reason, "busy with job 31"));
    proto_msg_free(&msg);

    uint64_t next = 1;
    bool ended = false, passed = false, failed = false;
    int64_t deadline = zclock_mono() + 90000;
    while (!ended && zclock_mono() < deadline) {
        expect_msg(fx, PROTO_MSG_JOB_EVENT, &msg, (int)(deadline - zclock_mono()));
        const proto_job_event_t *ev = &msg.u.job_event;
        assert_int_equal(ev->job, 31);
        if (ev->seq < next) {          /* a resend of what was acked: ignore, as the master */
            proto_msg_free(&msg);
            continue;
        }
        assert_int_equal(ev->seq, next);
        if (next == 1) {
            assert_string_equal(ev->kind, "state");
            assert_string_equal(ev->name, "running");
        }
        next++;
        if (!strcmp(ev->kind, "result") && !strcmp(ev->name, "kernel-version"))
            passed = !strcmp(ev->value, "pass");
        if (!strcmp(ev->kind, "result") && !strcmp(ev->name, "no"))
            failed = !strcmp(ev->value, "fail") && ev->code == 1;
        if (!strcmp(ev->kind, "end")) {
            ended = true;
            if (strcmp(ev->value, "complete"))
                fail_msg("end %s: %s", ev->value, ev->reason ? ev->reason : "");
        }
        proto_msg_t ack = { .type = PROTO_MSG_EVENT_ACK };
        ack.u.event_ack = (proto_event_ack_t){ .job = 31, .seq = ev->seq };
        proto_msg_free(&msg);
        send_msg(fx, &ack);
    }
    assert_true(ended);
    assert_true(passed);
    assert_true(failed);
    /* fully acked and done: the spool goes away, the device is idle again */
    char path[4200];
    snprintf(path, sizeof path, "%s/job-31.spool", fx->link.spool_dir);
    int64_t gone_by = zclock_mono() + 3000;
    while (access(path, F_OK) == 0 && zclock_mono() < gone_by)
        zclock_sleep(20);
    assert_int_equal(access(path, F_OK), -1);
    wait_device_state(fx, "idle", 5000);
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_worker_runs_job_from_master_and_streams_contiguous_acked_events, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
