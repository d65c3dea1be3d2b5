/* store_internal.h: what the rooms of the store share: its statements, its
 * struct, and the small helpers that step, bind and read them. Private to
 * store.c (core: open, migrations, transactions), store_jobs.c,
 * store_events.c and store_fleet.c (workers and devices); the contract is
 * store.h. Internal functions are named store_* (the library is static:
 * no short global names).
 */
#ifndef RACKRUN_STORE_INTERNAL_H
#define RACKRUN_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "grow.h"
#include "store.h"

/* ---- statements: prepared once, cached by id ---- */

#define JOBINFO_COLS "id, name, state, outcome, reason, device_type, device, worker, " \
                     "priority, submitted_ms, started_ms, ended_ms"
#define DEVINFO_COLS "d.name, d.worker, d.type, d.tags, d.state, d.reason, d.job"
#define EVENT_COLS   "job, seq, ts, kind, name, value, reason, code, measurement, " \
                     "units, since, data"
/* A job that is scheduled, running or canceling, said without an IN list (a
 * temporary b-tree per run, see store.c's version 5), in the words of the
 * index jobs_open_device's WHERE; it names jobs_open's too. */
#define OPEN_STATE   "state <> 'queued' AND state <> 'finished'"
/* Written out in a query so that SQLite may use the index jobs_open. */
#define NOT_FINISHED "state <> 'finished'"
#define ARTINFO_COLS "name, size, sha256, complete, error"
/* A device that leaves bad (for state NEW) is due a health check; a bad mark
 * the master set (hc_failed) goes with the bad state. */
#define HC_LEAVE_BAD(new) "hc_due = hc_due OR (state = 'bad' AND " new " <> 'bad')," \
                          " hc_failed = hc_failed AND " new " = 'bad'"
#define HEALTH_COLS  "d.name, d.worker, d.type, d.hc_due, d.hc_jobs, d.hc_last_ms"

/* UPDATE_STATE: "OR IGNORE" on the UPDATEs of the state changes, whose
 * values always pass the CHECKs (constants; an outcome is checked before):
 * a statement that changes an indexed column and may abort on a constraint
 * gets a statement journal inside a transaction, a copy of every page it
 * touches, and the master runs them all inside its drain's transaction
 * (bench_dispatch: a fifth of its time). A foreign key would still make
 * one (devices.job has none since version 4). Callers check the rows
 * changed, as before. */
#define UPDATE_STATE "UPDATE OR IGNORE "
/* The device of job ?1 (the store sets jobs.device and devices.job together). */
#define JOB_DEVICE "(SELECT device FROM jobs WHERE id = ?1)"
/* A device letting go of its job: reserved or running -> idle, other states kept. */
#define DEV_LET_GO "job = NULL, state = CASE WHEN state IN ('reserved','running')" \
                   " THEN 'idle' ELSE state END"
/* Job ?1 when it counts toward its device's every_jobs (a started job, not a
 * health check), as a FROM clause. */
#define COUNTED_JOB "jobs WHERE id = ?1 AND health_check = 0 AND started_ms > 0"

