/* test_verify.c: the loss/duplicate checker catches what it must (it judges
 * every chaos test, so it is tested on hand-made streams first). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "verify.h"

static const char CAPTURE[] = "U-Boot n01\r\n# echo a\r\nline 1\r\nline 2\r\nline 3\r\n# ";

static proto_job_event_t log_ev(uint64_t seq, const char *text)
{
    return (proto_job_event_t){ .job = 7, .seq = seq, .kind = "log",
                                .data = (uint8_t *)text, .data_len = strlen(text) };
}

static proto_job_event_t end_ev(uint64_t seq)
{
    return (proto_job_event_t){ .job = 7, .seq = seq, .kind = "end", .value = "complete" };
}

static void run(const proto_job_event_t *ev, size_t n, verdict_t *v)
{
    size_t cursor = 0;
    verify_job(7, ev, n, CAPTURE, strlen(CAPTURE), &cursor, NULL, v);
}

static void test_verify_accepts_an_exact_stream(void **state)
{
    (void)state;
    proto_job_event_t ev[] = { log_ev(1, "U-Boot n01\r\n# echo a\r\n"), log_ev(2, "line 1\r\n"),
                               log_ev(3, "line 2\r\nline 3\r\n"), end_ev(4) };
    verdict_t v;
    run(ev, 4, &v);
    assert_string_equal(v.problem, "");
    assert_int_equal(v.lost_events + v.duplicated + v.lost_bytes, 0);
    assert_true(v.ended);
}

static void test_verify_counts_a_repeated_chunk_as_duplicate(void **state)
{
    (void)state;
    proto_job_event_t ev[] = { log_ev(1, "line 1\r\n"), log_ev(2, "line 2\r\n"),
                               log_ev(3, "line 2\r\n"), end_ev(4) };
    verdict_t v;
    run(ev, 4, &v);
    assert_int_equal(v.duplicated, 1);
    assert_string_not_equal(v.problem, "");
}

static void test_verify_counts_a_hole_outside_a_gap_as_lost(void **state)
{
    (void)state;
    proto_job_event_t ev[] = { log_ev(1, "line 1\r\n"), log_ev(2, "line 3\r\n"), end_ev(3) };
    verdict_t v;
    run(ev, 3, &v);
    assert_int_equal(v.lost_bytes, strlen("line 2\r\n"));
    assert_int_equal(v.lost_events, 1);
}

static void test_verify_accepts_a_hole_inside_a_console_gap(void **state)
{
    (void)state;
    proto_job_event_t gap = { .job = 7, .seq = 2, .kind = "console_gap", .since = 1, .ts = 2,
                              .reason = "sol lost" };
    proto_job_event_t ev[] = { log_ev(1, "line 1\r\n"), gap, log_ev(3, "line 3\r\n"), end_ev(4) };
    verdict_t v;
    run(ev, 4, &v);
    assert_int_equal(v.lost_bytes + v.lost_events + v.duplicated, 0);
    assert_int_equal(v.gaps, 1);
}

static void test_verify_counts_seq_holes_and_repeats(void **state)
{
    (void)state;
    proto_job_event_t ev[] = { log_ev(1, "line 1\r\n"), log_ev(3, "line 2\r\n"),
                               log_ev(3, "line 3\r\n"), end_ev(4) };
    verdict_t v;
    run(ev, 4, &v);
    assert_int_equal(v.lost_events, 1);     /* seq 2 */
    assert_int_equal(v.duplicated, 1);      /* seq 3 twice */
}

static void test_verify_counts_bytes_never_printed_as_lost(void **state)
{
    (void)state;
    proto_job_event_t ev[] = { log_ev(1, "line 9\r\n"), end_ev(2) };
    verdict_t v;
    run(ev, 2, &v);
    assert_int_equal(v.lost_events, 1);
}

static void test_verify_requires_each_expected_result_once(void **state)
{
    (void)state;
    proto_job_event_t r = { .job = 7, .seq = 1, .kind = "result", .name = "count",
                            .value = "pass" };
    proto_job_event_t ev[] = { r, r, end_ev(3) };
    ev[1].seq = 2;
    static const char *const expect[] = { "count", "probe", NULL };
    verdict_t v;
    size_t cursor = 0;
    verify_job(7, ev, 3, CAPTURE, strlen(CAPTURE), &cursor, expect, &v);
    assert_int_equal(v.duplicated, 1);      /* count twice */
    assert_int_equal(v.lost_events, 1);     /* probe missing */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_accepts_an_exact_stream),
        cmocka_unit_test(test_verify_counts_a_repeated_chunk_as_duplicate),
        cmocka_unit_test(test_verify_counts_a_hole_outside_a_gap_as_lost),
        cmocka_unit_test(test_verify_accepts_a_hole_inside_a_console_gap),
        cmocka_unit_test(test_verify_counts_seq_holes_and_repeats),
        cmocka_unit_test(test_verify_counts_bytes_never_printed_as_lost),
        cmocka_unit_test(test_verify_requires_each_expected_result_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
