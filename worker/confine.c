/* confine.c: opens confined beneath a root (confine.h), with openat2(2).
 *
 * glibc has no openat2 wrapper before 2.39 (not on Debian 12), so the system
 * call is made directly. Without openat2 (Linux < 5.6) nothing is opened:
 * falling back to a name check would silently lose the symlink guarantee.
 */
#include "confine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int rr_open_beneath(const char *root, const char *name, int flags, mode_t mode)
{
    if (!name || !*name || name[0] == '/') {
        errno = EXDEV;
        return -1;
    }
    int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return -1;
    struct open_how how = {
        .flags = (unsigned long long)(flags | O_CLOEXEC),
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    int fd = (int)syscall(SYS_openat2, rootfd, name, &how, sizeof how);
    int saved = errno;
    close(rootfd);
    errno = saved;
    return fd;
}

const char *rr_root_of(const char *path, const char *const *roots, size_t count,
                       const char **rel)
{
    for (size_t i = 0; i < count; i++) {
        size_t n = strlen(roots[i]);
        while (n > 1 && roots[i][n - 1] == '/')
            n--;                        /* "/srv/a/" is "/srv/a" */
        if (strncmp(path, roots[i], n) == 0 && path[n] == '/' && path[n + 1]) {
            *rel = path + n + 1;
            while (**rel == '/')
                (*rel)++;
            return roots[i];
        }
    }
    return NULL;
}
