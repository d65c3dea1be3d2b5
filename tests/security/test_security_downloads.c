/* test_security_downloads.c: job URLs cannot read or fill what they should not.
 *
 * rr_tftp_download as the runner calls it for job content (confine_files,
 * the worker's file_roots and max_download): file:///etc/shadow, ".." and a
 * symbolic link out of a root are refused; schemes other than http, https
 * and file are refused; an endless chunked HTTP response without
 * Content-Length (a server thread on 127.0.0.1) stops at the size limit with
 * a clear error. Also: the worker configuration's limits and secrets_dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "tftp.h"
#include "tmpdir.h"

typedef struct {
    char *dir;                  /* scratch: root/ (a file root), out/ (downloads) */
    char root[512], dest[512];
    const char *roots[1];
    rr_download_opts_t opts;
    /* the endless server */
    int listen_fd;
    int port;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    atomic_ullong sent;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f || !(f->dir = tmpdir_new("rr-sec-dl")))
        return -1;
    f->listen_fd = -1;
    snprintf(f->root, sizeof f->root, "%s/root", f->dir);
    snprintf(f->dest, sizeof f->dest, "%s/out", f->dir);
    if (mkdir(f->root, 0755) != 0 || mkdir(f->dest, 0755) != 0)
        return -1;
    strcat(f->dest, "/kernel");
    f->roots[0] = f->root;
    f->opts = (rr_download_opts_t) { .max_bytes = 1024 * 1024, .tries = 1, .timeout_s = 20,
                                     .confine_files = true, .file_roots = f->roots,
                                     .file_root_count = 1 };
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    atomic_store(&f->stop, true);
    if (f->listen_fd >= 0)
        shutdown(f->listen_fd, SHUT_RDWR);
    if (f->thread_started)
        pthread_join(f->thread, NULL);
    if (f->listen_fd >= 0)
        close(f->listen_fd);
    tmpdir_remove(&f->dir);
    free(f);
    return 0;
}

/* Download URL with the fixture's options; 0 or -1 with the error in ERR. */
static int download(fixture_t *f, const char *url, char *err, size_t len)
{
    err[0] = '\0';
    return rr_tftp_download(url, f->dest, NULL, &f->opts, NULL, NULL, err, len);
}

static void expect_refused(fixture_t *f, const char *url, const char *why)
{
    char err[1024];
    assert_int_equal(download(f, url, err, sizeof err), -1);
    if (!strstr(err, why))
        fail_msg("'%s': error '%s' does not say '%s'", url, err, why);
    assert_int_equal(access(f->dest, F_OK), -1);              /* nothing was written */
}

static void test_file_url_outside_the_file_roots_is_refused(void **state)
{
    fixture_t *f = *state;
    expect_refused(f, "file:///etc/shadow", "only beneath the worker's file_roots");
    f->opts.file_root_count = 0;
    expect_refused(f, "file:///etc/shadow", "none configured");
}

static void test_file_url_climbing_out_with_dotdot_is_refused(void **state)
{
    fixture_t *f = *state;
    char url[1100];
    snprintf(url, sizeof url, "file://%s/../../../../etc/passwd", f->root);
    expect_refused(f, url, "file_roots");
    snprintf(url, sizeof url, "file://%s/%%2e%%2e/%%2e%%2e/%%2e%%2e/etc/passwd", f->root);
    expect_refused(f, url, "file");
}

static void test_file_url_through_a_symlink_out_of_the_root_is_refused(void **state)
{
    fixture_t *f = *state;
    char link[600], url[1100];
    snprintf(link, sizeof link, "%s/kernel", f->root);
    assert_int_equal(symlink("/etc/passwd", link), 0);
    snprintf(url, sizeof url, "file://%s/kernel", f->root);
    expect_refused(f, url, "leads out of its file root");
    snprintf(link, sizeof link, "%s/etc", f->root);
    assert_int_equal(symlink("../../../../../../etc", link), 0);
    snprintf(url, sizeof url, "file://%s/etc/passwd", f->root);
    expect_refused(f, url, "leads out of its file root");
}

static void test_file_url_beneath_a_root_is_downloaded(void **state)
{
    fixture_t *f = *state;
    char path[600], url[1100], err[512];
    snprintf(path, sizeof path, "%s/zImage", f->root);
    assert_int_equal(tmpdir_write(path, "kernel bytes", 12), 0);
    snprintf(url, sizeof url, "file://%s/zImage", f->root);
    assert_int_equal(download(f, url, err, sizeof err), 0);
    size_t len = 0;
    char *got = tmpdir_slurp(f->dest, &len);
    assert_non_null(got);
    assert_int_equal(len, 12);
    assert_memory_equal(got, "kernel bytes", 12);
    free(got);
}

