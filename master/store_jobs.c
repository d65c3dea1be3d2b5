/* store_jobs.c: jobs in the store: insert, read, list, the state machine
 * (queued -> scheduled -> running -> canceling -> finished), the queued jobs
 * the scheduler's index reads, and the reads of the HTTP API and of log
 * retention. A job's YAML and definition live in job_specs (schema 4).
 * A device follows its job (reserved, running, idle again); see store.h. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- rows ---- */

static int jobinfo_read(sqlite3_stmt *s, void *item, void *arg)
{
    proto_jobinfo_t *info = item;
    (void) arg;
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

static void jobinfo_clear(void *item)
{
    rr_store_jobinfo_clear(item);
}

static const store_rowtype_t jobinfo_rows = { sizeof(proto_jobinfo_t), jobinfo_read,
                                              jobinfo_clear };

static int active_read(sqlite3_stmt *s, void *item, void *arg)
{
    rr_store_active_t *job = item;
    (void) arg;
    job->job = col_u64(s, 0);
    job->state = col_dup(s, 1);
    job->device = col_dup(s, 2);
    job->worker = col_dup(s, 3);
    job->accepted = sqlite3_column_int(s, 4) != 0;
    job->acked_seq = col_u64(s, 5);
    return 0;
}

static void active_clear(void *item)
{
    rr_store_active_t *job = item;
    free(job->state);
    free(job->device);
    free(job->worker);
}

static const store_rowtype_t active_rows = { sizeof(rr_store_active_t), active_read,
                                             active_clear };

static int ended_read(sqlite3_stmt *s, void *item, void *arg)
{
    rr_store_ended_t *job = item;
    (void) arg;
    job->job = col_u64(s, 0);
    job->ended_ms = col_u64(s, 1);
    return 0;
}

static const store_rowtype_t ended_rows = { sizeof(rr_store_ended_t), ended_read, NULL };

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
    store_items_free((void **) jobs, count, &jobinfo_rows);
}

void rr_store_actives_free(rr_store_active_t **jobs, size_t count)
{
    store_items_free((void **) jobs, count, &active_rows);
}

/* ---- insert and read ---- */

/* The job row, then its YAML and definition BLOB in job_specs (*ID set). */
static int job_insert_tx(rr_store_t *self, const char *yaml, const proto_jobdef_t *def,
                         const char *tags, const uint8_t *blob, size_t blob_len,
                         uint64_t now_ms, uint64_t *id)
{
    sqlite3_stmt *s = store_stmt_text(self, ST_JOB_INSERT, def->name);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 2, def->device_type);
    bind_text(s, 3, tags);
    sqlite3_bind_int(s, 4, (int) def->priority);
    bind_u64(s, 5, now_ms);
    sqlite3_bind_int(s, 6, def->notify_url != NULL);
    int rc = store_run(self, s, "job insert", NULL);
    if (rc != RR_STORE_OK)
        return rc;
    *id = (uint64_t) sqlite3_last_insert_rowid(self->db);
    if (!(s = store_stmt_u64(self, ST_JOB_SPEC_INSERT, *id)))
        return RR_STORE_E_DB;
    bind_text(s, 2, yaml ? yaml : "");
    sqlite3_bind_blob(s, 3, blob, (int) blob_len, SQLITE_STATIC);
    return store_run(self, s, "job spec insert", NULL);
}

int rr_store_job_insert(rr_store_t *self, const char *yaml, const proto_jobdef_t *def,
                        uint64_t now_ms, uint64_t *id)
{
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    uint64_t ignored;
    proto_error_t perr;
    if (proto_jobdef_encode(def, &blob, &blob_len, &perr) != 0)
        return store_fail(self, RR_STORE_E_INVALID, "job %s: encode: %s",
                          def && def->name ? def->name : "?", perr.text);
    int rc;
    char *tags = store_tags_join(def->tags, def->tags_count);
    if (!tags)
        rc = store_fail(self, RR_STORE_E_DB, "job %s: out of memory", def->name);
    else if ((rc = rr_store_begin(self)) == RR_STORE_OK)
        rc = store_finish_tx(self, job_insert_tx(self, yaml, def, tags, blob, blob_len, now_ms,
                                                 id ? id : &ignored));
    free(tags);
    free(blob);
    return rc;
}

