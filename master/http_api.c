/* http_api.c: the JSON endpoints under /api/v1/ (see http.h for the list and
 * their shapes). Every handler reads the store on the loop's thread and
 * answers at once, except a long-poll on a job's log, which parks its
 * connection (rr_http_suspend) until new events or its deadline. Submit and
 * cancel go through the master's own paths (jobctl.h), as the CLI's do. */
#include "http_api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "jobctl.h"
#include "json.h"

#define JOBS_LIMIT_DEFAULT 100
#define LOG_LIMIT_DEFAULT  500
#define PAGE_LIMIT_MAX     1000
#define LOG_PAGE_BYTES     (1024 * 1024)   /* log data per long-poll page, about */
#define WAIT_MAX_S         60
#define RESULTS_MAX        10000
#define FILTER_MAX_LEN     128

/* Query parameters of one request; BAD holds the first problem found. */
typedef struct {
    rr_http_request_t *req;
    char bad[256];
} params_t;

static const char *arg_text(params_t *p, const char *name)
{
    const char *value = MHD_lookup_connection_value(p->req->conn, MHD_GET_ARGUMENT_KIND, name);
    if (value && !*value)
        value = NULL;                   /* "?state=" means no filter */
    if (value && strlen(value) > FILTER_MAX_LEN && !p->bad[0])
        snprintf(p->bad, sizeof p->bad, "parameter %s: longer than %d characters", name,
                 FILTER_MAX_LEN);
    return value;
}

/* An unsigned decimal parameter in [MIN, MAX], DEF when absent. */
static uint64_t arg_uint(params_t *p, const char *name, uint64_t def, uint64_t min, uint64_t max)
{
    const char *text = arg_text(p, name);
    if (!text || p->bad[0])
        return def;
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end || errno || value < min || value > max) {
        snprintf(p->bad, sizeof p->bad, "parameter %s: '%.32s' is not a number in %" PRIu64
                 "..%" PRIu64, name, text, min, max);
        return def;
    }
    return value;
}

/* A state name parameter that must be one of STATES (NULL-terminated). */
static const char *arg_state(params_t *p, const char *const *states)
{
    const char *state = arg_text(p, "state");
    if (!state || p->bad[0])
        return NULL;
    for (size_t i = 0; states[i]; i++)
        if (strcmp(state, states[i]) == 0)
            return state;
    snprintf(p->bad, sizeof p->bad, "parameter state: unknown state '%.32s'", state);
    return NULL;
}

/* A failed store call as an HTTP error. */
static enum MHD_Result store_error(rr_http_request_t *req, int rc)
{
    unsigned status = rc == RR_STORE_E_NOTFOUND ? MHD_HTTP_NOT_FOUND
                      : rc == RR_STORE_E_INVALID ? MHD_HTTP_BAD_REQUEST
                      : MHD_HTTP_INTERNAL_SERVER_ERROR;
    return rr_http_reply_error(req, status, "%s", rr_store_error(rr_http_store(req)));
}

/* ---- /api/v1/jobs ---- */

static enum MHD_Result api_jobs(rr_http_request_t *req)
{
    params_t p = { .req = req };
    rr_store_jobs_filter_t filter = {
        .state = arg_text(&p, "state"),
        .device_type = arg_text(&p, "device_type"),
        .worker = arg_text(&p, "worker"),
        .limit = (uint32_t) arg_uint(&p, "limit", JOBS_LIMIT_DEFAULT, 1, PAGE_LIMIT_MAX),
        .offset = arg_uint(&p, "offset", 0, 0, INT64_MAX),
    };
    if (p.bad[0])
        return rr_http_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", p.bad);
    proto_jobinfo_t *jobs;
    size_t n;
    int rc = rr_store_jobs_query(rr_http_store(req), &filter, &jobs, &n);
    if (rc != RR_STORE_OK)
        return store_error(req, rc);
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(list, proto_json_jobinfo(&jobs[i]));
    rr_store_jobinfos_free(&jobs, n);
    return rr_http_reply_json(req, MHD_HTTP_OK, json_pack("{s:o*, s:i, s:I}", "jobs", list,
                                                          "limit", (int) filter.limit, "offset",
                                                          (json_int_t) filter.offset));
}

/* ---- /api/v1/jobs/ID ---- */

