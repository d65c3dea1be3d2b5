/* test_security_master.c: who may talk to the master, and as what.
 *
 * A real master in-process (tests/master harness) with CURVE on both
 * endpoints; peers are raw DEALER sockets with their own certificates, and
 * the rackrun CLI binary for what an operator sees. Covers: an unknown
 * worker key is refused and nothing it sends reaches the database; a worker
 * key speaks only for its own worker; client roles (read / submit / admin);
 * a key added to an allow-list works at once and a removed key loses its
 * live session; job definitions that try to escape are refused at submit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"

#define WAIT_MS 3000
#define REFUSED_MS 1000
#define JOB_YAML "job_name: t\ndevice_type: highbank\nactions:\n  - boot: {method: ipmi-pxe}\n"

typedef struct {
    harness_t *h;
    zcert_t *master_cert;
    zcert_t *w1;                /* workers/w1 */
    zcert_t *rogue;             /* in no list */
    zcert_t *reader, *submitter, *admin;
    zsock_t *peers[6];
} fixture_t;

/* Save CERT's public part as DIR/NAME with metadata role ROLE (NULL: none). */
static int save_public(fixture_t *f, zcert_t *cert, const char *name, const char *role)
{
    if (role)
        zcert_set_meta(cert, "role", "%s", role);
    return zcert_save_public(cert, harness_path(f->h, 0, name));
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f || !(f->h = harness_new()))
        return -1;
    *state = f;
    harness_t *h = f->h;
    f->master_cert = zcert_new();
    f->w1 = zcert_new();
    f->rogue = zcert_new();
    f->reader = zcert_new();
    f->submitter = zcert_new();
    f->admin = zcert_new();
    zsys_dir_create("%s", harness_path(h, 0, "workers"));
    zsys_dir_create("%s", harness_path(h, 0, "clients"));
    if (zcert_save(f->master_cert, harness_path(h, 0, "master")) != 0
        || chmod(harness_path(h, 0, "master_secret"), 0600) != 0
        || save_public(f, f->w1, "workers/w1", NULL) != 0
        || save_public(f, f->reader, "clients/reader", NULL) != 0       /* no role: read */
        || save_public(f, f->submitter, "clients/submitter", "submit") != 0
        || save_public(f, f->admin, "clients/admin", "admin") != 0)
        return -1;
    harness_set(&h->config->secret_key, harness_path(h, 0, "master"));
    harness_set(&h->config->worker_keys_dir, harness_path(h, 0, "workers"));
    harness_set(&h->config->client_keys_dir, harness_path(h, 0, "clients"));
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (!f)
        return 0;
    for (size_t i = 0; i < 6; i++)
        zsock_destroy(&f->peers[i]);
    harness_destroy(&f->h);
    zcert_t **certs[] = { &f->master_cert, &f->w1, &f->rogue, &f->reader, &f->submitter,
                          &f->admin };
    for (size_t i = 0; i < 6; i++)
        zcert_destroy(certs[i]);
    free(f);
    return 0;
}

static void start(fixture_t *f)
{
    if (harness_start(f->h) != 0)
        fail_msg("master did not start: %s", f->h->start_error);
}

static zsock_t *connect_as(fixture_t *f, const char *endpoint, zcert_t *cert)
{
    for (size_t i = 0; i < 6; i++)
        if (!f->peers[i]) {
            f->peers[i] = peer_new(endpoint, cert, zcert_public_txt(f->master_cert));
            assert_non_null(f->peers[i]);
            return f->peers[i];
        }
    fail_msg("too many peers");
    return NULL;
}

static void send_hello(zsock_t *sock, const char *name)
{
    proto_device_t dev = { .name = "hb-01", .type = "highbank", .state = "idle" };
    proto_msg_t msg = { .type = PROTO_MSG_HELLO, .version = PROTO_VERSION };
    msg.u.hello = (proto_hello_t) { .worker = (char *) name, .version = "test",
                                    .proto_min = PROTO_VERSION_MIN, .proto_max = PROTO_VERSION,
                                    .devices = &dev, .devices_count = 1 };
    assert_int_equal(peer_send(sock, &msg), 0);
}

