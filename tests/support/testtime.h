/* testtime.h: the monotonic clock in milliseconds and naps, for the
 * deadlines of tests and their harnesses. Part of rr_testsupport. */
#ifndef RR_TEST_TESTTIME_H
#define RR_TEST_TESTTIME_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds. */
int64_t testtime_now_ms(void);

/* Sleep MS milliseconds (whole, also across signals). */
void testtime_nap_ms(long ms);

#endif
