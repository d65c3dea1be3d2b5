/* test_deploy_keygen.c: deploy/keygen.sh over the built `rackrun keygen` lays
 * out KEYS/{master,master_secret,workers/,clients/}, a worker's pair, and lets
 * only public certificates into the master's allow-lists. Without the built
 * rackrun binary ($RR_BINARY_DIR/cli/rackrun) the program exits 77 (skipped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

/* Run deploy/keygen.sh with ARGS (NULL-terminated, at most 6); returns its exit code. */
static int keygen(const char *const *args, deploy_run_t *run)
{
    char *argv[10] = { "sh", (char *)deploy_source(6, "deploy/keygen.sh") };
    for (size_t i = 0; args[i] && i < 6; i++)
        argv[i + 2] = (char *)args[i];
    assert_int_equal(deploy_run(argv, 30000, run), 0);
    return run->exit_code;
}

static void keygen_ok(const char *const *args)
{
    deploy_run_t run;
    if (keygen(args, &run) != 0)
        fail_msg("keygen.sh %s: exit %d: %s", args[0], run.exit_code, run.out);
    deploy_run_free(&run);
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        fail_msg("%s: missing", path);
    return st.st_mode & 07777;
}

static size_t entries_in(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int master_setup(void **state)
{
    if (tmpdir_group_setup(state) < 0)
        return -1;
    deploy_run_t run;
    const char *args[] = { "master", "--keys", tmpdir_path(0, "keys"), NULL };
    int rc = keygen(args, &run);
    if (rc != 0)
        fprintf(stderr, "keygen.sh master: %s\n", run.out);
    deploy_run_free(&run);
    return rc == 0 ? 0 : -1;
}

static void test_keygen_master_lays_out_pair_and_allow_lists(void **state)
{
    assert_int_equal(mode_of(tmpdir_path(0, "keys/master")), 0644);
    assert_int_equal(mode_of(tmpdir_path(0, "keys/master_secret")), 0600);
    assert_int_equal(mode_of(tmpdir_path(0, "keys/workers")), 0750);
    assert_int_equal(mode_of(tmpdir_path(0, "keys/clients")), 0750);
    assert_int_equal(mode_of(tmpdir_path(0, "keys")), 0750);
    char *secret = tmpdir_slurp(tmpdir_path(0, "keys/master_secret"), NULL);
    assert_non_null(secret);
    assert_non_null(strstr(secret, "secret-key = "));
    free(secret);
}

static void test_keygen_master_never_replaces_an_existing_pair(void **state)
{
    char *before = tmpdir_slurp(tmpdir_path(0, "keys/master_secret"), NULL);
    deploy_run_t run;
    const char *args[] = { "master", "--keys", tmpdir_path(0, "keys"), NULL };
    assert_int_not_equal(keygen(args, &run), 0);
    deploy_run_free(&run);
    char *after = tmpdir_slurp(tmpdir_path(0, "keys/master_secret"), NULL);
    assert_non_null(before);
    assert_non_null(after);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_keygen_worker_pair_authorized_by_its_public_cert(void **state)
{
    char public[PATH_MAX];
    const char *worker[] = { "worker", "rack02", "--keys", tmpdir_path(1, "worker-host"), NULL };
    keygen_ok(worker);
    assert_int_equal(mode_of(tmpdir_path(1, "worker-host/rack02_secret")), 0600);
    snprintf(public, sizeof public, "%s", tmpdir_path(1, "worker-host/rack02"));
    const char *authorize[] = { "authorize", "worker", public, "--keys", tmpdir_path(0, "keys"),
                                NULL };
    keygen_ok(authorize);
    char *copy = tmpdir_slurp(tmpdir_path(2, "keys/workers/rack02"), NULL);
    char *original = tmpdir_slurp(public, NULL);
    assert_non_null(copy);
    assert_non_null(original);
    assert_string_equal(copy, original);
    assert_null(strstr(copy, "secret-key"));
    free(copy);
    free(original);
}

static void test_keygen_authorize_refuses_a_secret_cert(void **state)
{
    const char *worker[] = { "worker", "rack03", "--keys", tmpdir_path(1, "worker3"), NULL };
    keygen_ok(worker);
    size_t before = entries_in(tmpdir_path(0, "keys/workers"));
    deploy_run_t run;
    char secret[PATH_MAX];
    snprintf(secret, sizeof secret, "%s", tmpdir_path(1, "worker3/rack03_secret"));
    /* renamed, so only the contents can give it away */
    assert_int_equal(rename(secret, tmpdir_path(2, "worker3/rack03.pub")), 0);
    const char *args[] = { "authorize", "worker", tmpdir_path(2, "worker3/rack03.pub"), "--keys",
                           tmpdir_path(0, "keys"), NULL };
    assert_int_not_equal(keygen(args, &run), 0);
    assert_non_null(strstr(run.out, "secret"));
    deploy_run_free(&run);
    assert_int_equal(entries_in(tmpdir_path(0, "keys/workers")), before);
}

int main(void)
{
    char rackrun[PATH_MAX];
    const char *bin = getenv("RR_BINARY_DIR");
    snprintf(rackrun, sizeof rackrun, "%s/cli/rackrun", bin ? bin : ".");
    if (access(rackrun, X_OK) != 0) {
        printf("SKIP: %s not built\n", rackrun);
        return DEPLOY_SKIP;
    }
    setenv("RACKRUN", rackrun, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen_master_lays_out_pair_and_allow_lists),
        cmocka_unit_test(test_keygen_master_never_replaces_an_existing_pair),
        cmocka_unit_test(test_keygen_worker_pair_authorized_by_its_public_cert),
        cmocka_unit_test(test_keygen_authorize_refuses_a_secret_cert),
    };
    return cmocka_run_group_tests(tests, master_setup, tmpdir_group_teardown);
}
