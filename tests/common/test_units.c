/* test_units.c: duration and size parsing, duration formatting, clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "units.h"

static uint64_t duration_ok(const char *text)
{
    uint64_t ms = 12345;
    char err[256] = "";
    int rc = rr_duration_parse(text, &ms, err, sizeof err);
    if (rc != 0)
        fail_msg("'%s' refused: %s", text, err);
    return ms;
}

/* Parse TEXT expecting a failure; returns the message (static buffer). */
static const char *duration_error(const char *text)
{
    static char err[256];
    uint64_t ms = 7;
    err[0] = '\0';
    assert_int_equal(rr_duration_parse(text, &ms, err, sizeof err), -1);
    assert_int_equal(ms, 7);
    return err;
}

static void test_bare_number_is_seconds(void **state)
{
    assert_int_equal(duration_ok("300"), 300000);
    assert_int_equal(duration_ok("0"), 0);
}

static void test_each_duration_unit(void **state)
{
    assert_int_equal(duration_ok("250ms"), 250);
    assert_int_equal(duration_ok("30s"), 30000);
    assert_int_equal(duration_ok("10m"), 600000);
    assert_int_equal(duration_ok("2h"), 7200000);
    assert_int_equal(duration_ok("1d"), 86400000);
}

static void test_compound_duration_largest_first(void **state)
{
    assert_int_equal(duration_ok("1h30m"), 5400000);
    assert_int_equal(duration_ok("5m30s"), 330000);
    assert_int_equal(duration_ok("1d02h"), 93600000);
    assert_int_equal(duration_ok("1s500ms"), 1500);
    assert_non_null(strstr(duration_error("30s1h"), "largest to smallest"));
    assert_non_null(strstr(duration_error("1m1m"), "largest to smallest"));
}

static void test_unknown_unit_is_named(void **state)
{
    assert_string_equal(duration_error("10x"), "'10x': unknown unit 'x' (use ms, s, m, h, d)");
    assert_non_null(strstr(duration_error("10S"), "unknown unit 'S'"));
    assert_non_null(strstr(duration_error("5sec"), "unknown unit 'sec'"));
    assert_non_null(strstr(duration_error("10 s"), "unknown unit ' s'"));
}

static void test_duration_rejects_negative_empty_garbage(void **state)
{
    assert_non_null(strstr(duration_error("-5s"), "'-5s'"));
    assert_non_null(strstr(duration_error("-5s"), "negative"));
    assert_non_null(strstr(duration_error(""), "empty"));
    assert_non_null(strstr(duration_error("abc"), "'abc': not a duration"));
    assert_non_null(strstr(duration_error("ms"), "not a duration"));
    assert_non_null(strstr(duration_error(" 5s"), "not a duration"));
    assert_non_null(strstr(duration_error("1h30"), "'1h30': the last number has no unit"));
    assert_non_null(strstr(duration_error("1.5s"), "whole numbers"));
}

static void test_duration_rejects_overflow(void **state)
{
    assert_non_null(strstr(duration_error("99999999999999999999"), "too large"));
    assert_non_null(strstr(duration_error("18446744073709552"), "too large"));   /* *1000 */
    assert_non_null(strstr(duration_error("213503982335d"), "too large"));
    assert_non_null(strstr(duration_error("18446744073709551615ms1ms"), "largest"));
    assert_int_equal(duration_ok("18446744073709551615ms"), UINT64_MAX);
}

static uint64_t size_ok(const char *text)
{
    uint64_t bytes = 1;
    char err[256] = "";
    if (rr_size_parse(text, &bytes, err, sizeof err) != 0)
        fail_msg("'%s' refused: %s", text, err);
    return bytes;
}

static const char *size_error(const char *text)
{
    static char err[256];
    uint64_t bytes = 9;
    assert_int_equal(rr_size_parse(text, &bytes, err, sizeof err), -1);
    assert_int_equal(bytes, 9);
    return err;
}

static void test_sizes_are_binary_multiples(void **state)
{
    assert_int_equal(size_ok("512"), 512);
    assert_int_equal(size_ok("512B"), 512);
    assert_int_equal(size_ok("4K"), 4096);
    assert_int_equal(size_ok("4k"), 4096);
    assert_int_equal(size_ok("4KB"), 4096);
    assert_int_equal(size_ok("4KiB"), 4096);
    assert_int_equal(size_ok("10M"), 10ull << 20);
    assert_int_equal(size_ok("2G"), 2ull << 30);
    assert_int_equal(size_ok("1TiB"), 1ull << 40);
}

static void test_size_rejects_bad_text(void **state)
{
    assert_string_equal(size_error("10X"),
                        "'10X': unknown unit 'X' (use K, M, G, T, optionally followed by B or iB)");
    assert_non_null(strstr(size_error("4Ki"), "unknown unit 'Ki'"));
    assert_non_null(strstr(size_error("-1K"), "negative"));
    assert_non_null(strstr(size_error(""), "empty"));
    assert_non_null(strstr(size_error("K"), "'K': not a size"));
    assert_non_null(strstr(size_error("16777216T"), "too large"));
    assert_non_null(strstr(size_error("99999999999999999999"), "too large"));
}

static void test_duration_format_reads_like_operators_write(void **state)
{
    char buf[32];
    assert_string_equal(rr_duration_format(0, buf, sizeof buf), "0ms");
    assert_string_equal(rr_duration_format(120, buf, sizeof buf), "120ms");
    assert_string_equal(rr_duration_format(4200, buf, sizeof buf), "4.2s");
    assert_string_equal(rr_duration_format(4050, buf, sizeof buf), "4s");
    assert_string_equal(rr_duration_format(30000, buf, sizeof buf), "30s");
    assert_string_equal(rr_duration_format(330000, buf, sizeof buf), "5m30s");
    assert_string_equal(rr_duration_format(300000, buf, sizeof buf), "5m");
    assert_string_equal(rr_duration_format(3720000, buf, sizeof buf), "1h02m");
    assert_string_equal(rr_duration_format(7200000, buf, sizeof buf), "2h");
    assert_string_equal(rr_duration_format(93600000, buf, sizeof buf), "1d02h");
    assert_string_equal(rr_duration_format(86400000, buf, sizeof buf), "1d");
}

static void test_formatted_durations_parse_back(void **state)
{
    const uint64_t values[] = { 5000, 330000, 300000, 3720000, 93600000, 86400000 };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char buf[32];
        assert_int_equal(duration_ok(rr_duration_format(values[i], buf, sizeof buf)), values[i]);
    }
}

static void test_clocks_agree_with_the_system(void **state)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wall = rr_wall_ms();
    uint64_t expected = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    assert_in_range(wall, expected, expected + 1000);

    uint64_t before = rr_mono_ms();
    struct timespec nap = { 0, 20 * 1000000 };
    nanosleep(&nap, NULL);
    uint64_t after = rr_mono_ms();
    assert_in_range(after - before, 20, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bare_number_is_seconds),
        cmocka_unit_test(test_each_duration_unit),
        cmocka_unit_test(test_compound_duration_largest_first),
        cmocka_unit_test(test_unknown_unit_is_named),
        cmocka_unit_test(test_duration_rejects_negative_empty_garbage),
        cmocka_unit_test(test_duration_rejects_overflow),
        cmocka_unit_test(test_sizes_are_binary_multiples),
        cmocka_unit_test(test_size_rejects_bad_text),
        cmocka_unit_test(test_duration_format_reads_like_operators_write),
        cmocka_unit_test(test_formatted_durations_parse_back),
        cmocka_unit_test(test_clocks_agree_with_the_system),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
