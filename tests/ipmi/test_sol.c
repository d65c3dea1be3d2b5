/* test_sol.c: rr_sol against stock ipmi_sim BMCs of the emulated rack.
 *
 * Each test gets a fixture (one-node rig, console capture, session) that the
 * teardown frees, so a failed assertion leaks nothing and leaves no process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "ipmi.h"
#include "rig.h"
#include "rig_power.h"
#include "sol.h"

#define SOL_TIMEOUT_MS 10000
#define PROMPT_WAIT_MS 10000
#define OUTPUT_WAIT_MS 5000

typedef struct {
    rr_rig_t *rig;
    rr_sol_t *sol;
    rr_rig_rx_t *rx;            /* last rr_rig_console_in() result */
    pid_t holder;               /* child holding a session, or 0 */
    size_t len;                 /* console bytes the sink saw */
    char out[65536];
} fixture_t;

/* The sink under test: keeps what it saw, to check every byte reached it. */
static void capture_sink(void *arg, const char *data, size_t len)
{
    fixture_t *f = arg;
    size_t room = sizeof f->out - 1 - f->len;
    size_t n = len < room ? len : room;
    memcpy(f->out + f->len, data, n);
    f->len += n;
    f->out[f->len] = '\0';
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->rig = rr_rig_start(1, NULL);
    *state = f;
    return f->rig ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->holder > 0) {
        kill(f->holder, SIGKILL);
        waitpid(f->holder, NULL, 0);
    }
    rr_sol_destroy(&f->sol);
    free(f->rx);
    rr_rig_stop(&f->rig);
    free(f);
    return 0;
}

static const rr_rig_node_t *node0(const fixture_t *f)
{
    const rr_rig_node_t *node = rr_rig_node(f->rig, 0);
    assert_non_null(node);
    return node;
}

static void sol_open(fixture_t *f)
{
    const rr_rig_node_t *node = node0(f);
    char err[1024] = "";
    f->sol = rr_sol_open(node->host, node->port, node->user, node->password, SOL_TIMEOUT_MS,
                         err, sizeof err);
    if (!f->sol)
        fail_msg("%s", err);
    assert_true(rr_sol_fd(f->sol) >= 0);
}

static void expect(fixture_t *f, const char *needle, uint32_t timeout_ms)
{
    const char *const needles[] = { needle };
    if (rr_sol_expect(f->sol, needles, 1, timeout_ms, capture_sink, f) != 0)
        fail_msg("%s; console so far: %s", rr_sol_error(f->sol), f->out);
}

static void type(fixture_t *f, const char *text, uint32_t delay_ms)
{
    if (rr_sol_type(f->sol, text, strlen(text), delay_ms, capture_sink, f) < 0)
        fail_msg("%s", rr_sol_error(f->sol));
}

/* SOL up first (conman-style), then power on, then the first prompt. */
static void node_at_prompt(fixture_t *f)
{
    sol_open(f);
    rig_power_on(node0(f));
    expect(f, "# ", PROMPT_WAIT_MS);
}

static void test_sol_runs_command_and_reads_output(void **state)
{
    fixture_t *f = *state;
    static const char *const needles[] = { "no-such-output", "hello-42" };
    node_at_prompt(f);
    /* SOL was up before power on: the boot banner came through. */
    assert_non_null(strstr(f->out, "U-Boot"));

    type(f, "echo hello-$((6*7))\r", 5);
    /* "hello-42" appears only in the command's output, not in its echo. */
    int found = rr_sol_expect(f->sol, needles, 2, OUTPUT_WAIT_MS, capture_sink, f);
    if (found != 1)
        fail_msg("expect returned %d: %s; console: %s", found, rr_sol_error(f->sol), f->out);
    expect(f, "# ", OUTPUT_WAIT_MS);
    assert_string_equal(rr_sol_error(f->sol), "");

    /* The sink saw every byte the node printed, in order, once. */
    size_t printed = 0;
    char *console = rr_rig_console_out(f->rig, 0, &printed);
    assert_non_null(console);
    bool same = f->len == printed && memcmp(f->out, console, printed) == 0;
    free(console);
    assert_true(same);

    /* Nothing more comes: expect gives up after its timeout, not before. */
    uint64_t start = mono_ms();
    assert_int_equal(rr_sol_expect(f->sol, needles, 1, 300, capture_sink, f), -1);
    assert_true(mono_ms() - start >= 300);
    assert_non_null(strstr(rr_sol_error(f->sol), "no-such-output"));
}

/* Type TEXT with DELAY_MS and return the smallest gap (ns) between the bytes
 * the node received, as console.in.tsv timed them. */
