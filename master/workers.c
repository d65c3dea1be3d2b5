/* workers.c: worker sessions on the master (HELLO/WELCOME, HEARTBEAT,
 * JOB_ACCEPT, ACK), lost detection and the grace period.
 *
 * A session binds a worker name to the routing id of its connection. A
 * worker that reconnects says HELLO and its new routing id replaces the old
 * one. Anything but HELLO from a routing id without a live session gets
 * ERROR hello_required, so a worker that the master declared lost (or a
 * restarted master) is re-synchronised by one HELLO, which also lists the
 * jobs the worker still has.
 *
 * Liveness is judged here, in memory (last_seen). The store's last_seen_ms
 * only feeds "heartbeat age" in WORKERS and /metrics, so a HEARTBEAT does not
 * write it: the timer writes the beats of all workers since its last tick in
 * one transaction. One commit per beat was 47 % of the master's thread with
 * 5,000 workers beating at 1 Hz (bench_heartbeat). A master that stops loses
 * at most one interval of last-seen times; after a restart every worker says
 * HELLO again, which writes it.
 *
 * JOB_ACCEPT's flag is written the same way (one transaction per tick, not
 * per job: bench_dispatch), and always before a HELLO, a cancel's ACK or the
 * grace expiry read it. A master killed within that second forgets that a
 * worker accepted: should that worker also come back without the job, the
 * job gets JOB_START again instead of ending incomplete.
 */
#include "daemon.h"
#include "artifacts.h"

typedef struct {
    char *name;
    zframe_t *rid;          /* NULL until HELLO (restored after a master restart) */
    char *rid_key;          /* hex of rid: key in by_rid */
    char key[41];           /* CURVE key that said HELLO ("" when insecure) */
    bool lost;
    uint64_t last_seen;     /* mono ms of its last message */
    uint64_t lost_at;       /* mono ms when it was declared lost */
    uint64_t beat_wall;     /* wall ms of its last HEARTBEAT not yet in the store, 0 = none */
} rr_session_t;

/* Accepts not yet in the store: written by the timer or before anything
 * reads the accepted flag (HELLO, a cancel's ACK, grace expiry); this many
 * pending are written at once. */
#define RR_ACCEPTS_MAX 1024

struct _rr_sessions_t {
    zhashx_t *by_name;      /* name -> session (owns) */
    zhashx_t *by_rid;       /* rid hex -> session (borrowed) */
    zhashx_t *owners;       /* job id -> worker name (owned): scheduled/running/canceling jobs */
    uint64_t accepts[RR_ACCEPTS_MAX];   /* jobs whose JOB_ACCEPT is not stored yet */
    size_t accept_count;
};

static void s_session_destroy(void **item)
{
    rr_session_t *session = *item;
    if (!session)
        return;
    zframe_destroy(&session->rid);
    free(session->rid_key);
    free(session->name);
    free(session);
    *item = NULL;
}

/* The owners map is keyed by job id itself (the key pointer holds the id). */
static size_t s_job_hash(const void *key)
{
    uint64_t id = (uint64_t) (uintptr_t) key;
    return (size_t) (id * 0x9E3779B97F4A7C15ull);
}

static int s_job_compare(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) a, y = (uintptr_t) b;
    return x < y ? -1 : x > y;
}

static void s_name_free(void **item)
{
    free(*item);
    *item = NULL;
}

static zhashx_t *s_owners_new(void)
{
    zhashx_t *owners = zhashx_new();
    if (!owners)
        return NULL;
    zhashx_set_key_hasher(owners, s_job_hash);
    zhashx_set_key_comparator(owners, s_job_compare);
    zhashx_set_key_duplicator(owners, NULL);
    zhashx_set_key_destructor(owners, NULL);
    zhashx_set_destructor(owners, s_name_free);
    return owners;
}

rr_sessions_t *rr_sessions_new(void)
{
    rr_sessions_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->by_name = zhashx_new();
    self->by_rid = zhashx_new();
    self->owners = s_owners_new();
    if (!self->by_name || !self->by_rid || !self->owners) {
        rr_sessions_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->by_name, s_session_destroy);
    return self;
}

