/* http.h: the master's HTTP side (libmicrohttpd): the JSON API,
 * Prometheus /metrics and the dashboard, driven by the master's zloop.
 *
 * MHD runs with MHD_USE_EPOLL and no thread of its own: rr_http_attach
 * registers MHD's epoll fd as a zloop poller plus a 100 ms timer, so every
 * request is answered on the loop's thread and may use the store (which is
 * not thread-safe) like any other handler. No request blocks the loop: a
 * long-poll is an MHD-suspended connection that rr_http_notify_job (or its
 * deadline) resumes.
 *
 * API (GET or HEAD unless marked; every reply is JSON, errors are {"error":
 * text, "code": status} with status 400 for a bad parameter, 404 for an
 * unknown job or path, 405 for a method the path does not take):
 *   /api/v1/jobs?state=&device_type=&worker=&limit=(1..1000, 100)&offset=
 *       {"jobs": [job...], "limit", "offset"}, newest first
 *   /api/v1/jobs/ID          job (proto/json.h) + "yaml" + "last_seq"
 *   /api/v1/jobs/ID/log?from=SEQ&limit=(1..1000, 500)&wait=(0..60 s, 0)
 *       {"job", "events": [event...], "last_seq", "more", "finished"}: the
 *       events with seq > from in order ("last_seq" = the last one sent, or
 *       from). Log bytes are "data" when valid UTF-8, else "data_base64".
 *       A page stops after ~1 MiB of log data ("more": true: ask again from
 *       last_seq). With wait and nothing new for an open job, the request
 *       waits up to that many seconds for rr_http_notify_job; "finished":
 *       true and "more": false means the stream is complete.
 *   /api/v1/jobs/ID/results  {"job", "results": [result events], "pass", "fail", "skip"}
 *   /api/v1/workers?state=   {"workers": [worker...], "now_ms"}
 *   /api/v1/devices?worker=&state=  {"devices": [device... + "rack"]}
 *   POST /api/v1/jobs        body: the job YAML (Content-Type application/yaml,
 *       text/yaml, text/plain or none) or JSON {"yaml": "..."} (application/json)
 *       -> 201 {"id", "state": "queued", "url"}; the CLI's submit path (jobctl.h):
 *       400 {"error", "code", "line", "col", "key"} for bad YAML, 413 for a body
 *       over 1 MiB (RR_HTTP_BODY_MAX) or over max_job_yaml, 415 another type
 *   POST /api/v1/jobs/ID/cancel, DELETE /api/v1/jobs/ID
 *       -> 202 {"id", "state": "finished" (was queued) | "canceling"}; 404
 *       unknown job, 409 already finished or canceling
 *   /metrics                 Prometheus text format (metrics.h)
 *   / /index.html /app.js /style.css   the dashboard, read from www_dir
 *
 * Bound to loopback (the default), requests naming another Host are refused
 * (403), so a web page cannot read the API through DNS rebinding.
 *
 * With tokens_file (config http_tokens, http_tokens.h) every /api/ and
 * /metrics request needs "Authorization: Bearer TOKEN" of at least the read
 * role, else 401 with "WWW-Authenticate: Bearer"; the dashboard files stay
 * public. Without it the API is open (a warning is logged at start).
 *
 * Writes need tokens: without tokens_file every write is refused (403 "HTTP
 * writes need tokens"); with it a write needs the role the CLI's SUBMIT or
 * CANCEL needs (roles.h: submit or admin), else 401 (no or unknown token) or
 * 403 (a read token). Refusals and a Content-Length over RR_HTTP_BODY_MAX are
 * answered before any body is read.
 */
#ifndef RACKRUN_HTTP_H
#define RACKRUN_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "master.h"
#include "metrics.h"
#include "store.h"

/* Where the dashboard files are installed unless options say otherwise. */
#ifndef RR_HTTP_WWW_DIR
#define RR_HTTP_WWW_DIR "/usr/local/share/rackrun/www"
#endif
#define RR_HTTP_LISTEN_DEFAULT "127.0.0.1:8080"

typedef struct _rr_http_t rr_http_t;
typedef struct _zloop_t zloop_t;

typedef struct {
    const char *listen;         /* "host:port", "[v6]:port"; port 0 = any free; NULL = default */
    const char *www_dir;        /* dashboard files; NULL = RR_HTTP_WWW_DIR */
    const rr_metrics_t *metrics;/* the daemon's counters for /metrics (borrowed, may be NULL) */
    uint32_t max_waiting;       /* long-polls suspended at once, more get 503; 0 = 64 */
    uint32_t max_connections;   /* 0 = 128 */
    const char *tokens_file;    /* bearer tokens, mode 0600 (http_tokens.h); NULL = no auth */
    rr_master_t *master;        /* submit and cancel through it (jobctl.h); NULL = read-only */
} rr_http_options_t;

/* Bind the listener (not yet polled: see rr_http_attach). STORE and the
 * option strings are borrowed and must outlive the server. NULL with ERR. */
rr_http_t *rr_http_new(rr_store_t *store, const rr_http_options_t *options,
                       char *err, size_t errlen);

/* Answer waiting long-polls, stop the server, detach it from its loop, NULL *SELF_P. */
void rr_http_destroy(rr_http_t **self_p);

/* Serve requests from LOOP (a poller on MHD's epoll fd and a timer). 0 or -1. */
int rr_http_attach(rr_http_t *self, zloop_t *loop);

/* The TCP port actually bound (useful with port 0). */
int rr_http_port(rr_http_t *self);

/* New events of JOB were committed (or it ended): answer its waiting long-polls. */
void rr_http_notify_job(rr_http_t *self, uint64_t job);

/* Number of long-poll requests waiting right now. */
size_t rr_http_waiting(rr_http_t *self);

/* Without zloop: MHD's epoll fd to poll for input, then call rr_http_run;
 * call it also at least every rr_http_timeout_ms (-1 = no deadline). */
int rr_http_fd(rr_http_t *self);
void rr_http_run(rr_http_t *self);
long rr_http_timeout_ms(rr_http_t *self);

#endif
