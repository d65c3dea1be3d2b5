/* health.c: health-check jobs (health.h), and the master's glue that runs
 * them (daemon.h, "health.c").
 *
 * A health check is a normal job row (flagged health_check, named
 * "[health check] ...", priority 100) that is assigned to its device in the
 * same transaction that creates it: it never waits in the queue, so no other
 * device can take it and no other job can take its device. The master calls
 * the pass before every scheduling pass, which therefore sees due devices as
 * reserved. Road not taken: pinned queued jobs that the scheduler matches by
 * device name; that touches every queue walk for a job that only ever has one
 * possible device.
 *
 * Crash safety: a check's verdict is written after its job finished (two
 * transactions). A master killed in between finds the device idle and still
 * due (the counters are only reset by a pass), so it runs the check again.
 */
#include "health.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "jobyaml.h"

#define RR_HEALTH_PRIORITY 100
#define RR_HEALTH_NAME_PREFIX "[health check] "
#define RR_HEALTH_TICK_MS 60000u        /* every_hours: look again this often */
#define RR_HOUR_MS 3600000ull

typedef struct {
    const char *type;           /* borrowed from the config */
    rr_health_rule_t rule;
    char *yaml;                 /* the file's text, stored as the job's YAML */
    proto_jobdef_t *def;        /* validated, renamed, top priority */
} check_t;

struct _rr_health_t {
    check_t *checks;
    size_t count;
    uint64_t next_tick_mono;    /* rr_master_health_tick */
};

/* ---- loading ---- */

/* The whole of PATH into *TEXT (NUL-terminated), at most the job size limit. */
static int s_read_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(RR_JOBYAML_MAX_SIZE + 1);
    size_t n = buf ? fread(buf, 1, RR_JOBYAML_MAX_SIZE + 1, file) : 0;
    int rc = -1;
    if (!buf)
        snprintf(err, errlen, "%s: out of memory", path);
    else if (ferror(file))
        snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
    else if (n > RR_JOBYAML_MAX_SIZE)
        snprintf(err, errlen, "%s: larger than %u bytes", path, RR_JOBYAML_MAX_SIZE);
    else
        rc = 0;
    fclose(file);
    if (rc != 0) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

/* jobyaml's "line L, column C: msg" as "PATH:L:C: msg". */
static void s_yaml_error(const char *path, const rr_jobyaml_error_t *yerr, char *err,
                         size_t errlen)
{
    const char *msg = yerr->text;
    if (yerr->line) {
        const char *after = strstr(msg, ": ");
        msg = after ? after + 2 : msg;
        snprintf(err, errlen, "%s:%u:%u: %s", path, yerr->line, yerr->col, msg);
    }
    else
        snprintf(err, errlen, "%s: %s", path, msg);
}

/* Name the job as a health check and give it the top priority. */
static int s_mark_def(proto_jobdef_t *def)
{
    size_t len = strlen(RR_HEALTH_NAME_PREFIX) + strlen(def->name) + 1;
    char *name = malloc(len);
    if (!name)
        return -1;
    snprintf(name, len, "%s%s", RR_HEALTH_NAME_PREFIX, def->name);
    free(def->name);
    def->name = name;
    def->priority = RR_HEALTH_PRIORITY;
    return 0;
}

static int s_load_check(check_t *check, const rr_health_check_config_t *conf, char *err,
                        size_t errlen)
{
    char why[1024];
    size_t len = 0;
    rr_jobyaml_error_t yerr = { 0 };
    check->type = conf->device_type;
    check->rule = (rr_health_rule_t) { conf->every_jobs, conf->every_hours };
    if (s_read_file(conf->job, &check->yaml, &len, why, sizeof why) != 0)
        goto fail;
    if (rr_jobyaml_parse(check->yaml, len, &check->def, &yerr) != 0) {
        s_yaml_error(conf->job, &yerr, why, sizeof why);
        goto fail;
    }
    if (!streq(check->def->device_type, conf->device_type)) {
        snprintf(why, sizeof why, "%s: device_type '%s' is not the device type it checks",
                 conf->job, check->def->device_type);
        goto fail;
    }
    if (s_mark_def(check->def) != 0) {
        snprintf(why, sizeof why, "%s: out of memory", conf->job);
        goto fail;
    }
    return 0;
fail:
    snprintf(err, errlen, "health_checks.%s.job: %s", conf->device_type, why);
    return -1;
}

rr_health_t *rr_health_new(const rr_master_config_t *config, char *err, size_t errlen)
{
    rr_health_t *self = calloc(1, sizeof *self);
    if (!self)
        goto nomem;
    size_t n = config->health_check_count;
    self->checks = calloc(n ? n : 1, sizeof *self->checks);
    if (!self->checks)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        self->count++;
        if (s_load_check(&self->checks[i], &config->health_checks[i], err, errlen) != 0)
            goto fail;
    }
    return self;
