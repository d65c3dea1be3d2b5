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

#include "bootloader.h"
#include "disk.h"
#include "log.h"
#include "mask.h"
#include "scanner.h"
#include "secrets.h"
#include "tftp.h"
#include "transfer.h"
#include "units.h"

#define DEFAULT_ACTION_TIMEOUT_S 600u
#define SOL_REOPEN_TRIES         3u     /* at least, even past the action's deadline */
#define SOL_REOPEN_BACKOFF_MS    1000u
#define SOL_REOPEN_BACKOFF_MAX_MS 8000u
#define SILENT_MIN_MS            3000u  /* output due (power on, typing) within this at least */
#define READS_PER_TURN           64     /* bounds one drain so STOP is still polled */
#define CAPTURE_MAX              8192   /* console tail kept for rr_runner_shell_run */
#define BOOT_SETTLE_MS           500u   /* console read after power off, before the prompt is armed */
#define CONTINUATION_WAIT_MS     2000u  /* at most, for the shell's "> " before a marker line */

typedef enum { RUN_OK = 0, RUN_FAIL, RUN_STOP } run_status_t;
typedef enum { W_OK = 0, W_TIMEOUT, W_STOP, W_LOST } wait_status_t;

typedef struct rr_runner_shell {
    const rr_runner_ctx_t *ctx;
    rr_scanner_t *scan;
    rr_mask_t *mask;             /* the job's secrets, masked in every event (mask.h) */
    bool capturing;              /* rr_runner_shell_run: keep the console's tail */
    size_t capture_len;
    char capture[CAPTURE_MAX];
    char log[PROTO_LOG_CHUNK];
    size_t log_len;
    uint64_t log_since;          /* mono ms of the oldest byte buffered */
    uint64_t job_deadline;       /* mono ms */
    uint64_t action_deadline;    /* mono ms: a lost SOL is reopened until then */
    uint64_t last_rx_wall;       /* wall ms of the last console byte: where a gap starts */
    uint64_t last_rx_mono;       /* mono ms of the last console byte */
    uint32_t quiet_ms;           /* rr_runner_console_expect: gives up after this silence */
    uint64_t quiet_start;        /* mono ms that expect began */
    uint64_t started_wall;       /* wall ms of the job's start (the console was up then) */
    uint64_t expect_by;          /* mono ms by which output is due (power on, echo), 0 = none */
    uint64_t rx_bytes;           /* console bytes received in this job */
    uint64_t echo_due;           /* rx_bytes that make the due output arrived */
    unsigned silences;           /* times due output did not come in this job */
    unsigned gaps;               /* console_gap events emitted in this job */
    bool booting;                /* between power on and the prompt */
    const char *stop_reason;
    char reason[1024];           /* why the job cannot complete */
} runner_t;

/* ---- events ---- */

/* Out with EV, every string in it masked (log data is masked as it arrives). */
static void emit(runner_t *r, proto_job_event_t *ev)
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
static void log_append(void *arg, const char *data, size_t len)
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
    rr_mask_feed(r->mask, data, len, log_append, r);
    rr_scanner_feed(r->scan, data, len);
    if (r->capturing)
        capture_append(r, data, len);
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
static int console_recover(runner_t *r, const char *cause)
{
    uint64_t since = gap_start(r), started = rr_mono_ms();
    uint64_t deadline = r->action_deadline && r->action_deadline < r->job_deadline
                      ? r->action_deadline : r->job_deadline;
    char err[512] = "";
    uint64_t delay = SOL_REOPEN_BACKOFF_MS;
    unsigned tries = 0;
    log_flush(r);
    rr_warn("job %" PRIu64 ": sol bmc %s: %s; reconnecting", r->ctx->job, bmc_name(r), cause);
    while (tries < SOL_REOPEN_TRIES || rr_mono_ms() < deadline) {
        if (tries && !nap(r, delay))
            return -1;
        delay = delay * 2 > SOL_REOPEN_BACKOFF_MAX_MS ? SOL_REOPEN_BACKOFF_MAX_MS : delay * 2;
        tries++;
        if (r->ctx->reopen(r->ctx->arg, r->ctx->sol, err, sizeof err) == 0) {
            char why[700];
            snprintf(why, sizeof why, "sol bmc %s: %s; reopened", bmc_name(r), cause);
            proto_job_event_t ev = { .kind = "console_gap", .since = since, .reason = why };
            emit(r, &ev);
            r->gaps++;
            rr_info("job %" PRIu64 ": sol bmc %s: reconnected after %u tries: console gap of "
                    "%" PRIu64 " ms recorded", r->ctx->job, bmc_name(r), tries,
                    rr_wall_ms() - since);
            return 0;
        }
    }
    snprintf(r->reason, sizeof r->reason, "sol bmc %s: %s; reopen failed for %" PRIu64
             " s (%u tries): %s", bmc_name(r), cause, (rr_mono_ms() - started) / 1000, tries,
             err);
    rr_warn("job %" PRIu64 ": %s", r->ctx->job, r->reason);
    return -1;
}

