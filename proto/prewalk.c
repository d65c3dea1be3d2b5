/* prewalk.c: bounded walk over raw msgpack bytes before msgpack-c sees them.
 *
 * msgpack-c trusts headers: a 5-byte array32 header declaring 134M items makes
 * it allocate 134M objects before it notices the bytes are not there. This
 * walk reads only headers and skips payloads, so it allocates nothing, and it
 * rejects any length or count larger than the bytes left (every item takes at
 * least one byte, a map pair two), larger than PROTO_MAX_ITEMS, nested deeper
 * than PROTO_MAX_DEPTH, and any byte after the one top-level object. Once it
 * passes, msgpack-c's allocations are bounded by the message size.
 *
 * Recursion is bounded by PROTO_MAX_DEPTH (checked before descending), and
 * the total work by the byte count, so the walk is linear in the input.
 */
#include "prewalk.h"

#include <stdarg.h>
#include <stdio.h>

typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    proto_error_t *err;
} walker_t;

static proto_status_t walk_object(walker_t *w, unsigned depth);

static proto_status_t fail(walker_t *w, proto_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static proto_status_t fail(walker_t *w, proto_status_t status, const char *fmt, ...)
{
    int n = snprintf(w->err->text, sizeof w->err->text, "message: offset %zu: ", w->pos);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err->text + n, sizeof w->err->text - (size_t)n, fmt, ap);
    va_end(ap);
    w->err->status = status;
    w->err->key[0] = '\0';
    return status;
}

/* Read an N-byte big-endian unsigned integer. */
static proto_status_t read_be(walker_t *w, unsigned n, uint64_t *out)
{
    if (w->len - w->pos < n)
        return fail(w, PROTO_E_TRUNCATED, "header needs %u bytes, %zu left", n,
                    w->len - w->pos);
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | w->buf[w->pos + i];
    w->pos += n;
    *out = v;
    return PROTO_OK;
}

/* Skip a fixed-size payload (numbers): running out is truncation. */
static proto_status_t skip_fixed(walker_t *w, size_t n)
{
    if (w->len - w->pos < n)
        return fail(w, PROTO_E_TRUNCATED, "value needs %zu bytes, %zu left", n,
                    w->len - w->pos);
    w->pos += n;
    return PROTO_OK;
}

/* Skip a payload whose length the bytes declared: a lie is a length error. */
static proto_status_t skip_declared(walker_t *w, uint64_t n)
{
    if (n > w->len - w->pos)
        return fail(w, PROTO_E_LENGTH, "declared length %llu > %zu bytes left",
                    (unsigned long long)n, w->len - w->pos);
    w->pos += (size_t)n;
    return PROTO_OK;
}

/* A str/bin whose length is an N-byte header. */
static proto_status_t skip_sized(walker_t *w, unsigned n)
{
    uint64_t size = 0;
    proto_status_t st = read_be(w, n, &size);
    return st ? st : skip_declared(w, size);
}

/* An ext whose length is an N-byte header, followed by a 1-byte type. */
static proto_status_t skip_ext(walker_t *w, unsigned n)
{
    uint64_t size = 0;
    proto_status_t st = read_be(w, n, &size);
    return st ? st : skip_declared(w, size + 1);
}

/* An array (PER_ITEM 1) or map (PER_ITEM 2) of COUNT entries. */
static proto_status_t walk_container(walker_t *w, uint64_t count, unsigned per_item,
                                     unsigned depth)
{
    if (depth + 1 > PROTO_MAX_DEPTH)
        return fail(w, PROTO_E_TOO_DEEP, "nesting deeper than %u", PROTO_MAX_DEPTH);
    if (count > PROTO_MAX_ITEMS)
        return fail(w, PROTO_E_LENGTH, "%llu items > limit %u", (unsigned long long)count,
                    PROTO_MAX_ITEMS);
    if (count * per_item > w->len - w->pos)
        return fail(w, PROTO_E_LENGTH, "%llu items declared, %zu bytes left",
                    (unsigned long long)count, w->len - w->pos);
    for (uint64_t i = 0; i < count * per_item; i++) {
        proto_status_t st = walk_object(w, depth + 1);
        if (st)
            return st;
    }
    return PROTO_OK;
}

