/* auth.h: the master's ZAP handler (ZeroMQ authentication protocol, RFC 27).
 *
 * libzmq asks "inproc://zeromq.zap.01" whether a CURVE peer may connect; the
 * master answers on its own zloop. The ZAP domain says which allow-list to
 * check: "workers" -> the worker keys directory, "clients" -> the client keys
 * directory. Both hold czmq certificate files (public part; "*_secret" files
 * are ignored). An unknown key is refused and logged with the key and the
 * peer's address.
 *
 * Each certificate says who the key is: metadata "name" (else the file name)
 * is the worker name a worker key may speak for; metadata "role" (read |
 * submit | admin, roles.h; missing: read) is what a client key may do. The
 * ZAP reply's User-Id is the Z85 public key, so every message received on
 * the endpoints carries its sender's key (rr_auth_peer).
 *
 * The directories are re-read without a restart: at once when inotify says
 * they changed, on SIGHUP, and at least every RR_AUTH_RELOAD_MS. A key that
 * is gone from its directory is refused from then on, also on connections
 * that are already open (rr_auth_peer fails for their messages). Only one
 * handler can be bound per process (per ZMQ context).
 */
#ifndef RACKRUN_MASTER_AUTH_H
#define RACKRUN_MASTER_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "roles.h"

#define RR_AUTH_DOMAIN_WORKERS "workers"
#define RR_AUTH_DOMAIN_CLIENTS "clients"
#define RR_AUTH_RELOAD_MS 5000          /* full re-read, in case inotify missed a change */

typedef struct _rr_auth_t rr_auth_t;
typedef struct _zloop_t zloop_t;
typedef struct _zsock_t zsock_t;
typedef struct _zframe_t zframe_t;

/* Who sent a message, as the allow-list says now. */
typedef struct {
    char key[41];               /* Z85 public key ("-" when unknown) */
    char address[64];           /* the peer's address ("?" when unknown) */
    char name[128];             /* certificate "name", else its file name */
    rr_role_t role;             /* clients: certificate "role", else RR_ROLE_DEFAULT */
} rr_auth_peer_t;

/* Bind the ZAP handler and register it (and its reload watch) on LOOP. Both
 * directories must exist. NULL with ERR filled on failure. */
rr_auth_t *rr_auth_new(zloop_t *loop, const char *worker_keys_dir, const char *client_keys_dir,
                       char *err, size_t errlen);

/* Unregister and close the handler, NULL *SELF_P. */
void rr_auth_destroy(rr_auth_t **self_p);

/* Make SOCK a CURVE server with the secret certificate at CERT_PATH that asks
 * ZAP DOMAIN. Refuses a certificate without a secret key or readable by group
 * or others. 0, or -1 with ERR filled. */
int rr_auth_curve_server(zsock_t *sock, const char *cert_path, const char *domain,
                         char *err, size_t errlen);

/* Identify the sender of FRAME (a frame just received on the DOMAIN
 * endpoint, e.g. the ROUTER's routing id): 0 with PEER filled while its key
 * is in DOMAIN's allow-list; -1 when it no longer is (key and address filled
 * for the log). */
int rr_auth_peer(rr_auth_t *self, zframe_t *frame, const char *domain, rr_auth_peer_t *peer);

/* Whether the Z85 KEY is in DOMAIN's allow-list now. */
bool rr_auth_key_allowed(rr_auth_t *self, const char *domain, const char *key);

/* Re-read both directories now (what SIGHUP does). */
void rr_auth_reload(rr_auth_t *self);

/* How many connections were refused so far (for tests and metrics). */
size_t rr_auth_refused(rr_auth_t *self);

#endif
