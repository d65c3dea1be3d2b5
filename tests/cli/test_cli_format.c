/* test_cli_format.c: how the CLI shows times, ages, event lines, tables and
 * JSON, and how a job stream is shown and summarised. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format.h"
#include "json.h"
#include "jobstream.h"
#include "units.h"

#define T0 1795608003120ull /* 2026-11-25 12:00:03.120 UTC */

static void test_age_under_a_minute_has_one_decimal(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(rr_fmt_age(400, buf, sizeof buf), "0.4s");
    assert_string_equal(rr_fmt_age(0, buf, sizeof buf), "0.0s");
    assert_string_equal(rr_fmt_age(12345, buf, sizeof buf), "12.3s");
    assert_string_equal(rr_fmt_age(59999, buf, sizeof buf), "59.9s");
}

static void test_age_over_a_minute_uses_the_common_duration_format(void **state)
{
    (void)state;
    char buf[32], want[32];
    rr_duration_format(330000, want, sizeof want);
    assert_string_equal(rr_fmt_age(330000, buf, sizeof buf), want);
    assert_null(strchr(buf, '.'));
}

static void test_clock_and_datetime_are_local_time(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(rr_fmt_clock(T0, buf, sizeof buf), "12:00:03.120");
    assert_string_equal(rr_fmt_datetime(T0, buf, sizeof buf), "2026-11-25 12:00:03");
    assert_string_equal(rr_fmt_datetime(0, buf, sizeof buf), "-");
}

static void test_sanitize_replaces_control_characters(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(rr_fmt_sanitize("a\x1b[31mb\n", buf, sizeof buf), "a?[31mb?");
    assert_string_equal(rr_fmt_sanitize(NULL, buf, sizeof buf), "-");
}

static void test_event_lines_read_like_the_job(void **state)
{
    (void)state;
    char buf[256];
    proto_job_event_t start = { .seq = 1, .ts = T0, .kind = "action", .name = "boot", .value = "start" };
    assert_string_equal(rr_fmt_event(&start, buf, sizeof buf), "[12:00:03.120] action boot start");
    proto_job_event_t fail = { .seq = 2, .ts = T0, .kind = "action", .name = "boot", .value = "fail",
                               .code = 300000, .reason = "no prompt" };
    assert_string_equal(rr_fmt_event(&fail, buf, sizeof buf), "[12:00:03.120] action boot fail (5m): no prompt");
    proto_job_event_t result = { .seq = 3, .ts = T0, .kind = "result", .name = "kernel-version",
                                 .value = "pass", .code = 0 };
    assert_string_equal(rr_fmt_event(&result, buf, sizeof buf),
                        "[12:00:03.120] result kernel-version pass (exit 0)");
    proto_job_event_t measured = { .seq = 4, .ts = T0, .kind = "result", .name = "boot-time",
                                   .value = "pass", .measurement = "6.2", .units = "s" };
    assert_string_equal(rr_fmt_event(&measured, buf, sizeof buf), "[12:00:03.120] result boot-time pass 6.2 s");
    proto_job_event_t gap = { .seq = 5, .ts = T0 + 3200, .since = T0, .kind = "console_gap", .reason = "bmc lost" };
    assert_string_equal(rr_fmt_event(&gap, buf, sizeof buf), "[console gap 3.2 s: bmc lost]");
    proto_job_event_t end = { .seq = 6, .ts = T0, .kind = "end", .value = "complete" };
    assert_string_equal(rr_fmt_event(&end, buf, sizeof buf), "[12:00:03.120] end complete");
}

static void test_log_events_are_not_lines(void **state)
{
    (void)state;
    char buf[64];
    proto_job_event_t log = { .seq = 1, .ts = T0, .kind = "log", .data = (uint8_t *)"x", .data_len = 1 };
    assert_null(rr_fmt_event(&log, buf, sizeof buf));
}

