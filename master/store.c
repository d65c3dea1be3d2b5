/* store.c: the master's persistent state in SQLite; with its rooms
 * store_jobs.c, store_events.c and store_fleet.c (workers and devices) the
 * only SQL in rackrun. This file is the core: open, schema and migrations,
 * the statement cache, transactions, and the helpers the rooms share
 * (store_internal.h).
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
#include "store_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define STORE_SCHEMA_VERSION 6

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
    /* version 2: artifacts stored by the master (master/artifacts.c); error set = refused */
    "CREATE TABLE artifacts ("
    "  job INTEGER NOT NULL REFERENCES jobs (id),"
    "  name TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  complete INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT,"
    "  created_ms INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (job, name)"
    ") WITHOUT ROWID;",
    /* version 3: health checks (master/health.c). A device is due when hc_due
     * (new: the default, or it left bad) or by its counters; hc_failed marks a
     * bad state the master set (a failed health check), which the worker's
     * reports do not override. Devices that exist get a check too. */
    "ALTER TABLE jobs ADD COLUMN health_check INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE devices ADD COLUMN hc_due INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE devices ADD COLUMN hc_failed INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE devices ADD COLUMN hc_jobs INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE devices ADD COLUMN hc_last_ms INTEGER NOT NULL DEFAULT 0;",
    /* version 4: fewer pages and statement journals per job (bench_dispatch).
     * A job's YAML and definition in a table of their own, written once at
     * submit and read at JOB_START, so the rows every state change rewrites
     * stay small (about 80 instead of 500 bytes). The SQL queue walk's index
     * goes (the queue is in memory, sched_index.h). Devices: only the idle
     * ones indexed by state (the scheduler's and health checks' question),
     * devices.job without its index (a job's device is found through
     * jobs.device) and without its foreign key, whose check made each
     * reserve and release of a device keep a statement journal (the store
     * alone sets it, to the job it assigns). */
    "CREATE TABLE job_specs ("
    "  id INTEGER PRIMARY KEY REFERENCES jobs (id),"
    "  yaml TEXT NOT NULL,"
    "  def BLOB NOT NULL"
    ");"
    "INSERT INTO job_specs (id, yaml, def) SELECT id, yaml, def FROM jobs;"
    "DROP INDEX jobs_queue;"
    "ALTER TABLE jobs DROP COLUMN yaml;"
    "ALTER TABLE jobs DROP COLUMN def;"
    "CREATE TABLE devices_v4 ("
    "  name TEXT PRIMARY KEY,"
    "  worker TEXT NOT NULL REFERENCES workers (name),"
    "  type TEXT NOT NULL,"
    "  tags TEXT NOT NULL DEFAULT '',"
    "  state TEXT NOT NULL CHECK (state IN"
    "    ('idle','reserved','running','offline','maintenance','bad','retired')),"
    "  reason TEXT,"
    "  job INTEGER,"
    "  hc_due INTEGER NOT NULL DEFAULT 1,"
    "  hc_failed INTEGER NOT NULL DEFAULT 0,"
    "  hc_jobs INTEGER NOT NULL DEFAULT 0,"
    "  hc_last_ms INTEGER NOT NULL DEFAULT 0"
    ") WITHOUT ROWID;"
    "INSERT INTO devices_v4 (name, worker, type, tags, state, reason, job, hc_due, hc_failed,"
    "  hc_jobs, hc_last_ms) SELECT name, worker, type, tags, state, reason, job, hc_due,"
    "  hc_failed, hc_jobs, hc_last_ms FROM devices;"
    "DROP TABLE devices;"
    "ALTER TABLE devices_v4 RENAME TO devices;"
    "CREATE INDEX devices_worker ON devices (worker);"
    "CREATE INDEX devices_idle ON devices (type, tags) WHERE state = 'idle';"
    /* Jobs by state only while open: a finished job leaves the index instead
     * of moving to a random place among all finished ones; those are found
     * by when they ended (log retention), where each comes last. */
    "DROP INDEX jobs_state;"
    "CREATE INDEX jobs_open ON jobs (state, id) WHERE state <> 'finished';"
    "CREATE INDEX jobs_ended ON jobs (ended_ms, id) WHERE state = 'finished';",
    /* version 5: the open jobs by device without an IN list. SQLite evaluates
     * a partial index's WHERE for the old and the new row of every UPDATE of
     * the state, and codes an IN list of more than two constants as a
     * temporary b-tree built and freed each time (two per state change,
     * about 1.7 us each). The same rows: the CHECK allows no other state. */
    "DROP INDEX jobs_open_device;"
    "CREATE INDEX jobs_open_device ON jobs (device)"
    "  WHERE state <> 'queued' AND state <> 'finished';"
    /* The devices' CHECK on the state likewise (one temporary b-tree per
     * reserve, run and release), the same rule spelled with ORs; the table is
     * small and nothing refers to it. */
    "CREATE TABLE devices_v5 ("
    "  name TEXT PRIMARY KEY,"
    "  worker TEXT NOT NULL REFERENCES workers (name),"
    "  type TEXT NOT NULL,"
    "  tags TEXT NOT NULL DEFAULT '',"
    "  state TEXT NOT NULL CHECK (state = 'idle' OR state = 'reserved' OR state = 'running'"
    "    OR state = 'offline' OR state = 'maintenance' OR state = 'bad' OR state = 'retired'),"
    "  reason TEXT,"
    "  job INTEGER,"
    "  hc_due INTEGER NOT NULL DEFAULT 1,"
    "  hc_failed INTEGER NOT NULL DEFAULT 0,"
    "  hc_jobs INTEGER NOT NULL DEFAULT 0,"
    "  hc_last_ms INTEGER NOT NULL DEFAULT 0"
    ") WITHOUT ROWID;"
    "INSERT INTO devices_v5 SELECT name, worker, type, tags, state, reason, job, hc_due,"
    "  hc_failed, hc_jobs, hc_last_ms FROM devices;"
    "DROP TABLE devices;"
    "ALTER TABLE devices_v5 RENAME TO devices;"
    "CREATE INDEX devices_worker ON devices (worker);"
    "CREATE INDEX devices_idle ON devices (type, tags) WHERE state = 'idle';",
    /* version 6: the jobs' CHECKs on state and outcome spelled with ORs, as
     * the devices' in version 5 (each IN list was a temporary b-tree built at
     * every state change: four per job), and whether a job's definition asks
     * for a notification (notify): a job that ends reads its definition only
     * then. Jobs of older versions keep 1, their definitions say. The table
     * has children (job_specs, events, artifacts): migrate() runs this with
     * foreign keys off and checks them before it commits. The sequence goes
     * over, so that ids are never reused. */
    "CREATE TABLE jobs_v6 ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL,"
    "  device_type TEXT NOT NULL,"
    "  tags TEXT NOT NULL DEFAULT '',"
    "  priority INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK (state = 'queued' OR state = 'scheduled'"
    "    OR state = 'running' OR state = 'canceling' OR state = 'finished'),"
    "  outcome TEXT CHECK (outcome IS NULL OR outcome = 'complete' OR outcome = 'incomplete'"
    "    OR outcome = 'canceled'),"
    "  reason TEXT,"
    "  device TEXT,"
    "  worker TEXT,"
    "  submitted_ms INTEGER NOT NULL,"
    "  started_ms INTEGER NOT NULL DEFAULT 0,"
    "  ended_ms INTEGER NOT NULL DEFAULT 0,"
    "  accepted INTEGER NOT NULL DEFAULT 0,"
    "  acked_seq INTEGER NOT NULL DEFAULT 0,"
    "  health_check INTEGER NOT NULL DEFAULT 0,"
    "  notify INTEGER NOT NULL DEFAULT 1"
    ");"
    "INSERT INTO jobs_v6 (id, name, device_type, tags, priority, state, outcome, reason,"
    "  device, worker, submitted_ms, started_ms, ended_ms, accepted, acked_seq, health_check)"
    "  SELECT id, name, device_type, tags, priority, state, outcome, reason, device, worker,"
    "  submitted_ms, started_ms, ended_ms, accepted, acked_seq, health_check FROM jobs;"
    "DELETE FROM sqlite_sequence WHERE name = 'jobs_v6';"
    "INSERT INTO sqlite_sequence (name, seq) SELECT 'jobs_v6', seq FROM sqlite_sequence"
    "  WHERE name = 'jobs';"
    "DROP TABLE jobs;"
    "ALTER TABLE jobs_v6 RENAME TO jobs;"
    "CREATE INDEX jobs_open ON jobs (state, id) WHERE state <> 'finished';"
    "CREATE INDEX jobs_ended ON jobs (ended_ms, id) WHERE state = 'finished';"
    "CREATE INDEX jobs_open_device ON jobs (device)"
    "  WHERE state <> 'queued' AND state <> 'finished';",
};