void rr_sessions_destroy(rr_sessions_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rr_sessions_t *self = *self_p;
    zhashx_destroy(&self->owners);
    zhashx_destroy(&self->by_rid);
    zhashx_destroy(&self->by_name);
    free(self);
    *self_p = NULL;
}

static rr_session_t *s_session_get(rr_master_t *self, const char *name)
{
    rr_session_t *session = zhashx_lookup(self->sessions->by_name, name);
    if (session)
        return session;
    session = calloc(1, sizeof *session);
    if (!session || !(session->name = strdup(name))) {
        free(session);
        return NULL;
    }
    zhashx_insert(self->sessions->by_name, name, session);
    return session;
}

/* Bind SESSION to the connection RID (HELLO). */
static int s_session_bind(rr_master_t *self, rr_session_t *session, zframe_t *rid)
{
    char *key = zframe_strhex(rid);
    zframe_t *copy = zframe_dup(rid);
    if (!key || !copy) {
        free(key);
        zframe_destroy(&copy);
        return -1;
    }
    if (session->rid_key) {
        if (!streq(session->rid_key, key))
            rr_info("worker %s: new connection %s replaces %s", session->name, key,
                    session->rid_key);
        zhashx_delete(self->sessions->by_rid, session->rid_key);
        free(session->rid_key);
        zframe_destroy(&session->rid);
    }
    rr_session_t *other = zhashx_lookup(self->sessions->by_rid, key);
    if (other && other != session) {        /* the connection changed its name */
        free(other->rid_key);
        other->rid_key = NULL;
        zframe_destroy(&other->rid);
    }
    session->rid_key = key;
    session->rid = copy;
    zhashx_update(self->sessions->by_rid, key, session);
    session->lost = false;
    session->last_seen = rr_mono_ms();
    session->beat_wall = 0;                 /* HELLO stored a newer last-seen time */
    return 0;
}

/* The live session of RID, or NULL. */
static rr_session_t *s_session_of(rr_master_t *self, zframe_t *rid)
{
    char *key = zframe_strhex(rid);
    rr_session_t *session = key ? zhashx_lookup(self->sessions->by_rid, key) : NULL;
    free(key);
    return session && !session->lost ? session : NULL;
}

static void s_declare_lost(rr_master_t *self, rr_session_t *session, uint64_t now);

/* The session's key was removed from the allow-list: forget its connection
 * and treat the worker as lost (its jobs get the usual grace: a worker whose
 * key comes back says HELLO again and resumes them). */
static void s_drop_revoked(rr_master_t *self, rr_session_t *session, uint64_t now)
{
    rr_warn("worker %s: key %s removed from the allow-list: session dropped", session->name,
            session->key);
    if (session->rid_key)
        zhashx_delete(self->sessions->by_rid, session->rid_key);
    free(session->rid_key);
    session->rid_key = NULL;
    zframe_destroy(&session->rid);
    if (!session->lost)
        s_declare_lost(self, session, now);
}

zframe_t *rr_workers_route(rr_master_t *self, const char *worker)
{
    rr_session_t *session = zhashx_lookup(self->sessions->by_name, worker);
    return session && !session->lost ? session->rid : NULL;
}

void rr_workers_own(rr_master_t *self, uint64_t job, const char *worker)
{
    const void *key = (const void *) (uintptr_t) job;
    const char *known = zhashx_lookup(self->sessions->owners, key);
    if (job == 0 || (known && streq(known, worker)))
        return;
    char *name = strdup(worker);
    if (name)
        zhashx_update(self->sessions->owners, key, name);   /* no memory: the store is asked */
    else
        zhashx_delete(self->sessions->owners, key);
}

void rr_workers_disown(rr_master_t *self, uint64_t job)
{
    zhashx_delete(self->sessions->owners, (const void *) (uintptr_t) job);
}

