/* cli.h: the rackrun command-line client: options, exit codes and one entry
 * point per command. main.c only calls rr_cli_main(); tests call it too.
 *
 * Usage: rackrun [GLOBAL OPTIONS] COMMAND [ARGS] (options may also follow the
 * command). Every command but keygen talks to the master's client endpoint
 * through connection.h. */
#ifndef RACKRUN_CLI_H
#define RACKRUN_CLI_H

#include <stdbool.h>
#include <stdint.h>

/* Exit codes (documented in docs/cli.md). */
enum {
    RR_EXIT_OK = 0,       /* done; for submit --wait: the job completed */
    RR_EXIT_FAILED = 1,   /* the job did not complete, or the master refused the request */
    RR_EXIT_USAGE = 2,    /* bad command line, unreadable local file */
    RR_EXIT_MASTER = 3,   /* master unreachable, or it broke the protocol */
    RR_EXIT_INTERRUPTED = 130 /* SIGINT while waiting */
};

#define RR_CLI_DEFAULT_MASTER "tcp://127.0.0.1:5556"
#define RR_CLI_DEFAULT_TIMEOUT_MS 5000u

/* Options of one invocation (global and per command). Strings point into
 * argv or the environment: never freed. */
typedef struct {
    const char *master;       /* --master, $RACKRUN_MASTER, else RR_CLI_DEFAULT_MASTER */
    const char *key;          /* --key: this client's secret cert, $RACKRUN_KEY */
    const char *master_key;   /* --master-key: the master's public cert, $RACKRUN_MASTER_KEY */
    bool insecure;            /* --insecure: no CURVE (a master without keys) */
    bool json;                /* --json: machine-readable output */
    uint32_t timeout_ms;      /* --timeout: per request (default 5 s) */
    /* per command */
    bool wait;                /* submit --wait */
    bool follow;              /* logs -f */
    bool force;               /* keygen --force */
    const char *role;         /* keygen --role read|submit|admin (client keys) */
    const char *state;        /* jobs --state */
    uint32_t limit;           /* jobs --limit (0 = master's default) */
    bool junit;               /* results --junit: JUnit XML (to FILE or stdout) */
    const char *output;       /* fetch -o FILE ("-": stdout); NULL: ./NAME */
    bool interactive;         /* console --interactive: type into it (device in maintenance) */
} rr_cli_opts_t;

/* Run rackrun with ARGC/ARGV (argv[0] = program name); returns the exit code. */
int rr_cli_main(int argc, char **argv);

/* Parse ARGV into OPTS; *FIRST_ARG receives the index of the command word.
 * Returns 0; RR_EXIT_USAGE after printing one line to stderr; -1 when
 * --help or --version was answered (nothing left to do). */
int rr_cli_parse(int argc, char **argv, rr_cli_opts_t *opts, int *first_arg);

/* Print one error line "rackrun: ..." to stderr. */
void rr_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- commands: ARGS are the command's positional arguments ---- */

/* submit FILE [--wait] */
int rr_cmd_submit(const rr_cli_opts_t *opts, int argc, char **args);
/* jobs [--state S] [--limit N] */
int rr_cmd_jobs(const rr_cli_opts_t *opts, int argc, char **args);
/* show ID */
int rr_cmd_show(const rr_cli_opts_t *opts, int argc, char **args);
/* logs ID [-f] */
int rr_cmd_logs(const rr_cli_opts_t *opts, int argc, char **args);
/* cancel ID */
int rr_cmd_cancel(const rr_cli_opts_t *opts, int argc, char **args);
/* workers */
int rr_cmd_workers(const rr_cli_opts_t *opts, int argc, char **args);
/* devices */
int rr_cmd_devices(const rr_cli_opts_t *opts, int argc, char **args);
/* device maintenance NAME on|off */
int rr_cmd_device(const rr_cli_opts_t *opts, int argc, char **args);
/* console DEVICE [--interactive] */
int rr_cmd_console(const rr_cli_opts_t *opts, int argc, char **args);
/* results ID [--json | --junit [FILE]] (results.c) */
int rr_cmd_results(const rr_cli_opts_t *opts, int argc, char **args);
/* resubmit ID (resubmit.c) */
int rr_cmd_resubmit(const rr_cli_opts_t *opts, int argc, char **args);
/* wait ID: exit 0 when the job completed, else 1 (resubmit.c) */
int rr_cmd_wait(const rr_cli_opts_t *opts, int argc, char **args);
/* artifacts ID: the job's artifacts (artifacts.c) */
int rr_cmd_artifacts(const rr_cli_opts_t *opts, int argc, char **args);
/* fetch ID NAME [-o FILE]: download one, verified, written atomically (artifacts.c) */
int rr_cmd_fetch(const rr_cli_opts_t *opts, int argc, char **args);
/* keygen DIR NAME [--force] */
int rr_cmd_keygen(const rr_cli_opts_t *opts, int argc, char **args);

/* Parse a job id ("42"); returns 0, or RR_EXIT_USAGE after an error line. */
int rr_cli_job_id(const char *text, uint64_t *id);

#endif
