/* store.c: the master's persistent state in SQLite; the only SQL in rackrun.
 *
 * Durability: WAL journal with synchronous=NORMAL by default. In WAL mode a
 * commit is complete once its frames are written to the -wal file, so a
 * process crash (kill -9 of the master) loses nothing committed; only an OS
 * crash or power loss may lose the last transactions (the WAL is fsynced at
 * checkpoints, not at every commit). FULL (rr_store_options_t.sync_full)
 * fsyncs every commit for labs that want power-loss durability and can pay
 * one fsync per event batch. Events are batched by the caller into one
 * transaction (rr_store_events_append), so FULL costs one fsync per batch.
 *
 * Statements are prepared once (SQLITE_PREPARE_PERSISTENT) and cached by id.
 * Transactions nest: the outermost level is BEGIN IMMEDIATE (take the write
 * lock up front, so a later write cannot fail with BUSY mid-transaction), the
 * inner ones are savepoints, so every public call is atomic on its own and
 * also composes into a caller's rr_store_begin.
 *
 * Tags are stored as one sorted, deduplicated, comma-joined string ("a,b"):
 * cheap to compare and to group devices by; a tag may not contain a comma
 * (jobyaml refuses one; a device tag with a comma reads back as two tags).
 */
#include "store.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_SCHEMA_VERSION 1

/* ---- schema ---- */

static const char *const migrations[STORE_SCHEMA_VERSION] = {
    /* version 1 */
    "CREATE TABLE workers ("
    "  name TEXT PRIMARY KEY,"
    "  rack TEXT,"
    "  version TEXT,"
    "  state TEXT NOT NULL CHECK (state IN ('online','lost','offline')),"
    "  last_seen_ms INTEGER NOT NULL DEFAULT 0"
    ") WITHOUT ROWID;"
    "CREATE TABLE jobs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL,"
    "  device_type TEXT NOT NULL,"
    "  tags TEXT NOT NULL DEFAULT '',"
    "  priority INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN"
    "    ('queued','scheduled','running','canceling','finished')),"
    "  outcome TEXT CHECK (outcome IS NULL OR outcome IN ('complete','incomplete','canceled')),"
    "  reason TEXT,"
    "  device TEXT,"
    "  worker TEXT,"
    "  yaml TEXT NOT NULL,"
    "  def BLOB NOT NULL,"
    "  submitted_ms INTEGER NOT NULL,"
    "  started_ms INTEGER NOT NULL DEFAULT 0,"
    "  ended_ms INTEGER NOT NULL DEFAULT 0,"
    "  accepted INTEGER NOT NULL DEFAULT 0,"
    "  acked_seq INTEGER NOT NULL DEFAULT 0"
    ");"
    /* The queue: partial, so it holds only queued jobs and stays small. */
    "CREATE INDEX jobs_queue ON jobs (device_type, priority DESC, id) WHERE state = 'queued';"
    "CREATE INDEX jobs_state ON jobs (state, id);"
    "CREATE INDEX jobs_open_device ON jobs (device)"
    "  WHERE state IN ('scheduled','running','canceling');"
    "CREATE TABLE devices ("
    "  name TEXT PRIMARY KEY,"
    "  worker TEXT NOT NULL REFERENCES workers (name),"
    "  type TEXT NOT NULL,"
    "  tags TEXT NOT NULL DEFAULT '',"
    "  state TEXT NOT NULL CHECK (state IN"
    "    ('idle','reserved','running','offline','maintenance','bad','retired')),"
    "  reason TEXT,"
    "  job INTEGER REFERENCES jobs (id)"
    ") WITHOUT ROWID;"
    "CREATE INDEX devices_worker ON devices (worker);"
    "CREATE INDEX devices_state ON devices (state, type, tags);"
    "CREATE INDEX devices_job ON devices (job) WHERE job IS NOT NULL;"
    "CREATE TABLE events ("
    "  job INTEGER NOT NULL REFERENCES jobs (id),"
    "  seq INTEGER NOT NULL,"
    "  ts INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  name TEXT, value TEXT, reason TEXT, code INTEGER,"
    "  measurement TEXT, units TEXT, since INTEGER, data BLOB,"
    "  PRIMARY KEY (job, seq)"
    ") WITHOUT ROWID;"
    "CREATE VIEW results AS SELECT job, seq, ts, name, value AS result, code,"
    "  measurement, units FROM events WHERE kind = 'result';",
};

/* ---- statement cache ---- */

#define JOBINFO_COLS "id, name, state, outcome, reason, device_type, device, worker, " \
                     "priority, submitted_ms, started_ms, ended_ms"
#define DEVINFO_COLS "d.name, d.worker, d.type, d.tags, d.state, d.reason, d.job"
#define EVENT_COLS   "job, seq, ts, kind, name, value, reason, code, measurement, " \
                     "units, since, data"
#define OPEN_STATES  "('scheduled','running','canceling')"