int rr_store_job_get(rr_store_t *self, uint64_t id, proto_jobinfo_t *info)
{
    memset(info, 0, sizeof *info);
    sqlite3_stmt *s = store_stmt_u64(self, ST_JOB_GET, id);
    int rc = s ? store_row(self, s, &jobinfo_rows, NULL, info, "job get") : RR_STORE_E_DB;
    return rc == RR_STORE_E_NOTFOUND ? store_fail(self, rc, "job %" PRIu64 ": no such job", id)
                                     : rc;
}

int store_job_state(rr_store_t *self, uint64_t id, char state[16])
{
    sqlite3_stmt *s = store_stmt_u64(self, ST_JOB_STATE, id);
    int rc = s ? store_job_row(self, s, id, "job state") : RR_STORE_E_DB;
    if (rc == RR_STORE_OK) {
        snprintf(state, 16, "%s", (const char *) sqlite3_column_text(s, 0));
        sqlite3_reset(s);
    }
    return rc;
}

/* Column 0 of statement SID for job ID as a blob copy (*OUT, *LEN; +1 NUL). */
static int job_column(rr_store_t *self, store_stmt_t sid, uint64_t id, void **out, size_t *len)
{
    *out = NULL;
    sqlite3_stmt *s = store_stmt_u64(self, sid, id);
    int rc = s ? store_job_row(self, s, id, "job read") : RR_STORE_E_DB;
    if (rc != RR_STORE_OK)
        return rc;
    const void *data = sqlite3_column_blob(s, 0);
    *len = (size_t) sqlite3_column_bytes(s, 0);
    *out = malloc(*len + 1);
    if (*out) {
        if (*len)
            memcpy(*out, data, *len);
        ((char *) *out)[*len] = '\0';
    } else {
        rc = store_fail(self, RR_STORE_E_DB, "job %" PRIu64 ": out of memory", id);
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
        rc = store_fail(self, RR_STORE_E_DB, "job %" PRIu64 ": stored definition: %s", id,
                        perr.text);
    free(blob);
    return rc;
}

int rr_store_job_notify_def(rr_store_t *self, uint64_t id, proto_jobdef_t **def)
{
    *def = NULL;
    sqlite3_stmt *s = store_stmt_u64(self, ST_JOB_NOTIFY, id);
    int rc = s ? store_job_row(self, s, id, "notify") : RR_STORE_E_DB;
    if (rc != RR_STORE_OK)
        return rc;
    bool notify = sqlite3_column_int(s, 0) != 0;
    sqlite3_reset(s);
    return notify ? rr_store_job_def(self, id, def) : RR_STORE_OK;
}

/* ---- lists ---- */

int rr_store_jobs_list(rr_store_t *self, const char *state, uint32_t limit,
                       proto_jobinfo_t **jobs, size_t *count)
{
    *jobs = NULL;
    *count = 0;
    if (state && !store_one_of(state, store_job_states))
        return store_fail(self, RR_STORE_E_INVALID, "jobs: unknown state '%s'", state);
    bool open = state && strcmp(state, RR_JOB_FINISHED) != 0;   /* jobs_open has them */
    sqlite3_stmt *s = store_stmt(self, !state ? ST_JOBS_ALL
                                       : open ? ST_JOBS_OPEN_BY_STATE : ST_JOBS_BY_STATE);
    if (!s)
        return RR_STORE_E_DB;
    if (state)
        bind_text(s, 1, state);
    sqlite3_bind_int64(s, state ? 2 : 1, limit ? limit : 1000);
    return store_rows(self, s, &jobinfo_rows, NULL, (void **) jobs, count, "jobs list");
}

int rr_store_jobs_active(rr_store_t *self, const char *worker,
                         rr_store_active_t **jobs, size_t *count)
{
    *jobs = NULL;
    *count = 0;
    sqlite3_stmt *s = store_stmt_text(self, ST_JOBS_ACTIVE, worker);
    return s ? store_rows(self, s, &active_rows, NULL, (void **) jobs, count, "active jobs")
             : RR_STORE_E_DB;
}

int rr_store_jobs_count(rr_store_t *self, const char *state, uint64_t *count)
{
    bool finished = state && strcmp(state, RR_JOB_FINISHED) == 0;
    sqlite3_stmt *s = store_stmt(self, !state ? ST_JOBS_COUNT_ALL
                                       : finished ? ST_JOBS_COUNT_FINISHED : ST_JOBS_COUNT_OPEN);
    if (!s)
        return RR_STORE_E_DB;
    if (state && !finished)
        bind_text(s, 1, state);
    *count = 0;
    return store_read_u64(self, s, "jobs count", count);
}

/* ---- state machine ---- */

/* Run an UPDATE on job ID that must change one row; else say why (not found,
 * or WHAT is not allowed in its state). */
static int job_update(rr_store_t *self, sqlite3_stmt *s, uint64_t id, const char *what)
{
    int changes = 0;
    int rc = store_run(self, s, what, &changes);
    if (rc != RR_STORE_OK || changes == 1)
        return rc;
    char state[16];
    rc = store_job_state(self, id, state);
    if (rc != RR_STORE_OK)
        return rc;
    return store_fail(self, RR_STORE_E_STATE, "job %" PRIu64 ": %s: not allowed when %s",
                      id, what, state);
}

int rr_store_job_assign(rr_store_t *self, uint64_t id, const char *device, const char *worker)
{
    bool assigned = false;
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    rc = rr_store_job_assign_queued(self, id, device, worker, &assigned);
    if (rc == RR_STORE_OK && !assigned) {
        char state[16];
        rc = store_job_state(self, id, state);
        if (rc == RR_STORE_OK)
            rc = store_fail(self, RR_STORE_E_STATE, "job %" PRIu64 ": assign: not allowed "
                            "when %s", id, state);
    }
    return store_finish_tx(self, rc);
}

int rr_store_job_accepted(rr_store_t *self, uint64_t id)
{
    sqlite3_stmt *s = store_stmt_u64(self, ST_JOB_ACCEPTED, id);
    return s ? job_update(self, s, id, "accept") : RR_STORE_E_DB;
}

int rr_store_jobs_accepted(rr_store_t *self, const uint64_t *ids, size_t count)
{
    if (count == 0)
        return RR_STORE_OK;
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    for (size_t i = 0; i < count && rc == RR_STORE_OK; i++) {
        sqlite3_stmt *s = store_stmt_u64(self, ST_JOB_ACCEPTED, ids[i]);
        rc = s ? store_run(self, s, "accept", NULL) : RR_STORE_E_DB;
    }
    return store_finish_tx(self, rc);
}

/* Run statement SID that takes job ID as ?1 only. */
static int job_exec(rr_store_t *self, store_stmt_t sid, uint64_t id, const char *what)
{
    sqlite3_stmt *s = store_stmt_u64(self, sid, id);
    return s ? store_run(self, s, what, NULL) : RR_STORE_E_DB;
}

int store_job_running_tx(rr_store_t *self, uint64_t id, uint64_t now_ms,
                         const uint64_t *acked, bool *wrote)
{
    /* The usual case (scheduled -> running) first; the state is read only
     * when nothing changed, to tell a no-op from a refusal. */
    sqlite3_stmt *s = store_stmt_u64(self, ST_JOB_RUNNING, id);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 2, now_ms);
    if (acked)
        bind_u64(s, 3, *acked);
    int changes = 0;
    int rc = store_run(self, s, "job running", &changes);
    if (rc != RR_STORE_OK)
        return rc;
    if (wrote)
        *wrote = changes == 1;
    if (changes == 1)
        return job_exec(self, ST_DEV_RUNNING, id, "device running");
    char state[16];
    if ((rc = store_job_state(self, id, state)) != RR_STORE_OK)
        return rc;
    if (strcmp(state, RR_JOB_RUNNING) == 0 || strcmp(state, RR_JOB_CANCELING) == 0)
        return RR_STORE_OK;
    return store_fail(self, RR_STORE_E_STATE, "job %" PRIu64 ": running: not allowed when %s",
                      id, state);
}

