/* test_master_daemon.c: the real master (in-process, temp database) driven
 * over its sockets by a fake worker and a fake client: sessions, dispatch,
 * event batches and acks, heartbeat loss, grace, cancel, logs, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <msgpack.h>

#include "harness.h"

#define WAIT_MS 3000        /* for what must arrive */
#define QUIET_MS 400        /* for what must not arrive */

#define JOB_YAML(prio) \
    "job_name: t\n" \
    "device_type: highbank\n" \
    "priority: " prio "\n" \
    "actions:\n" \
    "  - boot: {method: ipmi-pxe}\n"

typedef struct {
    harness_t *h;
    zsock_t *worker;
    zsock_t *client;
} fixture_t;

/* ---- fixture ---- */

static int s_setup_with_grace(void **state, uint32_t grace_ms)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f || !(f->h = harness_new()))
        return -1;
    f->h->config->worker_grace_ms = grace_ms;
    *state = f;
    if (harness_start(f->h) != 0) {
        fprintf(stderr, "master did not start: %s\n", f->h->start_error);
        return -1;
    }
    f->worker = peer_new(f->h->worker_ep, NULL, NULL);
    f->client = peer_new(f->h->client_ep, NULL, NULL);
    return f->worker && f->client ? 0 : -1;
}

static int setup(void **state)
{
    return s_setup_with_grace(state, 60000);
}

static int setup_short_grace(void **state)
{
    return s_setup_with_grace(state, 300);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (!f)
        return 0;
    zsock_destroy(&f->worker);
    zsock_destroy(&f->client);
    harness_destroy(&f->h);
    free(f);
    return 0;
}

/* ---- worker side ---- */

static proto_device_t s_devices[] = {
    { .name = "hb-01", .type = "highbank", .state = "idle" },
    { .name = "mx-01", .type = "midway", .state = "idle" },
};

static void send_hello_jobs(zsock_t *worker, const char *name, uint32_t pmin, uint32_t pmax,
                            proto_jobseq_t *jobs, size_t job_count)
{
    proto_msg_t msg = { .type = PROTO_MSG_HELLO, .version = PROTO_VERSION };
    msg.u.hello = (proto_hello_t) { .worker = (char *) name, .rack = "r1", .version = "test",
                                    .proto_min = pmin, .proto_max = pmax,
                                    .devices = s_devices, .devices_count = 2,
                                    .jobs = jobs, .jobs_count = job_count };
    assert_int_equal(peer_send(worker, &msg), 0);
}

static void send_hello(zsock_t *worker, const char *name, uint32_t pmin, uint32_t pmax)
{
    send_hello_jobs(worker, name, pmin, pmax, NULL, 0);
}

/* HELLO as "w1" and expect WELCOME; returns the master's epoch. */
static uint64_t worker_online(fixture_t *f)
{
    send_hello(f->worker, "w1", PROTO_VERSION_MIN, PROTO_VERSION);
    proto_msg_t msg;
    assert_int_equal(peer_expect(f->worker, PROTO_MSG_WELCOME, WAIT_MS, &msg), 0);
    uint64_t epoch = msg.u.welcome.epoch;
    proto_msg_free(&msg);
    return epoch;
}

/* Stop the master and start it again on the same database (new ports, new peers). */
static void restart_master(fixture_t *f)
{
    zsock_destroy(&f->worker);
    zsock_destroy(&f->client);
    harness_stop(f->h);
    zclock_sleep(5);                                /* a new epoch, even on a fast machine */
    if (harness_start(f->h) != 0)
        fail_msg("master did not restart: %s", f->h->start_error);
    f->worker = peer_new(f->h->worker_ep, NULL, NULL);
    f->client = peer_new(f->h->client_ep, NULL, NULL);
    assert_non_null(f->worker);
    assert_non_null(f->client);
}

static void send_heartbeat(zsock_t *worker, uint64_t seq)
{
    proto_msg_t msg = { .type = PROTO_MSG_HEARTBEAT, .version = PROTO_VERSION };
    msg.u.heartbeat.seq = seq;
    assert_int_equal(peer_send(worker, &msg), 0);
}

static void send_accept(zsock_t *worker, uint64_t job, bool ok)
{
    proto_msg_t msg = { .type = PROTO_MSG_JOB_ACCEPT, .version = PROTO_VERSION };
    msg.u.job_accept = (proto_job_accept_t) { .job = job, .ok = ok, .reason = ok ? NULL : "busy" };
    assert_int_equal(peer_send(worker, &msg), 0);
}

