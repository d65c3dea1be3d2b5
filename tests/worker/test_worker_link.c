/* test_worker_link.c: the worker's main loop against a fake master (a ROUTER
 * socket in this test on 127.0.0.1): HELLO / WELCOME / HEARTBEAT, epoch
 * change, hello_required, job refusal, acks, spool resend and the window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "proto.h"
#include "spool.h"
#include "tmpdir.h"
#include "master_peer.h"
#include "worker.h"

typedef struct {
    master_peer_t link;
    rr_worker_config_t config;
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    *state = fx;
    if (!fx || master_peer_init(&fx->link, "wlink") < 0)
        return -1;
    fx->config = (rr_worker_config_t){ .worker = "rack-test", .rack = "r1",
                                       .master = fx->link.endpoint,
                                       .tftp_root = fx->link.tftp_root,
                                       .spool_dir = fx->link.spool_dir,
                                       .heartbeat_interval_ms = 100 };
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    master_peer_fini(&fx->link);
    free(fx);
    return 0;
}

static void start_worker_secure(fixture_t *fx, bool insecure)
{
    char err[1024] = "";
    if (master_peer_start_worker(&fx->link, &fx->config, insecure, err, sizeof err) < 0)
        fail_msg("%s", err);
}

static void start_worker(fixture_t *fx)
{
    start_worker_secure(fx, true);
}

/* Next message of TYPE from the worker (others are skipped); fails after TIMEOUT_MS. */
static void expect_msg(fixture_t *fx, proto_type_t type, proto_msg_t *msg, int timeout_ms)
{
    zpoller_t *poller = zpoller_new(fx->link.router, NULL);
    int64_t deadline = zclock_mono() + timeout_ms;
    while (zclock_mono() < deadline) {
        if (!zpoller_wait(poller, 50))
            continue;
        zframe_t *rid = NULL;
        proto_error_t err;
        int rc = proto_recv(fx->link.router, &rid, msg, &err);
        if (rid) {
            zframe_destroy(&fx->link.peer);
            fx->link.peer = rid;
        }
        if (rc == 0 && msg->type == type) {
            zpoller_destroy(&poller);
            return;
        }
        proto_msg_free(msg);
    }
    zpoller_destroy(&poller);
    fail_msg("no %s from the worker within %d ms", proto_type_name(type), timeout_ms);
}

/* True when no message of TYPE comes within MS. */
static bool quiet(fixture_t *fx, proto_type_t type, int ms)
{
    zpoller_t *poller = zpoller_new(fx->link.router, NULL);
    int64_t deadline = zclock_mono() + ms;
    bool none = true;
    while (none && zclock_mono() < deadline) {
        if (!zpoller_wait(poller, 20))
            continue;
        zframe_t *rid = NULL;
        proto_msg_t msg;
        proto_error_t err;
        if (proto_recv(fx->link.router, &rid, &msg, &err) == 0 && msg.type == type)
            none = false;
        zframe_destroy(&rid);
        proto_msg_free(&msg);
    }
    zpoller_destroy(&poller);
    return none;
}

static void send_msg(fixture_t *fx, proto_msg_t *msg)
{
    proto_error_t err;
    msg->version = PROTO_VERSION;
    if (proto_send(fx->link.router, fx->link.peer, msg, &err) < 0)
        fail_msg("send %s: %s", proto_type_name(msg->type), err.text);
}

static void send_welcome(fixture_t *fx, uint64_t epoch, proto_jobseq_t *jobs, size_t count)
{
    proto_msg_t msg = { .type = PROTO_MSG_WELCOME };
    msg.u.welcome = (proto_welcome_t){ .epoch = epoch, .heartbeat_interval_ms = 100,
                                       .heartbeat_timeout_ms = 2000, .jobs = jobs,
                                       .jobs_count = count };
    send_msg(fx, &msg);
}

/* Spool COUNT log events of JOB as an earlier worker run would have left them. */
static void prespool(fixture_t *fx, uint64_t job, size_t count)
{
    char err[512] = "";
    rr_spool_t *spool = rr_spool_open(fx->link.spool_dir, job, err, sizeof err);
    if (!spool)
        fail_msg("%s", err);
    for (uint64_t seq = 1; seq <= count; seq++) {
        char text[32];
        snprintf(text, sizeof text, "line %" PRIu64 "\n", seq);
        proto_msg_t msg = { .type = PROTO_MSG_JOB_EVENT, .version = PROTO_VERSION };
        msg.u.job_event = (proto_job_event_t){ .job = job, .seq = seq, .ts = 1, .kind = "log",
                                               .data = (uint8_t *)text,
                                               .data_len = strlen(text) };
        uint8_t *buf = NULL;
        size_t len = 0;
        proto_error_t perr;
        assert_int_equal(proto_encode(&msg, &buf, &len, &perr), 0);
        assert_int_equal(rr_spool_append(spool, seq, buf, len, false, err, sizeof err), 0);
        free(buf);
    }
    assert_int_equal(rr_spool_sync(spool, err, sizeof err), 0);
    rr_spool_destroy(&spool);
}

