/* confine.h: open a file strictly beneath a root directory.
 *
 * Job content names files (artifact URLs under file roots, artifact names in
 * the TFTP root and job directories). A name check alone ("..", leading '/')
 * is not enough: a symbolic link inside the root can still point out of it.
 * openat2(RESOLVE_BENEATH) makes the kernel refuse any resolution that
 * leaves the root, through "..", absolute links or magic links alike.
 */
#ifndef RACKRUN_WORKER_CONFINE_H
#define RACKRUN_WORKER_CONFINE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Open NAME (relative) beneath the directory ROOT with FLAGS/MODE (as open(2)).
 * Returns the fd, or -1 with errno (EXDEV: NAME leads out of ROOT; ENOSYS:
 * no openat2, then never opened). */
int rr_open_beneath(const char *root, const char *name, int flags, mode_t mode);

/* If the absolute PATH lies under one of ROOTS (a plain prefix test of whole
 * components), point *REL into PATH at the part beneath it and return that
 * root; else NULL. */
const char *rr_root_of(const char *path, const char *const *roots, size_t count,
                       const char **rel);

#endif
