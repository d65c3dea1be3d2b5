/* test_cli_args.c: rackrun's command line: options anywhere, environment
 * defaults, and usage errors (exit 2) caught before any connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

static int clean_env(void **state)
{
    (void)state;
    unsetenv("RACKRUN_MASTER");
    unsetenv("RACKRUN_KEY");
    unsetenv("RACKRUN_MASTER_KEY");
    return 0;
}

static void test_no_command_is_a_usage_error(void **state)
{
    (void)state;
    char *argv[] = { "rackrun", "--json", NULL };
    rr_cli_opts_t opts;
    int first;
    assert_int_equal(rr_cli_parse(ARGC(argv), argv, &opts, &first), RR_EXIT_USAGE);
}

static void test_unknown_command_is_a_usage_error(void **state)
{
    (void)state;
    char *argv[] = { "rackrun", "frobnicate", NULL };
    assert_int_equal(rr_cli_main(ARGC(argv), argv), RR_EXIT_USAGE);
}

static void test_unknown_option_is_a_usage_error(void **state)
{
    (void)state;
    char *argv[] = { "rackrun", "jobs", "--colour", NULL };
    assert_int_equal(rr_cli_main(ARGC(argv), argv), RR_EXIT_USAGE);
}

static void test_option_of_another_command_is_a_usage_error(void **state)
{
    (void)state;
    char *argv[] = { "rackrun", "jobs", "--wait", NULL };
    assert_int_equal(rr_cli_main(ARGC(argv), argv), RR_EXIT_USAGE);
}

static void test_missing_and_extra_arguments_are_usage_errors(void **state)
{
    (void)state;
    char *missing[] = { "rackrun", "submit", NULL };
    char *extra[] = { "rackrun", "show", "1", "2", NULL };
    char *device[] = { "rackrun", "device", "maintenance", "n01", NULL };
    assert_int_equal(rr_cli_main(ARGC(missing), missing), RR_EXIT_USAGE);
    assert_int_equal(rr_cli_main(ARGC(extra), extra), RR_EXIT_USAGE);
    assert_int_equal(rr_cli_main(ARGC(device), device), RR_EXIT_USAGE);
}

static void test_options_before_and_after_the_command_mean_the_same(void **state)
{
    (void)state;
    char *after[] = { "rackrun", "jobs", "--json", "--state", "running", "--limit", "5",
                      "--master", "tcp://127.0.0.1:7000", "--insecure", NULL };
    char *before[] = { "rackrun", "--json", "--state", "running", "--limit", "5",
                       "--master", "tcp://127.0.0.1:7000", "--insecure", "jobs", NULL };
    char **lines[] = { after, before };
    int argcs[] = { ARGC(after), ARGC(before) };
    for (size_t i = 0; i < 2; i++) {
        rr_cli_opts_t opts;
        int first = -1;
        assert_int_equal(rr_cli_parse(argcs[i], lines[i], &opts, &first), 0);
        assert_string_equal(lines[i][first], "jobs");
        assert_true(opts.json);
        assert_true(opts.insecure);
        assert_string_equal(opts.state, "running");
        assert_int_equal(opts.limit, 5);
        assert_string_equal(opts.master, "tcp://127.0.0.1:7000");
        assert_int_equal(opts.timeout_ms, RR_CLI_DEFAULT_TIMEOUT_MS);
    }
}

static void test_master_comes_from_flag_then_env_then_default(void **state)
{
    (void)state;
    char *plain[] = { "rackrun", "workers", NULL };
    char *flag[] = { "rackrun", "--master", "tcp://127.0.0.1:7001", "workers", NULL };
    rr_cli_opts_t opts;
    int first;
    assert_int_equal(rr_cli_parse(ARGC(plain), plain, &opts, &first), 0);
    assert_string_equal(opts.master, RR_CLI_DEFAULT_MASTER);
    assert_null(opts.key);
    setenv("RACKRUN_MASTER", "tcp://127.0.0.1:7002", 1);
    setenv("RACKRUN_KEY", "/k/client_secret", 1);
    setenv("RACKRUN_MASTER_KEY", "/k/master", 1);
    assert_int_equal(rr_cli_parse(ARGC(plain), plain, &opts, &first), 0);
    assert_string_equal(opts.master, "tcp://127.0.0.1:7002");
    assert_string_equal(opts.key, "/k/client_secret");
    assert_string_equal(opts.master_key, "/k/master");
    assert_int_equal(rr_cli_parse(ARGC(flag), flag, &opts, &first), 0);
    assert_string_equal(opts.master, "tcp://127.0.0.1:7001");
    clean_env(NULL);
}

static void test_timeout_takes_units_and_rejects_nonsense(void **state)
{
    (void)state;
    char *ok[] = { "rackrun", "--timeout", "250ms", "jobs", NULL };
    char *zero[] = { "rackrun", "--timeout", "0", "jobs", NULL };
    char *junk[] = { "rackrun", "--timeout", "soon", "jobs", NULL };
    char *limit[] = { "rackrun", "jobs", "--limit", "-3", NULL };
    rr_cli_opts_t opts;
    int first;
    assert_int_equal(rr_cli_parse(ARGC(ok), ok, &opts, &first), 0);
    assert_int_equal(opts.timeout_ms, 250);
    assert_int_equal(rr_cli_parse(ARGC(zero), zero, &opts, &first), RR_EXIT_USAGE);
    assert_int_equal(rr_cli_parse(ARGC(junk), junk, &opts, &first), RR_EXIT_USAGE);
    assert_int_equal(rr_cli_parse(ARGC(limit), limit, &opts, &first), RR_EXIT_USAGE);
}

/* An unreachable master would give 3 after the timeout: 2 proves the CLI
 * refused before connecting. */
