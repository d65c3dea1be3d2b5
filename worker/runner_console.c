/* runner_console.c: a running job's console and event stream: every console
 * byte masked into `log` events and the scanner, output due after power on or
 * typing, SOL lost and reopened as `console_gap`, paced typing, the runner's
 * STOP polling. The actions (runner.c) use it through runner_internal.h. */
#include "runner_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "units.h"

#define SOL_REOPEN_TRIES         3u     /* at least, even past the action's deadline */
#define SOL_REOPEN_BACKOFF_MS    1000u
#define SOL_REOPEN_BACKOFF_MAX_MS 8000u
#define SILENT_MIN_MS            3000u  /* output due (power on, typing) within this at least */
#define READS_PER_TURN           64     /* bounds one drain so STOP is still polled */

/* ---- events ---- */

/* Out with EV, every string in it masked (log data is masked as it arrives). */
void runner_emit(runner_t *r, proto_job_event_t *ev)
{
    ev->job = r->ctx->job;
    ev->ts = rr_wall_ms();
    proto_job_event_t masked = *ev;
    char **fields[] = { &masked.name, &masked.value, &masked.reason, &masked.measurement,
                        &masked.units };
    char *owned[sizeof fields / sizeof fields[0]] = { 0 };
    for (size_t i = 0; r->mask && i < sizeof fields / sizeof fields[0]; i++) {
        int rc = rr_mask_string(r->mask, *fields[i], &owned[i]);
        if (rc != 0)    /* masked, or no memory to mask: then no text at all */
            *fields[i] = rc > 0 ? owned[i] : RR_MASK_TEXT;
    }
    r->ctx->emit(r->ctx->arg, &masked);
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        free(owned[i]);
}

void runner_log_flush(runner_t *r)
{
    if (!r->log_len)
        return;
    proto_job_event_t ev = { .kind = "log", .data = (uint8_t *)r->log, .data_len = r->log_len };
    runner_emit(r, &ev);
    r->log_len = 0;
}

static void log_flush_if_due(runner_t *r)
{
    if (r->log_len && rr_mono_ms() - r->log_since >= RR_RUNNER_FLUSH_MS)
        runner_log_flush(r);
}

void runner_emit_action(runner_t *r, const char *kind, const char *value, const char *reason,
                        int64_t duration_ms)
{
    proto_job_event_t ev = { .kind = "action", .name = (char *)kind, .value = (char *)value,
                             .reason = (char *)reason, .code = duration_ms };
    runner_emit(r, &ev);
}

void runner_emit_result(runner_t *r, const char *name, const char *value, int64_t code,
                        const char *reason, const char *measurement, const char *units)
{
    runner_log_flush(r);   /* the result follows the output that produced it */
    proto_job_event_t ev = { .kind = "result", .name = (char *)name, .value = (char *)value,
                             .code = code, .reason = (char *)reason,
                             .measurement = (char *)measurement, .units = (char *)units };
    runner_emit(r, &ev);
}

void runner_on_result_line(void *arg, const rr_scan_result_t *res)
{
    runner_emit_result(arg, res->name, res->result, 0, NULL, res->measurement, res->units);
}

/* Keep the last CAPTURE_MAX bytes of console output. */
static void capture_append(runner_t *r, const char *data, size_t len)
{
    if (len >= CAPTURE_MAX) {
        data += len - CAPTURE_MAX;
        len = CAPTURE_MAX;
    }
    if (r->capture_len + len > CAPTURE_MAX) {
        size_t drop = r->capture_len + len - CAPTURE_MAX;
        memmove(r->capture, r->capture + drop, r->capture_len - drop);
        r->capture_len -= drop;
    }
    memcpy(r->capture + r->capture_len, data, len);
    r->capture_len += len;
}

/* Masked console bytes into the log buffer. */
void runner_log_append(void *arg, const char *data, size_t len)
{
    runner_t *r = arg;
    const char *p = data;
    size_t left = len;
    while (left) {
        if (!r->log_len)
            r->log_since = rr_mono_ms();
        size_t n = PROTO_LOG_CHUNK - r->log_len;
        if (n > left)
            n = left;
        memcpy(r->log + r->log_len, p, n);
        r->log_len += n;
        p += n;
        left -= n;
        if (r->log_len == PROTO_LOG_CHUNK)
            runner_log_flush(r);
    }
}

/* Every console byte: into the log (exact but for masked secrets) and the scanner. */
static void console_sink(void *arg, const char *data, size_t len)
{
    runner_t *r = arg;
    r->last_rx_wall = rr_wall_ms();
    r->last_rx_mono = rr_mono_ms();
    r->rx_bytes += len;
    if (r->rx_bytes >= r->echo_due)
        r->expect_by = 0;
    rr_mask_feed(r->mask, data, len, runner_log_append, r);
    rr_scanner_feed(r->scan, data, len);
    if (r->capturing)
        capture_append(r, data, len);
    log_flush_if_due(r);
}

/* ---- console ---- */

