/* tftp.c: artifact downloads (libcurl, libsodium sha256) and pxelinux configs. */
#include "tftp.h"
#include "confine.h"
#include "digest.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_BYTES  (4ull << 30)
#define DEFAULT_TRIES      3u
#define DEFAULT_BACKOFF_MS 1000u
#define DEFAULT_TIMEOUT_S  600u

int rr_tftp_path(const char *root, const char *name, char *out, size_t outlen,
                 char *err, size_t errlen)
{
    if (!name || !*name || name[0] == '/') {
        snprintf(err, errlen, "tftp path '%s': must be relative to the TFTP root", name ? name : "");
        return -1;
    }
    const char *p = name;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || (n == 2 && !strncmp(p, "..", 2)) || (n == 1 && *p == '.')) {
            snprintf(err, errlen, "tftp path '%s': '.', '..' and empty components are refused", name);
            return -1;
        }
        p += n + (slash ? 1 : 0);
        if (slash && !*p) {
            snprintf(err, errlen, "tftp path '%s': trailing '/'", name);
            return -1;
        }
    }
    if ((size_t)snprintf(out, outlen, "%s/%s", root, name) >= outlen) {
        snprintf(err, errlen, "tftp path '%s': too long", name);
        return -1;
    }
    return 0;
}

int rr_tftp_mkdirs(const char *root, const char *name, char *err, size_t errlen)
{
    char path[4096];
    if (rr_tftp_path(root, name, path, sizeof path, err, errlen) < 0)
        return -1;
    size_t skip = strlen(root) + 1;
    for (char *p = path + skip;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "tftp mkdir %s: %s", path, strerror(errno));
            return -1;
        }
        *p = saved;
        if (!saved)
            return 0;
    }
}

/* ---- downloads ---- */

typedef struct {
    FILE *out;
    crypto_hash_sha256_state sha;
    uint64_t size, max;
    bool too_big;
    const rr_download_opts_t *opts;
} dl_state_t;

static size_t dl_write(char *data, size_t size, size_t nmemb, void *arg)
{
    dl_state_t *st = arg;
    size_t n = size * nmemb;
    if (st->size + n > st->max) {
        st->too_big = true;
        return 0;
    }
    if (fwrite(data, 1, n, st->out) != n)
        return 0;
    crypto_hash_sha256_update(&st->sha, (const unsigned char *)data, n);
    st->size += n;
    return n;
}

static int dl_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    dl_state_t *st = arg;
    return st->opts->abort && st->opts->abort(st->opts->abort_arg) ? 1 : 0;
}

typedef enum { DL_OK, DL_RETRY, DL_FAIL } dl_result_t;

/* One attempt into TMP. */
static dl_result_t dl_attempt(const char *fetch, const char *url, const char *tmp,
                              dl_state_t *st, char *err, size_t errlen)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    st->out = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!st->out) {
        if (fd >= 0)
            close(fd);
        snprintf(err, errlen, "download %s: create %s: %s", url, tmp, strerror(errno));
        return DL_FAIL;
    }
    st->size = 0;
    st->too_big = false;
    crypto_hash_sha256_init(&st->sha);
    CURL *curl = curl_easy_init();
    if (!curl) {
        fclose(st->out);
        snprintf(err, errlen, "download %s: curl init failed", url);
        return DL_FAIL;
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, fetch);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)(st->opts->timeout_s ? st->opts->timeout_s
                                                                       : DEFAULT_TIMEOUT_S));
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)st->max);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, dl_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, st);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, dl_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, st);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    bool flushed = fflush(st->out) == 0 && fsync(fileno(st->out)) == 0;
    fclose(st->out);
    st->out = NULL;

    if (st->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(err, errlen, "download %s: larger than the limit of %llu bytes", url,
                 (unsigned long long)st->max);
        return DL_FAIL;
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(err, errlen, "download %s: canceled", url);
        return DL_FAIL;
    }
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "download %s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
        bool transient = rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_CONNECT
                         || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR
                         || rc == CURLE_PARTIAL_FILE || rc == CURLE_GOT_NOTHING;
        return transient ? DL_RETRY : DL_FAIL;
    }
    if (status >= 400) {
        snprintf(err, errlen, "download %s: HTTP %ld", url, status);
        return status >= 500 ? DL_RETRY : DL_FAIL;
    }
    if (!flushed) {
        snprintf(err, errlen, "download %s: write %s: %s", url, tmp, strerror(errno));
        return DL_FAIL;
    }
    return DL_OK;
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int dl_verify(const char *url, dl_state_t *st, const char *sha256, char *sha_hex,
                     char *err, size_t errlen)
{
    rr_sha256_final_hex(&st->sha, sha_hex);
    if (sha256 && strcasecmp(sha256, sha_hex)) {
        snprintf(err, errlen, "download %s: sha256 mismatch: expected %s, got %s", url, sha256,
                 sha_hex);
        return -1;
    }
    return 0;
}

