/* test_node_actions.c: the pure parts of the worker's node actions: the URL a
 * transfer fetches and the node's own complaint a failed deploy reports. The
 * actions themselves run end to end in rackrun_e2e_test.py (e2e_rackrun_*). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "disk.h"
#include "transfer.h"

static const char *const progs[] = { "wget: ", "gunzip: ", "tee: ", NULL };

static void test_transfer_url_escapes_each_path_segment(void **state)
{
    (void)state;
    char url[256];
    assert_int_equal(rr_transfer_url("127.0.0.1:8080", "/tmp/a b/c%d?.txt", url, sizeof url), 0);
    assert_string_equal(url, "http://127.0.0.1:8080/tmp/a%20b/c%25d%3F.txt");
}

static void test_transfer_url_collapses_repeated_slashes(void **state)
{
    (void)state;
    char url[256];
    assert_int_equal(rr_transfer_url("node:80", "//tmp//seq.txt", url, sizeof url), 0);
    assert_string_equal(url, "http://node:80/tmp/seq.txt");
}

static void test_transfer_url_refuses_a_buffer_too_small(void **state)
{
    (void)state;
    char url[24];
    assert_int_equal(rr_transfer_url("127.0.0.1:8080", "/tmp/a-long-file-name", url, sizeof url),
                     -1);
}

static void test_complaint_is_the_last_line_of_a_named_program(void **state)
{
    (void)state;
    const char *out = "# { ( set -o pipefail; wget -q -O - 'http://h/x.img' | tee '/dev/sda' )\r\n"
                      "> }; echo RR_END\r\n"
                      "wget: bad address 'h'\r\n"
                      "[   15.6] amba fff20000.ipc: deferred probe pending\r\n"
                      "wget: server returned error: HTTP/1.0 404 File not found\r\n"
                      "RR_END_42_x:1\r\n";
    char buf[128];
    rr_disk_node_complaint(out, progs, buf, sizeof buf);
    assert_string_equal(buf, "wget: server returned error: HTTP/1.0 404 File not found");
}

static void test_complaint_ignores_the_typed_command(void **state)
{
    (void)state;
    const char *out = "# { ( wget -q -O - 'http://h/x.img' | gunzip | tee '/dev/sda' )\r\n";
    char buf[128];
    assert_string_equal(rr_disk_node_complaint(out, progs, buf, sizeof buf), "");
}

static void test_complaint_drops_control_characters_and_fits_the_buffer(void **state)
{
    (void)state;
    const char *out = "tee: /dev/sda: \x1b[6nNo space left on device\r\n";
    char buf[16];
    rr_disk_node_complaint(out, progs, buf, sizeof buf);
    assert_string_equal(buf, "tee: /dev/sda: ");
    char big[128];
    rr_disk_node_complaint(out, progs, big, sizeof big);
    assert_string_equal(big, "tee: /dev/sda: [6nNo space left on device");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transfer_url_escapes_each_path_segment),
        cmocka_unit_test(test_transfer_url_collapses_repeated_slashes),
        cmocka_unit_test(test_transfer_url_refuses_a_buffer_too_small),
        cmocka_unit_test(test_complaint_is_the_last_line_of_a_named_program),
        cmocka_unit_test(test_complaint_ignores_the_typed_command),
        cmocka_unit_test(test_complaint_drops_control_characters_and_fits_the_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
