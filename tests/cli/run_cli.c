/* run_cli.c: run the rackrun binary with captured output (see run_cli.h). */
#include "run_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *rr_cli_binary(void)
{
    static char path[4096];
    const char *dir = getenv("RR_BINARY_DIR");
    snprintf(path, sizeof path, "%s/cli/rackrun", dir ? dir : ".");
    return path;
}

static char *slurp(FILE *file)
{
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);
    rewind(file);
    while (buf && (n = fread(buf + len, 1, cap - len - 1, file)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    if (buf)
        buf[len] = '\0';
    return buf;
}

static void run_child(const char *const *args, int out_fd, int err_fd)
{
    const char *argv[64] = { "rackrun" };
    size_t n = 1;
    for (; args[n - 1] && n < 63; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    execv(rr_cli_binary(), (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", rr_cli_binary(), strerror(errno));
    _exit(127);
}

/* Wait for PID at most TIMEOUT_MS; kill it after that. Returns its exit code or -1. */
static int wait_bounded(pid_t pid, int timeout_ms)
{
    int status = 0;
    struct timespec tick = { 0, 5 * 1000 * 1000 };
    for (int waited = 0; waited <= timeout_ms; waited += 5) {
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (done < 0)
            return -1;
        nanosleep(&tick, NULL);
    }
    fprintf(stderr, "rackrun did not finish within %d ms: killed\n", timeout_ms);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

int rr_cli_run(const char *const *args, int timeout_ms, rr_cli_run_t *run)
{
    memset(run, 0, sizeof *run);
    FILE *out = tmpfile(), *err = tmpfile();
    if (!out || !err)
        goto fail;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        goto fail;
    if (pid == 0)
        run_child(args, fileno(out), fileno(err));
    run->exit_code = wait_bounded(pid, timeout_ms);
    run->out = slurp(out);
    run->err = slurp(err);
    fclose(out);
    fclose(err);
    /* echo what the CLI said, so a failing test shows it */
    fprintf(stderr, "--- rackrun exit %d\n--- stdout:\n%s--- stderr:\n%s---\n", run->exit_code,
            run->out ? run->out : "", run->err ? run->err : "");
    return run->out && run->err ? 0 : -1;
fail:
    if (out)
        fclose(out);
    if (err)
        fclose(err);
    return -1;
}

void rr_cli_run_free(rr_cli_run_t *run)
{
    free(run->out);
    free(run->err);
    run->out = run->err = NULL;
}
