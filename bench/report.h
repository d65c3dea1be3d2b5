/* report.h: how a benchmark states its figures.
 *
 * Each figure is printed twice on stdout: the machine-readable line
 * `RESULT <name> <value> <unit>`, and a table row
 * `ROW <name> <value> <unit> <target> ok|MISSED|info` that bench/run.sh
 * gathers into the final table. A missed target is printed like any other
 * row: nothing is hidden or retried. Notes (`NOTE ...`) explain a scale-down
 * or an anomaly and are repeated under the table. */
#ifndef RACKRUN_BENCH_REPORT_H
#define RACKRUN_BENCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>

/* Print a figure with no target (info). */
void bench_info(const char *name, double value, const char *unit);

/* Print a figure and compare it with TARGET using OP (">=", ">", "<=", "<").
 * Returns true when the target is met. */
bool bench_result(const char *name, double value, const char *unit, const char *op,
                  double target);

/* Print a figure that must lie within [LO, HI]. Returns true when it does. */
bool bench_result_within(const char *name, double value, const char *unit, double lo, double hi);

/* Print a note (printf format) for the table's footer. */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Seconds on CLOCK_MONOTONIC, as a double. */
double bench_now(void);

/* The P-th percentile (0..100) of N samples; sorts SAMPLES in place. 0 when N is 0. */
double bench_percentile(double *samples, size_t n, double p);

/* Median of N values (sorts in place). */
double bench_median(double *values, size_t n);

/* True when ARGV holds "--smoke" (tiny sizes: seconds, for the test suite). */
bool bench_smoke(int argc, char **argv);

#endif
