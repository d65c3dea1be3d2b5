/* format.h: how the CLI shows things to people (tables, times, ages, event
 * lines) and to programs (--json: proto/json.h objects printed via jansson).
 *
 * Every string that came from the master (names, reasons, test output in
 * result names) goes through rr_fmt_sanitize before it reaches a terminal,
 * so a job cannot put escape sequences into an operator's table. */
#ifndef RACKRUN_CLI_FORMAT_H
#define RACKRUN_CLI_FORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto.h"

/* A heartbeat age: "0.4s", "12.0s" under a minute, else "5m30s" (units.h). */
char *rr_fmt_age(uint64_t ms, char *buf, size_t len);

/* Wall-clock time of day (local), "12:00:03.120". */
char *rr_fmt_clock(uint64_t wall_ms, char *buf, size_t len);

/* Local date and time, "2026-11-25 12:00:03", or "-" for 0 (not yet). */
char *rr_fmt_datetime(uint64_t wall_ms, char *buf, size_t len);

/* Copy TEXT (NULL = "-") into BUF with control characters replaced by '?'. */
char *rr_fmt_sanitize(const char *text, char *buf, size_t len);

/* One structured job event as a readable line without newline, e.g.
 * "[12:00:03.120] action boot start", "[12:00:04.000] result uname pass (exit 0)",
 * "[console gap 3.2 s: bmc lost]", "[12:00:09.000] end complete". Log events
 * are not lines (their bytes go out raw): returns NULL for them. */
char *rr_fmt_event(const proto_job_event_t *ev, char *buf, size_t len);

/* ---- tables: columns padded to the widest cell, the last one not padded ---- */

typedef struct _rr_table_t rr_table_t;

/* A table with COLUMNS columns named by HEADERS (upper case by convention). */
rr_table_t *rr_table_new(size_t columns, const char *const *headers);

/* Destroy the table and NULL *SELF. */
void rr_table_destroy(rr_table_t **self);

/* Append a row of exactly the table's column count (cells are copied, sanitized). */
int rr_table_add(rr_table_t *self, const char *const *cells);

/* Write the header and rows to OUT. */
void rr_table_print(const rr_table_t *self, FILE *out);

/* ---- JSON (jansson): the objects are proto/json.h's (proto_json_jobinfo, ...),
 * the same keys the master's HTTP API serves ---- */

/* Write VALUE as one line of JSON to OUT and release it. Returns 0 or -1. */
int rr_json_print(json_t *value, FILE *out);

#endif
