/* cluster.c: rackrun-master, rackrun-workers and the rackrun CLI as real
 * processes for the end-to-end tests (see cluster.h). */
#include "cluster.h"
#include "testtime.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tmpdir.h"

#define MAX_DAEMONS     8
#define MAX_RIGS        4
#define DIR_LEN         1024    /* the cluster dir; paths in it fit PATH_LEN */
#define PATH_LEN        2048
#define STOP_TIMEOUT_MS 15000   /* ASan builds take a while to exit */
#define CLI_TIMEOUT_MS  20000
#define POLL_MS         20
#define LOG_TAIL        3000

typedef struct {
    char name[64];      /* "master" or the worker's name */
    char log[PATH_LEN];
    pid_t pid;          /* 0 once reaped */
    int status;         /* wait status once reaped */
} daemon_t;

struct _rr_cluster_t {
    char dir[DIR_LEN];
    char cli[PATH_LEN], worker_bin[PATH_LEN];
    char master_key[PATH_LEN], client_key[PATH_LEN];
    char worker_endpoint[256], client_endpoint[256];
    char artifacts[3][PATH_LEN];
    char sha256[3][65];
    daemon_t daemons[MAX_DAEMONS];
    size_t daemon_count;
    struct {
        rr_rig_t *rig;
        char tftp_root[PATH_LEN];
    } rigs[MAX_RIGS];
    size_t rig_count;
    sqlite3 *db;
    size_t tests;       /* tests sharing the cluster */
    size_t passed;      /* how many of them reached their end */
    unsigned files;     /* submitted job files written */
};

static const char *const artifact_roles[3] = { "kernel", "initrd", "dtb" };
static int stop_failures;   /* rr_cluster_stop calls that failed, for main's exit code */

/* ---- small helpers ---- */

