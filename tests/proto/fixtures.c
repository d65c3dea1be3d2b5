/* fixtures.c: fill any proto struct from messages.def, field by field.
 *
 * Written against the generated structs only, not the codec's tables, so a
 * round trip through the codec checks the tables too. Values are chosen to
 * reach the encodings' edges: u64 above 2^63, u32 near 2^32, negative i64
 * below -2^32, UTF-8 strings, binary with NUL and 0xff bytes. */
#include "fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bool all;
    unsigned serial;        /* makes every value distinct */
} filler_t;

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p)
        abort();
    return p;
}

static char *fill_str(filler_t *f, const char *member)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s-%u-\xc3\xa9", member, ++f->serial);
    char *s = strdup(buf);
    if (!s)
        abort();
    return s;
}

static uint8_t *fill_bin(filler_t *f, size_t *len)
{
    static const uint8_t bytes[] = { 0x00, 0xff, 0x80, 0x0a, 0x00, 0x1b };
    uint8_t *b = xcalloc(1, sizeof bytes);
    memcpy(b, bytes, sizeof bytes);
    b[3] = (uint8_t)++f->serial;
    *len = sizeof bytes;
    return b;
}

static char **fill_strs(filler_t *f, const char *member, size_t *count)
{
    char **items = xcalloc(3, sizeof *items);
    for (size_t i = 0; i < 3; i++)
        items[i] = fill_str(f, member);
    *count = 3;
    return items;
}

#define IS_REQ_REQ true
#define IS_REQ_OPT false
#define FILL_U64(n, st)  p->n = 0x8000000000000000ull + ++f->serial;
#define FILL_U32(n, st)  p->n = 0xffff0000u + ++f->serial;
#define FILL_I64(n, st)  p->n = -5000000000ll - ++f->serial;
#define FILL_BOOL(n, st) p->n = true;
#define FILL_STR(n, st)  p->n = fill_str(f, #n);
#define FILL_BIN(n, st)  p->n = fill_bin(f, &p->n##_len);
#define FILL_STRS(n, st) p->n = fill_strs(f, #n, &p->n##_count);
#define FILL_LIST(n, st)                              \
    p->n##_count = 2;                                 \
    p->n = xcalloc(2, sizeof *p->n);                  \
    fill_##st(f, &p->n[0]);                           \
    fill_##st(f, &p->n[1]);
#define FILL_OBJ(n, st)                               \
    p->n = xcalloc(1, sizeof *p->n);                  \
    fill_##st(f, p->n);
#define FILL(kind, n, key, req, st) if (f->all || IS_REQ_##req) { FILL_##kind(n, st) }

#define PROTO_STRUCT(name, FIELDS) \
    __attribute__((unused)) static void fill_##name(filler_t *f, PROTO_TYPE(name) *p) \
    { FIELDS(FILL) }
#define PROTO_MESSAGE(ENUM, name, tag, FIELDS) PROTO_STRUCT(name, FIELDS)
#include "messages.def"
#undef PROTO_STRUCT
#undef PROTO_MESSAGE

void fixture_message(proto_msg_t *msg, proto_type_t type, bool all)
{
    filler_t f = { .all = all, .serial = (unsigned)type * 1000u };
    memset(msg, 0, sizeof *msg);
    msg->type = type;
    msg->version = PROTO_VERSION;
    switch (type) {
#define PROTO_STRUCT(name, FIELDS)
#define PROTO_MESSAGE(ENUM, name, tag, FIELDS) \
    case PROTO_MSG_##ENUM: fill_##name(&f, &msg->u.name); break;
#include "messages.def"
#undef PROTO_STRUCT
#undef PROTO_MESSAGE
    default:
        abort();
    }
}

proto_jobdef_t *fixture_jobdef(bool all)
{
    filler_t f = { .all = all, .serial = 77000u };
    proto_jobdef_t *def = xcalloc(1, sizeof *def);
    fill_jobdef(&f, def);
    return def;
}

#define KEYINFO(kind, n, key, req, st) { key, IS_REQ_##req },
#define PROTO_STRUCT(name, FIELDS)
#define PROTO_MESSAGE(ENUM, name, tag, FIELDS) \
    static const fixture_key_t keys_##name[] = { FIELDS(KEYINFO) };
#include "messages.def"
#undef PROTO_STRUCT
#undef PROTO_MESSAGE

const fixture_key_t *fixture_keys(proto_type_t type, size_t *count)
{
    switch (type) {
#define PROTO_STRUCT(name, FIELDS)
#define PROTO_MESSAGE(ENUM, name, tag, FIELDS) \
    case PROTO_MSG_##ENUM: *count = sizeof keys_##name / sizeof keys_##name[0]; return keys_##name;
#include "messages.def"
#undef PROTO_STRUCT
#undef PROTO_MESSAGE
    default:
        *count = 0;
        return NULL;
    }
}
