/* http.c: the master's HTTP server (libmicrohttpd on the master's zloop):
 * connection handling, long-poll suspension, the dashboard's static files
 * and /metrics. The JSON endpoints are in http_api.c; see http.h.
 *
 * MHD is started with MHD_USE_EPOLL and without MHD_USE_INTERNAL_POLLING_THREAD,
 * so it never runs a thread: MHD_run is called from the zloop when MHD's
 * epoll fd is readable and from a 100 ms timer (MHD's own timeouts and the
 * long-poll deadlines). The timer is a fixed tick rather than one re-armed to
 * MHD_get_timeout because zloop timers cannot be re-armed cheaply, and ten
 * wakeups a second cost nothing next to the worker heartbeats.
 */
#include "http.h"
#include "http_api.h"
#include "http_tokens.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define TICK_MS            100
#define RUN_ROUNDS         8            /* MHD_run calls while MHD says "more to do now" */
#define STATIC_MAX_BYTES   (1024 * 1024)
#define DEFAULT_WAITING    64
#define DEFAULT_CONNECTIONS 128
#define IDLE_TIMEOUT_S     120

struct _rr_http_t {
    rr_store_t *store;                  /* borrowed */
    const rr_metrics_t *metrics;        /* borrowed, may be NULL */
    rr_master_t *master;                /* borrowed; NULL = no writes */
    char *www_dir;
    rr_http_tokens_t *tokens;           /* NULL = no authentication, no writes */
    struct MHD_Daemon *daemon;
    int port;
    bool loopback;                      /* bound to 127.0.0.0/8 or ::1: check Host */
    bool stopping;
    zloop_t *loop;                      /* attached loop, or NULL */
    int epoll_fd;
    int timer_id;
    rr_http_request_t *waiters;         /* suspended long-polls (singly linked) */
    size_t waiting;
    size_t max_waiting;
    uint64_t requests[6];               /* by status class: [2] = 2xx ... [5] = 5xx */
};

/* ---- replies ---- */

static enum MHD_Result queue(struct MHD_Connection *conn, rr_http_t *self, unsigned status,
                             const char *type, void *body, size_t len, bool is_api)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (!is_api)
        MHD_add_response_header(response, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    enum MHD_Result rc = MHD_queue_response(conn, status, response);
    MHD_destroy_response(response);
    if (status / 100 < 6)
        self->requests[status / 100]++;
    return rc;
}

enum MHD_Result rr_http_reply_json(rr_http_request_t *req, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        text = strdup("{\"error\":\"out of memory\",\"code\":500}");
        if (!text)
            return MHD_NO;
    }
    return queue(req->conn, req->http, status, "application/json; charset=utf-8", text,
                 strlen(text), true);
}

enum MHD_Result rr_http_reply_error(rr_http_request_t *req, unsigned status, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* json_string refuses invalid UTF-8 (a raw byte in a bad URL): keep it printable. */
    for (char *c = text; *c; c++)
        if ((unsigned char) *c < 0x20 || (unsigned char) *c >= 0x7f)
            *c = '?';
    return rr_http_reply_json(req, status, json_pack("{s:s, s:i}", "error", text, "code",
                                                     (int) status));
}

rr_store_t *rr_http_store(rr_http_request_t *req)
{
    return req->http->store;
}

rr_master_t *rr_http_master(rr_http_request_t *req)
{
    return req->http->master;
}

/* ---- long-poll ---- */

bool rr_http_suspend(rr_http_request_t *req)
{
    rr_http_t *self = req->http;
    if (self->stopping || self->waiting >= self->max_waiting)
        return false;
    req->next = self->waiters;
    self->waiters = req;
    self->waiting++;
    req->suspended = true;
    MHD_suspend_connection(req->conn);
    return true;
}

/* Take REQ off the waiter list and let MHD call the handler again. */
static void resume(rr_http_t *self, rr_http_request_t **link)
{
    rr_http_request_t *req = *link;
    *link = req->next;
    req->next = NULL;
    req->suspended = false;
    self->waiting--;
    MHD_resume_connection(req->conn);
}

void rr_http_notify_job(rr_http_t *self, uint64_t job)
{
    rr_http_request_t **link = &self->waiters;
    while (*link)
        if ((*link)->job == job)
            resume(self, link);
        else
            link = &(*link)->next;
}

