/* store_fleet.c: workers and their devices in the store. What a device is
 * merges two views: the master's (an open job, an operator's maintenance or
 * retired) wins over what the worker reports (HELLO, HEARTBEAT); see store.h. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- rows ---- */

static int workerinfo_read(sqlite3_stmt *s, void *item, void *arg)
{
    proto_workerinfo_t *w = item;
    uint64_t now_ms = *(const uint64_t *) arg;
    w->name = col_dup(s, 0);
    w->rack = col_dup(s, 1);
    w->state = col_dup(s, 2);
    w->version = col_dup(s, 3);
    uint64_t seen = col_u64(s, 4);
    w->heartbeat_age_ms = now_ms > seen ? now_ms - seen : 0;
    w->device_count = (uint32_t) sqlite3_column_int(s, 5);
    return w->name && w->state ? 0 : -1;
}

static void workerinfo_clear(void *item)
{
    proto_workerinfo_t *w = item;
    free(w->name);
    free(w->rack);
    free(w->state);
    free(w->version);
}

static const store_rowtype_t workerinfo_rows = { sizeof(proto_workerinfo_t), workerinfo_read,
                                                 workerinfo_clear };

static int deviceinfo_read(sqlite3_stmt *s, void *item, void *arg)
{
    proto_deviceinfo_t *info = item;
    (void) arg;
    memset(info, 0, sizeof *info);
    info->name = col_dup(s, 0);
    info->worker = col_dup(s, 1);
    info->type = col_dup(s, 2);
    int rc = store_tags_split((const char *) sqlite3_column_text(s, 3), &info->tags,
                              &info->tags_count);
    info->state = col_dup(s, 4);
    info->reason = col_dup(s, 5);
    info->job = col_u64(s, 6);
    return rc == 0 && info->name && info->worker && info->type && info->state ? 0 : -1;
}

static void deviceinfo_clear(void *item)
{
    rr_store_deviceinfo_clear(item);
}

static const store_rowtype_t deviceinfo_rows = { sizeof(proto_deviceinfo_t), deviceinfo_read,
                                                 deviceinfo_clear };

static int name_read(sqlite3_stmt *s, void *item, void *arg)
{
    (void) arg;
    return (*(char **) item = col_dup(s, 0)) ? 0 : -1;
}

static void name_clear(void *item)
{
    free(*(char **) item);
}

static const store_rowtype_t name_rows = { sizeof(char *), name_read, name_clear };

void rr_store_workerinfos_free(proto_workerinfo_t **workers, size_t count)
{
    store_items_free((void **) workers, count, &workerinfo_rows);
}

void rr_store_deviceinfo_clear(proto_deviceinfo_t *info)
{
    if (!info)
        return;
    free(info->name);
    free(info->worker);
    free(info->type);
    store_strs_free(info->tags, info->tags_count);
    free(info->state);
    free(info->reason);
    memset(info, 0, sizeof *info);
}

void rr_store_deviceinfos_free(proto_deviceinfo_t **devices, size_t count)
{
    store_items_free((void **) devices, count, &deviceinfo_rows);
}

/* ---- device state ---- */

/* The open job on DEVICE (0 = none) and the device state it implies. */
static int device_open_job(rr_store_t *self, const char *device, uint64_t *job,
                           const char **state)
{
    *job = 0;
    sqlite3_stmt *s = store_stmt_text(self, ST_DEV_OPEN_JOB, device);
    int rc = s ? store_step_row(self, s, "device job") : RR_STORE_E_DB;
    if (rc == RR_STORE_OK) {
        *job = col_u64(s, 0);
        *state = strcmp((const char *) sqlite3_column_text(s, 1), RR_JOB_SCHEDULED) == 0
                 ? RR_DEVICE_RESERVED : RR_DEVICE_RUNNING;
        sqlite3_reset(s);
    }
    return rc == RR_STORE_E_NOTFOUND ? RR_STORE_OK : rc;
}

/* An operator's hold (maintenance, retired) or the master's (bad after a
 * failed health check) on DEVICE: *HOLD, and then its
 * state in STATE (16 bytes) and its reason in KEPT_REASON (*REASON points
 * there, or is NULL for none). No device yet: no hold. */
