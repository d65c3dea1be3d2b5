/* artifact_hashes.c: running SHA-256s of uploads (see artifact_hashes.h). */
#include "artifact_hashes.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    crypto_hash_sha256_state state;
    uint64_t hashed;                /* bytes [0, hashed) are in STATE */
} upload_hash_t;

struct _rr_artifact_hashes_t {
    zhashx_t *uploads;              /* "<job>/<name>" -> upload_hash_t */
};

static void s_free_upload(void **item)
{
    free(*item);
    *item = NULL;
}

rr_artifact_hashes_t *rr_artifact_hashes_new(void)
{
    rr_artifact_hashes_t *self = calloc(1, sizeof *self);
    if (!self || !(self->uploads = zhashx_new())) {
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->uploads, s_free_upload);
    return self;
}

void rr_artifact_hashes_destroy(rr_artifact_hashes_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy(&(*self_p)->uploads);
    free(*self_p);
    *self_p = NULL;
}

/* The table's key of JOB's NAME into BUF (names are at most 255 bytes). */
static const char *s_key(char *buf, size_t len, uint64_t job, const char *name)
{
    snprintf(buf, len, "%" PRIu64 "/%s", job, name);
    return buf;
}

void rr_artifact_hashes_feed(rr_artifact_hashes_t *self, uint64_t job, const char *name,
                             uint64_t off, const uint8_t *data, size_t len)
{
    char key[300];
    s_key(key, sizeof key, job, name);
    upload_hash_t *up = zhashx_lookup(self->uploads, key);
    if (!up && off == 0 && zhashx_size(self->uploads) < RR_ARTIFACT_HASHES_MAX
        && (up = calloc(1, sizeof *up))) {
        crypto_hash_sha256_init(&up->state);
        zhashx_insert(self->uploads, key, up);
    }
    if (!up)
        return;
    if (off > up->hashed) {                 /* a gap: this table cannot follow it */
        zhashx_delete(self->uploads, key);
        return;
    }
    if (off + len > up->hashed) {
        uint64_t skip = up->hashed - off;   /* resent bytes already in the hash */
        crypto_hash_sha256_update(&up->state, data + skip, len - skip);
        up->hashed = off + len;
    }
}

int rr_artifact_hashes_take(rr_artifact_hashes_t *self, uint64_t job, const char *name,
                            uint64_t total, char hex[RR_SHA256_HEX])
{
    char key[300];
    s_key(key, sizeof key, job, name);
    upload_hash_t *up = zhashx_lookup(self->uploads, key);
    int rc = -1;
    if (up && up->hashed == total) {
        rr_sha256_final_hex(&up->state, hex);
        rc = 0;
    }
    zhashx_delete(self->uploads, key);
    return rc;
}

void rr_artifact_hashes_forget(rr_artifact_hashes_t *self, uint64_t job, const char *name)
{
    char key[300];
    zhashx_delete(self->uploads, s_key(key, sizeof key, job, name));
}
