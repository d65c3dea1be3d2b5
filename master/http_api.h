/* http_api.h: private to master/http*.c: one HTTP request as http.c hands
 * it to the JSON endpoints of http_api.c, and the replies they can give. */
#ifndef RACKRUN_HTTP_API_H
#define RACKRUN_HTTP_API_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "http.h"

typedef struct rr_http_request rr_http_request_t;

struct rr_http_request {
    rr_http_t *http;
    struct MHD_Connection *conn;
    rr_http_request_t *next;    /* on the http's waiter list while suspended */
    uint64_t job;               /* long-poll: the job whose events it waits for */
    uint64_t deadline_mono;     /* long-poll: give up then (0 = not waited yet) */
    bool suspended;
    bool answered;
};

/* Answer a request for URL under /api/ (GET or HEAD). */
enum MHD_Result rr_http_api(rr_http_request_t *req, const char *url);

/* Queue BODY (reference stolen; NULL = out of memory -> 500) as JSON with STATUS. */
enum MHD_Result rr_http_reply_json(rr_http_request_t *req, unsigned status, json_t *body);

/* Queue {"error": text, "code": STATUS}. */
enum MHD_Result rr_http_reply_error(rr_http_request_t *req, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The store requests read from. */
rr_store_t *rr_http_store(rr_http_request_t *req);

/* Park REQ until rr_http_notify_job(req->job) or its deadline; false when
 * too many wait already or the server is stopping (then answer now). */
bool rr_http_suspend(rr_http_request_t *req);

/* True while the server shuts down (no new waits). */
bool rr_http_stopping(rr_http_request_t *req);

#endif
