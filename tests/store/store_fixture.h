/* store_fixture.h: a fresh store in a temporary directory, and builders for
 * the jobs, workers and events the store and scheduler tests feed it. */
#ifndef RACKRUN_TEST_STORE_FIXTURE_H
#define RACKRUN_TEST_STORE_FIXTURE_H

#include "store.h"

typedef struct {
    char dir[64];       /* mkdtemp directory, removed by fixture_teardown */
    char path[96];      /* dir/master.db */
    rr_store_t *store;
} fixture_t;

/* cmocka setup/teardown: *STATE becomes a fixture_t with an open store. */
int fixture_setup(void **state);
int fixture_teardown(void **state);

/* Close and reopen the fixture's store (as after a master restart). */
void fixture_reopen(fixture_t *f);

/* A job definition of TYPE with PRIORITY and TAGS (comma list, "" = none). */
proto_jobdef_t *fixture_def(const char *name, const char *type, uint32_t priority,
                            const char *tags);

/* Insert such a job (queued), submitted at NOW_MS; returns its id. */
uint64_t fixture_job(fixture_t *f, const char *type, uint32_t priority, const char *tags,
                     uint64_t now_ms);

/* HELLO from WORKER with one device per "name:type:tags:state" spec (tags
 * separated by '+'), NULL-terminated. */
void fixture_hello(fixture_t *f, const char *worker, const char *const *devices);

/* An event of JOB with SEQ and KIND (name, value may be NULL). */
proto_job_event_t fixture_event(uint64_t job, uint64_t seq, const char *kind,
                                const char *name, const char *value);

/* Run SQL on the database at PATH through a connection of its own (no
 * foreign keys enforced, as any raw client): what the store would refuse. */
void fixture_raw_exec(const char *path, const char *sql);

#endif
