/* json.c: proto structs as JSON (jansson); see json.h. */
#include "json.h"

#include <czmq.h>
#include <string.h>

/* A string or null; jansson refuses invalid UTF-8, which becomes null too. */
static json_t *str_or_null(const char *text)
{
    json_t *value = text ? json_string(text) : NULL;
    return value ? value : json_null();
}

/* A time in ms or null when 0 (not yet). */
static json_t *ms_or_null(uint64_t ms)
{
    return ms ? json_integer((json_int_t) ms) : json_null();
}

static json_t *strings(char **items, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array && i < count; i++)
        json_array_append_new(array, str_or_null(items[i]));
    return array;
}

json_t *proto_json_jobinfo(const proto_jobinfo_t *job)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:o}",
                     "id", (json_int_t) job->id, "name", str_or_null(job->name),
                     "state", str_or_null(job->state), "outcome", str_or_null(job->outcome),
                     "reason", str_or_null(job->reason),
                     "device_type", str_or_null(job->device_type),
                     "device", str_or_null(job->device), "worker", str_or_null(job->worker),
                     "priority", (int) job->priority, "submitted_ms", ms_or_null(job->submitted),
                     "started_ms", ms_or_null(job->started), "ended_ms", ms_or_null(job->ended));
}

json_t *proto_json_workerinfo(const proto_workerinfo_t *worker)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:I, s:i}", "name", str_or_null(worker->name),
                     "rack", str_or_null(worker->rack), "state", str_or_null(worker->state),
                     "version", str_or_null(worker->version),
                     "heartbeat_age_ms", (json_int_t) worker->heartbeat_age_ms,
                     "devices", (int) worker->device_count);
}

json_t *proto_json_deviceinfo(const proto_deviceinfo_t *device)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "name", str_or_null(device->name),
                     "worker", str_or_null(device->worker), "type", str_or_null(device->type),
                     "tags", strings(device->tags, device->tags_count),
                     "state", str_or_null(device->state), "reason", str_or_null(device->reason),
                     "job", device->job ? json_integer((json_int_t) device->job) : json_null());
}

/* Console bytes need not be UTF-8 (a garbled baud rate, binary output). */
static int set_data(json_t *obj, const uint8_t *data, size_t len)
{
    json_t *text = json_stringn((const char *) data, len);
    if (text)
        return json_object_set_new(obj, "data", text);
    zarmour_t *armour = zarmour_new();
    char *b64 = armour ? zarmour_encode(armour, data, len) : NULL;
    int rc = b64 ? json_object_set_new(obj, "data_base64", json_string(b64)) : -1;
    zstr_free(&b64);
    zarmour_destroy(&armour);
    return rc;
}

json_t *proto_json_event(const proto_job_event_t *ev)
{
    json_t *obj = json_pack("{s:I, s:I, s:I, s:o}", "job", (json_int_t) ev->job,
                            "seq", (json_int_t) ev->seq, "ts_ms", (json_int_t) ev->ts,
                            "kind", str_or_null(ev->kind));
    if (!obj)
        return NULL;
    const struct { const char *key; const char *value; } strs[] = {
        { "name", ev->name }, { "value", ev->value }, { "reason", ev->reason },
        { "measurement", ev->measurement }, { "units", ev->units },
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (strs[i].value)
            json_object_set_new(obj, strs[i].key, str_or_null(strs[i].value));
    if (ev->code || (ev->kind && strcmp(ev->kind, "result") == 0))
        json_object_set_new(obj, "code", json_integer(ev->code));
    if (ev->since)
        json_object_set_new(obj, "since_ms", json_integer((json_int_t) ev->since));
    if (ev->data && set_data(obj, ev->data, ev->data_len) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}