static int device_hold(rr_store_t *self, const char *device, bool *hold, char state[16],
                       const char **reason, char *kept_reason, size_t kept_len)
{
    *hold = false;
    sqlite3_stmt *s = store_stmt_text(self, ST_DEV_CURRENT, device);
    int rc = s ? store_step_row(self, s, "device state") : RR_STORE_E_DB;
    if (rc != RR_STORE_OK)
        return rc == RR_STORE_E_NOTFOUND ? RR_STORE_OK : rc;
    const char *now = (const char *) sqlite3_column_text(s, 0);
    *hold = strcmp(now, RR_DEVICE_MAINTENANCE) == 0 || strcmp(now, RR_DEVICE_RETIRED) == 0
            || (strcmp(now, RR_DEVICE_BAD) == 0 && sqlite3_column_int(s, 3) != 0);
    if (*hold) {
        snprintf(state, 16, "%s", now);
        const char *why = (const char *) sqlite3_column_text(s, 1);
        snprintf(kept_reason, kept_len, "%s", why ? why : "");
        *reason = why ? kept_reason : NULL;
    }
    sqlite3_reset(s);
    return RR_STORE_OK;
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
    bool operator_hold;
    int rc = device_hold(self, device, &operator_hold, state, reason, kept_reason, kept_len);
    if (rc != RR_STORE_OK)
        return rc;
    const char *held = NULL;
    rc = device_open_job(self, device, job, &held);
    if (rc != RR_STORE_OK)
        return rc;
    if (*job && !operator_hold) {
        snprintf(state, 16, "%s", held);
        *reason = NULL;
    }
    if (operator_hold || *job)
        return RR_STORE_OK;
    if (!store_one_of(reported, store_device_states) || strcmp(reported, RR_DEVICE_RESERVED) == 0
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

int rr_store_device_set_state(rr_store_t *self, const char *device, const char *state,
                              const char *reason)
{
    if (!store_one_of(state, store_device_states))
        return store_fail(self, RR_STORE_E_INVALID, "device %s: unknown state '%s'", device,
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
    sqlite3_stmt *s = store_stmt_text(self, ST_DEV_SET, device);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 2, state);
    bind_text(s, 3, reason);
    int changes = 0;
    int rc = store_run(self, s, "device state", &changes);
    if (rc == RR_STORE_OK && changes != 1)
        rc = store_fail(self, RR_STORE_E_NOTFOUND, "device %s: no such device", device);
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
        return store_fail(self, RR_STORE_E_NOTFOUND, "worker %s: device %s: not one of its "
                          "devices", worker, change->name);
    char state[16], kept[256];
    const char *reason;
    uint64_t job;
    rc = device_merge(self, change->name, change->state, change->reason, state, &reason,
                      kept, sizeof kept, &job);
    if (rc != RR_STORE_OK)
        return rc;
    sqlite3_stmt *s = store_stmt_text(self, ST_DEV_SET_JOB, change->name);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 2, state);
    bind_text(s, 3, reason);
    if (job)
        bind_u64(s, 4, job);
    return store_run(self, s, "device report", NULL);
}

int rr_store_device_report(rr_store_t *self, const char *worker, const proto_devstate_t *change)
{
    if (!change->name)
        return store_fail(self, RR_STORE_E_INVALID, "worker %s: device report without name",
                          worker);
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    return store_finish_tx(self, device_report_tx(self, worker, change));
}

/* ---- workers ---- */

static int device_upsert(rr_store_t *self, const char *worker, const proto_device_t *dev)
{
    char state[16], kept[256];
    const char *reason;
    uint64_t job;
    int rc = device_merge(self, dev->name, dev->state, NULL, state, &reason, kept,
                          sizeof kept, &job);
    if (rc != RR_STORE_OK)
        return rc;
    char *tags = store_tags_join(dev->tags, dev->tags_count);
    sqlite3_stmt *s = tags ? store_stmt_text(self, ST_DEV_UPSERT, dev->name) : NULL;
    if (!s) {
        free(tags);
        return tags ? RR_STORE_E_DB : store_fail(self, RR_STORE_E_DB, "device: out of memory");
    }
    bind_text(s, 2, worker);
    bind_text(s, 3, dev->type);
    bind_text(s, 4, tags);
    bind_text(s, 5, state);
    bind_text(s, 6, reason);
    if (job)
        bind_u64(s, 7, job);
    rc = store_run(self, s, "device upsert", NULL);
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
    size_t count = 0;
    sqlite3_stmt *s = store_stmt_text(self, ST_DEV_NAMES, hello->worker);
    if (!s)
        return RR_STORE_E_DB;
    int rc = store_rows(self, s, &name_rows, NULL, (void **) &names, &count, "worker devices");
    char reason[256];
    snprintf(reason, sizeof reason, "no longer configured on worker %s", hello->worker);
    for (size_t i = 0; i < count && rc == RR_STORE_OK; i++)
        if (!hello_lists(hello, names[i]))
            rc = rr_store_device_set_state(self, names[i], RR_DEVICE_OFFLINE, reason);
    store_items_free((void **) &names, count, &name_rows);
    return rc;
}

static int worker_hello_tx(rr_store_t *self, const proto_hello_t *hello, uint64_t now_ms)
{
    sqlite3_stmt *s = store_stmt_text(self, ST_WORKER_UPSERT, hello->worker);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 2, hello->rack);
    bind_text(s, 3, hello->version);
    bind_u64(s, 4, now_ms);
    int rc = store_run(self, s, "worker upsert", NULL);
    for (size_t i = 0; i < hello->devices_count && rc == RR_STORE_OK; i++)
        rc = device_upsert(self, hello->worker, &hello->devices[i]);
    if (rc == RR_STORE_OK)
        rc = devices_unlisted_offline(self, hello);
    return rc;
}

