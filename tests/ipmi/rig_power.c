/* rig_power.c: see rig_power.h. */
#include "rig_power.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "ipmi.h"

void rig_power_on(const rr_rig_node_t *node)
{
    rr_ipmi_t *bmc = rr_ipmi_new(node->host, node->port, node->user, node->password, 2000, 2);
    assert_non_null(bmc);
    int rc = rr_ipmi_power(bmc, RR_POWER_ON);
    char err[1024];
    snprintf(err, sizeof err, "%s", rr_ipmi_error(bmc));
    rr_ipmi_destroy(&bmc);
    if (rc < 0)
        fail_msg("%s", err);
}
