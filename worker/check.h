/* check.h: `rackrun-worker --check`, the first thing an operator runs on a new
 * rack. Without the master, it checks each device's BMC login and power status
 * (IPMI), its SOL activation, and the TFTP root's permissions, and prints a
 * table. Devices are checked one after another, each bounded by its own
 * timeouts: at worst ipmi.timeout x (1 + ipmi.retries) plus backoff (at most
 * 2 s per retry), plus 2 x sol.timeout + ipmi.timeout for SOL, per device.
 * No message ever holds a password. */
#ifndef RACKRUN_WORKER_CHECK_H
#define RACKRUN_WORKER_CHECK_H

#include <stdio.h>

#include "config.h"

/* Check every device of CONFIG and its TFTP root, printing the table to OUT.
 * Returns the number of failed devices, plus one when the TFTP root fails. */
int rr_worker_check(const rr_worker_config_t *config, FILE *out);

#endif
