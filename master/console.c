/* console.c: clients following a device's console live (CONSOLE).
 *
 * The worker's device actor holds the node's one SOL session. While at least
 * one client follows a device, the master has its worker pass the console
 * bytes up (CONSOLE_FOLLOW on, re-sent until acknowledged) and forwards each
 * CONSOLE_DATA to every follower; the last follower leaving switches it off.
 * Nothing is stored: this is a live view, the job's record is its JOB_EVENT
 * stream. Sends never block: a follower whose queue is full misses that
 * chunk. A follower repeats its CONSOLE every few seconds; one silent for
 * RR_CONSOLE_EXPIRY_MS is dropped.
 *
 * CONSOLE_INPUT (`rackrun console --interactive`, role admin: roles.c) types
 * into the console, and only of a device in maintenance: a job's console
 * belongs to its job, and an idle device may be handed a job any moment.
 * The bytes go to the worker once, without blocking (best-effort like the
 * output); the worker's device actor checks maintenance again and paces
 * them like a test shell's input.
 */
#include <stdarg.h>

#include "daemon.h"

#define RR_CONSOLE_FOLLOWERS_MAX 16     /* per device */
#define RR_CONSOLE_EXPIRY_MS 6000u      /* 3 client keepalives (cli/console.c) */
#define RR_CONSOLE_INPUT_MAX 1024u      /* bytes per CONSOLE_INPUT (typed at a few ms each) */

typedef struct {
    zframe_t *rid;
    uint64_t seen;              /* mono ms of its last CONSOLE */
} rr_follower_t;

typedef struct {
    char *device;
    char *worker;
    rr_follower_t followers[RR_CONSOLE_FOLLOWERS_MAX];
    size_t count;
} rr_console_t;

struct _rr_consoles_t {
    zhashx_t *by_device;        /* device name -> rr_console_t, owned */
};

static void s_console_destroy(void **item)
{
    rr_console_t *console = *item;
    if (!console)
        return;
    for (size_t i = 0; i < console->count; i++)
        zframe_destroy(&console->followers[i].rid);
    free(console->device);
    free(console->worker);
    free(console);
    *item = NULL;
}

rr_consoles_t *rr_consoles_new(void)
{
    rr_consoles_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->by_device = zhashx_new();
    if (!self->by_device) {
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->by_device, s_console_destroy);
    return self;
}

void rr_consoles_destroy(rr_consoles_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy(&(*self_p)->by_device);
    free(*self_p);
    *self_p = NULL;
}

/* The console of DEVICE, created (for its worker, from the store) on first use.
 * NULL with the ERROR reply sent when the device is unknown. */
static rr_console_t *s_console_get(rr_master_t *self, zframe_t *rid, const char *device)
{
    rr_console_t *console = zhashx_lookup(self->consoles->by_device, device);
    if (console)
        return console;
    proto_deviceinfo_t info = { 0 };
    int rc = rr_store_device_get(self->store, device, &info);
    if (rc == RR_STORE_OK && (console = calloc(1, sizeof *console))) {
        console->device = strdup(device);
        console->worker = strdup(info.worker);
        if (!console->device || !console->worker
            || zhashx_insert(self->consoles->by_device, device, console) != 0)
            s_console_destroy((void **) &console);
    }
    rr_store_deviceinfo_clear(&info);
    if (rc == RR_STORE_E_NOTFOUND)
        rr_master_send_error(self, self->client_sock, rid, "not_found", "dev", 0,
                             "console: no device %s", device);
    else if (!console)
        rr_master_send_error(self, self->client_sock, rid, "internal", NULL, 0,
                             "console %s: %s", device, rc != RR_STORE_OK
                             ? rr_store_error(self->store) : "out of memory");
    return console;
}

/* Remove follower I; the last one leaving stops the worker's forwarding. */
static void s_unfollow(rr_master_t *self, rr_console_t *console, size_t i)
{
    char peer[64];
    rr_info("device %s: console follower %s left", console->device,
            rr_peer_name(console->followers[i].rid, peer, sizeof peer));
    zframe_destroy(&console->followers[i].rid);
    console->followers[i] = console->followers[--console->count];
    if (console->count == 0)
        rr_dispatch_consfollow(self, console->device, console->worker, false);
}

static ssize_t s_follower_index(rr_console_t *console, zframe_t *rid)
{
    for (size_t i = 0; i < console->count; i++)
        if (zframe_eq(console->followers[i].rid, rid))
            return (ssize_t) i;
    return -1;
}

/* Add RID as a follower (or refresh it). False with the ERROR reply sent when full. */
static bool s_follow(rr_master_t *self, rr_console_t *console, zframe_t *rid)
{
    ssize_t at = s_follower_index(console, rid);
    if (at >= 0) {
        console->followers[at].seen = rr_mono_ms();
        return true;
    }
    zframe_t *copy = console->count < RR_CONSOLE_FOLLOWERS_MAX ? zframe_dup(rid) : NULL;
    if (!copy) {
        rr_master_send_error(self, self->client_sock, rid, "internal", NULL, 0,
                             "console %s: already %d followers, try again later",
                             console->device, RR_CONSOLE_FOLLOWERS_MAX);
        return false;
    }
    console->followers[console->count++] = (rr_follower_t) { copy, rr_mono_ms() };
    char peer[64];
    rr_info("device %s: console followed by %s (%zu following)", console->device,
            rr_peer_name(rid, peer, sizeof peer), console->count);
    if (console->count == 1)
        rr_dispatch_consfollow(self, console->device, console->worker, true);
    return true;
}

