/* auth.c: the master's ZAP handler and key allow-lists, on the master's zloop.
 *
 * czmq's zauth actor would do this on its own thread, but it has one CURVE
 * allow-list for every socket; rackrun needs one per ZAP domain (workers and
 * clients are authorised separately) and per-key identity (worker name,
 * client role), so the master answers ZAP itself. The allow-lists are not
 * zcertstore either: zcertstore_insert asserts (the process aborts) when two
 * files in the directory hold the same key, a plain operator mistake
 * ("cp w1 w1.bak"). So each list is a table of Z85 keys read with zcert_load,
 * duplicates ignored (the first file by name wins).
 *
 * Reloading: inotify on both directories (a change is seen before the next
 * ZAP request is answered: the handler drains the inotify fd first), SIGHUP,
 * and a full re-read every RR_AUTH_RELOAD_MS as a safety net. A reload builds
 * a new table and swaps it in whole: a half-written directory never leaves a
 * list half-empty for longer than the next event.
 */
#include <czmq.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "auth.h"
#include "common.h"
#include "proto.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define TICK_MS 1000
#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE \
                    | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

/* One allowed key. */
typedef struct {
    char *file;                 /* the certificate it came from */
    char *name;                 /* metadata "name", else the file's base name */
    rr_role_t role;
} rr_keyinfo_t;

/* One allow-list directory. */
typedef struct {
    const char *domain;
    char *dir;
    zhashx_t *keys;             /* Z85 public key -> rr_keyinfo_t */
} rr_allowlist_t;

struct _rr_auth_t {
    zloop_t *loop;
    zsock_t *handler;           /* REP bound to ZAP_ENDPOINT */
    rr_allowlist_t *workers;
    rr_allowlist_t *clients;
    int inotify_fd;             /* -1 when inotify is unavailable: timer only */
    zmq_pollitem_t inotify_item;
    int timer;
    uint64_t last_reload;       /* mono ms */
    size_t refused;
};

static volatile sig_atomic_t s_hangup;

static void s_on_sighup(int signum)
{
    (void) signum;
    s_hangup = 1;
}

/* ---- allow-lists ---- */

static void s_keyinfo_destroy(void **item)
{
    rr_keyinfo_t *info = *item;
    if (!info)
        return;
    free(info->file);
    free(info->name);
    free(info);
    *item = NULL;
}

static zhashx_t *s_keytable_new(void)
{
    zhashx_t *keys = zhashx_new();
    if (keys)
        zhashx_set_destructor(keys, s_keyinfo_destroy);
    return keys;
}

static void s_allowlist_destroy(rr_allowlist_t **self_p)
{
    if (!*self_p)
        return;
    zhashx_destroy(&(*self_p)->keys);
    free((*self_p)->dir);
    free(*self_p);
    *self_p = NULL;
}

static rr_allowlist_t *s_allowlist_new(const char *domain, const char *dir)
{
    rr_allowlist_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->domain = domain;
    self->dir = strdup(dir);
    self->keys = s_keytable_new();
    if (!self->dir || !self->keys)
        s_allowlist_destroy(&self);
    return self;
}

static bool s_ends_with(const char *text, const char *suffix)
{
    size_t n = strlen(text), m = strlen(suffix);
    return n >= m && streq(text + n - m, suffix);
}

/* Who CERT (loaded from PATH) says the key is; NULL for an unusable role. */
static rr_keyinfo_t *s_keyinfo_new(rr_allowlist_t *self, zcert_t *cert, const char *path)
{
    const char *role_text = zcert_meta(cert, "role");
    rr_role_t role = RR_ROLE_DEFAULT;
    if (role_text && streq(self->domain, RR_AUTH_DOMAIN_CLIENTS)
        && rr_role_parse(role_text, &role) != 0) {
        rr_warn("auth: %s: role '%s' is not read, submit or admin: key ignored", path, role_text);
        return NULL;
    }
    const char *name = zcert_meta(cert, "name");
    const char *base = strrchr(path, '/');
    rr_keyinfo_t *info = calloc(1, sizeof *info);
    if (!info)
        return NULL;
    info->file = strdup(path);
    info->name = strdup(name && *name ? name : base ? base + 1 : path);
    info->role = role;
    if (!info->file || !info->name) {
        void *item = info;
        s_keyinfo_destroy(&item);
        return NULL;
    }
    return info;
}

