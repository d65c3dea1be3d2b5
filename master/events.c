/* events.c: JOB_EVENT batches on the master.
 *
 * Events are collected while the worker socket is being drained and
 * committed in one transaction when it is empty (master.c) or when
 * RR_BATCH_MAX events are waiting, whichever comes first. Only then does the
 * master answer EVENT_ACK, one per job, with the highest contiguous seq the
 * store holds: an ack never covers an event that a crash could still lose.
 * Duplicates are ignored by the store (UNIQUE(job, seq)); an event that
 * arrives before its predecessors is stored but acked only once the gap is
 * filled.
 */
#include "daemon.h"

#define RR_BATCH_MAX 512

struct _rr_batch_t {
    proto_job_event_t events[RR_BATCH_MAX];  /* members owned */
    zframe_t *rids[RR_BATCH_MAX];            /* who sent each event: where its ack goes */
    size_t count;
};

rr_batch_t *rr_batch_new(void)
{
    return calloc(1, sizeof(rr_batch_t));
}

static void s_batch_clear(rr_batch_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        proto_msg_t owner = { .type = PROTO_MSG_JOB_EVENT };
        owner.u.job_event = self->events[i];
        proto_msg_free(&owner);
        zframe_destroy(&self->rids[i]);
    }
    self->count = 0;
}

void rr_batch_destroy(rr_batch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_batch_clear(*self_p);
    free(*self_p);
    *self_p = NULL;
}

void rr_events_add(rr_master_t *self, zframe_t *rid, proto_job_event_t *event)
{
    if (event->seq == 0) {
        rr_master_send_error(self, self->worker_sock, rid, "invalid", "seq", event->job,
                             "ev: job %" PRIu64 ": seq starts at 1", event->job);
        return;
    }
    rr_batch_t *batch = self->batch;
    zframe_t *copy = zframe_dup(rid);
    if (!copy)
        return;                             /* not acked: the worker sends it again */
    batch->events[batch->count] = *event;
    memset(event, 0, sizeof *event);        /* the batch owns its members now */
    batch->rids[batch->count] = copy;
    batch->count++;
    if (batch->count == RR_BATCH_MAX)
        rr_events_commit(self);
}

/* Index of the last event of JOB in the batch (there is one: the store saw it);
 * the last, because a worker that reconnected mid-batch listens on its new connection. */
static size_t s_last_of(rr_batch_t *batch, uint64_t job)
{
    size_t i = batch->count - 1;
    while (i > 0 && batch->events[i].job != job)
        i--;
    return i;
}

static void s_log_end(rr_batch_t *batch, uint64_t job)
{
    for (size_t i = 0; i < batch->count; i++) {
        const proto_job_event_t *ev = &batch->events[i];
        if (ev->job == job && streq(ev->kind, "end"))
            rr_info("job %" PRIu64 ": finished %s%s%s", job, ev->value ? ev->value : "?",
                    ev->reason ? ": " : "", ev->reason ? ev->reason : "");
    }
}

/* Ack one job's events to the worker that sent them; true when the job ended. */
static bool s_ack(rr_master_t *self, const rr_store_ack_t *ack)
{
    rr_batch_t *batch = self->batch;
    zframe_t *rid = batch->rids[s_last_of(batch, ack->job)];
    if (ack->unknown) {
        rr_master_send_error(self, self->worker_sock, rid, "not_found", "job", ack->job,
                             "ev: no job %" PRIu64 "; its events were dropped", ack->job);
        return false;
    }
    proto_msg_t msg = { .type = PROTO_MSG_EVENT_ACK, .version = PROTO_VERSION };
    msg.u.event_ack.job = ack->job;
    msg.u.event_ack.seq = ack->acked_seq;
    if (rr_master_send(self, self->worker_sock, rid, &msg) == 0)
        self->metrics.event_acks_sent++;
    if (ack->started)
        rr_info("job %" PRIu64 ": running", ack->job);
    if (ack->finished)
        s_log_end(batch, ack->job);
    return ack->finished;
}

/* Metrics of a committed batch: new, duplicate, console gaps (SOL losses). */
static void s_count(rr_master_t *self, const rr_store_ack_t *acks, size_t ack_count)
{
    rr_batch_t *batch = self->batch;
    uint64_t known = 0;
    for (size_t i = 0; i < batch->count; i++) {
        bool unknown = false;
        for (size_t a = 0; a < ack_count; a++)
            if (acks[a].job == batch->events[i].job)
                unknown = acks[a].unknown;
        known += !unknown;
        if (!unknown && streq(batch->events[i].kind, "console_gap"))
            self->metrics.sol_errors++;
    }
    uint64_t inserted = 0;
    for (size_t a = 0; a < ack_count; a++)
        inserted += acks[a].inserted;
    self->metrics.events_ingested += inserted;
    self->metrics.events_duplicate += known > inserted ? known - inserted : 0;
}

void rr_events_commit(rr_master_t *self)
{
    rr_batch_t *batch = self->batch;
    if (batch->count == 0)
        return;
    rr_store_ack_t *acks = NULL;
    size_t ack_count = 0;
    if (rr_store_events_append(self->store, batch->events, batch->count, &acks, &ack_count)
        != RR_STORE_OK) {
        /* Nothing acked: the workers keep the events spooled and send them again. */
        rr_error("events: batch of %zu not committed: %s", batch->count,
                 rr_store_error(self->store));
        s_batch_clear(batch);
        return;
    }
    s_count(self, acks, ack_count);
    bool ended = false;
    for (size_t i = 0; i < ack_count; i++) {
        bool finished = s_ack(self, &acks[i]);
        if (finished)
            rr_master_job_ended(self, acks[i].job);
        else if (acks[i].inserted)
            rr_logs_job_changed(self, acks[i].job);
        ended |= finished;
    }
    free(acks);
    s_batch_clear(batch);
    if (ended)
        rr_master_schedule(self);           /* their devices are idle */
}
