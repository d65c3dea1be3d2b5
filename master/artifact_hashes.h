/* artifact_hashes.h: the running SHA-256 of each artifact being uploaded
 * (private to master/), so that the last chunk of an upload costs no pass
 * over the whole file on the master's loop.
 *
 * Chunks arrive in order (a resent one may overlap bytes already hashed);
 * each is fed as it is written. An upload the table cannot follow (resumed
 * after a master restart, a gap, more than RR_ARTIFACT_HASHES_MAX uploads at
 * once) has no hash here, and its file is hashed when it is whole, as before. */
#ifndef RACKRUN_MASTER_ARTIFACT_HASHES_H
#define RACKRUN_MASTER_ARTIFACT_HASHES_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"

#define RR_ARTIFACT_HASHES_MAX 4096u    /* uploads followed at once; more are hashed at the end */

typedef struct _rr_artifact_hashes_t rr_artifact_hashes_t;

/* An empty table, or NULL when out of memory. */
rr_artifact_hashes_t *rr_artifact_hashes_new(void);

/* Free the table and NULL *SELF_P. */
void rr_artifact_hashes_destroy(rr_artifact_hashes_t **self_p);

/* Bytes [OFF, OFF + LEN) of JOB's artifact NAME were written: hash what is new
 * of them. A chunk at 0 starts the hash; a chunk past the bytes hashed drops it. */
void rr_artifact_hashes_feed(rr_artifact_hashes_t *self, uint64_t job, const char *name,
                             uint64_t off, const uint8_t *data, size_t len);

/* The SHA-256 of the first TOTAL bytes into HEX when exactly those were fed:
 * 0; else -1 (hash the file). Forgets the upload either way. */
int rr_artifact_hashes_take(rr_artifact_hashes_t *self, uint64_t job, const char *name,
                            uint64_t total, char hex[RR_SHA256_HEX]);

/* Forget JOB's upload NAME (begun anew or refused). */
void rr_artifact_hashes_forget(rr_artifact_hashes_t *self, uint64_t job, const char *name);

#endif
