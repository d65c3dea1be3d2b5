/* test_ipmi_target.c: how rr_ipmi names its BMC (no BMC needed: nothing is sent before a call). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ipmi.h"

static void assert_target(const char *host, uint16_t port, const char *want)
{
    rr_ipmi_t *bmc = rr_ipmi_new(host, port, "admin", "pw", 1000, 0);
    assert_non_null(bmc);
    assert_string_equal(rr_ipmi_target(bmc), want);
    assert_string_equal(rr_ipmi_error(bmc), "");
    rr_ipmi_destroy(&bmc);
    assert_null(bmc);
}

static void test_target_is_host_colon_port(void **state)
{
    assert_target("127.0.0.1", 9001, "127.0.0.1:9001");
    assert_target("bmc-02-01.rack", 623, "bmc-02-01.rack:623");
}

static void test_ipv6_host_is_bracketed_once(void **state)
{
    assert_target("::1", 9001, "[::1]:9001");
    assert_target("[::1]", 9002, "[::1]:9002");
}

static void test_new_refuses_missing_host_or_credentials(void **state)
{
    assert_null(rr_ipmi_new(NULL, 623, "admin", "pw", 1000, 0));
    assert_null(rr_ipmi_new("", 623, "admin", "pw", 1000, 0));
    assert_null(rr_ipmi_new("127.0.0.1", 623, NULL, "pw", 1000, 0));
    assert_null(rr_ipmi_new("127.0.0.1", 623, "admin", NULL, 1000, 0));
    rr_ipmi_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_is_host_colon_port),
        cmocka_unit_test(test_ipv6_host_is_bracketed_once),
        cmocka_unit_test(test_new_refuses_missing_host_or_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
