/* fake_master.h: a scripted stand-in for the master's client endpoint
 * (ROUTER on 127.0.0.1, an ephemeral port, in a czmq actor thread), to run
 * the rackrun binary against. It answers:
 *   JOBS       -> JOB_LIST of two jobs (records state/limit asked for)
 *   SUBMIT     -> ERROR invalid at line 3 col 5 (text worded like the master's)
 *                 when the YAML holds "bad",
 *                 else SUBMITTED job 8 when it holds "incomplete", else job 7
 *   LOGS 7|8   -> a short stream (state, actions, log bytes, results, end), LOGS_END
 *   LOGS 9|10  -> seq 1, then silence when following; LOGS 9 without follow:
 *                 the whole stream (state, end complete) and LOGS_END
 *   JOB 7|9    -> JOB_DETAIL (finished); JOB 10 -> no answer; any other id ->
 *                 ERROR not_found
 *   WORKERS, DEVICES -> one worker / two devices; DEVICE_SET, CANCEL -> OK */
#ifndef RACKRUN_TESTS_FAKE_MASTER_H
#define RACKRUN_TESTS_FAKE_MASTER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct _rr_fake_master_t rr_fake_master_t;

/* What the fake saw from the last requests of each kind. */
typedef struct {
    char jobs_state[32];
    uint32_t jobs_limit;
    char set_device[64];
    bool set_maintenance;
    int requests;
} rr_fake_seen_t;

/* Start the fake; with SERVER_CERT_PATH (a secret cert file) it is a CURVE
 * server (accepting any client key). NULL on error. */
rr_fake_master_t *rr_fake_master_new(const char *server_cert_path);

/* Stop the thread, free, NULL *SELF. */
void rr_fake_master_destroy(rr_fake_master_t **self);

/* "tcp://127.0.0.1:PORT" */
const char *rr_fake_master_endpoint(const rr_fake_master_t *self);

/* A copy of what the fake has seen so far. */
rr_fake_seen_t rr_fake_master_seen(rr_fake_master_t *self);

#endif