static void send_event(zsock_t *worker, uint64_t job, uint64_t seq, const char *kind,
                       const char *name, const char *value)
{
    proto_msg_t msg = { .type = PROTO_MSG_JOB_EVENT, .version = PROTO_VERSION };
    msg.u.job_event = (proto_job_event_t) { .job = job, .seq = seq, .ts = 1000 + seq,
                                            .kind = (char *) kind, .name = (char *) name,
                                            .value = (char *) value };
    if (streq(kind, "log")) {
        msg.u.job_event.data = (uint8_t *) value;
        msg.u.job_event.data_len = strlen(value);
        msg.u.job_event.value = NULL;
    }
    assert_int_equal(peer_send(worker, &msg), 0);
}

static void send_ack(zsock_t *worker, const char *of, uint64_t job)
{
    proto_msg_t msg = { .type = PROTO_MSG_ACK, .version = PROTO_VERSION };
    msg.u.ack = (proto_ack_t) { .of = (char *) of, .job = job };
    assert_int_equal(peer_send(worker, &msg), 0);
}

/* Expect JOB_START; returns its job id, *DEVICE gets the device (caller frees). */
static uint64_t expect_start(zsock_t *worker, char **device)
{
    proto_msg_t msg;
    assert_int_equal(peer_expect(worker, PROTO_MSG_JOB_START, WAIT_MS, &msg), 0);
    uint64_t job = msg.u.job_start.job;
    assert_non_null(msg.u.job_start.def);
    assert_string_equal(msg.u.job_start.def->device_type, "highbank");
    if (device)
        *device = strdup(msg.u.job_start.device);
    proto_msg_free(&msg);
    return job;
}

/* Collect EVENT_ACKs of JOB until one says WANT; none may say more. */
static void expect_acked(zsock_t *worker, uint64_t job, uint64_t want)
{
    int64_t deadline = zclock_mono() + WAIT_MS;
    for (;;) {
        proto_msg_t msg;
        int64_t left = deadline - zclock_mono();
        if (left <= 0 || peer_expect(worker, PROTO_MSG_EVENT_ACK, (int) left, &msg) != 0)
            fail_msg("no EVENT_ACK job %" PRIu64 " seq %" PRIu64, job, want);
        assert_int_equal(msg.u.event_ack.job, job);
        uint64_t seq = msg.u.event_ack.seq;
        proto_msg_free(&msg);
        if (seq > want)
            fail_msg("EVENT_ACK seq %" PRIu64 " covers more than the contiguous %" PRIu64,
                     seq, want);
        if (seq == want)
            return;
    }
}

/* ---- client side ---- */

static void client_send(fixture_t *f, proto_msg_t *msg)
{
    msg->version = PROTO_VERSION;
    assert_int_equal(peer_send(f->client, msg), 0);
}

static uint64_t submit(fixture_t *f, const char *yaml)
{
    proto_msg_t msg = { .type = PROTO_MSG_SUBMIT };
    msg.u.submit.yaml = (char *) yaml;
    client_send(f, &msg);
    proto_msg_t reply;
    assert_int_equal(peer_recv(f->client, WAIT_MS, &reply), 0);
    if (reply.type != PROTO_MSG_SUBMITTED)
        fail_msg("submit: got '%s' (%s)", proto_type_name(reply.type),
                 reply.type == PROTO_MSG_ERROR ? reply.u.error.text : "");
    uint64_t id = reply.u.submitted.job;
    proto_msg_free(&reply);
    assert_true(id > 0);
    return id;
}

/* JOB: the job's info into *REPLY (caller frees). */
static void job_detail(fixture_t *f, uint64_t job, proto_msg_t *reply)
{
    proto_msg_t msg = { .type = PROTO_MSG_JOB };
    msg.u.job.job = job;
    client_send(f, &msg);
    assert_int_equal(peer_recv(f->client, WAIT_MS, reply), 0);
    assert_int_equal(reply->type, PROTO_MSG_JOB_DETAIL);
}

/* Poll JOB until its state is STATE (within WAIT_MS); returns its info in *REPLY. */
static void wait_job_state(fixture_t *f, uint64_t job, const char *state, proto_msg_t *reply)
{
    int64_t deadline = zclock_mono() + WAIT_MS;
    for (;;) {
        job_detail(f, job, reply);
        if (streq(reply->u.job_detail.info->state, state))
            return;
        if (zclock_mono() > deadline)
            fail_msg("job %" PRIu64 ": state %s, expected %s", job,
                     reply->u.job_detail.info->state, state);
        proto_msg_free(reply);
        zclock_sleep(20);
    }
}

/* State of DEVICE per DEVICES (static buffer). */
static const char *device_state(fixture_t *f, const char *device)
{
    static char state[32];
    proto_msg_t msg = { .type = PROTO_MSG_DEVICES };
    client_send(f, &msg);
    proto_msg_t reply;
    assert_int_equal(peer_recv(f->client, WAIT_MS, &reply), 0);
    assert_int_equal(reply.type, PROTO_MSG_DEVICE_LIST);
    snprintf(state, sizeof state, "(none)");
    for (size_t i = 0; i < reply.u.device_list.devices_count; i++)
        if (streq(reply.u.device_list.devices[i].name, device))
            snprintf(state, sizeof state, "%s", reply.u.device_list.devices[i].state);
    proto_msg_free(&reply);
    return state;
}

