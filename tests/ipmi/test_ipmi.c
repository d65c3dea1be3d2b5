/* test_ipmi.c: rr_ipmi against stock ipmi_sim BMCs of the emulated rack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "ipmi.h"
#include "rig.h"

#define TIMEOUT_MS 2000
#define RETRIES 2
#define HOOK_WAIT_MS 5000

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static int rig_setup(void **state, size_t nodes)
{
    rr_rig_t *rig = rr_rig_start(nodes, NULL);
    *state = rig;
    return rig ? 0 : -1;
}

static int rig_setup_4(void **state)
{
    return rig_setup(state, 4);
}

static int rig_setup_1(void **state)
{
    return rig_setup(state, 1);
}

static int rig_teardown(void **state)
{
    rr_rig_t *rig = *state;
    rr_rig_stop(&rig);
    return 0;
}

static rr_ipmi_t *bmc_of(const rr_rig_t *rig, size_t index)
{
    const rr_rig_node_t *node = rr_rig_node(rig, index);
    assert_non_null(node);
    rr_ipmi_t *bmc = rr_ipmi_new(node->host, node->port, node->user, node->password, TIMEOUT_MS,
                                 RETRIES);
    assert_non_null(bmc);
    return bmc;
}

/* A BMC may apply chassis control after it answers (real ones do): poll the
 * status until it says WANT, for a few seconds at most. */
static void assert_power_becomes(rr_ipmi_t *bmc, bool want)
{
    bool on = !want;
    uint64_t deadline = mono_ms() + HOOK_WAIT_MS;
    do {
        if (rr_ipmi_power_status(bmc, &on) < 0)
            fail_msg("%s", rr_ipmi_error(bmc));
        if (on != want)
            usleep(50 * 1000);
    } while (on != want && mono_ms() < deadline);
    assert_true(on == want);
}

static void test_power_on_off_four_nodes(void **state)
{
    rr_rig_t *rig = *state;
    rr_ipmi_t *bmc[4];
    for (size_t i = 0; i < 4; i++) {
        bmc[i] = bmc_of(rig, i);
        assert_power_becomes(bmc[i], false);
    }
    for (size_t i = 0; i < 4; i++) {
        if (rr_ipmi_power(bmc[i], RR_POWER_ON) < 0)
            fail_msg("%s", rr_ipmi_error(bmc[i]));
        assert_string_equal(rr_ipmi_error(bmc[i]), "");
    }
    for (size_t i = 0; i < 4; i++) {
        assert_power_becomes(bmc[i], true);
        assert_true(rr_rig_wait_hook(rig, i, "set power 1", HOOK_WAIT_MS));
        assert_int_equal(rr_rig_power(rig, i), 1);
    }
    for (size_t i = 0; i < 4; i++) {
        if (rr_ipmi_power(bmc[i], RR_POWER_OFF) < 0)
            fail_msg("%s", rr_ipmi_error(bmc[i]));
    }
    for (size_t i = 0; i < 4; i++) {
        assert_power_becomes(bmc[i], false);
        assert_true(rr_rig_wait_hook(rig, i, "set power 0", HOOK_WAIT_MS));
        assert_int_equal(rr_rig_power(rig, i), 0);
        rr_ipmi_destroy(&bmc[i]);
        assert_null(bmc[i]);
    }
}

static void test_bootdev_pxe_and_disk_reach_the_hook(void **state)
{
    rr_rig_t *rig = *state;
    rr_ipmi_t *bmc = bmc_of(rig, 0);
    rr_bootdev_t dev = RR_BOOTDEV_NONE;

    if (rr_ipmi_set_bootdev(bmc, RR_BOOTDEV_PXE, false) < 0)
        fail_msg("%s", rr_ipmi_error(bmc));
    assert_true(rr_rig_wait_hook(rig, 0, "set boot pxe", HOOK_WAIT_MS));
    if (rr_ipmi_get_bootdev(bmc, &dev) < 0)
        fail_msg("%s", rr_ipmi_error(bmc));
    assert_int_equal(dev, RR_BOOTDEV_PXE);

    if (rr_ipmi_set_bootdev(bmc, RR_BOOTDEV_DISK, true) < 0)
        fail_msg("%s", rr_ipmi_error(bmc));
    assert_true(rr_rig_wait_hook(rig, 0, "set boot default", HOOK_WAIT_MS));
    if (rr_ipmi_get_bootdev(bmc, &dev) < 0)
        fail_msg("%s", rr_ipmi_error(bmc));
    assert_int_equal(dev, RR_BOOTDEV_DISK);
    rr_ipmi_destroy(&bmc);
}

static void test_wrong_password_fails_at_once_without_showing_it(void **state)
{
    rr_rig_t *rig = *state;
    const rr_rig_node_t *node = rr_rig_node(rig, 0);
    const char *wrong = "not-the-Secret-4711";
    rr_ipmi_t *bmc = rr_ipmi_new(node->host, node->port, node->user, wrong, TIMEOUT_MS, RETRIES);
    assert_non_null(bmc);
    bool on;
    assert_int_equal(rr_ipmi_power_status(bmc, &on), -1);
    const char *err = rr_ipmi_error(bmc);
    char target[128];
    snprintf(target, sizeof target, "bmc 127.0.0.1:%u: power status: ", (unsigned) node->port);
    assert_non_null(strstr(err, target));
    /* Credentials do not improve with retries: one try only. */
    assert_non_null(strstr(err, "after 1 try"));
    assert_null(strstr(err, wrong));
    assert_null(strstr(err, node->password));
    rr_ipmi_destroy(&bmc);
}

/* A UDP port on 127.0.0.1 that nothing listens on (bound, then closed). */
static uint16_t closed_udp_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_unreachable_bmc_fails_within_timeout_naming_target(void **state)
{
    const uint32_t timeout_ms = 1000, retries = 1;
    uint16_t port = closed_udp_port();
    rr_ipmi_t *bmc = rr_ipmi_new("127.0.0.1", port, "admin", "secret-pw", timeout_ms, retries);
    assert_non_null(bmc);
    uint64_t start = mono_ms();
    assert_int_equal(rr_ipmi_power(bmc, RR_POWER_ON), -1);
    uint64_t elapsed = mono_ms() - start;
    /* Generous: each attempt is bounded by timeout_ms, plus backoff and slack. */
    assert_true(elapsed < 3 * timeout_ms * (retries + 1) + 2000);
    /* And it did wait for the BMC, rather than give up at once. */
    assert_true(elapsed >= timeout_ms);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%u", (unsigned) port);
    const char *err = rr_ipmi_error(bmc);
    assert_non_null(strstr(err, target));
    assert_non_null(strstr(err, "power on"));
    assert_non_null(strstr(err, "after 2 tries"));
    assert_null(strstr(err, "secret-pw"));
    assert_string_equal(rr_ipmi_target(bmc), target);
    rr_ipmi_destroy(&bmc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_power_on_off_four_nodes, rig_setup_4, rig_teardown),
        cmocka_unit_test_setup_teardown(test_bootdev_pxe_and_disk_reach_the_hook, rig_setup_1,
                                        rig_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_password_fails_at_once_without_showing_it,
                                        rig_setup_1, rig_teardown),
        cmocka_unit_test(test_unreachable_bmc_fails_within_timeout_naming_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
