/* test_bootloader.c: the pure parts of boot method uboot-pxe (worker/bootloader.c):
 * how U-Boot's answer to a typed command is judged, and the device dictionary's
 * `bootloader:` keys (common/config.c). The boot itself runs end to end in
 * uboot_e2e_test.py (e2e_uboot_*). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "bootloader.h"
#include "config.h"
#include "tmpdir.h"

static void test_failure_finds_unknown_command_line(void **state)
{
    (void)state;
    char line[128];
    const char *out = "sete aoad\r\nUnknown command 'sete' - try 'help'\r\n=> ";
    assert_true(rr_bootloader_failure(out, line, sizeof line));
    assert_string_equal(line, "Unknown command 'sete' - try 'help'");
}

static void test_failure_finds_pxe_get_without_config(void **state)
{
    (void)state;
    char line[128];
    const char *out = "pxe get\r\nRetrieving file: pxelinux.cfg/default\r\n"
                      "TFTP error: 'File not found' (1)\r\nConfig file not found\r\n=> ";
    assert_true(rr_bootloader_failure(out, line, sizeof line));
    assert_string_equal(line, "Config file not found");
}

static void test_failure_ignores_a_successful_pxe_get(void **state)
{
    (void)state;
    char line[128] = "untouched";
    const char *out = "pxe get\r\nRetrieving file: pxelinux.cfg/01-52-54-00-00-00-01\r\n"
                      "Bytes transferred = 158 (9e hex)\r\nConfig file 'pxelinux.0' found\r\n=> ";
    assert_false(rr_bootloader_failure(out, line, sizeof line));
    assert_string_equal(line, "untouched");
}

static void test_failure_line_is_cut_to_the_buffer(void **state)
{
    (void)state;
    char line[8];
    assert_true(rr_bootloader_failure("x\nRetry count exceeded; starting again\n", line,
                                      sizeof line));
    assert_string_equal(line, "Retry c");
}

static void test_last_line_skips_the_prompt_and_blank_lines(void **state)
{
    (void)state;
    char line[128];
    rr_bootloader_last_line("pxe boot\r\nSkipping rackrun for failure retrieving kernel\r\n"
                            "\r\n=> ", "=> ", line, sizeof line);
    assert_string_equal(line, "Skipping rackrun for failure retrieving kernel");
}

static void test_last_line_keeps_a_partial_line(void **state)
{
    (void)state;
    char line[128];
    rr_bootloader_last_line("=> s", NULL, line, sizeof line);
    assert_string_equal(line, "=> s");
    rr_bootloader_last_line("", "=> ", line, sizeof line);
    assert_string_equal(line, "");
}

static void test_echo_ok_wants_the_whole_command_then_a_line_end(void **state)
{
    (void)state;
    assert_true(rr_bootloader_echo_ok("dhcp\r\nBOOTP broadcast 1\r\n", "dhcp"));
    assert_false(rr_bootloader_echo_ok("dcp\r\n", "dhcp"));
    assert_false(rr_bootloader_echo_ok("dhc", "dhcp"));
    assert_false(rr_bootloader_echo_ok("dhcpx\r\n", "dhcp"));
    assert_false(rr_bootloader_echo_ok("", "dhcp"));
}

static rr_worker_config_t *load(const char *devices_extra, const char *type_extra)
{
    const char *pw = tmpdir_path(1, "bmc.pw");
    assert_int_equal(tmpdir_write_text(pw, "secret\n", 0600), 0);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "worker: w\nrack: r\nmaster: tcp://127.0.0.1:5555\ntftp_root: /tmp\n"
             "device_types:\n  highbank:\n%s"
             "devices:\n"
             "  - {name: a, type: highbank, mac: '00:50:43:02:01:00',\n"
             "     bmc: {host: h, user: u, password_file: %s}}\n"
             "  - {name: b, type: highbank, mac: '00:50:43:02:01:01',\n"
             "     bmc: {host: h, user: u, password_file: %s}%s}\n",
             type_extra, pw, pw, devices_extra);
    const char *path = tmpdir_path(0, "worker.yaml");
    assert_int_equal(tmpdir_write_text(path, yaml, 0644), 0);
    rr_worker_config_t *c = NULL;
    char err[512] = "";
    if (rr_worker_config_load(path, &c, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    return c;
}

static void test_bootloader_keys_come_from_the_type_and_a_device_overrides(void **state)
{
    (void)state;
    rr_worker_config_t *c = load(
        ",\n     bootloader: {commands: [dhcp, pxe get, pxe boot], boot_message: 'Linux'}",
        "    bootloader: {prompt: 'Highbank #', interrupt: 'Hit any key',\n"
        "                 commands: ['setenv autoload no', dhcp, pxe get, pxe boot]}\n");
    const rr_device_config_t *a = &c->devices[0], *b = &c->devices[1];
    assert_string_equal(a->bootloader_prompt, "Highbank #");
    assert_string_equal(a->bootloader_interrupt, "Hit any key");
    assert_int_equal(a->bootloader_command_count, 4);
    assert_string_equal(a->bootloader_commands[0], "setenv autoload no");
    assert_null(a->bootloader_boot_message);
    assert_string_equal(b->bootloader_prompt, "Highbank #");        /* from the type */
    assert_int_equal(b->bootloader_command_count, 3);               /* list replaced whole */
    assert_string_equal(b->bootloader_commands[2], "pxe boot");
    assert_string_equal(b->bootloader_boot_message, "Linux");
    rr_worker_config_destroy(&c);
}

static void test_bootloader_keys_default_to_unset(void **state)
{
    (void)state;
    rr_worker_config_t *c = load("", "    prompts: ['# ']\n");
    assert_null(c->devices[0].bootloader_prompt);
    assert_null(c->devices[0].bootloader_commands);
    assert_int_equal(c->devices[0].bootloader_command_count, 0);
    rr_worker_config_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failure_finds_unknown_command_line),
        cmocka_unit_test(test_failure_finds_pxe_get_without_config),
        cmocka_unit_test(test_failure_ignores_a_successful_pxe_get),
        cmocka_unit_test(test_failure_line_is_cut_to_the_buffer),
        cmocka_unit_test(test_last_line_skips_the_prompt_and_blank_lines),
        cmocka_unit_test(test_last_line_keeps_a_partial_line),
        cmocka_unit_test(test_echo_ok_wants_the_whole_command_then_a_line_end),
        cmocka_unit_test(test_bootloader_keys_come_from_the_type_and_a_device_overrides),
        cmocka_unit_test(test_bootloader_keys_default_to_unset),
    };
    return cmocka_run_group_tests(tests, tmpdir_group_setup, tmpdir_group_teardown);
}
