/* test_proto_decode.c: every class of malformed input is rejected with the right
 * status and key, and nothing partially decoded leaks (run under ASan). */
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

typedef struct {
    uint8_t *buf;
    size_t len;
} bytes_t;

static bytes_t encode_fixture(proto_type_t type, bool all)
{
    proto_msg_t msg;
    proto_error_t err;
    bytes_t b;
    fixture_message(&msg, type, all);
    if (proto_encode(&msg, &b.buf, &b.len, &err) != 0)
        fail_msg("encode: %s", err.text);
    proto_msg_free(&msg);
    return b;
}

/* Decode the LEN bytes (from an exact-size copy) and expect STATUS and KEY
 * (NULL: don't care). The message must come back empty. */
static void expect_reject(const uint8_t *buf, size_t len, proto_status_t status, const char *key)
{
    uint8_t *exact = craft_exact(buf, len);
    proto_msg_t msg;
    proto_error_t err;
    int rc = proto_decode(exact, len, &msg, &err);
    free(exact);
    if (rc == 0) {
        proto_msg_free(&msg);
        fail_msg("decoded, expected %s", proto_status_name(status));
    }
    if (err.status != status)
        fail_msg("got %s (%s), expected %s", proto_status_name(err.status), err.text,
                 proto_status_name(status));
    if (key)
        assert_string_equal(err.key, key);
    assert_int_equal(msg.type, PROTO_MSG_NONE);
    assert_true(strlen(err.text) > 0);
}

/* Edit PATH of a full TYPE message (RAW NULL: remove it) and expect STATUS naming KEY. */
static void expect_edit_rejected(proto_type_t type, const char *path, const char *raw_hex,
                                 proto_status_t status, const char *key)
{
    bytes_t b = encode_fixture(type, true);
    uint8_t raw[64];
    size_t raw_len = raw_hex ? craft_hex(raw_hex, raw, sizeof raw) : 0, len;
    uint8_t *bad = craft_edit(b.buf, b.len, path, raw_hex ? raw : NULL, raw_len, &len);
    expect_reject(bad, len, status, key);
    free(bad);
    free(b.buf);
}

static void expect_hex_rejected(const char *hex, proto_status_t status)
{
    uint8_t buf[256];
    expect_reject(buf, craft_hex(hex, buf, sizeof buf), status, NULL);
}

static void test_decode_rejects_truncation_at_every_byte_offset(void **state)
{
    for (int t = PROTO_MSG_NONE + 1; t < PROTO_MSG_COUNT; t++) {
        bytes_t b = encode_fixture((proto_type_t)t, true);
        for (size_t cut = 0; cut < b.len; cut++) {
            uint8_t *exact = craft_exact(b.buf, cut);
            proto_msg_t msg;
            proto_error_t err;
            if (proto_decode(exact, cut, &msg, &err) == 0)
                fail_msg("%s cut at %zu/%zu decoded", proto_type_name((proto_type_t)t), cut,
                         b.len);
            if (err.status != PROTO_E_TRUNCATED && err.status != PROTO_E_LENGTH)
                fail_msg("%s cut at %zu: %s", proto_type_name((proto_type_t)t), cut, err.text);
            free(exact);
        }
        free(b.buf);
    }
}

static void test_decode_rejects_empty_input_as_truncated(void **state)
{
    expect_reject((const uint8_t *)"", 0, PROTO_E_TRUNCATED, "");
}

static void test_decode_rejects_each_missing_required_key(void **state)
{
    for (int t = PROTO_MSG_NONE + 1; t < PROTO_MSG_COUNT; t++) {
        size_t nkeys, len;
        const fixture_key_t *keys = fixture_keys((proto_type_t)t, &nkeys);
        bytes_t b = encode_fixture((proto_type_t)t, true);
        for (size_t k = 0; k < nkeys; k++) {
            uint8_t *bad = craft_edit(b.buf, b.len, keys[k].key, NULL, 0, &len);
            proto_msg_t msg;
            proto_error_t err;
            int rc = proto_decode(bad, len, &msg, &err);
            if (keys[k].required) {
                if (rc == 0)
                    fail_msg("%s without '%s' decoded", proto_type_name((proto_type_t)t),
                             keys[k].key);
                assert_int_equal(err.status, PROTO_E_MISSING);
                assert_string_equal(err.key, keys[k].key);
            } else {
                if (rc != 0)
                    fail_msg("%s without optional '%s': %s", proto_type_name((proto_type_t)t),
                             keys[k].key, err.text);
                proto_msg_free(&msg);
            }
            free(bad);
        }
        free(b.buf);
    }
}