static const char *const statement_sql[ST_COUNT] = {
#define STORE_SQL(id, sql) sql,
    STORE_STATEMENTS(STORE_SQL)
#undef STORE_SQL
};

/* ---- errors ---- */

int store_fail(rr_store_t *self, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->error, sizeof self->error, fmt, ap);
    va_end(ap);
    return code;
}

int store_fail_db(rr_store_t *self, const char *what)
{
    return store_fail(self, RR_STORE_E_DB, "store %s: %s: %s", self->path, what,
                      sqlite3_errmsg(self->db));
}

const char *rr_store_error(rr_store_t *self)
{
    return self->error;
}

/* ---- statements ---- */

sqlite3_stmt *store_stmt(rr_store_t *self, store_stmt_t id)
{
    sqlite3_stmt *s = self->stmts[id];
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
    }
    if (sqlite3_prepare_v3(self->db, statement_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                           &self->stmts[id], NULL) != SQLITE_OK) {
        store_fail_db(self, "prepare");
        return NULL;
    }
    return self->stmts[id];
}

sqlite3_stmt *store_stmt_u64(rr_store_t *self, store_stmt_t id, uint64_t first)
{
    sqlite3_stmt *s = store_stmt(self, id);
    if (s)
        bind_u64(s, 1, first);
    return s;
}

