/* test_http_api.c: the master's HTTP side (master/http.c) on a free port over
 * a real store in a temporary directory: JSON shapes and values, errors,
 * log ranges, long-poll wake-up and bounds, /metrics, the dashboard files,
 * bearer tokens (http_tokens).
 *
 * The store and rr_http live on this (the main) thread, driven by a zloop;
 * requests come from libcurl in client actors (http_client.h), and waiting
 * for a reply runs the loop. */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "common.h"
#include "http.h"
#include "http_client.h"
#include "master.h"
#include "promcheck.h"
#include "store_fixture.h"

#define MAX_WAITING 2
#define READ_TOKEN  "r3ad-t0ken-4f9c2a"
#define ADMIN_TOKEN "adm1n-t0ken-77e1b0"
#define TOKENS_TEXT "# HTTP API tokens\n\nread " READ_TOKEN "\nadmin " ADMIN_TOKEN "  # ops\n"

typedef struct {
    fixture_t *f;
    rr_http_t *http;
    rr_metrics_t metrics;
    zloop_t *loop;
    http_client_t *client[MAX_WAITING + 1];
    char www[512];
    char tokens[128];       /* tokens file in the fixture dir, "" = none */
    uint64_t now;
    uint64_t queued_old, queued_new, running, finished;
    uint64_t running_last_seq;
} ctx_t;

/* ---- fixture: two workers (w2 lost), three devices, four jobs ---- */

static void append(ctx_t *c, proto_job_event_t *events, size_t n)
{
    rr_store_ack_t *acks = NULL;
    size_t nacks = 0;
    if (rr_store_events_append(c->f->store, events, n, &acks, &nacks) != RR_STORE_OK)
        fail_msg("append: %s", rr_store_error(c->f->store));
    free(acks);
}

static void fill_store(ctx_t *c)
{
    rr_store_t *store = c->f->store;
    fixture_hello(c->f, "w1", (const char *const[]) { "n1:highbank:sata:idle",
                                                      "n2:highbank::idle", NULL });
    fixture_hello(c->f, "w2", (const char *const[]) { "n3:beagle::idle", NULL });
    assert_int_equal(rr_store_worker_seen(store, "w1", c->now - 1500), RR_STORE_OK);
    assert_int_equal(rr_store_worker_seen(store, "w2", c->now - 20000), RR_STORE_OK);
    assert_int_equal(rr_store_worker_set_state(store, "w2", RR_WORKER_LOST, c->now), RR_STORE_OK);

    c->queued_old = fixture_job(c->f, "highbank", 50, "", c->now - 10000);
    c->running = fixture_job(c->f, "highbank", 50, "sata", c->now - 8000);
    c->finished = fixture_job(c->f, "highbank", 75, "", c->now - 7000);
    c->queued_new = fixture_job(c->f, "beagle", 50, "", c->now - 5000);
    assert_int_equal(rr_store_job_assign(store, c->running, "n1", "w1"), RR_STORE_OK);
    assert_int_equal(rr_store_job_assign(store, c->finished, "n2", "w1"), RR_STORE_OK);
    assert_int_equal(rr_store_job_finish(store, c->finished, RR_OUTCOME_COMPLETE, NULL, c->now),
                     RR_STORE_OK);

    static const uint8_t hello[] = "hello\n";
    static const uint8_t binary[] = { 0xff, 0xfe };
    proto_job_event_t ev[] = {
        fixture_event(c->running, 1, "state", "running", NULL),
        fixture_event(c->running, 2, "log", NULL, NULL),
        fixture_event(c->running, 3, "log", NULL, NULL),
        fixture_event(c->running, 4, "result", "uname", "pass"),
        fixture_event(c->running, 5, "result", "disk", "fail"),
    };
    ev[1].data = (uint8_t *) hello;
    ev[1].data_len = 6;
    ev[2].data = (uint8_t *) binary;
    ev[2].data_len = 2;
    ev[4].code = 1;
    append(c, ev, 5);
    c->running_last_seq = 5;
}