/* Add the public key of the certificate file FILE to KEYS (not a cert: ignored). */
static void s_allowlist_add(rr_allowlist_t *self, zhashx_t *keys, zfile_t *file)
{
    const char *path = zfile_filename(file, NULL);
    if (!zfile_is_regular(file) || s_ends_with(path, "_secret"))
        return;
    zcert_t *cert = zcert_load(path);
    if (!cert)
        return;
    rr_keyinfo_t *info = s_keyinfo_new(self, cert, path);
    if (info && zhashx_insert(keys, zcert_public_txt(cert), info) != 0) {
        rr_keyinfo_t *first = zhashx_lookup(keys, zcert_public_txt(cert));
        rr_debug("auth: %s: same key as %s, ignored", path, first->file);
        void *item = info;
        s_keyinfo_destroy(&item);
    }
    zcert_destroy(&cert);
}

/* Log the keys of OLD that NEW no longer has: their sessions end. */
static void s_log_removed(rr_allowlist_t *self, zhashx_t *old, zhashx_t *new)
{
    for (rr_keyinfo_t *info = zhashx_first(old); info; info = zhashx_next(old)) {
        const char *key = zhashx_cursor(old);
        if (!zhashx_lookup(new, key))
            rr_info("auth: %s key %s (%s, %s) removed: refused from now on, open sessions "
                    "dropped", self->domain, key, info->name, info->file);
    }
}

/* Read the directory into a new table and swap it in. */
static void s_allowlist_reload(rr_allowlist_t *self)
{
    zhashx_t *keys = s_keytable_new();
    if (!keys)
        return;                         /* keep the old table: better than none */
    zdir_t *dir = zdir_new(self->dir, NULL);
    if (dir) {
        zfile_t **files = zdir_flatten(dir);
        for (size_t i = 0; files && files[i]; i++)
            s_allowlist_add(self, keys, files[i]);
        zdir_flatten_free(&files);
        zdir_destroy(&dir);
    }
    else
        rr_warn("auth: %s keys directory %s is gone: every %s key is refused", self->domain,
                self->dir, self->domain);
    s_log_removed(self, self->keys, keys);
    if (zhashx_size(keys) != zhashx_size(self->keys))
        rr_info("auth: %s: %zu keys allowed (from %s)", self->domain, zhashx_size(keys),
                self->dir);
    zhashx_destroy(&self->keys);
    self->keys = keys;
}

/* ---- reloading ---- */

static void s_watch(rr_auth_t *self)
{
    if (self->inotify_fd < 0)
        return;
    /* Again on every reload: a directory that was replaced needs a new watch. */
    inotify_add_watch(self->inotify_fd, self->workers->dir, WATCH_MASK);
    inotify_add_watch(self->inotify_fd, self->clients->dir, WATCH_MASK);
}

void rr_auth_reload(rr_auth_t *self)
{
    s_allowlist_reload(self->workers);
    s_allowlist_reload(self->clients);
    s_watch(self);
    self->last_reload = rr_mono_ms();
}

/* Read what inotify queued; reload when it said anything. */
static void s_drain_inotify(rr_auth_t *self)
{
    if (self->inotify_fd < 0)
        return;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool changed = false;
    while (read(self->inotify_fd, buf, sizeof buf) > 0)
        changed = true;
    if (changed)
        rr_auth_reload(self);
}

static int s_on_inotify(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_drain_inotify(arg);
    return 0;
}

static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    rr_auth_t *self = arg;
    if (s_hangup) {
        s_hangup = 0;
        rr_info("auth: SIGHUP: re-reading the keys directories");
        rr_auth_reload(self);
    }
    else if (rr_mono_ms() - self->last_reload >= RR_AUTH_RELOAD_MS)
        rr_auth_reload(self);
    return 0;
}

/* ---- ZAP ---- */

