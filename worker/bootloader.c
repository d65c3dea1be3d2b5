/* bootloader.c: boot method uboot-pxe: interrupt U-Boot, type its PXE commands. */
#include "bootloader.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

#define OUTPUT_MAX 8192
#define SHOWN_MAX  160          /* console text quoted in a reason */

/* What U-Boot prints when a command failed (LAVA's u-boot error messages). */
static const char *const failures[] = {
    "Unknown command",
    "Config file not found",
    "Retry count exceeded",
    "Retry time exceeded",
    "TFTP error: trying to overwrite reserved memory",
    "Bad Linux ARM zImage magic",
    "Wrong Ramdisk Image Format",
    "Ramdisk image is corrupt or invalid",
    "syntax error",
    "*** ERROR",
};

static const char *const default_commands[] = {
    "setenv autoload no", "dhcp", "pxe get", "pxe boot",
};

/* The text of one console line [START, END) into LINE, without CR/LF. */
static void copy_line(const char *start, const char *end, char *line, size_t len)
{
    size_t n = (size_t)(end - start);
    while (n && (start[n - 1] == '\r' || start[n - 1] == '\n'))
        n--;
    if (n >= len)
        n = len - 1;
    memcpy(line, start, n);
    line[n] = '\0';
}

bool rr_bootloader_failure(const char *output, char *line, size_t len)
{
    const char *at = NULL;
    for (size_t i = 0; i < sizeof failures / sizeof failures[0]; i++) {
        const char *hit = strstr(output, failures[i]);
        if (hit && (!at || hit < at))
            at = hit;
    }
    if (!at)
        return false;
    const char *start = at, *end = at;
    while (start > output && start[-1] != '\n' && start[-1] != '\r')
        start--;
    end += strcspn(end, "\r\n");
    copy_line(start, end, line, len);
    return true;
}

void rr_bootloader_last_line(const char *output, const char *prompt, char *line, size_t len)
{
    const char *end = output + strlen(output);
    line[0] = '\0';
    while (end > output) {
        const char *start = end;
        while (start > output && start[-1] != '\n' && start[-1] != '\r')
            start--;
        size_t n = (size_t)(end - start);
        bool only_prompt = prompt && n <= strlen(prompt) && !strncmp(start, prompt, n);
        if (n && !only_prompt && strspn(start, " \t") < n) {
            copy_line(start, end, line, len);
            return;
        }
        end = start > output ? start - 1 : start;
    }
}

bool rr_bootloader_echo_ok(const char *output, const char *cmd)
{
    size_t n = strlen(cmd);
    return !strncmp(output, cmd, n) && (output[n] == '\r' || output[n] == '\n');
}

/* The device's setting, or U-Boot's default. */
static const char *or_default(const char *value, const char *fallback)
{
    return value ? value : fallback;
}

typedef struct {
    rr_runner_shell_t *sh;
    const rr_device_config_t *dev;
    const char *prompt;
    uint64_t deadline;          /* mono ms */
    char output[OUTPUT_MAX];
} uboot_t;

static uint32_t left_ms(const uboot_t *u, uint32_t cap_ms)
{
    uint64_t now = rr_mono_ms();
    uint64_t left = u->deadline > now ? u->deadline - now : 0;
    return left < cap_ms ? (uint32_t)left : cap_ms;
}

/* ", and the node echoed 's' for 'setenv autoload no': characters were lost
 * (serial.bootloader_delay_ms is 0 ms)" when the echo is not what was typed. */
static void echo_note(const uboot_t *u, const char *cmd, char *note, size_t len)
{
    note[0] = '\0';
    if (rr_bootloader_echo_ok(u->output, cmd))
        return;
    char echo[SHOWN_MAX + 2] = "nothing";
    size_t n = strcspn(u->output, "\r\n");
    if (n) {
        echo[0] = '\'';
        copy_line(u->output, u->output + n, echo + 1, sizeof echo - 2);
        strcat(echo, "'");
    }
    snprintf(note, len, "; the node echoed %s for '%s': characters were lost "
             "(serial.bootloader_delay_ms is %" PRIu32 " ms)", echo, cmd,
             u->dev->bootloader_delay_ms);
}

/* Why waiting after typing CMD ended without NEEDLE (RC from expect). */
static int wait_failed(const uboot_t *u, const char *cmd, const char *needle, int rc,
                       uint32_t waited_ms, const char *why, char *err, size_t errlen)
{
    char last[SHOWN_MAX], note[2 * SHOWN_MAX + 120];
    if (rc == RR_CONSOLE_FAILED) {
        snprintf(err, errlen, "u-boot: %s: %s", cmd, why);
        return -1;
    }
    rr_bootloader_last_line(u->output, NULL, last, sizeof last);
    echo_note(u, cmd, note, sizeof note);
    snprintf(err, errlen, "u-boot: no '%s' after typing '%s': %s %" PRIu32 " s%s%s%s%s",
             needle, cmd, rc == RR_CONSOLE_QUIET ? "nothing printed for" : "not within",
             waited_ms / 1000, note[0] ? "" : "; the console shows '", note[0] ? "" : last,
             note[0] ? "" : "'", note);
    return -1;
}

