/* test_runner_deploy.c: the runner's deploy action and job stream without a
 * node (no BMC, no console): artifacts into files/<device>/, pxelinux config
 * present during the job and gone after it, failures named, cancel honoured. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "runner.h"
#include "tmpdir.h"

#define HELLO_SHA "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
#define PXE_NAME  "pxelinux.cfg/01-52-54-00-00-00-09"

typedef struct {
    char *dir;
    char root[4096], kernel_url[4300];
    rr_device_config_t device;
    /* what the runner emitted */
    char kinds[64][16], values[64][16], reasons[64][512];
    size_t count;
    char *config_during_job;   /* pxelinux config read when deploy ended */
    const char *stop;
} fixture_t;

static void on_emit(void *arg, const proto_job_event_t *ev)
{
    fixture_t *fx = arg;
    assert_int_equal(ev->job, 3);
    assert_int_equal(ev->seq, 0);   /* the worker's main loop numbers events */
    assert_true(fx->count < 64);
    snprintf(fx->kinds[fx->count], 16, "%s", ev->kind);
    snprintf(fx->values[fx->count], 16, "%s", ev->value ? ev->value : "");
    snprintf(fx->reasons[fx->count], 512, "%s", ev->reason ? ev->reason : "");
    fx->count++;
    if (!strcmp(ev->kind, "action") && !strcmp(ev->value, "end")) {
        char path[4200];
        snprintf(path, sizeof path, "%s/" PXE_NAME, fx->root);
        fx->config_during_job = tmpdir_slurp(path, NULL);
    }
}

static const char *on_stop(void *arg)
{
    return ((fixture_t *)arg)->stop;
}

static int no_reopen(void *arg, rr_sol_t **sol, char *err, size_t errlen)
{
    snprintf(err, errlen, "no console in this test");
    return -1;
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    *state = fx;
    fx->dir = tmpdir_new("rdeploy");
    if (!fx->dir)
        return -1;
    snprintf(fx->root, sizeof fx->root, "%s/tftp", fx->dir);
    mkdir(fx->root, 0755);
    char src[4200];
    snprintf(src, sizeof src, "%s/kernel.src", fx->dir);
    tmpdir_write(src, "hello\n", 6);
    snprintf(fx->kernel_url, sizeof fx->kernel_url, "file://%s", src);
    fx->device = (rr_device_config_t){ .name = "n09", .type = "highbank",
                                       .bmc_host = "127.0.0.1", .bmc_port = 9,
                                       .mac = "52:54:00:00:00:09" };
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    free(fx->config_during_job);
    tmpdir_remove(&fx->dir);
    free(fx);
    return 0;
}

static void run(fixture_t *fx, proto_action_t *acts, size_t count)
{
    proto_jobdef_t def = { .name = "deploy only", .device_type = "highbank", .priority = 50,
                           .job_timeout_s = 60, .action_timeout_s = 30, .actions = acts,
                           .actions_count = count };
    rr_sol_t *sol = NULL;
    rr_runner_ctx_t ctx = { .job = 3, .def = &def, .device = &fx->device,
                            .tftp_root = fx->root, .sol = &sol, .emit = on_emit,
                            .reopen = no_reopen, .stop = on_stop, .arg = fx };
    rr_runner_run(&ctx);
}

static void test_deploy_writes_artifacts_and_config_then_removes_config(void **state)
{
    fixture_t *fx = *state;
    proto_artifact_t arts[] = { { "kernel", fx->kernel_url, HELLO_SHA },
                                { "dtb", fx->kernel_url, NULL } };
    proto_action_t act = { .kind = "deploy", .to = "tftp", .artifacts = arts,
                           .artifacts_count = 2, .append = "console=ttyAMA0" };
    run(fx, &act, 1);
    assert_int_equal(fx->count, 4);
    assert_string_equal(fx->kinds[0], "state");
    assert_string_equal(fx->kinds[1], "action");
    assert_string_equal(fx->values[1], "start");
    assert_string_equal(fx->values[2], "end");
    assert_string_equal(fx->kinds[3], "end");
    assert_string_equal(fx->values[3], "complete");
    assert_non_null(fx->config_during_job);
    assert_non_null(strstr(fx->config_during_job, "  kernel files/n09/kernel\n"
                                                  "  fdt files/n09/dtb\n"
                                                  "  append console=ttyAMA0\n"));
    char path[4200];
    snprintf(path, sizeof path, "%s/files/n09/kernel", fx->root);
    char *kernel = tmpdir_slurp(path, NULL);
    assert_string_equal(kernel, "hello\n");
    free(kernel);
    snprintf(path, sizeof path, "%s/" PXE_NAME, fx->root);
    assert_int_equal(access(path, F_OK), -1);   /* the node falls back to the lab default */
}