void rr_workers_disown_all(rr_master_t *self)
{
    zhashx_purge(self->sessions->owners);
}

int rr_workers_restore(rr_master_t *self)
{
    proto_workerinfo_t *workers = NULL;
    size_t count = 0;
    if (rr_store_workers_list(self->store, NULL, rr_wall_ms(), &workers, &count) != RR_STORE_OK)
        return -1;
    uint64_t now = rr_mono_ms();
    for (size_t i = 0; i < count; i++) {
        bool online = streq(workers[i].state, RR_WORKER_ONLINE);
        if (!online && !streq(workers[i].state, RR_WORKER_LOST))
            continue;
        rr_session_t *session = s_session_get(self, workers[i].name);
        if (!session)
            continue;
        session->last_seen = now;               /* give it a full timeout to say HELLO */
        session->lost = !online;
        session->lost_at = now;                 /* and lost ones a full grace */
    }
    rr_store_workerinfos_free(&workers, count);
    return 0;
}

/* Write the accepts collected since the last call, in one transaction. */
static void s_store_accepts(rr_master_t *self)
{
    rr_sessions_t *sessions = self->sessions;
    if (sessions->accept_count == 0)
        return;
    if (rr_store_jobs_accepted(self->store, sessions->accepts, sessions->accept_count)
        != RR_STORE_OK) {
        rr_error("workers: %zu accepts not stored: %s", sessions->accept_count,
                 rr_store_error(self->store));
        return;                             /* kept: tried again on the next call */
    }
    sessions->accept_count = 0;
}

/* ---- HELLO ---- */

static bool s_hello_lists(const proto_hello_t *hello, uint64_t job)
{
    for (size_t i = 0; i < hello->jobs_count; i++)
        if (hello->jobs[i].job == job)
            return true;
    return false;
}

/* Bring the master's view of WORKER's open jobs in line with what HELLO lists. */
static bool s_reconcile_active(rr_master_t *self, const char *worker, const proto_hello_t *hello)
{
    rr_store_active_t *active = NULL;
    size_t count = 0;
    bool ended = false;
    if (rr_store_jobs_active(self->store, worker, &active, &count) != RR_STORE_OK) {
        rr_error("worker %s: HELLO: %s", worker, rr_store_error(self->store));
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        rr_store_active_t *a = &active[i];
        bool canceling = streq(a->state, RR_JOB_CANCELING);
        if (s_hello_lists(hello, a->job)) {
            if (canceling)
                rr_dispatch_cancel(self, a->job, worker);
        }
        else if (canceling)
            ended |= rr_master_finish_job(self, a->job, RR_OUTCOME_CANCELED,
                                          "worker no longer has the job") == 0;
        else if (streq(a->state, RR_JOB_SCHEDULED) && !a->accepted)
            rr_dispatch_start(self, a->job, a->device, worker);
        else
            ended |= rr_master_finish_job(self, a->job, RR_OUTCOME_INCOMPLETE,
                                          "worker lost: restarted without the job") == 0;
    }
    rr_store_actives_free(&active, count);
    return ended;
}

/* A job HELLO lists that the master already ended (e.g. "worker lost" after
 * the grace): the worker must stop it and free the node. Its record keeps
 * the master's outcome; what the worker still sends is stored, not lost. */
static void s_cancel_ended(rr_master_t *self, const char *worker, const proto_hello_t *hello)
{
    for (size_t i = 0; i < hello->jobs_count; i++) {
        proto_jobinfo_t info = { 0 };
        if (rr_store_job_get(self->store, hello->jobs[i].job, &info) != RR_STORE_OK)
            continue;
        if (streq(info.state, RR_JOB_FINISHED) && info.worker && streq(info.worker, worker)) {
            rr_info("job %" PRIu64 ": worker %s still runs it, but it ended (%s): canceling "
                    "it there", hello->jobs[i].job, worker, info.reason ? info.reason : "");
            rr_dispatch_cancel(self, hello->jobs[i].job, worker);
        }
        rr_store_jobinfo_clear(&info);
    }
}

