/* store.h: the master's persistent state (jobs, their event streams,
 * workers, devices) behind one interface. The only SQL in rackrun is in
 * store.c and its rooms store_jobs.c, store_events.c, store_fleet.c (SQLite,
 * WAL); a PostgreSQL backend could implement this header.
 *
 * Everything the master needs to rebuild its state after kill -9 is read
 * back from here: open jobs (rr_store_jobs_active), the highest contiguous
 * event seq per job, workers and devices.
 *
 * Conventions:
 * - Functions return RR_STORE_OK (0) or a negative RR_STORE_E_*; the text of
 *   the last failure ("job 42: cancel: already finished") is rr_store_error().
 * - Lists are malloc'd arrays whose strings are malloc'd, in the layout
 *   proto_msg_free() expects: hand them to a reply message (it then owns and
 *   frees them) or free them with the matching rr_store_*_free().
 * - Times are ms since the Unix epoch (rr_wall_ms()).
 * - Each call is atomic. rr_store_begin/commit group several calls into one
 *   transaction (fewer fsyncs); they nest (inner levels are savepoints).
 * - Not thread-safe: one store per thread (the master's zloop owns it).
 */
#ifndef RACKRUN_STORE_H
#define RACKRUN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Job states, outcomes, device and worker states: the one spelling of each. */
#define RR_JOB_QUEUED      "queued"
#define RR_JOB_SCHEDULED   "scheduled"
#define RR_JOB_RUNNING     "running"
#define RR_JOB_CANCELING   "canceling"
#define RR_JOB_FINISHED    "finished"

#define RR_OUTCOME_COMPLETE   "complete"
#define RR_OUTCOME_INCOMPLETE "incomplete"
#define RR_OUTCOME_CANCELED   "canceled"

#define RR_DEVICE_IDLE        "idle"
#define RR_DEVICE_RESERVED    "reserved"
#define RR_DEVICE_RUNNING     "running"
#define RR_DEVICE_OFFLINE     "offline"
#define RR_DEVICE_MAINTENANCE "maintenance"
#define RR_DEVICE_BAD         "bad"
#define RR_DEVICE_RETIRED     "retired"

#define RR_WORKER_ONLINE   "online"
#define RR_WORKER_LOST     "lost"
#define RR_WORKER_OFFLINE  "offline"

/* Return codes. */
#define RR_STORE_OK          0
#define RR_STORE_E_DB       -1  /* SQLite failed (I/O, corrupt, busy...) */
#define RR_STORE_E_NOTFOUND -2  /* no such job / device / worker */
#define RR_STORE_E_STATE    -3  /* not allowed in the current state */
#define RR_STORE_E_INVALID  -4  /* bad argument (unknown state name...) */

typedef struct _rr_store_t rr_store_t;

typedef struct {
    /* synchronous=FULL: fsync on every commit, survives power loss. Default
     * NORMAL: in WAL mode a commit survives a process crash (kill -9), but
     * the last transactions may be lost on power loss or OS crash. */
    bool sync_full;
    uint32_t busy_timeout_ms;   /* 0 = 5000 */
    int schema_version;         /* migrate up to this version only; 0 = the latest
                                 * (an older one is for tests of the migrations) */
} rr_store_options_t;

/* A job the master has handed (or is handing) to a worker. */
typedef struct {
    uint64_t job;
    char *state;        /* scheduled | running | canceling */
    char *device;
    char *worker;
    bool accepted;      /* the worker sent JOB_ACCEPT ok */
    uint64_t acked_seq; /* highest contiguous event seq committed */
} rr_store_active_t;

/* Per job of an event batch: what to EVENT_ACK and what changed. */
typedef struct {
    uint64_t job;
    uint64_t acked_seq;  /* highest contiguous seq committed: the EVENT_ACK */
    uint32_t inserted;   /* events newly stored (the rest were duplicates) */
    bool started;        /* this batch committed "state running": job running */
    bool finished;       /* this batch committed "end": job finished, device idle */
    bool unknown;        /* no such job: its events were dropped */
} rr_store_ack_t;

/* ---- lifecycle ---- */

/* Open (create, migrate) the database at PATH with default options. NULL with ERR on failure. */
rr_store_t *rr_store_open(const char *path, char *err, size_t errlen);