/* Write TEXT to DIR/NAME with MODE into PATH. */
static void write_tokens(const char *dir, const char *name, const char *text, mode_t mode,
                         char *path, size_t len)
{
    snprintf(path, len, "%s/%s", dir, name);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    assert_int_equal(fputs(text, file) >= 0, 1);
    assert_int_equal(fclose(file), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static int setup_with(void **state, uint32_t max_waiting, const char *tokens_text)
{
    ctx_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    void *fs = NULL;
    fixture_setup(&fs);
    c->f = fs;
    c->now = rr_wall_ms();
    fill_store(c);
    const char *src = getenv("RR_SOURCE_DIR");
    snprintf(c->www, sizeof c->www, "%s/master/www", src ? src : RR_SOURCE_DIR_DEFAULT);
    if (tokens_text)
        write_tokens(c->f->dir, "tokens", tokens_text, 0600, c->tokens, sizeof c->tokens);
    rr_http_options_t options = { .listen = "127.0.0.1:0", .www_dir = c->www,
                                  .metrics = &c->metrics, .max_waiting = max_waiting,
                                  .tokens_file = tokens_text ? c->tokens : NULL };
    char err[256] = "";
    c->http = rr_http_new(c->f->store, &options, err, sizeof err);
    if (!c->http)
        fail_msg("rr_http_new: %s", err);
    assert_true(rr_http_port(c->http) > 0);
    c->loop = zloop_new();
    assert_int_equal(rr_http_attach(c->http, c->loop), 0);
    for (size_t i = 0; i <= MAX_WAITING; i++)
        c->client[i] = http_client_new(c->loop, rr_http_port(c->http));
    *state = c;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, MAX_WAITING, NULL);
}

static int setup_tokens(void **state)
{
    return setup_with(state, MAX_WAITING, TOKENS_TEXT);
}

static int teardown(void **state)
{
    ctx_t *c = *state;
    rr_http_destroy(&c->http);          /* first: answers waiting long-polls */
    for (size_t i = 0; i <= MAX_WAITING; i++)
        http_client_destroy(&c->client[i]);
    zloop_destroy(&c->loop);
    if (c->tokens[0])
        unlink(c->tokens);
    void *fs = c->f;
    fixture_teardown(&fs);
    free(c);
    return 0;
}

/* ---- helpers ---- */

/* GET PATH expecting STATUS and a JSON body; the reply stays in *R. */
static json_t *get_json(ctx_t *c, const char *path, int status, http_reply_t *r)
{
    if (http_client_get(c->client[0], path, r) != 0)
        fail_msg("GET %s: no reply within 10 s", path);
    if (r->status != status)
        fail_msg("GET %s: status %d, expected %d: %s", path, r->status, status, r->body);
    if (!r->json)
        fail_msg("GET %s: body is not JSON: %s", path, r->body);
    assert_non_null(strstr(r->type, "application/json"));
    return r->json;
}

static const char *str_of(json_t *obj, const char *key)
{
    json_t *value = json_object_get(obj, key);
    if (!json_is_string(value))
        fail_msg("key %s: not a string", key);
    return json_string_value(value);
}

static json_int_t int_of(json_t *obj, const char *key)
{
    json_t *value = json_object_get(obj, key);
    if (!json_is_integer(value))
        fail_msg("key %s: not an integer", key);
    return json_integer_value(value);
}

static void expect_error(ctx_t *c, const char *path, int status, const char *text)
{
    http_reply_t r = { 0 };
    json_t *body = get_json(c, path, status, &r);
    assert_int_equal(int_of(body, "code"), status);
    if (!strstr(str_of(body, "error"), text))
        fail_msg("GET %s: error '%s' does not mention '%s'", path, str_of(body, "error"), text);
    http_reply_clear(&r);
}

/* GET PATH (200, JSON) and its array KEY, which must hold COUNT items; the reply stays in *R. */
static json_t *get_list(ctx_t *c, const char *path, const char *key, size_t count,
                        http_reply_t *r)
{
    json_t *list = json_object_get(get_json(c, path, 200, r), key);
    if (json_array_size(list) != count)
        fail_msg("GET %s: %zu %s, expected %zu", path, json_array_size(list), key, count);
    return list;
}

/* GET /api/v1/jobs/JOB followed by SUFFIX (200, JSON); the reply stays in *R. */
static json_t *get_job_json(ctx_t *c, uint64_t job, const char *suffix, http_reply_t *r)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/jobs/%" PRIu64 "%s", job, suffix);
    return get_json(c, path, 200, r);
}

/* GET /api/v1/jobs/JOB followed by SUFFIX is an error STATUS mentioning TEXT. */
static void expect_job_error(ctx_t *c, uint64_t job, const char *suffix, int status,
                             const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/jobs/%" PRIu64 "%s", job, suffix);
    expect_error(c, path, status, text);
}

/* METHOD PATH (with HOST, NULL: the default) on client I: the reply's status; the reply stays
 * in *R. */
static int send_status(ctx_t *c, size_t i, const char *method, const char *path,
                       const char *host, http_reply_t *r)
{
    http_client_send(c->client[i], method, path, host);
    if (http_client_wait(c->client[i], r, 10000) != 0)
        fail_msg("%s %s: no reply within 10 s", method, path);
    return r->status;
}

