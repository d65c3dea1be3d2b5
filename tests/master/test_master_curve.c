/* test_master_curve.c: CURVE on the master's endpoints (its own ZAP handler,
 * one allow-list directory per endpoint), refusal of unusable secret
 * certificates, and the daemon refusing to run without keys unless --insecure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "harness.h"

#define WAIT_MS 3000
#define REFUSED_MS 1000     /* a refused peer's request stays unanswered this long */

typedef struct {
    harness_t *h;
    zcert_t *worker_cert;       /* in the worker allow-list */
    zcert_t *client_cert;       /* in the client allow-list */
    zcert_t *rogue_cert;        /* in no list */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f || !(f->h = harness_new()))
        return -1;
    *state = f;
    harness_t *h = f->h;
    f->worker_cert = zcert_new();
    f->client_cert = zcert_new();
    f->rogue_cert = zcert_new();
    if (harness_curve(h) != 0
        || zcert_save_public(f->worker_cert, harness_path(h, 0, "workers/w1")) != 0
        || zcert_save_public(f->client_cert, harness_path(h, 0, "clients/c1")) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (!f)
        return 0;
    harness_destroy(&f->h);
    zcert_destroy(&f->worker_cert);
    zcert_destroy(&f->client_cert);
    zcert_destroy(&f->rogue_cert);
    free(f);
    return 0;
}

/* A CURVE DEALER with CERT on ENDPOINT, closed by the harness at teardown. */
static zsock_t *connect_as(fixture_t *f, const char *endpoint, zcert_t *cert)
{
    zsock_t *sock = harness_peer(f->h, endpoint, cert);
    assert_non_null(sock);
    return sock;
}

static void send_workers(zsock_t *sock)
{
    proto_msg_t msg = { .type = PROTO_MSG_WORKERS, .version = PROTO_VERSION };
    assert_int_equal(peer_send(sock, &msg), 0);
}

static void test_allowed_worker_is_welcomed_and_an_unknown_key_is_refused(void **state)
{
    fixture_t *f = *state;
    if (harness_start(f->h) != 0)
        fail_msg("master did not start: %s", f->h->start_error);
    zsock_t *rogue = connect_as(f, f->h->worker_ep, f->rogue_cert);
    assert_int_equal(peer_send_hello(rogue, "rogue"), 0);
    zsock_t *worker = connect_as(f, f->h->worker_ep, f->worker_cert);
    assert_int_equal(peer_send_hello(worker, "w1"), 0);
    proto_msg_t msg;
    assert_int_equal(peer_recv(worker, WAIT_MS, &msg), 0);
    assert_int_equal(msg.type, PROTO_MSG_WELCOME);
    proto_msg_free(&msg);
    assert_int_equal(peer_recv(rogue, REFUSED_MS, &msg), -1);

    zsock_t *client = connect_as(f, f->h->client_ep, f->client_cert);
    send_workers(client);
    assert_int_equal(peer_recv(client, WAIT_MS, &msg), 0);
    assert_int_equal(msg.type, PROTO_MSG_WORKER_LIST);
    assert_int_equal(msg.u.worker_list.workers_count, 1);     /* nothing of the rogue stored */
    assert_string_equal(msg.u.worker_list.workers[0].name, "w1");
    proto_msg_free(&msg);
}

static void test_a_worker_key_is_refused_on_the_client_endpoint(void **state)
{
    fixture_t *f = *state;
    if (harness_start(f->h) != 0)
        fail_msg("master did not start: %s", f->h->start_error);
    zsock_t *intruder = connect_as(f, f->h->client_ep, f->worker_cert);
    send_workers(intruder);
    proto_msg_t msg;
    assert_int_equal(peer_recv(intruder, REFUSED_MS, &msg), -1);
    zsock_t *client = connect_as(f, f->h->client_ep, f->client_cert);
    send_workers(client);
    assert_int_equal(peer_recv(client, WAIT_MS, &msg), 0);
    assert_int_equal(msg.type, PROTO_MSG_WORKER_LIST);
    proto_msg_free(&msg);
}

