/* test_spool.c: the per-job event spool: append, ack, reload after reopen, torn tails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "spool.h"
#include "tmpdir.h"

static int setup(void **state)
{
    *state = tmpdir_new("spool");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    char *dir = *state;
    tmpdir_remove(&dir);
    return 0;
}

static rr_spool_t *open_spool(const char *dir, uint64_t job)
{
    char err[512] = "";
    rr_spool_t *spool = rr_spool_open(dir, job, err, sizeof err);
    if (!spool)
        fail_msg("%s", err);
    return spool;
}

static void append(rr_spool_t *spool, uint64_t seq, const char *text, bool final)
{
    char err[512] = "";
    if (rr_spool_append(spool, seq, text, strlen(text), final, err, sizeof err) < 0)
        fail_msg("%s", err);
}

static void assert_event(rr_spool_t *spool, uint64_t seq, const char *text)
{
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(rr_spool_read(spool, seq, &data, &len), 0);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(data, text, len);
    free(data);
}

static void test_spool_reads_back_appended_events_in_order(void **state)
{
    rr_spool_t *spool = open_spool(*state, 1);
    append(spool, 1, "first", false);
    append(spool, 2, "second", false);
    append(spool, 3, "", false);
    assert_int_equal(rr_spool_last_seq(spool), 3);
    assert_int_equal(rr_spool_pending(spool), 3);
    assert_event(spool, 1, "first");
    assert_event(spool, 2, "second");
    assert_event(spool, 3, "");
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(rr_spool_read(spool, 4, &data, &len), -1);
    rr_spool_destroy(&spool);
    assert_null(spool);
}

static void test_spool_refuses_out_of_order_seq(void **state)
{
    rr_spool_t *spool = open_spool(*state, 2);
    char err[512] = "";
    append(spool, 1, "a", false);
    assert_int_equal(rr_spool_append(spool, 3, "c", 1, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "seq 3"));
    assert_int_equal(rr_spool_append(spool, 1, "a", 1, false, err, sizeof err), -1);
    assert_int_equal(rr_spool_last_seq(spool), 1);
    rr_spool_destroy(&spool);
}

static void test_spool_ack_drops_events_up_to_seq(void **state)
{
    rr_spool_t *spool = open_spool(*state, 3);
    for (uint64_t seq = 1; seq <= 5; seq++)
        append(spool, seq, "ev", false);
    assert_int_equal(rr_spool_ack(spool, 3), 0);
    assert_int_equal(rr_spool_acked(spool), 3);
    assert_int_equal(rr_spool_pending(spool), 2);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(rr_spool_read(spool, 3, &data, &len), -1);
    assert_event(spool, 4, "ev");
    /* an ack beyond what was spooled is clamped, an older one is ignored */
    assert_int_equal(rr_spool_ack(spool, 2), 0);
    assert_int_equal(rr_spool_acked(spool), 3);
    assert_int_equal(rr_spool_ack(spool, 99), 0);
    assert_int_equal(rr_spool_acked(spool), 5);
    assert_int_equal(rr_spool_pending(spool), 0);
    rr_spool_destroy(&spool);
}

static void test_spool_reload_after_reopen_keeps_unacked_events(void **state)
{
    char err[512];
    rr_spool_t *spool = open_spool(*state, 4);
    append(spool, 1, "one", false);
    append(spool, 2, "two", false);
    append(spool, 3, "three", false);
    assert_int_equal(rr_spool_sync(spool, err, sizeof err), 0);
    assert_int_equal(rr_spool_ack(spool, 1), 0);
    rr_spool_destroy(&spool);

    spool = open_spool(*state, 4);
    assert_int_equal(rr_spool_last_seq(spool), 3);
    assert_int_equal(rr_spool_acked(spool), 1);
    assert_int_equal(rr_spool_pending(spool), 2);
    assert_false(rr_spool_final(spool));
    assert_event(spool, 2, "two");
    assert_event(spool, 3, "three");
    /* numbering goes on after the reload */
    append(spool, 4, "end", true);
    assert_true(rr_spool_final(spool));
    assert_false(rr_spool_done(spool));
    rr_spool_destroy(&spool);

    uint64_t *jobs = NULL;
    size_t count = 0;
    assert_int_equal(rr_spool_list(*state, &jobs, &count, err, sizeof err), 0);
    bool listed = false;
    for (size_t i = 0; i < count; i++)
        listed = listed || jobs[i] == 4;
    assert_true(listed);
    free(jobs);
}

static void test_spool_fully_acked_continues_numbering_after_reopen(void **state)
{
    rr_spool_t *spool = open_spool(*state, 5);
    append(spool, 1, "one", false);
    append(spool, 2, "two", false);
    assert_int_equal(rr_spool_ack(spool, 2), 0);
    rr_spool_destroy(&spool);

    spool = open_spool(*state, 5);
    assert_int_equal(rr_spool_last_seq(spool), 2);
    assert_int_equal(rr_spool_acked(spool), 2);
    assert_int_equal(rr_spool_pending(spool), 0);
    append(spool, 3, "three", false);
    rr_spool_destroy(&spool);

    spool = open_spool(*state, 5);
    assert_int_equal(rr_spool_last_seq(spool), 3);
    assert_event(spool, 3, "three");
    rr_spool_destroy(&spool);
}

static void test_spool_cuts_torn_tail_at_reload(void **state)
{
    char err[512], path[4096];
    rr_spool_t *spool = open_spool(*state, 6);
    append(spool, 1, "whole", false);
    append(spool, 2, "torn-record", false);
    rr_spool_destroy(&spool);
    /* a crash in the middle of the second record's bytes */
    snprintf(path, sizeof path, "%s/job-6.spool", (char *)*state);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 4), 0);

    spool = open_spool(*state, 6);
    assert_int_equal(rr_spool_last_seq(spool), 1);
    assert_event(spool, 1, "whole");
    assert_int_equal(rr_spool_append(spool, 2, "again", 5, false, err, sizeof err), 0);
    rr_spool_destroy(&spool);
    spool = open_spool(*state, 6);
    assert_int_equal(rr_spool_last_seq(spool), 2);
    assert_event(spool, 2, "again");
    rr_spool_destroy(&spool);
}

static void test_spool_done_when_final_event_acked_and_remove_deletes_file(void **state)
{
    char path[4096];
    rr_spool_t *spool = open_spool(*state, 7);
    append(spool, 1, "state", false);
    append(spool, 2, "end", true);
    assert_false(rr_spool_done(spool));
    assert_int_equal(rr_spool_ack(spool, 2), 0);
    assert_true(rr_spool_done(spool));
    snprintf(path, sizeof path, "%s/job-7.spool", (char *)*state);
    assert_int_equal(access(path, F_OK), 0);
    rr_spool_remove(&spool);
    assert_null(spool);
    assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spool_reads_back_appended_events_in_order),
        cmocka_unit_test(test_spool_refuses_out_of_order_seq),
        cmocka_unit_test(test_spool_ack_drops_events_up_to_seq),
        cmocka_unit_test(test_spool_reload_after_reopen_keeps_unacked_events),
        cmocka_unit_test(test_spool_fully_acked_continues_numbering_after_reopen),
        cmocka_unit_test(test_spool_cuts_torn_tail_at_reload),
        cmocka_unit_test(test_spool_done_when_final_event_acked_and_remove_deletes_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
