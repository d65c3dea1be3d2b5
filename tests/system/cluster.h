/* cluster.h: a whole rackrun installation for end-to-end tests, made of the
 * real programs: rackrun-master, one rackrun-worker per emulated rack
 * (tests/support/rig.h) and the rackrun CLI, wired as deploy/demo.sh wires
 * them: CURVE certificates made by `rackrun keygen`, configurations written
 * here, the master on tcp://127.0.0.1:* (its log says which ports it got).
 *
 * The programs come from the environment (CMake passes them from the build
 * tree): RR_MASTER_BIN, RR_WORKER_BIN, RR_CLI_BIN. Each daemon runs with
 * PR_SET_PDEATHSIG, so a test that crashes takes them with it; a test that
 * fails an assertion still gets rr_cluster_stop from its cmocka teardown.
 *
 * Results are read where they are stored: the master's SQLite database,
 * opened read-only (WAL lets it be read while the master writes).
 *
 * Every function that can fail says why on stderr (with the daemon log tails
 * when a daemon is involved). Not thread-safe. */
#ifndef RACKRUN_TESTS_CLUSTER_H
#define RACKRUN_TESTS_CLUSTER_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rig.h"

typedef struct _rr_cluster_t rr_cluster_t;

/* How one rig node appears in its worker's device dictionary. */
typedef struct {
    const char *type;   /* NULL: "highbank" */
    const char *tags;   /* YAML flow list "[sata, usb]", NULL: none */
    const char *extra;  /* more keys of the device, YAML flow map body "ipmi: {...}"; NULL */
} rr_cluster_device_t;

/* A job as the master stored it. */
typedef struct {
    char state[16];
    char outcome[16];       /* "" while open */
    char reason[1024];
    char device[64];
    char worker[64];
    char tags[128];         /* as stored: comma-separated */
    int64_t priority;
    int64_t submitted_ms, started_ms, ended_ms;
} rr_cluster_job_t;

/* Make the directories, the master's and the client's certificates and the
 * job artifacts, and start the master, for TESTS tests that share it. NULL
 * on failure. */
rr_cluster_t *rr_cluster_new(size_t tests);

/* Stop every daemon (workers first), then the rigs, free, NULL *SELF_P.
 * Returns 0 when each daemon was running and exited 0 on SIGTERM (so an ASan
 * report or a crash fails the test), else -1 after printing its log tail.
 * The directories are removed when each of its tests called
 * rr_cluster_passed and RR_KEEP_RIG is unset. */
int rr_cluster_stop(rr_cluster_t **self_p);

/* How many rr_cluster_stop calls failed in this process. cmocka does not
 * count a failing group teardown in its result: add this to it in main(). */
int rr_cluster_stop_failures(void);

/* One of its tests reached its end (with all of them: stop removes the dirs). */
void rr_cluster_passed(rr_cluster_t *self);

/* The cluster's directory. */
const char *rr_cluster_dir(const rr_cluster_t *self);

/* Make directory NAME in the cluster dir; its path (static per call: copy it). */
const char *rr_cluster_mkdir(rr_cluster_t *self, const char *name);

/* Start an emulated rack of NODES nodes named NAME01, NAME02... with its own
 * TFTP root; the cluster stops it last (owned: do not rr_rig_stop it). */
rr_rig_t *rr_cluster_rig(rr_cluster_t *self, const char *name, size_t nodes);

/* Generate worker NAME's certificate (allowed: its public part goes into the
 * master's allow-list), write its configuration for the nodes of RIG (from
 * rr_cluster_rig, sharing its TFTP root) and start it. DEVICES has one entry
 * per node, or is NULL. 0 or -1. */
int rr_cluster_add_worker(rr_cluster_t *self, const char *name, rr_rig_t *rig,
                          const rr_cluster_device_t *devices, bool allowed);

/* Same, for a worker whose one device is described by raw YAML (no rig). */
int rr_cluster_add_worker_yaml(rr_cluster_t *self, const char *name, const char *devices_yaml,
                               bool allowed);