#define STORE_STATEMENTS(X) \
    X(BEGIN,         "BEGIN IMMEDIATE") \
    X(COMMIT,        "COMMIT") \
    X(ROLLBACK,      "ROLLBACK") \
    X(SAVEPOINT,     "SAVEPOINT rr") \
    X(RELEASE,       "RELEASE rr") \
    X(ROLLBACK_TO,   "ROLLBACK TO rr") \
    X(JOB_INSERT,    "INSERT INTO jobs (name, device_type, tags, priority, state, yaml, def," \
                     " submitted_ms) VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7)") \
    X(JOB_GET,       "SELECT " JOBINFO_COLS " FROM jobs WHERE id = ?1") \
    X(JOB_STATE,     "SELECT state FROM jobs WHERE id = ?1") \
    X(JOB_YAML,      "SELECT yaml FROM jobs WHERE id = ?1") \
    X(JOB_DEF,       "SELECT def FROM jobs WHERE id = ?1") \
    X(JOBS_ALL,      "SELECT " JOBINFO_COLS " FROM jobs ORDER BY id DESC LIMIT ?1") \
    X(JOBS_BY_STATE, "SELECT " JOBINFO_COLS " FROM jobs WHERE state = ?1" \
                     " ORDER BY id DESC LIMIT ?2") \
    X(JOBS_ACTIVE,   "SELECT id, state, device, worker, accepted, acked_seq FROM jobs" \
                     " WHERE state IN " OPEN_STATES " AND (?1 IS NULL OR worker = ?1)" \
                     " ORDER BY id") \
    X(JOBS_COUNT_ALL,"SELECT count(*) FROM jobs") \
    X(JOBS_COUNT,    "SELECT count(*) FROM jobs WHERE state = ?1") \
    X(JOB_ASSIGN,    "UPDATE jobs SET state = 'scheduled', device = ?2, worker = ?3," \
                     " accepted = 0 WHERE id = ?1 AND state = 'queued'") \
    X(DEV_RESERVE,   "UPDATE devices SET state = 'reserved', job = ?2, reason = NULL" \
                     " WHERE name = ?1 AND worker = ?3 AND state = 'idle' AND job IS NULL") \
    X(JOB_ACCEPTED,  "UPDATE jobs SET accepted = 1 WHERE id = ?1 AND state IN " OPEN_STATES) \
    X(JOB_RUNNING,   "UPDATE jobs SET state = 'running', started_ms = ?2" \
                     " WHERE id = ?1 AND state = 'scheduled'") \
    X(DEV_RUNNING,   "UPDATE devices SET state = 'running' WHERE job = ?1 AND state = 'reserved'") \
    X(JOB_REQUEUE,   "UPDATE jobs SET state = 'queued', device = NULL, worker = NULL," \
                     " accepted = 0 WHERE id = ?1 AND state = 'scheduled'") \
    X(DEV_RELEASE,   "UPDATE devices SET job = NULL, state = CASE WHEN state IN" \
                     " ('reserved','running') THEN 'idle' ELSE state END WHERE job = ?1") \
    X(JOB_CANCELING, "UPDATE jobs SET state = 'canceling' WHERE id = ?1") \
    X(JOB_FINISH,    "UPDATE jobs SET state = 'finished', outcome = ?2, reason = ?3," \
                     " ended_ms = ?4 WHERE id = ?1 AND state <> 'finished'") \
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
                     " AND state NOT IN ('maintenance','retired')") \
    X(WORKERS_LIST,  "SELECT w.name, w.rack, w.state, w.version, w.last_seen_ms," \
                     " (SELECT count(*) FROM devices d WHERE d.worker = w.name)" \
                     " FROM workers w WHERE (?1 IS NULL OR w.state = ?1) ORDER BY w.name") \
    X(DEV_CURRENT,   "SELECT state, reason, worker FROM devices WHERE name = ?1") \
    X(DEV_OPEN_JOB,  "SELECT id, state FROM jobs WHERE device = ?1 AND state IN " OPEN_STATES \
                     " ORDER BY id DESC LIMIT 1") \
    X(DEV_UPSERT,    "INSERT INTO devices (name, worker, type, tags, state, reason, job)" \
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (name) DO UPDATE SET" \
                     " worker = excluded.worker, type = excluded.type, tags = excluded.tags," \
                     " state = excluded.state, reason = excluded.reason, job = excluded.job") \
    X(DEV_SET,       "UPDATE devices SET state = ?2, reason = ?3 WHERE name = ?1") \
    X(DEV_SET_JOB,   "UPDATE devices SET state = ?2, reason = ?3, job = ?4 WHERE name = ?1") \
    X(DEV_NAMES,     "SELECT name FROM devices WHERE worker = ?1") \
    X(DEV_GET,       "SELECT " DEVINFO_COLS " FROM devices d WHERE d.name = ?1") \
    X(DEVS_LIST,     "SELECT " DEVINFO_COLS " FROM devices d WHERE (?1 IS NULL OR" \
                     " d.worker = ?1) ORDER BY d.name") \
    X(DEVS_IDLE,     "SELECT " DEVINFO_COLS " FROM devices d JOIN workers w" \
                     " ON w.name = d.worker WHERE d.state = 'idle' AND w.state = 'online'" \
                     " ORDER BY d.type, d.tags, d.name") \
    X(QUEUE_WALK,    "SELECT id, tags FROM jobs WHERE state = 'queued' AND device_type = ?1" \
                     " ORDER BY priority DESC, id ASC") \
    /* ---- HTTP API and metrics (see the block at the end of this file) ---- */ \
    X(JOBS_QUERY,    "SELECT " JOBINFO_COLS " FROM jobs WHERE (?1 IS NULL OR state = ?1)" \
                     " AND (?2 IS NULL OR device_type = ?2) AND (?3 IS NULL OR worker = ?3)" \
                     " ORDER BY id DESC LIMIT ?4 OFFSET ?5") \
    X(QUEUE_OLDEST,  "SELECT submitted_ms FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1") \
    X(EVENTS_KIND,   "SELECT " EVENT_COLS " FROM events WHERE job = ?1 AND seq > ?2" \
                     " AND kind = ?4 ORDER BY seq LIMIT ?3")

typedef enum {
#define STORE_ENUM(id, sql) ST_##id,
    STORE_STATEMENTS(STORE_ENUM)
#undef STORE_ENUM
    ST_COUNT
} store_stmt_t;

static const char *const statement_sql[ST_COUNT] = {
#define STORE_SQL(id, sql) sql,
    STORE_STATEMENTS(STORE_SQL)
#undef STORE_SQL
};

struct _rr_store_t {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmts[ST_COUNT];
    int depth;              /* transaction nesting: 0 = none */
    char journal[16];
    char error[512];
};

/* ---- errors ---- */

static int fail(rr_store_t *self, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(rr_store_t *self, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->error, sizeof self->error, fmt, ap);
    va_end(ap);
    return code;
}

static int fail_db(rr_store_t *self, const char *what)
{
    return fail(self, RR_STORE_E_DB, "store %s: %s: %s", self->path, what,
                sqlite3_errmsg(self->db));
}

const char *rr_store_error(rr_store_t *self)
{
    return self->error;
}

/* ---- statements ---- */

/* The cached statement ID, reset and unbound, or NULL (error set). */
static sqlite3_stmt *stmt(rr_store_t *self, store_stmt_t id)
{
    sqlite3_stmt *s = self->stmts[id];
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
    }
    if (sqlite3_prepare_v3(self->db, statement_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                           &self->stmts[id], NULL) != SQLITE_OK) {
        fail_db(self, "prepare");
        return NULL;
    }
    return self->stmts[id];
}

/* Run a statement that returns no rows; *CHANGES (may be NULL) gets rows changed. */
static int run(rr_store_t *self, sqlite3_stmt *s, const char *what, int *changes)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return fail_db(self, what);
    if (changes)
        *changes = sqlite3_changes(self->db);
    return RR_STORE_OK;
}

static void bind_u64(sqlite3_stmt *s, int i, uint64_t v)
{
    sqlite3_bind_int64(s, i, (sqlite3_int64) v);
}

static void bind_text(sqlite3_stmt *s, int i, const char *text)
{
    sqlite3_bind_text(s, i, text, -1, SQLITE_TRANSIENT);
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *text = sqlite3_column_text(s, i);
    return text ? strdup((const char *) text) : NULL;
}

static uint64_t col_u64(sqlite3_stmt *s, int i)
{
    return (uint64_t) sqlite3_column_int64(s, i);
}

/* Run a simple statement by id (transaction control). */
static int exec_id(rr_store_t *self, store_stmt_t id)
{
    sqlite3_stmt *s = stmt(self, id);
    return s ? run(self, s, statement_sql[id], NULL) : RR_STORE_E_DB;
}

/* ---- transactions ---- */

int rr_store_begin(rr_store_t *self)
{
    int rc = exec_id(self, self->depth == 0 ? ST_BEGIN : ST_SAVEPOINT);
    if (rc == RR_STORE_OK)
        self->depth++;
    return rc;
}

int rr_store_commit(rr_store_t *self)
{
    if (self->depth == 0)
        return fail(self, RR_STORE_E_STATE, "store: commit without begin");
    int rc = exec_id(self, self->depth == 1 ? ST_COMMIT : ST_RELEASE);
    if (rc == RR_STORE_OK)
        self->depth--;
    else if (self->depth == 1)
        rr_store_rollback(self);
    return rc;
}

int rr_store_rollback(rr_store_t *self)
{
    if (self->depth == 0)
        return fail(self, RR_STORE_E_STATE, "store: rollback without begin");
    char keep[sizeof self->error];
    memcpy(keep, self->error, sizeof keep);  /* keep the error that caused it */
    int rc;
    if (self->depth == 1) {
        rc = exec_id(self, ST_ROLLBACK);
    } else {
        rc = exec_id(self, ST_ROLLBACK_TO);
        if (rc == RR_STORE_OK)
            rc = exec_id(self, ST_RELEASE);
    }
    self->depth--;
    memcpy(self->error, keep, sizeof keep);
    return rc;
}

/* End an internal transaction: commit when RC is OK, else roll back. Returns RC
 * (or the commit's failure). */
static int finish_tx(rr_store_t *self, int rc)
{
    if (rc == RR_STORE_OK)
        return rr_store_commit(self);
    rr_store_rollback(self);
    return rc;
}

/* ---- names ---- */

static bool one_of(const char *name, const char *const *names)
{
    for (; name && *names; names++)
        if (strcmp(name, *names) == 0)
            return true;
    return false;
}

static const char *const job_states[] = { RR_JOB_QUEUED, RR_JOB_SCHEDULED, RR_JOB_RUNNING,
                                          RR_JOB_CANCELING, RR_JOB_FINISHED, NULL };
static const char *const outcomes[] = { RR_OUTCOME_COMPLETE, RR_OUTCOME_INCOMPLETE,
                                        RR_OUTCOME_CANCELED, NULL };
static const char *const device_states[] = { RR_DEVICE_IDLE, RR_DEVICE_RESERVED,
    RR_DEVICE_RUNNING, RR_DEVICE_OFFLINE, RR_DEVICE_MAINTENANCE, RR_DEVICE_BAD,
    RR_DEVICE_RETIRED, NULL };
static const char *const worker_states[] = { RR_WORKER_ONLINE, RR_WORKER_LOST,
                                             RR_WORKER_OFFLINE, NULL };

/* ---- tags ---- */

static int tag_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* TAGS sorted, deduplicated and comma-joined, malloc'd ("" for none). */
static char *tags_join(char *const *tags, size_t count)
{
    char **sorted = calloc(count + 1, sizeof *sorted);
    size_t len = 1;
    if (!sorted)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        sorted[i] = tags[i];
        len += strlen(tags[i]) + 1;
    }
    qsort(sorted, count, sizeof *sorted, tag_cmp);
    char *out = malloc(len), *at = out;
    if (out) {
        *at = '\0';
        for (size_t i = 0; i < count; i++) {
            if ((i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0) || !*sorted[i])
                continue;
            at += sprintf(at, "%s%s", at == out ? "" : ",", sorted[i]);
        }
    }
    free(sorted);
    return out;
}