int rr_store_job_running(rr_store_t *self, uint64_t id, uint64_t now_ms)
{
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    return store_finish_tx(self, store_job_running_tx(self, id, now_ms, NULL, NULL));
}

int rr_store_job_requeue(rr_store_t *self, uint64_t id)
{
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    /* The device holding it lets go (reserved -> idle) while jobs.device
     * still names it; a job that is not scheduled undoes that. */
    rc = job_exec(self, ST_DEV_RELEASE, id, "device release");
    sqlite3_stmt *s = rc == RR_STORE_OK ? store_stmt_u64(self, ST_JOB_REQUEUE, id) : NULL;
    if (rc == RR_STORE_OK)
        rc = s ? job_update(self, s, id, "requeue") : RR_STORE_E_DB;
    return store_finish_tx(self, rc);
}

int store_job_finish_tx(rr_store_t *self, uint64_t id, const char *outcome,
                        const char *reason, uint64_t now_ms, const uint64_t *acked,
                        const uint64_t *started_ms)
{
    sqlite3_stmt *s = store_stmt_u64(self, ST_JOB_FINISH, id);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 2, outcome);
    bind_text(s, 3, reason);
    bind_u64(s, 4, now_ms);
    if (acked)
        bind_u64(s, 5, *acked);
    if (started_ms)
        bind_u64(s, 6, *started_ms);
    int rc = job_update(self, s, id, "finish");
    if (rc != RR_STORE_OK)
        return rc;
    /* Its device lets go and counts it; a device that no longer holds the
     * job (a report moved it on) still counts it. */
    int changes = 0;
    if (!(s = store_stmt_u64(self, ST_DEV_FINISH, id)))
        return RR_STORE_E_DB;
    rc = store_run(self, s, "device release", &changes);
    if (rc == RR_STORE_OK && changes == 0)
        rc = job_exec(self, ST_HC_COUNT_JOB, id, "health check count");
    return rc;
}

