/* codec.c: rackrun's generic msgpack codec, driven by tables built from messages.def.
 *
 * messages.def is expanded once more here, into one field-descriptor table per
 * struct and message (key, kind, offset, count offset, required, nested
 * table). One encoder, one decoder, one free and one deep copy walk those
 * tables, so a field added to messages.def is encoded, decoded, validated and
 * freed with no other code. The road not taken: per-message hand-written
 * pack/unpack functions, which drift from the structs and from each other.
 *
 * Decoding runs the bounded pre-walk (prewalk.c) first, so msgpack-c only
 * ever sees bytes whose declared sizes are known to be honest.
 */
#include "proto.h"
#include "prewalk.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tables ---- */

typedef enum {
    KIND_U64, KIND_U32, KIND_I64, KIND_BOOL, KIND_STR, KIND_BIN, KIND_STRS, KIND_LIST, KIND_OBJ,
} field_kind_t;

typedef struct table table_t;
typedef const table_t *(*table_fn)(void);

typedef struct {
    const char *key;
    field_kind_t kind;
    bool required;
    size_t offset;          /* the member */
    size_t count_offset;    /* BIN: member_len; STRS/LIST: member_count; else 0 */
    table_fn sub;           /* LIST/OBJ: the element's table; else NULL */
} field_t;

struct table {
    const char *name;       /* struct name, used in error texts ("job_event") */
    size_t size;
    const field_t *fields;
    size_t nfields;
};

#define REQUIRED_REQ true
#define REQUIRED_OPT false
#define COUNT_OF_U64(T, n)  0
#define COUNT_OF_U32(T, n)  0
#define COUNT_OF_I64(T, n)  0
#define COUNT_OF_BOOL(T, n) 0
#define COUNT_OF_STR(T, n)  0
#define COUNT_OF_BIN(T, n)  offsetof(T, n##_len)
#define COUNT_OF_STRS(T, n) offsetof(T, n##_count)
#define COUNT_OF_LIST(T, n) offsetof(T, n##_count)
#define COUNT_OF_OBJ(T, n)  0
#define SUB_OF_U64(st)  NULL
#define SUB_OF_U32(st)  NULL
#define SUB_OF_I64(st)  NULL
#define SUB_OF_BOOL(st) NULL
#define SUB_OF_STR(st)  NULL
#define SUB_OF_BIN(st)  NULL
#define SUB_OF_STRS(st) NULL
#define SUB_OF_LIST(st) table_##st
#define SUB_OF_OBJ(st)  table_##st

