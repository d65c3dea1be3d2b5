/* bench_ingest.c: job log ingest through the real master, against a raw
 * baseline, in the same run.
 *
 * rackrun: the master (in-process actor, tests/master/harness.h) and 8
 *   simulated workers on DEALER sockets. Each worker says HELLO with one
 *   device, gets a job (SUBMIT, JOB_START, JOB_ACCEPT, "state running") and
 *   then streams log chunks as JOB_EVENTs with at most RR_WORKER_WINDOW
 *   unacked, as rackrun-worker does. The master decodes, commits in batches
 *   to SQLite (WAL) and answers EVENT_ACK: the clock stops when every event
 *   is acked, so every byte counted is durable.
 * raw: the same 8 DEALERs send the same JOB_EVENTs to a minimal ROUTER loop
 *   that decodes them (proto_recv, the same msgpack) and inserts them into
 *   SQLite (WAL, synchronous=NORMAL like the store) in 1000-row
 *   transactions; no acks, no window. The clock stops at its last commit.
 *
 * Runs alternate raw/rackrun over several rounds; medians are compared.
 * Figures: ingest_{rackrun,raw}_MBps, ingest_ratio (>= 0.6) for 4 KiB
 * chunks; events_small_{rackrun,raw}_per_s, events_small_ratio (>= 0.5)
 * for 64 B chunks. --smoke: a few events, one round. */
#include <czmq.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fleet.h"
#include "harness.h"
#include "report.h"
#include "worker.h"

#define WORKERS        8
#define ROUNDS         3
#define RAW_TX_ROWS    1000
#define RUN_TIMEOUT_MS 120000

typedef struct {
    size_t chunk;               /* bytes per log event */
    size_t events;              /* log events per worker */
} load_t;

typedef struct {
    zsock_t *sock;
    uint64_t job;
    uint64_t next;              /* next seq to send */
    uint64_t acked;             /* highest seq the master acked */
    uint64_t last;              /* last seq of the stream */
} lane_t;

static uint8_t *s_chunk(size_t len)
{
    uint8_t *data = malloc(len);
    for (size_t i = 0; data && i < len; i++)
        data[i] = (uint8_t) ("0123456789abcdef log line\n"[i % 26]);
    return data;
}

/* ---- raw baseline: ROUTER -> decode -> SQLite, 1000 rows a transaction ---- */

typedef struct {
    char path[300];
    size_t expected;
} raw_args_t;

static sqlite3 *s_raw_open(const char *path, sqlite3_stmt **insert)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK
        || sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                        "CREATE TABLE events (job INTEGER NOT NULL, seq INTEGER NOT NULL,"
                        " ts INTEGER NOT NULL, kind TEXT NOT NULL, data BLOB,"
                        " PRIMARY KEY (job, seq));", NULL, NULL, NULL) != SQLITE_OK
        || sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO events VALUES (?1, ?2, ?3, ?4, ?5)", -1,
                              insert, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_ingest: raw: %s: %s\n", path, db ? sqlite3_errmsg(db) : "?");
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static void s_raw_insert(sqlite3_stmt *insert, const proto_job_event_t *ev)
{
    sqlite3_bind_int64(insert, 1, (sqlite3_int64) ev->job);
    sqlite3_bind_int64(insert, 2, (sqlite3_int64) ev->seq);
    sqlite3_bind_int64(insert, 3, (sqlite3_int64) ev->ts);
    sqlite3_bind_text(insert, 4, ev->kind, -1, SQLITE_STATIC);
    sqlite3_bind_blob(insert, 5, ev->data, (int) ev->data_len, SQLITE_STATIC);
    sqlite3_step(insert);
    sqlite3_reset(insert);
}

