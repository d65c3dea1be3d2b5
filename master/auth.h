/* auth.h: the master's ZAP handler (ZeroMQ authentication protocol, RFC 27).
 *
 * libzmq asks "inproc://zeromq.zap.01" whether a CURVE peer may connect; the
 * master answers on its own zloop. The ZAP domain says which allow-list to
 * check: "workers" -> the worker keys directory, "clients" -> the client keys
 * directory. Both hold czmq certificate files (public part; "*_secret" files
 * are ignored) and are re-read when they change. An unknown key is refused
 * and logged with the key and the peer's address. Only one handler can be
 * bound per process (per ZMQ context).
 */
#ifndef RACKRUN_MASTER_AUTH_H
#define RACKRUN_MASTER_AUTH_H

#include <stddef.h>

#define RR_AUTH_DOMAIN_WORKERS "workers"
#define RR_AUTH_DOMAIN_CLIENTS "clients"

typedef struct _rr_auth_t rr_auth_t;
typedef struct _zloop_t zloop_t;
typedef struct _zsock_t zsock_t;

/* Bind the ZAP handler and register it on LOOP. Both directories must exist.
 * NULL with ERR filled on failure. */
rr_auth_t *rr_auth_new(zloop_t *loop, const char *worker_keys_dir, const char *client_keys_dir,
                       char *err, size_t errlen);

/* Unregister and close the handler, NULL *SELF_P. */
void rr_auth_destroy(rr_auth_t **self_p);

/* Make SOCK a CURVE server with the secret certificate at CERT_PATH that asks
 * ZAP DOMAIN. Refuses a certificate without a secret key or readable by group
 * or others. 0, or -1 with ERR filled. */
int rr_auth_curve_server(zsock_t *sock, const char *cert_path, const char *domain,
                         char *err, size_t errlen);

/* How many connections were refused so far (for tests and metrics). */
size_t rr_auth_refused(rr_auth_t *self);

#endif
