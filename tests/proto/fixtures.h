/* fixtures.h: proto test messages built from messages.def (every field set, or
 * only the required ones), shared by the proto unit tests and the fuzz seed tool. */
#ifndef RACKRUN_TEST_PROTO_FIXTURES_H
#define RACKRUN_TEST_PROTO_FIXTURES_H

#include "proto.h"

typedef struct {
    const char *key;
    bool required;
} fixture_key_t;

/* Fill MSG (overwritten) as a TYPE message: every field when ALL, else only the
 * required ones; lists get two items. Free with proto_msg_free. Aborts on ENOMEM. */
void fixture_message(proto_msg_t *msg, proto_type_t type, bool all);

/* A jobdef with every field (ALL) or the required ones; proto_jobdef_destroy it. */
proto_jobdef_t *fixture_jobdef(bool all);

/* The top-level keys of TYPE as declared in messages.def (COUNT of them). */
const fixture_key_t *fixture_keys(proto_type_t type, size_t *count);

#endif
