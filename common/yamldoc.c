/* yamldoc.c: libyaml parser events folded into a bounded tree of marked
 * nodes (see yamldoc.h). libyaml's own document loader (yaml_parser_load)
 * would do the folding too, but it expands aliases without a bound and does
 * not check duplicate keys; walking events keeps both under our control. */
#include "yamldoc.h"
#include "grow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

struct _rr_yaml_node_t {
    rr_yaml_kind_t kind;
    unsigned line;
    unsigned column;
    bool plain;                 /* scalar written without quotes */
    char *text;                 /* scalar text */
    rr_yaml_node_t **children;  /* list items; map: key at 2i, value at 2i+1 */
    size_t child_count;
    size_t child_cap;
};

struct _rr_yaml_doc_t {
    char *name;
    rr_yaml_node_t *root;
};

/* The state of one parse: the parser, the open containers and the counts. */
typedef struct {
    rr_yaml_doc_t *doc;
    yaml_parser_t parser;
    rr_yaml_node_t *stack[RR_YAML_MAX_DEPTH];
    size_t depth;
    size_t node_count;
    size_t document_count;
    char *err;
    size_t errlen;
} builder_t;

static void node_free(rr_yaml_node_t *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->child_count; i++)
        node_free(node->children[i]);
    free(node->children);
    free(node->text);
    free(node);
}

static int errorf_at(const char *name, unsigned line, unsigned column, char *err,
                     size_t errlen, const char *fmt, va_list args)
{
    if (!err || errlen == 0)
        return -1;
    int n = line ? snprintf(err, errlen, "%s:%u:%u: ", name, line, column)
                 : snprintf(err, errlen, "%s: ", name);
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, args);
    return -1;
}

int rr_yaml_error(const rr_yaml_doc_t *self, const rr_yaml_node_t *node, char *err,
                  size_t errlen, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    errorf_at(self ? self->name : "?", node ? node->line : 0, node ? node->column : 0,
              err, errlen, fmt, args);
    va_end(args);
    return -1;
}

static int build_error(builder_t *b, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int build_error(builder_t *b, yaml_mark_t mark, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    errorf_at(b->doc->name, (unsigned)mark.line + 1, (unsigned)mark.column + 1, b->err,
              b->errlen, fmt, args);
    va_end(args);
    return -1;
}

static int parser_error(builder_t *b)
{
    const yaml_parser_t *p = &b->parser;
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->error == YAML_MEMORY_ERROR)
        return build_error(b, p->mark, "out of memory");
    if (p->context)
        return build_error(b, p->problem_mark, "%s (%s at line %zu)", problem, p->context,
                           p->context_mark.line + 1);
    return build_error(b, p->problem_mark, "%s", problem);
}

static rr_yaml_node_t *node_new(builder_t *b, rr_yaml_kind_t kind, yaml_mark_t mark)
{
    if (++b->node_count > RR_YAML_MAX_NODES) {
        build_error(b, mark, "too many nodes (limit %u)", RR_YAML_MAX_NODES);
        return NULL;
    }
    rr_yaml_node_t *node = calloc(1, sizeof *node);
    if (!node) {
        build_error(b, mark, "out of memory");
        return NULL;
    }
    node->kind = kind;
    node->line = (unsigned)mark.line + 1;
    node->column = (unsigned)mark.column + 1;
    return node;
}

static int child_append(builder_t *b, rr_yaml_node_t *parent, rr_yaml_node_t *child)
{
    rr_yaml_node_t **children = rr_grow(parent->children, parent->child_count,
                                        &parent->child_cap, sizeof *children, 4);
    if (!children)
        return rr_yaml_error(b->doc, child, b->err, b->errlen, "out of memory");
    parent->children = children;
    parent->children[parent->child_count++] = child;
    return 0;
}

/* Attach a finished or just-opened NODE to the open container, or make it the root.
 * On failure NODE is freed. */
static int attach(builder_t *b, rr_yaml_node_t *node)
{
    if (b->depth == 0) {
        b->doc->root = node;
        return 0;
    }
    rr_yaml_node_t *parent = b->stack[b->depth - 1];
    bool is_key = parent->kind == RR_YAML_MAP && parent->child_count % 2 == 0;
    if (is_key && node->kind != RR_YAML_SCALAR) {
        rr_yaml_error(b->doc, node, b->err, b->errlen, "a map key must be a scalar, not %s",
                      rr_yaml_kind_name(node->kind));
        node_free(node);
        return -1;
    }
    if (child_append(b, parent, node) < 0) {
        node_free(node);
        return -1;
    }
    return 0;
}

