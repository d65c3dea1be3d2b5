/* sol.c: one node's Serial-over-LAN console over rackrun's SOL engine.
 *
 * The engine (sol_engine.c, on libfreeipmi) runs the IPMI side on its one
 * thread and hands us a socket that carries the console bytes both ways; EOF
 * on it means the session ended, and rr_sol_session_error says why. Everything
 * read by rr_sol_expect and rr_sol_type goes to the caller's sink and into an
 * rr_expect_t, so output that arrives while typing can still be expected.
 * rr_sol_read is the raw path: it bypasses that buffer. */
#include "sol.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockios.h>

#include "expect.h"
#include "ipmi.h"
#include "sol_engine.h"
#include "units.h"

#define SOL_EXPECT_CAPACITY 65536   /* unmatched output kept for expect */
#define SOL_READ_CHUNK 4096
#define SOL_TAKE_POLL_NS 200000ULL       /* how often to look whether the engine took a byte */
#define SOL_TAKE_MAX_NS 1000000000ULL    /* an engine stalled longer: pace from then on */
#define SOL_KILL_LINE '\025'            /* ^U: kills the line a shell or U-Boot is reading */
#define SOL_PRIME_SETTLE_NS 100000000ULL  /* the primer's packet is acked well within this */

struct _rr_sol_t {
    rr_sol_session_t *session;
    int fd;                     /* our end of the engine's socket, non-blocking */
    rr_expect_t *unmatched;
    bool primed;                /* the session's first packet (the primer) is sent */
    uint64_t rtt_min_ns;        /* fastest byte written -> its echo read, 0 = none yet */
    int echo_char;              /* the byte rr_sol_type waits to see echoed, -1 = none */
    bool echo_seen;             /* it was in the output read last */
    char error[1024];
};

/* "host:port" of the BMC, for messages. */
static const char *target(const rr_sol_t *self)
{
    return rr_sol_session_target(self->session);
}

/* A stale SOL session on the BMC: deactivate it out of band, so the next try finds it free. */
static void deactivate_stale(const char *host, uint16_t port, const char *user,
                             const char *password, uint32_t timeout_ms)
{
    rr_ipmi_t *bmc = rr_ipmi_new(host, port, user, password, timeout_ms, 0);
    if (bmc)
        rr_ipmi_sol_deactivate(bmc);
    rr_ipmi_destroy(&bmc);
}