#define FIELD_ENTRY(kind, n, key_, req, st) \
    { key_, KIND_##kind, REQUIRED_##req, offsetof(T, n), COUNT_OF_##kind(T, n), SUB_OF_##kind(st) },

/* One function per struct returning its table: the block-scope typedef T lets
 * FIELD_ENTRY use offsetof without being told the struct's name. The seen/
 * present masks in decode_struct are 64 bits wide, hence the assertion. */
#define PROTO_STRUCT(name, FIELDS)                                              \
    __attribute__((unused)) static const table_t *table_##name(void)            \
    {                                                                           \
        typedef PROTO_TYPE(name) T;                                                \
        static const field_t fields[] = { FIELDS(FIELD_ENTRY) };                \
        _Static_assert(sizeof fields / sizeof fields[0] <= 64, #name ": > 64 fields"); \
        static const table_t table = { #name, sizeof(T), fields,                \
                                       sizeof fields / sizeof fields[0] };      \
        return &table;                                                          \
    }
#define PROTO_MESSAGE(ENUM, name, tag, FIELDS) PROTO_STRUCT(name, FIELDS)
#include "messages.def"
#undef PROTO_STRUCT
#undef PROTO_MESSAGE

static const struct {
    const char *tag;
    table_fn table;
} messages[PROTO_MSG_COUNT] = {
#define PROTO_STRUCT(name, FIELDS)
#define PROTO_MESSAGE(ENUM, name, tag_, FIELDS) [PROTO_MSG_##ENUM] = { tag_, table_##name },
#include "messages.def"
#undef PROTO_STRUCT
#undef PROTO_MESSAGE
};

#define MEMBER(base, off, type) ((type *)((char *)(base) + (off)))
#define CMEMBER(base, off, type) ((const type *)((const char *)(base) + (off)))

/* ---- names ---- */

const char *proto_type_name(proto_type_t type)
{
    if (type <= PROTO_MSG_NONE || type >= PROTO_MSG_COUNT)
        return NULL;
    return messages[type].tag;
}

/* The type whose tag is the LEN bytes at NAME (not NUL-terminated). */
static proto_type_t type_from_bytes(const char *name, size_t len)
{
    for (int i = PROTO_MSG_NONE + 1; i < PROTO_MSG_COUNT; i++)
        if (strlen(messages[i].tag) == len && memcmp(messages[i].tag, name, len) == 0)
            return (proto_type_t)i;
    return PROTO_MSG_NONE;
}

proto_type_t proto_type_from_name(const char *name)
{
    return name ? type_from_bytes(name, strlen(name)) : PROTO_MSG_NONE;
}

const char *proto_status_name(proto_status_t status)
{
    static const char *const names[] = {
        [PROTO_OK] = "ok",                 [PROTO_E_TOO_BIG] = "too_big",
        [PROTO_E_TRUNCATED] = "truncated", [PROTO_E_LENGTH] = "length",
        [PROTO_E_TOO_DEEP] = "too_deep",   [PROTO_E_TRAILING] = "trailing",
        [PROTO_E_MALFORMED] = "malformed", [PROTO_E_UNKNOWN_TYPE] = "unknown_type",
        [PROTO_E_VERSION] = "version",     [PROTO_E_MISSING] = "missing",
        [PROTO_E_TYPE] = "type",           [PROTO_E_RANGE] = "range",
        [PROTO_E_NOMEM] = "nomem",
    };
    if ((unsigned)status >= sizeof names / sizeof names[0])
        return "unknown";
    return names[status];
}

/* ---- errors ---- */

static void error_clear(proto_error_t *err)
{
    err->status = PROTO_OK;
    err->key[0] = '\0';
    err->text[0] = '\0';
}

/* snprintf that may truncate on purpose (error texts, keys): through
 * vsnprintf, so gcc does not warn about the truncation it cannot rule out. */
static void format_into(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void format_into(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, size, fmt, ap);
    va_end(ap);
}

/* "a.b" from PATH ("" at the top) and KEY. */
static void join_path(char *out, size_t size, const char *path, const char *key)
{
    format_into(out, size, "%s%s%s", path, *path ? "." : "", key);
}

/* Fill ERR for KEY (under PATH) of message NAME: "NAME: key 'PATH.KEY' DETAIL". */
static int key_error(proto_error_t *err, const char *name, proto_status_t status,
                     const char *path, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int key_error(proto_error_t *err, const char *name, proto_status_t status,
                     const char *path, const char *key, const char *fmt, ...)
{
    char full[96], detail[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    join_path(full, sizeof full, path, key);
    err->status = status;
    format_into(err->key, sizeof err->key, "%s", full);
    format_into(err->text, sizeof err->text, "%s: key '%s' %s", name, full, detail);
    return -1;
}

static int msg_error(proto_error_t *err, const char *name, proto_status_t status,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int msg_error(proto_error_t *err, const char *name, proto_status_t status,
                     const char *fmt, ...)
{
    char detail[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    err->status = status;
    err->key[0] = '\0';
    format_into(err->text, sizeof err->text, "%s: %s", name, detail);
    return -1;
}

static const char *object_type_name(msgpack_object_type type)
{
    switch (type) {
    case MSGPACK_OBJECT_NIL:              return "nil";
    case MSGPACK_OBJECT_BOOLEAN:          return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return "unsigned integer";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "negative integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:          return "float";
    case MSGPACK_OBJECT_STR:              return "string";
    case MSGPACK_OBJECT_ARRAY:            return "array";
    case MSGPACK_OBJECT_MAP:              return "map";
    case MSGPACK_OBJECT_BIN:              return "binary";
    case MSGPACK_OBJECT_EXT:              return "ext";
    }
    return "unknown";
}

static const char *kind_expects(field_kind_t kind)
{
    static const char *const expects[] = {
        [KIND_U64] = "unsigned integer", [KIND_U32] = "unsigned 32-bit integer",
        [KIND_I64] = "integer", [KIND_BOOL] = "bool", [KIND_STR] = "string",
        [KIND_BIN] = "binary", [KIND_STRS] = "array of strings",
        [KIND_LIST] = "array of maps", [KIND_OBJ] = "map",
    };
    return expects[kind];
}

/* ---- free and copy ---- */

static void free_struct(const table_t *t, void *base)
{
    for (size_t i = 0; i < t->nfields; i++) {
        const field_t *f = &t->fields[i];
        void *member = MEMBER(base, f->offset, void);
        switch (f->kind) {
        case KIND_STR:
        case KIND_BIN:
            free(*(void **)member);
            break;
        case KIND_STRS: {
            char **items = *(char ***)member;
            size_t count = *MEMBER(base, f->count_offset, size_t);
            for (size_t j = 0; items && j < count; j++)
                free(items[j]);
            free(items);
            break;
        }
        case KIND_LIST: {
            const table_t *sub = f->sub();
            char *items = *(char **)member;
            size_t count = *MEMBER(base, f->count_offset, size_t);
            for (size_t j = 0; items && j < count; j++)
                free_struct(sub, items + j * sub->size);
            free(items);
            break;
        }
        case KIND_OBJ:
            if (*(void **)member)
                free_struct(f->sub(), *(void **)member);
            free(*(void **)member);
            break;
        default:
            break;
        }
    }
}

static int copy_struct(const table_t *t, const void *src, void *dst);

/* Deep-copy one pointer field; DST's member and count are still NULL/0. */
static int copy_field(const field_t *f, const void *src, void *dst)
{
    const void *from = *CMEMBER(src, f->offset, void *);
    void **to = MEMBER(dst, f->offset, void *);
    size_t count = f->count_offset ? *CMEMBER(src, f->count_offset, size_t) : 0;
    if (!from)
        return 0;
    switch (f->kind) {
    case KIND_STR:
        return (*to = strdup(from)) ? 0 : -1;
    case KIND_BIN:
        if (!(*to = malloc(count ? count : 1)))
            return -1;
        memcpy(*to, from, count);
        break;
    case KIND_STRS:
        if (!(*to = calloc(count ? count : 1, sizeof(char *))))
            return -1;
        *MEMBER(dst, f->count_offset, size_t) = count;
        for (size_t j = 0; j < count; j++)
            if (((const char *const *)from)[j]
                && !(((char **)*to)[j] = strdup(((const char *const *)from)[j])))
                return -1;
        return 0;
    case KIND_LIST: {
        const table_t *sub = f->sub();
        if (!(*to = calloc(count ? count : 1, sub->size)))
            return -1;
        *MEMBER(dst, f->count_offset, size_t) = count;
        for (size_t j = 0; j < count; j++)
            if (copy_struct(sub, (const char *)from + j * sub->size,
                            (char *)*to + j * sub->size))
                return -1;
        return 0;
    }
    case KIND_OBJ:
        if (!(*to = calloc(1, f->sub()->size)))
            return -1;
        return copy_struct(f->sub(), from, *to);
    default:
        return 0;
    }
    *MEMBER(dst, f->count_offset, size_t) = count;
    return 0;
}

/* Copy SRC into DST: scalars at once, then pointers detached and deep-copied,
 * so a failure leaves DST owning only what it allocated (free_struct frees it). */
static int copy_struct(const table_t *t, const void *src, void *dst)
{
    memcpy(dst, src, t->size);
    for (size_t i = 0; i < t->nfields; i++) {
        const field_t *f = &t->fields[i];
        if (f->kind >= KIND_STR) {
            *MEMBER(dst, f->offset, void *) = NULL;
            if (f->count_offset)
                *MEMBER(dst, f->count_offset, size_t) = 0;
        }
    }
    for (size_t i = 0; i < t->nfields; i++)
        if (t->fields[i].kind >= KIND_STR && copy_field(&t->fields[i], src, dst))
            return -1;
    return 0;
}

/* ---- decoder ---- */

typedef struct {
    proto_error_t *err;
    const char *name;       /* the message's struct name, for texts */
} decoder_t;

static int decode_struct(decoder_t *d, const table_t *t, const msgpack_object *o,
                         void *base, const char *path);

static int decode_uint(decoder_t *d, const field_t *f, const msgpack_object *o,
                       uint64_t max, uint64_t *out, const char *path)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return key_error(d->err, d->name, PROTO_E_RANGE, path, f->key,
                         "value %lld is negative", (long long)o->via.i64);
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return key_error(d->err, d->name, PROTO_E_TYPE, path, f->key, "expected %s, got %s",
                         kind_expects(f->kind), object_type_name(o->type));
    if (o->via.u64 > max)
        return key_error(d->err, d->name, PROTO_E_RANGE, path, f->key,
                         "value %llu > %llu", (unsigned long long)o->via.u64,
                         (unsigned long long)max);
    *out = o->via.u64;
    return 0;
}

static int decode_i64(decoder_t *d, const field_t *f, const msgpack_object *o,
                      int64_t *out, const char *path)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    uint64_t u;
    if (decode_uint(d, f, o, INT64_MAX, &u, path))
        return -1;
    *out = (int64_t)u;
    return 0;
}

/* A NUL-free copy of string O (ITEM >= 0: element ITEM of an array field). */
static int decode_str(decoder_t *d, const field_t *f, const msgpack_object *o,
                      char **out, const char *path, long item)
{
    char where[32] = "";
    if (item >= 0)
        snprintf(where, sizeof where, "item %ld: ", item);
    if (o->type != MSGPACK_OBJECT_STR)
        return key_error(d->err, d->name, PROTO_E_TYPE, path, f->key,
                         "%sexpected string, got %s", where, object_type_name(o->type));
    if (memchr(o->via.str.ptr, '\0', o->via.str.size))
        return key_error(d->err, d->name, PROTO_E_TYPE, path, f->key,
                         "%sexpected string without NUL bytes", where);
    if (!(*out = strndup(o->via.str.ptr, o->via.str.size)))
        return key_error(d->err, d->name, PROTO_E_NOMEM, path, f->key, "out of memory");
    return 0;
}

static int decode_bin(decoder_t *d, const field_t *f, const msgpack_object *o,
                      void *base, const char *path)
{
    if (o->type != MSGPACK_OBJECT_BIN)
        return key_error(d->err, d->name, PROTO_E_TYPE, path, f->key, "expected binary, got %s",
                         object_type_name(o->type));
    uint8_t *data = malloc(o->via.bin.size ? o->via.bin.size : 1); /* present, even if empty */
    if (!data)
        return key_error(d->err, d->name, PROTO_E_NOMEM, path, f->key, "out of memory");
    if (o->via.bin.size)
        memcpy(data, o->via.bin.ptr, o->via.bin.size);
    *MEMBER(base, f->offset, uint8_t *) = data;
    *MEMBER(base, f->count_offset, size_t) = o->via.bin.size;
    return 0;
}

/* Check that O is an array and allocate its COUNT elements of SIZE into the
 * member (set before any element is decoded, so free_struct can undo it). */
static int decode_array(decoder_t *d, const field_t *f, const msgpack_object *o,
                        void *base, size_t size, const char *path)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return key_error(d->err, d->name, PROTO_E_TYPE, path, f->key, "expected %s, got %s",
                         kind_expects(f->kind), object_type_name(o->type));
    size_t count = o->via.array.size;
    void *items = calloc(count ? count : 1, size);
    if (!items)
        return key_error(d->err, d->name, PROTO_E_NOMEM, path, f->key, "out of memory");
    *MEMBER(base, f->offset, void *) = items;
    *MEMBER(base, f->count_offset, size_t) = count;
    return 0;
}

static int decode_strs(decoder_t *d, const field_t *f, const msgpack_object *o,
                       void *base, const char *path)
{
    if (decode_array(d, f, o, base, sizeof(char *), path))
        return -1;
    char **items = *MEMBER(base, f->offset, char **);
    for (uint32_t i = 0; i < o->via.array.size; i++)
        if (decode_str(d, f, &o->via.array.ptr[i], &items[i], path, (long)i))
            return -1;
    return 0;
}

static int decode_list(decoder_t *d, const field_t *f, const msgpack_object *o,
                       void *base, const char *path)
{
    const table_t *sub = f->sub();
    char subpath[96];
    if (decode_array(d, f, o, base, sub->size, path))
        return -1;
    join_path(subpath, sizeof subpath, path, f->key);
    char *items = *MEMBER(base, f->offset, char *);
    for (uint32_t i = 0; i < o->via.array.size; i++)
        if (decode_struct(d, sub, &o->via.array.ptr[i], items + i * sub->size, subpath))
            return -1;
    return 0;
}

static int decode_obj(decoder_t *d, const field_t *f, const msgpack_object *o,
                      void *base, const char *path)
{
    const table_t *sub = f->sub();
    char subpath[96];
    if (o->type != MSGPACK_OBJECT_MAP)
        return key_error(d->err, d->name, PROTO_E_TYPE, path, f->key, "expected map, got %s",
                         object_type_name(o->type));
    void *obj = calloc(1, sub->size);
    if (!obj)
        return key_error(d->err, d->name, PROTO_E_NOMEM, path, f->key, "out of memory");
    *MEMBER(base, f->offset, void *) = obj;
    join_path(subpath, sizeof subpath, path, f->key);
    return decode_struct(d, sub, o, obj, subpath);
}

static int decode_field(decoder_t *d, const field_t *f, const msgpack_object *o,
                        void *base, const char *path)
{
    void *member = MEMBER(base, f->offset, void);
    uint64_t u;
    switch (f->kind) {
    case KIND_U64:
        return decode_uint(d, f, o, UINT64_MAX, (uint64_t *)member, path);
    case KIND_U32:
        if (decode_uint(d, f, o, UINT32_MAX, &u, path))
            return -1;
        *(uint32_t *)member = (uint32_t)u;
        return 0;
    case KIND_I64:
        return decode_i64(d, f, o, (int64_t *)member, path);
    case KIND_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return key_error(d->err, d->name, PROTO_E_TYPE, path, f->key,
                             "expected bool, got %s", object_type_name(o->type));
        *(bool *)member = o->via.boolean;
        return 0;
    case KIND_STR:  return decode_str(d, f, o, (char **)member, path, -1);
    case KIND_BIN:  return decode_bin(d, f, o, base, path);
    case KIND_STRS: return decode_strs(d, f, o, base, path);
    case KIND_LIST: return decode_list(d, f, o, base, path);
    case KIND_OBJ:  return decode_obj(d, f, o, base, path);
    }
    return -1;
}

/* Index of the field keyed by the LEN bytes at KEY, or -1. */
static int find_field(const table_t *t, const char *key, size_t len)
{
    for (size_t i = 0; i < t->nfields; i++)
        if (strlen(t->fields[i].key) == len && memcmp(t->fields[i].key, key, len) == 0)
            return (int)i;
    return -1;
}

/* Check that map O has string keys only, none twice among FIELDS' keys. */
static int check_keys(decoder_t *d, const table_t *t, const msgpack_object_map *map,
                      uint64_t *seen, const char *path)
{
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            return msg_error(d->err, d->name, PROTO_E_MALFORMED, "map '%s' has a %s key",
                             *path ? path : "(top)", object_type_name(k->type));
        int idx = find_field(t, k->via.str.ptr, k->via.str.size);
        if (idx < 0)
            continue;                       /* unknown key: forward compatibility */
        if (*seen & (1ull << idx))
            return key_error(d->err, d->name, PROTO_E_MALFORMED, path, t->fields[idx].key,
                             "appears twice");
        *seen |= 1ull << idx;
    }
    return 0;
}

/* Decode map O into BASE (zeroed). On error BASE may hold partial
 * allocations: the caller frees it with free_struct. nil counts as absent. */
static int decode_struct(decoder_t *d, const table_t *t, const msgpack_object *o,
                         void *base, const char *path)
{
    uint64_t seen = 0, present = 0;
    if (o->type != MSGPACK_OBJECT_MAP)
        return key_error(d->err, d->name, PROTO_E_TYPE, "", path, "item: expected map, got %s",
                         object_type_name(o->type));
    if (check_keys(d, t, &o->via.map, &seen, path))
        return -1;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        int idx = find_field(t, kv->key.via.str.ptr, kv->key.via.str.size);
        if (idx < 0 || kv->val.type == MSGPACK_OBJECT_NIL)
            continue;
        present |= 1ull << idx;
        if (decode_field(d, &t->fields[idx], &kv->val, base, path))
            return -1;
    }
    for (size_t i = 0; i < t->nfields; i++)
        if (t->fields[i].required && !(present & (1ull << i)))
            return key_error(d->err, d->name, PROTO_E_MISSING, path, t->fields[i].key,
                             "missing");
    return 0;
}

/* Pre-walk BUF, then let msgpack-c build it (into UP); the top must be a map. */
static int unpack_checked(const void *buf, size_t len, msgpack_unpacked *up,
                          proto_error_t *err)
{
    size_t off = 0;
    if (len > PROTO_MAX_MSG)
        return msg_error(err, "message", PROTO_E_TOO_BIG, "%zu bytes > limit %u", len,
                         PROTO_MAX_MSG);
    if (proto_prewalk(buf, len, err) != PROTO_OK)
        return -1;
    msgpack_unpacked_init(up);
    if (msgpack_unpack_next(up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len) {
        msgpack_unpacked_destroy(up);
        return msg_error(err, "message", PROTO_E_MALFORMED, "msgpack-c rejected the bytes");
    }
    if (up->data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(up);
        return msg_error(err, "message", PROTO_E_MALFORMED, "top level is a %s, not a map",
                         object_type_name(up->data.type));
    }
    return 0;
}

/* The value of top-level KEY in MAP (keys already known to be strings), or NULL. */
static const msgpack_object *top_value(const msgpack_object_map *map, const char *key)
{
    size_t len = strlen(key);
    for (uint32_t i = 0; i < map->size; i++)
        if (map->ptr[i].key.type == MSGPACK_OBJECT_STR && map->ptr[i].key.via.str.size == len
            && memcmp(map->ptr[i].key.via.str.ptr, key, len) == 0)
            return &map->ptr[i].val;
    return NULL;
}

/* "t": the message type. */
static int decode_type(const msgpack_object_map *map, proto_msg_t *msg, proto_error_t *err)
{
    const msgpack_object *t = top_value(map, "t");
    char shown[33];
    if (!t)
        return key_error(err, "message", PROTO_E_MISSING, "", "t", "missing");
    if (t->type != MSGPACK_OBJECT_STR)
        return key_error(err, "message", PROTO_E_TYPE, "", "t", "expected string, got %s",
                         object_type_name(t->type));
    msg->type = type_from_bytes(t->via.str.ptr, t->via.str.size);
    if (msg->type != PROTO_MSG_NONE)
        return 0;
    size_t n = t->via.str.size < sizeof shown - 1 ? t->via.str.size : sizeof shown - 1;
    for (size_t i = 0; i < n; i++)         /* never print raw peer bytes */
        shown[i] = t->via.str.ptr[i] >= 0x20 && t->via.str.ptr[i] < 0x7f ? t->via.str.ptr[i] : '?';
    shown[n] = '\0';
    err->status = PROTO_E_UNKNOWN_TYPE;
    format_into(err->key, sizeof err->key, "t");
    format_into(err->text, sizeof err->text, "message: unknown type '%s'", shown);
    return -1;
}

/* "v": the version; HELLO is decoded whatever it says (the master answers
 * with its own range). */
static int decode_version(const msgpack_object_map *map, proto_msg_t *msg, const char *name,
                          proto_error_t *err)
{
    const msgpack_object *v = top_value(map, "v");
    if (!v)
        return key_error(err, name, PROTO_E_MISSING, "", "v", "missing");
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return key_error(err, name, PROTO_E_VERSION, "", "v", "version %lld not in [%u, %u]",
                         (long long)v->via.i64, PROTO_VERSION_MIN, PROTO_VERSION);
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return key_error(err, name, PROTO_E_TYPE, "", "v", "expected unsigned integer, got %s",
                         object_type_name(v->type));
    bool in_range = v->via.u64 >= PROTO_VERSION_MIN && v->via.u64 <= PROTO_VERSION;
    if (v->via.u64 > UINT32_MAX || (!in_range && msg->type != PROTO_MSG_HELLO))
        return key_error(err, name, PROTO_E_VERSION, "", "v", "version %llu not in [%u, %u]",
                         (unsigned long long)v->via.u64, PROTO_VERSION_MIN, PROTO_VERSION);
    msg->version = (uint32_t)v->via.u64;
    return 0;
}

int proto_decode(const void *buf, size_t len, proto_msg_t *msg, proto_error_t *err)
{
    proto_error_t scratch;
    msgpack_unpacked up;
    err = err ? err : &scratch;
    error_clear(err);
    memset(msg, 0, sizeof *msg);
    if (unpack_checked(buf, len, &up, err))
        return -1;
    const msgpack_object_map *map = &up.data.via.map;
    for (uint32_t i = 0; i < map->size; i++)
        if (map->ptr[i].key.type != MSGPACK_OBJECT_STR) {
            msg_error(err, "message", PROTO_E_MALFORMED, "top-level map has a %s key",
                      object_type_name(map->ptr[i].key.type));
            goto fail;
        }
    if (decode_type(map, msg, err))
        goto fail;
    const table_t *t = messages[msg->type].table();
    if (decode_version(map, msg, t->name, err))
        goto fail;
    decoder_t d = { .err = err, .name = t->name };
    if (decode_struct(&d, t, &up.data, &msg->u, ""))
        goto fail;
    msgpack_unpacked_destroy(&up);
    return 0;
fail:
    msgpack_unpacked_destroy(&up);
    proto_msg_free(msg);
    return -1;
}

void proto_msg_free(proto_msg_t *msg)
{
    if (!msg)
        return;
    if (msg->type > PROTO_MSG_NONE && msg->type < PROTO_MSG_COUNT)
        free_struct(messages[msg->type].table(), &msg->u);
    memset(msg, 0, sizeof *msg);
}

/* ---- encoder ---- */

typedef struct {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    proto_error_t *err;
    const char *name;
    int pack_rc;            /* OR of msgpack-c's results: nonzero = out of memory */
} encoder_t;

static bool field_present(const field_t *f, const void *base)
{
    const void *member = CMEMBER(base, f->offset, void);
    if (f->required)
        return true;
    switch (f->kind) {
    case KIND_U64:  return *(const uint64_t *)member != 0;
    case KIND_U32:  return *(const uint32_t *)member != 0;
    case KIND_I64:  return *(const int64_t *)member != 0;
    case KIND_BOOL: return *(const bool *)member;
    case KIND_STR:
    case KIND_BIN:
    case KIND_OBJ:  return *(void *const *)member != NULL;
    case KIND_STRS:
    case KIND_LIST: return *CMEMBER(base, f->count_offset, size_t) != 0;
    }
    return false;
}

static size_t count_present(const table_t *t, const void *base)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nfields; i++)
        n += field_present(&t->fields[i], base);
    return n;
}

