/* test_outbox.c: answers held for a commit (master/outbox.h) leave only when
 * sent, in order, and never when dropped. A ROUTER and a DEALER over inproc. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>

#include "outbox.h"

typedef struct {
    zsock_t *router, *dealer;
    zframe_t *rid;          /* the dealer's routing id, as the router saw it */
    rr_outbox_t *outbox;
} env_t;

static int setup(void **state)
{
    static int n;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://test-outbox-%d", n++);
    env_t *env = calloc(1, sizeof *env);
    if (!env)
        return -1;
    env->router = zsock_new_router(endpoint);
    env->dealer = zsock_new_dealer(endpoint);
    env->outbox = rr_outbox_new();
    if (!env->router || !env->dealer || !env->outbox)
        return -1;
    zstr_send(env->dealer, "hello");
    env->rid = zframe_recv(env->router);
    char *body = zstr_recv(env->router);
    zstr_free(&body);
    *state = env;
    return env->rid ? 0 : -1;
}

static int teardown(void **state)
{
    env_t *env = *state;
    rr_outbox_destroy(&env->outbox);
    assert_null(env->outbox);
    zframe_destroy(&env->rid);
    zsock_destroy(&env->dealer);
    zsock_destroy(&env->router);
    free(env);
    return 0;
}

static void add_ack(env_t *env, uint64_t job)
{
    proto_msg_t msg = { .type = PROTO_MSG_EVENT_ACK, .version = PROTO_VERSION };
    msg.u.event_ack.job = job;
    msg.u.event_ack.seq = 1;
    proto_error_t err = { 0 };
    assert_int_equal(rr_outbox_add(env->outbox, env->router, env->rid, &msg, &err), 0);
}

/* The next EVENT_ACK's job at the dealer within MS, 0 when none came. */
static uint64_t next_ack(env_t *env, int ms)
{
    zpoller_t *poller = zpoller_new(env->dealer, NULL);
    void *ready = zpoller_wait(poller, ms);
    zpoller_destroy(&poller);
    if (!ready)
        return 0;
    proto_msg_t msg = { 0 };
    proto_error_t err = { 0 };
    assert_int_equal(proto_recv(env->dealer, NULL, &msg, &err), 0);
    assert_int_equal(msg.type, PROTO_MSG_EVENT_ACK);
    uint64_t job = msg.u.event_ack.job;
    proto_msg_free(&msg);
    return job;
}

static void test_held_messages_leave_only_when_sent_in_order(void **state)
{
    env_t *env = *state;
    assert_false(rr_outbox_is_open(env->outbox));
    rr_outbox_open(env->outbox);
    assert_true(rr_outbox_is_open(env->outbox));
    add_ack(env, 7);
    add_ack(env, 3);
    add_ack(env, 9);
    assert_int_equal(rr_outbox_size(env->outbox), 3);
    assert_int_equal(next_ack(env, 100), 0);        /* nothing before the commit */
    rr_outbox_send(env->outbox, NULL, NULL);
    assert_false(rr_outbox_is_open(env->outbox));
    assert_int_equal(rr_outbox_size(env->outbox), 0);
    assert_int_equal(next_ack(env, 1000), 7);
    assert_int_equal(next_ack(env, 1000), 3);
    assert_int_equal(next_ack(env, 1000), 9);
}

static void test_dropped_messages_never_leave(void **state)
{
    env_t *env = *state;
    rr_outbox_open(env->outbox);
    add_ack(env, 5);
    rr_outbox_drop(env->outbox);
    assert_false(rr_outbox_is_open(env->outbox));
    rr_outbox_send(env->outbox, NULL, NULL);        /* nothing left to send */
    assert_int_equal(next_ack(env, 100), 0);
}

static int s_failures;
static void s_count_failure(void *arg, zsock_t *sock, zframe_t *rid, proto_type_t type, int error)
{
    (void) arg, (void) sock, (void) rid, (void) error;
    assert_int_equal(type, PROTO_MSG_EVENT_ACK);
    s_failures++;
}

static void test_unroutable_message_is_reported(void **state)
{
    env_t *env = *state;
    zsock_set_router_mandatory(env->router, 1);
    zframe_t *gone = zframe_new("nobody", 6);
    proto_msg_t msg = { .type = PROTO_MSG_EVENT_ACK, .version = PROTO_VERSION };
    msg.u.event_ack.job = 1;
    proto_error_t err = { 0 };
    rr_outbox_open(env->outbox);
    assert_int_equal(rr_outbox_add(env->outbox, env->router, gone, &msg, &err), 0);
    zframe_destroy(&gone);                          /* the outbox holds its own copy */
    add_ack(env, 2);
    s_failures = 0;
    rr_outbox_send(env->outbox, s_count_failure, NULL);
    assert_int_equal(s_failures, 1);
    assert_int_equal(next_ack(env, 1000), 2);       /* the next one still went */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_held_messages_leave_only_when_sent_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dropped_messages_never_leave, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unroutable_message_is_reported, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
