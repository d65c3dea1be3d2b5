/* bootloader.h: `boot: {method: uboot-pxe}`: U-Boot driven at its prompt over SOL.
 *
 * After power on (done by the runner): wait for U-Boot's autoboot line ("Hit
 * any key to stop autoboot"), type a key, wait for the prompt ("=> "), then
 * type each command (default: setenv autoload no, dhcp, pxe get, pxe boot),
 * paced by serial.bootloader_delay_ms, waiting for the prompt after each; the
 * last must end in the boot message ("Starting kernel"). All four texts come
 * from the device's `bootloader:` keys (docs/configuration.md), NULL meaning
 * these defaults. A command whose output holds a U-Boot failure message
 * ("Unknown command", "Config file not found", "Retry count exceeded", ...)
 * fails the boot with that line; so does a prompt that never comes back. When
 * the node's echo differs from what was typed, the reason says characters were
 * lost and names the delay (the seed: "some PXE bootloaders are unable to
 * buffer serial input"). */
#ifndef RACKRUN_BOOTLOADER_H
#define RACKRUN_BOOTLOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "runner.h"

#define RR_UBOOT_PROMPT       "=> "
#define RR_UBOOT_INTERRUPT    "Hit any key to stop autoboot"
#define RR_UBOOT_BOOT_MESSAGE "Starting kernel"
#define RR_UBOOT_INTERRUPT_S  30u     /* power on to the autoboot line, at most */
#define RR_UBOOT_QUIET_MS     10000u  /* a command printing nothing this long has hung */

/* Drive U-Boot on DEV's freshly powered-on node behind SH until it starts the
 * kernel, within TIMEOUT_S. Returns 0, or -1 with why in ERR ("u-boot: pxe get
 * failed: Config file not found"); check rr_runner_stopped for a stop. */
int rr_bootloader_uboot_pxe(rr_runner_shell_t *sh, const rr_device_config_t *dev,
                            uint32_t timeout_s, char *err, size_t errlen);

/* The first line of OUTPUT holding a U-Boot failure message, copied (without
 * line ends) into LINE; false when there is none. */
bool rr_bootloader_failure(const char *output, char *line, size_t len);

/* The last non-empty line of OUTPUT that is not just PROMPT (NULL: any), into LINE. */
void rr_bootloader_last_line(const char *output, const char *prompt, char *line, size_t len);

/* True when OUTPUT (what followed typing CMD) starts with CMD's full echo. */
bool rr_bootloader_echo_ok(const char *output, const char *cmd);

#endif
