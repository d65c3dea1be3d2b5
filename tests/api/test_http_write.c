/* test_http_write.c: submitting and cancelling jobs over HTTP (POST
 * /api/v1/jobs, POST /api/v1/jobs/ID/cancel, DELETE /api/v1/jobs/ID) against
 * a real master (rr_master_actor, tests/master/harness.h) with bearer tokens:
 * the same validation as the CLI's SUBMIT (line/column errors), the roles of
 * the CLI keys, refusals before the body is read, the body bound (413), and
 * a master without tokens refusing every write.
 *
 * The master runs on its own thread; requests come from libcurl in a client
 * actor (http_client.h) whose replies this thread's loop reads. No worker is
 * connected, so a submitted job stays queued. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "http_client.h"
#include "tmpdir.h"

#define READ_TOKEN   "r3ad-7c1e90d2"
#define SUBMIT_TOKEN "subm1t-55af03b8"
#define ADMIN_TOKEN  "adm1n-e4b2c6a1"
#define TOKENS_TEXT  "read " READ_TOKEN "\nsubmit " SUBMIT_TOKEN "\nadmin " ADMIN_TOKEN "\n"

#define GOOD_YAML \
    "job_name: http-submit\n" \
    "device_type: highbank\n" \
    "timeouts: {job: 5m}\n" \
    "actions:\n" \
    "  - boot: {method: ipmi-pxe, prompts: [\"# \"]}\n" \
    "  - test:\n" \
    "      steps:\n" \
    "        - {name: hi, run: \"echo hi\"}\n"

typedef struct {
    harness_t *h;
    zloop_t *loop;
    http_client_t *client;
} ctx_t;

/* A TCP port free right now on 127.0.0.1 (the master binds it next). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *) &addr, sizeof addr), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

static int setup_with(void **state, bool tokens)
{
    ctx_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->h = harness_new();
    assert_non_null(c->h);
    int port = free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    harness_set(&c->h->config->http_listen, listen);
    if (tokens) {
        const char *path = harness_path(c->h, 0, "http-tokens");
        assert_int_equal(tmpdir_write_text(path, TOKENS_TEXT, 0600), 0);
        harness_set(&c->h->config->http_tokens, path);
    }
    if (harness_start(c->h) != 0)
        fail_msg("master: %s", c->h->start_error);
    c->loop = zloop_new();
    c->client = http_client_new(c->loop, port);
    *state = c;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, true);
}

static int setup_no_tokens(void **state)
{
    return setup_with(state, false);
}

static int teardown(void **state)
{
    ctx_t *c = *state;
    http_client_destroy(&c->client);
    zloop_destroy(&c->loop);
    harness_destroy(&c->h);
    free(c);
    return 0;
}

/* ---- helpers ---- */

/* METHOD PATH with BODY as TYPE and TOKEN (NULL = none); the reply in *R, its status. */
static int request(ctx_t *c, const char *method, const char *path, const char *token,
                   const char *type, const char *body, size_t len, http_reply_t *r)
{
    char auth[128];
    if (token)
        snprintf(auth, sizeof auth, "Bearer %s", token);
    http_client_send_body(c->client, method, path, token ? auth : NULL, type, body, len);
    if (http_client_wait(c->client, r, 20000) != 0)
        fail_msg("%s %s: no reply within 20 s", method, path);
    return r->status;
}

static int post_yaml(ctx_t *c, const char *token, const char *yaml, http_reply_t *r)
{
    return request(c, "POST", "/api/v1/jobs", token, "application/yaml", yaml, strlen(yaml), r);
}

/* The error text of a JSON error reply, checked to mention TEXT. */
static void expect_error(const http_reply_t *r, int status, const char *text)
{
    if (r->status != status)
        fail_msg("status %d, expected %d: %s", r->status, status, r->body);
    assert_non_null(r->json);
    const char *error = json_string_value(json_object_get(r->json, "error"));
    assert_non_null(error);
    if (!strstr(error, text))
        fail_msg("error '%s' does not mention '%s'", error, text);
    assert_int_equal(json_integer_value(json_object_get(r->json, "code")), status);
}

