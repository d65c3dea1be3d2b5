/* test_cli_master.c: the built rackrun binary against a fake master
 * (fake_master.c): output, exit codes, and what reaches the wire. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_master.h"
#include "run_cli.h"

#define RUN_TIMEOUT_MS 20000
/* The one line every --insecure run that talks to the master writes first. */
#define INSECURE_WARNING "rackrun: warning: --insecure: talking to the master without CURVE " \
                         "(no authentication, no encryption)\n"

typedef struct {
    rr_fake_master_t *fake;
    char dir[64];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/rr-cli-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->fake = rr_fake_master_new(NULL);
    assert_non_null(f->fake);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[128];
    rr_fake_master_destroy(&f->fake);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

static char *write_file(const fixture_t *f, const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
    return path;
}

/* Run rackrun --insecure --master FAKE ARGS... */
static void run_insecure(const fixture_t *f, rr_cli_run_t *run, ...)
{
    const char *args[32] = { "--insecure", "--master", rr_fake_master_endpoint(f->fake) };
    size_t n = 3;
    va_list ap;
    va_start(ap, run);
    for (const char *a; (a = va_arg(ap, const char *)) && n < 31;)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    assert_int_equal(rr_cli_run(args, RUN_TIMEOUT_MS, run), 0);
}

static void test_jobs_prints_a_table_and_passes_the_filters(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    run_insecure(f, &run, "jobs", "--state", "running", "--limit", "5", NULL);
    assert_int_equal(run.exit_code, 0);
    assert_non_null(strstr(run.out, "ID  STATE"));
    assert_non_null(strstr(run.out, "highbank smoke"));
    assert_non_null(strstr(run.out, "2026-11-25 12:00:03"));
    assert_non_null(strstr(run.out, "incomplete"));
    rr_fake_seen_t seen = rr_fake_master_seen(f->fake);
    assert_string_equal(seen.jobs_state, "running");
    assert_int_equal(seen.jobs_limit, 5);
    rr_cli_run_free(&run);
}

static void test_jobs_json_is_an_array_of_job_objects(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    run_insecure(f, &run, "jobs", "--json", NULL);
    assert_int_equal(run.exit_code, 0);
    json_error_t jerr;
    json_t *jobs = json_loads(run.out, 0, &jerr);
    assert_non_null(jobs);
    assert_true(json_is_array(jobs));
    assert_int_equal(json_array_size(jobs), 2);
    json_t *first = json_array_get(jobs, 0);
    assert_int_equal(json_integer_value(json_object_get(first, "id")), 7);
    assert_string_equal(json_string_value(json_object_get(first, "state")), "running");
    assert_true(json_is_null(json_object_get(first, "outcome")));
    json_t *second = json_array_get(jobs, 1);
    assert_string_equal(json_string_value(json_object_get(second, "reason")), "worker lost");
    json_decref(jobs);
    rr_cli_run_free(&run);
}

static void test_submit_invalid_job_prints_file_line_col_and_exits_1(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    char *path = strdup(write_file(f, "bad.yaml", "job_name: bad\n"));
    run_insecure(f, &run, "submit", path, NULL);
    assert_int_equal(run.exit_code, 1);
    char want[512];
    snprintf(want, sizeof want, INSECURE_WARNING "%s:3:5: actions[0].boot.method: unknown boot method 'floppy' "
             "(ipmi-pxe, ipmi-disk, uboot-pxe)\n", path);
    assert_string_equal(run.err, want);
    assert_string_equal(run.out, "");
    free(path);
    rr_cli_run_free(&run);
}

static void test_submit_prints_the_job_id(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    run_insecure(f, &run, "submit", write_file(f, "ok.yaml", "job_name: fine\n"), NULL);
    assert_int_equal(run.exit_code, 0);
    assert_string_equal(run.out, "7\n");
    rr_cli_run_free(&run);
}

static void test_submit_wait_streams_the_log_and_exits_0_when_complete(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    run_insecure(f, &run, "submit", "--wait", write_file(f, "ok.yaml", "job_name: fine\n"), NULL);
    assert_int_equal(run.exit_code, 0);
    const char *want_order[] = {
        "7\n", "[12:00:03.120] state running\n", "[12:00:03.120] action boot start\n",
        "U-Boot\r\n# \n[console gap 3.2 s: bmc lost]\n", "[12:00:07.320] action boot end (4.2s)\n",
        "[12:00:08.120] result kernel-version pass (exit 0)\n", "[12:00:09.120] end complete\n",
        "job 7: complete\n", "kernel-version  pass    exit 0\n",
    };
    const char *at = run.out;
    for (size_t i = 0; i < sizeof want_order / sizeof want_order[0]; i++) {
        const char *found = strstr(at, want_order[i]);
        if (!found)
            fail_msg("missing (in order) '%s'", want_order[i]);
        at = found + strlen(want_order[i]);
    }
    /* the re-sent seq 3 is shown once */
    assert_null(strstr(strstr(run.out, "U-Boot") + 1, "U-Boot"));
    rr_cli_run_free(&run);
}

static void test_submit_wait_exits_1_when_incomplete(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    run_insecure(f, &run, "submit", "--wait", write_file(f, "inc.yaml", "job_name: incomplete\n"), NULL);
    assert_int_equal(run.exit_code, 1);
    assert_non_null(strstr(run.out, "action boot fail (4.2s): no prompt '# ' within 300 s\n"));
    assert_non_null(strstr(run.out, "job 8: incomplete: boot: no prompt\n"));
    assert_non_null(strstr(run.out, "no test results\n"));
    rr_cli_run_free(&run);
}

static void test_logs_json_prints_one_object_per_event(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    run_insecure(f, &run, "logs", "7", "--json", NULL);
    assert_int_equal(run.exit_code, 0);
    size_t lines = 0;
    for (char *line = strtok(run.out, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_t *ev = json_loads(line, 0, NULL);
        assert_non_null(ev);
        assert_int_equal(json_integer_value(json_object_get(ev, "seq")), (json_int_t)lines + 1);
        json_decref(ev);
    }
    assert_int_equal(lines, 7);
    rr_cli_run_free(&run);
}

/* The follower is forgotten (job 9 goes silent): the probe after 3 timeouts
 * finds the job finished and reads the rest without follow. */
static void test_logs_follow_reads_the_rest_when_the_job_ended_unseen(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    run_insecure(f, &run, "logs", "9", "-f", "--timeout", "300ms", NULL);
    assert_int_equal(run.exit_code, 0);
    assert_string_equal(run.out, "[12:00:03.120] state running\n[12:00:04.120] end complete\n");
    rr_cli_run_free(&run);
}

static void test_logs_follow_gives_up_on_a_master_that_stops_answering(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    run_insecure(f, &run, "logs", "10", "-f", "--timeout", "300ms", NULL);
    assert_int_equal(run.exit_code, 3);
    assert_string_equal(run.out, "[12:00:03.120] state running\n");
    assert_non_null(strstr(run.err, "no answer within 0.3 s"));
    rr_cli_run_free(&run);
}

static void test_show_unknown_job_reports_the_master_error_and_exits_1(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    run_insecure(f, &run, "show", "999", NULL);
    assert_int_equal(run.exit_code, 1);
    assert_string_equal(run.err, INSECURE_WARNING "rackrun: master: not_found: no job 999\n");
    rr_cli_run_free(&run);
}

static void test_show_prints_details_and_results(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    run_insecure(f, &run, "show", "7", NULL);
    assert_int_equal(run.exit_code, 0);
    assert_non_null(strstr(run.out, "job 7: highbank smoke\n"));
    assert_non_null(strstr(run.out, "  device     n01 (worker rack01)\n"));
    assert_non_null(strstr(run.out, "  took       6s\n"));
    assert_non_null(strstr(run.out, "kernel-version  pass    exit 0\n"));
    assert_null(strstr(run.out, "U-Boot")); /* show is no log dump */
    rr_cli_run_free(&run);
}

static void test_workers_show_heartbeat_age_with_one_decimal(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    run_insecure(f, &run, "workers", NULL);
    assert_int_equal(run.exit_code, 0);
    assert_string_equal(run.out, "NAME    RACK  STATE   HEARTBEAT  DEVICES  VERSION\n"
                                 "rack01  r1    online  0.4s       2        0.1.0\n");
    rr_cli_run_free(&run);
}

static void test_devices_list_tags_state_and_job(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    run_insecure(f, &run, "devices", NULL);
    assert_int_equal(run.exit_code, 0);
    assert_string_equal(run.out, "NAME  WORKER  TYPE      TAGS       STATE        JOB  REASON\n"
                                 "n01   rack01  highbank  sata,fast  running      7    -\n"
                                 "n02   rack01  highbank  -          maintenance  -    operator\n");
    rr_cli_run_free(&run);
}

static void test_device_maintenance_sends_device_set(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    run_insecure(f, &run, "device", "maintenance", "n02", "on", NULL);
    assert_int_equal(run.exit_code, 0);
    assert_string_equal(run.out, "device n02: maintenance on\n");
    rr_fake_seen_t seen = rr_fake_master_seen(f->fake);
    assert_string_equal(seen.set_device, "n02");
    assert_true(seen.set_maintenance);
    rr_cli_run_free(&run);
}

static void test_cancel_prints_the_masters_answer(void **state)
{
    fixture_t *f = *state;
    rr_cli_run_t run;
    run_insecure(f, &run, "cancel", "7", NULL);
    assert_int_equal(run.exit_code, 0);
    assert_string_equal(run.out, "job 7: canceling\n");
    rr_cli_run_free(&run);
}

/* A port nobody listens on, and nobody else can take while the test runs:
 * bound but not listening (connections to it are refused). Returns the
 * socket (close it after the test) and the port in *PORT. */
static int refusing_port(int *port)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

static void test_unreachable_master_exits_3_naming_the_endpoint(void **state)
{
    (void)state;
    char endpoint[64], want[128];
    int port, fd = refusing_port(&port);
    rr_cli_run_t run;
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    const char *args[] = { "--insecure", "--master", endpoint, "--timeout", "300ms", "jobs", NULL };
    assert_int_equal(rr_cli_run(args, RUN_TIMEOUT_MS, &run), 0);
    close(fd);
    assert_int_equal(run.exit_code, 3);
    snprintf(want, sizeof want, "rackrun: master %s: no answer within 0.3 s", endpoint);
    assert_non_null(strstr(run.err, want));
    assert_string_equal(run.out, "");
    rr_cli_run_free(&run);
}

static void keygen(const fixture_t *f, const char *name)
{
    rr_cli_run_t run;
    const char *args[] = { "keygen", f->dir, name, NULL };
    assert_int_equal(rr_cli_run(args, RUN_TIMEOUT_MS, &run), 0);
    assert_int_equal(run.exit_code, 0);
    rr_cli_run_free(&run);
}

/* CURVE with certs from `rackrun keygen`: the right master key works, a
 * wrong one gets no answer (CURVE fails silently) and exit 3. */
static void test_curve_client_talks_to_curve_master_only_with_its_key(void **state)
{
    fixture_t *f = *state;
    char master_secret[128], master_public[128], other_public[128], client[128];
    keygen(f, "master");
    keygen(f, "other");
    keygen(f, "client");
    snprintf(master_secret, sizeof master_secret, "%s/master_secret", f->dir);
    snprintf(master_public, sizeof master_public, "%s/master", f->dir);
    snprintf(other_public, sizeof other_public, "%s/other", f->dir);
    snprintf(client, sizeof client, "%s/client_secret", f->dir);
    rr_fake_master_t *curve = rr_fake_master_new(master_secret);
    assert_non_null(curve);
    const char *ep = rr_fake_master_endpoint(curve);

    rr_cli_run_t run;
    const char *good[] = { "--master", ep, "--key", client, "--master-key", master_public, "workers", NULL };
    assert_int_equal(rr_cli_run(good, RUN_TIMEOUT_MS, &run), 0);
    assert_int_equal(run.exit_code, 0);
    assert_non_null(strstr(run.out, "rack01"));
    assert_string_equal(run.err, "");               /* no --insecure warning with CURVE */
    rr_cli_run_free(&run);

    const char *bad[] = { "--master", ep, "--key", client, "--master-key", other_public,
                          "--timeout", "500ms", "workers", NULL };
    assert_int_equal(rr_cli_run(bad, RUN_TIMEOUT_MS, &run), 0);
    assert_int_equal(run.exit_code, 3);
    assert_non_null(strstr(run.err, "no answer within 0.5 s"));
    rr_cli_run_free(&run);
    rr_fake_master_destroy(&curve);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    unsetenv("RACKRUN_MASTER");
    unsetenv("RACKRUN_KEY");
    unsetenv("RACKRUN_MASTER_KEY");
    if (access(rr_cli_binary(), X_OK) != 0) {
        fprintf(stderr, "%s: not built\n", rr_cli_binary());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jobs_prints_a_table_and_passes_the_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_json_is_an_array_of_job_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_invalid_job_prints_file_line_col_and_exits_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_prints_the_job_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_wait_streams_the_log_and_exits_0_when_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_wait_exits_1_when_incomplete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_json_prints_one_object_per_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_follow_reads_the_rest_when_the_job_ended_unseen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_follow_gives_up_on_a_master_that_stops_answering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_unknown_job_reports_the_master_error_and_exits_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_prints_details_and_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workers_show_heartbeat_age_with_one_decimal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devices_list_tags_state_and_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_maintenance_sends_device_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_prints_the_masters_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_master_exits_3_naming_the_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_curve_client_talks_to_curve_master_only_with_its_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