static enum MHD_Result api_job(rr_http_request_t *req, uint64_t id)
{
    rr_store_t *store = rr_http_store(req);
    proto_jobinfo_t info;
    int rc = rr_store_job_get(store, id, &info);
    if (rc != RR_STORE_OK)
        return store_error(req, rc);
    char *yaml = NULL;
    uint64_t last_seq = 0;
    json_t *body = proto_json_jobinfo(&info);
    rr_store_jobinfo_clear(&info);
    rc = rr_store_job_yaml(store, id, &yaml);
    if (rc == RR_STORE_OK)
        rc = rr_store_events_acked(store, id, &last_seq);
    if (rc != RR_STORE_OK) {
        free(yaml);
        json_decref(body);
        return store_error(req, rc);
    }
    if (body) {
        json_object_set_new(body, "yaml", yaml ? json_string(yaml) : json_null());
        json_object_set_new(body, "last_seq", json_integer((json_int_t) last_seq));
    }
    free(yaml);
    return rr_http_reply_json(req, MHD_HTTP_OK, body);
}

/* ---- /api/v1/jobs/ID/log ---- */

/* EVENTS as a JSON array, cut after about LOG_PAGE_BYTES of log data;
 * *SENT gets how many went in. */
static json_t *events_page(const proto_job_event_t *events, size_t n, size_t *sent)
{
    json_t *list = json_array();
    size_t bytes = 0;
    for (*sent = 0; list && *sent < n; (*sent)++) {
        if (*sent > 0 && bytes + events[*sent].data_len > LOG_PAGE_BYTES)
            break;
        bytes += events[*sent].data_len;
        json_array_append_new(list, proto_json_event(&events[*sent]));
    }
    return list;
}

/* Park REQ for JOB for up to WAIT_S seconds; false when it must answer now. */
static bool wait_for_events(rr_http_request_t *req, uint64_t job, uint64_t wait_s)
{
    uint64_t now = rr_mono_ms();
    if (req->deadline_mono == 0)
        req->deadline_mono = now + wait_s * 1000;
    if (now >= req->deadline_mono || rr_http_stopping(req))
        return false;
    req->job = job;
    return rr_http_suspend(req);
}

static enum MHD_Result api_log(rr_http_request_t *req, uint64_t id)
{
    rr_store_t *store = rr_http_store(req);
    params_t p = { .req = req };
    uint64_t from = arg_uint(&p, "from", 0, 0, INT64_MAX);
    uint32_t limit = (uint32_t) arg_uint(&p, "limit", LOG_LIMIT_DEFAULT, 1, PAGE_LIMIT_MAX);
    uint64_t wait_s = arg_uint(&p, "wait", 0, 0, WAIT_MAX_S);
    if (p.bad[0])
        return rr_http_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", p.bad);
    proto_jobinfo_t info;
    int rc = rr_store_job_get(store, id, &info);
    if (rc != RR_STORE_OK)
        return store_error(req, rc);
    bool finished = strcmp(info.state, RR_JOB_FINISHED) == 0;
    rr_store_jobinfo_clear(&info);
    proto_job_event_t *events;
    size_t n;
    rc = rr_store_events_read(store, id, from, limit, &events, &n);
    if (rc != RR_STORE_OK)
        return store_error(req, rc);
    if (n == 0 && !finished && wait_s > 0) {
        if (wait_for_events(req, id, wait_s))
            return MHD_YES;
        if (!rr_http_stopping(req) && rr_mono_ms() < req->deadline_mono)
            return rr_http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                       "job %" PRIu64 ": too many long-polls waiting; "
                                       "retry later", id);
    }
    size_t sent;
    json_t *list = events_page(events, n, &sent);
    uint64_t last_seq = sent ? events[sent - 1].seq : from;
    bool more = sent < n || n == limit;
    rr_store_events_free(&events, n);
    return rr_http_reply_json(req, MHD_HTTP_OK,
                              json_pack("{s:I, s:o*, s:I, s:b, s:b}", "job", (json_int_t) id,
                                        "events", list, "last_seq", (json_int_t) last_seq,
                                        "more", more, "finished", finished));
}

/* ---- /api/v1/jobs/ID/results ---- */

static void count_result(json_t *body, const char *value)
{
    static const char *const kinds[] = { "pass", "fail", "skip" };
    for (size_t i = 0; value && i < 3; i++)
        if (strcmp(value, kinds[i]) == 0)
            json_object_set_new(body, kinds[i], json_integer(1 + json_integer_value(
                                                          json_object_get(body, kinds[i]))));
}

