/* test_artifact_hashes.c: the running SHA-256 of uploads on the master
 * (master/artifact_hashes.c) against libsodium's one-shot hash of the same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "artifact_hashes.h"

#define SIZE 10000

static uint8_t s_data[SIZE];

static int setup(void **state)
{
    for (size_t i = 0; i < SIZE; i++)
        s_data[i] = (uint8_t)(i * 131 + 7);
    *state = rr_artifact_hashes_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    rr_artifact_hashes_t *hashes = *state;
    rr_artifact_hashes_destroy(&hashes);
    assert_null(hashes);
    return 0;
}

/* The one-shot SHA-256 of the first LEN bytes of s_data, as hex. */
static void expected_hex(size_t len, char hex[RR_SHA256_HEX])
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, s_data, len);
    rr_sha256_final_hex(&st, hex);
}

static void test_chunks_in_order_give_the_hash_of_the_whole(void **state)
{
    rr_artifact_hashes_t *h = *state;
    char got[RR_SHA256_HEX], want[RR_SHA256_HEX];
    for (size_t off = 0; off < SIZE; off += 4096) {
        size_t len = SIZE - off < 4096 ? SIZE - off : 4096;
        rr_artifact_hashes_feed(h, 7, "log.txt", off, s_data + off, len);
    }
    assert_int_equal(rr_artifact_hashes_take(h, 7, "log.txt", SIZE, got), 0);
    expected_hex(SIZE, want);
    assert_string_equal(got, want);
    /* taken is forgotten */
    assert_int_equal(rr_artifact_hashes_take(h, 7, "log.txt", SIZE, got), -1);
}

static void test_resent_overlapping_chunks_are_hashed_once(void **state)
{
    rr_artifact_hashes_t *h = *state;
    char got[RR_SHA256_HEX], want[RR_SHA256_HEX];
    rr_artifact_hashes_feed(h, 1, "a", 0, s_data, 4000);
    rr_artifact_hashes_feed(h, 1, "a", 0, s_data, 4000);           /* resent whole */
    rr_artifact_hashes_feed(h, 1, "a", 2000, s_data + 2000, 5000); /* overlaps 2000 */
    rr_artifact_hashes_feed(h, 1, "a", 7000, s_data + 7000, SIZE - 7000);
    assert_int_equal(rr_artifact_hashes_take(h, 1, "a", SIZE, got), 0);
    expected_hex(SIZE, want);
    assert_string_equal(got, want);
}

static void test_gap_or_resumed_upload_is_left_to_the_file(void **state)
{
    rr_artifact_hashes_t *h = *state;
    char got[RR_SHA256_HEX];
    rr_artifact_hashes_feed(h, 2, "gap", 0, s_data, 1000);
    rr_artifact_hashes_feed(h, 2, "gap", 2000, s_data + 2000, 1000);
    rr_artifact_hashes_feed(h, 2, "gap", 3000, s_data + 3000, SIZE - 3000);
    assert_int_equal(rr_artifact_hashes_take(h, 2, "gap", SIZE, got), -1);
    /* first bytes written by an earlier master process */
    rr_artifact_hashes_feed(h, 2, "resumed", 4096, s_data + 4096, SIZE - 4096);
    assert_int_equal(rr_artifact_hashes_take(h, 2, "resumed", SIZE, got), -1);
}

static void test_short_upload_or_forgotten_one_has_no_hash(void **state)
{
    rr_artifact_hashes_t *h = *state;
    char got[RR_SHA256_HEX], want[RR_SHA256_HEX];
    rr_artifact_hashes_feed(h, 3, "short", 0, s_data, 1000);
    assert_int_equal(rr_artifact_hashes_take(h, 3, "short", SIZE, got), -1);
    rr_artifact_hashes_feed(h, 3, "again", 0, s_data, SIZE);
    rr_artifact_hashes_forget(h, 3, "again");
    assert_int_equal(rr_artifact_hashes_take(h, 3, "again", SIZE, got), -1);
    /* same name, other job: separate uploads */
    rr_artifact_hashes_feed(h, 4, "x", 0, s_data, 10);
    rr_artifact_hashes_feed(h, 5, "x", 0, s_data, 20);
    assert_int_equal(rr_artifact_hashes_take(h, 4, "x", 10, got), 0);
    expected_hex(10, want);
    assert_string_equal(got, want);
    assert_int_equal(rr_artifact_hashes_take(h, 5, "x", 20, got), 0);
    expected_hex(20, want);
    assert_string_equal(got, want);
}

static void test_empty_artifact_hashes_to_the_empty_digest(void **state)
{
    rr_artifact_hashes_t *h = *state;
    char got[RR_SHA256_HEX];
    rr_artifact_hashes_feed(h, 9, "empty", 0, NULL, 0);
    assert_int_equal(rr_artifact_hashes_take(h, 9, "empty", 0, got), 0);
    assert_string_equal(got, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_uploads_over_the_limit_are_left_to_the_file(void **state)
{
    rr_artifact_hashes_t *h = *state;
    char got[RR_SHA256_HEX], name[32];
    for (unsigned i = 0; i <= RR_ARTIFACT_HASHES_MAX; i++) {
        snprintf(name, sizeof name, "f%u", i);
        rr_artifact_hashes_feed(h, 10, name, 0, s_data, 16);
    }
    assert_int_equal(rr_artifact_hashes_take(h, 10, "f0", 16, got), 0);
    snprintf(name, sizeof name, "f%u", RR_ARTIFACT_HASHES_MAX);
    assert_int_equal(rr_artifact_hashes_take(h, 10, name, 16, got), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chunks_in_order_give_the_hash_of_the_whole, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resent_overlapping_chunks_are_hashed_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gap_or_resumed_upload_is_left_to_the_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_short_upload_or_forgotten_one_has_no_hash, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_artifact_hashes_to_the_empty_digest, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_uploads_over_the_limit_are_left_to_the_file, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
