/* test_artifact_transfer.c: artifacts end to end through the real programs.
 *
 * An emulated rack of one fast shell node (tests/rig), rackrun-master,
 * rackrun-worker and the rackrun CLI, as separate processes on 127.0.0.1
 * (plaintext: CURVE is tested elsewhere). The node serves / with busybox httpd
 * on a free port (the device's `http:`); a job types a step that starts it,
 * then `transfer`s a file the test wrote. The test then asks `rackrun
 * artifacts` and `rackrun fetch` and compares the bytes; one test kills the
 * master (-9) in the middle of the upload and restarts it.
 *
 * Every process is started with PR_SET_PDEATHSIG and stopped by the teardown,
 * also when a check fails; the scratch dir is kept then (and with
 * RR_KEEP_RIG=1). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "digest.h"
#include "proto.h"
#include "rig.h"
#include "testtime.h"
#include "tmpdir.h"

#define PATH_LEN 4096
#define CLI_TIMEOUT_MS 20000
#define JOB_TIMEOUT_MS 90000

typedef struct {
    char *dir;
    char bin[PATH_LEN];
    rr_rig_t *rig;
    pid_t master, worker;
    int master_runs;            /* master<N>.log per run */
    char worker_ep[64], client_ep[64];
    int http_port;
    char payload[PATH_LEN];
    bool passed;
} art_t;

/* ---- small helpers ---- */

static const char *path_in(art_t *a, int slot, const char *name)
{
    static char bufs[4][PATH_LEN];
    snprintf(bufs[slot], PATH_LEN, "%.3000s/%s", a->dir, name);
    return bufs[slot];
}

static int free_port(void)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0
        && getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* fork + exec ARGV, stdout to OUT and stderr to ERR (appended); dies with us. */
