/* equal.c: deep comparison of proto structs, generated from messages.def. */
#include "equal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static void str_equal(const char *member, const char *a, const char *b)
{
    if (!a || !b) {
        if (a != b)
            fail_msg("%s: one side NULL (%s / %s)", member, a ? a : "NULL", b ? b : "NULL");
        return;
    }
    if (strcmp(a, b) != 0)
        fail_msg("%s: '%s' != '%s'", member, a, b);
}

static void int_equal(const char *member, long long a, long long b)
{
    if (a != b)
        fail_msg("%s: %lld != %lld", member, a, b);
}

#define EQ_U64(n, st)  int_equal(#n, (long long)a->n, (long long)b->n);
#define EQ_U32(n, st)  int_equal(#n, a->n, b->n);
#define EQ_I64(n, st)  int_equal(#n, a->n, b->n);
#define EQ_BOOL(n, st) int_equal(#n, a->n, b->n);
#define EQ_STR(n, st)  str_equal(#n, a->n, b->n);
#define EQ_BIN(n, st)                                                   \
    int_equal(#n " present", a->n != NULL, b->n != NULL);               \
    int_equal(#n "_len", (long long)a->n##_len, (long long)b->n##_len); \
    if (a->n##_len)                                                     \
        assert_memory_equal(a->n, b->n, a->n##_len);
#define EQ_STRS(n, st)                                                  \
    int_equal(#n "_count", (long long)a->n##_count, (long long)b->n##_count); \
    for (size_t i_ = 0; i_ < a->n##_count; i_++)                        \
        str_equal(#n, a->n[i_], b->n[i_]);
#define EQ_LIST(n, st)                                                  \
    int_equal(#n "_count", (long long)a->n##_count, (long long)b->n##_count); \
    for (size_t i_ = 0; i_ < a->n##_count; i_++)                        \
        equal_##st(&a->n[i_], &b->n[i_]);
#define EQ_OBJ(n, st)                                                   \
    int_equal(#n " present", a->n != NULL, b->n != NULL);               \
    if (a->n)                                                           \
        equal_##st(a->n, b->n);
#define EQ(kind, n, key, req, st) EQ_##kind(n, st)

#define PROTO_STRUCT(name, FIELDS) \
    __attribute__((unused)) static void equal_##name(const PROTO_TYPE(name) *a, \
                                                     const PROTO_TYPE(name) *b) \
    { FIELDS(EQ) }
#define PROTO_MESSAGE(ENUM, name, tag, FIELDS) PROTO_STRUCT(name, FIELDS)
#include "messages.def"
#undef PROTO_STRUCT
#undef PROTO_MESSAGE

void assert_msg_equal(const proto_msg_t *a, const proto_msg_t *b)
{
    assert_int_equal(a->type, b->type);
    switch (a->type) {
#define PROTO_STRUCT(name, FIELDS)
#define PROTO_MESSAGE(ENUM, name, tag, FIELDS) \
    case PROTO_MSG_##ENUM: equal_##name(&a->u.name, &b->u.name); break;
#include "messages.def"
#undef PROTO_STRUCT
#undef PROTO_MESSAGE
    default:
        fail_msg("invalid type %d", (int)a->type);
    }
}

void assert_jobdef_equal(const proto_jobdef_t *a, const proto_jobdef_t *b)
{
    equal_jobdef(a, b);
}
