/* runner.c: one job's actions on one device (deploy tftp, boot, test), as events. */
#include "runner.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scanner.h"
#include "tftp.h"
#include "units.h"

#define DEFAULT_ACTION_TIMEOUT_S 600u
#define SOL_REOPEN_TRIES         3u
#define SOL_REOPEN_BACKOFF_MS    1000u
#define READS_PER_TURN           64     /* bounds one drain so STOP is still polled */

typedef enum { RUN_OK = 0, RUN_FAIL, RUN_STOP } run_status_t;
typedef enum { W_OK = 0, W_TIMEOUT, W_STOP, W_LOST } wait_status_t;

typedef struct {
    const rr_runner_ctx_t *ctx;
    rr_scanner_t *scan;
    char log[PROTO_LOG_CHUNK];
    size_t log_len;
    uint64_t log_since;          /* mono ms of the oldest byte buffered */
    uint64_t job_deadline;       /* mono ms */
    const char *stop_reason;
    char reason[1024];           /* why the job cannot complete */
} runner_t;

/* ---- events ---- */

static void emit(runner_t *r, proto_job_event_t *ev)
{
    ev->job = r->ctx->job;
    ev->ts = rr_wall_ms();
    r->ctx->emit(r->ctx->arg, ev);
}

static void log_flush(runner_t *r)
{
    if (!r->log_len)
        return;
    proto_job_event_t ev = { .kind = "log", .data = (uint8_t *)r->log, .data_len = r->log_len };
    emit(r, &ev);
    r->log_len = 0;
}

static void log_flush_if_due(runner_t *r)
{
    if (r->log_len && rr_mono_ms() - r->log_since >= RR_RUNNER_FLUSH_MS)
        log_flush(r);
}

static void emit_action(runner_t *r, const char *kind, const char *value, const char *reason,
                        int64_t duration_ms)
{
    proto_job_event_t ev = { .kind = "action", .name = (char *)kind, .value = (char *)value,
                             .reason = (char *)reason, .code = duration_ms };
    emit(r, &ev);
}

static void emit_result(runner_t *r, const char *name, const char *value, int64_t code,
                        const char *reason, const char *measurement, const char *units)
{
    log_flush(r);   /* the result follows the output that produced it */
    proto_job_event_t ev = { .kind = "result", .name = (char *)name, .value = (char *)value,
                             .code = code, .reason = (char *)reason,
                             .measurement = (char *)measurement, .units = (char *)units };
    emit(r, &ev);
}

static void on_result_line(void *arg, const rr_scan_result_t *res)
{
    emit_result(arg, res->name, res->result, 0, NULL, res->measurement, res->units);
}

/* Every console byte: into the log (exact) and the scanner. */
static void console_sink(void *arg, const char *data, size_t len)
{
    runner_t *r = arg;
    const char *p = data;
    size_t left = len;
    while (left) {
        if (!r->log_len)
            r->log_since = rr_mono_ms();
        size_t n = sizeof r->log - r->log_len;
        if (n > left)
            n = left;
        memcpy(r->log + r->log_len, p, n);
        r->log_len += n;
        p += n;
        left -= n;
        if (r->log_len == sizeof r->log)
            log_flush(r);
    }
    rr_scanner_feed(r->scan, data, len);
    log_flush_if_due(r);
}

/* ---- console ---- */

static const char *bmc_name(const runner_t *r)
{
    return r->ctx->ipmi ? rr_ipmi_target(r->ctx->ipmi) : r->ctx->device->bmc_host;
}

static bool stop_requested(runner_t *r)
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
        if (stop_requested(r))
            return false;
        poll(NULL, 0, RR_RUNNER_FLUSH_MS);
    }
    return true;
}

