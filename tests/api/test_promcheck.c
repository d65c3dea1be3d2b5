/* test_promcheck.c: the /metrics checker itself must catch what it claims
 * to, or test_http_api's metrics test could not fail. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "promcheck.h"

#define HIST "# HELP h Ages.\n# TYPE h histogram\n"

static void expect_bad(const char *text, const char *what)
{
    char err[256];
    assert_int_equal(promcheck(text, err, sizeof err), -1);
    if (!strstr(err, what))
        fail_msg("error '%s' does not mention '%s'", err, what);
}

static void test_valid_page_passes(void **state)
{
    const char *text =
        "# HELP up_total Things.\n# TYPE up_total counter\nup_total 3\n"
        "# TYPE g gauge\ng{state=\"a\",x=\"q\\\"\\\\\\n\"} 1.5\ng{state=\"b\"} -2 1700000000000\n"
        HIST "h_bucket{le=\"0.5\"} 0\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\n"
        "h_sum 4.5\nh_count 3\n";
    char err[256];
    if (promcheck(text, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_true(promcheck_value(text, "g{state=\"b\"}") == -2);
    assert_true(promcheck_value(text, "h_count") == 3);
    assert_true(promcheck_value(text, "missing") == -1);
}

static void test_sample_before_type_fails(void **state)
{
    expect_bad("g 1\n# TYPE g gauge\n", "before");
}

static void test_family_split_in_two_fails(void **state)
{
    expect_bad("# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"y\"} 2\n", "not together");
}

static void test_duplicate_series_fails(void **state)
{
    expect_bad("# TYPE a gauge\na{s=\"x\"} 1\na{s=\"x\"} 2\n", "duplicate");
}

static void test_second_type_line_fails(void **state)
{
    expect_bad("# TYPE a gauge\n# TYPE a counter\n", "second TYPE");
}

static void test_bad_grammar_fails(void **state)
{
    expect_bad("# TYPE a gauge\na{s=\"x} 1\n", "label");
    expect_bad("# TYPE a gauge\na{s=\"\\t\"} 1\n", "escape");
    expect_bad("# TYPE a gauge\na 1x\n", "value");
    expect_bad("# TYPE a gauge\n9a 1\n", "name");
    expect_bad("# TYPE a gauge\na 1", "newline");
    expect_bad("# TYPE a thing\n", "unknown TYPE");
}

static void test_counter_rules_fail(void **state)
{
    expect_bad("# TYPE c counter\nc 1\n", "_total");
    expect_bad("# TYPE c_total counter\nc_total -1\n", "negative");
}

static void test_histogram_not_cumulative_fails(void **state)
{
    expect_bad(HIST "h_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
               "h_sum 1\nh_count 2\n", "cumulative");
}

static void test_histogram_without_inf_fails(void **state)
{
    expect_bad(HIST "h_bucket{le=\"1\"} 2\nh_sum 1\nh_count 2\n", "+Inf");
}

static void test_histogram_count_mismatch_fails(void **state)
{
    expect_bad(HIST "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", "_count");
}

static void test_histogram_le_out_of_order_fails(void **state)
{
    expect_bad(HIST "h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n"
               "h_sum 1\nh_count 1\n", "not above");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_page_passes),
        cmocka_unit_test(test_sample_before_type_fails),
        cmocka_unit_test(test_family_split_in_two_fails),
        cmocka_unit_test(test_duplicate_series_fails),
        cmocka_unit_test(test_second_type_line_fails),
        cmocka_unit_test(test_bad_grammar_fails),
        cmocka_unit_test(test_counter_rules_fail),
        cmocka_unit_test(test_histogram_not_cumulative_fails),
        cmocka_unit_test(test_histogram_without_inf_fails),
        cmocka_unit_test(test_histogram_count_mismatch_fails),
        cmocka_unit_test(test_histogram_le_out_of_order_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
