/* store_events.c: the ordered event stream of each job in the store. A batch
 * is committed in one transaction; duplicates (job, seq) are ignored, so a
 * worker may re-send after a lost ack; the highest contiguous seq is the ack.
 * A newly stored "state running" or "end" event moves its job (store_jobs.c).
 * Log retention prunes console bytes here too; see store.h. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- rows ---- */

static int event_read(sqlite3_stmt *s, void *item, void *arg)
{
    proto_job_event_t *ev = item;
    (void) arg;
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

static void event_clear(void *item)
{
    proto_job_event_t *ev = item;
    free(ev->kind);
    free(ev->data);
    free(ev->name);
    free(ev->value);
    free(ev->reason);
    free(ev->measurement);
    free(ev->units);
    memset(ev, 0, sizeof *ev);
}

static const store_rowtype_t event_rows = { sizeof(proto_job_event_t), event_read,
                                            event_clear };

void rr_store_events_free(proto_job_event_t **events, size_t count)
{
    store_items_free((void **) events, count, &event_rows);
}

/* ---- append ---- */

/* What a batch knows of one of its jobs besides its public ack. */
typedef struct {
    char state[16];         /* as the batch changes it */
    uint64_t stored_seq;    /* the acked seq in the store before the batch */
    bool written;           /* the new acked seq went with a state change */
    size_t end_at;          /* the batch's first new "end" of the job, SIZE_MAX: none */
    uint64_t started_ms;    /* a "state running" the end writes with it, 0: none */
} slot_t;

/* An event batch: per job, its public ack and its slot. */
typedef struct {
    rr_store_ack_t *acks;
    slot_t *slots;
    size_t count, acks_cap, slots_cap;
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
    if (store_grow((void **) &batch->acks, batch->count, &batch->acks_cap,
                   sizeof *batch->acks) != 0
        || store_grow((void **) &batch->slots, batch->count, &batch->slots_cap,
                      sizeof *batch->slots) != 0)
        return store_fail(self, RR_STORE_E_DB, "events: out of memory");
    *slot = batch->count++;
    rr_store_ack_t *ack = &batch->acks[*slot];
    ack->job = job;
    batch->slots[*slot].end_at = SIZE_MAX;
    sqlite3_stmt *s = store_stmt_u64(self, ST_JOB_ACKED_GET, job);
    int rc = s ? store_step_row(self, s, "events") : RR_STORE_E_DB;
    if (rc == RR_STORE_OK) {
        slot_t *known = &batch->slots[*slot];
        snprintf(known->state, sizeof known->state, "%s",
                 (const char *) sqlite3_column_text(s, 0));
        ack->acked_seq = known->stored_seq = col_u64(s, 1);
        sqlite3_reset(s);
    } else if (rc == RR_STORE_E_NOTFOUND) {
        ack->unknown = true;
        rc = RR_STORE_OK;
    }
    return rc;
}

static int event_insert(rr_store_t *self, const proto_job_event_t *ev, int *changes)
{
    sqlite3_stmt *s = store_stmt_u64(self, ST_EVENT_INSERT, ev->job);
    if (!s)
        return RR_STORE_E_DB;
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
    return store_run(self, s, "event insert", changes);
}

/* An "end" event finishes its job: outcome = value, or incomplete (saying
 * why) when the value is no outcome. ACKED goes with the state (NULL: none),
 * and so does STARTED_MS (0: none), a "state running" of the same batch. */
static int event_end(rr_store_t *self, const proto_job_event_t *ev, const uint64_t *acked,
                     uint64_t started_ms)
{
    const char *outcome = store_one_of(ev->value, store_outcomes) ? ev->value
                                                                  : RR_OUTCOME_INCOMPLETE;
    char why[256];
    const char *reason = ev->reason;
    if (outcome != ev->value) {
        snprintf(why, sizeof why, "end event with unknown outcome '%s'%s%s",
                 ev->value ? ev->value : "", ev->reason ? ": " : "",
                 ev->reason ? ev->reason : "");
        reason = why;
    }
    return store_job_finish_tx(self, ev->job, outcome, reason, ev->ts, acked,
                               started_ms ? &started_ms : NULL);
}

/* The effect of the batch's event AT, newly stored, on its job (state
 * running, end); the job's new acked seq, when it moved, is written with the
 * state. A job that starts and ends in the same batch (a short job, a node
 * that failed at once) is written once, by its end, with the start time:
 * its row, its indexes and its device's row are written once instead of
 * twice, and the store never shows the running state it left at once. */
static int event_effect(rr_store_t *self, const proto_job_event_t *ev, size_t at,
                        rr_store_ack_t *ack, slot_t *slot)
{
    int rc = RR_STORE_OK;
    const char *state = slot->state;
    bool open = strcmp(state, RR_JOB_FINISHED) != 0 && strcmp(state, RR_JOB_QUEUED) != 0;
    const uint64_t *acked = ack->acked_seq != slot->stored_seq ? &ack->acked_seq : NULL;
    if (!open || !ev->kind)
        return RR_STORE_OK;
    if (strcmp(ev->kind, "state") == 0 && ev->name && strcmp(ev->name, RR_JOB_RUNNING) == 0
        && strcmp(state, RR_JOB_SCHEDULED) == 0) {
        bool wrote = false;
        if (slot->end_at != SIZE_MAX && slot->end_at > at)
            slot->started_ms = ev->ts ? ev->ts : 1;     /* 0 would mean never started */
        else
            rc = store_job_running_tx(self, ev->job, ev->ts, acked, &wrote);
        if (rc == RR_STORE_OK) {
            snprintf(slot->state, sizeof slot->state, "%s", RR_JOB_RUNNING);
            ack->started = true;
            slot->written |= wrote && acked;
        }
    } else if (strcmp(ev->kind, "end") == 0) {
        rc = event_end(self, ev, acked, slot->started_ms);
        if (rc == RR_STORE_OK) {
            snprintf(slot->state, sizeof slot->state, "%s", RR_JOB_FINISHED);
            ack->finished = true;
            slot->written |= acked != NULL;
        }
    }
    return rc;
}

/* Advance ACK->acked_seq over the stored seqs that follow it (in memory). A
 * job none of whose events the batch stored keeps its acked seq: it already
 * covers every stored seq it can. */
static int advance_acked(rr_store_t *self, rr_store_ack_t *ack)
{
    if (ack->inserted == 0)
        return RR_STORE_OK;
    sqlite3_stmt *s = store_stmt_u64(self, ST_EVENT_SEQS, ack->job);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 2, ack->acked_seq);
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW && col_u64(s, 0) == ack->acked_seq + 1)
        ack->acked_seq++;
    sqlite3_reset(s);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return store_fail_db(self, "event seqs");
    return RR_STORE_OK;
}

