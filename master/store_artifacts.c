/* store_artifacts.c: the artifacts table: one row per artifact of a job
 * (size, sha256, complete flag: 0 uploading, 1 complete, 2 removed by
 * retention; the error that refused it, or why it was removed). The bytes live in
 * files beside the database (master/artifacts.c); the row says what they are
 * and whether they are whole. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static int artinfo_read(sqlite3_stmt *s, void *item, void *arg)
{
    proto_artinfo_t *info = item;
    (void) arg;
    memset(info, 0, sizeof *info);
    info->name = col_dup(s, 0);
    info->size = col_u64(s, 1);
    info->sha256 = col_dup(s, 2);
    info->reason = col_dup(s, 4);
    info->state = strdup(sqlite3_column_int(s, 3) == 2 ? RR_ARTIFACT_REMOVED
                         : info->reason ? RR_ARTIFACT_FAILED
                         : sqlite3_column_int(s, 3) ? RR_ARTIFACT_COMPLETE
                         : RR_ARTIFACT_UPLOADING);
    return info->name && info->sha256 && info->state ? 0 : -1;
}

static void artinfo_clear(void *item)
{
    rr_store_artinfo_clear(item);
}

static const store_rowtype_t artinfo_rows = { sizeof(proto_artinfo_t), artinfo_read,
                                              artinfo_clear };

void rr_store_artinfo_clear(proto_artinfo_t *info)
{
    if (!info)
        return;
    free(info->name);
    free(info->sha256);
    free(info->state);
    free(info->reason);
    memset(info, 0, sizeof *info);
}

void rr_store_artinfos_free(proto_artinfo_t **arts, size_t count)
{
    store_items_free((void **) arts, count, &artinfo_rows);
}

int rr_store_artifact_get(rr_store_t *self, uint64_t job, const char *name,
                          proto_artinfo_t *info)
{
    memset(info, 0, sizeof *info);
    sqlite3_stmt *s = store_stmt_u64(self, ST_ART_GET, job);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 2, name);
    int rc = store_row(self, s, &artinfo_rows, NULL, info, "artifact get");
    return rc == RR_STORE_E_NOTFOUND
           ? store_fail(self, rc, "job %" PRIu64 ": no artifact '%s'", job, name) : rc;
}

int rr_store_artifact_begin(rr_store_t *self, uint64_t job, const char *name, uint64_t size,
                            const char *sha256, const char *error, uint64_t now_ms)
{
    char state[16];
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    rc = store_job_state(self, job, state);
    sqlite3_stmt *s = rc == RR_STORE_OK ? store_stmt_u64(self, ST_ART_INSERT, job) : NULL;
    if (rc == RR_STORE_OK && !s)
        rc = RR_STORE_E_DB;
    if (s) {
        bind_text(s, 2, name);
        bind_u64(s, 3, size);
        bind_text(s, 4, sha256);
        bind_text(s, 5, error);
        bind_u64(s, 6, now_ms);
        rc = store_run(self, s, "artifact insert", NULL);
    }
    return store_finish_tx(self, rc);
}

/* Run statement ID on (JOB, NAME[, TEXT]); NOTFOUND when no row changed. */
static int artifact_update(rr_store_t *self, store_stmt_t id, uint64_t job, const char *name,
                           const char *text, const char *what)
{
    int changes = 0;
    sqlite3_stmt *s = store_stmt_u64(self, id, job);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 2, name);
    if (text)
        bind_text(s, 3, text);
    int rc = store_run(self, s, what, &changes);
    if (rc == RR_STORE_OK && changes == 0)
        rc = store_fail(self, RR_STORE_E_NOTFOUND, "job %" PRIu64 ": no artifact '%s'", job,
                        name);
    return rc;
}

int rr_store_artifact_complete(rr_store_t *self, uint64_t job, const char *name)
{
    return artifact_update(self, ST_ART_COMPLETE, job, name, NULL, "artifact complete");
}

int rr_store_artifact_fail(rr_store_t *self, uint64_t job, const char *name, const char *error)
{
    return artifact_update(self, ST_ART_FAIL, job, name, error ? error : "refused",
                           "artifact fail");
}

int rr_store_artifacts_remove(rr_store_t *self, uint64_t job, const char *why, size_t *count)
{
    int changes = 0;
    sqlite3_stmt *s = store_stmt_u64(self, ST_ART_REMOVE, job);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 2, why);
    int rc = store_run(self, s, "artifacts remove", &changes);
    if (count)
        *count = rc == RR_STORE_OK ? (size_t)changes : 0;
    return rc;
}

int rr_store_artifacts_bytes(rr_store_t *self, uint64_t job, const char *name, uint64_t *bytes)
{
    *bytes = 0;
    sqlite3_stmt *s = store_stmt_u64(self, ST_ART_BYTES, job);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 2, name ? name : "");
    return store_read_u64(self, s, "artifact bytes", bytes);
}

int rr_store_artifacts_list(rr_store_t *self, uint64_t job, proto_artinfo_t **arts,
                            size_t *count)
{
    sqlite3_stmt *s = store_stmt_u64(self, ST_ARTS_LIST, job);
    if (!s) {
        *arts = NULL;
        *count = 0;
        return RR_STORE_E_DB;
    }
    return store_rows(self, s, &artinfo_rows, NULL, (void **) arts, count, "artifacts list");
}
