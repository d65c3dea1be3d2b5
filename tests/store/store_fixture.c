/* store_fixture.c: see store_fixture.h. */
#include "store_fixture.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

static void remove_db_files(const fixture_t *f)
{
    static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
    char path[128];
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s%s", f->path, suffixes[i]);
        unlink(path);
    }
}

int fixture_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/rr-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/master.db", f->dir);
    char err[512] = "";
    f->store = rr_store_open(f->path, err, sizeof err);
    if (!f->store)
        fail_msg("open: %s", err);
    *state = f;
    return 0;
}

int fixture_teardown(void **state)
{
    fixture_t *f = *state;
    rr_store_destroy(&f->store);
    remove_db_files(f);
    rmdir(f->dir);
    free(f);
    return 0;
}

void fixture_reopen(fixture_t *f)
{
    char err[512] = "";
    rr_store_destroy(&f->store);
    assert_null(f->store);
    f->store = rr_store_open(f->path, err, sizeof err);
    if (!f->store)
        fail_msg("reopen: %s", err);
}

/* Split a SEP-separated LIST into a malloc'd string array. */
static char **split(const char *list, char sep, size_t *count)
{
    *count = 0;
    if (!list || !*list)
        return NULL;
    char **out = calloc(strlen(list) + 1, sizeof *out);
    assert_non_null(out);
    const char *at = list;
    for (;;) {
        size_t len = strcspn(at, (char[]) { sep, '\0' });
        out[(*count)++] = strndup(at, len);
        if (!at[len])
            break;
        at += len + 1;
    }
    return out;
}

proto_jobdef_t *fixture_def(const char *name, const char *type, uint32_t priority,
                            const char *tags)
{
    proto_jobdef_t *def = calloc(1, sizeof *def);
    assert_non_null(def);
    def->name = strdup(name);
    def->device_type = strdup(type);
    def->priority = priority;
    def->tags = split(tags, ',', &def->tags_count);
    def->job_timeout_s = 1800;
    def->action_timeout_s = 600;
    def->actions = calloc(1, sizeof *def->actions);
    def->actions_count = 1;
    def->actions[0].kind = strdup("boot");
    def->actions[0].method = strdup("ipmi-pxe");
    def->actions[0].timeout_s = 600;
    return def;
}

uint64_t fixture_job(fixture_t *f, const char *type, uint32_t priority, const char *tags,
                     uint64_t now_ms)
{
    proto_jobdef_t *def = fixture_def("job", type, priority, tags);
    uint64_t id = 0;
    int rc = rr_store_job_insert(f->store, "job_name: job\n", def, now_ms, &id);
    if (rc != RR_STORE_OK)
        fail_msg("job insert: %s", rr_store_error(f->store));
    proto_jobdef_destroy(&def);
    return id;
}

void fixture_hello(fixture_t *f, const char *worker, const char *const *devices)
{
    proto_hello_t hello = { .worker = (char *) worker, .rack = (char *) "rack01",
                            .version = (char *) "0.1.0", .proto_min = 1, .proto_max = 1 };
    size_t n = 0;
    while (devices && devices[n])
        n++;
    hello.devices = calloc(n + 1, sizeof *hello.devices);
    hello.devices_count = n;
    for (size_t i = 0; i < n; i++) {
        size_t parts;
        char **p = split(devices[i], ':', &parts);
        assert_int_equal(parts, 4);
        hello.devices[i].name = p[0];
        hello.devices[i].type = p[1];
        hello.devices[i].tags = split(p[2], '+', &hello.devices[i].tags_count);
        hello.devices[i].state = p[3];
        free(p[2]);
        free(p);
    }
    int rc = rr_store_worker_hello(f->store, &hello, 1000);
    if (rc != RR_STORE_OK)
        fail_msg("hello: %s", rr_store_error(f->store));
    for (size_t i = 0; i < n; i++) {
        free(hello.devices[i].name);
        free(hello.devices[i].type);
        for (size_t t = 0; t < hello.devices[i].tags_count; t++)
            free(hello.devices[i].tags[t]);
        free(hello.devices[i].tags);
        free(hello.devices[i].state);
    }
    free(hello.devices);
}

proto_job_event_t fixture_event(uint64_t job, uint64_t seq, const char *kind,
                                const char *name, const char *value)
{
    return (proto_job_event_t) { .job = job, .seq = seq, .ts = 5000 + seq, .kind = (char *) kind,
                                 .name = (char *) name, .value = (char *) value };
}

void fixture_raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}