/* State of WORKER per WORKERS (static buffer). */
static const char *worker_state(fixture_t *f, const char *worker)
{
    static char state[32];
    proto_msg_t msg = { .type = PROTO_MSG_WORKERS };
    client_send(f, &msg);
    proto_msg_t reply;
    assert_int_equal(peer_recv(f->client, WAIT_MS, &reply), 0);
    assert_int_equal(reply.type, PROTO_MSG_WORKER_LIST);
    snprintf(state, sizeof state, "(none)");
    for (size_t i = 0; i < reply.u.worker_list.workers_count; i++)
        if (streq(reply.u.worker_list.workers[i].name, worker))
            snprintf(state, sizeof state, "%s", reply.u.worker_list.workers[i].state);
    proto_msg_free(&reply);
    return state;
}

/* The next message on SOCK is an ERROR with CODE (and TEXT in its text, unless NULL). */
static void expect_error(zsock_t *sock, const char *code, const char *text)
{
    proto_msg_t msg;
    assert_int_equal(peer_recv(sock, WAIT_MS, &msg), 0);
    assert_int_equal(msg.type, PROTO_MSG_ERROR);
    assert_string_equal(msg.u.error.code, code);
    if (text)
        assert_non_null(strstr(msg.u.error.text, text));
    proto_msg_free(&msg);
}

/* Send MSG as the client; the next reply must be OK. */
static void client_ok(fixture_t *f, proto_msg_t *msg)
{
    client_send(f, msg);
    proto_msg_t reply;
    assert_int_equal(peer_recv(f->client, WAIT_MS, &reply), 0);
    assert_int_equal(reply.type, PROTO_MSG_OK);
    proto_msg_free(&reply);
}

/* JOB is in STATE now (and has OUTCOME, unless NULL). */
static void expect_job(fixture_t *f, uint64_t job, const char *state, const char *outcome)
{
    proto_msg_t reply;
    job_detail(f, job, &reply);
    assert_string_equal(reply.u.job_detail.info->state, state);
    if (outcome)
        assert_string_equal(reply.u.job_detail.info->outcome, outcome);
    proto_msg_free(&reply);
}

/* Wait until JOB is finished; it must have OUTCOME. */
static void expect_job_ends(fixture_t *f, uint64_t job, const char *outcome)
{
    proto_msg_t reply;
    wait_job_state(f, job, "finished", &reply);
    assert_string_equal(reply.u.job_detail.info->outcome, outcome);
    proto_msg_free(&reply);
}

/* The client's next replies: JOB_EVENTs with seq FROM..TO in order (of KIND, unless NULL). */
static void expect_client_events(fixture_t *f, uint64_t from, uint64_t to, const char *kind)
{
    proto_msg_t reply;
    for (uint64_t seq = from; seq <= to; seq++) {
        assert_int_equal(peer_recv(f->client, WAIT_MS, &reply), 0);
        assert_int_equal(reply.type, PROTO_MSG_JOB_EVENT);
        assert_int_equal(reply.u.job_event.seq, seq);
        if (kind)
            assert_string_equal(reply.u.job_event.kind, kind);
        proto_msg_free(&reply);
    }
}

/* The client's next reply: LOGS_END with LAST_SEQ and FINISHED. */
static void expect_logs_end(fixture_t *f, uint64_t last_seq, bool finished)
{
    proto_msg_t reply;
    assert_int_equal(peer_recv(f->client, WAIT_MS, &reply), 0);
    assert_int_equal(reply.type, PROTO_MSG_LOGS_END);
    assert_int_equal(reply.u.logs_end.last_seq, last_seq);
    assert_int_equal(reply.u.logs_end.finished, finished);
    proto_msg_free(&reply);
}

/* Worker online, one job submitted, started on hb-01 and accepted. */
static uint64_t running_job(fixture_t *f)
{
    worker_online(f);
    uint64_t job = submit(f, JOB_YAML("50"));
    char *device = NULL;
    assert_int_equal(expect_start(f->worker, &device), job);
    assert_string_equal(device, "hb-01");
    free(device);
    send_accept(f->worker, job, true);
    send_event(f->worker, job, 1, "state", "running", NULL);
    expect_acked(f->worker, job, 1);
    return job;
}

/* ---- sessions ---- */

