/* log.h: leveled logging to stderr (journald picks it up), one line per event:
 * "2026-11-25T17:53:41.123Z master INFO job 42: started on calxeda02-01". */
#ifndef RACKRUN_LOG_H
#define RACKRUN_LOG_H

typedef enum { RR_LOG_ERROR = 0, RR_LOG_WARN, RR_LOG_INFO, RR_LOG_DEBUG } rr_log_level_t;

/* Set the program name shown on each line and the most verbose level printed. */
void rr_log_init(const char *ident, rr_log_level_t level);

/* Parse "error" | "warn" | "info" | "debug"; returns -1 for anything else. */
int rr_log_level_parse(const char *text, rr_log_level_t *level);

/* Log one line (a trailing newline is added). Thread-safe. */
void rr_log(rr_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define rr_error(...) rr_log(RR_LOG_ERROR, __VA_ARGS__)
#define rr_warn(...)  rr_log(RR_LOG_WARN, __VA_ARGS__)
#define rr_info(...)  rr_log(RR_LOG_INFO, __VA_ARGS__)
#define rr_debug(...) rr_log(RR_LOG_DEBUG, __VA_ARGS__)

#endif
