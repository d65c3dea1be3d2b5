/* test_store.c: the master's SQLite store: durability settings, job and
 * event round trips, contiguous acks, state transitions, reload after close. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "store_fixture.h"

#define STORE(f) ((fixture_t *) *state)->store

static void assert_ok(rr_store_t *store, int rc)
{
    if (rc != RR_STORE_OK)
        fail_msg("store: %d: %s", rc, rr_store_error(store));
}

/* Append events, expect exactly one job in the batch, return its ack. */
static rr_store_ack_t append_one(rr_store_t *store, const proto_job_event_t *events, size_t n)
{
    rr_store_ack_t *acks = NULL;
    size_t count = 0;
    assert_ok(store, rr_store_events_append(store, events, n, &acks, &count));
    assert_int_equal(count, 1);
    rr_store_ack_t ack = acks[0];
    free(acks);
    return ack;
}

static void test_open_uses_wal_and_the_latest_schema_version(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(rr_store_journal_mode(f->store), "wal");
    /* 2: artifacts, 3: health checks, 4: job specs apart */
    assert_int_equal(rr_store_schema_version(f->store), 6);
    /* Ask SQLite itself, through a second connection, that the file is WAL. */
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *) sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_open_fails_with_context_on_unwritable_path(void **state)
{
    char err[512] = "";
    rr_store_t *store = rr_store_open("/nonexistent-dir/x/master.db", err, sizeof err);
    assert_null(store);
    assert_non_null(strstr(err, "/nonexistent-dir/x/master.db"));
}

static void test_job_round_trips_info_yaml_and_definition(void **state)
{
    fixture_t *f = *state;
    proto_jobdef_t *def = fixture_def("highbank smoke", "highbank", 75, "sata,eth");
    uint64_t id = 0;
    assert_ok(f->store, rr_store_job_insert(f->store, "job_name: highbank smoke\n", def,
                                            1234, &id));
    assert_true(id > 0);

    proto_jobinfo_t info;
    assert_ok(f->store, rr_store_job_get(f->store, id, &info));
    assert_int_equal(info.id, id);
    assert_string_equal(info.name, "highbank smoke");
    assert_string_equal(info.state, RR_JOB_QUEUED);
    assert_string_equal(info.device_type, "highbank");
    assert_int_equal(info.priority, 75);
    assert_int_equal(info.submitted, 1234);
    assert_null(info.outcome);
    assert_null(info.device);
    rr_store_jobinfo_clear(&info);

    char *yaml = NULL;
    assert_ok(f->store, rr_store_job_yaml(f->store, id, &yaml));
    assert_string_equal(yaml, "job_name: highbank smoke\n");
    free(yaml);

    proto_jobdef_t *back = NULL;
    assert_ok(f->store, rr_store_job_def(f->store, id, &back));
    assert_string_equal(back->name, "highbank smoke");
    assert_int_equal(back->tags_count, 2);
    assert_int_equal(back->actions_count, 1);
    assert_string_equal(back->actions[0].method, "ipmi-pxe");
    proto_jobdef_destroy(&back);
    proto_jobdef_destroy(&def);
}

static void test_job_get_unknown_id_is_not_found(void **state)
{
    proto_jobinfo_t info;
    assert_int_equal(rr_store_job_get(STORE(f), 999, &info), RR_STORE_E_NOTFOUND);
    assert_non_null(strstr(rr_store_error(STORE(f)), "job 999"));
}

static void test_jobs_list_filters_by_state_newest_first(void **state)
{
    fixture_t *f = *state;
    uint64_t a = fixture_job(f, "highbank", 50, "", 1);
    uint64_t b = fixture_job(f, "highbank", 50, "", 2);
    uint64_t c = fixture_job(f, "highbank", 50, "", 3);
    assert_ok(f->store, rr_store_job_cancel(f->store, b, 10, NULL));

    proto_jobinfo_t *jobs;
    size_t count;
    assert_ok(f->store, rr_store_jobs_list(f->store, RR_JOB_QUEUED, 0, &jobs, &count));
    assert_int_equal(count, 2);
    assert_int_equal(jobs[0].id, c);
    assert_int_equal(jobs[1].id, a);
    rr_store_jobinfos_free(&jobs, count);
    assert_null(jobs);

    assert_ok(f->store, rr_store_jobs_list(f->store, NULL, 2, &jobs, &count));
    assert_int_equal(count, 2);
    assert_int_equal(jobs[0].id, c);
    rr_store_jobinfos_free(&jobs, count);

    assert_int_equal(rr_store_jobs_list(f->store, "sleeping", 0, &jobs, &count),
                     RR_STORE_E_INVALID);
}

static void test_duplicate_events_are_ignored(void **state)
{
    fixture_t *f = *state;
    uint64_t job = fixture_job(f, "highbank", 50, "", 1);
    proto_job_event_t first[] = { fixture_event(job, 1, "log", NULL, NULL),
                                  fixture_event(job, 2, "log", NULL, NULL) };
    rr_store_ack_t ack = append_one(f->store, first, 2);
    assert_int_equal(ack.inserted, 2);
    assert_int_equal(ack.acked_seq, 2);

    /* A resend after a lost ack: same seqs, different content: the first copy wins. */
    proto_job_event_t again[] = { fixture_event(job, 2, "result", "x", "fail"),
                                  fixture_event(job, 2, "result", "y", "pass") };
    ack = append_one(f->store, again, 2);
    assert_int_equal(ack.inserted, 0);
    assert_int_equal(ack.acked_seq, 2);

    proto_job_event_t *events;
    size_t count;
    assert_ok(f->store, rr_store_events_read(f->store, job, 0, 0, &events, &count));
    assert_int_equal(count, 2);
    assert_string_equal(events[1].kind, "log");
    rr_store_events_free(&events, count);
}