static void test_hello_gets_welcome_with_epoch_and_heartbeat_settings(void **state)
{
    fixture_t *f = *state;
    uint64_t before = (uint64_t) zclock_time();
    send_hello(f->worker, "w1", PROTO_VERSION_MIN, PROTO_VERSION);
    proto_msg_t msg;
    assert_int_equal(peer_recv(f->worker, WAIT_MS, &msg), 0);
    assert_int_equal(msg.type, PROTO_MSG_WELCOME);
    uint64_t epoch = msg.u.welcome.epoch;
    assert_true(epoch > 0 && epoch <= before);       /* ms when the master started */
    assert_int_equal(msg.u.welcome.heartbeat_interval_ms, 100);
    assert_int_equal(msg.u.welcome.heartbeat_timeout_ms, 500);
    proto_msg_free(&msg);

    send_heartbeat(f->worker, 7);
    assert_int_equal(peer_recv(f->worker, WAIT_MS, &msg), 0);
    assert_int_equal(msg.type, PROTO_MSG_HEARTBEAT_ACK);
    assert_int_equal(msg.u.heartbeat_ack.seq, 7);
    assert_int_equal(msg.u.heartbeat_ack.epoch, epoch);
    proto_msg_free(&msg);
    assert_string_equal(worker_state(f, "w1"), "online");
    assert_string_equal(device_state(f, "hb-01"), "idle");
}

static void test_hello_with_disjoint_versions_gets_version_error(void **state)
{
    fixture_t *f = *state;
    send_hello(f->worker, "w1", PROTO_VERSION + 4, PROTO_VERSION + 6);
    proto_msg_t msg;
    assert_int_equal(peer_recv(f->worker, WAIT_MS, &msg), 0);
    assert_int_equal(msg.type, PROTO_MSG_ERROR);
    assert_string_equal(msg.u.error.code, "version");
    char theirs[32], ours[32];
    snprintf(theirs, sizeof theirs, "%u..%u", PROTO_VERSION + 4, PROTO_VERSION + 6);
    snprintf(ours, sizeof ours, "%u..%u", PROTO_VERSION_MIN, PROTO_VERSION);
    assert_non_null(strstr(msg.u.error.text, theirs));
    assert_non_null(strstr(msg.u.error.text, ours));
    proto_msg_free(&msg);
    assert_string_equal(worker_state(f, "w1"), "(none)");
}

static void test_heartbeat_before_hello_gets_hello_required(void **state)
{
    fixture_t *f = *state;
    send_heartbeat(f->worker, 1);
    expect_error(f->worker, "hello_required", NULL);
}

static void test_worker_lost_after_heartbeat_timeout_and_devices_offline(void **state)
{
    fixture_t *f = *state;
    worker_online(f);
    for (uint64_t seq = 1; seq <= 10; seq++) {      /* 1 s of beats: longer than the timeout */
        zclock_sleep(100);
        send_heartbeat(f->worker, seq);
    }
    int64_t silent_since = zclock_mono();
    assert_string_equal(worker_state(f, "w1"), "online");
    zclock_sleep(250);
    assert_string_equal(worker_state(f, "w1"), "online");
    while (!streq(worker_state(f, "w1"), "lost")) {
        assert_true(zclock_mono() - silent_since < 2000);
        zclock_sleep(20);
    }
    assert_true(zclock_mono() - silent_since >= 500);
    assert_string_equal(device_state(f, "hb-01"), "offline");
    assert_string_equal(device_state(f, "mx-01"), "offline");

    /* lost means no scheduling: a job stays queued */
    uint64_t job = submit(f, JOB_YAML("50"));
    zclock_sleep(200);
    expect_job(f, job, "queued", NULL);
}

static void test_lost_worker_jobs_end_incomplete_after_grace(void **state)
{
    fixture_t *f = *state;
    uint64_t job = running_job(f);
    proto_msg_t reply;
    wait_job_state(f, job, "running", &reply);
    proto_msg_free(&reply);
    /* silent from now: lost after 500 ms, the job ends 300 ms later */
    zclock_sleep(600);
    expect_job(f, job, "running", NULL);
    wait_job_state(f, job, "finished", &reply);
    assert_string_equal(reply.u.job_detail.info->outcome, "incomplete");
    assert_string_equal(reply.u.job_detail.info->reason, "worker lost");
    proto_msg_free(&reply);
}

static void test_worker_restarted_without_its_job_ends_it(void **state)
{
    fixture_t *f = *state;
    uint64_t job = running_job(f);
    zsock_destroy(&f->worker);                      /* a new connection, no jobs listed */
    f->worker = peer_new(f->h->worker_ep, NULL, NULL);
    worker_online(f);
    proto_msg_t reply;
    wait_job_state(f, job, "finished", &reply);
    assert_string_equal(reply.u.job_detail.info->outcome, "incomplete");
    assert_non_null(strstr(reply.u.job_detail.info->reason, "restarted without the job"));
    proto_msg_free(&reply);
}

