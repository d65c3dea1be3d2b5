/* sol_engine.c: RMCP+ Serial-over-LAN sessions multiplexed on one engine thread.
 *
 * Only the session state machine is ours: libfreeipmi assembles and parses
 * every packet (assemble/unassemble_ipmi_rmcpplus_pkt), computes the keys and
 * the RAKP codes, and fills the commands. The sequence is the one
 * libipmiconsole and ipmi-lan-session-common.c follow, minus Get Channel
 * Authentication Capabilities and Get Channel Payload Support (the latter
 * crashes stock ipmi_sim): Open Session -> RAKP 1/2 -> RAKP 3/4 -> Set Session
 * Privilege -> Activate Payload (an active one is deactivated and activation
 * retried once) -> SOL. Closing: Deactivate Payload -> Close Session.
 *
 * Why not libipmiconsole: its context allocates ~40 fiid objects per session,
 * five at the 64 KB template maximum, and clears them on every packet (~340 KB
 * of touched heap per session). Here those objects exist once, on the engine
 * thread, and a session is the struct below (about 3 KB). The road not taken:
 * smaller private fiid templates; the shared objects made them unnecessary.
 *
 * Threads: callers create a session, push it on the engine's list and wait
 * on a condition variable until it is up or failed; afterwards they only use
 * their end of the socketpair. The engine owns every protocol field; the
 * mutex guards the list and the fields both sides read (result, error,
 * detached). A destroyed session is closed and freed by the engine. */
#include "sol_engine.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <freeipmi/freeipmi.h>

#include "ipmi.h"
#include "units.h"

#define AUTH_ALG IPMI_AUTHENTICATION_ALGORITHM_RAKP_HMAC_SHA1   /* cipher suite 3 */
#define INTEGRITY_ALG IPMI_INTEGRITY_ALGORITHM_HMAC_SHA1_96
#define CONF_ALG IPMI_CONFIDENTIALITY_ALGORITHM_AES_CBC_128
#define PRIVILEGE IPMI_PRIVILEGE_LEVEL_ADMIN
#define SOL_INSTANCE 1
#define KEY_MAX 64                      /* SHA1 keys are 20 bytes, AES's 16 */
#define PKT_MAX 2048                    /* one UDP packet either way */
#define SOL_CHUNK 32                    /* characters per packet we send (the BMC's size ignored) */
#define SOL_BUF 1024                    /* keystrokes not yet acked / output not yet read */
#define SOL_TRIES_MIN 6                 /* sends of one SOL packet before the session is lost: */
#define SOL_TRIES_PER_S 1               /* ... this many per second of session timeout, at least */
#define RETRANSMIT_NS 500000000ULL
#define NACK_PAUSE_NS 100000000ULL      /* a BMC that accepted nothing gets this pause */
#define CLOSE_STEP_NS 600000000ULL      /* each closing request, retransmitted within */
#define CLOSE_RETRANSMIT_NS 200000000ULL
#define POLL_MAX_MS 1000

typedef enum {
    ST_OPEN_SESSION, ST_RAKP1, ST_RAKP3, ST_SET_PRIVILEGE, ST_ACTIVATE, ST_DEACTIVATE_STALE,
    ST_SOL, ST_DEACTIVATE, ST_CLOSE, ST_DONE
} state_t;

/* What each state's request is, for errors ("bmc ...: sol open: RAKP 1: ..."). */
static const char *const state_what[] = {
    "open session", "RAKP 1", "RAKP 3", "set session privilege", "activate SOL payload",
    "deactivate stale SOL payload", "sol", "deactivate SOL payload", "close session", "closed",
};

struct _rr_sol_session_t {
    struct _rr_sol_session_t *next;     /* engine list, under the lock */
    char target[280];                   /* "host:port" / "[v6]:port", for messages */
    int caller_fd;                      /* caller's end of the console socketpair */
    int engine_fd;                      /* engine's end, -1 once closed */
    int udp;                            /* connected to the BMC, non-blocking */
    uint64_t timeout_ns;
    /* shared with callers, under the lock */
    int result;                         /* 0 opening, 1 up, -1 failed */
    bool in_use;                        /* activation met the payload active */
    bool queued;                        /* on the engine list */
    bool detached;                      /* the caller destroyed it */
    char error[640];
    /* engine only from here on */
    state_t state;
    bool fresh;                         /* first request not yet sent */
    bool established;                   /* RAKP 4 checked: keys in use */
    bool stale_tried;
    bool close_started;
    bool caller_eof;
    char user[IPMI_MAX_USER_NAME_LENGTH + 1];
    char password[IPMI_2_0_MAX_PASSWORD_LENGTH + 1];   /* zeroed once the keys exist */
    uint32_t rc_session_id, ms_session_id, session_seq;
    uint32_t rx_seq_highest, rx_seq_seen;   /* the BMC's numbers seen (replay window) */
    uint8_t message_tag, rq_seq;
    uint8_t rc_random[IPMI_REMOTE_CONSOLE_RANDOM_NUMBER_LENGTH];
    uint8_t guid[IPMI_MANAGED_SYSTEM_GUID_LENGTH];  /* the BMC's, from RAKP 2 */
    uint8_t sik[KEY_MAX], k1[KEY_MAX], k2[KEY_MAX];
    unsigned int sik_len, k1_len, k2_len;
    bool waiting;                       /* an IPMI / setup request is outstanding */
    uint64_t request_ns;                /* when it was last sent */
    uint64_t deadline_ns;               /* setup or closing step gives up */
    uint64_t last_rx_ns;                /* last valid packet from the BMC */
    uint64_t keepalive_ns;              /* next keepalive due */
    /* SOL, console -> BMC */
    uint8_t in[SOL_BUF];
    size_t in_len;
    size_t sent_len;                    /* bytes of IN in the outstanding packet */
    uint8_t sol_seq;                    /* 1..15 */
    bool sol_waiting;
    int sol_tries, sol_tries_max;
    uint64_t sol_sent_ns, sol_hold_ns;
    /* SOL, BMC -> console */
    uint8_t last_bmc_seq, last_bmc_count;
    uint8_t out[SOL_BUF];
    size_t out_len;
};

/* The engine's fiid objects: created once, shared by every session. */
typedef struct {
    fiid_obj_t rmcp_hdr_rq, session_hdr_rq, lan_msg_hdr_rq, session_trlr_rq;
    fiid_obj_t rmcp_hdr_rs, session_hdr_rs, payload_rs, lan_msg_hdr_rs, lan_msg_trlr_rs,
        session_trlr_rs;
    fiid_obj_t open_rq, open_rs, rakp1, rakp2, rakp3, rakp4;
    fiid_obj_t priv_rq, priv_rs, activate_rq, activate_rs, deactivate_rq, deactivate_rs;
    fiid_obj_t close_rq, close_rs, devid_rq, devid_rs, sol_rq, sol_rs;
} objects_t;