static void pack_str(encoder_t *e, const char *s)
{
    size_t len = strlen(s);
    e->pack_rc |= msgpack_pack_str(&e->pk, len);
    e->pack_rc |= msgpack_pack_str_body(&e->pk, s, len);
}

static int encode_struct(encoder_t *e, const table_t *t, const void *base, const char *path);

static int encode_strs(encoder_t *e, const field_t *f, const void *base, const char *path)
{
    const char *const *items = *CMEMBER(base, f->offset, char **);
    size_t count = *CMEMBER(base, f->count_offset, size_t);
    if (count && !items)
        return key_error(e->err, e->name, PROTO_E_MISSING, path, f->key,
                         "has %zu items but no array", count);
    e->pack_rc |= msgpack_pack_array(&e->pk, count);
    for (size_t j = 0; j < count; j++) {
        if (!items[j])
            return key_error(e->err, e->name, PROTO_E_MISSING, path, f->key,
                             "item %zu is NULL", j);
        pack_str(e, items[j]);
    }
    return 0;
}

static int encode_list(encoder_t *e, const field_t *f, const void *base, const char *path)
{
    const table_t *sub = f->sub();
    const char *items = *CMEMBER(base, f->offset, char *);
    size_t count = *CMEMBER(base, f->count_offset, size_t);
    char subpath[96];
    if (count && !items)
        return key_error(e->err, e->name, PROTO_E_MISSING, path, f->key,
                         "has %zu items but no array", count);
    join_path(subpath, sizeof subpath, path, f->key);
    e->pack_rc |= msgpack_pack_array(&e->pk, count);
    for (size_t j = 0; j < count; j++)
        if (encode_struct(e, sub, items + j * sub->size, subpath))
            return -1;
    return 0;
}

