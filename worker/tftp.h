/* tftp.h: the worker's TFTP root: artifacts and pxelinux configs.
 *
 * Artifacts are downloaded with libcurl (http, https, file) into
 * <root>/files/<device>/<role>, via a temp file renamed into place, with a
 * size limit, an optional sha256 check (libsodium), and bounded retries with
 * backoff on 5xx and timeouts (none on 4xx). pxelinux.cfg/01-<mac-with-dashes>
 * is written atomically (temp + fsync + rename) and removed after the job.
 * No path ever leaves the root: names with ".." or a leading '/' are refused. */
#ifndef RACKRUN_TFTP_H
#define RACKRUN_TFTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Asked during a download; returning true aborts it (job canceled). */
typedef bool (rr_abort_fn)(void *arg);

typedef struct {
    uint64_t max_bytes;      /* refuse larger downloads (0: 4 GiB) */
    uint32_t tries;          /* attempts for 5xx / timeouts (0: 3) */
    uint32_t backoff_ms;     /* first retry delay, doubled each time (0: 1000) */
    uint32_t timeout_s;      /* whole transfer, per attempt (0: 600) */
    rr_abort_fn *abort;      /* may be NULL */
    void *abort_arg;
    bool confine_files;      /* file:// only beneath FILE_ROOTS (none: file:// refused);
                              * false: anywhere (callers that are not job content) */
    const char *const *file_roots;
    size_t file_root_count;
} rr_download_opts_t;

/* Join ROOT and the relative NAME into OUT, refusing absolute names, empty
 * components and "..". Returns 0 or -1 with ERR filled. */
int rr_tftp_path(const char *root, const char *name, char *out, size_t outlen,
                 char *err, size_t errlen);

/* Download URL (http, https or file only) into the file PATH (created via
 * PATH.tmp, never through a symbolic link, + rename). A confined file:// URL
 * is opened beneath its root with openat2 (confine.h), so no "..", link or
 * mount trick reads outside it. SHA256 is NULL or 64 hex digits. On success stores size and hex sha256 (65 bytes) if
 * not NULL. Errors name the URL and the HTTP status or curl error. */
int rr_tftp_download(const char *url, const char *path, const char *sha256,
                     const rr_download_opts_t *opts, uint64_t *size, char *sha256_out,
                     char *err, size_t errlen);

/* "pxelinux.cfg/01-aa-bb-cc-dd-ee-ff" for MAC "AA:BB:CC:DD:EE:FF" into OUT. -1 if MAC is not one. */
int rr_pxe_config_name(const char *mac, char *out, size_t outlen);

/* Write the pxelinux config of MAC under ROOT booting KERNEL (paths relative
 * to ROOT; INITRD, FDT, APPEND may be NULL), atomically. */
int rr_pxe_write(const char *root, const char *mac, const char *kernel, const char *initrd,
                 const char *fdt, const char *append, char *err, size_t errlen);

/* Remove MAC's pxelinux config (absent is fine). */
int rr_pxe_remove(const char *root, const char *mac, char *err, size_t errlen);

/* mkdir -p of the relative directory NAME under ROOT (confined). */
int rr_tftp_mkdirs(const char *root, const char *name, char *err, size_t errlen);

#endif