static pid_t spawn(char *const argv[], const char *out, const char *err)
{
    pid_t parent = getpid(), pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int o = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int e = open(err, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (o < 0 || e < 0 || null < 0)
        _exit(127);
    dup2(null, 0);
    dup2(o, 1);
    dup2(e, 2);
    execv(argv[0], argv);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* SIG, then wait (SIGKILL after 10 s); returns the wait status. */
static int reap(pid_t *pid, int sig)
{
    int status = 0;
    if (*pid <= 0)
        return 0;
    kill(*pid, SIGCONT);
    kill(*pid, sig);
    int64_t deadline = testtime_now_ms() + 10000;
    while (waitpid(*pid, &status, WNOHANG) == 0) {
        if (testtime_now_ms() > deadline) {
            kill(*pid, SIGKILL);
            waitpid(*pid, &status, 0);
            break;
        }
        testtime_nap_ms(10);
    }
    *pid = 0;
    return status;
}

static void dump(art_t *a, const char *name)
{
    char *text = tmpdir_slurp(path_in(a, 3, name), NULL);
    size_t len = text ? strlen(text) : 0;
    fprintf(stderr, "---- %s (tail) ----\n%s\n", name, text ? text + (len > 4000 ? len - 4000 : 0)
                                                            : "(none)");
    free(text);
}

/* ---- the installation ---- */

static int master_start(art_t *a)
{
    char bin[PATH_LEN + 32], log[64];
    snprintf(bin, sizeof bin, "%s/master/rackrun-master", a->bin);
    snprintf(log, sizeof log, "master%d.log", ++a->master_runs);
    char *argv[] = { bin, "--config", (char *)path_in(a, 0, "master.yaml"), "--insecure",
                     "--log-level", "debug", NULL };
    a->master = spawn(argv, path_in(a, 1, log), path_in(a, 2, log));
    return a->master > 0 ? 0 : -1;
}

/* The master's and the worker's configuration; MASTER_EXTRA: lines added to the master's. */
static int write_configs(art_t *a, const char *master_extra)
{
    char text[8192];
    const rr_rig_node_t *node = rr_rig_node(a->rig, 0);
    snprintf(text, sizeof text,
             "db: %s/master.db\nworker_endpoint: %s\nclient_endpoint: %s\n"
             "http_listen: \"off\"\nheartbeat_interval: 200ms\nheartbeat_timeout: 1000ms\n"
             "worker_grace: 30s\n%s",
             a->dir, a->worker_ep, a->client_ep, master_extra);
    if (tmpdir_write(path_in(a, 0, "master.yaml"), text, strlen(text)) < 0)
        return -1;
    snprintf(text, sizeof text,
             "worker: rack0\nmaster: %s\ntftp_root: %s/tftp\nspool_dir: %s/spool\n"
             "artifacts_dir: %s/worker-artifacts\nheartbeat_interval: 200ms\n"
             "device_types:\n  art:\n    prompts: [\"# \"]\n"
             "    serial: {test_shell_delay_ms: 1}\n    ipmi: {timeout: 1000ms, retries: 2}\n"
             "    sol: {timeout: 5000ms}\n"
             "devices:\n  - name: %s\n    type: art\n"
             "    bmc: {host: \"%s\", port: %u, user: %s, password_file: %s}\n"
             "    mac: \"%s\"\n    http: \"127.0.0.1:%d\"\n",
             a->worker_ep, a->dir, a->dir, a->dir, node->name, node->host, node->port,
             node->user, rr_rig_password_file(a->rig), node->mac, a->http_port);
    return tmpdir_write(path_in(a, 0, "worker.yaml"), text, strlen(text));
}

static int worker_start(art_t *a)
{
    char bin[PATH_LEN + 32];
    snprintf(bin, sizeof bin, "%s/worker/rackrun-worker", a->bin);
    char *argv[] = { bin, "--config", (char *)path_in(a, 0, "worker.yaml"), "--insecure",
                     "--log-level", "debug", NULL };
    a->worker = spawn(argv, path_in(a, 1, "worker.log"), path_in(a, 2, "worker.log"));
    return a->worker > 0 ? 0 : -1;
}

/* One text value from the master's database (read-only, a fresh connection:
 * the master restarts under us). "" when there is no row. */
static char *db_text(art_t *a, char *buf, size_t len, const char *fmt, ...)
{
    char sql[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    buf[0] = '\0';
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(path_in(a, 0, "master.db"), &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK
        && sqlite3_busy_timeout(db, 2000) == SQLITE_OK
        && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW
        && sqlite3_column_text(st, 0))
        snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return buf;
}

static bool wait_db(art_t *a, const char *want, int timeout_ms, const char *sql)
{
    char got[256];
    for (int64_t end = testtime_now_ms() + timeout_ms; testtime_now_ms() < end; testtime_nap_ms(50))
        if (!strcmp(db_text(a, got, sizeof got, "%s", sql), want))
            return true;
    fprintf(stderr, "waited %d ms for '%s' to give '%s': got '%s'\n", timeout_ms, sql, want, got);
    return false;
}

/* Deterministic bytes (xorshift), not compressible, to FILE. */
static void write_payload(const char *file, size_t size, uint64_t seed)
{
    uint8_t *data = malloc(size ? size : 1);
    assert_non_null(data);
    for (size_t i = 0; i < size; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        data[i] = (uint8_t)seed;
    }
    assert_int_equal(tmpdir_write(file, data, size), 0);
    free(data);
}

static int teardown(void **state);

/* cmocka runs no teardown after a failed setup: stop what it started itself. */
static int setup_failed(void **state)
{
    teardown(state);
    *state = NULL;
    return -1;
}

static int setup_with(void **state, const char *master_extra)
{
    art_t *a = calloc(1, sizeof *a);
    const char *bin = getenv("RR_BINARY_DIR");
    if (!a || !(a->dir = tmpdir_new("artifacts")))
        return -1;
    *state = a;
    snprintf(a->bin, sizeof a->bin, "%s", bin && *bin ? bin : ".");
    char opts[PATH_LEN + 64];
    snprintf(opts, sizeof opts, "--tftp-root %s", path_in(a, 0, "tftp"));
    mkdir(path_in(a, 0, "tftp"), 0755);
    int wport = free_port(), cport = free_port();
    a->http_port = free_port();
    snprintf(a->worker_ep, sizeof a->worker_ep, "tcp://127.0.0.1:%d", wport);
    snprintf(a->client_ep, sizeof a->client_ep, "tcp://127.0.0.1:%d", cport);
    if (wport < 0 || cport < 0 || a->http_port < 0 || wport == cport
        || !(a->rig = rr_rig_start(1, opts)) || write_configs(a, master_extra) < 0
        || master_start(a) < 0 || worker_start(a) < 0)
        return setup_failed(state);
    if (!wait_db(a, "idle", 30000, "SELECT state FROM devices WHERE name = 'n01'")) {
        dump(a, "master1.log");
        dump(a, "worker.log");
        return setup_failed(state);
    }
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, "");
}

static int setup_small_quota(void **state)
{
    return setup_with(state, "artifact_quota: 1000000\n");
}

static int setup_retention(void **state)
{
    return setup_with(state, "log_retention_age: 2s\n");
}

static int teardown(void **state)
{
    art_t *a = *state;
    if (!a)
        return 0;
    int wstatus = reap(&a->worker, SIGTERM), mstatus = reap(&a->master, SIGTERM);
    bool clean = WIFEXITED(wstatus) && !WEXITSTATUS(wstatus) && WIFEXITED(mstatus)
                 && !WEXITSTATUS(mstatus);
    if (!clean) {
        fprintf(stderr, "worker status 0x%x, master status 0x%x\n", wstatus, mstatus);
        dump(a, "worker.log");
    }
    rr_rig_stop(&a->rig);
    const char *keep = getenv("RR_KEEP_RIG");
    if (a->passed && clean && !(keep && *keep && strcmp(keep, "0")))
        tmpdir_remove(&a->dir);
    else
        fprintf(stderr, "kept %s\n", a->dir);
    free(a->dir);
    free(a);
    return clean ? 0 : -1;
}

/* Run the CLI (--insecure, this master) with ARGS; its stdout malloc'd into *OUT. */
static int cli(art_t *a, char **out, const char *first, ...)
{
    char bin[PATH_LEN + 32];
    char *argv[16] = { bin, "--insecure", "--master", a->client_ep, (char *)first };
    size_t n = 5;
    va_list ap;
    va_start(ap, first);
    for (const char *arg; n < 15 && (arg = va_arg(ap, const char *));)
        argv[n++] = (char *)arg;
    va_end(ap);
    argv[n] = NULL;
    char out_path[PATH_LEN + 16], err_path[PATH_LEN + 16];   /* not path_in: ARGS may use it */
    snprintf(bin, sizeof bin, "%s/cli/rackrun", a->bin);
    snprintf(out_path, sizeof out_path, "%s/cli.out", a->dir);
    snprintf(err_path, sizeof err_path, "%s/cli.err", a->dir);
    unlink(out_path);
    pid_t pid = spawn(argv, out_path, err_path);
    int status = -1;
    for (int64_t end = testtime_now_ms() + CLI_TIMEOUT_MS; waitpid(pid, &status, WNOHANG) == 0; testtime_nap_ms(10))
        if (testtime_now_ms() > end)
            reap(&pid, SIGKILL);
    if (out)
        *out = tmpdir_slurp(out_path, NULL);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static uint64_t submit_transfer(art_t *a, const char *name)
{
    char yaml[3 * PATH_LEN], *out = NULL;
    snprintf(yaml, sizeof yaml,
             "job_name: artifact transfer\ndevice_type: art\n"
             "timeouts: {job: 3m, action: 90s}\nactions:\n"
             "  - boot: {method: ipmi-disk, prompts: [\"# \"], timeout: 30s}\n"
             "  - test:\n      steps:\n        - name: serve\n"
             /* The node's httpd: busybox, on the device's port; `httpd` a no-op so the
              * transfer's own "start httpd if none runs" finds it serving. */
             "          run: 'httpd() { :; }; (busybox httpd -f -p 127.0.0.1:%d -h / &);"
             " i=0; until busybox wget -q -O /dev/null http://127.0.0.1:%d%s; do"
             " i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done'\n"
             "  - transfer: {from: %s, to: %s}\n",
             a->http_port, a->http_port, a->payload, a->payload, name);
    assert_int_equal(tmpdir_write(path_in(a, 0, "job.yaml"), yaml, strlen(yaml)), 0);
    assert_int_equal(cli(a, &out, "submit", path_in(a, 1, "job.yaml"), NULL), 0);
    uint64_t job = out ? strtoull(out, NULL, 10) : 0;
    free(out);
    assert_true(job > 0);
    return job;
}

static void expect_finished(art_t *a, uint64_t job, const char *outcome)
{
    char sql[128], got[64];
    snprintf(sql, sizeof sql, "SELECT state FROM jobs WHERE id = %" PRIu64, job);
    bool done = wait_db(a, "finished", JOB_TIMEOUT_MS, sql);
    if (!done || strcmp(db_text(a, got, sizeof got, "SELECT outcome FROM jobs WHERE id = %"
                                PRIu64, job), outcome)) {
        dump(a, "worker.log");
        dump(a, a->master_runs > 1 ? "master2.log" : "master1.log");
        fprintf(stderr, "job %" PRIu64 ": reason %s\n", job, db_text(a, got, sizeof got,
                "SELECT reason FROM jobs WHERE id = %" PRIu64, job));
    }
    assert_true(done);
    assert_string_equal(db_text(a, got, sizeof got, "SELECT outcome FROM jobs WHERE id = %"
                                PRIu64, job), outcome);
}

/* `rackrun fetch` into a file; it must hold exactly the payload's bytes. */
static void expect_fetch_identical(art_t *a, uint64_t job, const char *name)
{
    char id[24], *out = NULL;
    snprintf(id, sizeof id, "%" PRIu64, job);
    const char *dest = path_in(a, 2, "fetched.bin");
    assert_int_equal(cli(a, &out, "fetch", id, name, "-o", dest, NULL), 0);
    free(out);
    size_t want_len = 0, got_len = 0;
    char *want = tmpdir_slurp(a->payload, &want_len), *got = tmpdir_slurp(dest, &got_len);
    assert_non_null(want);
    assert_non_null(got);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    free(want);
    free(got);
}

/* ---- tests ---- */

static void test_transferred_file_is_listed_and_fetched_identical(void **state)
{
    art_t *a = *state;
    char sha[RR_SHA256_HEX], got[128], want[128], id[24], *out = NULL;
    snprintf(a->payload, sizeof a->payload, "%s", path_in(a, 0, "payload.bin"));
    write_payload(a->payload, 3 * 1024 * 1024 + 12345, 42);
    assert_int_equal(rr_sha256_file(a->payload, sha, NULL), 0);
    uint64_t job = submit_transfer(a, "payload.bin");
    expect_finished(a, job, "complete");
    /* The end waits for the upload: once finished, the artifact is whole. */
    snprintf(want, sizeof want, "1:%d:%s", 3 * 1024 * 1024 + 12345, sha);
    assert_string_equal(db_text(a, got, sizeof got, "SELECT complete || ':' || size || ':' ||"
                                " sha256 FROM artifacts WHERE job = %" PRIu64, job), want);
    snprintf(id, sizeof id, "%" PRIu64, job);
    assert_int_equal(cli(a, &out, "artifacts", id, NULL), 0);
    assert_non_null(out);
    assert_non_null(strstr(out, "payload.bin"));
    assert_non_null(strstr(out, sha));
    assert_non_null(strstr(out, "3158073"));
    assert_non_null(strstr(out, "complete"));
    free(out);
    expect_fetch_identical(a, job, "payload.bin");
    assert_int_not_equal(cli(a, NULL, "fetch", id, "no-such-artifact", "-o",
                             path_in(a, 0, "nothing.bin"), NULL), 0);
    assert_int_equal(access(path_in(a, 0, "nothing.bin"), F_OK), -1);
    a->passed = true;
}

/* Submit a 24 MiB transfer and freeze WHO (the master or the worker) once the
 * master has stored its first chunk; checks the upload really is cut in the
 * middle. Returns the job. */
static uint64_t upload_frozen_midway(art_t *a, pid_t who, const char *whose)
{
    char part[PATH_LEN + 64];
    snprintf(a->payload, sizeof a->payload, "%s", path_in(a, 0, "big.bin"));
    write_payload(a->payload, 24 * 1024 * 1024, 7);
    uint64_t job = submit_transfer(a, "big.bin");
    snprintf(part, sizeof part, "%s/artifacts/%" PRIu64 ".partial/big.bin", a->dir, job);
    struct stat st = { 0 };
    char sql[128], got[16];
    int64_t end = testtime_now_ms() + JOB_TIMEOUT_MS;
    while ((stat(part, &st) < 0 || st.st_size < PROTO_ARTIFACT_CHUNK) && testtime_now_ms() < end)
        testtime_nap_ms(2);
    /* ... and the upload's row is committed (the master writes it in the same
     * transaction as the messages around it: a master killed before that commit
     * has, rightly, no upload to go on with). */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM artifacts WHERE job = %" PRIu64, job);
    while (strcmp(db_text(a, got, sizeof got, "%s", sql), "1") && testtime_now_ms() < end)
        testtime_nap_ms(2);
    kill(who, SIGSTOP);
    assert_int_equal(stat(part, &st), 0);
    fprintf(stderr, "%s stopped with %lld of %d bytes stored\n", whose, (long long)st.st_size,
            24 * 1024 * 1024);
    assert_true(st.st_size >= PROTO_ARTIFACT_CHUNK && st.st_size < 24 * 1024 * 1024);
    return job;
}

static void test_master_killed_mid_upload_still_ends_with_the_whole_file(void **state)
{
    art_t *a = *state;
    char got[64];
    uint64_t job = upload_frozen_midway(a, a->master, "master");
    reap(&a->master, SIGKILL);
    assert_int_equal(master_start(a), 0);
    expect_finished(a, job, "complete");
    assert_string_equal(db_text(a, got, sizeof got, "SELECT complete FROM artifacts WHERE job = %"
                                PRIu64, job), "1");
    expect_fetch_identical(a, job, "big.bin");
    /* The restarted master went on with the upload it had, it did not begin it anew. */
    char *log = tmpdir_slurp(path_in(a, 0, "master2.log"), NULL);
    assert_non_null(log);
    assert_null(strstr(log, "'big.bin' (25165824 bytes) uploading"));
    assert_non_null(strstr(log, "'big.bin' stored"));
    free(log);
    a->passed = true;
}

/* The worker dies -9 in the middle of an upload and comes back: it finds the
 * pending artifact (its hard link in <artifacts_dir>/<job>.pending) and goes
 * on from the master's offset: the file is stored whole. The job itself ends
 * truthfully: complete if its end was spooled before the kill, else (the
 * runner was still powering the node off) "worker restarted during the job". */
static void test_worker_killed_mid_upload_still_ends_with_the_whole_file(void **state)
{
    art_t *a = *state;
    char got[1024], sql[128];
    uint64_t job = upload_frozen_midway(a, a->worker, "worker");
    reap(&a->worker, SIGKILL);
    assert_int_equal(worker_start(a), 0);
    snprintf(sql, sizeof sql, "SELECT state FROM jobs WHERE id = %" PRIu64, job);
    assert_true(wait_db(a, "finished", JOB_TIMEOUT_MS, sql));
    db_text(a, got, sizeof got, "SELECT outcome || ': ' || coalesce(reason, '') FROM jobs "
            "WHERE id = %" PRIu64, job);
    if (strcmp(got, "complete: ") && strcmp(got, "incomplete: worker restarted during the job"))
        fail_msg("job %" PRIu64 " ended '%s'", job, got);
    snprintf(sql, sizeof sql, "SELECT complete FROM artifacts WHERE job = %" PRIu64, job);
    assert_true(wait_db(a, "1", JOB_TIMEOUT_MS, sql));
    expect_fetch_identical(a, job, "big.bin");
    a->passed = true;
}

static void test_artifact_over_the_quota_is_refused_and_the_job_still_ends(void **state)
{
    art_t *a = *state;
    char id[24], *out = NULL;
    snprintf(a->payload, sizeof a->payload, "%s", path_in(a, 0, "payload.bin"));
    write_payload(a->payload, 2 * 1000 * 1000, 3);
    uint64_t job = submit_transfer(a, "payload.bin");
    expect_finished(a, job, "complete");
    snprintf(id, sizeof id, "%" PRIu64, job);
    assert_int_equal(cli(a, &out, "artifacts", id, NULL), 0);
    assert_non_null(out);
    assert_non_null(strstr(out, "failed"));
    assert_non_null(strstr(out, "over the master's artifact_quota of 1000000 bytes"));
    free(out);
    assert_int_not_equal(cli(a, NULL, "fetch", id, "payload.bin", "-o",
                             path_in(a, 0, "nothing.bin"), NULL), 0);
    a->passed = true;
}

/* log_retention_age: a job's artifacts go with its log. The next job's end
 * runs a retention pass: the first job, ended over 2 s before, loses its
 * files; its row says removed and why; the new job's artifact stays whole. */
static void test_retention_removes_an_old_jobs_artifacts_with_its_log(void **state)
{
    art_t *a = *state;
    char sql[160], dir[PATH_LEN + 32], id[24], *out = NULL;
    snprintf(a->payload, sizeof a->payload, "%s", path_in(a, 0, "old.bin"));
    write_payload(a->payload, 300000, 11);
    uint64_t old = submit_transfer(a, "old.bin");
    expect_finished(a, old, "complete");
    snprintf(dir, sizeof dir, "%s/artifacts/%" PRIu64 "/old.bin", a->dir, old);
    assert_int_equal(access(dir, F_OK), 0);
    testtime_nap_ms(2100);
    snprintf(a->payload, sizeof a->payload, "%s", path_in(a, 0, "new.bin"));
    write_payload(a->payload, 200000, 12);
    uint64_t young = submit_transfer(a, "new.bin");
    expect_finished(a, young, "complete");
    snprintf(sql, sizeof sql, "SELECT complete FROM artifacts WHERE job = %" PRIu64, old);
    assert_true(wait_db(a, "2", 20000, sql));
    /* The row says removed first, then the files go (a crash between leaves files
     * that the next walk deletes, never a row pointing at missing bytes). */
    snprintf(dir, sizeof dir, "%s/artifacts/%" PRIu64, a->dir, old);
    for (int64_t end = testtime_now_ms() + 5000; access(dir, F_OK) == 0 && testtime_now_ms() < end;)
        testtime_nap_ms(10);
    assert_int_equal(access(dir, F_OK), -1);            /* the file and the job's directory */
    snprintf(id, sizeof id, "%" PRIu64, old);
    assert_int_equal(cli(a, &out, "artifacts", id, NULL), 0);
    assert_non_null(out);
    assert_non_null(strstr(out, "removed: removed by log retention (older than log_retention_age)"));
    free(out);
    assert_int_not_equal(cli(a, NULL, "fetch", id, "old.bin", "-o", path_in(a, 0, "nothing.bin"),
                             NULL), 0);
    expect_fetch_identical(a, young, "new.bin");
    char *log = tmpdir_slurp(path_in(a, 0, "master1.log"), NULL);
    assert_non_null(log);
    snprintf(sql, sizeof sql, "retention: job %" PRIu64 ": 1 artifact(s) removed (300000 bytes;", old);
    assert_non_null(strstr(log, sql));
    free(log);
    a->passed = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_transferred_file_is_listed_and_fetched_identical,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_master_killed_mid_upload_still_ends_with_the_whole_file,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_killed_mid_upload_still_ends_with_the_whole_file,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_artifact_over_the_quota_is_refused_and_the_job_still_ends,
                                        setup_small_quota, teardown),
        cmocka_unit_test_setup_teardown(test_retention_removes_an_old_jobs_artifacts_with_its_log,
                                        setup_retention, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