static void test_acked_seq_stops_at_gap_then_advances(void **state)
{
    fixture_t *f = *state;
    uint64_t job = fixture_job(f, "highbank", 50, "", 1);
    proto_job_event_t gap[] = { fixture_event(job, 1, "log", NULL, NULL),
                                fixture_event(job, 2, "log", NULL, NULL),
                                fixture_event(job, 4, "log", NULL, NULL) };
    rr_store_ack_t ack = append_one(f->store, gap, 3);
    assert_int_equal(ack.inserted, 3);
    assert_int_equal(ack.acked_seq, 2);

    proto_job_event_t fill[] = { fixture_event(job, 3, "log", NULL, NULL) };
    ack = append_one(f->store, fill, 1);
    assert_int_equal(ack.acked_seq, 4);

    uint64_t seq = 0;
    assert_ok(f->store, rr_store_events_acked(f->store, job, &seq));
    assert_int_equal(seq, 4);
}

static void test_batch_acks_each_job_separately(void **state)
{
    fixture_t *f = *state;
    uint64_t a = fixture_job(f, "highbank", 50, "", 1);
    uint64_t b = fixture_job(f, "highbank", 50, "", 1);
    proto_job_event_t events[] = { fixture_event(a, 1, "log", NULL, NULL),
                                   fixture_event(b, 2, "log", NULL, NULL),
                                   fixture_event(a, 2, "log", NULL, NULL),
                                   fixture_event(9999, 1, "log", NULL, NULL) };
    rr_store_ack_t *acks;
    size_t count;
    assert_ok(f->store, rr_store_events_append(f->store, events, 4, &acks, &count));
    assert_int_equal(count, 3);
    assert_int_equal(acks[0].job, a);
    assert_int_equal(acks[0].acked_seq, 2);
    assert_int_equal(acks[1].job, b);
    assert_int_equal(acks[1].acked_seq, 0);     /* seq 1 of b is still missing */
    assert_int_equal(acks[1].inserted, 1);
    assert_int_equal(acks[2].job, 9999);
    assert_true(acks[2].unknown);
    assert_int_equal(acks[2].inserted, 0);
    free(acks);
}

static void test_events_read_returns_fields_and_data_after_from_seq(void **state)
{
    fixture_t *f = *state;
    uint64_t job = fixture_job(f, "highbank", 50, "", 1);
    static const uint8_t bytes[] = { 'o', 'k', 0, 0xff, '\n' };
    proto_job_event_t events[] = { fixture_event(job, 1, "log", NULL, NULL),
                                   fixture_event(job, 2, "log", NULL, NULL),
                                   fixture_event(job, 3, "result", "disk", "pass") };
    events[1].data = (uint8_t *) bytes;
    events[1].data_len = sizeof bytes;
    events[2].code = -3;
    events[2].measurement = (char *) "12.5";
    events[2].units = (char *) "MB/s";
    append_one(f->store, events, 3);

    proto_job_event_t *back;
    size_t count;
    assert_ok(f->store, rr_store_events_read(f->store, job, 1, 0, &back, &count));
    assert_int_equal(count, 2);
    assert_int_equal(back[0].seq, 2);
    assert_int_equal(back[0].data_len, sizeof bytes);
    assert_memory_equal(back[0].data, bytes, sizeof bytes);
    assert_string_equal(back[1].name, "disk");
    assert_string_equal(back[1].value, "pass");
    assert_int_equal(back[1].code, -3);
    assert_string_equal(back[1].measurement, "12.5");
    assert_string_equal(back[1].units, "MB/s");
    assert_int_equal(back[1].ts, 5003);
    rr_store_events_free(&back, count);

    assert_ok(f->store, rr_store_events_read(f->store, job, 0, 1, &back, &count));
    assert_int_equal(count, 1);
    assert_int_equal(back[0].seq, 1);
    rr_store_events_free(&back, count);
}

static void test_running_and_end_events_move_job_and_device(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t job = fixture_job(f, "highbank", 50, "", 1);
    assert_ok(f->store, rr_store_job_assign(f->store, job, "hb01", "rack01"));

    proto_job_event_t start[] = { fixture_event(job, 1, "state", "running", NULL) };
    rr_store_ack_t ack = append_one(f->store, start, 1);
    assert_true(ack.started);
    proto_deviceinfo_t dev;
    assert_ok(f->store, rr_store_device_get(f->store, "hb01", &dev));
    assert_string_equal(dev.state, RR_DEVICE_RUNNING);
    assert_int_equal(dev.job, job);
    rr_store_deviceinfo_clear(&dev);

    proto_job_event_t end[] = { fixture_event(job, 2, "end", NULL, "incomplete") };
    end[0].reason = (char *) "boot: no prompt '# ' within 300 s";
    ack = append_one(f->store, end, 1);
    assert_true(ack.finished);

    proto_jobinfo_t info;
    assert_ok(f->store, rr_store_job_get(f->store, job, &info));
    assert_string_equal(info.state, RR_JOB_FINISHED);
    assert_string_equal(info.outcome, RR_OUTCOME_INCOMPLETE);
    assert_string_equal(info.reason, "boot: no prompt '# ' within 300 s");
    assert_int_equal(info.started, 5001);
    assert_int_equal(info.ended, 5002);
    rr_store_jobinfo_clear(&info);
    assert_ok(f->store, rr_store_device_get(f->store, "hb01", &dev));
    assert_string_equal(dev.state, RR_DEVICE_IDLE);
    assert_int_equal(dev.job, 0);
    rr_store_deviceinfo_clear(&dev);

    /* The end event resent after a lost ack changes nothing. */
    ack = append_one(f->store, end, 1);
    assert_false(ack.finished);
    assert_int_equal(ack.acked_seq, 2);
}

