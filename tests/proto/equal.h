/* equal.h: cmocka assertion that two proto messages are equal, field by field. */
#ifndef RACKRUN_TEST_PROTO_EQUAL_H
#define RACKRUN_TEST_PROTO_EQUAL_H

#include "proto.h"

/* Fail the running cmocka test unless A and B hold the same type and fields. */
void assert_msg_equal(const proto_msg_t *a, const proto_msg_t *b);

/* The same for two jobdefs. */
void assert_jobdef_equal(const proto_jobdef_t *a, const proto_jobdef_t *b);

#endif
