/* store_wal.c: when and where the store checkpoints its WAL (store.h).
 *
 * SQLite checkpoints inside the COMMIT that takes the WAL past 1,000 pages:
 * copying the pages back into the database and an fdatasync, a few ms that
 * the master used to spend between committing a drain and sending its
 * JOB_STARTs (bench_dispatch: the idle->start p99). With the checkpoints
 * deferred, a hook only notes the WAL's size at each commit, and the master
 * asks for a checkpoint after its answers left.
 *
 * The checkpoint itself runs on a thread of the store with a connection of
 * its own (PASSIVE: it never waits for the writer, nor the writer for it),
 * so its page copies and syncs no longer hold the master's thread (a sixth
 * of its time in bench_dispatch's throughput phase). The WAL starts over at
 * the first transaction after a checkpoint that copied all of it, so the
 * checkpointer copies until it did (s_catch_up), and under a steady load
 * the master copies the rest now and then (STORE_WAL_RESTART). Durability is
 * unchanged: a commit is in the WAL before it returns, and the checkpoint
 * syncs as the main connection would (synchronous is the same on both).
 */
#include "store_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* Under a steady load the master begins its next transaction while the
 * checkpointer copies the last one's pages, so the WAL would never start
 * over (bench_dispatch: 1.9 GB). Past this many times the limit, or the
 * size of its last transaction when that is larger, the master copies what
 * is left itself: the pages of that transaction or two, at most about a
 * quarter of what it wrote to the WAL since the last restart (a master that
 * commits 4,000 frames per drain would otherwise copy after every drain:
 * 7 % of its time in bench_dispatch). */
#define STORE_WAL_RESTART 4

struct _store_ckpt_t {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    sqlite3 *db;                /* the thread's own connection */
    bool due;                   /* a checkpoint was asked for */
    bool stop;
    char error[256];            /* the last failure, "" when none; under LOCK */
};

static int s_wal_noted(void *arg, sqlite3 *db, const char *name, int frames)
{
    rr_store_t *self = arg;
    (void) db;
    (void) name;
    self->wal_commit_frames = frames > self->wal_size ? frames - self->wal_size : frames;
    self->wal_size = frames;
    self->wal_frames = frames;
    return SQLITE_OK;
}

/* PASSIVE checkpoints until the whole WAL is copied back, so that the
 * writer's next transaction starts it over: the master commits a drain while
 * the last one is copied, and its WAL would otherwise only grow. The master
 * adds frames only when it commits, so a round that copies nothing new means
 * a reader or writer holds on (BUSY): then wait to be asked again. */
static int s_catch_up(sqlite3 *db)
{
    int rc, log = 0, done = 0, before = -1;
    while ((rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done))
           == SQLITE_OK && done < log && done != before)
        before = done;
    return rc;
}

static void *s_checkpointer(void *arg)
{
    store_ckpt_t *ckpt = arg;
    pthread_setname_np(pthread_self(), "rr-checkpoint");
    pthread_mutex_lock(&ckpt->lock);
    while (!ckpt->stop) {
        if (!ckpt->due) {
            pthread_cond_wait(&ckpt->wake, &ckpt->lock);
            continue;
        }
        ckpt->due = false;
        pthread_mutex_unlock(&ckpt->lock);
        int rc = s_catch_up(ckpt->db);
        pthread_mutex_lock(&ckpt->lock);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            snprintf(ckpt->error, sizeof ckpt->error, "%s", sqlite3_errmsg(ckpt->db));
    }
    pthread_mutex_unlock(&ckpt->lock);
    return NULL;
}

