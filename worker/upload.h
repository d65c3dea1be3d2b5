/* upload.h: a job's artifacts on their way to the master (worker side).
 *
 * transfer.c fetches a file into <artifacts_dir>/<job>/<NAME> and marks it
 * for upload with a hard link <artifacts_dir>/<job>.pending/<NAME>; the link
 * is the durable "still to upload" record (a restarted worker finds it) and
 * what the upload reads, so a later transfer to the same name cannot change
 * the bytes under a running upload. The worker's main loop then sends it in
 * ARTIFACT_CHUNKs of PROTO_ARTIFACT_CHUNK bytes, at most RR_UPLOAD_WINDOW of
 * them unacked, one artifact of a job after the other; ARTIFACT_ACK says how
 * many bytes the master holds durably and the upload goes on from there (also
 * after a reconnect, or a restart of either side). No ack progress for
 * RR_UPLOAD_RESEND_MS: send again from the last ack. Once the master says
 * done (or refuses it for good, naming why) the link goes; the worker's own
 * copy under <job>/ stays.
 *
 * The worker holds back a job's `end` event while any of its artifacts is
 * still uploading (worker.c), so the master never reports a job finished
 * before its artifacts are stored. */
#ifndef RACKRUN_UPLOAD_H
#define RACKRUN_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define RR_UPLOAD_WINDOW     4u      /* chunks in flight per artifact */
#define RR_UPLOAD_RESEND_MS  5000u   /* no ack progress this long: resend from the last ack */

typedef struct _rr_uploads_t rr_uploads_t;

/* Mark artifact NAME of JOB (fetched into <ARTIFACTS_DIR>/<JOB>/<NAME>) for
 * upload: the pending hard link, replacing an older one. Thread-safe (files
 * only). 0, or -1 with the reason in ERR. */
int rr_upload_mark(const char *artifacts_dir, uint64_t job, const char *name, char *err,
                   size_t errlen);

/* The uploads of JOB whose artifacts live in ARTIFACTS_DIR; NULL when
 * ARTIFACTS_DIR is NULL (every function below accepts a NULL SELF) or on ENOMEM. */
rr_uploads_t *rr_uploads_new(const char *artifacts_dir, uint64_t job);

/* Close the files (the pending links stay) and free; NULLs *SELF. */
void rr_uploads_destroy(rr_uploads_t **self);

/* The job's `artifact` event (NAME, SHA256, SIZE) was spooled: queue its
 * upload (replacing one of the same name). -1 when the pending link is missing. */
int rr_uploads_add(rr_uploads_t *self, const char *name, const char *sha256, uint64_t size);

/* Queue the uploads an earlier run left (every pending link, hashed again). 0 or -1 with ERR. */
int rr_uploads_reload(rr_uploads_t *self, char *err, size_t errlen);

/* Number of artifacts the master does not hold whole yet. */
size_t rr_uploads_pending(const rr_uploads_t *self);

/* Send what the window allows on SOCK (the DEALER to the master); never blocks. */
void rr_uploads_pump(rr_uploads_t *self, zsock_t *sock, uint64_t now_mono_ms);

/* The master acknowledged (or refused) chunks of one artifact. */
void rr_uploads_ack(rr_uploads_t *self, const proto_artifact_ack_t *ack, uint64_t now_mono_ms);

/* A new master session: go on from the last acked byte (the master says where it is). */
void rr_uploads_rewind(rr_uploads_t *self);

/* Give every upload up (the master does not know the job), saying WHY. */
void rr_uploads_abandon(rr_uploads_t *self, const char *why);

#endif