size_t rr_http_waiting(rr_http_t *self)
{
    return self->waiting;
}

/* Resume waiters whose deadline passed (all of them when stopping). */
static void expire_waiters(rr_http_t *self)
{
    uint64_t now = rr_mono_ms();
    rr_http_request_t **link = &self->waiters;
    while (*link)
        if (self->stopping || (*link)->deadline_mono <= now)
            resume(self, link);
        else
            link = &(*link)->next;
}

bool rr_http_stopping(rr_http_request_t *req)
{
    return req->http->stopping;
}

/* ---- static files ---- */

static const struct {
    const char *url;
    const char *file;
    const char *type;
} static_files[] = {
    { "/", "index.html", "text/html; charset=utf-8" },
    { "/index.html", "index.html", "text/html; charset=utf-8" },
    { "/app.js", "app.js", "text/javascript; charset=utf-8" },
    { "/style.css", "style.css", "text/css; charset=utf-8" },
};

/* Read the whole of DIR/NAME (only the fixed names above, never a URL). */
static char *read_static(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    if ((size_t) snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_MAX_BYTES)
        goto out;
    buf = malloc((size_t) st.st_size + 1);
    if (!buf)
        goto out;
    ssize_t got = read(fd, buf, (size_t) st.st_size);
    if (got != st.st_size) {
        free(buf);
        buf = NULL;
        goto out;
    }
    *len = (size_t) got;
out:
    close(fd);
    return buf;
}

static enum MHD_Result serve_static(rr_http_request_t *req, const char *url)
{
    rr_http_t *self = req->http;
    for (size_t i = 0; i < sizeof static_files / sizeof static_files[0]; i++) {
        if (strcmp(url, static_files[i].url) != 0)
            continue;
        size_t len = 0;
        char *body = read_static(self->www_dir, static_files[i].file, &len);
        if (!body)
            return rr_http_reply_error(req, MHD_HTTP_NOT_FOUND,
                                       "dashboard file %s not found in %s", static_files[i].file,
                                       self->www_dir);
        return queue(req->conn, self, MHD_HTTP_OK, static_files[i].type, body, len, false);
    }
    return rr_http_reply_error(req, MHD_HTTP_NOT_FOUND, "no such page: %.200s", url);
}

/* ---- /metrics ---- */

static void write_own_metrics(rr_http_t *self, FILE *out)
{
    rr_metrics_header(out, "rackrun_http_requests_total", "counter",
                      "HTTP requests answered, by status class.");
    for (int c = 2; c <= 5; c++)
        fprintf(out, "rackrun_http_requests_total{code=\"%dxx\"} %" PRIu64 "\n", c,
                self->requests[c]);
    rr_metrics_header(out, "rackrun_http_long_polls_waiting", "gauge",
                      "Long-poll requests waiting for new job events.");
    fprintf(out, "rackrun_http_long_polls_waiting %zu\n", self->waiting);
}

static enum MHD_Result serve_metrics(rr_http_request_t *req)
{
    rr_http_t *self = req->http;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return rr_http_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics: out of memory");
    int rc = rr_metrics_write(self->store, self->metrics, rr_wall_ms(), out);
    if (rc == 0)
        write_own_metrics(self, out);
    fclose(out);
    if (rc != 0) {
        free(text);
        return rr_http_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics: %s",
                                   rr_store_error(self->store));
    }
    return queue(req->conn, self, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
                 len, true);
}

/* ---- request dispatch ---- */

/* Bound to loopback: only a loopback Host may ask (DNS rebinding guard). */
static bool host_allowed(rr_http_t *self, struct MHD_Connection *conn)
{
    if (!self->loopback)
        return true;
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!host)
        return true;                    /* HTTP/1.0 without Host: not a browser */
    static const char *const names[] = { "localhost", "127.0.0.1", "[::1]" };
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(names[i]);
        if (strncmp(host, names[i], n) == 0 && (host[n] == '\0' || host[n] == ':'))
            return true;
    }
    return false;
}