static enum MHD_Result api_results(rr_http_request_t *req, uint64_t id)
{
    rr_store_t *store = rr_http_store(req);
    proto_jobinfo_t info;
    int rc = rr_store_job_get(store, id, &info);
    if (rc != RR_STORE_OK)
        return store_error(req, rc);
    rr_store_jobinfo_clear(&info);
    json_t *list = json_array();
    json_t *body = json_pack("{s:I, s:o*, s:i, s:i, s:i}", "job", (json_int_t) id, "results",
                             list, "pass", 0, "fail", 0, "skip", 0);
    uint64_t from = 0;
    for (size_t total = 0; body && total < RESULTS_MAX;) {
        proto_job_event_t *events;
        size_t n;
        rc = rr_store_events_read_kind(store, id, "result", from, PAGE_LIMIT_MAX, &events, &n);
        if (rc != RR_STORE_OK) {
            json_decref(body);
            return store_error(req, rc);
        }
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(list, proto_json_event(&events[i]));
            count_result(body, events[i].value);
        }
        from = n ? events[n - 1].seq : from;
        total += n;
        rr_store_events_free(&events, n);
        if (n < PAGE_LIMIT_MAX)
            break;
    }
    return rr_http_reply_json(req, MHD_HTTP_OK, body);
}

/* ---- /api/v1/workers and /api/v1/devices ---- */

static const char *const worker_states[] = { RR_WORKER_ONLINE, RR_WORKER_LOST,
                                             RR_WORKER_OFFLINE, NULL };
static const char *const device_states[] = { RR_DEVICE_IDLE, RR_DEVICE_RESERVED,
    RR_DEVICE_RUNNING, RR_DEVICE_OFFLINE, RR_DEVICE_MAINTENANCE, RR_DEVICE_BAD, RR_DEVICE_RETIRED,
    NULL };

static enum MHD_Result api_workers(rr_http_request_t *req)
{
    params_t p = { .req = req };
    const char *state = arg_state(&p, worker_states);
    if (p.bad[0])
        return rr_http_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", p.bad);
    uint64_t now = rr_wall_ms();
    proto_workerinfo_t *workers;
    size_t n;
    int rc = rr_store_workers_list(rr_http_store(req), state, now, &workers, &n);
    if (rc != RR_STORE_OK)
        return store_error(req, rc);
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(list, proto_json_workerinfo(&workers[i]));
    rr_store_workerinfos_free(&workers, n);
    return rr_http_reply_json(req, MHD_HTTP_OK, json_pack("{s:o*, s:I}", "workers", list,
                                                          "now_ms", (json_int_t) now));
}

/* The rack of WORKER from the list, or NULL. */
static const char *rack_of(const proto_workerinfo_t *workers, size_t n, const char *worker)
{
    for (size_t i = 0; worker && i < n; i++)
        if (strcmp(workers[i].name, worker) == 0)
            return workers[i].rack;
    return NULL;
}

static enum MHD_Result api_devices(rr_http_request_t *req)
{
    params_t p = { .req = req };
    const char *state = arg_state(&p, device_states);
    const char *worker = arg_text(&p, "worker");
    if (p.bad[0])
        return rr_http_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", p.bad);
    rr_store_t *store = rr_http_store(req);
    proto_workerinfo_t *workers = NULL;
    proto_deviceinfo_t *devices = NULL;
    size_t nw = 0, nd = 0;
    int rc = rr_store_workers_list(store, NULL, rr_wall_ms(), &workers, &nw);
    if (rc == RR_STORE_OK)
        rc = rr_store_devices_list(store, worker, &devices, &nd);
    if (rc != RR_STORE_OK) {
        rr_store_workerinfos_free(&workers, nw);
        return store_error(req, rc);
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < nd; i++) {
        if (state && strcmp(devices[i].state, state) != 0)
            continue;
        json_t *dev = proto_json_deviceinfo(&devices[i]);
        const char *rack = rack_of(workers, nw, devices[i].worker);
        if (dev)
            json_object_set_new(dev, "rack", rack ? json_string(rack) : json_null());
        json_array_append_new(list, dev);
    }
    rr_store_deviceinfos_free(&devices, nd);
    rr_store_workerinfos_free(&workers, nw);
    return rr_http_reply_json(req, MHD_HTTP_OK, json_pack("{s:o*}", "devices", list));
}