static void test_welcome_lists_the_acked_seq_of_a_job_the_worker_still_has(void **state)
{
    fixture_t *f = *state;
    uint64_t job = running_job(f);
    send_event(f->worker, job, 2, "log", NULL, "x");
    expect_acked(f->worker, job, 2);
    proto_jobseq_t jobs[] = { { .job = job, .seq = 5 } };
    send_hello_jobs(f->worker, "w1", PROTO_VERSION_MIN, PROTO_VERSION, jobs, 1);
    proto_msg_t msg;
    assert_int_equal(peer_expect(f->worker, PROTO_MSG_WELCOME, WAIT_MS, &msg), 0);
    assert_int_equal(msg.u.welcome.jobs_count, 1);
    assert_int_equal(msg.u.welcome.jobs[0].job, job);
    assert_int_equal(msg.u.welcome.jobs[0].seq, 2);
    proto_msg_free(&msg);
    expect_job(f, job, "running", NULL);
}

static void test_master_restart_resumes_the_stream_of_a_job_its_worker_still_has(void **state)
{
    fixture_t *f = *state;
    uint64_t job = running_job(f);
    send_event(f->worker, job, 2, "log", NULL, "before");
    expect_acked(f->worker, job, 2);
    proto_msg_t msg;
    restart_master(f);

    send_heartbeat(f->worker, 9);                   /* the new master does not know it */
    expect_error(f->worker, "hello_required", NULL);
    proto_jobseq_t jobs[] = { { .job = job, .seq = 3 } };
    send_hello_jobs(f->worker, "w1", PROTO_VERSION_MIN, PROTO_VERSION, jobs, 1);
    assert_int_equal(peer_expect(f->worker, PROTO_MSG_WELCOME, WAIT_MS, &msg), 0);
    assert_int_equal(msg.u.welcome.jobs_count, 1);
    assert_int_equal(msg.u.welcome.jobs[0].seq, 2);  /* resend from 3 */
    proto_msg_free(&msg);
    send_event(f->worker, job, 3, "end", NULL, "complete");
    expect_acked(f->worker, job, 3);
    expect_job_ends(f, job, "complete");
}

static void test_master_restart_gives_a_new_epoch_and_resends_unaccepted_job_start(void **state)
{
    fixture_t *f = *state;
    uint64_t epoch = worker_online(f);
    uint64_t job = submit(f, JOB_YAML("50"));
    assert_int_equal(expect_start(f->worker, NULL), job);   /* never accepted */
    restart_master(f);
    assert_true(worker_online(f) > epoch);
    assert_int_equal(expect_start(f->worker, NULL), job);
}

/* ---- jobs ---- */

static void test_submit_dispatches_job_start_for_a_matching_idle_device(void **state)
{
    fixture_t *f = *state;
    worker_online(f);
    uint64_t job = submit(f, JOB_YAML("50"));
    char *device = NULL;
    assert_int_equal(expect_start(f->worker, &device), job);
    assert_string_equal(device, "hb-01");           /* mx-01 is another type */
    free(device);
    proto_msg_t reply;
    job_detail(f, job, &reply);
    assert_string_equal(reply.u.job_detail.info->state, "scheduled");
    assert_string_equal(reply.u.job_detail.info->device, "hb-01");
    assert_non_null(strstr(reply.u.job_detail.yaml, "job_name: t"));
    proto_msg_free(&reply);
    assert_string_equal(device_state(f, "hb-01"), "reserved");
}

static void test_job_start_is_resent_until_accepted(void **state)
{
    fixture_t *f = *state;
    worker_online(f);
    uint64_t job = submit(f, JOB_YAML("50"));
    assert_int_equal(expect_start(f->worker, NULL), job);
    assert_int_equal(expect_start(f->worker, NULL), job);   /* not accepted: again */
    send_accept(f->worker, job, true);
    zclock_sleep(100);
    proto_msg_t msg;
    while (peer_recv(f->worker, 0, &msg) == 0)              /* drop what crossed the accept */
        proto_msg_free(&msg);
    assert_int_equal(peer_expect(f->worker, PROTO_MSG_JOB_START, QUIET_MS, &msg), -1);
}

static void test_refused_job_goes_back_to_the_queue(void **state)
{
    fixture_t *f = *state;
    worker_online(f);
    uint64_t job = submit(f, JOB_YAML("50"));
    assert_int_equal(expect_start(f->worker, NULL), job);
    send_accept(f->worker, job, false);
    proto_msg_t reply;
    wait_job_state(f, job, "queued", &reply);
    proto_msg_free(&reply);
    assert_string_equal(device_state(f, "hb-01"), "offline");
}

