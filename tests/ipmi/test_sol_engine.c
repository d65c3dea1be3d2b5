/* test_sol_engine.c: the SOL engine (worker/sol_engine.h) against stock
 * ipmi_sim BMCs of the emulated rack: failures that name the BMC and the
 * cause, output that arrives byte-exact, a busy session past the BMC's idle
 * timeout, a BMC killed under a session, two sessions at once on the one
 * engine thread.
 *
 * Each test gets a fixture (rig, sessions) that the teardown frees, so a
 * failed assertion leaks nothing and leaves no process. Every wait has a
 * deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipmi.h"
#include "rig.h"
#include "rig_power.h"
#include "sol_engine.h"

#define SESSION_TIMEOUT_MS 10000
#define PROMPT_WAIT_MS 10000
#define NODES 2

typedef struct {
    rr_rig_t *rig;
    rr_sol_session_t *session[NODES];
    int silent_fd;              /* a UDP port where no BMC answers, or -1 */
    char *seen[NODES];          /* console bytes read from each session */
    size_t seen_len[NODES];
} fixture_t;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static int setup_nodes(void **state, size_t nodes)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->silent_fd = -1;
    *state = f;
    if (nodes)
        f->rig = rr_rig_start(nodes, NULL);
    return !nodes || f->rig ? 0 : -1;
}

static int setup_one(void **state)
{
    return setup_nodes(state, 1);
}

static int setup_two(void **state)
{
    return setup_nodes(state, 2);
}

static int setup_none(void **state)
{
    return setup_nodes(state, 0);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    for (size_t i = 0; i < NODES; i++) {
        rr_sol_session_destroy(&f->session[i]);
        free(f->seen[i]);
    }
    if (f->silent_fd >= 0)
        close(f->silent_fd);
    rr_rig_stop(&f->rig);
    free(f);
    return 0;
}

static const rr_rig_node_t *node(const fixture_t *f, size_t i)
{
    const rr_rig_node_t *n = rr_rig_node(f->rig, i);
    assert_non_null(n);
    return n;
}

static void open_session(fixture_t *f, size_t i, uint32_t timeout_ms)
{
    const rr_rig_node_t *n = node(f, i);
    char err[1024] = "";
    f->session[i] = rr_sol_session_open(n->host, n->port, n->user, n->password, timeout_ms, err,
                                        sizeof err, NULL);
    if (!f->session[i])
        fail_msg("%s", err);
    assert_true(rr_sol_session_fd(f->session[i]) >= 0);
}

/* Read session I's output for at most MS; returns 1 when something came,
 * 0 on time-out, -1 on EOF. */
static int read_some(fixture_t *f, size_t i, int ms)
{
    char buf[8192];
    struct pollfd pfd = { .fd = rr_sol_session_fd(f->session[i]), .events = POLLIN };
    if (poll(&pfd, 1, ms) <= 0)
        return 0;
    ssize_t n = read(pfd.fd, buf, sizeof buf);
    if (n == 0)
        return -1;
    if (n < 0)
        return errno == EAGAIN ? 0 : -1;
    f->seen[i] = realloc(f->seen[i], f->seen_len[i] + (size_t) n + 1);
    assert_non_null(f->seen[i]);
    memcpy(f->seen[i] + f->seen_len[i], buf, (size_t) n);
    f->seen_len[i] += (size_t) n;
    f->seen[i][f->seen_len[i]] = '\0';
    return 1;
}

/* Read session I until its output from byte FROM on holds NEEDLE. */
static void wait_output(fixture_t *f, size_t i, size_t from, const char *needle, int ms)
{
    uint64_t deadline = mono_ms() + (uint64_t) ms;
    while (!(f->seen_len[i] > from && strstr(f->seen[i] + from, needle))) {
        uint64_t now = mono_ms();
        if (now >= deadline || read_some(f, i, (int) (deadline - now)) < 0)
            fail_msg("node %zu: no '%s' within %d ms; output: %s", i, needle, ms,
                     f->seen[i] ? f->seen[i] + from : "");
    }
}

/* Type TEXT into session I as a terminal would: one write. */
static void type(fixture_t *f, size_t i, const char *text)
{
    ssize_t n = send(rr_sol_session_fd(f->session[i]), text, strlen(text), MSG_NOSIGNAL);
    assert_int_equal(n, (ssize_t) strlen(text));
}

/* Session I open before power on (nothing lost), then the node's prompt.
 * The first packet of a session may be dropped by stock ipmi_sim (bug 2):
 * a lone ^U goes first. */