#define STORE_STATEMENTS(X) \
    X(BEGIN,         "BEGIN IMMEDIATE") \
    X(COMMIT,        "COMMIT") \
    X(ROLLBACK,      "ROLLBACK") \
    X(SAVEPOINT,     "SAVEPOINT rr") \
    X(RELEASE,       "RELEASE rr") \
    X(ROLLBACK_TO,   "ROLLBACK TO rr") \
    X(JOB_INSERT,    "INSERT INTO jobs (name, device_type, tags, priority, state," \
                     " submitted_ms, notify) VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6)") \
    X(JOB_SPEC_INSERT, "INSERT INTO job_specs (id, yaml, def) VALUES (?1, ?2, ?3)") \
    X(JOB_GET,       "SELECT " JOBINFO_COLS " FROM jobs WHERE id = ?1") \
    X(JOB_STATE,     "SELECT state FROM jobs WHERE id = ?1") \
    X(JOB_YAML,      "SELECT yaml FROM job_specs WHERE id = ?1") \
    X(JOB_DEF,       "SELECT def FROM job_specs WHERE id = ?1") \
    X(JOB_NOTIFY,    "SELECT notify FROM jobs WHERE id = ?1") \
    X(JOBS_ALL,      "SELECT " JOBINFO_COLS " FROM jobs ORDER BY id DESC LIMIT ?1") \
    X(JOBS_BY_STATE, "SELECT " JOBINFO_COLS " FROM jobs WHERE state = ?1" \
                     " ORDER BY id DESC LIMIT ?2") \
    X(JOBS_OPEN_BY_STATE, "SELECT " JOBINFO_COLS " FROM jobs WHERE state = ?1" \
                     " AND " NOT_FINISHED " ORDER BY id DESC LIMIT ?2") \
    X(JOBS_ACTIVE,   "SELECT id, state, device, worker, accepted, acked_seq FROM jobs" \
                     " WHERE " OPEN_STATE " AND (?1 IS NULL OR worker = ?1)" \
                     " ORDER BY id") \
    X(JOBS_COUNT_ALL,"SELECT count(*) FROM jobs") \
    X(JOBS_COUNT_OPEN, "SELECT count(*) FROM jobs WHERE state = ?1 AND " NOT_FINISHED) \
    X(JOBS_COUNT_FINISHED, "SELECT count(*) FROM jobs WHERE state = 'finished'") \
    X(JOB_ASSIGN,    UPDATE_STATE "jobs SET state = 'scheduled', device = ?2," \
                     " worker = ?3, accepted = 0 WHERE id = ?1 AND state = 'queued'") \
    X(DEV_RESERVE,   UPDATE_STATE "devices SET state = 'reserved', job = ?2, reason = NULL" \
                     " WHERE name = ?1 AND worker = ?3 AND state = 'idle' AND job IS NULL") \
    X(JOB_ACCEPTED,  "UPDATE jobs SET accepted = 1 WHERE id = ?1 AND " OPEN_STATE) \
    /* ?3 (JOB_RUNNING), ?5 (JOB_FINISH): the acked seq of the event batch that \
     * moves the job, written with its state; NULL (unbound) keeps it */ \
    X(JOB_RUNNING,   UPDATE_STATE "jobs SET state = 'running', started_ms = ?2," \
                     " acked_seq = coalesce(?3, acked_seq) WHERE id = ?1 AND state = 'scheduled'") \
    X(DEV_RUNNING,   UPDATE_STATE "devices SET state = 'running' WHERE name = " JOB_DEVICE \
                     " AND job = ?1 AND state = 'reserved'") \
    X(JOB_REQUEUE,   UPDATE_STATE "jobs SET state = 'queued', device = NULL," \
                     " worker = NULL, accepted = 0 WHERE id = ?1 AND state = 'scheduled'") \
    X(DEV_RELEASE,   UPDATE_STATE "devices SET " DEV_LET_GO \
                     " WHERE name = " JOB_DEVICE " AND job = ?1") \
    /* DEV_RELEASE of a finished job, counting it toward the device's every_jobs \
     * as HC_COUNT_JOB would: one statement on the device row instead of two */ \
    X(DEV_FINISH,    UPDATE_STATE "devices SET " DEV_LET_GO ", hc_jobs = hc_jobs" \
                     " + (SELECT count(*) FROM " COUNTED_JOB ")" \
                     " WHERE name = " JOB_DEVICE " AND job = ?1") \
    X(JOB_CANCELING, UPDATE_STATE "jobs SET state = 'canceling' WHERE id = ?1") \
    /* ?6: the start of a job whose "state running" came in the same batch \
     * (store_events.c), NULL keeps started_ms */ \
    X(JOB_FINISH,    UPDATE_STATE "jobs SET state = 'finished', outcome = ?2," \
                     " reason = ?3, ended_ms = ?4, acked_seq = coalesce(?5, acked_seq)," \
                     " started_ms = coalesce(?6, started_ms)" \
                     " WHERE id = ?1 AND state <> 'finished'") \
    X(JOB_ACKED_GET, "SELECT state, acked_seq FROM jobs WHERE id = ?1") \
    X(JOB_ACKED_SET, "UPDATE jobs SET acked_seq = ?2 WHERE id = ?1") \
    X(EVENT_INSERT,  "INSERT OR IGNORE INTO events (" EVENT_COLS ") VALUES" \
                     " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)") \
    X(EVENT_SEQS,    "SELECT seq FROM events WHERE job = ?1 AND seq > ?2 ORDER BY seq") \
    X(EVENTS_READ,   "SELECT " EVENT_COLS " FROM events WHERE job = ?1 AND seq > ?2" \
                     " ORDER BY seq LIMIT ?3") \
    X(WORKER_UPSERT, "INSERT INTO workers (name, rack, version, state, last_seen_ms)" \
                     " VALUES (?1, ?2, ?3, 'online', ?4) ON CONFLICT (name) DO UPDATE SET" \
                     " rack = excluded.rack, version = excluded.version, state = 'online'," \
                     " last_seen_ms = excluded.last_seen_ms") \
    X(WORKER_SEEN,   "UPDATE workers SET last_seen_ms = ?2 WHERE name = ?1") \
    X(WORKER_STATE,  "UPDATE workers SET state = ?2 WHERE name = ?1") \
    X(WORKER_DEVS_OFF, "UPDATE devices SET state = 'offline', reason = ?2 WHERE worker = ?1" \
                     " AND state NOT IN ('maintenance','retired') AND hc_failed = 0") \
    X(WORKERS_LIST,  "SELECT w.name, w.rack, w.state, w.version, w.last_seen_ms," \
                     " (SELECT count(*) FROM devices d WHERE d.worker = w.name)" \
                     " FROM workers w WHERE (?1 IS NULL OR w.state = ?1) ORDER BY w.name") \
    X(DEV_CURRENT,   "SELECT state, reason, worker, hc_failed FROM devices WHERE name = ?1") \
    X(DEV_OPEN_JOB,  "SELECT id, state FROM jobs WHERE device = ?1 AND " OPEN_STATE \
                     " ORDER BY id DESC LIMIT 1") \
    X(DEV_UPSERT,    "INSERT INTO devices (name, worker, type, tags, state, reason, job)" \
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (name) DO UPDATE SET" \
                     " worker = excluded.worker, type = excluded.type, tags = excluded.tags," \
                     " state = excluded.state, reason = excluded.reason, job = excluded.job," \
                     " " HC_LEAVE_BAD("excluded.state")) \
    X(DEV_SET,       "UPDATE devices SET state = ?2, reason = ?3, " HC_LEAVE_BAD("?2") \
                     " WHERE name = ?1") \
    X(DEV_SET_JOB,   "UPDATE devices SET state = ?2, reason = ?3, job = ?4, " HC_LEAVE_BAD("?2") \
                     " WHERE name = ?1") \
    X(DEV_NAMES,     "SELECT name FROM devices WHERE worker = ?1") \
    X(DEV_GET,       "SELECT " DEVINFO_COLS " FROM devices d WHERE d.name = ?1") \
    X(DEVS_LIST,     "SELECT " DEVINFO_COLS " FROM devices d WHERE (?1 IS NULL OR" \
                     " d.worker = ?1) ORDER BY d.name") \
    X(DEVS_IDLE,     "SELECT " DEVINFO_COLS " FROM devices d JOIN workers w" \
                     " ON w.name = d.worker WHERE d.state = 'idle' AND w.state = 'online'" \
                     " ORDER BY d.type, d.tags, d.name") \
    X(QUEUE_SINCE,   "SELECT id, device_type, tags, priority FROM jobs WHERE state = 'queued'" \
                     " AND " NOT_FINISHED \
                     " AND id > ?1 AND health_check = 0 ORDER BY id") \
    /* ---- HTTP API and metrics ---- */ \
    X(JOBS_QUERY,    "SELECT " JOBINFO_COLS " FROM jobs WHERE (?1 IS NULL OR state = ?1)" \
                     " AND (?2 IS NULL OR device_type = ?2) AND (?3 IS NULL OR worker = ?3)" \
                     " ORDER BY id DESC LIMIT ?4 OFFSET ?5") \
    X(QUEUE_OLDEST,  "SELECT submitted_ms FROM jobs WHERE state = 'queued' AND " NOT_FINISHED \
                     " ORDER BY id LIMIT 1") \
    X(EVENTS_KIND,   "SELECT " EVENT_COLS " FROM events WHERE job = ?1 AND seq > ?2" \
                     " AND kind = ?4 ORDER BY seq LIMIT ?3") \
    /* ---- log retention (master/retention.c) ---- */ \
    X(JOBS_ENDED,    "SELECT id, ended_ms FROM jobs WHERE state = 'finished'" \
                     " AND (ended_ms, id) > (?1, ?2) AND ended_ms < ?3" \
                     " ORDER BY ended_ms, id LIMIT ?4") \
    X(LOGS_BYTES,    "SELECT coalesce(sum(length(data)), 0) FROM events WHERE job = ?1" \
                     " AND kind = 'log' AND data IS NOT NULL AND data <> ?2") \
    X(LOGS_PRUNE,    "UPDATE events SET data = CASE WHEN seq = (SELECT min(seq) FROM events" \
                     " WHERE job = ?1 AND kind = 'log') THEN ?2 ELSE NULL END" \
                     " WHERE job = ?1 AND kind = 'log' AND data IS NOT NULL AND data <> ?2") \
    X(USED_BYTES,    "SELECT (SELECT page_count FROM pragma_page_count())" \
                     " - (SELECT freelist_count FROM pragma_freelist_count()),"\
                     " (SELECT page_size FROM pragma_page_size())") \
    /* ---- artifacts (master/store_artifacts.c) ---- */ \
    X(ART_GET,       "SELECT " ARTINFO_COLS " FROM artifacts WHERE job = ?1 AND name = ?2") \
    X(ARTS_LIST,     "SELECT " ARTINFO_COLS " FROM artifacts WHERE job = ?1 ORDER BY name") \
    X(ART_INSERT,    "INSERT INTO artifacts (job, name, size, sha256, complete, error," \
                     " created_ms) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6) ON CONFLICT (job, name)" \
                     " DO UPDATE SET size = excluded.size, sha256 = excluded.sha256," \
                     " complete = 0, error = excluded.error, created_ms = excluded.created_ms") \
    X(ART_COMPLETE,  "UPDATE artifacts SET complete = 1, error = NULL WHERE job = ?1 AND name = ?2") \
    X(ART_FAIL,      "UPDATE artifacts SET complete = 0, error = ?3 WHERE job = ?1 AND name = ?2") \
    X(ART_REMOVE,    "UPDATE artifacts SET complete = 2, error = ?2 WHERE job = ?1" \
                     " AND error IS NULL") \
    X(ART_BYTES,     "SELECT coalesce(sum(size), 0) FROM artifacts WHERE job = ?1" \
                     " AND error IS NULL AND name <> ?2") \
    /* ---- health checks (master/store_health.c) ---- */ \
    X(HC_IDLE,       "SELECT " HEALTH_COLS " FROM devices d JOIN workers w ON w.name = d.worker" \
                     " WHERE d.state = 'idle' AND d.type = ?1 AND w.state = 'online'" \
                     " ORDER BY d.name") \
    X(HC_GET,        "SELECT " HEALTH_COLS " FROM devices d WHERE d.name = ?1") \
    X(HC_JOB_MARK,   "UPDATE jobs SET health_check = 1 WHERE id = ?1") \
    X(HC_JOB_IS,     "SELECT health_check, device FROM jobs WHERE id = ?1") \
    X(HC_PASSED,     "UPDATE devices SET hc_due = 0, hc_jobs = 0, hc_last_ms = ?2 WHERE name = ?1") \
    X(HC_FAILED,     "UPDATE devices SET state = 'bad', reason = ?2, hc_failed = 1" \
                     " WHERE name = ?1 AND state NOT IN ('maintenance','retired')") \
    /* a job that started on a device counts toward its every_jobs */ \
    X(HC_COUNT_JOB,  "UPDATE devices SET hc_jobs = hc_jobs + 1 WHERE name = (SELECT device" \
                     " FROM " COUNTED_JOB ")")