int rr_store_worker_hello(rr_store_t *self, const proto_hello_t *hello, uint64_t now_ms)
{
    if (!hello->worker)
        return store_fail(self, RR_STORE_E_INVALID, "hello: no worker name");
    for (size_t i = 0; i < hello->devices_count; i++)
        if (!hello->devices[i].name || !hello->devices[i].type)
            return store_fail(self, RR_STORE_E_INVALID, "worker %s: hello: device %zu without "
                              "name or type", hello->worker, i);
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    rc = worker_hello_tx(self, hello, now_ms);
    if (rc != RR_STORE_OK)
        store_fail(self, rc, "worker %s: hello: %.400s", hello->worker, rr_store_error(self));
    return store_finish_tx(self, rc);
}

/* Run a worker UPDATE that must change one row. */
static int worker_update(rr_store_t *self, sqlite3_stmt *s, const char *worker, const char *what)
{
    int changes = 0;
    int rc = store_run(self, s, what, &changes);
    if (rc == RR_STORE_OK && changes != 1)
        rc = store_fail(self, RR_STORE_E_NOTFOUND, "worker %s: no such worker", worker);
    return rc;
}

int rr_store_worker_seen(rr_store_t *self, const char *worker, uint64_t now_ms)
{
    sqlite3_stmt *s = store_stmt_text(self, ST_WORKER_SEEN, worker);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 2, now_ms);
    return worker_update(self, s, worker, "worker seen");
}

static int worker_set_state_tx(rr_store_t *self, const char *worker, const char *state)
{
    sqlite3_stmt *s = store_stmt_text(self, ST_WORKER_STATE, worker);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 2, state);
    int rc = worker_update(self, s, worker, "worker state");
    if (rc != RR_STORE_OK || strcmp(state, RR_WORKER_ONLINE) == 0)
        return rc;
    char reason[256];
    snprintf(reason, sizeof reason, "worker %s %s", worker, state);
    if (!(s = store_stmt_text(self, ST_WORKER_DEVS_OFF, worker)))
        return RR_STORE_E_DB;
    bind_text(s, 2, reason);
    return store_run(self, s, "worker devices offline", NULL);
}

int rr_store_worker_set_state(rr_store_t *self, const char *worker, const char *state,
                              uint64_t now_ms)
{
    (void) now_ms;
    if (!store_one_of(state, store_worker_states))
        return store_fail(self, RR_STORE_E_INVALID, "worker %s: unknown state '%s'", worker,
                          state ? state : "(null)");
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    return store_finish_tx(self, worker_set_state_tx(self, worker, state));
}

/* ---- lists ---- */

int rr_store_workers_list(rr_store_t *self, const char *state, uint64_t now_ms,
                          proto_workerinfo_t **workers, size_t *count)
{
    *workers = NULL;
    *count = 0;
    sqlite3_stmt *s = store_stmt_text(self, ST_WORKERS_LIST, state);
    return s ? store_rows(self, s, &workerinfo_rows, &now_ms, (void **) workers, count,
                          "workers list")
             : RR_STORE_E_DB;
}

int rr_store_device_get(rr_store_t *self, const char *device, proto_deviceinfo_t *info)
{
    memset(info, 0, sizeof *info);
    sqlite3_stmt *s = store_stmt_text(self, ST_DEV_GET, device);
    int rc = s ? store_row(self, s, &deviceinfo_rows, NULL, info, "device get") : RR_STORE_E_DB;
    return rc == RR_STORE_E_NOTFOUND ? store_fail(self, rc, "device %s: no such device", device)
                                     : rc;
}

int rr_store_devices_list(rr_store_t *self, const char *worker,
                          proto_deviceinfo_t **devices, size_t *count)
{
    *devices = NULL;
    *count = 0;
    sqlite3_stmt *s = store_stmt_text(self, ST_DEVS_LIST, worker);
    return s ? store_rows(self, s, &deviceinfo_rows, NULL, (void **) devices, count,
                          "devices list")
             : RR_STORE_E_DB;
}

int rr_store_devices_idle(rr_store_t *self, proto_deviceinfo_t **devices, size_t *count)
{
    *devices = NULL;
    *count = 0;
    sqlite3_stmt *s = store_stmt(self, ST_DEVS_IDLE);
    return s ? store_rows(self, s, &deviceinfo_rows, NULL, (void **) devices, count,
                          "devices list")
             : RR_STORE_E_DB;
}
