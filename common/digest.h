/* digest.h: SHA-256 of files and buffers (libsodium's crypto_hash_sha256), as
 * 64 lower-case hex digits: how rackrun names the content of an artifact on
 * the worker, the master and the client alike. */
#ifndef RACKRUN_DIGEST_H
#define RACKRUN_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define RR_SHA256_HEX 65    /* 64 hex digits and the NUL */

/* SHA-256 of the first LIMIT bytes of the open file FD (UINT64_MAX: to its
 * end), read with pread from offset 0, into HEX; the bytes hashed in *SIZE
 * (may be NULL). Returns 0, or -1 with errno set (EIO for a short file). */
int rr_sha256_fd(int fd, uint64_t limit, char hex[RR_SHA256_HEX], uint64_t *size);

/* SHA-256 of the file at PATH, like rr_sha256_fd to its end. 0, or -1 with errno. */
int rr_sha256_file(const char *path, char hex[RR_SHA256_HEX], uint64_t *size);

/* Finish STATE (crypto_hash_sha256_init and _update done by the caller, for
 * bytes hashed as they stream by) into HEX. */
void rr_sha256_final_hex(crypto_hash_sha256_state *state, char hex[RR_SHA256_HEX]);

/* True when TEXT is 64 lower-case hex digits. */
bool rr_sha256_valid(const char *text);

#endif