/* Split a comma-joined TEXT into a malloc'd array of malloc'd strings. */
static int tags_split(const char *text, char ***tags, size_t *count)
{
    *tags = NULL;
    *count = 0;
    if (!text || !*text)
        return 0;
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ',';
    char **out = calloc(n, sizeof *out);
    if (!out)
        return -1;
    const char *start = text;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(start, ",");
        out[i] = strndup(start, len);
        if (!out[i]) {
            while (i > 0)
                free(out[--i]);
            free(out);
            return -1;
        }
        start += len + 1;
    }
    *tags = out;
    *count = n;
    return 0;
}

static void strs_free(char **strs, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(strs[i]);
    free(strs);
}

/* ---- growable arrays ---- */

/* Make room for one more element of SIZE bytes in *ARRAY (holding COUNT). */
static int grow(void **array, size_t count, size_t *cap, size_t size)
{
    if (count < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *bigger = realloc(*array, ncap * size);
    if (!bigger)
        return -1;
    memset((char *) bigger + *cap * size, 0, (ncap - *cap) * size);
    *array = bigger;
    *cap = ncap;
    return 0;
}

/* ---- lifecycle ---- */

static int pragma_text(rr_store_t *self, const char *sql, char *out, size_t outlen)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(self->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        snprintf(out, outlen, "%s", (const char *) sqlite3_column_text(s, 0));
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_OK || rc == SQLITE_DONE ? RR_STORE_OK : fail_db(self, sql);
}

static int exec_sql(rr_store_t *self, const char *sql, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(self->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return RR_STORE_OK;
    fail(self, RR_STORE_E_DB, "store %s: %s: %s", self->path, what, msg ? msg : "?");
    sqlite3_free(msg);
    return RR_STORE_E_DB;
}

int rr_store_schema_version(rr_store_t *self)
{
    char text[32] = "0";
    if (pragma_text(self, "SELECT coalesce(max(version), 0) FROM schema_version",
                    text, sizeof text) != RR_STORE_OK)
        return -1;
    return atoi(text);
}

/* Bring the schema up to STORE_SCHEMA_VERSION, one transaction per step. */
static int migrate(rr_store_t *self)
{
    if (exec_sql(self, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                 "schema_version") != RR_STORE_OK)
        return RR_STORE_E_DB;
    int version = rr_store_schema_version(self);
    if (version < 0)
        return RR_STORE_E_DB;
    if (version > STORE_SCHEMA_VERSION)
        return fail(self, RR_STORE_E_DB, "store %s: schema version %d is newer than this "
                    "master's (%d)", self->path, version, STORE_SCHEMA_VERSION);
    for (; version < STORE_SCHEMA_VERSION; version++) {
        char what[64], bump[96];
        snprintf(what, sizeof what, "migration to version %d", version + 1);
        snprintf(bump, sizeof bump, "INSERT INTO schema_version VALUES (%d)", version + 1);
        int rc = rr_store_begin(self);
        if (rc == RR_STORE_OK)
            rc = exec_sql(self, migrations[version], what);
        if (rc == RR_STORE_OK)
            rc = exec_sql(self, bump, what);
        if (rc == RR_STORE_OK)
            rc = rr_store_commit(self);
        else
            rr_store_rollback(self);
        if (rc != RR_STORE_OK)
            return rc;
    }
    return RR_STORE_OK;
}

static int configure(rr_store_t *self, const rr_store_options_t *options)
{
    uint32_t busy = options && options->busy_timeout_ms ? options->busy_timeout_ms : 5000;
    sqlite3_busy_timeout(self->db, (int) busy);
    if (pragma_text(self, "PRAGMA journal_mode = WAL", self->journal,
                    sizeof self->journal) != RR_STORE_OK)
        return RR_STORE_E_DB;
    if (strcmp(self->journal, "wal") != 0)
        return fail(self, RR_STORE_E_DB, "store %s: cannot use WAL (journal mode is %s)",
                    self->path, self->journal);
    const char *sync = options && options->sync_full ? "PRAGMA synchronous = FULL"
                                                     : "PRAGMA synchronous = NORMAL";
    if (exec_sql(self, sync, "synchronous") != RR_STORE_OK
        || exec_sql(self, "PRAGMA foreign_keys = ON", "foreign_keys") != RR_STORE_OK)
        return RR_STORE_E_DB;
    return RR_STORE_OK;
}

rr_store_t *rr_store_open_with(const char *path, const rr_store_options_t *options,
                               char *err, size_t errlen)
{
    rr_store_t *self = calloc(1, sizeof *self);
    if (!self)
        goto err_nomem;
    self->path = strdup(path);
    if (!self->path)
        goto err_nomem;
    if (sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                        | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        fail(self, RR_STORE_E_DB, "store %s: open: %s", path,
             self->db ? sqlite3_errmsg(self->db) : "out of memory");
        goto err;
    }
    sqlite3_extended_result_codes(self->db, 1);
    if (configure(self, options) != RR_STORE_OK || migrate(self) != RR_STORE_OK)
        goto err;
    return self;

err_nomem:
    if (err)
        snprintf(err, errlen, "store %s: out of memory", path);
    rr_store_destroy(&self);
    return NULL;
err:
    if (err)
        snprintf(err, errlen, "%s", self->error);
    rr_store_destroy(&self);
    return NULL;
}

rr_store_t *rr_store_open(const char *path, char *err, size_t errlen)
{
    return rr_store_open_with(path, NULL, err, errlen);
}

void rr_store_destroy(rr_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rr_store_t *self = *self_p;
    if (self->db) {
        while (self->depth > 0)
            rr_store_rollback(self);
        for (int i = 0; i < ST_COUNT; i++)
            sqlite3_finalize(self->stmts[i]);
        sqlite3_close(self->db);
    }
    free(self->path);
    free(self);
    *self_p = NULL;
}

const char *rr_store_journal_mode(rr_store_t *self)
{
    return self->journal;
}

/* ---- jobs ---- */

int rr_store_job_insert(rr_store_t *self, const char *yaml, const proto_jobdef_t *def,
                        uint64_t now_ms, uint64_t *id)
{
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    proto_error_t perr;
    if (proto_jobdef_encode(def, &blob, &blob_len, &perr) != 0)
        return fail(self, RR_STORE_E_INVALID, "job %s: encode: %s",
                    def && def->name ? def->name : "?", perr.text);
    int rc = RR_STORE_E_DB;
    char *tags = tags_join(def->tags, def->tags_count);
    sqlite3_stmt *s = tags ? stmt(self, ST_JOB_INSERT) : NULL;
    if (!tags) {
        rc = fail(self, RR_STORE_E_DB, "job %s: out of memory", def->name);
    } else if (s) {
        bind_text(s, 1, def->name);
        bind_text(s, 2, def->device_type);
        bind_text(s, 3, tags);
        sqlite3_bind_int(s, 4, (int) def->priority);
        bind_text(s, 5, yaml ? yaml : "");
        sqlite3_bind_blob(s, 6, blob, (int) blob_len, SQLITE_STATIC);
        bind_u64(s, 7, now_ms);
        rc = run(self, s, "job insert", NULL);
        if (rc == RR_STORE_OK && id)
            *id = (uint64_t) sqlite3_last_insert_rowid(self->db);
    }
    free(tags);
    free(blob);
    return rc;
}

static int jobinfo_from_row(sqlite3_stmt *s, proto_jobinfo_t *info)
{
    memset(info, 0, sizeof *info);
    info->id = col_u64(s, 0);
    info->name = col_dup(s, 1);
    info->state = col_dup(s, 2);
    info->outcome = col_dup(s, 3);
    info->reason = col_dup(s, 4);
    info->device_type = col_dup(s, 5);
    info->device = col_dup(s, 6);
    info->worker = col_dup(s, 7);
    info->priority = (uint32_t) sqlite3_column_int(s, 8);
    info->submitted = col_u64(s, 9);
    info->started = col_u64(s, 10);
    info->ended = col_u64(s, 11);
    return info->name && info->state && info->device_type ? 0 : -1;
}

void rr_store_jobinfo_clear(proto_jobinfo_t *info)
{
    if (!info)
        return;
    free(info->name);
    free(info->state);
    free(info->outcome);
    free(info->reason);
    free(info->device_type);
    free(info->device);
    free(info->worker);
    memset(info, 0, sizeof *info);
}

void rr_store_jobinfos_free(proto_jobinfo_t **jobs, size_t count)
{
    if (!jobs || !*jobs)
        return;
    for (size_t i = 0; i < count; i++)
        rr_store_jobinfo_clear(&(*jobs)[i]);
    free(*jobs);
    *jobs = NULL;
}

int rr_store_job_get(rr_store_t *self, uint64_t id, proto_jobinfo_t *info)
{
    memset(info, 0, sizeof *info);
    sqlite3_stmt *s = stmt(self, ST_JOB_GET);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        rc = jobinfo_from_row(s, info) == 0 ? RR_STORE_OK
             : fail(self, RR_STORE_E_DB, "job %" PRIu64 ": out of memory", id);
        if (rc != RR_STORE_OK)
            rr_store_jobinfo_clear(info);
    } else if (rc == SQLITE_DONE) {
        rc = fail(self, RR_STORE_E_NOTFOUND, "job %" PRIu64 ": no such job", id);
    } else {
        rc = fail_db(self, "job get");
    }
    sqlite3_reset(s);
    return rc;
}

/* The state of job ID into STATE (16 bytes). */
static int job_state(rr_store_t *self, uint64_t id, char state[16])
{
    sqlite3_stmt *s = stmt(self, ST_JOB_STATE);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        snprintf(state, 16, "%s", (const char *) sqlite3_column_text(s, 0));
        rc = RR_STORE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = fail(self, RR_STORE_E_NOTFOUND, "job %" PRIu64 ": no such job", id);
    } else {
        rc = fail_db(self, "job state");
    }
    sqlite3_reset(s);
    return rc;
}

