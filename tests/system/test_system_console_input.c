/* test_system_console_input.c: `rackrun console DEVICE --interactive` end
 * to end ("debugging with initrd": an operator types into a node's console).
 *
 * Real processes: rackrun-master, one rackrun-worker holding one emulated
 * node's SOL console, and the rackrun CLI as an admin client ("operator")
 * with its stdin from a file (not a terminal: lines are typed, and the CLI
 * exits once the console is quiet after the input ended). With the device in
 * maintenance and the node powered on, a typed `echo hello-$$` must come back
 * as the shell's output (hello-<pid>: only the shell can print that). Without
 * maintenance, or from a key without the admin role, the CLI must be refused
 * with a message naming why, before anything is typed. On a terminal (a pty
 * here) the CLI goes raw, passes Ctrl-C to the node, quits on "~." and leaves
 * the terminal cooked. */
#include <ctype.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.h"
#include "testtime.h"
#include "tmpdir.h"

#define CLI_EXIT_MS 30000

typedef struct {
    rr_cluster_t *cluster;
    rr_rig_t *rig;
} fixture_t;

/* The file NAME in the cluster dir, malloc'd ("" when missing). */
static char *slurp(rr_cluster_t *c, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", rr_cluster_dir(c), name);
    char *text = tmpdir_slurp(path, NULL);
    return text ? text : strdup("");
}

/* The CLI as "operator" with stdin from IN (NULL: /dev/null), output in
 * NAME.out/.err: its exit code. */
static int run_operator(rr_cluster_t *c, const char *in, const char *name, const char *a1,
                        const char *a2, const char *a3, const char *a4)
{
    pid_t pid = rr_cluster_cli_start_as(c, "operator", in, name, a1, a2, a3, a4, NULL);
    assert_true(pid > 0);
    return rr_cluster_cli_wait(pid, CLI_EXIT_MS);
}

/* The master rereads its allow-list: wait until the operator's key works. */
static void wait_operator_allowed(rr_cluster_t *c)
{
    for (int tries = 0; tries < 20; tries++)
        if (run_operator(c, NULL, "probe", "devices", NULL, NULL, NULL) == 0)
            return;
    rr_cluster_dump(c);
    fail_msg("the operator's key was never allowed");
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    *state = f;
    if (!f || !(f->cluster = rr_cluster_new(1)))
        return -1;
    f->rig = rr_cluster_rig(f->cluster, "n", 1);
    if (!f->rig || rr_cluster_add_worker(f->cluster, "rack01", f->rig, NULL, true) < 0
        || rr_cluster_add_client(f->cluster, "operator", "admin") < 0)
        return -1;
    return rr_cluster_wait_devices(f->cluster, "rack01", "idle", 1, 30000) ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = f ? rr_cluster_stop(&f->cluster) : 0;
    free(f);
    return rc;
}

/* Whether TEXT holds "hello-" followed by a digit (the shell expanded $$). */
static bool has_expanded_hello(const char *text)
{
    for (const char *p = text; (p = strstr(p, "hello-")); p += 6)
        if (isdigit((unsigned char) p[6]))
            return true;
    return false;
}

/* n01 into maintenance, then the operator boots it by hand (as for an initrd
 * debug session) and its shell is up. */
static void node_in_maintenance_at_its_shell(fixture_t *f)
{
    rr_cluster_t *c = f->cluster;
    assert_int_equal(run_operator(c, NULL, "maint", "device", "maintenance", "n01", "on"), 0);
    assert_true(rr_cluster_wait_devices(c, "rack01", "maintenance", 1, 10000));
    assert_int_equal(rr_rig_node_power(f->rig, 0, "on"), 0);
    bool ready = false;
    for (int waited = 0; !ready && waited < 20000; waited += 100) {
        char *out = rr_rig_console_out(f->rig, 0, NULL);
        ready = out && strstr(out, "shell ready");
        free(out);
        if (!ready)
            testtime_nap_ms(100);
    }
    assert_true(ready);
}

static void test_interactive_console_types_into_a_device_in_maintenance(void **state)
{
    fixture_t *f = *state;
    rr_cluster_t *c = f->cluster;
    wait_operator_allowed(c);
    node_in_maintenance_at_its_shell(f);

    char input[4096];
    snprintf(input, sizeof input, "%s/console-input.txt", rr_cluster_dir(c));
    assert_int_equal(tmpdir_write_text(input, "echo hello-$$\n", 0644), 0);
    int rc = run_operator(c, input, "interactive", "console", "n01", "--interactive", NULL);
    char *out = slurp(c, "interactive.out"), *err = slurp(c, "interactive.err");
    if (rc != 0 || !has_expanded_hello(out)) {
        rr_cluster_dump(c);
        fail_msg("console --interactive: exit %d, stdout '%s', stderr '%s'", rc, out, err);
    }
    free(out);
    free(err);
    char *typed = rr_rig_console_out(f->rig, 0, NULL);
    assert_non_null(typed);
    assert_true(has_expanded_hello(typed));         /* the node itself printed it */
    free(typed);

    /* Back in service. */
    assert_int_equal(rr_rig_node_power(f->rig, 0, "off"), 0);
    assert_int_equal(run_operator(c, NULL, "maint", "device", "maintenance", "n01", "off"), 0);
    assert_true(rr_cluster_wait_devices(c, "rack01", "idle", 1, 10000));
    rr_cluster_passed(c);
}

