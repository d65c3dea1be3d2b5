/* transfer.h: `transfer: {from: PATH_ON_NODE, to: NAME}`: a file off the node.
 *
 * Through the node's shell (SOL) the worker checks the file exists, makes sure
 * busybox httpd serves / on the node's port 80 (starting it if needed) and reads
 * the file's size and sha256 as the node sees them. Then it fetches
 * http://<device http>/<path> with libcurl (the device's `http:` key: the
 * node's port 80 as the worker reaches it, e.g. a forwarded 127.0.0.1 port) into
 * <artifacts_dir>/<job>/<NAME>, checking both against the node's, marks it for
 * upload to the master (upload.h) and emits an `artifact` event (name, value =
 * sha256, code = size). */
#ifndef RACKRUN_TRANSFER_H
#define RACKRUN_TRANSFER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "proto.h"
#include "runner.h"

/* Run transfer action A of JOB on DEV's node behind SH within TIMEOUT_S.
 * Returns 0, or -1 with the reason in ERR. */
int rr_transfer_run(rr_runner_shell_t *sh, const rr_device_config_t *dev, uint64_t job,
                    const proto_action_t *a, uint32_t timeout_s, char *err, size_t errlen);

/* "http://HOST:PORT" + PATH with each path segment %-escaped into OUT. -1 if too long. */
int rr_transfer_url(const char *http, const char *path, char *out, size_t outlen);

#endif
