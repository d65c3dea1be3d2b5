/* results.c: `rackrun results ID [--json | --junit [FILE]]`: a job's test
 * results (see results.h), read from its event stream with one LOGS request
 * (no follow: the results so far of a running job).
 *
 * The console log is not stored per step; the stream interleaves it with the
 * result events, so a case's log is what arrived since the case before it
 * (or since its action started). Only its last RR_RESULTS_TAIL_MAX bytes are
 * kept: enough to see why a step failed, without holding a whole boot log. */
#include "results.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "connection.h"
#include "format.h"
#include "logs.h"
#include "grow.h"

struct _rr_results_t {
    const proto_jobinfo_t *info;
    rr_result_case_t *cases;
    size_t count, cap;
    char tail[RR_RESULTS_TAIL_MAX + 1];   /* the console since the last case */
    size_t tail_len;
    uint64_t section_ms;                  /* when the current section started */
    char *failed_action;
};

rr_results_t *rr_results_new(const proto_jobinfo_t *info)
{
    rr_results_t *self = calloc(1, sizeof *self);
    if (self) {
        self->info = info;
        self->section_ms = info->started;
    }
    return self;
}

static void case_clear(rr_result_case_t *c)
{
    free(c->name);
    free(c->value);
    free(c->measurement);
    free(c->units);
    free(c->tail);
}

void rr_results_destroy(rr_results_t **self_p)
{
    rr_results_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        case_clear(&self->cases[i]);
    free(self->cases);
    free(self->failed_action);
    free(self);
    *self_p = NULL;
}

/* Append console bytes, keeping only the last RR_RESULTS_TAIL_MAX. */
static void tail_add(rr_results_t *self, const uint8_t *data, size_t len)
{
    if (len >= RR_RESULTS_TAIL_MAX) {
        memcpy(self->tail, data + len - RR_RESULTS_TAIL_MAX, RR_RESULTS_TAIL_MAX);
        self->tail_len = RR_RESULTS_TAIL_MAX;
    } else {
        size_t drop = self->tail_len + len > RR_RESULTS_TAIL_MAX
                          ? self->tail_len + len - RR_RESULTS_TAIL_MAX : 0;
        memmove(self->tail, self->tail + drop, self->tail_len - drop);
        memcpy(self->tail + self->tail_len - drop, data, len);
        self->tail_len += len - drop;
    }
    self->tail[self->tail_len] = '\0';
}

static void section_start(rr_results_t *self, uint64_t ts)
{
    self->tail_len = 0;
    self->tail[0] = '\0';
    self->section_ms = ts;
}

static char *dup_or_null(const char *text)
{
    return text ? strdup(text) : NULL;
}

static int add_case(rr_results_t *self, const proto_job_event_t *ev)
{
    rr_result_case_t *cases = rr_grow(self->cases, self->count, &self->cap, sizeof *cases, 16);
    if (!cases)
        return -1;
    self->cases = cases;
    rr_result_case_t *c = &self->cases[self->count];
    *c = (rr_result_case_t){ .code = ev->code, .start_ms = self->section_ms, .end_ms = ev->ts,
                             .tail_len = self->tail_len };
    c->name = strdup(ev->name ? ev->name : "(unnamed)");
    c->value = strdup(ev->value ? ev->value : "fail");
    c->measurement = dup_or_null(ev->measurement);
    c->units = dup_or_null(ev->units);
    c->tail = malloc(self->tail_len + 1);
    if (!c->name || !c->value || !c->tail || (ev->measurement && !c->measurement)
        || (ev->units && !c->units)) {
        case_clear(c);
        return -1;
    }
    memcpy(c->tail, self->tail, self->tail_len + 1);
    self->count++;
    section_start(self, ev->ts);
    return 0;
}

int rr_results_feed(rr_results_t *self, const proto_job_event_t *ev)
{
    if (strcmp(ev->kind, "log") == 0) {
        if (ev->data_len)
            tail_add(self, ev->data, ev->data_len);
    } else if (strcmp(ev->kind, "result") == 0) {
        return add_case(self, ev);
    } else if (strcmp(ev->kind, "action") == 0 && ev->value) {
        if (strcmp(ev->value, "start") == 0)
            section_start(self, ev->ts);
        else if (strcmp(ev->value, "fail") == 0 && !self->failed_action && ev->name)
            return (self->failed_action = strdup(ev->name)) ? 0 : -1;
    }
    return 0;
}

const proto_jobinfo_t *rr_results_job(const rr_results_t *self)
{
    return self->info;
}

const rr_result_case_t *rr_results_cases(const rr_results_t *self, size_t *count)
{
    *count = self->count;
    return self->cases;
}