static void test_event_line_sanitizes_test_output(void **state)
{
    (void)state;
    char buf[256];
    proto_job_event_t evil = { .seq = 1, .ts = T0, .kind = "result", .name = "x\x1b]0;pwned\a", .value = "pass" };
    assert_string_equal(rr_fmt_event(&evil, buf, sizeof buf), "[12:00:03.120] result x?]0;pwned? pass (exit 0)");
}

/* Everything written to a memory stream by FN, as a malloc'd string. */
static char *capture_table(const rr_table_t *table)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    rr_table_print(table, out);
    fclose(out);
    return text;
}

static void test_table_pads_every_column_but_the_last(void **state)
{
    (void)state;
    const char *headers[] = { "NAME", "STATE", "REASON" };
    const char *row1[] = { "n01", "maintenance", "operator" };
    const char *row2[] = { "calxeda02-01", "idle", NULL };
    rr_table_t *table = rr_table_new(3, headers);
    assert_non_null(table);
    assert_int_equal(rr_table_add(table, row1), 0);
    assert_int_equal(rr_table_add(table, row2), 0);
    char *text = capture_table(table);
    assert_string_equal(text, "NAME          STATE        REASON\n"
                              "n01           maintenance  operator\n"
                              "calxeda02-01  idle         -\n");
    free(text);
    rr_table_destroy(&table);
    assert_null(table);
}

static void test_table_grows_past_its_first_allocation(void **state)
{
    (void)state;
    const char *headers[] = { "N" };
    rr_table_t *table = rr_table_new(1, headers);
    char cell[16];
    for (int i = 0; i < 100; i++) {
        snprintf(cell, sizeof cell, "%d", i);
        const char *row[] = { cell };
        assert_int_equal(rr_table_add(table, row), 0);
    }
    char *text = capture_table(table);
    assert_non_null(strstr(text, "\n99\n"));
    free(text);
    rr_table_destroy(&table);
}

static void test_json_job_has_nulls_for_what_is_not_there_yet(void **state)
{
    (void)state;
    proto_jobinfo_t job = { .id = 42, .name = "smoke", .state = "queued", .device_type = "highbank",
                            .priority = 50, .submitted = T0 };
    json_t *obj = proto_json_jobinfo(&job);
    assert_non_null(obj);
    assert_int_equal(json_integer_value(json_object_get(obj, "id")), 42);
    assert_string_equal(json_string_value(json_object_get(obj, "state")), "queued");
    assert_true(json_is_null(json_object_get(obj, "outcome")));
    assert_true(json_is_null(json_object_get(obj, "device")));
    assert_true(json_is_null(json_object_get(obj, "started_ms")));
    assert_int_equal(json_integer_value(json_object_get(obj, "submitted_ms")), (json_int_t)T0);
    assert_int_equal(json_object_size(obj), 12);
    json_decref(obj);
}

static void test_json_device_lists_tags_as_an_array(void **state)
{
    (void)state;
    char *tags[] = { "sata", "fast" };
    proto_deviceinfo_t dev = { .name = "n01", .worker = "rack01", .type = "highbank", .tags = tags,
                               .tags_count = 2, .state = "idle" };
    json_t *obj = proto_json_deviceinfo(&dev);
    json_t *array = json_object_get(obj, "tags");
    assert_int_equal(json_array_size(array), 2);
    assert_string_equal(json_string_value(json_array_get(array, 1)), "fast");
    assert_true(json_is_null(json_object_get(obj, "job")));
    json_decref(obj);
}

static void test_json_event_keeps_non_utf8_console_bytes_as_base64(void **state)
{
    (void)state;
    uint8_t bytes[] = { 'o', 'k', 0xff, 0xfe };
    proto_job_event_t ev = { .job = 1, .seq = 2, .ts = T0, .kind = "log", .data = bytes, .data_len = 4 };
    json_t *obj = proto_json_event(&ev);
    assert_non_null(obj);
    assert_null(json_object_get(obj, "data"));
    assert_string_equal(json_string_value(json_object_get(obj, "data_base64")), "b2v//g==");
    json_decref(obj);
    proto_job_event_t text = { .job = 1, .seq = 3, .ts = T0, .kind = "log", .data = (uint8_t *)"hi\n", .data_len = 3 };
    obj = proto_json_event(&text);
    assert_string_equal(json_string_value(json_object_get(obj, "data")), "hi\n");
    json_decref(obj);
}

