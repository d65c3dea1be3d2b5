/* config.c: the worker's device dictionary and the master's settings, read
 * from YAML (see config.h and docs/configuration.md).
 *
 * Each map of a file is described by a table of fields (key, kind, where the
 * value goes, required or not); one walker checks a map against its table:
 * unknown keys are refused (a typo must not silently fall back to a default),
 * values are parsed by kind, and every error names file:line:col and the key
 * path ("worker.yaml:12:5: devices[2].bmc.port: '70000' is not a port (1-65535)").
 * Defaults are written once, in the *_defaults() functions.
 *
 * A device starts as a copy of its type's settings (or of the built-in ones
 * when its type is not declared), then its own keys override key by key;
 * lists (prompts) are replaced whole. BMC passwords come from a 0600 file or
 * an environment variable; no message here ever holds one. */
#include "config.h"
#include "units.h"
#include "yamldoc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_TEXT_MAX 256
#define NAME_MAX_LEN 64
#define DELAY_MAX_MS 10000      /* per character: more is a typo ("300s") */
#define RETRIES_MAX 100
#define PASSWORD_MAX 20         /* IPMI 2.0 passwords are at most 20 bytes */

typedef enum {
    F_STRING,       /* any non-empty text */
    F_NAME,         /* a name used in paths and on the wire: [A-Za-z0-9._-] */
    F_ENDPOINT,     /* a ZMQ endpoint */
    F_LISTEN,       /* "host:port" or "off" (NULL) */
    F_MAC,          /* "00:50:43:02:01:00", stored lower case */
    F_STRINGS,      /* list of non-empty strings */
    F_NAMES,        /* list of names */
    F_COUNT,        /* whole number 0..max */
    F_PORT,         /* 1..65535 */
    F_DURATION,     /* units syntax, bare number = seconds, > 0 */
    F_DELAY,        /* units syntax, bare number = milliseconds, 0..max */
    F_SIZE,         /* units size syntax (1MiB, 4GiB), bare number = bytes, > 0, uint64_t */
    F_MAP,          /* nested map, same target struct */
    F_CUSTOM,       /* allowed here, read by the caller */
} field_kind_t;

typedef struct field {
    const char *key;
    field_kind_t kind;
    bool required;
    size_t offset;              /* of the value in the target struct */
    size_t count_offset;        /* F_STRINGS, F_NAMES: of the size_t count */
    uint64_t max;               /* F_COUNT, F_DELAY: largest value allowed */
    const struct field *sub;    /* F_MAP: nested fields */
} field_t;

#define FIELD(k, kd, req, type, member) \
    { .key = k, .kind = kd, .required = req, .offset = offsetof(type, member) }
#define LIST_FIELD(k, kd, type, member, count) \
    { .key = k, .kind = kd, .offset = offsetof(type, member), .count_offset = offsetof(type, count) }
#define NUMBER_FIELD(k, kd, type, member, mx) \
    { .key = k, .kind = kd, .offset = offsetof(type, member), .max = mx }
#define MAP_FIELD(k, req, fields) { .key = k, .kind = F_MAP, .required = req, .sub = fields }
#define CUSTOM_FIELD(k, req) { .key = k, .kind = F_CUSTOM, .required = req }

/* One walk through one document: where errors go. */
typedef struct {
    const rr_yaml_doc_t *doc;
    char *err;
    size_t errlen;
} walk_t;

/* ---- errors and paths --------------------------------------------------- */

static int bad(const walk_t *w, const rr_yaml_node_t *node, const char *path, const char *fmt,
               ...) __attribute__((format(printf, 4, 5)));

