/* test_cli_keygen.c: `rackrun keygen` writes a loadable czmq cert pair, the
 * secret 0600 whatever the caller's umask, and never replaces a pair
 * without --force. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

typedef struct {
    char dir[64];
    char pub[128];
    char sec[128];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/rr-keygen-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->pub, sizeof f->pub, "%s/client", f->dir);
    snprintf(f->sec, sizeof f->sec, "%s/client_secret", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

static int keygen(const fixture_t *f, const char *name, bool force)
{
    char *argv[] = { "rackrun", "keygen", (char *)f->dir, (char *)name, force ? "--force" : NULL, NULL };
    return rr_cli_main(force ? 5 : 4, argv);
}

static char *public_key_of(const char *path)
{
    zcert_t *cert = zcert_load(path);
    assert_non_null(cert);
    char *key = strdup(zcert_public_txt(cert));
    zcert_destroy(&cert);
    return key;
}

static void test_keygen_writes_a_0600_secret_and_a_loadable_pair(void **state)
{
    fixture_t *f = *state;
    mode_t old = umask(0); /* the caller's umask must not matter */
    int rc = keygen(f, "client", false);
    umask(old);
    assert_int_equal(rc, 0);

    struct stat st;
    assert_int_equal(stat(f->sec, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(f->pub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    zcert_t *pair = zcert_load(f->pub); /* czmq reads NAME_secret when present */
    assert_non_null(pair);
    static const byte zero[32];
    assert_memory_not_equal(zcert_secret_key(pair), zero, 32);
    zcert_t *again = zcert_load(f->sec);
    assert_non_null(again);
    assert_string_equal(zcert_public_txt(pair), zcert_public_txt(again));
    zcert_destroy(&again);
    zcert_destroy(&pair);

    /* the public file holds no secret */
    FILE *file = fopen(f->pub, "r");
    char text[4096] = "";
    size_t n = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[n] = '\0';
    assert_non_null(strstr(text, "public-key"));
    assert_null(strstr(text, "secret-key"));
}

static void test_keygen_refuses_to_overwrite_without_force(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(keygen(f, "client", false), 0);
    char *before = public_key_of(f->pub);
    assert_int_equal(keygen(f, "client", false), RR_EXIT_FAILED);
    char *after = public_key_of(f->pub);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_keygen_force_replaces_the_pair(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(keygen(f, "client", false), 0);
    char *before = public_key_of(f->pub);
    assert_int_equal(keygen(f, "client", true), 0);
    char *after = public_key_of(f->pub);
    assert_string_not_equal(before, after);
    struct stat st;
    assert_int_equal(stat(f->sec, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(before);
    free(after);
}

static void test_keygen_leaves_nothing_but_the_pair(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(keygen(f, "client", false), 0);
    DIR *dir = opendir(f->dir);
    size_t entries = 0;
    for (struct dirent *e; (e = readdir(dir));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            entries++;
    closedir(dir);
    assert_int_equal(entries, 2);
}

static void test_keygen_rejects_names_that_escape_the_dir(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(keygen(f, "../evil", false), RR_EXIT_USAGE);
    assert_int_equal(keygen(f, ".hidden", false), RR_EXIT_USAGE);
    assert_int_equal(keygen(f, "", false), RR_EXIT_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keygen_writes_a_0600_secret_and_a_loadable_pair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen_refuses_to_overwrite_without_force, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen_force_replaces_the_pair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen_leaves_nothing_but_the_pair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen_rejects_names_that_escape_the_dir, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