/* Start a long-poll of the running job's log after its last event, waiting WAIT_S
 * seconds, on client I; then run the loop until WAITING (NULL: do not). */
static void start_long_poll(ctx_t *c, size_t i, int wait_s, bool (*waiting)(void *))
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/jobs/%" PRIu64 "/log?from=%" PRIu64 "&wait=%d",
             c->running, c->running_last_seq, wait_s);
    http_client_send(c->client[i], "GET", path, NULL);
    if (waiting)
        assert_int_equal(run_loop_until(c->loop, waiting, c, 5000), 0);
}

static bool one_waiting(void *arg)
{
    return rr_http_waiting(((ctx_t *) arg)->http) == 1;
}

static bool two_waiting(void *arg)
{
    return rr_http_waiting(((ctx_t *) arg)->http) == 2;
}

/* ---- jobs ---- */

static void test_jobs_list_newest_first_with_filters_and_paging(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    json_t *jobs = get_list(c, "/api/v1/jobs", "jobs", 4, &r);
    assert_int_equal(int_of(json_array_get(jobs, 0), "id"), c->queued_new);
    assert_int_equal(int_of(json_array_get(jobs, 3), "id"), c->queued_old);
    assert_int_equal(int_of(r.json, "limit"), 100);
    http_reply_clear(&r);

    jobs = get_list(c, "/api/v1/jobs?state=queued", "jobs", 2, &r);
    assert_string_equal(str_of(json_array_get(jobs, 1), "state"), "queued");
    http_reply_clear(&r);

    jobs = get_list(c, "/api/v1/jobs?limit=1&offset=1", "jobs", 1, &r);
    assert_int_equal(int_of(json_array_get(jobs, 0), "id"), c->finished);
    assert_int_equal(int_of(r.json, "offset"), 1);
    http_reply_clear(&r);

    /* A filter: how many jobs match, the newest first. */
    const struct {
        const char *path;
        size_t count;
        uint64_t first;
    } filters[] = {
        { "/api/v1/jobs?device_type=beagle", 1, c->queued_new },
        { "/api/v1/jobs?worker=w1", 2, c->finished },
        { "/api/v1/jobs?worker=w1&state=running", 1, c->running },
    };
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        jobs = get_list(c, filters[i].path, "jobs", filters[i].count, &r);
        assert_int_equal(int_of(json_array_get(jobs, 0), "id"), filters[i].first);
        http_reply_clear(&r);
    }
}

static void test_jobs_list_rejects_bad_parameters_with_400(void **state)
{
    ctx_t *c = *state;
    expect_error(c, "/api/v1/jobs?state=sleeping", 400, "sleeping");
    expect_error(c, "/api/v1/jobs?limit=0", 400, "limit");
    expect_error(c, "/api/v1/jobs?limit=1001", 400, "limit");
    expect_error(c, "/api/v1/jobs?offset=-1", 400, "offset");
    expect_error(c, "/api/v1/jobs?limit=12abc", 400, "limit");
}

static void test_job_detail_has_info_yaml_and_last_seq(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    json_t *job = get_job_json(c, c->running, "", &r);
    assert_int_equal(int_of(job, "id"), c->running);
    assert_string_equal(str_of(job, "state"), "running");
    assert_string_equal(str_of(job, "device"), "n1");
    assert_string_equal(str_of(job, "worker"), "w1");
    assert_string_equal(str_of(job, "device_type"), "highbank");
    assert_int_equal(int_of(job, "priority"), 50);
    assert_int_equal(int_of(job, "submitted_ms"), c->now - 8000);
    assert_true(json_is_null(json_object_get(job, "outcome")));
    assert_string_equal(str_of(job, "yaml"), "job_name: job\n");
    assert_int_equal(int_of(job, "last_seq"), 5);
    http_reply_clear(&r);

    job = get_job_json(c, c->finished, "", &r);
    assert_string_equal(str_of(job, "outcome"), "complete");
    assert_int_equal(int_of(job, "ended_ms"), c->now);
    http_reply_clear(&r);
}

static void test_unknown_job_or_path_is_404_and_bad_id_400(void **state)
{
    ctx_t *c = *state;
    expect_error(c, "/api/v1/jobs/999", 404, "999");
    expect_error(c, "/api/v1/jobs/999/log", 404, "999");
    expect_error(c, "/api/v1/jobs/999/results", 404, "999");
    expect_error(c, "/api/v1/jobs/abc", 400, "abc");
    expect_error(c, "/api/v1/jobs/99999999999999999999", 400, "not a number");
    expect_error(c, "/api/v1/jobs/1/nothing", 404, "nothing");
    expect_error(c, "/api/v1/nothing", 404, "nothing");
    expect_error(c, "/api/v2/jobs", 404, "/api/v2/jobs");
}

