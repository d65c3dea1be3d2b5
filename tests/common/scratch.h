/* scratch.h: a temporary directory for one test program's files, removed at
 * the end (cmocka group setup/teardown). */
#ifndef RR_TEST_SCRATCH_H
#define RR_TEST_SCRATCH_H

#include <sys/types.h>

/* cmocka group setup: create the directory. */
int scratch_setup(void **state);

/* cmocka group teardown: remove the directory and everything in it. */
int scratch_teardown(void **state);

/* Write TEXT to NAME in the directory with MODE; returns the full path (static until the
 * next call with the same slot: SLOT picks one of a few buffers). */
const char *scratch_write(int slot, const char *name, const char *text, mode_t mode);

/* Full path of NAME in the directory (same slots as scratch_write). */
const char *scratch_path(int slot, const char *name);

#endif