/* WELCOME's job list: for each job HELLO lists that the master knows, its acked seq. */
static proto_jobseq_t *s_welcome_jobs(rr_master_t *self, const proto_hello_t *hello, size_t *n)
{
    *n = 0;
    if (hello->jobs_count == 0)
        return NULL;
    proto_jobseq_t *jobs = calloc(hello->jobs_count, sizeof *jobs);
    if (!jobs)
        return NULL;
    for (size_t i = 0; i < hello->jobs_count; i++) {
        uint64_t seq = 0;
        if (rr_store_events_acked(self->store, hello->jobs[i].job, &seq) != RR_STORE_OK)
            continue;                           /* a job this master never had */
        jobs[*n].job = hello->jobs[i].job;
        jobs[*n].seq = seq;
        (*n)++;
    }
    return jobs;
}

static bool s_versions_overlap(const proto_hello_t *hello)
{
    return hello->proto_min <= hello->proto_max && hello->proto_min <= PROTO_VERSION
           && hello->proto_max >= PROTO_VERSION_MIN;
}

static void s_send_welcome(rr_master_t *self, zframe_t *rid, const proto_hello_t *hello)
{
    proto_msg_t msg = { .type = PROTO_MSG_WELCOME, .version = PROTO_VERSION };
    msg.u.welcome.epoch = self->epoch;
    msg.u.welcome.heartbeat_interval_ms = self->interval_ms;
    msg.u.welcome.heartbeat_timeout_ms = self->timeout_ms;
    msg.u.welcome.jobs = s_welcome_jobs(self, hello, &msg.u.welcome.jobs_count);
    rr_master_send(self, self->worker_sock, rid, &msg);
    proto_msg_free(&msg);
}

/* A worker key speaks for one worker: the name its certificate gives (auth.h). */
static bool s_hello_key_matches(rr_master_t *self, zframe_t *rid, const proto_hello_t *hello,
                                const rr_auth_peer_t *who)
{
    if (!self->auth || streq(who->name, hello->worker))
        return true;
    rr_warn("auth: refused HELLO as worker '%s' from key %s at %s: that key belongs to "
            "worker '%s'", hello->worker, who->key, who->address, who->name);
    rr_master_send_error(self, self->worker_sock, rid, "denied", "wrk", 0,
                         "this key may only speak for worker '%s', not '%s'", who->name,
                         hello->worker);
    return false;
}

static void s_on_hello(rr_master_t *self, zframe_t *rid, const proto_hello_t *hello,
                       const rr_auth_peer_t *who)
{
    char peer[64];
    rr_peer_name(rid, peer, sizeof peer);
    if (!s_hello_key_matches(self, rid, hello, who))
        return;
    if (!s_versions_overlap(hello)) {
        rr_warn("worker %s (%s): protocol mismatch: worker speaks %u..%u, master %u..%u",
                hello->worker, peer, hello->proto_min, hello->proto_max, PROTO_VERSION_MIN,
                PROTO_VERSION);
        rr_master_send_error(self, self->worker_sock, rid, "version", "pmin", 0,
                             "protocol mismatch: worker speaks %u..%u, master speaks %u..%u",
                             hello->proto_min, hello->proto_max, PROTO_VERSION_MIN, PROTO_VERSION);
        return;
    }
    if (!hello->worker[0]) {
        rr_master_send_error(self, self->worker_sock, rid, "invalid", "wrk", 0,
                             "hello: empty worker name");
        return;
    }
    if (rr_store_worker_hello(self->store, hello, rr_wall_ms()) != RR_STORE_OK) {
        rr_error("worker %s (%s): HELLO: %s", hello->worker, peer, rr_store_error(self->store));
        rr_master_send_error(self, self->worker_sock, rid, "internal", NULL, 0,
                             "hello: store failed");
        return;
    }
    rr_session_t *session = s_session_get(self, hello->worker);
    if (!session || s_session_bind(self, session, rid) != 0) {
        rr_master_send_error(self, self->worker_sock, rid, "internal", NULL, 0, "out of memory");
        return;
    }
    snprintf(session->key, sizeof session->key, "%s", self->auth ? who->key : "");
    s_store_accepts(self);                  /* reconciling reads the accepted flags */
    rr_info("worker %s (%s): online, version %s, %zu devices, %zu jobs", hello->worker, peer,
            hello->version, hello->devices_count, hello->jobs_count);
    s_reconcile_active(self, hello->worker, hello);
    s_cancel_ended(self, hello->worker, hello);
    s_send_welcome(self, rid, hello);
    rr_console_worker_hello(self, hello->worker);
    rr_dispatch_flush(self, hello->worker, true, rr_mono_ms());
    rr_master_schedule(self);
}