sqlite3_stmt *store_stmt_text(rr_store_t *self, store_stmt_t id, const char *first)
{
    sqlite3_stmt *s = store_stmt(self, id);
    if (s)
        bind_text(s, 1, first);
    return s;
}

int store_run(rr_store_t *self, sqlite3_stmt *s, const char *what, int *changes)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store_fail_db(self, what);
    if (changes)
        *changes = sqlite3_changes(self->db);
    return RR_STORE_OK;
}

int store_step_row(rr_store_t *self, sqlite3_stmt *s, const char *what)
{
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW)
        return RR_STORE_OK;
    int rc = step == SQLITE_DONE ? RR_STORE_E_NOTFOUND : store_fail_db(self, what);
    sqlite3_reset(s);
    return rc;
}

int store_job_row(rr_store_t *self, sqlite3_stmt *s, uint64_t id, const char *what)
{
    int rc = store_step_row(self, s, what);
    return rc == RR_STORE_E_NOTFOUND
           ? store_fail(self, rc, "job %" PRIu64 ": no such job", id) : rc;
}

int store_read_u64(rr_store_t *self, sqlite3_stmt *s, const char *what, uint64_t *value)
{
    int rc = store_step_row(self, s, what);
    if (rc == RR_STORE_OK) {
        if (value)
            *value = col_u64(s, 0);
        sqlite3_reset(s);
    }
    return rc == RR_STORE_E_NOTFOUND ? RR_STORE_OK : rc;
}

/* Run a simple statement by id (transaction control). */
static int exec_id(rr_store_t *self, store_stmt_t id)
{
    sqlite3_stmt *s = store_stmt(self, id);
    return s ? store_run(self, s, statement_sql[id], NULL) : RR_STORE_E_DB;
}

/* ---- lists ---- */

int store_grow(void **array, size_t count, size_t *cap, size_t size)
{
    size_t old = *cap;
    void *grown = rr_grow(*array, count, cap, size, 16);
    if (!grown)
        return -1;
    memset((char *) grown + old * size, 0, (*cap - old) * size);   /* new slots zeroed */
    *array = grown;
    return 0;
}

int store_row(rr_store_t *self, sqlite3_stmt *s, const store_rowtype_t *type, void *arg,
              void *item, const char *what)
{
    memset(item, 0, type->size);
    int rc = store_step_row(self, s, what);
    if (rc != RR_STORE_OK)
        return rc;
    if (type->read(s, item, arg) != 0) {
        if (type->clear)
            type->clear(item);
        rc = store_fail(self, RR_STORE_E_DB, "%s: out of memory", what);
    }
    sqlite3_reset(s);
    return rc;
}

int store_rows(rr_store_t *self, sqlite3_stmt *s, const store_rowtype_t *type, void *arg,
               void **items, size_t *count, const char *what)
{
    size_t cap = 0;
    int step;
    *items = NULL;
    *count = 0;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        /* Counted before it is read, so a half-read element is cleared too. */
        if (store_grow(items, *count, &cap, type->size) != 0
            || type->read(s, (char *) *items + (*count)++ * type->size, arg) != 0) {
            step = SQLITE_NOMEM;
            break;
        }
    }
    int rc = step == SQLITE_DONE ? RR_STORE_OK : store_fail_db(self, what);
    sqlite3_reset(s);
    if (rc != RR_STORE_OK) {
        store_items_free(items, *count, type);
        *count = 0;
    }
    return rc;
}