static void s_raw_server(zsock_t *pipe, void *arg)
{
    raw_args_t *args = arg;
    sqlite3_stmt *insert = NULL;
    sqlite3 *db = s_raw_open(args->path, &insert);
    zsock_t *router = zsock_new_router("tcp://127.0.0.1:*");
    zsock_signal(pipe, 0);
    if (!db || !router) {
        zstr_send(pipe, "ERROR");
        goto done;
    }
    char *endpoint = zsock_last_endpoint(router);
    zstr_send(pipe, endpoint);
    zstr_free(&endpoint);
    zpoller_t *poller = zpoller_new(pipe, router, NULL);
    size_t rows = 0, total = 0;
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    while (poller) {
        void *which = zpoller_wait(poller, -1);
        if (which != router)
            break;                              /* $TERM or interrupted */
        zframe_t *rid = NULL;
        proto_msg_t msg;
        if (proto_recv(router, &rid, &msg, NULL) == 0 && msg.type == PROTO_MSG_JOB_EVENT) {
            s_raw_insert(insert, &msg.u.job_event);
            total++;
            if (++rows == RAW_TX_ROWS || total == args->expected) {
                sqlite3_exec(db, "COMMIT; BEGIN", NULL, NULL, NULL);
                rows = 0;
            }
            if (total == args->expected)
                zstr_send(pipe, "DONE");
        }
        proto_msg_free(&msg);
        zframe_destroy(&rid);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    zpoller_destroy(&poller);
done:
    zsock_destroy(&router);
    sqlite3_finalize(insert);
    sqlite3_close(db);
    if (!zsys_interrupted) {                    /* wait for $TERM, as zactor expects */
        char *command = zstr_recv(pipe);
        zstr_free(&command);
    }
}

/* Seconds to stream LOAD through the raw loop, or -1. */
static double s_run_raw(const load_t *load, const char *dir)
{
    raw_args_t args = { .expected = WORKERS * load->events };
    snprintf(args.path, sizeof args.path, "%s/raw-%d.db", dir, (int) zclock_usecs() % 1000000);
    zactor_t *server = zactor_new(s_raw_server, &args);
    char *endpoint = server ? zstr_recv(server) : NULL;
    lane_t lanes[WORKERS] = { { 0 } };
    uint8_t *data = s_chunk(load->chunk);
    double seconds = -1;
    if (!endpoint || strncmp(endpoint, "tcp://", 6) != 0 || !data)
        goto out;
    for (size_t w = 0; w < WORKERS; w++)
        if (!(lanes[w].sock = peer_new(endpoint, NULL, NULL)))
            goto out;
    zclock_sleep(100);                          /* let the connections come up */
    double start = bench_now();
    for (size_t e = 0; e < load->events; e++)
        for (size_t w = 0; w < WORKERS; w++)
            if (fleet_event(lanes[w].sock, w + 1, e + 1, "log", NULL, NULL, data, load->chunk))
                goto out;
    zsock_set_rcvtimeo(server, RUN_TIMEOUT_MS);
    char *done = zstr_recv(server);
    if (done && streq(done, "DONE"))
        seconds = bench_now() - start;
    zstr_free(&done);
out:
    for (size_t w = 0; w < WORKERS; w++)
        zsock_destroy(&lanes[w].sock);
    zstr_free(&endpoint);
    zactor_destroy(&server);
    free(data);
    return seconds;
}

/* ---- rackrun: the master's real path ---- */

/* Give each lane a running job: HELLO, SUBMIT, JOB_START, ACCEPT, "state running". */
static int s_lanes_start(harness_t *h, lane_t *lanes, zsock_t **socks)
{
    proto_device_t devices[WORKERS];
    char names[WORKERS][32], devnames[WORKERS][32];
    for (size_t w = 0; w < WORKERS; w++) {
        snprintf(names[w], sizeof names[w], "ingest-w%zu", w);
        snprintf(devnames[w], sizeof devnames[w], "ingest-w%zu-d0", w);
        devices[w] = (proto_device_t) { .name = devnames[w], .type = "bench", .state = "idle" };
        if (!(lanes[w].sock = socks[w] = peer_new(h->worker_ep, NULL, NULL))
            || fleet_hello(lanes[w].sock, names[w], &devices[w], 1) != 0)
            return -1;
    }
    if (fleet_expect_all(socks, WORKERS, PROTO_MSG_WELCOME, 10000) != 0)
        return -1;
    zsock_t *client = peer_new(h->client_ep, NULL, NULL);
    char *yaml = fleet_job_yaml("ingest", "bench", "", 50);
    int rc = client && yaml ? 0 : -1;
    for (size_t w = 0; w < WORKERS && rc == 0; w++) {
        uint64_t job;
        rc = fleet_submit(client, yaml, &job);
    }
    free(yaml);
    zsock_destroy(&client);
    for (size_t w = 0; w < WORKERS && rc == 0; w++) {
        proto_msg_t msg;
        rc = peer_expect(lanes[w].sock, PROTO_MSG_JOB_START, 10000, &msg);
        lanes[w].job = msg.u.job_start.job;
        proto_msg_free(&msg);
        proto_msg_t accept = { .type = PROTO_MSG_JOB_ACCEPT, .version = PROTO_VERSION };
        accept.u.job_accept = (proto_job_accept_t) { .job = lanes[w].job, .ok = true };
        if (rc == 0)
            rc = fleet_send(lanes[w].sock, &accept);
        if (rc == 0)
            rc = fleet_event(lanes[w].sock, lanes[w].job, 1, "state", "running", NULL, NULL, 0);
        lanes[w].acked = 0;
        lanes[w].next = 2;
    }
    if (rc == 0)
        rc = fleet_expect_all(socks, WORKERS, PROTO_MSG_EVENT_ACK, 10000);
    for (size_t w = 0; w < WORKERS; w++)
        lanes[w].acked = 1;
    return rc;
}

/* Read what LANE's socket holds: EVENT_ACKs move its window. -1 on ERROR. */
static int s_lane_read(lane_t *lane)
{
    proto_msg_t msg;
    int got;
    while ((got = fleet_recv(lane->sock, 0, &msg)) == 1) {
        if (msg.type == PROTO_MSG_EVENT_ACK && msg.u.event_ack.seq > lane->acked)
            lane->acked = msg.u.event_ack.seq;
        bool error = msg.type == PROTO_MSG_ERROR;
        if (error)
            fprintf(stderr, "bench_ingest: master: %s\n", msg.u.error.text);
        proto_msg_free(&msg);
        if (error)
            return -1;
    }
    return got < 0 ? -1 : 0;
}

/* Stream every lane's log events, at most RR_WORKER_WINDOW unacked each. */
static int s_pump(lane_t *lanes, const uint8_t *data, size_t chunk)
{
    zmq_pollitem_t items[WORKERS];
    for (size_t w = 0; w < WORKERS; w++)
        items[w] = (zmq_pollitem_t) { .socket = zsock_resolve(lanes[w].sock), .events = ZMQ_POLLIN };
    int64_t deadline = zclock_mono() + RUN_TIMEOUT_MS;
    for (;;) {
        bool done = true;
        for (size_t w = 0; w < WORKERS; w++) {
            lane_t *lane = &lanes[w];
            while (lane->next <= lane->last && lane->next - 1 - lane->acked < RR_WORKER_WINDOW)
                if (fleet_event(lane->sock, lane->job, lane->next++, "log", NULL, NULL, data,
                                chunk) != 0)
                    return -1;
            done &= lane->acked == lane->last;
        }
        if (done)
            return 0;
        if (zclock_mono() > deadline) {
            fprintf(stderr, "bench_ingest: rackrun: not every event acked in time\n");
            return -1;
        }
        zmq_poll(items, WORKERS, 1000);
        for (size_t w = 0; w < WORKERS; w++)
            if (s_lane_read(&lanes[w]) != 0)
                return -1;
    }
}

/* Seconds to stream LOAD through the master, or -1. */
static double s_run_rackrun(const load_t *load)
{
    harness_t *h = harness_new();
    lane_t lanes[WORKERS] = { { 0 } };
    zsock_t *socks[WORKERS] = { 0 };
    uint8_t *data = s_chunk(load->chunk);
    double seconds = -1;
    if (!h || !data)
        goto out;
    h->config->heartbeat_interval_ms = 1000;
    h->config->heartbeat_timeout_ms = 60000;   /* the streams keep the sessions alive anyway */
    if (harness_start(h) != 0) {
        fprintf(stderr, "bench_ingest: master: %s\n", h->start_error);
        goto out;
    }
    if (s_lanes_start(h, lanes, socks) != 0)
        goto out;
    for (size_t w = 0; w < WORKERS; w++)
        lanes[w].last = 1 + load->events;
    double start = bench_now();
    if (s_pump(lanes, data, load->chunk) == 0)
        seconds = bench_now() - start;
out:
    for (size_t w = 0; w < WORKERS; w++)
        zsock_destroy(&lanes[w].sock);
    harness_destroy(&h);
    free(data);
    return seconds;
}

/* ---- the comparison ---- */

/* Medians of ROUNDS alternating runs into RAW_S and RACKRUN_S. 0 or -1. */
static int s_compare(const load_t *load, size_t rounds, const char *dir, double *raw_s,
                     double *rackrun_s)
{
    double raw[ROUNDS], ours[ROUNDS];
    for (size_t r = 0; r < rounds; r++) {
        raw[r] = s_run_raw(load, dir);
        ours[r] = s_run_rackrun(load);
        fprintf(stderr, "bench_ingest: %zu B x %zu x %d: round %zu: raw %.3f s, rackrun %.3f s\n",
                load->chunk, load->events, WORKERS, r + 1, raw[r], ours[r]);
        if (raw[r] < 0 || ours[r] < 0)
            return -1;
    }
    *raw_s = bench_median(raw, rounds);
    *rackrun_s = bench_median(ours, rounds);
    return 0;
}

int main(int argc, char **argv)
{
    bool smoke = bench_smoke(argc, argv);
    rr_log_init("bench-master", RR_LOG_WARN);
    zsys_init();
    zsys_set_linger(0);
    size_t rounds = smoke ? 1 : ROUNDS;
    load_t big = { .chunk = 4096, .events = smoke ? 64 : 2048 };
    load_t small = { .chunk = 64, .events = smoke ? 256 : 16384 };
    char dir[] = "/tmp/rr-bench-ingest-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    double raw_s, ours_s, raw_small_s, ours_small_s;
    int rc = s_compare(&big, rounds, dir, &raw_s, &ours_s);
    if (rc == 0)
        rc = s_compare(&small, rounds, dir, &raw_small_s, &ours_small_s);
    zdir_t *scratch = zdir_new(dir, NULL);
    if (scratch) {
        zdir_remove(scratch, true);
        zdir_destroy(&scratch);
    }
    if (rc != 0) {
        fprintf(stderr, "bench_ingest: failed\n");
        return 1;
    }
    double big_mb = (double) (WORKERS * big.events * big.chunk) / 1e6;
    double small_events = (double) (WORKERS * small.events);
    if (smoke)
        bench_note("ingest: smoke run, %zu and %zu events per worker", big.events, small.events);
    bench_info("ingest_raw_MBps", big_mb / raw_s, "MB/s");
    bench_info("ingest_rackrun_MBps", big_mb / ours_s, "MB/s");
    bench_result("ingest_ratio", raw_s / ours_s, "ratio", ">=", 0.6);
    bench_info("events_small_raw_per_s", small_events / raw_small_s, "events/s");
    bench_info("events_small_rackrun_per_s", small_events / ours_small_s, "events/s");
    bench_result("events_small_ratio", raw_small_s / ours_small_s, "ratio", ">=", 0.5);
    return 0;
}
