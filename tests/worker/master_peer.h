/* master_peer.h: the master's end of a worker link, for worker tests: a
 * ROUTER on a free 127.0.0.1 port (proto_socket_setup applied), a temporary
 * directory with the worker's spool/ and tftp/ paths, and the worker under
 * test run in its own thread. Messages are read and written on ROUTER by the
 * test itself; PEER is the worker's routing id once the test learnt it. */
#ifndef RACKRUN_TESTS_MASTER_PEER_H
#define RACKRUN_TESTS_MASTER_PEER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <czmq.h>

#include "worker.h"

typedef struct {
    char *dir;                  /* removed by master_peer_fini */
    char spool_dir[4096], tftp_root[4096], endpoint[64];
    zsock_t *router;
    zframe_t *peer;
    rr_worker_t *worker;
    pthread_t thread;
    bool running;
} master_peer_t;

/* Temp dir "<PREFIX>-*" (tftp/ created), ROUTER bound. 0, or -1. */
int master_peer_init(master_peer_t *self, const char *prefix);

/* rr_worker_new(CONFIG, INSECURE) and rr_worker_run in a thread. 0, or -1
 * with rr_worker_new's error in ERR. */
int master_peer_start_worker(master_peer_t *self, const rr_worker_config_t *config, bool insecure,
                             char *err, size_t errlen);

/* Stop and join the worker, close the socket, remove the directory. */
void master_peer_fini(master_peer_t *self);

#endif
