/* test_expect.c: finding needles in console output that arrives in pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "expect.h"

static int feed(rr_expect_t *e, const char *text)
{
    return rr_expect_feed(e, text, strlen(text));
}

static void test_needle_split_across_feeds_is_found(void **state)
{
    const char *needles[] = { "hello-42" };
    rr_expect_t *e = rr_expect_new(1024);
    assert_non_null(e);
    assert_int_equal(rr_expect_arm(e, needles, 1), -1);
    assert_int_equal(feed(e, "echo hel"), -1);
    assert_int_equal(feed(e, "lo-$((6*7))\r\nhel"), -1);
    assert_int_equal(feed(e, "lo-4"), -1);
    assert_int_equal(feed(e, "2\r\n"), 0);
    rr_expect_destroy(&e);
    assert_null(e);
}

static void test_needle_fed_one_byte_at_a_time_is_found_at_its_last_byte(void **state)
{
    const char *needles[] = { "login: " };
    const char *text = "Debian GNU/Linux\r\nhost login: ";
    rr_expect_t *e = rr_expect_new(1024);
    assert_int_equal(rr_expect_arm(e, needles, 1), -1);
    size_t n = strlen(text);
    for (size_t i = 0; i + 1 < n; i++)
        assert_int_equal(rr_expect_feed(e, text + i, 1), -1);
    assert_int_equal(rr_expect_feed(e, text + n - 1, 1), 0);
    rr_expect_destroy(&e);
}

static void test_needle_ending_first_wins_whatever_its_index(void **state)
{
    const char *needles[] = { "login: ", "# ", "Kernel panic" };
    rr_expect_t *e = rr_expect_new(1024);
    assert_int_equal(rr_expect_arm(e, needles, 3), -1);
    assert_int_equal(feed(e, "boot\r\nKernel pa"), -1);
    assert_int_equal(feed(e, "nic - not syncing\r\nlogin: # "), 2);
    rr_expect_destroy(&e);
}

static void test_output_after_a_match_is_kept_for_the_next_expect(void **state)
{
    const char *output[] = { "hello-42" };
    const char *prompt[] = { "# " };
    rr_expect_t *e = rr_expect_new(1024);
    assert_int_equal(rr_expect_arm(e, output, 1), -1);
    assert_int_equal(feed(e, "hello-42\r\n# "), 0);
    assert_int_equal(rr_expect_pending(e), strlen("\r\n# "));
    assert_int_equal(rr_expect_arm(e, prompt, 1), 0);
    assert_int_equal(rr_expect_pending(e), 0);
    rr_expect_destroy(&e);
}

static void test_output_fed_while_disarmed_is_searched_on_arm(void **state)
{
    const char *prompt[] = { "# " };
    rr_expect_t *e = rr_expect_new(1024);
    assert_int_equal(feed(e, "echo hi\r\nhi\r\n"), -1);
    assert_int_equal(feed(e, "# "), -1);
    assert_int_equal(rr_expect_arm(e, prompt, 1), 0);
    rr_expect_destroy(&e);
}

static void test_consumed_output_does_not_match_again(void **state)
{
    const char *prompt[] = { "# " };
    rr_expect_t *e = rr_expect_new(1024);
    assert_int_equal(feed(e, "# "), -1);
    assert_int_equal(rr_expect_arm(e, prompt, 1), 0);
    assert_int_equal(rr_expect_arm(e, prompt, 1), -1);
    assert_int_equal(feed(e, "ls\r\n"), -1);
    assert_int_equal(feed(e, "# "), 0);
    rr_expect_destroy(&e);
}

static void test_disarmed_buffer_only_keeps_output(void **state)
{
    const char *prompt[] = { "# " };
    rr_expect_t *e = rr_expect_new(1024);
    assert_int_equal(rr_expect_arm(e, prompt, 1), -1);
    rr_expect_disarm(e);
    assert_int_equal(feed(e, "# "), -1);
    assert_int_equal(rr_expect_pending(e), 2);
    rr_expect_destroy(&e);
}

static void test_full_buffer_drops_oldest_but_finds_a_straddling_needle(void **state)
{
    const char *needles[] = { "abcde" };
    char noise[100];
    memset(noise, 'x', sizeof noise);
    rr_expect_t *e = rr_expect_new(16);
    assert_int_equal(rr_expect_arm(e, needles, 1), -1);
    assert_int_equal(rr_expect_feed(e, noise, sizeof noise), -1);
    assert_true(rr_expect_pending(e) <= 16);
    assert_int_equal(feed(e, "xxxxxxxxxxxxxab"), -1);
    assert_int_equal(feed(e, "cde"), 0);
    rr_expect_destroy(&e);
}

static void test_empty_needle_never_matches(void **state)
{
    const char *needles[] = { "", "ok" };
    rr_expect_t *e = rr_expect_new(64);
    assert_int_equal(rr_expect_arm(e, needles, 2), -1);
    assert_int_equal(feed(e, "xyz"), -1);
    assert_int_equal(feed(e, "ok"), 1);
    rr_expect_destroy(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_needle_split_across_feeds_is_found),
        cmocka_unit_test(test_needle_fed_one_byte_at_a_time_is_found_at_its_last_byte),
        cmocka_unit_test(test_needle_ending_first_wins_whatever_its_index),
        cmocka_unit_test(test_output_after_a_match_is_kept_for_the_next_expect),
        cmocka_unit_test(test_output_fed_while_disarmed_is_searched_on_arm),
        cmocka_unit_test(test_consumed_output_does_not_match_again),
        cmocka_unit_test(test_disarmed_buffer_only_keeps_output),
        cmocka_unit_test(test_full_buffer_drops_oldest_but_finds_a_straddling_needle),
        cmocka_unit_test(test_empty_needle_never_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
