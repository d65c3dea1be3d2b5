/* test_deploy_units_verify.c: systemd's own checks of the units in deploy/systemd/.
 * `systemd-analyze verify` must accept each unit without a single warning (it
 * only warns, exit 0, on an unknown or misspelt directive, so any output
 * fails the test), and `systemd-analyze security --offline=true` must rate
 * each unit's exposure at most 2.5 (of 10). The units are checked as
 * installed except for ExecStart's directory: verify insists that the binary
 * exists, so /usr/local/bin/ is replaced by a scratch directory of stubs.
 * Without systemd-analyze (or without --offline, systemd < 250) the program
 * exits 77 and ctest shows it as skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

#define EXPOSURE_MAX "25"       /* --threshold is in tenths: 2.5 */

static char analyze[4096];
static bool skipped;
static const char *const units[] = { "rackrun-master", "rackrun-worker" };

/* Copy deploy/systemd/NAME.service into the scratch directory as FILE, with
 * ExecStart pointing at a stub there and EXTRA appended to [Service]'s end
 * (the units end with [Install], so EXTRA goes just before it). */
static const char *stage_unit(const char *name, const char *file, const char *extra)
{
    char rel[128], stub[128], *text;
    snprintf(rel, sizeof rel, "deploy/systemd/%s.service", name);
    assert_non_null(text = tmpdir_slurp(deploy_source(0, rel), NULL));
    snprintf(stub, sizeof stub, "bin/%s", name);
    tmpdir_mkdir(1, "bin");
    tmpdir_put(1, stub, "#!/bin/sh\nexit 0\n", 0755);

    char *exec = strstr(text, "\nExecStart=/usr/local/bin/");
    char *install = strstr(text, "\n[Install]");
    assert_non_null(exec);
    assert_non_null(install);
    size_t len = strlen(text) + strlen(extra) + 4096;
    char *staged = malloc(len);
    assert_non_null(staged);
    const char *after_bin = exec + strlen("\nExecStart=/usr/local/bin/");
    snprintf(staged, len, "%.*s\nExecStart=%s/%.*s%s%s", (int)(exec - text), text,
             tmpdir_path(2, "bin"), (int)(install - after_bin), after_bin, extra, install);
    const char *path = tmpdir_put(3, file, staged, 0644);
    free(staged);
    free(text);
    return path;
}

static void run_analyze(char *const *args, deploy_run_t *run)
{
    char *argv[8] = { analyze };
    for (size_t i = 0; args[i] && i < 6; i++)
        argv[i + 1] = args[i];
    assert_int_equal(deploy_run(argv, 60000, run), 0);
}

static void test_units_pass_systemd_analyze_verify_without_a_warning(void **state)
{
    for (size_t i = 0; i < 2; i++) {
        char file[64];
        deploy_run_t run;
        snprintf(file, sizeof file, "%s.service", units[i]);
        char *args[] = { "verify", (char *)stage_unit(units[i], file, ""), NULL };
        run_analyze(args, &run);
        if (run.exit_code != 0 || run.out[0])
            fail_msg("systemd-analyze verify %s: exit %d: %s", file, run.exit_code, run.out);
        deploy_run_free(&run);
    }
}

/* The check above can fail: a misspelt directive is reported. */
static void test_verify_reports_a_misspelt_directive(void **state)
{
    deploy_run_t run;
    tmpdir_mkdir(1, "typo");
    char *args[] = { "verify",
                     (char *)stage_unit("rackrun-worker", "typo/rackrun-worker.service",
                                        "\nProtectSytem=strict"),
                     NULL };
    run_analyze(args, &run);
    assert_non_null(strstr(run.out, "ProtectSytem"));
    deploy_run_free(&run);
}

static bool analyze_has_offline(void)
{
    deploy_run_t run;
    char *args[] = { "--help", NULL };
    run_analyze(args, &run);
    bool has = strstr(run.out, "--offline") && strstr(run.out, "--threshold");
    deploy_run_free(&run);
    return has;
}

static void test_units_exposure_is_at_most_2_5(void **state)
{
    if (!analyze_has_offline()) {
        skipped = true;
        skip();
    }
    for (size_t i = 0; i < 2; i++) {
        char file[64];
        deploy_run_t run;
        snprintf(file, sizeof file, "%s.service", units[i]);
        char *args[] = { "security", "--offline=true", "--threshold=" EXPOSURE_MAX,
                         (char *)stage_unit(units[i], file, ""), NULL };
        run_analyze(args, &run);
        if (run.exit_code != 0)
            fail_msg("systemd-analyze security %s: exit %d:\n%s", file, run.exit_code, run.out);
        assert_non_null(strstr(run.out, "Overall exposure level"));
        deploy_run_free(&run);
    }
}

/* The check above can fail: the same unit with its sandbox switched off is rated exposed. */
static void test_exposure_check_fails_an_unhardened_unit(void **state)
{
    if (!analyze_has_offline()) {
        skipped = true;
        skip();
    }
    tmpdir_mkdir(1, "open");
    const char *open = stage_unit("rackrun-master", "open/rackrun-master.service",
                                  "\nProtectSystem=no\nProtectHome=no\nPrivateTmp=no\n"
                                  "PrivateDevices=no\nPrivateUsers=no\nNoNewPrivileges=no\n"
                                  "CapabilityBoundingSet=~\nRestrictAddressFamilies=\n"
                                  "SystemCallFilter=\nUser=root");
    deploy_run_t run;
    char *args[] = { "security", "--offline=true", "--threshold=" EXPOSURE_MAX, (char *)open,
                     NULL };
    run_analyze(args, &run);
    assert_int_not_equal(run.exit_code, 0);
    deploy_run_free(&run);
}

int main(void)
{
    const char *found = deploy_find_tool("systemd-analyze");
    if (!found) {
        printf("SKIP: systemd-analyze not installed\n");
        return DEPLOY_SKIP;
    }
    snprintf(analyze, sizeof analyze, "%s", found);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units_pass_systemd_analyze_verify_without_a_warning),
        cmocka_unit_test(test_verify_reports_a_misspelt_directive),
        cmocka_unit_test(test_units_exposure_is_at_most_2_5),
        cmocka_unit_test(test_exposure_check_fails_an_unhardened_unit),
    };
    int failed = cmocka_run_group_tests(tests, tmpdir_group_setup, tmpdir_group_teardown);
    if (!failed && skipped) {
        printf("SKIP: systemd-analyze has no --offline/--threshold (systemd < 250)\n");
        return DEPLOY_SKIP;
    }
    return failed;
}
