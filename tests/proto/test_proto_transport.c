/* test_proto_transport.c: proto_send/proto_recv over a real inproc ROUTER/DEALER pair. */
#include <czmq.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "equal.h"
#include "fixtures.h"
#include "proto.h"

typedef struct {
    zsock_t *router;
    zsock_t *dealer;
} pair_t;

static int pair_setup(void **state)
{
    static int serial;
    char endpoint[64];
    pair_t *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    snprintf(endpoint, sizeof endpoint, "inproc://proto-transport-%d", ++serial);
    p->router = zsock_new(ZMQ_ROUTER);
    p->dealer = zsock_new(ZMQ_DEALER);
    if (!p->router || !p->dealer)
        return -1;
    proto_socket_setup(p->router);
    proto_socket_setup(p->dealer);
    zsock_set_rcvtimeo(p->router, 2000);   /* a lost message fails the test, not hangs it */
    zsock_set_rcvtimeo(p->dealer, 2000);
    if (zsock_bind(p->router, "%s", endpoint) != 0 || zsock_connect(p->dealer, "%s", endpoint) != 0)
        return -1;
    *state = p;
    return 0;
}

static int pair_teardown(void **state)
{
    pair_t *p = *state;
    zsock_destroy(&p->dealer);
    zsock_destroy(&p->router);
    free(p);
    return 0;
}

static void test_messages_cross_a_router_dealer_pair_both_ways(void **state)
{
    pair_t *p = *state;
    proto_msg_t hello, welcome, got;
    proto_error_t err;
    zframe_t *peer = NULL;
    fixture_message(&hello, PROTO_MSG_HELLO, true);
    fixture_message(&welcome, PROTO_MSG_WELCOME, true);

    assert_int_equal(proto_send(p->dealer, NULL, &hello, &err), 0);
    if (proto_recv(p->router, &peer, &got, &err) != 0)
        fail_msg("router recv: %s", err.text);
    assert_non_null(peer);
    assert_msg_equal(&hello, &got);
    proto_msg_free(&got);

    assert_int_equal(proto_send(p->router, peer, &welcome, &err), 0);
    assert_non_null(peer);                  /* not consumed */
    if (proto_recv(p->dealer, NULL, &got, &err) != 0)
        fail_msg("dealer recv: %s", err.text);
    assert_msg_equal(&welcome, &got);
    proto_msg_free(&got);

    zframe_destroy(&peer);
    proto_msg_free(&hello);
    proto_msg_free(&welcome);
}

/* A bad message still yields the sender's identity, so the master can answer ERROR. */
static void test_recv_returns_routing_id_when_decode_fails(void **state)
{
    pair_t *p = *state;
    proto_msg_t ok, got;
    proto_error_t err;
    zframe_t *peer = NULL, *peer2 = NULL;
    zstr_send(p->dealer, "not msgpack at all");
    assert_int_equal(proto_recv(p->router, &peer, &got, &err), -1);
    assert_non_null(peer);
    assert_int_not_equal(err.status, PROTO_OK);
    assert_int_equal(got.type, PROTO_MSG_NONE);

    fixture_message(&ok, PROTO_MSG_JOB_CANCEL, true);  /* same peer, same identity */
    assert_int_equal(proto_send(p->dealer, NULL, &ok, &err), 0);
    assert_int_equal(proto_recv(p->router, &peer2, &got, &err), 0);
    assert_true(zframe_eq(peer, peer2));
    proto_msg_free(&got);
    proto_msg_free(&ok);
    zframe_destroy(&peer);
    zframe_destroy(&peer2);
}

static void test_recv_rejects_oversized_frame_without_decoding(void **state)
{
    pair_t *p = *state;
    proto_msg_t got;
    proto_error_t err;
    zframe_t *peer = NULL;
    zframe_t *big = zframe_new(NULL, PROTO_MAX_MSG + 1);
    assert_non_null(big);
    memset(zframe_data(big), 0x80, zframe_size(big));  /* would decode as a map first */
    assert_int_equal(zframe_send(&big, p->dealer, 0), 0);
    assert_int_equal(proto_recv(p->router, &peer, &got, &err), -1);
    assert_int_equal(err.status, PROTO_E_TOO_BIG);
    assert_non_null(strstr(err.text, "> limit 1048576"));
    assert_non_null(peer);
    zframe_destroy(&peer);
}

