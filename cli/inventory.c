/* inventory.c: what the lab holds: `rackrun workers`, `rackrun devices`,
 * `rackrun device maintenance NAME on|off` (`rackrun console`: console.c). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "connection.h"
#include "format.h"
#include "json.h"

static void print_workers(const proto_worker_list_t *list)
{
    static const char *const headers[] = { "NAME", "RACK", "STATE", "HEARTBEAT", "DEVICES", "VERSION" };
    rr_table_t *table = rr_table_new(6, headers);
    for (size_t i = 0; table && i < list->workers_count; i++) {
        const proto_workerinfo_t *w = &list->workers[i];
        char age[32], ndev[16];
        snprintf(ndev, sizeof ndev, "%u", w->device_count);
        const char *cells[] = { w->name, w->rack, w->state,
                                rr_fmt_age(w->heartbeat_age_ms, age, sizeof age), ndev, w->version };
        rr_table_add(table, cells);
    }
    if (table)
        rr_table_print(table, stdout);
    rr_table_destroy(&table);
}

int rr_cmd_workers(const rr_cli_opts_t *opts, int argc, char **args)
{
    proto_msg_t req = { .type = PROTO_MSG_WORKERS, .version = PROTO_VERSION };
    proto_msg_t reply = { 0 };
    (void)argc, (void)args;
    int rc = rr_connection_call(opts, &req, PROTO_MSG_WORKER_LIST, &reply);
    if (rc == 0 && opts->json) {
        json_t *array = json_array();
        for (size_t i = 0; array && i < reply.u.worker_list.workers_count; i++)
            json_array_append_new(array, proto_json_workerinfo(&reply.u.worker_list.workers[i]));
        rr_json_print(array, stdout);
    } else if (rc == 0) {
        print_workers(&reply.u.worker_list);
    }
    proto_msg_free(&reply);
    return rc;
}

/* "a,b,c" (or "-") into BUF. */
static char *join_tags(char **tags, size_t count, char *buf, size_t len)
{
    size_t used = 0;
    snprintf(buf, len, "-");
    for (size_t i = 0; i < count && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? "," : "", tags[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

static void print_devices(const proto_device_list_t *list)
{
    static const char *const headers[] = { "NAME", "WORKER", "TYPE", "TAGS", "STATE", "JOB", "REASON" };
    rr_table_t *table = rr_table_new(7, headers);
    for (size_t i = 0; table && i < list->devices_count; i++) {
        const proto_deviceinfo_t *d = &list->devices[i];
        char tags[256], job[24] = "-";
        if (d->job)
            snprintf(job, sizeof job, "%" PRIu64, d->job);
        const char *cells[] = { d->name, d->worker, d->type, join_tags(d->tags, d->tags_count, tags, sizeof tags),
                                d->state, job, d->reason };
        rr_table_add(table, cells);
    }
    if (table)
        rr_table_print(table, stdout);
    rr_table_destroy(&table);
}

int rr_cmd_devices(const rr_cli_opts_t *opts, int argc, char **args)
{
    proto_msg_t req = { .type = PROTO_MSG_DEVICES, .version = PROTO_VERSION };
    proto_msg_t reply = { 0 };
    (void)argc, (void)args;
    int rc = rr_connection_call(opts, &req, PROTO_MSG_DEVICE_LIST, &reply);
    if (rc == 0 && opts->json) {
        json_t *array = json_array();
        for (size_t i = 0; array && i < reply.u.device_list.devices_count; i++)
            json_array_append_new(array, proto_json_deviceinfo(&reply.u.device_list.devices[i]));
        rr_json_print(array, stdout);
    } else if (rc == 0) {
        print_devices(&reply.u.device_list);
    }
    proto_msg_free(&reply);
    return rc;
}

/* device maintenance NAME on|off */
int rr_cmd_device(const rr_cli_opts_t *opts, int argc, char **args)
{
    proto_msg_t req = { .type = PROTO_MSG_DEVICE_SET, .version = PROTO_VERSION };
    proto_msg_t reply = { 0 };
    (void)argc;
    if (strcmp(args[0], "maintenance") != 0) {
        rr_cli_error("device: unknown subcommand '%s' (usage: rackrun device maintenance NAME on|off)",
                     args[0]);
        return RR_EXIT_USAGE;
    }
    if (strcmp(args[2], "on") != 0 && strcmp(args[2], "off") != 0) {
        rr_cli_error("device maintenance: '%s' is neither on nor off", args[2]);
        return RR_EXIT_USAGE;
    }
    req.u.device_set.device = args[1];
    req.u.device_set.maintenance = strcmp(args[2], "on") == 0;
    int rc = rr_connection_call(opts, &req, PROTO_MSG_OK, &reply);
    if (rc == 0 && opts->json)
        rr_json_print(json_pack("{s:s, s:b}", "device", args[1], "maintenance",
                                req.u.device_set.maintenance), stdout);
    else if (rc == 0)
        printf("device %s: maintenance %s\n", args[1], args[2]);
    proto_msg_free(&reply);
    return rc;
}