/* ---- log and results ---- */

static void test_log_returns_events_after_from_in_order(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    json_t *body = get_job_json(c, c->running, "/log", &r);
    json_t *events = json_object_get(body, "events");
    assert_int_equal(json_array_size(events), 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(int_of(json_array_get(events, i), "seq"), i + 1);
    assert_string_equal(str_of(json_array_get(events, 1), "kind"), "log");
    assert_string_equal(str_of(json_array_get(events, 1), "data"), "hello\n");
    /* bytes that are not UTF-8 come base64-encoded, never altered */
    assert_null(json_object_get(json_array_get(events, 2), "data"));
    assert_string_equal(str_of(json_array_get(events, 2), "data_base64"), "//4=");
    assert_int_equal(int_of(body, "last_seq"), 5);
    assert_false(json_is_true(json_object_get(body, "more")));
    assert_false(json_is_true(json_object_get(body, "finished")));
    http_reply_clear(&r);

    body = get_job_json(c, c->running, "/log?from=2&limit=2", &r);
    events = json_object_get(body, "events");
    assert_int_equal(json_array_size(events), 2);
    assert_int_equal(int_of(json_array_get(events, 0), "seq"), 3);
    assert_int_equal(int_of(body, "last_seq"), 4);
    assert_true(json_is_true(json_object_get(body, "more")));
    http_reply_clear(&r);

    body = get_job_json(c, c->running, "/log?from=5", &r);
    assert_int_equal(json_array_size(json_object_get(body, "events")), 0);
    assert_int_equal(int_of(body, "last_seq"), 5);
    http_reply_clear(&r);

    expect_job_error(c, c->running, "/log?wait=61", 400, "wait");
    expect_job_error(c, c->running, "/log?from=x", 400, "from");
}

static void test_results_lists_result_events_with_counts(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    json_t *body = get_job_json(c, c->running, "/results", &r);
    json_t *results = json_object_get(body, "results");
    assert_int_equal(json_array_size(results), 2);
    assert_string_equal(str_of(json_array_get(results, 0), "name"), "uname");
    assert_string_equal(str_of(json_array_get(results, 0), "value"), "pass");
    assert_string_equal(str_of(json_array_get(results, 1), "value"), "fail");
    assert_int_equal(int_of(json_array_get(results, 1), "code"), 1);
    assert_int_equal(int_of(body, "pass"), 1);
    assert_int_equal(int_of(body, "fail"), 1);
    assert_int_equal(int_of(body, "skip"), 0);
    http_reply_clear(&r);
}

/* ---- long-poll ---- */

static void test_long_poll_returns_when_job_is_notified(void **state)
{
    ctx_t *c = *state;
    start_long_poll(c, 0, 20, one_waiting);

    static const uint8_t more[] = "more";
    proto_job_event_t ev = fixture_event(c->running, 6, "log", NULL, NULL);
    ev.data = (uint8_t *) more;
    ev.data_len = 4;
    append(c, &ev, 1);
    rr_http_notify_job(c->http, c->running);

    http_reply_t r = { 0 };
    assert_int_equal(http_client_wait(c->client[0], &r, 5000), 0);
    assert_int_equal(r.status, 200);
    json_t *events = json_object_get(r.json, "events");
    assert_int_equal(json_array_size(events), 1);
    assert_int_equal(int_of(json_array_get(events, 0), "seq"), 6);
    assert_string_equal(str_of(json_array_get(events, 0), "data"), "more");
    assert_int_equal(int_of(r.json, "last_seq"), 6);
    assert_true(r.elapsed_ms < 5000);
    assert_int_equal(rr_http_waiting(c->http), 0);
    http_reply_clear(&r);
}

static void test_long_poll_ignores_other_jobs_and_times_out_empty(void **state)
{
    ctx_t *c = *state;
    start_long_poll(c, 0, 1, one_waiting);
    rr_http_notify_job(c->http, c->queued_old);     /* not the job it waits for */
    assert_int_equal(rr_http_waiting(c->http), 1);

    http_reply_t r = { 0 };
    assert_int_equal(http_client_wait(c->client[0], &r, 5000), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "events")), 0);
    assert_int_equal(int_of(r.json, "last_seq"), c->running_last_seq);
    assert_true(r.elapsed_ms >= 900);
    assert_true(r.elapsed_ms < 4000);
    http_reply_clear(&r);
}

static void test_long_poll_on_finished_job_answers_at_once(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    json_t *body = get_job_json(c, c->finished, "/log?wait=30", &r);
    assert_true(json_is_true(json_object_get(body, "finished")));
    assert_false(json_is_true(json_object_get(body, "more")));
    assert_true(r.elapsed_ms < 2000);
    http_reply_clear(&r);
}

