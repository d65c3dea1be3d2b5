/* secrets.h: named job secrets, resolved on the worker (like LAVA's `secrets`).
 *
 * A job lists the secrets it uses (`secrets: [name]`) and refers to them in
 * test step commands as {{secret:NAME}}. The master only checks the names;
 * the values live on the worker, one file per secret in the configured
 * secrets_dir (DIR/NAME, a regular file of mode 0600 or stricter, opened
 * beneath DIR without following links; one trailing newline is dropped).
 * They are typed on the node over SOL, never sent to the master, and every
 * value a job uses is added to its masker (mask.h) before anything runs.
 */
#ifndef RACKRUN_WORKER_SECRETS_H
#define RACKRUN_WORKER_SECRETS_H

#include <stddef.h>

#include "mask.h"

#define RR_SECRET_REF_OPEN  "{{secret:"
#define RR_SECRET_REF_CLOSE "}}"
#define RR_SECRET_MAX       4096    /* bytes of one secret value */

/* Read secret NAME from DIR into *VALUE (malloc'd; wipe and free it).
 * 0, or -1 with ERR naming the secret and the problem, never the value. */
int rr_secret_read(const char *dir, const char *name, char **value, char *err, size_t errlen);

/* TEXT with each {{secret:NAME}} replaced by its value from DIR (DIR NULL:
 * no secrets configured), malloc'd into *OUT; each value is also added to
 * MASK when not NULL. 0, or -1 with ERR naming the secret. */
int rr_secrets_expand(const char *dir, const char *text, rr_mask_t *mask, char **out,
                      char *err, size_t errlen);

#endif
