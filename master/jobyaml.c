/* jobyaml.c: validate a submitted job's YAML (DESIGN.md "Job definition")
 * and normalise it into a proto_jobdef_t.
 *
 * The YAML is loaded by common/yamldoc (bounded, aliases refused, duplicate
 * keys refused, every node marked); this file is the schema walk. Each parse_*
 * function takes a node and its key path and either fills its part of the
 * definition or stops at the first error, located at the offending node.
 * The first error wins: one precise message beats a list of consequences.
 */
#include "jobyaml.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"
#include "yamldoc.h"

#define DEFAULT_PRIORITY          50u
#define DEFAULT_JOB_TIMEOUT_S     (30u * 60u)
#define DEFAULT_ACTION_TIMEOUT_S  (10u * 60u)
#define DEFAULT_PROMPT            "# "
#define MAX_TIMEOUT_S             (7u * 24u * 3600u)   /* a week: anything longer is a typo */
#define PATH_MAX_LEN              128

typedef const rr_yaml_node_t node_t;

typedef struct {
    const rr_yaml_doc_t *doc;
    rr_jobyaml_error_t *err;
    node_t *secrets;        /* the job's `secrets:` list, NULL = none */
} walk_t;

/* ---- errors ---- */

static void format_error(rr_jobyaml_error_t *err, const char *message)
{
    char where[64] = "";
    if (err->line)
        snprintf(where, sizeof where, "line %u, column %u: ", err->line, err->col);
    int n = snprintf(err->text, sizeof err->text, "%s%s%s%s", where, err->path,
                     err->path[0] ? ": " : "", message);
    if (n < 0 || (size_t) n >= sizeof err->text) /* say the message was cut, not hide it */
        memcpy(err->text + sizeof err->text - 4, "...", 4);
}

/* Record an error at NODE (may be NULL) for PATH; returns -1. */
static int fail(walk_t *w, node_t *node, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(walk_t *w, node_t *node, const char *path, const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    w->err->line = node ? rr_yaml_line(node) : 0;
    w->err->col = node ? rr_yaml_column(node) : 0;
    snprintf(w->err->path, sizeof w->err->path, "%s", path);
    format_error(w->err, message);
    return -1;
}

/* ---- paths ---- */

/* Paths are for messages: one too long for the buffer ends in "...". */
static const char *path_done(char *buf, int written)
{
    if (written < 0 || written >= PATH_MAX_LEN)
        memcpy(buf + PATH_MAX_LEN - 4, "...", 4);
    return buf;
}

static const char *path_key(char *buf, const char *path, const char *key)
{
    return path_done(buf, snprintf(buf, PATH_MAX_LEN, "%s%s%s", path, path[0] ? "." : "", key));
}

static const char *path_index(char *buf, const char *path, size_t index)
{
    return path_done(buf, snprintf(buf, PATH_MAX_LEN, "%s[%zu]", path, index));
}

/* ---- scalars ---- */

/* KIND as a message word, "a map" / "a list" / "a scalar". */
static const char *kind_name(node_t *node)
{
    return rr_yaml_kind_name(rr_yaml_kind(node));
}

/* The text of scalar NODE, non-empty; NULL after recording an error. */
static const char *need_text(walk_t *w, node_t *node, const char *path)
{
    if (rr_yaml_kind(node) != RR_YAML_SCALAR) {
        fail(w, node, path, "must be a string, not %s", kind_name(node));
        return NULL;
    }
    const char *text = rr_yaml_scalar(node);
    if (rr_yaml_is_null(node) || !text || !*text) {
        fail(w, node, path, "must not be empty");
        return NULL;
    }
    return text;
}

/* A malloc'd copy of scalar NODE's text (non-empty). */
static int dup_text(walk_t *w, node_t *node, const char *path, char **out)
{
    const char *text = need_text(w, node, path);
    if (!text)
        return -1;
    if (!(*out = strdup(text)))
        return fail(w, node, path, "out of memory");
    return 0;
}

/* A name that travels in tags, types and results: [A-Za-z0-9._+-]+ */
static int check_name(walk_t *w, node_t *node, const char *path, const char *text)
{
    for (const char *p = text; *p; p++)
        if (!isalnum((unsigned char) *p) && !strchr("._+-", *p))
            return fail(w, node, path, "'%s': only letters, digits and . _ + - are allowed",
                        text);
    return 0;
}

static int parse_duration_s(walk_t *w, node_t *node, const char *path, uint32_t *seconds)
{
    const char *text = need_text(w, node, path);
    if (!text)
        return -1;
    uint64_t ms;
    char why[160];
    if (rr_duration_parse(text, &ms, why, sizeof why) != 0)
        return fail(w, node, path, "%s", why);
    uint64_t s = (ms + 999) / 1000;
    if (s == 0)
        return fail(w, node, path, "'%s': a timeout must be at least 1s", text);
    if (s > MAX_TIMEOUT_S)
        return fail(w, node, path, "'%s': a timeout may be at most 7d", text);
    *seconds = (uint32_t) s;
    return 0;
}

/* ---- maps ---- */

static bool in_list(const char *key, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strcmp(key, *allowed) == 0)
            return true;
    return false;
}