static void test_cancel_queued_ends_at_once_running_goes_canceling(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t queued = fixture_job(f, "highbank", 50, "", 1);
    uint64_t running = fixture_job(f, "highbank", 50, "", 1);
    assert_ok(f->store, rr_store_job_assign(f->store, running, "hb01", "rack01"));
    assert_ok(f->store, rr_store_job_running(f->store, running, 7));

    const char *now = NULL;
    assert_ok(f->store, rr_store_job_cancel(f->store, queued, 9, &now));
    assert_string_equal(now, RR_JOB_FINISHED);
    proto_jobinfo_t info;
    assert_ok(f->store, rr_store_job_get(f->store, queued, &info));
    assert_string_equal(info.outcome, RR_OUTCOME_CANCELED);
    rr_store_jobinfo_clear(&info);

    assert_ok(f->store, rr_store_job_cancel(f->store, running, 9, &now));
    assert_string_equal(now, RR_JOB_CANCELING);
    assert_int_equal(rr_store_job_cancel(f->store, running, 9, &now), RR_STORE_E_STATE);
    assert_int_equal(rr_store_job_cancel(f->store, queued, 9, &now), RR_STORE_E_STATE);
    assert_non_null(strstr(rr_store_error(f->store), "already finished"));
}

static void test_requeue_returns_job_to_queue_and_frees_device(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t job = fixture_job(f, "highbank", 50, "", 1);
    assert_ok(f->store, rr_store_job_assign(f->store, job, "hb01", "rack01"));
    assert_ok(f->store, rr_store_job_requeue(f->store, job));
    proto_jobinfo_t info;
    assert_ok(f->store, rr_store_job_get(f->store, job, &info));
    assert_string_equal(info.state, RR_JOB_QUEUED);
    assert_null(info.device);
    rr_store_jobinfo_clear(&info);
    proto_deviceinfo_t dev;
    assert_ok(f->store, rr_store_device_get(f->store, "hb01", &dev));
    assert_string_equal(dev.state, RR_DEVICE_IDLE);
    rr_store_deviceinfo_clear(&dev);
    assert_int_equal(rr_store_job_requeue(f->store, job), RR_STORE_E_STATE);
}

static void test_assign_refuses_a_device_that_is_not_idle(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::maintenance", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t job = fixture_job(f, "highbank", 50, "", 1);
    assert_int_equal(rr_store_job_assign(f->store, job, "hb01", "rack01"), RR_STORE_E_STATE);
    assert_non_null(strstr(rr_store_error(f->store), "hb01"));
    /* Rolled back: the job is still queued. */
    proto_jobinfo_t info;
    assert_ok(f->store, rr_store_job_get(f->store, job, &info));
    assert_string_equal(info.state, RR_JOB_QUEUED);
    rr_store_jobinfo_clear(&info);
}

static void test_hello_keeps_operator_state_and_open_jobs(void **state)
{
    fixture_t *f = *state;
    const char *const first[] = { "hb01:highbank:sata:idle", "hb02:highbank::idle",
                                  "hb03:highbank::idle", NULL };
    fixture_hello(f, "rack01", first);
    assert_ok(f->store, rr_store_device_set_state(f->store, "hb02", RR_DEVICE_MAINTENANCE,
                                                  "fan noise"));
    uint64_t job = fixture_job(f, "highbank", 50, "", 1);
    assert_ok(f->store, rr_store_job_assign(f->store, job, "hb01", "rack01"));
    assert_ok(f->store, rr_store_worker_set_state(f->store, "rack01", RR_WORKER_LOST, 2));

    /* The worker comes back, reporting every device idle, hb03 gone. */
    const char *const again[] = { "hb01:highbank:sata+usb:idle", "hb02:highbank::idle", NULL };
    fixture_hello(f, "rack01", again);
    proto_deviceinfo_t *devs;
    size_t count;
    assert_ok(f->store, rr_store_devices_list(f->store, "rack01", &devs, &count));
    assert_int_equal(count, 3);
    assert_string_equal(devs[0].state, RR_DEVICE_RESERVED);
    assert_int_equal(devs[0].job, job);
    assert_int_equal(devs[0].tags_count, 2);
    assert_string_equal(devs[0].tags[0], "sata");
    assert_string_equal(devs[0].tags[1], "usb");
    assert_string_equal(devs[1].state, RR_DEVICE_MAINTENANCE);
    assert_string_equal(devs[1].reason, "fan noise");
    assert_string_equal(devs[2].state, RR_DEVICE_OFFLINE);
    assert_non_null(strstr(devs[2].reason, "no longer configured"));
    rr_store_deviceinfos_free(&devs, count);
}

static void test_worker_lost_takes_its_devices_offline(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", "hb02:highbank::maintenance", NULL };
    fixture_hello(f, "rack01", devs);
    assert_ok(f->store, rr_store_worker_set_state(f->store, "rack01", RR_WORKER_LOST, 2));
    proto_deviceinfo_t dev;
    assert_ok(f->store, rr_store_device_get(f->store, "hb01", &dev));
    assert_string_equal(dev.state, RR_DEVICE_OFFLINE);
    assert_string_equal(dev.reason, "worker rack01 lost");
    rr_store_deviceinfo_clear(&dev);
    assert_ok(f->store, rr_store_device_get(f->store, "hb02", &dev));
    assert_string_equal(dev.state, RR_DEVICE_MAINTENANCE);
    rr_store_deviceinfo_clear(&dev);

    proto_workerinfo_t *workers;
    size_t count;
    assert_ok(f->store, rr_store_workers_list(f->store, NULL, 4000, &workers, &count));
    assert_int_equal(count, 1);
    assert_string_equal(workers[0].state, RR_WORKER_LOST);
    assert_int_equal(workers[0].heartbeat_age_ms, 3000);
    assert_int_equal(workers[0].device_count, 2);
    rr_store_workerinfos_free(&workers, count);
    assert_int_equal(rr_store_worker_set_state(f->store, "nobody", RR_WORKER_LOST, 2),
                     RR_STORE_E_NOTFOUND);
}

