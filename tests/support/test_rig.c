/* test_rig.c: the emulated rack itself (tests/rig/rig.py through rig.h).
 *
 * ipmitool is the independent IPMI client here: these tests check the rig,
 * not rackrun's own IPMI code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rig.h"

#define WAIT_MS 10000

/* Run `ipmitool ARGS` against node INDEX; its exit status, output in OUT. */
static int ipmitool(const rr_rig_t *rig, size_t index, const char *args, char *out, size_t len)
{
    const rr_rig_node_t *node = rr_rig_node(rig, index);
    char cmd[8192];
    snprintf(cmd, sizeof(cmd),
             "timeout 30 ipmitool -I lanplus -C 3 -N 1 -R 2 -H %s -p %u -U %s -f %s %s 2>&1",
             node->host, node->port, node->user, rr_rig_password_file(rig), args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t used = fread(out, 1, len - 1, p);
    out[used] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A process that is gone or a zombie no longer runs. */
static bool pid_running(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

static bool all_gone(const pid_t *pids, size_t count, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        size_t running = 0;
        for (size_t i = 0; i < count; i++)
            running += pid_running(pids[i]);
        if (running == 0)
            return true;
        sleep_ms(50);
    }
    for (size_t i = 0; i < count; i++)
        if (pid_running(pids[i]))
            fprintf(stderr, "pid %d still running\n", (int)pids[i]);
    return false;
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[4200];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_true(n > 0 && (size_t) n < sizeof(path));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void power_on_and_wait_prompt(rr_rig_t *rig, size_t index)
{
    assert_int_equal(rr_rig_node_power(rig, index, "on"), 0);
    assert_true(rr_rig_wait_console(rig, index, 0, "shell ready", WAIT_MS));
    assert_true(rr_rig_wait_console(rig, index, 0, "# ", WAIT_MS));
}

static void test_ipmi_power_and_bootdev_reach_the_hook_and_boot_the_node(void **state)
{
    char out[4096];
    rr_rig_t *rig = rr_rig_start(2, NULL);
    assert_non_null(rig);
    assert_int_equal(rr_rig_size(rig), 2);
    assert_string_equal(rr_rig_node(rig, 1)->mac, "52:54:00:00:00:02");

    assert_int_equal(ipmitool(rig, 0, "chassis power status", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "Chassis Power is off"));
    assert_int_equal(ipmitool(rig, 0, "chassis bootdev pxe", out, sizeof(out)), 0);
    assert_true(rr_rig_wait_hook(rig, 0, "set boot pxe", WAIT_MS));
    assert_int_equal(ipmitool(rig, 0, "chassis power on", out, sizeof(out)), 0);
    assert_true(rr_rig_wait_hook(rig, 0, "set power 1", WAIT_MS));
    assert_true(rr_rig_wait_console(rig, 0, 0, "Boot device: pxe", WAIT_MS));
    assert_true(rr_rig_wait_console(rig, 0, 0, "# ", WAIT_MS));
    assert_int_equal(rr_rig_power(rig, 0), 1);
    assert_int_equal(ipmitool(rig, 0, "chassis power status", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "Chassis Power is on"));

    /* The other node saw nothing. */
    assert_int_equal(rr_rig_power(rig, 1), 0);
    char *hooks = rr_rig_hook_log(rig, 1, NULL);
    assert_non_null(hooks);
    assert_null(strstr(hooks, "set "));
    free(hooks);

    assert_int_equal(ipmitool(rig, 0, "chassis power off", out, sizeof(out)), 0);
    assert_true(rr_rig_wait_hook(rig, 0, "set power 0", WAIT_MS));
    assert_int_equal(rr_rig_power(rig, 0), 0);
    assert_int_equal(ipmitool(rig, 0, "chassis power status", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "Chassis Power is off"));
    rr_rig_stop(&rig);
    assert_null(rig);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Wait until console.in.tsv holds COUNT bytes; the time (CLOCK_MONOTONIC ns)
 * it was seen, or 0 after WAIT_MS. */
static uint64_t wait_rx_count(rr_rig_t *rig, size_t count)
{
    uint64_t give_up = mono_ns() + WAIT_MS * 1000000ULL;
    while (mono_ns() < give_up) {
        size_t n = 0;
        free(rr_rig_console_in(rig, 0, &n));
        if (n >= count)
            return mono_ns();
        sleep_ms(1);
    }
    return 0;
}

/* Each byte is written only after the rig logged the one before, 30 ms after
 * that: the rig's time for each byte must lie between its write and the moment
 * the test saw it logged, so consecutive times are >= 30 ms apart whatever the
 * load (a rig stalled while bytes queued up would otherwise stamp them together). */
static void test_console_tap_types_into_the_shell_and_logs_each_byte_time(void **state)
{
    const char *typed = "echo $((6*7))rig\n";
    uint64_t written[32], seen[32];
    rr_rig_t *rig = rr_rig_start(1, NULL);
    assert_non_null(rig);
    power_on_and_wait_prompt(rig, 0);
    int fd = rr_rig_console_connect(rig, 0);
    assert_true(fd >= 0);
    assert_true(strlen(typed) <= 32);
    for (size_t i = 0; typed[i]; i++) {
        if (i > 0)
            sleep_ms(30);
        written[i] = mono_ns();
        assert_int_equal(write(fd, typed + i, 1), 1);
        seen[i] = wait_rx_count(rig, i + 1);
        assert_true(seen[i] > 0);
    }
    assert_true(rr_rig_wait_console(rig, 0, 0, "42rig", WAIT_MS));
    char echo[64];
    assert_int_equal(read(fd, echo, 1), 1);   /* the tap gets the node's output too */

    size_t count = 0;
    rr_rig_rx_t *rx = rr_rig_console_in(rig, 0, &count);
    assert_non_null(rx);
    assert_int_equal(count, strlen(typed));
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(rx[i].byte, (uint8_t)typed[i]);
        assert_false(rx[i].from_sol);
        assert_false(rx[i].dropped);
        assert_true(rx[i].ns >= written[i] && rx[i].ns <= seen[i]);
        if (i > 0)
            assert_true(rx[i].ns - rx[i - 1].ns >= 30 * 1000000ULL);
    }
    free(rx);
    close(fd);
    rr_rig_stop(&rig);
}

static void test_power_cycle_keeps_the_sol_pty_and_appends_console_out(void **state)
{
    char tty_before[256] = "", tty_after[256] = "", link[4200];
    rr_rig_t *rig = rr_rig_start(1, NULL);
    assert_non_null(rig);
    snprintf(link, sizeof(link), "%s/tty", rr_rig_node(rig, 0)->dir);
    assert_true(readlink(link, tty_before, sizeof(tty_before) - 1) > 0);
    power_on_and_wait_prompt(rig, 0);
    char *pid_text = rr_rig_node_file(rig, 0, "shell.pid", NULL);
    assert_non_null(pid_text);
    pid_t shell = (pid_t)atoi(pid_text);
    free(pid_text);
    assert_true(pid_running(shell));

    assert_int_equal(rr_rig_node_power(rig, 0, "off"), 0);
    assert_int_equal(rr_rig_power(rig, 0), 0);
    assert_true(all_gone(&shell, 1, WAIT_MS));
    size_t before = 0;
    free(rr_rig_console_out(rig, 0, &before));
    assert_int_equal(rr_rig_node_power(rig, 0, "on"), 0);
    assert_true(rr_rig_wait_console(rig, 0, before, "shell ready", WAIT_MS));
    size_t len = 0, banners = 0;   /* append-only: both boots are there */
    char *text = rr_rig_console_out(rig, 0, &len);
    assert_non_null(text);
    assert_true(len > before);
    for (char *p = text; (p = strstr(p, "shell ready")); p++)
        banners++;
    assert_int_equal(banners, 2);
    free(text);
    assert_true(readlink(link, tty_after, sizeof(tty_after) - 1) > 0);
    assert_string_equal(tty_before, tty_after);
    rr_rig_stop(&rig);
}

static void test_pxe_boot_reads_mac_config_then_default_like_uboot(void **state)
{
    char root[4200], opts[4400], out[4096];
    const char *bin = getenv("RR_BINARY_DIR");
    snprintf(root, sizeof(root), "%s/test-tmp/tftp-XXXXXX", bin ? bin : "/tmp");
    assert_non_null(mkdtemp(root));
    snprintf(opts, sizeof(opts), "%s/pxelinux.cfg", root);
    assert_int_equal(mkdir(opts, 0755), 0);
    snprintf(opts, sizeof(opts), "%s/files", root);
    assert_int_equal(mkdir(opts, 0755), 0);
    write_text(root, "files/zImage-one", "k1");
    write_text(root, "files/zImage-default", "k2");
    write_text(root, "pxelinux.cfg/01-52-54-00-00-00-01",
               "DEFAULT one\nLABEL zero\n  KERNEL files/none\nLABEL one\n  KERNEL files/zImage-one\n"
               "  APPEND console=ttyAMA0 rr=one\n");
    write_text(root, "pxelinux.cfg/default-arm-highbank",
               "LABEL lab\n  KERNEL files/zImage-default\n  APPEND rr=default\n");
    write_text(root, "pxelinux.cfg/01-52-54-00-00-00-03", "LABEL bad\n  KERNEL files/missing\n");
    snprintf(opts, sizeof(opts), "--tftp-root %s", root);

    rr_rig_t *rig = rr_rig_start(3, opts);
    assert_non_null(rig);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(ipmitool(rig, i, "chassis bootdev pxe", out, sizeof(out)), 0);
        assert_int_equal(rr_rig_node_power(rig, i, "on"), 0);
    }
    assert_true(rr_rig_wait_console(rig, 0, 0, "Retrieving file: files/zImage-one", WAIT_MS));
    assert_true(rr_rig_wait_console(rig, 0, 0, "append: console=ttyAMA0 rr=one", WAIT_MS));
    assert_true(rr_rig_wait_console(rig, 0, 0, "# ", WAIT_MS));
    assert_true(rr_rig_wait_console(rig, 1, 0,
                                    "pxelinux.cfg/01-52-54-00-00-00-02\r\n"
                                    "TFTP error: 'File not found' (1)", WAIT_MS));
    assert_true(rr_rig_wait_console(rig, 1, 0, "append: rr=default", WAIT_MS));
    assert_true(rr_rig_wait_console(rig, 2, 0, "ERROR: boot failed", WAIT_MS));
    assert_false(rr_rig_wait_console(rig, 2, 0, "# ", 300));
    rr_rig_stop(&rig);
    snprintf(opts, sizeof(opts), "rm -rf '%s'", root);
    assert_int_equal(system(opts), 0);
}

static void test_lossy_rig_drops_bytes_closer_than_the_limit(void **state)
{
    rr_rig_t *rig = rr_rig_start(1, "--lossy-ms 200");
    assert_non_null(rig);
    power_on_and_wait_prompt(rig, 0);
    int fd = rr_rig_console_connect(rig, 0);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "ab", 2), 2);
    sleep_ms(300);
    assert_int_equal(write(fd, "c", 1), 1);
    size_t count = 0;
    rr_rig_rx_t *rx = NULL;
    for (int i = 0; i < 100 && count < 3; i++) {
        free(rx);
        sleep_ms(20);
        rx = rr_rig_console_in(rig, 0, &count);
    }
    assert_int_equal(count, 3);
    assert_false(rx[0].dropped);
    assert_true(rx[1].dropped);
    assert_false(rx[2].dropped);
    free(rx);
    close(fd);
    rr_rig_stop(&rig);
}