/* With tokens: /api/ and /metrics need a bearer token of at least the read role. */
static bool authorized(rr_http_t *self, struct MHD_Connection *conn, const char *url)
{
    if (!self->tokens || (strncmp(url, "/api/", 5) != 0 && strcmp(url, "/metrics") != 0))
        return true;
    const char *value = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION);
    return rr_role_allows(rr_http_tokens_role(self->tokens, value), RR_ROLE_READ);
}

static bool is_read(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

static enum MHD_Result dispatch(rr_http_request_t *req, const char *url)
{
    if (!host_allowed(req->http, req->conn))
        return rr_http_reply_error(req, MHD_HTTP_FORBIDDEN, "host not allowed");
    if (!authorized(req->http, req->conn, url))
        return rr_http_reply_error(req, MHD_HTTP_UNAUTHORIZED,
                                   "missing or invalid bearer token "
                                   "(Authorization: Bearer TOKEN, see http_tokens)");
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(req);
    if (strncmp(url, "/api/", 5) == 0)
        return rr_http_api(req, url);
    return serve_static(req, url);
}

/* The declared body length is over RR_HTTP_BODY_MAX (chunked bodies are
 * counted as they arrive instead). */
static bool declared_too_big(struct MHD_Connection *conn)
{
    const char *value = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_LENGTH);
    return value && strtoull(value, NULL, 10) > RR_HTTP_BODY_MAX;
}

/* Before any body is read: whether METHOD on URL may go on. When not, the
 * refusal is queued in *RC. */
static bool write_allowed(rr_http_request_t *req, const char *url, const char *method,
                          enum MHD_Result *rc)
{
    rr_http_t *self = req->http;
    bool known = false;
    rr_role_t needed = rr_http_api_write_role(url, method, &known);
    if (!host_allowed(self, req->conn))
        *rc = rr_http_reply_error(req, MHD_HTTP_FORBIDDEN, "host not allowed");
    else if (needed == RR_ROLE_NONE)
        *rc = rr_http_reply_error(req, MHD_HTTP_METHOD_NOT_ALLOWED, "method %.16s not allowed "
                                  "on %.200s%s", method, url, known ? "" : " (writes: POST "
                                  "/api/v1/jobs, POST /api/v1/jobs/ID/cancel, DELETE "
                                  "/api/v1/jobs/ID)");
    else if (!self->tokens)
        *rc = rr_http_reply_error(req, MHD_HTTP_FORBIDDEN, "HTTP writes need tokens: set "
                                  "http_tokens in the master configuration");
    else {
        const char *value = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_AUTHORIZATION);
        rr_role_t held = rr_http_tokens_role(self->tokens, value);
        if (held == RR_ROLE_NONE)
            *rc = rr_http_reply_error(req, MHD_HTTP_UNAUTHORIZED, "missing or invalid bearer "
                                      "token (Authorization: Bearer TOKEN, see http_tokens)");
        else if (!rr_role_allows(held, needed))
            *rc = rr_http_reply_error(req, MHD_HTTP_FORBIDDEN, "%.16s %.200s needs a token "
                                      "with role %s%s; this token has role %s", method, url,
                                      rr_role_name(needed), needed == RR_ROLE_ADMIN ? ""
                                      : " or admin", rr_role_name(held));
        else if (!self->master)
            *rc = rr_http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "this HTTP server "
                                      "has no master to submit to");
        else if (declared_too_big(req->conn))
            *rc = rr_http_reply_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger "
                                      "than %u bytes", RR_HTTP_BODY_MAX);
        else
            return true;
    }
    return false;
}

/* Keep DATA (LEN bytes) of the body, up to RR_HTTP_BODY_MAX in all. */
static void take_body(rr_http_request_t *req, const char *data, size_t len)
{
    if (req->body_too_big)
        return;
    char *grown = NULL;
    if (req->body_len + len <= RR_HTTP_BODY_MAX)
        grown = realloc(req->body, req->body_len + len + 1);
    if (!grown) {
        req->body_too_big = true;       /* (or out of memory: refused alike) */
        free(req->body);
        req->body = NULL;
        req->body_len = 0;
        return;
    }
    memcpy(grown + req->body_len, data, len);
    req->body = grown;
    req->body_len += len;
    req->body[req->body_len] = '\0';
}

/* A write: checked on the first call (headers only), body gathered over the
 * next ones, answered on the last (MHD's convention: *SIZE 0 after a body). */
