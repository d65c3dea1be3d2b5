/* verify.c: a job's stored stream against its node's console capture (verify.h). */
#include "verify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void problem(verdict_t *v, const char *fmt, uint64_t job, uint64_t a, uint64_t b)
{
    if (v->problem[0])
        return;
    char text[400];
    snprintf(text, sizeof text, fmt, a, b);
    snprintf(v->problem, sizeof v->problem, "job %" PRIu64 ": %s", job, text);
}

size_t verify_gaps(const proto_job_event_t *events, size_t count)
{
    size_t gaps = 0;
    for (size_t i = 0; i < count; i++)
        gaps += !strcmp(events[i].kind, "console_gap");
    return gaps;
}

/* seq 1..N, one end (the last event). */
static void check_seqs(uint64_t job, const proto_job_event_t *ev, size_t n, verdict_t *v)
{
    uint64_t expect = 1;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].seq < expect) {
            v->duplicated++;
            problem(v, "seq %" PRIu64 " stored again after %" PRIu64, job, ev[i].seq, expect - 1);
            continue;
        }
        if (ev[i].seq > expect) {
            v->lost_events += ev[i].seq - expect;
            problem(v, "seqs %" PRIu64 "..%" PRIu64 " missing", job, expect, ev[i].seq - 1);
        }
        expect = ev[i].seq + 1;
        if (!strcmp(ev[i].kind, "end")) {
            if (v->ended) {
                v->duplicated++;
                problem(v, "a second end at seq %" PRIu64, job, ev[i].seq, 0);
            }
            v->ended = true;
            snprintf(v->outcome, sizeof v->outcome, "%s", ev[i].value ? ev[i].value : "");
            snprintf(v->reason, sizeof v->reason, "%s", ev[i].reason ? ev[i].reason : "");
            if (i + 1 != n)
                problem(v, "end at seq %" PRIu64 " is not the last event (%" PRIu64 " follow)",
                        job, ev[i].seq, n - i - 1);
        }
    }
}

static void check_results(uint64_t job, const proto_job_event_t *ev, size_t n,
                          const char *const *expect, verdict_t *v)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ev[i].kind, "result") || !ev[i].name)
            continue;
        for (size_t j = i + 1; j < n; j++) {
            if (!strcmp(ev[j].kind, "result") && ev[j].name && !strcmp(ev[j].name, ev[i].name)) {
                v->duplicated++;
                problem(v, "result seq %" PRIu64 " repeats seq %" PRIu64, job, ev[j].seq,
                        ev[i].seq);
            }
        }
    }
    if (!expect || strcmp(v->outcome, "complete"))
        return;
    for (size_t k = 0; expect[k]; k++) {
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = !strcmp(ev[i].kind, "result") && ev[i].name && !strcmp(ev[i].name, expect[k]);
        if (!found) {
            v->lost_events++;
            if (!v->problem[0])
                snprintf(v->problem, sizeof v->problem, "job %" PRIu64 ": completed without "
                         "result '%s'", job, expect[k]);
        }
    }
}

/* Chunk by chunk from *AT, for a segment that is not in the capture whole:
 * says which chunk is missing, repeated or preceded by a hole. */
static void diagnose(uint64_t job, const proto_job_event_t *ev, size_t from, size_t to,
                     const char *cap, size_t len, size_t start, size_t *at, verdict_t *v)
{
    bool jump_ok = true;        /* the segment starts after a gap (or the job's start) */
    for (size_t i = from; i < to; i++) {
        if (strcmp(ev[i].kind, "log") || !ev[i].data_len)
            continue;
        const char *data = (const char *)ev[i].data;
        size_t dlen = ev[i].data_len;
        const char *hit = *at <= len ? memmem(cap + *at, len - *at, data, dlen) : NULL;
        if (!hit) {
            bool seen = *at > start && memmem(cap + start, *at - start, data, dlen) != NULL;
            if (seen)
                v->duplicated++;
            else
                v->lost_events++;
            problem(v, seen ? "log seq %" PRIu64 " (%" PRIu64 " bytes) repeats earlier output"
                            : "log seq %" PRIu64 " (%" PRIu64 " bytes) is not in the capture",
                    job, ev[i].seq, dlen);
            continue;
        }
        size_t pos = (size_t)(hit - cap);
        if (pos > *at && !jump_ok) {
            v->lost_bytes += pos - *at;
            v->lost_events++;
            problem(v, "%" PRIu64 " captured bytes before log seq %" PRIu64
                       " are missing and no console_gap covers them", job, pos - *at, ev[i].seq);
        }
        *at = pos + dlen;
        jump_ok = false;
    }
}

/* One segment: the log chunks between two console gaps, which the capture
 * must hold contiguously after *AT. The leftmost match is the right one:
 * segments may be apart (a gap lies between), never overlap. */
static void check_segment(uint64_t job, const proto_job_event_t *ev, size_t from, size_t to,
                          const char *cap, size_t len, size_t start, size_t *at, verdict_t *v)
{
    size_t total = 0;
    for (size_t i = from; i < to; i++)
        if (!strcmp(ev[i].kind, "log"))
            total += ev[i].data_len;
    if (!total)
        return;
    v->log_bytes += total;
    char *seg = malloc(total);
    const char *hit = NULL;
    if (seg) {
        size_t n = 0;
        for (size_t i = from; i < to; i++) {
            if (!strcmp(ev[i].kind, "log") && ev[i].data_len) {
                memcpy(seg + n, ev[i].data, ev[i].data_len);
                n += ev[i].data_len;
            }
        }
        hit = *at <= len ? memmem(cap + *at, len - *at, seg, total) : NULL;
        free(seg);
    }
    if (hit)
        *at = (size_t)(hit - cap) + total;
    else
        diagnose(job, ev, from, to, cap, len, start, at, v);
}

/* Align the log with the capture, segment by segment. */
static void check_log(uint64_t job, const proto_job_event_t *ev, size_t n, const char *cap,
                      size_t len, size_t *cursor, verdict_t *v)
{
    size_t start = *cursor, at = *cursor, from = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || !strcmp(ev[i].kind, "console_gap")) {
            check_segment(job, ev, from, i, cap, len, start, &at, v);
            from = i + 1;
        }
    }
    *cursor = at;
}

void verify_job(uint64_t job, const proto_job_event_t *events, size_t count,
                const char *capture, size_t len, size_t *cursor,
                const char *const *expect_results, verdict_t *out)
{
    memset(out, 0, sizeof *out);
    out->events = count;
    out->gaps = verify_gaps(events, count);
    for (size_t i = 0; i < count; i++)
        out->silent_gaps += !strcmp(events[i].kind, "console_gap") && events[i].reason
                            && strstr(events[i].reason, "silent");
    if (count) {
        out->first_ts = events[0].ts;
        out->last_ts = events[count - 1].ts;
    }
    check_seqs(job, events, count, out);
    check_results(job, events, count, expect_results, out);
    check_log(job, events, count, capture, len, cursor, out);
}