static void test_events_are_acked_with_the_highest_contiguous_seq(void **state)
{
    fixture_t *f = *state;
    uint64_t job = running_job(f);
    send_event(f->worker, job, 2, "log", NULL, "two");
    send_event(f->worker, job, 2, "log", NULL, "two");      /* duplicate */
    send_event(f->worker, job, 4, "log", NULL, "four");     /* before 3 */
    expect_acked(f->worker, job, 2);
    proto_msg_t msg;
    while (peer_recv(f->worker, QUIET_MS, &msg) == 0) {     /* 4 must wait for 3 */
        if (msg.type == PROTO_MSG_EVENT_ACK)
            assert_int_equal(msg.u.event_ack.seq, 2);
        proto_msg_free(&msg);
    }
    send_event(f->worker, job, 3, "log", NULL, "three");
    expect_acked(f->worker, job, 4);
    send_event(f->worker, job, 5, "end", NULL, "complete");
    expect_acked(f->worker, job, 5);
    expect_job_ends(f, job, "complete");
    assert_string_equal(device_state(f, "hb-01"), "idle");
}

static void test_finished_job_frees_the_device_for_the_next_job(void **state)
{
    fixture_t *f = *state;
    uint64_t first = running_job(f);
    uint64_t second = submit(f, JOB_YAML("50"));
    proto_msg_t msg;
    assert_int_equal(peer_expect(f->worker, PROTO_MSG_JOB_START, QUIET_MS, &msg), -1);
    send_event(f->worker, first, 2, "end", NULL, "complete");
    assert_int_equal(expect_start(f->worker, NULL), second);
}

static void test_event_for_an_unknown_job_gets_not_found(void **state)
{
    fixture_t *f = *state;
    worker_online(f);
    send_event(f->worker, 4242, 1, "log", NULL, "x");
    proto_msg_t msg;
    assert_int_equal(peer_expect(f->worker, PROTO_MSG_ERROR, WAIT_MS, &msg), 0);
    assert_string_equal(msg.u.error.code, "not_found");
    assert_int_equal(msg.u.error.job, 4242);
    proto_msg_free(&msg);
}

static void test_invalid_yaml_gets_located_error_and_stores_nothing(void **state)
{
    fixture_t *f = *state;
    proto_msg_t msg = { .type = PROTO_MSG_SUBMIT };
    msg.u.submit.yaml = "job_name: t\ndevice_type: highbank\nactions:\n  - boot: {method: ipxe}\n";
    client_send(f, &msg);
    proto_msg_t reply;
    assert_int_equal(peer_recv(f->client, WAIT_MS, &reply), 0);
    assert_int_equal(reply.type, PROTO_MSG_ERROR);
    assert_string_equal(reply.u.error.code, "invalid");
    assert_int_equal(reply.u.error.line, 4);
    assert_true(reply.u.error.col > 1);
    assert_string_equal(reply.u.error.key, "actions[0].boot.method");
    assert_non_null(strstr(reply.u.error.text, "ipxe"));
    proto_msg_free(&reply);

    msg = (proto_msg_t) { .type = PROTO_MSG_JOBS };
    client_send(f, &msg);
    assert_int_equal(peer_recv(f->client, WAIT_MS, &reply), 0);
    assert_int_equal(reply.type, PROTO_MSG_JOB_LIST);
    assert_int_equal(reply.u.job_list.jobs_count, 0);
    proto_msg_free(&reply);
}

static void test_higher_priority_job_is_dispatched_first(void **state)
{
    fixture_t *f = *state;
    uint64_t low = submit(f, JOB_YAML("20"));
    uint64_t high = submit(f, JOB_YAML("80"));
    uint64_t medium = submit(f, JOB_YAML("50"));
    assert_true(low < high && high < medium);
    worker_online(f);                                  /* one highbank device comes up */
    assert_int_equal(expect_start(f->worker, NULL), high);
    expect_job(f, low, "queued", NULL);
}

static void test_cancel_of_a_queued_job_ends_it_canceled(void **state)
{
    fixture_t *f = *state;
    uint64_t job = submit(f, JOB_YAML("50"));
    proto_msg_t msg = { .type = PROTO_MSG_CANCEL };
    msg.u.cancel.job = job;
    client_ok(f, &msg);
    expect_job(f, job, "finished", "canceled");
    worker_online(f);
    proto_msg_t reply;                                  /* nothing left to start */
    assert_int_equal(peer_expect(f->worker, PROTO_MSG_JOB_START, QUIET_MS, &reply), -1);
}