static enum MHD_Result on_write(rr_http_request_t *req, const char *url, const char *method,
                                const char *data, size_t *size, bool first)
{
    enum MHD_Result rc = MHD_YES;
    if (req->answered) {
        *size = 0;                      /* refused early: what still arrives is dropped */
        return MHD_YES;
    }
    if (first) {
        if (!write_allowed(req, url, method, &rc))
            req->answered = true;
        return rc;
    }
    if (*size) {
        take_body(req, data, *size);
        *size = 0;
        return MHD_YES;
    }
    req->answered = true;
    if (req->body_too_big)
        return rr_http_reply_error(req, MHD_HTTP_CONTENT_TOO_LARGE,
                                   "request body larger than %u bytes", RR_HTTP_BODY_MAX);
    return rr_http_api_write(req, url, method);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    rr_http_t *self = cls;
    rr_http_request_t *req = *req_cls;
    bool first = !req;
    if (first) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        req->http = self;
        req->conn = conn;
        *req_cls = req;
    }
    if (!is_read(method))
        return on_write(req, url, method, upload_data, upload_data_size, first);
    /* GET waits for the next call (MHD's convention: the headers are all in). */
    *upload_data_size = 0;              /* a GET's body is never read */
    if (first || req->answered)
        return MHD_YES;
    enum MHD_Result rc = dispatch(req, url);
    if (!req->suspended)
        req->answered = true;
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    rr_http_t *self = cls;
    rr_http_request_t *req = *req_cls;
    if (!req)
        return;
    for (rr_http_request_t **link = &self->waiters; *link; link = &(*link)->next)
        if (*link == req) {
            *link = req->next;
            self->waiting--;
            break;
        }
    free(req->body);
    free(req);
    *req_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char text[256];
    vsnprintf(text, sizeof text, fmt, ap);
    text[strcspn(text, "\n")] = '\0';
    rr_warn("http: %s", text);
}

/* ---- running ---- */

void rr_http_run(rr_http_t *self)
{
    expire_waiters(self);
    for (int round = 0; round < RUN_ROUNDS; round++) {
        MHD_run(self->daemon);
        MHD_UNSIGNED_LONG_LONG timeout;
        if (MHD_get_timeout(self->daemon, &timeout) != MHD_YES || timeout > 0)
            break;
    }
}

int rr_http_fd(rr_http_t *self)
{
    return self->epoll_fd;
}

long rr_http_timeout_ms(rr_http_t *self)
{
    long best = -1;
    MHD_UNSIGNED_LONG_LONG timeout;
    if (MHD_get_timeout(self->daemon, &timeout) == MHD_YES)
        best = timeout > 3600000 ? 3600000 : (long) timeout;
    uint64_t now = rr_mono_ms();
    for (rr_http_request_t *req = self->waiters; req; req = req->next) {
        long left = req->deadline_mono > now ? (long) (req->deadline_mono - now) : 0;
        best = best < 0 || left < best ? left : best;
    }
    return best;
}

static int on_ready(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    rr_http_run(arg);
    return 0;
}

static int on_tick(zloop_t *loop, int timer_id, void *arg)
{
    rr_http_run(arg);
    return 0;
}

int rr_http_attach(rr_http_t *self, zloop_t *loop)
{
    if (self->loop)
        return -1;
    zmq_pollitem_t item = { NULL, self->epoll_fd, ZMQ_POLLIN, 0 };
    if (zloop_poller(loop, &item, on_ready, self) != 0)
        return -1;
    zloop_poller_set_tolerant(loop, &item);
    self->timer_id = zloop_timer(loop, TICK_MS, 0, on_tick, self);
    if (self->timer_id < 0) {
        zloop_poller_end(loop, &item);
        return -1;
    }
    self->loop = loop;
    return 0;
}

int rr_http_port(rr_http_t *self)
{
    return self->port;
}

/* ---- construction ---- */

