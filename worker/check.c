/* check.c: `rackrun-worker --check` (see check.h): BMC login + power status,
 * SOL activation per device, then the TFTP root; one table row each. */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipmi.h"
#include "sol.h"

#define CHECK_ROW_FMT "%-16s %-24s %-6s %-6s %-6s %s\n"
#define CHECK_ROW_FMT_OK "%-16s %-24s %-6s %-6s %s\n"

typedef struct {
    const char *login;          /* "ok", "error" */
    const char *power;          /* "on", "off", "-" */
    const char *sol;            /* "ok", "error", "-" (not tried: no login) */
    char error[1024];           /* why it failed, naming the BMC; "" when it passed */
} check_row_t;

/* Login and power status: one IPMI session, closed before SOL is tried. */
static void check_ipmi(const rr_device_config_t *d, check_row_t *row)
{
    bool on = false;
    rr_ipmi_t *bmc = rr_ipmi_new(d->bmc_host, d->bmc_port, d->bmc_user, d->bmc_password,
                                 d->ipmi_timeout_ms, d->ipmi_retries);
    if (!bmc) {
        snprintf(row->error, sizeof row->error, "bmc %s:%u: out of memory", d->bmc_host,
                 (unsigned) d->bmc_port);
        return;
    }
    if (rr_ipmi_power_status(bmc, &on) < 0) {
        snprintf(row->error, sizeof row->error, "%s", rr_ipmi_error(bmc));
    } else {
        row->login = "ok";
        row->power = on ? "on" : "off";
    }
    rr_ipmi_destroy(&bmc);
}

/* SOL activation: open (confirmed up) and close again. */
static void check_sol(const rr_device_config_t *d, check_row_t *row)
{
    rr_sol_t *sol = rr_sol_open(d->bmc_host, d->bmc_port, d->bmc_user, d->bmc_password,
                                d->sol_timeout_ms, row->error, sizeof row->error);
    row->sol = sol ? "ok" : "error";
    rr_sol_destroy(&sol);
}

/* Check one device and print its row. Returns 0 when it passed, -1 if not. */
static int check_device(const rr_device_config_t *d, FILE *out)
{
    check_row_t row = { .login = "error", .power = "-", .sol = "-", .error = "" };
    char bmc[300];
    bool v6 = strchr(d->bmc_host, ':') != NULL;
    snprintf(bmc, sizeof bmc, "%s%s%s:%u", v6 ? "[" : "", d->bmc_host, v6 ? "]" : "",
             (unsigned) d->bmc_port);
    check_ipmi(d, &row);
    if (strcmp(row.login, "ok") == 0)
        check_sol(d, &row);
    bool ok = row.error[0] == '\0';
    if (ok)
        fprintf(out, CHECK_ROW_FMT_OK, d->name, bmc, row.login, row.power, row.sol);
    else
        fprintf(out, CHECK_ROW_FMT, d->name, bmc, row.login, row.power, row.sol, row.error);
    fflush(out);
    return ok ? 0 : -1;
}

/* DIR must be a directory others can read and enter (dnsmasq is another user). */
static int check_dir_mode(const char *dir, char *err, size_t len)
{
    struct stat st;
    if (stat(dir, &st) < 0) {
        snprintf(err, len, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, len, "%s: not a directory", dir);
        return -1;
    }
    if ((st.st_mode & (S_IROTH | S_IXOTH)) != (S_IROTH | S_IXOTH)) {
        snprintf(err, len, "%s: mode %04o, not readable by others (dnsmasq runs as another "
                 "user: chmod o+rx)", dir, (unsigned) (st.st_mode & 07777));
        return -1;
    }
    return 0;
}

/* The worker can create (and remove) a file in DIR. */
static int check_dir_writable(const char *dir, char *err, size_t len)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/.rackrun-check-XXXXXX", dir);
    if (n < 0 || (size_t) n >= sizeof path) {
        snprintf(err, len, "%s: path too long", dir);
        return -1;
    }
    int fd = mkstemp(path);
    if (fd < 0) {
        snprintf(err, len, "%s: cannot create a file: %s", dir, strerror(errno));
        return -1;
    }
    close(fd);
    if (unlink(path) < 0) {
        snprintf(err, len, "%s: cannot remove %s: %s", dir, path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The TFTP root, and pxelinux.cfg/ under it when it exists (the worker writes there). */
static int check_tftp(const char *root, char *err, size_t len)
{
    char pxe[PATH_MAX];
    struct stat st;
    if (!root) {
        snprintf(err, len, "tftp_root: not set");
        return -1;
    }
    if (check_dir_mode(root, err, len) < 0)
        return -1;
    snprintf(pxe, sizeof pxe, "%s/pxelinux.cfg", root);
    if (stat(pxe, &st) < 0)
        return check_dir_writable(root, err, len);
    if (check_dir_mode(pxe, err, len) < 0)
        return -1;
    return check_dir_writable(pxe, err, len);
}

int rr_worker_check(const rr_worker_config_t *config, FILE *out)
{
    int failed = 0;
    char err[PATH_MAX + 256] = "";
    fprintf(out, CHECK_ROW_FMT, "DEVICE", "BMC", "LOGIN", "POWER", "SOL", "ERROR");
    for (size_t i = 0; i < config->device_count; i++)
        if (check_device(&config->devices[i], out) < 0)
            failed++;
    if (check_tftp(config->tftp_root, err, sizeof err) < 0) {
        fprintf(out, "TFTP %s: error: %s\n", config->tftp_root ? config->tftp_root : "-", err);
        failed++;
    } else {
        fprintf(out, "TFTP %s: ok (directory, writable, readable by others)\n",
                config->tftp_root);
    }
    fflush(out);
    return failed;
}