typedef enum {
#define STORE_ENUM(id, sql) ST_##id,
    STORE_STATEMENTS(STORE_ENUM)
#undef STORE_ENUM
    ST_COUNT
} store_stmt_t;

typedef struct _store_ckpt_t store_ckpt_t;    /* the checkpointer thread (store_wal.c) */

struct _rr_store_t {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmts[ST_COUNT];
    int depth;              /* transaction nesting: 0 = none */
    int joins;              /* rr_store_join parts open inside it (no savepoints) */
    bool doomed;            /* a joined part failed: the transaction can only roll back */
    char journal[16];
    char error[512];
    int wal_frames;         /* WAL size after the last commit (store_wal.c) */
    int wal_size;           /* the same, kept when a checkpoint is asked for */
    int wal_commit_frames;  /* frames the last commit added */
    int wal_limit;          /* checkpoint at this many frames; 0 = SQLite's own (autocheckpoint) */
    store_ckpt_t *ckpt;     /* checkpoints off the caller's thread once deferred; NULL before */
    bool sync_full;         /* synchronous = FULL (else NORMAL), for every connection */
};

/* ---- WAL (store_wal.c) ---- */

/* The PRAGMA that sets synchronous as SELF's options ask, for every connection. */
const char *store_sync_pragma(const rr_store_t *self);