static char *feed_all(rr_jobstream_t *stream, const proto_job_event_t *evs, size_t n, FILE *out, char **text)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rr_jobstream_feed(stream, &evs[i]), 0);
    fclose(out);
    return *text;
}

static void test_stream_drops_duplicates_and_starts_lines_fresh(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    rr_jobstream_t *stream = rr_jobstream_new(out, false);
    proto_job_event_t evs[] = {
        { .seq = 1, .ts = T0, .kind = "log", .data = (uint8_t *)"# ", .data_len = 2 },
        { .seq = 1, .ts = T0, .kind = "log", .data = (uint8_t *)"# ", .data_len = 2 },
        { .seq = 2, .ts = T0, .kind = "result", .name = "uname", .value = "fail", .code = 2 },
        { .seq = 3, .ts = T0, .kind = "end", .value = "incomplete", .reason = "test failed" },
    };
    feed_all(stream, evs, 4, out, &text);
    assert_string_equal(text, "# \n[12:00:03.120] result uname fail (exit 2)\n"
                              "[12:00:03.120] end incomplete: test failed\n");
    assert_int_equal(rr_jobstream_last_seq(stream), 3);
    assert_string_equal(rr_jobstream_outcome(stream), "incomplete");
    free(text);
    rr_jobstream_destroy(&stream);
}

static void test_stream_summary_lists_actions_and_results(void **state)
{
    (void)state;
    rr_jobstream_t *stream = rr_jobstream_new(NULL, false);
    proto_job_event_t evs[] = {
        { .seq = 1, .ts = T0, .kind = "action", .name = "deploy", .value = "start" },
        { .seq = 2, .ts = T0, .kind = "action", .name = "deploy", .value = "end", .code = 1200 },
        { .seq = 3, .ts = T0, .kind = "result", .name = "uname", .value = "pass" },
        { .seq = 4, .ts = T0, .kind = "end", .value = "complete" },
    };
    for (size_t i = 0; i < 4; i++)
        rr_jobstream_feed(stream, &evs[i]);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    rr_jobstream_print_summary(stream, 9, out);
    fclose(out);
    assert_string_equal(text, "job 9: complete\n"
                              "ACTION  RESULT  TOOK  REASON\n"
                              "deploy  end     1.2s\n"
                              "TEST   RESULT  DETAIL\n"
                              "uname  pass    exit 0\n");
    free(text);
    json_t *summary = rr_jobstream_summary_json(stream);
    assert_string_equal(json_string_value(json_object_get(summary, "outcome")), "complete");
    assert_int_equal(json_array_size(json_object_get(summary, "results")), 1);
    assert_int_equal(json_array_size(json_object_get(summary, "actions")), 1);
    json_decref(summary);
    rr_jobstream_destroy(&stream);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_age_under_a_minute_has_one_decimal),
        cmocka_unit_test(test_age_over_a_minute_uses_the_common_duration_format),
        cmocka_unit_test(test_clock_and_datetime_are_local_time),
        cmocka_unit_test(test_sanitize_replaces_control_characters),
        cmocka_unit_test(test_event_lines_read_like_the_job),
        cmocka_unit_test(test_log_events_are_not_lines),
        cmocka_unit_test(test_event_line_sanitizes_test_output),
        cmocka_unit_test(test_table_pads_every_column_but_the_last),
        cmocka_unit_test(test_table_grows_past_its_first_allocation),
        cmocka_unit_test(test_json_job_has_nulls_for_what_is_not_there_yet),
        cmocka_unit_test(test_json_device_lists_tags_as_an_array),
        cmocka_unit_test(test_json_event_keeps_non_utf8_console_bytes_as_base64),
        cmocka_unit_test(test_stream_drops_duplicates_and_starts_lines_fresh),
        cmocka_unit_test(test_stream_summary_lists_actions_and_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