/* Fetch column 0 of statement ID for job ID as a blob copy (*OUT, *LEN; +1 NUL). */
static int job_column(rr_store_t *self, store_stmt_t sid, uint64_t id, void **out, size_t *len)
{
    *out = NULL;
    sqlite3_stmt *s = stmt(self, sid);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const void *data = sqlite3_column_blob(s, 0);
        *len = (size_t) sqlite3_column_bytes(s, 0);
        *out = malloc(*len + 1);
        if (*out) {
            if (*len)
                memcpy(*out, data, *len);
            ((char *) *out)[*len] = '\0';
            rc = RR_STORE_OK;
        } else {
            rc = fail(self, RR_STORE_E_DB, "job %" PRIu64 ": out of memory", id);
        }
    } else if (rc == SQLITE_DONE) {
        rc = fail(self, RR_STORE_E_NOTFOUND, "job %" PRIu64 ": no such job", id);
    } else {
        rc = fail_db(self, "job read");
    }
    sqlite3_reset(s);
    return rc;
}

int rr_store_job_yaml(rr_store_t *self, uint64_t id, char **yaml)
{
    size_t len;
    return job_column(self, ST_JOB_YAML, id, (void **) yaml, &len);
}

int rr_store_job_def(rr_store_t *self, uint64_t id, proto_jobdef_t **def)
{
    void *blob = NULL;
    size_t len = 0;
    *def = NULL;
    int rc = job_column(self, ST_JOB_DEF, id, &blob, &len);
    if (rc != RR_STORE_OK)
        return rc;
    proto_error_t perr;
    if (proto_jobdef_decode(blob, len, def, &perr) != 0)
        rc = fail(self, RR_STORE_E_DB, "job %" PRIu64 ": stored definition: %s", id, perr.text);
    free(blob);
    return rc;
}

int rr_store_jobs_list(rr_store_t *self, const char *state, uint32_t limit,
                       proto_jobinfo_t **jobs, size_t *count)
{
    *jobs = NULL;
    *count = 0;
    if (state && !one_of(state, job_states))
        return fail(self, RR_STORE_E_INVALID, "jobs: unknown state '%s'", state);
    sqlite3_stmt *s = stmt(self, state ? ST_JOBS_BY_STATE : ST_JOBS_ALL);
    if (!s)
        return RR_STORE_E_DB;
    if (state)
        bind_text(s, 1, state);
    sqlite3_bind_int64(s, state ? 2 : 1, limit ? limit : 1000);
    size_t cap = 0;
    int rc, step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (grow((void **) jobs, *count, &cap, sizeof **jobs) != 0
            || jobinfo_from_row(s, &(*jobs)[(*count)++]) != 0) {
            step = SQLITE_NOMEM;
            break;
        }
    }
    rc = step == SQLITE_DONE ? RR_STORE_OK : fail_db(self, "jobs list");
    sqlite3_reset(s);
    if (rc != RR_STORE_OK)
        rr_store_jobinfos_free(jobs, *count), *count = 0;
    return rc;
}

void rr_store_actives_free(rr_store_active_t **jobs, size_t count)
{
    if (!jobs || !*jobs)
        return;
    for (size_t i = 0; i < count; i++) {
        free((*jobs)[i].state);
        free((*jobs)[i].device);
        free((*jobs)[i].worker);
    }
    free(*jobs);
    *jobs = NULL;
}

int rr_store_jobs_active(rr_store_t *self, const char *worker,
                         rr_store_active_t **jobs, size_t *count)
{
    *jobs = NULL;
    *count = 0;
    sqlite3_stmt *s = stmt(self, ST_JOBS_ACTIVE);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 1, worker);
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (grow((void **) jobs, *count, &cap, sizeof **jobs) != 0) {
            step = SQLITE_NOMEM;
            break;
        }
        rr_store_active_t *job = &(*jobs)[(*count)++];
        job->job = col_u64(s, 0);
        job->state = col_dup(s, 1);
        job->device = col_dup(s, 2);
        job->worker = col_dup(s, 3);
        job->accepted = sqlite3_column_int(s, 4) != 0;
        job->acked_seq = col_u64(s, 5);
    }
    int rc = step == SQLITE_DONE ? RR_STORE_OK : fail_db(self, "active jobs");
    sqlite3_reset(s);
    if (rc != RR_STORE_OK)
        rr_store_actives_free(jobs, *count), *count = 0;
    return rc;
}

int rr_store_jobs_count(rr_store_t *self, const char *state, uint64_t *count)
{
    sqlite3_stmt *s = stmt(self, state ? ST_JOBS_COUNT : ST_JOBS_COUNT_ALL);
    if (!s)
        return RR_STORE_E_DB;
    if (state)
        bind_text(s, 1, state);
    int rc = sqlite3_step(s) == SQLITE_ROW ? RR_STORE_OK : fail_db(self, "jobs count");
    if (rc == RR_STORE_OK)
        *count = col_u64(s, 0);
    sqlite3_reset(s);
    return rc;
}

/* Run an UPDATE on job ID that must change one row; else say why (not found,
 * or WHAT is not allowed in its state). */
static int job_update(rr_store_t *self, sqlite3_stmt *s, uint64_t id, const char *what)
{
    int changes = 0;
    int rc = run(self, s, what, &changes);
    if (rc != RR_STORE_OK || changes == 1)
        return rc;
    char state[16];
    rc = job_state(self, id, state);
    if (rc != RR_STORE_OK)
        return rc;
    return fail(self, RR_STORE_E_STATE, "job %" PRIu64 ": %s: not allowed when %s",
                id, what, state);
}

static int job_assign_tx(rr_store_t *self, uint64_t id, const char *device, const char *worker)
{
    sqlite3_stmt *s = stmt(self, ST_JOB_ASSIGN);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 1, id);
    bind_text(s, 2, device);
    bind_text(s, 3, worker);
    int rc = job_update(self, s, id, "assign");
    if (rc != RR_STORE_OK)
        return rc;
    if (!(s = stmt(self, ST_DEV_RESERVE)))
        return RR_STORE_E_DB;
    bind_text(s, 1, device);
    bind_u64(s, 2, id);
    bind_text(s, 3, worker);
    int changes = 0;
    rc = run(self, s, "device reserve", &changes);
    if (rc == RR_STORE_OK && changes != 1)
        rc = fail(self, RR_STORE_E_STATE, "job %" PRIu64 ": assign: device %s of worker %s "
                  "is not idle", id, device, worker);
    return rc;
}

