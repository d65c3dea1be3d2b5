/* ipmi.h: one node's BMC over IPMI 2.0 lanplus (libfreeipmi, in-process).
 *
 * One rr_ipmi_t per node, used by one thread at a time (FreeIPMI contexts are
 * not shared across threads). Every call opens or reuses an out-of-band
 * session, has a timeout and bounded retries with backoff, and on failure
 * leaves a message naming the BMC ("bmc 127.0.0.1:9001: power on: connection
 * timed out after 3 tries") in rr_ipmi_error(). The password is never part of
 * any message. */
#ifndef RACKRUN_IPMI_H
#define RACKRUN_IPMI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _rr_ipmi_t rr_ipmi_t;

typedef enum { RR_POWER_OFF = 0, RR_POWER_ON, RR_POWER_CYCLE, RR_POWER_RESET } rr_power_op_t;
typedef enum { RR_BOOTDEV_NONE = 0, RR_BOOTDEV_PXE, RR_BOOTDEV_DISK } rr_bootdev_t;

/* New handle for the BMC at HOST:PORT. Nothing is sent yet. timeout_ms bounds
 * one attempt, retries bounds the attempts after the first. */
rr_ipmi_t *rr_ipmi_new(const char *host, uint16_t port, const char *user,
                       const char *password, uint32_t timeout_ms, uint32_t retries);

/* Close the session and free the handle; NULLs *SELF. */
void rr_ipmi_destroy(rr_ipmi_t **self);

/* Chassis control: on, off, cycle, reset. Returns 0 or -1. */
int rr_ipmi_power(rr_ipmi_t *self, rr_power_op_t op);

/* Read power state into *ON. Returns 0 or -1. */
int rr_ipmi_power_status(rr_ipmi_t *self, bool *on);

/* Set the next boot device (persistent = false: next boot only). Returns 0 or -1. */
int rr_ipmi_set_bootdev(rr_ipmi_t *self, rr_bootdev_t dev, bool persistent);

/* Read the boot device the BMC holds. Returns 0 or -1. */
int rr_ipmi_get_bootdev(rr_ipmi_t *self, rr_bootdev_t *dev);

/* Close the session now if one is open (the next call opens a fresh one):
 * its memory is not held while the BMC is not needed. */
void rr_ipmi_close(rr_ipmi_t *self);

/* Deactivate an SOL payload held by another session (stale "already active"). */
int rr_ipmi_sol_deactivate(rr_ipmi_t *self);

/* The last error, naming host:port and the operation; "" when none. */
const char *rr_ipmi_error(const rr_ipmi_t *self);

/* "host:port" of this BMC. */
const char *rr_ipmi_target(const rr_ipmi_t *self);

/* Write HOST:PORT as FreeIPMI takes it and messages name a BMC ("127.0.0.1:9001",
 * "[::1]:9001": a bare IPv6 address gets brackets) into BUF. 0, or -1 when it
 * does not fit. */
int rr_ipmi_format_target(char *buf, size_t len, const char *host, uint16_t port);

#endif