static void test_decode_missing_key_text_names_message_and_key(void **state)
{
    bytes_t b = encode_fixture(PROTO_MSG_HELLO, true);
    size_t len;
    uint8_t *bad = craft_edit(b.buf, b.len, "wrk", NULL, 0, &len);
    proto_msg_t msg;
    proto_error_t err;
    assert_int_equal(proto_decode(bad, len, &msg, &err), -1);
    assert_string_equal(err.text, "hello: key 'wrk' missing");
    free(bad);
    free(b.buf);
}

static void test_decode_rejects_missing_nested_keys_with_dotted_path(void **state)
{
    expect_edit_rejected(PROTO_MSG_JOB_START, "def.acts.steps.run", NULL, PROTO_E_MISSING,
                         "def.acts.steps.run");
    expect_edit_rejected(PROTO_MSG_JOB_START, "def.acts.k", NULL, PROTO_E_MISSING, "def.acts.k");
    expect_edit_rejected(PROTO_MSG_HELLO, "devs.st", NULL, PROTO_E_MISSING, "devs.st");
    expect_edit_rejected(PROTO_MSG_JOB_DETAIL, "info.sub", NULL, PROTO_E_MISSING, "info.sub");
}

/* Every present key given a value of the wrong type: a string where the
 * field is not a string, an integer where it is. */
static void test_decode_rejects_wrong_type_for_every_key(void **state)
{
    for (int t = PROTO_MSG_NONE + 1; t < PROTO_MSG_COUNT; t++) {
        size_t nkeys;
        const fixture_key_t *keys = fixture_keys((proto_type_t)t, &nkeys);
        for (size_t k = 0; k < nkeys; k++) {
            /* which kind is it? probe: a string is accepted only by STR fields */
            bytes_t b = encode_fixture((proto_type_t)t, true);
            uint8_t str_raw[] = { 0xa1, 'x' }, int_raw[] = { 0x07 };
            size_t len;
            uint8_t *with_str = craft_edit(b.buf, b.len, keys[k].key, str_raw, 2, &len);
            proto_msg_t back;
            proto_error_t err;
            if (proto_decode(with_str, len, &back, &err) == 0) {
                proto_msg_free(&back);          /* a STR field: an integer is wrong */
                free(with_str);
                with_str = craft_edit(b.buf, b.len, keys[k].key, int_raw, 1, &len);
                assert_int_equal(proto_decode(with_str, len, &back, &err), -1);
            }
            if (err.status != PROTO_E_TYPE)
                fail_msg("%s.%s: %s", proto_type_name((proto_type_t)t), keys[k].key, err.text);
            assert_string_equal(err.key, keys[k].key);
            assert_non_null(strstr(err.text, "expected"));
            free(with_str);
            free(b.buf);
        }
    }
}

static void test_decode_rejects_wrong_type_per_kind(void **state)
{
    /* U64 given float, U32 given bool, I64 given string, BOOL given integer */
    expect_edit_rejected(PROTO_MSG_JOB_EVENT, "seq", "cb 3f f0 00 00 00 00 00 00", PROTO_E_TYPE, "seq");
    expect_edit_rejected(PROTO_MSG_HELLO, "pmin", "c3", PROTO_E_TYPE, "pmin");
    expect_edit_rejected(PROTO_MSG_JOB_EVENT, "code", "a1 31", PROTO_E_TYPE, "code");
    expect_edit_rejected(PROTO_MSG_JOB_ACCEPT, "ok", "01", PROTO_E_TYPE, "ok");
    /* STR given binary, BIN given string */
    expect_edit_rejected(PROTO_MSG_HELLO, "wrk", "c4 01 41", PROTO_E_TYPE, "wrk");
    expect_edit_rejected(PROTO_MSG_JOB_EVENT, "d", "a1 41", PROTO_E_TYPE, "d");
    /* STRS given a map or an array of integers */
    expect_edit_rejected(PROTO_MSG_JOB_START, "def.tags", "80", PROTO_E_TYPE, "def.tags");
    expect_edit_rejected(PROTO_MSG_HELLO, "devs.tags", "92 a1 61 05", PROTO_E_TYPE, "devs.tags");
    /* LIST given a map, or an array whose item is not a map */
    expect_edit_rejected(PROTO_MSG_HELLO, "devs", "80", PROTO_E_TYPE, "devs");
    expect_edit_rejected(PROTO_MSG_HELLO, "jobs", "91 01", PROTO_E_TYPE, "jobs");
    /* OBJ given an array */
    expect_edit_rejected(PROTO_MSG_JOB_START, "def", "90", PROTO_E_TYPE, "def");
    expect_edit_rejected(PROTO_MSG_JOB_START, "def.acts.steps.to", "a2 31 30", PROTO_E_TYPE,
                         "def.acts.steps.to");
}

