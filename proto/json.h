/* json.h: the JSON form (jansson) of the structs clients see: jobs, workers,
 * devices and job events. One spelling of every JSON key, shared by the
 * master's HTTP API and any client that prints --json.
 *
 * Strings that are not valid UTF-8 (jansson refuses them) become null. A
 * time of 0 ms ("not yet") is null. Log bytes of an event are "data" when
 * they are valid UTF-8 and "data_base64" (RFC 4648) otherwise, so no console
 * byte is ever lost or altered on the way to a client.
 */
#ifndef RACKRUN_PROTO_JSON_H
#define RACKRUN_PROTO_JSON_H

#include <jansson.h>

#include "proto.h"

/* {"id", "name", "state", "outcome", "reason", "device_type", "device",
 *  "worker", "priority", "submitted_ms", "started_ms", "ended_ms"}; NULL on ENOMEM. */
json_t *proto_json_jobinfo(const proto_jobinfo_t *job);

/* {"name", "rack", "state", "version", "heartbeat_age_ms", "devices"}; NULL on ENOMEM. */
json_t *proto_json_workerinfo(const proto_workerinfo_t *worker);

/* {"name", "worker", "type", "tags", "state", "reason", "job"}; NULL on ENOMEM. */
json_t *proto_json_deviceinfo(const proto_deviceinfo_t *device);

/* {"job", "seq", "ts_ms", "kind"} plus those of "name", "value", "reason",
 * "code", "measurement", "units", "since_ms", "data"/"data_base64" the event
 * carries; NULL on ENOMEM. */
json_t *proto_json_event(const proto_job_event_t *ev);

#endif