/* Stop and join the checkpointer thread, close its connection (none: no-op). */
void store_checkpointer_stop(rr_store_t *self);

/* ---- errors ---- */

/* Set the error text from FMT and return CODE. */
int store_fail(rr_store_t *self, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* RR_STORE_E_DB with "store PATH: WHAT: <sqlite's message>". */
int store_fail_db(rr_store_t *self, const char *what);

/* ---- statements ---- */

/* The cached statement ID, reset and unbound, or NULL (error set). */
sqlite3_stmt *store_stmt(rr_store_t *self, store_stmt_t id);

/* The same with ?1 bound to FIRST (a job id, a seq...). */
sqlite3_stmt *store_stmt_u64(rr_store_t *self, store_stmt_t id, uint64_t first);

/* The same with ?1 bound to the text FIRST (a name; NULL binds NULL). */
sqlite3_stmt *store_stmt_text(rr_store_t *self, store_stmt_t id, const char *first);

/* Run a statement that returns no rows; *CHANGES (may be NULL) gets rows changed. */
int store_run(rr_store_t *self, sqlite3_stmt *s, const char *what, int *changes);

/* Step S once. RR_STORE_OK: a row to read, then sqlite3_reset(S).
 * RR_STORE_E_NOTFOUND: no row, no error text (the caller names what is
 * missing). Else a DB error about WHAT. S is reset unless RR_STORE_OK. */
int store_step_row(rr_store_t *self, sqlite3_stmt *s, const char *what);

/* store_step_row for a query on job ID: "job ID: no such job" when no row. */
int store_job_row(rr_store_t *self, sqlite3_stmt *s, uint64_t id, const char *what);

/* Step S once for the number in column 0 into *VALUE (may be NULL; left
 * unchanged when there is no row, which is not an error). S is reset. */
int store_read_u64(rr_store_t *self, sqlite3_stmt *s, const char *what, uint64_t *value);

static inline void bind_u64(sqlite3_stmt *s, int i, uint64_t v)
{
    sqlite3_bind_int64(s, i, (sqlite3_int64) v);
}

/* Text, copied by SQLite; NULL binds NULL. */
static inline void bind_text(sqlite3_stmt *s, int i, const char *text)
{
    sqlite3_bind_text(s, i, text, -1, SQLITE_TRANSIENT);
}

/* Column I as a malloc'd string, NULL for NULL (or ENOMEM). */
static inline char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *text = sqlite3_column_text(s, i);
    return text ? strdup((const char *) text) : NULL;
}