/* Open with OPTIONS (NULL = defaults). */
rr_store_t *rr_store_open_with(const char *path, const rr_store_options_t *options,
                               char *err, size_t errlen);

/* Close the database and NULL *SELF_P. Rolls back an open rr_store_begin. */
void rr_store_destroy(rr_store_t **self_p);

/* Text of the last failure, "" when none. */
const char *rr_store_error(rr_store_t *self);

/* Schema version of the open database (migrations applied). */
int rr_store_schema_version(rr_store_t *self);

/* Journal mode as SQLite reports it ("wal"); for tests and diagnostics. */
const char *rr_store_journal_mode(rr_store_t *self);

/* Start a transaction grouping the following calls (nests: inner = savepoint). */
int rr_store_begin(rr_store_t *self);

/* Commit (or release, when nested) the innermost rr_store_begin. */
int rr_store_commit(rr_store_t *self);

/* Roll back the innermost rr_store_begin. */
int rr_store_rollback(rr_store_t *self);

/* A part of the caller's transaction without a savepoint of its own (or a
 * transaction of its own when there is none), ended by rr_store_leave with
 * the part's result RC, which it returns. Cheaper than rr_store_begin inside
 * a transaction, whose savepoint copies every page the part changes, but all
 * or nothing: a part that failed dooms the enclosing transaction, whose
 * commit then rolls everything back and fails naming the first failure. For
 * parts that fail only when the database does (I/O, memory), never on a
 * caller's bad input. */
int rr_store_join(rr_store_t *self);
int rr_store_leave(rr_store_t *self, int rc);

/* Checkpoint the WAL only when asked (rr_store_checkpoint_due), not inside
 * the commit that makes it reach PAGES frames: the master first sends what
 * the commit justified, then asks. The checkpoints run on a thread of the
 * store with its own connection (store_wal.c). */
int rr_store_defer_checkpoints(rr_store_t *self, int pages);

/* Have the checkpointer checkpoint (PASSIVE) when the WAL holds the deferred
 * limit or more; returns at once. RR_STORE_E_DB when its last one failed. */
int rr_store_checkpoint_due(rr_store_t *self);

/* ---- jobs ---- */

/* Store a validated job as queued; YAML is the submitted text, DEF its normalised form. */
int rr_store_job_insert(rr_store_t *self, const char *yaml, const proto_jobdef_t *def,
                        uint64_t now_ms, uint64_t *id);

/* Fill *INFO (zeroed first; free with rr_store_jobinfo_clear). */
int rr_store_job_get(rr_store_t *self, uint64_t id, proto_jobinfo_t *info);

/* The job's submitted YAML text (malloc'd, caller frees). */
int rr_store_job_yaml(rr_store_t *self, uint64_t id, char **yaml);

/* The job's normalised definition, for JOB_START (free with proto_jobdef_destroy). */
int rr_store_job_def(rr_store_t *self, uint64_t id, proto_jobdef_t **def);

/* The job's definition when it asks for a notification (a notify URL),
 * else *DEF = NULL: a job that ends without one costs no definition read. */
int rr_store_job_notify_def(rr_store_t *self, uint64_t id, proto_jobdef_t **def);

/* Jobs in STATE (NULL = all), newest first, at most LIMIT (0 = 1000). */
int rr_store_jobs_list(rr_store_t *self, const char *state, uint32_t limit,
                       proto_jobinfo_t **jobs, size_t *count);

/* Jobs of WORKER (NULL = all workers) that are scheduled, running or canceling. */
int rr_store_jobs_active(rr_store_t *self, const char *worker,
                         rr_store_active_t **jobs, size_t *count);

/* Number of jobs in STATE (NULL = all). */
int rr_store_jobs_count(rr_store_t *self, const char *state, uint64_t *count);

/* Queued -> scheduled on DEVICE of WORKER; the device (idle) becomes reserved. */
int rr_store_job_assign(rr_store_t *self, uint64_t id, const char *device, const char *worker);

/* The worker accepted JOB_START (sets the accepted flag; state unchanged). */
int rr_store_job_accepted(rr_store_t *self, uint64_t id);

/* rr_store_job_accepted for COUNT jobs in one transaction; a job that has
 * ended or is gone meanwhile is skipped, not an error. */
