/* units.c: durations and sizes as operators write them ("30s", "10m", "4K"),
 * durations as they read them ("5m30s"), and the two clocks.
 *
 * A duration is one or more number+unit parts, largest unit first ("1h30m",
 * which is also what rr_duration_format writes), or a bare number of seconds.
 * Only whole numbers: "1.5s" is refused with a hint rather than rounded. */
#include "units.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DURATION_UNITS_HINT "use ms, s, m, h, d"
#define SIZE_UNITS_HINT "use K, M, G, T, optionally followed by B or iB"

typedef struct {
    const char *name;
    uint64_t factor;
} unit_t;

/* Largest first: the order parts must come in. */
static const unit_t duration_units[] = {
    { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
};

static int fail(char *err, size_t errlen, const char *text, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "'%s': %s", text, what);
    return -1;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Read the decimal number at *P into *VALUE, advancing *P. Returns -1 on overflow. */
static int read_number(const char **p, uint64_t *value)
{
    *value = 0;
    for (; is_digit(**p); (*p)++) {
        unsigned digit = (unsigned)(**p - '0');
        if (*value > (UINT64_MAX - digit) / 10)
            return -1;
        *value = *value * 10 + digit;
    }
    return 0;
}

/* Match the unit at P (the whole run of letters): its index in duration_units,
 * its length in *LEN; -1 if none. */
static int match_duration_unit(const char *p, size_t *len)
{
    size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz");
    for (size_t i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++)
        if (n > 0 && strlen(duration_units[i].name) == n &&
            strncmp(p, duration_units[i].name, n) == 0) {
            *len = n;
            return (int)i;
        }
    return -1;
}

static int unknown_duration_unit(const char *text, const char *unit, char *err, size_t errlen)
{
    char what[96];
    size_t n = strcspn(unit, "0123456789");
    snprintf(what, sizeof what, "unknown unit '%.*s' (" DURATION_UNITS_HINT ")",
             (int)(n > 16 ? 16 : n), unit);
    return fail(err, errlen, text, what);
}

/* Parse one number+unit part at *P, adding it to *TOTAL. *LAST is the rank of
 * the previous unit (units must get smaller). */
static int duration_part(const char *text, const char **p, int *last, uint64_t *total,
                         char *err, size_t errlen)
{
    uint64_t value;
    if (!is_digit(**p))
        return fail(err, errlen, text, "not a duration (e.g. 300, 250ms, 30s, 10m, 2h, 1d)");
    if (read_number(p, &value) < 0)
        return fail(err, errlen, text, "too large");
    if (**p == '.')
        return fail(err, errlen, text, "whole numbers only (write 1500ms, not 1.5s)");
    if (**p == '\0')
        return fail(err, errlen, text, "the last number has no unit");
    size_t len;
    int unit = match_duration_unit(*p, &len);
    if (unit < 0)
        return unknown_duration_unit(text, *p, err, errlen);
    if (unit <= *last)
        return fail(err, errlen, text, "units must go from largest to smallest, each once");
    *last = unit;
    uint64_t factor = duration_units[unit].factor;
    if (value > UINT64_MAX / factor || *total > UINT64_MAX - value * factor)
        return fail(err, errlen, text, "too large");
    *total += value * factor;
    *p += len;
    return 0;
}

int rr_duration_parse(const char *text, uint64_t *ms, char *err, size_t errlen)
{
    if (!text || !*text)
        return fail(err, errlen, text ? text : "", "empty duration (e.g. 30s, 10m)");
    if (text[0] == '-')
        return fail(err, errlen, text, "a duration cannot be negative");
    const char *p = text;
    uint64_t total = 0;
    if (is_digit(*p)) {
        const char *end = p + strspn(p, "0123456789");
        if (*end == '\0') {            /* a bare number: seconds */
            if (read_number(&p, &total) < 0 || total > UINT64_MAX / 1000)
                return fail(err, errlen, text, "too large");
            *ms = total * 1000;
            return 0;
        }
    }
    int last = -1;
    while (*p)
        if (duration_part(text, &p, &last, &total, err, errlen) < 0)
            return -1;
    *ms = total;
    return 0;
}

/* Binary multiple for the unit letter C, 0 if it is not one. */
static uint64_t size_factor(char c)
{
    switch (c) {
    case 'k': case 'K': return 1ull << 10;
    case 'M': return 1ull << 20;
    case 'G': return 1ull << 30;
    case 'T': return 1ull << 40;
    default: return 0;
    }
}

int rr_size_parse(const char *text, uint64_t *bytes, char *err, size_t errlen)
{
    if (!text || !*text)
        return fail(err, errlen, text ? text : "", "empty size (e.g. 512, 4K, 10M, 2G)");
    if (text[0] == '-')
        return fail(err, errlen, text, "a size cannot be negative");
    const char *p = text;
    uint64_t value;
    if (!is_digit(*p))
        return fail(err, errlen, text, "not a size (e.g. 512, 4K, 10M, 2G)");
    if (read_number(&p, &value) < 0)
        return fail(err, errlen, text, "too large");
    uint64_t factor = 1;
    const char *unit = p;
    if (size_factor(*p)) {
        factor = size_factor(*p++);
        if (strcmp(p, "iB") == 0 || strcmp(p, "B") == 0)
            p += strlen(p);
    } else if (strcmp(p, "B") == 0) {
        p++;
    }
    if (*p) {
        char what[96];
        snprintf(what, sizeof what, "unknown unit '%.16s' (" SIZE_UNITS_HINT ")", unit);
        return fail(err, errlen, text, what);
    }
    if (value > UINT64_MAX / factor)
        return fail(err, errlen, text, "too large");
    *bytes = value * factor;
    return 0;
}

char *rr_duration_format(uint64_t ms, char *buf, size_t len)
{
    uint64_t s = ms / 1000;
    if (ms < 1000)
        snprintf(buf, len, "%llums", (unsigned long long)ms);
    else if (ms < 60000 && ms % 1000 >= 100)
        snprintf(buf, len, "%llu.%llus", (unsigned long long)s,
                 (unsigned long long)(ms % 1000 / 100));
    else if (ms < 60000)
        snprintf(buf, len, "%llus", (unsigned long long)s);
    else if (s < 3600 && s % 60)
        snprintf(buf, len, "%llum%02llus", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    else if (s < 3600)
        snprintf(buf, len, "%llum", (unsigned long long)(s / 60));
    else if (s < 86400 && s / 60 % 60)
        snprintf(buf, len, "%lluh%02llum", (unsigned long long)(s / 3600),
                 (unsigned long long)(s / 60 % 60));
    else if (s < 86400)
        snprintf(buf, len, "%lluh", (unsigned long long)(s / 3600));
    else if (s / 3600 % 24)
        snprintf(buf, len, "%llud%02lluh", (unsigned long long)(s / 86400),
                 (unsigned long long)(s / 3600 % 24));
    else
        snprintf(buf, len, "%llud", (unsigned long long)(s / 86400));
    return buf;
}

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t rr_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

uint64_t rr_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

uint64_t rr_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
