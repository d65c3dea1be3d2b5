/* runner.c: one job's actions on one device (deploy tftp, boot, test), as events;
 * its console and event stream are runner_console.c. */
#include "runner.h"
#include "runner_internal.h"

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
#include "heap.h"
#include "log.h"
#include "mask.h"
#include "scanner.h"
#include "secrets.h"
#include "tftp.h"
#include "transfer.h"
#include "units.h"

#define DEFAULT_ACTION_TIMEOUT_S 600u
#define BOOT_SETTLE_MS           500u   /* console read after power off, before the prompt is armed */
#define CONTINUATION_WAIT_MS     2000u  /* at most, for the shell's "> " before a marker line */

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
    return runner_stop_requested(arg);
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
    if (runner_stop_requested(r))
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
        if (runner_stop_requested(r))
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

/* The console could not be had before power on: the reason names the action
 * as well as the BMC (runner_console_recover named the BMC). */
static run_status_t boot_console_failed(runner_t *r)
{
    if (runner_stop_requested(r))
        return RUN_STOP;
    char why[sizeof r->reason];
    snprintf(why, sizeof why, "boot: %.1000s", r->reason);
    snprintf(r->reason, sizeof r->reason, "%s", why);
    return RUN_FAIL;
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
    if (!*r->ctx->sol && runner_console_recover(r, "console down before power on") < 0)
        return boot_console_failed(r);
    run_status_t st;
    if ((st = ipmi_step(r, rr_ipmi_set_bootdev(r->ctx->ipmi, bootdev, false))))
        return st;
    if ((st = ipmi_step(r, rr_ipmi_power(r->ctx->ipmi, RR_POWER_OFF))))
        return st;
    /* What the node printed before power off may still be on its way (the last
     * step's prompt): read it first, so it cannot pass for the new boot's prompt. */
    if (runner_console_wait(r, never_done, rr_mono_ms() + BOOT_SETTLE_MS) == W_STOP)
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
    r->expect_by = rr_mono_ms() + runner_silent_ms(r);
    if (uboot && (st = run_uboot(r, timeout_s, prompts, count)) != RUN_OK) {
        r->booting = false;
        r->expect_by = 0;
        return st;
    }
    wait_status_t ws = runner_console_wait(r, prompt_seen, deadline);
    r->booting = false;
    r->expect_by = 0;
    /* Power is not touched again until the job's end: no session held meanwhile
     * (64 KB of FreeIPMI objects), and its pages go back to the system. */
    rr_ipmi_close(r->ctx->ipmi);
    rr_heap_trim();
    switch (ws) {
    case W_OK:
        return RUN_OK;
    case W_STOP:
        return RUN_STOP;
    case W_TIMEOUT:
        snprintf(r->reason, sizeof r->reason, "boot: no prompt '%s'%s within %" PRIu32 " s (bmc %s)%s",
                 prompts[0], count > 1 ? " (or others)" : "", timeout_s, runner_bmc_name(r),
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
    if (runner_console_type(r, line, delay) < 0)
        return -1;
    if (!armed)
        return 0;
    wait_status_t ws = runner_console_wait(r, prompt_seen, rr_mono_ms() + CONTINUATION_WAIT_MS);
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
    if (runner_console_type(r, line, delay) < 0)
        return r->stop_reason ? RUN_STOP : RUN_FAIL;
    uint64_t deadline = action_deadline;
    uint32_t limit_s = action_s;   /* the limit named when it strikes */
    if (step->timeout_s && rr_mono_ms() + step->timeout_s * 1000ull < deadline) {
        deadline = rr_mono_ms() + step->timeout_s * 1000ull;
        limit_s = step->timeout_s;
    }
    int code = 0;
    switch (runner_console_wait(r, marker_seen, deadline)) {
    case W_OK:
        rr_scanner_marker(r->scan, &code);
        runner_emit_result(r, step->name, code == 0 ? "pass" : "fail", code, NULL, NULL, NULL);
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
                     runner_bmc_name(r));
            return RUN_FAIL;
        }
        snprintf(why, sizeof why, "no end marker within %" PRIu32 " s%s", limit_s, power_note(r));
        runner_emit_result(r, step->name, "fail", -1, why, NULL, NULL);
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
    wait_status_t ws = runner_console_wait(r, needle_or_quiet, r->quiet_start + timeout_ms);
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
    if (!*r->ctx->sol && runner_console_recover(r, "console down") < 0) {
        snprintf(err, errlen, "%s", r->stop_reason ? r->stop_reason : r->reason);
        return -1;
    }
    runner_log_flush(r);
    /* the pace holds from the last character typed before, too: a bootloader
     * answers a short command at once, and its prompt is read within a few
     * ms of the previous line's CR */
    wait_status_t ws = delay_ms ? runner_console_wait(r, never_done, rr_mono_ms() + delay_ms) : W_TIMEOUT;
    if (ws == W_STOP || ws == W_LOST || runner_type_paced(r, text, delay_ms) < 0) {
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
        if (runner_console_type(r, line, delay) == 0)
            ws = runner_console_wait(r, marker_seen, rr_mono_ms() + timeout_s * 1000ull);
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
    runner_log_flush(r);   /* the event follows the output that led to it */
    runner_emit(r, ev);
}

bool rr_runner_stopped(void *arg)
{
    return runner_stop_requested(arg);
}

/* An action of disk.c / transfer.c returned RC (0 or -1 with ERR). */
static run_status_t outside_action(runner_t *r, const proto_action_t *a, int rc, const char *err)
{
    if (rc == 0)
        return RUN_OK;
    if (runner_stop_requested(r))
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
            if (runner_console_drain(r) < 0) {
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
    if (*ctx->sol && runner_console_drain(r) < 0)
        rr_sol_destroy(ctx->sol);
    if (ctx->ipmi && rr_ipmi_power(ctx->ipmi, RR_POWER_OFF) < 0)
        snprintf(err, sizeof err, "cleanup: %s", rr_ipmi_error(ctx->ipmi));
    console_settle(r);
    rr_mask_flush(r->mask, runner_log_append, r);
    runner_log_flush(r);
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
    runner_emit(r, &ev);
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
    if (!r || !(r->log = malloc(PROTO_LOG_CHUNK)) || sodium_init() < 0
        || !(r->scan = rr_scanner_new(runner_on_result_line, r))) {
        proto_job_event_t ev = { .job = ctx->job, .ts = rr_wall_ms(), .kind = "end",
                                 .value = "incomplete", .reason = "worker: out of memory" };
        ctx->emit(ctx->arg, &ev);
        if (r)
            free(r->log);
        free(r);
        return;
    }
    r->ctx = ctx;
    uint32_t job_s = ctx->def->job_timeout_s ? ctx->def->job_timeout_s : 3600;
    r->job_deadline = rr_mono_ms() + job_s * 1000ull;
    r->started_wall = rr_wall_ms();
    run_status_t st = prepare_mask(r);
    proto_job_event_t ev = { .kind = "state", .name = "running" };
    runner_emit(r, &ev);
    for (size_t i = 0; i < ctx->def->actions_count && st == RUN_OK; i++) {
        const proto_action_t *a = &ctx->def->actions[i];
        uint64_t started = rr_mono_ms();
        runner_emit_action(r, a->kind, "start", NULL, 0);
        r->action_deadline = started + action_timeout_s(r, a) * 1000ull;
        st = runner_stop_requested(r) ? RUN_STOP : run_action(r, a);
        runner_log_flush(r);
        if (st == RUN_FAIL)
            job_timeout_reason(r, a);
        if (st == RUN_OK)
            runner_emit_action(r, a->kind, "end", NULL, (int64_t)(rr_mono_ms() - started));
        else
            runner_emit_action(r, a->kind, "fail", st == RUN_STOP ? r->stop_reason : r->reason,
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
    free(r->log);
    free(r);
}