/* How long due output may take before the console counts as silent. */
static uint32_t silent_ms(const runner_t *r)
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
             silent_ms(r));
    r->expect_by = 0;
    if (r->silences++ > 0) {
        char why[700];
        snprintf(why, sizeof why, "sol bmc %s: %s, also after reopening the session",
                 bmc_name(r), cause);
        proto_job_event_t ev = { .kind = "console_gap", .since = gap_start(r), .reason = why };
        log_flush(r);
        emit(r, &ev);
        r->gaps++;
        snprintf(r->reason, sizeof r->reason, "sol bmc %s: console silent: no output for %"
                 PRIu32 " ms while output was due, also after reopening the session%s",
                 bmc_name(r), silent_ms(r), r->booting ? " and a power cycle" : "");
        rr_warn("job %" PRIu64 ": %s", r->ctx->job, r->reason);
        return -1;
    }
    rr_sol_destroy(r->ctx->sol);
    if (console_recover(r, cause) < 0)
        return -1;
    if (r->booting && r->ctx->ipmi) {
        if (rr_ipmi_power(r->ctx->ipmi, RR_POWER_OFF) < 0
            || rr_ipmi_power(r->ctx->ipmi, RR_POWER_ON) < 0) {
            snprintf(r->reason, sizeof r->reason, "boot: %s", rr_ipmi_error(r->ctx->ipmi));
            return -1;
        }
        r->echo_due = r->rx_bytes + 1;
        r->expect_by = rr_mono_ms() + silent_ms(r);
        return 0;
    }
    snprintf(r->reason, sizeof r->reason, "sol bmc %s: console silent while typing (no echo "
             "for %" PRIu32 " ms); session reopened, but the node may have lost part of the "
             "input", bmc_name(r), silent_ms(r));
    rr_warn("job %" PRIu64 ": %s", r->ctx->job, r->reason);
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
        if (r->expect_by && now >= r->expect_by && console_silent(r) < 0)
            return r->stop_reason ? W_STOP : W_LOST;
        if (!*r->ctx->sol)
            continue;
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

/* A long line at a slow pace takes long: type TEXT in slices of about
 * RR_RUNNER_FLUSH_MS, polling STOP between them (rr_sol_type paces after every
 * character, so slicing keeps the pace). Returns 0, or -1: stopped
 * (stop_reason set) or lost (reason set, the session closed). */
static int type_paced(runner_t *r, const char *text, uint32_t delay_ms)
{
    size_t len = strlen(text), slice = delay_ms ? RR_RUNNER_FLUSH_MS / delay_ms : len;
    if (!slice)
        slice = 1;
    for (size_t at = 0; at < len; at += slice) {
        size_t n = len - at < slice ? len - at : slice;
        if (stop_requested(r))
            return -1;
        if (rr_sol_type(*r->ctx->sol, text + at, n, delay_ms, console_sink, r) < 0) {
            snprintf(r->reason, sizeof r->reason, "sol bmc %s: lost while typing: %s",
                     bmc_name(r), rr_sol_error(*r->ctx->sol));
            rr_sol_destroy(r->ctx->sol);
            return -1;
        }
    }
    return 0;
}

/* A session that carried output or input without a pause for this long is
 * renewed before the next power cycle (sol.h, rr_sol_busy_ms): well inside
 * stock ipmi_sim's 30 s session timeout, so that a job's output never runs
 * into it (the chaos test traced sessions closed 29-30 s into a busy streak). */
