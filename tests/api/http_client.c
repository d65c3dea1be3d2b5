/* http_client.c: see http_client.h. */
#include "http_client.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

struct _http_client_t {
    zactor_t *actor;
    zloop_t *loop;
    int port;
    bool got;
    http_reply_t reply;
};

/* ---- the actor (its own thread) ---- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    zchunk_extend(arg, data, size * n);
    return size * n;
}

/* The reply's WWW-Authenticate header ("" when none). */
static const char *www_authenticate(CURL *curl)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(curl, "WWW-Authenticate", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return "";
    return h->value;
}

/* One request: TYPE "" = no body of our own (a POST sends a small fixed one). */
typedef struct {
    const char *method, *url, *host, *auth, *type;
    zchunk_t *body;
} request_t;

static void perform(zsock_t *pipe, CURL *curl, const request_t *q)
{
    const char *method = q->method, *host = q->host, *auth = q->auth;
    zchunk_t *body = zchunk_new(NULL, 0);
    struct curl_slist *headers = NULL;
    char line[256];
    if (host && *host) {
        snprintf(line, sizeof line, "Host: %s", host);
        headers = curl_slist_append(headers, line);
    }
    if (auth && *auth) {
        snprintf(line, sizeof line, "Authorization: %s", auth);
        headers = curl_slist_append(headers, line);
    }
    if (*q->type) {
        snprintf(line, sizeof line, "Content-Type: %s", q->type);
        headers = curl_slist_append(headers, line);
    }
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, q->url);
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    if (*q->type) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) zchunk_size(q->body));
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, zchunk_data(q->body));
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "POST") == 0)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "job_name: x\n");
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    int64_t start = zclock_mono();
    long status = 0;
    char *type = NULL;
    if (curl_easy_perform(curl) == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    }
    zchunk_extend(body, "", 1);         /* NUL-terminate */
    zsock_send(pipe, "issc8", (int) status, type ? type : "", status ? www_authenticate(curl) : "",
               body, (uint64_t) (zclock_mono() - start));
    curl_slist_free_all(headers);
    zchunk_destroy(&body);
}

static void client_actor(zsock_t *pipe, void *args)
{
    CURL *curl = curl_easy_init();
    zsock_signal(pipe, 0);
    while (curl) {
        char *command = NULL, *method = NULL, *url = NULL, *host = NULL, *auth = NULL;
        char *type = NULL;
        zchunk_t *body = NULL;
        if (zsock_recv(pipe, "ssssssc", &command, &method, &url, &host, &auth, &type, &body)
            != 0)
            break;
        bool term = !command || !method || !url || !host || !auth || !type || !body
                    || strcmp(command, "$TERM") == 0;
        if (!term)
            perform(pipe, curl, &(request_t) { method, url, host, auth, type, body });
        zstr_free(&command);
        zstr_free(&method);
        zstr_free(&url);
        zstr_free(&host);
        zstr_free(&auth);
        zstr_free(&type);
        zchunk_destroy(&body);
        if (term)
            break;
    }
    curl_easy_cleanup(curl);
}

/* ---- the main thread's side ---- */

static int on_reply(zloop_t *loop, zsock_t *sock, void *arg)
{
    http_client_t *self = arg;
    int status = 0;
    char *type = NULL, *authenticate = NULL;
    zchunk_t *body = NULL;
    uint64_t elapsed = 0;
    if (zsock_recv(sock, "issc8", &status, &type, &authenticate, &body, &elapsed) != 0)
        return -1;
    http_reply_clear(&self->reply);
    self->reply.status = status;
    self->reply.type = type;
    self->reply.www_authenticate = authenticate;
    self->reply.body = strdup((const char *) zchunk_data(body));
    self->reply.json = json_loads(self->reply.body, 0, NULL);
    self->reply.elapsed_ms = elapsed;
    zchunk_destroy(&body);
    self->got = true;
    return -1;                          /* stop the loop: a waiter looks */
}

