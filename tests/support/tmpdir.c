/* tmpdir.c: scratch directories and whole files for the tests (see tmpdir.h). */
#include "tmpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOTS 8

char *tmpdir_new(const char *tag)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *path = NULL;
    if (asprintf(&path, "%s/rr-%s-XXXXXX", base, tag) < 0)
        return NULL;
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st, (void) flag, (void) ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int tmpdir_remove_tree(const char *dir)
{
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -1 : 0;
}

void tmpdir_remove(char **dir)
{
    if (!dir || !*dir)
        return;
    tmpdir_remove_tree(*dir);
    free(*dir);
    *dir = NULL;
}

char *tmpdir_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        got = fread(buf + n, 1, 4096, f);
        n += got;
    } while (got > 0);
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int tmpdir_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int rc = fwrite(data, 1, len, f) == len ? 0 : -1;
    return fclose(f) == 0 ? rc : -1;
}

int tmpdir_write_text(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    int rc = write(fd, text, len) == (ssize_t) len && fchmod(fd, mode) == 0 ? 0 : -1;
    return close(fd) == 0 ? rc : -1;
}

/* ---- one directory for the whole test program ---- */

static char *group_dir;
static char paths[SLOTS][PATH_MAX];

int tmpdir_group_setup(void **state)
{
    (void) state;
    group_dir = tmpdir_new(program_invocation_short_name);
    return group_dir ? 0 : -1;
}

int tmpdir_group_teardown(void **state)
{
    (void) state;
    tmpdir_remove(&group_dir);
    return 0;
}

const char *tmpdir_path(int slot, const char *name)
{
    char *path = paths[slot % SLOTS];
    if (!group_dir || snprintf(path, PATH_MAX, "%s/%s", group_dir, name) >= PATH_MAX)
        abort();
    return path;
}

const char *tmpdir_mkdir(int slot, const char *name)
{
    const char *path = tmpdir_path(slot, name);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        abort();
    return path;
}

const char *tmpdir_put(int slot, const char *name, const char *text, mode_t mode)
{
    const char *path = tmpdir_path(slot, name);
    if (tmpdir_write_text(path, text, mode) != 0)
        abort();
    return path;
}