static void join_names(char *buf, size_t len, const char *const *names)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; names[i] && at < len; i++)
        at += (size_t) snprintf(buf + at, len - at, "%s%s", i ? ", " : "", names[i]);
}

/* NODE must be a map whose keys are all in ALLOWED (NULL-terminated). */
static int check_map(walk_t *w, node_t *node, const char *path, const char *const *allowed)
{
    if (rr_yaml_kind(node) != RR_YAML_MAP)
        return fail(w, node, path, "must be a map, not %s", kind_name(node));
    for (size_t i = 0; i < rr_yaml_count(node); i++) {
        node_t *key = rr_yaml_key(node, i);
        const char *name = rr_yaml_scalar(key);
        if (!in_list(name, allowed)) {
            char sub[PATH_MAX_LEN], expected[256];
            join_names(expected, sizeof expected, allowed);
            return fail(w, key, path_key(sub, path, name), "unknown key '%s' (expected %s)",
                        name, expected);
        }
    }
    return 0;
}

/* The value of required KEY of MAP; NULL after recording an error. */
static node_t *need_key(walk_t *w, node_t *map, const char *path, const char *key)
{
    node_t *value = rr_yaml_get(map, key);
    if (!value) {
        char sub[PATH_MAX_LEN];
        fail(w, map, path_key(sub, path, key), "missing (required)");
    }
    return value;
}

/* ---- artifacts ---- */

/* A file URL names an absolute local path with no "..", "." or %-escapes: the
 * worker still confines it beneath its file_roots, this only says so early. */
static int check_file_url(walk_t *w, node_t *node, const char *path, const char *url)
{
    const char *p = url + strlen("file://");
    if (*p != '/')
        return fail(w, node, path, "'%s': a file URL must be file:///absolute/path", url);
    if (strchr(p, '%') || strstr(p, "/../") || strstr(p, "/./") || strstr(p, "//")
        || (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0))
        return fail(w, node, path, "'%s': a file URL must not contain '..', '.', '//' or "
                    "%%-escapes", url);
    return 0;
}

static int check_url(walk_t *w, node_t *node, const char *path, const char *url)
{
    static const char *const schemes[] = { "http://", "https://", "file://", NULL };
    if (strncmp(url, "file://", 7) == 0 && url[7] != '\0')
        return check_file_url(w, node, path, url);
    for (const char *const *s = schemes; *s; s++)
        if (strncmp(url, *s, strlen(*s)) == 0 && url[strlen(*s)] != '\0')
            return 0;
    return fail(w, node, path, "'%s': unsupported URL (expected http://, https:// or file://)",
                url);
}

static int check_sha256(walk_t *w, node_t *node, const char *path, char *sha)
{
    size_t len = strlen(sha);
    bool hex = len == 64;
    for (size_t i = 0; i < len && hex; i++) {
        hex = isxdigit((unsigned char) sha[i]) != 0;
        sha[i] = (char) tolower((unsigned char) sha[i]);
    }
    if (!hex)
        return fail(w, node, path, "'%.80s' is not a sha256 (64 hex digits, got %zu characters)",
                    sha, len);
    return 0;
}