const char *runner_bmc_name(const runner_t *r)
{
    return r->ctx->ipmi ? rr_ipmi_target(r->ctx->ipmi) : r->ctx->device->bmc_host;
}

bool runner_stop_requested(runner_t *r)
{
    if (!r->stop_reason)
        r->stop_reason = r->ctx->stop(r->ctx->arg);
    return r->stop_reason != NULL;
}

/* Sleep MS in short slices, polling STOP. Returns false when stopped. */
static bool nap(runner_t *r, uint64_t ms)
{
    uint64_t until = rr_mono_ms() + ms;
    while (rr_mono_ms() < until) {
        if (runner_stop_requested(r))
            return false;
        poll(NULL, 0, RR_RUNNER_FLUSH_MS);
    }
    return true;
}

/* Where a console gap starts: the last byte received proves the console was
 * up until then; nothing later is known to have arrived. */
static uint64_t gap_start(const runner_t *r)
{
    uint64_t now = rr_wall_ms();
    uint64_t known = r->last_rx_wall ? r->last_rx_wall : r->started_wall;
    return known && known <= now ? known : now;
}

/* SOL is down: reopen with bounded backoff until the action's deadline (at
 * least SOL_REOPEN_TRIES times), recording the hole as console_gap. */
int runner_console_recover(runner_t *r, const char *cause)
{
    uint64_t since = gap_start(r), started = rr_mono_ms();
    uint64_t deadline = r->action_deadline && r->action_deadline < r->job_deadline
                      ? r->action_deadline : r->job_deadline;
    char err[512] = "";
    uint64_t delay = SOL_REOPEN_BACKOFF_MS;
    unsigned tries = 0;
    runner_log_flush(r);
    rr_warn("job %" PRIu64 ": sol bmc %s: %s; reconnecting", r->ctx->job, runner_bmc_name(r), cause);
    while (tries < SOL_REOPEN_TRIES || rr_mono_ms() < deadline) {
        if (tries && !nap(r, delay))
            return -1;
        delay = delay * 2 > SOL_REOPEN_BACKOFF_MAX_MS ? SOL_REOPEN_BACKOFF_MAX_MS : delay * 2;
        tries++;
        if (r->ctx->reopen(r->ctx->arg, r->ctx->sol, err, sizeof err) == 0) {
            char why[700];
            snprintf(why, sizeof why, "sol bmc %s: %s; reopened", runner_bmc_name(r), cause);
            proto_job_event_t ev = { .kind = "console_gap", .since = since, .reason = why };
            runner_emit(r, &ev);
            r->gaps++;
            rr_info("job %" PRIu64 ": sol bmc %s: reconnected after %u tries: console gap of "
                    "%" PRIu64 " ms recorded", r->ctx->job, runner_bmc_name(r), tries,
                    rr_wall_ms() - since);
            return 0;
        }
    }
    snprintf(r->reason, sizeof r->reason, "sol bmc %s: %s; reopen failed for %" PRIu64
             " s (%u tries): %s", runner_bmc_name(r), cause, (rr_mono_ms() - started) / 1000, tries,
             err);
    rr_warn("job %" PRIu64 ": %s", r->ctx->job, r->reason);
    return -1;
}

/* How long due output may take before the console counts as silent. */
uint32_t runner_silent_ms(const runner_t *r)
{
    uint32_t ms = r->ctx->device->sol_timeout_ms ? r->ctx->device->sol_timeout_ms : 10000;
    return ms < SILENT_MIN_MS ? SILENT_MIN_MS : ms;
}

/* Output was due (power on, the echo of typed text) and none came: the
 * session may be up yet relay nothing (stock ipmi_sim after a session died
 * mid-output or was deactivated from outside; real BMCs do it too). The
 * first time in a job: reopen the session (a console_gap) and, while booting,
 * power-cycle the node so that output is due again; while typing, the node
 * may have got part of the input, so the step cannot be trusted: the job
 * ends (an infrastructure failure, not a test result). The second time: the
 * job cannot go on. */
