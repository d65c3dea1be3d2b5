/* jobstream.c: show and summarise a job's event stream (see jobstream.h). */
#include "jobstream.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "json.h"
#include "units.h"
#include "grow.h"

/* A test can print any number of RR_RESULT lines; the summary keeps this
 * many and counts the rest, so a runaway test cannot exhaust the client. */
#define MAX_RECORDS 10000

typedef struct {
    char *name;
    char *value;       /* pass | fail | skip; for actions end | fail */
    char *reason;
    char *measurement;
    char *units;
    int64_t code;      /* exit code; for actions the duration in ms */
} record_t;

typedef struct {
    record_t *items;
    size_t count, capacity, dropped;
} records_t;

struct _rr_jobstream_t {
    FILE *out;
    bool json;
    bool at_line_start;   /* the last byte written to OUT was '\n' (or nothing yet) */
    uint64_t last_seq;
    char *outcome;
    char *reason;
    records_t actions;
    records_t results;
};

rr_jobstream_t *rr_jobstream_new(FILE *out, bool json)
{
    rr_jobstream_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->out = out;
    self->json = json;
    self->at_line_start = true;
    return self;
}

static void record_free(record_t *r)
{
    free(r->name);
    free(r->value);
    free(r->reason);
    free(r->measurement);
    free(r->units);
}

static void records_free(records_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        record_free(&list->items[i]);
    free(list->items);
}

void rr_jobstream_destroy(rr_jobstream_t **self_p)
{
    rr_jobstream_t *self = *self_p;
    if (!self)
        return;
    records_free(&self->actions);
    records_free(&self->results);
    free(self->outcome);
    free(self->reason);
    free(self);
    *self_p = NULL;
}

/* strdup that keeps NULL; *FAILED set on ENOMEM. */
static char *dup_opt(const char *text, bool *failed)
{
    char *copy = text ? strdup(text) : NULL;
    if (text && !copy)
        *failed = true;
    return copy;
}

static int records_add(records_t *list, const proto_job_event_t *ev)
{
    if (list->count == MAX_RECORDS) {
        list->dropped++;
        return 0;
    }
    record_t *items = rr_grow(list->items, list->count, &list->capacity, sizeof *items, 16);
    if (!items)
        return -1;
    list->items = items;
    bool failed = false;
    record_t r = {
        .name = dup_opt(ev->name ? ev->name : "?", &failed), .value = dup_opt(ev->value, &failed),
        .reason = dup_opt(ev->reason, &failed), .measurement = dup_opt(ev->measurement, &failed),
        .units = dup_opt(ev->units, &failed), .code = ev->code,
    };
    if (failed) {
        record_free(&r);
        return -1;
    }
    list->items[list->count++] = r;
    return 0;
}

static int record_event(rr_jobstream_t *self, const proto_job_event_t *ev)
{
    if (strcmp(ev->kind, "result") == 0)
        return records_add(&self->results, ev);
    if (strcmp(ev->kind, "action") == 0 && ev->value && strcmp(ev->value, "start") != 0)
        return records_add(&self->actions, ev);
    if (strcmp(ev->kind, "end") == 0) {
        bool failed = false;
        free(self->outcome);
        free(self->reason);
        self->outcome = dup_opt(ev->value ? ev->value : "unknown", &failed);
        self->reason = dup_opt(ev->reason, &failed);
        return failed ? -1 : 0;
    }
    return 0;
}

/* Human output: raw log bytes, or one line per structured event, starting
 * on a fresh line even when the console's last line had no newline yet. */
static void show_event(rr_jobstream_t *self, const proto_job_event_t *ev)
{
    char line[1024];
    if (strcmp(ev->kind, "log") == 0) {
        if (ev->data_len) {
            fwrite(ev->data, 1, ev->data_len, self->out);
            self->at_line_start = ev->data[ev->data_len - 1] == '\n';
        }
    } else if (rr_fmt_event(ev, line, sizeof line)) {
        fprintf(self->out, "%s%s\n", self->at_line_start ? "" : "\n", line);
        self->at_line_start = true;
    }
    fflush(self->out);
}

