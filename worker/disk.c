/* disk.c: deploy to disk, done by the node itself through its shell. */
#include "disk.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define DISK_TAG "RRDISK42:"        /* what the node prints; typed as RRDISK$((6*7)): */

/* Single-quotable: no quote, no control character (it is typed into a shell). */
static bool quotable(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p == '\'' || *p < 0x20 || *p == 0x7f)
            return false;
    return *text != '\0';
}

static bool ends_with(const char *text, const char *tail)
{
    size_t n = strlen(text), m = strlen(tail);
    return n >= m && !strcmp(text + n - m, tail);
}

const char *rr_disk_node_complaint(const char *out, const char *const *progs, char *buf,
                                   size_t len)
{
    buf[0] = '\0';
    for (const char *line = out; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        for (const char *const *p = progs; *p; p++) {
            const char *at = memmem(line, n, *p, strlen(*p));
            if (at && (at == line || at[-1] == ' ' || at[-1] == '\r' || at[-1] == ']')) {
                size_t k = 0;
                for (const char *c = at; c < line + n && k + 1 < len; c++)
                    if ((unsigned char)*c >= 0x20)
                        buf[k++] = *c;
                buf[k] = '\0';
                break;
            }
        }
        line = end ? end + 1 : NULL;
    }
    return buf;
}

static const proto_artifact_t *image_of(const proto_action_t *a)
{
    for (size_t i = 0; i < a->artifacts_count; i++)
        if (!strcmp(a->artifacts[i].role, "image"))
            return &a->artifacts[i];
    return NULL;
}

/* The command typed into the node: everything in a subshell, so pipefail does not
 * leak into the job's later steps. */
static int disk_command(const char *url, const char *dev, char *cmd, size_t len)
{
    int n = snprintf(cmd, len,
                     "( set -o pipefail; wget -q -O - '%s'%s | tee '%s' | wc -c >/tmp/rr-disk-size"
                     " && sync && echo 3 >/proc/sys/vm/drop_caches && n=$(cat /tmp/rr-disk-size)"
                     " && echo \"RRDISK$((6*7)):$n:$(head -c $n '%s' | sha256sum)\" )",
                     url, ends_with(url, ".gz") ? " | gunzip" : "", dev, dev);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Size and sha256 the node printed after DISK_TAG. */
static int parse_report(const char *out, uint64_t *size, char *sha)
{
    const char *at = NULL;
    for (const char *p = strstr(out, DISK_TAG); p; p = strstr(p + 1, DISK_TAG))
        at = p;
    return at && sscanf(at + strlen(DISK_TAG), "%" SCNu64 ":%64[0-9a-f]", size, sha) == 2
           && strlen(sha) == 64 ? 0 : -1;
}

int rr_disk_deploy(rr_runner_shell_t *sh, const proto_action_t *a, uint32_t timeout_s,
                   char *err, size_t errlen)
{
    static const char *const progs[] = { "wget: ", "gunzip: ", "tee: ", "head: ", "sh: ",
                                         NULL };
    const proto_artifact_t *img = image_of(a);
    const char *dev = a->disk_device;
    char cmd[3072], out[4096], why[600], complaint[300], sha[65] = "";
    uint64_t size = 0;
    int code = -1;
    if (!img || !dev) {
        snprintf(err, errlen, "to disk: no image or no device");
        return -1;
    }
    if (!quotable(img->url) || !quotable(dev) || disk_command(img->url, dev, cmd, sizeof cmd)) {
        snprintf(err, errlen, "disk image %.300s: URL or device %.64s cannot be typed into "
                 "the node's shell (quote, control character or too long)", img->url, dev);
        return -1;
    }
    if (rr_runner_shell_run(sh, cmd, timeout_s, &code, out, sizeof out, why, sizeof why) < 0) {
        snprintf(err, errlen, "disk image %s -> %s on the node: %s", img->url, dev, why);
        return -1;
    }
    if (code != 0) {
        rr_disk_node_complaint(out, progs, complaint, sizeof complaint);
        snprintf(err, errlen, "disk image %s -> %s on the node failed (exit %d)%s%s", img->url,
                 dev, code, complaint[0] ? ": " : "", complaint);
        return -1;
    }
    if (parse_report(out, &size, sha) < 0) {
        snprintf(err, errlen, "disk image %s -> %s: the node printed no size and sha256",
                 img->url, dev);
        return -1;
    }
    if (img->sha256 && strcasecmp(img->sha256, sha)) {
        snprintf(err, errlen, "disk image %s: sha256 of the %" PRIu64 " bytes read back from "
                 "%s is %s, expected %s", img->url, size, dev, sha, img->sha256);
        return -1;
    }
    return 0;
}
