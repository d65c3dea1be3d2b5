/* console.c: `rackrun console DEVICE [--interactive]`: follow a node's
 * console live through the master. The worker holds the node's one SOL
 * session, so following it never steals the session from a running job
 * (DESIGN.md, "Node control").
 *
 * Bytes go to stdout raw, as the node sent them, until Ctrl-C: then the CLI
 * says CONSOLE follow=false and exits 0. Every KEEPALIVE_MS it repeats
 * CONSOLE follow=true: the master drops a follower that stops doing so, and
 * the OK it answers proves the master alive. A keepalive unanswered for the
 * request timeout (--timeout) means the master is gone: exit 3.
 *
 * --interactive also types stdin into the console (CONSOLE_INPUT; the master
 * allows it only for a device in maintenance and a key with role admin, and
 * says so before anything is read). On a terminal, stdin is switched to raw
 * mode (Ctrl-C goes to the node) and restored on every way out; "~." at the
 * start of a line quits, "~~" types one "~". When stdin is not a terminal,
 * its newlines are typed as carriage returns (a serial Enter), and at its
 * end the CLI keeps showing the console until it has been quiet for
 * LINGER_MS, then exits 0. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "connection.h"
#include "units.h"

#define KEEPALIVE_MS 2000u  /* the master drops a follower silent for 3 of them */
#define STOP_WAIT_MS 500u   /* how long the stop may take to leave before we close */
#define LINGER_MS 2000u     /* after stdin's end: exit once the console is this quiet */
#define READ_CHUNK 512u     /* stdin bytes per read: one CONSOLE_INPUT (master: <= 1 KiB) */

typedef struct {
    rr_connection_t *conn;
    const char *device;
    uint64_t asked_at;      /* mono ms of the oldest unanswered CONSOLE, 0 = none */
    uint64_t next_at;       /* mono ms of the next keepalive */
    bool following;         /* the master answered the first CONSOLE */
    /* --interactive */
    bool interactive;
    bool tty;               /* stdin is a terminal, now in raw mode */
    bool reading;           /* stdin not at its end yet */
    bool line_start;        /* nothing typed yet, or the last byte ended a line */
    bool tilde;             /* a "~" at a line start, held back */
    bool quit;              /* "~." typed */
    uint64_t quiet_since;   /* stdin ended: mono ms of the last output (or the end) */
} follow_t;

static struct termios saved_termios;
static bool termios_saved;

static void restore_terminal(void)
{
    if (termios_saved && tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios) == 0)
        termios_saved = false;
}

/* Stdin a terminal: raw mode (restored at exit and by restore_terminal). */
static void raw_terminal(follow_t *f)
{
    struct termios raw;
    f->tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_termios) == 0;
    if (!f->tty)
        return;
    raw = saved_termios;
    cfmakeraw(&raw);
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) != 0) {
        f->tty = false;
        return;
    }
    termios_saved = true;
    atexit(restore_terminal);
    fprintf(stderr, "rackrun: console %s: interactive; type ~. at the start of a line to "
            "quit\r\n", f->device);
}

static int send_console(follow_t *f, bool follow)
{
    proto_msg_t req = { .type = PROTO_MSG_CONSOLE, .version = PROTO_VERSION };
    req.u.console = (proto_console_t){ .device = (char *)f->device, .follow = follow };
    return rr_connection_send(f->conn, &req);
}

static int send_input(follow_t *f, const char *data, size_t len)
{
    proto_msg_t req = { .type = PROTO_MSG_CONSOLE_INPUT, .version = PROTO_VERSION };
    req.u.console_input = (proto_console_input_t){ .device = (char *)f->device,
                                                   .data = (uint8_t *)data, .data_len = len };
    return rr_connection_send(f->conn, &req);
}

/* Ask whether this key may type into the console now (an empty CONSOLE_INPUT):
 * the refusal ("not in maintenance", a role) comes before anything is read. */
static int probe_input(follow_t *f)
{
    proto_msg_t req = { .type = PROTO_MSG_CONSOLE_INPUT, .version = PROTO_VERSION };
    req.u.console_input = (proto_console_input_t){ .device = (char *)f->device };
    proto_msg_t reply = { 0 };
    int rc = rr_connection_request(f->conn, &req, PROTO_MSG_OK, &reply);
    proto_msg_free(&reply);
    return rc;
}

/* Send the (keepalive) CONSOLE follow=true now. */
static int send_keepalive(follow_t *f, uint64_t now)
{
    if (!f->asked_at)
        f->asked_at = now;
    f->next_at = now + KEEPALIVE_MS;
    return send_console(f, true);
}

/* Filter IN (N bytes) into OUT (room for 2 N): the "~." escape, and newlines
 * as carriage returns when stdin is not a terminal. Returns the bytes kept. */
