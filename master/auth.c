/* auth.c: the master's ZAP handler, answering libzmq on the master's zloop.
 *
 * czmq's zauth actor would do this on its own thread, but it has one CURVE
 * allow-list for every socket; rackrun needs one per ZAP domain (workers and
 * clients are authorised separately), so the master answers ZAP itself.
 * The allow-lists are not zcertstore either: zcertstore_insert asserts (the
 * process aborts) when two files in the directory hold the same key, a plain
 * operator mistake ("cp w1 w1.bak"). So each list is a table of Z85 keys read
 * with zcert_load from the directory, re-read when the directory changes
 * (the same modified/count/size test zcertstore uses), duplicates ignored.
 */
#include <czmq.h>
#include <sys/stat.h>

#include "auth.h"
#include "common.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"

/* One allow-list directory. */
typedef struct {
    char *dir;
    zhashx_t *keys;             /* Z85 public key -> file name it came from */
    time_t modified;            /* of the directory as last read */
    size_t count;
    off_t cursize;
} rr_allowlist_t;

struct _rr_auth_t {
    zloop_t *loop;
    zsock_t *handler;           /* REP bound to ZAP_ENDPOINT */
    rr_allowlist_t *workers;
    rr_allowlist_t *clients;
    size_t refused;
};

static void s_allowlist_destroy(rr_allowlist_t **self_p)
{
    if (!*self_p)
        return;
    zhashx_destroy(&(*self_p)->keys);
    free((*self_p)->dir);
    free(*self_p);
    *self_p = NULL;
}

static void s_free_name(void **item)
{
    free(*item);
    *item = NULL;
}

static rr_allowlist_t *s_allowlist_new(const char *dir)
{
    rr_allowlist_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->dir = strdup(dir);
    self->keys = zhashx_new();
    if (!self->dir || !self->keys) {
        s_allowlist_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->keys, s_free_name);
    self->modified = -1;                /* never read: the first lookup reads it */
    return self;
}

static bool s_ends_with(const char *text, const char *suffix)
{
    size_t n = strlen(text), m = strlen(suffix);
    return n >= m && streq(text + n - m, suffix);
}

/* Add the public key of the certificate file FILE (not a cert: ignored). */
static void s_allowlist_add(rr_allowlist_t *self, zfile_t *file)
{
    const char *path = zfile_filename(file, NULL);
    if (!zfile_is_regular(file) || s_ends_with(path, "_secret"))
        return;
    zcert_t *cert = zcert_load(path);
    if (!cert)
        return;
    char *name = strdup(path);
    if (name && zhashx_insert(self->keys, zcert_public_txt(cert), name) != 0) {
        rr_debug("auth: %s: same key as %s, ignored", path,
                 (char *) zhashx_lookup(self->keys, zcert_public_txt(cert)));
        free(name);
    }
    zcert_destroy(&cert);
}

/* Re-read the directory when it changed since the last look. */
static void s_allowlist_refresh(rr_allowlist_t *self)
{
    zdir_t *dir = zdir_new(self->dir, NULL);
    if (!dir) {
        zhashx_purge(self->keys);       /* directory gone: nobody is allowed */
        self->modified = -1;
        return;
    }
    if (zdir_modified(dir) != self->modified || zdir_count(dir) != self->count
        || zdir_cursize(dir) != self->cursize) {
        zhashx_purge(self->keys);
        zfile_t **files = zdir_flatten(dir);
        for (size_t i = 0; files && files[i]; i++)
            s_allowlist_add(self, files[i]);
        zdir_flatten_free(&files);
        self->modified = zdir_modified(dir);
        self->count = zdir_count(dir);
        self->cursize = zdir_cursize(dir);
    }
    zdir_destroy(&dir);
}

/* The file KEY was allowed by, or NULL. */
static const char *s_allowlist_lookup(rr_allowlist_t *self, const char *key)
{
    s_allowlist_refresh(self);
    return zhashx_lookup(self->keys, key);
}

static bool s_is_dir(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Which allow-list DOMAIN names, or NULL. */
static rr_allowlist_t *s_list_for(rr_auth_t *self, const char *domain)
{
    if (streq(domain, RR_AUTH_DOMAIN_WORKERS))
        return self->workers;
    if (streq(domain, RR_AUTH_DOMAIN_CLIENTS))
        return self->clients;
    return NULL;
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
    rr_allowlist_t *list = s_list_for(self, domain);
    if (!list) {
        *why = "unknown ZAP domain";
        return false;
    }
    if (!s_allowlist_lookup(list, key)) {
        *why = "key not in the allow-list";
        return false;
    }
    return true;
}

/* Answer a request; takes *REQUEST_ID. */
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
    if (!self)
        goto nomem;
    self->loop = loop;
    self->workers = s_allowlist_new(worker_keys_dir);
    self->clients = s_allowlist_new(client_keys_dir);
    if (!self->workers || !self->clients)
        goto nomem_self;
    self->handler = zsock_new(ZMQ_REP);
    if (!self->handler)
        goto nomem_self;
    if (zsock_bind(self->handler, ZAP_ENDPOINT) != 0) {
        snprintf(err, errlen, "CURVE: bind %s: %s (another ZAP handler in this process?)",
                 ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (zloop_reader(loop, self->handler, s_on_request, self) != 0) {
        snprintf(err, errlen, "CURVE: cannot register the ZAP handler");
        goto fail;
    }
    return self;

nomem_self:
    snprintf(err, errlen, "CURVE: out of memory");
fail:
    rr_auth_destroy(&self);
    return NULL;
nomem:
    snprintf(err, errlen, "CURVE: out of memory");
    return NULL;
}

void rr_auth_destroy(rr_auth_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rr_auth_t *self = *self_p;
    if (self->handler) {
        zloop_reader_end(self->loop, self->handler);
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
