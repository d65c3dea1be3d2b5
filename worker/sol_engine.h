/* sol_engine.h: IPMI 2.0 (RMCP+) Serial-over-LAN sessions on one engine thread.
 *
 * A lean replacement for libipmiconsole built on libfreeipmi's packet, crypto
 * and command functions: every session of the process is multiplexed on ONE
 * engine thread (started on first use), whose large fiid scratch objects all
 * sessions share, so a session costs a few KB. Cipher suite 3 (HMAC-SHA1,
 * HMAC-SHA1-96, AES-CBC-128), privilege ADMIN, and the quirks stock ipmi_sim
 * needs (privilege in Open Session, no Get Channel Payload Support, its SOL
 * payload size ignored: docs/rig.md). The console bytes travel both ways on a
 * SOCK_STREAM socket; EOF on it means the session ended, and
 * rr_sol_session_error says why, naming the BMC. A keepalive IPMI message goes
 * every timeout/3 whatever the SOL traffic (stock ipmi_sim closes a session 30 s
 * after its last IPMI message, SOL packets or not). */
#ifndef RACKRUN_SOL_ENGINE_H
#define RACKRUN_SOL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _rr_sol_session_t rr_sol_session_t;

/* Open an SOL session to HOST:PORT (IPv4 or IPv6 literal or name) and block
 * until its payload is active or it failed (at most about timeout_ms); the
 * session then times out after timeout_ms without a valid packet from the
 * BMC. An active payload of another session is deactivated and activation
 * retried once. Returns NULL with the reason, naming the BMC, in ERR; *IN_USE
 * (if not NULL) says the payload was still active on another session. */
rr_sol_session_t *rr_sol_session_open(const char *host, uint16_t port, const char *user,
                                      const char *password, uint32_t timeout_ms, char *err,
                                      size_t errlen, bool *in_use);

/* Our end of the console socket (non-blocking): read what the node printed,
 * write what to type; EOF when the session ended. */
int rr_sol_session_fd(const rr_sol_session_t *self);

/* "host:port" ("[v6]:port") of the session's BMC, as messages name it. */
const char *rr_sol_session_target(const rr_sol_session_t *self);

/* Why the session ended, naming the BMC ("bmc 127.0.0.1:9001: sol: no answer
 * from the BMC for 10000 ms"); "" while it runs. Copied into BUF. */
void rr_sol_session_error(rr_sol_session_t *self, char *buf, size_t len);

/* Deactivate the payload and close the session (best effort, in the engine,
 * within about a second), close the fd, free; NULLs *SELF. */
void rr_sol_session_destroy(rr_sol_session_t **self);

#endif
