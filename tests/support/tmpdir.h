/* tmpdir.h: scratch directories and whole files for the tests: a directory
 * per test (tmpdir_new) or one for a whole test program (the cmocka group
 * fixture tmpdir_group_setup/teardown, with tmpdir_path and friends), removed
 * with everything in it. Part of rr_testsupport. */
#ifndef RR_TEST_TMPDIR_H
#define RR_TEST_TMPDIR_H

#include <stddef.h>
#include <sys/types.h>

/* Create a fresh directory under $TMPDIR (or /tmp); malloc'd path, NULL on error. */
char *tmpdir_new(const char *tag);

/* Remove DIR recursively and free the path; NULLs *DIR. */
void tmpdir_remove(char **dir);

/* Remove DIR and everything in it (what is already gone is fine). 0, or -1 with errno. */
int tmpdir_remove_tree(const char *dir);

/* malloc'd contents of file PATH (NUL-terminated), length in *LEN (may be NULL);
 * NULL (errno set) if it cannot be read. */
char *tmpdir_slurp(const char *path, size_t *len);

/* Write LEN bytes of DATA to PATH. Returns 0 or -1. */
int tmpdir_write(const char *path, const void *data, size_t len);

/* Replace PATH by a file holding TEXT with MODE exactly (whatever the umask). 0 or -1. */
int tmpdir_write_text(const char *path, const char *text, mode_t mode);

/* ---- one directory for the whole test program ---- */

/* cmocka group setup: create the program's directory. */
int tmpdir_group_setup(void **state);

/* cmocka group teardown: remove it and everything in it. */
int tmpdir_group_teardown(void **state);

/* Path of NAME in the program's directory; SLOT (0-7) picks one of 8 static buffers. */
const char *tmpdir_path(int slot, const char *name);

/* Create directory NAME (one level; it may exist) there; its path in SLOT. Aborts on failure. */
const char *tmpdir_mkdir(int slot, const char *name);

/* Write TEXT with MODE as NAME there (tmpdir_write_text); its path in SLOT. Aborts on failure. */
const char *tmpdir_put(int slot, const char *name, const char *text, mode_t mode);

#endif
