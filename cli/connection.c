/* connection.c: the CLI's DEALER to the master (see connection.h).
 *
 * ZMQ never reports "nobody is listening": a DEALER queues the request and
 * retries the connection in the background. So the only honest signal is
 * the reply deadline; the error then names the endpoint and the likely
 * causes. */
#include "connection.h"

#include <czmq.h>
#include <stdbool.h>
#include <string.h>

struct _rr_connection_t {
    zsock_t *sock;
    zpoller_t *poller;
    char *endpoint;
    bool curve;
    uint32_t timeout_ms;
};

/* Load the client's secret cert from PATH (NAME or NAME_secret). */
static zcert_t *load_client_cert(const char *path)
{
    static const byte zero[32];
    zcert_t *cert = zcert_load(path);
    if (!cert) {
        rr_cli_error("--key %s: cannot load a CURVE certificate (create one with rackrun keygen)", path);
        return NULL;
    }
    if (memcmp(zcert_secret_key(cert), zero, sizeof zero) == 0) {
        rr_cli_error("--key %s: holds no secret key (give NAME or NAME_secret of a rackrun keygen pair)",
                     path);
        zcert_destroy(&cert);
    }
    return cert;
}

/* Make SOCK a CURVE client of the master whose public cert is at MASTER_KEY. */
static int setup_curve(zsock_t *sock, const rr_cli_opts_t *opts)
{
    if (!opts->key || !opts->master_key) {
        rr_cli_error("no %s: pass --key SECRET_CERT and --master-key PUBLIC_CERT "
                     "(or RACKRUN_KEY/RACKRUN_MASTER_KEY), or --insecure for a master without CURVE",
                     opts->key ? "--master-key" : "--key");
        return RR_EXIT_USAGE;
    }
    zcert_t *client = load_client_cert(opts->key);
    if (!client)
        return RR_EXIT_USAGE;
    zcert_t *master = zcert_load(opts->master_key);
    if (!master) {
        rr_cli_error("--master-key %s: cannot load the master's public certificate", opts->master_key);
        zcert_destroy(&client);
        return RR_EXIT_USAGE;
    }
    zcert_apply(client, sock);
    zsock_set_curve_serverkey(sock, zcert_public_txt(master));
    zcert_destroy(&master);
    zcert_destroy(&client);
    return 0;
}

int rr_connection_open(const rr_cli_opts_t *opts, rr_connection_t **out)
{
    int rc = RR_EXIT_MASTER;
    rr_connection_t *self = calloc(1, sizeof *self);
    if (!self)
        goto err;
    self->endpoint = strdup(opts->master);
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->endpoint || !self->sock)
        goto err_destroy;
    self->curve = !opts->insecure;
    self->timeout_ms = opts->timeout_ms;
    proto_socket_setup(self->sock);
    if (self->curve && (rc = setup_curve(self->sock, opts)) != 0)
        goto err_destroy;
    if (!self->curve)
        rr_cli_error("warning: --insecure: talking to the master without CURVE "
                     "(no authentication, no encryption)");
    if (zsock_connect(self->sock, "%s", self->endpoint) != 0) {
        rr_cli_error("master '%s': not a valid endpoint (%s; e.g. tcp://127.0.0.1:5556)",
                     self->endpoint, zmq_strerror(zmq_errno()));
        rc = RR_EXIT_USAGE;
        goto err_destroy;
    }
    self->poller = zpoller_new(self->sock, NULL);
    if (!self->poller)
        goto err_destroy;
    *out = self;
    return 0;

err_destroy:
    rr_connection_destroy(&self);
err:
    if (rc == RR_EXIT_MASTER)
        rr_cli_error("master %s: cannot create a socket: %s", opts->master, zmq_strerror(zmq_errno()));
    return rc;
}

void rr_connection_destroy(rr_connection_t **self_p)
{
    rr_connection_t *self = *self_p;
    if (!self)
        return;
    zpoller_destroy(&self->poller);
    zsock_destroy(&self->sock);
    free(self->endpoint);
    free(self);
    *self_p = NULL;
}

const char *rr_connection_endpoint(const rr_connection_t *self)
{
    return self->endpoint;
}

int rr_connection_send(rr_connection_t *self, const proto_msg_t *msg)
{
    proto_error_t err = { 0 };
    if (proto_send(self->sock, NULL, msg, &err) == 0)
        return 0;
    if (err.status == PROTO_E_TOO_BIG) {
        rr_cli_error("%s: request over the %u KiB message limit, not sent",
                     proto_type_name(msg->type), PROTO_MAX_MSG / 1024);
        return RR_EXIT_USAGE;
    }
    if (err.status != PROTO_OK)
        rr_cli_error("%s: cannot encode: %s", proto_type_name(msg->type), err.text);
    else
        rr_cli_error("master %s: cannot send %s: %s", self->endpoint, proto_type_name(msg->type),
                     zmq_strerror(zmq_errno()));
    return RR_EXIT_MASTER;
}