int rr_store_job_assign(rr_store_t *self, uint64_t id, const char *device, const char *worker)
{
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    return finish_tx(self, job_assign_tx(self, id, device, worker));
}

int rr_store_job_accepted(rr_store_t *self, uint64_t id)
{
    sqlite3_stmt *s = stmt(self, ST_JOB_ACCEPTED);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 1, id);
    return job_update(self, s, id, "accept");
}

/* Scheduled -> running and its device running; already running/canceling: no-op. */
static int job_running_tx(rr_store_t *self, uint64_t id, uint64_t now_ms)
{
    char state[16];
    int rc = job_state(self, id, state);
    if (rc != RR_STORE_OK)
        return rc;
    if (strcmp(state, RR_JOB_RUNNING) == 0 || strcmp(state, RR_JOB_CANCELING) == 0)
        return RR_STORE_OK;
    if (strcmp(state, RR_JOB_SCHEDULED) != 0)
        return fail(self, RR_STORE_E_STATE, "job %" PRIu64 ": running: not allowed when %s",
                    id, state);
    sqlite3_stmt *s = stmt(self, ST_JOB_RUNNING);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 1, id);
    bind_u64(s, 2, now_ms);
    if ((rc = run(self, s, "job running", NULL)) != RR_STORE_OK)
        return rc;
    if (!(s = stmt(self, ST_DEV_RUNNING)))
        return RR_STORE_E_DB;
    bind_u64(s, 1, id);
    return run(self, s, "device running", NULL);
}

int rr_store_job_running(rr_store_t *self, uint64_t id, uint64_t now_ms)
{
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    return finish_tx(self, job_running_tx(self, id, now_ms));
}

/* The device holding job ID lets go of it (reserved/running -> idle). */
static int device_release(rr_store_t *self, uint64_t id)
{
    sqlite3_stmt *s = stmt(self, ST_DEV_RELEASE);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 1, id);
    return run(self, s, "device release", NULL);
}

int rr_store_job_requeue(rr_store_t *self, uint64_t id)
{
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    sqlite3_stmt *s = stmt(self, ST_JOB_REQUEUE);
    if (!s)
        return finish_tx(self, RR_STORE_E_DB);
    bind_u64(s, 1, id);
    rc = job_update(self, s, id, "requeue");
    if (rc == RR_STORE_OK)
        rc = device_release(self, id);
    return finish_tx(self, rc);
}

static int job_finish_tx(rr_store_t *self, uint64_t id, const char *outcome,
                         const char *reason, uint64_t now_ms)
{
    sqlite3_stmt *s = stmt(self, ST_JOB_FINISH);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 1, id);
    bind_text(s, 2, outcome);
    bind_text(s, 3, reason);
    bind_u64(s, 4, now_ms);
    int rc = job_update(self, s, id, "finish");
    return rc == RR_STORE_OK ? device_release(self, id) : rc;
}

int rr_store_job_finish(rr_store_t *self, uint64_t id, const char *outcome,
                        const char *reason, uint64_t now_ms)
{
    if (!one_of(outcome, outcomes))
        return fail(self, RR_STORE_E_INVALID, "job %" PRIu64 ": finish: unknown outcome '%s'",
                    id, outcome ? outcome : "(null)");
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    return finish_tx(self, job_finish_tx(self, id, outcome, reason, now_ms));
}

static int job_cancel_tx(rr_store_t *self, uint64_t id, uint64_t now_ms, const char **state)
{
    char now[16];
    int rc = job_state(self, id, now);
    if (rc != RR_STORE_OK)
        return rc;
    if (strcmp(now, RR_JOB_QUEUED) == 0) {
        *state = RR_JOB_FINISHED;
        return job_finish_tx(self, id, RR_OUTCOME_CANCELED, "canceled before it started",
                             now_ms);
    }
    if (strcmp(now, RR_JOB_SCHEDULED) != 0 && strcmp(now, RR_JOB_RUNNING) != 0)
        return fail(self, RR_STORE_E_STATE, "job %" PRIu64 ": cancel: already %s", id, now);
    sqlite3_stmt *s = stmt(self, ST_JOB_CANCELING);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 1, id);
    *state = RR_JOB_CANCELING;
    return run(self, s, "job cancel", NULL);
}

int rr_store_job_cancel(rr_store_t *self, uint64_t id, uint64_t now_ms, const char **state)
{
    const char *ignored;
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    return finish_tx(self, job_cancel_tx(self, id, now_ms, state ? state : &ignored));
}

/* ---- events ---- */

/* An event batch: per job, its public ack and the job's state as the batch
 * changes it. */
typedef struct {
    rr_store_ack_t *acks;
    char (*states)[16];
    size_t count, acks_cap, states_cap;
} batch_t;

/* The slot of JOB in BATCH, created (with the job's state and acked seq) when new. */
static int batch_slot(rr_store_t *self, batch_t *batch, uint64_t job, size_t *slot)
{
    for (size_t i = 0; i < batch->count; i++) {
        if (batch->acks[i].job == job) {
            *slot = i;
            return RR_STORE_OK;
        }
    }
    if (grow((void **) &batch->acks, batch->count, &batch->acks_cap, sizeof *batch->acks) != 0
        || grow((void **) &batch->states, batch->count, &batch->states_cap,
                sizeof *batch->states) != 0)
        return fail(self, RR_STORE_E_DB, "events: out of memory");
    *slot = batch->count++;
    rr_store_ack_t *ack = &batch->acks[*slot];
    ack->job = job;
    sqlite3_stmt *s = stmt(self, ST_JOB_ACKED_GET);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 1, job);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        snprintf(batch->states[*slot], sizeof batch->states[*slot], "%s",
                 (const char *) sqlite3_column_text(s, 0));
        ack->acked_seq = col_u64(s, 1);
    } else if (step == SQLITE_DONE) {
        ack->unknown = true;
    }
    sqlite3_reset(s);
    return step == SQLITE_ROW || step == SQLITE_DONE ? RR_STORE_OK : fail_db(self, "events");
}

static int event_insert(rr_store_t *self, const proto_job_event_t *ev, int *changes)
{
    sqlite3_stmt *s = stmt(self, ST_EVENT_INSERT);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 1, ev->job);
    bind_u64(s, 2, ev->seq);
    bind_u64(s, 3, ev->ts);
    bind_text(s, 4, ev->kind);
    bind_text(s, 5, ev->name);
    bind_text(s, 6, ev->value);
    bind_text(s, 7, ev->reason);
    sqlite3_bind_int64(s, 8, ev->code);
    bind_text(s, 9, ev->measurement);
    bind_text(s, 10, ev->units);
    bind_u64(s, 11, ev->since);
    if (ev->data)
        sqlite3_bind_blob(s, 12, ev->data, (int) ev->data_len, SQLITE_STATIC);
    return run(self, s, "event insert", changes);
}

/* The effect of a newly stored event on its job (state running, end). */
static int event_effect(rr_store_t *self, const proto_job_event_t *ev, rr_store_ack_t *ack,
                        char state[16])
{
    int rc = RR_STORE_OK;
    bool open = strcmp(state, RR_JOB_FINISHED) != 0 && strcmp(state, RR_JOB_QUEUED) != 0;
    if (!open || !ev->kind)
        return RR_STORE_OK;
    if (strcmp(ev->kind, "state") == 0 && ev->name && strcmp(ev->name, RR_JOB_RUNNING) == 0
        && strcmp(state, RR_JOB_SCHEDULED) == 0) {
        rc = job_running_tx(self, ev->job, ev->ts);
        if (rc == RR_STORE_OK) {
            snprintf(state, 16, "%s", RR_JOB_RUNNING);
            ack->started = true;
        }
    } else if (strcmp(ev->kind, "end") == 0) {
        const char *outcome = one_of(ev->value, outcomes) ? ev->value : RR_OUTCOME_INCOMPLETE;
        char why[256];
        const char *reason = ev->reason;
        if (outcome != ev->value) {
            snprintf(why, sizeof why, "end event with unknown outcome '%s'%s%s",
                     ev->value ? ev->value : "", ev->reason ? ": " : "",
                     ev->reason ? ev->reason : "");
            reason = why;
        }
        rc = job_finish_tx(self, ev->job, outcome, reason, ev->ts);
        if (rc == RR_STORE_OK) {
            snprintf(state, 16, "%s", RR_JOB_FINISHED);
            ack->finished = true;
        }
    }
    return rc;
}