static void node_at_prompt(fixture_t *f, size_t i)
{
    open_session(f, i, SESSION_TIMEOUT_MS);
    rig_power_on(node(f, i));
    wait_output(f, i, 0, "# ", PROMPT_WAIT_MS);
    type(f, i, "\025");
}

static void test_engine_wrong_password_fails_naming_bmc_and_rakp_check(void **state)
{
    fixture_t *f = *state;
    const rr_rig_node_t *n = node(f, 0);
    char err[1024] = "", wrong[64], target[64];
    snprintf(wrong, sizeof wrong, "%.10sx", n->password);
    rr_sol_session_t *s = rr_sol_session_open(n->host, n->port, n->user, wrong, 5000, err,
                                              sizeof err, NULL);
    assert_null(s);
    snprintf(target, sizeof target, "bmc 127.0.0.1:%u: ", (unsigned) n->port);
    if (!strstr(err, target) || !strstr(err, "wrong password (RAKP 2 check failed)"))
        fail_msg("error '%s' does not name '%s' and the RAKP 2 check", err, target);
    assert_null(strstr(err, wrong));
    assert_null(strstr(err, n->password));
}

static void test_engine_open_where_no_bmc_answers_times_out_within_timeout(void **state)
{
    fixture_t *f = *state;
    const uint32_t timeout_ms = 1500;
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    /* A bound UDP port that never answers: packets vanish, as to a dead BMC. */
    f->silent_fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(f->silent_fd >= 0);
    assert_int_equal(bind(f->silent_fd, (struct sockaddr *) &addr, sizeof addr), 0);
    assert_int_equal(getsockname(f->silent_fd, (struct sockaddr *) &addr, &len), 0);
    char err[1024] = "", target[64];
    uint64_t start = mono_ms();
    rr_sol_session_t *s = rr_sol_session_open("127.0.0.1", ntohs(addr.sin_port), "admin", "pw",
                                              timeout_ms, err, sizeof err, NULL);
    uint64_t elapsed = mono_ms() - start;
    assert_null(s);
    snprintf(target, sizeof target, "bmc 127.0.0.1:%u: sol open: open session: no answer",
             (unsigned) ntohs(addr.sin_port));
    if (!strstr(err, target))
        fail_msg("error '%s' does not say '%s'", err, target);
    if (elapsed < timeout_ms || elapsed > timeout_ms + 1000)
        fail_msg("gave up after %llu ms (timeout %u ms)", (unsigned long long) elapsed,
                 timeout_ms);
}

/* Over IPv6 the engine reaches the port (an RMCP+ Open Session request
 * arrives at [::1]) and gives up naming it the IPv6 way. */
static void test_engine_open_over_ipv6_sends_to_the_port_and_names_it(void **state)
{
    fixture_t *f = *state;
    struct sockaddr_in6 addr = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    socklen_t len = sizeof addr;
    f->silent_fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (f->silent_fd < 0 || bind(f->silent_fd, (struct sockaddr *) &addr, sizeof addr) < 0)
        skip();                         /* no IPv6 loopback on this machine */
    assert_int_equal(getsockname(f->silent_fd, (struct sockaddr *) &addr, &len), 0);
    char err[1024] = "", target[80];
    rr_sol_session_t *s = rr_sol_session_open("::1", ntohs(addr.sin6_port), "admin", "pw", 1000,
                                              err, sizeof err, NULL);
    assert_null(s);
    snprintf(target, sizeof target, "bmc [::1]:%u: sol open: open session: no answer",
             (unsigned) ntohs(addr.sin6_port));
    if (!strstr(err, target))
        fail_msg("error '%s' does not say '%s'", err, target);
    /* RMCP header (version 6, class IPMI), then payload type Open Session Request */
    uint8_t pkt[512];
    ssize_t n = recv(f->silent_fd, pkt, sizeof pkt, MSG_DONTWAIT);
    assert_true(n > 6);
    assert_int_equal(pkt[0], 0x06);
    assert_int_equal(pkt[5] & 0x3f, 0x10);
}

static void test_engine_delivers_64k_of_node_output_byte_exact(void **state)
{
    fixture_t *f = *state;
    node_at_prompt(f, 0);
    /* 48 KiB of random bytes as base64: 65 KB of lines; the marker is only in
     * the output (the echo has "END-$((...))"). */
    type(f, 0, "dd if=/dev/urandom bs=1024 count=48 2>/dev/null | base64; echo END-$((60+4))K\r");
    wait_output(f, 0, 0, "END-64K", 60000);
    wait_output(f, 0, 0, "# ", 5000);
    /* Everything the node printed, and nothing else, in order. */
    size_t printed = 0;
    char *console = NULL;
    uint64_t deadline = mono_ms() + 5000;
    do {
        free(console);
        console = rr_rig_console_out(f->rig, 0, &printed);
        assert_non_null(console);
    } while (printed != f->seen_len[0] && mono_ms() < deadline && read_some(f, 0, 100) >= 0);
    assert_true(printed > 65536);
    bool same = printed == f->seen_len[0] && memcmp(console, f->seen[0], printed) == 0;
    free(console);
    if (!same)
        fail_msg("node printed %zu bytes, the session delivered %zu (or other bytes)", printed,
                 f->seen_len[0]);
}