static void test_failed_download_ends_job_incomplete_naming_url(void **state)
{
    fixture_t *fx = *state;
    char url[4300];
    snprintf(url, sizeof url, "file://%s/missing-kernel", fx->dir);
    proto_artifact_t arts[] = { { "kernel", url, NULL } };
    proto_action_t acts[] = {
        { .kind = "deploy", .to = "tftp", .artifacts = arts, .artifacts_count = 1 },
        { .kind = "boot", .method = "ipmi-pxe" },
    };
    run(fx, acts, 2);
    assert_int_equal(fx->count, 4);    /* boot never started */
    assert_string_equal(fx->values[2], "fail");
    assert_non_null(strstr(fx->reasons[2], "deploy: download"));
    assert_non_null(strstr(fx->reasons[2], url));
    assert_string_equal(fx->kinds[3], "end");
    assert_string_equal(fx->values[3], "incomplete");
    assert_non_null(strstr(fx->reasons[3], url));
}

static void test_deploy_without_kernel_is_refused(void **state)
{
    fixture_t *fx = *state;
    proto_artifact_t arts[] = { { "initrd", fx->kernel_url, NULL } };
    proto_action_t act = { .kind = "deploy", .to = "tftp", .artifacts = arts,
                           .artifacts_count = 1 };
    run(fx, &act, 1);
    assert_string_equal(fx->values[fx->count - 1], "incomplete");
    assert_non_null(strstr(fx->reasons[fx->count - 1], "deploy: no kernel"));
}

static void test_cancel_before_an_action_ends_job_canceled(void **state)
{
    fixture_t *fx = *state;
    proto_artifact_t arts[] = { { "kernel", fx->kernel_url, NULL } };
    proto_action_t act = { .kind = "deploy", .to = "tftp", .artifacts = arts,
                           .artifacts_count = 1 };
    fx->stop = "canceled";
    run(fx, &act, 1);
    assert_string_equal(fx->values[fx->count - 2], "fail");
    assert_string_equal(fx->reasons[fx->count - 2], "canceled");
    assert_string_equal(fx->kinds[fx->count - 1], "end");
    assert_string_equal(fx->values[fx->count - 1], "canceled");
}

static void test_unknown_action_kind_ends_job_incomplete(void **state)
{
    fixture_t *fx = *state;
    proto_action_t act = { .kind = "flash", .from = "/root/x", .to = "x" };
    run(fx, &act, 1);
    assert_string_equal(fx->values[fx->count - 1], "incomplete");
    assert_non_null(strstr(fx->reasons[fx->count - 1], "flash: not supported"));
}

static void test_transfer_without_device_http_ends_job_incomplete(void **state)
{
    fixture_t *fx = *state;
    proto_action_t act = { .kind = "transfer", .from = "/root/x", .to = "x" };
    run(fx, &act, 1);
    assert_string_equal(fx->values[fx->count - 1], "incomplete");
    assert_non_null(strstr(fx->reasons[fx->count - 1], "transfer: device "));
    assert_non_null(strstr(fx->reasons[fx->count - 1], "has no http address"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deploy_writes_artifacts_and_config_then_removes_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_download_ends_job_incomplete_naming_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy_without_kernel_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_before_an_action_ends_job_canceled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_action_kind_ends_job_incomplete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transfer_without_device_http_ends_job_incomplete, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
