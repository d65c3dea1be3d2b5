/* test_tftp.c: TFTP root confinement, pxelinux configs, artifact downloads
 * (file:// and a local HTTP server this test starts on 127.0.0.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tftp.h"
#include "tmpdir.h"

/* sha256 of "hello\n" */
#define HELLO_SHA "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

/* Serves DIR; /flaky/X answers 503 twice then X; /always500/X answers 500. */
static const char *const http_server_py =
    "import http.server, os, sys\n"
    "seen = {}\n"
    "class H(http.server.SimpleHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        if self.path.startswith('/always500/'):\n"
    "            return self.send_error(500)\n"
    "        if self.path.startswith('/flaky/'):\n"
    "            seen[self.path] = seen.get(self.path, 0) + 1\n"
    "            if seen[self.path] <= 2:\n"
    "                return self.send_error(503)\n"
    "            self.path = self.path[len('/flaky'):]\n"
    "        return super().do_GET()\n"
    "    def log_message(self, *args):\n"
    "        pass\n"
    "os.chdir(sys.argv[1])\n"
    "srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
    "print(srv.server_address[1], flush=True)\n"
    "srv.serve_forever()\n";

typedef struct {
    char *dir;        /* scratch: www/ served, root/ the TFTP root */
    char www[4096], root[4096];
    pid_t server;
    int port;
} fixture_t;

static pid_t start_server(const char *www, int *port)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive a crashed test */
        dup2(fds[1], 1);
        close(fds[0]);
        execlp("python3", "python3", "-c", http_server_py, www, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    if (pid < 0 || !f || fscanf(f, "%d", port) != 1) {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    return pid;
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    fx->dir = tmpdir_new("tftp");
    if (!fx->dir)
        return -1;
    snprintf(fx->www, sizeof fx->www, "%s/www", fx->dir);
    snprintf(fx->root, sizeof fx->root, "%s/root", fx->dir);
    mkdir(fx->www, 0755);
    mkdir(fx->root, 0755);
    char path[4200];
    snprintf(path, sizeof path, "%s/hello.txt", fx->www);
    tmpdir_write(path, "hello\n", 6);
    fx->server = start_server(fx->www, &fx->port);
    *state = fx;
    return fx->server > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    if (fx->server > 0) {
        kill(fx->server, SIGTERM);
        waitpid(fx->server, NULL, 0);
    }
    tmpdir_remove(&fx->dir);
    free(fx);
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- confinement ---- */

static void test_tftp_path_refuses_names_leaving_the_root(void **state)
{
    static const char *const bad[] = { "../etc/passwd", "files/../../x", "/etc/passwd", "",
                                       "files//kernel", "./kernel", "files/", "..", "a/./b" };
    char out[4096], err[512];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        if (rr_tftp_path("/srv/tftp", bad[i], out, sizeof out, err, sizeof err) != -1)
            fail_msg("'%s' was accepted as %s", bad[i], out);
        assert_non_null(strstr(err, "tftp path"));
    }
    assert_int_equal(rr_tftp_path("/srv/tftp", "files/n01/kernel..old", out, sizeof out, err,
                                  sizeof err), 0);
    assert_string_equal(out, "/srv/tftp/files/n01/kernel..old");
}

/* ---- pxelinux ---- */

static void test_pxe_config_name_is_lowercase_dashed_mac(void **state)
{
    char name[64];
    assert_int_equal(rr_pxe_config_name("52:54:00:AB:cd:01", name, sizeof name), 0);
    assert_string_equal(name, "pxelinux.cfg/01-52-54-00-ab-cd-01");
    assert_int_equal(rr_pxe_config_name("52:54:00:ab:cd", name, sizeof name), -1);
    assert_int_equal(rr_pxe_config_name("52:54:00:ab:cd:0g", name, sizeof name), -1);
    assert_int_equal(rr_pxe_config_name("../../../etc/pwd", name, sizeof name), -1);
}

static void test_pxe_write_replaces_config_atomically_and_remove_deletes_it(void **state)
{
    fixture_t *fx = *state;
    char err[512], path[4200];
    snprintf(path, sizeof path, "%s/pxelinux.cfg/01-00-50-43-02-01-00", fx->root);
    assert_int_equal(rr_pxe_write(fx->root, "00:50:43:02:01:00", "files/n01/kernel",
                                  "files/n01/initrd", "files/n01/dtb", "console=ttyAMA0",
                                  err, sizeof err), 0);
    char *text = tmpdir_slurp(path, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "default rackrun\nlabel rackrun\n"
                                 "  kernel files/n01/kernel\n  initrd files/n01/initrd\n"
                                 "  fdt files/n01/dtb\n  append console=ttyAMA0\n"));
    free(text);

    /* A reader that opened the old config keeps reading it whole: rename, not rewrite. */
    FILE *old = fopen(path, "r");
    assert_non_null(old);
    assert_int_equal(rr_pxe_write(fx->root, "00:50:43:02:01:00", "files/n01/zImage", NULL,
                                  NULL, NULL, err, sizeof err), 0);
    char buf[512] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, old);
    fclose(old);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "append console=ttyAMA0"));
    text = tmpdir_slurp(path, NULL);
    assert_non_null(strstr(text, "  kernel files/n01/zImage\n"));
    assert_null(strstr(text, "initrd"));
    assert_null(strstr(text, "append"));
    free(text);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1);

    assert_int_equal(rr_pxe_remove(fx->root, "00:50:43:02:01:00", err, sizeof err), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(rr_pxe_remove(fx->root, "00:50:43:02:01:00", err, sizeof err), 0);
}