/* Type CMD and wait for the prompt (or, for the last command, the boot message). */
static int uboot_command(uboot_t *u, const char *cmd, bool last, char *err, size_t errlen)
{
    char line[512], why[512] = "", note[2 * SHOWN_MAX + 120];
    const char *boot_msg = or_default(u->dev->bootloader_boot_message, RR_UBOOT_BOOT_MESSAGE);
    const char *needles[2] = { last ? boot_msg : u->prompt, u->prompt };
    if ((size_t)snprintf(line, sizeof line, "%s\r", cmd) >= sizeof line) {
        snprintf(err, errlen, "u-boot: command too long for the console: '%.64s...'", cmd);
        return -1;
    }
    if (rr_runner_console_type(u->sh, line, u->dev->bootloader_delay_ms, why, sizeof why) < 0) {
        snprintf(err, errlen, "u-boot: typing '%s': %s", cmd, why);
        return -1;
    }
    uint32_t limit = left_ms(u, UINT32_MAX);
    int rc = rr_runner_console_expect(u->sh, needles, last ? 2 : 1, limit, RR_UBOOT_QUIET_MS,
                                      u->output, sizeof u->output, why, sizeof why);
    if (rc < 0)
        return wait_failed(u, cmd, needles[0], rc, rc == RR_CONSOLE_QUIET ? RR_UBOOT_QUIET_MS
                           : limit, why, err, errlen);
    char failed[SHOWN_MAX];
    if (rc == 1 || rr_bootloader_failure(u->output, failed, sizeof failed)) {
        if (rc == 1 && !rr_bootloader_failure(u->output, failed, sizeof failed))
            rr_bootloader_last_line(u->output, u->prompt, failed, sizeof failed);
        echo_note(u, cmd, note, sizeof note);
        snprintf(err, errlen, "u-boot: %s failed: %s%s", cmd, failed, note);
        return -1;
    }
    return 0;
}

/* Power on to U-Boot's prompt: the autoboot line, a key, the prompt. */
static int uboot_interrupt(uboot_t *u, char *err, size_t errlen)
{
    const char *interrupt = or_default(u->dev->bootloader_interrupt, RR_UBOOT_INTERRUPT);
    const char *needles[] = { interrupt };
    char why[512] = "", last[SHOWN_MAX];
    uint32_t limit = left_ms(u, RR_UBOOT_INTERRUPT_S * 1000u);
    int rc = rr_runner_console_expect(u->sh, needles, 1, limit, 0, u->output, sizeof u->output,
                                      why, sizeof why);
    if (rc == RR_CONSOLE_FAILED) {
        snprintf(err, errlen, "u-boot: waiting for '%s': %s", interrupt, why);
        return -1;
    }
    if (rc < 0) {
        rr_bootloader_last_line(u->output, NULL, last, sizeof last);
        snprintf(err, errlen, "u-boot: no '%s' within %" PRIu32 " s (the console shows '%s')",
                 interrupt, limit / 1000, last);
        return -1;
    }
    if (rr_runner_console_type(u->sh, " ", 0, why, sizeof why) < 0) {
        snprintf(err, errlen, "u-boot: interrupting autoboot: %s", why);
        return -1;
    }
    needles[0] = u->prompt;
    limit = left_ms(u, RR_UBOOT_QUIET_MS);
    rc = rr_runner_console_expect(u->sh, needles, 1, limit, 0, u->output, sizeof u->output,
                                  why, sizeof why);
    if (rc < 0)
        return wait_failed(u, "a key at the autoboot line", u->prompt, rc, limit, why,
                           err, errlen);
    return 0;
}

int rr_bootloader_uboot_pxe(rr_runner_shell_t *sh, const rr_device_config_t *dev,
                            uint32_t timeout_s, char *err, size_t errlen)
{
    const char *const *commands;
    uboot_t *u = calloc(1, sizeof *u);      /* an output buffer per device thread */
    if (!u) {
        snprintf(err, errlen, "u-boot: out of memory");
        return -1;
    }
    u->sh = sh;
    u->dev = dev;
    u->prompt = or_default(dev->bootloader_prompt, RR_UBOOT_PROMPT);
    u->deadline = rr_mono_ms() + timeout_s * 1000ull;
    size_t count = dev->bootloader_command_count;
    commands = count ? (const char *const *)dev->bootloader_commands : default_commands;
    if (!count)
        count = sizeof default_commands / sizeof default_commands[0];
    int rc = uboot_interrupt(u, err, errlen);
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = uboot_command(u, commands[i], i + 1 == count, err, errlen);
    free(u);
    return rc;
}
