/* test_worker_config.c: the worker's device dictionary: every key, type
 * inheritance with key-by-key overrides, built-in defaults, located errors,
 * password sources and that no password ever appears in an error. */
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

#define PASSWORD "Hunter2Secret"
#define ENV_PASSWORD "EnvPassw0rd"

/* Every YAML text below may say PWFILE for the path of a good (0600) password file. */
static char *expand(const char *text)
{
    const char *pwfile = tmpdir_put(1, "bmc.pw", PASSWORD "\n", 0600);
    size_t len = strlen(text) + 1;
    for (const char *p = strstr(text, "PWFILE"); p; p = strstr(p + 1, "PWFILE"))
        len += strlen(pwfile);
    char *out = malloc(len);
    assert_non_null(out);
    char *o = out;
    for (const char *p = text; *p;) {
        if (strncmp(p, "PWFILE", 6) == 0) {
            o += sprintf(o, "%s", pwfile);
            p += 6;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

static rr_worker_config_t *load_ok(const char *text)
{
    char *yaml = expand(text);
    const char *path = tmpdir_put(0, "worker.yaml", yaml, 0644);
    free(yaml);
    rr_worker_config_t *config = NULL;
    char err[512] = "";
    if (rr_worker_config_load(path, &config, err, sizeof err) != 0)
        fail_msg("refused: %s", err);
    assert_non_null(config);
    return config;
}

/* Load TEXT expecting failure; returns the message from "worker.yaml" on. No
 * error may ever hold a password. */
static const char *load_error(const char *text)
{
    static char err[512];
    char *yaml = expand(text);
    const char *path = tmpdir_put(0, "worker.yaml", yaml, 0644);
    free(yaml);
    rr_worker_config_t *config = (rr_worker_config_t *)&err;   /* must stay untouched */
    err[0] = '\0';
    assert_int_equal(rr_worker_config_load(path, &config, err, sizeof err), -1);
    assert_ptr_equal(config, (rr_worker_config_t *)&err);
    assert_null(strstr(err, PASSWORD));
    assert_null(strstr(err, ENV_PASSWORD));
    const char *name = strstr(err, "worker.yaml");
    assert_non_null(name);
    return name;
}

#define HEAD "worker: rack02\nmaster: tcp://127.0.0.1:5555\ntftp_root: /srv/tftp\n"
#define DEV(n, mac) "  - {name: " n ", type: highbank, mac: \"" mac "\", " \
                    "bmc: {host: 127.0.0.1, user: admin, password_file: PWFILE}}\n"

static void test_full_config_loads_every_key(void **state)
{
    rr_worker_config_t *c = load_ok(
        "worker: rack02\n"
        "rack: rackB\n"
        "master: tcp://127.0.0.1:5555\n"
        "master_public_key: /etc/rackrun/keys/master\n"
        "secret_key: /etc/rackrun/keys/rack02_secret\n"
        "tftp_root: /var/lib/tftpboot\n"
        "spool_dir: /var/spool/rr\n"
        "heartbeat_interval: 2s\n"
        "device_types:\n"
        "  highbank:\n"
        "    prompts: [\"# \", \"$ \"]\n"
        "    serial: {bootloader_delay_ms: 300, test_shell_delay_ms: 100}\n"
        "    ipmi: {timeout: 4s, retries: 2}\n"
        "    sol: {timeout: 20s, probe_interval: 2m}\n"
        "devices:\n"
        "  - name: calxeda02-01\n"
        "    type: highbank\n"
        "    tags: [sata, big-ram]\n"
        "    bmc: {host: 127.0.0.1, port: 9001, user: admin, password_file: PWFILE}\n"
        "    mac: \"00:50:43:02:01:0A\"\n");
    assert_string_equal(c->worker, "rack02");
    assert_string_equal(c->rack, "rackB");
    assert_string_equal(c->master, "tcp://127.0.0.1:5555");
    assert_string_equal(c->master_public_key, "/etc/rackrun/keys/master");
    assert_string_equal(c->secret_key, "/etc/rackrun/keys/rack02_secret");
    assert_string_equal(c->tftp_root, "/var/lib/tftpboot");
    assert_string_equal(c->spool_dir, "/var/spool/rr");
    assert_int_equal(c->heartbeat_interval_ms, 2000);
    assert_int_equal(c->device_count, 1);
    rr_device_config_t *d = &c->devices[0];
    assert_string_equal(d->name, "calxeda02-01");
    assert_string_equal(d->type, "highbank");
    assert_int_equal(d->tag_count, 2);
    assert_string_equal(d->tags[0], "sata");
    assert_string_equal(d->tags[1], "big-ram");
    assert_string_equal(d->bmc_host, "127.0.0.1");
    assert_int_equal(d->bmc_port, 9001);
    assert_string_equal(d->bmc_user, "admin");
    assert_string_equal(d->bmc_password, PASSWORD);
    assert_string_equal(d->mac, "00:50:43:02:01:0a");      /* normalised to lower case */
    assert_int_equal(d->prompt_count, 2);
    assert_string_equal(d->prompts[0], "# ");
    assert_string_equal(d->prompts[1], "$ ");
    assert_int_equal(d->bootloader_delay_ms, 300);
    assert_int_equal(d->test_shell_delay_ms, 100);
    assert_int_equal(d->ipmi_timeout_ms, 4000);
    assert_int_equal(d->ipmi_retries, 2);
    assert_int_equal(d->sol_timeout_ms, 20000);
    assert_int_equal(d->sol_probe_ms, 120000);
    rr_worker_config_destroy(&c);
    assert_null(c);
}

static void test_device_overrides_its_type_key_by_key(void **state)
{
    rr_worker_config_t *c = load_ok(
        HEAD
        "device_types:\n"
        "  highbank:\n"
        "    prompts: [\"# \"]\n"
        "    serial: {bootloader_delay_ms: 300, test_shell_delay_ms: 100}\n"
        "    ipmi: {timeout: 5s, retries: 3}\n"
        "devices:\n"
        "  - name: a\n"
        "    type: highbank\n"
        "    mac: \"00:50:43:02:01:00\"\n"
        "    bmc: {host: 127.0.0.1, user: admin, password_file: PWFILE}\n"
        "    serial: {test_shell_delay_ms: 50}\n"
        "    ipmi: {retries: 7}\n"
        "    prompts: [\"root@a:~# \"]\n"
        DEV("b", "00:50:43:02:01:01"));
    rr_device_config_t *a = &c->devices[0], *b = &c->devices[1];
    assert_int_equal(a->bootloader_delay_ms, 300);    /* from the type */
    assert_int_equal(a->test_shell_delay_ms, 50);     /* the device's own */
    assert_int_equal(a->ipmi_timeout_ms, 5000);
    assert_int_equal(a->ipmi_retries, 7);
    assert_int_equal(a->prompt_count, 1);             /* a list is replaced whole */
    assert_string_equal(a->prompts[0], "root@a:~# ");
    assert_int_equal(b->test_shell_delay_ms, 100);    /* the type's value stays for b */
    assert_int_equal(b->ipmi_retries, 3);
    assert_string_equal(b->prompts[0], "# ");
    rr_worker_config_destroy(&c);
}

static void test_undeclared_type_gets_builtin_defaults(void **state)
{
    rr_worker_config_t *c = load_ok(
        HEAD
        "device_types:\n"
        "  other: {serial: {bootloader_delay_ms: 300}, ipmi: {timeout: 1s}}\n"
        "devices:\n" DEV("a", "00:50:43:02:01:00"));
    rr_device_config_t *d = &c->devices[0];
    assert_int_equal(d->prompt_count, 1);
    assert_string_equal(d->prompts[0], "# ");
    assert_int_equal(d->bootloader_delay_ms, 0);
    assert_int_equal(d->test_shell_delay_ms, 0);
    assert_int_equal(d->ipmi_timeout_ms, 5000);
    assert_int_equal(d->ipmi_retries, 3);
    assert_int_equal(d->sol_timeout_ms, 10000);
    assert_int_equal(d->sol_probe_ms, 60000);
    assert_int_equal(d->bmc_port, 623);
    assert_int_equal(d->tag_count, 0);
    rr_worker_config_destroy(&c);
}

static void test_optional_top_keys_default(void **state)
{
    rr_worker_config_t *c = load_ok(HEAD "devices:\n" DEV("a", "00:50:43:02:01:00"));
    assert_string_equal(c->rack, "rack02");            /* the worker's name */
    assert_string_equal(c->spool_dir, "/var/lib/rackrun/spool");
    assert_int_equal(c->heartbeat_interval_ms, 1000);
    assert_null(c->master_public_key);
    assert_null(c->secret_key);
    rr_worker_config_destroy(&c);
}

static void test_durations_take_units_and_delays_bare_ms(void **state)
{
    rr_worker_config_t *c = load_ok(
        HEAD "devices:\n"
        "  - name: a\n    type: t\n    mac: \"00:50:43:02:01:00\"\n"
        "    bmc: {host: h, user: u, password_file: PWFILE}\n"
        "    serial: {bootloader_delay_ms: 1s, test_shell_delay_ms: 25}\n"
        "    ipmi: {timeout: 1500ms}\n"
        "    sol: {timeout: 2}\n");
    assert_int_equal(c->devices[0].bootloader_delay_ms, 1000);
    assert_int_equal(c->devices[0].test_shell_delay_ms, 25);
    assert_int_equal(c->devices[0].ipmi_timeout_ms, 1500);
    assert_int_equal(c->devices[0].sol_timeout_ms, 2000);   /* bare: seconds */
    rr_worker_config_destroy(&c);
}

static void test_bad_port_names_file_line_column_and_key(void **state)
{
    assert_string_equal(load_error(HEAD
                                   "devices:\n"                         /* line 4 */
                                   DEV("a", "00:50:43:02:01:00")
                                   DEV("b", "00:50:43:02:01:01")
                                   "  - name: c\n"
                                   "    type: highbank\n"
                                   "    mac: \"00:50:43:02:01:02\"\n"
                                   "    bmc:\n"
                                   "      host: 127.0.0.1\n"
                                   "      port: 70000\n"               /* line 12 */
                                   "      user: admin\n"
                                   "      password_file: PWFILE\n"),
                        "worker.yaml:12:13: devices[2].bmc.port: '70000' is not a port (1-65535)");
    assert_non_null(strstr(load_error(HEAD "devices:\n"
                                      "  - {name: a, type: t, mac: \"00:50:43:02:01:00\", "
                                      "bmc: {host: h, port: 0, user: u, password_file: PWFILE}}\n"),
                           "devices[0].bmc.port: '0' is not a port"));
    assert_non_null(strstr(load_error(HEAD "devices:\n"
                                      "  - {name: a, type: t, mac: \"00:50:43:02:01:00\", "
                                      "bmc: {host: h, port: http, user: u, password_file: PWFILE}}\n"),
                           "devices[0].bmc.port: 'http' is not a port"));
}

static void test_unknown_keys_are_named(void **state)
{
    assert_string_equal(load_error(HEAD "tftp_rot: /x\ndevices: []\n"),
                        "worker.yaml:4:1: unknown key 'tftp_rot' (expected worker, rack, master, "
                        "master_public_key, secret_key, tftp_root, spool_dir, artifacts_dir, "
                        "heartbeat_interval, secrets_dir, file_roots, max_download, device_types, "
                        "devices)");
    assert_string_equal(load_error(HEAD "devices:\n"
                                   "  - {name: a, type: t, mac: \"00:50:43:02:01:00\", "
                                   "bmc: {hots: h, user: u, password_file: PWFILE}}\n"),
                        "worker.yaml:5:56: devices[0].bmc: unknown key 'hots' (expected host, "
                        "port, user, password_file, password_env)");
    assert_string_equal(load_error(HEAD "device_types:\n"
                                   "  highbank:\n"
                                   "    serial: {bootloader_delay: 300}\n"
                                   "devices: []\n"),
                        "worker.yaml:6:14: device_types.highbank.serial: unknown key "
                        "'bootloader_delay' (expected bootloader_delay_ms, test_shell_delay_ms)");
}

static void test_duplicate_device_names_refused(void **state)
{
    assert_string_equal(load_error(HEAD "devices:\n" DEV("a", "00:50:43:02:01:00")
                                   DEV("b", "00:50:43:02:01:01") DEV("a", "00:50:43:02:01:02")),
                        "worker.yaml:7:12: devices[2].name: duplicate device name 'a' (also "
                        "devices[0])");
}

static void test_duplicate_macs_refused_whatever_the_case(void **state)
{
    assert_string_equal(load_error(HEAD "devices:\n" DEV("a", "00:50:43:02:01:AA")
                                   DEV("b", "00-50-43-02-01-aa")),
                        "worker.yaml:6:36: devices[1].mac: duplicate MAC 00:50:43:02:01:aa (also "
                        "devices[0] a)");
}

static void test_malformed_macs_refused(void **state)
{
    const char *bad[] = { "00:50:43:02:01", "00:50:43:02:01:0g", "0050.4302.0100",
                          "00:50:43:02:01:000", "00:50:43-02:01:0" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, HEAD "devices:\n"
                 "  - {name: a, type: t, mac: \"%s\", bmc: {host: h, user: u, "
                 "password_file: PWFILE}}\n", bad[i]);
        const char *err = load_error(text);
        assert_non_null(strstr(err, "devices[0].mac: '"));
        assert_non_null(strstr(err, bad[i]));
        assert_non_null(strstr(err, "is not a MAC address"));
    }
}

/* A good one-device config; each case drops one line and expects its key to be missed. */
static const char *const full_lines[] = {
    "worker: rack02\n", "master: tcp://127.0.0.1:5555\n", "tftp_root: /srv/tftp\n",
    "devices:\n", "  - tags: [sata]\n", "    name: a\n", "    type: highbank\n", "    mac: \"00:50:43:02:01:00\"\n",
    "    bmc:\n", "      host: 127.0.0.1\n", "      user: admin\n",
    "      password_file: PWFILE\n",
};

static const char *without_line(size_t skip)
{
    static char text[1024];
    text[0] = '\0';
    for (size_t i = 0; i < sizeof full_lines / sizeof full_lines[0]; i++)
        if (i != skip && !(skip == 3 && i > 3) && !(skip == 8 && i > 8))
            strcat(text, full_lines[i]);
    return text;
}

static void test_missing_required_keys_named(void **state)
{
    const struct { size_t line; const char *message; } cases[] = {
        { 0, "worker.yaml:1:1: missing required key 'worker'" },
        { 1, "worker.yaml:1:1: missing required key 'master'" },
        { 2, "worker.yaml:1:1: missing required key 'tftp_root'" },
        { 3, "worker.yaml:1:1: missing required key 'devices'" },
        { 5, "worker.yaml:5:5: devices[0]: missing required key 'name'" },
        { 6, "worker.yaml:5:5: devices[0]: missing required key 'type'" },
        { 7, "worker.yaml:5:5: devices[0]: missing required key 'mac'" },
        { 8, "worker.yaml:5:5: devices[0]: missing required key 'bmc'" },
        { 9, "worker.yaml:10:7: devices[0].bmc: missing required key 'host'" },
        { 10, "worker.yaml:10:7: devices[0].bmc: missing required key 'user'" },
        { 11, "worker.yaml:10:7: devices[0].bmc: missing password_file or password_env" },
    };
    rr_worker_config_t *c = load_ok(without_line(99));   /* the full text is good */
    rr_worker_config_destroy(&c);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(load_error(without_line(cases[i].line)), cases[i].message);
}

static void test_empty_required_value_refused(void **state)
{
    assert_string_equal(load_error("worker:\nmaster: tcp://127.0.0.1:5555\ntftp_root: /t\n"
                                   "devices: []\n"),
                        "worker.yaml:1:1: missing required key 'worker'");
    assert_string_equal(load_error(HEAD "rack: \"\"\ndevices: []\n"),
                        "worker.yaml:4:7: rack: must not be empty");
}

static void test_bad_values_named_with_their_key(void **state)
{
    const struct { const char *yaml; const char *message; } cases[] = {
        { "worker: ../etc\nmaster: tcp://h:1\ntftp_root: /t\ndevices: []\n",
          "worker: '../etc' is not a valid name" },
        { "worker: w\nmaster: localhost:5555\ntftp_root: /t\ndevices: []\n",
          "master: 'localhost:5555' is not a ZMQ endpoint" },
        { HEAD "heartbeat_interval: 10x\ndevices: []\n",
          "heartbeat_interval: '10x': unknown unit 'x' (use ms, s, m, h, d)" },
        { HEAD "heartbeat_interval: 0s\ndevices: []\n",
          "heartbeat_interval: '0s' must be longer than 0" },
        { HEAD "devices: {a: 1}\n", "worker.yaml:4:10: devices: must be a list, not a map" },
        { HEAD "devices:\n  - just-a-name\n", "worker.yaml:5:5: devices[0]: must be a map, not a scalar" },
        { HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", tags: sata, "
               "bmc: {host: h, user: u, password_file: PWFILE}}\n",
          "devices[0].tags: must be a list, not a scalar" },
        { HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", tags: [ok, \"no/slash\"], "
               "bmc: {host: h, user: u, password_file: PWFILE}}\n",
          "devices[0].tags[1]: 'no/slash' is not a valid name" },
        { HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", bmc: h}\n",
          "devices[0].bmc: must be a map, not a scalar" },
        { HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", ipmi: {retries: many}, "
               "bmc: {host: h, user: u, password_file: PWFILE}}\n",
          "devices[0].ipmi.retries: 'many' is not a whole number from 0 to 100" },
        { HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", ipmi: {retries: -1}, "
               "bmc: {host: h, user: u, password_file: PWFILE}}\n",
          "devices[0].ipmi.retries: '-1' is not a whole number from 0 to 100" },
        { HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", "
               "serial: {bootloader_delay_ms: 300s}, bmc: {host: h, user: u, password_file: PWFILE}}\n",
          "devices[0].serial.bootloader_delay_ms: '300s' is more than 10000ms" },
        { HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", "
               "sol: {timeout: -3s}, bmc: {host: h, user: u, password_file: PWFILE}}\n",
          "devices[0].sol.timeout: '-3s': a duration cannot be negative" },
        { HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", "
               "ipmi: {timeout: 60d}, bmc: {host: h, user: u, password_file: PWFILE}}\n",
          "devices[0].ipmi.timeout: '60d' is more than 4294967295ms" },
        { HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", prompts: [\"\"], "
               "bmc: {host: h, user: u, password_file: PWFILE}}\n",
          "devices[0].prompts[0]: must not be empty" },
        { HEAD "device_types:\n  \"bad type\": {}\ndevices: []\n",
          "worker.yaml:5:3: device_types: 'bad type' is not a valid name" },
        { HEAD "device_types: [highbank]\ndevices: []\n",
          "device_types: must be a map, not a list" },
        { HEAD "master_public_key: /k/master\ndevices: []\n",
          "worker.yaml:1:1: secret_key is required when master_public_key is set (CURVE)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *err = load_error(cases[i].yaml);
        if (!strstr(err, cases[i].message))
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].message);
    }
}

static void test_yaml_syntax_and_file_errors_are_located(void **state)
{
    assert_true(strncmp(load_error(HEAD "devices: [\n"), "worker.yaml:", 12) == 0);
    assert_string_equal(load_error(""), "worker.yaml: empty document");
    assert_string_equal(load_error("- a\n- b\n"), "worker.yaml:1:1: must be a map, not a list");
    assert_string_equal(load_error(HEAD "worker: again\ndevices: []\n"),
                        "worker.yaml:4:1: duplicate key 'worker' (first at line 1)");

    char err[512];
    rr_worker_config_t *c = NULL;
    assert_int_equal(rr_worker_config_load(tmpdir_path(2, "absent.yaml"), &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "absent.yaml: cannot open: No such file or directory"));
    assert_null(c);
}

static const char *with_password_file(const char *name, const char *content, mode_t mode)
{
    static char text[1024];
    snprintf(text, sizeof text, HEAD "devices:\n"
             "  - {name: a, type: t, mac: \"00:50:43:02:01:00\",\n"
             "     bmc: {host: h, user: u, password_file: %s}}\n",
             tmpdir_put(3, name, content, mode));
    return text;
}

static void test_password_file_open_to_others_refused(void **state)
{
    const char *err = load_error(with_password_file("open.pw", PASSWORD "\n", 0644));
    char want[512];
    snprintf(want, sizeof want, "worker.yaml:6:45: devices[0].bmc: password_file %s is readable "
             "by group/others (mode 0644); chmod 600 it", tmpdir_path(3, "open.pw"));
    assert_string_equal(err, want);
    assert_non_null(strstr(load_error(with_password_file("group.pw", PASSWORD, 0640)),
                           "is readable by group/others (mode 0640); chmod 600 it"));
    assert_non_null(strstr(load_error(with_password_file("w.pw", PASSWORD, 0602)),
                           "is accessible by group/others (mode 0602); chmod 600 it"));
    rr_worker_config_t *c = load_ok(with_password_file("strict.pw", PASSWORD, 0400));
    assert_string_equal(c->devices[0].bmc_password, PASSWORD);
    rr_worker_config_destroy(&c);
}

static void test_password_file_trailing_newline_stripped(void **state)
{
    const char *contents[] = { PASSWORD "\n", PASSWORD "\r\n", PASSWORD };
    for (size_t i = 0; i < 3; i++) {
        rr_worker_config_t *c = load_ok(with_password_file("nl.pw", contents[i], 0600));
        assert_string_equal(c->devices[0].bmc_password, PASSWORD);
        rr_worker_config_destroy(&c);
    }
}

static void test_bad_password_files_refused_without_quoting_them(void **state)
{
    assert_non_null(strstr(load_error(with_password_file("empty.pw", "\n", 0600)), "is empty"));
    assert_non_null(strstr(load_error(with_password_file("two.pw", PASSWORD "\n" PASSWORD "\n", 0600)),
                           "holds more than one line"));
    assert_non_null(strstr(load_error(with_password_file("long.pw", PASSWORD PASSWORD, 0600)),
                           "longer than 20 bytes"));
    assert_non_null(strstr(load_error(HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", "
                                      "bmc: {host: h, user: u, password_file: /nonexistent/pw}}\n"),
                           "devices[0].bmc: password_file /nonexistent/pw: cannot open: No such file"));
}

static void test_password_from_environment(void **state)
{
    const char *yaml = HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", "
                            "bmc: {host: h, user: u, password_env: RR_TEST_BMC_PASSWORD}}\n";
    setenv("RR_TEST_BMC_PASSWORD", ENV_PASSWORD, 1);
    rr_worker_config_t *c = load_ok(yaml);
    assert_string_equal(c->devices[0].bmc_password, ENV_PASSWORD);
    rr_worker_config_destroy(&c);

    unsetenv("RR_TEST_BMC_PASSWORD");
    assert_string_equal(load_error(yaml), "worker.yaml:5:88: devices[0].bmc: password_env: the "
                                          "environment variable is not set");
    setenv("RR_TEST_BMC_PASSWORD", "", 1);
    assert_non_null(strstr(load_error(yaml), "password_env: the environment variable is empty"));
    unsetenv("RR_TEST_BMC_PASSWORD");
}

static void test_both_password_sources_refused(void **state)
{
    setenv("RR_TEST_BMC_PASSWORD", ENV_PASSWORD, 1);
    assert_non_null(strstr(load_error(HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", "
                                      "bmc: {host: h, user: u, password_file: PWFILE, "
                                      "password_env: RR_TEST_BMC_PASSWORD}}\n"),
                           "devices[0].bmc: give password_file or password_env, not both"));
    unsetenv("RR_TEST_BMC_PASSWORD");
}

/* Passwords typed where they do not belong must not be echoed either
 * (load_error checks every message for both passwords). */
static void test_misplaced_passwords_never_echoed(void **state)
{
    assert_non_null(strstr(load_error(HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", "
                                      "bmc: {host: h, user: u, password: " PASSWORD "}}\n"),
                           "unknown key 'password'"));
    assert_non_null(strstr(load_error(HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", "
                                      "bmc: {host: h, user: u, password_env: " PASSWORD "}}\n"),
                           "the environment variable is not set"));
    assert_non_null(strstr(load_error(HEAD "devices:\n  - {name: a, type: t, mac: \"00:50:43:02:01:00\", "
                                      "bmc: {host: h, user: u, password_env: \"" PASSWORD "!\"}}\n"),
                           "password_env must name an environment variable"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config_loads_every_key),
        cmocka_unit_test(test_device_overrides_its_type_key_by_key),
        cmocka_unit_test(test_undeclared_type_gets_builtin_defaults),
        cmocka_unit_test(test_optional_top_keys_default),
        cmocka_unit_test(test_durations_take_units_and_delays_bare_ms),
        cmocka_unit_test(test_bad_port_names_file_line_column_and_key),
        cmocka_unit_test(test_unknown_keys_are_named),
        cmocka_unit_test(test_duplicate_device_names_refused),
        cmocka_unit_test(test_duplicate_macs_refused_whatever_the_case),
        cmocka_unit_test(test_malformed_macs_refused),
        cmocka_unit_test(test_missing_required_keys_named),
        cmocka_unit_test(test_empty_required_value_refused),
        cmocka_unit_test(test_bad_values_named_with_their_key),
        cmocka_unit_test(test_yaml_syntax_and_file_errors_are_located),
        cmocka_unit_test(test_password_file_open_to_others_refused),
        cmocka_unit_test(test_password_file_trailing_newline_stripped),
        cmocka_unit_test(test_bad_password_files_refused_without_quoting_them),
        cmocka_unit_test(test_password_from_environment),
        cmocka_unit_test(test_both_password_sources_refused),
        cmocka_unit_test(test_misplaced_passwords_never_echoed),
    };
    return cmocka_run_group_tests(tests, tmpdir_group_setup, tmpdir_group_teardown);
}