/* ---- routing ---- */

/* PATH is what follows "/api/v1/jobs/": "ID", "ID/log" or "ID/results". */
static enum MHD_Result api_job_path(rr_http_request_t *req, const char *path)
{
    size_t digits = strspn(path, "0123456789");
    const char *rest = path + digits;
    errno = 0;
    unsigned long long id = digits ? strtoull(path, NULL, 10) : 0;
    if (!digits || digits > 19 || errno || (*rest && *rest != '/'))
        return rr_http_reply_error(req, MHD_HTTP_BAD_REQUEST, "job id '%.32s' is not a number",
                                   path);
    if (!*rest)
        return api_job(req, id);
    if (strcmp(rest, "/log") == 0)
        return api_log(req, id);
    if (strcmp(rest, "/results") == 0)
        return api_results(req, id);
    return rr_http_reply_error(req, MHD_HTTP_NOT_FOUND, "no such endpoint: /api/v1/jobs/%.100s",
                               path);
}

/* ---- writes: POST /api/v1/jobs, POST /api/v1/jobs/ID/cancel, DELETE /api/v1/jobs/ID ---- */

/* "/api/v1/jobs/ID" + SUFFIX: *ID and true. */
static bool job_url(const char *url, const char *suffix, uint64_t *id)
{
    static const char prefix[] = "/api/v1/jobs/";
    if (strncmp(url, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *path = url + sizeof prefix - 1;
    size_t digits = strspn(path, "0123456789");
    if (!digits || digits > 19 || strcmp(path + digits, suffix) != 0)
        return false;
    errno = 0;
    *id = strtoull(path, NULL, 10);
    return errno == 0;
}

rr_role_t rr_http_api_write_role(const char *url, const char *method, bool *known_path)
{
    uint64_t id;
    bool post = strcmp(method, "POST") == 0, del = strcmp(method, "DELETE") == 0;
    *known_path = true;
    if (strcmp(url, "/api/v1/jobs") == 0)
        return post ? rr_role_needed(PROTO_MSG_SUBMIT) : RR_ROLE_NONE;
    if (job_url(url, "/cancel", &id))
        return post ? rr_role_needed(PROTO_MSG_CANCEL) : RR_ROLE_NONE;
    if (job_url(url, "", &id))
        return del ? rr_role_needed(PROTO_MSG_CANCEL) : RR_ROLE_NONE;
    *known_path = false;
    return RR_ROLE_NONE;
}

static unsigned jobctl_status(const rr_jobctl_error_t *err)
{
    switch (err->kind) {
    case RR_JOBCTL_INVALID:   return MHD_HTTP_BAD_REQUEST;
    case RR_JOBCTL_TOO_BIG:   return MHD_HTTP_CONTENT_TOO_LARGE;
    case RR_JOBCTL_NOT_FOUND: return MHD_HTTP_NOT_FOUND;
    case RR_JOBCTL_STATE:     return MHD_HTTP_CONFLICT;
    default:                  return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

/* A refused submit or cancel: {"error", "code"} plus where in the YAML. */
static enum MHD_Result jobctl_error(rr_http_request_t *req, const rr_jobctl_error_t *err)
{
    unsigned status = jobctl_status(err);
    json_t *body = json_pack("{s:s, s:i}", "error", err->text, "code", (int) status);
    if (!body)                          /* not UTF-8 (a byte of the YAML quoted): escape it */
        return rr_http_reply_error(req, status, "%s", err->text);
    if (err->key[0])
        json_object_set_new(body, "key", json_string(err->key));
    if (err->line) {
        json_object_set_new(body, "line", json_integer(err->line));
        json_object_set_new(body, "col", json_integer(err->col));
    }
    return rr_http_reply_json(req, status, body);
}

/* Whether the Content-Type (parameters ignored) is NAME. */
static bool content_type_is(const char *type, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(type, name, n) == 0 && (type[n] == '\0' || type[n] == ';'
                                               || type[n] == ' ');
}

/* The job YAML of a POST body: the body itself, or its "yaml" member when
 * it is JSON. NULL with the reply queued in *RC. *OWNED: to free. */
static const char *submit_yaml(rr_http_request_t *req, size_t *len, json_t **owned,
                               enum MHD_Result *rc)
{
    const char *type = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *body = req->body ? req->body : "";
    *len = req->body_len;
    if (type && content_type_is(type, "application/json")) {
        json_error_t jerr;
        *owned = json_loadb(body, *len, 0, &jerr);
        json_t *yaml = json_object_get(*owned, "yaml");
        if (!json_is_string(yaml)) {
            *rc = rr_http_reply_error(req, MHD_HTTP_BAD_REQUEST, "JSON body: expected "
                                      "{\"yaml\": \"...\"}%s%.200s", *owned ? "" : ": ",
                                      *owned ? "" : jerr.text);
            return NULL;
        }
        *len = json_string_length(yaml);
        body = json_string_value(yaml);
    }
    else if (type && !content_type_is(type, "application/yaml")
             && !content_type_is(type, "application/x-yaml") && !content_type_is(type, "text/yaml")
             && !content_type_is(type, "text/plain")) {
        *rc = rr_http_reply_error(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "Content-Type %.64s: "
                                  "send the job YAML as application/yaml or text/plain, or "
                                  "JSON {\"yaml\": ...} as application/json", type);
        return NULL;
    }
    if (strlen(body) != *len) {
        *rc = rr_http_reply_error(req, MHD_HTTP_BAD_REQUEST, "job YAML holds a NUL byte");
        return NULL;
    }
    return body;
}

static enum MHD_Result api_submit(rr_http_request_t *req)
{
    enum MHD_Result rc = MHD_NO;
    json_t *owned = NULL;
    size_t len = 0;
    const char *yaml = submit_yaml(req, &len, &owned, &rc);
    if (yaml) {
        uint64_t id = 0;
        rr_jobctl_error_t err;
        if (rr_jobctl_submit(rr_http_master(req), yaml, len, &id, &err) != 0)
            rc = jobctl_error(req, &err);
        else {
            char url[64];
            snprintf(url, sizeof url, "/api/v1/jobs/%" PRIu64, id);
            proto_jobinfo_t info = { 0 };       /* the scheduler may have placed it already */
            bool known = rr_store_job_get(rr_http_store(req), id, &info) == RR_STORE_OK;
            rc = rr_http_reply_json(req, MHD_HTTP_CREATED,
                                    json_pack("{s:I, s:s, s:s}", "id", (json_int_t) id,
                                              "state", known ? info.state : RR_JOB_QUEUED,
                                              "url", url));
            rr_store_jobinfo_clear(&info);
        }
    }
    json_decref(owned);
    return rc;
}

static enum MHD_Result api_cancel(rr_http_request_t *req, uint64_t id)
{
    const char *state = NULL;
    rr_jobctl_error_t err;
    if (rr_jobctl_cancel(rr_http_master(req), id, &state, &err) != 0)
        return jobctl_error(req, &err);
    return rr_http_reply_json(req, MHD_HTTP_ACCEPTED, json_pack("{s:I, s:s}", "id",
                                                                (json_int_t) id, "state", state));
}

enum MHD_Result rr_http_api_write(rr_http_request_t *req, const char *url, const char *method)
{
    uint64_t id;
    if (strcmp(method, "POST") == 0 && strcmp(url, "/api/v1/jobs") == 0)
        return api_submit(req);
    if ((strcmp(method, "POST") == 0 && job_url(url, "/cancel", &id))
        || (strcmp(method, "DELETE") == 0 && job_url(url, "", &id)))
        return api_cancel(req, id);
    return rr_http_reply_error(req, MHD_HTTP_METHOD_NOT_ALLOWED, "method %.16s not allowed "
                               "on %.200s", method, url);
}

enum MHD_Result rr_http_api(rr_http_request_t *req, const char *url)
{
    static const char prefix[] = "/api/v1/";
    const char *path = strncmp(url, prefix, sizeof prefix - 1) == 0 ? url + sizeof prefix - 1
                                                                   : NULL;
    if (path && strcmp(path, "jobs") == 0)
        return api_jobs(req);
    if (path && strncmp(path, "jobs/", 5) == 0)
        return api_job_path(req, path + 5);
    if (path && strcmp(path, "workers") == 0)
        return api_workers(req);
    if (path && strcmp(path, "devices") == 0)
        return api_devices(req);
    return rr_http_reply_error(req, MHD_HTTP_NOT_FOUND, "no such endpoint: %.200s", url);
}
