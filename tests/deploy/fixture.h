/* fixture.h: what the deploy tests share: running a program with its output
 * captured and its time bounded (a hung child is killed and reported, never
 * left behind), and finding a tool that may not be installed (a missing tool
 * is a visible skip). The scratch directory, removed at the end, and whole
 * files are tests/support's tmpdir.h (tmpdir_group_setup, tmpdir_path, ...). */
#ifndef RACKRUN_TESTS_DEPLOY_FIXTURE_H
#define RACKRUN_TESTS_DEPLOY_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tmpdir.h"

/* ctest's SKIP_RETURN_CODE for the deploy tests: a program that cannot run its
 * checks (tool not installed) exits with this and ctest shows it as skipped. */
#define DEPLOY_SKIP 77

typedef struct {
    int exit_code;      /* exit status; -1 if killed by a signal or timed out */
    char *out;          /* stdout and stderr, interleaved (malloc'd, NUL-terminated) */
} deploy_run_t;

/* A source-tree path: $RR_SOURCE_DIR/REL (static buffer per SLOT). */
const char *deploy_source(int slot, const char *rel);

/* Run the NULL-terminated ARGV (argv[0] searched in PATH) with stdin from
 * /dev/null, at most TIMEOUT_MS. Returns 0 when it ran (see RUN), -1 else. */
int deploy_run(char *const argv[], int timeout_ms, deploy_run_t *run);

/* Run deploy/rack-gen (with python3) with the NULL-terminated ARGS (at most 60). */
int deploy_rack_gen(const char *const *args, deploy_run_t *run);

/* Free RUN's buffer. */
void deploy_run_free(deploy_run_t *run);

/* Full path of executable NAME from PATH or, failing that, /usr/sbin and /sbin
 * (static buffer); NULL when it is not installed. */
const char *deploy_find_tool(const char *name);

#endif