static int parse_artifact(walk_t *w, node_t *node, const char *path, const char *role,
                          proto_artifact_t *art)
{
    static const char *const keys[] = { "url", "sha256", NULL };
    char sub[PATH_MAX_LEN];
    if (check_map(w, node, path, keys))
        return -1;
    node_t *url = need_key(w, node, path, "url");
    if (!url || dup_text(w, url, path_key(sub, path, "url"), &art->url)
        || check_url(w, url, sub, art->url))
        return -1;
    node_t *sha = rr_yaml_get(node, "sha256");
    if (sha && (dup_text(w, sha, path_key(sub, path, "sha256"), &art->sha256)
                || check_sha256(w, sha, sub, art->sha256)))
        return -1;
    if (!(art->role = strdup(role)))
        return fail(w, node, path, "out of memory");
    return 0;
}

/* ---- actions ---- */

static int parse_deploy_tftp(walk_t *w, node_t *node, const char *path, proto_action_t *act)
{
    static const char *const keys[] = { "to", "kernel", "initrd", "dtb", "append", "timeout",
                                        NULL };
    static const char *const roles[] = { "kernel", "initrd", "dtb" };
    char sub[PATH_MAX_LEN];
    if (check_map(w, node, path, keys) || !need_key(w, node, path, "kernel"))
        return -1;
    if (!(act->artifacts = calloc(3, sizeof *act->artifacts)))
        return fail(w, node, path, "out of memory");
    for (size_t i = 0; i < 3; i++) {
        node_t *art = rr_yaml_get(node, roles[i]);
        if (art && parse_artifact(w, art, path_key(sub, path, roles[i]), roles[i],
                                  &act->artifacts[act->artifacts_count++]))
            return -1;
    }
    node_t *append = rr_yaml_get(node, "append");
    if (append && dup_text(w, append, path_key(sub, path, "append"), &act->append))
        return -1;
    return 0;
}

static int parse_deploy_disk(walk_t *w, node_t *node, const char *path, proto_action_t *act)
{
    static const char *const keys[] = { "to", "image", "device", "timeout", NULL };
    char sub[PATH_MAX_LEN];
    if (check_map(w, node, path, keys))
        return -1;
    node_t *image = need_key(w, node, path, "image");
    if (!image)
        return -1;
    if (!(act->artifacts = calloc(1, sizeof *act->artifacts)))
        return fail(w, node, path, "out of memory");
    act->artifacts_count = 1;
    if (parse_artifact(w, image, path_key(sub, path, "image"), "image", act->artifacts))
        return -1;
    node_t *device = need_key(w, node, path, "device");
    if (!device || dup_text(w, device, path_key(sub, path, "device"), &act->disk_device))
        return -1;
    if (strncmp(act->disk_device, "/dev/", 5) != 0 || strstr(act->disk_device, ".."))
        return fail(w, device, sub, "'%s': must be a device under /dev/", act->disk_device);
    return 0;
}

static int parse_deploy(walk_t *w, node_t *node, const char *path, proto_action_t *act)
{
    char sub[PATH_MAX_LEN];
    if (rr_yaml_kind(node) != RR_YAML_MAP)
        return fail(w, node, path, "must be a map, not %s", kind_name(node));
    node_t *to = need_key(w, node, path, "to");
    if (!to || dup_text(w, to, path_key(sub, path, "to"), &act->to))
        return -1;
    if (strcmp(act->to, "tftp") == 0)
        return parse_deploy_tftp(w, node, path, act);
    if (strcmp(act->to, "disk") == 0)
        return parse_deploy_disk(w, node, path, act);
    return fail(w, to, sub, "unknown target '%s' (expected tftp, disk)", act->to);
}

static int parse_prompts(walk_t *w, node_t *node, const char *path, proto_action_t *act)
{
    char sub[PATH_MAX_LEN];
    if (rr_yaml_kind(node) != RR_YAML_LIST)
        return fail(w, node, path, "must be a list, not %s", kind_name(node));
    size_t n = rr_yaml_count(node);
    if (n == 0)
        return fail(w, node, path, "must list at least one prompt");
    if (!(act->prompts = calloc(n, sizeof *act->prompts)))
        return fail(w, node, path, "out of memory");
    act->prompts_count = n;     /* counted up front: destroy frees a half-parsed list */
    for (size_t i = 0; i < n; i++)
        if (dup_text(w, rr_yaml_item(node, i), path_index(sub, path, i), &act->prompts[i]))
            return -1;
    return 0;
}

