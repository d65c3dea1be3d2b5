/* report.c: RESULT lines and table rows of the benchmarks (report.h). */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void s_print(const char *name, double value, const char *unit, const char *target,
                    const char *status)
{
    printf("RESULT %s %.6g %s\n", name, value, unit);
    printf("ROW %s %.6g %s %s %s\n", name, value, unit, target, status);
    fflush(stdout);
}

void bench_info(const char *name, double value, const char *unit)
{
    s_print(name, value, unit, "-", "info");
}

bool bench_result(const char *name, double value, const char *unit, const char *op,
                  double target)
{
    bool ok = false;
    if (strcmp(op, ">=") == 0)
        ok = value >= target;
    else if (strcmp(op, ">") == 0)
        ok = value > target;
    else if (strcmp(op, "<=") == 0)
        ok = value <= target;
    else if (strcmp(op, "<") == 0)
        ok = value < target;
    char text[64];
    snprintf(text, sizeof text, "%s%g", op, target);
    s_print(name, value, unit, text, ok ? "ok" : "MISSED");
    return ok;
}

bool bench_result_within(const char *name, double value, const char *unit, double lo, double hi)
{
    bool ok = value >= lo && value <= hi;
    char text[64];
    snprintf(text, sizeof text, "%g..%g", lo, hi);
    s_print(name, value, unit, text, ok ? "ok" : "MISSED");
    return ok;
}

void bench_note(const char *fmt, ...)
{
    char text[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    printf("NOTE %s\n", text);
    fflush(stdout);
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

double bench_percentile(double *samples, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(samples, n, sizeof *samples, s_cmp_double);
    size_t rank = (size_t) (p / 100.0 * (double) (n - 1) + 0.5);
    return samples[rank < n ? rank : n - 1];
}

double bench_median(double *values, size_t n)
{
    return bench_percentile(values, n, 50);
}

bool bench_smoke(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--smoke") == 0)
            return true;
    return false;
}