/* SOL is down: reopen with bounded backoff, recording the hole as console_gap. */
static int console_recover(runner_t *r, const char *cause)
{
    uint64_t since = rr_wall_ms();
    char err[512] = "";
    uint64_t delay = SOL_REOPEN_BACKOFF_MS;
    log_flush(r);
    for (unsigned i = 0; i < SOL_REOPEN_TRIES; i++) {
        if (i && !nap(r, delay))
            return -1;
        delay *= 2;
        if (r->ctx->reopen(r->ctx->arg, r->ctx->sol, err, sizeof err) == 0) {
            char why[700];
            snprintf(why, sizeof why, "sol bmc %s: %s; reopened", bmc_name(r), cause);
            proto_job_event_t ev = { .kind = "console_gap", .since = since, .reason = why };
            emit(r, &ev);
            return 0;
        }
    }
    snprintf(r->reason, sizeof r->reason, "sol bmc %s: %s; reopen failed after %u tries: %s",
             bmc_name(r), cause, SOL_REOPEN_TRIES, err);
    return -1;
}

/* Read what is waiting. Returns 0, or -1 when the session was lost. */
static int console_drain(runner_t *r)
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

typedef bool (done_fn)(const runner_t *r);

/* Read the console until DONE, the DEADLINE (or the job's), STOP or loss. */
static wait_status_t console_wait(runner_t *r, done_fn *done, uint64_t deadline)
{
    if (deadline > r->job_deadline)
        deadline = r->job_deadline;
    for (;;) {
        if (done(r))
            return W_OK;
        if (stop_requested(r))
            return W_STOP;
        uint64_t now = rr_mono_ms();
        if (now >= deadline)
            return W_TIMEOUT;
        if (!*r->ctx->sol && console_recover(r, "console down") < 0)
            return r->stop_reason ? W_STOP : W_LOST;
        uint64_t left = deadline - now;
        struct pollfd pfd = { .fd = rr_sol_fd(*r->ctx->sol), .events = POLLIN };
        int ms = left < RR_RUNNER_FLUSH_MS ? (int)left : (int)RR_RUNNER_FLUSH_MS;
        if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
            return W_LOST;
        if (console_drain(r) < 0) {
            char cause[512];
            snprintf(cause, sizeof cause, "lost: %s", rr_sol_error(*r->ctx->sol));
            rr_sol_destroy(r->ctx->sol);
            if (console_recover(r, cause) < 0)
                return r->stop_reason ? W_STOP : W_LOST;
        }
        log_flush_if_due(r);
    }
}

/* Type TEXT paced by DELAY_MS per character; output meanwhile goes to the log. */
static int console_type(runner_t *r, const char *text, uint32_t delay_ms)
{
    if (!*r->ctx->sol && console_recover(r, "console down") < 0)
        return -1;
    log_flush(r);   /* typing may take a while: what is buffered goes now */
    if (rr_sol_type(*r->ctx->sol, text, strlen(text), delay_ms, console_sink, r) < 0) {
        snprintf(r->reason, sizeof r->reason, "sol bmc %s: lost while typing: %s",
                 bmc_name(r), rr_sol_error(*r->ctx->sol));
        rr_sol_destroy(r->ctx->sol);
        return -1;
    }
    return 0;
}

/* ---- actions ---- */

static uint32_t action_timeout_s(const runner_t *r, const proto_action_t *a)
{
    if (a->timeout_s)
        return a->timeout_s;
    return r->ctx->def->action_timeout_s ? r->ctx->def->action_timeout_s
                                         : DEFAULT_ACTION_TIMEOUT_S;
}

static bool download_abort(void *arg)
{
    return stop_requested(arg);
}

static const char *artifact_path(const runner_t *r, const proto_action_t *a, const char *role,
                                 char *buf, size_t len)
{
    for (size_t i = 0; i < a->artifacts_count; i++) {
        if (!strcmp(a->artifacts[i].role, role)) {
            snprintf(buf, len, "files/%s/%s", r->ctx->device->name, role);
            return buf;
        }
    }
    return NULL;
}