static int download_to(const char *fetch, const char *url, const char *path, const char *sha256,
                       const rr_download_opts_t *opts, uint64_t *size, char *sha256_out,
                       char *err, size_t errlen);

/* The scheme of URL is one rackrun downloads from. */
static int check_scheme(const char *url, char *err, size_t errlen)
{
    static const char *const schemes[] = { "http://", "https://", "file://" };
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        if (strncasecmp(url, schemes[i], strlen(schemes[i])) == 0)
            return 0;
    snprintf(err, errlen, "download %.200s: URL scheme not allowed (http, https, file)", url);
    return -1;
}

/* A confined file:// URL: open its file beneath the root it names, and read
 * that very file through /proc/self/fd (into LOCAL) so nothing can swap it. */
static int open_file_url(const char *url, const rr_download_opts_t *opts, int *fd,
                         char *local, size_t locallen, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *path = NULL;
    int rc = -1;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) != CURLUE_OK) {
        snprintf(err, errlen, "download %.200s: not a valid file URL", url);
        goto out;
    }
    const char *rel = NULL;
    const char *root = rr_root_of(path, opts->file_roots, opts->file_root_count, &rel);
    if (!root) {
        snprintf(err, errlen, "download %.200s: file URLs are allowed only beneath the "
                 "worker's file_roots (%s)", url,
                 opts->file_root_count ? "this path is under none" : "none configured");
        goto out;
    }
    *fd = rr_open_beneath(root, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
    struct stat st;
    if (*fd < 0 || fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "download %.200s: %s", url, *fd < 0 && errno == EXDEV
                 ? "leads out of its file root (.., or a symbolic link)"
                 : *fd < 0 ? strerror(errno) : "not a regular file");
        goto out;
    }
    snprintf(local, locallen, "file:///proc/self/fd/%d", *fd);
    rc = 0;
out:
    curl_free(path);
    curl_url_cleanup(u);
    return rc;
}

int rr_tftp_download(const char *url, const char *path, const char *sha256,
                     const rr_download_opts_t *opts, uint64_t *size, char *sha256_out,
                     char *err, size_t errlen)
{
    static const rr_download_opts_t defaults = { 0 };
    if (!opts)
        opts = &defaults;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "download %s: libsodium init failed", url);
        return -1;
    }
    if (check_scheme(url, err, errlen) < 0)
        return -1;
    int file_fd = -1;
    char local[64];
    if (opts->confine_files && strncasecmp(url, "file://", 7) == 0) {
        if (open_file_url(url, opts, &file_fd, local, sizeof local, err, errlen) < 0) {
            if (file_fd >= 0)
                close(file_fd);
            return -1;
        }
    }
    int rc = download_to(file_fd >= 0 ? local : url, url, path, sha256, opts, size, sha256_out,
                         err, errlen);
    if (file_fd >= 0)
        close(file_fd);
    return rc;
}

/* rr_tftp_download from FETCH (URL or its confined stand-in); errors name URL. */
static int download_to(const char *fetch, const char *url, const char *path, const char *sha256,
                       const rr_download_opts_t *opts, uint64_t *size, char *sha256_out,
                       char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    dl_state_t st = { .max = opts->max_bytes ? opts->max_bytes : DEFAULT_MAX_BYTES, .opts = opts };
    uint32_t tries = opts->tries ? opts->tries : DEFAULT_TRIES;
    uint32_t delay = opts->backoff_ms ? opts->backoff_ms : DEFAULT_BACKOFF_MS;
    dl_result_t res = DL_FAIL;
    for (uint32_t i = 0; i < tries; i++) {
        if (i) {
            sleep_ms(delay);
            delay *= 2;
        }
        res = dl_attempt(fetch, url, tmp, &st, err, errlen);
        if (res != DL_RETRY || (opts->abort && opts->abort(opts->abort_arg)))
            break;
    }
    if (res == DL_RETRY) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " (after %u tries)", tries);
    }
    char sha_hex[RR_SHA256_HEX];
    if (res != DL_OK || dl_verify(url, &st, sha256, sha_hex, err, errlen) < 0)
        goto err_unlink;
    if (rename(tmp, path) < 0) {
        snprintf(err, errlen, "download %s: rename to %s: %s", url, path, strerror(errno));
        goto err_unlink;
    }
    if (size)
        *size = st.size;
    if (sha256_out)
        memcpy(sha256_out, sha_hex, sizeof sha_hex);
    return 0;

