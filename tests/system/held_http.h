/* held_http.h: a one-shot HTTP server on 127.0.0.1 that holds its answer
 * until the test releases it, so a test can keep a job provably inside its
 * deploy action (the worker downloading an artifact) while it breaks
 * something else. Runs in its own thread; the answer is 200 with BODY. */
#ifndef RACKRUN_TESTS_HELD_HTTP_H
#define RACKRUN_TESTS_HELD_HTTP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct _rr_held_http_t rr_held_http_t;

/* Listen on 127.0.0.1 (any free port) and serve BODY to the first request
 * once released. NULL on failure. */
rr_held_http_t *rr_held_http_new(const char *body);

/* Stop the thread (answering nothing if never released), free, NULL *SELF_P. */
void rr_held_http_destroy(rr_held_http_t **self_p);

/* The URL to fetch ("http://127.0.0.1:PORT/held"). */
const char *rr_held_http_url(const rr_held_http_t *self);

/* Wait until a request arrived (its headers read); false after TIMEOUT_MS. */
bool rr_held_http_wait_request(rr_held_http_t *self, int timeout_ms);

/* Let the answer go. */
void rr_held_http_release(rr_held_http_t *self);

#endif
