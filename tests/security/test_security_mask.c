/* test_security_mask.c: secrets never reach a job's stream in clear.
 *
 * The masker (worker/mask.h) over a chunked console: a secret split across
 * reads at any position, overlapping secrets, what is held back and when it
 * is released; the string masking log-equality checks use; and named job
 * secrets (worker/secrets.h) read only from 0600 files beneath the secrets
 * directory, their errors naming the secret but never its value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mask.h"
#include "secrets.h"
#include "tmpdir.h"

/* ---- a sink collecting what the masker lets through ---- */

typedef struct {
    char text[4096];
    size_t len;
    int calls;
} collected_t;

static void collect(void *arg, const char *data, size_t len)
{
    collected_t *c = arg;
    assert_true(c->len + len < sizeof c->text);
    memcpy(c->text + c->len, data, len);
    c->len += len;
    c->text[c->len] = '\0';
    c->calls++;
}

/* Feed TEXT split at the byte offsets CUTS (ascending, COUNT of them), then flush. */
static void feed_split(rr_mask_t *mask, const char *text, const size_t *cuts, size_t count,
                       collected_t *out)
{
    size_t at = 0;
    for (size_t i = 0; i <= count; i++) {
        size_t end = i < count ? cuts[i] : strlen(text);
        rr_mask_feed(mask, text + at, end - at, collect, out);
        at = end;
    }
    rr_mask_flush(mask, collect, out);
}

static rr_mask_t *mask_of(const char *a, const char *b)
{
    rr_mask_t *mask = rr_mask_new();
    assert_non_null(mask);
    assert_int_equal(rr_mask_add(mask, a), 0);
    if (b)
        assert_int_equal(rr_mask_add(mask, b), 0);
    return mask;
}

static void test_a_secret_split_across_two_reads_is_masked(void **state)
{
    rr_mask_t *mask = mask_of("hunter2", NULL);
    collected_t out = { 0 };
    size_t cut[] = { 9 };
    feed_split(mask, "password hunter2 accepted\n", cut, 1, &out);
    assert_string_equal(out.text, "password " RR_MASK_TEXT " accepted\n");
    rr_mask_destroy(&mask);
    assert_null(mask);
}

static void test_a_secret_is_masked_wherever_the_stream_is_cut(void **state)
{
    const char *text = "pw=s3cr3t-Pa55 twice:s3cr3t-Pa55";
    const char *expected = "pw=" RR_MASK_TEXT " twice:" RR_MASK_TEXT;
    for (size_t a = 0; a <= strlen(text); a++)
        for (size_t b = a; b <= strlen(text); b++) {
            rr_mask_t *mask = mask_of("s3cr3t-Pa55", NULL);
            collected_t out = { 0 };
            size_t cuts[] = { a, b };
            feed_split(mask, text, cuts, 2, &out);
            if (strcmp(out.text, expected) != 0)
                fail_msg("cut at %zu,%zu: got '%s'", a, b, out.text);
            rr_mask_destroy(&mask);
        }
}

static void test_a_byte_by_byte_console_never_shows_the_secret(void **state)
{
    rr_mask_t *mask = mask_of("hunter2", NULL);
    const char *text = "$ echo hunter2\r\nhunter2\r\n# ";
    collected_t out = { 0 };
    for (size_t i = 0; i < strlen(text); i++) {
        rr_mask_feed(mask, text + i, 1, collect, &out);
        assert_null(strstr(out.text, "hunter2"));
    }
    rr_mask_flush(mask, collect, &out);
    assert_string_equal(out.text, "$ echo " RR_MASK_TEXT "\r\n" RR_MASK_TEXT "\r\n# ");
    rr_mask_destroy(&mask);
}

static void test_only_a_possible_start_of_a_secret_is_held_back(void **state)
{
    rr_mask_t *mask = mask_of("hunter2", NULL);
    collected_t out = { 0 };
    rr_mask_feed(mask, "login ok\n", 9, collect, &out);
    assert_string_equal(out.text, "login ok\n");            /* nothing held: no 'h' at the end */
    rr_mask_feed(mask, "who: hun", 8, collect, &out);
    assert_string_equal(out.text, "login ok\nwho: ");       /* "hun" may become the secret */
    rr_mask_feed(mask, "dred\n", 5, collect, &out);
    assert_string_equal(out.text, "login ok\nwho: hundred\n");
    rr_mask_feed(mask, "hunt", 4, collect, &out);
    rr_mask_flush(mask, collect, &out);                     /* end of stream: it was none */
    assert_string_equal(out.text, "login ok\nwho: hundred\nhunt");
    rr_mask_destroy(&mask);
}

static void test_the_longer_of_two_overlapping_secrets_is_masked_whole(void **state)
{
    rr_mask_t *mask = mask_of("abc", "abcdef");
    collected_t out = { 0 };
    size_t cut[] = { 4 };                                   /* "xabc" | "defy abc" */
    feed_split(mask, "xabcdefy abc", cut, 1, &out);
    assert_string_equal(out.text, "x" RR_MASK_TEXT "y " RR_MASK_TEXT);
    assert_null(strstr(out.text, "def"));
    rr_mask_destroy(&mask);
}

static void test_without_secrets_bytes_pass_unchanged(void **state)
{
    rr_mask_t *mask = rr_mask_new();
    assert_non_null(mask);
    assert_int_equal(rr_mask_add(mask, ""), 0);             /* an empty secret masks nothing */
    assert_int_equal(rr_mask_count(mask), 0);
    collected_t out = { 0 };
    rr_mask_feed(mask, "a\0b", 3, collect, &out);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.text, "a\0b", 3);
    rr_mask_destroy(&mask);
}