static int encode_field(encoder_t *e, const field_t *f, const void *base, const char *path)
{
    const void *member = CMEMBER(base, f->offset, void);
    const void *ptr = f->kind >= KIND_STR ? *(const void *const *)member : NULL;
    char subpath[96];
    if ((f->kind == KIND_STR || f->kind == KIND_OBJ) && !ptr)
        return key_error(e->err, e->name, PROTO_E_MISSING, path, f->key,
                         "is required but NULL");
    pack_str(e, f->key);
    switch (f->kind) {
    case KIND_U64:  e->pack_rc |= msgpack_pack_uint64(&e->pk, *(const uint64_t *)member); break;
    case KIND_U32:  e->pack_rc |= msgpack_pack_uint32(&e->pk, *(const uint32_t *)member); break;
    case KIND_I64:  e->pack_rc |= msgpack_pack_int64(&e->pk, *(const int64_t *)member); break;
    case KIND_BOOL:
        e->pack_rc |= *(const bool *)member ? msgpack_pack_true(&e->pk)
                                            : msgpack_pack_false(&e->pk);
        break;
    case KIND_STR:  pack_str(e, ptr); break;
    case KIND_BIN: {
        size_t len = *CMEMBER(base, f->count_offset, size_t);
        if (len && !ptr)
            return key_error(e->err, e->name, PROTO_E_MISSING, path, f->key,
                             "has %zu bytes but no buffer", len);
        e->pack_rc |= msgpack_pack_bin(&e->pk, len);
        if (len)
            e->pack_rc |= msgpack_pack_bin_body(&e->pk, ptr, len);
        break;
    }
    case KIND_STRS: return encode_strs(e, f, base, path);
    case KIND_LIST: return encode_list(e, f, base, path);
    case KIND_OBJ:
        join_path(subpath, sizeof subpath, path, f->key);
        return encode_struct(e, f->sub(), ptr, subpath);
    }
    return 0;
}