static void test_device_report_follows_worker_unless_master_holds_it(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    proto_devstate_t bad = { .name = (char *) "hb01", .state = (char *) "bad",
                             .reason = (char *) "health check failed" };
    assert_ok(f->store, rr_store_device_report(f->store, "rack01", &bad));
    proto_deviceinfo_t dev;
    assert_ok(f->store, rr_store_device_get(f->store, "hb01", &dev));
    assert_string_equal(dev.state, RR_DEVICE_BAD);
    assert_string_equal(dev.reason, "health check failed");
    rr_store_deviceinfo_clear(&dev);
    assert_int_equal(rr_store_device_report(f->store, "rack02", &bad), RR_STORE_E_NOTFOUND);
}

static void test_idle_on_a_device_with_an_open_job_keeps_it_held(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t job = fixture_job(f, "highbank", 50, "", 1);
    uint64_t next = fixture_job(f, "highbank", 50, "", 2);
    assert_ok(f->store, rr_store_job_assign(f->store, job, "hb01", "rack01"));
    assert_ok(f->store, rr_store_job_running(f->store, job, 3));
    assert_ok(f->store, rr_store_device_set_state(f->store, "hb01", RR_DEVICE_MAINTENANCE, "x"));
    assert_ok(f->store, rr_store_device_set_state(f->store, "hb01", RR_DEVICE_IDLE, NULL));
    proto_deviceinfo_t dev;
    assert_ok(f->store, rr_store_device_get(f->store, "hb01", &dev));
    assert_string_equal(dev.state, RR_DEVICE_RUNNING);
    assert_int_equal(dev.job, job);
    rr_store_deviceinfo_clear(&dev);
    assert_int_equal(rr_store_job_assign(f->store, next, "hb01", "rack01"), RR_STORE_E_STATE);
}

/* Hc jobs of DEVICE (jobs started on it and finished since its last check). */
static uint64_t hc_jobs(rr_store_t *store, const char *device)
{
    rr_store_health_t health;
    assert_ok(store, rr_store_health_get(store, device, &health));
    uint64_t jobs = health.jobs_since;
    rr_store_health_clear(&health);
    return jobs;
}

static void test_running_and_end_in_one_batch_store_state_and_acked_seq(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t job = fixture_job(f, "highbank", 50, "", 1);
    assert_ok(f->store, rr_store_job_assign(f->store, job, "hb01", "rack01"));
    proto_job_event_t events[] = { fixture_event(job, 1, "state", "running", NULL),
                                   fixture_event(job, 2, "log", NULL, NULL),
                                   fixture_event(job, 3, "end", NULL, "complete") };
    rr_store_ack_t ack = append_one(f->store, events, 3);
    assert_true(ack.started);
    assert_true(ack.finished);
    assert_int_equal(ack.acked_seq, 3);
    /* One write by the end, carrying the start time of the running event. */
    proto_jobinfo_t ended;
    assert_ok(f->store, rr_store_job_get(f->store, job, &ended));
    assert_int_equal(ended.started, 5001);
    assert_int_equal(ended.ended, 5003);
    rr_store_jobinfo_clear(&ended);

    fixture_reopen(f);
    uint64_t seq = 0;
    assert_ok(f->store, rr_store_events_acked(f->store, job, &seq));
    assert_int_equal(seq, 3);
    proto_jobinfo_t info;
    assert_ok(f->store, rr_store_job_get(f->store, job, &info));
    assert_string_equal(info.state, RR_JOB_FINISHED);
    assert_string_equal(info.outcome, RR_OUTCOME_COMPLETE);
    rr_store_jobinfo_clear(&info);
    proto_deviceinfo_t dev;
    assert_ok(f->store, rr_store_device_get(f->store, "hb01", &dev));
    assert_string_equal(dev.state, RR_DEVICE_IDLE);
    assert_int_equal(dev.job, 0);
    rr_store_deviceinfo_clear(&dev);
    assert_int_equal(hc_jobs(f->store, "hb01"), 1);
}

static void test_end_before_a_gap_acks_below_the_gap_then_after_the_fill(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t job = fixture_job(f, "highbank", 50, "", 1);
    assert_ok(f->store, rr_store_job_assign(f->store, job, "hb01", "rack01"));
    proto_job_event_t events[] = { fixture_event(job, 1, "state", "running", NULL),
                                   fixture_event(job, 3, "end", NULL, "fail") };
    rr_store_ack_t ack = append_one(f->store, events, 2);
    assert_true(ack.finished);
    assert_int_equal(ack.acked_seq, 1);
    uint64_t seq = 0;
    assert_ok(f->store, rr_store_events_acked(f->store, job, &seq));
    assert_int_equal(seq, 1);

    proto_job_event_t fill[] = { fixture_event(job, 2, "log", NULL, NULL) };
    ack = append_one(f->store, fill, 1);
    assert_false(ack.finished);
    assert_int_equal(ack.acked_seq, 3);
    fixture_reopen(f);
    assert_ok(f->store, rr_store_events_acked(f->store, job, &seq));
    assert_int_equal(seq, 3);
}