static void test_a_missing_masker_lets_nothing_through(void **state)
{
    collected_t out = { 0 };
    rr_mask_feed(NULL, "hunter2", 7, collect, &out);
    rr_mask_flush(NULL, collect, &out);
    assert_int_equal(out.calls, 0);
}

/* Log equality: compare a stream with what the node printed, both masked. */
static void test_log_equality_applies_the_same_mask_to_the_expected_text(void **state)
{
    rr_mask_t *mask = mask_of("hunter2", "t0ken");
    const char *printed = "user admin password hunter2 token t0ken\n";
    collected_t out = { 0 };
    size_t cuts[] = { 3, 25, 37 };
    feed_split(mask, printed, cuts, 3, &out);
    char *expected = NULL;
    assert_int_equal(rr_mask_string(mask, printed, &expected), 1);
    assert_string_equal(out.text, expected);
    assert_string_equal(expected, "user admin password " RR_MASK_TEXT " token " RR_MASK_TEXT
                        "\n");
    free(expected);
    assert_int_equal(rr_mask_string(mask, "nothing secret here", &expected), 0);
    assert_null(expected);
    assert_int_equal(rr_mask_string(mask, NULL, &expected), 0);
    rr_mask_destroy(&mask);
}

/* ---- named secrets ---- */

typedef struct {
    char *dir;
    char path[512];
} secrets_fixture_t;

static int secrets_setup(void **state)
{
    secrets_fixture_t *f = calloc(1, sizeof *f);
    if (!f || !(f->dir = tmpdir_new("rr-secrets")))
        return -1;
    chmod(f->dir, 0700);
    snprintf(f->path, sizeof f->path, "%s/token", f->dir);
    if (tmpdir_write(f->path, "Tok-3n-value\n", 13) != 0 || chmod(f->path, 0600) != 0)
        return -1;
    *state = f;
    return 0;
}

static int secrets_teardown(void **state)
{
    secrets_fixture_t *f = *state;
    tmpdir_remove(&f->dir);
    free(f);
    return 0;
}

static void test_a_secret_reference_is_filled_in_and_masked(void **state)
{
    secrets_fixture_t *f = *state;
    rr_mask_t *mask = rr_mask_new();
    char *out = NULL, err[256] = "";
    assert_int_equal(rr_secrets_expand(f->dir, "login {{secret:token}} && echo ok", mask, &out,
                                       err, sizeof err), 0);
    assert_string_equal(out, "login Tok-3n-value && echo ok");   /* trailing newline dropped */
    assert_int_equal(rr_mask_count(mask), 1);
    char *masked = NULL;
    assert_int_equal(rr_mask_string(mask, out, &masked), 1);
    assert_string_equal(masked, "login " RR_MASK_TEXT " && echo ok");
    free(masked);
    free(out);
    rr_mask_destroy(&mask);
}

static void expect_refused(secrets_fixture_t *f, const char *dir, const char *text,
                           const char *why)
{
    char *out = NULL, err[512] = "";
    assert_int_equal(rr_secrets_expand(dir, text, NULL, &out, err, sizeof err), -1);
    assert_null(out);
    if (!strstr(err, why))
        fail_msg("error '%s' does not say '%s'", err, why);
    assert_null(strstr(err, "Tok-3n-value"));
}

static void test_a_secret_file_readable_by_others_is_refused(void **state)
{
    secrets_fixture_t *f = *state;
    assert_int_equal(chmod(f->path, 0644), 0);
    expect_refused(f, f->dir, "{{secret:token}}", "chmod 600");
}

static void test_a_secret_that_is_a_symlink_is_refused(void **state)
{
    secrets_fixture_t *f = *state;
    char link[600];
    snprintf(link, sizeof link, "%s/passwd", f->dir);
    assert_int_equal(symlink("/etc/passwd", link), 0);
    expect_refused(f, f->dir, "cat {{secret:passwd}}", "a symbolic link");
}

static void test_unknown_and_malformed_secrets_are_named(void **state)
{
    secrets_fixture_t *f = *state;
    expect_refused(f, f->dir, "echo {{secret:other}}", "secret 'other': not configured");
    expect_refused(f, f->dir, "echo {{secret:../token}}", "not a valid secret name");
    expect_refused(f, NULL, "echo {{secret:token}}", "no secrets_dir configured");
}

#define S(name) cmocka_unit_test_setup_teardown(name, secrets_setup, secrets_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_secret_split_across_two_reads_is_masked),
        cmocka_unit_test(test_a_secret_is_masked_wherever_the_stream_is_cut),
        cmocka_unit_test(test_a_byte_by_byte_console_never_shows_the_secret),
        cmocka_unit_test(test_only_a_possible_start_of_a_secret_is_held_back),
        cmocka_unit_test(test_the_longer_of_two_overlapping_secrets_is_masked_whole),
        cmocka_unit_test(test_without_secrets_bytes_pass_unchanged),
        cmocka_unit_test(test_a_missing_masker_lets_nothing_through),
        cmocka_unit_test(test_log_equality_applies_the_same_mask_to_the_expected_text),
        S(test_a_secret_reference_is_filled_in_and_masked),
        S(test_a_secret_file_readable_by_others_is_refused),
        S(test_a_secret_that_is_a_symlink_is_refused),
        S(test_unknown_and_malformed_secrets_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
