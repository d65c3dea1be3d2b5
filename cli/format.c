/* format.c: tables, times, event lines and JSON for the CLI (see format.h). */
#include "format.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "units.h"
#include "grow.h"

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
    char **cells = rr_grow(self->cells, self->rows, &self->capacity,
                           self->columns * sizeof *cells, 16);     /* a row of cells each */
    if (!cells)
        return -1;
    self->cells = cells;
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

/* ---- JSON: the objects come from proto/json.h, one spelling for CLI and HTTP API ---- */

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