static void test_long_polls_beyond_the_bound_get_503(void **state)
{
    ctx_t *c = *state;
    start_long_poll(c, 0, 20, one_waiting);
    start_long_poll(c, 1, 20, two_waiting);

    http_reply_t r = { 0 };
    start_long_poll(c, 2, 20, NULL);
    assert_int_equal(http_client_wait(c->client[2], &r, 5000), 0);
    assert_int_equal(r.status, 503);
    assert_int_equal(int_of(r.json, "code"), 503);
    http_reply_clear(&r);

    rr_http_notify_job(c->http, c->running);        /* nothing new: they wait again */
    assert_int_equal(rr_http_waiting(c->http), 0);
    assert_int_equal(run_loop_until(c->loop, two_waiting, c, 2000), 0);
}

static void test_destroy_answers_waiting_long_polls(void **state)
{
    ctx_t *c = *state;
    start_long_poll(c, 0, 30, one_waiting);
    rr_http_destroy(&c->http);
    assert_null(c->http);
    http_reply_t r = { 0 };
    assert_int_equal(http_client_wait(c->client[0], &r, 5000), 0);
    assert_true(r.elapsed_ms < 5000);   /* answered or closed, never left hanging */
    http_reply_clear(&r);
}

/* ---- workers and devices ---- */

static void test_workers_show_state_heartbeat_age_version_devices(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    json_t *body = get_json(c, "/api/v1/workers", 200, &r);
    json_t *workers = json_object_get(body, "workers");
    assert_int_equal(json_array_size(workers), 2);
    json_t *w1 = json_array_get(workers, 0);
    assert_string_equal(str_of(w1, "name"), "w1");
    assert_string_equal(str_of(w1, "state"), "online");
    assert_string_equal(str_of(w1, "version"), "0.1.0");
    assert_string_equal(str_of(w1, "rack"), "rack01");
    assert_int_equal(int_of(w1, "devices"), 2);
    json_int_t age = int_of(w1, "heartbeat_age_ms");
    assert_true(age >= 1500 && age < 60000);
    assert_string_equal(str_of(json_array_get(workers, 1), "state"), "lost");
    assert_true(int_of(body, "now_ms") >= (json_int_t) c->now);
    http_reply_clear(&r);

    workers = get_list(c, "/api/v1/workers?state=lost", "workers", 1, &r);
    assert_string_equal(str_of(json_array_get(workers, 0), "name"), "w2");
    http_reply_clear(&r);
    expect_error(c, "/api/v1/workers?state=asleep", 400, "asleep");
}

static void test_devices_carry_rack_state_and_job(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    json_t *devices = get_list(c, "/api/v1/devices", "devices", 3, &r);
    json_t *n1 = json_array_get(devices, 0);
    assert_string_equal(str_of(n1, "name"), "n1");
    assert_string_equal(str_of(n1, "rack"), "rack01");
    assert_string_equal(str_of(n1, "state"), "running");
    assert_int_equal(int_of(n1, "job"), c->running);
    assert_string_equal(json_string_value(json_array_get(json_object_get(n1, "tags"), 0)), "sata");
    assert_string_equal(str_of(json_array_get(devices, 1), "state"), "idle");
    assert_string_equal(str_of(json_array_get(devices, 2), "state"), "offline");
    http_reply_clear(&r);

    devices = get_list(c, "/api/v1/devices?state=offline", "devices", 1, &r);
    assert_string_equal(str_of(json_array_get(devices, 0), "name"), "n3");
    http_reply_clear(&r);
    get_list(c, "/api/v1/devices?worker=w1", "devices", 2, &r);
    http_reply_clear(&r);
    expect_error(c, "/api/v1/devices?state=melted", 400, "melted");
}

/* ---- metrics ---- */

