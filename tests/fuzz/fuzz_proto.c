/* fuzz_proto.c: libFuzzer target for the proto decoder (every message type,
 * since the type is in the bytes, and the bare jobdef).
 *
 * Whatever decodes must re-encode, decode again, and re-encode to the same
 * bytes (the codec's output is canonical), and free cleanly. */
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static void check_message(const uint8_t *data, size_t size)
{
    proto_msg_t msg, again;
    proto_error_t err;
    uint8_t *first, *second;
    size_t first_len, second_len;
    if (proto_decode(data, size, &msg, &err) != 0) {
        if (err.status == PROTO_OK || msg.type != PROTO_MSG_NONE)
            abort();                        /* a failure must say why and leave nothing */
        return;
    }
    if (proto_encode(&msg, &first, &first_len, &err) != 0)
        abort();
    if (proto_decode(first, first_len, &again, &err) != 0)
        abort();
    if (proto_encode(&again, &second, &second_len, &err) != 0)
        abort();
    if (first_len != second_len || memcmp(first, second, first_len) != 0)
        abort();
    free(second);
    free(first);
    proto_msg_free(&again);
    proto_msg_free(&msg);
}

static void check_jobdef(const uint8_t *data, size_t size)
{
    proto_jobdef_t *def, *again, *copy;
    proto_error_t err;
    uint8_t *buf;
    size_t len;
    if (proto_jobdef_decode(data, size, &def, &err) != 0)
        return;
    if (proto_jobdef_encode(def, &buf, &len, &err) != 0)
        abort();
    if (proto_jobdef_decode(buf, len, &again, &err) != 0)
        abort();
    copy = proto_jobdef_dup(again);
    if (!copy)
        abort();
    proto_jobdef_destroy(&copy);
    proto_jobdef_destroy(&again);
    proto_jobdef_destroy(&def);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_message(data, size);
    check_jobdef(data, size);
    return 0;
}
