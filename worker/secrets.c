/* secrets.c: named job secrets from the worker's secrets_dir (secrets.h). */
#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool s_valid_name(const char *name, size_t len)
{
    static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
    if (len == 0 || len > 64 || name[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr(allowed, name[i]) || !name[i])
            return false;
    return true;
}

/* Read the open secret file FD (already checked) into *VALUE. */
static int s_read_value(int fd, const char *name, char **value, char *err, size_t errlen)
{
    char *buf = malloc(RR_SECRET_MAX + 1);
    if (!buf) {
        snprintf(err, errlen, "secret '%s': out of memory", name);
        return -1;
    }
    ssize_t n = read(fd, buf, RR_SECRET_MAX + 1);
    if (n < 0 || n > RR_SECRET_MAX) {
        snprintf(err, errlen, "secret '%s': %s", name,
                 n < 0 ? strerror(errno) : "larger than 4096 bytes");
        goto fail;
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    if (n == 0 || strlen(buf) != (size_t)n) {
        snprintf(err, errlen, "secret '%s': %s", name, n ? "holds a NUL byte" : "is empty");
        goto fail;
    }
    *value = buf;
    return 0;
fail:
    explicit_bzero(buf, RR_SECRET_MAX + 1);
    free(buf);
    return -1;
}

int rr_secret_read(const char *dir, const char *name, char **value, char *err, size_t errlen)
{
    *value = NULL;
    if (!dir) {
        snprintf(err, errlen, "secret '%s': this worker has no secrets_dir configured", name);
        return -1;
    }
    if (!s_valid_name(name, strlen(name))) {
        snprintf(err, errlen, "secret '%.64s': not a valid secret name", name);
        return -1;
    }
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        snprintf(err, errlen, "secret '%s': secrets_dir %s: %s", name, dir, strerror(errno));
        return -1;
    }
    /* NAME has no '/': O_NOFOLLOW keeps the open beneath DIR. */
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    int saved = errno;
    close(dirfd);
    if (fd < 0) {
        snprintf(err, errlen, "secret '%s': not configured on this worker (%s/%s: %s)", name,
                 dir, name, saved == ELOOP ? "a symbolic link" : strerror(saved));
        return -1;
    }
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) < 0)
        snprintf(err, errlen, "secret '%s': %s", name, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        snprintf(err, errlen, "secret '%s': %s/%s is not a regular file", name, dir, name);
    else if (st.st_mode & (S_IRWXG | S_IRWXO))
        snprintf(err, errlen, "secret '%s': %s/%s is accessible by group/others (mode %04o); "
                 "chmod 600 it", name, dir, name, (unsigned)(st.st_mode & 07777));
    else
        rc = s_read_value(fd, name, value, err, errlen);
    close(fd);
    return rc;
}

/* Append LEN bytes of DATA to *BUF (size *SIZE, used *LEN). */
static int s_append(char **buf, size_t *used, size_t *size, const char *data, size_t len)
{
    if (*used + len + 1 > *size) {
        size_t grown_size = (*used + len + 1) * 2;
        char *grown = malloc(grown_size);
        if (!grown)
            return -1;
        if (*buf) {
            memcpy(grown, *buf, *used);
            explicit_bzero(*buf, *size);    /* it may hold a secret already */
            free(*buf);
        }
        *buf = grown;
        *size = grown_size;
    }
    memcpy(*buf + *used, data, len);
    *used += len;
    (*buf)[*used] = '\0';
    return 0;
}

/* Append the value of the secret NAME (LEN bytes) and mask it. */
static int s_append_secret(const char *dir, const char *name, size_t len, rr_mask_t *mask,
                           char **buf, size_t *used, size_t *size, char *err, size_t errlen)
{
    char key[65], *value = NULL;
    if (!s_valid_name(name, len)) {
        snprintf(err, errlen, "secret reference '" RR_SECRET_REF_OPEN "%.*s}}': not a valid "
                 "secret name", (int)(len > 64 ? 64 : len), name);
        return -1;
    }
    memcpy(key, name, len);
    key[len] = '\0';
    if (rr_secret_read(dir, key, &value, err, errlen) < 0)
        return -1;
    int rc = 0;
    if ((mask && rr_mask_add(mask, value) < 0)
        || s_append(buf, used, size, value, strlen(value)) < 0) {
        snprintf(err, errlen, "secret '%s': out of memory", key);
        rc = -1;
    }
    explicit_bzero(value, strlen(value));
    free(value);
    return rc;
}

int rr_secrets_expand(const char *dir, const char *text, rr_mask_t *mask, char **out,
                      char *err, size_t errlen)
{
    char *buf = NULL;
    size_t used = 0, size = 0;
    const char *p = text;
    *out = NULL;
    for (;;) {
        const char *ref = strstr(p, RR_SECRET_REF_OPEN);
        const char *name = ref ? ref + strlen(RR_SECRET_REF_OPEN) : NULL;
        const char *close = name ? strstr(name, RR_SECRET_REF_CLOSE) : NULL;
        size_t plain = close ? (size_t)(ref - p) : strlen(p);
        if (s_append(&buf, &used, &size, p, plain) < 0) {
            snprintf(err, errlen, "secrets: out of memory");
            goto fail;
        }
        if (!close)
            break;
        if (s_append_secret(dir, name, (size_t)(close - name), mask, &buf, &used, &size, err,
                            errlen) < 0)
            goto fail;
        p = close + strlen(RR_SECRET_REF_CLOSE);
    }
    *out = buf;
    return 0;
fail:
    if (buf) {
        explicit_bzero(buf, size);
        free(buf);
    }
    return -1;
}