static run_status_t run_deploy(runner_t *r, const proto_action_t *a)
{
    const rr_runner_ctx_t *ctx = r->ctx;
    char dir[512], err[900];
    if (a->to && strcmp(a->to, "tftp")) {
        snprintf(r->reason, sizeof r->reason, "deploy: to '%s' is not supported by this worker", a->to);
        return RUN_FAIL;
    }
    snprintf(dir, sizeof dir, "files/%s", ctx->device->name);
    if (rr_tftp_mkdirs(ctx->tftp_root, dir, err, sizeof err) < 0)
        goto fail;
    rr_download_opts_t opts = { .timeout_s = action_timeout_s(r, a), .abort = download_abort,
                                .abort_arg = r };
    for (size_t i = 0; i < a->artifacts_count; i++) {
        const proto_artifact_t *art = &a->artifacts[i];
        char rel[600], path[4200];
        snprintf(rel, sizeof rel, "%s/%s", dir, art->role);
        if (rr_tftp_path(ctx->tftp_root, rel, path, sizeof path, err, sizeof err) < 0)
            goto fail;
        if (rr_tftp_download(art->url, path, art->sha256, &opts, NULL, NULL, err, sizeof err) < 0)
            goto fail;
    }
    char kernel[600], initrd[600], fdt[600];
    if (!artifact_path(r, a, "kernel", kernel, sizeof kernel)) {
        snprintf(r->reason, sizeof r->reason, "deploy: no kernel artifact to boot");
        return RUN_FAIL;
    }
    if (rr_pxe_write(ctx->tftp_root, ctx->device->mac, kernel,
                     artifact_path(r, a, "initrd", initrd, sizeof initrd),
                     artifact_path(r, a, "dtb", fdt, sizeof fdt), a->append, err, sizeof err) < 0)
        goto fail;
    return RUN_OK;

fail:
    if (stop_requested(r))
        return RUN_STOP;   /* a canceled download is a cancel, not a failure */
    snprintf(r->reason, sizeof r->reason, "deploy: %s", err);
    return RUN_FAIL;
}

static bool prompt_seen(const runner_t *r)
{
    return rr_scanner_prompt(r->scan) >= 0;
}

/* rr_ipmi_error already names the BMC and the operation. */
static run_status_t ipmi_step(runner_t *r, int rc)
{
    if (rc == 0)
        return RUN_OK;
    snprintf(r->reason, sizeof r->reason, "boot: %s", rr_ipmi_error(r->ctx->ipmi));
    return RUN_FAIL;
}

static run_status_t run_boot(runner_t *r, const proto_action_t *a)
{
    const rr_device_config_t *dev = r->ctx->device;
    const char *method = a->method ? a->method : "ipmi-pxe";
    rr_bootdev_t bootdev;
    if (!strcmp(method, "ipmi-pxe")) {
        bootdev = RR_BOOTDEV_PXE;
    } else if (!strcmp(method, "ipmi-disk")) {
        bootdev = RR_BOOTDEV_DISK;
    } else {
        snprintf(r->reason, sizeof r->reason, "boot: method '%s' is not supported by this worker",
                 method);
        return RUN_FAIL;
    }
    static const char *const default_prompts[] = { "# " };
    const char *const *prompts = default_prompts;
    size_t count = 1;
    if (a->prompts_count) {
        prompts = (const char *const *)a->prompts;
        count = a->prompts_count;
    } else if (dev->prompt_count) {
        prompts = (const char *const *)dev->prompts;
        count = dev->prompt_count;
    }
    /* The console must be up before power on, so no boot line is lost. */
    if (!*r->ctx->sol && console_recover(r, "console down before power on") < 0)
        return stop_requested(r) ? RUN_STOP : RUN_FAIL;
    run_status_t st;
    if ((st = ipmi_step(r, rr_ipmi_set_bootdev(r->ctx->ipmi, bootdev, false))))
        return st;
    if ((st = ipmi_step(r, rr_ipmi_power(r->ctx->ipmi, RR_POWER_OFF))))
        return st;
    if (rr_scanner_arm_prompt(r->scan, prompts, count) < 0) {
        snprintf(r->reason, sizeof r->reason, "boot: out of memory");
        return RUN_FAIL;
    }
    if ((st = ipmi_step(r, rr_ipmi_power(r->ctx->ipmi, RR_POWER_ON))))
        return st;
    uint32_t timeout_s = action_timeout_s(r, a);
    switch (console_wait(r, prompt_seen, rr_mono_ms() + timeout_s * 1000ull)) {
    case W_OK:
        return RUN_OK;
    case W_STOP:
        return RUN_STOP;
    case W_TIMEOUT:
        snprintf(r->reason, sizeof r->reason, "boot: no prompt '%s'%s within %" PRIu32 " s (bmc %s)",
                 prompts[0], count > 1 ? " (or others)" : "", timeout_s, bmc_name(r));
        return RUN_FAIL;
    case W_LOST:
        break;
    }
    return RUN_FAIL;
}

