/* store_health.c: the store's side of health checks: each device's counters
 * (due flag, jobs since and time of the last passed check), the jobs flagged
 * as health checks, and the master's bad mark after a failed one. When a
 * device is due is decided by master/health.c from these counters; the
 * counting itself happens where jobs finish (store_jobs.c) and where a device
 * leaves bad (the device statements in store_internal.h). */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static int health_read(sqlite3_stmt *s, void *item, void *arg)
{
    rr_store_health_t *h = item;
    (void) arg;
    memset(h, 0, sizeof *h);
    h->device = col_dup(s, 0);
    h->worker = col_dup(s, 1);
    h->type = col_dup(s, 2);
    h->due = sqlite3_column_int(s, 3) != 0;
    h->jobs_since = col_u64(s, 4);
    h->last_check_ms = col_u64(s, 5);
    return h->device && h->worker && h->type ? 0 : -1;
}

static void health_clear_item(void *item)
{
    rr_store_health_clear(item);
}

static const store_rowtype_t health_rows = { sizeof(rr_store_health_t), health_read,
                                             health_clear_item };

void rr_store_health_clear(rr_store_health_t *health)
{
    if (!health)
        return;
    free(health->device);
    free(health->worker);
    free(health->type);
    memset(health, 0, sizeof *health);
}

void rr_store_healths_free(rr_store_health_t **devices, size_t count)
{
    store_items_free((void **) devices, count, &health_rows);
}

int rr_store_health_idle(rr_store_t *self, const char *type, rr_store_health_t **devices,
                         size_t *count)
{
    *devices = NULL;
    *count = 0;
    sqlite3_stmt *s = store_stmt_text(self, ST_HC_IDLE, type);
    return s ? store_rows(self, s, &health_rows, NULL, (void **) devices, count,
                          "health idle devices")
             : RR_STORE_E_DB;
}

int rr_store_health_get(rr_store_t *self, const char *device, rr_store_health_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = store_stmt_text(self, ST_HC_GET, device);
    int rc = s ? store_row(self, s, &health_rows, NULL, out, "health get") : RR_STORE_E_DB;
    return rc == RR_STORE_E_NOTFOUND ? store_fail(self, rc, "device %s: no such device", device)
                                     : rc;
}

static int health_job_start_tx(rr_store_t *self, const char *yaml, const proto_jobdef_t *def,
                               const char *device, const char *worker, uint64_t now_ms,
                               uint64_t *id)
{
    int rc = rr_store_job_insert(self, yaml, def, now_ms, id);
    if (rc != RR_STORE_OK)
        return rc;
    sqlite3_stmt *s = store_stmt_u64(self, ST_HC_JOB_MARK, *id);
    rc = s ? store_run(self, s, "health check mark", NULL) : RR_STORE_E_DB;
    return rc == RR_STORE_OK ? rr_store_job_assign(self, *id, device, worker) : rc;
}

int rr_store_health_job_start(rr_store_t *self, const char *yaml, const proto_jobdef_t *def,
                              const char *device, const char *worker, uint64_t now_ms,
                              uint64_t *id)
{
    uint64_t ignored;
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    return store_finish_tx(self, health_job_start_tx(self, yaml, def, device, worker, now_ms,
                                                     id ? id : &ignored));
}

int rr_store_health_job(rr_store_t *self, uint64_t job, bool *is, char **device)
{
    *is = false;
    if (device)
        *device = NULL;
    sqlite3_stmt *s = store_stmt_u64(self, ST_HC_JOB_IS, job);
    int rc = s ? store_job_row(self, s, job, "health job") : RR_STORE_E_DB;
    if (rc != RR_STORE_OK)
        return rc;
    *is = sqlite3_column_int(s, 0) != 0;
    if (device && sqlite3_column_type(s, 1) != SQLITE_NULL && !(*device = col_dup(s, 1)))
        rc = store_fail(self, RR_STORE_E_DB, "job %" PRIu64 ": out of memory", job);
    sqlite3_reset(s);
    return rc;
}

/* Run a device UPDATE S that must find DEVICE (else "no such device"). */
static int health_update(rr_store_t *self, sqlite3_stmt *s, const char *device, const char *what)
{
    int changes = 0;
    int rc = store_run(self, s, what, &changes);
    if (rc != RR_STORE_OK || changes == 1)
        return rc;
    proto_deviceinfo_t info;
    rc = rr_store_device_get(self, device, &info);     /* names a missing device */
    rr_store_deviceinfo_clear(&info);
    return rc;
}

int rr_store_health_passed(rr_store_t *self, const char *device, uint64_t now_ms)
{
    sqlite3_stmt *s = store_stmt_text(self, ST_HC_PASSED, device);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 2, now_ms);
    return health_update(self, s, device, "health check passed");
}

int rr_store_health_failed(rr_store_t *self, const char *device, const char *reason)
{
    sqlite3_stmt *s = store_stmt_text(self, ST_HC_FAILED, device);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 2, reason);
    return health_update(self, s, device, "health check failed");
}