static uint64_t typed_gap_min_ns(fixture_t *f, const char *text, const char *echo_needle,
                                 uint32_t delay_ms)
{
    size_t len = strlen(text), before = 0, count = 0;
    free(f->rx);
    f->rx = rr_rig_console_in(f->rig, 0, &before);
    uint64_t start = mono_ms();
    type(f, text, delay_ms);
    assert_true(mono_ms() - start >= len * delay_ms);
    expect(f, echo_needle, OUTPUT_WAIT_MS);

    free(f->rx);
    f->rx = rr_rig_console_in(f->rig, 0, &count);
    assert_non_null(f->rx);
    assert_int_equal(count - before, len);
    uint64_t smallest = UINT64_MAX;
    for (size_t i = before; i < count; i++) {
        assert_true(f->rx[i].from_sol);
        assert_int_equal(f->rx[i].byte, (uint8_t) text[i - before]);
        if (i > before && f->rx[i].ns - f->rx[i - 1].ns < smallest)
            smallest = f->rx[i].ns - f->rx[i - 1].ns;
    }
    return smallest;
}

static void test_sol_paces_typed_characters(void **state)
{
    fixture_t *f = *state;
    const uint32_t delay_ms = 20;
    /* rr_sol_type spaces its writes by >= delay_ms on the monotonic clock
     * (traced: never under 20.1 ms). The rig stamps a byte when its own loop
     * reads it from the pty, after the SOL engine's thread, UDP and
     * ipmi_sim's loop each took their turn: that latency was 0.16-0.6 ms on an
     * idle 2-core machine, so one byte stamped late and the next on time gives
     * a gap up to ~0.5 ms short. TOLERANCE_NS (1 ms, i.e. 19.0 ms) covers that
     * and nothing more: a typist that skipped the delay or batched characters
     * shows gaps near 0; one pacing 3 ms short failed every run (checked by
     * hand). On a machine saturated by other work that latency reached 5.6 ms,
     * so the test runs alone (RUN_SERIAL) and a line spoiled by such a stall
     * is typed again, at most ATTEMPTS times in all; a wrong typist fails
     * every attempt. */
    const uint64_t tolerance_ns = 1000000;
    const uint64_t min_gap_ns = (uint64_t) delay_ms * 1000000 - tolerance_ns;
    const int attempts = 3;
    node_at_prompt(f);
    type(f, "\r", delay_ms);      /* the session's first typing sends the ^U primer */
    expect(f, "# ", OUTPUT_WAIT_MS);
    uint64_t smallest = 0;
    for (int i = 0; i < attempts && smallest < min_gap_ns; i++) {
        char text[64], needle[32];
        /* 30 characters; the needle is only in the output, not the echo. */
        snprintf(text, sizeof text, "echo pace-$((%d+1))-ok abcde\r", 100 + i);
        snprintf(needle, sizeof needle, "pace-%d-ok", 101 + i);
        assert_int_equal(strlen(text), 30);
        smallest = typed_gap_min_ns(f, text, needle, delay_ms);
        print_message("attempt %d: smallest gap between typed characters %.3f ms\n", i + 1,
                      smallest / 1e6);
        expect(f, "# ", OUTPUT_WAIT_MS);
    }
    if (smallest < min_gap_ns)
        fail_msg("typed characters arrived %.3f ms apart (delay %u ms, tolerance %.1f ms)",
                 smallest / 1e6, delay_ms, tolerance_ns / 1e6);
}

static void test_sol_open_to_dead_bmc_fails_naming_target(void **state)
{
    fixture_t *f = *state;
    const rr_rig_node_t *node = node0(f);
    const uint32_t timeout_ms = 3000;
    assert_int_equal(rr_rig_bmc(f->rig, 0, "kill"), 0);
    char err[1024] = "";
    uint64_t start = mono_ms();
    f->sol = rr_sol_open(node->host, node->port, node->user, node->password, timeout_ms, err,
                         sizeof err);
    uint64_t elapsed = mono_ms() - start;
    assert_null(f->sol);
    char target[64];
    snprintf(target, sizeof target, "bmc 127.0.0.1:%u: sol open: ", (unsigned) node->port);
    if (!strstr(err, target))
        fail_msg("error '%s' does not name '%s'", err, target);
    assert_null(strstr(err, node->password));
    /* It did wait for the BMC, and gave up within its session timeout (plus
     * the one retry a stale session would cost, plus slack). */
    assert_true(elapsed >= timeout_ms / 2);
    assert_true(elapsed < 2 * timeout_ms + 2000);
}

