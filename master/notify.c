/* notify.c: job notifications over HTTP (see notify.h): libcurl's multi
 * "socket" interface, with the master's zloop as its event loop.
 *
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: each
 * becomes a zloop poller on its fd) and when to call it anyway
 * (CURLMOPT_TIMERFUNCTION: one one-shot zloop timer); we hand each event
 * back with curl_multi_socket_action and then collect finished transfers.
 * zloop may still fire a timer we cancelled in the same pass, so the timer
 * handler checks its id against the one we currently want. A failed
 * attempt re-adds the same easy handle after its own one-shot backoff timer.
 *
 * The road not taken: curl_multi_perform from a 50 ms zloop timer would be
 * shorter, but polls forever and adds up to 50 ms to every step of a
 * transfer; with the socket interface an idle notifier costs nothing. */
#include "notify.h"

#include <czmq.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"

typedef struct _delivery_t delivery_t;

struct _rr_notify_t {
    zloop_t *loop;
    CURLM *multi;
    int curl_timer;             /* the zloop timer libcurl asked for, -1 none */
    zlist_t *deliveries;        /* delivery_t*, owned */
    rr_notify_options_t options;
    rr_notify_stats_t stats;
};

struct _delivery_t {
    rr_notify_t *owner;
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    char *body;
    char what[64];              /* "job 42" */
    char origin[256];           /* scheme://host:port, what the log may show */
    uint32_t tries;             /* attempts made */
    int retry_timer;            /* -1 = none pending */
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- deliveries ---- */

static void delivery_destroy(delivery_t **self_p)
{
    delivery_t *self = *self_p;
    if (!self)
        return;
    if (self->retry_timer >= 0)
        zloop_timer_end(self->owner->loop, self->retry_timer);
    curl_easy_cleanup(self->easy);
    curl_slist_free_all(self->headers);
    free(self->url);
    free(self->body);
    free(self);
    *self_p = NULL;
}

/* Scheme, host and port of URL into BUF (never the path, query or userinfo). */
static void url_origin(const char *url, char *buf, size_t len)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    snprintf(buf, len, "(bad URL)");
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK
        && curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK
        && curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK
        && curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
        snprintf(buf, len, "%s://%s:%s", scheme, host, port);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

static size_t discard_body(char *data, size_t size, size_t nmemb, void *arg)
{
    (void)data, (void)arg;
    return size * nmemb;
}

static int delivery_setup(delivery_t *d, uint32_t timeout_ms)
{
    CURL *e = d->easy;
    d->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (!d->headers)
        return -1;
    int bad = curl_easy_setopt(e, CURLOPT_URL, d->url)
              | curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https")
              | curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L)
              | curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L)
              | curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->headers)
              | curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body)
              | curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(d->body))
              | curl_easy_setopt(e, CURLOPT_USERAGENT, "rackrun-master/" RACKRUN_VERSION)
              | curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms)
              | curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body)
              | curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->errbuf)
              | curl_easy_setopt(e, CURLOPT_PRIVATE, d);
    return bad ? -1 : 0;
}

static delivery_t *delivery_new(rr_notify_t *owner, const char *url, const char *body,
                                const char *what)
{
    delivery_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->owner = owner;
    d->retry_timer = -1;
    snprintf(d->what, sizeof d->what, "%s", what);
    url_origin(url, d->origin, sizeof d->origin);
    d->url = strdup(url);
    d->body = strdup(body);
    d->easy = curl_easy_init();
    if (!d->url || !d->body || !d->easy || delivery_setup(d, owner->options.timeout_ms) != 0)
        delivery_destroy(&d);
    return d;
}

static int delivery_start(delivery_t *d)
{
    d->errbuf[0] = '\0';
    d->tries++;
    CURLMcode rc = curl_multi_add_handle(d->owner->multi, d->easy);
    if (rc != CURLM_OK) {
        rr_warn("%s: notify %s: %s", d->what, d->origin, curl_multi_strerror(rc));
        return -1;
    }
    return 0;
}

static void delivery_forget(rr_notify_t *self, delivery_t *d)
{
    zlist_remove(self->deliveries, d);
    delivery_destroy(&d);
}

/* ---- libcurl <-> zloop ---- */

static void s_drive(rr_notify_t *self, curl_socket_t fd, int action);

static int s_on_socket(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void)loop;
    int action = (item->revents & ZMQ_POLLIN ? CURL_CSELECT_IN : 0)
                 | (item->revents & ZMQ_POLLOUT ? CURL_CSELECT_OUT : 0)
                 | (item->revents & ZMQ_POLLERR ? CURL_CSELECT_ERR : 0);
    s_drive(arg, item->fd, action);
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION: watch FD for WHAT (or stop watching it). */
static int s_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    rr_notify_t *self = userp;
    zmq_pollitem_t item = { .socket = NULL, .fd = fd };
    (void)easy;
    if (socketp)
        zloop_poller_end(self->loop, &item);
    if (what == CURL_POLL_REMOVE) {
        curl_multi_assign(self->multi, fd, NULL);
        return 0;
    }
    item.events = (short)((what & CURL_POLL_IN ? ZMQ_POLLIN : 0)
                          | (what & CURL_POLL_OUT ? ZMQ_POLLOUT : 0));
    if (zloop_poller(self->loop, &item, s_on_socket, self) != 0)
        return -1;
    zloop_poller_set_tolerant(self->loop, &item);   /* an error is libcurl's to report */
    curl_multi_assign(self->multi, fd, self);       /* non-NULL: "registered" */
    return 0;
}

