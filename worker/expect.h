/* expect.h: console output not yet matched, searched for needles as it grows.
 *
 * Bytes arrive in chunks of any size (one SOL packet, one read); a needle may
 * straddle them. Needles longer than CAPACITY / 2 may be missed. rr_sol keeps one rr_expect_t per session: everything it
 * reads is fed here, and a match consumes the output up to the end of the
 * needle, so the bytes after it are still there for the next expect (a
 * prompt that arrived in the same read as the command's output is not lost).
 * Like expect(1) and pexpect, unmatched output stays until matched or pushed
 * out by the capacity (the oldest half is dropped). */
#ifndef RACKRUN_EXPECT_H
#define RACKRUN_EXPECT_H

#include <stddef.h>

typedef struct _rr_expect_t rr_expect_t;

/* New empty buffer holding at most CAPACITY unmatched bytes (>= 2). */
rr_expect_t *rr_expect_new(size_t capacity);

/* Free; NULLs *SELF. */
void rr_expect_destroy(rr_expect_t **self);

/* Look for NEEDLES (borrowed until rr_expect_disarm or the next arm) in the
 * output held and in all output fed from now on. Returns the index of the
 * needle whose first occurrence ends earliest in the output already held
 * (consuming through it), or -1. Empty needles never match. */
int rr_expect_arm(rr_expect_t *self, const char *const *needles, size_t count);

/* Stop looking; output fed meanwhile is only kept. */
void rr_expect_disarm(rr_expect_t *self);

/* Append DATA. When armed, returns the index of the needle whose first
 * occurrence ends earliest (consuming through it and disarming), else -1.
 * Never allocates. */
int rr_expect_feed(rr_expect_t *self, const char *data, size_t len);

/* Bytes held, not yet consumed by a match. */
size_t rr_expect_pending(const rr_expect_t *self);

#endif