static int console_silent(runner_t *r)
{
    char cause[200];
    snprintf(cause, sizeof cause, "silent: no output for %" PRIu32 " ms while output was due",
             runner_silent_ms(r));
    r->expect_by = 0;
    if (r->silences++ > 0) {
        char why[700];
        snprintf(why, sizeof why, "sol bmc %s: %s, also after reopening the session",
                 runner_bmc_name(r), cause);
        proto_job_event_t ev = { .kind = "console_gap", .since = gap_start(r), .reason = why };
        runner_log_flush(r);
        runner_emit(r, &ev);
        r->gaps++;
        snprintf(r->reason, sizeof r->reason, "sol bmc %s: console silent: no output for %"
                 PRIu32 " ms while output was due, also after reopening the session%s",
                 runner_bmc_name(r), runner_silent_ms(r), r->booting ? " and a power cycle" : "");
        rr_warn("job %" PRIu64 ": %s", r->ctx->job, r->reason);
        return -1;
    }
    rr_sol_destroy(r->ctx->sol);
    if (runner_console_recover(r, cause) < 0)
        return -1;
    if (r->booting && r->ctx->ipmi) {
        if (rr_ipmi_power(r->ctx->ipmi, RR_POWER_OFF) < 0
            || rr_ipmi_power(r->ctx->ipmi, RR_POWER_ON) < 0) {
            snprintf(r->reason, sizeof r->reason, "boot: %s", rr_ipmi_error(r->ctx->ipmi));
            return -1;
        }
        r->echo_due = r->rx_bytes + 1;
        r->expect_by = rr_mono_ms() + runner_silent_ms(r);
        return 0;
    }
    snprintf(r->reason, sizeof r->reason, "sol bmc %s: console silent while typing (no echo "
             "for %" PRIu32 " ms); session reopened, but the node may have lost part of the "
             "input", runner_bmc_name(r), runner_silent_ms(r));
    rr_warn("job %" PRIu64 ": %s", r->ctx->job, r->reason);
    return -1;
}

/* Read what is waiting. Returns 0, or -1 when the session was lost. */
int runner_console_drain(runner_t *r)
{
    char buf[4096];
    for (int i = 0; i < READS_PER_TURN; i++) {
        ssize_t n = rr_sol_read(*r->ctx->sol, buf, sizeof buf);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        console_sink(r, buf, (size_t)n);
    }
    return 0;
}


/* Read the console until DONE, the DEADLINE (or the job's), STOP or loss. */
wait_status_t runner_console_wait(runner_t *r, done_fn *done, uint64_t deadline)
{
    if (deadline > r->job_deadline)
        deadline = r->job_deadline;
    for (;;) {
        if (done(r))
            return W_OK;
        if (runner_stop_requested(r))
            return W_STOP;
        uint64_t now = rr_mono_ms();
        if (now >= deadline)
            return W_TIMEOUT;
        if (!*r->ctx->sol && runner_console_recover(r, "console down") < 0)
            return r->stop_reason ? W_STOP : W_LOST;
        if (r->expect_by && now >= r->expect_by && console_silent(r) < 0)
            return r->stop_reason ? W_STOP : W_LOST;
        if (!*r->ctx->sol)
            continue;
        uint64_t left = deadline - now;
        struct pollfd pfd = { .fd = rr_sol_fd(*r->ctx->sol), .events = POLLIN };
        int ms = left < RR_RUNNER_FLUSH_MS ? (int)left : (int)RR_RUNNER_FLUSH_MS;
        if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
            return W_LOST;
        if (runner_console_drain(r) < 0) {
            char cause[512];
            snprintf(cause, sizeof cause, "lost: %s", rr_sol_error(*r->ctx->sol));
            rr_sol_destroy(r->ctx->sol);
            if (runner_console_recover(r, cause) < 0)
                return r->stop_reason ? W_STOP : W_LOST;
        }
        log_flush_if_due(r);
    }
}

/* A long line at a slow pace takes long: type TEXT in slices of about
 * RR_RUNNER_FLUSH_MS, polling STOP between them (rr_sol_type paces after every
 * character, so slicing keeps the pace). Returns 0, or -1: stopped
 * (stop_reason set) or lost (reason set, the session closed). */
int runner_type_paced(runner_t *r, const char *text, uint32_t delay_ms)
{
    size_t len = strlen(text), slice = delay_ms ? RR_RUNNER_FLUSH_MS / delay_ms : len;
    if (!slice)
        slice = 1;
    for (size_t at = 0; at < len; at += slice) {
        size_t n = len - at < slice ? len - at : slice;
        if (runner_stop_requested(r))
            return -1;
        if (rr_sol_type(*r->ctx->sol, text + at, n, delay_ms, console_sink, r) < 0) {
            snprintf(r->reason, sizeof r->reason, "sol bmc %s: lost while typing: %s",
                     runner_bmc_name(r), rr_sol_error(*r->ctx->sol));
            rr_sol_destroy(r->ctx->sol);
            return -1;
        }
    }
    return 0;
}

/* Type TEXT paced by DELAY_MS per character; output meanwhile goes to the log. */
int runner_console_type(runner_t *r, const char *text, uint32_t delay_ms)
{
    if (!*r->ctx->sol && runner_console_recover(r, "console down") < 0)
        return -1;
    runner_log_flush(r);   /* typing may take a while: what is buffered goes now */
    /* its echo (at least a byte per character) is due: the console counts as
     * silent if it does not come, e.g. a BMC that dropped SOL mid-line */
    r->echo_due = r->rx_bytes + strlen(text);
    r->expect_by = rr_mono_ms() + runner_silent_ms(r) + (uint64_t)strlen(text) * delay_ms;
    if (runner_type_paced(r, text, delay_ms) < 0)
        return -1;
    if (r->rx_bytes < r->echo_due)      /* the echo is still on its way, or never comes */
        r->expect_by = rr_mono_ms() + runner_silent_ms(r);
    return 0;
}