#define NOWHERE "--master", "tcp://127.0.0.1:1", "--timeout", "100ms"

static void test_bad_job_id_is_a_usage_error(void **state)
{
    (void)state;
    char *argv[] = { "rackrun", NOWHERE, "--insecure", "show", "abc", NULL };
    char *zero[] = { "rackrun", NOWHERE, "--insecure", "cancel", "0", NULL };
    assert_int_equal(rr_cli_main(ARGC(argv), argv), RR_EXIT_USAGE);
    assert_int_equal(rr_cli_main(ARGC(zero), zero), RR_EXIT_USAGE);
}

static void test_device_maintenance_needs_on_or_off(void **state)
{
    (void)state;
    char *argv[] = { "rackrun", NOWHERE, "--insecure", "device", "maintenance", "n01", "maybe", NULL };
    char *sub[] = { "rackrun", NOWHERE, "--insecure", "device", "reboot", "n01", "on", NULL };
    assert_int_equal(rr_cli_main(ARGC(argv), argv), RR_EXIT_USAGE);
    assert_int_equal(rr_cli_main(ARGC(sub), sub), RR_EXIT_USAGE);
}

static void test_no_keys_without_insecure_is_a_usage_error(void **state)
{
    (void)state;
    char *argv[] = { "rackrun", NOWHERE, "workers", NULL };
    char *half[] = { "rackrun", NOWHERE, "--key", "/nonexistent/client_secret", "workers", NULL };
    assert_int_equal(rr_cli_main(ARGC(argv), argv), RR_EXIT_USAGE);
    assert_int_equal(rr_cli_main(ARGC(half), half), RR_EXIT_USAGE);
}

static void test_unloadable_key_is_a_usage_error(void **state)
{
    (void)state;
    char *argv[] = { "rackrun", NOWHERE, "--key", "/nonexistent/client", "--master-key",
                     "/nonexistent/master", "workers", NULL };
    assert_int_equal(rr_cli_main(ARGC(argv), argv), RR_EXIT_USAGE);
}

static void test_submit_missing_file_is_a_usage_error(void **state)
{
    (void)state;
    char *argv[] = { "rackrun", NOWHERE, "--insecure", "submit", "/nonexistent/job.yaml", NULL };
    assert_int_equal(rr_cli_main(ARGC(argv), argv), RR_EXIT_USAGE);
}

static void test_submit_refuses_a_file_over_1_mib_before_sending(void **state)
{
    (void)state;
    char path[] = "/tmp/rr-cli-big-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1024 * 1024 + 1), 0);
    close(fd);
    char *argv[] = { "rackrun", NOWHERE, "--insecure", "submit", path, NULL };
    int rc = rr_cli_main(ARGC(argv), argv);
    unlink(path);
    assert_int_equal(rc, RR_EXIT_USAGE);
}

static void test_help_exits_0(void **state)
{
    (void)state;
    char *argv[] = { "rackrun", "--help", NULL };
    assert_int_equal(rr_cli_main(ARGC(argv), argv), RR_EXIT_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_no_command_is_a_usage_error, clean_env),
        cmocka_unit_test_setup(test_unknown_command_is_a_usage_error, clean_env),
        cmocka_unit_test_setup(test_unknown_option_is_a_usage_error, clean_env),
        cmocka_unit_test_setup(test_option_of_another_command_is_a_usage_error, clean_env),
        cmocka_unit_test_setup(test_missing_and_extra_arguments_are_usage_errors, clean_env),
        cmocka_unit_test_setup(test_options_before_and_after_the_command_mean_the_same, clean_env),
        cmocka_unit_test_setup(test_master_comes_from_flag_then_env_then_default, clean_env),
        cmocka_unit_test_setup(test_timeout_takes_units_and_rejects_nonsense, clean_env),
        cmocka_unit_test_setup(test_bad_job_id_is_a_usage_error, clean_env),
        cmocka_unit_test_setup(test_device_maintenance_needs_on_or_off, clean_env),
        cmocka_unit_test_setup(test_no_keys_without_insecure_is_a_usage_error, clean_env),
        cmocka_unit_test_setup(test_unloadable_key_is_a_usage_error, clean_env),
        cmocka_unit_test_setup(test_submit_missing_file_is_a_usage_error, clean_env),
        cmocka_unit_test_setup(test_submit_refuses_a_file_over_1_mib_before_sending, clean_env),
        cmocka_unit_test_setup(test_help_exits_0, clean_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
