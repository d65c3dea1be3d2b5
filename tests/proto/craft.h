/* craft.h: build malformed msgpack for proto tests by editing valid encodings. */
#ifndef RACKRUN_TEST_PROTO_CRAFT_H
#define RACKRUN_TEST_PROTO_CRAFT_H

#include <stddef.h>
#include <stdint.h>

/* Copy the msgpack in BUF with the value at dotted PATH (through maps, into
 * every item of arrays) replaced by the RAW msgpack bytes, added when absent,
 * or removed when RAW is NULL. Returns the malloc'd result (*OUT_LEN bytes). */
uint8_t *craft_edit(const uint8_t *buf, size_t len, const char *path, const uint8_t *raw,
                    size_t raw_len, size_t *out_len);

/* Bytes from hex text ("dd 08 00 00 00"; spaces ignored) into OUT; returns the count. */
size_t craft_hex(const char *hex, uint8_t *out, size_t size);

/* A malloc'd copy of exactly LEN bytes, so ASan sees any read past them. */
uint8_t *craft_exact(const uint8_t *buf, size_t len);

#endif