static int on_scalar(builder_t *b, const yaml_event_t *event)
{
    const char *value = (const char *)event->data.scalar.value;
    size_t length = event->data.scalar.length;
    if (memchr(value, '\0', length))
        return build_error(b, event->start_mark, "a scalar holds a NUL byte");
    rr_yaml_node_t *node = node_new(b, RR_YAML_SCALAR, event->start_mark);
    if (!node)
        return -1;
    node->plain = event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    node->text = strndup(value, length);
    if (!node->text) {
        node_free(node);
        return build_error(b, event->start_mark, "out of memory");
    }
    return attach(b, node);
}

static int on_container_start(builder_t *b, const yaml_event_t *event, rr_yaml_kind_t kind)
{
    if (b->depth == RR_YAML_MAX_DEPTH)
        return build_error(b, event->start_mark, "nested too deeply (limit %u)",
                           RR_YAML_MAX_DEPTH);
    rr_yaml_node_t *node = node_new(b, kind, event->start_mark);
    if (!node || attach(b, node) < 0)
        return -1;
    b->stack[b->depth++] = node;
    return 0;
}

static int key_compare(const void *a, const void *b)
{
    const rr_yaml_node_t *ka = *(rr_yaml_node_t *const *)a;
    const rr_yaml_node_t *kb = *(rr_yaml_node_t *const *)b;
    int c = strcmp(ka->text, kb->text);
    if (c)
        return c;
    return ka->line != kb->line ? (ka->line < kb->line ? -1 : 1)
                                : (ka->column < kb->column ? -1 : ka->column > kb->column);
}

/* Sorting the keys finds duplicates in O(n log n): a hostile document with
 * 100 000 keys must not cost 10^10 comparisons. */
static int check_duplicate_keys(builder_t *b, const rr_yaml_node_t *map)
{
    size_t n = map->child_count / 2;
    if (n < 2)
        return 0;
    rr_yaml_node_t **keys = malloc(n * sizeof *keys);
    if (!keys)
        return rr_yaml_error(b->doc, map, b->err, b->errlen, "out of memory");
    for (size_t i = 0; i < n; i++)
        keys[i] = map->children[2 * i];
    qsort(keys, n, sizeof *keys, key_compare);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (strcmp(keys[i - 1]->text, keys[i]->text) == 0)
            rc = rr_yaml_error(b->doc, keys[i], b->err, b->errlen,
                               "duplicate key '%s' (first at line %u)", keys[i]->text,
                               keys[i - 1]->line);
    free(keys);
    return rc;
}

static int on_container_end(builder_t *b)
{
    rr_yaml_node_t *node = b->stack[--b->depth];
    if (node->kind == RR_YAML_MAP)
        return check_duplicate_keys(b, node);
    return 0;
}

