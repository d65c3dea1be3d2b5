/* test_jobyaml.c: job YAML validation: the smoke job normalised, and one test
 * per error class checking line, column, key path and message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jobyaml.h"

#define SHA "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"

static const char smoke[] =
    "job_name: highbank smoke\n"                                          /* 1 */
    "device_type: highbank\n"                                             /* 2 */
    "tags: [sata, eth, sata]\n"                                           /* 3 */
    "actions:\n"                                                          /* 4 */
    "  - deploy:\n"                                                       /* 5 */
    "      to: tftp\n"                                                    /* 6 */
    "      kernel: {url: \"http://files.lab/zImage\", sha256: " SHA "}\n" /* 7 */
    "      initrd: {url: \"https://files.lab/initrd.gz\"}\n"              /* 8 */
    "      dtb: {url: \"file:///srv/highbank.dtb\"}\n"                    /* 9 */
    "      append: \"console=ttyAMA0 nosplash\"\n"                        /* 10 */
    "  - boot: {method: ipmi-pxe, timeout: 5m}\n"                         /* 11 */
    "  - test:\n"                                                         /* 12 */
    "      steps:\n"                                                      /* 13 */
    "        - {name: kernel-version, run: \"uname -a\"}\n"               /* 14 */
    "        - {name: disk, run: \"fdisk -l /dev/sda\", timeout: 90s}\n"  /* 15 */
    "  - transfer: {from: /root/results.tar.gz, to: results.tar.gz}\n";   /* 16 */

static proto_jobdef_t *parse_ok(const char *yaml)
{
    proto_jobdef_t *def = NULL;
    rr_jobyaml_error_t err;
    if (rr_jobyaml_parse(yaml, strlen(yaml), &def, &err) != 0)
        fail_msg("unexpected error: %s", err.text);
    assert_non_null(def);
    return def;
}

/* Parse YAML expecting an error at LINE:COL (0 = not located) on PATH whose
 * whole text is TEXT. */
static void expect_error(const char *yaml, unsigned line, unsigned col, const char *path,
                         const char *text)
{
    proto_jobdef_t *def = (proto_jobdef_t *) 1;
    rr_jobyaml_error_t err;
    assert_int_equal(rr_jobyaml_parse(yaml, strlen(yaml), &def, &err), -1);
    assert_null(def);
    if (strcmp(err.text, text) != 0)
        fail_msg("expected \"%s\"\n     got \"%s\"", text, err.text);
    assert_int_equal(err.line, line);
    assert_int_equal(err.col, col);
    assert_string_equal(err.path, path);
}

