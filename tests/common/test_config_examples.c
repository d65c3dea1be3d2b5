/* test_config_examples.c: the commented examples in deploy/examples are
 * documentation; they must stay loadable and say what they claim. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"

static const char *example(const char *name)
{
    static char path[4096];
    const char *src = getenv("RR_SOURCE_DIR");
    assert_non_null(src);
    snprintf(path, sizeof path, "%s/deploy/examples/%s", src, name);
    return path;
}

static void test_worker_example_loads(void **state)
{
    char err[512] = "";
    rr_worker_config_t *c = NULL;
    /* The example takes its BMC password from the environment (see its comments). */
    setenv("RACK02_BMC_PASSWORD", "example-only", 1);
    if (rr_worker_config_load(example("worker.yaml"), &c, err, sizeof err) != 0)
        fail_msg("deploy/examples/worker.yaml: %s", err);
    assert_string_equal(c->worker, "rack02");
    assert_true(c->device_count >= 2);
    assert_string_equal(c->devices[0].bmc_password, "example-only");
    /* calxeda02-01 overrides its type's test shell delay only. */
    assert_int_equal(c->devices[0].bootloader_delay_ms, 300);
    assert_int_equal(c->devices[0].test_shell_delay_ms, 50);
    assert_int_equal(c->devices[1].test_shell_delay_ms, 100);
    rr_worker_config_destroy(&c);
    unsetenv("RACK02_BMC_PASSWORD");
}

static void test_master_example_loads(void **state)
{
    char err[512] = "";
    rr_master_config_t *c = NULL;
    if (rr_master_config_load(example("master.yaml"), &c, err, sizeof err) != 0)
        fail_msg("deploy/examples/master.yaml: %s", err);
    assert_string_equal(c->worker_endpoint, "tcp://127.0.0.1:5555");
    assert_int_equal(c->heartbeat_timeout_ms, 5000);
    rr_master_config_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_example_loads),
        cmocka_unit_test(test_master_example_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
