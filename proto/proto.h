/* proto.h: rackrun's wire protocol, the one definition of every message.
 *
 * A message is one ZMQ frame holding one msgpack map (after the ROUTER
 * identity frame on the master side). "t" names the type, "v" the protocol
 * version. Every message and field is declared once, in messages.def; the
 * structs below and the codec's tables are generated from it.
 *
 * Decoding never trusts the bytes: before msgpack-c sees them, a bounded
 * pre-walk checks every declared length/count against the bytes left and
 * the nesting depth (msgpack-c would otherwise allocate whatever a 5-byte
 * header declares). Then each key is checked for type; missing required
 * keys, wrong types and out-of-range versions are rejected with an error
 * naming the key. Unknown keys are ignored (forward compatibility).
 */
#ifndef RACKRUN_PROTO_H
#define RACKRUN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION      1u   /* the version this build speaks */
#define PROTO_VERSION_MIN  1u   /* the oldest version this build accepts */
#define PROTO_MAX_MSG      (1024u * 1024u) /* application limit per message, bytes */
#define PROTO_MAX_DEPTH    8u   /* maximum nesting of maps/arrays */
#define PROTO_MAX_ITEMS    65536u /* maximum elements in any one array or map */
#define PROTO_LOG_CHUNK    (64u * 1024u) /* largest log chunk a sender should put in one event */
#define PROTO_ARTIFACT_CHUNK (256u * 1024u) /* largest data of one ARTIFACT_CHUNK / ARTIFACT_DATA */
/* ZMQ_MAXMSGSIZE: a last guard only, well above PROTO_MAX_MSG, because ZMQ
 * drops the connection silently when it trips. */
#define PROTO_ZMQ_MAXMSGSIZE (4 * PROTO_MAX_MSG)

/* ---- generated structs ---- */

#define PROTO_MEMBER_U64(n, st)  uint64_t n;
#define PROTO_MEMBER_U32(n, st)  uint32_t n;
#define PROTO_MEMBER_I64(n, st)  int64_t n;
#define PROTO_MEMBER_BOOL(n, st) bool n;
#define PROTO_MEMBER_STR(n, st)  char *n;
#define PROTO_MEMBER_BIN(n, st)  uint8_t *n; size_t n##_len;
#define PROTO_MEMBER_STRS(n, st) char **n; size_t n##_count;
#define PROTO_MEMBER_LIST(n, st) struct proto_##st *n; size_t n##_count;
#define PROTO_MEMBER_OBJ(n, st)  struct proto_##st *n;
#define PROTO_MEMBER(kind, n, key, req, st) PROTO_MEMBER_##kind(n, st)

/* PROTO_TYPE(name): the typedef of struct proto_<name>, proto_<name>_t, except
 * for the ERROR message, whose struct is proto_error_msg_t because
 * proto_error_t is the codec's error report (below). */
#define PROTO_TYPE_error_ , proto_error_msg_t
#define PROTO_SECOND_(a, b, ...) b
#define PROTO_PICK_(...) PROTO_SECOND_(__VA_ARGS__)
#define PROTO_TYPE(name) PROTO_PICK_(PROTO_TYPE_##name##_, proto_##name##_t, ~)

#define PROTO_STRUCT(name, FIELDS) \
    typedef struct proto_##name { FIELDS(PROTO_MEMBER) } PROTO_TYPE(name);
#define PROTO_MESSAGE(ENUM, name, tag, FIELDS) PROTO_STRUCT(name, FIELDS)
#include "messages.def"
#undef PROTO_STRUCT
#undef PROTO_MESSAGE

typedef enum {
    PROTO_MSG_NONE = 0,
#define PROTO_STRUCT(name, FIELDS)
#define PROTO_MESSAGE(ENUM, name, tag, FIELDS) PROTO_MSG_##ENUM,
#include "messages.def"
#undef PROTO_STRUCT
#undef PROTO_MESSAGE
    PROTO_MSG_COUNT
} proto_type_t;

/* A decoded message: type plus the matching union member. */
typedef struct {
    proto_type_t type;
    uint32_t version;           /* "v" as received (PROTO_VERSION when encoding) */
    union {
#define PROTO_STRUCT(name, FIELDS)
#define PROTO_MESSAGE(ENUM, name, tag, FIELDS) PROTO_TYPE(name) name;
#include "messages.def"
#undef PROTO_STRUCT
#undef PROTO_MESSAGE
    } u;
} proto_msg_t;

/* ---- errors ---- */

