/* keygen.c: `rackrun keygen DIR NAME [--role ROLE] [--force]`: a czmq CURVE
 * certificate pair, DIR/NAME (public, for the master's allow-list directories
 * or --master-key) and DIR/NAME_secret (mode 0600). The certificate's
 * metadata "name" is NAME: for a worker key, the one worker it may speak
 * for. --role (read | submit | admin) goes into the metadata "role": what a
 * client key may do on the master (without it: read).
 *
 * czmq writes the files (zcert_save), but with its own umask handling and by
 * opening the final names. So the pair is written into a fresh mode-0700
 * directory inside DIR (no one else can even look in), fixed to 0600/0644,
 * and only then linked to the final names: the secret is never readable by
 * anyone else, not even for a moment, and link() refuses to replace an
 * existing certificate unless --force (then rename() replaces it atomically). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>

#include "cli.h"
#include "format.h"

typedef struct {
    char tmpdir[4096];
    char tmp_public[4096], tmp_secret[4096];
    char public_path[4096], secret_path[4096];
} keypaths_t;

static int check_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 200 || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                              "0123456789._-") != len || name[0] == '.') {
        rr_cli_error("keygen: name '%s': use letters, digits, '.', '_', '-' (not starting with '.')", name);
        return RR_EXIT_USAGE;
    }
    return 0;
}

static int check_role(const char *role)
{
    if (!role || !strcmp(role, "read") || !strcmp(role, "submit") || !strcmp(role, "admin"))
        return 0;
    rr_cli_error("keygen: --role '%s': expected read, submit or admin", role);
    return RR_EXIT_USAGE;
}

static int prepare_dir(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rr_cli_error("keygen: %s: %s", dir, strerror(errno));
        return RR_EXIT_USAGE;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rr_cli_error("keygen: %s: not a directory", dir);
        return RR_EXIT_USAGE;
    }
    return 0;
}

static int refuse_existing(const keypaths_t *p)
{
    struct stat st;
    const char *paths[] = { p->public_path, p->secret_path };
    for (size_t i = 0; i < 2; i++) {
        if (lstat(paths[i], &st) == 0) {
            rr_cli_error("keygen: %s exists; not overwritten (--force replaces it)", paths[i]);
            return RR_EXIT_FAILED;
        }
    }
    return 0;
}

/* Generate the pair into p->tmpdir and give the files their final modes. */
static int write_pair(keypaths_t *p, const char *name, const char *role)
{
    int rc = RR_EXIT_FAILED;
    zcert_t *cert = zcert_new();
    if (!cert) {
        rr_cli_error("keygen: cannot generate a CURVE key pair (libzmq without CURVE?)");
        return rc;
    }
    zcert_set_meta(cert, "name", "%s", name);
    zcert_set_meta(cert, "created-by", "rackrun keygen");
    if (role)
        zcert_set_meta(cert, "role", "%s", role);
    if (zcert_save(cert, p->tmp_public) != 0)
        rr_cli_error("keygen: cannot write %s: %s", p->tmp_public, strerror(errno));
    else if (chmod(p->tmp_secret, 0600) != 0 || chmod(p->tmp_public, 0644) != 0)
        rr_cli_error("keygen: chmod %s: %s", p->tmp_secret, strerror(errno));
    else
        rc = 0;
    zcert_destroy(&cert);
    return rc;
}

/* Move the pair to its final names; without FORCE never over an existing file. */
static int install_pair(const keypaths_t *p, bool force)
{
    int (*place)(const char *, const char *) = force ? rename : link;
    if (place(p->tmp_secret, p->secret_path) != 0) {
        rr_cli_error("keygen: %s: %s", p->secret_path, strerror(errno));
        return RR_EXIT_FAILED;
    }
    if (place(p->tmp_public, p->public_path) != 0) {
        rr_cli_error("keygen: %s: %s", p->public_path, strerror(errno));
        if (!force)
            unlink(p->secret_path); /* ours, linked a moment ago */
        return RR_EXIT_FAILED;
    }
    return 0;
}

static int build_paths(keypaths_t *p, const char *dir, const char *name)
{
    /* check_name bounds NAME to 200 bytes: with DIR under 3000 all fit */
    if (strlen(dir) > 3000) {
        rr_cli_error("keygen: directory name too long");
        return RR_EXIT_USAGE;
    }
    snprintf(p->public_path, sizeof p->public_path, "%s/%s", dir, name);
    snprintf(p->secret_path, sizeof p->secret_path, "%s/%s_secret", dir, name);
    snprintf(p->tmpdir, sizeof p->tmpdir, "%s/.keygen-XXXXXX", dir);
    return 0;
}

int rr_cmd_keygen(const rr_cli_opts_t *opts, int argc, char **args)
{
    const char *dir = args[0], *name = args[1];
    keypaths_t p;
    (void)argc;
    int rc = check_name(name);
    if (rc == 0)
        rc = check_role(opts->role);
    if (rc == 0)
        rc = build_paths(&p, dir, name);
    if (rc == 0)
        rc = prepare_dir(dir);
    if (rc == 0 && !opts->force)
        rc = refuse_existing(&p);
    if (rc != 0)
        return rc;

    mode_t old_umask = umask(077);
    if (!mkdtemp(p.tmpdir)) {
        rr_cli_error("keygen: cannot create a temporary directory in %s: %s", dir, strerror(errno));
        rc = RR_EXIT_FAILED;
        goto out_umask;
    }
    if (snprintf(p.tmp_public, sizeof p.tmp_public, "%s/%s", p.tmpdir, name) >= (int)sizeof p.tmp_public
        || snprintf(p.tmp_secret, sizeof p.tmp_secret, "%s/%s_secret", p.tmpdir, name)
               >= (int)sizeof p.tmp_secret)
        rc = RR_EXIT_USAGE; /* cannot happen: build_paths bounds both parts */
    else
        rc = write_pair(&p, name, opts->role);
    if (rc == 0)
        rc = install_pair(&p, opts->force);
    unlink(p.tmp_secret);
    unlink(p.tmp_public);
    rmdir(p.tmpdir);
out_umask:
    umask(old_umask);
    if (rc == 0 && !opts->json)
        printf("wrote %s (public) and %s (secret, mode 0600)\n", p.public_path, p.secret_path);
    else if (rc == 0)
        rr_json_print(json_pack("{s:s, s:s}", "public", p.public_path, "secret", p.secret_path), stdout);
    return rc;
}
