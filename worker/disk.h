/* disk.h: `deploy: {to: disk}`: the node, PXE-booted into its initrd, writes an
 * image onto its own disk.
 *
 * The worker types one command into the node's shell over SOL: the node pulls
 * the image from the URL itself (busybox wget; gunzip on the way when the URL
 * ends in .gz), writes it to the device (tee DEV | wc -c: the size), syncs, drops
 * the page cache and reads the written bytes back through sha256sum. The job's
 * sha256 is that of what lands on the disk (the uncompressed image); a mismatch,
 * a download error (HTTP 404...) or a write error fails the action with the
 * node's own message. Nothing is downloaded by the worker. */
#ifndef RACKRUN_DISK_H
#define RACKRUN_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "runner.h"

/* Run deploy-to-disk action A on the node behind SH within TIMEOUT_S.
 * Returns 0, or -1 with the reason in ERR. */
int rr_disk_deploy(rr_runner_shell_t *sh, const proto_action_t *a, uint32_t timeout_s,
                   char *err, size_t errlen);

/* The last line of OUT that starts with one of the PROGS ("wget: ", NULL-ended)
 * into BUF (control characters dropped); "" when there is none. */
const char *rr_disk_node_complaint(const char *out, const char *const *progs, char *buf,
                                   size_t len);

#endif