http_client_t *http_client_new(zloop_t *loop, int port)
{
    http_client_t *self = calloc(1, sizeof *self);
    self->actor = zactor_new(client_actor, NULL);
    self->loop = loop;
    self->port = port;
    zloop_reader(loop, zactor_sock(self->actor), on_reply, self);
    return self;
}

void http_client_destroy(http_client_t **self_p)
{
    http_client_t *self = *self_p;
    if (!self)
        return;
    zloop_reader_end(self->loop, zactor_sock(self->actor));
    /* $TERM in the shape the actor expects */
    zchunk_t *none = zchunk_new(NULL, 0);
    zsock_send(self->actor, "ssssssc", "$TERM", "", "", "", "", "", none);
    zchunk_destroy(&none);
    zactor_destroy(&self->actor);
    http_reply_clear(&self->reply);
    free(self);
    *self_p = NULL;
}

void http_client_send(http_client_t *self, const char *method, const char *path,
                      const char *host)
{
    http_client_send_auth(self, method, path, host, NULL);
}

static void send_request(http_client_t *self, const char *method, const char *path,
                         const char *host, const char *authorization, const char *type,
                         const void *body, size_t len)
{
    char url[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", self->port, path);
    self->got = false;
    zchunk_t *chunk = zchunk_new(body, body ? len : 0);
    zsock_send(self->actor, "ssssssc", "REQ", method, url, host ? host : "",
               authorization ? authorization : "", type ? type : "", chunk);
    zchunk_destroy(&chunk);
}

void http_client_send_auth(http_client_t *self, const char *method, const char *path,
                           const char *host, const char *authorization)
{
    send_request(self, method, path, host, authorization, NULL, NULL, 0);
}

void http_client_send_body(http_client_t *self, const char *method, const char *path,
                           const char *authorization, const char *type, const void *body,
                           size_t len)
{
    send_request(self, method, path, NULL, authorization, type, body, len);
}

static int on_guard(zloop_t *loop, int timer_id, void *arg)
{
    return -1;
}

int http_client_wait(http_client_t *self, http_reply_t *reply, uint64_t timeout_ms)
{
    int64_t deadline = zclock_mono() + (int64_t) timeout_ms;
    while (!self->got && zclock_mono() < deadline) {
        int guard = zloop_timer(self->loop, (size_t) (deadline - zclock_mono()) + 1, 1, on_guard,
                                NULL);
        zloop_start(self->loop);
        zloop_timer_end(self->loop, guard);
    }
    if (!self->got)
        return -1;
    *reply = self->reply;
    memset(&self->reply, 0, sizeof self->reply);
    self->got = false;
    return 0;
}

int http_client_get(http_client_t *self, const char *path, http_reply_t *reply)
{
    http_client_send(self, "GET", path, NULL);
    return http_client_wait(self, reply, 10000);
}

void http_reply_clear(http_reply_t *reply)
{
    free(reply->type);
    free(reply->www_authenticate);
    free(reply->body);
    json_decref(reply->json);
    memset(reply, 0, sizeof *reply);
}

typedef struct {
    bool (*done)(void *arg);
    void *arg;
} until_t;

static int on_check(zloop_t *loop, int timer_id, void *arg)
{
    until_t *until = arg;
    return until->done(until->arg) ? -1 : 0;
}

int run_loop_until(zloop_t *loop, bool (*done)(void *arg), void *arg, uint64_t timeout_ms)
{
    until_t until = { done, arg };
    int64_t deadline = zclock_mono() + (int64_t) timeout_ms;
    while (!done(arg) && zclock_mono() < deadline) {
        int check = zloop_timer(loop, 10, 0, on_check, &until);
        int guard = zloop_timer(loop, (size_t) (deadline - zclock_mono()) + 1, 1, on_guard, NULL);
        zloop_start(loop);
        zloop_timer_end(loop, check);
        zloop_timer_end(loop, guard);
    }
    return done(arg) ? 0 : -1;
}
