/* digest.c: SHA-256 of files as hex (see digest.h). */
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (256u * 1024u)

int rr_sha256_fd(int fd, uint64_t limit, char hex[RR_SHA256_HEX], uint64_t *size)
{
    crypto_hash_sha256_state state;
    unsigned char *buf = malloc(READ_CHUNK);
    uint64_t at = 0;
    if (!buf || sodium_init() < 0) {
        free(buf);
        errno = ENOMEM;
        return -1;
    }
    crypto_hash_sha256_init(&state);
    while (at < limit) {
        size_t want = limit - at < READ_CHUNK ? (size_t)(limit - at) : READ_CHUNK;
        ssize_t n = pread(fd, buf, want, (off_t)at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (n == 0 && limit != UINT64_MAX)) {
            if (n == 0)
                errno = EIO;
            free(buf);
            return -1;
        }
        if (n == 0)
            break;
        crypto_hash_sha256_update(&state, buf, (unsigned long long)n);
        at += (uint64_t)n;
    }
    free(buf);
    rr_sha256_final_hex(&state, hex);
    if (size)
        *size = at;
    return 0;
}

void rr_sha256_final_hex(crypto_hash_sha256_state *state, char hex[RR_SHA256_HEX])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(state, digest);
    sodium_bin2hex(hex, RR_SHA256_HEX, digest, sizeof digest);
}

int rr_sha256_file(const char *path, char hex[RR_SHA256_HEX], uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = rr_sha256_fd(fd, UINT64_MAX, hex, size);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

bool rr_sha256_valid(const char *text)
{
    size_t n = 0;
    for (; text && text[n]; n++)
        if (!strchr("0123456789abcdef", text[n]))
            return false;
    return n == 64;
}
