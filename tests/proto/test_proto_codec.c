/* test_proto_codec.c: encode/decode round trips, encoder refusals, names, jobdef helpers. */
#include <dirent.h>
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "craft.h"
#include "equal.h"
#include "fixtures.h"
#include "proto.h"

/* Encode MSG, decode the bytes, check they are equal; frees what it made. */
static void round_trip(const proto_msg_t *msg)
{
    proto_error_t err;
    proto_msg_t back;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (proto_encode(msg, &buf, &len, &err) != 0)
        fail_msg("%s: encode: %s", proto_type_name(msg->type), err.text);
    if (proto_decode(buf, len, &back, &err) != 0)
        fail_msg("%s: decode: %s", proto_type_name(msg->type), err.text);
    assert_int_equal(back.version, PROTO_VERSION);
    assert_msg_equal(msg, &back);
    proto_msg_free(&back);
    free(buf);
}

static void test_every_message_round_trips_with_all_fields(void **state)
{
    for (int t = PROTO_MSG_NONE + 1; t < PROTO_MSG_COUNT; t++) {
        proto_msg_t msg;
        fixture_message(&msg, (proto_type_t)t, true);
        round_trip(&msg);
        proto_msg_free(&msg);
    }
}

static void test_every_message_round_trips_with_required_fields_only(void **state)
{
    for (int t = PROTO_MSG_NONE + 1; t < PROTO_MSG_COUNT; t++) {
        proto_msg_t msg;
        fixture_message(&msg, (proto_type_t)t, false);
        round_trip(&msg);
        proto_msg_free(&msg);
    }
}

static void test_hello_devices_keep_their_tags(void **state)
{
    proto_msg_t msg, back;
    uint8_t *buf;
    size_t len;
    fixture_message(&msg, PROTO_MSG_HELLO, true);
    assert_int_equal(proto_encode(&msg, &buf, &len, NULL), 0);
    assert_int_equal(proto_decode(buf, len, &back, NULL), 0);
    assert_int_equal(back.u.hello.devices_count, 2);
    assert_int_equal(back.u.hello.devices[1].tags_count, 3);
    assert_string_equal(back.u.hello.devices[1].tags[2], msg.u.hello.devices[1].tags[2]);
    assert_int_equal(back.u.hello.jobs[1].seq, msg.u.hello.jobs[1].seq);
    proto_msg_free(&back);
    proto_msg_free(&msg);
    free(buf);
}

static void test_job_start_carries_the_whole_jobdef(void **state)
{
    proto_msg_t msg, back;
    uint8_t *buf;
    size_t len;
    fixture_message(&msg, PROTO_MSG_JOB_START, true);
    assert_int_equal(proto_encode(&msg, &buf, &len, NULL), 0);
    assert_int_equal(proto_decode(buf, len, &back, NULL), 0);
    const proto_jobdef_t *def = back.u.job_start.def;
    assert_non_null(def);
    assert_int_equal(def->actions_count, 2);
    assert_int_equal(def->actions[1].artifacts_count, 2);
    assert_string_equal(def->actions[1].artifacts[1].url,
                        msg.u.job_start.def->actions[1].artifacts[1].url);
    assert_int_equal(def->actions[0].steps_count, 2);
    assert_string_equal(def->actions[0].steps[1].run, msg.u.job_start.def->actions[0].steps[1].run);
    assert_int_equal(def->actions[0].steps[1].timeout_s,
                     msg.u.job_start.def->actions[0].steps[1].timeout_s);
    proto_msg_free(&back);
    proto_msg_free(&msg);
    free(buf);
}

/* The number of keys in the encoded top-level map, and whether KEY is one. */
static size_t top_keys(const uint8_t *buf, size_t len, const char *key, bool *has)
{
    msgpack_unpacked up;
    size_t off = 0, n;
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, (const char *)buf, len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
    n = up.data.via.map.size;
    *has = false;
    for (size_t i = 0; i < n; i++) {
        msgpack_object_str k = up.data.via.map.ptr[i].key.via.str;
        if (k.size == strlen(key) && memcmp(k.ptr, key, k.size) == 0)
            *has = true;
    }
    msgpack_unpacked_destroy(&up);
    return n;
}