static void test_reopen_reloads_everything(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank:sata:idle", "hb02:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t running = fixture_job(f, "highbank", 60, "sata", 1);
    uint64_t queued = fixture_job(f, "highbank", 40, "", 2);
    assert_ok(f->store, rr_store_job_assign(f->store, running, "hb01", "rack01"));
    assert_ok(f->store, rr_store_job_accepted(f->store, running));
    proto_job_event_t events[] = { fixture_event(running, 1, "state", "running", NULL),
                                   fixture_event(running, 2, "log", NULL, NULL),
                                   fixture_event(running, 4, "log", NULL, NULL) };
    append_one(f->store, events, 3);
    assert_ok(f->store, rr_store_device_set_state(f->store, "hb02", RR_DEVICE_MAINTENANCE,
                                                  "rewiring"));

    fixture_reopen(f);

    rr_store_active_t *active;
    size_t count;
    assert_ok(f->store, rr_store_jobs_active(f->store, "rack01", &active, &count));
    assert_int_equal(count, 1);
    assert_int_equal(active[0].job, running);
    assert_string_equal(active[0].state, RR_JOB_RUNNING);
    assert_string_equal(active[0].device, "hb01");
    assert_true(active[0].accepted);
    assert_int_equal(active[0].acked_seq, 2);
    rr_store_actives_free(&active, count);

    proto_jobinfo_t info;
    assert_ok(f->store, rr_store_job_get(f->store, queued, &info));
    assert_string_equal(info.state, RR_JOB_QUEUED);
    assert_int_equal(info.priority, 40);
    rr_store_jobinfo_clear(&info);

    proto_deviceinfo_t *list;
    assert_ok(f->store, rr_store_devices_list(f->store, NULL, &list, &count));
    assert_int_equal(count, 2);
    assert_string_equal(list[0].state, RR_DEVICE_RUNNING);
    assert_string_equal(list[1].state, RR_DEVICE_MAINTENANCE);
    assert_string_equal(list[1].reason, "rewiring");
    rr_store_deviceinfos_free(&list, count);

    proto_job_event_t *back;
    assert_ok(f->store, rr_store_events_read(f->store, running, 0, 0, &back, &count));
    assert_int_equal(count, 3);
    rr_store_events_free(&back, count);

    /* The missing seq 3 arrives after the restart: the ack jumps to 4. */
    proto_job_event_t fill[] = { fixture_event(running, 3, "log", NULL, NULL) };
    rr_store_ack_t ack = append_one(f->store, fill, 1);
    assert_int_equal(ack.acked_seq, 4);
    uint64_t queued_count = 0;
    assert_ok(f->store, rr_store_jobs_count(f->store, RR_JOB_QUEUED, &queued_count));
    assert_int_equal(queued_count, 1);
}

static void test_nested_transactions_roll_back_inner_only(void **state)
{
    fixture_t *f = *state;
    assert_ok(f->store, rr_store_begin(f->store));
    uint64_t kept = fixture_job(f, "highbank", 50, "", 1);
    assert_ok(f->store, rr_store_begin(f->store));
    uint64_t dropped = fixture_job(f, "highbank", 50, "", 1);
    assert_ok(f->store, rr_store_rollback(f->store));
    assert_ok(f->store, rr_store_commit(f->store));
    proto_jobinfo_t info;
    assert_ok(f->store, rr_store_job_get(f->store, kept, &info));
    rr_store_jobinfo_clear(&info);
    assert_int_equal(rr_store_job_get(f->store, dropped, &info), RR_STORE_E_NOTFOUND);
    assert_int_equal(rr_store_commit(f->store), RR_STORE_E_STATE);
}

static void test_queue_oldest_tells_an_empty_queue_from_a_job_submitted_at_zero(void **state)
{
    fixture_t *f = *state;
    bool queued = true;
    uint64_t oldest = 99;
    assert_ok(f->store, rr_store_queue_oldest(f->store, &queued, &oldest));
    assert_false(queued);
    assert_int_equal(oldest, 0);
    uint64_t first = fixture_job(f, "highbank", 50, "", 0);
    fixture_job(f, "highbank", 90, "", 7);
    assert_ok(f->store, rr_store_queue_oldest(f->store, &queued, &oldest));
    assert_true(queued);
    assert_int_equal(oldest, 0);
    assert_ok(f->store, rr_store_job_cancel(f->store, first, 8, NULL));
    assert_ok(f->store, rr_store_queue_oldest(f->store, &queued, &oldest));
    assert_true(queued);
    assert_int_equal(oldest, 7);
}