/* The public key (Z85) of worker NAME's certificate into KEY (41 bytes). */
int rr_cluster_worker_key(rr_cluster_t *self, const char *name, char key[41]);

/* Wait until worker NAME is online and COUNT of its devices are in STATE. */
bool rr_cluster_wait_devices(rr_cluster_t *self, const char *worker, const char *state,
                             size_t count, int timeout_ms);

/* Wait until daemon log NAME ("master", or a worker's name) contains TEXT. */
bool rr_cluster_wait_log(rr_cluster_t *self, const char *name, const char *text, int timeout_ms);

/* Run the CLI with ARGS (NULL-terminated, after the connection options);
 * its stdout and stderr malloc'd into *OUT / *ERR (either may be NULL).
 * Returns its exit code, or -1 when it could not run or took over 20 s. */
int rr_cluster_cli(rr_cluster_t *self, char **out, char **err, const char *arg, ...)
    __attribute__((sentinel));

/* Start the CLI with ARGS (like rr_cluster_cli) without waiting: its stdout
 * goes to NAME.out, its stderr to NAME.err in the cluster dir. The caller
 * stops and reaps it (kill, waitpid). Its pid, or -1. */
pid_t rr_cluster_cli_start(rr_cluster_t *self, const char *name, const char *arg, ...)
    __attribute__((sentinel));

/* Wait for a CLI from rr_cluster_cli_start(_as) to exit: its exit code, or
 * -1 when it was killed (SIGKILLed and reaped after TIMEOUT_MS). */
int rr_cluster_cli_wait(pid_t pid, int timeout_ms);

/* Make client certificate NAME with ROLE (read, submit, admin) and allow it
 * (the master rereads its allow-list within moments). 0 or -1. */
int rr_cluster_add_client(rr_cluster_t *self, const char *name, const char *role);

/* As rr_cluster_cli_start, as client CLIENT (rr_cluster_add_client) and with
 * stdin from the file IN_PATH (NULL: /dev/null). Its pid, or -1. */
pid_t rr_cluster_cli_start_as(rr_cluster_t *self, const char *client, const char *in_path,
                              const char *name, const char *arg, ...)
    __attribute__((sentinel));

/* `rackrun submit` of YAML (written to a file first). Returns the CLI's exit
 * code; on 0, *JOB is the new id; *ERR (may be NULL) gets its stderr. */
int rr_cluster_submit(rr_cluster_t *self, const char *yaml, uint64_t *job, char **err);

/* The deploy action (list item, two-space indent) of the test artifacts
 * (file:// URLs with their sha256); KERNEL_URL, when not NULL, replaces the
 * kernel's (no sha256 then). Returns BUF. */
char *rr_cluster_deploy_yaml(rr_cluster_t *self, const char *kernel_url, char *buf, size_t len);

/* The master's database (read-only; owned by the cluster). */
sqlite3 *rr_cluster_db(rr_cluster_t *self);

/* One integer from SQL (printf-style, no user text in it); -1 on error. */
int64_t rr_cluster_count(rr_cluster_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Wait until the SQL (printf-style) gives WANT. */
bool rr_cluster_wait_count(rr_cluster_t *self, int64_t want, int timeout_ms, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Job ID as stored. 0, or -1 (not found). */
int rr_cluster_job(rr_cluster_t *self, uint64_t id, rr_cluster_job_t *job);

/* Wait until job ID is in STATE ("running", "finished"...). */
bool rr_cluster_wait_job(rr_cluster_t *self, uint64_t id, const char *state, int timeout_ms);

/* The job's stored log: its log events' bytes in seq order, malloc'd
 * (never NULL unless out of memory), length in *LEN. */
uint8_t *rr_cluster_job_log(rr_cluster_t *self, uint64_t id, size_t *len);

/* Print the last lines of every daemon log to stderr (for a failing check). */
void rr_cluster_dump(rr_cluster_t *self);

#endif