/* A container whose count is an N-byte header. */
static proto_status_t walk_sized(walker_t *w, unsigned n, unsigned per_item,
                                 unsigned depth)
{
    uint64_t count = 0;
    proto_status_t st = read_be(w, n, &count);
    return st ? st : walk_container(w, count, per_item, depth);
}

/* Formats 0xc0..0xdf other than fixstr (the msgpack spec's table, in order). */
static proto_status_t walk_tagged(walker_t *w, uint8_t b, unsigned depth)
{
    switch (b) {
    case 0xc0: case 0xc2: case 0xc3: return PROTO_OK;          /* nil, false, true */
    case 0xc4: return skip_sized(w, 1);                          /* bin 8/16/32 */
    case 0xc5: return skip_sized(w, 2);
    case 0xc6: return skip_sized(w, 4);
    case 0xc7: return skip_ext(w, 1);                            /* ext 8/16/32 */
    case 0xc8: return skip_ext(w, 2);
    case 0xc9: return skip_ext(w, 4);
    case 0xca: return skip_fixed(w, 4);                          /* float 32/64 */
    case 0xcb: return skip_fixed(w, 8);
    case 0xcc: case 0xd0: return skip_fixed(w, 1);               /* (u)int 8..64 */
    case 0xcd: case 0xd1: return skip_fixed(w, 2);
    case 0xce: case 0xd2: return skip_fixed(w, 4);
    case 0xcf: case 0xd3: return skip_fixed(w, 8);
    case 0xd4: return skip_fixed(w, 2);                          /* fixext 1..16 */
    case 0xd5: return skip_fixed(w, 3);
    case 0xd6: return skip_fixed(w, 5);
    case 0xd7: return skip_fixed(w, 9);
    case 0xd8: return skip_fixed(w, 17);
    case 0xd9: return skip_sized(w, 1);                          /* str 8/16/32 */
    case 0xda: return skip_sized(w, 2);
    case 0xdb: return skip_sized(w, 4);
    case 0xdc: return walk_sized(w, 2, 1, depth);                /* array 16/32 */
    case 0xdd: return walk_sized(w, 4, 1, depth);
    case 0xde: return walk_sized(w, 2, 2, depth);                /* map 16/32 */
    case 0xdf: return walk_sized(w, 4, 2, depth);
    default:   /* 0xc1: never used */
        w->pos--;
        return fail(w, PROTO_E_MALFORMED, "invalid msgpack byte 0x%02x", b);
    }
}

static proto_status_t walk_object(walker_t *w, unsigned depth)
{
    if (w->pos >= w->len)
        return fail(w, PROTO_E_TRUNCATED, "bytes end where an object is expected");
    uint8_t b = w->buf[w->pos++];
    if (b <= 0x7f || b >= 0xe0)                 /* positive / negative fixint */
        return PROTO_OK;
    if (b <= 0x8f)
        return walk_container(w, b & 0x0f, 2, depth);   /* fixmap */
    if (b <= 0x9f)
        return walk_container(w, b & 0x0f, 1, depth);   /* fixarray */
    if (b <= 0xbf)
        return skip_declared(w, b & 0x1f);              /* fixstr */
    return walk_tagged(w, b, depth);
}

proto_status_t proto_prewalk(const uint8_t *buf, size_t len, proto_error_t *err)
{
    walker_t w = { .buf = buf, .len = len, .pos = 0, .err = err };
    if (len > PROTO_MAX_MSG)
        return fail(&w, PROTO_E_TOO_BIG, "%zu bytes > limit %u", len, PROTO_MAX_MSG);
    proto_status_t st = walk_object(&w, 0);
    if (st)
        return st;
    if (w.pos != len)
        return fail(&w, PROTO_E_TRAILING, "%zu trailing bytes after the message",
                    len - w.pos);
    return PROTO_OK;
}