static void test_worker_says_hello_then_beats_and_hellos_again_on_new_epoch(void **state)
{
    fixture_t *fx = *state;
    proto_msg_t msg;
    start_worker(fx);
    expect_msg(fx, PROTO_MSG_HELLO, &msg, 3000);
    assert_string_equal(msg.u.hello.worker, "rack-test");
    assert_string_equal(msg.u.hello.rack, "r1");
    assert_true(msg.u.hello.proto_min <= PROTO_VERSION && PROTO_VERSION <= msg.u.hello.proto_max);
    assert_int_equal(msg.u.hello.jobs_count, 0);
    proto_msg_free(&msg);
    /* no beats before WELCOME */
    assert_true(quiet(fx, PROTO_MSG_HEARTBEAT, 300));

    send_welcome(fx, 100, NULL, 0);
    expect_msg(fx, PROTO_MSG_HEARTBEAT, &msg, 1000);
    uint64_t first = msg.u.heartbeat.seq;
    proto_msg_free(&msg);
    expect_msg(fx, PROTO_MSG_HEARTBEAT, &msg, 1000);
    assert_true(msg.u.heartbeat.seq > first);
    proto_msg_t ack = { .type = PROTO_MSG_HEARTBEAT_ACK };
    ack.u.heartbeat_ack = (proto_heartbeat_ack_t){ .epoch = 100, .seq = msg.u.heartbeat.seq };
    proto_msg_free(&msg);
    send_msg(fx, &ack);
    assert_true(quiet(fx, PROTO_MSG_HELLO, 300));

    /* the master restarted: a new epoch makes the worker say HELLO again */
    ack.u.heartbeat_ack = (proto_heartbeat_ack_t){ .epoch = 200, .seq = 1 };
    send_msg(fx, &ack);
    expect_msg(fx, PROTO_MSG_HELLO, &msg, 1000);
    proto_msg_free(&msg);
}

static void test_worker_says_hello_again_on_hello_required(void **state)
{
    fixture_t *fx = *state;
    proto_msg_t msg, err = { 0 };
    start_worker(fx);
    expect_msg(fx, PROTO_MSG_HELLO, &msg, 3000);
    proto_msg_free(&msg);
    send_welcome(fx, 7, NULL, 0);
    expect_msg(fx, PROTO_MSG_HEARTBEAT, &msg, 1000);
    proto_msg_free(&msg);
    assert_int_equal(proto_error_msg(&err, "hello_required", NULL, "who are you"), 0);
    send_msg(fx, &err);
    proto_msg_free(&err);
    expect_msg(fx, PROTO_MSG_HELLO, &msg, 1000);
    proto_msg_free(&msg);
}

static void test_worker_refuses_job_for_unknown_device_and_acks_commands(void **state)
{
    fixture_t *fx = *state;
    proto_msg_t msg;
    start_worker(fx);
    expect_msg(fx, PROTO_MSG_HELLO, &msg, 3000);
    proto_msg_free(&msg);
    send_welcome(fx, 1, NULL, 0);

    proto_action_t act = { .kind = "boot", .method = "ipmi-pxe" };
    proto_jobdef_t def = { .name = "j", .device_type = "t", .priority = 50, .job_timeout_s = 60,
                           .action_timeout_s = 60, .actions = &act, .actions_count = 1 };
    proto_msg_t start = { .type = PROTO_MSG_JOB_START };
    start.u.job_start = (proto_job_start_t){ .job = 9, .device = "nope", .def = &def };
    send_msg(fx, &start);
    expect_msg(fx, PROTO_MSG_JOB_ACCEPT, &msg, 1000);
    assert_int_equal(msg.u.job_accept.job, 9);
    assert_false(msg.u.job_accept.ok);
    assert_non_null(strstr(msg.u.job_accept.reason, "unknown device nope"));
    proto_msg_free(&msg);

    proto_msg_t cancel = { .type = PROTO_MSG_JOB_CANCEL };
    cancel.u.job_cancel.job = 9;
    send_msg(fx, &cancel);
    expect_msg(fx, PROTO_MSG_ACK, &msg, 1000);
    assert_string_equal(msg.u.ack.of, "jcancel");
    assert_int_equal(msg.u.ack.job, 9);
    proto_msg_free(&msg);
}