void store_items_free(void **items, size_t count, const store_rowtype_t *type)
{
    if (!items || !*items)
        return;
    for (size_t i = 0; type->clear && i < count; i++)
        type->clear((char *) *items + i * type->size);
    free(*items);
    *items = NULL;
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
        return store_fail(self, RR_STORE_E_STATE, "store: commit without begin");
    if (self->depth == 1 && self->doomed) {
        rr_store_rollback(self);
        return RR_STORE_E_DB;               /* the failure's message is kept */
    }
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
        return store_fail(self, RR_STORE_E_STATE, "store: rollback without begin");
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
    if (self->depth == 0) {
        self->doomed = false;
        self->joins = 0;
    }
    memcpy(self->error, keep, sizeof keep);
    return rc;
}

int rr_store_join(rr_store_t *self)
{
    if (self->depth == 0)
        return rr_store_begin(self);
    self->joins++;
    return RR_STORE_OK;
}

int rr_store_leave(rr_store_t *self, int rc)
{
    if (self->joins == 0)                   /* the part had a transaction of its own */
        return store_finish_tx(self, rc);
    self->joins--;
    if (rc != RR_STORE_OK && !self->doomed) {
        self->doomed = true;
        char first[sizeof self->error];
        snprintf(first, sizeof first, "%s", self->error);
        store_fail(self, rc, "transaction rolled back: %s", first);
    }
    return rc;
}

int store_finish_tx(rr_store_t *self, int rc)
{
    if (rc == RR_STORE_OK)
        return rr_store_commit(self);
    rr_store_rollback(self);
    return rc;
}

/* ---- names ---- */

bool store_one_of(const char *name, const char *const *names)
{
    for (; name && *names; names++)
        if (strcmp(name, *names) == 0)
            return true;
    return false;
}

const char *const store_job_states[] = { RR_JOB_QUEUED, RR_JOB_SCHEDULED, RR_JOB_RUNNING,
                                         RR_JOB_CANCELING, RR_JOB_FINISHED, NULL };
const char *const store_outcomes[] = { RR_OUTCOME_COMPLETE, RR_OUTCOME_INCOMPLETE,
                                       RR_OUTCOME_CANCELED, NULL };
const char *const store_device_states[] = { RR_DEVICE_IDLE, RR_DEVICE_RESERVED,
    RR_DEVICE_RUNNING, RR_DEVICE_OFFLINE, RR_DEVICE_MAINTENANCE, RR_DEVICE_BAD,
    RR_DEVICE_RETIRED, NULL };
const char *const store_worker_states[] = { RR_WORKER_ONLINE, RR_WORKER_LOST,
                                            RR_WORKER_OFFLINE, NULL };

/* ---- tags ---- */

static int tag_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

char *store_tags_join(char *const *tags, size_t count)
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

int store_tags_split(const char *text, char ***tags, size_t *count)
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
            store_strs_free(out, i);
            return -1;
        }
        start += len + 1;
    }
    *tags = out;
    *count = n;
    return 0;
}

void store_strs_free(char **strs, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(strs[i]);
    free(strs);
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
    return rc == SQLITE_OK || rc == SQLITE_DONE ? RR_STORE_OK : store_fail_db(self, sql);
}

static int exec_sql(rr_store_t *self, const char *sql, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(self->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return RR_STORE_OK;
    store_fail(self, RR_STORE_E_DB, "store %s: %s: %s", self->path, what, msg ? msg : "?");
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

const char *store_sync_pragma(const rr_store_t *self)
{
    return self->sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
}

/* Fails naming the first row PRAGMA foreign_key_check finds (WHAT: the step). */
static int foreign_keys_hold(rr_store_t *self, const char *what)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(self->db, "PRAGMA foreign_key_check", -1, &s, NULL) != SQLITE_OK)
        return store_fail_db(self, what);
    int step = sqlite3_step(s);
    int rc = RR_STORE_OK;
    if (step == SQLITE_ROW)
        rc = store_fail(self, RR_STORE_E_DB, "store %s: %s: a row of %s refers to no row "
                        "of %s", self->path, what, (const char *) sqlite3_column_text(s, 0),
                        (const char *) sqlite3_column_text(s, 2));
    else if (step != SQLITE_DONE)
        rc = store_fail_db(self, what);
    sqlite3_finalize(s);
    return rc;
}

/* Bring the schema up to STORE_SCHEMA_VERSION (or the older version OPTIONS
 * ask for), one transaction per step. */