static void test_metrics_page_is_strict_prometheus_with_store_values(void **state)
{
    ctx_t *c = *state;
    c->metrics.events_ingested = 42;
    c->metrics.sol_errors = 3;
    http_reply_t r = { 0 };
    assert_int_equal(http_client_get(c->client[0], "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.type, "text/plain; version=0.0.4"));
    char err[256];
    if (promcheck(r.body, err, sizeof err) != 0)
        fail_msg("/metrics: %s\n%s", err, r.body);
    assert_true(promcheck_value(r.body, "rackrun_jobs{state=\"queued\"}") == 2);
    assert_true(promcheck_value(r.body, "rackrun_jobs{state=\"running\"}") == 1);
    assert_true(promcheck_value(r.body, "rackrun_jobs{state=\"finished\"}") == 1);
    assert_true(promcheck_value(r.body, "rackrun_queue_depth") == 2);
    double oldest = promcheck_value(r.body, "rackrun_queue_oldest_age_seconds");
    assert_true(oldest >= 10 && oldest < 120);
    assert_true(promcheck_value(r.body, "rackrun_devices{state=\"running\"}") == 1);
    assert_true(promcheck_value(r.body, "rackrun_devices{state=\"offline\"}") == 1);
    assert_true(promcheck_value(r.body, "rackrun_workers{state=\"online\"}") == 1);
    assert_true(promcheck_value(r.body, "rackrun_workers{state=\"lost\"}") == 1);
    /* w1 beat 1.5 s ago, w2 20 s ago */
    const char *h = "rackrun_worker_heartbeat_age_seconds";
    char series[128];
    snprintf(series, sizeof series, "%s_bucket{le=\"1\"}", h);
    assert_true(promcheck_value(r.body, series) == 0);
    snprintf(series, sizeof series, "%s_bucket{le=\"2\"}", h);
    assert_true(promcheck_value(r.body, series) == 1);
    snprintf(series, sizeof series, "%s_bucket{le=\"30\"}", h);
    assert_true(promcheck_value(r.body, series) == 2);
    snprintf(series, sizeof series, "%s_count", h);
    assert_true(promcheck_value(r.body, series) == 2);
    assert_true(promcheck_value(r.body, "rackrun_events_ingested_total") == 42);
    assert_true(promcheck_value(r.body, "rackrun_sol_errors_total") == 3);
    http_reply_clear(&r);
}

/* ---- dashboard, methods, hosts ---- */

static void test_dashboard_files_are_served_and_nothing_else(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    static const struct {
        const char *path, *type, *body;     /* BODY: what it holds, NULL: anything */
    } files[] = { { "/", "text/html", "app.js" }, { "/app.js", "javascript", NULL },
                  { "/style.css", "text/css", NULL } };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        assert_int_equal(http_client_get(c->client[0], files[i].path, &r), 0);
        if (r.status != 200 || !strstr(r.type, files[i].type))
            fail_msg("GET %s: status %d, type '%s'", files[i].path, r.status, r.type);
        if (files[i].body)
            assert_non_null(strstr(r.body, files[i].body));
        http_reply_clear(&r);
    }

    static const char *const outside[] = { "/../http.c", "/%2e%2e/http.c", "/..%2fhttp.c",
                                           "/www/index.html", "/index.html/", "//etc/passwd" };
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        assert_int_equal(http_client_get(c->client[0], outside[i], &r), 0);
        if (r.status != 404)
            fail_msg("GET %s: status %d, expected 404", outside[i], r.status);
        http_reply_clear(&r);
    }
}

static void test_writes_without_tokens_are_403_and_others_405(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    assert_int_equal(send_status(c, 0, "POST", "/api/v1/jobs", NULL, &r), 403);
    assert_int_equal(int_of(r.json, "code"), 403);
    assert_non_null(strstr(str_of(r.json, "error"), "HTTP writes need tokens"));
    http_reply_clear(&r);
    assert_int_equal(send_status(c, 0, "DELETE", "/api/v1/jobs/1", NULL, &r), 403);
    http_reply_clear(&r);
    assert_int_equal(send_status(c, 0, "PUT", "/api/v1/jobs", NULL, &r), 405);
    http_reply_clear(&r);
    assert_int_equal(send_status(c, 0, "POST", "/", NULL, &r), 405);
    http_reply_clear(&r);
}

static void test_foreign_host_header_is_refused_on_loopback(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    assert_int_equal(send_status(c, 0, "GET", "/api/v1/workers", "evil.example:8080", &r), 403);
    http_reply_clear(&r);
    assert_int_equal(send_status(c, 0, "GET", "/api/v1/workers", "localhost:8080", &r), 200);
    http_reply_clear(&r);
}

static void test_listen_address_is_validated(void **state)
{
    ctx_t *c = *state;
    char err[256] = "";
    rr_http_options_t bad = { .listen = "127.0.0.1", .www_dir = c->www };
    assert_null(rr_http_new(c->f->store, &bad, err, sizeof err));
    assert_non_null(strstr(err, "not host:port"));
    char taken[64];
    snprintf(taken, sizeof taken, "127.0.0.1:%d", rr_http_port(c->http));
    rr_http_options_t busy = { .listen = taken, .www_dir = c->www };
    assert_null(rr_http_new(c->f->store, &busy, err, sizeof err));
    assert_non_null(strstr(err, taken));
    rr_http_options_t v6 = { .listen = "[::1]:0", .www_dir = c->www };
    rr_http_t *http6 = rr_http_new(c->f->store, &v6, err, sizeof err);
    if (http6) {                        /* hosts without IPv6 loopback cannot bind it */
        assert_true(rr_http_port(http6) > 0);
        rr_http_destroy(&http6);
    }
}