/* METHOD PATH without a body as TOKEN: refused with STATUS and an error mentioning TEXT. */
static void expect_refused(ctx_t *c, const char *method, const char *path, const char *token,
                           int status, const char *text)
{
    http_reply_t r = { 0 };
    request(c, method, path, token, NULL, NULL, 0, &r);
    expect_error(&r, status, text);
    http_reply_clear(&r);
}

/* POST YAML as TOKEN: refused with STATUS and an error mentioning TEXT. */
static void expect_yaml_refused(ctx_t *c, const char *token, const char *yaml, int status,
                                const char *text)
{
    http_reply_t r = { 0 };
    post_yaml(c, token, yaml, &r);
    expect_error(&r, status, text);
    http_reply_clear(&r);
}

/* GET /api/v1/jobs as TOKEN answers 200 with no job: nothing was queued. */
static void expect_no_jobs(ctx_t *c, const char *token)
{
    http_reply_t r = { 0 };
    assert_int_equal(request(c, "GET", "/api/v1/jobs", token, NULL, NULL, 0, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "jobs")), 0);
    http_reply_clear(&r);
}

/* Submit GOOD_YAML with the submit token: the new job's id. */
static uint64_t submit_good(ctx_t *c)
{
    http_reply_t r = { 0 };
    if (post_yaml(c, SUBMIT_TOKEN, GOOD_YAML, &r) != 201)
        fail_msg("submit: status %d: %s", r.status, r.body);
    json_int_t id = json_integer_value(json_object_get(r.json, "id"));
    assert_true(id > 0);
    http_reply_clear(&r);
    return (uint64_t) id;
}

/* GET /api/v1/jobs/ID's "state" into BUF. */
static const char *job_state(ctx_t *c, uint64_t id, char *buf, size_t len)
{
    char path[64];
    http_reply_t r = { 0 };
    snprintf(path, sizeof path, "/api/v1/jobs/%" PRIu64, id);
    if (request(c, "GET", path, READ_TOKEN, NULL, NULL, 0, &r) != 200)
        fail_msg("GET %s: status %d: %s", path, r.status, r.body);
    const char *state = json_string_value(json_object_get(r.json, "state"));
    snprintf(buf, len, "%s", state ? state : "(none)");
    const char *outcome = json_string_value(json_object_get(r.json, "outcome"));
    if (outcome)
        snprintf(buf + strlen(buf), len - strlen(buf), "/%s", outcome);
    http_reply_clear(&r);
    return buf;
}

/* ---- tests ---- */

static void test_submit_returns_an_id_that_shows_queued(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    assert_int_equal(post_yaml(c, SUBMIT_TOKEN, GOOD_YAML, &r), 201);
    json_int_t id = json_integer_value(json_object_get(r.json, "id"));
    assert_true(id > 0);
    assert_string_equal(json_string_value(json_object_get(r.json, "state")), "queued");
    http_reply_clear(&r);
    char buf[64];
    assert_string_equal(job_state(c, (uint64_t) id, buf, sizeof buf), "queued");

    /* JSON {"yaml": ...} and an admin token work too; the ids differ. */
    json_t *wrapped = json_pack("{s:s}", "yaml", GOOD_YAML);
    char *body = json_dumps(wrapped, 0);
    json_decref(wrapped);
    assert_int_equal(request(c, "POST", "/api/v1/jobs", ADMIN_TOKEN, "application/json", body,
                             strlen(body), &r), 201);
    free(body);
    assert_true(json_integer_value(json_object_get(r.json, "id")) > id);
    http_reply_clear(&r);
}

static void test_bad_yaml_is_400_naming_line_and_column(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    const char *bad = "job_name: bad\n"
                      "device_type: highbank\n"
                      "actions:\n"
                      "  - boot: {method: carrier-pigeon}\n";
    post_yaml(c, SUBMIT_TOKEN, bad, &r);
    expect_error(&r, 400, "line 4");
    assert_int_equal(json_integer_value(json_object_get(r.json, "line")), 4);
    assert_true(json_integer_value(json_object_get(r.json, "col")) > 0);
    http_reply_clear(&r);

    post_yaml(c, SUBMIT_TOKEN, "job_name: [unclosed\n", &r);      /* a syntax error */
    expect_error(&r, 400, "line");
    assert_true(json_integer_value(json_object_get(r.json, "line")) >= 1);
    http_reply_clear(&r);

    request(c, "POST", "/api/v1/jobs", SUBMIT_TOKEN, "image/png", "x", 1, &r);
    expect_error(&r, 415, "application/yaml");
    http_reply_clear(&r);
}