/* ---- messages of a live session ---- */

static void s_on_heartbeat(rr_master_t *self, rr_session_t *session, zframe_t *rid,
                           const proto_heartbeat_t *beat)
{
    session->beat_wall = rr_wall_ms();      /* stored by the timer (s_store_beats) */
    bool idle = false;
    for (size_t i = 0; i < beat->changed_count; i++) {
        const proto_devstate_t *change = &beat->changed[i];
        if (rr_store_device_report(self->store, session->name, change) != RR_STORE_OK) {
            rr_warn("worker %s: device %s -> %s: %s", session->name, change->name,
                    change->state, rr_store_error(self->store));
            continue;
        }
        rr_info("worker %s: device %s: %s%s%s", session->name, change->name, change->state,
                change->reason ? ": " : "", change->reason ? change->reason : "");
        idle |= streq(change->state, RR_DEVICE_IDLE);
    }
    proto_msg_t ack = { .type = PROTO_MSG_HEARTBEAT_ACK, .version = PROTO_VERSION };
    ack.u.heartbeat_ack.epoch = self->epoch;
    ack.u.heartbeat_ack.seq = beat->seq;
    rr_master_send(self, self->worker_sock, rid, &ack);
    if (idle)
        rr_master_schedule(self);
}

/* The worker refused JOB_START: back to the queue, unless it is being canceled. */
static void s_on_refused(rr_master_t *self, rr_session_t *session, const proto_job_accept_t *acc)
{
    const char *why = acc->reason ? acc->reason : "no reason given";
    proto_jobinfo_t info = { 0 };
    rr_workers_disown(self, acc->job);      /* it may go to another worker */
    if (rr_store_job_get(self->store, acc->job, &info) != RR_STORE_OK)
        return;
    if (streq(info.state, RR_JOB_CANCELING))
        rr_master_finish_job(self, acc->job, RR_OUTCOME_CANCELED, "canceled before it started");
    else if (streq(info.state, RR_JOB_SCHEDULED) && rr_master_health_is_check(self, acc->job)) {
        /* A health check belongs to its device: it ends (the device stays due). */
        char reason[256];
        snprintf(reason, sizeof reason, "worker refused health check job %" PRIu64 ": %s",
                 acc->job, why);
        rr_master_finish_job(self, acc->job, RR_OUTCOME_CANCELED, reason);
        if (info.device)
            rr_store_device_set_state(self->store, info.device, RR_DEVICE_OFFLINE, reason);
    }
    else if (streq(info.state, RR_JOB_SCHEDULED)
             && rr_store_job_requeue(self->store, acc->job) == RR_STORE_OK) {
        rr_sched_index_mark_stale(self->sched_index);   /* queued again below its newest */
        char reason[256];
        snprintf(reason, sizeof reason, "worker refused job %" PRIu64 ": %s", acc->job, why);
        rr_warn("job %" PRIu64 ": worker %s refused it on %s: %s; queued again, device offline",
                acc->job, session->name, info.device ? info.device : "?", why);
        /* Offline until the worker reports the device again: scheduling the
         * same job on it at once would loop as fast as the worker refuses. */
        if (info.device)
            rr_store_device_set_state(self->store, info.device, RR_DEVICE_OFFLINE, reason);
    }
    rr_store_jobinfo_clear(&info);
    rr_master_schedule(self);
}