#define SOL_RENEW_BUSY_MS 10000u

/* Renew a long-busy session while the node is idle, before its power cycle:
 * what was waiting is read first, nothing can be lost, so no console_gap. */
static int console_renew_if_busy(runner_t *r)
{
    if (!*r->ctx->sol)
        return 0;
    uint32_t busy = rr_sol_busy_ms(*r->ctx->sol);
    if (busy < SOL_RENEW_BUSY_MS)
        return 0;
    if (console_drain(r) < 0)
        return 0;               /* lost meanwhile: the caller recovers it */
    char err[512] = "";
    rr_sol_destroy(r->ctx->sol);
    if (r->ctx->reopen(r->ctx->arg, r->ctx->sol, err, sizeof err) == 0) {
        rr_info("job %" PRIu64 ": sol bmc %s: renewed the session after %" PRIu32 " ms of "
                "traffic without a pause (BMC session timeout)", r->ctx->job, bmc_name(r), busy);
        return 0;
    }
    return console_recover(r, "renewing the busy session failed");
}

/* Type TEXT paced by DELAY_MS per character; output meanwhile goes to the log. */
static int console_type(runner_t *r, const char *text, uint32_t delay_ms)
{
    if (!*r->ctx->sol && console_recover(r, "console down") < 0)
        return -1;
    log_flush(r);   /* typing may take a while: what is buffered goes now */
    /* its echo (at least a byte per character) is due: the console counts as
     * silent if it does not come, e.g. a BMC that dropped SOL mid-line */
    r->echo_due = r->rx_bytes + strlen(text);
    r->expect_by = rr_mono_ms() + silent_ms(r) + (uint64_t)strlen(text) * delay_ms;
    if (type_paced(r, text, delay_ms) < 0)
        return -1;
    if (r->rx_bytes < r->echo_due)      /* the echo is still on its way, or never comes */
        r->expect_by = rr_mono_ms() + silent_ms(r);
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

/* Job URLs are job content: the worker's size limit and file roots apply. */
static void download_limits(const runner_t *r, rr_download_opts_t *opts)
{
    const rr_worker_config_t *worker = r->ctx->device->worker;
    if (!worker)
        return;                 /* a device without a worker config: tftp.c defaults */
    opts->max_bytes = worker->max_download_bytes;
    opts->confine_files = true;
    opts->file_roots = (const char *const *)worker->file_roots;
    opts->file_root_count = worker->file_root_count;
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
    download_limits(r, &opts);
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

static bool never_done(const runner_t *r)
{
    (void)r;
    return false;
}

/* "; the node is powered off" when its BMC says so: why a console went silent. */
static const char *power_note(runner_t *r)
{
    bool on = true;
    if (r->ctx->ipmi && rr_ipmi_power_status(r->ctx->ipmi, &on) == 0 && !on)
        return "; the node is powered off";
    return "";
}

/* rr_ipmi_error already names the BMC and the operation. */
static run_status_t ipmi_step(runner_t *r, int rc)
{
    if (rc == 0)
        return RUN_OK;
    snprintf(r->reason, sizeof r->reason, "boot: %s", rr_ipmi_error(r->ctx->ipmi));
    return RUN_FAIL;
}

/* uboot-pxe: U-Boot is driven at its prompt (bootloader.c) until it starts
 * the kernel; only then is the shell prompt armed (U-Boot prints "## ..."). */
static run_status_t run_uboot(runner_t *r, uint32_t timeout_s, const char *const *prompts,
                              size_t count)
{
    char err[900] = "";
    if (rr_bootloader_uboot_pxe(r, r->ctx->device, timeout_s, err, sizeof err) < 0) {
        if (stop_requested(r))
            return RUN_STOP;
        snprintf(r->reason, sizeof r->reason, "boot: %s", err);
        return RUN_FAIL;
    }
    if (rr_scanner_arm_prompt(r->scan, prompts, count) < 0) {
        snprintf(r->reason, sizeof r->reason, "boot: out of memory");
        return RUN_FAIL;
    }
    return RUN_OK;
}

static run_status_t run_boot(runner_t *r, const proto_action_t *a)
{
    const rr_device_config_t *dev = r->ctx->device;
    const char *method = a->method ? a->method : "ipmi-pxe";
    bool uboot = false;
    rr_bootdev_t bootdev;
    if (!strcmp(method, "ipmi-pxe")) {
        bootdev = RR_BOOTDEV_PXE;
    } else if (!strcmp(method, "ipmi-disk")) {
        bootdev = RR_BOOTDEV_DISK;
    } else if (!strcmp(method, "uboot-pxe")) {
        bootdev = RR_BOOTDEV_NONE;  /* the BMC's override does not matter: U-Boot is told */
        uboot = true;
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
    if (console_renew_if_busy(r) < 0)
        return stop_requested(r) ? RUN_STOP : RUN_FAIL;
    if (!*r->ctx->sol && console_recover(r, "console down before power on") < 0)
        return stop_requested(r) ? RUN_STOP : RUN_FAIL;
    run_status_t st;
    if ((st = ipmi_step(r, rr_ipmi_set_bootdev(r->ctx->ipmi, bootdev, false))))
        return st;
    if ((st = ipmi_step(r, rr_ipmi_power(r->ctx->ipmi, RR_POWER_OFF))))
        return st;
    /* What the node printed before power off may still be on its way (the last
     * step's prompt): read it first, so it cannot pass for the new boot's prompt. */
    if (console_wait(r, never_done, rr_mono_ms() + BOOT_SETTLE_MS) == W_STOP)
        return RUN_STOP;
    if (!uboot && rr_scanner_arm_prompt(r->scan, prompts, count) < 0) {
        snprintf(r->reason, sizeof r->reason, "boot: out of memory");
        return RUN_FAIL;
    }
    if ((st = ipmi_step(r, rr_ipmi_power(r->ctx->ipmi, RR_POWER_ON))))
        return st;
    uint32_t timeout_s = action_timeout_s(r, a);
    uint64_t deadline = rr_mono_ms() + timeout_s * 1000ull;
    r->booting = true;          /* the node prints from power on: output is due */
    r->echo_due = r->rx_bytes + 1;
    r->expect_by = rr_mono_ms() + silent_ms(r);
    if (uboot && (st = run_uboot(r, timeout_s, prompts, count)) != RUN_OK) {
        r->booting = false;
        r->expect_by = 0;
        return st;
    }
    wait_status_t ws = console_wait(r, prompt_seen, deadline);
    r->booting = false;
    r->expect_by = 0;
    switch (ws) {
    case W_OK:
        return RUN_OK;
    case W_STOP:
        return RUN_STOP;
    case W_TIMEOUT:
        snprintf(r->reason, sizeof r->reason, "boot: no prompt '%s'%s within %" PRIu32 " s (bmc %s)%s",
                 prompts[0], count > 1 ? " (or others)" : "", timeout_s, bmc_name(r),
                 power_note(r));
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

/* The directory the job's {{secret:NAME}} references come from (secrets.h). */
static const char *secrets_dir(const runner_t *r)
{
    return r->ctx->device->worker ? r->ctx->device->worker->secrets_dir : NULL;
}

/* Type LINE ("{ RUN"), then wait for the shell's continuation prompt ("> "
 * after the echoed line: it read the line and wants the rest of the group)
 * before the caller types "}; MARKER". Typed sooner, the marker line can
 * overtake a busy shell's late "> ", which then lands at the start of the
 * command's first output line and hides an RR_RESULT there. A shell with
 * another PS2 costs CONTINUATION_WAIT_MS. Returns 0, or -1 (lost or stopped:
 * stop_reason set). */
static int console_type_group(runner_t *r, const char *line, uint32_t delay)
{
    static const char *const continuation[] = { "\n> " };
    bool armed = rr_scanner_arm_prompt(r->scan, continuation, 1) == 0;
    if (console_type(r, line, delay) < 0)
        return -1;
    if (!armed)
        return 0;
    wait_status_t ws = console_wait(r, prompt_seen, rr_mono_ms() + CONTINUATION_WAIT_MS);
    return ws == W_OK || ws == W_TIMEOUT ? 0 : -1;
}

/* Type "{ RUN" with its secrets filled in; LINE is scratch of LEN bytes. */
static run_status_t type_step(runner_t *r, const proto_step_t *step, char *line, size_t len,
                              uint32_t delay)
{
    char *run = NULL, err[512];
    if (rr_secrets_expand(secrets_dir(r), step->run, r->mask, &run, err, sizeof err) < 0) {
        snprintf(r->reason, sizeof r->reason, "test: step '%s': %s", step->name, err);
        return RUN_FAIL;
    }
    int n = snprintf(line, len, "{ %s\r", run);
    explicit_bzero(run, strlen(run));
    free(run);
    run_status_t st = RUN_OK;
    if (n < 0 || (size_t)n >= len) {
        snprintf(r->reason, sizeof r->reason, "test: step '%s': command too long for the "
                 "console (%d bytes)", step->name, n);
        st = RUN_FAIL;
    }
    else if (console_type_group(r, line, delay) < 0)
        st = r->stop_reason ? RUN_STOP : RUN_FAIL;
    explicit_bzero(line, len);
    return st;
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
    unsigned gaps_before = r->gaps;
    run_status_t typed = type_step(r, step, line, sizeof line, delay);
    if (typed != RUN_OK)
        return typed;
    snprintf(line, sizeof line, "}; %s\r", marker);
    if (console_type(r, line, delay) < 0)
        return r->stop_reason ? RUN_STOP : RUN_FAIL;
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
        if (r->gaps > gaps_before) {
            /* The marker may have been printed while the console was down: an
             * infrastructure failure, never the step's result. */
            snprintf(r->reason, sizeof r->reason, "test: step '%s': no end marker within %"
                     PRIu32 " s, and the console was lost during the step (sol bmc %s, see "
                     "console_gap): the marker may have gone with it", step->name, limit_s,
                     bmc_name(r));
            return RUN_FAIL;
        }
        snprintf(why, sizeof why, "no end marker within %" PRIu32 " s%s", limit_s, power_note(r));
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

/* ---- actions beside the runner (disk.c, transfer.c) ---- */

/* The last OUTLEN-1 bytes captured into OUT (NUL-terminated). */
static void capture_copy(const runner_t *r, char *out, size_t outlen)
{
    if (!out || !outlen)
        return;
    size_t n = r->capture_len < outlen - 1 ? r->capture_len : outlen - 1;
    memcpy(out, r->capture + r->capture_len - n, n);
    out[n] = '\0';
}

/* rr_runner_console_expect's end: a needle, or quiet_ms without output. */
static bool needle_or_quiet(const runner_t *r)
{
    if (prompt_seen(r))
        return true;
    uint64_t since = r->last_rx_mono > r->quiet_start ? r->last_rx_mono : r->quiet_start;
    return r->quiet_ms && rr_mono_ms() - since >= r->quiet_ms;
}

/* The needle that occurs first in what was captured (since rr_runner_console_type:
 * an answer read while the last characters were paced), or -1. */
static int captured_needle(const runner_t *r, const char *const *needles, size_t count)
{
    const char *first = NULL;
    int found = -1;
    for (size_t i = 0; r->capturing && i < count; i++) {
        const char *hit = *needles[i] ? memmem(r->capture, r->capture_len, needles[i],
                                               strlen(needles[i])) : NULL;
        if (hit && (!first || hit < first)) {
            first = hit;
            found = (int)i;
        }
    }
    return found;
}

int rr_runner_console_expect(rr_runner_shell_t *r, const char *const *needles, size_t count,
                             uint32_t timeout_ms, uint32_t quiet_ms, char *out, size_t outlen,
                             char *err, size_t errlen)
{
    int early = captured_needle(r, needles, count);
    if (early >= 0) {
        r->capturing = false;
        capture_copy(r, out, outlen);
        return early;
    }
    if (rr_scanner_arm_prompt(r->scan, needles, count) < 0) {
        snprintf(err, errlen, "out of memory");
        return RR_CONSOLE_FAILED;
    }
    if (!r->capturing) {
        r->capture_len = 0;
        r->capturing = true;
    }
    r->quiet_ms = quiet_ms;
    r->quiet_start = rr_mono_ms();
    wait_status_t ws = console_wait(r, needle_or_quiet, r->quiet_start + timeout_ms);
    r->quiet_ms = 0;
    r->capturing = false;
    capture_copy(r, out, outlen);
    switch (ws) {
    case W_OK:
        return prompt_seen(r) ? rr_scanner_prompt(r->scan) : RR_CONSOLE_QUIET;
    case W_TIMEOUT:
        return RR_CONSOLE_TIMEOUT;
    case W_STOP:
        snprintf(err, errlen, "%s", r->stop_reason);
        break;
    case W_LOST:
        snprintf(err, errlen, "%s", r->reason[0] ? r->reason : "console lost");
        break;
    }
    return RR_CONSOLE_FAILED;
}

int rr_runner_console_type(rr_runner_shell_t *r, const char *text, uint32_t delay_ms,
                           char *err, size_t errlen)
{
    r->capture_len = 0;
    r->capturing = true;        /* what the node shows from here: its echo, its answer */
    r->expect_by = 0;           /* no echo required: the bootloader may drop characters */
    if (!*r->ctx->sol && console_recover(r, "console down") < 0) {
        snprintf(err, errlen, "%s", r->stop_reason ? r->stop_reason : r->reason);
        return -1;
    }
    log_flush(r);
    /* the pace holds from the last character typed before, too: a bootloader
     * answers a short command at once, and its prompt is read within a few
     * ms of the previous line's CR */
    wait_status_t ws = delay_ms ? console_wait(r, never_done, rr_mono_ms() + delay_ms) : W_TIMEOUT;
    if (ws == W_STOP || ws == W_LOST || type_paced(r, text, delay_ms) < 0) {
        snprintf(err, errlen, "%s", r->stop_reason ? r->stop_reason : r->reason);
        return -1;
    }
    return 0;
}

int rr_runner_shell_run(rr_runner_shell_t *r, const char *cmd, uint32_t timeout_s, int *code,
                        char *out, size_t outlen, char *err, size_t errlen)
{
    char token[40], marker[128], line[4096];
    uint32_t delay = r->ctx->device->test_shell_delay_ms;
    snprintf(token, sizeof token, "%" PRIx64 "xsh%08" PRIx32, r->ctx->job, randombytes_random());
    rr_scanner_arm_marker(r->scan, token);
    rr_scanner_marker_command(token, marker, sizeof marker);
    if ((size_t)snprintf(line, sizeof line, "{ %s\r", cmd) >= sizeof line) {
        snprintf(err, errlen, "command too long for the console (%zu bytes)", strlen(cmd));
        return -1;
    }
    r->capture_len = 0;
    r->capturing = true;
    wait_status_t ws = W_LOST;
    if (console_type_group(r, line, delay) == 0) {
        snprintf(line, sizeof line, "}; %s\r", marker);
        if (console_type(r, line, delay) == 0)
            ws = console_wait(r, marker_seen, rr_mono_ms() + timeout_s * 1000ull);
    }
    if (ws == W_LOST && r->stop_reason)
        ws = W_STOP;   /* stopped while typing */
    r->capturing = false;
    capture_copy(r, out, outlen);
    switch (ws) {
    case W_OK:
        rr_scanner_marker(r->scan, code);
        return 0;
    case W_TIMEOUT:
        snprintf(err, errlen, "no end marker within %" PRIu32 " s%s", timeout_s, power_note(r));
        break;
    case W_STOP:
        snprintf(err, errlen, "%s", r->stop_reason ? r->stop_reason : "stopped");
        break;
    case W_LOST:
        snprintf(err, errlen, "%s", r->reason[0] ? r->reason : "console lost");
        break;
    }
    return -1;
}

void rr_runner_shell_event(rr_runner_shell_t *r, proto_job_event_t *ev)
{
    log_flush(r);   /* the event follows the output that led to it */
    emit(r, ev);
}

bool rr_runner_stopped(void *arg)
{
    return stop_requested(arg);
}

/* An action of disk.c / transfer.c returned RC (0 or -1 with ERR). */
static run_status_t outside_action(runner_t *r, const proto_action_t *a, int rc, const char *err)
{
    if (rc == 0)
        return RUN_OK;
    if (stop_requested(r))
        return RUN_STOP;
    snprintf(r->reason, sizeof r->reason, "%s: %s", a->kind, err);
    return RUN_FAIL;
}

static run_status_t run_transfer(runner_t *r, const proto_action_t *a)
{
    char err[900] = "";
    int rc = rr_transfer_run(r, r->ctx->device, r->ctx->job, a, action_timeout_s(r, a),
                             err, sizeof err);
    return outside_action(r, a, rc, err);
}

static run_status_t run_deploy_disk(runner_t *r, const proto_action_t *a)
{
    char err[900] = "";
    int rc = rr_disk_deploy(r, a, action_timeout_s(r, a), err, sizeof err);
    return outside_action(r, a, rc, err);
}

static run_status_t run_action(runner_t *r, const proto_action_t *a)
{
    if (!strcmp(a->kind, "deploy") && a->to && !strcmp(a->to, "disk"))
        return run_deploy_disk(r, a);
    if (!strcmp(a->kind, "transfer"))
        return run_transfer(r, a);
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

#define SETTLE_QUIET_MS 200u    /* console silent this long after power off: all in */
#define SETTLE_MAX_MS   2000u   /* a node that printed a flood: stop waiting anyway */

/* Power off stops the node, but what it printed just before (a prompt after
 * the last marker) is still on its way through the BMC: read until the
 * console is quiet, so the job's log ends where the node's output ended and
 * no byte of this job is dropped between jobs or lands in the next one. */
static void console_settle(runner_t *r)
{
    uint64_t now = rr_mono_ms(), until = now + SETTLE_MAX_MS, last = now;
    while (*r->ctx->sol && now < until && now - last < SETTLE_QUIET_MS) {
        struct pollfd pfd = { .fd = rr_sol_fd(*r->ctx->sol), .events = POLLIN };
        if (poll(&pfd, 1, (int)(SETTLE_QUIET_MS / 4)) > 0) {
            if (console_drain(r) < 0) {
                rr_sol_destroy(r->ctx->sol);
                break;
            }
            last = rr_mono_ms();
        }
        now = rr_mono_ms();
    }
}

static void finish(runner_t *r, const char *outcome)
{
    const rr_runner_ctx_t *ctx = r->ctx;
    char err[1024] = "", why[sizeof r->reason + sizeof err + 2]; /* "reason; err" never cut */
    if (*ctx->sol && console_drain(r) < 0)
        rr_sol_destroy(ctx->sol);
    if (ctx->ipmi && rr_ipmi_power(ctx->ipmi, RR_POWER_OFF) < 0)
        snprintf(err, sizeof err, "cleanup: %s", rr_ipmi_error(ctx->ipmi));
    console_settle(r);
    rr_mask_flush(r->mask, log_append, r);
    log_flush(r);
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

/* The masker knows the BMC password and every secret the job uses before
 * anything runs: a missing secret fails the job before the node is touched. */
static run_status_t prepare_mask(runner_t *r)
{
    const proto_jobdef_t *def = r->ctx->def;
    char err[512];
    if (!(r->mask = rr_mask_new()) || rr_mask_add(r->mask, r->ctx->device->bmc_password) < 0) {
        snprintf(r->reason, sizeof r->reason, "worker: out of memory");
        return RUN_FAIL;
    }
    for (size_t i = 0; i < def->actions_count; i++)
        for (size_t j = 0; j < def->actions[i].steps_count; j++) {
            char *run = NULL;
            if (rr_secrets_expand(secrets_dir(r), def->actions[i].steps[j].run, r->mask, &run,
                                  err, sizeof err) < 0) {
                snprintf(r->reason, sizeof r->reason, "secrets: %s", err);
                return RUN_FAIL;
            }
            explicit_bzero(run, strlen(run));
            free(run);
        }
    return RUN_OK;
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
    r->started_wall = rr_wall_ms();
    run_status_t st = prepare_mask(r);
    proto_job_event_t ev = { .kind = "state", .name = "running" };
    emit(r, &ev);
    for (size_t i = 0; i < ctx->def->actions_count && st == RUN_OK; i++) {
        const proto_action_t *a = &ctx->def->actions[i];
        uint64_t started = rr_mono_ms();
        emit_action(r, a->kind, "start", NULL, 0);
        r->action_deadline = started + action_timeout_s(r, a) * 1000ull;
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
    rr_mask_destroy(&r->mask);
    free(r);
}