/* ---- bearer tokens ---- */

/* GET PATH with AUTHORIZATION (NULL = none) and return the status; the reply stays in *R. */
static int get_auth(ctx_t *c, const char *path, const char *authorization, http_reply_t *r)
{
    http_client_send_auth(c->client[0], "GET", path, NULL, authorization);
    if (http_client_wait(c->client[0], r, 10000) != 0)
        fail_msg("GET %s: no reply within 10 s", path);
    return r->status;
}

static void expect_401(ctx_t *c, const char *path, const char *authorization)
{
    http_reply_t r = { 0 };
    if (get_auth(c, path, authorization, &r) != 401)
        fail_msg("GET %s with '%s': status %d, expected 401", path,
                 authorization ? authorization : "(none)", r.status);
    assert_non_null(r.json);
    assert_int_equal(int_of(r.json, "code"), 401);
    assert_non_null(strstr(str_of(r.json, "error"), "bearer token"));
    assert_string_equal(r.www_authenticate, "Bearer");
    assert_null(strstr(r.body, READ_TOKEN));
    http_reply_clear(&r);
}

static void test_tokens_refuse_missing_or_wrong_token_with_401(void **state)
{
    ctx_t *c = *state;
    static const char *const paths[] = { "/api/v1/jobs", "/metrics", "/api/v1/workers",
                                         "/api/v1/nothing" };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        expect_401(c, paths[i], NULL);
        expect_401(c, paths[i], "Bearer wrong-token");
    }
    expect_401(c, "/api/v1/jobs", "Bearer ");
    expect_401(c, "/api/v1/jobs", "Bearer r3ad-t0ken-4f9c2");           /* a prefix */
    expect_401(c, "/api/v1/jobs", "Bearer " READ_TOKEN "x");            /* longer */
    expect_401(c, "/api/v1/jobs", "Basic " READ_TOKEN);
    expect_401(c, "/api/v1/jobs", READ_TOKEN);
    expect_401(c, "/api/v1/jobs", "Bearer read");                       /* a role is no token */
}

static void test_tokens_read_token_opens_api_and_metrics(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    assert_int_equal(get_auth(c, "/api/v1/jobs", "Bearer " READ_TOKEN, &r), 200);
    assert_non_null(r.json);
    assert_int_equal(json_array_size(json_object_get(r.json, "jobs")), 4);
    assert_string_equal(r.www_authenticate, "");
    http_reply_clear(&r);
    assert_int_equal(get_auth(c, "/metrics", "Bearer " READ_TOKEN, &r), 200);
    assert_non_null(strstr(r.body, "rackrun_http_requests_total"));
    http_reply_clear(&r);
    assert_int_equal(get_auth(c, "/api/v1/workers", "bearer " ADMIN_TOKEN, &r), 200);
    http_reply_clear(&r);
    assert_int_equal(get_auth(c, "/api/v1/jobs/999999", "Bearer " READ_TOKEN, &r), 404);
    http_reply_clear(&r);
    http_client_send_auth(c->client[0], "POST", "/api/v1/jobs", NULL, "Bearer " ADMIN_TOKEN);
    assert_int_equal(http_client_wait(c->client[0], &r, 10000), 0);
    assert_int_equal(r.status, 503);                    /* no master behind this server */
    http_reply_clear(&r);
}

static void test_tokens_leave_dashboard_files_public(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    assert_int_equal(get_auth(c, "/", NULL, &r), 200);
    http_reply_clear(&r);
    assert_int_equal(get_auth(c, "/app.js", NULL, &r), 200);
    http_reply_clear(&r);
}

/* rr_http_new with a tokens file of TEXT and MODE: NULL expected, the error returned. */
static const char *refused_tokens(ctx_t *c, const char *text, mode_t mode)
{
    static char err[512];
    char path[128];
    write_tokens(c->f->dir, "tokens-bad", text, mode, path, sizeof path);
    rr_http_options_t options = { .listen = "127.0.0.1:0", .www_dir = c->www,
                                  .tokens_file = path };
    err[0] = '\0';
    rr_http_t *http = rr_http_new(c->f->store, &options, err, sizeof err);
    unlink(path);
    if (http) {
        rr_http_destroy(&http);
        fail_msg("tokens file (mode %04o) accepted: %s", (unsigned) mode, text);
    }
    return err;
}