err_unlink:
    unlink(tmp);
    return -1;
}

/* ---- pxelinux ---- */

int rr_pxe_config_name(const char *mac, char *out, size_t outlen)
{
    char dashed[18];
    if (strlen(mac) != 17)
        return -1;
    for (int i = 0; i < 17; i++) {
        char c = mac[i];
        if (i % 3 == 2) {
            if (c != ':' && c != '-')
                return -1;
            dashed[i] = '-';
        } else {
            if (!isxdigit((unsigned char)c))
                return -1;
            dashed[i] = (char)tolower((unsigned char)c);
        }
    }
    dashed[17] = '\0';
    return (size_t)snprintf(out, outlen, "pxelinux.cfg/01-%s", dashed) < outlen ? 0 : -1;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Write TEXT to PATH through PATH.tmp + fsync + rename. */
static int write_atomic(const char *path, const char *text, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "pxelinux %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
        snprintf(err, errlen, "pxelinux %s: write: %s", tmp, strerror(errno));
        goto err_close;
    }
    if (close(fd) < 0) {
        fd = -1;
        snprintf(err, errlen, "pxelinux %s: close: %s", tmp, strerror(errno));
        goto err_close;
    }
    if (rename(tmp, path) < 0) {
        snprintf(err, errlen, "pxelinux %s: rename: %s", path, strerror(errno));
        fd = -1;
        goto err_close;
    }
    return 0;

err_close:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return -1;
}

static bool has_newline(const char *s)
{
    return s && strpbrk(s, "\r\n");
}

int rr_pxe_write(const char *root, const char *mac, const char *kernel, const char *initrd,
                 const char *fdt, const char *append, char *err, size_t errlen)
{
    char name[64], path[4096];
    if (rr_pxe_config_name(mac, name, sizeof name) < 0) {
        snprintf(err, errlen, "pxelinux: '%s' is not a MAC address", mac);
        return -1;
    }
    if (has_newline(kernel) || has_newline(initrd) || has_newline(fdt) || has_newline(append)) {
        snprintf(err, errlen, "pxelinux %s: a line break in kernel/initrd/fdt/append", name);
        return -1;
    }
    if (rr_tftp_mkdirs(root, "pxelinux.cfg", err, errlen) < 0
        || rr_tftp_path(root, name, path, sizeof path, err, errlen) < 0)
        return -1;
    char text[8192];
    int n = snprintf(text, sizeof text,
                     "# written by rackrun-worker; removed after the job\n"
                     "default rackrun\n"
                     "label rackrun\n"
                     "  kernel %s\n%s%s%s%s%s%s%s%s%s",
                     kernel, initrd ? "  initrd " : "", initrd ? initrd : "", initrd ? "\n" : "",
                     fdt ? "  fdt " : "", fdt ? fdt : "", fdt ? "\n" : "",
                     append ? "  append " : "", append ? append : "", append ? "\n" : "");
    if (n < 0 || (size_t)n >= sizeof text) {
        snprintf(err, errlen, "pxelinux %s: config too long", name);
        return -1;
    }
    return write_atomic(path, text, err, errlen);
}

int rr_pxe_remove(const char *root, const char *mac, char *err, size_t errlen)
{
    char name[64], path[4096];
    if (rr_pxe_config_name(mac, name, sizeof name) < 0) {
        snprintf(err, errlen, "pxelinux: '%s' is not a MAC address", mac);
        return -1;
    }
    if (rr_tftp_path(root, name, path, sizeof path, err, errlen) < 0)
        return -1;
    if (unlink(path) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "pxelinux %s: remove: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
