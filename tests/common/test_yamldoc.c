/* test_yamldoc.c: the YAML tree: shape and marks, nulls, and every refusal
 * (duplicate keys, aliases, several documents, depth/node/size limits). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "yamldoc.h"

static rr_yaml_doc_t *parse_ok(const char *text)
{
    char err[256] = "";
    rr_yaml_doc_t *doc = rr_yaml_doc_parse("t.yaml", text, strlen(text), err, sizeof err);
    if (!doc)
        fail_msg("refused: %s", err);
    return doc;
}

static const char *parse_error(const char *text, size_t len)
{
    static char err[256];
    err[0] = '\0';
    assert_null(rr_yaml_doc_parse("t.yaml", text, len, err, sizeof err));
    return err;
}

static void test_tree_has_maps_lists_scalars_with_marks(void **state)
{
    rr_yaml_doc_t *doc = parse_ok("name: rack02\n"
                                  "devices:\n"
                                  "  - {name: a, port: 623}\n"
                                  "  - b\n");
    const rr_yaml_node_t *root = rr_yaml_doc_root(doc);
    assert_int_equal(rr_yaml_kind(root), RR_YAML_MAP);
    assert_int_equal(rr_yaml_count(root), 2);
    assert_string_equal(rr_yaml_scalar(rr_yaml_key(root, 0)), "name");
    assert_string_equal(rr_yaml_scalar(rr_yaml_get(root, "name")), "rack02");
    assert_int_equal(rr_yaml_line(rr_yaml_get(root, "name")), 1);
    assert_int_equal(rr_yaml_column(rr_yaml_get(root, "name")), 7);

    const rr_yaml_node_t *devices = rr_yaml_get(root, "devices");
    assert_int_equal(rr_yaml_kind(devices), RR_YAML_LIST);
    assert_int_equal(rr_yaml_count(devices), 2);
    const rr_yaml_node_t *first = rr_yaml_item(devices, 0);
    assert_int_equal(rr_yaml_kind(first), RR_YAML_MAP);
    const rr_yaml_node_t *port = rr_yaml_get(first, "port");
    assert_string_equal(rr_yaml_scalar(port), "623");
    assert_int_equal(rr_yaml_line(port), 3);
    assert_int_equal(rr_yaml_column(port), 21);
    assert_string_equal(rr_yaml_scalar(rr_yaml_item(devices, 1)), "b");
    assert_null(rr_yaml_item(devices, 2));
    assert_null(rr_yaml_get(root, "absent"));
    assert_null(rr_yaml_get(devices, "name"));
    assert_null(rr_yaml_scalar(devices));
    assert_null(rr_yaml_key(devices, 0));
    assert_string_equal(rr_yaml_doc_name(doc), "t.yaml");
    rr_yaml_doc_destroy(&doc);
    assert_null(doc);
}

static void test_plain_empty_tilde_and_null_are_null_quoted_are_not(void **state)
{
    rr_yaml_doc_t *doc = parse_ok("a:\nb: ~\nc: null\nd: 'null'\ne: \"\"\nf: x\n");
    const rr_yaml_node_t *root = rr_yaml_doc_root(doc);
    assert_true(rr_yaml_is_null(rr_yaml_get(root, "a")));
    assert_true(rr_yaml_is_null(rr_yaml_get(root, "b")));
    assert_true(rr_yaml_is_null(rr_yaml_get(root, "c")));
    assert_false(rr_yaml_is_null(rr_yaml_get(root, "d")));
    assert_false(rr_yaml_is_null(rr_yaml_get(root, "e")));
    assert_false(rr_yaml_is_null(rr_yaml_get(root, "f")));
    rr_yaml_doc_destroy(&doc);
}

static void test_empty_document_has_no_root(void **state)
{
    rr_yaml_doc_t *doc = parse_ok("# only a comment\n");
    assert_null(rr_yaml_doc_root(doc));
    rr_yaml_doc_destroy(&doc);
}

static void test_duplicate_key_refused_at_second_occurrence(void **state)
{
    const char *text = "a: 1\nb:\n  x: 1\n  y: 2\n  x: 3\n";
    assert_string_equal(parse_error(text, strlen(text)),
                        "t.yaml:5:3: duplicate key 'x' (first at line 3)");
}

static void test_alias_refused(void **state)
{
    const char *text = "a: &big [1, 2]\nb: *big\n";
    assert_string_equal(parse_error(text, strlen(text)), "t.yaml:2:4: aliases (*big) are not supported");
}

static void test_second_document_refused(void **state)
{
    const char *text = "a: 1\n---\nb: 2\n";
    assert_string_equal(parse_error(text, strlen(text)), "t.yaml:2:1: only one YAML document is allowed");
}

static void test_non_scalar_key_refused(void **state)
{
    const char *text = "? [a, b]\n: 1\n";
    assert_non_null(strstr(parse_error(text, strlen(text)), "a map key must be a scalar, not a list"));
}

static void test_nul_in_scalar_refused(void **state)
{
    const char *text = "a: \"x\\0y\"\n";
    assert_non_null(strstr(parse_error(text, strlen(text)), "t.yaml:1:4: a scalar holds a NUL byte"));
}

static void test_syntax_error_is_located(void **state)
{
    const char *text = "a: 1\nb: [1, 2\nc: 3\n";
    const char *err = parse_error(text, strlen(text));
    assert_true(strncmp(err, "t.yaml:", 7) == 0);
    assert_non_null(strstr(err, "flow sequence"));
}

static void test_depth_limit(void **state)
{
    char text[2 * RR_YAML_MAX_DEPTH + 8];
    size_t n = 0;
    for (int i = 0; i <= RR_YAML_MAX_DEPTH; i++)
        text[n++] = '[';
    for (int i = 0; i <= RR_YAML_MAX_DEPTH; i++)
        text[n++] = ']';
    text[n] = '\0';
    assert_non_null(strstr(parse_error(text, n), "nested too deeply (limit 32)"));
    /* One level less is fine. */
    text[RR_YAML_MAX_DEPTH] = ' ';
    text[RR_YAML_MAX_DEPTH + 1] = ' ';
    rr_yaml_doc_t *doc = parse_ok(text);
    rr_yaml_doc_destroy(&doc);
}

