/* log.c: leveled, thread-safe logging to stderr, one line per event:
 * "2026-11-25T17:53:41.123Z master INFO job 42: started on calxeda02-01".
 *
 * Each line is formatted into a local buffer and written with one write(2)
 * under a mutex, so lines from different threads (device actors) never
 * interleave. Control characters in the message are escaped (\n, \x1b): text
 * from a node's console must not forge log lines or drive the terminal. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_IDENT_MAX 32

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_ident[LOG_IDENT_MAX];
static atomic_int log_level = RR_LOG_INFO; /* read without the lock: a filter */

static const char *const level_names[] = {
    [RR_LOG_ERROR] = "ERROR", [RR_LOG_WARN] = "WARN", [RR_LOG_INFO] = "INFO",
    [RR_LOG_DEBUG] = "DEBUG",
};

void rr_log_init(const char *ident, rr_log_level_t level)
{
    pthread_mutex_lock(&log_lock);
    snprintf(log_ident, sizeof log_ident, "%s", ident ? ident : "");
    atomic_store(&log_level, (int)level);
    pthread_mutex_unlock(&log_lock);
}

int rr_log_level_parse(const char *text, rr_log_level_t *level)
{
    if (!text)
        return -1;
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
        if (strcasecmp(text, level_names[i]) == 0) {
            *level = (rr_log_level_t)i;
            return 0;
        }
    return -1;
}

/* "2026-11-25T17:53:41.123Z" into BUF (at least 25 bytes). */
static void format_timestamp(char *buf, size_t len)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", now.tv_nsec / 1000000);
}

/* Copy SRC into DST (capacity CAP, DST has N bytes), escaping control
 * characters; returns the new length. Stops early rather than split an escape. */
static size_t append_escaped(char *dst, size_t n, size_t cap, const char *src)
{
    for (; *src && n + 5 < cap; src++) {
        unsigned char c = (unsigned char)*src;
        if (c == '\n')
            n += (size_t)snprintf(dst + n, cap - n, "\\n");
        else if (c == '\r')
            n += (size_t)snprintf(dst + n, cap - n, "\\r");
        else if (c == '\t')
            dst[n++] = ' ';
        else if (c < 0x20 || c == 0x7f)
            n += (size_t)snprintf(dst + n, cap - n, "\\x%02x", c);
        else
            dst[n++] = (char)c;
    }
    return n;
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

void rr_log(rr_log_level_t level, const char *fmt, ...)
{
    if ((unsigned)level > RR_LOG_DEBUG)
        level = RR_LOG_DEBUG;
    if ((int)level > atomic_load(&log_level))
        return;
    char message[LOG_LINE_MAX];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);

    char stamp[40];
    format_timestamp(stamp, sizeof stamp);

    pthread_mutex_lock(&log_lock);
    char line[LOG_LINE_MAX + 96];
    const char *ident = log_ident[0] ? log_ident : program_invocation_short_name;
    size_t n = (size_t)snprintf(line, sizeof line, "%s %s %s ", stamp, ident,
                                level_names[level]);
    n = append_escaped(line, n, sizeof line - 1, message);
    line[n++] = '\n';
    write_all(line, n);
    pthread_mutex_unlock(&log_lock);
}