static void print_timeout(const rr_connection_t *self, uint32_t timeout_ms)
{
    char within[32];
    if (timeout_ms % 1000 == 0)
        snprintf(within, sizeof within, "%u s", timeout_ms / 1000);
    else
        snprintf(within, sizeof within, "%.1f s", timeout_ms / 1000.0);
    rr_cli_error("master %s: no answer within %s (%s)", self->endpoint, within,
                 self->curve ? "not running, or it refused this client's CURVE key"
                             : "not running, or it expects CURVE: drop --insecure");
}

int rr_connection_wait(rr_connection_t *self, uint32_t timeout_ms)
{
    int timeout = timeout_ms > INT32_MAX ? -1 : (int)timeout_ms;
    if (zpoller_wait(self->poller, timeout))
        return 1;
    return zpoller_terminated(self->poller) ? RR_EXIT_INTERRUPTED : 0;
}

int rr_connection_wait_fd(rr_connection_t *self, int fd, uint32_t timeout_ms)
{
    zmq_pollitem_t items[2] = { { zsock_resolve(self->sock), 0, ZMQ_POLLIN, 0 },
                                { NULL, fd, ZMQ_POLLIN, 0 } };
    long timeout = timeout_ms > INT32_MAX ? -1 : (long)timeout_ms;
    int rc = zmq_poll(items, 2, timeout);
    if (zsys_interrupted)
        return RR_EXIT_INTERRUPTED;
    if (rc <= 0)
        return 0;                       /* (another signal: the caller waits again) */
    return (items[0].revents & ZMQ_POLLIN) ? 1 : 2;   /* 2: readable, at EOF or in error */
}

uint32_t rr_connection_timeout(const rr_connection_t *self)
{
    return self->timeout_ms;
}

int rr_connection_recv(rr_connection_t *self, proto_msg_t *msg, uint32_t timeout_ms)
{
    proto_error_t err = { 0 };
    int ready = rr_connection_wait(self, timeout_ms);
    if (ready == 0) {
        print_timeout(self, timeout_ms);
        return RR_EXIT_MASTER;
    }
    if (ready != 1)
        return ready;
    int rc = proto_recv(self->sock, NULL, msg, &err);
    if (rc == -2)
        return RR_EXIT_INTERRUPTED;
    if (rc != 0) {
        rr_cli_error("master %s: bad message: %s", self->endpoint, err.text);
        return RR_EXIT_MASTER;
    }
    return 0;
}

void rr_connection_print_error(const proto_msg_t *error)
{
    const char *code = error->u.error.code, *key = error->u.error.key, *text = error->u.error.text;
    if (key && *key && !strstr(text, key))
        rr_cli_error("master: %s: %s: %s", code, key, text);
    else
        rr_cli_error("master: %s: %s", code, text);
}

int rr_connection_request(rr_connection_t *self, const proto_msg_t *request,
                          proto_type_t want, proto_msg_t *reply)
{
    int rc = rr_connection_send(self, request);
    if (rc == 0)
        rc = rr_connection_recv(self, reply, self->timeout_ms);
    if (rc != 0)
        return rc;
    if (reply->type == want)
        return 0;
    if (reply->type == PROTO_MSG_ERROR) {
        rr_connection_print_error(reply);
        return RR_EXIT_FAILED;
    }
    rr_cli_error("master %s: answered '%s' to '%s' (protocol mismatch?)", self->endpoint,
                 proto_type_name(reply->type), proto_type_name(request->type));
    proto_msg_free(reply);
    return RR_EXIT_MASTER;
}

int rr_connection_call(const rr_cli_opts_t *opts, const proto_msg_t *request,
                       proto_type_t want, proto_msg_t *reply)
{
    rr_connection_t *conn = NULL;
    int rc = rr_connection_open(opts, &conn);
    if (rc != 0)
        return rc;
    rc = rr_connection_request(conn, request, want, reply);
    rr_connection_destroy(&conn);
    return rc;
}

int rr_connection_open_for_job(const rr_cli_opts_t *opts, const char *text, uint64_t *job,
                               rr_connection_t **out)
{
    int rc = rr_cli_job_id(text, job);
    return rc != 0 ? rc : rr_connection_open(opts, out);
}