static void say(const rr_cluster_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const rr_cluster_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cluster %s: ", self ? self->dir : "(none)");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int mkdir_p(const char *path)
{
    char copy[PATH_LEN];
    snprintf(copy, sizeof copy, "%s", path);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(copy, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* ---- processes ---- */

/* Child side: stdin IN (NULL: /dev/null), stdout+stderr to LOG (or OUT/ERR), exec. */
static void child_exec(char *const argv[], const char *in_path, const char *out,
                       const char *err, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
    int o = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int e = err ? open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644) : o;
    if (in < 0 || o < 0 || e < 0 || dup2(in, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
        _exit(126);
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], argv);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static pid_t spawn_in(char *const argv[], const char *in, const char *out, const char *err)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        child_exec(argv, in, out, err, parent);
    return pid;
}

static pid_t spawn(char *const argv[], const char *out, const char *err)
{
    return spawn_in(argv, NULL, out, err);
}

static void print_tail(const char *title, const char *path)
{
    size_t len = 0;
    char *text = tmpdir_slurp(path, &len);
    if (!text)
        return;
    fprintf(stderr, "---- %s: %s (end) ----\n%s\n----\n", title, path,
            len > LOG_TAIL ? text + len - LOG_TAIL : text);
    free(text);
}

void rr_cluster_dump(rr_cluster_t *self)
{
    for (size_t i = 0; self && i < self->daemon_count; i++)
        print_tail(self->daemons[i].name, self->daemons[i].log);
}

/* Reap daemon D if it exited; true when it is still running. */
static bool daemon_alive(daemon_t *d)
{
    if (!d->pid)
        return false;
    if (waitpid(d->pid, &d->status, WNOHANG) == d->pid) {
        d->pid = 0;
        return false;
    }
    return true;
}

/* Every daemon still runs; else say which died and how. */
static bool all_alive(rr_cluster_t *self)
{
    for (size_t i = 0; i < self->daemon_count; i++) {
        daemon_t *d = &self->daemons[i];
        if (!daemon_alive(d)) {
            say(self, "%s exited unexpectedly (status 0x%x)", d->name, d->status);
            print_tail(d->name, d->log);
            return false;
        }
    }
    return true;
}

static daemon_t *daemon_start(rr_cluster_t *self, const char *name, char *const argv[])
{
    if (self->daemon_count == MAX_DAEMONS)
        return NULL;
    daemon_t *d = &self->daemons[self->daemon_count];
    char log[PATH_LEN];
    snprintf(log, sizeof log, "%s/%s.log", self->dir, name);
    snprintf(d->name, sizeof d->name, "%s", name);
    memcpy(d->log, log, sizeof log);
    d->pid = spawn(argv, d->log, NULL);
    if (d->pid < 0) {
        say(self, "%s: fork: %s", name, strerror(errno));
        return NULL;
    }
    self->daemon_count++;
    return d;
}

/* SIGTERM, wait, SIGKILL: 0 when it exited 0 by itself. */
static int daemon_stop(rr_cluster_t *self, daemon_t *d)
{
    bool was_running = daemon_alive(d);
    if (was_running) {
        kill(d->pid, SIGTERM);
        int64_t deadline = testtime_now_ms() + STOP_TIMEOUT_MS;
        while (daemon_alive(d) && testtime_now_ms() < deadline)
            testtime_nap_ms(POLL_MS);
        if (d->pid) {
            say(self, "%s (pid %d) ignored SIGTERM for %d s: SIGKILL", d->name, (int)d->pid,
                STOP_TIMEOUT_MS / 1000);
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &d->status, 0);
            d->pid = 0;
            print_tail(d->name, d->log);
            return -1;
        }
    }
    if (!was_running || !WIFEXITED(d->status) || WEXITSTATUS(d->status) != 0) {
        say(self, "%s %s (status 0x%x)", d->name, was_running ? "stopped badly" : "had died",
            d->status);
        print_tail(d->name, d->log);
        return -1;
    }
    return 0;
}

int rr_cluster_stop(rr_cluster_t **self_p)
{
    rr_cluster_t *self = self_p ? *self_p : NULL;
    if (!self)
        return 0;
    int rc = 0;
    for (size_t i = self->daemon_count; i-- > 0;)   /* workers first, the master last */
        rc |= daemon_stop(self, &self->daemons[i]);
    if (self->db)
        sqlite3_close(self->db);
    const char *keep = getenv("RR_KEEP_RIG");
    bool ok = self->passed == self->tests && !rc;
    bool remove_dir = ok && !(keep && *keep && strcmp(keep, "0"));
    if (!ok) {
        say(self, "kept for the post-mortem");
        setenv("RR_KEEP_RIG", "1", 1);     /* and the rigs' directories */
    }
    for (size_t i = self->rig_count; i-- > 0;)
        rr_rig_stop(&self->rigs[i].rig);
    if (remove_dir)
        tmpdir_remove_tree(self->dir);
    free(self);
    *self_p = NULL;
    stop_failures += rc != 0;
    return rc ? -1 : 0;
}

int rr_cluster_stop_failures(void)
{
    return stop_failures;
}

void rr_cluster_passed(rr_cluster_t *self)
{
    if (self)
        self->passed++;
}

const char *rr_cluster_dir(const rr_cluster_t *self)
{
    return self->dir;
}

const char *rr_cluster_mkdir(rr_cluster_t *self, const char *name)
{
    static char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/%s", self->dir, name);
    if (mkdir_p(path) < 0) {
        say(self, "mkdir %s: %s", path, strerror(errno));
        return NULL;
    }
    return path;
}

/* ---- the CLI ---- */

/* At most this many CLI arguments after the connection options. */
#define CLI_ARGS_MAX 20

/* ARG and the NULL-terminated arguments after it, into ARGS: how many. */
static size_t collect_args(const char *arg, va_list ap, const char *args[CLI_ARGS_MAX])
{
    size_t n = 0;
    for (const char *a = arg; a && n < CLI_ARGS_MAX; a = va_arg(ap, const char *))
        args[n++] = a;
    return n;
}

/* Start the CLI with the connection options (client key KEY) and ARGS, stdin
 * from IN_PATH (NULL: /dev/null), output into the cluster dir's NAME.out/.err. */
static pid_t spawn_cli(rr_cluster_t *self, const char *key, const char *in_path,
                       const char *name, const char *const *args, size_t nargs)
{
    char out_path[PATH_LEN], err_path[PATH_LEN];
    char *argv[CLI_ARGS_MAX + 10];
    size_t n = 0;
    const char *fixed[] = { self->cli, "--master", self->client_endpoint, "--key", key,
                            "--master-key", self->master_key, "--timeout", "5s" };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[n++] = (char *)fixed[i];
    for (size_t i = 0; i < nargs; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    snprintf(out_path, sizeof out_path, "%s/%s.out", self->dir, name);
    snprintf(err_path, sizeof err_path, "%s/%s.err", self->dir, name);
    unlink(out_path);
    return spawn_in(argv, in_path, out_path, err_path);
}

/* The exit code of PID once it exits, or -1 when it was killed (or not done within
 * TIMEOUT_MS: then SIGKILLed and reaped, *TIMED_OUT set). */
static int wait_exit(pid_t pid, int timeout_ms, bool *timed_out)
{
    int status = 0;
    int64_t deadline = testtime_now_ms() + timeout_ms;
    *timed_out = false;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (testtime_now_ms() > deadline) {
            *timed_out = true;
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        testtime_nap_ms(5);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int rr_cluster_cli_wait(pid_t pid, int timeout_ms)
{
    bool timed_out;
    return wait_exit(pid, timeout_ms, &timed_out);
}

static int run_cli(rr_cluster_t *self, char **out, char **err, const char *const *args,
                   size_t nargs)
{
    char path[PATH_LEN];
    pid_t pid = spawn_cli(self, self->client_key, NULL, "cli", args, nargs);
    if (pid < 0)
        return -1;
    bool timed_out;
    int code = wait_exit(pid, CLI_TIMEOUT_MS, &timed_out);
    if (timed_out) {
        say(self, "rackrun %s: no exit within %d s", args[0], CLI_TIMEOUT_MS / 1000);
        return -1;
    }
    snprintf(path, sizeof path, "%s/cli.out", self->dir);
    if (out)
        *out = tmpdir_slurp(path, NULL);
    snprintf(path, sizeof path, "%s/cli.err", self->dir);
    if (err)
        *err = tmpdir_slurp(path, NULL);
    return code;
}

int rr_cluster_cli(rr_cluster_t *self, char **out, char **err, const char *arg, ...)
{
    const char *args[CLI_ARGS_MAX];
    va_list ap;
    va_start(ap, arg);
    size_t n = collect_args(arg, ap, args);
    va_end(ap);
    return run_cli(self, out, err, args, n);
}

pid_t rr_cluster_cli_start(rr_cluster_t *self, const char *name, const char *arg, ...)
{
    const char *args[CLI_ARGS_MAX];
    va_list ap;
    va_start(ap, arg);
    size_t n = collect_args(arg, ap, args);
    va_end(ap);
    pid_t pid = spawn_cli(self, self->client_key, NULL, name, args, n);
    if (pid < 0)
        say(self, "rackrun %s: cannot start: %s", arg, strerror(errno));
    return pid;
}

int rr_cluster_submit(rr_cluster_t *self, const char *yaml, uint64_t *job, char **err)
{
    char path[PATH_LEN], *out = NULL;
    snprintf(path, sizeof path, "%s/jobs/job-%u.yaml", self->dir, ++self->files);
    if (tmpdir_write_text(path, yaml, 0644) < 0) {
        say(self, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = rr_cluster_cli(self, &out, err, "submit", path, NULL);
    if (rc == 0 && job) {
        char *end = NULL;
        *job = out ? strtoull(out, &end, 10) : 0;
        if (!*job || !end || *end != '\n') {
            say(self, "rackrun submit printed '%s', not a job id", out ? out : "(nothing)");
            rc = -1;
        }
    }
    free(out);
    return rc;
}

/* ---- setup ---- */

/* keys/NAME and keys/NAME_secret; ROLE (a client's: read, submit, admin) or NULL. */
static int keygen(rr_cluster_t *self, const char *name, const char *role)
{
    char keys[PATH_LEN];
    snprintf(keys, sizeof keys, "%s/keys", self->dir);
    const char *args[] = { "keygen", keys, name, "--role", role };
    char *err = NULL;
    int rc = run_cli(self, NULL, &err, args, role ? 5 : 3);
    if (rc != 0)
        say(self, "rackrun keygen %s: exit %d: %s", name, rc, err ? err : "");
    free(err);
    return rc == 0 ? 0 : -1;
}

/* Copy keys/NAME (the public certificate) into allow-list directory DIR. */
static int allow_key(rr_cluster_t *self, const char *dir, const char *name)
{
    char from[PATH_LEN], to[PATH_LEN];
    snprintf(from, sizeof from, "%s/keys/%s", self->dir, name);
    snprintf(to, sizeof to, "%s/%s/%s", self->dir, dir, name);
    char *cert = tmpdir_slurp(from, NULL);
    int rc = cert ? tmpdir_write_text(to, cert, 0644) : -1;
    free(cert);
    if (rc < 0)
        say(self, "allow %s in %s: %s", name, dir, strerror(errno));
    return rc;
}

static int write_artifacts(rr_cluster_t *self)
{
    for (int i = 0; i < 3; i++) {
        char text[128];
        unsigned char digest[crypto_hash_sha256_BYTES];
        snprintf(text, sizeof text, "rackrun system test %s (not a real one)\n", artifact_roles[i]);
        snprintf(self->artifacts[i], PATH_LEN, "%s/artifacts/%s", self->dir, artifact_roles[i]);
        if (tmpdir_write_text(self->artifacts[i], text, 0644) < 0)
            return -1;
        crypto_hash_sha256(digest, (const unsigned char *)text, strlen(text));
        sodium_bin2hex(self->sha256[i], sizeof self->sha256[i], digest, sizeof digest);
    }
    return 0;
}

/* "... workers on EP1, clients on EP2, db ..." in the master's log. */
static bool parse_endpoints(rr_cluster_t *self, const char *log)
{
    const char *w = strstr(log, "workers on "), *c = strstr(log, ", clients on ");
    if (!w || !c || c < w)
        return false;
    w += strlen("workers on ");
    const char *c_end = strstr(c + 13, ", db ");
    if (!c_end)
        return false;
    snprintf(self->worker_endpoint, sizeof self->worker_endpoint, "%.*s", (int)(c - w), w);
    snprintf(self->client_endpoint, sizeof self->client_endpoint, "%.*s",
             (int)(c_end - c - 13), c + 13);
    return true;
}

static int master_start(rr_cluster_t *self, const char *bin)
{
    char config[PATH_LEN], text[8 * PATH_LEN], db[PATH_LEN];
    snprintf(config, sizeof config, "%s/master.yaml", self->dir);
    snprintf(db, sizeof db, "%s/master.db", self->dir);
    snprintf(text, sizeof text,
             "db: \"%s\"\n"
             "worker_endpoint: \"tcp://127.0.0.1:*\"\n"
             "client_endpoint: \"tcp://127.0.0.1:*\"\n"
             "http_listen: \"off\"\n"
             "secret_key: \"%s/keys/master_secret\"\n"
             "worker_keys_dir: \"%s/workers.d\"\n"
             "client_keys_dir: \"%s/clients.d\"\n"
             "heartbeat_interval: 250ms\n"
             "heartbeat_timeout: 3s\n"
             "worker_grace: 10s\n",
             db, self->dir, self->dir, self->dir);
    if (tmpdir_write_text(config, text, 0644) < 0)
        return -1;
    char *argv[] = { (char *)bin, "--config", config, NULL };
    daemon_t *d = daemon_start(self, "master", argv);
    if (!d)
        return -1;
    int64_t deadline = testtime_now_ms() + 10000;
    while (testtime_now_ms() < deadline && all_alive(self)) {
        char *log = tmpdir_slurp(d->log, NULL);
        bool up = log && parse_endpoints(self, log);
        free(log);
        if (up)
            return sqlite3_open_v2(db, &self->db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK
                   && sqlite3_busy_timeout(self->db, 5000) == SQLITE_OK ? 0 : -1;
        testtime_nap_ms(POLL_MS);
    }
    say(self, "the master did not report its endpoints within 10 s");
    print_tail(d->name, d->log);
    return -1;
}

static int make_dirs(rr_cluster_t *self)
{
    const char *base = getenv("RR_BINARY_DIR");
    static unsigned counter;
    snprintf(self->dir, sizeof self->dir, "%s/test-tmp/%s-%d-c%u", base && *base ? base : "/tmp",
             program_invocation_short_name, (int)getpid(), ++counter);
    const char *subs[] = { "", "/keys", "/workers.d", "/clients.d", "/artifacts", "/jobs" };
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char path[PATH_LEN];
        snprintf(path, sizeof path, "%s%s", self->dir, subs[i]);
        if (mkdir_p(path) < 0) {
            say(self, "mkdir %s: %s", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static const char *need_env(const char *name)
{
    const char *value = getenv(name);
    if (!value || !*value || access(value, X_OK) != 0) {
        fprintf(stderr, "cluster: $%s must name an executable (CMake sets it)\n", name);
        return NULL;
    }
    return value;
}

rr_cluster_t *rr_cluster_new(size_t tests)
{
    const char *master = need_env("RR_MASTER_BIN"), *worker = need_env("RR_WORKER_BIN"),
               *cli = need_env("RR_CLI_BIN");
    if (!master || !worker || !cli || sodium_init() < 0)
        return NULL;
    rr_cluster_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->tests = tests;
    snprintf(self->cli, sizeof self->cli, "%s", cli);
    snprintf(self->worker_bin, sizeof self->worker_bin, "%s", worker);
    if (make_dirs(self) < 0)
        goto fail;
    snprintf(self->master_key, sizeof self->master_key, "%s/keys/master", self->dir);
    snprintf(self->client_key, sizeof self->client_key, "%s/keys/client_secret", self->dir);
    if (keygen(self, "master", NULL) < 0 || keygen(self, "client", "submit") < 0
        || allow_key(self, "clients.d", "client") < 0 || write_artifacts(self) < 0
        || master_start(self, master) < 0)
        goto fail;
    return self;
fail:
    rr_cluster_stop(&self);
    return NULL;
}

/* ---- workers ---- */

static int append(char *buf, size_t len, size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int append(char *buf, size_t len, size_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = *at < len ? vsnprintf(buf + *at, len - *at, fmt, ap) : -1;
    va_end(ap);
    if (n < 0 || *at + (size_t)n >= len)
        return -1;
    *at += (size_t)n;
    return 0;
}

static int rig_devices_yaml(const rr_rig_t *rig, const rr_cluster_device_t *devices,
                            char *buf, size_t len)
{
    size_t at = 0;
    for (size_t i = 0; i < rr_rig_size(rig); i++) {
        const rr_rig_node_t *node = rr_rig_node(rig, i);
        const rr_cluster_device_t *d = devices ? &devices[i] : NULL;
        if (append(buf, len, &at,
                   "  - {name: %s, type: %s, tags: %s, mac: \"%s\",\n"
                   "     bmc: {host: \"%s\", port: %u, user: \"%s\", password_file: \"%s\"}%s%s}\n",
                   node->name, d && d->type ? d->type : "highbank",
                   d && d->tags ? d->tags : "[]", node->mac, node->host, node->port, node->user,
                   rr_rig_password_file(rig), d && d->extra ? ",\n     " : "",
                   d && d->extra ? d->extra : "") < 0)
            return -1;
    }
    return 0;
}

static int worker_start(rr_cluster_t *self, const char *name, const char *tftp_root,
                        const char *devices_yaml, bool allowed)
{
    char dir[PATH_LEN], config[PATH_LEN + 64], text[32768];
    snprintf(dir, sizeof dir, "%s/%s", self->dir, name);
    snprintf(config, sizeof config, "%s/worker.yaml", dir);
    if (mkdir_p(dir) < 0 || keygen(self, name, NULL) < 0
        || (allowed && allow_key(self, "workers.d", name) < 0))
        return -1;
    int n = snprintf(text, sizeof text,
                     "worker: %s\n"
                     "rack: %s-rack\n"
                     "master: \"%s\"\n"
                     "master_public_key: \"%s\"\n"
                     "secret_key: \"%s/keys/%s_secret\"\n"
                     "tftp_root: \"%s\"\n"
                     "spool_dir: \"%s/spool\"\n"
                     "file_roots: [\"%s/artifacts\"]\n"
                     "heartbeat_interval: 250ms\n"
                     "devices:\n%s",
                     name, name, self->worker_endpoint, self->master_key, self->dir, name,
                     tftp_root, dir, self->dir, devices_yaml);
    if (n < 0 || (size_t)n >= sizeof text || tmpdir_write_text(config, text, 0644) < 0) {
        say(self, "%s: cannot write", config);
        return -1;
    }
    char *argv[] = { self->worker_bin, "--config", config, NULL };
    return daemon_start(self, name, argv) ? 0 : -1;
}

rr_rig_t *rr_cluster_rig(rr_cluster_t *self, const char *name, size_t nodes)
{
    char options[PATH_LEN + 64];
    if (self->rig_count == MAX_RIGS)
        return NULL;
    char tftp[PATH_LEN];
    snprintf(tftp, sizeof tftp, "%s/%s-tftp", self->dir, name);
    if (mkdir_p(tftp) < 0)
        return NULL;
    snprintf(options, sizeof options, "--tftp-root %s --base-name %s", tftp, name);
    rr_rig_t *rig = rr_rig_start(nodes, options);
    if (!rig) {
        say(self, "rig %s of %zu nodes did not start", name, nodes);
        return NULL;
    }
    memcpy(self->rigs[self->rig_count].tftp_root, tftp, sizeof tftp);
    self->rigs[self->rig_count++].rig = rig;
    return rig;
}

int rr_cluster_add_worker(rr_cluster_t *self, const char *name, rr_rig_t *rig,
                          const rr_cluster_device_t *devices, bool allowed)
{
    char yaml[16384];
    const char *tftp_root = NULL;
    for (size_t i = 0; i < self->rig_count; i++)
        if (self->rigs[i].rig == rig)
            tftp_root = self->rigs[i].tftp_root;
    if (!tftp_root || rig_devices_yaml(rig, devices, yaml, sizeof yaml) < 0) {
        say(self, "worker %s: not a rig of this cluster, or too many devices", name);
        return -1;
    }
    return worker_start(self, name, tftp_root, yaml, allowed);
}

int rr_cluster_add_worker_yaml(rr_cluster_t *self, const char *name, const char *devices_yaml,
                               bool allowed)
{
    const char *tftp = rr_cluster_mkdir(self, name);
    char root[PATH_LEN];
    snprintf(root, sizeof root, "%s", tftp ? tftp : "");
    return tftp ? worker_start(self, name, root, devices_yaml, allowed) : -1;
}

int rr_cluster_worker_key(rr_cluster_t *self, const char *name, char key[41])
{
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/keys/%s", self->dir, name);
    char *cert = tmpdir_slurp(path, NULL);
    const char *at = cert ? strstr(cert, "public-key = \"") : NULL;
    int rc = at && sscanf(at, "public-key = \"%40[^\"]\"", key) == 1 && strlen(key) == 40 ? 0 : -1;
    free(cert);
    return rc;
}

/* ---- the database ---- */

sqlite3 *rr_cluster_db(rr_cluster_t *self)
{
    return self->db;
}

int64_t rr_cluster_count(rr_cluster_t *self, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    sqlite3_stmt *st = NULL;
    int64_t value = -1;
    if (sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) != SQLITE_OK) {
        say(self, "%s: %s", sql, sqlite3_errmsg(self->db));
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        value = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return value;
}

bool rr_cluster_wait_count(rr_cluster_t *self, int64_t want, int timeout_ms, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    int64_t deadline = testtime_now_ms() + timeout_ms, have = -1;
    do {
        if ((have = rr_cluster_count(self, "%s", sql)) == want)
            return true;
        if (!all_alive(self))
            return false;
        testtime_nap_ms(POLL_MS);
    } while (testtime_now_ms() < deadline);
    say(self, "%s: %lld, not %lld within %d ms", sql, (long long)have, (long long)want, timeout_ms);
    rr_cluster_dump(self);
    return false;
}

static void column_text(sqlite3_stmt *st, int col, char *buf, size_t len)
{
    const unsigned char *text = sqlite3_column_text(st, col);
    snprintf(buf, len, "%s", text ? (const char *)text : "");
}

int rr_cluster_job(rr_cluster_t *self, uint64_t id, rr_cluster_job_t *job)
{
    static const char sql[] =
        "SELECT state, outcome, reason, device, worker, tags, priority, submitted_ms,"
        " started_ms, ended_ms FROM jobs WHERE id = ?";
    sqlite3_stmt *st = NULL;
    int rc = -1;
    memset(job, 0, sizeof *job);
    if (sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        column_text(st, 0, job->state, sizeof job->state);
        column_text(st, 1, job->outcome, sizeof job->outcome);
        column_text(st, 2, job->reason, sizeof job->reason);
        column_text(st, 3, job->device, sizeof job->device);
        column_text(st, 4, job->worker, sizeof job->worker);
        column_text(st, 5, job->tags, sizeof job->tags);
        job->priority = sqlite3_column_int64(st, 6);
        job->submitted_ms = sqlite3_column_int64(st, 7);
        job->started_ms = sqlite3_column_int64(st, 8);
        job->ended_ms = sqlite3_column_int64(st, 9);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

bool rr_cluster_wait_job(rr_cluster_t *self, uint64_t id, const char *state, int timeout_ms)
{
    int64_t deadline = testtime_now_ms() + timeout_ms;
    rr_cluster_job_t job;
    do {
        if (rr_cluster_job(self, id, &job) == 0 && strcmp(job.state, state) == 0)
            return true;
        if (!all_alive(self))
            return false;
        testtime_nap_ms(POLL_MS);
    } while (testtime_now_ms() < deadline);
    say(self, "job %llu: not %s within %d ms (state %s)", (unsigned long long)id, state,
        timeout_ms, job.state[0] ? job.state : "unknown");
    rr_cluster_dump(self);
    return false;
}

bool rr_cluster_wait_devices(rr_cluster_t *self, const char *worker, const char *state,
                             size_t count, int timeout_ms)
{
    int64_t deadline = testtime_now_ms() + timeout_ms, have = -1;
    do {
        if (rr_cluster_count(self, "SELECT count(*) FROM workers WHERE name = '%s'"
                                   " AND state = 'online'", worker) == 1
            && (have = rr_cluster_count(self, "SELECT count(*) FROM devices WHERE worker = '%s'"
                                              " AND state = '%s'", worker, state))
               == (int64_t)count)
            return true;
        if (!all_alive(self))
            return false;
        testtime_nap_ms(POLL_MS);
    } while (testtime_now_ms() < deadline);
    say(self, "worker %s: not online with %zu devices %s within %d ms (%lld are)", worker, count,
        state, timeout_ms, (long long)have);
    rr_cluster_dump(self);
    return false;
}

bool rr_cluster_wait_log(rr_cluster_t *self, const char *name, const char *text, int timeout_ms)
{
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/%s.log", self->dir, name);
    int64_t deadline = testtime_now_ms() + timeout_ms;
    do {
        char *log = tmpdir_slurp(path, NULL);
        bool found = log && strstr(log, text);
        free(log);
        if (found)
            return true;
        testtime_nap_ms(POLL_MS);
    } while (testtime_now_ms() < deadline);
    say(self, "%s.log: no '%s' within %d ms", name, text, timeout_ms);
    rr_cluster_dump(self);
    return false;
}

uint8_t *rr_cluster_job_log(rr_cluster_t *self, uint64_t id, size_t *len)
{
    static const char sql[] =
        "SELECT data FROM events WHERE job = ? AND kind = 'log' ORDER BY seq";
    sqlite3_stmt *st = NULL;
    size_t used = 0, cap = 4096;
    uint8_t *buf = malloc(cap);
    if (!buf || sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) != SQLITE_OK) {
        free(buf);
        return NULL;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    while (buf && sqlite3_step(st) == SQLITE_ROW) {
        const void *data = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        while (used + n + 1 > cap) {
            uint8_t *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        if (buf && n)
            memcpy(buf + used, data, n);
        used += n;
    }
    sqlite3_finalize(st);
    if (buf)
        buf[used] = 0;
    *len = buf ? used : 0;
    return buf;
}

/* ---- jobs ---- */

char *rr_cluster_deploy_yaml(rr_cluster_t *self, const char *kernel_url, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    append(buf, len, &at, "  - deploy:\n      to: tftp\n");
    for (int i = 0; i < 3; i++) {
        if (i == 0 && kernel_url)
            append(buf, len, &at, "      kernel: {url: \"%s\"}\n", kernel_url);
        else
            append(buf, len, &at, "      %s: {url: \"file://%s\", sha256: %s}\n",
                   artifact_roles[i], self->artifacts[i], self->sha256[i]);
    }
    append(buf, len, &at, "      append: \"console=ttyAMA0 nosplash\"\n");
    return buf;
}

/* ---- more clients ---- */

int rr_cluster_add_client(rr_cluster_t *self, const char *name, const char *role)
{
    return keygen(self, name, role) < 0 || allow_key(self, "clients.d", name) < 0 ? -1 : 0;
}

pid_t rr_cluster_cli_start_as(rr_cluster_t *self, const char *client, const char *in_path,
                              const char *name, const char *arg, ...)
{
    char key[PATH_LEN];
    const char *args[CLI_ARGS_MAX];
    snprintf(key, sizeof key, "%s/keys/%s_secret", self->dir, client);
    va_list ap;
    va_start(ap, arg);
    size_t n = collect_args(arg, ap, args);
    va_end(ap);
    pid_t pid = spawn_cli(self, key, in_path, name, args, n);
    if (pid < 0)
        say(self, "rackrun %s (as %s): cannot start: %s", arg, client, strerror(errno));
    return pid;
}
