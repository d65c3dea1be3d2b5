/* metrics.h: the master's Prometheus metrics (text exposition format 0.0.4).
 *
 * Two sources: gauges read from the store when scraped (jobs, queue, devices,
 * workers, heartbeat ages), and counters the daemon increments in an
 * rr_metrics_t it owns (events ingested, acks sent, errors workers report).
 * Counters are plain fields because only the master's loop thread touches
 * them; each is declared once, in RR_METRICS_COUNTERS, with its name and help.
 * Label values are only fixed state names, never worker or device names, so
 * a name cannot break the format or blow up the series count.
 */
#ifndef RACKRUN_METRICS_H
#define RACKRUN_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "store.h"

/* X(field, metric name, help): every counter the daemon feeds. */
#define RR_METRICS_COUNTERS(X) \
    X(events_ingested,  "rackrun_events_ingested_total", \
      "Job events newly committed to the store (duplicates not counted).") \
    X(events_duplicate, "rackrun_events_duplicate_total", \
      "Job events received again and ignored (already committed).") \
    X(event_acks_sent,  "rackrun_event_acks_sent_total", "EVENT_ACK messages sent to workers.") \
    X(worker_messages,  "rackrun_worker_messages_total", "Messages received from workers.") \
    X(client_requests,  "rackrun_client_requests_total", "Requests received from CLI clients.") \
    X(bad_messages,     "rackrun_bad_messages_total", \
      "Messages refused as malformed, too big or of an unknown type.") \
    X(jobs_submitted,   "rackrun_jobs_submitted_total", "Jobs accepted by SUBMIT.") \
    X(jobs_finished,    "rackrun_jobs_finished_total", "Jobs that reached state finished.") \
    X(workers_lost,     "rackrun_workers_lost_total", \
      "Times a worker went silent past its timeout.") \
    X(ipmi_errors,      "rackrun_ipmi_errors_total", "IPMI (BMC) failures reported by workers.") \
    X(sol_errors,       "rackrun_sol_errors_total", \
      "Serial-over-LAN console losses reported by workers (console_gap events).")

/* The daemon's counters; zero-initialise, then increment on the loop thread. */
typedef struct {
#define RR_METRICS_FIELD(field, name, help) uint64_t field;
    RR_METRICS_COUNTERS(RR_METRICS_FIELD)
#undef RR_METRICS_FIELD
} rr_metrics_t;

/* Upper bounds (seconds) of the rackrun_worker_heartbeat_age_seconds buckets, then +Inf. */
#define RR_METRICS_AGE_BUCKETS { 0.5, 1, 2, 5, 10, 30, 60, 300 }

/* Write every store gauge and COUNTERS (NULL = all zero) to OUT as Prometheus
 * text; NOW_MS is the wall clock for ages. 0, or -1 when the store failed
 * (rr_store_error says why; OUT then holds a partial page). */
int rr_metrics_write(rr_store_t *store, const rr_metrics_t *counters, uint64_t now_ms, FILE *out);

/* Write one metric's "# HELP" and "# TYPE" lines (TYPE: counter | gauge | histogram). */
void rr_metrics_header(FILE *out, const char *name, const char *type, const char *help);

#endif