static size_t filter_input(follow_t *f, const char *in, size_t n, char *out)
{
    size_t len = 0;
    for (size_t i = 0; i < n && !f->quit; i++) {
        char c = in[i] == '\n' && !f->tty ? '\r' : in[i];
        if (f->tilde) {
            f->tilde = false;
            if (c == '.') {
                f->quit = true;
                break;
            }
            out[len++] = '~';
            if (c == '~') {
                f->line_start = false;
                continue;
            }
        } else if (c == '~' && f->line_start) {
            f->tilde = true;
            continue;
        }
        out[len++] = c;
        f->line_start = c == '\r' || c == '\n';
    }
    return len;
}

/* Stdin is readable: type what it holds. 0 go on, else an exit code. */
static int on_stdin(follow_t *f)
{
    char in[READ_CHUNK], out[2 * READ_CHUNK];
    ssize_t n = read(STDIN_FILENO, in, sizeof in);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0) {
        f->reading = false;
        f->quiet_since = rr_mono_ms();
        return 0;
    }
    size_t len = filter_input(f, in, (size_t)n, out);
    return len ? send_input(f, out, len) : 0;
}

/* Handle one message: 0 go on, else an exit code. */
static int on_message(follow_t *f, const proto_msg_t *msg)
{
    switch (msg->type) {
    case PROTO_MSG_CONSOLE_DATA:
        if (strcmp(msg->u.console_data.device, f->device) == 0) {
            fwrite(msg->u.console_data.data, 1, msg->u.console_data.data_len, stdout);
            fflush(stdout);
            f->quiet_since = f->quiet_since ? rr_mono_ms() : 0;
        }
        return 0;
    case PROTO_MSG_OK:      /* a keepalive's or an input's: the master is there */
        f->asked_at = 0;
        f->following = true;
        return 0;
    case PROTO_MSG_ERROR:
        restore_terminal();
        rr_connection_print_error(msg);
        return RR_EXIT_FAILED;
    default:
        restore_terminal();
        rr_cli_error("master %s: sent '%s' while following console %s (protocol mismatch?)",
                     rr_connection_endpoint(f->conn), proto_type_name(msg->type), f->device);
        return RR_EXIT_MASTER;
    }
}

/* The deadline of the next wait (keepalive, answer, linger). */
static uint64_t next_deadline(const follow_t *f, uint32_t timeout)
{
    uint64_t until = f->next_at;
    if (f->asked_at && f->asked_at + timeout < until)
        until = f->asked_at + timeout;
    if (f->quiet_since && f->quiet_since + LINGER_MS < until)
        until = f->quiet_since + LINGER_MS;
    return until;
}

/* Wait for the next message, input or keepalive: 0 go on, -1 done (stdin
 * ended and the console went quiet, or "~."), else an exit code. */
static int follow_step(follow_t *f)
{
    uint32_t timeout = rr_connection_timeout(f->conn);
    uint64_t now = rr_mono_ms();
    if (f->quit || (f->quiet_since && now - f->quiet_since >= LINGER_MS))
        return -1;
    if (f->asked_at && now - f->asked_at >= timeout) {
        restore_terminal();
        rr_cli_error("master %s: no answer within %" PRIu32 " ms while following console %s",
                     rr_connection_endpoint(f->conn), timeout, f->device);
        return RR_EXIT_MASTER;
    }
    if (now >= f->next_at)
        return send_keepalive(f, now);
    uint32_t wait = (uint32_t)(next_deadline(f, timeout) - now);
    int ready = f->reading && f->following
              ? rr_connection_wait_fd(f->conn, STDIN_FILENO, wait)
              : rr_connection_wait(f->conn, wait);
    if (ready == 2)
        return on_stdin(f);
    if (ready != 1)
        return ready;
    proto_msg_t msg = { 0 };
    int rc = rr_connection_recv(f->conn, &msg, timeout);
    if (rc == 0)
        rc = on_message(f, &msg);
    proto_msg_free(&msg);
    return rc;
}

/* Say CONSOLE follow=false and give it a moment to leave. */
static void stop_following(follow_t *f)
{
    proto_msg_t reply = { 0 };
    if (send_console(f, false) == 0)
        rr_connection_recv(f->conn, &reply, STOP_WAIT_MS);
    proto_msg_free(&reply);
}

int rr_cmd_console(const rr_cli_opts_t *opts, int argc, char **args)
{
    follow_t f = { .device = args[0], .interactive = opts->interactive,
                   .reading = opts->interactive, .line_start = true };
    (void)argc;
    int rc = rr_connection_open(opts, &f.conn);
    if (rc != 0)
        return rc;
    if (f.interactive && (rc = probe_input(&f)) != 0)
        goto out;
    if (f.interactive)
        raw_terminal(&f);
    rc = send_keepalive(&f, rr_mono_ms());
    while (rc == 0)
        rc = follow_step(&f);
    restore_terminal();
    if (rc == RR_EXIT_INTERRUPTED || rc == -1) {
        /* Ctrl-C, "~." or the end of piped input is how one stops following. */
        stop_following(&f);
        rc = 0;
    }
out:
    rr_connection_destroy(&f.conn);
    return rc;
}
