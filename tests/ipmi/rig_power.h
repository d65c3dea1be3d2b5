/* rig_power.h: switch a rig node on through its BMC (rackrun's IPMI module),
 * failing the cmocka test with the module's error when it cannot. */
#ifndef RACKRUN_TEST_RIG_POWER_H
#define RACKRUN_TEST_RIG_POWER_H

#include "rig.h"

void rig_power_on(const rr_rig_node_t *node);

#endif
