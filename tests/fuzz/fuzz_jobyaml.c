/* fuzz_jobyaml.c: libFuzzer target for the job YAML parser (master/jobyaml.c
 * over common/yamldoc.c): any bytes a client may SUBMIT.
 *
 * A rejected document must say where and why and leave nothing; an accepted
 * one must be a definition the wire codec round-trips to the same bytes.
 * Alias bombs, deep nesting and huge documents must stay bounded (libFuzzer's
 * -rss_limit_mb and per-input timeout catch the rest). */
#include <stdlib.h>
#include <string.h>

#include "jobyaml.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proto_jobdef_t *def = NULL, *again = NULL;
    rr_jobyaml_error_t err;
    proto_error_t perr;
    uint8_t *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;
    memset(&err, 0, sizeof err);
    if (rr_jobyaml_parse((const char *)data, size, &def, &err) != 0) {
        if (def || !err.text[0])
            abort();                        /* a rejection says why, and holds nothing */
        return 0;
    }
    if (!def || !def->name || !def->device_type || !def->actions_count)
        abort();                            /* accepted means complete */
    if (proto_jobdef_encode(def, &first, &first_len, &perr) != 0)
        abort();
    if (proto_jobdef_decode(first, first_len, &again, &perr) != 0)
        abort();
    if (proto_jobdef_encode(again, &second, &second_len, &perr) != 0)
        abort();
    if (first_len != second_len || memcmp(first, second, first_len) != 0)
        abort();
    free(first);
    free(second);
    proto_jobdef_destroy(&again);
    proto_jobdef_destroy(&def);
    return 0;
}