static void test_smoke_job_is_normalised_with_defaults(void **state)
{
    proto_jobdef_t *def = parse_ok(smoke);
    assert_string_equal(def->name, "highbank smoke");
    assert_string_equal(def->device_type, "highbank");
    assert_int_equal(def->priority, 50);
    assert_int_equal(def->job_timeout_s, 30 * 60);
    assert_int_equal(def->action_timeout_s, 10 * 60);
    assert_int_equal(def->tags_count, 2);              /* sorted, deduplicated */
    assert_string_equal(def->tags[0], "eth");
    assert_string_equal(def->tags[1], "sata");
    assert_int_equal(def->actions_count, 4);

    proto_action_t *deploy = &def->actions[0];
    assert_string_equal(deploy->kind, "deploy");
    assert_string_equal(deploy->to, "tftp");
    assert_int_equal(deploy->timeout_s, 600);
    assert_int_equal(deploy->artifacts_count, 3);
    assert_string_equal(deploy->artifacts[0].role, "kernel");
    assert_string_equal(deploy->artifacts[0].url, "http://files.lab/zImage");
    assert_string_equal(deploy->artifacts[0].sha256,
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    assert_string_equal(deploy->artifacts[1].role, "initrd");
    assert_null(deploy->artifacts[1].sha256);
    assert_string_equal(deploy->artifacts[2].role, "dtb");
    assert_string_equal(deploy->append, "console=ttyAMA0 nosplash");

    proto_action_t *boot = &def->actions[1];
    assert_string_equal(boot->method, "ipmi-pxe");
    assert_int_equal(boot->timeout_s, 300);
    assert_int_equal(boot->prompts_count, 1);
    assert_string_equal(boot->prompts[0], "# ");

    proto_action_t *test = &def->actions[2];
    assert_int_equal(test->timeout_s, 600);
    assert_int_equal(test->steps_count, 2);
    assert_string_equal(test->steps[0].name, "kernel-version");
    assert_string_equal(test->steps[0].run, "uname -a");
    assert_int_equal(test->steps[0].timeout_s, 0);
    assert_int_equal(test->steps[1].timeout_s, 90);

    proto_action_t *transfer = &def->actions[3];
    assert_string_equal(transfer->from, "/root/results.tar.gz");
    assert_string_equal(transfer->to, "results.tar.gz");
    proto_jobdef_destroy(&def);
}

static void test_job_timeouts_and_priority_words_override_defaults(void **state)
{
    proto_jobdef_t *def = parse_ok(
        "job_name: j\ndevice_type: qemu\npriority: high\n"
        "timeouts: {job: 1h, action: 2m}\n"
        "actions:\n  - boot: {method: ipmi-disk, prompts: [\"login: \", \"$ \"]}\n"
        "  - deploy: {to: disk, image: {url: \"http://x/img\"}, device: /dev/sda, timeout: 20m}\n");
    assert_int_equal(def->priority, 75);
    assert_int_equal(def->job_timeout_s, 3600);
    assert_int_equal(def->actions[0].timeout_s, 120);
    assert_int_equal(def->actions[0].prompts_count, 2);
    assert_string_equal(def->actions[0].prompts[1], "$ ");
    assert_int_equal(def->actions[1].timeout_s, 1200);
    assert_string_equal(def->actions[1].artifacts[0].role, "image");
    assert_string_equal(def->actions[1].disk_device, "/dev/sda");
    proto_jobdef_destroy(&def);

    def = parse_ok("job_name: j\ndevice_type: qemu\npriority: low\n"
                   "actions: [{boot: {method: uboot-pxe}}]\n");
    assert_int_equal(def->priority, 25);
    proto_jobdef_destroy(&def);
    def = parse_ok("job_name: j\ndevice_type: qemu\npriority: 0\n"
                   "actions: [{boot: {method: uboot-pxe}}]\n");
    assert_int_equal(def->priority, 0);
    proto_jobdef_destroy(&def);
}

#define HEAD "job_name: j\ndevice_type: highbank\n"

static void test_unknown_boot_method_names_line_column_and_choices(void **state)
{
    expect_error(HEAD
                 "actions:\n"
                 "  - deploy: {to: tftp, kernel: {url: \"http://x/k\"}}\n"
                 "  - boot:\n"
                 "      prompts: [\"# \"]\n"
                 "      method: ipxe\n",
                 7, 15, "actions[1].boot.method",
                 "line 7, column 15: actions[1].boot.method: unknown method 'ipxe' "
                 "(expected ipmi-pxe, ipmi-disk, uboot-pxe)");
}

static void test_malformed_yaml_reports_the_parser_position(void **state)
{
    proto_jobdef_t *def = NULL;
    rr_jobyaml_error_t err;
    const char *yaml = HEAD "actions: [ {boot: {method: ipmi-pxe}\n";
    assert_int_equal(rr_jobyaml_parse(yaml, strlen(yaml), &def, &err), -1);
    assert_null(def);
    assert_int_equal(err.line, 4);
    assert_true(err.col >= 1);
    assert_string_equal(err.path, "");
    char prefix[64];
    snprintf(prefix, sizeof prefix, "line 4, column %u: ", err.col);
    assert_int_equal(strncmp(err.text, prefix, strlen(prefix)), 0);
    assert_true(strlen(err.text) > strlen(prefix) + 5);
}

static void test_unknown_top_level_key_is_refused(void **state)
{
    expect_error(HEAD "prio: 3\nactions: [{boot: {method: ipmi-pxe}}]\n", 3, 1, "prio",
                 "line 3, column 1: prio: unknown key 'prio' (expected job_name, device_type, "
                 "priority, tags, timeouts, secrets, actions, notify)");
}

static void test_unknown_action_kind_is_refused(void **state)
{
    expect_error(HEAD "actions:\n  - flash: {image: x}\n", 4, 5, "actions[0].flash",
                 "line 4, column 5: actions[0].flash: unknown action 'flash' "
                 "(expected deploy, boot, test, transfer)");
}

static void test_missing_job_name_device_type_or_actions_is_refused(void **state)
{
    expect_error("device_type: x\nactions: [{boot: {method: ipmi-pxe}}]\n", 1, 1, "job_name",
                 "line 1, column 1: job_name: missing (required)");
    expect_error("job_name: x\nactions: [{boot: {method: ipmi-pxe}}]\n", 1, 1, "device_type",
                 "line 1, column 1: device_type: missing (required)");
    expect_error(HEAD, 1, 1, "actions", "line 1, column 1: actions: missing (required)");
    expect_error(HEAD "actions: []\n", 3, 10, "actions",
                 "line 3, column 10: actions: must list at least one action");
    expect_error(HEAD "actions:\n  - test: {timeout: 5m}\n", 4, 11, "actions[0].test.steps",
                 "line 4, column 11: actions[0].test.steps: missing (required)");
}

static void test_sha256_must_be_64_hex_digits(void **state)
{
    expect_error(HEAD "actions:\n"
                 "  - deploy: {to: tftp, kernel: {url: \"http://x/k\", sha256: abc123}}\n",
                 4, 60, "actions[0].deploy.kernel.sha256",
                 "line 4, column 60: actions[0].deploy.kernel.sha256: 'abc123' is not a "
                 "sha256 (64 hex digits, got 6 characters)");
}

static void test_url_scheme_must_be_http_https_or_file(void **state)
{
    expect_error(HEAD "actions:\n  - deploy: {to: tftp, kernel: {url: \"ftp://x/k\"}}\n",
                 4, 38, "actions[0].deploy.kernel.url",
                 "line 4, column 38: actions[0].deploy.kernel.url: 'ftp://x/k': unsupported "
                 "URL (expected http://, https:// or file://)");
}

static void test_bad_duration_names_the_key(void **state)
{
    proto_jobdef_t *def = NULL;
    rr_jobyaml_error_t err;
    const char *yaml = HEAD "timeouts: {job: soon}\nactions: [{boot: {method: ipmi-pxe}}]\n";
    assert_int_equal(rr_jobyaml_parse(yaml, strlen(yaml), &def, &err), -1);
    assert_int_equal(err.line, 3);
    assert_int_equal(err.col, 17);
    assert_string_equal(err.path, "timeouts.job");
    assert_non_null(strstr(err.text, "line 3, column 17: timeouts.job: "));
    assert_non_null(strstr(err.text, "soon"));
    expect_error(HEAD "timeouts: {action: 0s}\nactions: [{boot: {method: ipmi-pxe}}]\n", 3, 20,
                 "timeouts.action",
                 "line 3, column 20: timeouts.action: '0s': a timeout must be at least 1s");
}

static void test_priority_outside_0_to_100_is_refused(void **state)
{
    expect_error(HEAD "priority: 101\nactions: [{boot: {method: ipmi-pxe}}]\n", 3, 11,
                 "priority",
                 "line 3, column 11: priority: '101': expected 0..100 or low, medium, high");
    expect_error(HEAD "priority: -1\nactions: [{boot: {method: ipmi-pxe}}]\n", 3, 11,
                 "priority",
                 "line 3, column 11: priority: '-1': expected 0..100 or low, medium, high");
}

static void test_wrong_node_kind_is_refused(void **state)
{
    expect_error(HEAD "tags: sata\nactions: [{boot: {method: ipmi-pxe}}]\n", 3, 7, "tags",
                 "line 3, column 7: tags: must be a list, not a scalar");
    expect_error(HEAD "actions: [{boot: ipmi-pxe}]\n", 3, 18, "actions[0].boot",
                 "line 3, column 18: actions[0].boot: must be a map, not a scalar");
}

static void test_tag_with_a_comma_is_refused(void **state)
{
    expect_error(HEAD "tags: [\"a,b\"]\nactions: [{boot: {method: ipmi-pxe}}]\n", 3, 8,
                 "tags[0]", "line 3, column 8: tags[0]: 'a,b': only letters, digits and "
                 ". _ + - are allowed");
}

static void test_document_over_1_MiB_is_refused(void **state)
{
    size_t len = RR_JOBYAML_MAX_SIZE + 1;
    char *yaml = malloc(len);
    assert_non_null(yaml);
    memset(yaml, '#', len);
    proto_jobdef_t *def = NULL;
    rr_jobyaml_error_t err;
    assert_int_equal(rr_jobyaml_parse(yaml, len, &def, &err), -1);
    assert_null(def);
    assert_int_equal(err.line, 0);
    assert_string_equal(err.text, "job is 1048577 bytes, larger than the 1048576 byte limit");
    free(yaml);
}

static void test_aliases_are_refused(void **state)
{
    proto_jobdef_t *def = NULL;
    rr_jobyaml_error_t err;
    const char *yaml = HEAD "tags: &t [a]\nactions: [{boot: {method: ipmi-pxe, prompts: *t}}]\n";
    assert_int_equal(rr_jobyaml_parse(yaml, strlen(yaml), &def, &err), -1);
    assert_int_equal(err.line, 4);
    assert_non_null(strstr(err.text, "aliases"));
}

static void test_empty_document_is_refused(void **state)
{
    expect_error("", 0, 0, "",
                 "empty job: expected a map with job_name, device_type and actions");
    expect_error("# nothing\n", 0, 0, "",
                 "empty job: expected a map with job_name, device_type and actions");
}

static void test_transfer_target_cannot_climb_out(void **state)
{
    expect_error(HEAD "actions: [{transfer: {from: /root/x, to: ../../etc/passwd}}]\n", 3, 42,
                 "actions[0].transfer.to", "line 3, column 42: actions[0].transfer.to: "
                 "'../../etc/passwd': must be a file name, not a path");
}

static void test_duplicate_step_names_are_refused(void **state)
{
    expect_error(HEAD "actions:\n  - test:\n      steps:\n"
                 "        - {name: a, run: \"true\"}\n"
                 "        - {name: a, run: \"false\"}\n", 7, 18,
                 "actions[0].test.steps[1].name",
                 "line 7, column 18: actions[0].test.steps[1].name: duplicate step name 'a'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smoke_job_is_normalised_with_defaults),
        cmocka_unit_test(test_job_timeouts_and_priority_words_override_defaults),
        cmocka_unit_test(test_unknown_boot_method_names_line_column_and_choices),
        cmocka_unit_test(test_malformed_yaml_reports_the_parser_position),
        cmocka_unit_test(test_unknown_top_level_key_is_refused),
        cmocka_unit_test(test_unknown_action_kind_is_refused),
        cmocka_unit_test(test_missing_job_name_device_type_or_actions_is_refused),
        cmocka_unit_test(test_sha256_must_be_64_hex_digits),
        cmocka_unit_test(test_url_scheme_must_be_http_https_or_file),
        cmocka_unit_test(test_bad_duration_names_the_key),
        cmocka_unit_test(test_priority_outside_0_to_100_is_refused),
        cmocka_unit_test(test_wrong_node_kind_is_refused),
        cmocka_unit_test(test_tag_with_a_comma_is_refused),
        cmocka_unit_test(test_document_over_1_MiB_is_refused),
        cmocka_unit_test(test_aliases_are_refused),
        cmocka_unit_test(test_empty_document_is_refused),
        cmocka_unit_test(test_transfer_target_cannot_climb_out),
        cmocka_unit_test(test_duplicate_step_names_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