static void test_encode_omits_absent_optional_fields(void **state)
{
    proto_msg_t msg = { .type = PROTO_MSG_HEARTBEAT };
    uint8_t *buf;
    size_t len;
    bool has;
    msg.u.heartbeat.seq = 5;                /* load 0, no changed devices */
    assert_int_equal(proto_encode(&msg, &buf, &len, NULL), 0);
    assert_int_equal(top_keys(buf, len, "load", &has), 3);   /* t, v, seq */
    assert_false(has);
    top_keys(buf, len, "chg", &has);
    assert_false(has);
    free(buf);

    msg = (proto_msg_t){ .type = PROTO_MSG_HELLO };
    msg.u.hello.worker = "w1";
    msg.u.hello.version = "0.1";
    assert_int_equal(proto_encode(&msg, &buf, &len, NULL), 0);
    top_keys(buf, len, "rack", &has);
    assert_false(has);
    top_keys(buf, len, "pmin", &has);       /* required ints are sent even when 0 */
    assert_true(has);
    free(buf);
}

static void test_encode_keeps_a_required_empty_list(void **state)
{
    proto_msg_t msg = { .type = PROTO_MSG_JOB_LIST }, back;
    uint8_t *buf;
    size_t len;
    proto_error_t err;
    assert_int_equal(proto_encode(&msg, &buf, &len, &err), 0);
    assert_int_equal(proto_decode(buf, len, &back, &err), 0);
    assert_int_equal(back.type, PROTO_MSG_JOB_LIST);
    assert_int_equal(back.u.job_list.jobs_count, 0);
    proto_msg_free(&back);
    free(buf);
}

static void expect_encode_missing(proto_msg_t *msg, const char *key, const char *text)
{
    proto_error_t err;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(proto_encode(msg, &buf, &len, &err), -1);
    assert_null(buf);
    assert_int_equal(err.status, PROTO_E_MISSING);
    assert_string_equal(err.key, key);
    assert_non_null(strstr(err.text, text));
}

static void test_encode_refuses_null_required_string(void **state)
{
    proto_msg_t msg;
    fixture_message(&msg, PROTO_MSG_HELLO, true);
    free(msg.u.hello.worker);
    msg.u.hello.worker = NULL;
    expect_encode_missing(&msg, "wrk", "hello: key 'wrk'");
    proto_msg_free(&msg);
}

static void test_encode_refuses_null_required_object(void **state)
{
    proto_msg_t msg;
    fixture_message(&msg, PROTO_MSG_JOB_START, true);
    proto_jobdef_destroy(&msg.u.job_start.def);
    expect_encode_missing(&msg, "def", "job_start: key 'def'");
    proto_msg_free(&msg);
}

static void test_encode_refuses_null_required_string_deep_in_a_jobdef(void **state)
{
    proto_msg_t msg;
    fixture_message(&msg, PROTO_MSG_JOB_START, true);
    proto_step_t *step = &msg.u.job_start.def->actions[1].steps[0];
    free(step->run);
    step->run = NULL;
    expect_encode_missing(&msg, "def.acts.steps.run", "job_start: key 'def.acts.steps.run'");
    proto_msg_free(&msg);
}

static void test_encode_refuses_message_over_the_limit(void **state)
{
    proto_msg_t msg = { .type = PROTO_MSG_JOB_EVENT };
    proto_error_t err;
    uint8_t *buf = NULL;
    size_t len = 0;
    msg.u.job_event.kind = "log";
    msg.u.job_event.data_len = 1100000;
    msg.u.job_event.data = calloc(1, msg.u.job_event.data_len);
    assert_non_null(msg.u.job_event.data);
    assert_int_equal(proto_encode(&msg, &buf, &len, &err), -1);
    assert_null(buf);
    assert_int_equal(err.status, PROTO_E_TOO_BIG);
    assert_non_null(strstr(err.text, "job_event: 11000"));
    assert_non_null(strstr(err.text, "bytes > limit 1048576"));
    free(msg.u.job_event.data);
}

