/* units.h: read a systemd unit file of deploy/systemd/ as (section, key, value)
 * settings, enough for the deploy tests to check what a unit says. */
#ifndef RACKRUN_TESTS_DEPLOY_UNITS_H
#define RACKRUN_TESTS_DEPLOY_UNITS_H

#include <stddef.h>

typedef struct {
    char section[32];
    char key[64];
    char value[512];
} unit_setting_t;

/* Parse TEXT (a unit file) into at most MAX settings; returns the count, or
 * (size_t)-1 on a line that is neither a comment, a section nor key=value. */
size_t unit_parse(const char *text, unit_setting_t *settings, size_t max);

/* How many times SECTION holds KEY=VALUE (VALUE NULL: any value). */
size_t unit_count(const unit_setting_t *settings, size_t n, const char *section, const char *key,
                  const char *value);

#endif
