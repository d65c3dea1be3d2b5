/* capture.h: what a node printed (its console.out, as the rig captured it)
 * against what the master stored for the jobs that ran on it. A node prints
 * only while powered on, and every job powers its node on once (boot) and
 * off at its end, so console.out is a series of power-on sessions, one per
 * job, each starting with the rig's boot banner. */
#ifndef RACKRUN_TESTS_CAPTURE_H
#define RACKRUN_TESTS_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "cluster.h"
#include "rig.h"

typedef struct {
    size_t offset;      /* into console.out */
    size_t len;
} rr_boot_segment_t;

/* Split node INDEX's console.out into power-on sessions: each starts with the
 * rig's boot banner ("\r\nU-Boot (rackrun rig) NAME ") and runs to the next
 * banner or the end. *OUT (malloc'd) gets COUNT segments, *TEXT (malloc'd)
 * the whole file; *PREFIX the bytes before the first banner. 0 or -1. */
int rr_boot_segments(const rr_rig_t *rig, size_t index, char **text, size_t *prefix,
                     rr_boot_segment_t **out, size_t *count);

/* Each job that ran on a node of RIG with a non-empty log, in start order,
 * against the node's power-on sessions in console.out: as many jobs as boots,
 * nothing before the first boot, and each job's stored log equal, byte for
 * byte, to its session (from its banner to the next one). Adds the number of
 * jobs compared to *CHECKED; false (after saying where) on any difference. */
bool rr_cluster_check_logs(rr_cluster_t *self, const rr_rig_t *rig, size_t *checked);

#endif
