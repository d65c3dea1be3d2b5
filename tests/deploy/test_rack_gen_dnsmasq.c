/* test_rack_gen_dnsmasq.c: dnsmasq itself accepts what deploy/rack-gen writes
 * and the commented sample deploy/dnsmasq/rackrun.conf.sample. dnsmasq runs
 * only as `dnsmasq --test -C FILE` (a syntax check: it serves nothing, binds
 * nothing). Without dnsmasq (Debian: dnsmasq-base) the program exits 77 and
 * ctest shows it as skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static char dnsmasq[4096];

/* `dnsmasq --test -C CONF`: its exit code (0 = syntax OK), output into RUN. */
static int dnsmasq_test(const char *conf, deploy_run_t *run)
{
    char *argv[] = { dnsmasq, "--test", "-C", (char *)conf, NULL };
    assert_int_equal(deploy_run(argv, 10000, run), 0);
    return run->exit_code;
}

static void generate(const char *out, const char *const *extra)
{
    const char *args[32] = { "--machine", "2", "--nodes", "48", "--mac-base", "00:50:43:02:ff:fe",
                             "--network", "10.2.0.0/16", "--master", "tcp://127.0.0.1:5555",
                             "--out", out };
    size_t n = 12;
    while (extra && *extra && n < 31)
        args[n++] = *extra++;
    args[n] = NULL;
    deploy_run_t run;
    assert_int_equal(deploy_rack_gen(args, &run), 0);
    if (run.exit_code != 0)
        fail_msg("rack-gen: %s", run.out);
    deploy_run_free(&run);
}

static void assert_dnsmasq_accepts(const char *conf)
{
    deploy_run_t run;
    if (dnsmasq_test(conf, &run) != 0)
        fail_msg("dnsmasq --test -C %s: %s", conf, run.out);
    assert_non_null(strstr(run.out, "syntax check OK"));
    deploy_run_free(&run);
}

static void test_dnsmasq_accepts_the_generated_48_node_fragment(void **state)
{
    generate(tmpdir_path(0, "plain"), NULL);
    assert_dnsmasq_accepts(tmpdir_path(0, "plain/dnsmasq.conf"));
}

static void test_dnsmasq_accepts_the_fragment_with_every_option(void **state)
{
    const char *extra[] = { "--interface", "eth1", "--router", "10.2.255.254", "--domain", "lab",
                            "--pxe-prefix", "/", "--lease-time", "infinite", "--tftp-root",
                            "/srv/tftp", NULL };
    generate(tmpdir_path(0, "full"), extra);
    assert_dnsmasq_accepts(tmpdir_path(0, "full/dnsmasq.conf"));
}

static void test_dnsmasq_accepts_the_commented_sample(void **state)
{
    assert_dnsmasq_accepts(deploy_source(1, "deploy/dnsmasq/rackrun.conf.sample"));
}

/* The check above can fail: dnsmasq rejects a broken copy of the generated file. */
static void test_dnsmasq_rejects_a_broken_fragment(void **state)
{
    generate(tmpdir_path(0, "broken"), NULL);
    assert_dnsmasq_accepts(tmpdir_path(0, "broken/dnsmasq.conf"));
    char *conf = tmpdir_slurp(tmpdir_path(0, "broken/dnsmasq.conf"), NULL);
    assert_non_null(conf);
    size_t len = strlen(conf) + 64;
    char *bad = malloc(len);
    assert_non_null(bad);
    snprintf(bad, len, "%sdhcp-host=00:50:zz:02:ff:fe,calxeda02-99-00,10.2.0.99\n", conf);
    tmpdir_put(0, "broken/bad.conf", bad, 0644);
    free(bad);
    free(conf);
    deploy_run_t run;
    assert_int_not_equal(dnsmasq_test(tmpdir_path(0, "broken/bad.conf"), &run), 0);
    if (!strstr(run.out, "bad.conf"))         /* dnsmasq names the file and line */
        fail_msg("unexpected: %s", run.out);
    deploy_run_free(&run);
}

int main(void)
{
    const char *found = deploy_find_tool("dnsmasq");   /* static: copy it at once */
    if (!found) {
        printf("SKIP: dnsmasq not installed (Debian: dnsmasq-base)\n");
        return DEPLOY_SKIP;
    }
    snprintf(dnsmasq, sizeof dnsmasq, "%s", found);
    if (!deploy_find_tool("python3")) {
        printf("SKIP: python3 not found: deploy/rack-gen cannot run\n");
        return DEPLOY_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dnsmasq_accepts_the_generated_48_node_fragment),
        cmocka_unit_test(test_dnsmasq_accepts_the_fragment_with_every_option),
        cmocka_unit_test(test_dnsmasq_accepts_the_commented_sample),
        cmocka_unit_test(test_dnsmasq_rejects_a_broken_fragment),
    };
    return cmocka_run_group_tests(tests, tmpdir_group_setup, tmpdir_group_teardown);
}