static void test_pxe_write_refuses_line_breaks_in_append(void **state)
{
    fixture_t *fx = *state;
    char err[512] = "";
    assert_int_equal(rr_pxe_write(fx->root, "00:50:43:02:01:09", "k", NULL, NULL,
                                  "quiet\nlabel evil", err, sizeof err), -1);
    assert_non_null(strstr(err, "line break"));
}

/* ---- downloads ---- */

static void test_download_file_url_verifies_sha256(void **state)
{
    fixture_t *fx = *state;
    char url[4300], dest[4200], err[1024] = "", sha[65] = "";
    snprintf(url, sizeof url, "file://%s/hello.txt", fx->www);
    snprintf(dest, sizeof dest, "%s/kernel", fx->root);
    uint64_t size = 0;
    if (rr_tftp_download(url, dest, HELLO_SHA, NULL, &size, sha, err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_int_equal(size, 6);
    assert_string_equal(sha, HELLO_SHA);
    char *text = tmpdir_slurp(dest, NULL);
    assert_string_equal(text, "hello\n");
    free(text);
}

static void test_download_sha256_mismatch_is_named_and_leaves_no_file(void **state)
{
    fixture_t *fx = *state;
    char url[4300], dest[4200], tmp[4300], err[1024] = "";
    const char *wrong = "0000000000000000000000000000000000000000000000000000000000000000";
    snprintf(url, sizeof url, "file://%s/hello.txt", fx->www);
    snprintf(dest, sizeof dest, "%s/initrd-bad", fx->root);
    assert_int_equal(rr_tftp_download(url, dest, wrong, NULL, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "sha256 mismatch"));
    assert_non_null(strstr(err, url));
    assert_non_null(strstr(err, HELLO_SHA));
    snprintf(tmp, sizeof tmp, "%s.tmp", dest);
    assert_int_equal(access(dest, F_OK), -1);
    assert_int_equal(access(tmp, F_OK), -1);
}

static void test_download_missing_file_url_names_it(void **state)
{
    fixture_t *fx = *state;
    char url[4300], dest[4200], err[1024] = "";
    snprintf(url, sizeof url, "file://%s/no-such-file", fx->www);
    snprintf(dest, sizeof dest, "%s/missing", fx->root);
    rr_download_opts_t opts = { .tries = 1 };
    assert_int_equal(rr_tftp_download(url, dest, NULL, &opts, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, url));
}

static void test_download_http_ok(void **state)
{
    fixture_t *fx = *state;
    char url[256], dest[4200], err[1024] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hello.txt", fx->port);
    snprintf(dest, sizeof dest, "%s/http-hello", fx->root);
    if (rr_tftp_download(url, dest, HELLO_SHA, NULL, NULL, NULL, err, sizeof err) < 0)
        fail_msg("%s", err);
    char *text = tmpdir_slurp(dest, NULL);
    assert_string_equal(text, "hello\n");
    free(text);
}

static void test_download_http_404_names_url_and_status_without_retry(void **state)
{
    fixture_t *fx = *state;
    char url[256], dest[4200], err[1024] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/nothing-here.img", fx->port);
    snprintf(dest, sizeof dest, "%s/http-404", fx->root);
    rr_download_opts_t opts = { .tries = 3, .backoff_ms = 2000 };
    uint64_t start = now_ms();
    assert_int_equal(rr_tftp_download(url, dest, NULL, &opts, NULL, NULL, err, sizeof err), -1);
    assert_true(now_ms() - start < 2000);   /* a 404 is final: no backoff waited */
    assert_non_null(strstr(err, url));
    assert_non_null(strstr(err, "HTTP 404"));
    assert_int_equal(access(dest, F_OK), -1);
}

static void test_download_http_retries_5xx_with_backoff(void **state)
{
    fixture_t *fx = *state;
    char url[256], dest[4200], err[1024] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/flaky/hello.txt", fx->port);
    snprintf(dest, sizeof dest, "%s/flaky", fx->root);
    rr_download_opts_t opts = { .tries = 3, .backoff_ms = 100 };
    uint64_t start = now_ms();
    if (rr_tftp_download(url, dest, HELLO_SHA, &opts, NULL, NULL, err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_true(now_ms() - start >= 300);   /* waited 100 ms, then 200 ms */
}

static void test_download_http_gives_up_after_bounded_tries(void **state)
{
    fixture_t *fx = *state;
    char url[256], dest[4200], err[1024] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/always500/hello.txt", fx->port);
    snprintf(dest, sizeof dest, "%s/always500", fx->root);
    rr_download_opts_t opts = { .tries = 2, .backoff_ms = 10 };
    assert_int_equal(rr_tftp_download(url, dest, NULL, &opts, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "HTTP 500"));
    assert_non_null(strstr(err, "after 2 tries"));
    assert_non_null(strstr(err, url));
}

static void test_download_refuses_files_over_the_size_limit(void **state)
{
    fixture_t *fx = *state;
    char url[256], dest[4200], err[1024] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hello.txt", fx->port);
    snprintf(dest, sizeof dest, "%s/too-big", fx->root);
    rr_download_opts_t opts = { .max_bytes = 3 };
    assert_int_equal(rr_tftp_download(url, dest, NULL, &opts, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "limit of 3 bytes"));
    assert_int_equal(access(dest, F_OK), -1);
}

static bool abort_now(void *arg)
{
    return true;
}

static void test_download_aborts_when_asked(void **state)
{
    fixture_t *fx = *state;
    char url[256], dest[4200], err[1024] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hello.txt", fx->port);
    snprintf(dest, sizeof dest, "%s/aborted", fx->root);
    rr_download_opts_t opts = { .abort = abort_now };
    assert_int_equal(rr_tftp_download(url, dest, NULL, &opts, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "canceled"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tftp_path_refuses_names_leaving_the_root),
        cmocka_unit_test(test_pxe_config_name_is_lowercase_dashed_mac),
        cmocka_unit_test(test_pxe_write_replaces_config_atomically_and_remove_deletes_it),
        cmocka_unit_test(test_pxe_write_refuses_line_breaks_in_append),
        cmocka_unit_test(test_download_file_url_verifies_sha256),
        cmocka_unit_test(test_download_sha256_mismatch_is_named_and_leaves_no_file),
        cmocka_unit_test(test_download_missing_file_url_names_it),
        cmocka_unit_test(test_download_http_ok),
        cmocka_unit_test(test_download_http_404_names_url_and_status_without_retry),
        cmocka_unit_test(test_download_http_retries_5xx_with_backoff),
        cmocka_unit_test(test_download_http_gives_up_after_bounded_tries),
        cmocka_unit_test(test_download_refuses_files_over_the_size_limit),
        cmocka_unit_test(test_download_aborts_when_asked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