static int s_on_curl_timer(zloop_t *loop, int timer_id, void *arg)
{
    rr_notify_t *self = arg;
    (void)loop;
    if (timer_id != self->curl_timer)
        return 0;               /* cancelled in this very pass */
    self->curl_timer = -1;
    s_drive(self, CURL_SOCKET_TIMEOUT, 0);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: call back in TIMEOUT_MS (-1: no need). */
static int s_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    rr_notify_t *self = userp;
    (void)multi;
    if (self->curl_timer >= 0)
        zloop_timer_end(self->loop, self->curl_timer);
    self->curl_timer = -1;
    if (timeout_ms >= 0) {
        self->curl_timer = zloop_timer(self->loop, timeout_ms > 0 ? (size_t)timeout_ms : 1, 1,
                                       s_on_curl_timer, self);
        if (self->curl_timer < 0)
            return -1;
    }
    return 0;
}

/* ---- outcomes ---- */

static int s_on_retry(zloop_t *loop, int timer_id, void *arg)
{
    delivery_t *d = arg;
    (void)loop;
    if (timer_id != d->retry_timer)
        return 0;
    d->retry_timer = -1;
    if (delivery_start(d) != 0)
        delivery_forget(d->owner, d);
    return 0;
}

static void s_retry_or_give_up(rr_notify_t *self, delivery_t *d, const char *why)
{
    if (d->tries >= self->options.max_tries) {
        rr_warn("%s: notify %s: %s; gave up after %u tries", d->what, d->origin, why, d->tries);
        self->stats.failed++;
        delivery_forget(self, d);
        return;
    }
    uint64_t delay = (uint64_t)self->options.backoff_ms << (d->tries - 1 < 20 ? d->tries - 1 : 20);
    if (delay > self->options.backoff_max_ms)
        delay = self->options.backoff_max_ms;
    rr_info("%s: notify %s: %s; retry %u/%u in %" PRIu64 " ms", d->what, d->origin, why,
            d->tries + 1, self->options.max_tries, delay);
    self->stats.retried++;
    d->retry_timer = zloop_timer(self->loop, (size_t)delay, 1, s_on_retry, d);
    if (d->retry_timer < 0) {
        rr_warn("%s: notify %s: no timer for a retry; dropped", d->what, d->origin);
        self->stats.failed++;
        delivery_forget(self, d);
    }
}

static void s_done(rr_notify_t *self, CURL *easy, CURLcode result)
{
    delivery_t *d = NULL;
    long status = 0;
    char why[CURL_ERROR_SIZE + 64];
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&d);
    curl_multi_remove_handle(self->multi, easy);
    if (result == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (result == CURLE_OK && status >= 200 && status < 300) {
        rr_info("%s: notified %s (HTTP %ld, try %u)", d->what, d->origin, status, d->tries);
        self->stats.delivered++;
        delivery_forget(self, d);
        return;
    }
    if (result == CURLE_OK)
        snprintf(why, sizeof why, "HTTP %ld", status);
    else
        snprintf(why, sizeof why, "%s", d->errbuf[0] ? d->errbuf : curl_easy_strerror(result));
    s_retry_or_give_up(self, d, why);
}

static void s_drive(rr_notify_t *self, curl_socket_t fd, int action)
{
    int running = 0, left = 0;
    curl_multi_socket_action(self->multi, fd, action, &running);
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(self->multi, &left)))
        if (msg->msg == CURLMSG_DONE)
            s_done(self, msg->easy_handle, msg->data.result);
}

/* ---- class ---- */

rr_notify_t *rr_notify_new(zloop_t *loop, const rr_notify_options_t *options)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    rr_notify_t *self = calloc(1, sizeof *self);
    if (!self)
        goto fail_global;
    self->loop = loop;
    self->curl_timer = -1;
    if (options)
        self->options = *options;
    rr_notify_options_t *o = &self->options;
    o->max_queue = o->max_queue ? o->max_queue : 256;
    o->max_tries = o->max_tries ? o->max_tries : 6;
    o->backoff_ms = o->backoff_ms ? o->backoff_ms : 1000;
    o->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 60000;
    o->timeout_ms = o->timeout_ms ? o->timeout_ms : 10000;
    self->deliveries = zlist_new();
    self->multi = curl_multi_init();
    if (!self->deliveries || !self->multi
        || curl_multi_setopt(self->multi, CURLMOPT_SOCKETFUNCTION, s_curl_socket)
        || curl_multi_setopt(self->multi, CURLMOPT_SOCKETDATA, self)
        || curl_multi_setopt(self->multi, CURLMOPT_TIMERFUNCTION, s_curl_timer)
        || curl_multi_setopt(self->multi, CURLMOPT_TIMERDATA, self))
        goto fail;
    return self;