/* Advance ACK->acked_seq over the stored seqs that follow it, and persist it. */
static int advance_acked(rr_store_t *self, rr_store_ack_t *ack)
{
    sqlite3_stmt *s = stmt(self, ST_EVENT_SEQS);
    if (!s)
        return RR_STORE_E_DB;
    uint64_t before = ack->acked_seq;
    bind_u64(s, 1, ack->job);
    bind_u64(s, 2, ack->acked_seq);
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW && col_u64(s, 0) == ack->acked_seq + 1)
        ack->acked_seq++;
    sqlite3_reset(s);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return fail_db(self, "event seqs");
    if (ack->acked_seq == before)
        return RR_STORE_OK;
    if (!(s = stmt(self, ST_JOB_ACKED_SET)))
        return RR_STORE_E_DB;
    bind_u64(s, 1, ack->job);
    bind_u64(s, 2, ack->acked_seq);
    return run(self, s, "acked seq", NULL);
}

static int events_append_tx(rr_store_t *self, const proto_job_event_t *events, size_t n,
                            batch_t *batch)
{
    size_t slot = 0;
    int rc = RR_STORE_OK;
    for (size_t i = 0; i < n && rc == RR_STORE_OK; i++) {
        const proto_job_event_t *ev = &events[i];
        rc = batch_slot(self, batch, ev->job, &slot);
        if (rc != RR_STORE_OK || batch->acks[slot].unknown || ev->seq == 0 || !ev->kind)
            continue;   /* seq counts from 1: a 0 could never be acked */
        int changes = 0;
        rc = event_insert(self, ev, &changes);
        if (rc == RR_STORE_OK && changes == 1) {
            batch->acks[slot].inserted++;
            rc = event_effect(self, ev, &batch->acks[slot], batch->states[slot]);
        }
    }
    for (size_t i = 0; i < batch->count && rc == RR_STORE_OK; i++)
        if (!batch->acks[i].unknown)
            rc = advance_acked(self, &batch->acks[i]);
    return rc;
}

int rr_store_events_append(rr_store_t *self, const proto_job_event_t *events, size_t n,
                           rr_store_ack_t **acks, size_t *ack_count)
{
    batch_t batch = { 0 };
    int rc = rr_store_begin(self);
    if (rc == RR_STORE_OK)
        rc = finish_tx(self, events_append_tx(self, events, n, &batch));
    free(batch.states);
    if (rc != RR_STORE_OK) {
        free(batch.acks);
        batch.acks = NULL;
        batch.count = 0;
    }
    *acks = batch.acks;
    *ack_count = batch.count;
    return rc;
}

static void event_clear(proto_job_event_t *ev)
{
    free(ev->kind);
    free(ev->data);
    free(ev->name);
    free(ev->value);
    free(ev->reason);
    free(ev->measurement);
    free(ev->units);
    memset(ev, 0, sizeof *ev);
}

void rr_store_events_free(proto_job_event_t **events, size_t count)
{
    if (!events || !*events)
        return;
    for (size_t i = 0; i < count; i++)
        event_clear(&(*events)[i]);
    free(*events);
    *events = NULL;
}

static int event_from_row(sqlite3_stmt *s, proto_job_event_t *ev)
{
    ev->job = col_u64(s, 0);
    ev->seq = col_u64(s, 1);
    ev->ts = col_u64(s, 2);
    ev->kind = col_dup(s, 3);
    ev->name = col_dup(s, 4);
    ev->value = col_dup(s, 5);
    ev->reason = col_dup(s, 6);
    ev->code = sqlite3_column_int64(s, 7);
    ev->measurement = col_dup(s, 8);
    ev->units = col_dup(s, 9);
    ev->since = col_u64(s, 10);
    if (sqlite3_column_type(s, 11) != SQLITE_NULL) {
        ev->data_len = (size_t) sqlite3_column_bytes(s, 11);
        ev->data = malloc(ev->data_len ? ev->data_len : 1);
        if (!ev->data)
            return -1;
        if (ev->data_len)
            memcpy(ev->data, sqlite3_column_blob(s, 11), ev->data_len);
    }
    return ev->kind ? 0 : -1;
}

int rr_store_events_read(rr_store_t *self, uint64_t job, uint64_t from_seq, uint32_t max,
                         proto_job_event_t **events, size_t *count)
{
    *events = NULL;
    *count = 0;
    sqlite3_stmt *s = stmt(self, ST_EVENTS_READ);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 1, job);
    bind_u64(s, 2, from_seq);
    sqlite3_bind_int64(s, 3, max ? max : 1000);
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (grow((void **) events, *count, &cap, sizeof **events) != 0
            || event_from_row(s, &(*events)[(*count)++]) != 0) {
            step = SQLITE_NOMEM;
            break;
        }
    }
    int rc = step == SQLITE_DONE ? RR_STORE_OK : fail_db(self, "events read");
    sqlite3_reset(s);
    if (rc != RR_STORE_OK)
        rr_store_events_free(events, *count), *count = 0;
    return rc;
}

int rr_store_events_acked(rr_store_t *self, uint64_t job, uint64_t *seq)
{
    sqlite3_stmt *s = stmt(self, ST_JOB_ACKED_GET);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 1, job);
    int step = sqlite3_step(s), rc;
    if (step == SQLITE_ROW) {
        *seq = col_u64(s, 1);
        rc = RR_STORE_OK;
    } else if (step == SQLITE_DONE) {
        rc = fail(self, RR_STORE_E_NOTFOUND, "job %" PRIu64 ": no such job", job);
    } else {
        rc = fail_db(self, "acked seq");
    }
    sqlite3_reset(s);
    return rc;
}

/* ---- devices ---- */

/* The open job on DEVICE (0 = none) and the device state it implies. */
static int device_open_job(rr_store_t *self, const char *device, uint64_t *job,
                           const char **state)
{
    *job = 0;
    sqlite3_stmt *s = stmt(self, ST_DEV_OPEN_JOB);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 1, device);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        *job = col_u64(s, 0);
        *state = strcmp((const char *) sqlite3_column_text(s, 1), RR_JOB_SCHEDULED) == 0
                 ? RR_DEVICE_RESERVED : RR_DEVICE_RUNNING;
    }
    sqlite3_reset(s);
    return step == SQLITE_ROW || step == SQLITE_DONE ? RR_STORE_OK : fail_db(self, "device job");
}

/* What a device becomes: the master's view (maintenance/retired, an open job)
 * wins over the worker's REPORTED state. Fills STATE (16 bytes), *REASON
 * (static or REPORTED_REASON) and *JOB (0 = none). */
static int device_merge(rr_store_t *self, const char *device, const char *reported,
                        const char *reported_reason, char state[16], const char **reason,
                        char *kept_reason, size_t kept_len, uint64_t *job)
{
    *job = 0;
    *reason = reported_reason;
    sqlite3_stmt *s = stmt(self, ST_DEV_CURRENT);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 1, device);
    int step = sqlite3_step(s);
    bool operator_hold = false;
    if (step == SQLITE_ROW) {
        const char *now = (const char *) sqlite3_column_text(s, 0);
        operator_hold = strcmp(now, RR_DEVICE_MAINTENANCE) == 0
                        || strcmp(now, RR_DEVICE_RETIRED) == 0;
        if (operator_hold) {
            snprintf(state, 16, "%s", now);
            const char *why = (const char *) sqlite3_column_text(s, 1);
            snprintf(kept_reason, kept_len, "%s", why ? why : "");
            *reason = why ? kept_reason : NULL;
        }
    }
    sqlite3_reset(s);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return fail_db(self, "device state");
    const char *held = NULL;
    int rc = device_open_job(self, device, job, &held);
    if (rc != RR_STORE_OK)
        return rc;
    if (*job && !operator_hold) {
        snprintf(state, 16, "%s", held);
        *reason = NULL;
    }
    if (operator_hold || *job)
        return RR_STORE_OK;
    if (!one_of(reported, device_states) || strcmp(reported, RR_DEVICE_RESERVED) == 0
        || strcmp(reported, RR_DEVICE_RUNNING) == 0) {
        /* The worker says busy (or something unknown) but the master gave it no job. */
        snprintf(state, 16, "%s", RR_DEVICE_OFFLINE);
        snprintf(kept_reason, kept_len, "worker reports state '%s' without a job from the "
                 "master", reported ? reported : "");
        *reason = kept_reason;
        return RR_STORE_OK;
    }
    snprintf(state, 16, "%s", reported);
    return RR_STORE_OK;
}