static inline uint64_t col_u64(sqlite3_stmt *s, int i)
{
    return (uint64_t) sqlite3_column_int64(s, i);
}

/* ---- lists: one array element per row ---- */

/* How a list reads one row into an element of SIZE bytes (READ: 0, or -1 on
 * ENOMEM; ARG is the caller's), and how it frees one (CLEAR may be NULL). */
typedef struct {
    size_t size;
    int (*read)(sqlite3_stmt *s, void *item, void *arg);
    void (*clear)(void *item);
} store_rowtype_t;

/* Step S to its end into *ITEMS (malloc'd), *COUNT elements of TYPE. On
 * failure (a DB error about WHAT, or ENOMEM) nothing is kept: *ITEMS NULL,
 * *COUNT 0. S is reset. */
int store_rows(rr_store_t *self, sqlite3_stmt *s, const store_rowtype_t *type, void *arg,
               void **items, size_t *count, const char *what);

/* Step S once into ITEM (one element of TYPE, zeroed first). RR_STORE_OK;
 * RR_STORE_E_NOTFOUND without error text (the caller names what is missing);
 * else a DB error about WHAT, or ENOMEM (ITEM cleared). S is reset. */
int store_row(rr_store_t *self, sqlite3_stmt *s, const store_rowtype_t *type, void *arg,
              void *item, const char *what);