static int parse_boot(walk_t *w, node_t *node, const char *path, proto_action_t *act)
{
    static const char *const keys[] = { "method", "prompts", "timeout", NULL };
    static const char *const methods[] = { "ipmi-pxe", "ipmi-disk", "uboot-pxe", NULL };
    char sub[PATH_MAX_LEN], expected[64];
    if (check_map(w, node, path, keys))
        return -1;
    node_t *method = need_key(w, node, path, "method");
    if (!method || dup_text(w, method, path_key(sub, path, "method"), &act->method))
        return -1;
    if (!in_list(act->method, methods)) {
        join_names(expected, sizeof expected, methods);
        return fail(w, method, sub, "unknown method '%s' (expected %s)", act->method, expected);
    }
    node_t *prompts = rr_yaml_get(node, "prompts");
    if (prompts)
        return parse_prompts(w, prompts, path_key(sub, path, "prompts"), act);
    if (!(act->prompts = calloc(1, sizeof *act->prompts))
        || !(act->prompts[0] = strdup(DEFAULT_PROMPT)))
        return fail(w, node, path, "out of memory");
    act->prompts_count = 1;
    return 0;
}

static bool secret_listed(const walk_t *w, const char *name, size_t len)
{
    for (size_t i = 0; w->secrets && i < rr_yaml_count(w->secrets); i++) {
        const char *listed = rr_yaml_scalar(rr_yaml_item(w->secrets, i));
        if (listed && strlen(listed) == len && strncmp(listed, name, len) == 0)
            return true;
    }
    return false;
}

/* Each {{secret:NAME}} in RUN names a secret the job lists: the worker
 * resolves it from its own store (the value never passes the master). */
static int check_secret_refs(walk_t *w, node_t *node, const char *path, const char *run)
{
    static const char open[] = "{{secret:";
    for (const char *ref = strstr(run, open); ref; ref = strstr(ref + 1, open)) {
        const char *name = ref + strlen(open), *close = strstr(name, "}}");
        if (!close)
            return fail(w, node, path, "unterminated secret reference '%.40s' (expected "
                        "{{secret:NAME}})", ref);
        int len = (int) (close - name);
        if (!secret_listed(w, name, (size_t) len))
            return fail(w, node, path, "secret '%.*s' is not listed in the job's secrets",
                        len > 64 ? 64 : len, name);
    }
    return 0;
}

static int parse_secrets(walk_t *w, node_t *node)
{
    char sub[PATH_MAX_LEN];
    if (rr_yaml_kind(node) != RR_YAML_LIST)
        return fail(w, node, "secrets", "must be a list of secret names, not %s",
                    kind_name(node));
    for (size_t i = 0; i < rr_yaml_count(node); i++) {
        node_t *item = rr_yaml_item(node, i);
        const char *name = rr_yaml_scalar(item);
        if (!name)
            return fail(w, item, path_index(sub, "secrets", i), "must be a name, not %s",
                        kind_name(item));
        if (check_name(w, item, path_index(sub, "secrets", i), name))
            return -1;
    }
    w->secrets = node;
    return 0;
}

/* Step names become result names: unique within the job's test action. */
static int parse_step(walk_t *w, node_t *node, const char *path, proto_step_t *step,
                      const proto_step_t *before, size_t before_count)
{
    static const char *const keys[] = { "name", "run", "timeout", NULL };
    char sub[PATH_MAX_LEN];
    if (check_map(w, node, path, keys))
        return -1;
    node_t *name = need_key(w, node, path, "name");
    if (!name || dup_text(w, name, path_key(sub, path, "name"), &step->name)
        || check_name(w, name, sub, step->name))
        return -1;
    for (size_t i = 0; i < before_count; i++)
        if (strcmp(before[i].name, step->name) == 0)
            return fail(w, name, sub, "duplicate step name '%s'", step->name);
    node_t *run = need_key(w, node, path, "run");
    if (!run || dup_text(w, run, path_key(sub, path, "run"), &step->run)
        || check_secret_refs(w, run, sub, step->run))
        return -1;
    node_t *timeout = rr_yaml_get(node, "timeout");
    if (timeout && parse_duration_s(w, timeout, path_key(sub, path, "timeout"),
                                    &step->timeout_s))
        return -1;
    return 0;
}

