/* scanner.h: reads a job's console output for what the runner waits on.
 *
 * Fed every byte the node prints (chunks of any size), it finds:
 *  - a shell prompt (any of the armed needles, anywhere in the output since
 *    it was armed, even without a newline after it);
 *  - the end marker of a test step: the runner types
 *    `echo RR_END_$((6*7))_<token>:$?`, and only the shell's output can hold
 *    "RR_END_42_<token>:<code>" (the echo of the typed text holds "$((6*7))");
 *  - result lines printed by a test, "RR_RESULT name=N result=pass|fail|skip
 *    [measurement=M units=U]" at the start of a line, passed to a callback.
 * Lines are split at '\n' ('\r' dropped); a line longer than the line buffer
 * is cut, its tail ignored for matching only. The scanner never alters or
 * holds back output: logging is the caller's business. */
#ifndef RACKRUN_SCANNER_H
#define RACKRUN_SCANNER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct _rr_scanner_t rr_scanner_t;

/* One RR_RESULT line, valid during the callback. */
typedef struct {
    const char *name;
    const char *result;       /* pass | fail | skip */
    const char *measurement;  /* NULL when absent */
    const char *units;        /* NULL when absent */
} rr_scan_result_t;

typedef void (rr_scan_result_fn)(void *arg, const rr_scan_result_t *result);

/* New scanner; ON_RESULT (may be NULL) gets each RR_RESULT line. */
rr_scanner_t *rr_scanner_new(rr_scan_result_fn *on_result, void *arg);

/* Free; NULLs *SELF. */
void rr_scanner_destroy(rr_scanner_t **self);

/* Look for any of PROMPTS (copied) in output fed from now on. */
int rr_scanner_arm_prompt(rr_scanner_t *self, const char *const *prompts, size_t count);

/* Look for the end marker of TOKEN (copied) in output fed from now on. */
int rr_scanner_arm_marker(rr_scanner_t *self, const char *token);

/* Feed console output. */
void rr_scanner_feed(rr_scanner_t *self, const char *data, size_t len);

/* Index of the armed prompt seen since arming, or -1 (not yet). */
int rr_scanner_prompt(const rr_scanner_t *self);

/* True once the armed marker was seen; its exit code in *CODE. */
bool rr_scanner_marker(const rr_scanner_t *self, int *code);

/* The marker command to type for TOKEN (without newline) into BUF. */
void rr_scanner_marker_command(const char *token, char *buf, size_t len);

#endif