/* Clear COUNT elements of TYPE, free *ITEMS and NULL it (NULL or *NULL: no-op). */
void store_items_free(void **items, size_t count, const store_rowtype_t *type);

/* Make room for one more element of SIZE bytes in *ARRAY (holding COUNT);
 * new room is zeroed. */
int store_grow(void **array, size_t count, size_t *cap, size_t size);

/* ---- transactions ---- */

/* End an internal transaction: commit when RC is OK, else roll back. Returns
 * RC (or the commit's failure). */
int store_finish_tx(rr_store_t *self, int rc);

/* ---- names and tags ---- */

/* NAME (may be NULL: false) is one of the NULL-terminated NAMES. */
bool store_one_of(const char *name, const char *const *names);

extern const char *const store_job_states[];
extern const char *const store_outcomes[];
extern const char *const store_device_states[];
extern const char *const store_worker_states[];

/* TAGS sorted, deduplicated and comma-joined, malloc'd ("" for none). */
char *store_tags_join(char *const *tags, size_t count);

/* Split a comma-joined TEXT into a malloc'd array of malloc'd strings. */
int store_tags_split(const char *text, char ***tags, size_t *count);

/* Free COUNT strings and the array. */
void store_strs_free(char **strs, size_t count);

/* ---- across rooms (store_jobs.c, used by the event stream) ---- */

/* The state of job ID into STATE (16 bytes). */
int store_job_state(rr_store_t *self, uint64_t id, char state[16]);

/* Scheduled -> running and its device running; already running/canceling:
 * no-op. Inside a transaction. ACKED (NULL: none) is written into the job's
 * acked seq with the state; *WROTE (may be NULL) says whether it was. */
int store_job_running_tx(rr_store_t *self, uint64_t id, uint64_t now_ms,
                         const uint64_t *acked, bool *wrote);

/* Open job -> finished with OUTCOME and REASON; its device lets go of it.
 * Inside a transaction. ACKED (NULL: none) is written into the job's acked
 * seq with the state when it succeeds, STARTED_MS (NULL: kept) into its
 * start time. */
int store_job_finish_tx(rr_store_t *self, uint64_t id, const char *outcome,
                        const char *reason, uint64_t now_ms, const uint64_t *acked,
                        const uint64_t *started_ms);

#endif