int rr_store_jobs_accepted(rr_store_t *self, const uint64_t *ids, size_t count);

/* Scheduled -> running (also done by a "state running" event); device running. */
int rr_store_job_running(rr_store_t *self, uint64_t id, uint64_t now_ms);

/* Scheduled (refused by the worker) -> queued again; its reserved device idle. */
int rr_store_job_requeue(rr_store_t *self, uint64_t id);

/* Cancel: a queued job ends canceled at once, a scheduled/running one goes to
 * canceling (the worker ends it). *STATE (may be NULL) gets the new state
 * (static string). RR_STORE_E_STATE for a job already finished or canceling. */
int rr_store_job_cancel(rr_store_t *self, uint64_t id, uint64_t now_ms, const char **state);

/* Any open job -> finished with OUTCOME and REASON (may be NULL); its device,
 * if reserved/running for it, becomes idle. RR_STORE_E_STATE if already finished. */
int rr_store_job_finish(rr_store_t *self, uint64_t id, const char *outcome,
                        const char *reason, uint64_t now_ms);

/* Free an array from rr_store_jobs_list / _jobs_active and NULL it. */
void rr_store_jobinfos_free(proto_jobinfo_t **jobs, size_t count);
void rr_store_actives_free(rr_store_active_t **jobs, size_t count);

/* Free the members of one jobinfo (from rr_store_job_get) and zero it. */
void rr_store_jobinfo_clear(proto_jobinfo_t *info);

/* ---- events (one ordered stream per job) ---- */

/* Commit N events in ONE transaction. Duplicates (job, seq) are ignored.
 * Side effects, only for newly stored events of open jobs: "state" with name
 * running -> job running; "end" -> job finished with outcome = value and
 * reason, device idle. *ACKS (malloc'd, caller frees) gets one entry per job
 * in the batch, in first-seen order. */
int rr_store_events_append(rr_store_t *self, const proto_job_event_t *events, size_t n,
                           rr_store_ack_t **acks, size_t *ack_count);

/* Events of JOB with seq > FROM_SEQ in order, at most MAX (0 = 1000). */
int rr_store_events_read(rr_store_t *self, uint64_t job, uint64_t from_seq, uint32_t max,
                         proto_job_event_t **events, size_t *count);

/* Highest contiguous committed seq of JOB (0 = none). */
int rr_store_events_acked(rr_store_t *self, uint64_t job, uint64_t *seq);

/* Free an array from rr_store_events_read and NULL it. */
void rr_store_events_free(proto_job_event_t **events, size_t count);

/* ---- workers and devices ---- */

/* A worker said HELLO: worker online, seen now; its devices inserted or
 * updated (type, tags). A device keeps maintenance/retired (operator's) and
 * reserved/running while it holds an open job; otherwise it takes the state
 * the worker reports. Devices the worker no longer lists go offline. */
int rr_store_worker_hello(rr_store_t *self, const proto_hello_t *hello, uint64_t now_ms);

/* Record a heartbeat from WORKER (last seen = NOW_MS). */
int rr_store_worker_seen(rr_store_t *self, const char *worker, uint64_t now_ms);

/* Worker -> online | lost | offline. Lost/offline: its devices go offline
 * (except maintenance/retired) with reason "worker NAME lost"; jobs untouched. */
int rr_store_worker_set_state(rr_store_t *self, const char *worker, const char *state,
                              uint64_t now_ms);

/* Workers in STATE (NULL = all); heartbeat_age_ms computed against NOW_MS. */
int rr_store_workers_list(rr_store_t *self, const char *state, uint64_t now_ms,
                          proto_workerinfo_t **workers, size_t *count);

/* Operator/master sets DEVICE's state (any device state) and REASON (may be NULL).
 * "idle" on a device that still holds an open job gives reserved/running instead. */
int rr_store_device_set_state(rr_store_t *self, const char *device, const char *state,
                              const char *reason);

/* WORKER reports a device state change (HEARTBEAT): same merge rule as HELLO. */
int rr_store_device_report(rr_store_t *self, const char *worker, const proto_devstate_t *change);

/* Fill *INFO for DEVICE (zeroed first; free with rr_store_deviceinfo_clear). */
int rr_store_device_get(rr_store_t *self, const char *device, proto_deviceinfo_t *info);

