/* junit.c: a job's results (results.h) as JUnit XML, the dialect Jenkins,
 * GitLab and Surefire read (tests/browser/junit.xsd is the subset checked):
 *
 *   <testsuites name="rackrun" tests failures errors skipped time>
 *     <testsuite name=JOB-NAME id=JOB tests failures errors skipped time
 *                timestamp=START (UTC) hostname=DEVICE>
 *       <properties> job, device_type, device, worker, state, outcome, reason
 *       <testcase name=STEP classname="rackrun.JOB-NAME" time=SECONDS>
 *         <failure message="exit 1" type="fail">the console tail</failure> | <skipped/>
 *       <testcase name="job" ...><error type=OUTCOME message=REASON>tail</error>
 *         only when the job ended without completing (a boot timeout leaves
 *         no failed step, but a CI must still see red).
 *
 * Written with stdio rather than an XML library: the document is flat, and
 * the part a library would not do for us anyway is the text: console bytes
 * hold escape sequences and control characters that no XML 1.0 document may
 * contain, even escaped, so every text goes through rr_results_clean_text
 * first and then only needs the five entities. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "results.h"

/* TEXT (clean) escaped for an attribute value (ATTR) or element content. */
static void xml_put(FILE *out, const char *text, bool attr)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs(attr ? "&quot;" : "\"", out); break;
        case '\n': fputs(attr ? "&#10;" : "\n", out); break;
        case '\t': fputs(attr ? "&#9;" : "\t", out); break;
        default: fputc(*p, out);
        }
    }
}

/* Raw bytes DATA cleaned and escaped as element content. 0 or -1 (ENOMEM). */
static int xml_put_bytes(FILE *out, const char *data, size_t len)
{
    char *text = rr_results_clean_text(data, len);
    if (!text)
        return -1;
    xml_put(out, text, false);
    free(text);
    return 0;
}

/* ` NAME="VALUE"` with VALUE cleaned and escaped; nothing for NULL. */
static int xml_attr(FILE *out, const char *name, const char *value)
{
    if (!value)
        return 0;
    char *text = rr_results_clean_text(value, strlen(value));
    if (!text)
        return -1;
    fprintf(out, " %s=\"", name);
    xml_put(out, text, true);
    fputc('"', out);
    free(text);
    return 0;
}

static double seconds(uint64_t from_ms, uint64_t to_ms)
{
    return to_ms > from_ms && from_ms ? (double)(to_ms - from_ms) / 1000.0 : 0.0;
}

static bool job_failed(const proto_jobinfo_t *job)
{
    return job->outcome && strcmp(job->outcome, "complete") != 0;
}

static int write_property(FILE *out, const char *name, const char *value)
{
    if (!value)
        return 0;
    fprintf(out, "      <property name=\"%s\"", name);
    int rc = xml_attr(out, "value", value);
    fputs("/>\n", out);
    return rc;
}

static int write_properties(FILE *out, const proto_jobinfo_t *job)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, job->id);
    fputs("    <properties>\n", out);
    int rc = write_property(out, "job", id) | write_property(out, "device_type", job->device_type)
             | write_property(out, "device", job->device) | write_property(out, "worker", job->worker)
             | write_property(out, "state", job->state) | write_property(out, "outcome", job->outcome)
             | write_property(out, "reason", job->reason);
    fputs("    </properties>\n", out);
    return rc;
}

static int write_case(FILE *out, const rr_result_case_t *c, const char *classname)
{
    int rc = 0;
    fputs("    <testcase", out);
    rc |= xml_attr(out, "name", c->name);
    rc |= xml_attr(out, "classname", classname);
    fprintf(out, " time=\"%.3f\"", seconds(c->start_ms, c->end_ms));
    if (strcmp(c->value, "skip") == 0) {
        fputs(">\n      <skipped/>\n    </testcase>\n", out);
    } else if (strcmp(c->value, "pass") != 0) {
        fprintf(out, ">\n      <failure message=\"exit %" PRId64 "\"", c->code);
        rc |= xml_attr(out, "type", c->value);
        fputc('>', out);
        rc |= xml_put_bytes(out, c->tail, c->tail_len);
        fputs("</failure>\n    </testcase>\n", out);
    } else {
        fputs("/>\n", out);
    }
    return rc;
}

/* The "job" case of a job that ended without completing. */
static int write_job_error(FILE *out, const rr_results_t *report, const char *classname)
{
    const proto_jobinfo_t *job = rr_results_job(report);
    const char *action = rr_results_failed_action(report);
    char message[1200];
    size_t len;
    const char *tail = rr_results_open_tail(report, &len);
    snprintf(message, sizeof message, "%s%s%s%s%s", job->outcome, action ? " in " : "",
             action ? action : "", job->reason ? ": " : "", job->reason ? job->reason : "");
    int rc = 0;
    fputs("    <testcase name=\"job\"", out);
    rc |= xml_attr(out, "classname", classname);
    fprintf(out, " time=\"%.3f\">\n      <error", seconds(job->started, job->ended));
    rc |= xml_attr(out, "message", message);
    rc |= xml_attr(out, "type", job->outcome);
    fputc('>', out);
    rc |= xml_put_bytes(out, tail, len);
    fputs("</error>\n    </testcase>\n", out);
    return rc;
}

static void write_counts(FILE *out, const rr_results_t *report, size_t cases, int errors,
                         double time_s)
{
    fprintf(out, " tests=\"%zu\" failures=\"%zu\" errors=\"%d\" skipped=\"%zu\" time=\"%.3f\"",
            cases + (size_t)errors, cases - rr_results_count(report, "pass")
                                        - rr_results_count(report, "skip"),
            errors, rr_results_count(report, "skip"), time_s);
}

static int write_suite_head(FILE *out, const rr_results_t *report, size_t cases, int errors)
{
    const proto_jobinfo_t *job = rr_results_job(report);
    uint64_t start_ms = job->started ? job->started : job->submitted;
    time_t start = (time_t)(start_ms / 1000);
    struct tm tm;
    char stamp[32] = "1970-01-01T00:00:00";
    if (gmtime_r(&start, &tm))
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    int rc = 0;
    fputs("  <testsuite", out);
    rc |= xml_attr(out, "name", job->name);
    fprintf(out, " id=\"%" PRIu64 "\"", job->id);
    write_counts(out, report, cases, errors, seconds(job->started, job->ended));
    fprintf(out, " timestamp=\"%s\"", stamp);
    rc |= xml_attr(out, "hostname", job->device ? job->device : "none");
    fputs(">\n", out);
    return rc;
}

int rr_results_write_junit(const rr_results_t *self, FILE *out)
{
    const proto_jobinfo_t *job = rr_results_job(self);
    size_t count;
    const rr_result_case_t *cases = rr_results_cases(self, &count);
    int errors = job_failed(job) ? 1 : 0;
    char classname[512];
    snprintf(classname, sizeof classname, "rackrun.%s", job->name);
    for (char *p = classname; *p; p++)
        if (*p == ' ')
            *p = '_';

    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rackrun\"", out);
    write_counts(out, self, count, errors, seconds(job->started, job->ended));
    fputs(">\n", out);
    int rc = write_suite_head(out, self, count, errors) | write_properties(out, job);
    for (size_t i = 0; i < count; i++)
        rc |= write_case(out, &cases[i], classname);
    if (errors)
        rc |= write_job_error(out, self, classname);
    fputs("  </testsuite>\n</testsuites>\n", out);
    return rc != 0 || ferror(out) ? -1 : 0;
}