static struct {
    pthread_once_t once;
    int init_errno;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int wake;                           /* eventfd */
    rr_sol_session_t *sessions;
    struct pollfd *pfds;                /* engine thread only */
    size_t pfds_cap;
    objects_t o;
} engine = { .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER,
             .changed = PTHREAD_COND_INITIALIZER, .wake = -1 };

/* ---- engine start ---- */

static int objects_create(objects_t *o)
{
    struct { fiid_obj_t *obj; fiid_field_t *tmpl; } table[] = {
        { &o->rmcp_hdr_rq, tmpl_rmcp_hdr }, { &o->session_hdr_rq, tmpl_rmcpplus_session_hdr },
        { &o->lan_msg_hdr_rq, tmpl_lan_msg_hdr_rq },
        { &o->session_trlr_rq, tmpl_rmcpplus_session_trlr },
        { &o->rmcp_hdr_rs, tmpl_rmcp_hdr }, { &o->session_hdr_rs, tmpl_rmcpplus_session_hdr },
        { &o->payload_rs, tmpl_rmcpplus_payload }, { &o->lan_msg_hdr_rs, tmpl_lan_msg_hdr_rs },
        { &o->lan_msg_trlr_rs, tmpl_lan_msg_trlr },
        { &o->session_trlr_rs, tmpl_rmcpplus_session_trlr },
        { &o->open_rq, tmpl_rmcpplus_open_session_request },
        { &o->open_rs, tmpl_rmcpplus_open_session_response },
        { &o->rakp1, tmpl_rmcpplus_rakp_message_1 }, { &o->rakp2, tmpl_rmcpplus_rakp_message_2 },
        { &o->rakp3, tmpl_rmcpplus_rakp_message_3 }, { &o->rakp4, tmpl_rmcpplus_rakp_message_4 },
        { &o->priv_rq, tmpl_cmd_set_session_privilege_level_rq },
        { &o->priv_rs, tmpl_cmd_set_session_privilege_level_rs },
        { &o->activate_rq, tmpl_cmd_activate_payload_sol_rq },
        { &o->activate_rs, tmpl_cmd_activate_payload_sol_rs },
        { &o->deactivate_rq, tmpl_cmd_deactivate_payload_rq },
        { &o->deactivate_rs, tmpl_cmd_deactivate_payload_rs },
        { &o->close_rq, tmpl_cmd_close_session_rq }, { &o->close_rs, tmpl_cmd_close_session_rs },
        { &o->devid_rq, tmpl_cmd_get_device_id_rq }, { &o->devid_rs, tmpl_cmd_get_device_id_rs },
        { &o->sol_rq, tmpl_sol_payload_data_remote_console_to_bmc },
        { &o->sol_rs, tmpl_sol_payload_data_bmc_to_remote_console },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!(*table[i].obj = fiid_obj_create(table[i].tmpl)))
            return -1;
    return 0;
}

static void *engine_main(void *arg);

