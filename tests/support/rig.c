/* rig.c: runs tests/rig/rig.py for a test and reads what its nodes did.
 *
 * rig.py is started in its own process group with a pipe on its stdin whose
 * write end only this process holds (O_CLOEXEC): when the test exits or
 * crashes, the pipe closes and rig.py stops every process it started. stdout
 * carries READY and the answers to commands; stderr goes to DIR/rig.log. */
#include "rig.h"
#include "testtime.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wordexp.h>

#include "tmpdir.h"

#ifndef RR_SOURCE_DIR_DEFAULT
#define RR_SOURCE_DIR_DEFAULT "."
#endif
#ifndef RR_BINARY_DIR_DEFAULT
#define RR_BINARY_DIR_DEFAULT "/tmp"
#endif

#define RIG_READY_TIMEOUT_MS 30000
#define RIG_COMMAND_TIMEOUT_MS 60000   /* bmc start may try up to 5 ports */
#define RIG_STOP_TIMEOUT_MS 15000
#define RIG_LINE_MAX 8192

struct _rr_rig_t {
    pid_t pid;                  /* rig.py, leader of its own process group */
    int in_fd;                  /* its stdin: closing it stops the rig */
    int out_fd;                 /* its stdout: READY, command answers */
    char line[RIG_LINE_MAX];    /* partial stdout line */
    size_t line_len;
    char dir[4096];
    char password_file[4096];
    size_t size;
    rr_rig_node_t *nodes;
};

static void rig_error(const char *dir, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "rig %s: ", dir ? dir : "(not started)");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc < 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* $RR_BINARY_DIR/test-tmp/<program>-<pid>-<n>, new (never a previous run's). */
static int make_state_dir(char *out, size_t len)
{
    static unsigned counter;
    const char *base = getenv("RR_BINARY_DIR");
    char parent[4096];

    snprintf(parent, sizeof(parent), "%s/test-tmp", base && *base ? base : RR_BINARY_DIR_DEFAULT);
    if (mkdir_p(parent) < 0) {
        rig_error(parent, "mkdir: %s", strerror(errno));
        return -1;
    }
    for (int tries = 0; tries < 1000; tries++) {
        int n = snprintf(out, len, "%s/%s-%d-%u", parent, program_invocation_short_name,
                         (int)getpid(), ++counter);
        if (n < 0 || (size_t)n >= len)
            return -1;
        if (mkdir(out, 0755) == 0)
            return 0;
        if (errno != EEXIST) {
            rig_error(out, "mkdir: %s", strerror(errno));
            return -1;
        }
    }
    return -1;
}

/* Print the end of DIR/rig.log, where rig.py says why it failed. */
static void show_rig_log(const char *dir)
{
    char path[4200];
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/rig.log", dir);
    char *text = tmpdir_slurp(path, &len);
    if (text) {
        fprintf(stderr, "---- %s (end) ----\n%s----\n", path, len > 3000 ? text + len - 3000 : text);
        free(text);
    }
}

/* Child side of rig_spawn: never returns. */
static void rig_exec(char *const argv[], int in_fd, int out_fd, int log_fd, pid_t parent)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(126);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(log_fd, 2) < 0)
        _exit(126);
    execvp(argv[0], argv);
    dprintf(2, "rig: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* argv: python3 rig.py --nodes N --dir DIR OPTIONS...; run it with pipes. */
static int rig_spawn(rr_rig_t *self, size_t nodes, const char *options)
{
    const char *src = getenv("RR_SOURCE_DIR");
    const char *python = getenv("RR_PYTHON");
    char script[4200], count[32], logpath[4200];
    int in[2] = {-1, -1}, out[2] = {-1, -1}, log_fd = -1, rc = -1;
    wordexp_t extra = {0};
    char **argv = NULL;

    snprintf(script, sizeof(script), "%s/tests/rig/rig.py", src && *src ? src : RR_SOURCE_DIR_DEFAULT);
    snprintf(count, sizeof(count), "%zu", nodes);
    snprintf(logpath, sizeof(logpath), "%s/rig.log", self->dir);
    if (wordexp(options ? options : "", &extra, WRDE_NOCMD | WRDE_UNDEF) != 0) {
        rig_error(self->dir, "cannot parse options \"%s\"", options);
        return -1;
    }
    argv = calloc(extra.we_wordc + 8, sizeof(*argv));
    if (!argv)
        goto out_words;
    char *fixed[] = {(char *)(python && *python ? python : "python3"), script, "--nodes", count,
                     "--dir", self->dir};
    memcpy(argv, fixed, sizeof(fixed));
    for (size_t i = 0; i < extra.we_wordc; i++)
        argv[6 + i] = extra.we_wordv[i];
    log_fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0 || pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
        rig_error(self->dir, "pipes/log: %s", strerror(errno));
        goto out_fds;
    }
    pid_t parent = getpid();
    self->pid = fork();
    if (self->pid < 0) {
        rig_error(self->dir, "fork: %s", strerror(errno));
        goto out_fds;
    }
    if (self->pid == 0)
        rig_exec(argv, in[0], out[1], log_fd, parent);
    setpgid(self->pid, self->pid);   /* also here: no race with a kill of the group */
    self->in_fd = in[1];
    self->out_fd = out[0];
    in[1] = out[0] = -1;
    rc = 0;
out_fds:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
    }
    if (log_fd >= 0)
        close(log_fd);
    free(argv);