static int parse_test(walk_t *w, node_t *node, const char *path, proto_action_t *act)
{
    static const char *const keys[] = { "steps", "timeout", NULL };
    char sub[PATH_MAX_LEN], item[PATH_MAX_LEN];
    if (check_map(w, node, path, keys))
        return -1;
    node_t *steps = need_key(w, node, path, "steps");
    if (!steps)
        return -1;
    path_key(sub, path, "steps");
    if (rr_yaml_kind(steps) != RR_YAML_LIST)
        return fail(w, steps, sub, "must be a list, not %s", kind_name(steps));
    size_t n = rr_yaml_count(steps);
    if (n == 0)
        return fail(w, steps, sub, "must list at least one step");
    if (!(act->steps = calloc(n, sizeof *act->steps)))
        return fail(w, steps, sub, "out of memory");
    act->steps_count = n;
    for (size_t i = 0; i < n; i++)
        if (parse_step(w, rr_yaml_item(steps, i), path_index(item, sub, i), &act->steps[i],
                       act->steps, i))
            return -1;
    return 0;
}

static int parse_transfer(walk_t *w, node_t *node, const char *path, proto_action_t *act)
{
    static const char *const keys[] = { "from", "to", "timeout", NULL };
    char sub[PATH_MAX_LEN];
    if (check_map(w, node, path, keys))
        return -1;
    node_t *from = need_key(w, node, path, "from");
    if (!from || dup_text(w, from, path_key(sub, path, "from"), &act->from))
        return -1;
    if (act->from[0] != '/')
        return fail(w, from, sub, "'%s': must be an absolute path on the node", act->from);
    node_t *to = need_key(w, node, path, "to");
    if (!to || dup_text(w, to, path_key(sub, path, "to"), &act->to))
        return -1;
    /* An artifact name, stored under the job: never a path that could climb out. */
    if (strchr(act->to, '/') || strcmp(act->to, ".") == 0 || strcmp(act->to, "..") == 0)
        return fail(w, to, sub, "'%s': must be a file name, not a path", act->to);
    return 0;
}

typedef int (action_parser_t)(walk_t *, node_t *, const char *, proto_action_t *);

static const struct {
    const char *kind;
    action_parser_t *parse;
} action_kinds[] = {
    { "deploy", parse_deploy },
    { "boot", parse_boot },
    { "test", parse_test },
    { "transfer", parse_transfer },
};

#define ACTION_KINDS "deploy, boot, test, transfer"

static int parse_action(walk_t *w, node_t *node, const char *path, proto_action_t *act,
                        uint32_t default_timeout_s)
{
    char sub[PATH_MAX_LEN];
    if (rr_yaml_kind(node) != RR_YAML_MAP || rr_yaml_count(node) != 1)
        return fail(w, node, path, "an action is a map with one key (" ACTION_KINDS ")");
    node_t *key = rr_yaml_key(node, 0), *body = rr_yaml_item(node, 0);
    const char *kind = rr_yaml_scalar(key);
    path_key(sub, path, kind);
    for (size_t i = 0; i < sizeof action_kinds / sizeof action_kinds[0]; i++) {
        if (strcmp(kind, action_kinds[i].kind) != 0)
            continue;
        if (!(act->kind = strdup(kind)))
            return fail(w, key, sub, "out of memory");
        act->timeout_s = default_timeout_s;
        if (action_kinds[i].parse(w, body, sub, act))
            return -1;
        node_t *timeout = rr_yaml_get(body, "timeout");
        char tpath[PATH_MAX_LEN];
        return timeout ? parse_duration_s(w, timeout, path_key(tpath, sub, "timeout"),
                                          &act->timeout_s) : 0;
    }
    return fail(w, key, sub, "unknown action '%s' (expected " ACTION_KINDS ")", kind);
}

static int parse_actions(walk_t *w, node_t *node, proto_jobdef_t *def)
{
    char sub[PATH_MAX_LEN];
    if (rr_yaml_kind(node) != RR_YAML_LIST)
        return fail(w, node, "actions", "must be a list, not %s", kind_name(node));
    size_t n = rr_yaml_count(node);
    if (n == 0)
        return fail(w, node, "actions", "must list at least one action");
    if (!(def->actions = calloc(n, sizeof *def->actions)))
        return fail(w, node, "actions", "out of memory");
    def->actions_count = n;
    for (size_t i = 0; i < n; i++)
        if (parse_action(w, rr_yaml_item(node, i), path_index(sub, "actions", i),
                         &def->actions[i], def->action_timeout_s))
            return -1;
    return 0;
}

