/* main.c: rackrun-master, the daemon. Reads the configuration and flags, then
 * runs rr_master (master.h) until SIGINT/SIGTERM (czmq's handler stops the loop). */
#include <czmq.h>
#include <getopt.h>

#include "common.h"
#include "master.h"

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: rackrun-master [options]\n"
            "  --config FILE            master configuration (YAML)\n"
            "  --db PATH                SQLite database\n"
            "  --worker-endpoint EP     e.g. tcp://127.0.0.1:5555\n"
            "  --client-endpoint EP     e.g. tcp://127.0.0.1:5556\n"
            "  --secret-key FILE        the master's secret certificate (czmq, mode 0600)\n"
            "  --worker-keys DIR        public certificates of allowed workers\n"
            "  --client-keys DIR        public certificates of allowed clients\n"
            "  --insecure               no CURVE: anyone reaching the endpoints is trusted\n"
            "  --log-level LEVEL        error | warn | info | debug (default info)\n"
            "  --version, --help\n");
}

/* Replace the string *FIELD by a copy of VALUE. */
static int s_set(char **field, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

typedef struct {
    const char *config_path;
    const char *db, *worker_endpoint, *client_endpoint;
    const char *secret_key, *worker_keys, *client_keys;
    bool insecure;
    rr_log_level_t level;
} rr_args_t;

static int s_parse_args(int argc, char **argv, rr_args_t *args)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "db", required_argument, NULL, 'd' },
        { "worker-endpoint", required_argument, NULL, 'w' },
        { "client-endpoint", required_argument, NULL, 'C' },
        { "secret-key", required_argument, NULL, 's' },
        { "worker-keys", required_argument, NULL, 'W' },
        { "client-keys", required_argument, NULL, 'K' },
        { "insecure", no_argument, NULL, 'i' },
        { "log-level", required_argument, NULL, 'l' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'c': args->config_path = optarg; break;
        case 'd': args->db = optarg; break;
        case 'w': args->worker_endpoint = optarg; break;
        case 'C': args->client_endpoint = optarg; break;
        case 's': args->secret_key = optarg; break;
        case 'W': args->worker_keys = optarg; break;
        case 'K': args->client_keys = optarg; break;
        case 'i': args->insecure = true; break;
        case 'l':
            if (rr_log_level_parse(optarg, &args->level) != 0) {
                fprintf(stderr, "rackrun-master: --log-level %s: expected error, warn, info "
                        "or debug\n", optarg);
                return -1;
            }
            break;
        case 'V': printf("rackrun-master %s\n", RACKRUN_VERSION); exit(0);
        case 'h': s_usage(stdout); exit(0);
        default: s_usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rackrun-master: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* Flags override the file; CURVE is required unless --insecure. */
static int s_apply_args(const rr_args_t *args, rr_master_config_t *config)
{
    if ((args->db && s_set(&config->db_path, args->db))
        || (args->worker_endpoint && s_set(&config->worker_endpoint, args->worker_endpoint))
        || (args->client_endpoint && s_set(&config->client_endpoint, args->client_endpoint))
        || (args->secret_key && s_set(&config->secret_key, args->secret_key))
        || (args->worker_keys && s_set(&config->worker_keys_dir, args->worker_keys))
        || (args->client_keys && s_set(&config->client_keys_dir, args->client_keys))) {
        fprintf(stderr, "rackrun-master: out of memory\n");
        return -1;
    }
    if (args->insecure) {
        free(config->secret_key);           /* the master's loop reads "no key" as insecure */
        config->secret_key = NULL;
        return 0;
    }
    if (!config->secret_key || !config->worker_keys_dir || !config->client_keys_dir) {
        fprintf(stderr, "rackrun-master: CURVE keys are not configured: set secret_key, "
                "worker_keys_dir and client_keys_dir (or --secret-key, --worker-keys, "
                "--client-keys), or run with --insecure on a trusted network\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    rr_args_t args = { .level = RR_LOG_INFO };
    if (s_parse_args(argc, argv, &args) != 0)
        return 2;
    rr_log_init("master", args.level);

    char err[512];
    rr_master_config_t *config = NULL;
    if (rr_master_config_load(args.config_path, &config, err, sizeof err) != 0) {
        fprintf(stderr, "rackrun-master: %s\n", err);
        return 1;
    }
    int rc = 1;
    if (s_apply_args(&args, config) != 0)
        goto out_config;
    rr_master_t *master = rr_master_new(config, err, sizeof err);
    if (!master) {
        rr_error("cannot start: %s", err);
        goto out_config;
    }
    rc = rr_master_run(master) == 0 ? 0 : 1;
    rr_master_destroy(&master);
out_config:
    rr_master_config_destroy(&config);
    return rc;
}
