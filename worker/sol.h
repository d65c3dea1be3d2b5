/* sol.h: one node's Serial-over-LAN console (rackrun's SOL engine, sol_engine.h).
 *
 * Opened and confirmed up before the node is powered on, held while the node
 * is in use (conman-style), so no boot line is lost. The engine copes with
 * what stock ipmi_sim needs (see docs/rig.md). Reads are non-blocking through a
 * pollable fd; writes are paced one character at a time with the configured
 * per-character delay, because many bootloaders cannot buffer serial input. */
#ifndef RACKRUN_SOL_H
#define RACKRUN_SOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct _rr_sol_t rr_sol_t;

/* Receives console output as it is read (for the job log); may be NULL. */
typedef void (rr_sol_sink_fn)(void *arg, const char *data, size_t len);

/* Open an SOL session to HOST:PORT and wait until it is up (at most
 * timeout_ms). A stale "SOL payload already active" is deactivated and retried
 * once. Returns NULL with a message naming the BMC in ERR. */
rr_sol_t *rr_sol_open(const char *host, uint16_t port, const char *user, const char *password,
                      uint32_t timeout_ms, char *err, size_t errlen);

/* Close the session and free; NULLs *SELF. */
void rr_sol_destroy(rr_sol_t **self);

/* File descriptor to poll for readability (console output or session loss). */
int rr_sol_fd(const rr_sol_t *self);

/* Read what the node printed, without blocking. Returns bytes read, 0 when
 * nothing is waiting, -1 when the session is lost (rr_sol_error says why). */
ssize_t rr_sol_read(rr_sol_t *self, void *buf, size_t len);

/* Read until any of the NEEDLES appears in the output or timeout_ms passes.
 * Every byte read is passed to SINK (if not NULL) as it arrives. Returns the
 * index of the needle found, -1 on timeout, -2 on session loss. */
int rr_sol_expect(rr_sol_t *self, const char *const *needles, size_t count, uint32_t timeout_ms,
                  rr_sol_sink_fn *sink, void *arg);

/* Type DATA one character at a time, waiting delay_ms between characters,
 * timed from the node's echo of each one when it echoes (so the node never
 * gets two closer than delay_ms, whatever the BMC path's jitter), else at most
 * delay_ms after it; output arriving meanwhile goes to SINK, so none is lost or
 * left to pile up. A session's first typing starts with one ^U (kill line)
 * sent alone, 100 ms ahead: BMCs like stock ipmi_sim may drop a new session's
 * first packet (sol.c). Returns 0, or -1 when the session is lost. */
int rr_sol_type(rr_sol_t *self, const char *data, size_t len, uint32_t delay_ms,
                rr_sol_sink_fn *sink, void *arg);

/* Why the session failed, naming the BMC; "" when none. */
const char *rr_sol_error(const rr_sol_t *self);

#endif
