/* console.c: `rackrun console DEVICE`: follow a node's console live through
 * the master. The worker holds the node's one SOL session, so following it
 * never steals the session from a running job (DESIGN.md, "Node control").
 *
 * Bytes go to stdout raw, as the node sent them, until Ctrl-C: then the CLI
 * says CONSOLE follow=false and exits 0. Every KEEPALIVE_MS it repeats
 * CONSOLE follow=true: the master drops a follower that stops doing so, and
 * the OK it answers proves the master alive. A keepalive unanswered for the
 * request timeout (--timeout) means the master is gone: exit 3. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "connection.h"
#include "units.h"

#define KEEPALIVE_MS 2000u  /* the master drops a follower silent for 3 of them */
#define STOP_WAIT_MS 500u   /* how long the stop may take to leave before we close */

typedef struct {
    rr_connection_t *conn;
    const char *device;
    uint64_t asked_at;      /* mono ms of the oldest unanswered CONSOLE, 0 = none */
    uint64_t next_at;       /* mono ms of the next keepalive */
} follow_t;

static int send_console(follow_t *f, bool follow)
{
    proto_msg_t req = { .type = PROTO_MSG_CONSOLE, .version = PROTO_VERSION };
    req.u.console = (proto_console_t){ .device = (char *)f->device, .follow = follow };
    return rr_connection_send(f->conn, &req);
}

/* Send the (keepalive) CONSOLE follow=true now. */
static int send_keepalive(follow_t *f, uint64_t now)
{
    if (!f->asked_at)
        f->asked_at = now;
    f->next_at = now + KEEPALIVE_MS;
    return send_console(f, true);
}

/* Handle one message: 0 go on, else an exit code. */
static int on_message(follow_t *f, const proto_msg_t *msg)
{
    switch (msg->type) {
    case PROTO_MSG_CONSOLE_DATA:
        if (strcmp(msg->u.console_data.device, f->device) == 0) {
            fwrite(msg->u.console_data.data, 1, msg->u.console_data.data_len, stdout);
            fflush(stdout);
        }
        return 0;
    case PROTO_MSG_OK:
        f->asked_at = 0;
        return 0;
    case PROTO_MSG_ERROR:
        rr_connection_print_error(msg);
        return RR_EXIT_FAILED;
    default:
        rr_cli_error("master %s: sent '%s' while following console %s (protocol mismatch?)",
                     rr_connection_endpoint(f->conn), proto_type_name(msg->type), f->device);
        return RR_EXIT_MASTER;
    }
}

/* Wait for the next message or keepalive: 0 go on, else an exit code. */
static int follow_step(follow_t *f)
{
    uint32_t timeout = rr_connection_timeout(f->conn);
    uint64_t now = rr_mono_ms();
    if (f->asked_at && now - f->asked_at >= timeout) {
        rr_cli_error("master %s: no answer within %" PRIu32 " ms while following console %s",
                     rr_connection_endpoint(f->conn), timeout, f->device);
        return RR_EXIT_MASTER;
    }
    if (now >= f->next_at)
        return send_keepalive(f, now);
    uint64_t until = f->next_at;
    if (f->asked_at && f->asked_at + timeout < until)
        until = f->asked_at + timeout;
    int ready = rr_connection_wait(f->conn, (uint32_t)(until - now));
    if (ready != 1)
        return ready;
    proto_msg_t msg = { 0 };
    int rc = rr_connection_recv(f->conn, &msg, timeout);
    if (rc == 0)
        rc = on_message(f, &msg);
    proto_msg_free(&msg);
    return rc;
}

int rr_cmd_console(const rr_cli_opts_t *opts, int argc, char **args)
{
    follow_t f = { .device = args[0] };
    (void)argc;
    int rc = rr_connection_open(opts, &f.conn);
    if (rc != 0)
        return rc;
    rc = send_keepalive(&f, rr_mono_ms());
    while (rc == 0)
        rc = follow_step(&f);
    if (rc == RR_EXIT_INTERRUPTED) {
        /* Ctrl-C is how one stops following: say so, give it a moment to leave. */
        proto_msg_t reply = { 0 };
        if (send_console(&f, false) == 0)
            rr_connection_recv(f.conn, &reply, STOP_WAIT_MS);
        proto_msg_free(&reply);
        rc = 0;
    }
    rr_connection_destroy(&f.conn);
    return rc;
}
