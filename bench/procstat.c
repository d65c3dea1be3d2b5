/* procstat.c: RSS and CPU time of a process from /proc (procstat.h). */
#include "procstat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long s_status_kb(pid_t pid, const char *key)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen(path, "r");
    if (!file)
        return -1;
    char line[256];
    long kb = -1;
    size_t key_len = strlen(key);
    while (fgets(line, sizeof line, file))
        if (strncmp(line, key, key_len) == 0 && line[key_len] == ':') {
            kb = strtol(line + key_len + 1, NULL, 10);
            break;
        }
    fclose(file);
    return kb;
}

long procstat_rss_kb(pid_t pid)
{
    return s_status_kb(pid, "VmRSS");
}

long procstat_peak_rss_kb(pid_t pid)
{
    return s_status_kb(pid, "VmHWM");
}

double procstat_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *file = fopen(path, "r");
    if (!file)
        return -1;
    size_t len = fread(buf, 1, sizeof buf - 1, file);
    fclose(file);
    buf[len] = '\0';
    /* Fields after the command name, which may hold spaces: start past the last ')'. */
    char *rest = strrchr(buf, ')');
    if (!rest)
        return -1;
    unsigned long utime = 0, stime = 0;
    /* state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
    if (sscanf(rest + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime)
        != 2)
        return -1;
    return (double) (utime + stime) / (double) sysconf(_SC_CLK_TCK);
}