fail:
    zlist_destroy(&self->deliveries);
    curl_multi_cleanup(self->multi);
    free(self);
fail_global:
    curl_global_cleanup();
    return NULL;
}

void rr_notify_destroy(rr_notify_t **self_p)
{
    rr_notify_t *self = *self_p;
    if (!self)
        return;
    size_t pending = zlist_size(self->deliveries);
    if (pending)
        rr_warn("notify: %zu notification(s) not delivered at shutdown", pending);
    delivery_t *d;
    while ((d = zlist_pop(self->deliveries))) {
        curl_multi_remove_handle(self->multi, d->easy);  /* calls s_curl_socket: pollers end */
        delivery_destroy(&d);
    }
    if (self->curl_timer >= 0)
        zloop_timer_end(self->loop, self->curl_timer);
    curl_multi_cleanup(self->multi);
    zlist_destroy(&self->deliveries);
    free(self);
    curl_global_cleanup();
    *self_p = NULL;
}

int rr_notify_post(rr_notify_t *self, const char *url, const char *body, const char *what)
{
    char origin[256];
    if (zlist_size(self->deliveries) >= self->options.max_queue) {
        url_origin(url, origin, sizeof origin);
        rr_warn("%s: notify %s: %zu notifications pending (the limit); dropped", what, origin,
                zlist_size(self->deliveries));
        self->stats.dropped++;
        return -1;
    }
    delivery_t *d = delivery_new(self, url, body, what);
    if (!d || zlist_append(self->deliveries, d) != 0) {
        rr_warn("%s: notify: out of memory; dropped", what);
        delivery_destroy(&d);
        self->stats.dropped++;
        return -1;
    }
    if (delivery_start(d) != 0) {
        delivery_forget(self, d);
        self->stats.failed++;
        return -1;
    }
    return 0;
}

size_t rr_notify_pending(rr_notify_t *self)
{
    return zlist_size(self->deliveries);
}

void rr_notify_stats(rr_notify_t *self, rr_notify_stats_t *stats)
{
    *stats = self->stats;
}

/* ---- jobs ---- */

static bool wants(const proto_jobdef_t *def, const char *outcome)
{
    if (!def->notify_on_count)
        return true;            /* default: on: [finished] */
    for (size_t i = 0; i < def->notify_on_count; i++)
        if (strcmp(def->notify_on[i], "finished") == 0 || strcmp(def->notify_on[i], outcome) == 0)
            return true;
    return false;
}

/* {"event", "job", "results"} for job INFO; NULL on ENOMEM. */
static char *job_body(rr_store_t *store, const proto_jobinfo_t *info)
{
    proto_job_event_t *results = NULL;
    size_t count = 0, pass = 0, fail = 0, skip = 0;
    if (rr_store_events_read_kind(store, info->id, "result", 0, 0, &results, &count) == RR_STORE_OK) {
        for (size_t i = 0; i < count; i++) {
            const char *v = results[i].value ? results[i].value : "";
            pass += strcmp(v, "pass") == 0;
            fail += strcmp(v, "fail") == 0;
            skip += strcmp(v, "skip") == 0;
        }
        rr_store_events_free(&results, count);
    }
    json_t *body = json_pack("{s:s, s:o, s:{s:I, s:I, s:I}}", "event", "finished",
                             "job", proto_json_jobinfo(info), "results", "pass", (json_int_t)pass,
                             "fail", (json_int_t)fail, "skip", (json_int_t)skip);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

int rr_notify_job(rr_notify_t *self, rr_store_t *store, uint64_t job)
{
    proto_jobdef_t *def = NULL;
    proto_jobinfo_t info = { 0 };
    char what[64];
    int rc = rr_store_job_notify_def(store, job, &def);
    if (rc != RR_STORE_OK || !def || !def->notify_url)
        goto out;
    rc = rr_store_job_get(store, job, &info);
    if (rc != RR_STORE_OK || !info.outcome || !wants(def, info.outcome))
        goto out;
    snprintf(what, sizeof what, "job %" PRIu64, job);
    char *body = job_body(store, &info);
    if (body)
        rr_notify_post(self, def->notify_url, body, what);
    else
        rr_warn("%s: notify: out of memory; dropped", what);
    free(body);
out:
    if (rc != RR_STORE_OK)
        rr_warn("job %" PRIu64 ": notify: %s", job, rr_store_error(store));
    rr_store_jobinfo_clear(&info);
    proto_jobdef_destroy(&def);
    return rc == RR_STORE_OK ? 0 : -1;
}
