/* roles.c: client roles (roles.h): names and the least role per request. */
#include <string.h>

#include "roles.h"

static const char *const role_names[] = {
    [RR_ROLE_NONE] = "none",
    [RR_ROLE_READ] = "read",
    [RR_ROLE_SUBMIT] = "submit",
    [RR_ROLE_ADMIN] = "admin",
};

const char *rr_role_name(rr_role_t role)
{
    return role <= RR_ROLE_ADMIN ? role_names[role] : "none";
}

int rr_role_parse(const char *text, rr_role_t *role)
{
    for (rr_role_t r = RR_ROLE_READ; r <= RR_ROLE_ADMIN; r++)
        if (text && strcmp(text, role_names[r]) == 0) {
            *role = r;
            return 0;
        }
    return -1;
}

rr_role_t rr_role_needed(proto_type_t type)
{
    switch (type) {
    case PROTO_MSG_JOBS:
    case PROTO_MSG_JOB:
    case PROTO_MSG_LOGS:
    case PROTO_MSG_WORKERS:
    case PROTO_MSG_DEVICES:
    case PROTO_MSG_CONSOLE:
    case PROTO_MSG_ARTIFACTS:
    case PROTO_MSG_FETCH:
        return RR_ROLE_READ;
    case PROTO_MSG_SUBMIT:
    case PROTO_MSG_CANCEL:
        return RR_ROLE_SUBMIT;
    case PROTO_MSG_DEVICE_SET:
    case PROTO_MSG_CONSOLE_INPUT:
        return RR_ROLE_ADMIN;
    default:
        return RR_ROLE_NONE;
    }
}

bool rr_role_allows(rr_role_t held, rr_role_t needed)
{
    return needed != RR_ROLE_NONE && held >= needed;
}
