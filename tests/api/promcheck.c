/* promcheck.c: strict Prometheus text-format checker; see promcheck.h.
 * Families are tracked in small fixed tables: a test page has a few dozen. */
#include "promcheck.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAMILIES 128
#define MAX_SERIES   1024
#define NAME_MAX_LEN 128
#define LABELS_MAX   512

typedef struct {
    char name[NAME_MAX_LEN];
    char type[16];
    bool sampled;           /* a sample was seen */
    bool closed;            /* another family's sample came after ours */
    /* histogram state (single label set besides le) */
    double last_le, last_bucket, inf_bucket;
    bool has_inf, has_sum, has_count;
    double count;
} family_t;

typedef struct {
    family_t families[MAX_FAMILIES];
    size_t nfamilies;
    char *series[MAX_SERIES];
    size_t nseries;
    family_t *current;
    int line;
    char *err;
    size_t errlen;
} checker_t;

static int bad(checker_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(checker_t *c, const char *fmt, ...)
{
    int n = snprintf(c->err, c->errlen, "line %d: ", c->line);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t) n < c->errlen)
        vsnprintf(c->err + n, c->errlen - (size_t) n, fmt, ap);
    va_end(ap);
    return -1;
}

static bool name_char(char ch, bool first, bool metric)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || (metric && ch == ':'))
        return true;
    return !first && ch >= '0' && ch <= '9';
}

/* Length of the name at S (0 = none). */
static size_t name_len(const char *s, bool metric)
{
    size_t n = 0;
    while (name_char(s[n], n == 0, metric))
        n++;
    return n;
}

static family_t *family_find(checker_t *c, const char *name)
{
    for (size_t i = 0; i < c->nfamilies; i++)
        if (strcmp(c->families[i].name, name) == 0)
            return &c->families[i];
    return NULL;
}

/* "# TYPE name type" / "# HELP name text" / other comments. */
static int comment_line(checker_t *c, const char *line)
{
    bool type = strncmp(line, "# TYPE ", 7) == 0, help = strncmp(line, "# HELP ", 7) == 0;
    if (!type && !help)
        return 0;
    const char *name = line + 7;
    size_t n = name_len(name, true);
    if (n == 0 || n >= NAME_MAX_LEN || name[n] != ' ')
        return bad(c, "%s without a valid metric name", type ? "TYPE" : "HELP");
    if (help)
        return 0;
    const char *kind = name + n + 1;
    static const char *const kinds[] = { "counter", "gauge", "histogram", "summary", "untyped" };
    bool known = false;
    for (size_t i = 0; i < 5; i++)
        known |= strcmp(kind, kinds[i]) == 0;
    if (!known)
        return bad(c, "unknown TYPE '%s'", kind);
    char fname[NAME_MAX_LEN];
    memcpy(fname, name, n);
    fname[n] = '\0';
    if (family_find(c, fname))
        return bad(c, "second TYPE line for %s", fname);
    if (c->nfamilies == MAX_FAMILIES)
        return bad(c, "too many families");
    family_t *f = &c->families[c->nfamilies++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", fname);
    snprintf(f->type, sizeof f->type, "%s", kind);
    f->last_le = -INFINITY;
    return 0;
}

/* Parse "{a="x",b="y"}" at *P into LABELS (canonical text) and LE (the le value, if any). */
static int parse_labels(checker_t *c, const char **p, char *labels, size_t cap, char *le,
                        size_t lecap)
{
    const char *s = *p;
    size_t used = 0;
    labels[0] = le[0] = '\0';
    if (*s != '{')
        return 0;
    s++;
    while (*s != '}') {
        size_t n = name_len(s, false);
        if (n == 0 || s[n] != '=' || s[n + 1] != '"')
            return bad(c, "bad label near '%.20s'", s);
        const char *lname = s;
        s += n + 2;
        char value[256];
        size_t v = 0;
        for (; *s && *s != '"'; s++) {
            if (*s == '\\') {
                s++;
                if (*s != '\\' && *s != '"' && *s != 'n')
                    return bad(c, "bad escape in label value");
            }
            if (!*s || v + 1 >= sizeof value)
                return bad(c, "label value too long or unterminated");
            value[v++] = *s;
        }
        value[v] = '\0';
        if (*s != '"')
            return bad(c, "unterminated label value");
        s++;
        if (n == 2 && strncmp(lname, "le", 2) == 0)
            snprintf(le, lecap, "%.63s", value);
        else
            used += (size_t) snprintf(labels + used, used < cap ? cap - used : 0, "%.*s=%s,",
                                      (int) n, lname, value);
        if (*s == ',')
            s++;
        else if (*s != '}')
            return bad(c, "expected , or } after a label");
    }
    if (used >= cap)
        return bad(c, "labels too long");
    *p = s + 1;
    return 0;
}

static int parse_value(checker_t *c, const char *text, double *value)
{
    if (strcmp(text, "+Inf") == 0 || strcmp(text, "-Inf") == 0 || strcmp(text, "NaN") == 0) {
        *value = text[0] == 'N' ? NAN : text[0] == '+' ? INFINITY : -INFINITY;
        return 0;
    }
    char *end;
    *value = strtod(text, &end);
    if (end == text || (*end && *end != ' ') || isinf(*value) || isnan(*value))
        return bad(c, "bad sample value '%s'", text);
    if (*end == ' ') {                  /* optional integer timestamp */
        const char *ts = end + 1;
        if (!*ts || strspn(ts + (*ts == '-'), "0123456789") != strlen(ts + (*ts == '-')))
            return bad(c, "bad timestamp '%s'", ts);
    }
    return 0;
}

/* The family a sample NAME belongs to (histogram/summary suffixes); SUFFIX gets it. */
static family_t *family_of(checker_t *c, const char *name, const char **suffix)
{
    *suffix = "";
    family_t *f = family_find(c, name);
    if (f)
        return f;
    static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(name), s = strlen(suffixes[i]);
        if (n <= s || strcmp(name + n - s, suffixes[i]) != 0)
            continue;
        char base[NAME_MAX_LEN];
        snprintf(base, sizeof base, "%.*s", (int) (n - s), name);
        f = family_find(c, base);
        if (f && (strcmp(f->type, "histogram") == 0 || strcmp(f->type, "summary") == 0)) {
            *suffix = suffixes[i];
            return f;
        }
    }
    return NULL;
}

