/* config.h: YAML configuration files (libyaml) for the worker (device
 * dictionary + device types) and the master. Errors name the file, the line
 * and column, and the key: "worker.yaml:12:5: devices[2].bmc.port: not a number".
 *
 * Device types carry defaults (prompts, serial delays, IPMI timeouts) that a
 * device overrides key by key. BMC passwords are read from password_file
 * (must be mode 0600 or stricter, else the load fails) or from the environment
 * variable named by password_env; they are kept only in rr_device_config_t and
 * never printed by anything in common/. */
#ifndef RACKRUN_CONFIG_H
#define RACKRUN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rr_worker_config;

typedef struct {
    char *name;                 /* device name, unique in the rack */
    char *type;                 /* device type, e.g. "highbank" */
    char **tags;
    size_t tag_count;
    char *bmc_host;             /* host name or address of the BMC */
    uint16_t bmc_port;          /* default 623 */
    char *bmc_user;
    char *bmc_password;         /* secret: never log */
    char *mac;                  /* "00:50:43:02:01:00", eth0: pxelinux.cfg/01-<mac> */
    char **prompts;             /* shell prompts to wait for (type default: "# ") */
    size_t prompt_count;
    uint32_t bootloader_delay_ms;  /* per-character delay while in the bootloader */
    uint32_t test_shell_delay_ms;  /* per-character delay in the test shell */
    uint32_t ipmi_timeout_ms;      /* per IPMI call (default 5000) */
    uint32_t ipmi_retries;         /* bounded retries of an IPMI call (default 3) */
    uint32_t sol_timeout_ms;       /* SOL session timeout (default 10000) */
    uint32_t sol_probe_ms;         /* an idle device's console is tried this often (60000) */
    const struct rr_worker_config *worker; /* the worker config it belongs to (NULL: none) */
    char *http;                    /* "host:port" reaching the node's port 80 (transfer); NULL */
    /* boot method uboot-pxe (worker/bootloader.h); NULL/0: the built-in U-Boot defaults */
    char *bootloader_prompt;       /* U-Boot's prompt: "=> " (Highbank: "Highbank #") */
    char *bootloader_interrupt;    /* autoboot line to interrupt: "Hit any key to stop autoboot" */
    char **bootloader_commands;    /* typed at the prompt: setenv autoload no, dhcp, pxe get... */
    size_t bootloader_command_count;
    char *bootloader_boot_message; /* U-Boot's line when the kernel starts: "Starting kernel" */
} rr_device_config_t;

#define RR_MAX_DOWNLOAD_DEFAULT (4ull << 30)   /* max_download: bytes per artifact */
#define RR_MAX_JOB_YAML_DEFAULT (1024u * 1024u) /* max_job_yaml: bytes per job definition */
#define RR_ARTIFACT_QUOTA_DEFAULT (1ull << 30)  /* artifact_quota: bytes of artifacts per job */

typedef struct rr_worker_config {
    char *worker;               /* worker name, as the master knows it */
    char *rack;
    char *master;               /* master worker endpoint, "tcp://127.0.0.1:5555" */
    char *master_public_key;    /* path of the master's public cert (CURVE), NULL = insecure */
    char *secret_key;           /* path of this worker's secret cert (CURVE) */
    char *tftp_root;
    char *spool_dir;            /* default /var/lib/rackrun/spool */
    char *artifacts_dir;        /* files fetched by transfer: <dir>/<job>/<name>;
                                 * default /var/lib/rackrun/artifacts */
    uint32_t heartbeat_interval_ms; /* until the master's WELCOME says otherwise: 1000 */
    char *secrets_dir;          /* named job secrets, one 0600 file each; NULL = none */
    char **file_roots;          /* file:// artifact URLs only beneath these (none: refused) */
    size_t file_root_count;
    uint64_t max_download_bytes; /* per artifact download (RR_MAX_DOWNLOAD_DEFAULT) */
    rr_device_config_t *devices;
    size_t device_count;
} rr_worker_config_t;

/* health_checks.<device_type>: the job a device of that type runs before
 * normal jobs when it is new, back from bad, or after every_jobs / every_hours
 * (master/health.h). The job file is validated by the master, not here. */
typedef struct {
    char *device_type;          /* the key */
    char *job;                  /* path of the job YAML (relative: to the config file's dir) */
    uint32_t every_jobs;        /* run again after this many jobs; 0 = off */
    uint32_t every_hours;       /* run again after this many hours; 0 = off */
} rr_health_check_config_t;

typedef struct {
    char *db_path;              /* SQLite file (WAL), default /var/lib/rackrun/master.db */
    char *worker_endpoint;      /* default tcp://127.0.0.1:5555 */
    char *client_endpoint;      /* default tcp://127.0.0.1:5556 */
    char *http_listen;          /* default 127.0.0.1:8080, NULL = off */
    char *http_www;             /* dashboard files dir, NULL = the installed share dir */
    char *http_tokens;          /* bearer tokens file (0600, "ROLE TOKEN" lines), NULL = no auth */
    char *secret_key;           /* master secret cert path, NULL = insecure */
    char *worker_keys_dir;      /* authorized worker public certs */
    char *client_keys_dir;      /* authorized client public certs */
    uint32_t heartbeat_interval_ms; /* default 1000 */
    uint32_t heartbeat_timeout_ms;  /* default 5000 */
    uint32_t worker_grace_ms;       /* default 60000 */
    uint64_t max_job_yaml_bytes;    /* submitted job definition (RR_MAX_JOB_YAML_DEFAULT) */
    uint64_t log_retention_age_ms;  /* finished jobs' console logs kept this long; 0 = forever */
    uint64_t log_retention_size_bytes; /* database size budget for logs; 0 = none */
    uint64_t artifact_quota_bytes;  /* per job, all its artifacts (RR_ARTIFACT_QUOTA_DEFAULT) */
    rr_health_check_config_t *health_checks; /* one per device type that declares one */
    size_t health_check_count;
} rr_master_config_t;

/* Load a worker configuration. Returns 0, or -1 with a located message in ERR. */
int rr_worker_config_load(const char *path, rr_worker_config_t **out, char *err, size_t errlen);
void rr_worker_config_destroy(rr_worker_config_t **config);

/* Load a master configuration (PATH may be NULL: all defaults). */
int rr_master_config_load(const char *path, rr_master_config_t **out, char *err, size_t errlen);
void rr_master_config_destroy(rr_master_config_t **config);

#endif