/* Persist the acked seq of a job whose state change did not carry it. */
static int write_acked(rr_store_t *self, const rr_store_ack_t *ack, const slot_t *slot)
{
    if (ack->unknown || ack->acked_seq == slot->stored_seq || slot->written)
        return RR_STORE_OK;
    sqlite3_stmt *s = store_stmt_u64(self, ST_JOB_ACKED_SET, ack->job);
    if (!s)
        return RR_STORE_E_DB;
    bind_u64(s, 2, ack->acked_seq);
    return store_run(self, s, "acked seq", NULL);
}

/* Store the events that are new (SLOT_OF[i]: the slot of event I, or
 * SIZE_MAX when it was not stored). */
static int events_insert(rr_store_t *self, const proto_job_event_t *events, size_t n,
                         batch_t *batch, size_t *slot_of)
{
    int rc = RR_STORE_OK;
    for (size_t i = 0; i < n && rc == RR_STORE_OK; i++) {
        const proto_job_event_t *ev = &events[i];
        size_t slot = 0;
        slot_of[i] = SIZE_MAX;
        rc = batch_slot(self, batch, ev->job, &slot);
        if (rc != RR_STORE_OK || batch->acks[slot].unknown || ev->seq == 0 || !ev->kind)
            continue;   /* seq counts from 1: a 0 could never be acked */
        int changes = 0;
        rc = event_insert(self, ev, &changes);
        if (rc == RR_STORE_OK && changes == 1) {
            batch->acks[slot].inserted++;
            slot_of[i] = slot;
            if (strcmp(ev->kind, "end") == 0 && batch->slots[slot].end_at == SIZE_MAX)
                batch->slots[slot].end_at = i;
        }
    }
    return rc;
}

/* Insert the events, find each job's new acked seq, then apply the new
 * events' effects in order (the acked seq goes with a state change when
 * there is one: one write of the job row instead of two). */
