/* units.h: durations, sizes and clocks as operators write and read them. */
#ifndef RACKRUN_UNITS_H
#define RACKRUN_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Parse a duration: "300" (seconds), "250ms", "30s", "10m", "2h", "1d".
 * Stores milliseconds in *MS. Returns 0, or -1 with a message naming TEXT in ERR. */
int rr_duration_parse(const char *text, uint64_t *ms, char *err, size_t errlen);

/* Parse a size: "512", "4K", "10M", "2G" (binary multiples, optional "iB"/"B").
 * Returns 0, or -1 with a message naming TEXT in ERR. */
int rr_size_parse(const char *text, uint64_t *bytes, char *err, size_t errlen);

/* Format MS as "1h02m", "5m30s", "4.2s", "120ms" into BUF; returns BUF. */
char *rr_duration_format(uint64_t ms, char *buf, size_t len);

/* Milliseconds since the Unix epoch (wall clock, for records). */
uint64_t rr_wall_ms(void);

/* Milliseconds of CLOCK_MONOTONIC (for timeouts and intervals). */
uint64_t rr_mono_ms(void);

/* Nanoseconds of CLOCK_MONOTONIC (for pacing finer than a millisecond). */
uint64_t rr_mono_ns(void);

#endif
