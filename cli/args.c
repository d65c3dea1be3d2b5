/* args.c: rackrun's command line: one option table, one command table, and
 * the dispatch between them.
 *
 * Options are parsed in one getopt_long pass over the whole line (GNU getopt
 * permutes), so "rackrun --json jobs" and "rackrun jobs --json" mean the
 * same. Each command lists the per-command options it accepts; any other is
 * a usage error naming the command, instead of being silently ignored. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

/* Per-command options, as bits in a command's "accepts" mask. */
enum {
    OPT_WAIT = 1u << 0,
    OPT_FOLLOW = 1u << 1,
    OPT_FORCE = 1u << 2,
    OPT_STATE = 1u << 3,
    OPT_LIMIT = 1u << 4,
    OPT_ROLE = 1u << 5,
    OPT_JUNIT = 1u << 6,
    OPT_OUTPUT = 1u << 7,
    OPT_INTERACTIVE = 1u << 8,
};

typedef struct {
    const char *name;
    int min_args, max_args;
    unsigned accepts;
    int (*run)(const rr_cli_opts_t *opts, int argc, char **args);
    const char *usage;
} command_t;

static const command_t commands[] = {
    { "submit", 1, 1, OPT_WAIT, rr_cmd_submit, "submit FILE [--wait]" },
    { "jobs", 0, 0, OPT_STATE | OPT_LIMIT, rr_cmd_jobs, "jobs [--state S] [--limit N]" },
    { "show", 1, 1, 0, rr_cmd_show, "show ID" },
    { "logs", 1, 1, OPT_FOLLOW, rr_cmd_logs, "logs ID [-f]" },
    { "cancel", 1, 1, 0, rr_cmd_cancel, "cancel ID" },
    { "workers", 0, 0, 0, rr_cmd_workers, "workers" },
    { "devices", 0, 0, 0, rr_cmd_devices, "devices" },
    { "device", 3, 3, 0, rr_cmd_device, "device maintenance NAME on|off" },
    { "console", 1, 1, OPT_INTERACTIVE, rr_cmd_console, "console DEVICE [--interactive]" },
    { "results", 1, 2, OPT_JUNIT, rr_cmd_results, "results ID [--json | --junit [FILE]]" },
    { "resubmit", 1, 1, 0, rr_cmd_resubmit, "resubmit ID" },
    { "wait", 1, 1, 0, rr_cmd_wait, "wait ID" },
    { "artifacts", 1, 1, 0, rr_cmd_artifacts, "artifacts ID" },
    { "fetch", 2, 2, OPT_OUTPUT, rr_cmd_fetch, "fetch ID NAME [-o FILE]" },
    { "keygen", 2, 2, OPT_FORCE | OPT_ROLE, rr_cmd_keygen,
      "keygen DIR NAME [--role read|submit|admin] [--force]" },
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

enum { LO_MASTER = 256, LO_KEY, LO_MASTER_KEY, LO_INSECURE, LO_JSON, LO_TIMEOUT,
       LO_WAIT, LO_FORCE, LO_STATE, LO_LIMIT, LO_VERSION, LO_ROLE,
       LO_JUNIT, LO_OUTPUT, LO_INTERACTIVE };

static const struct option long_options[] = {
    { "master", required_argument, NULL, LO_MASTER },
    { "key", required_argument, NULL, LO_KEY },
    { "master-key", required_argument, NULL, LO_MASTER_KEY },
    { "insecure", no_argument, NULL, LO_INSECURE },
    { "json", no_argument, NULL, LO_JSON },
    { "timeout", required_argument, NULL, LO_TIMEOUT },
    { "wait", no_argument, NULL, LO_WAIT },
    { "follow", no_argument, NULL, 'f' },
    { "force", no_argument, NULL, LO_FORCE },
    { "state", required_argument, NULL, LO_STATE },
    { "limit", required_argument, NULL, LO_LIMIT },
    { "role", required_argument, NULL, LO_ROLE },
    { "junit", no_argument, NULL, LO_JUNIT },
    { "output", required_argument, NULL, 'o' },
    { "interactive", no_argument, NULL, LO_INTERACTIVE },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, LO_VERSION },
    { NULL, 0, NULL, 0 },
};

static const char *option_names[] = { "--wait", "-f/--follow", "--force", "--state", "--limit",
                                      "--role", "--junit", "-o/--output", "--interactive" };

void rr_cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("rackrun: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void print_usage(FILE *out)
{
    fputs("usage: rackrun [--master ENDPOINT] [--key SECRET_CERT] [--master-key PUBLIC_CERT]\n"
          "               [--insecure] [--json] [--timeout DURATION] COMMAND [ARGS]\n"
          "commands:\n", out);
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  rackrun %s\n", commands[i].usage);
    fputs("environment: RACKRUN_MASTER, RACKRUN_KEY, RACKRUN_MASTER_KEY\n"
          "exit codes: 0 ok, 1 job failed or request refused, 2 usage, 3 master unreachable\n", out);
}

static int parse_limit(const char *text, uint32_t *limit)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || value > UINT32_MAX) {
        rr_cli_error("--limit '%s': not a count", text);
        return RR_EXIT_USAGE;
    }
    *limit = (uint32_t)value;
    return 0;
}

