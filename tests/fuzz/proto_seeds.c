/* proto_seeds.c: writes the fuzz_proto seed corpus: one valid encoding of every
 * message (all fields set) and of a bare jobdef.
 * Usage: fuzz_proto_seeds DIR (then commit DIR's files to tests/fuzz/corpus/proto). */
#include <stdio.h>
#include <stdlib.h>

#include "fixtures.h"
#include "proto.h"

static int write_seed(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.msgpack", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    proto_error_t err;
    uint8_t *buf;
    size_t len;
    int rc = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    for (int t = PROTO_MSG_NONE + 1; t < PROTO_MSG_COUNT && rc == 0; t++) {
        proto_msg_t msg;
        fixture_message(&msg, (proto_type_t)t, true);
        if (proto_encode(&msg, &buf, &len, &err) != 0) {
            fprintf(stderr, "%s\n", err.text);
            return 1;
        }
        rc = write_seed(argv[1], proto_type_name((proto_type_t)t), buf, len);
        free(buf);
        proto_msg_free(&msg);
    }
    proto_jobdef_t *def = fixture_jobdef(true);
    if (rc == 0 && proto_jobdef_encode(def, &buf, &len, &err) == 0) {
        rc = write_seed(argv[1], "jobdef", buf, len);
        free(buf);
    }
    proto_jobdef_destroy(&def);
    return rc ? 1 : 0;
}