static void s_on_accept(rr_master_t *self, rr_session_t *session, zframe_t *rid,
                        const proto_job_accept_t *acc)
{
    rr_dispatch_acked(self, RR_CMD_START, acc->job, NULL);
    if (!acc->ok) {
        s_on_refused(self, session, acc);
        return;
    }
    const char *owner = zhashx_lookup(self->sessions->owners, (const void *) (uintptr_t) acc->job);
    if (owner && streq(owner, session->name)) {     /* the store has it: write it later */
        rr_sessions_t *sessions = self->sessions;
        if (sessions->accept_count == RR_ACCEPTS_MAX)
            s_store_accepts(self);
        if (sessions->accept_count < RR_ACCEPTS_MAX) {
            sessions->accepts[sessions->accept_count++] = acc->job;
            rr_info("job %" PRIu64 ": accepted by worker %s", acc->job, session->name);
            return;
        }
    }
    int rc = rr_store_job_accepted(self->store, acc->job);
    if (rc == RR_STORE_E_NOTFOUND)
        rr_master_send_error(self, self->worker_sock, rid, "not_found", "job", acc->job,
                             "accept: no job %" PRIu64, acc->job);
    else if (rc != RR_STORE_OK)
        rr_warn("job %" PRIu64 ": accept from %s: %s", acc->job, session->name,
                rr_store_error(self->store));
    else
        rr_info("job %" PRIu64 ": accepted by worker %s", acc->job, session->name);
}

/* JOB_CANCEL acknowledged: a job the worker never accepted ends here. */
static void s_on_cancel_acked(rr_master_t *self, rr_session_t *session, uint64_t job)
{
    rr_store_active_t *active = NULL;
    size_t count = 0;
    s_store_accepts(self);
    if (rr_store_jobs_active(self->store, session->name, &active, &count) != RR_STORE_OK)
        return;
    bool never_started = false;
    for (size_t i = 0; i < count; i++)
        if (active[i].job == job)
            never_started = streq(active[i].state, RR_JOB_CANCELING) && !active[i].accepted;
    rr_store_actives_free(&active, count);
    if (never_started && rr_master_finish_job(self, job, RR_OUTCOME_CANCELED,
                                              "canceled before it started") == 0)
        rr_master_schedule(self);
}

static void s_on_ack(rr_master_t *self, rr_session_t *session, zframe_t *rid,
                     const proto_ack_t *ack)
{
    if (streq(ack->of, "jcancel")) {
        if (rr_dispatch_acked(self, RR_CMD_CANCEL, ack->job, NULL))
            s_on_cancel_acked(self, session, ack->job);
    }
    else if (streq(ack->of, "devset") && ack->device)
        rr_dispatch_acked(self, RR_CMD_DEVSET, 0, ack->device);
    else if (streq(ack->of, "consfollow") && ack->device)
        rr_dispatch_acked(self, RR_CMD_CONSFOLLOW, 0, ack->device);
    else
        rr_master_send_error(self, self->worker_sock, rid, "invalid", "of", ack->job,
                             "ack: nothing to acknowledge of '%s'", ack->of);
}

/* The key of RID is no longer allowed: nothing it sends is taken, its session ends. */
static void s_refuse_revoked(rr_master_t *self, zframe_t *rid, const proto_msg_t *msg,
                             const rr_auth_peer_t *who)
{
    rr_warn("auth: refused '%s' from worker key %s at %s: key not in the worker allow-list",
            proto_type_name(msg->type), who->key, who->address);
    rr_session_t *session = s_session_of(self, rid);
    if (session)
        s_drop_revoked(self, session, rr_mono_ms());
    if (msg->type != PROTO_MSG_ERROR)
        rr_master_send_error(self, self->worker_sock, rid, "denied", NULL, 0,
                             "this worker key is not (or no longer) allowed");
}