static void test_decode_rejects_string_with_embedded_nul(void **state)
{
    expect_edit_rejected(PROTO_MSG_HELLO, "wrk", "a3 61 00 62", PROTO_E_TYPE, "wrk");
    expect_edit_rejected(PROTO_MSG_HELLO, "devs.tags", "91 a2 00 61", PROTO_E_TYPE, "devs.tags");
}

static void test_decode_rejects_integers_out_of_range(void **state)
{
    expect_edit_rejected(PROTO_MSG_HELLO, "pmin", "cf 00 00 00 01 00 00 00 00", PROTO_E_RANGE,
                         "pmin");
    expect_edit_rejected(PROTO_MSG_HELLO, "pmax", "ff", PROTO_E_RANGE, "pmax");
    expect_edit_rejected(PROTO_MSG_JOB_EVENT, "seq", "d0 80", PROTO_E_RANGE, "seq");
    expect_edit_rejected(PROTO_MSG_JOB_EVENT, "code", "cf 80 00 00 00 00 00 00 00", PROTO_E_RANGE,
                         "code");
}

static void test_decode_accepts_integer_extremes(void **state)
{
    bytes_t b = encode_fixture(PROTO_MSG_JOB_EVENT, true);
    uint8_t raw[16];
    size_t len, n = craft_hex("d3 80 00 00 00 00 00 00 00", raw, sizeof raw);
    uint8_t *edited = craft_edit(b.buf, b.len, "code", raw, n, &len);
    n = craft_hex("cf ff ff ff ff ff ff ff ff", raw, sizeof raw);
    uint8_t *edited2 = craft_edit(edited, len, "seq", raw, n, &len);
    proto_msg_t msg;
    assert_int_equal(proto_decode(edited2, len, &msg, NULL), 0);
    assert_true(msg.u.job_event.code == INT64_MIN);
    assert_true(msg.u.job_event.seq == UINT64_MAX);
    proto_msg_free(&msg);
    free(edited2);
    free(edited);
    free(b.buf);
}

static void test_decode_rejects_lying_lengths(void **state)
{
    /* {"t": str32 declaring 2 GiB} */
    expect_hex_rejected("81 a1 74 db 7f ff ff ff 68 65", PROTO_E_LENGTH);
    /* {"t":"x","d": bin32 declaring 4 GiB - 1} */
    expect_hex_rejected("82 a1 74 a1 78 a1 64 c6 ff ff ff ff 00", PROTO_E_LENGTH);
    /* ext32 declaring more than is left */
    expect_hex_rejected("81 a1 74 c9 00 01 00 00 01 02", PROTO_E_LENGTH);
    /* array32 of 134M items: rejected before any allocation */
    expect_hex_rejected("dd 08 00 00 00", PROTO_E_LENGTH);
    /* map32 of 2^32-1 pairs */
    expect_hex_rejected("df ff ff ff ff 00", PROTO_E_LENGTH);
    /* fixmap of 3 pairs needs 6 bytes, 3 left: N <= left but 2N > left */
    expect_hex_rejected("83 a1 74 01", PROTO_E_LENGTH);
    /* fixstr of 5 with 2 bytes left */
    expect_hex_rejected("81 a1 74 a5 68 69", PROTO_E_LENGTH);
}

static void test_decode_rejects_more_items_than_the_limit(void **state)
{
    size_t len = 5 + PROTO_MAX_ITEMS + 1;
    uint8_t *buf = calloc(1, len);              /* array32 of 65537 zeros: bytes are there */
    assert_non_null(buf);
    buf[0] = 0xdd;
    buf[1] = 0x00;
    buf[2] = 0x01;
    buf[3] = 0x00;
    buf[4] = 0x01;
    expect_reject(buf, len, PROTO_E_LENGTH, NULL);
    free(buf);
}

