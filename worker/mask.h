/* mask.h: secret masking for everything a job's stream carries.
 *
 * A node may echo a secret over SOL (a typed {{secret:NAME}}, a BMC password
 * a test prints): before an event is spooled, every occurrence of every
 * secret in it is replaced by RR_MASK_TEXT. The console is a byte stream cut
 * into arbitrary chunks, so a secret may straddle two reads: the masker
 * holds back the shortest tail that could still be the start of a secret
 * (at most the longest secret's length - 1 bytes) until the next chunk says
 * whether it is one, and releases it at the end of the stream. Tests that
 * compare a log with what a node printed apply the same mask to the
 * expected text (rr_mask_string).
 */
#ifndef RACKRUN_WORKER_MASK_H
#define RACKRUN_WORKER_MASK_H

#include <stddef.h>

#define RR_MASK_TEXT "******"

typedef struct _rr_mask_t rr_mask_t;

/* Receives masked bytes, in stream order. */
typedef void (rr_mask_sink_fn)(void *arg, const char *data, size_t len);

/* A masker with no secrets (it passes everything through). NULL on ENOMEM. */
rr_mask_t *rr_mask_new(void);

/* Wipe the secrets it holds, free, NULL *SELF_P. */
void rr_mask_destroy(rr_mask_t **self_p);

/* Mask SECRET (copied; an empty or already known one is ignored). 0, or -1 on ENOMEM. */
int rr_mask_add(rr_mask_t *self, const char *secret);

/* How many secrets it masks. */
size_t rr_mask_count(const rr_mask_t *self);

/* Feed LEN bytes of the stream; what is certainly not part of a secret
 * (masked) goes to SINK now, a possible secret's start waits. A NULL SELF
 * (a masker that could not be made) lets nothing through. */
void rr_mask_feed(rr_mask_t *self, const char *data, size_t len, rr_mask_sink_fn *sink,
                  void *arg);

/* End of stream: release what was held back (it was no secret). */
void rr_mask_flush(rr_mask_t *self, rr_mask_sink_fn *sink, void *arg);

/* TEXT with every secret masked: 1 with *OUT malloc'd; 0 when TEXT (may be
 * NULL) holds none, *OUT NULL; -1 when memory ran out (do not use TEXT). */
int rr_mask_string(const rr_mask_t *self, const char *text, char **out);

#endif
