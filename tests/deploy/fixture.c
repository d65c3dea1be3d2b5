/* fixture.c: see fixture.h. */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SLOTS 8
#define OUTPUT_MAX (4u << 20)   /* more output than this from a deploy tool is a bug */

static char sources[SLOTS][PATH_MAX];

const char *deploy_source(int slot, const char *rel)
{
    const char *root = getenv("RR_SOURCE_DIR");
    if (snprintf(sources[slot % SLOTS], PATH_MAX, "%s/%s", root ? root : ".", rel) >= PATH_MAX)
        abort();
    return sources[slot % SLOTS];
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Read the child's output until EOF or the deadline; false on timeout or overflow. */
static bool collect(int fd, long deadline, char **buf, size_t *len)
{
    size_t cap = 4096;
    *buf = malloc(cap);
    *len = 0;
    while (*buf) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        long left = deadline - now_ms();
        int ready = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            return false;
        if (*len + 1 >= cap) {
            char *bigger = cap >= OUTPUT_MAX ? NULL : realloc(*buf, cap * 2);
            if (!bigger)
                return false;
            *buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(fd, *buf + *len, cap - *len - 1);
        if (n == 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
        *len += n > 0 ? (size_t)n : 0;
    }
    return false;
}

int deploy_run(char *const argv[], int timeout_ms, deploy_run_t *run)
{
    int pipefd[2] = { -1, -1 }, rc = -1, status = 0;
    posix_spawn_file_actions_t actions;
    pid_t pid;
    size_t len = 0;
    run->exit_code = -1;
    run->out = NULL;
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -1;
    if (posix_spawn_file_actions_init(&actions) != 0)
        goto close_pipe;
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], 2);
    if (posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ) != 0)
        goto destroy_actions;
    close(pipefd[1]);
    pipefd[1] = -1;
    bool finished = collect(pipefd[0], now_ms() + timeout_ms, &run->out, &len);
    if (!finished) {
        fprintf(stderr, "deploy test: %s: no end within %d ms: killed\n", argv[0], timeout_ms);
        kill(pid, SIGKILL);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (run->out)
        run->out[len] = '\0';
    if (finished && WIFEXITED(status))
        run->exit_code = WEXITSTATUS(status);
    rc = run->out ? 0 : -1;
destroy_actions:
    posix_spawn_file_actions_destroy(&actions);
close_pipe:
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    close(pipefd[0]);
    return rc;
}

int deploy_rack_gen(const char *const *args, deploy_run_t *run)
{
    char *argv[64] = { "python3", (char *)deploy_source(7, "deploy/rack-gen") };
    size_t n = 2;
    for (; args[n - 2] && n < 63; n++)
        argv[n] = (char *)args[n - 2];
    argv[n] = NULL;
    return deploy_run(argv, 30000, run);
}

void deploy_run_free(deploy_run_t *run)
{
    free(run->out);
    run->out = NULL;
}

const char *deploy_find_tool(const char *name)
{
    static char found[PATH_MAX];
    const char *env = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin", env ? env : "/usr/bin:/bin");
    for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        if (snprintf(found, sizeof found, "%s/%s", dir, name) < (int)sizeof found &&
            access(found, X_OK) == 0)
            return found;
    }
    return NULL;
}
