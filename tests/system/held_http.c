/* held_http.c: a one-shot HTTP server whose answer waits for the test. */
#include "held_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HELD_MAX_MS 60000   /* the thread never waits longer than this for anything */

struct _rr_held_http_t {
    int listen_fd;
    int wake[2];            /* pipe: one byte releases (or stops) the thread */
    atomic_bool requested;
    pthread_t thread;
    bool started;
    char url[64];
    char *body;
};

/* Wait for POLLIN on FD or the wake pipe; true when FD is readable first. */
static bool wait_readable(rr_held_http_t *self, int fd)
{
    struct pollfd pfd[2] = { { fd, POLLIN, 0 }, { self->wake[0], POLLIN, 0 } };
    int n = poll(pfd, fd >= 0 ? 2 : 1, HELD_MAX_MS);
    return n > 0 && (pfd[0].revents & POLLIN) && !(pfd[1].revents & POLLIN);
}

/* Read the request up to its blank line (the headers are all we need). */
static bool read_request(rr_held_http_t *self, int conn)
{
    char buf[4096];
    size_t used = 0;
    while (used < sizeof buf - 1 && wait_readable(self, conn)) {
        ssize_t n = read(conn, buf + used, sizeof buf - 1 - used);
        if (n <= 0)
            return false;
        used += (size_t)n;
        buf[used] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return true;
    }
    return false;
}

static void *serve(void *arg)
{
    rr_held_http_t *self = arg;
    if (!wait_readable(self, self->listen_fd))
        return NULL;
    int conn = accept(self->listen_fd, NULL, NULL);
    if (conn < 0)
        return NULL;
    if (read_request(self, conn)) {
        atomic_store(&self->requested, true);
        struct pollfd pfd = { self->wake[0], POLLIN, 0 };
        if (poll(&pfd, 1, HELD_MAX_MS) > 0) {
            char head[160];
            int n = snprintf(head, sizeof head, "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\n"
                             "Connection: close\r\n\r\n", strlen(self->body));
            if (write(conn, head, (size_t)n) != n
                || write(conn, self->body, strlen(self->body)) < 0)
                perror("held_http: write");
        }
    }
    close(conn);
    return NULL;
}

rr_held_http_t *rr_held_http_new(const char *body)
{
    rr_held_http_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->listen_fd = -1;
    self->wake[0] = self->wake[1] = -1;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    self->body = strdup(body);
    self->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!self->body || self->listen_fd < 0 || pipe2(self->wake, O_CLOEXEC) < 0
        || bind(self->listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0
        || listen(self->listen_fd, 4) < 0
        || getsockname(self->listen_fd, (struct sockaddr *)&addr, &len) < 0) {
        perror("held_http");
        rr_held_http_destroy(&self);
        return NULL;
    }
    snprintf(self->url, sizeof self->url, "http://127.0.0.1:%u/held", ntohs(addr.sin_port));
    if (pthread_create(&self->thread, NULL, serve, self) != 0) {
        rr_held_http_destroy(&self);
        return NULL;
    }
    self->started = true;
    return self;
}

void rr_held_http_destroy(rr_held_http_t **self_p)
{
    rr_held_http_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    if (self->started) {
        rr_held_http_release(self);
        pthread_join(self->thread, NULL);
    }
    if (self->listen_fd >= 0)
        close(self->listen_fd);
    for (int i = 0; i < 2; i++)
        if (self->wake[i] >= 0)
            close(self->wake[i]);
    free(self->body);
    free(self);
    *self_p = NULL;
}

const char *rr_held_http_url(const rr_held_http_t *self)
{
    return self->url;
}

bool rr_held_http_wait_request(rr_held_http_t *self, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (atomic_load(&self->requested))
            return true;
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return false;
}

void rr_held_http_release(rr_held_http_t *self)
{
    char one = 1;
    if (write(self->wake[1], &one, 1) != 1)
        perror("held_http: release");
}