int rr_store_job_finish(rr_store_t *self, uint64_t id, const char *outcome,
                        const char *reason, uint64_t now_ms)
{
    if (!store_one_of(outcome, store_outcomes))
        return store_fail(self, RR_STORE_E_INVALID, "job %" PRIu64 ": finish: unknown "
                          "outcome '%s'", id, outcome ? outcome : "(null)");
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    return store_finish_tx(self, store_job_finish_tx(self, id, outcome, reason, now_ms,
                                                     NULL, NULL));
}

static int job_cancel_tx(rr_store_t *self, uint64_t id, uint64_t now_ms, const char **state)
{
    char now[16];
    int rc = store_job_state(self, id, now);
    if (rc != RR_STORE_OK)
        return rc;
    if (strcmp(now, RR_JOB_QUEUED) == 0) {
        *state = RR_JOB_FINISHED;
        return store_job_finish_tx(self, id, RR_OUTCOME_CANCELED, "canceled before it started",
                                   now_ms, NULL, NULL);
    }
    if (strcmp(now, RR_JOB_SCHEDULED) != 0 && strcmp(now, RR_JOB_RUNNING) != 0)
        return store_fail(self, RR_STORE_E_STATE, "job %" PRIu64 ": cancel: already %s", id,
                          now);
    *state = RR_JOB_CANCELING;
    return job_exec(self, ST_JOB_CANCELING, id, "job cancel");
}

int rr_store_job_cancel(rr_store_t *self, uint64_t id, uint64_t now_ms, const char **state)
{
    const char *ignored;
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    return store_finish_tx(self, job_cancel_tx(self, id, now_ms, state ? state : &ignored));
}