static void test_bmc_kill_silences_it_and_start_brings_it_back_on_its_port(void **state)
{
    char out[4096];
    rr_rig_t *rig = rr_rig_start(1, NULL);
    assert_non_null(rig);
    assert_int_equal(rr_rig_bmc(rig, 0, "kill"), 0);
    assert_true(ipmitool(rig, 0, "chassis power status", out, sizeof(out)) != 0);
    assert_int_equal(rr_rig_bmc(rig, 0, "start"), 0);
    assert_int_equal(ipmitool(rig, 0, "chassis power status", out, sizeof(out)), 0);
    assert_int_equal(rr_rig_bmc(rig, 0, "restart"), 0);
    assert_int_equal(ipmitool(rig, 0, "chassis power on", out, sizeof(out)), 0);
    assert_true(rr_rig_wait_console(rig, 0, 0, "# ", WAIT_MS));
    assert_int_equal(rr_rig_bmc(rig, 0, "bogus"), -1);
    rr_rig_stop(&rig);
}

static void test_stop_leaves_no_process_or_lock_behind(void **state)
{
    pid_t pids[64];
    char lock[256];
    rr_rig_t *rig = rr_rig_start(2, NULL);
    assert_non_null(rig);
    power_on_and_wait_prompt(rig, 0);
    power_on_and_wait_prompt(rig, 1);
    ssize_t count = rr_rig_pids(rig, pids, 64);
    assert_true(count >= 5);   /* rig.py, 2 ipmi_sim, 2 shells */
    for (ssize_t i = 0; i < count; i++)
        assert_true(pid_running(pids[i]));
    snprintf(lock, sizeof(lock), "/run/lock/LCK..rr%d-n01.tty", (int)pids[0]);
    assert_int_equal(access(lock, F_OK), 0);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", rr_rig_dir(rig));
    rr_rig_stop(&rig);
    assert_true(all_gone(pids, (size_t)count, 0));
    assert_int_equal(access(lock, F_OK), -1);
    assert_int_equal(access(dir, F_OK), -1);
}

