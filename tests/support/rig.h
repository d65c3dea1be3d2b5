/* rig.h: the emulated rack for tests (C side of tests/rig/rig.py).
 *
 * rr_rig_start() runs `python3 tests/rig/rig.py` with a pipe on its stdin and
 * waits until it prints READY: N stock ipmi_sim BMCs on 127.0.0.1 (user
 * "admin", a random password), each wired to a "fast shell node" (an
 * interactive /bin/sh with PS1='# ' behind a persistent pty that is the BMC's
 * SOL device). Closing the pipe stops the rig, so a test that crashes also
 * stops every process the rig started. See docs/rig.md for the files a node
 * writes (console.out, console.in.tsv, hook.log) and the stock ipmi_sim bugs.
 *
 * Every reader below returns NULL / false / -1 on error and prints why on
 * stderr, naming the rig directory and node. Start and stop a rig from the
 * same long-lived thread (rig.py gets PR_SET_PDEATHSIG for the thread that
 * forked it). Commands (rr_rig_bmc, rr_rig_node_power, rr_rig_pids) are not
 * thread-safe; the readers are. */
#ifndef RACKRUN_TESTS_RIG_H
#define RACKRUN_TESTS_RIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    char name[32];      /* "n01", "n02", ... (prefix from --base-name) */
    char host[64];      /* "127.0.0.1" */
    uint16_t port;      /* BMC UDP port (IPMI 2.0 lanplus, cipher suite 3) */
    char user[32];      /* "admin" */
    char password[64];  /* random per run unless --password-file */
    char mac[18];       /* "52:54:00:00:00:01" for index 0 */
    char dir[4096];     /* that node's state dir */
} rr_rig_node_t;

typedef struct _rr_rig_t rr_rig_t;

/* One received serial byte as logged in console.in.tsv. */
typedef struct {
    uint64_t ns;    /* CLOCK_MONOTONIC nanoseconds when the rig read it */
    uint8_t byte;
    bool from_sol;  /* false: typed through console.sock (rr_rig_console_connect) */
    bool dropped;   /* dropped by --lossy-ms */
} rr_rig_rx_t;

/* Start a rig of NODES nodes (all powered off); OPTIONS is NULL or extra
 * rig.py arguments ("--tftp-root /x --lossy-ms 5"). Waits at most 30 s for
 * READY. Returns NULL (with the reason on stderr) on failure. */
rr_rig_t *rr_rig_start(size_t nodes, const char *options);

/* Stop every process the rig started, remove its state dir (kept when
 * RR_KEEP_RIG=1, or when the rig failed), free, and NULL *SELF. A test that
 * fails an assertion before calling this keeps the dir; its rig still stops
 * when the test process exits. */
void rr_rig_stop(rr_rig_t **self);

/* Number of nodes. */
size_t rr_rig_size(const rr_rig_t *self);

/* Node INDEX (0-based), or NULL when out of range. */
const rr_rig_node_t *rr_rig_node(const rr_rig_t *self, size_t index);

/* The rig's state directory (holds rig.json, rig.log, bmc.password, nXX/). */
const char *rr_rig_dir(const rr_rig_t *self);

/* Path of a 0600 file holding the BMC password (for password_file configs). */
const char *rr_rig_password_file(const rr_rig_t *self);

/* malloc'd, NUL-terminated contents of file NAME in node INDEX's dir; its
 * length (without the NUL) in *LEN if LEN is not NULL. */
char *rr_rig_node_file(const rr_rig_t *self, size_t index, const char *name, size_t *len);

/* malloc'd bytes the node printed on its serial line (raw, exact, across
 * power cycles; NUL-terminated as a convenience). */
char *rr_rig_console_out(const rr_rig_t *self, size_t index, size_t *len);

/* malloc'd text of the node's hook.log: "<monotonic_ns>\t<hook args>\n" per
 * chassis_control call ("set power 1", "set boot pxe", "get power" ...). */
char *rr_rig_hook_log(const rr_rig_t *self, size_t index, size_t *len);

/* malloc'd array of every byte the node received, in order, with its time;
 * the count in *COUNT. NULL with *COUNT 0 when nothing was received yet. */
rr_rig_rx_t *rr_rig_console_in(const rr_rig_t *self, size_t index, size_t *count);

/* Wait until console.out, from byte offset FROM on, contains NEEDLE; false
 * after TIMEOUT_MS. */
bool rr_rig_wait_console(const rr_rig_t *self, size_t index, size_t from, const char *needle,
                         int timeout_ms);

/* Wait until hook.log has a call whose arguments equal ARGS ("set power 1");
 * false after TIMEOUT_MS. */
bool rr_rig_wait_hook(const rr_rig_t *self, size_t index, const char *args, int timeout_ms);

/* Node power as the rig sees it: 1 on, 0 off, -1 error. */
int rr_rig_power(const rr_rig_t *self, size_t index);

/* Act on node INDEX's BMC (ipmi_sim): "kill" (SIGKILL), "stop" (SIGSTOP),
 * "cont" (SIGCONT), "start" (start again after kill, same port and config),
 * "restart" (kill + start; clears stock ipmi_sim's stuck-SOL bug). Returns 0
 * once done (for start/restart: the BMC answers again), -1 on error. */
int rr_rig_bmc(rr_rig_t *self, size_t index, const char *action);

/* Switch node INDEX's power without IPMI: "on", "off" or "reset" (as the
 * BMC's chassis_control hook would; hook.log does not record it). 0 or -1. */
int rr_rig_node_power(rr_rig_t *self, size_t index, const char *action);

/* Connect to node INDEX's console tap (nXX/console.sock): reads get a copy of
 * everything the node prints from now on, writes are typed into the node as
 * if they came from the serial line. Returns a socket fd (caller closes), -1
 * on error. */
int rr_rig_console_connect(const rr_rig_t *self, size_t index);

/* PIDs of every process the rig runs right now (rig.py itself, each
 * ipmi_sim, each node shell and its session) into PIDS (at most MAX).
 * Returns how many there are (may exceed MAX), or -1 on error. */
ssize_t rr_rig_pids(rr_rig_t *self, pid_t *pids, size_t max);

#endif