/* Child mode of this program: open an SOL session like a worker would (with
 * RR_HOLD_ONE_PACKET set, send one SOL packet of one byte raw, as a session
 * that typed once leaves a BMC: last acked sequence number 1), say
 * 'y' on stdout, and hold it until killed. A fresh process, because the
 * parent's console engine threads do not survive fork(). */
static int hold_sol(void)
{
    const char *port = getenv("RR_HOLD_PORT");
    char err[1024];
    rr_sol_t *held = rr_sol_open(getenv("RR_HOLD_HOST"), (uint16_t) atoi(port ? port : "0"),
                                 getenv("RR_HOLD_USER"), getenv("RR_HOLD_PASSWORD"),
                                 SOL_TIMEOUT_MS, err, sizeof err);
    if (!held) {
        fprintf(stderr, "hold-sol: %s\n", err);
        return 1;
    }
    if (getenv("RR_HOLD_ONE_PACKET")) {
        struct timespec acked = { 0, 300 * 1000000L };
        if (write(rr_sol_fd(held), "x", 1) != 1)
            return 1;
        nanosleep(&acked, NULL);
    }
    if (write(STDOUT_FILENO, "y", 1) != 1)
        return 1;
    for (;;)
        pause();
}

/* Start a child holding an SOL session to node 0; returns once it holds it.
 * Only async-signal-safe calls between fork and exec: earlier tests left
 * the SOL engine's thread running in this process, and a child that
 * called malloc (setenv) could inherit an allocator lock one of them held
 * and hang forever (seen under ASan). Its environment is built here first. */
static void start_holder(fixture_t *f, bool one_packet)
{
    const rr_rig_node_t *node = node0(f);
    extern char **environ;
    char host[300], port[32], user[300], password[300], one[32] = "RR_HOLD_ONE_PACKET=1";
    snprintf(host, sizeof host, "RR_HOLD_HOST=%s", node->host);
    snprintf(port, sizeof port, "RR_HOLD_PORT=%u", (unsigned) node->port);
    snprintf(user, sizeof user, "RR_HOLD_USER=%s", node->user);
    snprintf(password, sizeof password, "RR_HOLD_PASSWORD=%s", node->password);
    size_t count = 0;
    while (environ[count])
        count++;
    char **envp = calloc(count + 6, sizeof *envp);
    assert_non_null(envp);
    memcpy(envp, environ, count * sizeof *envp);
    envp[count++] = host;
    envp[count++] = port;
    envp[count++] = user;
    envp[count++] = password;
    if (one_packet)
        envp[count++] = one;
    char *argv[] = { "test_sol", "hold-sol", NULL };
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    f->holder = fork();
    assert_true(f->holder >= 0);
    if (f->holder == 0) {
        dup2(ready[1], STDOUT_FILENO);
        execve("/proc/self/exe", argv, envp);
        _exit(127);
    }
    free(envp);
    close(ready[1]);
    char ok = 0;
    ssize_t n = read(ready[0], &ok, 1);
    close(ready[0]);
    assert_int_equal(n, 1);
    assert_int_equal(ok, 'y');
}

/* A worker held the console (ONE_PACKET: and typed once), then was killed
 * -9: its session is left active on the BMC. Open ours, power on, prompt. */
static void kill_holder_then_take_over(fixture_t *f, bool one_packet)
{
    start_holder(f, one_packet);
    kill(f->holder, SIGKILL);
    waitpid(f->holder, NULL, 0);
    f->holder = 0;
    node_at_prompt(f);
}

/* The worker that held the console was killed: its session is still active
 * on the BMC. A new one takes over and works. */
static void test_sol_open_takes_over_session_of_killed_worker(void **state)
{
    fixture_t *f = *state;
    kill_holder_then_take_over(f, false);
    type(f, "echo took-$(echo over)\r", 5);
    expect(f, "took-over", OUTPUT_WAIT_MS);
}

/* Stock ipmi_sim keeps the last acked SOL sequence number across sessions:
 * after a killed session whose last packet was number 1, a new session's
 * first packet (number 1 again) is acked and dropped. The first keystroke of
 * the new session must still reach the node (rr_sol_type's ^U primer takes
 * the blow; without it this fails every run: the node runs "cho ..."). */
static void test_sol_first_keystroke_survives_bmc_that_kept_old_sequence(void **state)
{
    fixture_t *f = *state;
    kill_holder_then_take_over(f, true);
    type(f, "echo first-$((40+2))\r", 5);
    expect(f, "first-42", OUTPUT_WAIT_MS);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "hold-sol") == 0)
        return hold_sol();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sol_runs_command_and_reads_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sol_paces_typed_characters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sol_open_to_dead_bmc_fails_naming_target, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sol_open_takes_over_session_of_killed_worker, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sol_first_keystroke_survives_bmc_that_kept_old_sequence,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