static void test_interactive_console_is_refused_unless_in_maintenance(void **state)
{
    fixture_t *f = *state;
    rr_cluster_t *c = f->cluster;
    wait_operator_allowed(c);

    char input[4096];
    snprintf(input, sizeof input, "%s/console-input.txt", rr_cluster_dir(c));
    assert_int_equal(tmpdir_write_text(input, "echo must-not-be-typed\n", 0644), 0);
    assert_int_equal(run_operator(c, input, "refused", "console", "n01", "--interactive", NULL),
                     1);
    char *err = slurp(c, "refused.err");
    if (!strstr(err, "device n01 is not in maintenance: put it in maintenance first"))
        fail_msg("refusal does not say why: '%s'", err);
    free(err);

    /* A key with role submit may follow but not type, even in maintenance. */
    assert_int_equal(run_operator(c, NULL, "maint", "device", "maintenance", "n01", "on"), 0);
    assert_true(rr_cluster_wait_devices(c, "rack01", "maintenance", 1, 10000));
    char *cli_err = NULL;
    assert_int_equal(rr_cluster_cli(c, NULL, &cli_err, "console", "n01", "--interactive",
                                    NULL), 1);
    assert_non_null(cli_err);
    if (!strstr(cli_err, "role admin"))
        fail_msg("role refusal does not name the role: '%s'", cli_err);
    free(cli_err);
    rr_cluster_passed(c);
}

/* Whether the terminal on FD is in canonical (cooked) mode. */
static bool cooked(int fd)
{
    struct termios t;
    assert_int_equal(tcgetattr(fd, &t), 0);
    return (t.c_lflag & ICANON) != 0;
}

/* Wait until FILE (in the cluster dir) shows an expanded "hello-<digits>". */
static bool wait_hello_in(rr_cluster_t *c, const char *file, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        char *out = slurp(c, file);
        bool seen = has_expanded_hello(out);
        free(out);
        if (seen)
            return true;
        testtime_nap_ms(100);
    }
    return false;
}

/* On a terminal: raw mode while it runs (Ctrl-C goes to the node, the CLI
 * lives on), "~." at the start of a line quits with 0, and the terminal is
 * cooked again afterwards. The CLI's stdin is a pty's slave; we type on the
 * master side like a keyboard. */
static void test_interactive_console_on_a_terminal_goes_raw_and_quits_on_tilde_dot(void **state)
{
    fixture_t *f = *state;
    rr_cluster_t *c = f->cluster;
    wait_operator_allowed(c);
    node_in_maintenance_at_its_shell(f);

    int keyboard = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(keyboard >= 0);
    assert_int_equal(grantpt(keyboard), 0);
    assert_int_equal(unlockpt(keyboard), 0);
    char slave[256];
    assert_int_equal(ptsname_r(keyboard, slave, sizeof slave), 0);
    int terminal = open(slave, O_RDWR | O_NOCTTY);     /* held: the pty never hangs up */
    assert_true(terminal >= 0);
    assert_true(cooked(terminal));

    pid_t pid = rr_cluster_cli_start_as(c, "operator", slave, "tty", "console", "n01",
                                        "--interactive", NULL);
    assert_true(pid > 0);
    for (int waited = 0; cooked(terminal) && waited < 10000; waited += 50)
        testtime_nap_ms(50);
    assert_false(cooked(terminal));

    static const char typed[] = "echo hello-$$\r";
    assert_int_equal(write(keyboard, typed, sizeof typed - 1), (ssize_t)(sizeof typed - 1));
    if (!wait_hello_in(c, "tty.out", 10000)) {
        rr_cluster_dump(c);
        fail_msg("the node's answer never reached the terminal's CLI");
    }
    static const char interrupt[] = "sleep 30\r\003";
    assert_int_equal(write(keyboard, interrupt, sizeof interrupt - 1),
                     (ssize_t)(sizeof interrupt - 1));
    testtime_nap_ms(500);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);   /* Ctrl-C went to the node */

    static const char quit[] = "\r~.";
    assert_int_equal(write(keyboard, quit, sizeof quit - 1), (ssize_t)(sizeof quit - 1));
    assert_int_equal(rr_cluster_cli_wait(pid, 10000), 0);
    assert_true(cooked(terminal));                      /* restored on the way out */
    close(terminal);
    close(keyboard);
    assert_int_equal(rr_rig_node_power(f->rig, 0, "off"), 0);
    rr_cluster_passed(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_interactive_console_types_into_a_device_in_maintenance,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_interactive_console_is_refused_unless_in_maintenance,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_interactive_console_on_a_terminal_goes_raw_and_quits_on_tilde_dot, setup,
            teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + rr_cluster_stop_failures() ? 1 : 0;
}