static void test_a_key_added_to_the_allow_list_is_accepted_without_restart(void **state)
{
    fixture_t *f = *state;
    if (harness_start(f->h) != 0)
        fail_msg("master did not start: %s", f->h->start_error);
    assert_int_equal(zcert_save_public(f->rogue_cert, harness_path(f->h, 0, "workers/w2")), 0);
    zsock_t *worker = connect_as(f, f->h->worker_ep, f->rogue_cert);
    assert_int_equal(peer_send_hello(worker, "w2"), 0);
    proto_msg_t msg;
    assert_int_equal(peer_recv(worker, WAIT_MS, &msg), 0);
    assert_int_equal(msg.type, PROTO_MSG_WELCOME);
    proto_msg_free(&msg);
}

static void test_a_duplicate_cert_file_in_the_allow_list_is_harmless(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(zcert_save_public(f->worker_cert, harness_path(f->h, 0, "workers/w1.bak")),
                     0);
    if (harness_start(f->h) != 0)
        fail_msg("master did not start: %s", f->h->start_error);
    zsock_t *worker = connect_as(f, f->h->worker_ep, f->worker_cert);
    assert_int_equal(peer_send_hello(worker, "w1"), 0);
    proto_msg_t msg;
    assert_int_equal(peer_recv(worker, WAIT_MS, &msg), 0);
    assert_int_equal(msg.type, PROTO_MSG_WELCOME);
    proto_msg_free(&msg);
}

static void test_master_refuses_a_secret_cert_readable_by_others(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(chmod(harness_path(f->h, 0, "master_secret"), 0644), 0);
    assert_int_equal(harness_start(f->h), -1);
    assert_non_null(strstr(f->h->start_error, "master_secret"));
    assert_non_null(strstr(f->h->start_error, "chmod 600"));
}

static void test_master_refuses_a_cert_without_secret_key(void **state)
{
    fixture_t *f = *state;
    harness_set(&f->h->config->secret_key, harness_path(f->h, 0, "clients/c1"));
    assert_int_equal(chmod(harness_path(f->h, 0, "clients/c1"), 0600), 0);
    assert_int_equal(harness_start(f->h), -1);
    assert_non_null(strstr(f->h->start_error, "no secret key"));
}

/* Run rackrun-master with ARGS under `timeout SECONDS`; returns the exit
 * status (124 = still running when the timeout stopped it), output in OUT. */
static int run_master_binary(fixture_t *f, const char *args, int seconds, char *out, size_t len)
{
    const char *bin_dir = getenv("RR_BINARY_DIR");
    if (!bin_dir)
        skip();
    char command[2048];
    snprintf(command, sizeof command,
             "timeout %d %s/master/rackrun-master --db %s --worker-endpoint 'tcp://127.0.0.1:*' "
             "--client-endpoint 'tcp://127.0.0.1:*' %s 2>&1",
             seconds, bin_dir, harness_path(f->h, 1, "bin.db"), args);
    return harness_shell(command, out, len);   /* -1 (could not run) fails every caller */
}

static void test_master_binary_refuses_to_start_without_keys(void **state)
{
    fixture_t *f = *state;
    char out[4096];
    assert_int_equal(run_master_binary(f, "", 10, out, sizeof out), 1);
    assert_non_null(strstr(out, "--insecure"));
}

static void test_master_binary_runs_insecure_with_a_warning_and_stops_on_sigterm(void **state)
{
    fixture_t *f = *state;
    char out[4096];
    assert_int_equal(run_master_binary(f, "--insecure", 1, out, sizeof out), 124);
    assert_non_null(strstr(out, "insecure mode"));
    assert_non_null(strstr(out, "stopping"));       /* SIGTERM ended the loop cleanly */
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    const struct CMUnitTest tests[] = {
        T(test_allowed_worker_is_welcomed_and_an_unknown_key_is_refused),
        T(test_a_worker_key_is_refused_on_the_client_endpoint),
        T(test_a_key_added_to_the_allow_list_is_accepted_without_restart),
        T(test_a_duplicate_cert_file_in_the_allow_list_is_harmless),
        T(test_master_refuses_a_secret_cert_readable_by_others),
        T(test_master_refuses_a_cert_without_secret_key),
        T(test_master_binary_refuses_to_start_without_keys),
        T(test_master_binary_runs_insecure_with_a_warning_and_stops_on_sigterm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
