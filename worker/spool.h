/* spool.h: one job's append-only spool of encoded JOB_EVENTs.
 *
 * Every event is appended here before it is sent, and dropped only once an
 * EVENT_ACK covers it, so a crash of worker or master loses nothing. The file
 * <dir>/job-<id>.spool holds records "type(1) len(4, LE) seq(8, LE) bytes":
 * type 'E' an event, 'F' the job's final (end) event, 'A' an ack mark (len 0)
 * so a reload knows what the master already has. Only an index (seq, offset,
 * length) stays in memory; the bytes are read back with pread when sent.
 *
 * fsync policy: appends are buffered by the kernel; the caller calls
 * rr_spool_sync() once per batch (the worker after each drain of its device
 * pipes, before sending), which fdatasyncs. Ack marks are never synced: a lost
 * one only makes the worker resend events the master ignores as duplicates.
 * A torn record at the tail (crash mid-append) is cut off at reload. When
 * everything is acked the file is truncated to 0 bytes. */
#ifndef RACKRUN_SPOOL_H
#define RACKRUN_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _rr_spool_t rr_spool_t;

/* Open (creating or reloading) the spool of JOB in DIR. NULL with ERR filled. */
rr_spool_t *rr_spool_open(const char *dir, uint64_t job, char *err, size_t errlen);

/* Close; the file stays. NULLs *SELF. */
void rr_spool_destroy(rr_spool_t **self);

/* Close and delete the file (the job is over and fully acked). NULLs *SELF. */
void rr_spool_remove(rr_spool_t **self);

/* Append event SEQ (must be last_seq + 1) of LEN bytes; FINAL marks the end event. */
int rr_spool_append(rr_spool_t *self, uint64_t seq, const void *data, size_t len, bool final,
                    char *err, size_t errlen);

/* fdatasync what was appended since the last sync (no-op when nothing was). */
int rr_spool_sync(rr_spool_t *self, char *err, size_t errlen);

/* Drop events with seq <= SEQ (the master committed them). */
int rr_spool_ack(rr_spool_t *self, uint64_t seq);

/* Read event SEQ into a new malloc'd buffer. Returns 0, or -1 if not spooled. */
int rr_spool_read(rr_spool_t *self, uint64_t seq, uint8_t **data, size_t *len);

/* Job id of this spool. */
uint64_t rr_spool_job(const rr_spool_t *self);

/* Highest seq appended (0 = none). */
uint64_t rr_spool_last_seq(const rr_spool_t *self);

/* Bytes the spool file holds now (what the per-job quota bounds). */
uint64_t rr_spool_size(const rr_spool_t *self);

/* Highest seq acked (every event up to it is dropped). */
uint64_t rr_spool_acked(const rr_spool_t *self);

/* Number of events spooled and not acked. */
size_t rr_spool_pending(const rr_spool_t *self);

/* True once the final (end) event was appended. */
bool rr_spool_final(const rr_spool_t *self);

/* True when the final event is appended and acked: the job's stream is complete. */
bool rr_spool_done(const rr_spool_t *self);

/* Job ids of every spool file in DIR (malloc'd array, count in *COUNT). -1 on error. */
int rr_spool_list(const char *dir, uint64_t **jobs, size_t *count, char *err, size_t errlen);

#endif