/* ---- top level ---- */

static int parse_priority(walk_t *w, node_t *node, uint32_t *priority)
{
    static const struct { const char *name; uint32_t value; } words[] = {
        { "low", 25 }, { "medium", 50 }, { "high", 75 },
    };
    const char *text = need_text(w, node, "priority");
    if (!text)
        return -1;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcmp(text, words[i].name) == 0) {
            *priority = words[i].value;
            return 0;
        }
    }
    char *end;
    long value = isdigit((unsigned char) text[0]) ? strtol(text, &end, 10) : -1;
    if (value < 0 || value > 100 || *end != '\0')
        return fail(w, node, "priority", "'%s': expected 0..100 or low, medium, high", text);
    *priority = (uint32_t) value;
    return 0;
}

static int parse_tags(walk_t *w, node_t *node, proto_jobdef_t *def)
{
    char sub[PATH_MAX_LEN];
    if (rr_yaml_kind(node) != RR_YAML_LIST)
        return fail(w, node, "tags", "must be a list, not %s", kind_name(node));
    size_t n = rr_yaml_count(node);
    if (n && !(def->tags = calloc(n, sizeof *def->tags)))
        return fail(w, node, "tags", "out of memory");
    for (size_t i = 0; i < n; i++) {
        node_t *item = rr_yaml_item(node, i);
        char *tag;
        if (dup_text(w, item, path_index(sub, "tags", i), &tag))
            return -1;
        bool seen = false;
        for (size_t j = 0; j < def->tags_count && !seen; j++)
            seen = strcmp(def->tags[j], tag) == 0;
        if (seen) {
            free(tag);    /* a repeated tag asks nothing more */
            continue;
        }
        def->tags[def->tags_count++] = tag;
        if (check_name(w, item, sub, tag))
            return -1;
    }
    return 0;
}

static int parse_timeouts(walk_t *w, node_t *node, proto_jobdef_t *def)
{
    static const char *const keys[] = { "job", "action", NULL };
    if (check_map(w, node, "timeouts", keys))
        return -1;
    node_t *job = rr_yaml_get(node, "job"), *action = rr_yaml_get(node, "action");
    if (job && parse_duration_s(w, job, "timeouts.job", &def->job_timeout_s))
        return -1;
    if (action && parse_duration_s(w, action, "timeouts.action", &def->action_timeout_s))
        return -1;
    return 0;
}

/* notify: {callback: http(s) URL, on: [finished|complete|incomplete|canceled...]}
 * (master/notify.h); `on` defaults to [finished], normalised into notify_on. */
static int parse_notify_on(walk_t *w, node_t *node, proto_jobdef_t *def)
{
    static const char *const events[] = { "finished", "complete", "incomplete", "canceled", NULL };
    char sub[PATH_MAX_LEN], expected[128];
    size_t n = rr_yaml_kind(node) == RR_YAML_LIST ? rr_yaml_count(node) : 0;
    if (n == 0)
        return fail(w, node, "notify.on", "must be a non-empty list of events");
    if (!(def->notify_on = calloc(n, sizeof *def->notify_on)))
        return fail(w, node, "notify.on", "out of memory");
    for (size_t i = 0; i < n; i++) {
        node_t *item = rr_yaml_item(node, i);
        char *event;
        if (dup_text(w, item, path_index(sub, "notify.on", i), &event))
            return -1;
        def->notify_on[def->notify_on_count++] = event;
        join_names(expected, sizeof expected, events);
        if (!in_list(event, events))
            return fail(w, item, sub, "unknown event '%s' (expected %s)", event, expected);
    }
    return 0;
}