static void test_encode_refuses_an_invalid_type(void **state)
{
    proto_msg_t msg = { .type = PROTO_MSG_COUNT };
    proto_error_t err;
    uint8_t *buf = NULL;
    size_t len;
    assert_int_equal(proto_encode(&msg, &buf, &len, &err), -1);
    assert_int_not_equal(err.status, PROTO_OK);
    assert_null(buf);
}

static void test_type_names_map_both_ways(void **state)
{
    for (int t = PROTO_MSG_NONE + 1; t < PROTO_MSG_COUNT; t++) {
        const char *name = proto_type_name((proto_type_t)t);
        assert_non_null(name);
        assert_int_equal(proto_type_from_name(name), t);
    }
    assert_string_equal(proto_type_name(PROTO_MSG_HELLO), "hello");
    assert_string_equal(proto_type_name(PROTO_MSG_JOB_EVENT), "ev");
    assert_null(proto_type_name(PROTO_MSG_NONE));
    assert_null(proto_type_name(PROTO_MSG_COUNT));
    assert_int_equal(proto_type_from_name("nope"), PROTO_MSG_NONE);
    assert_int_equal(proto_type_from_name(NULL), PROTO_MSG_NONE);
}

static void test_status_names_are_distinct(void **state)
{
    for (int a = PROTO_OK; a <= PROTO_E_NOMEM; a++) {
        assert_string_not_equal(proto_status_name((proto_status_t)a), "unknown");
        for (int b = a + 1; b <= PROTO_E_NOMEM; b++)
            assert_string_not_equal(proto_status_name((proto_status_t)a),
                                    proto_status_name((proto_status_t)b));
    }
    assert_string_equal(proto_status_name(PROTO_E_TOO_BIG), "too_big");
    assert_string_equal(proto_status_name(PROTO_E_MISSING), "missing");
    assert_string_equal(proto_status_name((proto_status_t)99), "unknown");
}

static void test_error_msg_fills_and_round_trips(void **state)
{
    proto_msg_t msg;
    assert_int_equal(proto_error_msg(&msg, "invalid", "actions", "job %d: %s", 7, "bad"), 0);
    assert_int_equal(msg.type, PROTO_MSG_ERROR);
    assert_string_equal(msg.u.error.code, "invalid");
    assert_string_equal(msg.u.error.key, "actions");
    assert_string_equal(msg.u.error.text, "job 7: bad");
    round_trip(&msg);
    proto_msg_free(&msg);
    assert_int_equal(msg.type, PROTO_MSG_NONE);

    assert_int_equal(proto_error_msg(&msg, "version", NULL, "no overlap"), 0);
    assert_null(msg.u.error.key);
    round_trip(&msg);
    proto_msg_free(&msg);
}

static void test_msg_free_is_safe_on_a_zeroed_message(void **state)
{
    proto_msg_t msg = { 0 };
    proto_msg_free(&msg);
    proto_msg_free(NULL);
    assert_int_equal(msg.type, PROTO_MSG_NONE);
}

static void test_jobdef_round_trips_as_a_bare_map(void **state)
{
    for (int all = 0; all <= 1; all++) {
        proto_jobdef_t *def = fixture_jobdef(all), *back = NULL;
        proto_error_t err;
        uint8_t *buf;
        size_t len;
        assert_int_equal(proto_jobdef_encode(def, &buf, &len, &err), 0);
        if (proto_jobdef_decode(buf, len, &back, &err) != 0)
            fail_msg("%s", err.text);
        assert_jobdef_equal(def, back);
        proto_jobdef_destroy(&back);
        assert_null(back);
        proto_jobdef_destroy(&def);
        free(buf);
    }
}