static void test_node_limit(void **state)
{
    size_t items = RR_YAML_MAX_NODES;        /* + the list itself = one too many */
    char *text = malloc(items * 2 + 4);
    assert_non_null(text);
    size_t n = 0;
    text[n++] = '[';
    for (size_t i = 0; i < items; i++) {
        text[n++] = '1';
        text[n++] = ',';
    }
    text[n - 1] = ']';
    assert_non_null(strstr(parse_error(text, n), "too many nodes"));
    text[n - 3] = ']';                      /* one item fewer: exactly at the limit */
    char err[256];
    rr_yaml_doc_t *doc = rr_yaml_doc_parse("t.yaml", text, n - 2, err, sizeof err);
    assert_non_null(doc);
    assert_int_equal(rr_yaml_count(rr_yaml_doc_root(doc)), RR_YAML_MAX_NODES - 1);
    rr_yaml_doc_destroy(&doc);
    free(text);
}

static void test_size_limit(void **state)
{
    size_t len = RR_YAML_MAX_BYTES + 1;
    char *text = malloc(len);
    assert_non_null(text);
    memset(text, '#', len);
    assert_string_equal(parse_error(text, len), "t.yaml: document is larger than 4194304 bytes");
    free(text);
}

static void test_many_keys_checked_for_duplicates_quickly(void **state)
{
    /* 60 000 distinct keys: quadratic checking would take minutes. */
    size_t keys = 60000;
    char *text = malloc(keys * 16);
    assert_non_null(text);
    size_t n = 0;
    for (size_t i = 0; i < keys; i++)
        n += (size_t)sprintf(text + n, "k%zu: 1\n", i);
    rr_yaml_doc_t *doc = parse_ok(text);
    assert_int_equal(rr_yaml_count(rr_yaml_doc_root(doc)), keys);
    rr_yaml_doc_destroy(&doc);
    free(text);
}

static void test_load_missing_file_names_it(void **state)
{
    char err[256];
    assert_null(rr_yaml_doc_load("/nonexistent/x.yaml", err, sizeof err));
    assert_string_equal(err, "/nonexistent/x.yaml: cannot open: No such file or directory");
    assert_null(rr_yaml_doc_load("/", err, sizeof err));
    assert_string_equal(err, "/: not a regular file");
}

static void test_error_helper_prefixes_name_and_mark(void **state)
{
    rr_yaml_doc_t *doc = parse_ok("a:\n  b: 7\n");
    char err[128];
    const rr_yaml_node_t *b = rr_yaml_get(rr_yaml_get(rr_yaml_doc_root(doc), "a"), "b");
    assert_int_equal(rr_yaml_error(doc, b, err, sizeof err, "a.b: '%s' is odd", "7"), -1);
    assert_string_equal(err, "t.yaml:2:6: a.b: '7' is odd");
    rr_yaml_error(doc, NULL, err, sizeof err, "empty");
    assert_string_equal(err, "t.yaml: empty");
    rr_yaml_doc_destroy(&doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_has_maps_lists_scalars_with_marks),
        cmocka_unit_test(test_plain_empty_tilde_and_null_are_null_quoted_are_not),
        cmocka_unit_test(test_empty_document_has_no_root),
        cmocka_unit_test(test_duplicate_key_refused_at_second_occurrence),
        cmocka_unit_test(test_alias_refused),
        cmocka_unit_test(test_second_document_refused),
        cmocka_unit_test(test_non_scalar_key_refused),
        cmocka_unit_test(test_nul_in_scalar_refused),
        cmocka_unit_test(test_syntax_error_is_located),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_node_limit),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_many_keys_checked_for_duplicates_quickly),
        cmocka_unit_test(test_load_missing_file_names_it),
        cmocka_unit_test(test_error_helper_prefixes_name_and_mark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