static void test_decode_rejects_nesting_too_deep(void **state)
{
    /* nine nested arrays at the top */
    expect_hex_rejected("91 91 91 91 91 91 91 91 90", PROTO_E_TOO_DEEP);
    /* a hello whose unknown key holds 8 nested arrays (9 levels with the map) */
    bytes_t b = encode_fixture(PROTO_MSG_HELLO, false);
    uint8_t raw[16];
    size_t n = craft_hex("91 91 91 91 91 91 91 90", raw, sizeof raw), len;
    uint8_t *bad = craft_edit(b.buf, b.len, "zz", raw, n, &len);
    expect_reject(bad, len, PROTO_E_TOO_DEEP, NULL);
    free(bad);
    /* 7 nested arrays (8 levels) is allowed, and the unknown key ignored */
    n = craft_hex("91 91 91 91 91 91 90", raw, sizeof raw);
    bad = craft_edit(b.buf, b.len, "zz", raw, n, &len);
    proto_msg_t msg;
    proto_error_t err;
    if (proto_decode(bad, len, &msg, &err) != 0)
        fail_msg("%s", err.text);
    proto_msg_free(&msg);
    free(bad);
    free(b.buf);
}

static void test_decode_rejects_frame_over_the_limit(void **state)
{
    size_t len = PROTO_MAX_MSG + 1;
    uint8_t *buf = calloc(1, len);
    assert_non_null(buf);
    buf[0] = 0x80;
    expect_reject(buf, len, PROTO_E_TOO_BIG, NULL);
    free(buf);
}

static void test_decode_rejects_trailing_bytes(void **state)
{
    bytes_t b = encode_fixture(PROTO_MSG_HEARTBEAT, true);
    uint8_t *longer = realloc(b.buf, b.len + 1);
    assert_non_null(longer);
    longer[b.len] = 0xc0;
    expect_reject(longer, b.len + 1, PROTO_E_TRAILING, NULL);
    free(longer);
}

static void test_decode_rejects_non_map_and_bad_keys(void **state)
{
    expect_hex_rejected("92 a1 74 01", PROTO_E_MALFORMED);         /* top is an array */
    expect_hex_rejected("a5 68 65 6c 6c 6f", PROTO_E_MALFORMED);   /* top is a string */
    expect_hex_rejected("82 01 02 a1 74 a2 68 62", PROTO_E_MALFORMED); /* integer key */
    expect_hex_rejected("81 a1 74 c1", PROTO_E_MALFORMED);         /* never-used byte */
    /* a known key twice */
    bytes_t b = encode_fixture(PROTO_MSG_JOB_CANCEL, true);    /* {t, v, job} */
    uint8_t *dup = malloc(b.len + 6);
    assert_non_null(dup);
    memcpy(dup, b.buf, b.len);
    dup[0]++;                                                   /* fixmap 3 -> 4 */
    memcpy(dup + b.len, "\xa3job\x05", 5);
    expect_reject(dup, b.len + 5, PROTO_E_MALFORMED, "job");
    free(dup);
    free(b.buf);
}

static void test_decode_rejects_unknown_or_missing_type(void **state)
{
    expect_edit_rejected(PROTO_MSG_HELLO, "t", "a4 6e 6f 70 65", PROTO_E_UNKNOWN_TYPE, "t");
    expect_edit_rejected(PROTO_MSG_HELLO, "t", "a6 68 65 6c 6c 6f 00", PROTO_E_UNKNOWN_TYPE, "t");
    expect_edit_rejected(PROTO_MSG_HELLO, "t", "07", PROTO_E_TYPE, "t");
    expect_edit_rejected(PROTO_MSG_HELLO, "t", NULL, PROTO_E_MISSING, "t");
}

static void test_decode_rejects_bad_version(void **state)
{
    expect_edit_rejected(PROTO_MSG_HEARTBEAT, "v", "00", PROTO_E_VERSION, "v");
    expect_edit_rejected(PROTO_MSG_HEARTBEAT, "v", "02", PROTO_E_VERSION, "v");
    expect_edit_rejected(PROTO_MSG_HEARTBEAT, "v", "ff", PROTO_E_VERSION, "v");
    expect_edit_rejected(PROTO_MSG_WELCOME, "v", "63", PROTO_E_VERSION, "v");
    expect_edit_rejected(PROTO_MSG_HEARTBEAT, "v", "a1 31", PROTO_E_TYPE, "v");
    expect_edit_rejected(PROTO_MSG_HEARTBEAT, "v", NULL, PROTO_E_MISSING, "v");
}