static void test_cancel_of_a_running_job_sends_job_cancel_until_acked(void **state)
{
    fixture_t *f = *state;
    uint64_t job = running_job(f);
    proto_msg_t msg = { .type = PROTO_MSG_CANCEL };
    msg.u.cancel.job = job;
    client_ok(f, &msg);
    proto_msg_t reply;
    for (int i = 0; i < 2; i++) {                      /* sent, then re-sent */
        assert_int_equal(peer_expect(f->worker, PROTO_MSG_JOB_CANCEL, WAIT_MS, &reply), 0);
        assert_int_equal(reply.u.job_cancel.job, job);
        proto_msg_free(&reply);
    }
    send_ack(f->worker, "jcancel", job);
    expect_job(f, job, "canceling", NULL);
    send_event(f->worker, job, 2, "end", NULL, "canceled");
    expect_job_ends(f, job, "canceled");
}

static void test_cancel_of_an_unknown_job_gets_not_found(void **state)
{
    fixture_t *f = *state;
    proto_msg_t msg = { .type = PROTO_MSG_CANCEL };
    msg.u.cancel.job = 999;
    client_send(f, &msg);
    expect_error(f->client, "not_found", NULL);
}

/* ---- logs ---- */

static void test_logs_returns_the_stored_events_then_logs_end(void **state)
{
    fixture_t *f = *state;
    uint64_t job = running_job(f);
    send_event(f->worker, job, 2, "log", NULL, "hello ");
    send_event(f->worker, job, 3, "log", NULL, "world");
    expect_acked(f->worker, job, 3);
    proto_msg_t msg = { .type = PROTO_MSG_LOGS };
    msg.u.logs = (proto_logs_t) { .job = job, .from = 1 };
    client_send(f, &msg);
    expect_client_events(f, 2, 3, "log");
    expect_logs_end(f, 3, false);
}

static void test_logs_follow_pushes_events_until_the_job_ends(void **state)
{
    fixture_t *f = *state;
    uint64_t job = running_job(f);
    proto_msg_t msg = { .type = PROTO_MSG_LOGS };
    msg.u.logs = (proto_logs_t) { .job = job, .follow = true };
    client_send(f, &msg);
    proto_msg_t reply;
    assert_int_equal(peer_recv(f->client, WAIT_MS, &reply), 0);
    assert_int_equal(reply.u.job_event.seq, 1);        /* what was stored */
    proto_msg_free(&reply);
    assert_int_equal(peer_recv(f->client, QUIET_MS, &reply), -1);   /* following: no end */
    send_event(f->worker, job, 3, "log", NULL, "early");            /* held back: 2 missing */
    send_event(f->worker, job, 2, "log", NULL, "late");
    send_event(f->worker, job, 4, "end", NULL, "complete");
    expect_client_events(f, 2, 4, NULL);
    expect_logs_end(f, 4, true);
}

static void test_logs_of_an_unknown_job_gets_not_found(void **state)
{
    fixture_t *f = *state;
    proto_msg_t msg = { .type = PROTO_MSG_LOGS };
    msg.u.logs.job = 77;
    client_send(f, &msg);
    expect_error(f->client, "not_found", NULL);
}

/* ---- devices ---- */

static void test_device_set_maintenance_is_sent_to_the_worker_until_acked(void **state)
{
    fixture_t *f = *state;
    worker_online(f);
    proto_msg_t msg = { .type = PROTO_MSG_DEVICE_SET };
    msg.u.device_set = (proto_device_set_t) { .device = "hb-01", .maintenance = true };
    client_ok(f, &msg);
    proto_msg_t reply;
    assert_string_equal(device_state(f, "hb-01"), "maintenance");
    assert_int_equal(peer_expect(f->worker, PROTO_MSG_DEVICE_SET, WAIT_MS, &reply), 0);
    assert_string_equal(reply.u.device_set.device, "hb-01");
    assert_true(reply.u.device_set.maintenance);
    proto_msg_free(&reply);
    /* a job must not go to a device in maintenance */
    uint64_t job = submit(f, JOB_YAML("50"));
    assert_int_equal(peer_expect(f->worker, PROTO_MSG_JOB_START, QUIET_MS, &reply), -1);
    proto_msg_t ack = { .type = PROTO_MSG_ACK, .version = PROTO_VERSION };
    ack.u.ack = (proto_ack_t) { .of = "devset", .device = "hb-01" };
    assert_int_equal(peer_send(f->worker, &ack), 0);
    /* off again: the queued job starts */
    msg.u.device_set.maintenance = false;
    client_send(f, &msg);
    assert_int_equal(peer_expect(f->client, PROTO_MSG_OK, WAIT_MS, &reply), 0);
    proto_msg_free(&reply);
    assert_int_equal(expect_start(f->worker, NULL), job);
}

/* ---- bad input ---- */