static int sol_fd_open(rr_sol_t *self, char *cause, size_t len)
{
    self->fd = rr_sol_session_fd(self->session);
    int flags = fcntl(self->fd, F_GETFL);
    if (flags < 0 || fcntl(self->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        snprintf(cause, len, "console fd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Why the engine ended the session, naming the BMC, into self->error. */
static void session_cause(rr_sol_t *self, const char *what)
{
    rr_sol_session_error(self->session, self->error, sizeof self->error);
    if (!self->error[0])
        snprintf(self->error, sizeof self->error, "bmc %s: %s: console socket closed",
                 target(self), what);
}

rr_sol_t *rr_sol_open(const char *host, uint16_t port, const char *user, const char *password,
                      uint32_t timeout_ms, char *err, size_t errlen)
{
    char cause[400] = "";
    bool in_use = false;
    rr_sol_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "bmc %s:%u: sol open: out of memory", host ? host : "(null)",
                 (unsigned) port);
        return NULL;
    }
    self->fd = -1;
    self->echo_char = -1;
    self->session = rr_sol_session_open(host, port, user, password, timeout_ms, err, errlen,
                                        &in_use);
    /* The engine already deactivates a payload it finds active and retries
     * once; IN_USE means activation still met one (a BMC whose status lies,
     * or a race): deactivate it out of band and try once more. */
    if (!self->session && in_use) {
        deactivate_stale(host, port, user, password, timeout_ms);
        self->session = rr_sol_session_open(host, port, user, password, timeout_ms, err, errlen,
                                            NULL);
    }
    if (!self->session)
        goto err_destroy;       /* ERR names the BMC and the cause */
    if (sol_fd_open(self, cause, sizeof cause) < 0)
        goto err_report;
    self->unmatched = rr_expect_new(SOL_EXPECT_CAPACITY);
    if (!self->unmatched) {
        snprintf(cause, sizeof cause, "out of memory");
        goto err_report;
    }
    return self;
err_report:
    snprintf(err, errlen, "bmc %s: sol open: %s", target(self), cause);
err_destroy:
    rr_sol_destroy(&self);
    return NULL;
}

void rr_sol_destroy(rr_sol_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rr_sol_t *self = *self_p;
    rr_expect_destroy(&self->unmatched);
    /* The engine closes the fd, deactivates the payload and closes the
     * session with the BMC (best effort), and zeroes what it held. */
    rr_sol_session_destroy(&self->session);
    free(self);
    *self_p = NULL;
}

int rr_sol_fd(const rr_sol_t *self)
{
    return self->fd;
}

const char *rr_sol_error(const rr_sol_t *self)
{
    return self->error;
}

ssize_t rr_sol_read(rr_sol_t *self, void *buf, size_t len)
{
    ssize_t n = read(self->fd, buf, len);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n == 0)
        session_cause(self, "sol session lost");
    else
        snprintf(self->error, sizeof self->error, "bmc %s: sol session lost: %s", target(self),
                 strerror(errno));
    return -1;
}

/* Wait for output until DEADLINE_NS (monotonic); read what came, pass it to
 * SINK and the expect buffer. Returns the expect result (needle index or -1),
 * or -2 when the session is lost. */
static int pump(rr_sol_t *self, uint64_t deadline_ns, rr_sol_sink_fn *sink, void *arg)
{
    uint64_t now = rr_mono_ns();
    uint64_t wait_ns = deadline_ns > now ? deadline_ns - now : 0;
    struct timespec ts = { .tv_sec = (time_t) (wait_ns / 1000000000ULL),
                           .tv_nsec = (long) (wait_ns % 1000000000ULL) };
    struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
    int ready = ppoll(&pfd, 1, &ts, NULL);
    if (ready < 0 && errno != EINTR) {
        snprintf(self->error, sizeof self->error, "bmc %s: sol poll: %s", target(self),
                 strerror(errno));
        return -2;
    }
    if (ready <= 0)
        return -1;
    char buf[SOL_READ_CHUNK];
    ssize_t n = rr_sol_read(self, buf, sizeof buf);
    if (n < 0)
        return -2;
    if (n == 0)
        return -1;
    if (self->echo_char >= 0)
        self->echo_seen = memchr(buf, self->echo_char, (size_t) n) != NULL;
    if (sink)
        sink(arg, buf, (size_t) n);
    return rr_expect_feed(self->unmatched, buf, (size_t) n);
}

/* Pass output to SINK until DUE_NS (monotonic): draining never shortens a
 * wait, a slow drain only lengthens it. Returns 0, or -1 when the session is lost. */
static int pump_until(rr_sol_t *self, uint64_t due_ns, rr_sol_sink_fn *sink, void *arg)
{
    do {
        if (pump(self, due_ns, sink, arg) == -2)
            return -1;
    } while (rr_mono_ns() < due_ns);
    return 0;
}

static void describe_timeout(rr_sol_t *self, const char *const *needles, size_t count,
                             uint32_t timeout_ms)
{
    int off = snprintf(self->error, sizeof self->error, "bmc %s: sol: none of", target(self));
    for (size_t i = 0; i < count && off > 0 && (size_t) off < sizeof self->error; i++)
        off += snprintf(self->error + off, sizeof self->error - (size_t) off, " '%s'", needles[i]);
    if (off > 0 && (size_t) off < sizeof self->error)
        snprintf(self->error + off, sizeof self->error - (size_t) off, " within %u ms",
                 timeout_ms);
}

int rr_sol_expect(rr_sol_t *self, const char *const *needles, size_t count, uint32_t timeout_ms,
                  rr_sol_sink_fn *sink, void *arg)
{
    uint64_t deadline = rr_mono_ns() + (uint64_t) timeout_ms * 1000000ULL;
    self->error[0] = '\0';
    int found = rr_expect_arm(self->unmatched, needles, count);
    while (found == -1 && rr_mono_ns() < deadline)
        found = pump(self, deadline, sink, arg);
    rr_expect_disarm(self->unmatched);
    if (found == -1)
        describe_timeout(self, needles, count, timeout_ms);
    return found;
}

/* Write one byte, waiting for room in the socket if the engine is behind.
 * MSG_NOSIGNAL: a session the engine closed is an EPIPE to report, not a
 * SIGPIPE that kills the worker. */
static int type_byte(rr_sol_t *self, char c)
{
    for (;;) {
        ssize_t n = send(self->fd, &c, 1, MSG_NOSIGNAL);
        if (n == 1)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = { .fd = self->fd, .events = POLLOUT };
            if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
                continue;
        }
        if (n < 0 && errno == EPIPE)
            session_cause(self, "sol write");
        else
            snprintf(self->error, sizeof self->error, "bmc %s: sol write: %s", target(self),
                     strerror(errno));
        return -1;
    }
}

/* Wait until the engine thread has read everything written to the socket
 * (SIOCOUTQ: bytes the peer has not read yet), passing output to SINK
 * meanwhile; at most SOL_TAKE_MAX_NS. Returns 0, or -2 when the session is lost. */
static int wait_taken(rr_sol_t *self, rr_sol_sink_fn *sink, void *arg)
{
    uint64_t give_up = rr_mono_ns() + SOL_TAKE_MAX_NS;
    int queued = 0;
    while (ioctl(self->fd, SIOCOUTQ, &queued) == 0 && queued > 0 && rr_mono_ns() < give_up) {
        if (pump(self, rr_mono_ns() + SOL_TAKE_POLL_NS, sink, arg) == -2)
            return -2;
    }
    return 0;
}

/* Wait until the node echoes byte C (output holding it arrives), at most
 * MAX_NS, passing all output to SINK. Other output (a prompt, a command's
 * late lines) is no echo: the byte may still sit in the engine. Returns 1 when
 * the echo came, 0 on time-out, -2 when the session is lost. */
