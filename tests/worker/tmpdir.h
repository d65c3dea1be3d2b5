/* tmpdir.h: a scratch directory per test, removed with everything in it. */
#ifndef RR_TEST_TMPDIR_H
#define RR_TEST_TMPDIR_H

/* Create a fresh directory under $TMPDIR (or /tmp); malloc'd path, NULL on error. */
char *tmpdir_new(const char *tag);

/* Remove DIR recursively and free the path; NULLs *DIR. */
void tmpdir_remove(char **dir);

/* malloc'd contents of file PATH (NUL-terminated), length in *LEN; NULL if unreadable. */
char *tmpdir_slurp(const char *path, size_t *len);

/* Write LEN bytes of DATA to PATH. Returns 0 or -1. */
int tmpdir_write(const char *path, const void *data, size_t len);

#endif