static void test_decode_hello_of_any_version(void **state)
{
    bytes_t b = encode_fixture(PROTO_MSG_HELLO, true);
    uint8_t raw[] = { 0x63 };                                  /* v = 99 */
    size_t len;
    uint8_t *v99 = craft_edit(b.buf, b.len, "v", raw, 1, &len);
    proto_msg_t msg;
    proto_error_t err;
    if (proto_decode(v99, len, &msg, &err) != 0)
        fail_msg("%s", err.text);
    assert_int_equal(msg.type, PROTO_MSG_HELLO);
    assert_int_equal(msg.version, 99);
    assert_non_null(msg.u.hello.worker);
    proto_msg_free(&msg);
    free(v99);
    free(b.buf);
}

static void test_decode_ignores_unknown_keys_and_nil_optionals(void **state)
{
    proto_msg_t orig, msg;
    fixture_message(&orig, PROTO_MSG_HELLO, true);
    bytes_t b = encode_fixture(PROTO_MSG_HELLO, true);
    uint8_t raw[] = { 0x92, 0x01, 0x80 };
    size_t len, len2;
    uint8_t *extra = craft_edit(b.buf, b.len, "future", raw, sizeof raw, &len);
    uint8_t *extra2 = craft_edit(extra, len, "devs.later", raw, sizeof raw, &len2);
    assert_int_equal(proto_decode(extra2, len2, &msg, NULL), 0);
    assert_msg_equal(&orig, &msg);
    proto_msg_free(&msg);
    free(extra2);
    free(extra);
    free(b.buf);
    proto_msg_free(&orig);
    /* nil is absent: fine for an optional key, missing for a required one */
    expect_edit_rejected(PROTO_MSG_HELLO, "wrk", "c0", PROTO_E_MISSING, "wrk");
    b = encode_fixture(PROTO_MSG_HELLO, true);
    uint8_t nil[] = { 0xc0 };
    extra = craft_edit(b.buf, b.len, "rack", nil, 1, &len);
    assert_int_equal(proto_decode(extra, len, &msg, NULL), 0);
    assert_null(msg.u.hello.rack);
    proto_msg_free(&msg);
    free(extra);
    free(b.buf);
}

/* The error comes after strings, lists and nested maps were decoded: all of
 * them must be freed (LeakSanitizer checks). */
static void test_decode_frees_partial_work_on_late_error(void **state)
{
    expect_edit_rejected(PROTO_MSG_JOB_LIST, "jobs.dt", "c2", PROTO_E_TYPE, "jobs.dt");
    expect_edit_rejected(PROTO_MSG_JOB_START, "def.acts.steps.name", "01", PROTO_E_TYPE,
                         "def.acts.steps.name");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_rejects_truncation_at_every_byte_offset),
        cmocka_unit_test(test_decode_rejects_empty_input_as_truncated),
        cmocka_unit_test(test_decode_rejects_each_missing_required_key),
        cmocka_unit_test(test_decode_missing_key_text_names_message_and_key),
        cmocka_unit_test(test_decode_rejects_missing_nested_keys_with_dotted_path),
        cmocka_unit_test(test_decode_rejects_wrong_type_for_every_key),
        cmocka_unit_test(test_decode_rejects_wrong_type_per_kind),
        cmocka_unit_test(test_decode_rejects_string_with_embedded_nul),
        cmocka_unit_test(test_decode_rejects_integers_out_of_range),
        cmocka_unit_test(test_decode_accepts_integer_extremes),
        cmocka_unit_test(test_decode_rejects_lying_lengths),
        cmocka_unit_test(test_decode_rejects_more_items_than_the_limit),
        cmocka_unit_test(test_decode_rejects_nesting_too_deep),
        cmocka_unit_test(test_decode_rejects_frame_over_the_limit),
        cmocka_unit_test(test_decode_rejects_trailing_bytes),
        cmocka_unit_test(test_decode_rejects_non_map_and_bad_keys),
        cmocka_unit_test(test_decode_rejects_unknown_or_missing_type),
        cmocka_unit_test(test_decode_rejects_bad_version),
        cmocka_unit_test(test_decode_hello_of_any_version),
        cmocka_unit_test(test_decode_ignores_unknown_keys_and_nil_optionals),
        cmocka_unit_test(test_decode_frees_partial_work_on_late_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