static void send_event(zsock_t *sock, uint64_t job, const char *text)
{
    proto_msg_t msg = { .type = PROTO_MSG_JOB_EVENT, .version = PROTO_VERSION };
    msg.u.job_event = (proto_job_event_t) { .job = job, .seq = 1, .ts = 1, .kind = "log",
                                            .data = (uint8_t *) text, .data_len = strlen(text) };
    assert_int_equal(peer_send(sock, &msg), 0);
}

static void send_heartbeat(zsock_t *sock)
{
    proto_msg_t msg = { .type = PROTO_MSG_HEARTBEAT, .version = PROTO_VERSION };
    msg.u.heartbeat.seq = 1;
    assert_int_equal(peer_send(sock, &msg), 0);
}

/* Send a client request and return the reply type; *REPLY keeps it (free it). */
static proto_type_t request(zsock_t *client, proto_msg_t *req, proto_msg_t *reply)
{
    assert_int_equal(peer_send(client, req), 0);
    assert_int_equal(peer_recv(client, WAIT_MS, reply), 0);
    return reply->type;
}

static proto_type_t submit(zsock_t *client, const char *yaml, proto_msg_t *reply)
{
    proto_msg_t msg = { .type = PROTO_MSG_SUBMIT, .version = PROTO_VERSION };
    msg.u.submit.yaml = (char *) yaml;
    return request(client, &msg, reply);
}

static size_t count_workers(fixture_t *f, zsock_t *client, const char *name, char *state,
                            size_t len)
{
    proto_msg_t req = { .type = PROTO_MSG_WORKERS, .version = PROTO_VERSION }, reply;
    assert_int_equal(request(client, &req, &reply), PROTO_MSG_WORKER_LIST);
    size_t n = 0;
    for (size_t i = 0; i < reply.u.worker_list.workers_count; i++)
        if (streq(reply.u.worker_list.workers[i].name, name)) {
            n++;
            if (state)
                snprintf(state, len, "%s", reply.u.worker_list.workers[i].state);
        }
    proto_msg_free(&reply);
    return n;
}