static bool s_is_dir(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Which allow-list DOMAIN names, or NULL. */
static rr_allowlist_t *s_list_for(rr_auth_t *self, const char *domain)
{
    if (!domain)
        return NULL;
    if (streq(domain, RR_AUTH_DOMAIN_WORKERS))
        return self->workers;
    if (streq(domain, RR_AUTH_DOMAIN_CLIENTS))
        return self->clients;
    return NULL;
}

bool rr_auth_key_allowed(rr_auth_t *self, const char *domain, const char *key)
{
    rr_allowlist_t *list = s_list_for(self, domain);
    return list && key && zhashx_lookup(list->keys, key) != NULL;
}

/* Decide one request; *KEY gets the client's Z85 public key for the log. */
static bool s_allowed(rr_auth_t *self, const char *domain, const char *mechanism,
                      zframe_t *credentials, char *key, const char **why)
{
    if (!streq(mechanism, "CURVE")) {
        *why = "mechanism is not CURVE";
        return false;
    }
    if (!credentials || zframe_size(credentials) != 32) {
        *why = "no CURVE public key";
        return false;
    }
    zmq_z85_encode(key, zframe_data(credentials), 32);
    if (!s_list_for(self, domain)) {
        *why = "unknown ZAP domain";
        return false;
    }
    if (!rr_auth_key_allowed(self, domain, key)) {
        *why = "key not in the allow-list";
        return false;
    }
    return true;
}

/* Answer a request; takes *REQUEST_ID. The User-Id is the key (rr_auth_peer). */
static void s_reply(rr_auth_t *self, zframe_t **request_id, bool ok, const char *text,
                    const char *user)
{
    zmsg_t *reply = zmsg_new();
    zmsg_addstr(reply, "1.0");
    zmsg_append(reply, request_id);
    zmsg_addstr(reply, ok ? "200" : "400");
    zmsg_addstr(reply, text);
    zmsg_addstr(reply, ok ? user : "");
    zmsg_addmem(reply, NULL, 0);            /* metadata: none */
    zmsg_send(&reply, self->handler);
}

/* One ZAP request: version, request id, domain, address, identity, mechanism, credentials. */
static int s_on_request(zloop_t *loop, zsock_t *sock, void *arg)
{
    rr_auth_t *self = arg;
    zmsg_t *request = zmsg_recv(sock);
    if (!request)
        return 0;                           /* interrupted */
    s_drain_inotify(self);                  /* a key added a moment ago counts */
    char *version = zmsg_popstr(request);
    zframe_t *request_id = zmsg_pop(request);
    char *domain = zmsg_popstr(request);
    char *address = zmsg_popstr(request);
    zframe_t *identity = zmsg_pop(request);
    char *mechanism = zmsg_popstr(request);
    zframe_t *credentials = zmsg_pop(request);

    char key[41] = "-";
    const char *why = "malformed ZAP request";
    bool ok = version && streq(version, "1.0") && request_id && domain && address && mechanism
              && s_allowed(self, domain, mechanism, credentials, key, &why);
    if (ok)
        rr_debug("auth: %s key %s from %s allowed", domain, key, address);
    else {
        self->refused++;
        rr_warn("auth: refused %s key %s from %s: %s", domain ? domain : "?", key,
                address ? address : "?", why);
    }
    if (request_id)
        s_reply(self, &request_id, ok, ok ? "OK" : why, key);

    zframe_destroy(&credentials);
    zstr_free(&mechanism);
    zframe_destroy(&identity);
    zstr_free(&address);
    zstr_free(&domain);
    zstr_free(&version);
    zmsg_destroy(&request);
    return 0;
}

/* Metadata PROPERTY of the message whose routing id is FRAME. */
static const char *s_frame_meta(zframe_t *frame, const char *property)
{
    const char *value = frame ? zframe_meta(frame, property) : NULL;
    return value ? value : proto_recv_meta(property);
}

int rr_auth_peer(rr_auth_t *self, zframe_t *frame, const char *domain, rr_auth_peer_t *peer)
{
    memset(peer, 0, sizeof *peer);
    const char *key = s_frame_meta(frame, "User-Id");
    const char *address = s_frame_meta(frame, "Peer-Address");
    snprintf(peer->key, sizeof peer->key, "%s", key && *key ? key : "-");
    snprintf(peer->address, sizeof peer->address, "%s", address ? address : "?");
    rr_allowlist_t *list = s_list_for(self, domain);
    rr_keyinfo_t *info = list && key ? zhashx_lookup(list->keys, key) : NULL;
    if (!info)
        return -1;
    snprintf(peer->name, sizeof peer->name, "%s", info->name);
    peer->role = info->role;
    return 0;
}

/* ---- life cycle ---- */

/* inotify and the reload timer; without inotify the timer alone reloads. */
static int s_start_watching(rr_auth_t *self, char *err, size_t errlen)
{
    self->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (self->inotify_fd < 0)
        rr_warn("auth: inotify: %s; keys directories are re-read every %d ms and on SIGHUP",
                strerror(errno), RR_AUTH_RELOAD_MS);
    else {
        self->inotify_item = (zmq_pollitem_t) { .fd = self->inotify_fd, .events = ZMQ_POLLIN };
        if (zloop_poller(self->loop, &self->inotify_item, s_on_inotify, self) != 0) {
            snprintf(err, errlen, "CURVE: cannot watch the keys directories");
            return -1;
        }
    }
    self->timer = zloop_timer(self->loop, TICK_MS, 0, s_on_tick, self);
    if (self->timer < 0) {
        snprintf(err, errlen, "CURVE: cannot create the keys reload timer");
        return -1;
    }
    struct sigaction action = { .sa_handler = s_on_sighup };
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &action, NULL);
    return 0;
}