/* Run SQL on the database at PATH through a connection of its own. */
/* Insert a job into a version-3 database (YAML and definition in the jobs row). */
static void v3_job(const char *path, uint64_t id, const char *state, const char *yaml,
                   const proto_jobdef_t *def)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    proto_error_t perr;
    assert_int_equal(proto_jobdef_encode(def, &blob, &len, &perr), 0);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO jobs (id, name, device_type, tags,"
                                        " priority, state, outcome, yaml, def, submitted_ms,"
                                        " ended_ms) VALUES (?1, ?2, ?3, 'sata', ?4, ?5,"
                                        " CASE ?5 WHEN 'finished' THEN 'complete' END, ?6, ?7,"
                                        " 100 + ?1, 0)", -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_int64(s, 1, (sqlite3_int64) id);
    sqlite3_bind_text(s, 2, def->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, def->device_type, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, (int) def->priority);
    sqlite3_bind_text(s, 5, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, yaml, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 7, blob, (int) len, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
    free(blob);
}

/* The fixture's database made anew at schema VERSION (an older master's),
 * open; the fixture's own store is closed (NULL). */
static rr_store_t *store_at_version(fixture_t *f, int version)
{
    rr_store_destroy(&f->store);
    static const char *const suffixes[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s%s", f->path, suffixes[i]);
        unlink(path);
    }
    char err[512] = "";
    rr_store_options_t options = { .schema_version = version };
    rr_store_t *old = rr_store_open_with(f->path, &options, err, sizeof err);
    if (!old)
        fail_msg("open at version %d: %s", version, err);
    assert_int_equal(rr_store_schema_version(old), version);
    return old;
}

static void test_upgrade_from_version_3_keeps_jobs_yaml_and_definitions(void **state)
{
    fixture_t *f = *state;
    rr_store_t *old = store_at_version(f, 3);
    rr_store_t *latest = f->store;
    f->store = old;                             /* HELLO's statements exist in version 3 */
    const char *const devs[] = { "hb01:highbank:sata:idle", "mid01:midway::maintenance", NULL };
    fixture_hello(f, "rack01", devs);
    f->store = latest;
    rr_store_destroy(&old);
    proto_jobdef_t *done = fixture_def("old done", "highbank", 20, "sata");
    proto_jobdef_t *waiting = fixture_def("old queued", "midway", 70, "sata,usb");
    v3_job(f->path, 7, RR_JOB_FINISHED, "job_name: old done\n", done);
    v3_job(f->path, 9, RR_JOB_QUEUED, "job_name: old queued\n", waiting);
    fixture_raw_exec(f->path, "INSERT INTO events (job, seq, ts, kind, name) VALUES (7, 1, 5, 'state',"
                      " 'running')");
    fixture_raw_exec(f->path, "UPDATE devices SET hc_jobs = 3, hc_due = 0 WHERE name = 'hb01'");
    /* Job 11 was submitted and is gone: its id is never given again. */
    fixture_raw_exec(f->path, "UPDATE sqlite_sequence SET seq = 11 WHERE name = 'jobs'");

    fixture_reopen(f);                          /* the new master: version 5 */
    assert_int_equal(rr_store_schema_version(f->store), 6);
    proto_jobinfo_t info;
    assert_ok(f->store, rr_store_job_get(f->store, 7, &info));
    assert_string_equal(info.name, "old done");
    assert_string_equal(info.state, RR_JOB_FINISHED);
    assert_string_equal(info.outcome, RR_OUTCOME_COMPLETE);
    assert_int_equal(info.submitted, 107);
    rr_store_jobinfo_clear(&info);
    char *yaml = NULL;
    assert_ok(f->store, rr_store_job_yaml(f->store, 9, &yaml));
    assert_string_equal(yaml, "job_name: old queued\n");
    free(yaml);
    proto_jobdef_t *back = NULL;
    assert_ok(f->store, rr_store_job_def(f->store, 7, &back));
    assert_string_equal(back->name, "old done");
    assert_int_equal(back->priority, 20);
    assert_int_equal(back->tags_count, 1);
    assert_string_equal(back->actions[0].method, "ipmi-pxe");
    proto_jobdef_destroy(&back);
    proto_job_event_t *events = NULL;
    size_t count = 0;
    assert_ok(f->store, rr_store_events_read(f->store, 7, 0, 0, &events, &count));
    assert_int_equal(count, 1);
    rr_store_events_free(&events, count);
    uint64_t queued = 0;
    assert_ok(f->store, rr_store_jobs_count(f->store, RR_JOB_QUEUED, &queued));
    assert_int_equal(queued, 1);
    /* Devices are rebuilt without their job's foreign key: all still there. */
    proto_deviceinfo_t *idle = NULL;
    assert_ok(f->store, rr_store_devices_idle(f->store, &idle, &count));
    assert_int_equal(count, 1);
    assert_string_equal(idle[0].name, "hb01");
    assert_string_equal(idle[0].tags[0], "sata");
    rr_store_deviceinfos_free(&idle, count);
    proto_deviceinfo_t dev;
    assert_ok(f->store, rr_store_device_get(f->store, "mid01", &dev));
    assert_string_equal(dev.state, RR_DEVICE_MAINTENANCE);
    rr_store_deviceinfo_clear(&dev);
    rr_store_health_t health;
    assert_ok(f->store, rr_store_health_get(f->store, "hb01", &health));
    assert_int_equal(health.jobs_since, 3);
    assert_false(health.due);
    rr_store_health_clear(&health);
    /* Old jobs' definitions are read when they end (they may ask for a
     * notification); a new job without a notify URL is known not to. */
    assert_ok(f->store, rr_store_job_notify_def(f->store, 7, &back));
    assert_non_null(back);
    assert_string_equal(back->name, "old done");
    proto_jobdef_destroy(&back);
    /* New jobs follow the old ones, with their specs in the new table. */
    uint64_t next = fixture_job(f, "highbank", 50, "", 200);
    assert_int_equal(next, 12);
    assert_ok(f->store, rr_store_job_def(f->store, next, &back));
    assert_string_equal(back->device_type, "highbank");
    proto_jobdef_destroy(&back);
    assert_ok(f->store, rr_store_job_notify_def(f->store, next, &back));
    assert_null(back);
    proto_jobdef_destroy(&done);
    proto_jobdef_destroy(&waiting);
}

static void test_upgrade_refuses_rows_that_refer_to_no_job(void **state)
{
    fixture_t *f = *state;
    rr_store_t *old = store_at_version(f, 5);
    rr_store_destroy(&old);
    char err[512] = "";
    rr_store_options_t v5 = { .schema_version = 5 };
    /* A raw connection enforces no foreign keys: an event of a job that is not there. */
    fixture_raw_exec(f->path, "INSERT INTO events (job, seq, ts, kind) VALUES (42, 1, 5, 'log')");
    rr_store_t *latest = rr_store_open_with(f->path, NULL, err, sizeof err);
    assert_null(latest);
    assert_non_null(strstr(err, "migration to version 6"));
    assert_non_null(strstr(err, "a row of events refers to no row of jobs"));
    old = rr_store_open_with(f->path, &v5, err, sizeof err);    /* rolled back, still 5 */
    if (!old)
        fail_msg("open at version 5 again: %s", err);
    assert_int_equal(rr_store_schema_version(old), 5);
    rr_store_destroy(&old);
    fixture_raw_exec(f->path, "DELETE FROM events WHERE job = 42");
    f->store = rr_store_open_with(f->path, NULL, err, sizeof err);
    if (!f->store)
        fail_msg("open after the fix: %s", err);
    assert_int_equal(rr_store_schema_version(f->store), 6);
}

static void test_notify_def_reads_only_jobs_that_ask(void **state)
{
    fixture_t *f = *state;
    proto_jobdef_t *def = fixture_def("tells", "highbank", 50, "");
    def->notify_url = strdup("http://127.0.0.1:9/hook");
    uint64_t tells = 0;
    assert_ok(f->store, rr_store_job_insert(f->store, "job_name: tells\n", def, 1, &tells));
    proto_jobdef_destroy(&def);
    uint64_t quiet = fixture_job(f, "highbank", 50, "", 2);
    proto_jobdef_t *back = NULL;
    assert_ok(f->store, rr_store_job_notify_def(f->store, tells, &back));
    assert_non_null(back);
    assert_string_equal(back->notify_url, "http://127.0.0.1:9/hook");
    proto_jobdef_destroy(&back);
    assert_ok(f->store, rr_store_job_notify_def(f->store, quiet, &back));
    assert_null(back);
    assert_int_equal(rr_store_job_notify_def(f->store, quiet + 1, &back), RR_STORE_E_NOTFOUND);
}

static uint64_t jobs_count(rr_store_t *store)
{
    uint64_t n = 0;
    assert_ok(store, rr_store_jobs_count(store, RR_JOB_QUEUED, &n));
    return n;
}

static void test_joined_part_commits_with_its_transaction_or_alone(void **state)
{
    fixture_t *f = *state;
    assert_ok(f->store, rr_store_join(f->store));          /* no transaction: its own */
    fixture_job(f, "highbank", 50, "", 1);
    assert_ok(f->store, rr_store_leave(f->store, RR_STORE_OK));
    assert_ok(f->store, rr_store_begin(f->store));
    fixture_job(f, "highbank", 50, "", 2);
    assert_ok(f->store, rr_store_join(f->store));
    fixture_job(f, "highbank", 50, "", 3);
    assert_ok(f->store, rr_store_leave(f->store, RR_STORE_OK));
    assert_ok(f->store, rr_store_commit(f->store));
    fixture_reopen(f);
    assert_int_equal(jobs_count(f->store), 3);
}

static void test_failed_joined_part_rolls_back_its_whole_transaction(void **state)
{
    fixture_t *f = *state;
    fixture_job(f, "highbank", 50, "", 1);
    assert_ok(f->store, rr_store_begin(f->store));
    fixture_job(f, "highbank", 50, "", 2);                   /* before the part */
    assert_ok(f->store, rr_store_join(f->store));
    fixture_job(f, "highbank", 50, "", 3);                   /* the part's change */
    proto_jobinfo_t info;                                     /* the part fails */
    int failed = rr_store_job_get(f->store, 999, &info);
    assert_int_equal(failed, RR_STORE_E_NOTFOUND);
    char why[256];
    snprintf(why, sizeof why, "transaction rolled back: %s", rr_store_error(f->store));
    assert_int_equal(rr_store_leave(f->store, failed), RR_STORE_E_NOTFOUND);
    fixture_job(f, "highbank", 50, "", 4);                   /* after it, still inside */
    assert_int_equal(rr_store_commit(f->store), RR_STORE_E_DB);
    assert_string_equal(rr_store_error(f->store), why);
    assert_int_equal(jobs_count(f->store), 1);
    /* The store goes on: the next transaction commits. */
    assert_ok(f->store, rr_store_begin(f->store));
    fixture_job(f, "highbank", 50, "", 5);
    assert_ok(f->store, rr_store_commit(f->store));
    fixture_reopen(f);
    assert_int_equal(jobs_count(f->store), 2);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long) st.st_size : -1;
}

