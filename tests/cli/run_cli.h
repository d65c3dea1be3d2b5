/* run_cli.h: run the built rackrun binary in a child process with its
 * stdout and stderr captured, bounded in time (a hung CLI is killed and
 * reported, never left running). */
#ifndef RACKRUN_TESTS_RUN_CLI_H
#define RACKRUN_TESTS_RUN_CLI_H

typedef struct {
    int exit_code;   /* exit status; -1 killed by a signal or timed out */
    char *out;       /* captured stdout (malloc'd, NUL-terminated) */
    char *err;       /* captured stderr */
} rr_cli_run_t;

/* Path of the rackrun binary under $RR_BINARY_DIR (static buffer). */
const char *rr_cli_binary(void);

/* Run rackrun with the NULL-terminated ARGS (without argv[0]); waits at most
 * TIMEOUT_MS. Returns 0 when the program ran (see RUN), -1 on a harness error. */
int rr_cli_run(const char *const *args, int timeout_ms, rr_cli_run_t *run);

/* Free RUN's buffers. */
void rr_cli_run_free(rr_cli_run_t *run);

#endif