/* Send a raw msgpack map {t: hello, v: 1, ver: x, pmin: 1, pmax: 1}: "wrk" missing. */
static void send_hello_without_worker_name(zsock_t *sock)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    const char *keys[] = { "t", "v", "ver", "pmin", "pmax" };
    msgpack_pack_str_with_body(&pk, keys[0], 1);
    msgpack_pack_str_with_body(&pk, "hello", 5);
    msgpack_pack_str_with_body(&pk, keys[1], 1);
    msgpack_pack_uint32(&pk, PROTO_VERSION);
    msgpack_pack_str_with_body(&pk, keys[2], 3);
    msgpack_pack_str_with_body(&pk, "x", 1);
    msgpack_pack_str_with_body(&pk, keys[3], 4);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_str_with_body(&pk, keys[4], 4);
    msgpack_pack_uint32(&pk, 1);
    zframe_t *frame = zframe_new(buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
    assert_int_equal(zframe_send(&frame, sock, 0), 0);
}

static void test_malformed_message_gets_error_naming_the_key(void **state)
{
    fixture_t *f = *state;
    send_hello_without_worker_name(f->worker);
    proto_msg_t msg;
    assert_int_equal(peer_recv(f->worker, WAIT_MS, &msg), 0);
    assert_int_equal(msg.type, PROTO_MSG_ERROR);
    assert_string_equal(msg.u.error.code, proto_status_name(PROTO_E_MISSING));
    assert_string_equal(msg.u.error.key, "wrk");
    proto_msg_free(&msg);

    zframe_t *garbage = zframe_new("\xc1\xc1\xc1", 3);
    assert_int_equal(zframe_send(&garbage, f->worker, 0), 0);
    assert_int_equal(peer_recv(f->worker, WAIT_MS, &msg), 0);
    assert_int_equal(msg.type, PROTO_MSG_ERROR);
    proto_msg_free(&msg);
    worker_online(f);                                  /* and the master still works */
}

static void test_worker_message_on_the_client_endpoint_gets_error(void **state)
{
    fixture_t *f = *state;
    send_hello(f->client, "w1", PROTO_VERSION_MIN, PROTO_VERSION);
    expect_error(f->client, "bad_message", "hello");
    assert_string_equal(worker_state(f, "w1"), "(none)");
}

static void test_client_message_on_the_worker_endpoint_gets_error(void **state)
{
    fixture_t *f = *state;
    worker_online(f);
    proto_msg_t msg = { .type = PROTO_MSG_SUBMIT, .version = PROTO_VERSION };
    msg.u.submit.yaml = JOB_YAML("50");
    assert_int_equal(peer_send(f->worker, &msg), 0);
    proto_msg_t reply;
    assert_int_equal(peer_expect(f->worker, PROTO_MSG_ERROR, WAIT_MS, &reply), 0);
    assert_string_equal(reply.u.error.code, "bad_message");
    proto_msg_free(&reply);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    const struct CMUnitTest tests[] = {
        T(test_hello_gets_welcome_with_epoch_and_heartbeat_settings),
        T(test_hello_with_disjoint_versions_gets_version_error),
        T(test_heartbeat_before_hello_gets_hello_required),
        T(test_worker_lost_after_heartbeat_timeout_and_devices_offline),
        cmocka_unit_test_setup_teardown(test_lost_worker_jobs_end_incomplete_after_grace,
                                        setup_short_grace, teardown),
        T(test_worker_restarted_without_its_job_ends_it),
        T(test_welcome_lists_the_acked_seq_of_a_job_the_worker_still_has),
        T(test_master_restart_resumes_the_stream_of_a_job_its_worker_still_has),
        T(test_master_restart_gives_a_new_epoch_and_resends_unaccepted_job_start),
        T(test_submit_dispatches_job_start_for_a_matching_idle_device),
        T(test_job_start_is_resent_until_accepted),
        T(test_refused_job_goes_back_to_the_queue),
        T(test_events_are_acked_with_the_highest_contiguous_seq),
        T(test_finished_job_frees_the_device_for_the_next_job),
        T(test_event_for_an_unknown_job_gets_not_found),
        T(test_invalid_yaml_gets_located_error_and_stores_nothing),
        T(test_higher_priority_job_is_dispatched_first),
        T(test_cancel_of_a_queued_job_ends_it_canceled),
        T(test_cancel_of_a_running_job_sends_job_cancel_until_acked),
        T(test_cancel_of_an_unknown_job_gets_not_found),
        T(test_logs_returns_the_stored_events_then_logs_end),
        T(test_logs_follow_pushes_events_until_the_job_ends),
        T(test_logs_of_an_unknown_job_gets_not_found),
        T(test_device_set_maintenance_is_sent_to_the_worker_until_acked),
        T(test_malformed_message_gets_error_naming_the_key),
        T(test_worker_message_on_the_client_endpoint_gets_error),
        T(test_client_message_on_the_worker_endpoint_gets_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