nomem:
    snprintf(err, errlen, "health checks: out of memory");
fail:
    rr_health_destroy(&self);
    return NULL;
}

void rr_health_destroy(rr_health_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rr_health_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        free(self->checks[i].yaml);
        proto_jobdef_destroy(&self->checks[i].def);
    }
    free(self->checks);
    free(self);
    *self_p = NULL;
}

bool rr_health_enabled(rr_health_t *self)
{
    return self && self->count > 0;
}

bool rr_health_timed(rr_health_t *self)
{
    for (size_t i = 0; self && i < self->count; i++)
        if (self->checks[i].rule.every_hours)
            return true;
    return false;
}

/* ---- deciding ---- */

bool rr_health_due(const rr_health_rule_t *rule, const rr_store_health_t *device,
                   uint64_t now_ms, char *why, size_t whylen)
{
    uint64_t hours_ms = (uint64_t) rule->every_hours * RR_HOUR_MS;
    if (device->due)
        snprintf(why, whylen, "%s", device->last_check_ms ? "back from bad" : "new device");
    else if (rule->every_jobs && device->jobs_since >= rule->every_jobs)
        snprintf(why, whylen, "%" PRIu64 " jobs since the last check (every_jobs %" PRIu32 ")",
                 device->jobs_since, rule->every_jobs);
    else if (rule->every_hours && now_ms >= device->last_check_ms + hours_ms)
        snprintf(why, whylen, "last check more than %" PRIu32 " hours ago (every_hours)",
                 rule->every_hours);
    else
        return false;
    return true;
}

static int s_start_type(const check_t *check, rr_store_t *store, uint64_t now_ms,
                        rr_health_started_fn *started, void *arg, char *err, size_t errlen)
{
    rr_store_health_t *devices = NULL;
    size_t count = 0;
    int n = 0;
    if (rr_store_health_idle(store, check->type, &devices, &count) != RR_STORE_OK) {
        snprintf(err, errlen, "health checks of %s: %s", check->type, rr_store_error(store));
        return -1;
    }
    for (size_t i = 0; i < count && n >= 0; i++) {
        char why[128];
        uint64_t job = 0;
        if (!rr_health_due(&check->rule, &devices[i], now_ms, why, sizeof why))
            continue;
        if (rr_store_health_job_start(store, check->yaml, check->def, devices[i].device,
                                      devices[i].worker, now_ms, &job) != RR_STORE_OK) {
            snprintf(err, errlen, "device %s: health check: %s", devices[i].device,
                     rr_store_error(store));
            n = -1;
            break;
        }
        n++;
        if (started)
            started(job, &devices[i], why, arg);
    }
    rr_store_healths_free(&devices, count);
    return n;
}

int rr_health_start_due(rr_health_t *self, rr_store_t *store, uint64_t now_ms,
                        rr_health_started_fn *started, void *arg, char *err, size_t errlen)
{
    int total = 0;
    for (size_t i = 0; i < self->count; i++) {
        int n = s_start_type(&self->checks[i], store, now_ms, started, arg, err, errlen);
        if (n < 0)
            return -1;
        total += n;
    }
    return total;
}

/* ---- verdicts ---- */

/* The first failed result of JOB into WHAT ("" when none). */
static int s_first_failure(rr_store_t *store, uint64_t job, char *what, size_t len)
{
    uint64_t from = 0;
    *what = '\0';
    for (;;) {
        proto_job_event_t *results = NULL;
        size_t count = 0;
        if (rr_store_events_read_kind(store, job, "result", from, 0, &results, &count)
            != RR_STORE_OK)
            return -1;
        for (size_t i = 0; i < count && !*what; i++)
            if (results[i].value && streq(results[i].value, "fail"))
                snprintf(what, len, "result '%s' failed (code %" PRId64 ")%s%s",
                         results[i].name ? results[i].name : "?", (int64_t) results[i].code,
                         results[i].reason ? ": " : "",
                         results[i].reason ? results[i].reason : "");
        from = count ? results[count - 1].seq : from;
        rr_store_events_free(&results, count);
        if (count == 0 || *what)
            return 0;
    }
}

