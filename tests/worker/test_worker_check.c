/* test_worker_check.c: `rackrun-worker --check` against an emulated rack of
 * two nodes plus a device whose BMC port is closed: the table shows the good
 * devices' login, power and SOL, names the bad BMC, never prints the
 * password, and the exit status says whether everything passed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rig.h"
#include "tmpdir.h"

extern char **environ;

static const char *worker_bin;

typedef struct {
    char *dir;
    rr_rig_t *rig;
    char tftp_root[4096];
    uint16_t closed_port;
} fixture_t;

/* A UDP port on 127.0.0.1 nothing listens on (bound, then released). */
static uint16_t closed_udp_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return 0;
    if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0
        || getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
        sa.sin_port = 0;
    close(fd);
    return ntohs(sa.sin_port);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    *state = fx;
    if (!fx || !(fx->dir = tmpdir_new("wcheck")))
        return -1;
    snprintf(fx->tftp_root, sizeof fx->tftp_root, "%s/tftp", fx->dir);
    if (mkdir(fx->tftp_root, 0755) < 0 || chmod(fx->tftp_root, 0755) < 0)
        return -1;
    fx->closed_port = closed_udp_port();
    fx->rig = rr_rig_start(2, NULL);
    /* n02 on, n01 off: POWER must show both states. */
    if (!fx->rig || rr_rig_node_power(fx->rig, 1, "on") < 0)
        return -1;
    return fx->closed_port ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    if (!fx)
        return 0;
    rr_rig_stop(&fx->rig);
    tmpdir_remove(&fx->dir);
    free(fx);
    return 0;
}

/* Write worker.yaml with the rig's nodes, plus the closed-port device when BAD. */
static const char *write_config(fixture_t *fx, bool bad)
{
    static char path[4200];
    char text[8192];
    size_t at = 0;
    at += (size_t) snprintf(text + at, sizeof text - at,
                            "worker: w-check\nmaster: \"tcp://127.0.0.1:1\"\n"
                            "tftp_root: \"%s\"\nspool_dir: \"%s/spool\"\ndevices:\n",
                            fx->tftp_root, fx->dir);
    for (size_t i = 0; i < rr_rig_size(fx->rig); i++) {
        const rr_rig_node_t *n = rr_rig_node(fx->rig, i);
        at += (size_t) snprintf(text + at, sizeof text - at,
                                "  - {name: %s, type: highbank, mac: \"%s\",\n"
                                "     bmc: {host: \"%s\", port: %u, user: \"%s\", "
                                "password_file: \"%s\"}}\n",
                                n->name, n->mac, n->host, n->port, n->user,
                                rr_rig_password_file(fx->rig));
    }
    if (bad)
        at += (size_t) snprintf(text + at, sizeof text - at,
                                "  - {name: gone, type: highbank, mac: \"52:54:00:00:00:99\",\n"
                                "     bmc: {host: \"127.0.0.1\", port: %u, user: admin, "
                                "password_file: \"%s\"},\n"
                                "     ipmi: {timeout: 1s, retries: 1}, sol: {timeout: 2s}}\n",
                                fx->closed_port, rr_rig_password_file(fx->rig));
    assert_true(at < sizeof text);
    snprintf(path, sizeof path, "%s/worker.yaml", fx->dir);
    assert_int_equal(tmpdir_write_text(path, text, 0644), 0);
    return path;
}

/* Run `rackrun-worker --check --config CONFIG`; stdout and stderr in *OUTPUT. Exit status. */
static int run_check(fixture_t *fx, const char *config, char **output)
{
    char out_path[4200];
    snprintf(out_path, sizeof out_path, "%s/check.out", fx->dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char *argv[] = { (char *) worker_bin, "--check", "--config", (char *) config, NULL };
    pid_t pid;
    int rc = posix_spawn(&pid, worker_bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(rc, 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *output = tmpdir_slurp(out_path, NULL);
    assert_non_null(*output);
    fprintf(stderr, "--- rackrun-worker --check:\n%s---\n", *output);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* The output line starting with NAME and a space; NULL when none. */
static char *row_of(char *output, const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);
    for (const char *line = output; *line;) {
        size_t l = strcspn(line, "\n");
        if (strncmp(line, name, n) == 0 && line[n] == ' ') {
            snprintf(buf, len, "%.*s", (int) (l < len ? l : len - 1), line);
            return buf;
        }
        line += l + (line[l] == '\n');
    }
    return NULL;
}

static void assert_good_rows(fixture_t *fx, char *output)
{
    char row[2048], word[64];
    for (size_t i = 0; i < rr_rig_size(fx->rig); i++) {
        const rr_rig_node_t *n = rr_rig_node(fx->rig, i);
        char bmc[128], login[16], power[16], sol[16];
        assert_non_null(row_of(output, n->name, row, sizeof row));
        assert_int_equal(sscanf(row, "%63s %127s %15s %15s %15s", word, bmc, login, power, sol), 5);
        char want[128];
        snprintf(want, sizeof want, "%s:%u", n->host, n->port);
        assert_string_equal(bmc, want);
        assert_string_equal(login, "ok");
        assert_string_equal(power, i == 1 ? "on" : "off");
        assert_string_equal(sol, "ok");
    }
}

static void test_check_reports_each_device_and_fails_on_a_closed_bmc(void **state)
{
    fixture_t *fx = *state;
    char *output = NULL, row[2048], want[64];
    assert_int_equal(run_check(fx, write_config(fx, true), &output), 1);
    assert_non_null(strstr(output, "DEVICE"));
    assert_good_rows(fx, output);
    assert_non_null(row_of(output, "gone", row, sizeof row));
    snprintf(want, sizeof want, " 127.0.0.1:%u ", fx->closed_port);
    assert_non_null(strstr(row, want));
    assert_non_null(strstr(row, "error"));
    snprintf(want, sizeof want, "bmc 127.0.0.1:%u", fx->closed_port);
    assert_non_null(strstr(row, want));
    assert_null(strstr(output, rr_rig_node(fx->rig, 0)->password));
    assert_non_null(row_of(output, "TFTP", row, sizeof row));
    assert_non_null(strstr(row, ": ok"));
    free(output);
}

static void test_check_passes_when_every_device_and_the_tftp_root_pass(void **state)
{
    fixture_t *fx = *state;
    char *output = NULL;
    assert_int_equal(run_check(fx, write_config(fx, false), &output), 0);
    assert_good_rows(fx, output);
    assert_null(strstr(output, "gone"));
    assert_null(strstr(output, rr_rig_node(fx->rig, 0)->password));
    free(output);
}

static void test_check_fails_a_tftp_root_others_cannot_read(void **state)
{
    fixture_t *fx = *state;
    char *output = NULL, row[2048];
    assert_int_equal(chmod(fx->tftp_root, 0700), 0);
    int rc = run_check(fx, write_config(fx, false), &output);
    chmod(fx->tftp_root, 0755);
    assert_int_equal(rc, 1);
    assert_good_rows(fx, output);
    assert_non_null(row_of(output, "TFTP", row, sizeof row));
    assert_non_null(strstr(row, "not readable by others"));
    free(output);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-OF-rackrun-worker\n", argv[0]);
        return 1;
    }
    worker_bin = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_reports_each_device_and_fails_on_a_closed_bmc),
        cmocka_unit_test(test_check_passes_when_every_device_and_the_tftp_root_pass),
        cmocka_unit_test(test_check_fails_a_tftp_root_others_cannot_read),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
