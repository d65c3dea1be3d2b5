/* test_scanner.c: prompt, step end marker and RR_RESULT detection in console output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scanner.h"

typedef struct {
    int count;
    char name[64], result[16], measurement[32], units[16];
} results_t;

static void on_result(void *arg, const rr_scan_result_t *r)
{
    results_t *res = arg;
    res->count++;
    snprintf(res->name, sizeof res->name, "%s", r->name);
    snprintf(res->result, sizeof res->result, "%s", r->result);
    snprintf(res->measurement, sizeof res->measurement, "%s", r->measurement ? r->measurement : "");
    snprintf(res->units, sizeof res->units, "%s", r->units ? r->units : "");
}

static void feed(rr_scanner_t *s, const char *text)
{
    rr_scanner_feed(s, text, strlen(text));
}

static void test_marker_in_echo_of_typed_command_does_not_match(void **state)
{
    rr_scanner_t *s = rr_scanner_new(NULL, NULL);
    char cmd[128];
    rr_scanner_marker_command("tok1", cmd, sizeof cmd);
    assert_string_equal(cmd, "echo RR_END_$((6*7))_tok1:$?");
    rr_scanner_arm_marker(s, "tok1");
    /* the tty echoes what was typed */
    feed(s, "# ");
    feed(s, cmd);
    feed(s, "\r\n");
    int code = -5;
    assert_false(rr_scanner_marker(s, &code));
    assert_int_equal(code, -5);
    feed(s, "RR_END_42_tok1:0\r\n# ");
    assert_true(rr_scanner_marker(s, &code));
    assert_int_equal(code, 0);
    rr_scanner_destroy(&s);
    assert_null(s);
}

static void test_marker_split_across_chunks_gives_exit_code(void **state)
{
    rr_scanner_t *s = rr_scanner_new(NULL, NULL);
    rr_scanner_arm_marker(s, "abc");
    const char *out = "Linux node 6.1\r\nRR_END_42_abc:1\r\n";
    for (const char *p = out; *p; p++) {
        assert_false(rr_scanner_marker(s, NULL));
        rr_scanner_feed(s, p, 1);
    }
    int code = 0;
    assert_true(rr_scanner_marker(s, &code));
    assert_int_equal(code, 1);
    rr_scanner_destroy(&s);
}

static void test_marker_of_another_token_or_without_code_is_ignored(void **state)
{
    rr_scanner_t *s = rr_scanner_new(NULL, NULL);
    rr_scanner_arm_marker(s, "new");
    feed(s, "RR_END_42_old:0\nRR_END_42_new:\n");
    assert_false(rr_scanner_marker(s, NULL));
    /* output of a command printed without a newline before the marker */
    feed(s, "no newlineRR_END_42_new:127\n");
    int code = 0;
    assert_true(rr_scanner_marker(s, &code));
    assert_int_equal(code, 127);
    rr_scanner_destroy(&s);
}

static void test_prompt_found_without_newline_and_across_chunks(void **state)
{
    rr_scanner_t *s = rr_scanner_new(NULL, NULL);
    static const char *const prompts[] = { "login: ", "# " };
    assert_int_equal(rr_scanner_arm_prompt(s, prompts, 2), 0);
    feed(s, "U-Boot 2013.01\r\nStarting kernel ...\r\n#1 SMP\r\n");
    assert_int_equal(rr_scanner_prompt(s), -1);
    feed(s, "rackrun rig: shell ready\r\n#");
    assert_int_equal(rr_scanner_prompt(s), -1);
    feed(s, " \x1b[6n");
    assert_int_equal(rr_scanner_prompt(s), 1);
    /* re-arming forgets output seen before */
    assert_int_equal(rr_scanner_arm_prompt(s, prompts, 2), 0);
    assert_int_equal(rr_scanner_prompt(s), -1);
    rr_scanner_destroy(&s);
}

static void test_prompt_found_after_much_output(void **state)
{
    rr_scanner_t *s = rr_scanner_new(NULL, NULL);
    static const char *const prompts[] = { "=> " };
    assert_int_equal(rr_scanner_arm_prompt(s, prompts, 1), 0);
    char noise[1000];
    memset(noise, 'x', sizeof noise);
    for (int i = 0; i < 100; i++)
        rr_scanner_feed(s, noise, sizeof noise);
    assert_int_equal(rr_scanner_prompt(s), -1);
    feed(s, "=");
    feed(s, "> ");
    assert_int_equal(rr_scanner_prompt(s), 0);
    rr_scanner_destroy(&s);
}

static void test_result_lines_reported_with_measurement(void **state)
{
    results_t res = { 0 };
    rr_scanner_t *s = rr_scanner_new(on_result, &res);
    feed(s, "# echo RR_RESULT name=x result=pass\r\n");   /* the echo: not at line start */
    assert_int_equal(res.count, 0);
    feed(s, "RR_RESULT name=disk-speed result=pass measurement=123.5 units=MB/s\r\n");
    assert_int_equal(res.count, 1);
    assert_string_equal(res.name, "disk-speed");
    assert_string_equal(res.result, "pass");
    assert_string_equal(res.measurement, "123.5");
    assert_string_equal(res.units, "MB/s");
    feed(s, "RR_RESULT name=boot result=skip\n");
    assert_int_equal(res.count, 2);
    assert_string_equal(res.result, "skip");
    assert_string_equal(res.measurement, "");
    rr_scanner_destroy(&s);
}

static void test_malformed_result_lines_are_ignored(void **state)
{
    results_t res = { 0 };
    rr_scanner_t *s = rr_scanner_new(on_result, &res);
    feed(s, "RR_RESULT name=a result=maybe\n");
    feed(s, "RR_RESULT result=pass\n");
    feed(s, "RR_RESULT name=b\n");
    feed(s, "RR_RESULT name=c result=fail");   /* line not finished yet */
    assert_int_equal(res.count, 0);
    feed(s, "\n");
    assert_int_equal(res.count, 1);
    assert_string_equal(res.result, "fail");
    rr_scanner_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marker_in_echo_of_typed_command_does_not_match),
        cmocka_unit_test(test_marker_split_across_chunks_gives_exit_code),
        cmocka_unit_test(test_marker_of_another_token_or_without_code_is_ignored),
        cmocka_unit_test(test_prompt_found_without_newline_and_across_chunks),
        cmocka_unit_test(test_prompt_found_after_much_output),
        cmocka_unit_test(test_result_lines_reported_with_measurement),
        cmocka_unit_test(test_malformed_result_lines_are_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
