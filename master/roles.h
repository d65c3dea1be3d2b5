/* roles.h: what a client key may do on the master's client endpoint.
 *
 * A client certificate carries its role in its metadata ("role" = read,
 * submit or admin; `rackrun keygen --role` writes it). A certificate without
 * a role is read-only: the least a key can do is the default. Roles nest:
 *   read    JOBS, JOB, LOGS (also following), WORKERS, DEVICES
 *   submit  + SUBMIT, CANCEL
 *   admin   + DEVICE_SET (device state: maintenance on/off), CONSOLE_INPUT
 *           (typing into the console of a device in maintenance)
 */
#ifndef RACKRUN_MASTER_ROLES_H
#define RACKRUN_MASTER_ROLES_H

#include <stdbool.h>

#include "proto.h"

typedef enum {
    RR_ROLE_NONE = 0,       /* nothing: unknown requests */
    RR_ROLE_READ,
    RR_ROLE_SUBMIT,
    RR_ROLE_ADMIN,
} rr_role_t;

#define RR_ROLE_DEFAULT RR_ROLE_READ   /* a client certificate without "role" */

/* "read", "submit", "admin" ("none" for RR_ROLE_NONE). */
const char *rr_role_name(rr_role_t role);

/* Parse TEXT ("read" | "submit" | "admin") into *ROLE. 0, or -1 when it is none of them. */
int rr_role_parse(const char *text, rr_role_t *role);

/* The least role a client needs to send a message of TYPE (RR_ROLE_NONE: no role may). */
rr_role_t rr_role_needed(proto_type_t type);

/* Whether HELD is enough for NEEDED. */
bool rr_role_allows(rr_role_t held, rr_role_t needed);

#endif
