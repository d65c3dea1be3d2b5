/* rig_hook.c: rr-rig-hook, a C stand-in for tests/rig/chassisctl, the
 * chassis_control hook ipmi_sim runs (via popen) for every power command and
 * every power status read of a rig node.
 *
 * Why: the Python hook costs ~80 ms of CPU per call on the 2-core bench
 * machine (interpreter start-up), so a rack of 48 emulated BMCs spent its
 * time starting Python, and every IPMI client compared in bench_rack_power
 * measured that instead of itself. Real BMCs answer chassis control in
 * milliseconds. This program speaks the same protocol to the same rig
 * (`rig.py --hook`): connect to RIGDIR/ctl.sock, send "NODE ARGS...\n",
 * read the answer until EOF; "OK\n<body>" prints the body and exits 0,
 * anything else goes to stderr with exit 1 (the BMC then fails the request).
 *
 * usage: rr-rig-hook RIGDIR NODE get|set ARGS... */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TRIES 200       /* EAGAIN (backlog full): retry every 10 ms, 2 s in all */
#define REPLY_MAX     4096

/* Connect to RIGDIR/ctl.sock; long paths go through /proc/self/fd (sun_path is 108 bytes). */
static int s_connect(const char *rig_dir)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int n = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/ctl.sock", rig_dir);
    if (n < 0 || (size_t) n >= sizeof addr.sun_path) {
        int dirfd = open(rig_dir, O_PATH | O_CLOEXEC);
        if (dirfd < 0)
            return -1;
        snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/ctl.sock", dirfd);
    }
    for (int tries = 0; tries < CONNECT_TRIES; tries++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *) &addr, sizeof addr) == 0)
            return fd;
        int saved = errno;
        close(fd);
        if (saved != EAGAIN)
            return -1;
        nanosleep(&(struct timespec) { .tv_nsec = 10 * 1000 * 1000 }, NULL);
    }
    errno = EAGAIN;
    return -1;
}

static int s_send_request(int fd, int argc, char **argv)
{
    char request[1024] = "";
    size_t used = 0;
    for (int i = 2; i < argc; i++) {
        int n = snprintf(request + used, sizeof request - used, "%s%s", i > 2 ? " " : "",
                         argv[i]);
        if (n < 0 || (size_t) n >= sizeof request - used - 1)
            return -1;                      /* keep room for the newline */
        used += (size_t) n;
    }
    request[used++] = '\n';
    for (size_t sent = 0; sent < used;) {
        ssize_t n = write(fd, request + sent, used - sent);
        if (n < 0 && errno != EINTR)
            return -1;
        sent += n > 0 ? (size_t) n : 0;
    }
    return 0;
}

static ssize_t s_read_reply(int fd, char *reply, size_t len)
{
    size_t used = 0;
    while (used < len - 1) {
        ssize_t n = read(fd, reply + used, len - 1 - used);
        if (n == 0)
            break;
        if (n < 0 && errno != EINTR)
            return -1;
        used += n > 0 ? (size_t) n : 0;
    }
    reply[used] = '\0';
    return (ssize_t) used;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: rr-rig-hook RIGDIR NODE get|set ARGS...\n");
        return 1;
    }
    char reply[REPLY_MAX];
    int fd = s_connect(argv[1]);
    if (fd < 0 || s_send_request(fd, argc, argv) != 0 || s_read_reply(fd, reply, sizeof reply) < 0) {
        fprintf(stderr, "rr-rig-hook %s %s: rig at %s: %s\n", argv[2], argv[3], argv[1],
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    close(fd);
    char *body = strchr(reply, '\n');
    if (body)
        *body++ = '\0';
    if (strcmp(reply, "OK") != 0) {
        fprintf(stderr, "rr-rig-hook %s %s: %s\n", argv[2], argv[3],
                reply[0] ? reply : "no answer from rig");
        return 1;
    }
    fputs(body ? body : "", stdout);
    return 0;
}