static int parse_notify(walk_t *w, node_t *node, proto_jobdef_t *def)
{
    static const char *const keys[] = { "callback", "on", NULL };
    if (check_map(w, node, "notify", keys))
        return -1;
    node_t *url = need_key(w, node, "notify", "callback");
    if (!url || dup_text(w, url, "notify.callback", &def->notify_url))
        return -1;
    if (strncmp(def->notify_url, "http://", 7) != 0 && strncmp(def->notify_url, "https://", 8) != 0)
        return fail(w, url, "notify.callback", "'%s': a callback must be an http:// or https:// URL",
                    def->notify_url);
    node_t *on = rr_yaml_get(node, "on");
    if (on)
        return parse_notify_on(w, on, def);
    if (!(def->notify_on = calloc(1, sizeof *def->notify_on))
        || !(def->notify_on[0] = strdup("finished")))
        return fail(w, node, "notify", "out of memory");
    def->notify_on_count = 1;
    return 0;
}

static int cmp_tag(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static int parse_job(walk_t *w, node_t *root, proto_jobdef_t *def)
{
    static const char *const keys[] = { "job_name", "device_type", "priority", "tags",
                                        "timeouts", "secrets", "actions", "notify", NULL };
    if (check_map(w, root, "", keys))
        return -1;
    node_t *name = need_key(w, root, "", "job_name");
    if (!name || dup_text(w, name, "job_name", &def->name))
        return -1;
    node_t *type = need_key(w, root, "", "device_type");
    if (!type || dup_text(w, type, "device_type", &def->device_type)
        || check_name(w, type, "device_type", def->device_type))
        return -1;
    node_t *actions = need_key(w, root, "", "actions");
    if (!actions)
        return -1;
    def->priority = DEFAULT_PRIORITY;
    def->job_timeout_s = DEFAULT_JOB_TIMEOUT_S;
    def->action_timeout_s = DEFAULT_ACTION_TIMEOUT_S;
    node_t *node;
    if ((node = rr_yaml_get(root, "priority")) && parse_priority(w, node, &def->priority))
        return -1;
    if ((node = rr_yaml_get(root, "tags")) && parse_tags(w, node, def))
        return -1;
    if (def->tags_count > 1)
        qsort(def->tags, def->tags_count, sizeof *def->tags, cmp_tag);
    if ((node = rr_yaml_get(root, "timeouts")) && parse_timeouts(w, node, def))
        return -1;
    if ((node = rr_yaml_get(root, "secrets")) && parse_secrets(w, node))
        return -1;
    if ((node = rr_yaml_get(root, "notify")) && parse_notify(w, node, def))
        return -1;
    return parse_actions(w, actions, def);
}

/* Turn yamldoc's "job:LINE:COL: problem" into a located error. */
static void syntax_error(rr_jobyaml_error_t *err, const char *text)
{
    unsigned line = 0, col = 0;
    int used = 0;
    if (sscanf(text, "job:%u:%u: %n", &line, &col, &used) == 2 && used > 0) {
        err->line = line;
        err->col = col;
        text += used;
    } else if (strncmp(text, "job: ", 5) == 0) {
        text += 5;
    }
    err->path[0] = '\0';
    format_error(err, text);
}

int rr_jobyaml_parse(const char *text, size_t len, proto_jobdef_t **def, rr_jobyaml_error_t *err)
{
    rr_jobyaml_error_t scratch;
    err = err ? err : &scratch;
    memset(err, 0, sizeof *err);
    *def = NULL;
    walk_t w = { .err = err };
    if (len > RR_JOBYAML_MAX_SIZE)
        return fail(&w, NULL, "", "job is %zu bytes, larger than the %u byte limit",
                    len, RR_JOBYAML_MAX_SIZE);
    char yerr[320];
    rr_yaml_doc_t *doc = rr_yaml_doc_parse("job", text, len, yerr, sizeof yerr);
    if (!doc) {
        syntax_error(err, yerr);
        return -1;
    }
    w.doc = doc;
    int rc = -1;
    proto_jobdef_t *result = calloc(1, sizeof *result);
    node_t *root = rr_yaml_doc_root(doc);
    if (!result)
        fail(&w, NULL, "", "out of memory");
    else if (!root || rr_yaml_is_null(root))
        fail(&w, NULL, "", "empty job: expected a map with job_name, device_type and actions");
    else
        rc = parse_job(&w, root, result);
    if (rc == 0)
        *def = result;
    else
        proto_jobdef_destroy(&result);
    rr_yaml_doc_destroy(&doc);
    return rc;
}
