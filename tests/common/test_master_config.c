/* test_master_config.c: the master's settings: defaults (no file, empty file),
 * every key, durations, "off", and located errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "tmpdir.h"

static rr_master_config_t *load_ok(const char *text)
{
    rr_master_config_t *config = NULL;
    char err[512] = "";
    const char *path = text ? tmpdir_put(0, "master.yaml", text, 0644) : NULL;
    if (rr_master_config_load(path, &config, err, sizeof err) != 0)
        fail_msg("refused: %s", err);
    assert_non_null(config);
    return config;
}

static const char *load_error(const char *text)
{
    static char err[512];
    rr_master_config_t *config = NULL;
    const char *path = tmpdir_put(0, "master.yaml", text, 0644);
    assert_int_equal(rr_master_config_load(path, &config, err, sizeof err), -1);
    assert_null(config);
    const char *name = strstr(err, "master.yaml");
    assert_non_null(name);
    return name;
}

static void assert_defaults(const rr_master_config_t *c)
{
    assert_string_equal(c->db_path, "/var/lib/rackrun/master.db");
    assert_string_equal(c->worker_endpoint, "tcp://127.0.0.1:5555");
    assert_string_equal(c->client_endpoint, "tcp://127.0.0.1:5556");
    assert_string_equal(c->http_listen, "127.0.0.1:8080");
    assert_null(c->secret_key);
    assert_null(c->worker_keys_dir);
    assert_null(c->client_keys_dir);
    assert_int_equal(c->heartbeat_interval_ms, 1000);
    assert_int_equal(c->heartbeat_timeout_ms, 5000);
    assert_int_equal(c->worker_grace_ms, 60000);
}

static void test_no_file_means_all_defaults(void **state)
{
    rr_master_config_t *c = load_ok(NULL);
    assert_defaults(c);
    rr_master_config_destroy(&c);
    assert_null(c);
}

static void test_empty_file_means_all_defaults(void **state)
{
    rr_master_config_t *c = load_ok("# nothing set\n");
    assert_defaults(c);
    rr_master_config_destroy(&c);
}

static void test_every_key_is_read(void **state)
{
    rr_master_config_t *c = load_ok("db: /srv/rr/master.db\n"
                                    "worker_endpoint: tcp://0.0.0.0:6555\n"
                                    "client_endpoint: ipc:///run/rackrun/client\n"
                                    "http_listen: \"[::1]:9090\"\n"
                                    "secret_key: /etc/rackrun/keys/master_secret\n"
                                    "worker_keys_dir: /etc/rackrun/workers.d\n"
                                    "client_keys_dir: /etc/rackrun/clients.d\n"
                                    "heartbeat_interval: 500ms\n"
                                    "heartbeat_timeout: 3s\n"
                                    "worker_grace: 2m\n");
    assert_string_equal(c->db_path, "/srv/rr/master.db");
    assert_string_equal(c->worker_endpoint, "tcp://0.0.0.0:6555");
    assert_string_equal(c->client_endpoint, "ipc:///run/rackrun/client");
    assert_string_equal(c->http_listen, "[::1]:9090");
    assert_string_equal(c->secret_key, "/etc/rackrun/keys/master_secret");
    assert_string_equal(c->worker_keys_dir, "/etc/rackrun/workers.d");
    assert_string_equal(c->client_keys_dir, "/etc/rackrun/clients.d");
    assert_int_equal(c->heartbeat_interval_ms, 500);
    assert_int_equal(c->heartbeat_timeout_ms, 3000);
    assert_int_equal(c->worker_grace_ms, 120000);
    rr_master_config_destroy(&c);
}

static void test_http_off_means_no_listener(void **state)
{
    rr_master_config_t *c = load_ok("http_listen: off\n");
    assert_null(c->http_listen);
    assert_string_equal(c->db_path, "/var/lib/rackrun/master.db");
    rr_master_config_destroy(&c);
}

static void test_bare_durations_are_seconds(void **state)
{
    rr_master_config_t *c = load_ok("heartbeat_interval: 2\nheartbeat_timeout: 10\nworker_grace: 300\n");
    assert_int_equal(c->heartbeat_interval_ms, 2000);
    assert_int_equal(c->heartbeat_timeout_ms, 10000);
    assert_int_equal(c->worker_grace_ms, 300000);
    rr_master_config_destroy(&c);
}

static void test_errors_are_located_and_named(void **state)
{
    assert_string_equal(load_error("db: /x\nheartbeat_intervall: 1s\n"),
                        "master.yaml:2:1: unknown key 'heartbeat_intervall' (expected db, "
                        "worker_endpoint, client_endpoint, http_listen, http_www, http_tokens, "
                        "secret_key, "
                        "worker_keys_dir, client_keys_dir, heartbeat_interval, heartbeat_timeout, "
                        "worker_grace, max_job_yaml, log_retention_age, log_retention_size, "
                        "artifact_quota, health_checks)");
    assert_string_equal(load_error("worker_grace: 10x\n"),
                        "master.yaml:1:15: worker_grace: '10x': unknown unit 'x' (use ms, s, m, h, d)");
    assert_string_equal(load_error("http_listen: 8080\n"),
                        "master.yaml:1:14: http_listen: '8080' is not host:port (e.g. "
                        "127.0.0.1:8080) or off");
    assert_string_equal(load_error("http_listen: \"h:99999\"\n"),
                        "master.yaml:1:14: http_listen: 'h:99999' is not host:port (e.g. "
                        "127.0.0.1:8080) or off");
    assert_string_equal(load_error("client_endpoint: 127.0.0.1:5556\n"),
                        "master.yaml:1:18: client_endpoint: '127.0.0.1:5556' is not a ZMQ "
                        "endpoint (e.g. tcp://127.0.0.1:5555)");
    assert_string_equal(load_error("db: [a, b]\n"), "master.yaml:1:5: db: must be a scalar, not a list");
    assert_string_equal(load_error("- db\n"), "master.yaml:1:1: must be a map, not a list");
}

static void test_heartbeat_timeout_must_exceed_interval(void **state)
{
    assert_string_equal(load_error("heartbeat_interval: 5s\nheartbeat_timeout: 5s\n"),
                        "master.yaml:2:20: heartbeat_timeout: 5s must be longer than "
                        "heartbeat_interval (5s)");
    assert_string_equal(load_error("heartbeat_interval: 10s\n"),
                        "master.yaml:1:1: heartbeat_timeout: 5s must be longer than "
                        "heartbeat_interval (10s)");
}

static void test_curve_needs_both_key_dirs(void **state)
{
    assert_string_equal(load_error("secret_key: /k/master_secret\nworker_keys_dir: /k/w\n"),
                        "master.yaml:1:1: secret_key is set (CURVE) but client_keys_dir is not: "
                        "without it no peer could be authorised");
    assert_non_null(strstr(load_error("secret_key: /k/master_secret\n"),
                           "worker_keys_dir is not"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_file_means_all_defaults),
        cmocka_unit_test(test_empty_file_means_all_defaults),
        cmocka_unit_test(test_every_key_is_read),
        cmocka_unit_test(test_http_off_means_no_listener),
        cmocka_unit_test(test_bare_durations_are_seconds),
        cmocka_unit_test(test_errors_are_located_and_named),
        cmocka_unit_test(test_heartbeat_timeout_must_exceed_interval),
        cmocka_unit_test(test_curve_needs_both_key_dirs),
    };
    return cmocka_run_group_tests(tests, tmpdir_group_setup, tmpdir_group_teardown);
}