static void test_deferred_checkpoint_copies_the_wal_back_only_when_asked(void **state)
{
    fixture_t *f = *state;
    assert_ok(f->store, rr_store_defer_checkpoints(f->store, 16));
    long before = file_size(f->path);
    for (int i = 0; i < 300; i++)            /* one commit each: the WAL passes 16 pages */
        fixture_job(f, "highbank", 50, "sata", (uint64_t) i);
    assert_int_equal(file_size(f->path), before);   /* nothing copied back unasked */
    assert_ok(f->store, rr_store_checkpoint_due(f->store));
    struct timespec nap = { 0, 10 * 1000 * 1000 };
    for (int waited = 0; waited < 500 && file_size(f->path) == before; waited++)
        nanosleep(&nap, NULL);                  /* deadline: 5 s */
    assert_true(file_size(f->path) > before);
    uint64_t queued = 0;
    assert_ok(f->store, rr_store_jobs_count(f->store, RR_JOB_QUEUED, &queued));
    assert_int_equal(queued, 300);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)

static void test_finish_counts_the_job_on_a_device_that_let_go_of_it(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", "hb02:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t job = fixture_job(f, "highbank", 50, "", 1);
    assert_ok(f->store, rr_store_job_assign(f->store, job, "hb01", "rack01"));
    assert_ok(f->store, rr_store_job_running(f->store, job, 3));
    /* No path of the store does this while the job is open; the count must not
     * depend on it. */
    fixture_raw_exec(f->path, "UPDATE devices SET job = NULL WHERE name = 'hb01'");
    proto_deviceinfo_t dev;
    assert_ok(f->store, rr_store_device_get(f->store, "hb01", &dev));
    assert_int_equal(dev.job, 0);
    rr_store_deviceinfo_clear(&dev);
    assert_ok(f->store, rr_store_job_finish(f->store, job, RR_OUTCOME_INCOMPLETE, "lost", 9));
    assert_int_equal(hc_jobs(f->store, "hb01"), 1);

    /* A job that never started does not count. */
    uint64_t never = fixture_job(f, "highbank", 50, "", 2);
    assert_ok(f->store, rr_store_job_assign(f->store, never, "hb02", "rack01"));
    assert_ok(f->store, rr_store_job_finish(f->store, never, RR_OUTCOME_CANCELED, NULL, 10));
    assert_int_equal(hc_jobs(f->store, "hb02"), 0);
    proto_deviceinfo_t back;
    assert_ok(f->store, rr_store_device_get(f->store, "hb02", &back));
    assert_string_equal(back.state, RR_DEVICE_IDLE);
    rr_store_deviceinfo_clear(&back);
}

