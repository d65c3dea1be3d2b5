/* test_log.c: line format (UTC, milliseconds, ident, level), level filter,
 * escaping of control characters, whole lines under concurrent logging. */
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

#define LINE_RE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "

/* stderr captured into a temporary file while a test logs. */
typedef struct {
    FILE *file;
    int saved_stderr;
} capture_t;

static void capture_start(capture_t *c)
{
    c->file = tmpfile();
    assert_non_null(c->file);
    c->saved_stderr = dup(STDERR_FILENO);
    assert_true(c->saved_stderr >= 0);
    assert_true(dup2(fileno(c->file), STDERR_FILENO) >= 0);
}

/* Stop capturing; returns what was written (caller frees). */
static char *capture_stop(capture_t *c)
{
    dup2(c->saved_stderr, STDERR_FILENO);
    close(c->saved_stderr);
    struct stat st;
    assert_int_equal(fstat(fileno(c->file), &st), 0);
    char *text = calloc(1, (size_t)st.st_size + 1);
    assert_non_null(text);
    assert_int_equal(pread(fileno(c->file), text, (size_t)st.st_size, 0), st.st_size);
    fclose(c->file);
    return text;
}

static bool matches(const char *pattern, const char *text)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB | REG_NEWLINE), 0);
    bool ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static void test_line_has_utc_ms_timestamp_ident_and_level(void **state)
{
    capture_t c;
    rr_log_init("testident", RR_LOG_INFO);
    capture_start(&c);
    time_t before = time(NULL);
    rr_info("job %d: started on %s", 42, "calxeda02-01");
    char *out = capture_stop(&c);
    assert_true(matches(LINE_RE "testident INFO job 42: started on calxeda02-01\n$", out));

    struct tm tm = { 0 };
    assert_non_null(strptime(out, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t stamped = timegm(&tm);      /* the stamp is UTC: it must be now, read as UTC */
    assert_in_range(stamped, before - 1, before + 2);
    free(out);
}

static void test_level_filter_drops_more_verbose_lines(void **state)
{
    capture_t c;
    rr_log_init("filt", RR_LOG_WARN);
    capture_start(&c);
    rr_debug("debug line");
    rr_info("info line");
    rr_warn("warn line");
    rr_error("error line");
    char *out = capture_stop(&c);
    assert_null(strstr(out, "debug line"));
    assert_null(strstr(out, "info line"));
    assert_true(matches(LINE_RE "filt WARN warn line$", out));
    assert_true(matches(LINE_RE "filt ERROR error line$", out));
    free(out);

    rr_log_init("filt", RR_LOG_DEBUG);
    capture_start(&c);
    rr_debug("now shown");
    out = capture_stop(&c);
    assert_true(matches(LINE_RE "filt DEBUG now shown$", out));
    free(out);
}

static void test_control_characters_cannot_forge_lines(void **state)
{
    capture_t c;
    rr_log_init("esc", RR_LOG_INFO);
    capture_start(&c);
    rr_info("console: a\nFAKE ERROR b\r\x1b[2J");
    char *out = capture_stop(&c);
    assert_true(matches(LINE_RE "esc INFO console: a\\\\nFAKE ERROR b\\\\r\\\\x1b\\[2J\n$", out));
    free(out);
}

static void test_level_parse_accepts_the_four_names(void **state)
{
    rr_log_level_t level = RR_LOG_INFO;
    assert_int_equal(rr_log_level_parse("error", &level), 0);
    assert_int_equal(level, RR_LOG_ERROR);
    assert_int_equal(rr_log_level_parse("warn", &level), 0);
    assert_int_equal(level, RR_LOG_WARN);
    assert_int_equal(rr_log_level_parse("debug", &level), 0);
    assert_int_equal(level, RR_LOG_DEBUG);
    assert_int_equal(rr_log_level_parse("INFO", &level), 0);
    assert_int_equal(level, RR_LOG_INFO);
    assert_int_equal(rr_log_level_parse("verbose", &level), -1);
    assert_int_equal(rr_log_level_parse("", &level), -1);
    assert_int_equal(rr_log_level_parse("info ", &level), -1);
    assert_int_equal(rr_log_level_parse(NULL, &level), -1);
    assert_int_equal(level, RR_LOG_INFO);
}

#define THREADS 8
#define LINES_PER_THREAD 300

static void *log_many(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < LINES_PER_THREAD; i++)
        rr_info("thread %d line %d %s", id, i,
                "padding padding padding padding padding padding padding padding padding");
    return NULL;
}

static void test_concurrent_lines_never_interleave(void **state)
{
    capture_t c;
    pthread_t threads[THREADS];
    rr_log_init("mt", RR_LOG_INFO);
    capture_start(&c);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, log_many, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    char *out = capture_stop(&c);

    regex_t re;
    assert_int_equal(regcomp(&re, LINE_RE "mt INFO thread [0-9]+ line [0-9]+ (padding ?){9}$",
                             REG_EXTENDED | REG_NOSUB), 0);
    int lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (regexec(&re, line, 0, NULL, 0) != 0)
            fail_msg("mangled line: %s", line);
        lines++;
    }
    regfree(&re);
    assert_int_equal(lines, THREADS * LINES_PER_THREAD);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_has_utc_ms_timestamp_ident_and_level),
        cmocka_unit_test(test_level_filter_drops_more_verbose_lines),
        cmocka_unit_test(test_control_characters_cannot_forge_lines),
        cmocka_unit_test(test_level_parse_accepts_the_four_names),
        cmocka_unit_test(test_concurrent_lines_never_interleave),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