size_t rr_results_count(const rr_results_t *self, const char *value)
{
    size_t n = 0;
    for (size_t i = 0; i < self->count; i++)
        n += strcmp(self->cases[i].value, value) == 0;
    return n;
}

const char *rr_results_open_tail(const rr_results_t *self, size_t *len)
{
    *len = self->tail_len;
    return self->tail;
}

const char *rr_results_failed_action(const rr_results_t *self)
{
    return self->failed_action;
}

/* ---- text ---- */

/* Length of the valid UTF-8 sequence at P (of N bytes), 0 when invalid
 * (overlong, surrogate, above U+10FFFF, or U+FFFE/U+FFFF which XML forbids). */
static size_t utf8_valid(const unsigned char *p, size_t n)
{
    size_t len = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)
        || (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)
        || (p[0] == 0xef && p[1] == 0xbf && p[2] >= 0xbe))
        return 0;
    return len;
}

/* Bytes of the escape sequence at P (ESC, or ESC [ params final). */
static size_t escape_len(const unsigned char *p, size_t n)
{
    if (n < 2 || p[1] != '[')
        return 1;
    size_t i = 2;
    while (i < n && !(p[i] >= 0x40 && p[i] <= 0x7e))
        i++;
    return i < n ? i + 1 : n;
}

char *rr_results_clean_text(const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    char *out = malloc(len * 3 + 1), *o = out;
    for (size_t i = 0; out && i < len;) {
        size_t n = p[i] < 0x80 ? 1 : utf8_valid(p + i, len - i);
        if (p[i] == 0x1b) {
            n = escape_len(p + i, len - i);
        } else if (n == 0) {
            memcpy(o, "\xef\xbf\xbd", 3); /* U+FFFD for the one bad byte */
            o += 3;
            n = 1;
        } else if (n > 1 || p[i] == '\t' || p[i] == '\n' || (p[i] >= 0x20 && p[i] != 0x7f)) {
            memcpy(o, p + i, n);
            o += n;
        }
        i += n;
    }
    if (out)
        *o = '\0';
    return out;
}

/* ---- fetching ---- */

/* LOGS from seq 0 without follow: every stored event into REPORT. */
static int fetch_events(rr_connection_t *conn, uint64_t job, rr_results_t *report)
{
    proto_msg_t req = { .type = PROTO_MSG_LOGS, .version = PROTO_VERSION };
    req.u.logs.job = job;
    int rc = rr_connection_send(conn, &req);
    while (rc == 0) {
        proto_msg_t msg = { 0 };
        rc = rr_connection_recv(conn, &msg, rr_connection_timeout(conn));
        if (rc != 0)
            break;
        if (msg.type == PROTO_MSG_JOB_EVENT && msg.u.job_event.job == job) {
            rc = rr_results_feed(report, &msg.u.job_event) == 0 ? 0 : RR_EXIT_FAILED;
        } else if (msg.type == PROTO_MSG_LOGS_END) {
            rc = 1;
        } else if (msg.type == PROTO_MSG_ERROR) {
            rr_connection_print_error(&msg);
            rc = RR_EXIT_FAILED;
        } else if (msg.type != PROTO_MSG_JOB_EVENT) {
            rr_cli_error("master %s: sent '%s' while listing job %" PRIu64 " (protocol mismatch?)",
                         rr_connection_endpoint(conn), proto_type_name(msg.type), job);
            rc = RR_EXIT_MASTER;
        }
        proto_msg_free(&msg);
    }
    if (rc == RR_EXIT_FAILED && errno == ENOMEM)
        rr_cli_error("job %" PRIu64 ": out of memory", job);
    return rc == 1 ? 0 : rc;
}

/* ---- output ---- */

static double case_seconds(const rr_result_case_t *c)
{
    return c->end_ms > c->start_ms ? (double)(c->end_ms - c->start_ms) / 1000.0 : 0.0;
}

static void print_table(const rr_results_t *report)
{
    static const char *const headers[] = { "TEST", "RESULT", "EXIT", "TIME", "MEASUREMENT" };
    const proto_jobinfo_t *job = report->info;
    size_t n;
    const rr_result_case_t *cases = rr_results_cases(report, &n);
    rr_table_t *table = rr_table_new(5, headers);
    for (size_t i = 0; table && i < n; i++) {
        char code[24], secs[24], meas[256];
        snprintf(code, sizeof code, "%" PRId64, cases[i].code);
        snprintf(secs, sizeof secs, "%.1fs", case_seconds(&cases[i]));
        snprintf(meas, sizeof meas, "%s%s%s", cases[i].measurement ? cases[i].measurement : "-",
                 cases[i].units ? " " : "", cases[i].units ? cases[i].units : "");
        const char *cells[] = { cases[i].name, cases[i].value, code, secs, meas };
        rr_table_add(table, cells);
    }
    if (table && n)
        rr_table_print(table, stdout);
    rr_table_destroy(&table);
    char outcome[128];
    printf("job %" PRIu64 " %s: %zu pass, %zu fail, %zu skip\n", job->id,
           rr_fmt_sanitize(job->outcome ? job->outcome : job->state, outcome, sizeof outcome),
           rr_results_count(report, "pass"), rr_results_count(report, "fail"),
           rr_results_count(report, "skip"));
}

