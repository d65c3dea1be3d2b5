/* jobyaml.h: a submitted job's YAML -> a validated, normalised proto_jobdef_t.
 *
 * The master validates the whole definition at submit time; every error
 * names where it is (1-based line and column), the key path and what is
 * wrong, e.g.
 *   "line 7, column 5: actions[1].boot.method: unknown method 'ipxe'
 *    (expected ipmi-pxe, ipmi-disk, uboot-pxe)"
 * Normalised means defaults filled: priority 50, job timeout 30m, action
 * timeout 10m (each action without its own gets it), boot prompts ["# "];
 * tags sorted and deduplicated. Action indexes in paths count from 0.
 */
#ifndef RACKRUN_JOBYAML_H
#define RACKRUN_JOBYAML_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define RR_JOBYAML_MAX_SIZE (1024u * 1024u) /* largest document accepted, bytes */

typedef struct {
    uint32_t line;   /* 1-based, 0 = not located */
    uint32_t col;    /* 1-based, 0 = not located */
    char path[128];  /* key path, "actions[1].boot.method"; "" = the document */
    char text[320];  /* the whole message, "line 7, column 5: actions[1]...: ..." */
} rr_jobyaml_error_t;

/* Parse and validate TEXT (LEN bytes, need not be NUL-terminated). Returns 0
 * with *DEF set (free with proto_jobdef_destroy), or -1 with ERR filled and
 * *DEF NULL. */
int rr_jobyaml_parse(const char *text, size_t len, proto_jobdef_t **def, rr_jobyaml_error_t *err);

#endif
