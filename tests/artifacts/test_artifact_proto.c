/* test_artifact_proto.c: the artifact messages (ARTIFACT_CHUNK, ARTIFACT_ACK,
 * ARTIFACTS, ARTIFACT_LIST, FETCH, ARTIFACT_DATA) through the generic codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto.h"

#define SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

/* Encode MSG and decode it again into BACK (both must succeed). */
static void round_trip(const proto_msg_t *msg, proto_msg_t *back)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    proto_error_t err;
    assert_int_equal(proto_encode(msg, &buf, &len, &err), 0);
    assert_int_equal(proto_decode(buf, len, back, &err), 0);
    assert_int_equal(back->type, msg->type);
    free(buf);
}

static void test_full_size_chunk_fits_one_message_and_comes_back_whole(void **state)
{
    (void)state;
    uint8_t *data = malloc(PROTO_ARTIFACT_CHUNK);
    assert_non_null(data);
    for (size_t i = 0; i < PROTO_ARTIFACT_CHUNK; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    proto_msg_t msg = { .type = PROTO_MSG_ARTIFACT_CHUNK, .version = PROTO_VERSION }, back;
    msg.u.artifact_chunk = (proto_artifact_chunk_t){ .job = 42, .name = "results.tar.gz",
        .off = 5ull << 30, .total = 6ull << 30, .sha256 = SHA, .data = data,
        .data_len = PROTO_ARTIFACT_CHUNK };
    round_trip(&msg, &back);
    const proto_artifact_chunk_t *c = &back.u.artifact_chunk;
    assert_int_equal(c->job, 42);
    assert_string_equal(c->name, "results.tar.gz");
    assert_int_equal(c->off, 5ull << 30);
    assert_int_equal(c->total, 6ull << 30);
    assert_string_equal(c->sha256, SHA);
    assert_int_equal(c->data_len, PROTO_ARTIFACT_CHUNK);
    assert_memory_equal(c->data, data, PROTO_ARTIFACT_CHUNK);
    proto_msg_free(&back);
    free(data);
}

static void test_empty_chunk_decodes_without_data(void **state)
{
    (void)state;
    proto_msg_t msg = { .type = PROTO_MSG_ARTIFACT_CHUNK, .version = PROTO_VERSION }, back;
    msg.u.artifact_chunk = (proto_artifact_chunk_t){ .job = 1, .name = "empty", .sha256 = SHA };
    round_trip(&msg, &back);
    assert_null(back.u.artifact_chunk.data);
    assert_int_equal(back.u.artifact_chunk.data_len, 0);
    assert_int_equal(back.u.artifact_chunk.total, 0);
    proto_msg_free(&back);
}

static void test_chunk_without_sha256_is_rejected_naming_the_key(void **state)
{
    (void)state;
    proto_msg_t msg = { .type = PROTO_MSG_ARTIFACT_CHUNK, .version = PROTO_VERSION };
    msg.u.artifact_chunk = (proto_artifact_chunk_t){ .job = 1, .name = "x", .sha256 = NULL };
    uint8_t *buf = NULL;
    size_t len = 0;
    proto_error_t err;
    assert_int_equal(proto_encode(&msg, &buf, &len, &err), -1);
    assert_int_equal(err.status, PROTO_E_MISSING);
    assert_string_equal(err.key, "sha");
    assert_null(buf);
}

static void test_ack_carries_offset_done_and_refusal(void **state)
{
    (void)state;
    proto_msg_t msg = { .type = PROTO_MSG_ARTIFACT_ACK, .version = PROTO_VERSION }, back;
    msg.u.artifact_ack = (proto_artifact_ack_t){ .job = 7, .name = "a", .off = 262144 };
    round_trip(&msg, &back);
    assert_int_equal(back.u.artifact_ack.off, 262144);
    assert_false(back.u.artifact_ack.done);
    assert_null(back.u.artifact_ack.error);
    proto_msg_free(&back);
    msg.u.artifact_ack = (proto_artifact_ack_t){ .job = 7, .name = "a", .done = true,
                                                 .error = "over the artifact_quota" };
    round_trip(&msg, &back);
    assert_true(back.u.artifact_ack.done);
    assert_string_equal(back.u.artifact_ack.error, "over the artifact_quota");
    proto_msg_free(&back);
}

static void test_artifact_list_keeps_each_entry(void **state)
{
    (void)state;
    proto_artinfo_t arts[2] = {
        { .name = "a.bin", .size = 10, .sha256 = SHA, .state = "complete", .stored = 10 },
        { .name = "b.bin", .size = 20, .sha256 = SHA, .state = "failed", .reason = "quota" },
    };
    proto_msg_t msg = { .type = PROTO_MSG_ARTIFACT_LIST, .version = PROTO_VERSION }, back;
    msg.u.artifact_list = (proto_artifact_list_t){ .job = 3, .arts = arts, .arts_count = 2 };
    round_trip(&msg, &back);
    assert_int_equal(back.u.artifact_list.arts_count, 2);
    assert_string_equal(back.u.artifact_list.arts[0].name, "a.bin");
    assert_int_equal(back.u.artifact_list.arts[0].stored, 10);
    assert_null(back.u.artifact_list.arts[0].reason);
    assert_string_equal(back.u.artifact_list.arts[1].state, "failed");
    assert_string_equal(back.u.artifact_list.arts[1].reason, "quota");
    proto_msg_free(&back);
}

static void test_fetch_offset_is_optional(void **state)
{
    (void)state;
    proto_msg_t msg = { .type = PROTO_MSG_FETCH, .version = PROTO_VERSION }, back;
    msg.u.fetch = (proto_fetch_t){ .job = 9, .name = "seq.txt" };
    round_trip(&msg, &back);
    assert_int_equal(back.u.fetch.off, 0);
    assert_string_equal(back.u.fetch.name, "seq.txt");
    proto_msg_free(&back);
    assert_int_equal(proto_type_from_name("artchunk"), PROTO_MSG_ARTIFACT_CHUNK);
    assert_int_equal(proto_type_from_name("artdata"), PROTO_MSG_ARTIFACT_DATA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_size_chunk_fits_one_message_and_comes_back_whole),
        cmocka_unit_test(test_empty_chunk_decodes_without_data),
        cmocka_unit_test(test_chunk_without_sha256_is_rejected_naming_the_key),
        cmocka_unit_test(test_ack_carries_offset_done_and_refusal),
        cmocka_unit_test(test_artifact_list_keeps_each_entry),
        cmocka_unit_test(test_fetch_offset_is_optional),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