static int device_upsert(rr_store_t *self, const char *worker, const proto_device_t *dev)
{
    char state[16], kept[256];
    const char *reason;
    uint64_t job;
    int rc = device_merge(self, dev->name, dev->state, NULL, state, &reason, kept,
                          sizeof kept, &job);
    if (rc != RR_STORE_OK)
        return rc;
    char *tags = tags_join(dev->tags, dev->tags_count);
    sqlite3_stmt *s = tags ? stmt(self, ST_DEV_UPSERT) : NULL;
    if (!s) {
        free(tags);
        return tags ? RR_STORE_E_DB : fail(self, RR_STORE_E_DB, "device: out of memory");
    }
    bind_text(s, 1, dev->name);
    bind_text(s, 2, worker);
    bind_text(s, 3, dev->type);
    bind_text(s, 4, tags);
    bind_text(s, 5, state);
    bind_text(s, 6, reason);
    if (job)
        bind_u64(s, 7, job);
    rc = run(self, s, "device upsert", NULL);
    free(tags);
    return rc;
}

static bool hello_lists(const proto_hello_t *hello, const char *device)
{
    for (size_t i = 0; i < hello->devices_count; i++)
        if (hello->devices[i].name && strcmp(hello->devices[i].name, device) == 0)
            return true;
    return false;
}

/* Devices of the worker that HELLO no longer lists go offline. */
static int devices_unlisted_offline(rr_store_t *self, const proto_hello_t *hello)
{
    char **names = NULL;
    size_t count = 0, cap = 0;
    sqlite3_stmt *s = stmt(self, ST_DEV_NAMES);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 1, hello->worker);
    int step, rc = RR_STORE_OK;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *name = (const char *) sqlite3_column_text(s, 0);
        if (hello_lists(hello, name))
            continue;
        if (grow((void **) &names, count, &cap, sizeof *names) != 0
            || !(names[count++] = strdup(name))) {
            step = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_reset(s);
    if (step != SQLITE_DONE)
        rc = fail_db(self, "worker devices");
    char reason[256];
    snprintf(reason, sizeof reason, "no longer configured on worker %s", hello->worker);
    for (size_t i = 0; i < count && rc == RR_STORE_OK; i++)
        rc = rr_store_device_set_state(self, names[i], RR_DEVICE_OFFLINE, reason);
    strs_free(names, count);
    return rc;
}

static int worker_hello_tx(rr_store_t *self, const proto_hello_t *hello, uint64_t now_ms)
{
    sqlite3_stmt *s = stmt(self, ST_WORKER_UPSERT);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 1, hello->worker);
    bind_text(s, 2, hello->rack);
    bind_text(s, 3, hello->version);
    bind_u64(s, 4, now_ms);
    int rc = run(self, s, "worker upsert", NULL);
    for (size_t i = 0; i < hello->devices_count && rc == RR_STORE_OK; i++)
        rc = device_upsert(self, hello->worker, &hello->devices[i]);
    if (rc == RR_STORE_OK)
        rc = devices_unlisted_offline(self, hello);
    return rc;
}

int rr_store_worker_hello(rr_store_t *self, const proto_hello_t *hello, uint64_t now_ms)
{
    if (!hello->worker)
        return fail(self, RR_STORE_E_INVALID, "hello: no worker name");
    for (size_t i = 0; i < hello->devices_count; i++)
        if (!hello->devices[i].name || !hello->devices[i].type)
            return fail(self, RR_STORE_E_INVALID, "worker %s: hello: device %zu without "
                        "name or type", hello->worker, i);
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    rc = worker_hello_tx(self, hello, now_ms);
    if (rc != RR_STORE_OK)
        fail(self, rc, "worker %s: hello: %.400s", hello->worker, rr_store_error(self));
    return finish_tx(self, rc);
}

/* Run a worker UPDATE that must change one row. */
static int worker_update(rr_store_t *self, sqlite3_stmt *s, const char *worker, const char *what)
{
    int changes = 0;
    int rc = run(self, s, what, &changes);
    if (rc == RR_STORE_OK && changes != 1)
        rc = fail(self, RR_STORE_E_NOTFOUND, "worker %s: no such worker", worker);
    return rc;
}

int rr_store_worker_seen(rr_store_t *self, const char *worker, uint64_t now_ms)
{
    sqlite3_stmt *s = stmt(self, ST_WORKER_SEEN);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 1, worker);
    bind_u64(s, 2, now_ms);
    return worker_update(self, s, worker, "worker seen");
}

static int worker_set_state_tx(rr_store_t *self, const char *worker, const char *state)
{
    sqlite3_stmt *s = stmt(self, ST_WORKER_STATE);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 1, worker);
    bind_text(s, 2, state);
    int rc = worker_update(self, s, worker, "worker state");
    if (rc != RR_STORE_OK || strcmp(state, RR_WORKER_ONLINE) == 0)
        return rc;
    char reason[256];
    snprintf(reason, sizeof reason, "worker %s %s", worker, state);
    if (!(s = stmt(self, ST_WORKER_DEVS_OFF)))
        return RR_STORE_E_DB;
    bind_text(s, 1, worker);
    bind_text(s, 2, reason);
    return run(self, s, "worker devices offline", NULL);
}

int rr_store_worker_set_state(rr_store_t *self, const char *worker, const char *state,
                              uint64_t now_ms)
{
    (void) now_ms;
    if (!one_of(state, worker_states))
        return fail(self, RR_STORE_E_INVALID, "worker %s: unknown state '%s'", worker,
                    state ? state : "(null)");
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    return finish_tx(self, worker_set_state_tx(self, worker, state));
}

void rr_store_workerinfos_free(proto_workerinfo_t **workers, size_t count)
{
    if (!workers || !*workers)
        return;
    for (size_t i = 0; i < count; i++) {
        free((*workers)[i].name);
        free((*workers)[i].rack);
        free((*workers)[i].state);
        free((*workers)[i].version);
    }
    free(*workers);
    *workers = NULL;
}

int rr_store_workers_list(rr_store_t *self, const char *state, uint64_t now_ms,
                          proto_workerinfo_t **workers, size_t *count)
{
    *workers = NULL;
    *count = 0;
    sqlite3_stmt *s = stmt(self, ST_WORKERS_LIST);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 1, state);
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (grow((void **) workers, *count, &cap, sizeof **workers) != 0) {
            step = SQLITE_NOMEM;
            break;
        }
        proto_workerinfo_t *w = &(*workers)[(*count)++];
        w->name = col_dup(s, 0);
        w->rack = col_dup(s, 1);
        w->state = col_dup(s, 2);
        w->version = col_dup(s, 3);
        uint64_t seen = col_u64(s, 4);
        w->heartbeat_age_ms = now_ms > seen ? now_ms - seen : 0;
        w->device_count = (uint32_t) sqlite3_column_int(s, 5);
        if (!w->name || !w->state) {
            step = SQLITE_NOMEM;
            break;
        }
    }
    int rc = step == SQLITE_DONE ? RR_STORE_OK : fail_db(self, "workers list");
    sqlite3_reset(s);
    if (rc != RR_STORE_OK)
        rr_store_workerinfos_free(workers, *count), *count = 0;
    return rc;
}

int rr_store_device_set_state(rr_store_t *self, const char *device, const char *state,
                              const char *reason)
{
    if (!one_of(state, device_states))
        return fail(self, RR_STORE_E_INVALID, "device %s: unknown state '%s'", device,
                    state ? state : "(null)");
    uint64_t job = 0;
    const char *held = NULL;
    if (strcmp(state, RR_DEVICE_IDLE) == 0) {
        /* Idle while a job is still open on it would let the scheduler double-book it. */
        int rc = device_open_job(self, device, &job, &held);
        if (rc != RR_STORE_OK)
            return rc;
        if (job) {
            state = held;
            reason = NULL;
        }
    }
    sqlite3_stmt *s = stmt(self, ST_DEV_SET);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 1, device);
    bind_text(s, 2, state);
    bind_text(s, 3, reason);
    int changes = 0;
    int rc = run(self, s, "device state", &changes);
    if (rc == RR_STORE_OK && changes != 1)
        rc = fail(self, RR_STORE_E_NOTFOUND, "device %s: no such device", device);
    return rc;
}