/* Devices of WORKER (NULL = all), by name. */
int rr_store_devices_list(rr_store_t *self, const char *worker,
                          proto_deviceinfo_t **devices, size_t *count);

/* Idle devices on online workers, grouped by type then tags (for the scheduler). */
int rr_store_devices_idle(rr_store_t *self, proto_deviceinfo_t **devices, size_t *count);

void rr_store_workerinfos_free(proto_workerinfo_t **workers, size_t count);
void rr_store_deviceinfos_free(proto_deviceinfo_t **devices, size_t count);
void rr_store_deviceinfo_clear(proto_deviceinfo_t *info);

/* ---- the queue (for the scheduler's index, master/sched_index.h) ---- */

/* Called per queued job by rr_store_queue_since; true to go on. Must not call the store. */
typedef bool (rr_store_queued_fn)(uint64_t job, const char *device_type, char **tags,
                                  size_t tag_count, uint32_t priority, void *arg);

/* Queued jobs (not health checks) with id > AFTER, by id: what the
 * scheduler's in-memory index (sched_index.h) has not seen yet. */
int rr_store_queue_since(rr_store_t *self, uint64_t after, rr_store_queued_fn *fn, void *arg);

/* rr_store_job_assign in the caller's transaction, for a job that may have
 * left the queue meanwhile: *ASSIGNED false (and nothing changed) when JOB
 * is not queued any more; RR_STORE_E_STATE (nothing changed) when DEVICE is
 * not idle on WORKER. */
int rr_store_job_assign_queued(rr_store_t *self, uint64_t id, const char *device,
                               const char *worker, bool *assigned);

/* ==== HTTP API and metrics (master/http.c, master/metrics.c) ==== */

/* Which jobs rr_store_jobs_query returns; NULL strings match any. */
typedef struct {
    const char *state;
    const char *device_type;
    const char *worker;
    uint32_t limit;             /* 0 = 1000 */
    uint64_t offset;            /* skip this many (newest first) */
} rr_store_jobs_filter_t;

/* Jobs matching FILTER, newest first (RR_STORE_E_INVALID for an unknown state). */
int rr_store_jobs_query(rr_store_t *self, const rr_store_jobs_filter_t *filter,
                        proto_jobinfo_t **jobs, size_t *count);

/* *QUEUED: any job queued; then *SUBMITTED_MS gets the oldest one's
 * submission time (0 when the queue is empty; a job may be submitted at 0). */
int rr_store_queue_oldest(rr_store_t *self, bool *queued, uint64_t *submitted_ms);

/* Events of JOB of KIND ("result"...) with seq > FROM_SEQ in order, at most MAX (0 = 1000). */
int rr_store_events_read_kind(rr_store_t *self, uint64_t job, const char *kind,
                              uint64_t from_seq, uint32_t max,
                              proto_job_event_t **events, size_t *count);

/* ==== log retention (master/retention.c) ==== */

typedef struct {
    uint64_t job;
    uint64_t ended_ms;
} rr_store_ended_t;

/* Finished jobs that ended before BEFORE_MS, in (ended_ms, id) order after
 * (AFTER_MS, AFTER_JOB), at most MAX (0 = 100); *JOBS malloc'd, caller frees. */
int rr_store_jobs_ended(rr_store_t *self, uint64_t after_ms, uint64_t after_job,
                        uint64_t before_ms, uint32_t max, rr_store_ended_t **jobs, size_t *count);

/* Drop the console log of finished JOB: its first log event holds MARKER
 * instead, the others none (they stay, so the seq stream stays whole and a
 * re-sent event stays a duplicate). Results, actions and the outcome are
 * untouched. *BYTES: log bytes removed (0 when already pruned). */
int rr_store_logs_prune(rr_store_t *self, uint64_t job, const char *marker, uint64_t *bytes);

/* Bytes the database holds in pages in use (page_count - freelist_count). */
int rr_store_used_bytes(rr_store_t *self, uint64_t *bytes);

/* ==== artifacts (master/artifacts.c): one row per artifact of a job ==== */

#define RR_ARTIFACT_UPLOADING "uploading"
#define RR_ARTIFACT_COMPLETE  "complete"
#define RR_ARTIFACT_FAILED    "failed"
#define RR_ARTIFACT_REMOVED   "removed"   /* by log retention, with the reason */