static int encode_fields(encoder_t *e, const table_t *t, const void *base, const char *path)
{
    for (size_t i = 0; i < t->nfields; i++)
        if (field_present(&t->fields[i], base) && encode_field(e, &t->fields[i], base, path))
            return -1;
    return 0;
}

static int encode_struct(encoder_t *e, const table_t *t, const void *base, const char *path)
{
    e->pack_rc |= msgpack_pack_map(&e->pk, count_present(t, base));
    return encode_fields(e, t, base, path);
}

static void encoder_init(encoder_t *e, const char *name, proto_error_t *err)
{
    msgpack_sbuffer_init(&e->sbuf);
    msgpack_packer_init(&e->pk, &e->sbuf, msgpack_sbuffer_write);
    e->err = err;
    e->name = name;
    e->pack_rc = 0;
    error_clear(err);
}

/* Hand the encoded bytes to the caller, unless packing failed or they are too many. */
static int encoder_finish(encoder_t *e, int rc, uint8_t **out, size_t *out_len)
{
    if (rc == 0 && e->pack_rc)
        rc = msg_error(e->err, e->name, PROTO_E_NOMEM, "out of memory while encoding");
    if (rc == 0 && e->sbuf.size > PROTO_MAX_MSG)
        rc = msg_error(e->err, e->name, PROTO_E_TOO_BIG, "%zu bytes > limit %u", e->sbuf.size,
                       PROTO_MAX_MSG);
    if (rc) {
        msgpack_sbuffer_destroy(&e->sbuf);
        return -1;
    }
    *out_len = e->sbuf.size;
    *out = (uint8_t *)msgpack_sbuffer_release(&e->sbuf);
    return 0;
}

