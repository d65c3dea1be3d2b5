/* units.c: see units.h. Continuation lines (trailing '\') are not used in
 * rackrun's units and are refused rather than half-parsed. */
#include "units.h"

#include <stdio.h>
#include <string.h>

/* Copy LEN bytes of FROM into TO (SIZE bytes) without surrounding blanks. */
static void trimmed(char *to, size_t size, const char *from, size_t len)
{
    while (len && (*from == ' ' || *from == '\t'))
        from++, len--;
    while (len && (from[len - 1] == ' ' || from[len - 1] == '\t' || from[len - 1] == '\r'))
        len--;
    snprintf(to, size, "%.*s", (int)len, from);
}

size_t unit_parse(const char *text, unit_setting_t *settings, size_t max)
{
    char section[32] = "";
    size_t n = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[600];
        trimmed(buf, sizeof buf, line, len);
        line += len + (end ? 1 : 0);
        if (!buf[0] || buf[0] == '#' || buf[0] == ';')
            continue;
        if (buf[0] == '[' && buf[strlen(buf) - 1] == ']') {
            snprintf(section, sizeof section, "%.*s", (int)strlen(buf) - 2, buf + 1);
            continue;
        }
        char *eq = strchr(buf, '=');
        if (!eq || !section[0] || buf[strlen(buf) - 1] == '\\' || n == max)
            return (size_t)-1;
        unit_setting_t *s = &settings[n++];
        snprintf(s->section, sizeof s->section, "%s", section);
        trimmed(s->key, sizeof s->key, buf, (size_t)(eq - buf));
        trimmed(s->value, sizeof s->value, eq + 1, strlen(eq + 1));
    }
    return n;
}

size_t unit_count(const unit_setting_t *settings, size_t n, const char *section, const char *key,
                  const char *value)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += strcmp(settings[i].section, section) == 0 && strcmp(settings[i].key, key) == 0 &&
                 (!value || strcmp(settings[i].value, value) == 0);
    return count;
}
