/* capture.c: the node-side capture (console.out) against the stored logs. */
#include "capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int rr_boot_segments(const rr_rig_t *rig, size_t index, char **text, size_t *prefix,
                     rr_boot_segment_t **out, size_t *count)
{
    const rr_rig_node_t *node = rr_rig_node(rig, index);
    char banner[96];
    size_t len = 0, n = 0, cap = 16;
    *out = NULL;
    *count = 0;
    if (!node)
        return -1;
    snprintf(banner, sizeof banner, "\r\nU-Boot (rackrun rig) %s ", node->name);
    *text = rr_rig_console_out(rig, index, &len);
    rr_boot_segment_t *segs = malloc(cap * sizeof *segs);
    if (!*text || !segs) {
        free(segs);
        return -1;
    }
    const char *at = memmem(*text, len, banner, strlen(banner));
    *prefix = at ? (size_t)(at - *text) : len;
    while (at) {
        size_t start = (size_t)(at - *text);
        const char *next = memmem(at + 1, len - start - 1, banner, strlen(banner));
        if (n == cap) {
            rr_boot_segment_t *bigger = realloc(segs, 2 * cap * sizeof *segs);
            if (!bigger) {
                free(segs);
                return -1;
            }
            segs = bigger;
            cap *= 2;
        }
        segs[n].offset = start;
        segs[n].len = (next ? (size_t)(next - *text) : len) - start;
        n++;
        at = next;
    }
    *out = segs;
    *count = n;
    return 0;
}

/* Print up to 60 bytes of DATA from AT, escaped. */
static void print_bytes(const char *title, const uint8_t *data, size_t len, size_t at)
{
    fprintf(stderr, "  %s @%zu: \"", title, at);
    for (size_t i = at; i < len && i < at + 60; i++)
        fprintf(stderr, data[i] >= 0x20 && data[i] < 0x7f && data[i] != '"' ? "%c" : "\\x%02x",
                data[i]);
    fprintf(stderr, "\"%s\n", at + 60 < len ? "..." : "");
}

/* Is job ID's stored log exactly SEG of TEXT? Else say where it differs. */
static bool log_equals(rr_cluster_t *self, uint64_t id, const char *device, const char *text,
                       const rr_boot_segment_t *seg)
{
    size_t len = 0;
    uint8_t *log = rr_cluster_job_log(self, id, &len);
    const uint8_t *want = (const uint8_t *)text + seg->offset;
    bool same = log && len == seg->len && memcmp(log, want, len) == 0;
    if (!same && log) {
        size_t at = 0;
        while (at < len && at < seg->len && log[at] == want[at])
            at++;
        fprintf(stderr, "job %llu on %s: stored log (%zu bytes) != console.out[%zu..%zu) (%zu bytes),"
            " first difference at %zu\n", (unsigned long long)id, device, len, seg->offset,
            seg->offset + seg->len, seg->len, at);
        print_bytes("stored", log, len, at > 20 ? at - 20 : 0);
        print_bytes("node  ", want, seg->len, at > 20 ? at - 20 : 0);
    }
    free(log);
    return same;
}

/* Ids of the jobs that ran on DEVICE with a non-empty log, by start time. */
static size_t device_jobs(rr_cluster_t *self, const char *device, uint64_t *ids, size_t max)
{
    static const char sql[] =
        "SELECT id FROM jobs WHERE device = ? AND started_ms > 0 AND EXISTS"
        " (SELECT 1 FROM events e WHERE e.job = jobs.id AND e.kind = 'log'"
        " AND length(e.data) > 0) ORDER BY started_ms, id";
    sqlite3_stmt *st = NULL;
    size_t n = 0;
    if (sqlite3_prepare_v2(rr_cluster_db(self), sql, -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW && n < max)
        ids[n++] = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

bool rr_cluster_check_logs(rr_cluster_t *self, const rr_rig_t *rig, size_t *checked)
{
    bool ok = true;
    for (size_t i = 0; i < rr_rig_size(rig); i++) {
        const char *device = rr_rig_node(rig, i)->name;
        char *text = NULL;
        size_t prefix = 0, count = 0;
        rr_boot_segment_t *segs = NULL;
        uint64_t ids[256];
        if (rr_boot_segments(rig, i, &text, &prefix, &segs, &count) < 0) {
            free(text);
            return false;
        }
        size_t jobs = device_jobs(self, device, ids, 256);
        if (prefix) {
            fprintf(stderr, "%s: %zu bytes on the console before its first boot\n", device, prefix);
            ok = false;
        }
        if (jobs != count) {
            fprintf(stderr, "%s: %zu jobs with a log, but the node booted %zu times\n", device,
                    jobs, count);
            ok = false;
        }
        for (size_t j = 0; j < jobs && j < count; j++)
            ok &= log_equals(self, ids[j], device, text, &segs[j]);
        *checked += jobs < count ? jobs : count;
        free(segs);
        free(text);
    }
    return ok;
}