typedef enum {
    PROTO_OK = 0,
    PROTO_E_TOO_BIG,       /* message larger than PROTO_MAX_MSG */
    PROTO_E_TRUNCATED,     /* bytes end inside an object */
    PROTO_E_LENGTH,        /* a declared length/count exceeds the bytes left or PROTO_MAX_ITEMS */
    PROTO_E_TOO_DEEP,      /* nesting deeper than PROTO_MAX_DEPTH */
    PROTO_E_TRAILING,      /* bytes after the top-level object */
    PROTO_E_MALFORMED,     /* not msgpack, or top level not a map, or a non-string key */
    PROTO_E_UNKNOWN_TYPE,  /* "t" names no message */
    PROTO_E_VERSION,       /* "v" outside [PROTO_VERSION_MIN, PROTO_VERSION] */
    PROTO_E_MISSING,       /* a required key is absent */
    PROTO_E_TYPE,          /* a key holds the wrong type (or a string with NUL) */
    PROTO_E_RANGE,         /* an integer does not fit its field */
    PROTO_E_NOMEM,
} proto_status_t;

typedef struct {
    proto_status_t status;
    char key[32];   /* offending key, "" when none; nested keys as "acts.steps.run" */
    char text[192]; /* human-readable, names the message type and key */
} proto_error_t;

/* Short stable name of a status ("too_big", "missing", ...): the ERROR code. */
const char *proto_status_name(proto_status_t status);

/* ---- messages ---- */

/* The "t" tag of a type ("hello"), or NULL for an invalid type. */
const char *proto_type_name(proto_type_t type);

/* The type whose tag is NAME, or PROTO_MSG_NONE. */
proto_type_t proto_type_from_name(const char *name);

/* Encode MSG into a new malloc'd buffer (*OUT, *OUT_LEN). Refuses (PROTO_E_TOO_BIG)
 * a message over PROTO_MAX_MSG and one whose required STR/OBJ is NULL
 * (PROTO_E_MISSING), filling ERR. Returns 0 or -1. */
int proto_encode(const proto_msg_t *msg, uint8_t **out, size_t *out_len, proto_error_t *err);

/* Decode BUF into MSG (zeroed first). Returns 0, or -1 with ERR filled and MSG
 * left empty. The caller frees a decoded MSG with proto_msg_free. */
int proto_decode(const void *buf, size_t len, proto_msg_t *msg, proto_error_t *err);

/* Free everything a decoded (or hand-built with malloc'd members) MSG owns,
 * and zero it. Safe on a zeroed MSG. */
void proto_msg_free(proto_msg_t *msg);

/* Deep copy of a nested jobdef (for keeping one past the message). NULL on ENOMEM. */
proto_jobdef_t *proto_jobdef_dup(const proto_jobdef_t *def);
void proto_jobdef_destroy(proto_jobdef_t **def);

/* Encode/decode a bare jobdef map (the normalised job stored by the master). */
int proto_jobdef_encode(const proto_jobdef_t *def, uint8_t **out, size_t *out_len, proto_error_t *err);
int proto_jobdef_decode(const void *buf, size_t len, proto_jobdef_t **def, proto_error_t *err);

/* Fill an ERROR message (strings are copied; free with proto_msg_free). */
int proto_error_msg(proto_msg_t *msg, const char *code, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- ZMQ transport (czmq) ---- */

typedef struct _zsock_t zsock_t;
typedef struct _zframe_t zframe_t;

/* Send MSG on SOCK, prefixed by ROUTING_ID when not NULL (ROUTER side; not
 * consumed). Never blocks: returns -1 with errno EAGAIN when the peer's queue
 * is full. Encoding errors (too big...) return -1 with ERR filled. */
int proto_send(zsock_t *sock, zframe_t *routing_id, const proto_msg_t *msg, proto_error_t *err);

/* Receive one message from SOCK (ROUTER side: *ROUTING_ID receives the
 * identity frame, caller destroys it; pass NULL on DEALER). Returns 0, -1 with
 * ERR filled for a bad message (the routing id is still returned so the caller
 * can answer ERROR), or -2 when nothing could be read (interrupted). */
int proto_recv(zsock_t *sock, zframe_t **routing_id, proto_msg_t *msg, proto_error_t *err);

/* Apply rackrun's socket options (ZMQ_MAXMSGSIZE guard, linger, no blocking sends). */
void proto_socket_setup(zsock_t *sock);

/* Connection metadata PROPERTY ("User-Id": the key the ZAP handler named,
 * "Peer-Address") of the last message proto_recv received on this thread,
 * or NULL. Read it from the message frame, not the routing id: libzmq 4.3
 * leaves the metadata off a ROUTER's routing-id frame when a poll prefetched
 * the message, which is how every zloop reads. */
const char *proto_recv_meta(const char *property);

#endif
