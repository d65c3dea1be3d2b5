/* yamldoc.h: a YAML document loaded (libyaml) into a small read-only tree of
 * maps, lists and scalars, each node marked with its line and column, so that
 * a schema walker can say "job.yaml:12:5: actions[2].boot.timeout: ...".
 *
 * Bounded: at most RR_YAML_MAX_BYTES of text, RR_YAML_MAX_DEPTH nesting and
 * RR_YAML_MAX_NODES nodes; aliases (*x) are refused (no billion laughs), a
 * second document in the stream is refused, and so is a key that appears
 * twice in one map (YAML forbids it; libyaml does not check). Keys must be
 * scalars; a scalar holding a NUL byte is refused (values are C strings).
 * Tags and anchors are ignored. */
#ifndef RACKRUN_YAMLDOC_H
#define RACKRUN_YAMLDOC_H

#include <stdbool.h>
#include <stddef.h>

#define RR_YAML_MAX_BYTES (4u << 20)
#define RR_YAML_MAX_DEPTH 32
#define RR_YAML_MAX_NODES 200000

typedef struct _rr_yaml_doc_t rr_yaml_doc_t;
typedef struct _rr_yaml_node_t rr_yaml_node_t;

typedef enum { RR_YAML_SCALAR, RR_YAML_MAP, RR_YAML_LIST } rr_yaml_kind_t;

/* Parse LEN bytes of TEXT; NAME (e.g. a file name) prefixes error messages.
 * Returns the document, or NULL with "NAME:LINE:COL: problem" in ERR. */
rr_yaml_doc_t *rr_yaml_doc_parse(const char *name, const char *text, size_t len,
                                 char *err, size_t errlen);

/* Read and parse the file PATH (errors are prefixed with PATH). */
rr_yaml_doc_t *rr_yaml_doc_load(const char *path, char *err, size_t errlen);

/* Free the document and every node in it; NULLs *SELF. */
void rr_yaml_doc_destroy(rr_yaml_doc_t **self);

/* The root node, or NULL for an empty document. */
const rr_yaml_node_t *rr_yaml_doc_root(const rr_yaml_doc_t *self);

/* The name given at parse/load time. */
const char *rr_yaml_doc_name(const rr_yaml_doc_t *self);

/* Write "NAME:LINE:COL: <formatted>" into ERR (NODE NULL: "NAME: <formatted>").
 * Always returns -1, so that a walker can `return rr_yaml_error(...)`. */
int rr_yaml_error(const rr_yaml_doc_t *self, const rr_yaml_node_t *node, char *err,
                  size_t errlen, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Kind of NODE. */
rr_yaml_kind_t rr_yaml_kind(const rr_yaml_node_t *node);

/* "a scalar", "a map" or "a list", for messages ("must be a map, not a list"). */
const char *rr_yaml_kind_name(rr_yaml_kind_t kind);

/* 1-based line and column where NODE starts. */
unsigned rr_yaml_line(const rr_yaml_node_t *node);
unsigned rr_yaml_column(const rr_yaml_node_t *node);

/* Text of a scalar (NUL-terminated), NULL for a map or list. */
const char *rr_yaml_scalar(const rr_yaml_node_t *node);

/* True for a plain (unquoted) scalar that is empty, "~" or "null": YAML's null. */
bool rr_yaml_is_null(const rr_yaml_node_t *node);

/* Number of pairs in a map or items in a list; 0 for a scalar. */
size_t rr_yaml_count(const rr_yaml_node_t *node);

/* Item I of a list, or value of pair I of a map; NULL when out of range. */
const rr_yaml_node_t *rr_yaml_item(const rr_yaml_node_t *node, size_t i);

/* Key node of pair I of a map (a scalar, for marks); NULL when out of range or not a map. */
const rr_yaml_node_t *rr_yaml_key(const rr_yaml_node_t *node, size_t i);

/* Value of KEY in map NODE, or NULL when absent (or NODE is not a map). */
const rr_yaml_node_t *rr_yaml_get(const rr_yaml_node_t *node, const char *key);

#endif