static void test_tokens_file_must_be_private_and_well_formed(void **state)
{
    ctx_t *c = *state;
    const char *err = refused_tokens(c, "read " READ_TOKEN "\n", 0644);
    if (!strstr(err, "mode 0644") || !strstr(err, "chmod 600") || !strstr(err, "tokens-bad"))
        fail_msg("unclear error: %s", err);
    assert_null(strstr(err, READ_TOKEN));
    err = refused_tokens(c, "read " READ_TOKEN "\n", 0640);
    assert_non_null(strstr(err, "mode 0640"));
    err = refused_tokens(c, "# c\nreader " READ_TOKEN "\n", 0600);
    assert_non_null(strstr(err, ":2: role 'reader'"));
    assert_null(strstr(err, READ_TOKEN));
    err = refused_tokens(c, "read\n", 0600);
    assert_non_null(strstr(err, ":1: expected 'ROLE TOKEN'"));
    err = refused_tokens(c, "read " READ_TOKEN " extra\n", 0600);
    assert_non_null(strstr(err, ":1: expected 'ROLE TOKEN'"));
    assert_null(strstr(err, READ_TOKEN));
    err = refused_tokens(c, "# only comments\n\n", 0600);
    assert_non_null(strstr(err, "no token"));
    char missing[128];
    snprintf(missing, sizeof missing, "%s/absent", c->f->dir);
    rr_http_options_t options = { .listen = "127.0.0.1:0", .tokens_file = missing };
    char err2[512] = "";
    assert_null(rr_http_new(c->f->store, &options, err2, sizeof err2));
    assert_non_null(strstr(err2, "absent"));
}

static void test_master_refuses_to_start_with_a_readable_tokens_file(void **state)
{
    ctx_t *c = *state;
    char tokens[128], yaml[128], text[512], err[512] = "";
    write_tokens(c->f->dir, "tokens-0644", "read " READ_TOKEN "\n", 0644, tokens, sizeof tokens);
    snprintf(text, sizeof text, "db: %s\nworker_endpoint: tcp://127.0.0.1:*\n"
             "client_endpoint: tcp://127.0.0.1:*\nhttp_tokens: %s\n",
             c->f->path, tokens);
    write_tokens(c->f->dir, "master.yaml", text, 0600, yaml, sizeof yaml);
    rr_master_config_t *config = NULL;
    int loaded = rr_master_config_load(yaml, &config, err, sizeof err);
    if (loaded == 0) {                  /* any free port (the config wants one) */
        free(config->http_listen);
        config->http_listen = strdup("127.0.0.1:0");
    }
    rr_master_t *master = loaded == 0 ? rr_master_new(config, err, sizeof err) : NULL;
    unlink(tokens);
    unlink(yaml);
    if (loaded != 0)
        fail_msg("config: %s", err);
    assert_string_equal(config->http_tokens, tokens);
    if (master) {
        rr_master_destroy(&master);
        rr_master_config_destroy(&config);
        fail_msg("master started with a tokens file of mode 0644");
    }
    rr_master_config_destroy(&config);
    if (!strstr(err, "mode 0644") || !strstr(err, "chmod 600"))
        fail_msg("unclear error: %s", err);
}

#define T(test) cmocka_unit_test_setup_teardown(test, setup, teardown)
#define TT(test) cmocka_unit_test_setup_teardown(test, setup_tokens, teardown)

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rr_log_init("test_http_api", RR_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        T(test_jobs_list_newest_first_with_filters_and_paging),
        T(test_jobs_list_rejects_bad_parameters_with_400),
        T(test_job_detail_has_info_yaml_and_last_seq),
        T(test_unknown_job_or_path_is_404_and_bad_id_400),
        T(test_log_returns_events_after_from_in_order),
        T(test_results_lists_result_events_with_counts),
        T(test_long_poll_returns_when_job_is_notified),
        T(test_long_poll_ignores_other_jobs_and_times_out_empty),
        T(test_long_poll_on_finished_job_answers_at_once),
        T(test_long_polls_beyond_the_bound_get_503),
        T(test_destroy_answers_waiting_long_polls),
        T(test_workers_show_state_heartbeat_age_version_devices),
        T(test_devices_carry_rack_state_and_job),
        T(test_metrics_page_is_strict_prometheus_with_store_values),
        T(test_dashboard_files_are_served_and_nothing_else),
        T(test_writes_without_tokens_are_403_and_others_405),
        T(test_foreign_host_header_is_refused_on_loopback),
        T(test_listen_address_is_validated),
        TT(test_tokens_refuse_missing_or_wrong_token_with_401),
        TT(test_tokens_read_token_opens_api_and_metrics),
        TT(test_tokens_leave_dashboard_files_public),
        T(test_tokens_file_must_be_private_and_well_formed),
        T(test_master_refuses_to_start_with_a_readable_tokens_file),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