static int wait_echo(rr_sol_t *self, char c, uint64_t max_ns, rr_sol_sink_fn *sink, void *arg)
{
    uint64_t give_up = rr_mono_ns() + max_ns;
    int found = 0;
    self->echo_char = (unsigned char) c;
    self->echo_seen = false;
    for (;;) {
        uint64_t now = rr_mono_ns();
        if (now >= give_up)
            break;
        struct timespec ts = { .tv_sec = (time_t) ((give_up - now) / 1000000000ULL),
                               .tv_nsec = (long) ((give_up - now) % 1000000000ULL) };
        struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
        int ready = ppoll(&pfd, 1, &ts, NULL);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0 || (ready > 0 && pump(self, rr_mono_ns(), sink, arg) == -2)) {
            found = -2;
            break;
        }
        if (self->echo_seen) {
            found = 1;
            break;
        }
    }
    self->echo_char = -1;
    return found;
}

/* Send the session's first SOL packet: one ^U on its own. Stock ipmi_sim
 * keeps the sequence number it last acked across sessions and drops a new
 * session's first packet as a retransmission when its number (always 1) is
 * the same, acking it all the same: about one reconnect in fifteen lost the
 * first character typed (traced in the chaos test: `{` of `{ cmd\n}; echo
 * END` never reached the node, so the step ran without its end marker). The
 * primer is that packet: lost, nothing is lost; delivered, it kills an empty
 * line (a line half typed when the last session died is one the runner types
 * again whole). It goes alone: the next bytes are read by the engine after it,
 * so they travel in packet 2, and the first of them waits at least DELAY_MS. */
static int type_primer(rr_sol_t *self, uint32_t delay_ms, rr_sol_sink_fn *sink, void *arg)
{
    if (type_byte(self, SOL_KILL_LINE) < 0 || wait_taken(self, sink, arg) == -2)
        return -1;
    uint64_t settle = (uint64_t) delay_ms * 1000000ULL;
    if (pump_until(self, rr_mono_ns() + (settle > SOL_PRIME_SETTLE_NS ? settle : SOL_PRIME_SETTLE_NS),
                   sink, arg) < 0)
        return -1;
    self->primed = true;
    return 0;
}

/* When the next byte may go: DELAY_NS after the node got the last one,
 * written at WRITTEN_NS and echoed at ECHO_NS. The node got it at the latest
 * at its echo less the path's fastest way back, the next one arrives at the
 * earliest its write plus the fastest way there: both together are at least
 * the fastest write-to-echo round trip seen (rtt_min_ns), so the next byte is
 * due at ECHO_NS + DELAY_NS - rtt_min_ns. Pacing from the echo itself added a
 * whole round trip to every character (6.1-6.6 ms per character for 5 ms). A
 * byte the path held back still shows in a late echo, and holds the next one
 * back as long. SAMPLE: this echo may teach the round trip (it followed an
 * echoed byte, so it is not the late echo of an earlier one). */
static uint64_t next_due(rr_sol_t *self, uint64_t written_ns, uint64_t echo_ns, uint64_t delay_ns,
                         bool sample)
{
    uint64_t rtt = echo_ns - written_ns;
    if (sample && (!self->rtt_min_ns || rtt < self->rtt_min_ns))
        self->rtt_min_ns = rtt;
    uint64_t ahead = self->rtt_min_ns < rtt ? self->rtt_min_ns : rtt;
    return echo_ns + delay_ns - ahead;
}

int rr_sol_type(rr_sol_t *self, const char *data, size_t len, uint32_t delay_ms,
                rr_sol_sink_fn *sink, void *arg)
{
    uint64_t delay_ns = (uint64_t) delay_ms * 1000000ULL;
    bool last_echoed = false;
    if (len && !self->primed && type_primer(self, delay_ms, sink, arg) < 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        uint64_t written = rr_mono_ns();
        if (type_byte(self, data[i]) < 0)
            return -1;
        if (!delay_ms)
            continue;
        /* Pace from the node's echo of the byte, when it echoes (next_due):
         * the node printed it after it received the byte, so the engine took
         * it and the BMC delivered it, however late either ran (measured under
         * load without this: 0.3-16 ms gaps at the node for 20 ms). */
        int echoed = wait_echo(self, data[i], delay_ns, sink, arg);
        if (echoed == -2)
            return -1;
        uint64_t due;
        if (echoed) {
            due = next_due(self, written, rr_mono_ns(), delay_ns, last_echoed);
        } else {
            /* No echo (a password prompt): pace from the moment
             * the SOL engine took the byte, on the monotonic clock:
             * an engine thread that runs late would otherwise read the next
             * byte sooner than DELAY_MS after this one, or both at once into
             * one packet. Such a byte costs DELAY_MS more. */
            if (wait_taken(self, sink, arg) == -2)
                return -1;
            due = rr_mono_ns() + delay_ns;
        }
        last_echoed = echoed == 1;
        if (rr_mono_ns() < due && pump_until(self, due, sink, arg) < 0)
            return -1;
    }
    return 0;
}