static void test_jobdef_decode_names_a_missing_nested_key(void **state)
{
    proto_jobdef_t *def = fixture_jobdef(true), *back = (proto_jobdef_t *)&back;
    proto_error_t err;
    uint8_t *buf, *bad;
    size_t len, bad_len;
    assert_int_equal(proto_jobdef_encode(def, &buf, &len, &err), 0);
    bad = craft_edit(buf, len, "acts.art.url", NULL, 0, &bad_len);
    assert_int_equal(proto_jobdef_decode(bad, bad_len, &back, &err), -1);
    assert_null(back);
    assert_int_equal(err.status, PROTO_E_MISSING);
    assert_string_equal(err.key, "acts.art.url");
    assert_string_equal(err.text, "jobdef: key 'acts.art.url' missing");
    free(bad);
    free(buf);
    proto_jobdef_destroy(&def);
}

static void test_jobdef_dup_is_deep_and_equal(void **state)
{
    proto_jobdef_t *def = fixture_jobdef(true);
    proto_jobdef_t *copy = proto_jobdef_dup(def);
    assert_non_null(copy);
    assert_jobdef_equal(def, copy);
    assert_ptr_not_equal(copy->actions, def->actions);
    assert_ptr_not_equal(copy->actions[1].steps[0].run, def->actions[1].steps[0].run);
    assert_ptr_not_equal(copy->tags[0], def->tags[0]);
    copy->actions[1].steps[0].run[0] = '#';
    assert_int_not_equal(def->actions[1].steps[0].run[0], '#');
    proto_jobdef_destroy(&def);             /* the copy must outlive the original */
    assert_int_equal(copy->actions_count, 2);
    proto_jobdef_destroy(&copy);
    assert_null(proto_jobdef_dup(NULL));
}

/* Every committed fuzz seed must still decode: a protocol change that
 * invalidates them must regenerate them (fuzz_proto_seeds). */
static void test_committed_fuzz_seeds_still_decode(void **state)
{
    const char *src = getenv("RR_SOURCE_DIR");
    char dir[1024], path[1024 + 300];
    assert_non_null(src);
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/proto", src);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int decoded = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static uint8_t buf[PROTO_MAX_MSG];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        proto_msg_t msg;
        proto_jobdef_t *def;
        proto_error_t err;
        if (strncmp(e->d_name, "jobdef", 6) == 0) {
            if (proto_jobdef_decode(buf, len, &def, &err) != 0)
                fail_msg("%s: %s", e->d_name, err.text);
            proto_jobdef_destroy(&def);
        } else {
            if (proto_decode(buf, len, &msg, &err) != 0)
                fail_msg("%s: %s", e->d_name, err.text);
            proto_msg_free(&msg);
        }
        decoded++;
    }
    closedir(d);
    assert_true(decoded >= PROTO_MSG_COUNT - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_message_round_trips_with_all_fields),
        cmocka_unit_test(test_every_message_round_trips_with_required_fields_only),
        cmocka_unit_test(test_hello_devices_keep_their_tags),
        cmocka_unit_test(test_job_start_carries_the_whole_jobdef),
        cmocka_unit_test(test_encode_omits_absent_optional_fields),
        cmocka_unit_test(test_encode_keeps_a_required_empty_list),
        cmocka_unit_test(test_encode_refuses_null_required_string),
        cmocka_unit_test(test_encode_refuses_null_required_object),
        cmocka_unit_test(test_encode_refuses_null_required_string_deep_in_a_jobdef),
        cmocka_unit_test(test_encode_refuses_message_over_the_limit),
        cmocka_unit_test(test_encode_refuses_an_invalid_type),
        cmocka_unit_test(test_type_names_map_both_ways),
        cmocka_unit_test(test_status_names_are_distinct),
        cmocka_unit_test(test_error_msg_fills_and_round_trips),
        cmocka_unit_test(test_msg_free_is_safe_on_a_zeroed_message),
        cmocka_unit_test(test_jobdef_round_trips_as_a_bare_map),
        cmocka_unit_test(test_jobdef_decode_names_a_missing_nested_key),
        cmocka_unit_test(test_jobdef_dup_is_deep_and_equal),
        cmocka_unit_test(test_committed_fuzz_seeds_still_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
