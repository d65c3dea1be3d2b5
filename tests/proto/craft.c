/* craft.c: msgpack surgery for the proto tests (see craft.h). */
#include "craft.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    const uint8_t *raw;
    size_t raw_len;
} editor_t;

static void pack_key(editor_t *e, const char *key, size_t len)
{
    msgpack_pack_str(&e->pk, len);
    msgpack_pack_str_body(&e->pk, key, len);
}

static void pack_edited(editor_t *e, const msgpack_object *o, const char *path)
{
    const char *dot = strchr(path, '.');
    size_t seg = dot ? (size_t)(dot - path) : strlen(path);
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        msgpack_pack_array(&e->pk, o->via.array.size);
        for (uint32_t i = 0; i < o->via.array.size; i++)
            pack_edited(e, &o->via.array.ptr[i], path);
        return;
    }
    if (o->type != MSGPACK_OBJECT_MAP) {
        msgpack_pack_object(&e->pk, *o);
        return;
    }
    long idx = -1;
    for (uint32_t i = 0; i < o->via.map.size && idx < 0; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == seg
            && memcmp(k->via.str.ptr, path, seg) == 0)
            idx = i;
    }
    size_t n = o->via.map.size;
    if (!dot && idx >= 0 && !e->raw)
        n--;
    if (!dot && idx < 0 && e->raw)
        n++;
    msgpack_pack_map(&e->pk, n);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if ((long)i != idx) {
            msgpack_pack_object(&e->pk, kv->key);
            msgpack_pack_object(&e->pk, kv->val);
        } else if (dot) {
            msgpack_pack_object(&e->pk, kv->key);
            pack_edited(e, &kv->val, dot + 1);
        } else if (e->raw) {
            msgpack_pack_object(&e->pk, kv->key);
            msgpack_sbuffer_write(&e->sbuf, (const char *)e->raw, e->raw_len);
        }
    }
    if (!dot && idx < 0 && e->raw) {
        pack_key(e, path, seg);
        msgpack_sbuffer_write(&e->sbuf, (const char *)e->raw, e->raw_len);
    }
}

uint8_t *craft_edit(const uint8_t *buf, size_t len, const char *path, const uint8_t *raw,
                    size_t raw_len, size_t *out_len)
{
    editor_t e = { .raw = raw, .raw_len = raw_len };
    msgpack_unpacked up;
    size_t off = 0;
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, (const char *)buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
        abort();
    msgpack_sbuffer_init(&e.sbuf);
    msgpack_packer_init(&e.pk, &e.sbuf, msgpack_sbuffer_write);
    pack_edited(&e, &up.data, path);
    msgpack_unpacked_destroy(&up);
    *out_len = e.sbuf.size;
    return (uint8_t *)msgpack_sbuffer_release(&e.sbuf);
}

size_t craft_hex(const char *hex, uint8_t *out, size_t size)
{
    size_t n = 0;
    while (*hex && n < size) {
        if (*hex == ' ') {
            hex++;
            continue;
        }
        char byte[3] = { hex[0], hex[1], '\0' };
        out[n++] = (uint8_t)strtoul(byte, NULL, 16);
        hex += 2;
    }
    return n;
}

uint8_t *craft_exact(const uint8_t *buf, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    if (len)
        memcpy(copy, buf, len);
    return copy;
}