static bool marker_seen(const runner_t *r)
{
    return rr_scanner_marker(r->scan, NULL);
}

static run_status_t run_step(runner_t *r, const proto_step_t *step, uint64_t action_deadline,
                             uint32_t action_s, size_t index)
{
    uint32_t delay = r->ctx->device->test_shell_delay_ms;
    char token[40], marker[128], line[4096];
    uint32_t rnd = randombytes_random();
    snprintf(token, sizeof token, "%" PRIx64 "x%zux%08" PRIx32, r->ctx->job, index, rnd);
    rr_scanner_arm_marker(r->scan, token);
    rr_scanner_marker_command(token, marker, sizeof marker);
    /* "{ RUN" and "}; MARKER" on two lines: a trailing comment in RUN cannot
     * swallow the marker, and the shell reads the whole group before running
     * any of it, so nothing is typed (and echoed into the output) while the
     * command runs, and a command reading stdin cannot eat the marker. */
    snprintf(line, sizeof line, "{ %s\r", step->run);
    if (console_type(r, line, delay) < 0)
        return RUN_FAIL;
    snprintf(line, sizeof line, "}; %s\r", marker);
    if (console_type(r, line, delay) < 0)
        return RUN_FAIL;
    uint64_t deadline = action_deadline;
    uint32_t limit_s = action_s;   /* the limit named when it strikes */
    if (step->timeout_s && rr_mono_ms() + step->timeout_s * 1000ull < deadline) {
        deadline = rr_mono_ms() + step->timeout_s * 1000ull;
        limit_s = step->timeout_s;
    }
    int code = 0;
    switch (console_wait(r, marker_seen, deadline)) {
    case W_OK:
        rr_scanner_marker(r->scan, &code);
        emit_result(r, step->name, code == 0 ? "pass" : "fail", code, NULL, NULL, NULL);
        return RUN_OK;
    case W_STOP:
        return RUN_STOP;
    case W_TIMEOUT: {
        char why[128];
        snprintf(why, sizeof why, "no end marker within %" PRIu32 " s", limit_s);
        emit_result(r, step->name, "fail", -1, why, NULL, NULL);
        snprintf(r->reason, sizeof r->reason, "test: step '%s': %s", step->name, why);
        return RUN_FAIL;
    }
    case W_LOST:
        break;
    }
    return RUN_FAIL;
}

static run_status_t run_test(runner_t *r, const proto_action_t *a)
{
    uint32_t action_s = action_timeout_s(r, a);
    uint64_t deadline = rr_mono_ms() + action_s * 1000ull;
    for (size_t i = 0; i < a->steps_count; i++) {
        run_status_t st = run_step(r, &a->steps[i], deadline, action_s, i);
        if (st != RUN_OK)
            return st;
    }
    return RUN_OK;
}