static json_t *case_json(const rr_result_case_t *c)
{
    json_t *obj = json_pack("{s:s, s:s, s:I, s:I, s:I}", "name", c->name, "result", c->value,
                            "code", (json_int_t)c->code, "ts_ms", (json_int_t)c->end_ms,
                            "duration_ms", (json_int_t)(c->end_ms > c->start_ms
                                                        ? c->end_ms - c->start_ms : 0));
    if (obj && c->measurement)
        json_object_set_new(obj, "measurement", json_string(c->measurement));
    if (obj && c->units)
        json_object_set_new(obj, "units", json_string(c->units));
    if (obj && strcmp(c->value, "fail") == 0) { /* the log only where it explains something */
        char *tail = rr_results_clean_text(c->tail, c->tail_len);
        json_object_set_new(obj, "log_tail", tail ? json_string(tail) : json_null());
        free(tail);
    }
    return obj;
}

static void print_json(const rr_results_t *report)
{
    const proto_jobinfo_t *job = report->info;
    size_t n;
    const rr_result_case_t *cases = rr_results_cases(report, &n);
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(list, case_json(&cases[i]));
    rr_json_print(json_pack("{s:I, s:s, s:s, s:s?, s:s?, s:s?, s:I, s:I, s:I, s:o?}",
                            "job", (json_int_t)job->id, "name", job->name, "state", job->state,
                            "outcome", job->outcome, "reason", job->reason,
                            "failed_action", report->failed_action,
                            "pass", (json_int_t)rr_results_count(report, "pass"),
                            "fail", (json_int_t)rr_results_count(report, "fail"),
                            "skip", (json_int_t)rr_results_count(report, "skip"), "results", list),
                  stdout);
}

/* Write the JUnit file atomically: PATH.tmp, then rename. */
static int write_junit_file(const rr_results_t *report, const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        rr_cli_error("%s: path too long", path);
        return RR_EXIT_USAGE;
    }
    FILE *out = fopen(tmp, "w");
    if (!out) {
        rr_cli_error("%s: %s", tmp, strerror(errno));
        return RR_EXIT_FAILED;
    }
    int rc = rr_results_write_junit(report, out);
    if (fclose(out) != 0 || rc != 0 || rename(tmp, path) != 0) {
        rr_cli_error("%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        return RR_EXIT_FAILED;
    }
    return 0;
}

static int report_out(const rr_cli_opts_t *opts, const rr_results_t *report, const char *file)
{
    if (opts->junit && file)
        return write_junit_file(report, file);
    if (opts->junit)
        return rr_results_write_junit(report, stdout) == 0 ? 0 : RR_EXIT_FAILED;
    if (opts->json)
        print_json(report);
    else
        print_table(report);
    return 0;
}

int rr_cmd_results(const rr_cli_opts_t *opts, int argc, char **args)
{
    proto_msg_t req = { .type = PROTO_MSG_JOB, .version = PROTO_VERSION };
    proto_msg_t reply = { 0 };
    rr_connection_t *conn = NULL;
    rr_results_t *report = NULL;
    const char *file = argc > 1 ? args[1] : NULL;
    int rc = rr_cli_job_id(args[0], &req.u.job.job);
    if (rc != 0)
        return rc;
    if (file && !opts->junit) {
        rr_cli_error("results: FILE is for --junit (usage: rackrun results ID [--json | --junit [FILE]])");
        return RR_EXIT_USAGE;
    }
    rc = rr_connection_open(opts, &conn);
    if (rc != 0)
        return rc;
    rc = rr_connection_request(conn, &req, PROTO_MSG_JOB_DETAIL, &reply);
    if (rc != 0)
        goto out;
    report = rr_results_new(reply.u.job_detail.info);
    rc = report ? fetch_events(conn, req.u.job.job, report) : RR_EXIT_FAILED;
    if (rc == 0)
        rc = report_out(opts, report, file);
out:
    rr_results_destroy(&report);
    proto_msg_free(&reply);
    rr_connection_destroy(&conn);
    return rc;
}
