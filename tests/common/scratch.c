/* scratch.c: see scratch.h. */
#include "scratch.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOTS 4

static char scratch_dir[PATH_MAX];
static char paths[SLOTS][PATH_MAX];

int scratch_setup(void **state)
{
    snprintf(scratch_dir, sizeof scratch_dir, "/tmp/rr-common-test-XXXXXX");
    return mkdtemp(scratch_dir) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

int scratch_teardown(void **state)
{
    if (scratch_dir[0])
        nftw(scratch_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

const char *scratch_path(int slot, const char *name)
{
    if (snprintf(paths[slot % SLOTS], PATH_MAX, "%s/%s", scratch_dir, name) >= PATH_MAX)
        abort();
    return paths[slot % SLOTS];
}

const char *scratch_write(int slot, const char *name, const char *text, mode_t mode)
{
    const char *path = scratch_path(slot, name);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len || fchmod(fd, mode) < 0)
        abort();
    close(fd);
    return path;
}