out_words:
    wordfree(&extra);
    return rc;
}

/* Next line rig.py printed on stdout (without '\n') into LINE; -1 on
 * timeout or EOF. */
static int rig_read_line(rr_rig_t *self, char *line, size_t len, int timeout_ms)
{
    int64_t deadline = testtime_now_ms() + timeout_ms;
    for (;;) {
        char *nl = memchr(self->line, '\n', self->line_len);
        if (nl) {
            size_t n = (size_t)(nl - self->line);
            snprintf(line, len, "%.*s", (int)n, self->line);
            memmove(self->line, nl + 1, self->line_len - n - 1);
            self->line_len -= n + 1;
            return 0;
        }
        if (self->line_len == sizeof(self->line))
            self->line_len = 0;   /* absurdly long line: drop it */
        int64_t left = deadline - testtime_now_ms();
        struct pollfd pfd = {self->out_fd, POLLIN, 0};
        if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
            rig_error(self->dir, "no answer from rig.py within %d ms", timeout_ms);
            return -1;
        }
        ssize_t n = read(self->out_fd, self->line + self->line_len,
                         sizeof(self->line) - self->line_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rig_error(self->dir, "rig.py exited (see rig.log)");
            return -1;
        }
        self->line_len += (size_t)n;
    }
}

static int copy_string(char *dst, size_t len, json_t *obj, const char *key)
{
    const char *val = json_string_value(json_object_get(obj, key));
    if (!val || strlen(val) >= len)
        return -1;
    memcpy(dst, val, strlen(val) + 1);
    return 0;
}

static int parse_node(rr_rig_node_t *node, json_t *obj)
{
    json_int_t port = json_integer_value(json_object_get(obj, "port"));
    if (copy_string(node->name, sizeof(node->name), obj, "name") < 0
        || copy_string(node->host, sizeof(node->host), obj, "host") < 0
        || copy_string(node->user, sizeof(node->user), obj, "user") < 0
        || copy_string(node->password, sizeof(node->password), obj, "password") < 0
        || copy_string(node->mac, sizeof(node->mac), obj, "mac") < 0
        || copy_string(node->dir, sizeof(node->dir), obj, "dir") < 0 || port <= 0 || port > 65535)
        return -1;
    node->port = (uint16_t)port;
    return 0;
}

static int parse_rig_json(rr_rig_t *self, const char *path, size_t nodes)
{
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err), *list;
    int rc = -1;

    if (!doc) {
        rig_error(self->dir, "%s:%d: %s", path, err.line, err.text);
        return -1;
    }
    list = json_object_get(doc, "nodes");
    if (json_array_size(list) != nodes
        || copy_string(self->password_file, sizeof(self->password_file), doc, "password_file") < 0) {
        rig_error(self->dir, "%s: expected %zu nodes and password_file", path, nodes);
        goto out;
    }
    self->nodes = calloc(nodes, sizeof(*self->nodes));
    if (!self->nodes)
        goto out;
    for (size_t i = 0; i < nodes; i++) {
        if (parse_node(&self->nodes[i], json_array_get(list, i)) < 0) {
            rig_error(self->dir, "%s: node %zu: missing or bad field", path, i);
            goto out;
        }
    }
    self->size = nodes;
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

static int wait_ready(rr_rig_t *self, size_t nodes)
{
    char line[RIG_LINE_MAX];
    int64_t deadline = testtime_now_ms() + RIG_READY_TIMEOUT_MS;

    for (;;) {
        int left = (int)(deadline - testtime_now_ms());
        if (left <= 0 || rig_read_line(self, line, sizeof(line), left) < 0) {
            rig_error(self->dir, "not READY within %d s", RIG_READY_TIMEOUT_MS / 1000);
            return -1;
        }
        if (strncmp(line, "READY ", 6) == 0)
            return parse_rig_json(self, line + 6, nodes);
        if (strncmp(line, "FAILED", 6) == 0) {
            rig_error(self->dir, "%s", line);
            return -1;
        }
    }
}

