/* test_artifact_store.c: the artifacts table behind master/store.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store.h"
#include "store_fixture.h"

#define SHA_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SHA_B "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

static void expect_state(fixture_t *f, uint64_t job, const char *name, const char *state)
{
    proto_artinfo_t info;
    assert_int_equal(rr_store_artifact_get(f->store, job, name, &info), RR_STORE_OK);
    assert_string_equal(info.state, state);
    rr_store_artinfo_clear(&info);
}

static void test_new_artifact_is_uploading_then_complete_after_reopen(void **state)
{
    fixture_t *f = *state;
    uint64_t job = fixture_job(f, "highbank", 50, "", 1);
    assert_int_equal(rr_store_artifact_begin(f->store, job, "r.tgz", 1000, SHA_A, NULL, 5),
                     RR_STORE_OK);
    expect_state(f, job, "r.tgz", RR_ARTIFACT_UPLOADING);
    assert_int_equal(rr_store_artifact_complete(f->store, job, "r.tgz"), RR_STORE_OK);
    fixture_reopen(f);
    proto_artinfo_t info;
    assert_int_equal(rr_store_artifact_get(f->store, job, "r.tgz", &info), RR_STORE_OK);
    assert_string_equal(info.state, RR_ARTIFACT_COMPLETE);
    assert_int_equal(info.size, 1000);
    assert_string_equal(info.sha256, SHA_A);
    assert_null(info.reason);
    rr_store_artinfo_clear(&info);
}

static void test_artifact_of_unknown_job_is_not_found(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(rr_store_artifact_begin(f->store, 999, "x", 1, SHA_A, NULL, 5),
                     RR_STORE_E_NOTFOUND);
    proto_artinfo_t info;
    assert_int_equal(rr_store_artifact_get(f->store, 999, "x", &info), RR_STORE_E_NOTFOUND);
    assert_non_null(strstr(rr_store_error(f->store), "no artifact 'x'"));
}

static void test_failed_artifact_keeps_its_reason_and_leaves_the_quota(void **state)
{
    fixture_t *f = *state;
    uint64_t job = fixture_job(f, "highbank", 50, "", 1), bytes = 0;
    assert_int_equal(rr_store_artifact_begin(f->store, job, "a", 100, SHA_A, NULL, 5), 0);
    assert_int_equal(rr_store_artifact_begin(f->store, job, "b", 300, SHA_B, NULL, 5), 0);
    assert_int_equal(rr_store_artifact_begin(f->store, job, "c", 5000, SHA_B,
                                             "over the artifact_quota", 5), 0);
    expect_state(f, job, "c", RR_ARTIFACT_FAILED);
    assert_int_equal(rr_store_artifacts_bytes(f->store, job, NULL, &bytes), 0);
    assert_int_equal(bytes, 400);
    assert_int_equal(rr_store_artifacts_bytes(f->store, job, "b", &bytes), 0);
    assert_int_equal(bytes, 100);
    assert_int_equal(rr_store_artifact_fail(f->store, job, "a", "sha256 mismatch"), 0);
    assert_int_equal(rr_store_artifacts_bytes(f->store, job, NULL, &bytes), 0);
    assert_int_equal(bytes, 300);
}

static void test_begin_again_replaces_the_row_under_that_name(void **state)
{
    fixture_t *f = *state;
    uint64_t job = fixture_job(f, "highbank", 50, "", 1);
    assert_int_equal(rr_store_artifact_begin(f->store, job, "a", 100, SHA_A, NULL, 5), 0);
    assert_int_equal(rr_store_artifact_complete(f->store, job, "a"), 0);
    assert_int_equal(rr_store_artifact_begin(f->store, job, "a", 7, SHA_B, NULL, 6), 0);
    proto_artinfo_t *arts = NULL;
    size_t count = 0;
    assert_int_equal(rr_store_artifacts_list(f->store, job, &arts, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(arts[0].size, 7);
    assert_string_equal(arts[0].sha256, SHA_B);
    assert_string_equal(arts[0].state, RR_ARTIFACT_UPLOADING);
    rr_store_artinfos_free(&arts, count);
    assert_null(arts);
}

static void test_list_is_by_name_and_per_job(void **state)
{
    fixture_t *f = *state;
    uint64_t j1 = fixture_job(f, "highbank", 50, "", 1), j2 = fixture_job(f, "highbank", 50, "", 2);
    assert_int_equal(rr_store_artifact_begin(f->store, j1, "zeta", 1, SHA_A, NULL, 5), 0);
    assert_int_equal(rr_store_artifact_begin(f->store, j1, "alpha", 2, SHA_A, NULL, 5), 0);
    assert_int_equal(rr_store_artifact_begin(f->store, j2, "other", 3, SHA_A, NULL, 5), 0);
    proto_artinfo_t *arts = NULL;
    size_t count = 0;
    assert_int_equal(rr_store_artifacts_list(f->store, j1, &arts, &count), 0);
    assert_int_equal(count, 2);
    assert_string_equal(arts[0].name, "alpha");
    assert_string_equal(arts[1].name, "zeta");
    rr_store_artinfos_free(&arts, count);
    assert_int_equal(rr_store_artifact_complete(f->store, j2, "missing"), RR_STORE_E_NOTFOUND);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_new_artifact_is_uploading_then_complete_after_reopen),
        T(test_artifact_of_unknown_job_is_not_found),
        T(test_failed_artifact_keeps_its_reason_and_leaves_the_quota),
        T(test_begin_again_replaces_the_row_under_that_name),
        T(test_list_is_by_name_and_per_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
