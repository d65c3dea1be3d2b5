/* test_deploy_units.c: the systemd units of deploy/systemd/ say what the
 * deployment needs: the dedicated user, the sandbox (read-only system, no home,
 * private /tmp, no privileges, no capabilities, TCP/IP and Unix sockets only,
 * @system-service system calls), the state directory, restart on failure, the
 * installed binaries with /etc/rackrun's configs, and, for the worker, write
 * access to the same TFTP root as the example worker.yaml. No external tool:
 * test_deploy_units_verify runs systemd-analyze on the same files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fixture.h"
#include "units.h"

#define MAX_SETTINGS 128

typedef struct {
    unit_setting_t items[MAX_SETTINGS];
    size_t count;
} unit_t;

static void load_unit(const char *name, unit_t *unit)
{
    char rel[128];
    snprintf(rel, sizeof rel, "deploy/systemd/%s", name);
    char *text = tmpdir_slurp(deploy_source(0, rel), NULL);
    if (!text)
        fail_msg("%s: cannot read", deploy_source(0, rel));
    unit->count = unit_parse(text, unit->items, MAX_SETTINGS);
    free(text);
    if (unit->count == (size_t)-1)
        fail_msg("%s: not a unit file this test can read", name);
}

/* KEY=VALUE exactly once in [Service]. */
static void assert_service(const unit_t *unit, const char *key, const char *value)
{
    size_t with = unit_count(unit->items, unit->count, "Service", key, value);
    size_t any = unit_count(unit->items, unit->count, "Service", key, NULL);
    if (with != 1)
        fail_msg("[Service] %s=%s: found %zu times (%zu with any value)", key, value, with, any);
}

static void assert_hardened(const unit_t *unit)
{
    static const char *const required[][2] = {
        { "User", "rackrun" }, { "Group", "rackrun" },
        { "StateDirectory", "rackrun" }, { "Restart", "on-failure" },
        { "ProtectSystem", "strict" }, { "ProtectHome", "yes" }, { "PrivateTmp", "yes" },
        { "NoNewPrivileges", "yes" }, { "CapabilityBoundingSet", "" },
        { "RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX" },
        { "SystemCallFilter", "@system-service" },
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        assert_service(unit, required[i][0], required[i][1]);
    /* nothing hands a capability back */
    assert_int_equal(unit_count(unit->items, unit->count, "Service", "AmbientCapabilities", ""),
                     unit_count(unit->items, unit->count, "Service", "AmbientCapabilities", NULL));
    assert_int_equal(unit_count(unit->items, unit->count, "Service", "ExecStart", NULL), 1);
    assert_int_equal(unit_count(unit->items, unit->count, "Install", "WantedBy",
                                "multi-user.target"), 1);
}

static void test_master_unit_runs_the_installed_master_hardened(void **state)
{
    unit_t unit;
    load_unit("rackrun-master.service", &unit);
    assert_hardened(&unit);
    assert_service(&unit, "ExecStart",
                   "/usr/local/bin/rackrun-master --config /etc/rackrun/master.yaml");
    /* the master writes only its state directory */
    assert_int_equal(unit_count(unit.items, unit.count, "Service", "ReadWritePaths", NULL), 0);
}

static void test_worker_unit_runs_the_installed_worker_hardened(void **state)
{
    unit_t unit;
    load_unit("rackrun-worker.service", &unit);
    assert_hardened(&unit);
    assert_service(&unit, "ExecStart",
                   "/usr/local/bin/rackrun-worker --config /etc/rackrun/worker.yaml");
    /* files for dnsmasq (another user) must come out world-readable */
    assert_service(&unit, "UMask", "0022");
}

/* The worker may write the TFTP root the example configuration (and rack-gen) uses. */
static void test_worker_unit_may_write_the_example_tftp_root(void **state)
{
    unit_t unit;
    rr_worker_config_t *config = NULL;
    char err[512];
    load_unit("rackrun-worker.service", &unit);
    setenv("RACK02_BMC_PASSWORD", "example", 1);
    if (rr_worker_config_load(deploy_source(1, "deploy/examples/worker.yaml"), &config, err,
                              sizeof err) < 0)
        fail_msg("deploy/examples/worker.yaml: %s", err);
    assert_service(&unit, "ReadWritePaths", config->tftp_root);
    rr_worker_config_destroy(&config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_master_unit_runs_the_installed_master_hardened),
        cmocka_unit_test(test_worker_unit_runs_the_installed_worker_hardened),
        cmocka_unit_test(test_worker_unit_may_write_the_example_tftp_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