static void engine_start(void)
{
    pthread_t thread;
    pthread_attr_t attr;
    if (ipmi_rmcpplus_init() < 0 || objects_create(&engine.o) < 0) {
        engine.init_errno = errno ? errno : ENOMEM;
        return;
    }
    engine.wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (engine.wake < 0) {
        engine.init_errno = errno;
        return;
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&thread, &attr, engine_main, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        engine.init_errno = rc;
}

static void engine_wake(void)
{
    uint64_t one = 1;
    if (write(engine.wake, &one, sizeof one) < 0) {
        /* a full counter already wakes the engine */
    }
}

/* ---- sending ---- */

/* Assemble and send one packet; IN_SESSION: authenticated and encrypted
 * with the session's keys. A send that fails is a lost packet: retransmission
 * and the session timeout deal with it like with any other. */
static void send_packet(rr_sol_session_t *s, uint8_t payload_type, fiid_obj_t obj_cmd,
                        bool in_session)
{
    objects_t *o = &engine.o;
    uint8_t pkt[PKT_MAX];
    uint32_t session_id = 0, seq = 0;
    if (in_session) {
        if (++s->session_seq == 0)      /* 0 is special in IPMI 2.0 */
            s->session_seq = 1;
        seq = s->session_seq;
        session_id = s->ms_session_id;
    }
    if (fill_rmcp_hdr_ipmi(o->rmcp_hdr_rq) < 0
        || fill_rmcpplus_session_hdr(payload_type,
                                     in_session ? IPMI_PAYLOAD_FLAG_AUTHENTICATED
                                                : IPMI_PAYLOAD_FLAG_UNAUTHENTICATED,
                                     in_session ? IPMI_PAYLOAD_FLAG_ENCRYPTED
                                                : IPMI_PAYLOAD_FLAG_UNENCRYPTED,
                                     0, 0, session_id, seq, o->session_hdr_rq) < 0
        || fill_lan_msg_hdr(IPMI_SLAVE_ADDRESS_BMC, IPMI_NET_FN_APP_RQ, IPMI_BMC_IPMB_LUN_BMC,
                            s->rq_seq, o->lan_msg_hdr_rq) < 0
        || fill_rmcpplus_session_trlr(o->session_trlr_rq) < 0)
        return;
    int len = assemble_ipmi_rmcpplus_pkt(
        in_session ? AUTH_ALG : IPMI_AUTHENTICATION_ALGORITHM_RAKP_NONE,
        in_session ? INTEGRITY_ALG : IPMI_INTEGRITY_ALGORITHM_NONE,
        in_session ? CONF_ALG : IPMI_CONFIDENTIALITY_ALGORITHM_NONE,
        in_session ? s->k1 : NULL, in_session ? s->k1_len : 0,
        in_session ? s->k2 : NULL, in_session ? s->k2_len : 0, NULL, 0,
        o->rmcp_hdr_rq, o->session_hdr_rq, o->lan_msg_hdr_rq, obj_cmd, o->session_trlr_rq,
        pkt, sizeof pkt, IPMI_INTERFACE_FLAGS_DEFAULT);
    if (len > 0 && send(s->udp, pkt, (size_t) len, MSG_NOSIGNAL) < 0) {
        /* ECONNREFUSED from an earlier ICMP, EAGAIN: a lost packet */
    }
}

static int fill_rakp3(rr_sol_session_t *s, fiid_obj_t obj)
{
    uint8_t ms_random[IPMI_MANAGED_SYSTEM_RANDOM_NUMBER_LENGTH];
    uint8_t code[KEY_MAX];
    size_t user_len = strlen(s->user), password_len = strlen(s->password);
    if (fiid_obj_get_data(engine.o.rakp2, "managed_system_random_number", ms_random,
                          sizeof ms_random) != (int) sizeof ms_random)
        return -1;
    int code_len = ipmi_calculate_rakp_3_key_exchange_authentication_code(
        AUTH_ALG, password_len ? s->password : NULL, (unsigned) password_len, ms_random,
        sizeof ms_random, s->rc_session_id, IPMI_NAME_ONLY_LOOKUP, PRIVILEGE,
        user_len ? s->user : NULL, (unsigned) user_len, code, sizeof code);
    int rc = code_len < 0 ? -1
             : fill_rmcpplus_rakp_message_3(++s->message_tag, RMCPPLUS_STATUS_NO_ERRORS,
                                            s->ms_session_id, code, (unsigned) code_len, obj);
    explicit_bzero(code, sizeof code);
    return rc;
}

/* Fill the IPMI command the current state sends; its object in *OBJ. */
static int fill_command(rr_sol_session_t *s, fiid_obj_t *obj)
{
    objects_t *o = &engine.o;
    switch (s->state) {
    case ST_SET_PRIVILEGE:
        *obj = o->priv_rq;
        return fill_cmd_set_session_privilege_level(PRIVILEGE, *obj);
    case ST_ACTIVATE:
        *obj = o->activate_rq;
        return fill_cmd_activate_payload_sol(IPMI_PAYLOAD_TYPE_SOL, SOL_INSTANCE,
                                             IPMI_SOL_STARTUP_HANDSHAKE_CTS_AND_DCD_SDR_DEASSERTED,
                                             IPMI_SERIAL_MODEM_ALERTS_FAIL_WHILE_SOL_ACTIVE,
                                             IPMI_TEST_MODE_DEACTIVATED,
                                             IPMI_ACTIVATE_PAYLOAD_WITH_AUTHENTICATION,
                                             IPMI_ACTIVATE_PAYLOAD_WITH_ENCRYPTION, *obj);
    case ST_DEACTIVATE_STALE:
    case ST_DEACTIVATE:
        *obj = o->deactivate_rq;
        return fill_cmd_deactivate_payload(IPMI_PAYLOAD_TYPE_SOL, SOL_INSTANCE, 0, *obj);
    case ST_CLOSE:
        *obj = o->close_rq;
        return fill_cmd_close_session(s->ms_session_id, NULL, *obj);
    case ST_SOL:
        /* the keepalive: not Get Channel Payload Support (crashes ipmi_sim) */
        *obj = o->devid_rq;
        return fill_cmd_get_device_id(*obj);
    default:
        return -1;
    }
}

/* Send (or send again) the request of the current state. */
static void send_request(rr_sol_session_t *s, uint64_t now)
{
    objects_t *o = &engine.o;
    fiid_obj_t obj = NULL;
    uint8_t payload = IPMI_PAYLOAD_TYPE_IPMI;
    size_t user_len = strlen(s->user);
    int rc;
    switch (s->state) {
    case ST_OPEN_SESSION:
        payload = IPMI_PAYLOAD_TYPE_RMCPPLUS_OPEN_SESSION_REQUEST;
        obj = o->open_rq;
        /* the privilege, not "highest": OPEN_SESSION_PRIVILEGE (ipmi_sim) */
        rc = fill_rmcpplus_open_session(++s->message_tag, PRIVILEGE, s->rc_session_id, AUTH_ALG,
                                        INTEGRITY_ALG, CONF_ALG, obj);
        break;
    case ST_RAKP1:
        payload = IPMI_PAYLOAD_TYPE_RAKP_MESSAGE_1;
        obj = o->rakp1;
        rc = fill_rmcpplus_rakp_message_1(++s->message_tag, s->ms_session_id, s->rc_random,
                                          sizeof s->rc_random, PRIVILEGE, IPMI_NAME_ONLY_LOOKUP,
                                          user_len ? s->user : NULL, (unsigned) user_len, obj);
        break;
    case ST_RAKP3:
        payload = IPMI_PAYLOAD_TYPE_RAKP_MESSAGE_3;
        obj = o->rakp3;
        rc = fill_rakp3(s, obj);
        break;
    default:
        s->rq_seq = (uint8_t) ((s->rq_seq + 1) & IPMI_LAN_REQUESTER_SEQUENCE_NUMBER_MAX);
        rc = fill_command(s, &obj);
        break;
    }
    s->waiting = true;
    s->request_ns = now;
    if (rc >= 0)
        send_packet(s, payload, obj, payload == IPMI_PAYLOAD_TYPE_IPMI);
}

/* Send one SOL packet: acking the BMC's packet ACK_SEQ (0: none) with
 * ACK_COUNT characters, and carrying our next queued characters when none
 * is outstanding. Nothing to say: nothing sent. */
static void send_sol(rr_sol_session_t *s, uint8_t ack_seq, uint8_t ack_count, uint64_t now)
{
    uint8_t seq = 0;
    size_t len = 0;
    if (!s->sol_waiting && s->in_len && now >= s->sol_hold_ns) {
        s->sol_seq = (uint8_t) (s->sol_seq % IPMI_SOL_PACKET_SEQUENCE_NUMBER_MAX + 1);
        seq = s->sol_seq;
        len = s->in_len < SOL_CHUNK ? s->in_len : SOL_CHUNK;
        s->sent_len = len;
        s->sol_waiting = true;
        s->sol_tries = 1;
        s->sol_sent_ns = now;
    }
    if (!seq && !ack_seq)
        return;
    if (fill_sol_payload_data_remote_console_to_bmc(seq, ack_seq, ack_count, 0, 0, 0, 0, 0, 0,
                                                    IPMI_SOL_ACK, len ? s->in : NULL,
                                                    (unsigned) len, engine.o.sol_rq) < 0)
        return;
    send_packet(s, IPMI_PAYLOAD_TYPE_SOL, engine.o.sol_rq, true);
}

/* The outstanding SOL packet again: same sequence number, same characters. */
static void resend_sol(rr_sol_session_t *s, uint64_t now)
{
    s->sol_tries++;
    s->sol_sent_ns = now;
    if (fill_sol_payload_data_remote_console_to_bmc(s->sol_seq, 0, 0, 0, 0, 0, 0, 0, 0,
                                                    IPMI_SOL_ACK, s->in, (unsigned) s->sent_len,
                                                    engine.o.sol_rq) >= 0)
        send_packet(s, IPMI_PAYLOAD_TYPE_SOL, engine.o.sol_rq, true);
}

/* ---- session outcomes ---- */

static void close_engine_fd(rr_sol_session_t *s)
{
    if (s->engine_fd >= 0)
        close(s->engine_fd);
    s->engine_fd = -1;
}

/* Start the polite end: Deactivate Payload, then Close Session. */
static void begin_close(rr_sol_session_t *s, state_t first, uint64_t now)
{
    close_engine_fd(s);
    s->state = first;
    s->deadline_ns = now + CLOSE_STEP_NS;
    send_request(s, now);
}

/* Setup failed: tell the caller why; a session already established is closed. */
static void setup_fail(rr_sol_session_t *s, uint64_t now, bool in_use, const char *fmt, ...)
{
    char cause[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof cause, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&engine.lock);
    snprintf(s->error, sizeof s->error, "bmc %s: sol open: %s", s->target, cause);
    s->result = -1;
    s->in_use = in_use;
    pthread_cond_broadcast(&engine.changed);
    pthread_mutex_unlock(&engine.lock);
    if (s->established) {
        begin_close(s, ST_CLOSE, now);
    } else {
        close_engine_fd(s);
        s->state = ST_DONE;
    }
}

/* The running session is lost: the caller gets EOF and the reason. */
static void session_lost(rr_sol_session_t *s, const char *fmt, ...)
{
    char cause[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof cause, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&engine.lock);
    snprintf(s->error, sizeof s->error, "bmc %s: sol session lost: %s", s->target, cause);
    pthread_mutex_unlock(&engine.lock);
    close_engine_fd(s);
    s->state = ST_DONE;
}

static void session_up(rr_sol_session_t *s, uint64_t now)
{
    s->state = ST_SOL;
    s->waiting = false;
    s->keepalive_ns = now + s->timeout_ns / 3;
    pthread_mutex_lock(&engine.lock);
    s->result = 1;
    pthread_cond_broadcast(&engine.changed);
    pthread_mutex_unlock(&engine.lock);
}

/* ---- receiving: session setup ---- */

static void status_text(uint8_t status, char *buf, size_t len)
{
    if (status == RMCPPLUS_STATUS_UNAUTHORIZED_NAME)
        snprintf(buf, len, "unknown user (unauthorized name)");
    else if (ipmi_rmcpplus_status_strerror_r(status, buf, len) < 0)
        snprintf(buf, len, "RMCP+ status 0x%02x", status);
}

static bool rakp2_valid(rr_sol_session_t *s)
{
    uint8_t ms_random[IPMI_MANAGED_SYSTEM_RANDOM_NUMBER_LENGTH];
    size_t user_len = strlen(s->user), password_len = strlen(s->password);
    fiid_obj_t rakp2 = engine.o.rakp2;
    if (fiid_obj_get_data(rakp2, "managed_system_random_number", ms_random, sizeof ms_random)
            != (int) sizeof ms_random
        || fiid_obj_get_data(rakp2, "managed_system_guid", s->guid, sizeof s->guid)
               != (int) sizeof s->guid)
        return false;
    return ipmi_rmcpplus_check_rakp_2_key_exchange_authentication_code(
               AUTH_ALG, password_len ? s->password : NULL, (unsigned) password_len,
               s->rc_session_id, s->ms_session_id, s->rc_random, sizeof s->rc_random, ms_random,
               sizeof ms_random, s->guid, sizeof s->guid, IPMI_NAME_ONLY_LOOKUP, PRIVILEGE,
               user_len ? s->user : NULL, (unsigned) user_len, rakp2) == 1;
}

static int session_keys(rr_sol_session_t *s)
{
    uint8_t ms_random[IPMI_MANAGED_SYSTEM_RANDOM_NUMBER_LENGTH];
    size_t user_len = strlen(s->user), password_len = strlen(s->password);
    void *sik = s->sik, *k1 = s->k1, *k2 = s->k2;
    s->sik_len = s->k1_len = s->k2_len = KEY_MAX;
    if (fiid_obj_get_data(engine.o.rakp2, "managed_system_random_number", ms_random,
                          sizeof ms_random) != (int) sizeof ms_random)
        return -1;
    return ipmi_calculate_rmcpplus_session_keys(
        AUTH_ALG, INTEGRITY_ALG, CONF_ALG, password_len ? s->password : NULL,
        (unsigned) password_len, NULL, 0, s->rc_random, sizeof s->rc_random, ms_random,
        sizeof ms_random, IPMI_NAME_ONLY_LOOKUP, PRIVILEGE, user_len ? s->user : NULL,
        (unsigned) user_len, &sik, &s->sik_len, &k1, &s->k1_len, &k2, &s->k2_len);
}

/* Open Session response / RAKP 2 / RAKP 4, already parsed into OBJ. */
static void setup_step(rr_sol_session_t *s, fiid_obj_t obj, uint64_t now)
{
    uint64_t val = 0;
    if (s->state == ST_OPEN_SESSION) {
        if (FIID_OBJ_GET(obj, "managed_system_session_id", &val) < 0)
            return;
        s->ms_session_id = (uint32_t) val;
        s->state = ST_RAKP1;
    } else if (s->state == ST_RAKP1) {
        if (!rakp2_valid(s)) {
            setup_fail(s, now, false, "wrong password (RAKP 2 check failed)");
            return;
        }
        if (session_keys(s) < 0) {
            setup_fail(s, now, false, "RAKP 2: cannot compute the session keys");
            return;
        }
        s->state = ST_RAKP3;
    } else {
        if (ipmi_rmcpplus_check_rakp_4_integrity_check_value(
                AUTH_ALG, s->sik, s->sik_len, s->rc_random, sizeof s->rc_random,
                s->ms_session_id, s->guid, sizeof s->guid, obj) != 1) {
            setup_fail(s, now, false, "RAKP 4 check failed (the BMC's keys differ)");
            return;
        }
        s->established = true;
        explicit_bzero(s->password, sizeof s->password);
        s->state = ST_SET_PRIVILEGE;
    }
    send_request(s, now);
}

static void setup_packet(rr_sol_session_t *s, uint8_t type, const uint8_t *pkt, size_t len,
                         uint64_t now)
{
    objects_t *o = &engine.o;
    static const uint8_t expect_type[] = { IPMI_PAYLOAD_TYPE_RMCPPLUS_OPEN_SESSION_RESPONSE,
                                           IPMI_PAYLOAD_TYPE_RAKP_MESSAGE_2,
                                           IPMI_PAYLOAD_TYPE_RAKP_MESSAGE_4 };
    fiid_obj_t objs[] = { o->open_rs, o->rakp2, o->rakp4 };
    if (s->state > ST_RAKP3 || type != expect_type[s->state])
        return;
    fiid_obj_t obj = objs[s->state];
    int full = unassemble_ipmi_rmcpplus_pkt(
        IPMI_AUTHENTICATION_ALGORITHM_RAKP_NONE, IPMI_INTEGRITY_ALGORITHM_NONE,
        IPMI_CONFIDENTIALITY_ALGORITHM_NONE, NULL, 0, NULL, 0, pkt, (unsigned) len,
        o->rmcp_hdr_rs, o->session_hdr_rs, o->payload_rs, o->lan_msg_hdr_rs, obj,
        o->lan_msg_trlr_rs, o->session_trlr_rs, IPMI_INTERFACE_FLAGS_DEFAULT);
    uint64_t status = 0;
    /* An error answer is short (not fully parsed) but has tag, status and our id. */
    if (full < 0 || ipmi_rmcpplus_check_message_tag(obj, s->message_tag) != 1
        || ipmi_rmcpplus_check_remote_console_session_id(obj, s->rc_session_id) != 1
        || FIID_OBJ_GET(obj, "rmcpplus_status_code", &status) < 0)
        return;
    s->last_rx_ns = now;
    s->waiting = false;
    if (status != RMCPPLUS_STATUS_NO_ERRORS) {
        char text[200];
        status_text((uint8_t) status, text, sizeof text);
        setup_fail(s, now, false, "%s: %s", state_what[s->state], text);
        return;
    }
    if (full == 1)
        setup_step(s, obj, now);
}

/* ---- receiving: in session ---- */

static fiid_obj_t response_object(state_t state)
{
    objects_t *o = &engine.o;
    switch (state) {
    case ST_SET_PRIVILEGE: return o->priv_rs;
    case ST_ACTIVATE: return o->activate_rs;
    case ST_DEACTIVATE_STALE:
    case ST_DEACTIVATE: return o->deactivate_rs;
    case ST_CLOSE: return o->close_rs;
    case ST_SOL: return o->devid_rs;
    default: return NULL;
    }
}

static uint8_t request_cmd(state_t state)
{
    switch (state) {
    case ST_SET_PRIVILEGE: return IPMI_CMD_SET_SESSION_PRIVILEGE_LEVEL;
    case ST_ACTIVATE: return IPMI_CMD_ACTIVATE_PAYLOAD;
    case ST_DEACTIVATE_STALE:
    case ST_DEACTIVATE: return IPMI_CMD_DEACTIVATE_PAYLOAD;
    case ST_CLOSE: return IPMI_CMD_CLOSE_SESSION;
    default: return IPMI_CMD_GET_DEVICE_ID;
    }
}

/* Whether the intact packet just parsed carries a session sequence number
 * not seen before and within the window (a replayed packet does not). */
static bool session_seq_fresh(rr_sol_session_t *s)
{
    uint64_t seq = 0;
    return FIID_OBJ_GET(engine.o.session_hdr_rs, "session_sequence_number", &seq) == 1
           && ipmi_check_session_sequence_number_2_0((uint32_t) seq, &s->rx_seq_highest,
                                                     &s->rx_seq_seen, 0) == 1;
}

/* Parse an in-session packet into OBJ and check it is ours, intact and new:
 * session id, integrity (HMAC-SHA1-96 over the packet), confidentiality pad,
 * session sequence number. */
static bool session_packet_valid(rr_sol_session_t *s, const uint8_t *pkt, size_t len,
                                 fiid_obj_t obj)
{
    objects_t *o = &engine.o;
    return unassemble_ipmi_rmcpplus_pkt(AUTH_ALG, INTEGRITY_ALG, CONF_ALG, s->k1, s->k1_len,
                                        s->k2, s->k2_len, pkt, (unsigned) len, o->rmcp_hdr_rs,
                                        o->session_hdr_rs, o->payload_rs, o->lan_msg_hdr_rs, obj,
                                        o->lan_msg_trlr_rs, o->session_trlr_rs,
                                        IPMI_INTERFACE_FLAGS_DEFAULT) == 1
           && ipmi_rmcpplus_check_session_id(o->session_hdr_rs, s->rc_session_id) == 1
           && ipmi_rmcpplus_check_packet_session_authentication_code(
                  INTEGRITY_ALG, pkt, (unsigned) len, s->k1, s->k1_len, NULL, 0,
                  o->session_trlr_rs) == 1
           && ipmi_rmcpplus_check_payload_pad(CONF_ALG, o->payload_rs) == 1
           && session_seq_fresh(s);
}

/* The answer to our outstanding IPMI request, checked; its completion code. */
static void ipmi_answer(rr_sol_session_t *s, uint8_t comp_code, uint64_t now)
{
    char text[200];
    s->waiting = false;
    switch (s->state) {
    case ST_SET_PRIVILEGE:
        if (comp_code != IPMI_COMP_CODE_COMMAND_SUCCESS)
            goto refused;
        s->state = ST_ACTIVATE;
        send_request(s, now);
        return;
    case ST_ACTIVATE:
        if (comp_code == IPMI_COMP_CODE_ACTIVATE_PAYLOAD_PAYLOAD_ALREADY_ACTIVE_ON_ANOTHER_SESSION
            && !s->stale_tried) {
            /* a killed worker's session: take the payload over, once */
            s->stale_tried = true;
            s->state = ST_DEACTIVATE_STALE;
            send_request(s, now);
        } else if (comp_code
                   == IPMI_COMP_CODE_ACTIVATE_PAYLOAD_PAYLOAD_ALREADY_ACTIVE_ON_ANOTHER_SESSION) {
            setup_fail(s, now, true, "SOL payload already active (on another session)");
        } else if (comp_code != IPMI_COMP_CODE_COMMAND_SUCCESS) {
            goto refused;
        } else {
            session_up(s, now);
        }
        return;
    case ST_DEACTIVATE_STALE:
        s->state = ST_ACTIVATE;         /* whatever it said: activation tells */
        send_request(s, now);
        return;
    case ST_DEACTIVATE:
        s->state = ST_CLOSE;
        s->deadline_ns = now + CLOSE_STEP_NS;
        send_request(s, now);
        return;
    case ST_CLOSE:
        s->state = ST_DONE;
        return;
    default:                            /* ST_SOL: keepalive answered */
        return;
    }
refused:
    if (ipmi_completion_code_strerror_r(request_cmd(s->state), IPMI_NET_FN_APP_RQ, comp_code, text,
                                        sizeof text) < 0)
        snprintf(text, sizeof text, "completion code 0x%02x", comp_code);
    setup_fail(s, now, false, "%s: %s", state_what[s->state], text);
}

static void ipmi_packet(rr_sol_session_t *s, const uint8_t *pkt, size_t len, uint64_t now)
{
    objects_t *o = &engine.o;
    fiid_obj_t obj = response_object(s->state);
    uint64_t rq_seq = 0, cmd = 0, comp_code = 0;
    if (!s->waiting || !obj || !session_packet_valid(s, pkt, len, obj))
        return;
    s->last_rx_ns = now;
    if (FIID_OBJ_GET(o->lan_msg_hdr_rs, "rq_seq", &rq_seq) < 0 || rq_seq != s->rq_seq
        || FIID_OBJ_GET(obj, "cmd", &cmd) < 0 || cmd != request_cmd(s->state)
        || ipmi_lan_check_checksum(o->lan_msg_hdr_rs, obj, o->lan_msg_trlr_rs) != 1
        || FIID_OBJ_GET(obj, "comp_code", &comp_code) < 0)
        return;                         /* the answer to an earlier try */
    ipmi_answer(s, (uint8_t) comp_code, now);
}

/* Hand output to the caller's socket; what it cannot take yet waits in OUT. */
static void deliver(rr_sol_session_t *s, const uint8_t *data, size_t len)
{
    ssize_t n = 0;
    if (s->engine_fd < 0 || !len)
        return;
    n = send(s->engine_fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0)
        n = 0;
    memcpy(s->out + s->out_len, data + n, len - (size_t) n);
    s->out_len += len - (size_t) n;
}

static uint64_t sol_field(const char *field)
{
    uint64_t val = 0;
    if (fiid_obj_get(engine.o.sol_rs, field, &val) != 1)
        return 0;
    return val;
}

/* The BMC acked (part of) our outstanding packet. */
static void sol_acked(rr_sol_session_t *s, uint8_t count, uint64_t now)
{
    size_t accepted = count < s->sent_len ? count : s->sent_len;
    memmove(s->in, s->in + accepted, s->in_len - accepted);
    s->in_len -= accepted;
    s->sol_waiting = false;
    if (!accepted)                      /* NACK: it cannot take characters now */
        s->sol_hold_ns = now + NACK_PAUSE_NS;
}

static void sol_packet(rr_sol_session_t *s, const uint8_t *pkt, size_t len, uint64_t now)
{
    uint8_t data[SOL_BUF];
    uint8_t ack_seq = 0, ack_count = 0;
    if (s->state != ST_SOL || !session_packet_valid(s, pkt, len, engine.o.sol_rs))
        return;
    s->last_rx_ns = now;
    if (sol_field("sol_deactivating")) {
        session_lost(s, "the BMC deactivated SOL (taken by another session?)");
        return;
    }
    uint8_t seq = (uint8_t) sol_field("packet_sequence_number");
    uint8_t acked = (uint8_t) sol_field("packet_ack_nack_sequence_number");
    if (acked && s->sol_waiting && acked == s->sol_seq)
        sol_acked(s, (uint8_t) sol_field("accepted_character_count"), now);
    /* Output while the caller has not read the last: not acked, so the BMC
     * sends it again later (backpressure, nothing lost). */
    if (seq && !s->out_len) {
        int n = fiid_obj_get_data(engine.o.sol_rs, "character_data", data, sizeof data);
        if (n < 0 || n > UINT8_MAX)
            return;
        /* a retransmission (same number) may carry more: deliver only what is new */
        size_t from = 0;
        if (seq == s->last_bmc_seq)
            from = (size_t) n >= s->last_bmc_count ? s->last_bmc_count : (size_t) n;
        deliver(s, data + from, (size_t) n - from);
        s->last_bmc_seq = seq;
        s->last_bmc_count = (uint8_t) n;
        ack_seq = seq;
        ack_count = (uint8_t) n;
    }
    send_sol(s, ack_seq, ack_count, now);
}

static void handle_packet(rr_sol_session_t *s, const uint8_t *pkt, size_t len, uint64_t now)
{
    uint8_t type;
    if (ipmi_is_ipmi_1_5_packet(pkt, (unsigned) len) != 0
        || ipmi_rmcpplus_calculate_payload_type(pkt, (unsigned) len, &type) < 0)
        return;
    if (IPMI_PAYLOAD_TYPE_SESSION_SETUP(type)) {
        if (!s->established)
            setup_packet(s, type, pkt, len, now);
    } else if (s->established && type == IPMI_PAYLOAD_TYPE_IPMI) {
        ipmi_packet(s, pkt, len, now);
    } else if (s->established && type == IPMI_PAYLOAD_TYPE_SOL) {
        sol_packet(s, pkt, len, now);
    }
}

static void receive_packets(rr_sol_session_t *s, uint64_t now)
{
    uint8_t pkt[PKT_MAX];
    while (s->state != ST_DONE) {
        ssize_t n = recv(s->udp, pkt, sizeof pkt, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ECONNREFUSED)
            continue;                   /* an ICMP error: the BMC is away; timers decide */
        if (n <= 0)
            return;
        handle_packet(s, pkt, (size_t) n, now);
    }
}

/* ---- the caller's socket ---- */

static void read_keystrokes(rr_sol_session_t *s, uint64_t now)
{
    while (s->engine_fd >= 0 && !s->caller_eof && s->in_len < sizeof s->in) {
        ssize_t n = read(s->engine_fd, s->in + s->in_len, sizeof s->in - s->in_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            s->caller_eof = true;       /* destroyed: the engine closes it */
        if (n <= 0)
            break;
        s->in_len += (size_t) n;
    }
    send_sol(s, 0, 0, now);
}

static void flush_output(rr_sol_session_t *s)
{
    if (s->engine_fd < 0 || !s->out_len)
        return;
    ssize_t n = send(s->engine_fd, s->out, s->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        s->out_len = 0;                 /* the caller is gone: nobody to wait for */
    if (n <= 0)
        return;
    memmove(s->out, s->out + n, s->out_len - (size_t) n);
    s->out_len -= (size_t) n;
}

/* ---- timers ---- */

static void sol_timers(rr_sol_session_t *s, uint64_t now)
{
    if (now - s->last_rx_ns >= s->timeout_ns) {
        session_lost(s, "no answer from the BMC (keepalive or SOL) for %llu ms",
                     (unsigned long long) (s->timeout_ns / 1000000ULL));
        return;
    }
    if (s->sol_waiting && now - s->sol_sent_ns >= RETRANSMIT_NS) {
        if (s->sol_tries >= s->sol_tries_max) {
            session_lost(s, "SOL packet not acknowledged after %d tries", s->sol_tries);
            return;
        }
        resend_sol(s, now);
    }
    send_sol(s, 0, 0, now);             /* characters held back by a NACK */
    /* Always, also while SOL data flows: stock ipmi_sim times a session out
     * 30 s after its last IPMI message, whatever the SOL traffic. */
    if (s->waiting && now - s->request_ns >= RETRANSMIT_NS) {
        send_request(s, now);
    } else if (!s->waiting && now >= s->keepalive_ns) {
        send_request(s, now);
        s->keepalive_ns = now + s->timeout_ns / 3;
    }
}

static void session_timers(rr_sol_session_t *s, uint64_t now)
{
    if (s->fresh) {
        s->fresh = false;
        send_request(s, now);
    }
    if (s->state < ST_SOL) {
        if (now >= s->deadline_ns)
            setup_fail(s, now, false, "%s: no answer within %llu ms", state_what[s->state],
                       (unsigned long long) (s->timeout_ns / 1000000ULL));
        else if (s->waiting && now - s->request_ns >= RETRANSMIT_NS)
            send_request(s, now);
    } else if (s->state == ST_SOL) {
        sol_timers(s, now);
    } else if (s->state == ST_DEACTIVATE || s->state == ST_CLOSE) {
        if (now >= s->deadline_ns && s->state == ST_DEACTIVATE) {
            s->state = ST_CLOSE;
            s->deadline_ns = now + CLOSE_STEP_NS;
            send_request(s, now);
        } else if (now >= s->deadline_ns) {
            s->state = ST_DONE;
        } else if (now - s->request_ns >= CLOSE_RETRANSMIT_NS) {
            send_request(s, now);
        }
    }
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* When session S next needs the engine without a packet arriving. */
static uint64_t session_due(const rr_sol_session_t *s)
{
    uint64_t due = UINT64_MAX;
    if (s->fresh)
        return 0;
    if (s->state < ST_SOL) {
        due = earliest(s->deadline_ns, s->waiting ? s->request_ns + RETRANSMIT_NS : UINT64_MAX);
    } else if (s->state == ST_SOL) {
        due = earliest(s->last_rx_ns + s->timeout_ns,
                       s->waiting ? s->request_ns + RETRANSMIT_NS : s->keepalive_ns);
        if (s->sol_waiting)
            due = earliest(due, s->sol_sent_ns + RETRANSMIT_NS);
        else if (s->in_len)
            due = earliest(due, s->sol_hold_ns);
    } else if (s->state != ST_DONE) {
        due = earliest(s->deadline_ns, s->request_ns + CLOSE_RETRANSMIT_NS);
    }
    return due;
}

/* ---- the engine loop ---- */

static void session_free(rr_sol_session_t *s)
{
    close_engine_fd(s);
    if (s->udp >= 0)
        close(s->udp);
    explicit_bzero(s, sizeof *s);       /* password, keys */
    free(s);
}

/* Under the lock: start closing what callers destroyed; free what is done. */
static void reap(uint64_t now)
{
    for (rr_sol_session_t **pp = &engine.sessions; *pp;) {
        rr_sol_session_t *s = *pp;
        if (s->detached && !s->close_started) {
            s->close_started = true;
            if (s->state == ST_SOL)
                begin_close(s, ST_DEACTIVATE, now);
        }
        if (s->detached && s->state == ST_DONE) {
            *pp = s->next;
            session_free(s);
            continue;
        }
        pp = &s->next;
    }
}

static int pfds_reserve(size_t count)
{
    if (count <= engine.pfds_cap)
        return 0;
    struct pollfd *grown = realloc(engine.pfds, count * 2 * sizeof *grown);
    if (!grown)
        return -1;
    engine.pfds = grown;
    engine.pfds_cap = count * 2;
    return 0;
}

/* Poll set: the wake eventfd, then per session its UDP socket and its end
 * of the console socket. Returns the poll timeout in ms. */
static int poll_setup(rr_sol_session_t *head, size_t count, uint64_t now)
{
    uint64_t due = now + (uint64_t) POLL_MAX_MS * 1000000ULL;
    engine.pfds[0] = (struct pollfd) { .fd = engine.wake, .events = POLLIN };
    rr_sol_session_t *s = head;
    for (size_t i = 0; i < count; i++, s = s->next) {
        short events = 0;
        if (s->state == ST_SOL && !s->caller_eof && s->in_len < sizeof s->in)
            events |= POLLIN;
        if (s->out_len)
            events |= POLLOUT;
        engine.pfds[1 + 2 * i] = (struct pollfd) { .fd = s->state == ST_DONE ? -1 : s->udp,
                                                   .events = POLLIN };
        engine.pfds[2 + 2 * i] = (struct pollfd) { .fd = events ? s->engine_fd : -1,
                                                   .events = events };
        due = earliest(due, session_due(s));
    }
    return due <= now ? 0 : (int) ((due - now + 999999ULL) / 1000000ULL);
}

static void session_process(rr_sol_session_t *s, const struct pollfd *udp,
                            const struct pollfd *console, uint64_t now)
{
    if (udp->revents)
        receive_packets(s, now);
    if (console->revents & POLLOUT)
        flush_output(s);
    if (s->state == ST_SOL && (console->revents & (POLLIN | POLLHUP | POLLERR)))
        read_keystrokes(s, now);
    if (s->state != ST_DONE)
        session_timers(s, now);
}

static void *engine_main(void *arg)
{
    (void) arg;
    for (;;) {
        uint64_t now = rr_mono_ns(), drained;
        size_t count = 0;
        pthread_mutex_lock(&engine.lock);
        reap(now);
        rr_sol_session_t *head = engine.sessions;
        for (rr_sol_session_t *s = head; s; s = s->next)
            count++;
        pthread_mutex_unlock(&engine.lock);
        /* Sessions are only unlinked here, and new ones go in front of
         * HEAD: the COUNT sessions from HEAD stay valid until the next reap. */
        if (pfds_reserve(1 + 2 * count) < 0) {
            struct timespec pause = { 0, 10000000L };
            nanosleep(&pause, NULL);
            continue;
        }
        int timeout_ms = poll_setup(head, count, now);
        if (poll(engine.pfds, 1 + 2 * count, timeout_ms) < 0 && errno != EINTR)
            continue;
        if (read(engine.wake, &drained, sizeof drained) < 0) {
            /* nothing to drain */
        }
        now = rr_mono_ns();
        rr_sol_session_t *s = head;
        for (size_t i = 0; i < count; i++, s = s->next)
            session_process(s, &engine.pfds[1 + 2 * i], &engine.pfds[2 + 2 * i], now);
    }
    return NULL;
}

/* ---- the caller's side ---- */

/* Resolve (here, never in the engine) and connect a non-blocking UDP socket. */
static int udp_connect(const char *host, uint16_t port, char *cause, size_t len)
{
    char service[8];
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *list = NULL;
    snprintf(service, sizeof service, "%u", (unsigned) port);
    size_t hl = strlen(host);
    char bare[256];
    /* "[::1]" as well as "::1" */
    if (host[0] == '[' && hl > 2 && hl < sizeof bare && host[hl - 1] == ']') {
        memcpy(bare, host + 1, hl - 2);
        bare[hl - 2] = '\0';
        host = bare;
    }
    int rc = getaddrinfo(host, service, &hints, &list);
    if (rc != 0) {
        snprintf(cause, len, "resolve: %s", gai_strerror(rc));
        return -1;
    }
    int fd = socket(list->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, list->ai_addr, list->ai_addrlen) < 0) {
        snprintf(cause, len, "udp socket: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(list);
    return fd;
}

/* Everything the engine needs before it sees the session. */
static int session_prepare(rr_sol_session_t *s, const char *host, uint16_t port,
                           const char *user, const char *password, char *cause, size_t len)
{
    int pair[2];
    if (strlen(user) >= sizeof s->user || strlen(password) >= sizeof s->password) {
        snprintf(cause, len, "user name over %d or password over %d characters",
                 IPMI_MAX_USER_NAME_LENGTH, IPMI_2_0_MAX_PASSWORD_LENGTH);
        return -1;
    }
    strcpy(s->user, user);
    strcpy(s->password, password);
    s->udp = udp_connect(host, port, cause, len);
    if (s->udp < 0)
        return -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0) {
        snprintf(cause, len, "console socket: %s", strerror(errno));
        return -1;
    }
    s->caller_fd = pair[0];
    s->engine_fd = pair[1];
    if (ipmi_get_random(s->rc_random, sizeof s->rc_random) < 0
        || ipmi_get_random(&s->rc_session_id, sizeof s->rc_session_id) < 0) {
        snprintf(cause, len, "no random numbers: %s", strerror(errno));
        return -1;
    }
    if (!s->rc_session_id)
        s->rc_session_id = 1;
    if (ipmi_check_session_sequence_number_2_0_init(&s->rx_seq_highest, &s->rx_seq_seen) < 0) {
        snprintf(cause, len, "session sequence window: %s", strerror(errno));
        return -1;
    }
    return 0;
}

rr_sol_session_t *rr_sol_session_open(const char *host, uint16_t port, const char *user,
                                      const char *password, uint32_t timeout_ms, char *err,
                                      size_t errlen, bool *in_use)
{
    char cause[300] = "";
    rr_sol_session_t *s = calloc(1, sizeof *s);
    if (in_use)
        *in_use = false;
    if (!s || !host || !user || !password) {
        snprintf(err, errlen, "bmc %s:%u: sol open: %s", host ? host : "(null)", (unsigned) port,
                 s ? "no host, user or password" : "out of memory");
        free(s);
        return NULL;
    }
    s->caller_fd = s->engine_fd = s->udp = -1;
    if (rr_ipmi_format_target(s->target, sizeof s->target, host, port) < 0) {
        snprintf(cause, sizeof cause, "host name too long");
        goto err_free;
    }
    if (session_prepare(s, host, port, user, password, cause, sizeof cause) < 0)
        goto err_free;
    pthread_once(&engine.once, engine_start);
    if (engine.init_errno) {
        snprintf(cause, sizeof cause, "sol engine: %s", strerror(engine.init_errno));
        goto err_free;
    }
    s->timeout_ns = (uint64_t) (timeout_ms < 1000 ? 1000 : timeout_ms) * 1000000ULL;
    /* a BMC blocked a while (ipmi_sim runs its power hook inline) is not lost */
    s->sol_tries_max = (int) (s->timeout_ns / 1000000000ULL) * SOL_TRIES_PER_S;
    if (s->sol_tries_max < SOL_TRIES_MIN)
        s->sol_tries_max = SOL_TRIES_MIN;
    s->deadline_ns = rr_mono_ns() + s->timeout_ns;
    s->state = ST_OPEN_SESSION;
    s->fresh = true;
    pthread_mutex_lock(&engine.lock);
    s->queued = true;
    s->next = engine.sessions;
    engine.sessions = s;
    pthread_mutex_unlock(&engine.lock);
    engine_wake();
    pthread_mutex_lock(&engine.lock);
    while (s->result == 0)
        pthread_cond_wait(&engine.changed, &engine.lock);
    int result = s->result;
    if (result < 0) {
        snprintf(err, errlen, "%s", s->error);
        if (in_use)
            *in_use = s->in_use;
    }
    pthread_mutex_unlock(&engine.lock);
    if (result < 0)
        rr_sol_session_destroy(&s);
    return s;
err_free:
    snprintf(err, errlen, "bmc %s: sol open: %s", s->target, cause);
    rr_sol_session_destroy(&s);
    return NULL;
}

int rr_sol_session_fd(const rr_sol_session_t *self)
{
    return self->caller_fd;
}

const char *rr_sol_session_target(const rr_sol_session_t *self)
{
    return self->target;
}

void rr_sol_session_error(rr_sol_session_t *self, char *buf, size_t len)
{
    pthread_mutex_lock(&engine.lock);
    snprintf(buf, len, "%s", self->error);
    pthread_mutex_unlock(&engine.lock);
}

void rr_sol_session_destroy(rr_sol_session_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rr_sol_session_t *s = *self_p;
    *self_p = NULL;
    if (s->caller_fd >= 0)
        close(s->caller_fd);
    s->caller_fd = -1;
    pthread_mutex_lock(&engine.lock);
    bool queued = s->queued;
    s->detached = true;
    pthread_mutex_unlock(&engine.lock);
    if (queued)
        engine_wake();                  /* the engine closes and frees it */
    else
        session_free(s);
}
