/* http_api.h: private to master/http*.c: one HTTP request as http.c hands
 * it to the JSON endpoints of http_api.c, and the replies they can give. */
#ifndef RACKRUN_HTTP_API_H
#define RACKRUN_HTTP_API_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "roles.h"

typedef struct rr_http_request rr_http_request_t;

struct rr_http_request {
    rr_http_t *http;
    struct MHD_Connection *conn;
    rr_http_request_t *next;    /* on the http's waiter list while suspended */
    uint64_t job;               /* long-poll: the job whose events it waits for */
    uint64_t deadline_mono;     /* long-poll: give up then (0 = not waited yet) */
    bool suspended;
    bool answered;
    char *body;                 /* a write's body so far (NUL-terminated), or NULL */
    size_t body_len;
    bool body_too_big;          /* more than RR_HTTP_BODY_MAX arrived: answer 413 */
};

#define RR_HTTP_BODY_MAX (1024u * 1024u)    /* bytes of a request body (a job's YAML) */

/* Answer a request for URL under /api/ (GET or HEAD). */
enum MHD_Result rr_http_api(rr_http_request_t *req, const char *url);

/* The role a write (METHOD on URL) needs, RR_ROLE_NONE when URL has no such
 * write; *KNOWN_PATH says whether URL is a write endpoint for another method. */
rr_role_t rr_http_api_write_role(const char *url, const char *method, bool *known_path);

/* Answer a write (POST /api/v1/jobs, POST /api/v1/jobs/ID/cancel, DELETE
 * /api/v1/jobs/ID) whose body (req->body) is complete and within bounds. */
enum MHD_Result rr_http_api_write(rr_http_request_t *req, const char *url, const char *method);

/* The master that writes go through (NULL: a read-only server). */
rr_master_t *rr_http_master(rr_http_request_t *req);

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
