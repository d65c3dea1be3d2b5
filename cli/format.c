/* format.c: tables, times, event lines and JSON for the CLI (see format.h). */
#include "format.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "units.h"

char *rr_fmt_age(uint64_t ms, char *buf, size_t len)
{
    /* Under a minute an operator compares ages against a 1 s beat: always
     * one decimal, so 400 ms reads "0.4s" and never jumps between units. */
    if (ms < 60000)
        snprintf(buf, len, "%" PRIu64 ".%" PRIu64 "s", ms / 1000, ms % 1000 / 100);
    else
        rr_duration_format(ms, buf, len);
    return buf;
}

static bool local_time(uint64_t wall_ms, struct tm *tm)
{
    time_t secs = (time_t)(wall_ms / 1000);
    return localtime_r(&secs, tm) != NULL;
}

char *rr_fmt_clock(uint64_t wall_ms, char *buf, size_t len)
{
    struct tm tm;
    if (!local_time(wall_ms, &tm))
        snprintf(buf, len, "??:??:??.???");
    else
        snprintf(buf, len, "%02d:%02d:%02d.%03u", tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (unsigned)(wall_ms % 1000));
    return buf;
}

char *rr_fmt_datetime(uint64_t wall_ms, char *buf, size_t len)
{
    struct tm tm;
    if (wall_ms == 0 || !local_time(wall_ms, &tm))
        snprintf(buf, len, "-");
    else if (strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0 && len)
        buf[0] = '\0';
    return buf;
}

char *rr_fmt_sanitize(const char *text, char *buf, size_t len)
{
    if (!len)
        return buf;
    snprintf(buf, len, "%s", text ? text : "-");
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return buf;
}

/* " (4.2s)" for an action that took CODE ms, "" when unknown. */
static char *action_took(int64_t code, char *buf, size_t len)
{
    char d[32];
    if (code > 0)
        snprintf(buf, len, " (%s)", rr_duration_format((uint64_t)code, d, sizeof d));
    else
        buf[0] = '\0';
    return buf;
}

static char *fmt_result(const proto_job_event_t *ev, const char *clock, char *buf, size_t len)
{
    char name[128], value[32], meas[64], units[32];
    rr_fmt_sanitize(ev->name, name, sizeof name);
    rr_fmt_sanitize(ev->value, value, sizeof value);
    if (ev->measurement)
        snprintf(buf, len, "[%s] result %s %s %s%s%s", clock, name, value,
                 rr_fmt_sanitize(ev->measurement, meas, sizeof meas), ev->units ? " " : "",
                 ev->units ? rr_fmt_sanitize(ev->units, units, sizeof units) : "");
    else
        snprintf(buf, len, "[%s] result %s %s (exit %" PRId64 ")", clock, name, value, ev->code);
    return buf;
}

static char *fmt_gap(const proto_job_event_t *ev, char *buf, size_t len)
{
    char why[160];
    uint64_t gap = ev->ts > ev->since ? ev->ts - ev->since : 0;
    snprintf(buf, len, "[console gap %" PRIu64 ".%" PRIu64 " s: %s]", gap / 1000, gap % 1000 / 100,
             rr_fmt_sanitize(ev->reason ? ev->reason : "unknown cause", why, sizeof why));
    return buf;
}

char *rr_fmt_event(const proto_job_event_t *ev, char *buf, size_t len)
{
    char clock[32], name[128], value[64], why[256], took[40];
    const char *kind = ev->kind;
    if (strcmp(kind, "log") == 0)
        return NULL;
    if (strcmp(kind, "console_gap") == 0)
        return fmt_gap(ev, buf, len);
    rr_fmt_clock(ev->ts, clock, sizeof clock);
    if (strcmp(kind, "result") == 0)
        return fmt_result(ev, clock, buf, len);
    rr_fmt_sanitize(ev->name, name, sizeof name);
    rr_fmt_sanitize(ev->value, value, sizeof value);
    rr_fmt_sanitize(ev->reason, why, sizeof why);
    if (strcmp(kind, "action") == 0)
        snprintf(buf, len, "[%s] action %s %s%s%s%s", clock, name, value,
                 action_took(ev->code, took, sizeof took), ev->reason ? ": " : "", ev->reason ? why : "");
    else if (strcmp(kind, "state") == 0)
        snprintf(buf, len, "[%s] state %s", clock, name);
    else if (strcmp(kind, "end") == 0)
        snprintf(buf, len, "[%s] end %s%s%s", clock, value, ev->reason ? ": " : "", ev->reason ? why : "");
    else if (strcmp(kind, "artifact") == 0)
        snprintf(buf, len, "[%s] artifact %s (%" PRId64 " bytes, sha256 %s)", clock, name, ev->code, value);
    else
        snprintf(buf, len, "[%s] %s %s %s%s%s", clock, rr_fmt_sanitize(kind, took, sizeof took), name,
                 value, ev->reason ? ": " : "", ev->reason ? why : "");
    return buf;
}

/* ---- tables ---- */

struct _rr_table_t {
    size_t columns;
    size_t rows;      /* including the header row */
    size_t capacity;  /* rows allocated */
    char **cells;     /* rows * columns, row-major */
};

rr_table_t *rr_table_new(size_t columns, const char *const *headers)
{
    rr_table_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->columns = columns;
    if (rr_table_add(self, headers) != 0)
        rr_table_destroy(&self);
    return self;
}

void rr_table_destroy(rr_table_t **self_p)
{
    rr_table_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->rows * self->columns; i++)
        free(self->cells[i]);
    free(self->cells);
    free(self);
    *self_p = NULL;
}