static run_status_t run_action(runner_t *r, const proto_action_t *a)
{
    if (!strcmp(a->kind, "deploy"))
        return run_deploy(r, a);
    if (!strcmp(a->kind, "boot"))
        return run_boot(r, a);
    if (!strcmp(a->kind, "test"))
        return run_test(r, a);
    snprintf(r->reason, sizeof r->reason, "%s: not supported by this worker", a->kind);
    return RUN_FAIL;
}

/* ---- the job ---- */

static void job_timeout_reason(runner_t *r, const proto_action_t *a)
{
    if (rr_mono_ms() >= r->job_deadline)
        snprintf(r->reason, sizeof r->reason, "job: timed out after %" PRIu32 " s (in action %s)",
                 r->ctx->def->job_timeout_s, a->kind);
}

static void finish(runner_t *r, const char *outcome)
{
    const rr_runner_ctx_t *ctx = r->ctx;
    char err[1024] = "", why[1200];
    if (*ctx->sol && console_drain(r) < 0)
        rr_sol_destroy(ctx->sol);
    log_flush(r);
    if (ctx->ipmi && rr_ipmi_power(ctx->ipmi, RR_POWER_OFF) < 0)
        snprintf(err, sizeof err, "cleanup: %s", rr_ipmi_error(ctx->ipmi));
    char perr[512] = "";
    if (ctx->device->mac && rr_pxe_remove(ctx->tftp_root, ctx->device->mac, perr, sizeof perr) < 0
        && !err[0])
        snprintf(err, sizeof err, "cleanup: %s", perr);
    if (r->reason[0] && err[0])
        snprintf(why, sizeof why, "%s; %s", r->reason, err);
    else
        snprintf(why, sizeof why, "%s", r->reason[0] ? r->reason : err);
    proto_job_event_t ev = { .kind = "end", .value = (char *)outcome,
                             .reason = why[0] ? why : NULL };
    emit(r, &ev);
}

void rr_runner_run(const rr_runner_ctx_t *ctx)
{
    runner_t *r = calloc(1, sizeof *r);
    if (!r || sodium_init() < 0 || !(r->scan = rr_scanner_new(on_result_line, r))) {
        proto_job_event_t ev = { .job = ctx->job, .ts = rr_wall_ms(), .kind = "end",
                                 .value = "incomplete", .reason = "worker: out of memory" };
        ctx->emit(ctx->arg, &ev);
        free(r);
        return;
    }
    r->ctx = ctx;
    uint32_t job_s = ctx->def->job_timeout_s ? ctx->def->job_timeout_s : 3600;
    r->job_deadline = rr_mono_ms() + job_s * 1000ull;
    proto_job_event_t ev = { .kind = "state", .name = "running" };
    emit(r, &ev);
    run_status_t st = RUN_OK;
    for (size_t i = 0; i < ctx->def->actions_count && st == RUN_OK; i++) {
        const proto_action_t *a = &ctx->def->actions[i];
        uint64_t started = rr_mono_ms();
        emit_action(r, a->kind, "start", NULL, 0);
        st = stop_requested(r) ? RUN_STOP : run_action(r, a);
        log_flush(r);
        if (st == RUN_FAIL)
            job_timeout_reason(r, a);
        if (st == RUN_OK)
            emit_action(r, a->kind, "end", NULL, (int64_t)(rr_mono_ms() - started));
        else
            emit_action(r, a->kind, "fail", st == RUN_STOP ? r->stop_reason : r->reason,
                        (int64_t)(rr_mono_ms() - started));
    }
    if (st == RUN_STOP && !strcmp(r->stop_reason, "canceled")) {
        finish(r, "canceled");
    } else if (st == RUN_STOP) {
        snprintf(r->reason, sizeof r->reason, "%s", r->stop_reason);
        finish(r, "incomplete");
    } else {
        finish(r, st == RUN_OK ? "complete" : "incomplete");
    }
    rr_scanner_destroy(&r->scan);
    free(r);
}
