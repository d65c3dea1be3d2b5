/* procstat.h: what /proc says about another process (the master or worker
 * binary under test): resident memory and CPU time. Read from outside, so the
 * figures are the process's own and not the benchmark's. */
#ifndef RACKRUN_BENCH_PROCSTAT_H
#define RACKRUN_BENCH_PROCSTAT_H

#include <sys/types.h>

/* VmRSS of PID in KiB (from /proc/PID/status), or -1. */
long procstat_rss_kb(pid_t pid);

/* VmHWM (peak RSS) of PID in KiB, or -1. */
long procstat_peak_rss_kb(pid_t pid);

/* User + system CPU seconds PID has used (from /proc/PID/stat), or -1. */
double procstat_cpu_s(pid_t pid);

/* User + system CPU seconds of PID's threads named COMM (from
 * /proc/PID/task/TID/comm and stat), 0 when none is, or -1. */
double procstat_threads_cpu_s(pid_t pid, const char *comm);

#endif