static void test_rig_stops_when_the_test_process_dies(void **state)
{
    int fds[2];
    pid_t pids[64];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        rr_rig_t *rig = rr_rig_start(1, NULL);
        ssize_t n = rig && rr_rig_node_power(rig, 0, "on") == 0 ? rr_rig_pids(rig, pids, 64) : -1;
        if (n > 0 && write(fds[1], pids, (size_t)n * sizeof(pid_t)) < 0)
            n = -1;
        kill(getpid(), SIGKILL);   /* a crash: no rr_rig_stop */
    }
    close(fds[1]);
    ssize_t got = read(fds[0], pids, sizeof(pids));
    close(fds[0]);
    waitpid(child, NULL, 0);
    assert_true(got >= (ssize_t)(3 * sizeof(pid_t)));   /* rig.py, ipmi_sim, shell */
    assert_true(all_gone(pids, (size_t)got / sizeof(pid_t), WAIT_MS));
    char cmd[4200];   /* the crashed "test" could not clean up its rig's dir */
    const char *bin = getenv("RR_BINARY_DIR");
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'/test-tmp/*-%d-*", bin ? bin : "/tmp", (int)child);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipmi_power_and_bootdev_reach_the_hook_and_boot_the_node),
        cmocka_unit_test(test_console_tap_types_into_the_shell_and_logs_each_byte_time),
        cmocka_unit_test(test_power_cycle_keeps_the_sol_pty_and_appends_console_out),
        cmocka_unit_test(test_pxe_boot_reads_mac_config_then_default_like_uboot),
        cmocka_unit_test(test_lossy_rig_drops_bytes_closer_than_the_limit),
        cmocka_unit_test(test_bmc_kill_silences_it_and_start_brings_it_back_on_its_port),
        cmocka_unit_test(test_stop_leaves_no_process_or_lock_behind),
        cmocka_unit_test(test_rig_stops_when_the_test_process_dies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