int rr_jobstream_feed(rr_jobstream_t *self, const proto_job_event_t *ev)
{
    if (ev->seq <= self->last_seq)
        return 0;
    self->last_seq = ev->seq;
    if (self->out && self->json) {
        rr_json_print(proto_json_event(ev), self->out);
        fflush(self->out);
    } else if (self->out) {
        show_event(self, ev);
    }
    return record_event(self, ev);
}

uint64_t rr_jobstream_last_seq(const rr_jobstream_t *self)
{
    return self->last_seq;
}

const char *rr_jobstream_outcome(const rr_jobstream_t *self)
{
    return self->outcome;
}

static void print_actions(const records_t *list, FILE *out)
{
    static const char *const headers[] = { "ACTION", "RESULT", "TOOK", "REASON" };
    rr_table_t *table = rr_table_new(4, headers);
    for (size_t i = 0; table && i < list->count; i++) {
        const record_t *r = &list->items[i];
        char took[32] = "-";
        if (r->code > 0)
            rr_duration_format((uint64_t)r->code, took, sizeof took);
        const char *cells[] = { r->name, r->value, took, r->reason ? r->reason : "" };
        rr_table_add(table, cells);
    }
    if (table)
        rr_table_print(table, out);
    rr_table_destroy(&table);
}

static void print_results(const records_t *list, FILE *out)
{
    static const char *const headers[] = { "TEST", "RESULT", "DETAIL" };
    rr_table_t *table = rr_table_new(3, headers);
    for (size_t i = 0; table && i < list->count; i++) {
        const record_t *r = &list->items[i];
        char detail[160];
        if (r->measurement)
            snprintf(detail, sizeof detail, "%s%s%s", r->measurement, r->units ? " " : "",
                     r->units ? r->units : "");
        else
            snprintf(detail, sizeof detail, "exit %" PRId64, r->code);
        const char *cells[] = { r->name, r->value, detail };
        rr_table_add(table, cells);
    }
    if (table)
        rr_table_print(table, out);
    rr_table_destroy(&table);
    if (list->dropped)
        fprintf(out, "(%zu more results not kept)\n", list->dropped);
}

void rr_jobstream_print_summary(const rr_jobstream_t *self, uint64_t job, FILE *out)
{
    char outcome[64], why[256];
    fprintf(out, "%sjob %" PRIu64 ": %s%s%s\n", self->at_line_start ? "" : "\n", job,
            rr_fmt_sanitize(self->outcome ? self->outcome : "no outcome yet", outcome, sizeof outcome),
            self->reason ? ": " : "", self->reason ? rr_fmt_sanitize(self->reason, why, sizeof why) : "");
    rr_jobstream_print_tables(self, out);
}

void rr_jobstream_print_tables(const rr_jobstream_t *self, FILE *out)
{
    if (self->actions.count)
        print_actions(&self->actions, out);
    if (self->results.count)
        print_results(&self->results, out);
    else
        fputs("no test results\n", out);
}

static json_t *records_json(const records_t *list, const char *code_key)
{
    json_t *array = json_array();
    for (size_t i = 0; array && i < list->count; i++) {
        const record_t *r = &list->items[i];
        json_t *obj = json_pack("{s:s, s:s?, s:I}", "name", r->name, "value", r->value, code_key,
                                (json_int_t)r->code);
        if (obj && r->reason)
            json_object_set_new(obj, "reason", json_string(r->reason));
        if (obj && r->measurement)
            json_object_set_new(obj, "measurement", json_string(r->measurement));
        if (obj && r->units)
            json_object_set_new(obj, "units", json_string(r->units));
        json_array_append_new(array, obj);
    }
    return array;
}

json_t *rr_jobstream_summary_json(const rr_jobstream_t *self)
{
    return json_pack("{s:s?, s:s?, s:o, s:o}", "outcome", self->outcome, "reason", self->reason,
                     "actions", records_json(&self->actions, "took_ms"),
                     "results", records_json(&self->results, "exit"));
}

bool rr_jobstream_report(const rr_jobstream_t *self, uint64_t job, bool json, FILE *out)
{
    if (json) {
        json_t *summary = rr_jobstream_summary_json(self);
        if (summary)
            json_object_set_new(summary, "job", json_integer((json_int_t)job));
        rr_json_print(summary, out);
    } else {
        rr_jobstream_print_summary(self, job, out);
    }
    return self->outcome && strcmp(self->outcome, "complete") == 0;
}