/* A worker speaks only for its own jobs: JOB of another worker is refused
 * (a job the store does not know is left to the handler's own checks). */
static bool s_job_is_ours(rr_master_t *self, rr_session_t *session, zframe_t *rid,
                          const proto_msg_t *msg, uint64_t job)
{
    const char *owner = zhashx_lookup(self->sessions->owners, (const void *) (uintptr_t) job);
    if (job && owner && streq(owner, session->name))
        return true;                        /* any doubt: the store decides */
    proto_jobinfo_t info = { 0 };
    int rc = rr_store_job_get(self->store, job, &info);
    bool ours = rc != RR_STORE_OK || (info.worker && streq(info.worker, session->name));
    if (!ours) {
        rr_warn("auth: refused '%s' from worker %s (key %s) for job %" PRIu64 " of worker %s",
                proto_type_name(msg->type), session->name, session->key[0] ? session->key : "-",
                job, info.worker ? info.worker : "(none)");
        rr_master_send_error(self, self->worker_sock, rid, "denied", "job", job,
                             "job %" PRIu64 " is not this worker's", job);
    }
    else if (rc == RR_STORE_OK && (streq(info.state, RR_JOB_SCHEDULED)
                                   || streq(info.state, RR_JOB_RUNNING)
                                   || streq(info.state, RR_JOB_CANCELING)))
        rr_workers_own(self, job, session->name);
    rr_store_jobinfo_clear(&info);
    return ours;
}

void rr_workers_on_message(rr_master_t *self, zframe_t *rid, proto_msg_t *msg)
{
    rr_auth_peer_t who = { .key = "" };
    if (self->auth && rr_auth_peer(self->auth, rid, RR_AUTH_DOMAIN_WORKERS, &who) != 0) {
        s_refuse_revoked(self, rid, msg, &who);
        return;
    }
    if (msg->type == PROTO_MSG_HELLO) {
        s_on_hello(self, rid, &msg->u.hello, &who);
        return;
    }
    char peer[64];
    rr_session_t *session = s_session_of(self, rid);
    if (!session) {
        rr_debug("worker %s: '%s' before HELLO", rr_peer_name(rid, peer, sizeof peer),
                 proto_type_name(msg->type));
        if (msg->type != PROTO_MSG_ERROR)
            rr_master_send_error(self, self->worker_sock, rid, "hello_required", NULL, 0,
                                 "say HELLO first (master epoch %" PRIu64 ")", self->epoch);
        return;
    }
    session->last_seen = rr_mono_ms();
    switch (msg->type) {
    case PROTO_MSG_HEARTBEAT:
        s_on_heartbeat(self, session, rid, &msg->u.heartbeat);
        break;
    case PROTO_MSG_JOB_EVENT:
        if (s_job_is_ours(self, session, rid, msg, msg->u.job_event.job))
            rr_events_add(self, rid, &msg->u.job_event);
        break;
    case PROTO_MSG_JOB_ACCEPT:
        if (s_job_is_ours(self, session, rid, msg, msg->u.job_accept.job))
            s_on_accept(self, session, rid, &msg->u.job_accept);
        break;
    case PROTO_MSG_ACK:
        s_on_ack(self, session, rid, &msg->u.ack);
        break;
    case PROTO_MSG_CONSOLE_DATA:
        rr_console_data(self, session->name, &msg->u.console_data);
        break;
    case PROTO_MSG_ARTIFACT_CHUNK:
        if (s_job_is_ours(self, session, rid, msg, msg->u.artifact_chunk.job))
            rr_artifacts_chunk(self, rid, &msg->u.artifact_chunk);
        break;
    case PROTO_MSG_ERROR:
        rr_warn("worker %s: reports error %s: %s", session->name, msg->u.error.code,
                msg->u.error.text);
        break;
    default:
        self->metrics.bad_messages++;
        rr_warn("worker %s (%s): '%s' is not valid on the worker endpoint", session->name,
                rr_peer_name(rid, peer, sizeof peer), proto_type_name(msg->type));
        rr_master_send_error(self, self->worker_sock, rid, "bad_message", "t", 0,
                             "'%s' is not valid on the worker endpoint",
                             proto_type_name(msg->type));
    }
}