static int bad(const walk_t *w, const rr_yaml_node_t *node, const char *path, const char *fmt,
               ...)
{
    char what[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    return rr_yaml_error(w->doc, node, w->err, w->errlen, "%s%s%s", path, *path ? ": " : "",
                         what);
}

/* Format a key path into OUT (PATH_TEXT_MAX bytes); a long one is cut short. */
static void path_format(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void path_format(char *out, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(out, PATH_TEXT_MAX, fmt, args);
    va_end(args);
}

static void path_join(char *out, const char *path, const char *key)
{
    path_format(out, "%s%s%s", path, *path ? "." : "", key);
}

/* ---- scalar validators: NULL when TEXT is fine, else what is wrong -------- */

static const char *check_name(const char *text)
{
    size_t n = strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
    if (n == strlen(text) && n > 0 && n <= NAME_MAX_LEN && text[0] != '.' && text[0] != '-')
        return NULL;
    return "is not a valid name (letters, digits, '.', '_', '-', not first '.' or '-', "
           "at most 64)";
}

static const char *check_endpoint(const char *text)
{
    if (strncmp(text, "tcp://", 6) == 0 || strncmp(text, "ipc://", 6) == 0 ||
        strncmp(text, "inproc://", 9) == 0)
        return strstr(text, "://")[3] ? NULL : "has no address";
    return "is not a ZMQ endpoint (e.g. tcp://127.0.0.1:5555)";
}

static int parse_uint(const char *text, uint64_t max, uint64_t *value)
{
    if (!*text || strspn(text, "0123456789") != strlen(text) || strlen(text) > 19)
        return -1;
    *value = strtoull(text, NULL, 10);
    return *value <= max ? 0 : -1;
}

static const char *check_listen(const char *text)
{
    const char *colon = strrchr(text, ':');
    uint64_t port;
    if (colon && colon != text && parse_uint(colon + 1, 65535, &port) == 0 && port > 0)
        return NULL;
    return "is not host:port (e.g. 127.0.0.1:8080) or off";
}

/* Normalise TEXT in place to lower case; "00-50-..." becomes "00:50:...". */
static const char *check_mac(char *text)
{
    if (strlen(text) != 17)
        return "is not a MAC address (six hex pairs: 00:50:43:02:01:00)";
    for (int i = 0; i < 17; i++) {
        char c = text[i];
        bool separator = i % 3 == 2;
        if (separator ? (c != ':' && c != '-') : !strchr("0123456789abcdefABCDEF", c))
            return "is not a MAC address (six hex pairs: 00:50:43:02:01:00)";
        text[i] = separator ? ':' : (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    }
    return NULL;
}

/* ---- field setters ------------------------------------------------------ */

static const char *scalar_of(const walk_t *w, const rr_yaml_node_t *node, const char *path)
{
    const char *text = rr_yaml_scalar(node);
    if (!text)
        bad(w, node, path, "must be a scalar, not %s", rr_yaml_kind_name(rr_yaml_kind(node)));
    else if (!*text)
        bad(w, node, path, "must not be empty");
    return text && *text ? text : NULL;
}

static int set_string(const walk_t *w, const rr_yaml_node_t *node, const char *path,
                      field_kind_t kind, char **slot)
{
    const char *text = scalar_of(w, node, path);
    if (!text)
        return -1;
    char *copy = strdup(text);
    if (!copy)
        return bad(w, node, path, "out of memory");
    const char *problem = NULL;
    switch (kind) {
    case F_NAME: problem = check_name(copy); break;
    case F_ENDPOINT: problem = check_endpoint(copy); break;
    case F_MAC: problem = check_mac(copy); break;
    case F_LISTEN: problem = strcmp(copy, "off") ? check_listen(copy) : NULL; break;
    default: break;
    }
    if (problem) {
        free(copy);
        return bad(w, node, path, "'%.64s' %s", text, problem);
    }
    free(*slot);
    *slot = NULL;
    if (kind == F_LISTEN && strcmp(copy, "off") == 0)
        free(copy);             /* off: no HTTP listener */
    else
        *slot = copy;
    return 0;
}

static void strings_free(char **items, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(items[i]);
    free(items);
}

static int set_list(const walk_t *w, const rr_yaml_node_t *node, const char *path,
                    field_kind_t kind, char ***slot, size_t *count)
{
    if (rr_yaml_kind(node) != RR_YAML_LIST)
        return bad(w, node, path, "must be a list, not %s",
                   rr_yaml_kind_name(rr_yaml_kind(node)));
    size_t n = rr_yaml_count(node);
    char **items = calloc(n ? n : 1, sizeof *items);
    if (!items)
        return bad(w, node, path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char item_path[PATH_TEXT_MAX];
        path_format(item_path, "%s[%zu]", path, i);
        if (set_string(w, rr_yaml_item(node, i), item_path,
                       kind == F_NAMES ? F_NAME : F_STRING, &items[i]) < 0) {
            strings_free(items, n);
            return -1;
        }
    }
    strings_free(*slot, *count);
    *slot = items;
    *count = n;
    return 0;
}

static int set_number(const walk_t *w, const rr_yaml_node_t *node, const char *path,
                      const field_t *f, void *slot)
{
    const char *text = scalar_of(w, node, path);
    uint64_t value;
    if (!text)
        return -1;
    if (f->kind == F_PORT) {
        if (parse_uint(text, 65535, &value) < 0 || value == 0)
            return bad(w, node, path, "'%.64s' is not a port (1-65535)", text);
        *(uint16_t *)slot = (uint16_t)value;
        return 0;
    }
    if (parse_uint(text, f->max, &value) < 0)
        return bad(w, node, path, "'%.64s' is not a whole number from 0 to %llu", text,
                   (unsigned long long)f->max);
    *(uint32_t *)slot = (uint32_t)value;
    return 0;
}

static int set_duration(const walk_t *w, const rr_yaml_node_t *node, const char *path,
                        const field_t *f, uint32_t *slot)
{
    const char *text = scalar_of(w, node, path);
    uint64_t ms;
    char why[160];
    if (!text)
        return -1;
    bool bare = strspn(text, "0123456789") == strlen(text);
    if (f->kind == F_DELAY && bare) {
        if (parse_uint(text, f->max, &ms) < 0)
            return bad(w, node, path, "'%.64s' is more than %llums", text,
                       (unsigned long long)f->max);
    } else if (rr_duration_parse(text, &ms, why, sizeof why) < 0) {
        return bad(w, node, path, "%s", why);
    }
    uint64_t max = f->kind == F_DELAY ? f->max : UINT32_MAX;
    if (ms > max)
        return bad(w, node, path, "'%.64s' is more than %llums", text, (unsigned long long)max);
    if (f->kind == F_DURATION && ms == 0)
        return bad(w, node, path, "'%.64s' must be longer than 0", text);
    *slot = (uint32_t)ms;
    return 0;
}

static int set_size(const walk_t *w, const rr_yaml_node_t *node, const char *path,
                    uint64_t *slot)
{
    const char *text = scalar_of(w, node, path);
    uint64_t bytes;
    char why[160];
    if (!text)
        return -1;
    if (rr_size_parse(text, &bytes, why, sizeof why) < 0)
        return bad(w, node, path, "%s", why);
    if (bytes == 0)
        return bad(w, node, path, "'%.64s' must be more than 0 bytes", text);
    *slot = bytes;
    return 0;
}

static int walk_map(const walk_t *w, const rr_yaml_node_t *map, const char *path,
                    const field_t *fields, void *base);

static int set_field(const walk_t *w, const rr_yaml_node_t *node, const char *path,
                     const field_t *f, void *base)
{
    char *slot = (char *)base + f->offset;
    switch (f->kind) {
    case F_STRING: case F_NAME: case F_ENDPOINT: case F_LISTEN: case F_MAC:
        return set_string(w, node, path, f->kind, (char **)slot);
    case F_STRINGS: case F_NAMES:
        return set_list(w, node, path, f->kind, (char ***)slot,
                        (size_t *)((char *)base + f->count_offset));
    case F_COUNT: case F_PORT:
        return set_number(w, node, path, f, slot);
    case F_DURATION: case F_DELAY:
        return set_duration(w, node, path, f, (uint32_t *)slot);
    case F_SIZE:
        return set_size(w, node, path, (uint64_t *)slot);
    case F_MAP:
        return walk_map(w, node, path, f->sub, base);
    case F_CUSTOM:
        return 0;
    }
    return 0;
}

/* ---- the map walker ----------------------------------------------------- */

static int unknown_key(const walk_t *w, const rr_yaml_node_t *key, const char *path,
                       const field_t *fields)
{
    char expected[512] = "";   /* the master's keys alone take 255 */
    size_t n = 0;
    for (const field_t *f = fields; f->key && n < sizeof expected; f++)
        n += (size_t)snprintf(expected + n, sizeof expected - n, "%s%s", n ? ", " : "",
                              f->key);
    return bad(w, key, path, "unknown key '%.64s' (expected %s)", rr_yaml_scalar(key),
               expected);
}

static int check_keys(const walk_t *w, const rr_yaml_node_t *map, const char *path,
                      const field_t *fields)
{
    for (size_t i = 0; i < rr_yaml_count(map); i++) {
        const rr_yaml_node_t *key = rr_yaml_key(map, i);
        const field_t *f = fields;
        while (f->key && strcmp(f->key, rr_yaml_scalar(key)) != 0)
            f++;
        if (!f->key)
            return unknown_key(w, key, path, fields);
    }
    return 0;
}

static int expect_kind(const walk_t *w, const rr_yaml_node_t *node, const char *path,
                       rr_yaml_kind_t kind)
{
    if (rr_yaml_kind(node) == kind)
        return 0;
    return bad(w, node, path, "must be %s, not %s", rr_yaml_kind_name(kind),
               rr_yaml_kind_name(rr_yaml_kind(node)));
}

/* Check MAP against FIELDS and store every value present into BASE. A null
 * value (key with nothing after it) counts as absent. */
static int walk_map(const walk_t *w, const rr_yaml_node_t *map, const char *path,
                    const field_t *fields, void *base)
{
    if (expect_kind(w, map, path, RR_YAML_MAP) < 0 || check_keys(w, map, path, fields) < 0)
        return -1;
    for (const field_t *f = fields; f->key; f++) {
        const rr_yaml_node_t *node = rr_yaml_get(map, f->key);
        char sub[PATH_TEXT_MAX];
        path_join(sub, path, f->key);
        if (node && rr_yaml_is_null(node))
            node = NULL;
        if (!node && f->required)
            return bad(w, map, path, "missing required key '%s'", f->key);
        if (node && set_field(w, node, sub, f, base) < 0)
            return -1;
    }
    return 0;
}

/* The document's root, which must be a map. */
static const rr_yaml_node_t *root_map(const walk_t *w)
{
    const rr_yaml_node_t *root = rr_yaml_doc_root(w->doc);
    if (!root) {
        rr_yaml_error(w->doc, NULL, w->err, w->errlen, "empty document");
        return NULL;
    }
    return expect_kind(w, root, "", RR_YAML_MAP) < 0 ? NULL : root;
}

/* ---- device settings and passwords -------------------------------------- */

static const field_t serial_fields[] = {
    NUMBER_FIELD("bootloader_delay_ms", F_DELAY, rr_device_config_t, bootloader_delay_ms,
                 DELAY_MAX_MS),
    NUMBER_FIELD("test_shell_delay_ms", F_DELAY, rr_device_config_t, test_shell_delay_ms,
                 DELAY_MAX_MS),
    { 0 },
};

static const field_t ipmi_fields[] = {
    FIELD("timeout", F_DURATION, false, rr_device_config_t, ipmi_timeout_ms),
    NUMBER_FIELD("retries", F_COUNT, rr_device_config_t, ipmi_retries, RETRIES_MAX),
    { 0 },
};

static const field_t sol_fields[] = {
    FIELD("timeout", F_DURATION, false, rr_device_config_t, sol_timeout_ms),
    FIELD("probe_interval", F_DURATION, false, rr_device_config_t, sol_probe_ms),
    { 0 },
};

static const field_t bootloader_fields[] = {
    FIELD("prompt", F_STRING, false, rr_device_config_t, bootloader_prompt),
    FIELD("interrupt", F_STRING, false, rr_device_config_t, bootloader_interrupt),
    LIST_FIELD("commands", F_STRINGS, rr_device_config_t, bootloader_commands,
               bootloader_command_count),
    FIELD("boot_message", F_STRING, false, rr_device_config_t, bootloader_boot_message),
    { 0 },
};

/* The settings a device type gives and a device overrides. */
#define SETTINGS_FIELDS                                                              \
    LIST_FIELD("prompts", F_STRINGS, rr_device_config_t, prompts, prompt_count),     \
    MAP_FIELD("serial", false, serial_fields), MAP_FIELD("ipmi", false, ipmi_fields), \
    MAP_FIELD("sol", false, sol_fields), MAP_FIELD("bootloader", false, bootloader_fields)

static const field_t type_fields[] = { SETTINGS_FIELDS, { 0 } };

static const field_t bmc_fields[] = {
    FIELD("host", F_STRING, true, rr_device_config_t, bmc_host),
    NUMBER_FIELD("port", F_PORT, rr_device_config_t, bmc_port, 65535),
    FIELD("user", F_STRING, true, rr_device_config_t, bmc_user),
    CUSTOM_FIELD("password_file", false),
    CUSTOM_FIELD("password_env", false),
    { 0 },
};

static const field_t device_fields[] = {
    FIELD("name", F_NAME, true, rr_device_config_t, name),
    FIELD("type", F_NAME, true, rr_device_config_t, type),
    LIST_FIELD("tags", F_NAMES, rr_device_config_t, tags, tag_count),
    MAP_FIELD("bmc", true, bmc_fields),
    FIELD("mac", F_MAC, true, rr_device_config_t, mac),
    FIELD("http", F_LISTEN, false, rr_device_config_t, http),
    SETTINGS_FIELDS,
    { 0 },
};

/* Built-in settings, used when neither the device nor its type says. */
static int settings_defaults(rr_device_config_t *s)
{
    s->prompts = calloc(1, sizeof *s->prompts);
    if (!s->prompts || !(s->prompts[0] = strdup("# ")))
        return -1;
    s->prompt_count = 1;
    s->bootloader_delay_ms = 0;
    s->test_shell_delay_ms = 0;
    s->ipmi_timeout_ms = 5000;
    s->ipmi_retries = 3;
    s->sol_timeout_ms = 10000;
    s->sol_probe_ms = 60000;
    s->bmc_port = 623;
    return 0;
}

/* Deep copy of an optional string: 0, or -1 when out of memory. */
static int copy_optional(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return src && !*dst ? -1 : 0;
}

/* Copy SRC's bootloader settings into DST (lists deep-copied). */
static int bootloader_copy(rr_device_config_t *dst, const rr_device_config_t *src)
{
    if (copy_optional(&dst->bootloader_prompt, src->bootloader_prompt) < 0
        || copy_optional(&dst->bootloader_interrupt, src->bootloader_interrupt) < 0
        || copy_optional(&dst->bootloader_boot_message, src->bootloader_boot_message) < 0)
        return -1;
    if (!src->bootloader_command_count)
        return 0;
    dst->bootloader_commands = calloc(src->bootloader_command_count,
                                      sizeof *dst->bootloader_commands);
    if (!dst->bootloader_commands)
        return -1;
    for (size_t i = 0; i < src->bootloader_command_count; i++) {
        if (!(dst->bootloader_commands[i] = strdup(src->bootloader_commands[i])))
            return -1;      /* the caller frees DST, partial list included */
        dst->bootloader_command_count = i + 1;
    }
    return 0;
}

/* Copy the inheritable settings of SRC into DST (prompts deep-copied). */
static int settings_copy(rr_device_config_t *dst, const rr_device_config_t *src)
{
    dst->prompts = calloc(src->prompt_count ? src->prompt_count : 1, sizeof *dst->prompts);
    if (!dst->prompts)
        return -1;
    for (size_t i = 0; i < src->prompt_count; i++) {
        if (!(dst->prompts[i] = strdup(src->prompts[i])))
            return -1;      /* the caller frees DST, partial list included */
        dst->prompt_count = i + 1;
    }
    dst->bootloader_delay_ms = src->bootloader_delay_ms;
    dst->test_shell_delay_ms = src->test_shell_delay_ms;
    dst->ipmi_timeout_ms = src->ipmi_timeout_ms;
    dst->ipmi_retries = src->ipmi_retries;
    dst->sol_timeout_ms = src->sol_timeout_ms;
    dst->sol_probe_ms = src->sol_probe_ms;
    dst->bmc_port = src->bmc_port;
    return bootloader_copy(dst, src);
}

static void device_clear(rr_device_config_t *d)
{
    free(d->name);
    free(d->type);
    strings_free(d->tags, d->tag_count);
    free(d->bmc_host);
    free(d->bmc_user);
    if (d->bmc_password) {
        explicit_bzero(d->bmc_password, strlen(d->bmc_password));
        free(d->bmc_password);
    }
    free(d->mac);
    free(d->http);
    strings_free(d->prompts, d->prompt_count);
    free(d->bootloader_prompt);
    free(d->bootloader_interrupt);
    strings_free(d->bootloader_commands, d->bootloader_command_count);
    free(d->bootloader_boot_message);
    memset(d, 0, sizeof *d);
}

/* Check a password's shape; BUF is never quoted in a message. */
static const char *check_password(const char *buf)
{
    if (!*buf)
        return "is empty";
    if (strchr(buf, '\n'))
        return "holds more than one line";
    if (strlen(buf) > PASSWORD_MAX)
        return "holds a password longer than 20 bytes (the IPMI 2.0 limit)";
    return NULL;
}

static int read_password_file(const walk_t *w, const rr_yaml_node_t *node, const char *path,
                              const char *file, char **out)
{
    char buf[256];
    ssize_t n = -1;
    int rc = -1;
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return bad(w, node, path, "password_file %s: cannot open: %s", file, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        bad(w, node, path, "password_file %s is not a regular file", file);
        goto out;
    }
    if (st.st_mode & 077) {
        bad(w, node, path, "password_file %s is %s by group/others (mode %04o); chmod 600 it",
            file, st.st_mode & 044 ? "readable" : "accessible", (unsigned)(st.st_mode & 07777));
        goto out;
    }
    do
        n = read(fd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        bad(w, node, path, "password_file %s: cannot read: %s", file, strerror(errno));
        goto out;
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    const char *problem = (size_t)n != strlen(buf) ? "holds a NUL byte" : check_password(buf);
    if (problem) {
        bad(w, node, path, "password_file %s %s", file, problem);
        goto out;
    }
    if (!(*out = strdup(buf)))
        bad(w, node, path, "out of memory");
    else
        rc = 0;
out:
    explicit_bzero(buf, sizeof buf);
    close(fd);
    return rc;
}

static int read_password_env(const walk_t *w, const rr_yaml_node_t *node, const char *path,
                             const char *name, char **out)
{
    /* The variable's name is not quoted: an operator may have pasted the password there. */
    if (strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
            strlen(name) || (name[0] >= '0' && name[0] <= '9'))
        return bad(w, node, path, "password_env must name an environment variable "
                                  "(letters, digits, '_')");
    const char *value = getenv(name);
    if (!value)
        return bad(w, node, path, "password_env: the environment variable is not set");
    const char *problem = check_password(value);
    if (problem)
        return bad(w, node, path, "password_env: the environment variable %s", problem);
    if (!(*out = strdup(value)))
        return bad(w, node, path, "out of memory");
    return 0;
}

static int load_password(const walk_t *w, const rr_yaml_node_t *bmc, const char *path,
                         rr_device_config_t *d)
{
    const rr_yaml_node_t *file = rr_yaml_get(bmc, "password_file");
    const rr_yaml_node_t *env = rr_yaml_get(bmc, "password_env");
    char sub[PATH_TEXT_MAX];
    if (file && rr_yaml_is_null(file))
        file = NULL;
    if (env && rr_yaml_is_null(env))
        env = NULL;
    if (file && env)
        return bad(w, env, path, "give password_file or password_env, not both");
    if (!file && !env)
        return bad(w, bmc, path, "missing password_file or password_env");
    path_join(sub, path, file ? "password_file" : "password_env");
    const char *text = scalar_of(w, file ? file : env, sub);
    if (!text)
        return -1;
    return file ? read_password_file(w, file, path, text, &d->bmc_password)
                : read_password_env(w, env, path, text, &d->bmc_password);
}

/* ---- worker configuration ----------------------------------------------- */

typedef struct {
    const char *name;           /* points into the document */
    rr_device_config_t settings;
} device_type_t;

typedef struct {
    device_type_t *items;
    size_t count;
} type_table_t;

static void types_free(type_table_t *types)
{
    for (size_t i = 0; i < types->count; i++)
        device_clear(&types->items[i].settings);
    free(types->items);
    types->items = NULL;
    types->count = 0;
}

static const rr_device_config_t *type_find(const type_table_t *types, const char *name)
{
    for (size_t i = 0; i < types->count; i++)
        if (strcmp(types->items[i].name, name) == 0)
            return &types->items[i].settings;
    return NULL;
}

static int load_types(const walk_t *w, const rr_yaml_node_t *node,
                      const rr_device_config_t *builtin, type_table_t *types)
{
    if (expect_kind(w, node, "device_types", RR_YAML_MAP) < 0)
        return -1;
    size_t n = rr_yaml_count(node);
    types->items = calloc(n ? n : 1, sizeof *types->items);
    if (!types->items)
        return bad(w, node, "device_types", "out of memory");
    for (size_t i = 0; i < n; i++) {
        const rr_yaml_node_t *key = rr_yaml_key(node, i);
        device_type_t *t = &types->items[types->count++];
        char path[PATH_TEXT_MAX];
        t->name = rr_yaml_scalar(key);
        path_join(path, "device_types", t->name);
        if (check_name(t->name))
            return bad(w, key, "device_types", "'%.64s' %s", t->name, check_name(t->name));
        if (settings_copy(&t->settings, builtin) < 0)
            return bad(w, key, path, "out of memory");
        if (!rr_yaml_is_null(rr_yaml_item(node, i)) &&
            walk_map(w, rr_yaml_item(node, i), path, type_fields, &t->settings) < 0)
            return -1;
    }
    return 0;
}

static int load_device(const walk_t *w, const rr_yaml_node_t *node, const char *path,
                       const type_table_t *types, const rr_device_config_t *builtin,
                       rr_device_config_t *d)
{
    if (expect_kind(w, node, path, RR_YAML_MAP) < 0)
        return -1;
    /* The type's settings first, so the device's own keys override them. */
    const rr_yaml_node_t *type = rr_yaml_get(node, "type");
    const rr_device_config_t *settings = NULL;
    if (type && rr_yaml_scalar(type))
        settings = type_find(types, rr_yaml_scalar(type));
    if (settings_copy(d, settings ? settings : builtin) < 0)
        return bad(w, node, path, "out of memory");
    if (walk_map(w, node, path, device_fields, d) < 0)
        return -1;
    char bmc_path[PATH_TEXT_MAX];
    path_join(bmc_path, path, "bmc");
    return load_password(w, rr_yaml_get(node, "bmc"), bmc_path, d);
}

/* Names and MACs must each be unique in the rack. */
static int check_unique(const walk_t *w, const rr_yaml_node_t *list,
                        const rr_worker_config_t *c, size_t i)
{
    const rr_device_config_t *d = &c->devices[i];
    for (size_t j = 0; j < i; j++) {
        char path[PATH_TEXT_MAX];
        if (strcmp(c->devices[j].name, d->name) == 0) {
            path_format(path, "devices[%zu].name", i);
            return bad(w, rr_yaml_get(rr_yaml_item(list, i), "name"), path,
                       "duplicate device name '%s' (also devices[%zu])", d->name, j);
        }
        if (strcmp(c->devices[j].mac, d->mac) == 0) {
            path_format(path, "devices[%zu].mac", i);
            return bad(w, rr_yaml_get(rr_yaml_item(list, i), "mac"), path,
                       "duplicate MAC %s (also devices[%zu] %s)", d->mac, j,
                       c->devices[j].name);
        }
    }
    return 0;
}

static int load_devices(const walk_t *w, const rr_yaml_node_t *list,
                        const type_table_t *types, rr_worker_config_t *c)
{
    rr_device_config_t builtin = { 0 };
    int rc = -1;
    if (expect_kind(w, list, "devices", RR_YAML_LIST) < 0)
        return -1;
    size_t n = rr_yaml_count(list);
    c->devices = calloc(n ? n : 1, sizeof *c->devices);
    if (!c->devices || settings_defaults(&builtin) < 0) {
        bad(w, list, "devices", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char path[PATH_TEXT_MAX];
        path_format(path, "devices[%zu]", i);
        c->device_count++;
        if (load_device(w, rr_yaml_item(list, i), path, types, &builtin, &c->devices[i]) < 0 ||
            check_unique(w, list, c, i) < 0)
            goto out;
    }
    rc = 0;
out:
    device_clear(&builtin);
    return rc;
}

static const field_t worker_fields[] = {
    FIELD("worker", F_NAME, true, rr_worker_config_t, worker),
    FIELD("rack", F_NAME, false, rr_worker_config_t, rack),
    FIELD("master", F_ENDPOINT, true, rr_worker_config_t, master),
    FIELD("master_public_key", F_STRING, false, rr_worker_config_t, master_public_key),
    FIELD("secret_key", F_STRING, false, rr_worker_config_t, secret_key),
    FIELD("tftp_root", F_STRING, true, rr_worker_config_t, tftp_root),
    FIELD("spool_dir", F_STRING, false, rr_worker_config_t, spool_dir),
    FIELD("artifacts_dir", F_STRING, false, rr_worker_config_t, artifacts_dir),
    FIELD("heartbeat_interval", F_DURATION, false, rr_worker_config_t, heartbeat_interval_ms),
    FIELD("secrets_dir", F_STRING, false, rr_worker_config_t, secrets_dir),
    LIST_FIELD("file_roots", F_STRINGS, rr_worker_config_t, file_roots, file_root_count),
    FIELD("max_download", F_SIZE, false, rr_worker_config_t, max_download_bytes),
    CUSTOM_FIELD("device_types", false),
    CUSTOM_FIELD("devices", true),
    { 0 },
};

static int worker_defaults(rr_worker_config_t *c)
{
    c->spool_dir = strdup("/var/lib/rackrun/spool");
    c->artifacts_dir = strdup("/var/lib/rackrun/artifacts");
    c->heartbeat_interval_ms = 1000;
    c->max_download_bytes = RR_MAX_DOWNLOAD_DEFAULT;
    return c->spool_dir && c->artifacts_dir ? 0 : -1;
}

/* Named secrets are as secret as BMC passwords: a directory only its owner
 * can enter (each file is checked for 0600 again when a job reads it). */
static int check_secrets_dir(const walk_t *w, const rr_yaml_node_t *node,
                             const rr_worker_config_t *c)
{
    struct stat st;
    if (stat(c->secrets_dir, &st) < 0)
        return bad(w, node, "secrets_dir", "%s: %s", c->secrets_dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return bad(w, node, "secrets_dir", "%s is not a directory", c->secrets_dir);
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return bad(w, node, "secrets_dir", "%s is accessible by group/others (mode %04o); "
                   "chmod 700 it", c->secrets_dir, (unsigned)(st.st_mode & 07777));
    return 0;
}

/* Cross-key rules, once every key is read. */
static int worker_check(const walk_t *w, const rr_yaml_node_t *root, rr_worker_config_t *c)
{
    if (c->master_public_key && !c->secret_key)
        return bad(w, root, "", "secret_key is required when master_public_key is set (CURVE)");
    if (!c->rack && !(c->rack = strdup(c->worker)))
        return bad(w, root, "", "out of memory");
    for (size_t i = 0; i < c->file_root_count; i++)
        if (c->file_roots[i][0] != '/') {
            char path[PATH_TEXT_MAX];
            path_format(path, "file_roots[%zu]", i);
            return bad(w, rr_yaml_item(rr_yaml_get(root, "file_roots"), i), path,
                       "'%.64s' must be an absolute path", c->file_roots[i]);
        }
    if (c->secrets_dir && check_secrets_dir(w, rr_yaml_get(root, "secrets_dir"), c) < 0)
        return -1;
    for (size_t i = 0; i < c->device_count; i++)
        c->devices[i].worker = c;
    return 0;
}

static int worker_walk(const walk_t *w, rr_worker_config_t *c)
{
    const rr_yaml_node_t *root = root_map(w);
    type_table_t types = { 0 };
    int rc = -1;
    if (!root || walk_map(w, root, "", worker_fields, c) < 0)
        return -1;
    rr_device_config_t builtin = { 0 };
    if (settings_defaults(&builtin) < 0) {
        bad(w, root, "", "out of memory");
        goto out;
    }
    const rr_yaml_node_t *node = rr_yaml_get(root, "device_types");
    if (node && !rr_yaml_is_null(node) && load_types(w, node, &builtin, &types) < 0)
        goto out;
    if (load_devices(w, rr_yaml_get(root, "devices"), &types, c) < 0)
        goto out;
    rc = worker_check(w, root, c);
out:
    device_clear(&builtin);
    types_free(&types);
    return rc;
}

int rr_worker_config_load(const char *path, rr_worker_config_t **out, char *err, size_t errlen)
{
    walk_t w = { .err = err, .errlen = errlen };
    rr_worker_config_t *c = calloc(1, sizeof *c);
    if (!c || worker_defaults(c) < 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    rr_yaml_doc_t *doc = rr_yaml_doc_load(path, err, errlen);
    if (!doc)
        goto fail;
    w.doc = doc;
    int rc = worker_walk(&w, c);
    rr_yaml_doc_destroy(&doc);
    if (rc < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    rr_worker_config_destroy(&c);
    return -1;
}

void rr_worker_config_destroy(rr_worker_config_t **config)
{
    if (!config || !*config)
        return;
    rr_worker_config_t *c = *config;
    free(c->worker);
    free(c->rack);
    free(c->master);
    free(c->master_public_key);
    free(c->secret_key);
    free(c->tftp_root);
    free(c->spool_dir);
    free(c->artifacts_dir);
    free(c->secrets_dir);
    strings_free(c->file_roots, c->file_root_count);
    for (size_t i = 0; i < c->device_count; i++)
        device_clear(&c->devices[i]);
    free(c->devices);
    free(c);
    *config = NULL;
}

/* ---- master configuration ----------------------------------------------- */

static const field_t master_fields[] = {
    FIELD("db", F_STRING, false, rr_master_config_t, db_path),
    FIELD("worker_endpoint", F_ENDPOINT, false, rr_master_config_t, worker_endpoint),
    FIELD("client_endpoint", F_ENDPOINT, false, rr_master_config_t, client_endpoint),
    FIELD("http_listen", F_LISTEN, false, rr_master_config_t, http_listen),
    FIELD("http_www", F_STRING, false, rr_master_config_t, http_www),
    FIELD("http_tokens", F_STRING, false, rr_master_config_t, http_tokens),
    FIELD("secret_key", F_STRING, false, rr_master_config_t, secret_key),
    FIELD("worker_keys_dir", F_STRING, false, rr_master_config_t, worker_keys_dir),
    FIELD("client_keys_dir", F_STRING, false, rr_master_config_t, client_keys_dir),
    FIELD("heartbeat_interval", F_DURATION, false, rr_master_config_t, heartbeat_interval_ms),
    FIELD("heartbeat_timeout", F_DURATION, false, rr_master_config_t, heartbeat_timeout_ms),
    FIELD("worker_grace", F_DURATION, false, rr_master_config_t, worker_grace_ms),
    FIELD("max_job_yaml", F_SIZE, false, rr_master_config_t, max_job_yaml_bytes),
    CUSTOM_FIELD("log_retention_age", false),   /* months: more than F_DURATION's 32-bit ms */
    FIELD("log_retention_size", F_SIZE, false, rr_master_config_t, log_retention_size_bytes),
    FIELD("artifact_quota", F_SIZE, false, rr_master_config_t, artifact_quota_bytes),
    CUSTOM_FIELD("health_checks", false),       /* a map keyed by device type */
    { 0 },
};

static int master_defaults(rr_master_config_t *c)
{
    c->db_path = strdup("/var/lib/rackrun/master.db");
    c->worker_endpoint = strdup("tcp://127.0.0.1:5555");
    c->client_endpoint = strdup("tcp://127.0.0.1:5556");
    c->http_listen = strdup("127.0.0.1:8080");
    c->heartbeat_interval_ms = 1000;
    c->heartbeat_timeout_ms = 5000;
    c->worker_grace_ms = 60000;
    c->max_job_yaml_bytes = RR_MAX_JOB_YAML_DEFAULT;
    c->artifact_quota_bytes = RR_ARTIFACT_QUOTA_DEFAULT;
    return c->db_path && c->worker_endpoint && c->client_endpoint && c->http_listen ? 0 : -1;
}

static int master_check(const walk_t *w, const rr_yaml_node_t *root,
                        const rr_master_config_t *c)
{
    char interval[32], timeout[32];
    if (c->heartbeat_timeout_ms <= c->heartbeat_interval_ms)
        return bad(w, rr_yaml_get(root, "heartbeat_timeout") ? rr_yaml_get(root,
                   "heartbeat_timeout") : root, "heartbeat_timeout",
                   "%s must be longer than heartbeat_interval (%s)",
                   rr_duration_format(c->heartbeat_timeout_ms, timeout, sizeof timeout),
                   rr_duration_format(c->heartbeat_interval_ms, interval, sizeof interval));
    if (c->secret_key && (!c->worker_keys_dir || !c->client_keys_dir))
        return bad(w, root, "", "secret_key is set (CURVE) but %s is not: "
                   "without it no peer could be authorised",
                   c->worker_keys_dir ? "client_keys_dir" : "worker_keys_dir");
    return 0;
}

/* log_retention_age: a duration ("90d"), or "off" (the default). */
static int master_retention_age(const walk_t *w, const rr_yaml_node_t *root, rr_master_config_t *c)
{
    const rr_yaml_node_t *node = rr_yaml_get(root, "log_retention_age");
    const char *text = node ? scalar_of(w, node, "log_retention_age") : NULL;
    char why[160];
    if (!node)
        return 0;
    if (!text)
        return -1;
    if (strcmp(text, "off") == 0)
        return 0;
    if (rr_duration_parse(text, &c->log_retention_age_ms, why, sizeof why) < 0)
        return bad(w, node, "log_retention_age", "%s", why);
    if (c->log_retention_age_ms == 0)
        return bad(w, node, "log_retention_age", "'%.64s' must be longer than 0 (or off)", text);
    return 0;
}

#define HEALTH_EVERY_MAX 1000000u

static const field_t health_check_fields[] = {
    FIELD("job", F_STRING, true, rr_health_check_config_t, job),
    NUMBER_FIELD("every_jobs", F_COUNT, rr_health_check_config_t, every_jobs, HEALTH_EVERY_MAX),
    NUMBER_FIELD("every_hours", F_COUNT, rr_health_check_config_t, every_hours,
                 HEALTH_EVERY_MAX),
    { 0 },
};

/* A relative job path is taken from the config file's directory (CONFIG_PATH). */
static int health_job_path(const walk_t *w, const rr_yaml_node_t *node, const char *path,
                           const char *config_path, char **job)
{
    const char *slash = config_path ? strrchr(config_path, '/') : NULL;
    if ((*job)[0] == '/' || !slash)
        return 0;
    size_t len = (size_t)(slash - config_path) + 1 + strlen(*job) + 1;
    char *full = malloc(len);
    if (!full)
        return bad(w, node, path, "out of memory");
    snprintf(full, len, "%.*s/%s", (int)(slash - config_path), config_path, *job);
    free(*job);
    *job = full;
    return 0;
}

/* health_checks: {TYPE: {job: PATH, every_jobs: N, every_hours: H}, ...} */
static int master_health_checks(const walk_t *w, const rr_yaml_node_t *root,
                                const char *config_path, rr_master_config_t *c)
{
    const rr_yaml_node_t *node = rr_yaml_get(root, "health_checks");
    if (!node || rr_yaml_is_null(node))
        return 0;
    if (expect_kind(w, node, "health_checks", RR_YAML_MAP) < 0)
        return -1;
    size_t n = rr_yaml_count(node);
    c->health_checks = calloc(n ? n : 1, sizeof *c->health_checks);
    if (!c->health_checks)
        return bad(w, node, "health_checks", "out of memory");
    for (size_t i = 0; i < n; i++) {
        const rr_yaml_node_t *key = rr_yaml_key(node, i);
        rr_health_check_config_t *h = &c->health_checks[c->health_check_count++];
        char path[PATH_TEXT_MAX], job_path[PATH_TEXT_MAX];
        const char *type = rr_yaml_scalar(key);
        if (check_name(type))
            return bad(w, key, "health_checks", "'%.64s' %s", type, check_name(type));
        if (!(h->device_type = strdup(type)))
            return bad(w, key, "health_checks", "out of memory");
        path_join(path, "health_checks", type);
        path_join(job_path, path, "job");
        if (walk_map(w, rr_yaml_item(node, i), path, health_check_fields, h) < 0 ||
            health_job_path(w, rr_yaml_get(rr_yaml_item(node, i), "job"), job_path,
                            config_path, &h->job) < 0)
            return -1;
    }
    return 0;
}

int rr_master_config_load(const char *path, rr_master_config_t **out, char *err, size_t errlen)
{
    rr_yaml_doc_t *doc = NULL;
    rr_master_config_t *c = calloc(1, sizeof *c);
    if (!c || master_defaults(c) < 0) {
        snprintf(err, errlen, "%s: out of memory", path ? path : "master config");
        goto fail;
    }
    if (path) {
        if (!(doc = rr_yaml_doc_load(path, err, errlen)))
            goto fail;
        walk_t w = { .doc = doc, .err = err, .errlen = errlen };
        const rr_yaml_node_t *root = rr_yaml_doc_root(doc);
        /* An empty master file is all defaults, like no file. */
        if (root && (!(root = root_map(&w)) || walk_map(&w, root, "", master_fields, c) < 0 ||
                     master_retention_age(&w, root, c) < 0 ||
                     master_health_checks(&w, root, path, c) < 0 || master_check(&w, root, c) < 0))
            goto fail;
        rr_yaml_doc_destroy(&doc);
    }
    *out = c;
    return 0;
fail:
    rr_yaml_doc_destroy(&doc);
    rr_master_config_destroy(&c);
    return -1;
}

void rr_master_config_destroy(rr_master_config_t **config)
{
    if (!config || !*config)
        return;
    rr_master_config_t *c = *config;
    free(c->db_path);
    free(c->worker_endpoint);
    free(c->client_endpoint);
    free(c->http_listen);
    free(c->http_www);
    free(c->http_tokens);
    free(c->secret_key);
    free(c->worker_keys_dir);
    free(c->client_keys_dir);
    for (size_t i = 0; i < c->health_check_count; i++) {
        free(c->health_checks[i].device_type);
        free(c->health_checks[i].job);
    }
    free(c->health_checks);
    free(c);
    *config = NULL;
}