static void test_engine_session_of_killed_bmc_ends_with_eof_and_reason(void **state)
{
    fixture_t *f = *state;
    const uint32_t timeout_ms = 3000;
    open_session(f, 0, timeout_ms);
    assert_int_equal(rr_rig_bmc(f->rig, 0, "kill"), 0);
    uint64_t start = mono_ms();
    int got = 0;
    while (got >= 0 && mono_ms() - start < timeout_ms + 3000)
        got = read_some(f, 0, 200);
    uint64_t elapsed = mono_ms() - start;
    assert_int_equal(got, -1);          /* EOF, within the session timeout and slack */
    char err[1024], target[64];
    rr_sol_session_error(f->session[0], err, sizeof err);
    snprintf(target, sizeof target, "bmc 127.0.0.1:%u: sol session lost: no answer",
             (unsigned) node(f, 0)->port);
    if (!strstr(err, target))
        fail_msg("error '%s' does not say '%s'", err, target);
    assert_true(elapsed >= timeout_ms / 2);
}

/* Stock ipmi_sim times a session out 30 s after its last IPMI message, SOL
 * packets or not: a console printing for 33 s without a pause survives only
 * because the engine's keepalive goes whatever the traffic (libipmiconsole
 * lost it at 30 s). The session timeout is short (keepalive every 2 s), and
 * every line arrives. */
static void test_engine_busy_session_outlives_the_bmc_idle_timeout(void **state)
{
    fixture_t *f = *state;
    open_session(f, 0, 6000);
    rig_power_on(node(f, 0));
    wait_output(f, 0, 0, "# ", PROMPT_WAIT_MS);
    type(f, 0, "\025");
    size_t from = f->seen_len[0];
    uint64_t start = mono_ms();
    type(f, 0, "i=0; while [ $i -lt 330 ]; do echo busy-$i; sleep 0.1; i=$((i+1)); done;"
               " echo BUSY-$((40+2))\r");
    wait_output(f, 0, from, "BUSY-42", 60000);
    uint64_t elapsed = mono_ms() - start;
    if (elapsed < 31000)
        fail_msg("the output took %llu ms, not past ipmi_sim's 30 s timeout",
                 (unsigned long long) elapsed);
    for (int i = 0; i < 330; i += 47) {
        char line[32];
        snprintf(line, sizeof line, "busy-%d\r\n", i);
        if (!strstr(f->seen[0] + from, line))
            fail_msg("line '%s' missing", line);
    }
    char err[1024];
    rr_sol_session_error(f->session[0], err, sizeof err);
    assert_string_equal(err, "");
}

static void test_engine_runs_two_sessions_on_two_bmcs_at_once(void **state)
{
    fixture_t *f = *state;
    node_at_prompt(f, 0);
    node_at_prompt(f, 1);
    size_t from0 = f->seen_len[0], from1 = f->seen_len[1];
    type(f, 0, "echo zero-$((0+100))\r");
    type(f, 1, "echo one-$((1+100))\r");
    wait_output(f, 0, from0, "zero-100", 5000);
    wait_output(f, 1, from1, "one-101", 5000);
    /* Each session carries its own node's console only. */
    assert_null(strstr(f->seen[0], "one-101"));
    assert_null(strstr(f->seen[1], "zero-100"));
    char err[1024];
    rr_sol_session_error(f->session[0], err, sizeof err);
    assert_string_equal(err, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_engine_wrong_password_fails_naming_bmc_and_rakp_check,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(
            test_engine_open_where_no_bmc_answers_times_out_within_timeout, setup_none, teardown),
        cmocka_unit_test_setup_teardown(test_engine_open_over_ipv6_sends_to_the_port_and_names_it,
                                        setup_none, teardown),
        cmocka_unit_test_setup_teardown(test_engine_delivers_64k_of_node_output_byte_exact,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_engine_session_of_killed_bmc_ends_with_eof_and_reason,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_engine_busy_session_outlives_the_bmc_idle_timeout,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_engine_runs_two_sessions_on_two_bmcs_at_once,
                                        setup_two, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