static void test_worker_resends_unacked_spool_and_forgets_acked_job(void **state)
{
    fixture_t *fx = *state;
    proto_msg_t msg;
    prespool(fx, 42, 3);
    start_worker(fx);
    expect_msg(fx, PROTO_MSG_HELLO, &msg, 3000);
    /* the job never ended before the restart: the worker ended it (seq 4) */
    assert_int_equal(msg.u.hello.jobs_count, 1);
    assert_int_equal(msg.u.hello.jobs[0].job, 42);
    assert_int_equal(msg.u.hello.jobs[0].seq, 4);
    proto_msg_free(&msg);

    proto_jobseq_t have = { 42, 1 };
    send_welcome(fx, 5, &have, 1);
    for (uint64_t seq = 2; seq <= 4; seq++) {
        expect_msg(fx, PROTO_MSG_JOB_EVENT, &msg, 1000);
        assert_int_equal(msg.u.job_event.job, 42);
        assert_int_equal(msg.u.job_event.seq, seq);
        if (seq == 4) {
            assert_string_equal(msg.u.job_event.kind, "end");
            assert_string_equal(msg.u.job_event.value, "incomplete");
            assert_non_null(strstr(msg.u.job_event.reason, "worker restarted"));
        }
        proto_msg_free(&msg);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/job-42.spool", fx->link.spool_dir);
    assert_int_equal(access(path, F_OK), 0);
    proto_msg_t ack = { .type = PROTO_MSG_EVENT_ACK };
    ack.u.event_ack = (proto_event_ack_t){ .job = 42, .seq = 4 };
    send_msg(fx, &ack);
    int64_t deadline = zclock_mono() + 2000;
    while (access(path, F_OK) == 0 && zclock_mono() < deadline)
        zclock_sleep(20);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_worker_keeps_at_most_a_window_of_unacked_events(void **state)
{
    fixture_t *fx = *state;
    proto_msg_t msg;
    prespool(fx, 50, 100);
    start_worker(fx);
    expect_msg(fx, PROTO_MSG_HELLO, &msg, 3000);
    proto_msg_free(&msg);
    send_welcome(fx, 5, NULL, 0);
    for (uint64_t seq = 1; seq <= RR_WORKER_WINDOW; seq++) {
        expect_msg(fx, PROTO_MSG_JOB_EVENT, &msg, 1000);
        assert_int_equal(msg.u.job_event.seq, seq);
        proto_msg_free(&msg);
    }
    assert_true(quiet(fx, PROTO_MSG_JOB_EVENT, 400));
    proto_msg_t ack = { .type = PROTO_MSG_EVENT_ACK };
    ack.u.event_ack = (proto_event_ack_t){ .job = 50, .seq = 10 };
    send_msg(fx, &ack);
    for (uint64_t seq = RR_WORKER_WINDOW + 1; seq <= RR_WORKER_WINDOW + 10; seq++) {
        expect_msg(fx, PROTO_MSG_JOB_EVENT, &msg, 1000);
        assert_int_equal(msg.u.job_event.seq, seq);
        proto_msg_free(&msg);
    }
    assert_true(quiet(fx, PROTO_MSG_JOB_EVENT, 300));
}

static void test_worker_talks_curve_with_its_certificate(void **state)
{
    fixture_t *fx = *state;
    char master_pub[4200], worker_cert[4200], worker_secret[4300];
    snprintf(master_pub, sizeof master_pub, "%s/master.pub", fx->link.dir);
    snprintf(worker_cert, sizeof worker_cert, "%s/worker", fx->link.dir);
    snprintf(worker_secret, sizeof worker_secret, "%s_secret", worker_cert);
    zcert_t *server = zcert_new(), *client = zcert_new();
    assert_int_equal(zcert_save_public(server, master_pub), 0);
    assert_int_equal(zcert_save(client, worker_cert), 0);
    /* a CURVE master in place of the plaintext one */
    zsock_destroy(&fx->link.router);
    fx->link.router = zsock_new(ZMQ_ROUTER);
    proto_socket_setup(fx->link.router);
    zsock_set_curve_server(fx->link.router, 1);
    zcert_apply(server, fx->link.router);
    int port = zsock_bind(fx->link.router, "tcp://127.0.0.1:*");
    assert_true(port > 0);
    snprintf(fx->link.endpoint, sizeof fx->link.endpoint, "tcp://127.0.0.1:%d", port);
    fx->config.master_public_key = master_pub;
    fx->config.secret_key = worker_secret;
    start_worker_secure(fx, false);
    proto_msg_t msg;
    expect_msg(fx, PROTO_MSG_HELLO, &msg, 3000);
    assert_string_equal(msg.u.hello.worker, "rack-test");
    proto_msg_free(&msg);
    zcert_destroy(&server);
    zcert_destroy(&client);
}

static void test_worker_without_keys_refuses_plaintext_unless_insecure(void **state)
{
    fixture_t *fx = *state;
    char err[1024] = "";
    assert_null(rr_worker_new(&fx->config, false, err, sizeof err));
    assert_non_null(strstr(err, "--insecure"));
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/no-such-cert", fx->link.dir);
    fx->config.master_public_key = missing;
    fx->config.secret_key = missing;
    err[0] = '\0';
    assert_null(rr_worker_new(&fx->config, false, err, sizeof err));
    assert_non_null(strstr(err, missing));
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_worker_says_hello_then_beats_and_hellos_again_on_new_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_says_hello_again_on_hello_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_refuses_job_for_unknown_device_and_acks_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_resends_unacked_spool_and_forgets_acked_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_keeps_at_most_a_window_of_unacked_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_talks_curve_with_its_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_without_keys_refuses_plaintext_unless_insecure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