/* Artifact NAME of JOB into *INFO (zeroed first; state uploading | complete |
 * failed with the reason; stored left 0). RR_STORE_E_NOTFOUND when there is
 * none. Free with rr_store_artinfo_clear. */
int rr_store_artifact_get(rr_store_t *self, uint64_t job, const char *name,
                          proto_artinfo_t *info);

/* Record artifact NAME of JOB (SIZE bytes, SHA256 hex) as uploading, or as
 * failed when ERROR is not NULL, replacing an earlier row of that name.
 * RR_STORE_E_NOTFOUND when there is no such job. */
int rr_store_artifact_begin(rr_store_t *self, uint64_t job, const char *name, uint64_t size,
                            const char *sha256, const char *error, uint64_t now_ms);

/* Artifact NAME of JOB is stored whole and verified. */
int rr_store_artifact_complete(rr_store_t *self, uint64_t job, const char *name);

/* Artifact NAME of JOB is refused for good: failed with ERROR. */
int rr_store_artifact_fail(rr_store_t *self, uint64_t job, const char *name, const char *error);

/* JOB's artifacts that are not failed are removed (their files go), for WHY;
 * *COUNT (may be NULL) gets how many rows that changed. */
int rr_store_artifacts_remove(rr_store_t *self, uint64_t job, const char *why, size_t *count);

/* Total size of JOB's artifacts that are not failed, NAME (may be NULL) left
 * out: what the per-job quota measures. */
int rr_store_artifacts_bytes(rr_store_t *self, uint64_t job, const char *name, uint64_t *bytes);

/* JOB's artifacts by name (any state); an unknown job has none. */
int rr_store_artifacts_list(rr_store_t *self, uint64_t job, proto_artinfo_t **arts,
                            size_t *count);

/* Free an array from rr_store_artifacts_list and NULL it; clear one artinfo. */
void rr_store_artinfos_free(proto_artinfo_t **arts, size_t count);
void rr_store_artinfo_clear(proto_artinfo_t *info);

/* ==== health checks (master/health.c, store_health.c) ====
 * A device is due a health check when hc "due" is set (a new device; one that
 * left bad, by any path: the store sets it on every bad -> other state change)
 * or by its counters (jobs since / time of the last passed check) as the
 * master's rules say. A failed check makes it bad in a way the worker's
 * reports do not undo (like maintenance); it leaves bad by an operator's
 * maintenance on/off, and is then due again. */

typedef struct {
    char *device;
    char *worker;
    char *type;
    bool due;               /* new, or left bad, since the last passed check */
    uint64_t jobs_since;    /* jobs started on it and finished since */
    uint64_t last_check_ms; /* when the last check passed; 0 = never */
} rr_store_health_t;

/* Idle devices of TYPE on online workers with their health counters, by name. */
int rr_store_health_idle(rr_store_t *self, const char *type, rr_store_health_t **devices,
                         size_t *count);

/* DEVICE's health counters into *OUT (free with rr_store_health_clear). */
int rr_store_health_get(rr_store_t *self, const char *device, rr_store_health_t *out);

/* Queue the health-check job (YAML, DEF), flag it as one and assign it to
 * DEVICE of WORKER (idle -> reserved), all in one transaction; *ID gets it. */
int rr_store_health_job_start(rr_store_t *self, const char *yaml, const proto_jobdef_t *def,
                              const char *device, const char *worker, uint64_t now_ms,
                              uint64_t *id);

/* Whether JOB is a health check (*IS) and its device (*DEVICE, malloc'd, may be NULL). */
int rr_store_health_job(rr_store_t *self, uint64_t job, bool *is, char **device);

/* DEVICE passed its health check at NOW_MS: not due, counters start again. */
int rr_store_health_passed(rr_store_t *self, const char *device, uint64_t now_ms);

/* DEVICE failed its health check: bad with REASON, held by the master (a
 * device in maintenance or retired keeps that state). */
int rr_store_health_failed(rr_store_t *self, const char *device, const char *reason);

/* Free an array from rr_store_health_idle and NULL it; clear one element. */
void rr_store_healths_free(rr_store_health_t **devices, size_t count);
void rr_store_health_clear(rr_store_health_t *health);

#endif
