/* cluster.h: a whole rackrun installation for fault tests: an emulated rack
 * (tests/rig), the real rackrun-master binary and W real rackrun-worker
 * binaries (each owning K of the rack's nodes), all as separate processes so
 * that a test can kill -9 and restart any of them. A DEALER client speaks the
 * client protocol (SUBMIT, JOB, DEVICES); the verdicts are read from the
 * master's SQLite database (master/store.h).
 *
 * Every process is started with PR_SET_PDEATHSIG, so a test that dies also
 * stops them; cluster_destroy stops them by PID. Logs (master.log,
 * worker<i>.log, appended across restarts) stay in the scratch dir, which is
 * kept when RR_KEEP_RIG=1 or when the test failed (cluster_destroy(..,
 * false)). Insecure (plaintext) links: CURVE is tested elsewhere. */
#ifndef RR_TEST_CLUSTER_H
#define RR_TEST_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "rig.h"
#include "verify.h"

typedef struct _cluster_t cluster_t;

typedef struct {
    size_t workers;                 /* default 1 */
    size_t nodes_per_worker;        /* default 1 */
    uint32_t heartbeat_interval_ms; /* default 200 */
    uint32_t heartbeat_timeout_ms;  /* default 1000 */
    uint32_t worker_grace_ms;       /* default 3000 */
    uint32_t sol_timeout_ms;        /* default 5000 */
    uint32_t ipmi_timeout_ms;       /* default 1000 */
    uint32_t ipmi_retries;          /* default 2 */
    uint32_t test_shell_delay_ms;   /* default 1 */
    const char *rig_options;        /* extra rig.py options, may be NULL */
    const char *master_extra;       /* appended to master.yaml (e.g. health_checks), may be NULL */
    bool wait_known_only;           /* start: wait until the master knows every device
                                     * (any state), not until all are idle */
} cluster_opts_t;

/* Start rig, master and workers; wait until every device is idle (30 s).
 * NULL (reason on stderr) on failure. */
cluster_t *cluster_new(const cluster_opts_t *opts);

/* Stop everything; remove the dir when PASSED (and RR_KEEP_RIG unset). NULLs *SELF. */
void cluster_destroy(cluster_t **self, bool passed);

/* The rig (node i belongs to worker i / nodes_per_worker). */
rr_rig_t *cluster_rig(cluster_t *self);

/* Name of node INDEX's device ("n01"...). */
const char *cluster_device(cluster_t *self, size_t index);

/* Index of the node named DEVICE, or -1. */
int cluster_node_of(cluster_t *self, const char *device);

/* kill -9 the master / start it again (same database and endpoints). 0 or -1. */
int cluster_master_kill(cluster_t *self);
int cluster_master_start(cluster_t *self);

/* kill -9 worker W / start it again (same spool and config) / SIGSTOP / SIGCONT it. */
int cluster_worker_kill(cluster_t *self, size_t w);
int cluster_worker_start(cluster_t *self, size_t w);
int cluster_worker_signal(cluster_t *self, size_t w, int sig);

/* True while the process is alive. */
bool cluster_master_alive(cluster_t *self);
bool cluster_worker_alive(cluster_t *self, size_t w);

/* Submit YAML; the job id, 0 on failure (reason on stderr). */
uint64_t cluster_submit(cluster_t *self, const char *yaml);

/* Client CANCEL of JOB: 0 once the master answered OK. */
int cluster_cancel(cluster_t *self, uint64_t job);

/* Job info (caller frees with proto_msg_free on the returned message's u.job_detail).
 * 0, or -1 when the master did not answer within TIMEOUT_MS. */
int cluster_job(cluster_t *self, uint64_t job, proto_msg_t *detail, int timeout_ms);

/* Wait until JOB is finished (polling JOB). Copies outcome and reason. */
bool cluster_wait_finished(cluster_t *self, uint64_t job, int timeout_ms, char *outcome,
                           size_t outcome_len, char *reason, size_t reason_len);

/* Wait until JOB has a stored event of KIND (with NAME/VALUE when not NULL). */
bool cluster_wait_event(cluster_t *self, uint64_t job, const char *kind, const char *name,
                        const char *value, int timeout_ms);

/* Device DEVICE's state (and reason) as the master lists it; 0 or -1. */
int cluster_device_state(cluster_t *self, const char *device, char *state, size_t state_len,
                         char *reason, size_t reason_len);

/* Wait until DEVICE is in STATE. */
bool cluster_wait_device(cluster_t *self, const char *device, const char *state, int timeout_ms);

/* All stored events of JOB, read from the database (caller frees with
 * rr_store_events_free). 0 or -1. */
int cluster_events(cluster_t *self, uint64_t job, proto_job_event_t **events, size_t *count);

/* The test job: boot from disk, then step "count" prints LINES lines tagged
 * TAG, one every PERIOD_MS, and step "probe" prints an RR_RESULT line
 * "probe-line". Its results: count, probe-line, probe (CLUSTER_RESULTS). */
void cluster_job_yaml(char *buf, size_t len, const char *tag, unsigned lines, unsigned period_ms,
                      unsigned action_timeout_s);
extern const char *const CLUSTER_RESULTS[];

/* Verify JOB's stored stream against DEVICE's console capture from *CURSOR
 * (NULL: from the start). 0, or -1 when something could not be read. */
int cluster_verify_job(cluster_t *self, uint64_t job, const char *device, size_t *cursor,
                       verdict_t *verdict);

/* Path of NAME in the cluster's scratch dir (static buffer). */
const char *cluster_path(cluster_t *self, const char *name);

/* Wall-clock ms (matches event ts). */
uint64_t cluster_now_ms(void);

#endif
