/* ipmi.c: one node's BMC over IPMI 2.0 lanplus, in-process with libfreeipmi.
 *
 * The session is opened lazily on the first call and kept for the next ones;
 * any failure closes it, so the next attempt starts from a fresh session (a
 * BMC that restarted has forgotten ours). Each operation is a small function
 * run by ipmi_attempts(), which owns retries, backoff and the error text. */
#include "ipmi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <freeipmi/freeipmi.h>

#define IPMI_CIPHER_SUITE 3             /* HMAC-SHA1, SHA1-96, AES-CBC-128 */
#define IPMI_BACKOFF_FIRST_MS 100
#define IPMI_BACKOFF_MAX_MS 2000
/* BMCs drop sessions idle for about a minute (60 s is common); one
 * idle past this is reopened rather than tried and timed out on. */
#define IPMI_SESSION_IDLE_MAX_MS 20000

struct _rr_ipmi_t {
    char target[280];           /* "127.0.0.1:9001" or "[::1]:9001", as FreeIPMI takes it */
    char *user;
    char *password;             /* secret: never in a message */
    uint32_t timeout_ms;        /* one attempt */
    uint32_t retries;           /* attempts after the first */
    ipmi_ctx_t ctx;             /* open session, or NULL */
    uint64_t last_used_ms;      /* CLOCK_MONOTONIC of the session's last success */
    char error[1024];
};

/* What one attempt of an operation reports. */
typedef enum { OP_OK = 0, OP_RETRY, OP_FATAL } op_result_t;

/* One attempt of an operation on an open session; writes the cause on failure. */
typedef op_result_t (op_fn)(rr_ipmi_t *self, void *arg, char *cause, size_t len);

rr_ipmi_t *rr_ipmi_new(const char *host, uint16_t port, const char *user,
                       const char *password, uint32_t timeout_ms, uint32_t retries)
{
    if (!host || !*host || !user || !password)
        return NULL;
    rr_ipmi_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (rr_ipmi_format_target(self->target, sizeof self->target, host, port) < 0)
        goto err;
    self->user = strdup(user);
    self->password = strdup(password);
    if (!self->user || !self->password)
        goto err;
    self->timeout_ms = timeout_ms ? timeout_ms : 5000;
    self->retries = retries;
    return self;
err:
    rr_ipmi_destroy(&self);
    return NULL;
}

static void session_close(rr_ipmi_t *self)
{
    if (!self->ctx)
        return;
    ipmi_ctx_close(self->ctx);
    ipmi_ctx_destroy(self->ctx);
    self->ctx = NULL;
}

void rr_ipmi_close(rr_ipmi_t *self)
{
    if (self)
        session_close(self);
}

void rr_ipmi_destroy(rr_ipmi_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rr_ipmi_t *self = *self_p;
    session_close(self);
    if (self->password) {
        explicit_bzero(self->password, strlen(self->password));
        free(self->password);
    }
    free(self->user);
    free(self);
    *self_p = NULL;
}

const char *rr_ipmi_error(const rr_ipmi_t *self)
{
    return self->error;
}

int rr_ipmi_format_target(char *buf, size_t len, const char *host, uint16_t port)
{
    bool v6 = strchr(host, ':') && host[0] != '[';
    int n = snprintf(buf, len, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned) port);
    return n < 0 || (size_t) n >= len ? -1 : 0;
}

const char *rr_ipmi_target(const rr_ipmi_t *self)
{
    return self->target;
}