/* ---- timer ---- */

static void s_declare_lost(rr_master_t *self, rr_session_t *session, uint64_t now)
{
    session->lost = true;
    session->lost_at = now;
    self->metrics.workers_lost++;
    rr_warn("worker %s: lost: no message for %" PRIu64 " ms; its devices are offline, its jobs "
            "end in %" PRIu64 " ms unless it comes back", session->name, now - session->last_seen,
            self->grace_ms);
    if (rr_store_worker_set_state(self->store, session->name, RR_WORKER_LOST, rr_wall_ms())
        != RR_STORE_OK)
        rr_error("worker %s: %s", session->name, rr_store_error(self->store));
}

/* The grace ran out: the lost worker's jobs end incomplete. */
static void s_expire(rr_master_t *self, rr_session_t *session)
{
    rr_store_active_t *active = NULL;
    size_t count = 0;
    if (rr_store_jobs_active(self->store, session->name, &active, &count) != RR_STORE_OK) {
        rr_error("worker %s: %s", session->name, rr_store_error(self->store));
        return;
    }
    for (size_t i = 0; i < count; i++)
        rr_master_finish_job(self, active[i].job, RR_OUTCOME_INCOMPLETE, "worker lost");
    rr_store_actives_free(&active, count);
}

/* Write the last-seen times of the heartbeats since the last tick, in one
 * transaction. On failure they are kept for the next tick. */
static void s_store_beats(rr_master_t *self)
{
    bool open = false;
    rr_session_t *session = zhashx_first(self->sessions->by_name);
    for (; session; session = zhashx_next(self->sessions->by_name)) {
        if (!session->beat_wall)
            continue;
        if (!open && rr_store_begin(self->store) != RR_STORE_OK) {
            rr_error("workers: heartbeats not stored: %s", rr_store_error(self->store));
            return;
        }
        open = true;
        int rc = rr_store_worker_seen(self->store, session->name, session->beat_wall);
        if (rc != RR_STORE_OK && rc != RR_STORE_E_NOTFOUND) {
            rr_error("workers: heartbeats not stored: %s", rr_store_error(self->store));
            rr_store_rollback(self->store);
            return;
        }
    }
    if (open && rr_store_commit(self->store) != RR_STORE_OK) {
        rr_error("workers: heartbeats not stored: %s", rr_store_error(self->store));
        return;
    }
    for (session = zhashx_first(self->sessions->by_name); session;
         session = zhashx_next(self->sessions->by_name))
        session->beat_wall = 0;
}

void rr_workers_tick(rr_master_t *self, uint64_t now_mono)
{
    s_store_beats(self);
    s_store_accepts(self);

    zlistx_t *expired = zlistx_new();
    rr_session_t *session = zhashx_first(self->sessions->by_name);
    for (; session; session = zhashx_next(self->sessions->by_name)) {
        if (!session->lost && self->auth && session->key[0]
            && !rr_auth_key_allowed(self->auth, RR_AUTH_DOMAIN_WORKERS, session->key))
            s_drop_revoked(self, session, now_mono);
        else if (!session->lost && now_mono - session->last_seen > self->timeout_ms)
            s_declare_lost(self, session, now_mono);
        else if (session->lost && now_mono - session->lost_at >= self->grace_ms && expired)
            zlistx_add_end(expired, session);
    }
    /* Jobs end and sessions go outside the walk: both change the tables. */
    for (session = expired ? zlistx_first(expired) : NULL; session;
         session = zlistx_next(expired)) {
        s_expire(self, session);
        if (session->rid_key)
            zhashx_delete(self->sessions->by_rid, session->rid_key);
        zhashx_delete(self->sessions->by_name, session->name);
    }
    zlistx_destroy(&expired);
}