rr_rig_t *rr_rig_start(size_t nodes, const char *options)
{
    rr_rig_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->in_fd = self->out_fd = -1;
    /* A write to a rig that died must be an error, not the death of the test. */
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    if (make_state_dir(self->dir, sizeof(self->dir)) < 0)
        goto fail;
    if (rig_spawn(self, nodes, options) < 0)
        goto fail;
    if (wait_ready(self, nodes) < 0) {
        show_rig_log(self->dir);
        goto fail;
    }
    return self;
fail:
    rr_rig_stop(&self);
    return NULL;
}

/* A stopped rig's files go, unless RR_KEEP_RIG is set. A test that fails an
 * assertion never reaches rr_rig_stop, so its files stay for the post-mortem. */
static void remove_state_dir(const char *dir, bool stopped)
{
    const char *keep = getenv("RR_KEEP_RIG");
    if (!stopped || (keep && *keep && strcmp(keep, "0") != 0) || !*dir)
        return;
    if (tmpdir_remove_tree(dir) < 0)
        rig_error(dir, "cannot remove: %s", strerror(errno));
}

void rr_rig_stop(rr_rig_t **self_p)
{
    rr_rig_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    if (self->in_fd >= 0)
        close(self->in_fd);       /* EOF: rig.py stops everything it started */
    bool stopped = self->pid > 0 && self->size > 0;   /* a rig that never got READY stays */
    if (self->pid > 0) {
        int64_t deadline = testtime_now_ms() + RIG_STOP_TIMEOUT_MS;
        pid_t got = 0;
        while ((got = waitpid(self->pid, NULL, WNOHANG)) == 0 && testtime_now_ms() < deadline)
            testtime_nap_ms(10);
        if (got == 0) {
            rig_error(self->dir, "rig.py pid %d did not stop within %d s: SIGKILL",
                      (int)self->pid, RIG_STOP_TIMEOUT_MS / 1000);
            kill(-self->pid, SIGKILL);   /* its children die with it (PDEATHSIG) */
            waitpid(self->pid, NULL, 0);
            stopped = false;
        }
    }
    remove_state_dir(self->dir, stopped);
    if (self->out_fd >= 0)
        close(self->out_fd);
    free(self->nodes);
    free(self);
    *self_p = NULL;
}

size_t rr_rig_size(const rr_rig_t *self)
{
    return self ? self->size : 0;
}

const rr_rig_node_t *rr_rig_node(const rr_rig_t *self, size_t index)
{
    return self && index < self->size ? &self->nodes[index] : NULL;
}

const char *rr_rig_dir(const rr_rig_t *self)
{
    return self ? self->dir : NULL;
}

const char *rr_rig_password_file(const rr_rig_t *self)
{
    return self ? self->password_file : NULL;
}