/* Handle one event; returns 1 at the end of the stream, 0 to go on, -1 on error. */
static int on_event(builder_t *b, const yaml_event_t *event)
{
    switch (event->type) {
    case YAML_STREAM_END_EVENT:
        return 1;
    case YAML_DOCUMENT_START_EVENT:
        if (++b->document_count > 1)
            return build_error(b, event->start_mark, "only one YAML document is allowed");
        return 0;
    case YAML_ALIAS_EVENT:
        return build_error(b, event->start_mark, "aliases (*%s) are not supported",
                           (const char *)event->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        return on_scalar(b, event);
    case YAML_SEQUENCE_START_EVENT:
        return on_container_start(b, event, RR_YAML_LIST);
    case YAML_MAPPING_START_EVENT:
        return on_container_start(b, event, RR_YAML_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_container_end(b);
    default:
        return 0;
    }
}

static int build(builder_t *b, const char *text, size_t len)
{
    yaml_parser_set_input_string(&b->parser, (const unsigned char *)text, len);
    for (;;) {
        yaml_event_t event;
        if (!yaml_parser_parse(&b->parser, &event))
            return parser_error(b);
        int rc = on_event(b, &event);
        yaml_event_delete(&event);
        if (rc)
            return rc < 0 ? -1 : 0;
    }
}

rr_yaml_doc_t *rr_yaml_doc_parse(const char *name, const char *text, size_t len,
                                 char *err, size_t errlen)
{
    builder_t b = { .err = err, .errlen = errlen };
    b.doc = calloc(1, sizeof *b.doc);
    if (!b.doc)
        goto fail_alloc;
    b.doc->name = strdup(name ? name : "<yaml>");
    if (!b.doc->name)
        goto fail_name;
    if (len > RR_YAML_MAX_BYTES) {
        rr_yaml_error(b.doc, NULL, err, errlen, "document is larger than %u bytes",
                      RR_YAML_MAX_BYTES);
        goto fail_name;
    }
    if (!yaml_parser_initialize(&b.parser))
        goto fail_alloc_parser;
    if (build(&b, text, len) < 0)
        goto fail_build;
    yaml_parser_delete(&b.parser);
    return b.doc;

fail_build:
    yaml_parser_delete(&b.parser);
    rr_yaml_doc_destroy(&b.doc);
    return NULL;
fail_alloc_parser:
    rr_yaml_error(b.doc, NULL, err, errlen, "out of memory");
fail_name:
    rr_yaml_doc_destroy(&b.doc);
    return NULL;
fail_alloc:
    if (err && errlen)
        snprintf(err, errlen, "%s: out of memory", name ? name : "<yaml>");
    return NULL;
}

/* Read at most RR_YAML_MAX_BYTES + 1 bytes of PATH, so that an oversized file is
 * reported by the parser's size check rather than read whole. */
static char *read_bounded(const char *path, size_t *len, char *err, size_t errlen)
{
    char *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto fail_open;
    struct stat st;
    if (fstat(fd, &st) < 0)
        goto fail_read;
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto fail_quiet;
    }
    size_t cap = RR_YAML_MAX_BYTES + 1;
    text = malloc(cap + 1);
    if (!text)
        goto fail_read;
    *len = 0;
    for (;;) {
        ssize_t n = read(fd, text + *len, cap - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail_read;
        if (n == 0 || (*len += (size_t)n) == cap)
            break;
    }
    text[*len] = '\0';
    close(fd);
    return text;

fail_read:
    snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
fail_quiet:
    free(text);
    close(fd);
    return NULL;
fail_open:
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
}

rr_yaml_doc_t *rr_yaml_doc_load(const char *path, char *err, size_t errlen)
{
    char scratch[1];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    size_t len = 0;
    char *text = read_bounded(path, &len, err, errlen);
    if (!text)
        return NULL;
    rr_yaml_doc_t *doc = rr_yaml_doc_parse(path, text, len, err, errlen);
    free(text);
    return doc;
}

void rr_yaml_doc_destroy(rr_yaml_doc_t **self)
{
    if (!self || !*self)
        return;
    node_free((*self)->root);
    free((*self)->name);
    free(*self);
    *self = NULL;
}

const rr_yaml_node_t *rr_yaml_doc_root(const rr_yaml_doc_t *self)
{
    return self->root;
}

const char *rr_yaml_doc_name(const rr_yaml_doc_t *self)
{
    return self->name;
}

rr_yaml_kind_t rr_yaml_kind(const rr_yaml_node_t *node)
{
    return node->kind;
}

const char *rr_yaml_kind_name(rr_yaml_kind_t kind)
{
    switch (kind) {
    case RR_YAML_SCALAR:
        return "a scalar";
    case RR_YAML_MAP:
        return "a map";
    case RR_YAML_LIST:
        return "a list";
    }
    return "?";
}

unsigned rr_yaml_line(const rr_yaml_node_t *node)
{
    return node->line;
}

unsigned rr_yaml_column(const rr_yaml_node_t *node)
{
    return node->column;
}

const char *rr_yaml_scalar(const rr_yaml_node_t *node)
{
    return node->kind == RR_YAML_SCALAR ? node->text : NULL;
}

bool rr_yaml_is_null(const rr_yaml_node_t *node)
{
    if (node->kind != RR_YAML_SCALAR || !node->plain)
        return false;
    return node->text[0] == '\0' || strcmp(node->text, "~") == 0 ||
           strcmp(node->text, "null") == 0 || strcmp(node->text, "Null") == 0 ||
           strcmp(node->text, "NULL") == 0;
}

size_t rr_yaml_count(const rr_yaml_node_t *node)
{
    switch (node->kind) {
    case RR_YAML_MAP:
        return node->child_count / 2;
    case RR_YAML_LIST:
        return node->child_count;
    default:
        return 0;
    }
}

const rr_yaml_node_t *rr_yaml_item(const rr_yaml_node_t *node, size_t i)
{
    if (i >= rr_yaml_count(node))
        return NULL;
    return node->kind == RR_YAML_MAP ? node->children[2 * i + 1] : node->children[i];
}

const rr_yaml_node_t *rr_yaml_key(const rr_yaml_node_t *node, size_t i)
{
    if (node->kind != RR_YAML_MAP || i >= rr_yaml_count(node))
        return NULL;
    return node->children[2 * i];
}

const rr_yaml_node_t *rr_yaml_get(const rr_yaml_node_t *node, const char *key)
{
    if (node->kind != RR_YAML_MAP)
        return NULL;
    for (size_t i = 0; i < node->child_count / 2; i++)
        if (strcmp(node->children[2 * i]->text, key) == 0)
            return node->children[2 * i + 1];
    return NULL;
}