/* Rows of SQL (a count query) in the master's database, after it stopped. */
static long db_count(fixture_t *f, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    long n = -1;
    assert_int_equal(sqlite3_open_v2(f->h->config->db_path, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
        n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
}

/* ---- workers ---- */

static void test_unknown_worker_key_is_refused_and_nothing_it_sends_is_stored(void **state)
{
    fixture_t *f = *state;
    start(f);
    zsock_t *rogue = connect_as(f, f->h->worker_ep, f->rogue);
    send_hello(rogue, "rogue");
    send_event(rogue, 1, "rogue log line");
    send_heartbeat(rogue);
    proto_msg_t msg;
    assert_int_equal(peer_recv(rogue, REFUSED_MS, &msg), -1);  /* CURVE handshake refused */
    zsock_t *client = connect_as(f, f->h->client_ep, f->reader);
    assert_int_equal(count_workers(f, client, "rogue", NULL, 0), 0);
    harness_stop(f->h);
    assert_int_equal(db_count(f, "SELECT count(*) FROM workers"), 0);
    assert_int_equal(db_count(f, "SELECT count(*) FROM devices"), 0);
    assert_int_equal(db_count(f, "SELECT count(*) FROM events"), 0);
}

static void test_a_worker_key_cannot_speak_for_another_worker(void **state)
{
    fixture_t *f = *state;
    start(f);
    zsock_t *worker = connect_as(f, f->h->worker_ep, f->w1);
    send_hello(worker, "w2");
    proto_msg_t msg;
    assert_int_equal(peer_recv(worker, WAIT_MS, &msg), 0);
    assert_int_equal(msg.type, PROTO_MSG_ERROR);
    assert_string_equal(msg.u.error.code, "denied");
    assert_non_null(strstr(msg.u.error.text, "only speak for worker 'w1'"));
    proto_msg_free(&msg);
    send_hello(worker, "w1");                       /* its own name is fine */
    assert_int_equal(peer_expect(worker, PROTO_MSG_WELCOME, WAIT_MS, &msg), 0);
    proto_msg_free(&msg);
    zsock_t *client = connect_as(f, f->h->client_ep, f->reader);
    assert_int_equal(count_workers(f, client, "w2", NULL, 0), 0);
    assert_int_equal(count_workers(f, client, "w1", NULL, 0), 1);
}

static void test_a_worker_cannot_send_events_for_another_workers_job(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(save_public(f, f->rogue, "workers/w2", NULL), 0);
    start(f);
    zsock_t *w2 = connect_as(f, f->h->worker_ep, f->rogue);
    send_hello(w2, "w2");
    proto_msg_t msg;
    assert_int_equal(peer_expect(w2, PROTO_MSG_WELCOME, WAIT_MS, &msg), 0);
    proto_msg_free(&msg);
    zsock_t *client = connect_as(f, f->h->client_ep, f->submitter);
    assert_int_equal(submit(client, JOB_YAML, &msg), PROTO_MSG_SUBMITTED);
    uint64_t job = msg.u.submitted.job;
    proto_msg_free(&msg);
    assert_int_equal(peer_expect(w2, PROTO_MSG_JOB_START, WAIT_MS, &msg), 0);  /* w2's job */
    proto_msg_free(&msg);

    zsock_t *w1 = connect_as(f, f->h->worker_ep, f->w1);
    send_hello(w1, "w1");
    assert_int_equal(peer_expect(w1, PROTO_MSG_WELCOME, WAIT_MS, &msg), 0);
    proto_msg_free(&msg);
    send_event(w1, job, "forged by w1");
    assert_int_equal(peer_expect(w1, PROTO_MSG_ERROR, WAIT_MS, &msg), 0);
    assert_string_equal(msg.u.error.code, "denied");
    assert_non_null(strstr(msg.u.error.text, "not this worker's"));
    proto_msg_free(&msg);
    harness_stop(f->h);
    assert_int_equal(db_count(f, "SELECT count(*) FROM events"), 0);
}

static void test_a_removed_worker_key_loses_its_live_session(void **state)
{
    fixture_t *f = *state;
    start(f);
    zsock_t *worker = connect_as(f, f->h->worker_ep, f->w1);
    send_hello(worker, "w1");
    proto_msg_t msg;
    assert_int_equal(peer_expect(worker, PROTO_MSG_WELCOME, WAIT_MS, &msg), 0);
    proto_msg_free(&msg);
    assert_int_equal(unlink(harness_path(f->h, 0, "workers/w1")), 0);
    zclock_sleep(300);                              /* inotify + one tick of 100 ms */
    send_heartbeat(worker);
    assert_int_equal(peer_expect(worker, PROTO_MSG_ERROR, WAIT_MS, &msg), 0);
    assert_string_equal(msg.u.error.code, "denied");
    proto_msg_free(&msg);
    char st[32] = "";
    zsock_t *client = connect_as(f, f->h->client_ep, f->reader);
    assert_int_equal(count_workers(f, client, "w1", st, sizeof st), 1);
    assert_string_equal(st, "lost");
}

static void test_a_client_key_added_to_the_allow_list_works_without_restart(void **state)
{
    fixture_t *f = *state;
    start(f);
    zsock_t *late = connect_as(f, f->h->client_ep, f->rogue);
    proto_msg_t req = { .type = PROTO_MSG_WORKERS, .version = PROTO_VERSION }, reply;
    assert_int_equal(peer_send(late, &req), 0);
    assert_int_equal(peer_recv(late, REFUSED_MS, &reply), -1);     /* not yet allowed */
    assert_int_equal(save_public(f, f->rogue, "clients/late", NULL), 0);
    zsock_t *again = connect_as(f, f->h->client_ep, f->rogue);
    assert_int_equal(request(again, &req, &reply), PROTO_MSG_WORKER_LIST);
    proto_msg_free(&reply);
}

/* ---- client roles ---- */

static void test_a_read_only_client_can_list_but_not_submit_or_cancel(void **state)
{
    fixture_t *f = *state;
    start(f);
    zsock_t *reader = connect_as(f, f->h->client_ep, f->reader);
    proto_msg_t reply;
    assert_int_equal(submit(reader, JOB_YAML, &reply), PROTO_MSG_ERROR);
    assert_string_equal(reply.u.error.code, "denied");
    assert_non_null(strstr(reply.u.error.text, "role submit"));
    assert_non_null(strstr(reply.u.error.text, "has role read"));
    proto_msg_free(&reply);
    proto_msg_t cancel = { .type = PROTO_MSG_CANCEL, .version = PROTO_VERSION };
    cancel.u.cancel.job = 1;
    assert_int_equal(request(reader, &cancel, &reply), PROTO_MSG_ERROR);
    assert_string_equal(reply.u.error.code, "denied");
    proto_msg_free(&reply);
    proto_msg_t jobs = { .type = PROTO_MSG_JOBS, .version = PROTO_VERSION };
    assert_int_equal(request(reader, &jobs, &reply), PROTO_MSG_JOB_LIST);
    assert_int_equal(reply.u.job_list.jobs_count, 0);              /* nothing was queued */
    proto_msg_free(&reply);
    proto_msg_t logs = { .type = PROTO_MSG_LOGS, .version = PROTO_VERSION };
    logs.u.logs.job = 1;
    assert_int_equal(request(reader, &logs, &reply), PROTO_MSG_ERROR);
    assert_string_equal(reply.u.error.code, "not_found");          /* allowed, no such job */
    proto_msg_free(&reply);
}

static void test_a_submit_client_cannot_change_device_state_but_admin_can(void **state)
{
    fixture_t *f = *state;
    start(f);
    zsock_t *submitter = connect_as(f, f->h->client_ep, f->submitter);
    proto_msg_t reply;
    assert_int_equal(submit(submitter, JOB_YAML, &reply), PROTO_MSG_SUBMITTED);
    proto_msg_free(&reply);
    proto_msg_t devset = { .type = PROTO_MSG_DEVICE_SET, .version = PROTO_VERSION };
    devset.u.device_set = (proto_device_set_t) { .device = "hb-01", .maintenance = true };
    assert_int_equal(request(submitter, &devset, &reply), PROTO_MSG_ERROR);
    assert_string_equal(reply.u.error.code, "denied");
    assert_non_null(strstr(reply.u.error.text, "role admin"));
    proto_msg_free(&reply);
    zsock_t *admin = connect_as(f, f->h->client_ep, f->admin);
    assert_int_equal(request(admin, &devset, &reply), PROTO_MSG_ERROR);
    assert_string_equal(reply.u.error.code, "not_found");         /* allowed: no such device */
    proto_msg_free(&reply);
}

/* Run the rackrun CLI as the client KEY_NAME; exit status, stderr in ERR. */
static int run_cli(fixture_t *f, const char *key_name, const char *args, char *err, size_t len)
{
    const char *bin_dir = getenv("RR_BINARY_DIR");
    if (!bin_dir)
        skip();
    char secret[512], command[4096];
    snprintf(secret, sizeof secret, "%s", harness_path(f->h, 1, key_name));
    snprintf(command, sizeof command, "%s/cli/rackrun --master %s --key %s --master-key %s "
             "--timeout 3s %s 2>&1 >/dev/null", bin_dir, f->h->client_ep, secret,
             harness_path(f->h, 2, "master"), args);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    size_t n = fread(err, 1, len - 1, pipe);
    err[n] = '\0';
    int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_the_cli_shows_a_role_refusal_as_a_clear_error(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(zcert_save(f->reader, harness_path(f->h, 0, "reader")), 0);
    assert_int_equal(chmod(harness_path(f->h, 0, "reader_secret"), 0600), 0);
    FILE *job = fopen(harness_path(f->h, 0, "job.yaml"), "w");
    assert_non_null(job);
    fputs(JOB_YAML, job);
    fclose(job);
    start(f);
    char err[2048], args[600];
    snprintf(args, sizeof args, "submit %s", harness_path(f->h, 0, "job.yaml"));
    assert_int_equal(run_cli(f, "reader_secret", args, err, sizeof err), 1);
    assert_non_null(strstr(err, "denied"));
    assert_non_null(strstr(err, "needs a client key with role submit"));
    assert_int_equal(run_cli(f, "reader_secret", "workers", err, sizeof err), 0);
}

static void test_keygen_writes_the_role_a_client_key_gets(void **state)
{
    fixture_t *f = *state;
    const char *bin_dir = getenv("RR_BINARY_DIR");
    if (!bin_dir)
        skip();
    char command[2048];
    snprintf(command, sizeof command, "%s/cli/rackrun keygen %s ops --role admin >/dev/null",
             bin_dir, harness_path(f->h, 0, "keys"));
    assert_int_equal(system(command), 0);
    zcert_t *cert = zcert_load(harness_path(f->h, 0, "keys/ops"));
    assert_non_null(cert);
    assert_string_equal(zcert_meta(cert, "role"), "admin");
    assert_string_equal(zcert_meta(cert, "name"), "ops");
    zcert_destroy(&cert);
    struct stat st;
    assert_int_equal(stat(harness_path(f->h, 0, "keys/ops_secret"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(command, sizeof command, "%s/cli/rackrun keygen %s x --role root 2>/dev/null",
             bin_dir, harness_path(f->h, 0, "keys"));
    int status = system(command);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
}

/* ---- untrusted job content at submit ---- */

static void expect_invalid(zsock_t *client, const char *yaml, const char *code, const char *text)
{
    proto_msg_t reply;
    assert_int_equal(submit(client, yaml, &reply), PROTO_MSG_ERROR);
    assert_string_equal(reply.u.error.code, code);
    if (!strstr(reply.u.error.text, text))
        fail_msg("error '%s' does not say '%s'", reply.u.error.text, text);
    proto_msg_free(&reply);
}

static void test_a_job_naming_an_artifact_outside_its_directory_is_refused(void **state)
{
    fixture_t *f = *state;
    start(f);
    zsock_t *client = connect_as(f, f->h->client_ep, f->submitter);
    expect_invalid(client, "job_name: t\ndevice_type: highbank\nactions:\n"
                   "  - transfer: {from: /root/r.tgz, to: ../../etc/passwd}\n",
                   "invalid", "'../../etc/passwd': must be a file name, not a path");
    expect_invalid(client, "job_name: t\ndevice_type: highbank\nactions:\n"
                   "  - deploy: {to: tftp, kernel: {url: \"file:///srv/a/../../etc/shadow\"}}\n",
                   "invalid", "must not contain '..'");
    expect_invalid(client, "job_name: t\ndevice_type: highbank\nactions:\n"
                   "  - deploy: {to: tftp, kernel: {url: \"ftp://example.org/k\"}}\n",
                   "invalid", "unsupported URL");
}

static void test_a_job_larger_than_max_job_yaml_is_refused(void **state)
{
    fixture_t *f = *state;
    f->h->config->max_job_yaml_bytes = 512;
    start(f);
    zsock_t *client = connect_as(f, f->h->client_ep, f->submitter);
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%s# %0900d\n", JOB_YAML, 0);
    expect_invalid(client, yaml, "too_big", "larger than the master's limit of 512 bytes");
    proto_msg_t reply;
    assert_int_equal(submit(client, JOB_YAML, &reply), PROTO_MSG_SUBMITTED);
    proto_msg_free(&reply);
}

static void test_a_job_referring_to_an_unlisted_secret_is_refused(void **state)
{
    fixture_t *f = *state;
    start(f);
    zsock_t *client = connect_as(f, f->h->client_ep, f->submitter);
    expect_invalid(client, "job_name: t\ndevice_type: highbank\nsecrets: [token]\nactions:\n"
                   "  - test: {steps: [{name: s, run: \"echo {{secret:other}}\"}]}\n",
                   "invalid", "secret 'other' is not listed");
    proto_msg_t reply;
    assert_int_equal(submit(client, "job_name: t\ndevice_type: highbank\nsecrets: [token]\n"
                            "actions:\n  - test: {steps: [{name: s, run: \"login "
                            "{{secret:token}}\"}]}\n", &reply), PROTO_MSG_SUBMITTED);
    proto_msg_free(&reply);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    const struct CMUnitTest tests[] = {
        T(test_unknown_worker_key_is_refused_and_nothing_it_sends_is_stored),
        T(test_a_worker_key_cannot_speak_for_another_worker),
        T(test_a_worker_cannot_send_events_for_another_workers_job),
        T(test_a_removed_worker_key_loses_its_live_session),
        T(test_a_client_key_added_to_the_allow_list_works_without_restart),
        T(test_a_read_only_client_can_list_but_not_submit_or_cancel),
        T(test_a_submit_client_cannot_change_device_state_but_admin_can),
        T(test_the_cli_shows_a_role_refusal_as_a_clear_error),
        T(test_keygen_writes_the_role_a_client_key_gets),
        T(test_a_job_naming_an_artifact_outside_its_directory_is_refused),
        T(test_a_job_larger_than_max_job_yaml_is_refused),
        T(test_a_job_referring_to_an_unlisted_secret_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
