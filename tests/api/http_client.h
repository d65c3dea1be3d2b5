/* http_client.h: HTTP requests from a test whose main thread runs the
 * master's zloop (the store and rr_http live on that thread). Each client is
 * a zactor doing blocking libcurl requests in its own thread; waiting for a
 * reply runs the loop, so the server answers meanwhile. */
#ifndef RR_TEST_HTTP_CLIENT_H
#define RR_TEST_HTTP_CLIENT_H

#include <czmq.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int status;             /* HTTP status, 0 = transport error */
    char *type;             /* Content-Type ("" when none) */
    char *www_authenticate; /* WWW-Authenticate ("" when none) */
    char *body;
    json_t *json;           /* the body parsed, NULL when not JSON */
    uint64_t elapsed_ms;
} http_reply_t;

typedef struct _http_client_t http_client_t;

/* A client of 127.0.0.1:PORT whose replies LOOP reads. */
http_client_t *http_client_new(zloop_t *loop, int port);
void http_client_destroy(http_client_t **self_p);

/* Start METHOD PATH (sent as is, no normalisation); HOST (may be NULL)
 * replaces the Host header. */
void http_client_send(http_client_t *self, const char *method, const char *path,
                      const char *host);

/* As http_client_send, with AUTHORIZATION (NULL = none) as the Authorization header. */
void http_client_send_auth(http_client_t *self, const char *method, const char *path,
                           const char *host, const char *authorization);

/* Start METHOD PATH with BODY (LEN bytes) sent as Content-Type TYPE (NULL:
 * no body of its own, as http_client_send_auth); AUTHORIZATION may be NULL. */
void http_client_send_body(http_client_t *self, const char *method, const char *path,
                           const char *authorization, const char *type, const void *body,
                           size_t len);

/* Run the loop until the reply to the last send arrives (0) or TIMEOUT_MS passes (-1). */
int http_client_wait(http_client_t *self, http_reply_t *reply, uint64_t timeout_ms);

/* Send and wait (10 s). */
int http_client_get(http_client_t *self, const char *path, http_reply_t *reply);

void http_reply_clear(http_reply_t *reply);

/* Run LOOP until DONE(ARG) is true (checked every 10 ms): 0, or -1 after TIMEOUT_MS. */
int run_loop_until(zloop_t *loop, bool (*done)(void *arg), void *arg, uint64_t timeout_ms);

#endif