char *rr_rig_node_file(const rr_rig_t *self, size_t index, const char *name, size_t *len)
{
    char path[4200];
    const rr_rig_node_t *node = rr_rig_node(self, index);
    if (!node) {
        rig_error(self ? self->dir : NULL, "no node %zu", index);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/%s", node->dir, name);
    char *text = tmpdir_slurp(path, len);
    if (!text)
        rig_error(self->dir, "%s: %s", path, strerror(errno));
    return text;
}

char *rr_rig_console_out(const rr_rig_t *self, size_t index, size_t *len)
{
    return rr_rig_node_file(self, index, "console.out", len);
}

char *rr_rig_hook_log(const rr_rig_t *self, size_t index, size_t *len)
{
    return rr_rig_node_file(self, index, "hook.log", len);
}

/* One console.in.tsv line: "<ns>\t<hex byte>\t<sol|sock>\t<ok|drop|off>". */
static int parse_rx_line(const char *line, rr_rig_rx_t *rx)
{
    unsigned long long ns;
    unsigned byte;
    char source[8], fate[8];
    if (sscanf(line, "%llu\t%2x\t%7s\t%7s", &ns, &byte, source, fate) != 4)
        return -1;
    rx->ns = ns;
    rx->byte = (uint8_t)byte;
    rx->from_sol = strcmp(source, "sol") == 0;
    rx->dropped = strcmp(fate, "ok") != 0;
    return 0;
}

rr_rig_rx_t *rr_rig_console_in(const rr_rig_t *self, size_t index, size_t *count)
{
    size_t len = 0, lines = 0, n = 0;
    *count = 0;
    char *text = rr_rig_node_file(self, index, "console.in.tsv", &len);
    if (!text)
        return NULL;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    rr_rig_rx_t *rx = lines ? calloc(lines, sizeof(*rx)) : NULL;
    for (char *line = text, *nl; rx && (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        if (parse_rx_line(line, &rx[n]) == 0)
            n++;
    }
    free(text);
    *count = n;
    return rx;
}

/* Poll file READ of node INDEX every 20 ms until MATCH(text, len, ARG) or
 * TIMEOUT_MS; false at once when the file cannot be read. */
static bool wait_for_text(const rr_rig_t *self, size_t index,
                          char *(*read)(const rr_rig_t *, size_t, size_t *),
                          bool (*match)(const char *, size_t, const void *), const void *arg,
                          int timeout_ms)
{
    int64_t deadline = testtime_now_ms() + timeout_ms;
    do {
        size_t len = 0;
        char *text = read(self, index, &len);
        bool found = text && match(text, len, arg);
        free(text);
        if (found)
            return true;
        if (!text)
            return false;
        testtime_nap_ms(20);
    } while (testtime_now_ms() < deadline);
    return false;
}

typedef struct {
    size_t from;
    const char *needle;
} console_find_t;

static bool console_has(const char *text, size_t len, const void *arg)
{
    const console_find_t *find = arg;
    return len >= find->from
           && memmem(text + find->from, len - find->from, find->needle, strlen(find->needle));
}

bool rr_rig_wait_console(const rr_rig_t *self, size_t index, size_t from, const char *needle,
                         int timeout_ms)
{
    console_find_t find = { from, needle };
    return wait_for_text(self, index, rr_rig_console_out, console_has, &find, timeout_ms);
}

static bool hook_log_has(const char *text, size_t len, const void *arg)
{
    const char *args = arg;
    (void)len;
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n'), *tab = strchr(line, '\t');
        size_t end = nl ? (size_t)(nl - line) : strlen(line);
        if (tab && tab < line + end && (size_t)(line + end - tab - 1) == strlen(args)
            && memcmp(tab + 1, args, strlen(args)) == 0)
            return true;
        line += end + (nl ? 1 : 0);
    }
    return false;
}

bool rr_rig_wait_hook(const rr_rig_t *self, size_t index, const char *args, int timeout_ms)
{
    return wait_for_text(self, index, rr_rig_hook_log, hook_log_has, args, timeout_ms);
}

int rr_rig_power(const rr_rig_t *self, size_t index)
{
    char *text = rr_rig_node_file(self, index, "power", NULL);
    int power = text && (text[0] == '0' || text[0] == '1') ? text[0] - '0' : -1;
    free(text);
    return power;
}

/* Send one command line to rig.py; its answer ("OK ..."), malloc'd, or NULL. */
static char *rig_command(rr_rig_t *self, const char *fmt, ...)
{
    char cmd[512], line[RIG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd) - 1, fmt, ap);
    va_end(ap);
    if (!self || n < 0 || (size_t)n >= sizeof(cmd) - 1)
        return NULL;
    strcat(cmd, "\n");
    if (write(self->in_fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd)) {
        rig_error(self->dir, "command %s: %s", fmt, strerror(errno));
        return NULL;
    }
    if (rig_read_line(self, line, sizeof(line), RIG_COMMAND_TIMEOUT_MS) < 0)
        return NULL;
    if (strncmp(line, "OK", 2) != 0) {
        rig_error(self->dir, "command \"%.*s\": %s", n, cmd, line);
        return NULL;
    }
    return strdup(line);
}

static int rig_node_command(rr_rig_t *self, const char *what, size_t index, const char *action)
{
    if (!rr_rig_node(self, index) || !action || strpbrk(action, " \n")) {
        rig_error(self ? self->dir : NULL, "%s: bad node %zu or action", what, index);
        return -1;
    }
    char *answer = rig_command(self, "%s %zu %s", what, index, action);
    free(answer);
    return answer ? 0 : -1;
}

int rr_rig_bmc(rr_rig_t *self, size_t index, const char *action)
{
    return rig_node_command(self, "bmc", index, action);
}

int rr_rig_node_power(rr_rig_t *self, size_t index, const char *action)
{
    return rig_node_command(self, "power", index, action);
}

int rr_rig_console_connect(const rr_rig_t *self, size_t index)
{
    const rr_rig_node_t *node = rr_rig_node(self, index);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int dirfd = -1, fd = -1;

    if (!node)
        return -1;
    /* sun_path holds 107 bytes: reach a long dir through /proc/self/fd. */
    dirfd = open(node->dir, O_PATH | O_CLOEXEC);
    if (dirfd < 0)
        goto fail;
    snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/console.sock", dirfd);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        goto fail;
    close(dirfd);
    return fd;
fail:
    rig_error(self->dir, "%s/console.sock: %s", node->dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (dirfd >= 0)
        close(dirfd);
    return -1;
}

ssize_t rr_rig_pids(rr_rig_t *self, pid_t *pids, size_t max)
{
    char *answer = rig_command(self, "pids");
    ssize_t count = 0;
    if (!answer)
        return -1;
    char *save = NULL;
    strtok_r(answer, " ", &save);   /* "OK" */
    for (char *tok; (tok = strtok_r(NULL, " ", &save));) {
        if ((size_t)count < max)
            pids[count] = (pid_t)strtol(tok, NULL, 10);
        count++;
    }
    free(answer);
    return count;
}