int rr_store_job_assign_queued(rr_store_t *self, uint64_t id, const char *device,
                               const char *worker, bool *assigned)
{
    *assigned = false;
    if (self->depth == 0)
        return store_fail(self, RR_STORE_E_STATE, "job %" PRIu64 ": assign: no transaction",
                          id);
    sqlite3_stmt *s = store_stmt_u64(self, ST_JOB_ASSIGN, id);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 2, device);
    bind_text(s, 3, worker);
    int changes = 0;
    int rc = store_run(self, s, "assign", &changes);
    if (rc != RR_STORE_OK || changes == 0)
        return rc;                          /* not queued any more: nothing to undo */
    if (!(s = store_stmt_text(self, ST_DEV_RESERVE, device)))
        return RR_STORE_E_DB;
    bind_u64(s, 2, id);
    bind_text(s, 3, worker);
    rc = store_run(self, s, "device reserve", &changes);
    if (rc == RR_STORE_OK && changes == 1) {
        *assigned = true;
        return RR_STORE_OK;
    }
    if (rc == RR_STORE_OK) {                /* back to queued, as it was a moment ago */
        rc = job_exec(self, ST_JOB_REQUEUE, id, "assign undo");
        if (rc == RR_STORE_OK)
            rc = store_fail(self, RR_STORE_E_STATE, "job %" PRIu64 ": assign: device %s of "
                            "worker %s is not idle", id, device, worker);
    }
    return rc;
}

/* ---- queue ---- */

int rr_store_queue_since(rr_store_t *self, uint64_t after, rr_store_queued_fn *fn, void *arg)
{
    sqlite3_stmt *s = store_stmt_u64(self, ST_QUEUE_SINCE, after);
    if (!s)
        return RR_STORE_E_DB;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        char **tags;
        size_t tag_count;
        if (store_tags_split((const char *) sqlite3_column_text(s, 2), &tags, &tag_count) != 0) {
            step = SQLITE_NOMEM;
            break;
        }
        bool go_on = fn(col_u64(s, 0), (const char *) sqlite3_column_text(s, 1), tags,
                        tag_count, (uint32_t) sqlite3_column_int64(s, 3), arg);
        store_strs_free(tags, tag_count);
        if (!go_on) {
            step = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(s);
    if (step != SQLITE_DONE)
        return store_fail_db(self, "queue since");
    return RR_STORE_OK;
}

int rr_store_queue_oldest(rr_store_t *self, bool *queued, uint64_t *submitted_ms)
{
    *queued = false;
    *submitted_ms = 0;
    sqlite3_stmt *s = store_stmt(self, ST_QUEUE_OLDEST);
    int rc = s ? store_step_row(self, s, "queue oldest") : RR_STORE_E_DB;
    if (rc != RR_STORE_OK)
        return rc == RR_STORE_E_NOTFOUND ? RR_STORE_OK : rc;
    *queued = true;
    *submitted_ms = col_u64(s, 0);
    sqlite3_reset(s);
    return RR_STORE_OK;
}

/* ==== HTTP API (master/http_api.c): job filters with paging ==== */

int rr_store_jobs_query(rr_store_t *self, const rr_store_jobs_filter_t *filter,
                        proto_jobinfo_t **jobs, size_t *count)
{
    *jobs = NULL;
    *count = 0;
    if (filter->state && !store_one_of(filter->state, store_job_states))
        return store_fail(self, RR_STORE_E_INVALID, "jobs: unknown state '%s'", filter->state);
    if (filter->offset > INT64_MAX)
        return store_fail(self, RR_STORE_E_INVALID, "jobs: offset %" PRIu64 " too large",
                          filter->offset);
    sqlite3_stmt *s = store_stmt_text(self, ST_JOBS_QUERY, filter->state);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 2, filter->device_type);
    bind_text(s, 3, filter->worker);
    sqlite3_bind_int64(s, 4, filter->limit ? filter->limit : 1000);
    bind_u64(s, 5, filter->offset);
    return store_rows(self, s, &jobinfo_rows, NULL, (void **) jobs, count, "jobs query");
}

/* ==== log retention (master/retention.c) ==== */

int rr_store_jobs_ended(rr_store_t *self, uint64_t after_ms, uint64_t after_job,
                        uint64_t before_ms, uint32_t max, rr_store_ended_t **jobs, size_t *count)
{
    *jobs = NULL;
    *count = 0;
    sqlite3_stmt *s = store_stmt_u64(self, ST_JOBS_ENDED, after_ms);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 2, after_job);
    bind_u64(s, 3, before_ms);
    sqlite3_bind_int64(s, 4, max ? max : 100);
    return store_rows(self, s, &ended_rows, NULL, (void **) jobs, count, "jobs ended");
}