/* Errors that another attempt cannot cure: wrong credentials or settings. */
static bool errnum_is_fatal(int errnum)
{
    switch (errnum) {
    case IPMI_ERR_USERNAME_INVALID:
    case IPMI_ERR_PASSWORD_INVALID:
    case IPMI_ERR_K_G_INVALID:
    case IPMI_ERR_PRIVILEGE_LEVEL_INSUFFICIENT:
    case IPMI_ERR_PRIVILEGE_LEVEL_CANNOT_BE_OBTAINED:
    case IPMI_ERR_AUTHENTICATION_TYPE_UNAVAILABLE:
    case IPMI_ERR_CIPHER_SUITE_ID_UNAVAILABLE:
    case IPMI_ERR_IPMI_2_0_UNAVAILABLE:
    case IPMI_ERR_HOSTNAME_INVALID:
    case IPMI_ERR_PARAMETERS:
        return true;
    default:
        return false;
    }
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static op_result_t session_open(rr_ipmi_t *self, char *cause, size_t len)
{
    if (self->ctx && mono_ms() - self->last_used_ms > IPMI_SESSION_IDLE_MAX_MS)
        session_close(self);
    if (self->ctx)
        return OP_OK;
    self->ctx = ipmi_ctx_create();
    if (!self->ctx) {
        snprintf(cause, len, "cannot create IPMI context: %s", strerror(errno));
        return OP_RETRY;
    }
    /* Retransmit a few times within one attempt; UDP on a busy BMC loses packets. */
    unsigned retransmit_ms = self->timeout_ms / 4;
    if (retransmit_ms > 500)
        retransmit_ms = 500;
    if (retransmit_ms < 10)
        retransmit_ms = 10;
    if (ipmi_ctx_open_outofband_2_0(self->ctx, self->target, self->user, self->password,
                                    NULL, 0, IPMI_PRIVILEGE_LEVEL_ADMIN, IPMI_CIPHER_SUITE,
                                    self->timeout_ms, retransmit_ms,
                                    IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_OPEN_SESSION_PRIVILEGE,
                                    IPMI_FLAGS_DEFAULT) < 0) {
        int errnum = ipmi_ctx_errnum(self->ctx);
        snprintf(cause, len, "%s", ipmi_ctx_errormsg(self->ctx));
        session_close(self);
        return errnum_is_fatal(errnum) ? OP_FATAL : OP_RETRY;
    }
    return OP_OK;
}

/* Describe why an ipmi_cmd_* call on the session failed, with the BMC's
 * completion code when it sent one. */
static op_result_t cmd_failed(rr_ipmi_t *self, fiid_obj_t rs, uint8_t netfn, char *cause,
                              size_t len)
{
    int errnum = ipmi_ctx_errnum(self->ctx);
    char code[256];
    if (errnum == IPMI_ERR_BAD_COMPLETION_CODE
        && ipmi_completion_code_strerror_cmd_r(rs, netfn, code, sizeof code) == 0)
        snprintf(cause, len, "%s", code);
    else
        snprintf(cause, len, "%s", ipmi_ctx_errormsg(self->ctx));
    return errnum_is_fatal(errnum) ? OP_FATAL : OP_RETRY;
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Run FN up to 1 + retries times with exponential backoff between attempts. */
static int ipmi_attempts(rr_ipmi_t *self, const char *opname, op_fn *fn, void *arg)
{
    char cause[384] = "";
    uint32_t backoff_ms = IPMI_BACKOFF_FIRST_MS;
    uint32_t attempt = 0;
    op_result_t result = OP_RETRY;
    while (result == OP_RETRY && attempt <= self->retries) {
        if (attempt > 0) {
            sleep_ms(backoff_ms);
            backoff_ms = backoff_ms * 2 > IPMI_BACKOFF_MAX_MS ? IPMI_BACKOFF_MAX_MS : backoff_ms * 2;
        }
        attempt++;
        result = session_open(self, cause, sizeof cause);
        if (result == OP_OK)
            result = fn(self, arg, cause, sizeof cause);
        if (result != OP_OK)
            session_close(self);
    }
    if (result == OP_OK) {
        self->last_used_ms = mono_ms();
        self->error[0] = '\0';
        return 0;
    }
    snprintf(self->error, sizeof self->error, "bmc %s: %s: %s (after %u %s)", self->target, opname,
             cause, attempt, attempt == 1 ? "try" : "tries");
    return -1;
}

static op_result_t op_power(rr_ipmi_t *self, void *arg, char *cause, size_t len)
{
    uint8_t control = *(uint8_t *) arg;
    op_result_t result = OP_OK;
    fiid_obj_t rs = fiid_obj_create(tmpl_cmd_chassis_control_rs);
    if (!rs) {
        snprintf(cause, len, "out of memory");
        return OP_RETRY;
    }
    if (ipmi_cmd_chassis_control(self->ctx, control, rs) < 0)
        result = cmd_failed(self, rs, IPMI_NET_FN_CHASSIS_RQ, cause, len);
    fiid_obj_destroy(rs);
    return result;
}

int rr_ipmi_power(rr_ipmi_t *self, rr_power_op_t op)
{
    static const struct {
        uint8_t control;
        const char *name;
    } ops[] = {
        [RR_POWER_OFF] = { IPMI_CHASSIS_CONTROL_POWER_DOWN, "power off" },
        [RR_POWER_ON] = { IPMI_CHASSIS_CONTROL_POWER_UP, "power on" },
        [RR_POWER_CYCLE] = { IPMI_CHASSIS_CONTROL_POWER_CYCLE, "power cycle" },
        [RR_POWER_RESET] = { IPMI_CHASSIS_CONTROL_HARD_RESET, "power reset" },
    };
    if ((unsigned) op >= sizeof ops / sizeof ops[0]) {
        snprintf(self->error, sizeof self->error, "bmc %s: power: unknown operation %d",
                 self->target, (int) op);
        return -1;
    }
    uint8_t control = ops[op].control;
    return ipmi_attempts(self, ops[op].name, op_power, &control);
}

/* Read field NAME of RS into *VALUE; a BMC that leaves it out is an error. */
static op_result_t field_get(fiid_obj_t rs, const char *name, uint64_t *value, char *cause,
                             size_t len)
{
    if (fiid_obj_get(rs, name, value) == 1)
        return OP_OK;
    snprintf(cause, len, "reply lacks %s", name);
    return OP_RETRY;
}

static op_result_t op_power_status(rr_ipmi_t *self, void *arg, char *cause, size_t len)
{
    uint64_t on = 0;
    op_result_t result;
    fiid_obj_t rs = fiid_obj_create(tmpl_cmd_get_chassis_status_rs);
    if (!rs) {
        snprintf(cause, len, "out of memory");
        return OP_RETRY;
    }
    if (ipmi_cmd_get_chassis_status(self->ctx, rs) < 0)
        result = cmd_failed(self, rs, IPMI_NET_FN_CHASSIS_RQ, cause, len);
    else
        result = field_get(rs, "current_power_state.power_is_on", &on, cause, len);
    if (result == OP_OK)
        *(bool *) arg = on != 0;
    fiid_obj_destroy(rs);
    return result;
}

int rr_ipmi_power_status(rr_ipmi_t *self, bool *on)
{
    return ipmi_attempts(self, "power status", op_power_status, on);
}

struct bootdev_set {
    uint8_t device;
    bool persistent;
};

static op_result_t op_set_bootdev(rr_ipmi_t *self, void *arg, char *cause, size_t len)
{
    const struct bootdev_set *set = arg;
    op_result_t result = OP_OK;
    fiid_obj_t rs = fiid_obj_create(tmpl_cmd_set_system_boot_options_rs);
    if (!rs) {
        snprintf(cause, len, "out of memory");
        return OP_RETRY;
    }
    if (ipmi_cmd_set_system_boot_options_boot_flags(
            self->ctx, IPMI_SYSTEM_BOOT_OPTIONS_PARAMETER_VALID_UNLOCKED,
            IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_TYPE_PC_COMPATIBLE,
            set->persistent ? IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_VALID_PERSISTENTLY
                            : IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_VALID_FOR_NEXT_BOOT,
            IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_VALID, IPMI_SYSTEM_BOOT_OPTION_DISABLE,
            IPMI_SYSTEM_BOOT_OPTION_DISABLE, set->device, IPMI_SYSTEM_BOOT_OPTION_DISABLE,
            IPMI_SYSTEM_BOOT_OPTION_DISABLE,
            IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_CONSOLE_REDIRECTION_DEFAULT,
            IPMI_SYSTEM_BOOT_OPTION_DISABLE, IPMI_SYSTEM_BOOT_OPTION_DISABLE,
            IPMI_SYSTEM_BOOT_OPTION_DISABLE,
            IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_FIRMWARE_BIOS_VERBOSITY_DEFAULT,
            IPMI_SYSTEM_BOOT_OPTION_DISABLE,
            IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAGS_SET_MUX_TO_RECOMENDED_AT_END_OF_POST,
            IPMI_SYSTEM_BOOT_OPTION_DISABLE, 0, rs) < 0)
        result = cmd_failed(self, rs, IPMI_NET_FN_CHASSIS_RQ, cause, len);
    fiid_obj_destroy(rs);
    return result;
}

int rr_ipmi_set_bootdev(rr_ipmi_t *self, rr_bootdev_t dev, bool persistent)
{
    struct bootdev_set set = { .persistent = persistent };
    switch (dev) {
    case RR_BOOTDEV_NONE:
        set.device = IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_DEVICE_NO_OVERRIDE;
        break;
    case RR_BOOTDEV_PXE:
        set.device = IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_DEVICE_FORCE_PXE;
        break;
    case RR_BOOTDEV_DISK:
        set.device = IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_DEVICE_FORCE_HARD_DRIVE;
        break;
    default:
        snprintf(self->error, sizeof self->error, "bmc %s: set boot device: unknown device %d",
                 self->target, (int) dev);
        return -1;
    }
    return ipmi_attempts(self, "set boot device", op_set_bootdev, &set);
}

/* Map the BMC's boot device to ours; devices rackrun never sets are an error.
 * The "boot flags valid" bit is not consulted: stock ipmi_sim 2.0.33 always
 * answers 0 there (it keeps only the device), and real BMCs clear it 60 s
 * after it was set (IPMI 2.0, 28.12) or once they booted. The device bits are
 * what was set, which is what a caller checking its set wants to read. */
static op_result_t bootdev_from_ipmi(uint64_t device, rr_bootdev_t *dev, char *cause, size_t len)
{
    if (device == IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_DEVICE_NO_OVERRIDE)
        *dev = RR_BOOTDEV_NONE;
    else if (device == IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_DEVICE_FORCE_PXE)
        *dev = RR_BOOTDEV_PXE;
    else if (device == IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_DEVICE_FORCE_HARD_DRIVE)
        *dev = RR_BOOTDEV_DISK;
    else {
        snprintf(cause, len, "boot device 0x%02x is neither pxe nor disk", (unsigned) device);
        return OP_FATAL;
    }
    return OP_OK;
}

static op_result_t op_get_bootdev(rr_ipmi_t *self, void *arg, char *cause, size_t len)
{
    uint64_t device = 0;
    op_result_t result;
    fiid_obj_t rs = fiid_obj_create(tmpl_cmd_get_system_boot_options_boot_flags_rs);
    if (!rs) {
        snprintf(cause, len, "out of memory");
        return OP_RETRY;
    }
    if (ipmi_cmd_get_system_boot_options_boot_flags(self->ctx,
                                                    IPMI_SYSTEM_BOOT_OPTIONS_NO_SET_SELECTOR,
                                                    IPMI_SYSTEM_BOOT_OPTIONS_NO_BLOCK_SELECTOR,
                                                    rs) < 0)
        result = cmd_failed(self, rs, IPMI_NET_FN_CHASSIS_RQ, cause, len);
    else
        result = field_get(rs, "boot_device", &device, cause, len);
    if (result == OP_OK)
        result = bootdev_from_ipmi(device, arg, cause, len);
    fiid_obj_destroy(rs);
    return result;
}

int rr_ipmi_get_bootdev(rr_ipmi_t *self, rr_bootdev_t *dev)
{
    return ipmi_attempts(self, "get boot device", op_get_bootdev, dev);
}

static op_result_t op_sol_deactivate(rr_ipmi_t *self, void *arg, char *cause, size_t len)
{
    op_result_t result = OP_OK;
    fiid_obj_t rq = fiid_obj_create(tmpl_cmd_deactivate_payload_rq);
    fiid_obj_t rs = fiid_obj_create(tmpl_cmd_deactivate_payload_rs);
    if (!rq || !rs) {
        snprintf(cause, len, "out of memory");
        result = OP_RETRY;
        goto out;
    }
    if (fill_cmd_deactivate_payload(IPMI_PAYLOAD_TYPE_SOL, 1, 0, rq) < 0) {
        snprintf(cause, len, "%s", fiid_obj_errormsg(rq));
        result = OP_FATAL;
        goto out;
    }
    if (ipmi_cmd(self->ctx, IPMI_BMC_IPMB_LUN_BMC, IPMI_NET_FN_APP_RQ, rq, rs) < 0) {
        uint64_t code = 0;
        /* Nothing to deactivate is what the caller wanted. */
        if (ipmi_ctx_errnum(self->ctx) == IPMI_ERR_BAD_COMPLETION_CODE
            && fiid_obj_get(rs, "comp_code", &code) == 1
            && code == IPMI_COMP_CODE_DEACTIVATE_PAYLOAD_PAYLOAD_ALREADY_DEACTIVATED)
            goto out;
        result = cmd_failed(self, rs, IPMI_NET_FN_APP_RQ, cause, len);
    }
out:
    if (rs)
        fiid_obj_destroy(rs);
    if (rq)
        fiid_obj_destroy(rq);
    return result;
}

int rr_ipmi_sol_deactivate(rr_ipmi_t *self)
{
    return ipmi_attempts(self, "sol deactivate", op_sol_deactivate, NULL);
}