static int parse_timeout(const char *text, uint32_t *timeout_ms)
{
    char err[128];
    uint64_t ms;
    if (rr_duration_parse(text, &ms, err, sizeof err) != 0) {
        rr_cli_error("--timeout: %s", err);
        return RR_EXIT_USAGE;
    }
    if (ms == 0 || ms > 3600u * 1000u) {
        rr_cli_error("--timeout '%s': must be between 1 ms and 1 h", text);
        return RR_EXIT_USAGE;
    }
    *timeout_ms = (uint32_t)ms;
    return 0;
}

static void opts_defaults(rr_cli_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->master = getenv("RACKRUN_MASTER");
    if (!opts->master || !*opts->master)
        opts->master = RR_CLI_DEFAULT_MASTER;
    opts->key = getenv("RACKRUN_KEY");
    opts->master_key = getenv("RACKRUN_MASTER_KEY");
    opts->timeout_ms = RR_CLI_DEFAULT_TIMEOUT_MS;
}

/* Handle one option C (with OPTARG); *SEEN collects per-command option bits.
 * Returns 0, RR_EXIT_USAGE, or -1 for --help/--version (caller exits 0). */
static int apply_option(int c, const char *arg, rr_cli_opts_t *opts, unsigned *seen)
{
    switch (c) {
    case LO_MASTER: opts->master = arg; return 0;
    case LO_KEY: opts->key = arg; return 0;
    case LO_MASTER_KEY: opts->master_key = arg; return 0;
    case LO_INSECURE: opts->insecure = true; return 0;
    case LO_JSON: opts->json = true; return 0;
    case LO_TIMEOUT: return parse_timeout(arg, &opts->timeout_ms);
    case LO_WAIT: opts->wait = true; *seen |= OPT_WAIT; return 0;
    case 'f': opts->follow = true; *seen |= OPT_FOLLOW; return 0;
    case LO_FORCE: opts->force = true; *seen |= OPT_FORCE; return 0;
    case LO_STATE: opts->state = arg; *seen |= OPT_STATE; return 0;
    case LO_LIMIT: *seen |= OPT_LIMIT; return parse_limit(arg, &opts->limit);
    case LO_ROLE: opts->role = arg; *seen |= OPT_ROLE; return 0;
    case LO_JUNIT: opts->junit = true; *seen |= OPT_JUNIT; return 0;
    case 'o': opts->output = arg; *seen |= OPT_OUTPUT; return 0;
    case LO_INTERACTIVE: opts->interactive = true; *seen |= OPT_INTERACTIVE; return 0;
    case 'h': print_usage(stdout); return -1;
    case LO_VERSION: printf("rackrun %s\n", RACKRUN_VERSION); return -1;
    default: return RR_EXIT_USAGE; /* not in the table: cannot happen */
    }
}

static const command_t *find_command(const char *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int rr_cli_parse(int argc, char **argv, rr_cli_opts_t *opts, int *first_arg)
{
    unsigned seen = 0;
    int c, rc;

    opts_defaults(opts);
    optind = 0; /* glibc: full re-initialisation, so tests may parse repeatedly */
    opterr = 0; /* our own one-line messages, "rackrun: ..." */
    while ((c = getopt_long(argc, argv, ":fho:", long_options, NULL)) != -1) {
        if (c == '?' || c == ':') {
            rr_cli_error("%s: %s (try 'rackrun --help')", argv[optind - 1],
                         c == ':' ? "needs a value" : "unknown option");
            return RR_EXIT_USAGE;
        }
        rc = apply_option(c, optarg, opts, &seen);
        if (rc != 0)
            return rc;
    }
    if (optind >= argc) {
        rr_cli_error("no command given (try 'rackrun --help')");
        return RR_EXIT_USAGE;
    }
    const command_t *cmd = find_command(argv[optind]);
    if (!cmd) {
        rr_cli_error("unknown command '%s' (try 'rackrun --help')", argv[optind]);
        return RR_EXIT_USAGE;
    }
    for (unsigned bit = 0; bit < sizeof option_names / sizeof option_names[0]; bit++) {
        if ((seen & (1u << bit)) && !(cmd->accepts & (1u << bit))) {
            rr_cli_error("%s: %s does not apply (usage: rackrun %s)", cmd->name,
                         option_names[bit], cmd->usage);
            return RR_EXIT_USAGE;
        }
    }
    int nargs = argc - optind - 1;
    if (nargs < cmd->min_args || nargs > cmd->max_args) {
        rr_cli_error("%s: %s arguments (usage: rackrun %s)", cmd->name,
                     nargs < cmd->min_args ? "missing" : "too many", cmd->usage);
        return RR_EXIT_USAGE;
    }
    *first_arg = optind;
    return 0;
}

int rr_cli_main(int argc, char **argv)
{
    rr_cli_opts_t opts;
    int first;
    int rc = rr_cli_parse(argc, argv, &opts, &first);
    if (rc == -1)
        return RR_EXIT_OK; /* --help, --version */
    if (rc != 0)
        return rc;
    const command_t *cmd = find_command(argv[first]);
    return cmd->run(&opts, argc - first - 1, argv + first + 1);
}

int rr_cli_job_id(const char *text, uint64_t *id)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || value == 0) {
        rr_cli_error("'%s' is not a job id (a positive number)", text);
        return RR_EXIT_USAGE;
    }
    *id = (uint64_t)value;
    return 0;
}
