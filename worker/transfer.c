/* transfer.c: fetch a file off the node (busybox httpd on the node, libcurl here). */
#include "transfer.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "disk.h"
#include "tftp.h"
#include "upload.h"

#define XFER_TAG "RRXFER42:"        /* what the node prints; typed as RRXFER$((6*7)): */

int rr_transfer_url(const char *http, const char *path, char *out, size_t outlen)
{
    size_t at = (size_t)snprintf(out, outlen, "http://%s", http);
    for (const char *p = path; at < outlen && *p;) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (!n)
            break;
        char *seg = curl_easy_escape(NULL, p, (int)n);
        if (!seg)
            return -1;
        at += (size_t)snprintf(out + at, outlen - at, "/%s", seg);
        curl_free(seg);
        p += n;
    }
    return at < outlen ? 0 : -1;
}

/* mkdir -p of the absolute DIR. */
static int mkdir_p(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s", dir) >= sizeof path) {
        snprintf(err, errlen, "artifacts dir %.200s: path too long", dir);
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0750) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "artifacts dir: mkdir %s: %s", path, strerror(errno));
            return -1;
        }
        *p = saved;
        if (!saved)
            return 0;
    }
}

static bool quotable(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p == '\'' || *p < 0x20 || *p == 0x7f)
            return false;
    return *text != '\0';
}

/* Ask the node for the file's size and sha256, with httpd up. */
static int node_side(rr_runner_shell_t *sh, const char *from, uint32_t timeout_s,
                     uint64_t *size, char *sha, char *err, size_t errlen)
{
    static const char *const progs[] = { "transfer: ", "httpd: ", "sha256sum: ", NULL };
    char cmd[1400], out[4096], why[600], complaint[300];
    int code = -1;
    snprintf(cmd, sizeof cmd,
             "( f='%s'; test -f \"$f\" || { echo \"transfer: $f: no such file\"; exit 2; };"
             " pidof httpd >/dev/null || httpd -p 80 -h / || exit 3;"
             " echo \"RRXFER$((6*7)):$(wc -c <\"$f\"):$(sha256sum <\"$f\")\" )", from);
    if (rr_runner_shell_run(sh, cmd, timeout_s, &code, out, sizeof out, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s on the node: %s", from, why);
        return -1;
    }
    if (code != 0) {
        rr_disk_node_complaint(out, progs, complaint, sizeof complaint);
        snprintf(err, errlen, "%s on the node: %s (exit %d)", from,
                 complaint[0] ? complaint : "cannot serve it", code);
        return -1;
    }
    const char *at = NULL;
    for (const char *p = strstr(out, XFER_TAG); p; p = strstr(p + 1, XFER_TAG))
        at = p;
    if (!at || sscanf(at + strlen(XFER_TAG), " %" SCNu64 ":%64[0-9a-f]", size, sha) != 2
        || strlen(sha) != 64) {
        snprintf(err, errlen, "%s on the node: no size and sha256 printed", from);
        return -1;
    }
    return 0;
}

static int fetch(rr_runner_shell_t *sh, const rr_device_config_t *dev, uint64_t job,
                 const proto_action_t *a, uint32_t timeout_s, const char *node_sha,
                 uint64_t *size, char *sha, char *err, size_t errlen)
{
    char url[2048], jobdir[4200], rel[300], path[4400];
    const char *root = dev->worker->artifacts_dir;
    snprintf(rel, sizeof rel, "%" PRIu64, job);
    if (rr_transfer_url(dev->http, a->from, url, sizeof url) < 0) {
        snprintf(err, errlen, "%.200s: URL too long", a->from);
        return -1;
    }
    snprintf(jobdir, sizeof jobdir, "%s/%s", root, rel);
    if (mkdir_p(jobdir, err, errlen) < 0)
        return -1;
    snprintf(rel, sizeof rel, "%" PRIu64 "/%s", job, a->to);
    if (rr_tftp_path(root, rel, path, sizeof path, err, errlen) < 0)
        return -1;
    rr_download_opts_t opts = { .timeout_s = timeout_s, .abort = rr_runner_stopped,
                                .abort_arg = sh };
    return rr_tftp_download(url, path, node_sha, &opts, size, sha, err, errlen);
}

int rr_transfer_run(rr_runner_shell_t *sh, const rr_device_config_t *dev, uint64_t job,
                    const proto_action_t *a, uint32_t timeout_s, char *err, size_t errlen)
{
    char node_sha[65] = "", sha[65] = "";
    uint64_t node_size = 0, size = 0;
    if (!a->from || !a->to) {
        snprintf(err, errlen, "needs from and to");
        return -1;
    }
    if (!dev->http) {
        snprintf(err, errlen, "device %s has no http address (devices[].http in the worker "
                 "configuration)", dev->name);
        return -1;
    }
    if (!dev->worker || !dev->worker->artifacts_dir) {
        snprintf(err, errlen, "this worker has no artifacts_dir");
        return -1;
    }
    if (!quotable(a->from)) {
        snprintf(err, errlen, "%.200s: a path with a quote or control character", a->from);
        return -1;
    }
    if (node_side(sh, a->from, timeout_s, &node_size, node_sha, err, errlen) < 0
        || fetch(sh, dev, job, a, timeout_s, node_sha, &size, sha, err, errlen) < 0)
        return -1;
    if (size != node_size) {
        snprintf(err, errlen, "%s: fetched %" PRIu64 " bytes, the node has %" PRIu64, a->from,
                 size, node_size);
        return -1;
    }
    /* Marked for upload before the event says it exists: a crash in between
     * leaves an upload without its event, never an event without its upload. */
    if (rr_upload_mark(dev->worker->artifacts_dir, job, a->to, err, errlen) < 0)
        return -1;
    proto_job_event_t ev = { .kind = "artifact", .name = a->to, .value = sha,
                             .code = (int64_t)size };
    rr_runner_shell_event(sh, &ev);
    return 0;
}