static int events_append_tx(rr_store_t *self, const proto_job_event_t *events, size_t n,
                            batch_t *batch)
{
    size_t *slot_of = malloc((n ? n : 1) * sizeof *slot_of);
    if (!slot_of)
        return store_fail(self, RR_STORE_E_DB, "events: out of memory");
    int rc = events_insert(self, events, n, batch, slot_of);
    for (size_t i = 0; i < batch->count && rc == RR_STORE_OK; i++)
        if (!batch->acks[i].unknown)
            rc = advance_acked(self, &batch->acks[i]);
    for (size_t i = 0; i < n && rc == RR_STORE_OK; i++)
        if (slot_of[i] != SIZE_MAX)
            rc = event_effect(self, &events[i], i, &batch->acks[slot_of[i]],
                              &batch->slots[slot_of[i]]);
    for (size_t i = 0; i < batch->count && rc == RR_STORE_OK; i++)
        rc = write_acked(self, &batch->acks[i], &batch->slots[i]);
    free(slot_of);
    return rc;
}

int rr_store_events_append(rr_store_t *self, const proto_job_event_t *events, size_t n,
                           rr_store_ack_t **acks, size_t *ack_count)
{
    batch_t batch = { 0 };
    int rc = rr_store_join(self);           /* the drain's transaction: no savepoint */
    if (rc == RR_STORE_OK)
        rc = rr_store_leave(self, events_append_tx(self, events, n, &batch));
    free(batch.slots);
    if (rc != RR_STORE_OK) {
        free(batch.acks);
        batch.acks = NULL;
        batch.count = 0;
    }
    *acks = batch.acks;
    *ack_count = batch.count;
    return rc;
}

/* ---- read ---- */

/* Events of JOB after FROM_SEQ, at most MAX (0 = 1000): ?1 ?2 ?3 of SID. */
static sqlite3_stmt *events_stmt(rr_store_t *self, store_stmt_t sid, uint64_t job,
                                 uint64_t from_seq, uint32_t max)
{
    sqlite3_stmt *s = store_stmt_u64(self, sid, job);
    if (s) {
        bind_u64(s, 2, from_seq);
        sqlite3_bind_int64(s, 3, max ? max : 1000);
    }
    return s;
}

int rr_store_events_read(rr_store_t *self, uint64_t job, uint64_t from_seq, uint32_t max,
                         proto_job_event_t **events, size_t *count)
{
    *events = NULL;
    *count = 0;
    sqlite3_stmt *s = events_stmt(self, ST_EVENTS_READ, job, from_seq, max);
    return s ? store_rows(self, s, &event_rows, NULL, (void **) events, count, "events read")
             : RR_STORE_E_DB;
}

/* For the HTTP API: one kind of event (results) without reading a whole log. */
int rr_store_events_read_kind(rr_store_t *self, uint64_t job, const char *kind,
                              uint64_t from_seq, uint32_t max,
                              proto_job_event_t **events, size_t *count)
{
    *events = NULL;
    *count = 0;
    sqlite3_stmt *s = events_stmt(self, ST_EVENTS_KIND, job, from_seq, max);
    if (!s)
        return RR_STORE_E_DB;
    bind_text(s, 4, kind);
    return store_rows(self, s, &event_rows, NULL, (void **) events, count,
                      "events read by kind");
}

int rr_store_events_acked(rr_store_t *self, uint64_t job, uint64_t *seq)
{
    sqlite3_stmt *s = store_stmt_u64(self, ST_JOB_ACKED_GET, job);
    int rc = s ? store_job_row(self, s, job, "acked seq") : RR_STORE_E_DB;
    if (rc == RR_STORE_OK) {
        *seq = col_u64(s, 1);
        sqlite3_reset(s);
    }
    return rc;
}

/* ==== log retention (master/retention.c) ==== */

/* One step of statement SID (bound to JOB and MARKER) into *VALUE (may be NULL). */
static int logs_step(rr_store_t *self, store_stmt_t sid, uint64_t job, const char *marker,
                     uint64_t *value)
{
    sqlite3_stmt *s = store_stmt_u64(self, sid, job);
    if (!s)
        return RR_STORE_E_DB;
    sqlite3_bind_blob(s, 2, marker, (int) strlen(marker), SQLITE_STATIC);
    return store_read_u64(self, s, "logs prune", value);
}

int rr_store_logs_prune(rr_store_t *self, uint64_t job, const char *marker, uint64_t *bytes)
{
    *bytes = 0;
    int rc = rr_store_begin(self);
    if (rc != RR_STORE_OK)
        return rc;
    rc = logs_step(self, ST_LOGS_BYTES, job, marker, bytes);
    if (rc == RR_STORE_OK && *bytes)
        rc = logs_step(self, ST_LOGS_PRUNE, job, marker, NULL);
    return store_finish_tx(self, rc);
}
