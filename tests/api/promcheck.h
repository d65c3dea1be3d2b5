/* promcheck.h: a strict checker of the Prometheus text exposition format
 * (0.0.4), for tests of /metrics. Beyond the line grammar it demands what a
 * careful exporter does: a TYPE line before a family's first sample, each
 * family's samples together, no duplicate series, counters >= 0 and named
 * *_total, and histograms whose buckets rise with le, are cumulative, end
 * with le="+Inf" and agree with _count, with a _sum. */
#ifndef RR_TEST_PROMCHECK_H
#define RR_TEST_PROMCHECK_H

#include <stddef.h>

/* 0 when TEXT is valid; else -1 with "line N: what" in ERR. */
int promcheck(const char *text, char *err, size_t errlen);

/* The value of the sample written exactly as SERIES ("name{a=\"b\"}") in
 * TEXT, or -1 when absent (tests read gauges with it). */
double promcheck_value(const char *text, const char *series);

#endif