static void test_schemes_other_than_http_https_file_are_refused(void **state)
{
    fixture_t *f = *state;
    expect_refused(f, "ftp://127.0.0.1/kernel", "scheme not allowed");
    expect_refused(f, "gopher://127.0.0.1/kernel", "scheme not allowed");
    expect_refused(f, "dict://127.0.0.1/kernel", "scheme not allowed");
}

/* ---- an endless chunked response ---- */

static void *endless_server(void *arg)
{
    fixture_t *f = arg;
    int conn = accept(f->listen_fd, NULL, NULL);
    if (conn < 0)
        return NULL;
    char request[4096];
    ssize_t n = recv(conn, request, sizeof request, 0);    /* the GET; its content is moot */
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    char chunk[4096 + 16];
    int hlen = snprintf(chunk, sizeof chunk, "1000\r\n");
    memset(chunk + hlen, 'x', 4096);
    memcpy(chunk + hlen + 4096, "\r\n", 2);
    size_t clen = (size_t)hlen + 4096 + 2;
    if (n > 0 && send(conn, head, sizeof head - 1, MSG_NOSIGNAL) > 0)
        while (!atomic_load(&f->stop) && send(conn, chunk, clen, MSG_NOSIGNAL) == (ssize_t)clen)
            atomic_fetch_add(&f->sent, clen);
    close(conn);
    return NULL;
}

static void start_endless_server(fixture_t *f)
{
    f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->listen_fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(f->listen_fd, 1), 0);
    assert_int_equal(getsockname(f->listen_fd, (struct sockaddr *)&addr, &len), 0);
    f->port = ntohs(addr.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, endless_server, f), 0);
    f->thread_started = true;
}

static void test_an_endless_chunked_download_stops_at_the_size_limit(void **state)
{
    fixture_t *f = *state;
    start_endless_server(f);
    char url[128], err[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/kernel", f->port);
    assert_int_equal(download(f, url, err, sizeof err), -1);
    assert_non_null(strstr(err, "larger than the limit of 1048576 bytes"));
    assert_int_equal(access(f->dest, F_OK), -1);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", f->dest);
    assert_int_equal(access(tmp, F_OK), -1);                 /* the partial file is gone */
    atomic_store(&f->stop, true);
    assert_true(atomic_load(&f->sent) >= 1024 * 1024);       /* it really was streaming */
}

/* ---- the limits are configuration ---- */

static int write_worker_yaml(fixture_t *f, const char *extra, char *path, size_t len)
{
    char pw[600], text[2048];
    snprintf(pw, sizeof pw, "%s/bmc.pw", f->dir);
    if (tmpdir_write(pw, "secret-pw\n", 10) != 0 || chmod(pw, 0600) != 0)
        return -1;
    snprintf(path, len, "%s/worker.yaml", f->dir);
    snprintf(text, sizeof text,
             "worker: w1\nmaster: tcp://127.0.0.1:5555\ntftp_root: %s\n%s"
             "devices:\n  - {name: n1, type: highbank, mac: \"00:50:43:02:01:00\", "
             "bmc: {host: 127.0.0.1, user: admin, password_file: %s}}\n", f->root, extra, pw);
    return tmpdir_write(path, text, strlen(text));
}

static void test_download_limit_file_roots_and_secrets_dir_are_configurable(void **state)
{
    fixture_t *f = *state;
    char path[600], extra[1200], err[512];
    snprintf(extra, sizeof extra, "max_download: 64MiB\nfile_roots: [%s]\nsecrets_dir: %s\n",
             f->root, f->dir);
    assert_int_equal(chmod(f->dir, 0700), 0);
    assert_int_equal(write_worker_yaml(f, extra, path, sizeof path), 0);
    rr_worker_config_t *c = NULL;
    if (rr_worker_config_load(path, &c, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(c->max_download_bytes, 64ull << 20);
    assert_int_equal(c->file_root_count, 1);
    assert_string_equal(c->file_roots[0], f->root);
    assert_ptr_equal(c->devices[0].worker, c);               /* the runner finds them */
    rr_worker_config_destroy(&c);

    assert_int_equal(chmod(f->dir, 0755), 0);
    assert_int_equal(rr_worker_config_load(path, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "chmod 700"));
    assert_int_equal(write_worker_yaml(f, "", path, sizeof path), 0);
    assert_int_equal(rr_worker_config_load(path, &c, err, sizeof err), 0);
    assert_int_equal(c->max_download_bytes, RR_MAX_DOWNLOAD_DEFAULT);
    assert_int_equal(c->file_root_count, 0);                 /* file:// refused by default */
    rr_worker_config_destroy(&c);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_file_url_outside_the_file_roots_is_refused),
        T(test_file_url_climbing_out_with_dotdot_is_refused),
        T(test_file_url_through_a_symlink_out_of_the_root_is_refused),
        T(test_file_url_beneath_a_root_is_downloaded),
        T(test_schemes_other_than_http_https_file_are_refused),
        T(test_an_endless_chunked_download_stops_at_the_size_limit),
        T(test_download_limit_file_roots_and_secrets_dir_are_configurable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