/* SQLite's result of SQL on the database at PATH (a connection of its own). */
static int raw_rc(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static void test_schema_rejects_unknown_states_without_in_lists(void **state)
{
    fixture_t *f = *state;
    const char *const devs[] = { "hb01:highbank::idle", "hb02:highbank::idle", NULL };
    fixture_hello(f, "rack01", devs);
    uint64_t held = fixture_job(f, "highbank", 50, "", 1);
    uint64_t queued = fixture_job(f, "highbank", 50, "", 2);
    char sql[128];
    assert_int_equal(raw_rc(f->path, "UPDATE devices SET state = 'sleeping'"),
                     SQLITE_CONSTRAINT);
    assert_int_equal(raw_rc(f->path, "UPDATE devices SET state = 'retired' WHERE name = 'x'"),
                     SQLITE_OK);
    snprintf(sql, sizeof sql, "UPDATE jobs SET state = 'paused' WHERE id = %" PRIu64, held);
    assert_int_equal(raw_rc(f->path, sql), SQLITE_CONSTRAINT);
    snprintf(sql, sizeof sql, "UPDATE jobs SET outcome = 'great' WHERE id = %" PRIu64, held);
    assert_int_equal(raw_rc(f->path, sql), SQLITE_CONSTRAINT);
    snprintf(sql, sizeof sql, "UPDATE jobs SET outcome = 'canceled' WHERE id = %" PRIu64, queued);
    assert_int_equal(raw_rc(f->path, sql), SQLITE_OK);
    /* Neither table says IN in its CHECKs (a temporary b-tree per row written). */
    for (size_t i = 0; i < 2; i++) {
        static const char *const tables[] = { "jobs", "devices" };
        sqlite3 *db = NULL;
        sqlite3_stmt *s = NULL;
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE name = ?1",
                                            -1, &s, NULL), SQLITE_OK);
        sqlite3_bind_text(s, 1, tables[i], -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        const char *create = (const char *) sqlite3_column_text(s, 0);
        assert_non_null(strstr(create, "CHECK"));
        assert_null(strstr(create, " IN "));
        assert_null(strstr(create, " IN("));
        sqlite3_finalize(s);
        sqlite3_close(db);
    }

    /* Open jobs by device (jobs_open_device): a canceling job holds its
     * device, a queued one naming a device does not. */
    snprintf(sql, sizeof sql, "UPDATE jobs SET state = 'canceling', device = 'hb01' WHERE id = %"
             PRIu64, held);
    assert_int_equal(raw_rc(f->path, sql), SQLITE_OK);
    snprintf(sql, sizeof sql, "UPDATE jobs SET device = 'hb02' WHERE id = %" PRIu64, queued);
    assert_int_equal(raw_rc(f->path, sql), SQLITE_OK);
    assert_ok(f->store, rr_store_device_set_state(f->store, "hb01", RR_DEVICE_IDLE, NULL));
    assert_ok(f->store, rr_store_device_set_state(f->store, "hb02", RR_DEVICE_IDLE, NULL));
    proto_deviceinfo_t dev;
    assert_ok(f->store, rr_store_device_get(f->store, "hb01", &dev));
    assert_string_equal(dev.state, RR_DEVICE_RUNNING);
    rr_store_deviceinfo_clear(&dev);
    assert_ok(f->store, rr_store_device_get(f->store, "hb02", &dev));
    assert_string_equal(dev.state, RR_DEVICE_IDLE);
    rr_store_deviceinfo_clear(&dev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_open_uses_wal_and_the_latest_schema_version),
        T(test_upgrade_refuses_rows_that_refer_to_no_job),
        T(test_notify_def_reads_only_jobs_that_ask),
        T(test_joined_part_commits_with_its_transaction_or_alone),
        T(test_failed_joined_part_rolls_back_its_whole_transaction),
        T(test_open_fails_with_context_on_unwritable_path),
        T(test_job_round_trips_info_yaml_and_definition),
        T(test_job_get_unknown_id_is_not_found),
        T(test_jobs_list_filters_by_state_newest_first),
        T(test_duplicate_events_are_ignored),
        T(test_acked_seq_stops_at_gap_then_advances),
        T(test_running_and_end_in_one_batch_store_state_and_acked_seq),
        T(test_end_before_a_gap_acks_below_the_gap_then_after_the_fill),
        T(test_finish_counts_the_job_on_a_device_that_let_go_of_it),
        T(test_schema_rejects_unknown_states_without_in_lists),
        T(test_batch_acks_each_job_separately),
        T(test_events_read_returns_fields_and_data_after_from_seq),
        T(test_running_and_end_events_move_job_and_device),
        T(test_cancel_queued_ends_at_once_running_goes_canceling),
        T(test_requeue_returns_job_to_queue_and_frees_device),
        T(test_assign_refuses_a_device_that_is_not_idle),
        T(test_hello_keeps_operator_state_and_open_jobs),
        T(test_worker_lost_takes_its_devices_offline),
        T(test_device_report_follows_worker_unless_master_holds_it),
        T(test_idle_on_a_device_with_an_open_job_keeps_it_held),
        T(test_reopen_reloads_everything),
        T(test_nested_transactions_roll_back_inner_only),
        T(test_queue_oldest_tells_an_empty_queue_from_a_job_submitted_at_zero),
        T(test_upgrade_from_version_3_keeps_jobs_yaml_and_definitions),
        T(test_deferred_checkpoint_copies_the_wal_back_only_when_asked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