int proto_encode(const proto_msg_t *msg, uint8_t **out, size_t *out_len, proto_error_t *err)
{
    proto_error_t scratch;
    encoder_t e;
    err = err ? err : &scratch;
    if (msg->type <= PROTO_MSG_NONE || msg->type >= PROTO_MSG_COUNT) {
        error_clear(err);
        return msg_error(err, "message", PROTO_E_UNKNOWN_TYPE, "cannot encode type %d",
                         (int)msg->type);
    }
    const table_t *t = messages[msg->type].table();
    encoder_init(&e, t->name, err);
    e.pack_rc |= msgpack_pack_map(&e.pk, count_present(t, &msg->u) + 2);
    pack_str(&e, "t");
    pack_str(&e, messages[msg->type].tag);
    pack_str(&e, "v");
    e.pack_rc |= msgpack_pack_uint32(&e.pk, PROTO_VERSION);
    return encoder_finish(&e, encode_fields(&e, t, &msg->u, ""), out, out_len);
}

/* ---- jobdef ---- */

proto_jobdef_t *proto_jobdef_dup(const proto_jobdef_t *def)
{
    const table_t *t = table_jobdef();
    proto_jobdef_t *copy;
    if (!def || !(copy = calloc(1, sizeof *copy)))
        return NULL;
    if (copy_struct(t, def, copy)) {
        proto_jobdef_destroy(&copy);
        return NULL;
    }
    return copy;
}