/* Split "host:port" / "[v6]:port" and resolve it to *RES (freeaddrinfo). */
static int resolve_listen(const char *listen, struct addrinfo **res, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    size_t host_len = colon ? (size_t) (colon - listen) : 0;
    if (!colon || host_len == 0 || host_len >= sizeof host || !colon[1]) {
        snprintf(err, errlen, "http_listen '%s': not host:port (e.g. 127.0.0.1:8080)", listen);
        return -1;
    }
    memcpy(host, listen, host_len);
    host[host_len] = '\0';
    if (host[0] == '[' && host[host_len - 1] == ']') {
        memmove(host, host + 1, host_len - 2);
        host[host_len - 2] = '\0';
    }
    struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                              .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    int rc = getaddrinfo(host, colon + 1, &hints, res);
    if (rc != 0) {
        snprintf(err, errlen, "http_listen '%s': %s", listen, gai_strerror(rc));
        return -1;
    }
    return 0;
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *) sa)->sin_addr.s_addr) >> 24) == 127;
    return sa->sa_family == AF_INET6
           && IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *) sa)->sin6_addr);
}

static int start_daemon(rr_http_t *self, const rr_http_options_t *options, const char *listen,
                        char *err, size_t errlen)
{
    struct addrinfo *res = NULL;
    if (resolve_listen(listen, &res, err, errlen) != 0)
        return -1;
    self->loopback = is_loopback(res->ai_addr);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (res->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned connections = options->max_connections ? options->max_connections
                                                    : DEFAULT_CONNECTIONS;
    self->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, self,
                                    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, self,
                                    MHD_OPTION_SOCK_ADDR, res->ai_addr,
                                    MHD_OPTION_CONNECTION_LIMIT, connections,
                                    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) IDLE_TIMEOUT_S,
                                    MHD_OPTION_NOTIFY_COMPLETED, on_completed, self,
                                    MHD_OPTION_END);
    freeaddrinfo(res);
    if (!self->daemon) {
        snprintf(err, errlen, "http_listen '%s': cannot listen (address in use?)", listen);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    self->epoll_fd = info ? info->epoll_fd : -1;
    info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? (int) info->port : 0;
    if (self->epoll_fd < 0) {
        snprintf(err, errlen, "http_listen '%s': libmicrohttpd has no epoll fd", listen);
        return -1;
    }
    return 0;
}

rr_http_t *rr_http_new(rr_store_t *store, const rr_http_options_t *options,
                       char *err, size_t errlen)
{
    static const rr_http_options_t defaults;
    if (!options)
        options = &defaults;
    const char *listen = options->listen ? options->listen : RR_HTTP_LISTEN_DEFAULT;
    rr_http_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "http: out of memory");
        return NULL;
    }
    self->store = store;
    self->master = options->master;
    self->metrics = options->metrics;
    self->max_waiting = options->max_waiting ? options->max_waiting : DEFAULT_WAITING;
    self->timer_id = -1;
    self->www_dir = strdup(options->www_dir ? options->www_dir : RR_HTTP_WWW_DIR);
    if (!self->www_dir) {
        snprintf(err, errlen, "http: out of memory");
        goto fail;
    }
    if (options->tokens_file
        && !(self->tokens = rr_http_tokens_load(options->tokens_file, err, errlen)))
        goto fail;
    if (start_daemon(self, options, listen, err, errlen) != 0)
        goto fail;
    if (!self->tokens)
        rr_warn("http: no http_tokens configured: the HTTP API and /metrics are "
                "unauthenticated (keep http_listen on loopback)");
    rr_info("http: listening on %s (port %d), dashboard from %s", listen, self->port,
            self->www_dir);
    return self;
fail:
    rr_http_destroy(&self);
    return NULL;
}

static void detach(rr_http_t *self)
{
    if (!self->loop)
        return;
    zmq_pollitem_t item = { NULL, self->epoll_fd, ZMQ_POLLIN, 0 };
    zloop_poller_end(self->loop, &item);
    zloop_timer_end(self->loop, self->timer_id);
    self->loop = NULL;
}

void rr_http_destroy(rr_http_t **self_p)
{
    rr_http_t *self = *self_p;
    if (!self)
        return;
    detach(self);
    if (self->daemon) {
        self->stopping = true;          /* waiting long-polls are answered 503 */
        expire_waiters(self);
        MHD_run(self->daemon);
        MHD_stop_daemon(self->daemon);
    }
    rr_http_tokens_destroy(&self->tokens);
    free(self->www_dir);
    free(self);
    *self_p = NULL;
}
