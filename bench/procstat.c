/* procstat.c: RSS and CPU time of a process from /proc (procstat.h). */
#include "procstat.h"

#include <dirent.h>
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

/* User + system CPU seconds from a stat file of /proc (a process or a task), or -1. */
static double s_stat_cpu_s(const char *path)
{
    char buf[1024];
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

double procstat_cpu_s(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
    return s_stat_cpu_s(path);
}

double procstat_threads_cpu_s(pid_t pid, const char *comm)
{
    char path[320];
    snprintf(path, sizeof path, "/proc/%d/task", (int) pid);
    DIR *tasks = opendir(path);
    if (!tasks)
        return -1;
    double total = 0;
    struct dirent *task;
    while ((task = readdir(tasks)) && total >= 0) {
        if (task->d_name[0] == '.')
            continue;
        char name[64] = "";
        snprintf(path, sizeof path, "/proc/%d/task/%s/comm", (int) pid, task->d_name);
        FILE *file = fopen(path, "r");
        if (!file)
            continue;                   /* the thread ended meanwhile */
        if (fgets(name, sizeof name, file))
            name[strcspn(name, "\n")] = '\0';
        fclose(file);
        if (strcmp(name, comm) != 0)
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%s/stat", (int) pid, task->d_name);
        double cpu = s_stat_cpu_s(path);
        total = cpu < 0 ? -1 : total + cpu;
    }
    closedir(tasks);
    return total;
}