static int table_grow(rr_table_t *self)
{
    size_t capacity = self->capacity ? self->capacity * 2 : 16;
    char **cells = realloc(self->cells, capacity * self->columns * sizeof *cells);
    if (!cells)
        return -1;
    self->cells = cells;
    self->capacity = capacity;
    return 0;
}

int rr_table_add(rr_table_t *self, const char *const *cells)
{
    if (self->rows == self->capacity && table_grow(self) != 0)
        return -1;
    char **row = self->cells + self->rows * self->columns;
    for (size_t c = 0; c < self->columns; c++) {
        size_t len = strlen(cells[c] ? cells[c] : "-") + 1;
        row[c] = malloc(len);
        if (!row[c]) {
            while (c-- > 0)
                free(row[c]);
            return -1;
        }
        rr_fmt_sanitize(cells[c], row[c], len);
    }
    self->rows++;
    return 0;
}

void rr_table_print(const rr_table_t *self, FILE *out)
{
    size_t width[self->columns];
    memset(width, 0, sizeof width);
    for (size_t r = 0; r < self->rows; r++)
        for (size_t c = 0; c < self->columns; c++) {
            size_t w = strlen(self->cells[r * self->columns + c]);
            width[c] = w > width[c] ? w : width[c];
        }
    for (size_t r = 0; r < self->rows; r++) {
        char *const *row = self->cells + r * self->columns;
        size_t last = self->columns - 1; /* no padding after the last non-empty cell */
        while (last > 0 && !row[last][0])
            last--;
        for (size_t c = 0; c < last; c++)
            fprintf(out, "%-*s  ", (int)width[c], row[c]);
        fprintf(out, "%s\n", row[last]);
    }
}

/* ---- JSON ---- */

/* A string or null; jansson refuses invalid UTF-8, which becomes null too. */
static json_t *json_str_or_null(const char *text)
{
    json_t *value = text ? json_string(text) : NULL;
    return value ? value : json_null();
}

/* A time in ms or null when 0 (not yet). */
static json_t *json_ms_or_null(uint64_t ms)
{
    return ms ? json_integer((json_int_t)ms) : json_null();
}

static json_t *json_strings(char **items, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array && i < count; i++)
        json_array_append_new(array, json_str_or_null(items[i]));
    return array;
}

json_t *rr_json_jobinfo(const proto_jobinfo_t *job)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:o}",
                     "id", (json_int_t)job->id, "name", json_str_or_null(job->name),
                     "state", json_str_or_null(job->state), "outcome", json_str_or_null(job->outcome),
                     "reason", json_str_or_null(job->reason),
                     "device_type", json_str_or_null(job->device_type),
                     "device", json_str_or_null(job->device), "worker", json_str_or_null(job->worker),
                     "priority", (int)job->priority, "submitted_ms", json_ms_or_null(job->submitted),
                     "started_ms", json_ms_or_null(job->started), "ended_ms", json_ms_or_null(job->ended));
}

json_t *rr_json_workerinfo(const proto_workerinfo_t *worker)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:I, s:i}", "name", json_str_or_null(worker->name),
                     "rack", json_str_or_null(worker->rack), "state", json_str_or_null(worker->state),
                     "version", json_str_or_null(worker->version),
                     "heartbeat_age_ms", (json_int_t)worker->heartbeat_age_ms,
                     "devices", (int)worker->device_count);
}

json_t *rr_json_deviceinfo(const proto_deviceinfo_t *device)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "name", json_str_or_null(device->name),
                     "worker", json_str_or_null(device->worker), "type", json_str_or_null(device->type),
                     "tags", json_strings(device->tags, device->tags_count),
                     "state", json_str_or_null(device->state), "reason", json_str_or_null(device->reason),
                     "job", device->job ? json_integer((json_int_t)device->job) : json_null());
}

/* Console bytes need not be UTF-8 (a garbled baud rate, binary output). */
static int json_set_data(json_t *obj, const uint8_t *data, size_t len)
{
    json_t *text = json_stringn((const char *)data, len);
    if (text)
        return json_object_set_new(obj, "data", text);
    zarmour_t *armour = zarmour_new();
    char *b64 = armour ? zarmour_encode(armour, data, len) : NULL;
    int rc = b64 ? json_object_set_new(obj, "data_base64", json_string(b64)) : -1;
    zstr_free(&b64);
    zarmour_destroy(&armour);
    return rc;
}

json_t *rr_json_event(const proto_job_event_t *ev)
{
    json_t *obj = json_pack("{s:I, s:I, s:I, s:o}", "job", (json_int_t)ev->job, "seq", (json_int_t)ev->seq,
                            "ts_ms", (json_int_t)ev->ts, "kind", json_str_or_null(ev->kind));
    if (!obj)
        return NULL;
    const struct { const char *key; const char *value; } strs[] = {
        { "name", ev->name }, { "value", ev->value }, { "reason", ev->reason },
        { "measurement", ev->measurement }, { "units", ev->units },
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (strs[i].value)
            json_object_set_new(obj, strs[i].key, json_str_or_null(strs[i].value));
    if (ev->code || strcmp(ev->kind, "result") == 0)
        json_object_set_new(obj, "code", json_integer(ev->code));
    if (ev->since)
        json_object_set_new(obj, "since_ms", json_integer((json_int_t)ev->since));
    if (ev->data && json_set_data(obj, ev->data, ev->data_len) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

int rr_json_print(json_t *value, FILE *out)
{
    if (!value)
        return -1;
    int rc = json_dumpf(value, out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(value);
    if (rc == 0)
        fputc('\n', out);
    return rc;
}