static void test_read_token_is_403_and_no_token_401(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    expect_yaml_refused(c, READ_TOKEN, GOOD_YAML, 403, "role submit");
    post_yaml(c, NULL, GOOD_YAML, &r);
    expect_error(&r, 401, "bearer token");
    assert_string_equal(r.www_authenticate, "Bearer");
    http_reply_clear(&r);
    expect_yaml_refused(c, "not-a-token", GOOD_YAML, 401, "bearer token");
    expect_refused(c, "POST", "/api/v1/jobs/1/cancel", READ_TOKEN, 403, "role submit");

    /* Nothing was queued by the refused requests. */
    expect_no_jobs(c, READ_TOKEN);
}

static void test_cancel_queued_job_ends_canceled(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    char path[64], buf[64];
    uint64_t first = submit_good(c), second = submit_good(c);

    snprintf(path, sizeof path, "/api/v1/jobs/%" PRIu64 "/cancel", first);
    assert_int_equal(request(c, "POST", path, SUBMIT_TOKEN, NULL, NULL, 0, &r), 202);
    assert_int_equal(json_integer_value(json_object_get(r.json, "id")), (json_int_t) first);
    http_reply_clear(&r);
    assert_string_equal(job_state(c, first, buf, sizeof buf), "finished/canceled");

    /* Finished: a second cancel conflicts. */
    expect_refused(c, "POST", path, SUBMIT_TOKEN, 409, "already finished");

    /* DELETE is the same cancel; the other job is untouched until then. */
    assert_string_equal(job_state(c, second, buf, sizeof buf), "queued");
    snprintf(path, sizeof path, "/api/v1/jobs/%" PRIu64, second);
    assert_int_equal(request(c, "DELETE", path, ADMIN_TOKEN, NULL, NULL, 0, &r), 202);
    http_reply_clear(&r);
    assert_string_equal(job_state(c, second, buf, sizeof buf), "finished/canceled");
}

static void test_cancel_unknown_job_is_404(void **state)
{
    ctx_t *c = *state;
    expect_refused(c, "POST", "/api/v1/jobs/424242/cancel", SUBMIT_TOKEN, 404, "424242");
    expect_refused(c, "PUT", "/api/v1/jobs/1", ADMIN_TOKEN, 405, "PUT");
}

static void test_oversize_body_is_413(void **state)
{
    ctx_t *c = *state;
    http_reply_t r = { 0 };
    size_t len = 1024 * 1024 + 1;
    char *big = malloc(len + 1);
    assert_non_null(big);
    memset(big, '#', len);
    big[len] = '\0';
    request(c, "POST", "/api/v1/jobs", SUBMIT_TOKEN, "text/plain", big, len, &r);
    expect_error(&r, 413, "larger than");
    http_reply_clear(&r);
    free(big);

    /* The connection and the server still work. */
    submit_good(c);
}

static void test_without_tokens_writes_are_refused(void **state)
{
    ctx_t *c = *state;
    expect_yaml_refused(c, NULL, GOOD_YAML, 403, "HTTP writes need tokens: set http_tokens");
    expect_refused(c, "DELETE", "/api/v1/jobs/1", NULL, 403, "HTTP writes need tokens");
    expect_no_jobs(c, NULL);
}

#define T(test) cmocka_unit_test_setup_teardown(test, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_submit_returns_an_id_that_shows_queued),
        T(test_bad_yaml_is_400_naming_line_and_column),
        T(test_read_token_is_403_and_no_token_401),
        T(test_cancel_queued_job_ends_canceled),
        T(test_cancel_unknown_job_is_404),
        T(test_oversize_body_is_413),
        cmocka_unit_test_setup_teardown(test_without_tokens_writes_are_refused, setup_no_tokens,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
