/* main.c: rackrun-worker, thin over worker.h.
 * Usage: rackrun-worker --config FILE [--check] [--insecure] [--log-level error|warn|info|debug] */
#include <curl/curl.h>
#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "config.h"
#include "log.h"
#include "worker.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: rackrun-worker --config FILE [--check] [--insecure] [--log-level LEVEL]\n"
                 "  --config FILE      worker configuration (device dictionary, YAML)\n"
                 "  --check            check each device (BMC login, power status, SOL\n"
                 "                     activation) and the TFTP root's permissions, print a\n"
                 "                     table and exit (0: all passed); the master is not used\n"
                 "  --insecure         talk to the master in plaintext (no CURVE)\n"
                 "  --log-level LEVEL  error | warn | info (default) | debug\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "insecure", no_argument, NULL, 'k' },
        { "check", no_argument, NULL, 'C' },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { 0, 0, 0, 0 },
    };
    const char *path = NULL;
    bool insecure = false, check = false;
    rr_log_level_t level = RR_LOG_INFO;
    int c;
    while ((c = getopt_long(argc, argv, "c:kl:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'k': insecure = true; break;
        case 'C': check = true; break;
        case 'l':
            if (rr_log_level_parse(optarg, &level) < 0) {
                fprintf(stderr, "rackrun-worker: --log-level %s: not a level\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!path || optind != argc) {
        usage(stderr);
        return 2;
    }
    rr_log_init("worker", level);
    zsys_init();
    zsys_set_logstream(NULL);
    /* libcurl (and the TLS library under it) is set up once here, before the
     * device threads exist: a curl_easy_init in a device thread would do it
     * there, racing the other threads, and leave that thread's TLS-library
     * state to a thread the exit does not wait for. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rr_error("libcurl: global init failed");
        return 1;
    }

    char err[1024];
    rr_worker_config_t *config = NULL;
    if (rr_worker_config_load(path, &config, err, sizeof err) < 0) {
        rr_error("%s", err);
        curl_global_cleanup();
        return 1;
    }
    if (check) {
        int failed = rr_worker_check(config, stdout);
        rr_worker_config_destroy(&config);
        curl_global_cleanup();
        return failed ? 1 : 0;
    }
    rr_worker_t *worker = rr_worker_new(config, insecure, err, sizeof err);
    if (!worker) {
        rr_error("%s", err);
        rr_worker_config_destroy(&config);
        curl_global_cleanup();
        return 1;
    }
    rr_info("worker %s: %zu devices, master %s", config->worker, config->device_count,
            config->master);
    rr_worker_run(worker);
    rr_worker_destroy(&worker);
    rr_worker_config_destroy(&config);
    curl_global_cleanup();
    return 0;
}