static void test_recv_rejects_extra_frames(void **state)
{
    pair_t *p = *state;
    proto_msg_t got;
    proto_error_t err;
    zframe_t *peer = NULL;
    zstr_sendm(p->dealer, "a");
    zstr_send(p->dealer, "b");
    assert_int_equal(proto_recv(p->router, &peer, &got, &err), -1);
    assert_int_equal(err.status, PROTO_E_MALFORMED);
    assert_non_null(peer);
    zframe_destroy(&peer);
}

static void test_recv_times_out_with_minus_two(void **state)
{
    pair_t *p = *state;
    proto_msg_t got;
    zsock_set_rcvtimeo(p->dealer, 50);
    assert_int_equal(proto_recv(p->dealer, NULL, &got, NULL), -2);
}

static void test_send_without_peer_fails_with_eagain_at_once(void **state)
{
    zsock_t *lonely = zsock_new(ZMQ_DEALER);
    proto_msg_t msg;
    proto_error_t err;
    assert_non_null(lonely);
    proto_socket_setup(lonely);
    zsock_set_sndtimeo(lonely, -1);         /* ZMQ_DONTWAIT alone must prevent blocking */
    fixture_message(&msg, PROTO_MSG_HEARTBEAT, true);
    int64_t start = zclock_mono();
    errno = 0;
    assert_int_equal(proto_send(lonely, NULL, &msg, &err), -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(zclock_mono() - start < 1000);
    proto_msg_free(&msg);
    zsock_destroy(&lonely);
}

static void test_send_refuses_a_message_over_the_limit(void **state)
{
    pair_t *p = *state;
    proto_msg_t msg = { .type = PROTO_MSG_JOB_EVENT }, got;
    proto_error_t err;
    msg.u.job_event.kind = "log";
    msg.u.job_event.data_len = PROTO_MAX_MSG;
    msg.u.job_event.data = calloc(1, PROTO_MAX_MSG);
    assert_non_null(msg.u.job_event.data);
    assert_int_equal(proto_send(p->dealer, NULL, &msg, &err), -1);
    assert_int_equal(err.status, PROTO_E_TOO_BIG);
    assert_int_not_equal(errno, EAGAIN);
    free(msg.u.job_event.data);
    zsock_set_rcvtimeo(p->router, 50);      /* nothing was sent */
    assert_int_equal(proto_recv(p->router, NULL, &got, NULL), -2);
}

static void test_router_send_to_unknown_peer_fails(void **state)
{
    pair_t *p = *state;
    proto_msg_t msg;
    zframe_t *nobody = zframe_new("nobody", 6);
    fixture_message(&msg, PROTO_MSG_EVENT_ACK, true);
    assert_int_equal(proto_send(p->router, nobody, &msg, NULL), -1);
    assert_int_equal(errno, EHOSTUNREACH);
    proto_msg_free(&msg);
    zframe_destroy(&nobody);
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_messages_cross_a_router_dealer_pair_both_ways,
                                        pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_recv_returns_routing_id_when_decode_fails,
                                        pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_recv_rejects_oversized_frame_without_decoding,
                                        pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_recv_rejects_extra_frames, pair_setup,
                                        pair_teardown),
        cmocka_unit_test_setup_teardown(test_recv_times_out_with_minus_two, pair_setup,
                                        pair_teardown),
        cmocka_unit_test(test_send_without_peer_fails_with_eagain_at_once),
        cmocka_unit_test_setup_teardown(test_send_refuses_a_message_over_the_limit, pair_setup,
                                        pair_teardown),
        cmocka_unit_test_setup_teardown(test_router_send_to_unknown_peer_fails, pair_setup,
                                        pair_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    return rc;
}