void proto_jobdef_destroy(proto_jobdef_t **def)
{
    if (!def || !*def)
        return;
    free_struct(table_jobdef(), *def);
    free(*def);
    *def = NULL;
}

int proto_jobdef_encode(const proto_jobdef_t *def, uint8_t **out, size_t *out_len,
                        proto_error_t *err)
{
    proto_error_t scratch;
    encoder_t e;
    const table_t *t = table_jobdef();
    err = err ? err : &scratch;
    encoder_init(&e, t->name, err);
    return encoder_finish(&e, encode_struct(&e, t, def, ""), out, out_len);
}

int proto_jobdef_decode(const void *buf, size_t len, proto_jobdef_t **def, proto_error_t *err)
{
    proto_error_t scratch;
    msgpack_unpacked up;
    const table_t *t = table_jobdef();
    err = err ? err : &scratch;
    error_clear(err);
    *def = NULL;
    if (unpack_checked(buf, len, &up, err))
        return -1;
    proto_jobdef_t *result = calloc(1, sizeof *result);
    decoder_t d = { .err = err, .name = t->name };
    if (!result)
        msg_error(err, t->name, PROTO_E_NOMEM, "out of memory");
    else if (decode_struct(&d, t, &up.data, result, ""))
        proto_jobdef_destroy(&result);
    msgpack_unpacked_destroy(&up);
    *def = result;
    return result ? 0 : -1;
}

/* ---- ERROR messages ---- */

int proto_error_msg(proto_msg_t *msg, const char *code, const char *key, const char *fmt, ...)
{
    va_list ap;
    memset(msg, 0, sizeof *msg);
    msg->type = PROTO_MSG_ERROR;
    msg->version = PROTO_VERSION;
    va_start(ap, fmt);
    int n = vasprintf(&msg->u.error.text, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg->u.error.text = NULL;
    msg->u.error.code = strdup(code ? code : "internal");
    msg->u.error.key = key ? strdup(key) : NULL;
    if (!msg->u.error.text || !msg->u.error.code || (key && !msg->u.error.key)) {
        proto_msg_free(msg);
        return -1;
    }
    return 0;
}