/* The checkpointer's connection: the same file, the same synchronous. */
static int s_ckpt_open(rr_store_t *self, store_ckpt_t *ckpt)
{
    if (sqlite3_open_v2(self->path, &ckpt->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        return store_fail(self, RR_STORE_E_DB, "store %s: checkpointer: open: %s", self->path,
                          ckpt->db ? sqlite3_errmsg(ckpt->db) : "out of memory");
    if (sqlite3_exec(ckpt->db, store_sync_pragma(self), NULL, NULL, NULL) != SQLITE_OK)
        return store_fail(self, RR_STORE_E_DB, "store %s: checkpointer: %s", self->path,
                          sqlite3_errmsg(ckpt->db));
    return RR_STORE_OK;
}

static void s_ckpt_free(store_ckpt_t *ckpt)
{
    sqlite3_close(ckpt->db);
    pthread_cond_destroy(&ckpt->wake);
    pthread_mutex_destroy(&ckpt->lock);
    free(ckpt);
}

/* Start the checkpointer thread into SELF->ckpt. */
static int s_ckpt_start(rr_store_t *self)
{
    store_ckpt_t *ckpt = calloc(1, sizeof *ckpt);
    if (!ckpt)
        return store_fail(self, RR_STORE_E_DB, "store %s: checkpointer: out of memory",
                          self->path);
    pthread_mutex_init(&ckpt->lock, NULL);
    pthread_cond_init(&ckpt->wake, NULL);
    int rc = s_ckpt_open(self, ckpt);
    if (rc == RR_STORE_OK && pthread_create(&ckpt->thread, NULL, s_checkpointer, ckpt) != 0)
        rc = store_fail(self, RR_STORE_E_DB, "store %s: checkpointer: no thread", self->path);
    if (rc != RR_STORE_OK) {
        s_ckpt_free(ckpt);
        return rc;
    }
    self->ckpt = ckpt;
    return RR_STORE_OK;
}

void store_checkpointer_stop(rr_store_t *self)
{
    store_ckpt_t *ckpt = self->ckpt;
    if (!ckpt)
        return;
    pthread_mutex_lock(&ckpt->lock);
    ckpt->stop = true;
    pthread_cond_signal(&ckpt->wake);
    pthread_mutex_unlock(&ckpt->lock);
    pthread_join(ckpt->thread, NULL);
    s_ckpt_free(ckpt);
    self->ckpt = NULL;
}

int rr_store_defer_checkpoints(rr_store_t *self, int pages)
{
    if (pages <= 0)
        return store_fail(self, RR_STORE_E_INVALID, "store: checkpoint limit %d", pages);
    if (!self->ckpt) {
        int rc = s_ckpt_start(self);
        if (rc != RR_STORE_OK)
            return rc;
    }
    self->wal_limit = pages;
    sqlite3_wal_hook(self->db, s_wal_noted, self);    /* replaces the autocheckpoint */
    return RR_STORE_OK;
}

/* The rest of the WAL copied back on the caller's connection, between its
 * transactions, so that the next one starts the WAL over. */
static int s_finish_here(rr_store_t *self)
{
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(self->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)   /* BUSY: the checkpointer copies, next time */
        return store_fail_db(self, "checkpoint");
    self->wal_frames = log > done ? log - done : 0;
    return RR_STORE_OK;
}

int rr_store_checkpoint_due(rr_store_t *self)
{
    if (self->wal_limit == 0 || self->wal_frames < self->wal_limit || self->depth > 0)
        return RR_STORE_OK;
    int restart = self->wal_commit_frames > self->wal_limit ? self->wal_commit_frames
                                                            : self->wal_limit;
    if (self->wal_frames >= STORE_WAL_RESTART * restart)
        return s_finish_here(self);
    store_ckpt_t *ckpt = self->ckpt;
    char failed[sizeof ckpt->error];
    pthread_mutex_lock(&ckpt->lock);
    ckpt->due = true;
    pthread_cond_signal(&ckpt->wake);
    snprintf(failed, sizeof failed, "%s", ckpt->error);
    ckpt->error[0] = '\0';
    pthread_mutex_unlock(&ckpt->lock);
    self->wal_frames = 0;           /* the next commit tells the WAL's size again */
    if (*failed)
        return store_fail(self, RR_STORE_E_DB, "store %s: checkpoint: %s", self->path, failed);
    return RR_STORE_OK;
}
