/* artifacts.h: files a job's `transfer` actions pulled off its node, stored by
 * the master with the job (private to master/).
 *
 * Workers upload each artifact in ARTIFACT_CHUNKs (at most
 * PROTO_ARTIFACT_CHUNK bytes, in order). The master writes a chunk to
 * <artifacts root>/<job>.partial/<name>, fdatasyncs it and only then answers
 * ARTIFACT_ACK with the contiguous bytes it holds, so an ack never covers a
 * byte that a crash could lose and an upload resumes where the master got to,
 * whoever restarted. When the last byte is in, the file's SHA-256 is checked
 * against the worker's, the file renamed to <root>/<job>/<name> (the
 * directory fsynced) and its row (store.h: size, sha256, complete) marked
 * complete. The root is "artifacts" beside the database.
 *
 * Refusals are for good and recorded on the row (state failed, the reason):
 * a bad name, a job over its quota (artifact_quota), a sha256 mismatch, an
 * unknown job. Clients list a job's artifacts (ARTIFACTS) and fetch a
 * complete one chunk by chunk (FETCH -> ARTIFACT_DATA). */
#ifndef RACKRUN_MASTER_ARTIFACTS_H
#define RACKRUN_MASTER_ARTIFACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon.h"

#define RR_ARTIFACT_NAME_MAX 255u   /* bytes of an artifact name */

/* True when NAME may name an artifact file (1..RR_ARTIFACT_NAME_MAX bytes, no
 * '/', no control character, not "." or ".."); else false with why in WHY. */
bool rr_artifact_name_ok(const char *name, char *why, size_t len);

/* The directory holding every job's artifacts, for CONFIG, into BUF. */
char *rr_artifacts_root(const rr_master_config_t *config, char *buf, size_t len);

/* Delete JOB's artifact files under ROOT (whole and partial); *BYTES gets
 * the bytes they held. 0, or -1 with errno (ENOENT is no error: none left). */
int rr_artifacts_remove_files(const char *root, uint64_t job, uint64_t *bytes);

/* Worker socket: store CHUNK (the sender owns its job) and answer ARTIFACT_ACK to RID. */
void rr_artifacts_chunk(rr_master_t *self, zframe_t *rid, const proto_artifact_chunk_t *chunk);

/* Client ARTIFACTS: reply ARTIFACT_LIST (or ERROR not_found for an unknown job). */
void rr_artifacts_list(rr_master_t *self, zframe_t *rid, const proto_artifacts_t *req);

/* Client FETCH: reply one ARTIFACT_DATA of a complete artifact from req->off. */
void rr_artifacts_fetch(rr_master_t *self, zframe_t *rid, const proto_fetch_t *req);

#endif