static int migrate(rr_store_t *self, const rr_store_options_t *options)
{
    int target = STORE_SCHEMA_VERSION;
    if (options && options->schema_version > 0 && options->schema_version < target)
        target = options->schema_version;
    if (exec_sql(self, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                 "schema_version") != RR_STORE_OK)
        return RR_STORE_E_DB;
    int version = rr_store_schema_version(self);
    if (version < 0)
        return RR_STORE_E_DB;
    if (version > STORE_SCHEMA_VERSION)
        return store_fail(self, RR_STORE_E_DB, "store %s: schema version %d is newer than "
                          "this master's (%d)", self->path, version, STORE_SCHEMA_VERSION);
    if (version >= target)
        return RR_STORE_OK;
    /* A step may rebuild a table that others refer to (DROP TABLE with
     * foreign keys on would delete its rows' children): off while migrating,
     * checked at the end of each step instead. */
    if (exec_sql(self, "PRAGMA foreign_keys = OFF", "foreign_keys") != RR_STORE_OK)
        return RR_STORE_E_DB;
    int rc = RR_STORE_OK;
    for (; version < target && rc == RR_STORE_OK; version++) {
        char what[64], bump[96];
        snprintf(what, sizeof what, "migration to version %d", version + 1);
        snprintf(bump, sizeof bump, "INSERT INTO schema_version VALUES (%d)", version + 1);
        rc = rr_store_begin(self);
        if (rc == RR_STORE_OK)
            rc = exec_sql(self, migrations[version], what);
        if (rc == RR_STORE_OK)
            rc = foreign_keys_hold(self, what);
        if (rc == RR_STORE_OK)
            rc = exec_sql(self, bump, what);
        if (rc == RR_STORE_OK)
            rc = rr_store_commit(self);
        else
            rr_store_rollback(self);
    }
    if (exec_sql(self, "PRAGMA foreign_keys = ON", "foreign_keys") != RR_STORE_OK)
        return RR_STORE_E_DB;
    return rc;
}

static int configure(rr_store_t *self, const rr_store_options_t *options)
{
    uint32_t busy = options && options->busy_timeout_ms ? options->busy_timeout_ms : 5000;
    sqlite3_busy_timeout(self->db, (int) busy);
    if (pragma_text(self, "PRAGMA journal_mode = WAL", self->journal,
                    sizeof self->journal) != RR_STORE_OK)
        return RR_STORE_E_DB;
    if (strcmp(self->journal, "wal") != 0)
        return store_fail(self, RR_STORE_E_DB, "store %s: cannot use WAL (journal mode is %s)",
                          self->path, self->journal);
    self->sync_full = options && options->sync_full;
    const char *sync = store_sync_pragma(self);
    /* 16 MiB of page cache instead of SQLite's 2 MiB: with a deep queue
     * (bench_dispatch: 100,000 jobs) the default cache re-read the queue's
     * index pages through pread on every scheduling pass. Not more: the
     * cache fills up with the fleet (bench_heartbeat: 240,000 devices; 16 MiB
     * costs at most 14 MiB of RSS more than the default). */
    /* temp_store MEMORY: the savepoints of the master's one transaction per
     * drain keep the pages they change in a sub-journal, a temporary file
     * past 64 KiB: its writes were a fifth of the master's time in
     * bench_dispatch. Only a rollback within the transaction reads it, never
     * recovery, so durability is the WAL's as before. */
    if (exec_sql(self, sync, "synchronous") != RR_STORE_OK
        || exec_sql(self, "PRAGMA temp_store = MEMORY", "temp_store") != RR_STORE_OK
        || exec_sql(self, "PRAGMA cache_size = -16384", "cache_size") != RR_STORE_OK
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
        store_fail(self, RR_STORE_E_DB, "store %s: open: %s", path,
                   self->db ? sqlite3_errmsg(self->db) : "out of memory");
        goto err;
    }
    sqlite3_extended_result_codes(self->db, 1);
    if (configure(self, options) != RR_STORE_OK || migrate(self, options) != RR_STORE_OK)
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
        store_checkpointer_stop(self);      /* ours is then the last connection */
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

/* Bytes in pages in use: (page_count - freelist_count) * page_size. */
int rr_store_used_bytes(rr_store_t *self, uint64_t *bytes)
{
    *bytes = 0;
    sqlite3_stmt *s = store_stmt(self, ST_USED_BYTES);
    if (!s)
        return RR_STORE_E_DB;
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW)
        *bytes = col_u64(s, 0) * col_u64(s, 1);
    int rc = step == SQLITE_ROW ? RR_STORE_OK : store_fail_db(self, "used bytes");
    sqlite3_reset(s);
    return rc;
}
