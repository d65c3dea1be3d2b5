/* master_peer.c: the master's end of a worker link, for worker tests (master_peer.h). */
#include "master_peer.h"

#include <stdio.h>
#include <sys/stat.h>

#include "proto.h"
#include "tmpdir.h"

int master_peer_init(master_peer_t *self, const char *prefix)
{
    self->dir = tmpdir_new(prefix);
    self->router = zsock_new(ZMQ_ROUTER);
    if (!self->dir || !self->router)
        return -1;
    proto_socket_setup(self->router);
    int port = zsock_bind(self->router, "tcp://127.0.0.1:*");
    if (port < 0)
        return -1;
    snprintf(self->endpoint, sizeof self->endpoint, "tcp://127.0.0.1:%d", port);
    snprintf(self->spool_dir, sizeof self->spool_dir, "%s/spool", self->dir);
    snprintf(self->tftp_root, sizeof self->tftp_root, "%s/tftp", self->dir);
    return mkdir(self->tftp_root, 0755);
}

static void *worker_thread(void *arg)
{
    rr_worker_run(arg);
    return NULL;
}

int master_peer_start_worker(master_peer_t *self, const rr_worker_config_t *config, bool insecure,
                             char *err, size_t errlen)
{
    self->worker = rr_worker_new(config, insecure, err, errlen);
    if (!self->worker)
        return -1;
    if (pthread_create(&self->thread, NULL, worker_thread, self->worker) != 0) {
        snprintf(err, errlen, "pthread_create failed");
        return -1;
    }
    self->running = true;
    return 0;
}

void master_peer_fini(master_peer_t *self)
{
    if (self->running) {
        rr_worker_stop(self->worker);
        pthread_join(self->thread, NULL);
        self->running = false;
    }
    rr_worker_destroy(&self->worker);
    zframe_destroy(&self->peer);
    zsock_destroy(&self->router);
    tmpdir_remove(&self->dir);
}