static int histogram_sample(checker_t *c, family_t *f, const char *suffix, const char *le,
                            double value)
{
    if (strcmp(suffix, "_sum") == 0) {
        f->has_sum = true;
        return 0;
    }
    if (strcmp(suffix, "_count") == 0) {
        f->has_count = true;
        f->count = value;
        return 0;
    }
    if (strcmp(suffix, "_bucket") != 0)
        return bad(c, "histogram %s: sample without _bucket/_sum/_count", f->name);
    double bound;
    if (!le[0] || parse_value(c, le, &bound) != 0)
        return bad(c, "histogram %s: bucket without a valid le", f->name);
    if (f->has_inf || bound <= f->last_le)
        return bad(c, "histogram %s: le=%s not above the previous bucket", f->name, le);
    if (value < f->last_bucket)
        return bad(c, "histogram %s: bucket le=%s not cumulative (%g < %g)", f->name, le, value,
                   f->last_bucket);
    f->last_le = bound;
    f->last_bucket = value;
    if (isinf(bound)) {
        f->has_inf = true;
        f->inf_bucket = value;
    }
    return 0;
}

static int sample_line(checker_t *c, const char *line)
{
    size_t n = name_len(line, true);
    if (n == 0 || n >= NAME_MAX_LEN)
        return bad(c, "sample without a valid metric name: '%.40s'", line);
    char name[NAME_MAX_LEN], labels[LABELS_MAX], le[64];
    snprintf(name, sizeof name, "%.*s", (int) n, line);
    const char *p = line + n;
    if (parse_labels(c, &p, labels, sizeof labels, le, sizeof le) != 0)
        return -1;
    if (*p != ' ')
        return bad(c, "expected a space before the value of %s", name);
    double value;
    if (parse_value(c, p + 1, &value) != 0)
        return -1;
    const char *suffix;
    family_t *f = family_of(c, name, &suffix);
    if (!f)
        return bad(c, "sample of %s before (or without) its TYPE line", name);
    if (f->closed)
        return bad(c, "samples of %s are not together", f->name);
    if (c->current && c->current != f)
        c->current->closed = true;
    c->current = f;
    f->sampled = true;
    char *key = NULL;
    if (asprintf(&key, "%s{%s|%s}", name, labels, le) < 0 || c->nseries == MAX_SERIES)
        return free(key), bad(c, "out of memory");
    for (size_t i = 0; i < c->nseries; i++)
        if (strcmp(c->series[i], key) == 0)
            return free(key), bad(c, "duplicate series %s", name);
    c->series[c->nseries++] = key;
    if (strcmp(f->type, "counter") == 0) {
        if (value < 0 || isnan(value))
            return bad(c, "counter %s is negative", name);
        if (n < 6 || strcmp(name + n - 6, "_total") != 0)
            return bad(c, "counter %s is not named *_total", name);
    }
    if (strcmp(f->type, "histogram") == 0)
        return histogram_sample(c, f, suffix, le, value);
    return 0;
}

static int check_histograms(checker_t *c)
{
    for (size_t i = 0; i < c->nfamilies; i++) {
        family_t *f = &c->families[i];
        if (strcmp(f->type, "histogram") != 0 || !f->sampled)
            continue;
        if (!f->has_inf)
            return bad(c, "histogram %s has no le=\"+Inf\" bucket", f->name);
        if (!f->has_sum || !f->has_count)
            return bad(c, "histogram %s lacks _sum or _count", f->name);
        if (f->count != f->inf_bucket)
            return bad(c, "histogram %s: _count %g != +Inf bucket %g", f->name, f->count,
                       f->inf_bucket);
    }
    return 0;
}

int promcheck(const char *text, char *err, size_t errlen)
{
    checker_t *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->err = err;
    c->errlen = errlen;
    err[0] = '\0';
    int rc = 0;
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n')
        rc = bad(c, "the page does not end with a newline");
    for (const char *at = text; rc == 0 && *at;) {
        size_t n = strcspn(at, "\n");
        char *line = strndup(at, n);
        c->line++;
        if (!line)
            rc = -1;
        else if (line[0] == '#')
            rc = comment_line(c, line);
        else if (line[0])
            rc = sample_line(c, line);
        free(line);
        at += n + (at[n] == '\n');
    }
    if (rc == 0)
        rc = check_histograms(c);
    for (size_t i = 0; i < c->nseries; i++)
        free(c->series[i]);
    free(c);
    return rc;
}

double promcheck_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *at = text; at && *at; at = strchr(at, '\n'), at = at ? at + 1 : NULL)
        if (strncmp(at, series, n) == 0 && at[n] == ' ')
            return strtod(at + n + 1, NULL);
    return -1;
}
