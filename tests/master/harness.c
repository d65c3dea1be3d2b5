/* harness.c: an in-process master and raw DEALER peers for the master's tests. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"
#include "master.h"

harness_t *harness_new(void)
{
    harness_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    snprintf(h->dir, sizeof h->dir, "/tmp/rr-master-test-XXXXXX");
    char err[256];
    if (!mkdtemp(h->dir) || rr_master_config_load(NULL, &h->config, err, sizeof err) != 0) {
        free(h);
        return NULL;
    }
    harness_set(&h->config->db_path, harness_path(h, 0, "master.db"));
    harness_set(&h->config->worker_endpoint, "tcp://127.0.0.1:*");
    harness_set(&h->config->client_endpoint, "tcp://127.0.0.1:*");
    free(h->config->http_listen);
    h->config->http_listen = NULL;
    free(h->config->secret_key);
    h->config->secret_key = NULL;
    h->config->heartbeat_interval_ms = 100;
    h->config->heartbeat_timeout_ms = 500;
    h->config->worker_grace_ms = 60000;
    return h;
}

void harness_set(char **field, const char *value)
{
    free(*field);
    *field = value ? strdup(value) : NULL;
}

const char *harness_path(harness_t *h, int slot, const char *name)
{
    static char paths[4][512];
    char *path = paths[slot & 3];
    snprintf(path, sizeof paths[0], "%s/%s", h->dir, name);
    return path;
}

int harness_start(harness_t *h)
{
    h->master = zactor_new(rr_master_actor, h->config);
    if (!h->master) {
        snprintf(h->start_error, sizeof h->start_error, "zactor_new failed");
        return -1;
    }
    char *status = NULL, *first = NULL, *second = NULL;
    zsock_set_rcvtimeo(h->master, 10000);
    int rc = zstr_recvx(h->master, &status, &first, &second, NULL);
    bool ok = rc >= 2 && status && streq(status, "OK") && second;
    if (ok) {
        snprintf(h->worker_ep, sizeof h->worker_ep, "%s", first);
        snprintf(h->client_ep, sizeof h->client_ep, "%s", second);
    }
    else
        snprintf(h->start_error, sizeof h->start_error, "%s", first ? first : "no answer");
    zstr_free(&status);
    zstr_free(&first);
    zstr_free(&second);
    if (!ok)
        harness_stop(h);
    return ok ? 0 : -1;
}

void harness_stop(harness_t *h)
{
    zactor_destroy(&h->master);
}

void harness_destroy(harness_t **h_p)
{
    if (!h_p || !*h_p)
        return;
    harness_t *h = *h_p;
    for (size_t i = 0; i < sizeof h->peers / sizeof h->peers[0]; i++)
        zsock_destroy(&h->peers[i]);
    harness_stop(h);
    zcert_destroy(&h->master_cert);
    rr_master_config_destroy(&h->config);
    zdir_t *dir = zdir_new(h->dir, NULL);
    if (dir) {
        zdir_remove(dir, true);
        zdir_destroy(&dir);
    }
    free(h);
    *h_p = NULL;
}

int harness_curve(harness_t *h)
{
    h->master_cert = zcert_new();
    if (!h->master_cert || zsys_dir_create("%s", harness_path(h, 0, "workers")) != 0
        || zsys_dir_create("%s", harness_path(h, 0, "clients")) != 0
        || zcert_save(h->master_cert, harness_path(h, 0, "master")) != 0
        || chmod(harness_path(h, 0, "master_secret"), 0600) != 0)
        return -1;
    harness_set(&h->config->secret_key, harness_path(h, 0, "master"));
    harness_set(&h->config->worker_keys_dir, harness_path(h, 0, "workers"));
    harness_set(&h->config->client_keys_dir, harness_path(h, 0, "clients"));
    return 0;
}

zsock_t *harness_peer(harness_t *h, const char *endpoint, zcert_t *cert)
{
    for (size_t i = 0; h->master_cert && i < sizeof h->peers / sizeof h->peers[0]; i++)
        if (!h->peers[i])
            return h->peers[i] = peer_new(endpoint, cert, zcert_public_txt(h->master_cert));
    return NULL;
}

int harness_shell(const char *command, char *out, size_t len)
{
    FILE *pipe = popen(command, "r");
    if (!pipe)
        return -1;
    size_t n = fread(out, 1, len - 1, pipe);
    out[n] = '\0';
    int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

zsock_t *peer_new(const char *endpoint, zcert_t *cert, const char *server_key)
{
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock)
        return NULL;
    proto_socket_setup(sock);
    if (cert) {
        zcert_apply(cert, sock);
        zsock_set_curve_serverkey(sock, server_key);
    }
    if (zsock_connect(sock, "%s", endpoint) != 0)
        zsock_destroy(&sock);
    return sock;
}

int peer_send(zsock_t *sock, const proto_msg_t *msg)
{
    proto_error_t err;
    /* a fresh connection may not be up yet: retry EAGAIN for a while */
    for (int i = 0; i < 200; i++) {
        if (proto_send(sock, NULL, msg, &err) == 0)
            return 0;
        if (errno != EAGAIN || err.status != PROTO_OK)
            return -1;
        zclock_sleep(10);
    }
    return -1;
}

int peer_send_hello(zsock_t *sock, const char *name)
{
    proto_device_t dev = { .name = "hb-01", .type = "highbank", .state = "idle" };
    proto_msg_t msg = { .type = PROTO_MSG_HELLO, .version = PROTO_VERSION };
    msg.u.hello = (proto_hello_t) { .worker = (char *) name, .version = "test",
                                    .proto_min = PROTO_VERSION_MIN, .proto_max = PROTO_VERSION,
                                    .devices = &dev, .devices_count = 1 };
    return peer_send(sock, &msg);
}

int peer_recv(zsock_t *sock, int timeout_ms, proto_msg_t *msg)
{
    memset(msg, 0, sizeof *msg);
    zpoller_t *poller = zpoller_new(sock, NULL);
    void *ready = poller ? zpoller_wait(poller, timeout_ms) : NULL;
    zpoller_destroy(&poller);
    if (!ready)
        return -1;
    proto_error_t err;
    return proto_recv(sock, NULL, msg, &err) == 0 ? 0 : -1;
}

int peer_expect(zsock_t *sock, proto_type_t type, int timeout_ms, proto_msg_t *msg)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    for (;;) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0 || peer_recv(sock, (int) left, msg) != 0)
            return -1;
        if (msg->type == type)
            return 0;
        proto_msg_free(msg);
    }
}