static int device_report_tx(rr_store_t *self, const char *worker,
                            const proto_devstate_t *change)
{
    proto_deviceinfo_t now;
    int rc = rr_store_device_get(self, change->name, &now);
    if (rc != RR_STORE_OK)
        return rc;
    bool mine = strcmp(now.worker, worker) == 0;
    rr_store_deviceinfo_clear(&now);
    if (!mine)
        return fail(self, RR_STORE_E_NOTFOUND, "worker %s: device %s: not one of its devices",
                    worker, change->name);
    char state[16], kept[256];
    const char *reason;
    uint64_t job;
    rc = device_merge(self, change->name, change->state, change->reason, state, &reason,
                      kept, sizeof kept, &job);
    if (rc != RR_STORE_OK)
        return rc;
    sqlite3_stmt *s = stmt(self, ST_DEV_SET_JOB);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 1, change->name);
    bind_text(s, 2, state);
    bind_text(s, 3, reason);
    if (job)
        bind_u64(s, 4, job);
    return run(self, s, "device report", NULL);
}

int rr_store_device_report(rr_store_t *self, const char *worker, const proto_devstate_t *change)
{
    if (!change->name)
        return fail(self, RR_STORE_E_INVALID, "worker %s: device report without name", worker);
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    return finish_tx(self, device_report_tx(self, worker, change));
}

static int deviceinfo_from_row(sqlite3_stmt *s, proto_deviceinfo_t *info)
{
    memset(info, 0, sizeof *info);
    info->name = col_dup(s, 0);
    info->worker = col_dup(s, 1);
    info->type = col_dup(s, 2);
    int rc = tags_split((const char *) sqlite3_column_text(s, 3), &info->tags, &info->tags_count);
    info->state = col_dup(s, 4);
    info->reason = col_dup(s, 5);
    info->job = col_u64(s, 6);
    return rc == 0 && info->name && info->worker && info->type && info->state ? 0 : -1;
}

void rr_store_deviceinfo_clear(proto_deviceinfo_t *info)
{
    if (!info)
        return;
    free(info->name);
    free(info->worker);
    free(info->type);
    strs_free(info->tags, info->tags_count);
    free(info->state);
    free(info->reason);
    memset(info, 0, sizeof *info);
}

void rr_store_deviceinfos_free(proto_deviceinfo_t **devices, size_t count)
{
    if (!devices || !*devices)
        return;
    for (size_t i = 0; i < count; i++)
        rr_store_deviceinfo_clear(&(*devices)[i]);
    free(*devices);
    *devices = NULL;
}

int rr_store_device_get(rr_store_t *self, const char *device, proto_deviceinfo_t *info)
{
    memset(info, 0, sizeof *info);
    sqlite3_stmt *s = stmt(self, ST_DEV_GET);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 1, device);
    int step = sqlite3_step(s), rc;
    if (step == SQLITE_ROW) {
        rc = deviceinfo_from_row(s, info) == 0 ? RR_STORE_OK
             : fail(self, RR_STORE_E_DB, "device %s: out of memory", device);
        if (rc != RR_STORE_OK)
            rr_store_deviceinfo_clear(info);
    } else if (step == SQLITE_DONE) {
        rc = fail(self, RR_STORE_E_NOTFOUND, "device %s: no such device", device);
    } else {
        rc = fail_db(self, "device get");
    }
    sqlite3_reset(s);
    return rc;
}

static int devices_query(rr_store_t *self, sqlite3_stmt *s, proto_deviceinfo_t **devices,
                         size_t *count)
{
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (grow((void **) devices, *count, &cap, sizeof **devices) != 0
            || deviceinfo_from_row(s, &(*devices)[(*count)++]) != 0) {
            step = SQLITE_NOMEM;
            break;
        }
    }
    int rc = step == SQLITE_DONE ? RR_STORE_OK : fail_db(self, "devices list");
    sqlite3_reset(s);
    if (rc != RR_STORE_OK)
        rr_store_deviceinfos_free(devices, *count), *count = 0;
    return rc;
}

int rr_store_devices_list(rr_store_t *self, const char *worker,
                          proto_deviceinfo_t **devices, size_t *count)
{
    *devices = NULL;
    *count = 0;
    sqlite3_stmt *s = stmt(self, ST_DEVS_LIST);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 1, worker);
    return devices_query(self, s, devices, count);
}

int rr_store_devices_idle(rr_store_t *self, proto_deviceinfo_t **devices, size_t *count)
{
    *devices = NULL;
    *count = 0;
    sqlite3_stmt *s = stmt(self, ST_DEVS_IDLE);
    return s ? devices_query(self, s, devices, count) : RR_STORE_E_DB;
}

/* ---- queue ---- */

int rr_store_queue_walk(rr_store_t *self, const char *device_type, rr_store_queue_fn *fn,
                        void *arg)
{
    sqlite3_stmt *s = stmt(self, ST_QUEUE_WALK);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 1, device_type);
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        char **tags;
        size_t tag_count;
        if (tags_split((const char *) sqlite3_column_text(s, 1), &tags, &tag_count) != 0) {
            step = SQLITE_NOMEM;
            break;
        }
        bool go_on = fn(col_u64(s, 0), tags, tag_count, arg);
        strs_free(tags, tag_count);
        if (!go_on) {
            step = SQLITE_DONE;
            break;
        }
    }
    int rc = step == SQLITE_DONE ? RR_STORE_OK : fail_db(self, "queue walk");
    sqlite3_reset(s);
    return rc;
}

/* ==== HTTP API and metrics (master/http.c, master/metrics.c) ==========================
 * Added for the read-only JSON API: job filters with paging, the age of the
 * queue, and one kind of event (results) without reading a whole log. */

int rr_store_jobs_query(rr_store_t *self, const rr_store_jobs_filter_t *filter,
                        proto_jobinfo_t **jobs, size_t *count)
{
    *jobs = NULL;
    *count = 0;
    if (filter->state && !one_of(filter->state, job_states))
        return fail(self, RR_STORE_E_INVALID, "jobs: unknown state '%s'", filter->state);
    if (filter->offset > INT64_MAX)
        return fail(self, RR_STORE_E_INVALID, "jobs: offset %" PRIu64 " too large", filter->offset);
    sqlite3_stmt *s = stmt(self, ST_JOBS_QUERY);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 1, filter->state);
    bind_text(s, 2, filter->device_type);
    bind_text(s, 3, filter->worker);
    sqlite3_bind_int64(s, 4, filter->limit ? filter->limit : 1000);
    bind_u64(s, 5, filter->offset);
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (grow((void **) jobs, *count, &cap, sizeof **jobs) != 0
            || jobinfo_from_row(s, &(*jobs)[(*count)++]) != 0) {
            step = SQLITE_NOMEM;
            break;
        }
    }
    int rc = step == SQLITE_DONE ? RR_STORE_OK : fail_db(self, "jobs query");
    sqlite3_reset(s);
    if (rc != RR_STORE_OK)
        rr_store_jobinfos_free(jobs, *count), *count = 0;
    return rc;
}

int rr_store_queue_oldest(rr_store_t *self, uint64_t *submitted_ms)
{
    *submitted_ms = 0;
    sqlite3_stmt *s = stmt(self, ST_QUEUE_OLDEST);
    if (!s)
        return RR_STORE_E_DB;
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW)
        *submitted_ms = col_u64(s, 0);
    int rc = step == SQLITE_ROW || step == SQLITE_DONE ? RR_STORE_OK : fail_db(self, "queue oldest");
    sqlite3_reset(s);
    return rc;
}

int rr_store_events_read_kind(rr_store_t *self, uint64_t job, const char *kind,
                              uint64_t from_seq, uint32_t max,
                              proto_job_event_t **events, size_t *count)
{
    *events = NULL;
    *count = 0;
    sqlite3_stmt *s = stmt(self, ST_EVENTS_KIND);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 1, job);
    bind_u64(s, 2, from_seq);
    sqlite3_bind_int64(s, 3, max ? max : 1000);
    bind_text(s, 4, kind);
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (grow((void **) events, *count, &cap, sizeof **events) != 0
            || event_from_row(s, &(*events)[(*count)++]) != 0) {
            step = SQLITE_NOMEM;
            break;
        }
    }
    int rc = step == SQLITE_DONE ? RR_STORE_OK : fail_db(self, "events read by kind");
    sqlite3_reset(s);
    if (rc != RR_STORE_OK)
        rr_store_events_free(events, *count), *count = 0;
    return rc;
}
