/* jobctl.c: submit and cancel, shared by clients.c and http_api.c (jobctl.h). */
#include "jobctl.h"

#include <stdarg.h>

#include "daemon.h"
#include "jobyaml.h"

static int s_fail(rr_jobctl_error_t *err, rr_jobctl_fail_t kind, const char *key,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int s_fail(rr_jobctl_error_t *err, rr_jobctl_fail_t kind, const char *key,
                  const char *fmt, ...)
{
    static const char *const codes[] = {
        [RR_JOBCTL_INVALID] = "invalid", [RR_JOBCTL_TOO_BIG] = "too_big",
        [RR_JOBCTL_NOT_FOUND] = "not_found", [RR_JOBCTL_STATE] = "invalid",
        [RR_JOBCTL_INTERNAL] = "internal",
    };
    *err = (rr_jobctl_error_t) { .kind = kind, .code = codes[kind] };
    snprintf(err->key, sizeof err->key, "%s", key ? key : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
    return -1;
}

/* A failed store call RC during WHAT as an error (a database failure is logged). */
static int s_store_failed(rr_master_t *self, int rc, const char *what, const char *key,
                          rr_jobctl_error_t *err)
{
    const char *text = rr_store_error(self->store);
    if (rc == RR_STORE_E_NOTFOUND)
        return s_fail(err, RR_JOBCTL_NOT_FOUND, key, "%s: %s", what, text);
    if (rc == RR_STORE_E_STATE)
        return s_fail(err, RR_JOBCTL_STATE, key, "%s: %s", what, text);
    if (rc == RR_STORE_E_INVALID)
        return s_fail(err, RR_JOBCTL_INVALID, key, "%s: %s", what, text);
    rr_error("%s: %s", what, text);
    return s_fail(err, RR_JOBCTL_INTERNAL, NULL, "%s: %s", what, text);
}

/* The configured job size limit (max_job_yaml): refused before parsing. */
static int s_check_size(rr_master_t *self, size_t len, rr_jobctl_error_t *err)
{
    uint64_t limit = self->config->max_job_yaml_bytes ? self->config->max_job_yaml_bytes
                                                      : RR_MAX_JOB_YAML_DEFAULT;
    if (len <= limit)
        return 0;
    rr_info("submit refused: job definition of %zu bytes > max_job_yaml %" PRIu64, len, limit);
    return s_fail(err, RR_JOBCTL_TOO_BIG, "yaml", "job definition is %zu bytes, larger than "
                  "the master's limit of %" PRIu64 " bytes (max_job_yaml)", len, limit);
}

/* Append TYPE to the ", "-separated list OFFERED unless it is there already. */
static void s_add_type(char *offered, size_t len, const char *type)
{
    size_t at = strlen(offered), n = strlen(type);
    for (const char *p = offered; (p = strstr(p, type)); p += n)
        if ((p == offered || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
            return;
    snprintf(offered + at, len - at, "%s%s", at ? ", " : "", type);
}

/* A job that no device can ever take is refused at submit, naming the types
 * that are offered: the master knows every device type of every worker that
 * ever said HELLO (any state but retired: a lost worker comes back). A master
 * that knows no device at all yet (a fresh install, workers still starting)
 * cannot tell a typo from a rack not yet connected, so it queues the job. */
static int s_check_type(rr_master_t *self, const proto_jobdef_t *def, rr_jobctl_error_t *err)
{
    proto_deviceinfo_t *devices = NULL;
    size_t count = 0, known = 0;
    int rc = rr_store_devices_list(self->store, NULL, &devices, &count);
    if (rc != RR_STORE_OK)
        return s_store_failed(self, rc, "submit", NULL, err);
    char offered[512] = "";
    bool found = false;
    for (size_t i = 0; i < count && !found; i++) {
        if (streq(devices[i].state, RR_DEVICE_RETIRED))
            continue;
        known++;
        found = streq(devices[i].type, def->device_type);
        s_add_type(offered, sizeof offered, devices[i].type);
    }
    rr_store_deviceinfos_free(&devices, count);
    if (found || known == 0)
        return 0;
    rr_info("submit refused: device_type '%s': no worker offers it (offered: %s)",
            def->device_type, offered);
    return s_fail(err, RR_JOBCTL_INVALID, "device_type", "device_type '%.100s': no worker "
                  "offers this device type (offered: %s)", def->device_type, offered);
}

/* Parse YAML into *DEF: 0, or -1 with the parser's located error. */
static int s_parse(const char *yaml, size_t len, proto_jobdef_t **def, rr_jobctl_error_t *err)
{
    rr_jobyaml_error_t yerr = { 0 };
    if (rr_jobyaml_parse(yaml, len, def, &yerr) == 0)
        return 0;
    rr_info("submit refused: %s", yerr.text);
    s_fail(err, RR_JOBCTL_INVALID, yerr.path, "%s", yerr.text);
    err->line = yerr.line;
    err->col = yerr.col;
    return -1;
}

int rr_jobctl_submit(rr_master_t *self, const char *yaml, size_t len, uint64_t *job,
                     rr_jobctl_error_t *err)
{
    proto_jobdef_t *def = NULL;
    if (s_check_size(self, len, err) != 0 || s_parse(yaml, len, &def, err) != 0)
        return -1;
    int rc = s_check_type(self, def, err);
    if (rc == 0) {
        int src = rr_store_job_insert(self->store, yaml, def, rr_wall_ms(), job);
        rc = src == RR_STORE_OK ? 0 : s_store_failed(self, src, "submit", NULL, err);
    }
    if (rc == 0) {
        rr_info("job %" PRIu64 ": submitted '%s' (%s, priority %u)", *job, def->name,
                def->device_type, def->priority);
        self->metrics.jobs_submitted++;
    }
    proto_jobdef_destroy(&def);
    if (rc == 0)
        rr_master_schedule(self);
    return rc;
}

int rr_jobctl_cancel(rr_master_t *self, uint64_t job, const char **state, rr_jobctl_error_t *err)
{
    int rc = rr_store_job_cancel(self->store, job, rr_wall_ms(), state);
    if (rc != RR_STORE_OK)
        return s_store_failed(self, rc, "cancel", "job", err);
    if (streq(*state, RR_JOB_CANCELING)) {
        proto_jobinfo_t info = { 0 };
        if (rr_store_job_get(self->store, job, &info) == RR_STORE_OK && info.worker)
            rr_dispatch_cancel(self, job, info.worker);
        rr_store_jobinfo_clear(&info);
        rr_info("job %" PRIu64 ": canceling", job);
    }
    else {
        rr_master_job_ended(self, job);
        rr_info("job %" PRIu64 ": canceled", job);
    }
    rr_master_schedule(self);
    return 0;
}