/* The verdict on finished health check INFO; WHY gets what failed. */
static int s_judge(rr_store_t *store, const proto_jobinfo_t *info, rr_health_verdict_t *verdict,
                   char *why, size_t len)
{
    *why = '\0';
    if (info->outcome && streq(info->outcome, RR_OUTCOME_CANCELED)) {
        *verdict = RR_HEALTH_ABORTED;
        snprintf(why, len, "canceled%s%s", info->reason ? ": " : "",
                 info->reason ? info->reason : "");
        return 0;
    }
    if (!info->outcome || !streq(info->outcome, RR_OUTCOME_COMPLETE)) {
        *verdict = RR_HEALTH_FAILED;
        snprintf(why, len, "%s%s%s", info->outcome ? info->outcome : "no outcome",
                 info->reason ? ": " : "", info->reason ? info->reason : "");
        return 0;
    }
    if (s_first_failure(store, info->id, why, len) != 0)
        return -1;
    *verdict = *why ? RR_HEALTH_FAILED : RR_HEALTH_PASSED;
    return 0;
}

static int s_record(rr_store_t *store, const proto_jobinfo_t *info, rr_health_verdict_t verdict,
                    uint64_t now_ms, char *reason, size_t len)
{
    char why[600];
    snprintf(why, sizeof why, "%s", reason);
    if (verdict == RR_HEALTH_PASSED)
        return rr_store_health_passed(store, info->device, now_ms);
    if (verdict == RR_HEALTH_ABORTED)
        return RR_STORE_OK;
    snprintf(reason, len, "health check job %" PRIu64 " failed: %s", info->id, why);
    return rr_store_health_failed(store, info->device, reason);
}

int rr_health_job_ended(rr_health_t *self, rr_store_t *store, uint64_t job, uint64_t now_ms,
                        rr_health_verdict_t *verdict, char *reason, size_t len)
{
    (void) self;
    bool is = false;
    proto_jobinfo_t info = { 0 };
    *verdict = RR_HEALTH_NOT_A_CHECK;
    *reason = '\0';
    int rc = rr_store_health_job(store, job, &is, NULL);
    if (rc != RR_STORE_OK || !is)
        goto out;
    if ((rc = rr_store_job_get(store, job, &info)) != RR_STORE_OK)
        goto out;
    if (!info.device)                   /* never reached a device: nothing to judge */
        goto out;
    if (s_judge(store, &info, verdict, reason, len) != 0) {
        rc = RR_STORE_E_DB;
        goto out;
    }
    rc = s_record(store, &info, *verdict, now_ms, reason, len);
out:
    rr_store_jobinfo_clear(&info);
    if (rc != RR_STORE_OK)
        snprintf(reason, len, "%s", rr_store_error(store));
    return rc == RR_STORE_OK ? 0 : -1;
}

/* ---- the master's glue (daemon.h) ---- */

static void s_dispatch(uint64_t job, const rr_store_health_t *device, const char *why, void *arg)
{
    rr_master_t *self = arg;
    rr_info("job %" PRIu64 ": health check of %s (%s) on worker %s", job, device->device, why,
            device->worker);
    rr_dispatch_start(self, job, device->device, device->worker);
}

int rr_master_health_pass(rr_master_t *self)
{
    char err[512];
    if (!rr_health_enabled(self->health))
        return 0;
    if (rr_health_start_due(self->health, self->store, rr_wall_ms(), s_dispatch, self, err,
                            sizeof err) < 0) {
        rr_error("health checks: %s; no jobs scheduled this round", err);
        return -1;
    }
    return 0;
}

void rr_master_health_job_ended(rr_master_t *self, uint64_t job)
{
    rr_health_verdict_t verdict;
    char reason[1024];
    if (!rr_health_enabled(self->health))
        return;
    if (rr_health_job_ended(self->health, self->store, job, rr_wall_ms(), &verdict, reason,
                            sizeof reason) != 0) {
        rr_error("job %" PRIu64 ": health check verdict not recorded: %s", job, reason);
        return;
    }
    if (verdict == RR_HEALTH_PASSED)
        rr_info("job %" PRIu64 ": health check passed", job);
    else if (verdict == RR_HEALTH_ABORTED)
        rr_info("job %" PRIu64 ": health check %s; its device stays due", job, reason);
    else if (verdict == RR_HEALTH_FAILED)
        rr_warn("job %" PRIu64 ": %s; device bad", job, reason);
}

bool rr_master_health_is_check(rr_master_t *self, uint64_t job)
{
    bool is = false;
    return rr_store_health_job(self->store, job, &is, NULL) == RR_STORE_OK && is;
}

void rr_master_health_tick(rr_master_t *self, uint64_t now_mono)
{
    if (!rr_health_timed(self->health) || now_mono < self->health->next_tick_mono)
        return;
    self->health->next_tick_mono = now_mono + RR_HEALTH_TICK_MS;
    rr_master_health_pass(self);
}