static void s_reply_ok(rr_master_t *self, zframe_t *rid, const char *device, bool follow)
{
    char text[160];
    snprintf(text, sizeof text, "console %s: %s", device, follow ? "following" : "stopped");
    proto_msg_t msg = { .type = PROTO_MSG_OK, .version = PROTO_VERSION };
    msg.u.ok.text = text;
    rr_master_send(self, self->client_sock, rid, &msg);
}

void rr_console_request(rr_master_t *self, zframe_t *rid, const proto_console_t *req)
{
    rr_console_t *console = NULL;
    if (req->follow) {
        console = s_console_get(self, rid, req->device);
        if (!console || !s_follow(self, console, rid))
            return;
    }
    else if ((console = zhashx_lookup(self->consoles->by_device, req->device))) {
        ssize_t at = s_follower_index(console, rid);
        if (at >= 0)
            s_unfollow(self, console, (size_t) at);
    }
    s_reply_ok(self, rid, req->device, req->follow);
}

void rr_console_data(rr_master_t *self, const char *worker, const proto_console_data_t *data)
{
    rr_console_t *console = zhashx_lookup(self->consoles->by_device, data->device);
    if (!console || !streq(console->worker, worker))
        return;                 /* nobody follows (an off not yet acked), or not its device */
    proto_msg_t msg = { .type = PROTO_MSG_CONSOLE_DATA, .version = PROTO_VERSION };
    msg.u.console_data = *data;                 /* borrowed */
    for (size_t i = console->count; i-- > 0;) {
        proto_error_t perr = { 0 };
        if (proto_send(self->client_sock, console->followers[i].rid, &msg, &perr) == 0
            || (perr.status == PROTO_OK && errno == EAGAIN))
            continue;           /* sent, or its queue is full: it misses this chunk */
        s_unfollow(self, console, i);           /* gone */
    }
}

void rr_console_worker_hello(rr_master_t *self, const char *worker)
{
    rr_console_t *console = zhashx_first(self->consoles->by_device);
    for (; console; console = zhashx_next(self->consoles->by_device))
        if (console->count > 0 && streq(console->worker, worker))
            rr_dispatch_consfollow(self, console->device, console->worker, true);
}

void rr_console_tick(rr_master_t *self, uint64_t now_mono)
{
    rr_console_t *console = zhashx_first(self->consoles->by_device);
    for (; console; console = zhashx_next(self->consoles->by_device))
        for (size_t i = console->count; i-- > 0;)
            if (now_mono - console->followers[i].seen > RR_CONSOLE_EXPIRY_MS)
                s_unfollow(self, console, i);
}

static void s_reply_text(rr_master_t *self, zframe_t *rid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_reply_text(rr_master_t *self, zframe_t *rid, const char *fmt, ...)
{
    char text[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    proto_msg_t msg = { .type = PROTO_MSG_OK, .version = PROTO_VERSION };
    msg.u.ok.text = text;
    rr_master_send(self, self->client_sock, rid, &msg);
}

/* Why DEVICE (INFO) may not be typed into now: "" when it may. */
static void s_input_refusal(rr_master_t *self, const proto_deviceinfo_t *info,
                            const proto_console_input_t *req, char *why, size_t len)
{
    why[0] = '\0';
    if (req->data_len > RR_CONSOLE_INPUT_MAX)
        snprintf(why, len, "console %s: %zu bytes of input at once, at most %u", req->device,
                 req->data_len, RR_CONSOLE_INPUT_MAX);
    else if (!streq(info->state, RR_DEVICE_MAINTENANCE))
        snprintf(why, len, "device %s is not in maintenance: put it in maintenance first "
                 "(rackrun device maintenance %s on); it is %s", req->device, req->device,
                 info->state);
    else if (!rr_workers_route(self, info->worker))
        snprintf(why, len, "console %s: its worker %s is not connected", req->device,
                 info->worker);
}

void rr_console_input(rr_master_t *self, zframe_t *rid, const proto_console_input_t *req)
{
    proto_deviceinfo_t info = { 0 };
    char why[400] = "";
    int rc = rr_store_device_get(self->store, req->device, &info);
    if (rc == RR_STORE_OK)
        s_input_refusal(self, &info, req, why, sizeof why);
    if (rc == RR_STORE_E_NOTFOUND)
        rr_master_send_error(self, self->client_sock, rid, "not_found", "dev", 0,
                             "console: no device %s", req->device);
    else if (rc != RR_STORE_OK)
        rr_master_send_error(self, self->client_sock, rid, "internal", NULL, 0,
                             "console %s: %s", req->device, rr_store_error(self->store));
    else if (why[0])
        rr_master_send_error(self, self->client_sock, rid, "invalid", "dev", 0, "%s", why);
    else if (req->data_len == 0)            /* the CLI's probe before it reads the terminal */
        s_reply_text(self, rid, "console %s: input allowed", req->device);
    else {
        proto_msg_t msg = { .type = PROTO_MSG_CONSOLE_INPUT, .version = PROTO_VERSION };
        msg.u.console_input = *req;                 /* borrowed */
        if (rr_master_send(self, self->worker_sock, rr_workers_route(self, info.worker),
                           &msg) != 0)
            rr_master_send_error(self, self->client_sock, rid, "internal", NULL, 0,
                                 "console %s: cannot pass the input to worker %s now (busy?); "
                                 "try again", req->device, info.worker);
        else
            s_reply_text(self, rid, "console %s: %zu bytes typed", req->device, req->data_len);
    }
    rr_store_deviceinfo_clear(&info);
}