rr_auth_t *rr_auth_new(zloop_t *loop, const char *worker_keys_dir, const char *client_keys_dir,
                       char *err, size_t errlen)
{
    if (!s_is_dir(worker_keys_dir) || !s_is_dir(client_keys_dir)) {
        snprintf(err, errlen, "CURVE: worker keys dir '%s' and client keys dir '%s' must be "
                 "existing directories", worker_keys_dir ? worker_keys_dir : "(unset)",
                 client_keys_dir ? client_keys_dir : "(unset)");
        return NULL;
    }
    rr_auth_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "CURVE: out of memory");
        return NULL;
    }
    self->loop = loop;
    self->inotify_fd = -1;
    self->timer = -1;
    self->workers = s_allowlist_new(RR_AUTH_DOMAIN_WORKERS, worker_keys_dir);
    self->clients = s_allowlist_new(RR_AUTH_DOMAIN_CLIENTS, client_keys_dir);
    self->handler = zsock_new(ZMQ_REP);
    if (!self->workers || !self->clients || !self->handler) {
        snprintf(err, errlen, "CURVE: out of memory");
        goto fail;
    }
    if (zsock_bind(self->handler, ZAP_ENDPOINT) != 0) {
        snprintf(err, errlen, "CURVE: bind %s: %s (another ZAP handler in this process?)",
                 ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (zloop_reader(loop, self->handler, s_on_request, self) != 0) {
        snprintf(err, errlen, "CURVE: cannot register the ZAP handler");
        goto fail;
    }
    if (s_start_watching(self, err, errlen) != 0)
        goto fail;
    rr_auth_reload(self);
    return self;

fail:
    rr_auth_destroy(&self);
    return NULL;
}

void rr_auth_destroy(rr_auth_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rr_auth_t *self = *self_p;
    if (self->timer >= 0)
        zloop_timer_end(self->loop, self->timer);
    if (self->inotify_fd >= 0) {
        zloop_poller_end(self->loop, &self->inotify_item);
        close(self->inotify_fd);
    }
    if (self->handler) {
        zloop_reader_end(self->loop, self->handler);
        /* Unbind now: closing alone frees the inproc name later, on libzmq's
         * reaper thread, and a handler bound next in this process (a master
         * restarted in-process) would find it still taken. */
        zsock_unbind(self->handler, ZAP_ENDPOINT);
        zsock_destroy(&self->handler);
    }
    s_allowlist_destroy(&self->clients);
    s_allowlist_destroy(&self->workers);
    free(self);
    *self_p = NULL;
}

/* The file zcert_load reads the secret key from: PATH_secret, else PATH. */
static int s_check_secret_file(const char *cert_path, char *err, size_t errlen)
{
    char secret_path[4096];
    snprintf(secret_path, sizeof secret_path, "%s_secret", cert_path);
    const char *path = zsys_file_exists(secret_path) ? secret_path : cert_path;
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "CURVE: secret certificate %s: %s", path, strerror(errno));
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen, "CURVE: secret certificate %s: mode %03o, must not be "
                 "accessible by group or others (chmod 600)", path, st.st_mode & 0777);
        return -1;
    }
    return 0;
}

int rr_auth_curve_server(zsock_t *sock, const char *cert_path, const char *domain,
                         char *err, size_t errlen)
{
    if (s_check_secret_file(cert_path, err, errlen) != 0)
        return -1;
    zcert_t *cert = zcert_load(cert_path);
    if (!cert) {
        snprintf(err, errlen, "CURVE: %s: not a czmq certificate", cert_path);
        return -1;
    }
    static const char zero_key[] = "0000000000000000000000000000000000000000";
    if (streq(zcert_secret_txt(cert), zero_key)) {
        snprintf(err, errlen, "CURVE: %s: holds no secret key (give the secret certificate)",
                 cert_path);
        zcert_destroy(&cert);
        return -1;
    }
    zcert_apply(cert, sock);
    zsock_set_curve_server(sock, 1);
    zsock_set_zap_domain(sock, domain);
    zcert_destroy(&cert);
    return 0;
}

size_t rr_auth_refused(rr_auth_t *self)
{
    return self->refused;
}
