/* store_wal.c: when the store checkpoints its WAL (store.h).
 *
 * SQLite checkpoints inside the COMMIT that takes the WAL past 1,000 pages:
 * copying the pages back into the database and an fdatasync, a few ms that
 * the master used to spend between committing a drain and sending its
 * JOB_STARTs (bench_dispatch: the idle->start p99). With the checkpoints
 * deferred, a hook only notes the WAL's size at each commit, and the master
 * checkpoints after its answers left. A PASSIVE checkpoint between two
 * transactions of the only writer copies the whole WAL, so the WAL starts
 * over as it did before.
 */
#include "store_internal.h"

static int s_wal_noted(void *arg, sqlite3 *db, const char *name, int frames)
{
    rr_store_t *self = arg;
    (void) db;
    (void) name;
    self->wal_frames = frames;
    return SQLITE_OK;
}

int rr_store_defer_checkpoints(rr_store_t *self, int pages)
{
    if (pages <= 0)
        return store_fail(self, RR_STORE_E_INVALID, "store: checkpoint limit %d", pages);
    self->wal_limit = pages;
    sqlite3_wal_hook(self->db, s_wal_noted, self);    /* replaces the autocheckpoint */
    return RR_STORE_OK;
}

int rr_store_checkpoint_due(rr_store_t *self)
{
    if (self->wal_limit == 0 || self->wal_frames < self->wal_limit || self->depth > 0)
        return RR_STORE_OK;
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(self->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return store_fail_db(self, "checkpoint");
    self->wal_frames = log > done ? log - done : 0;
    return RR_STORE_OK;
}
