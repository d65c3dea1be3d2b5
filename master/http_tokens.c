/* http_tokens.c: the HTTP API's bearer tokens; see http_tokens.h. */
#include "http_tokens.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <sodium.h>

#define TOKEN_MAX 512

typedef struct {
    rr_role_t role;
    char *token;
    size_t len;
} token_t;

struct _rr_http_tokens_t {
    token_t *tokens;
    size_t count;
};

/* Refuse a file that group or others may read (tokens are secrets). */
static int check_mode(FILE *file, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fileno(file), &st) != 0) {
        snprintf(err, errlen, "http_tokens %s: %s", path, strerror(errno));
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "http_tokens %s: mode %04o, must not be accessible by group "
                 "or others (chmod 600 %s)", path, (unsigned) (st.st_mode & 07777), path);
        return -1;
    }
    return 0;
}

static int add_token(rr_http_tokens_t *self, rr_role_t role, const char *token)
{
    token_t *grown = realloc(self->tokens, (self->count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    self->tokens = grown;
    token_t *t = &self->tokens[self->count];
    t->token = strdup(token);
    if (!t->token)
        return -1;
    t->role = role;
    t->len = strlen(token);
    self->count++;
    return 0;
}

/* One line: blank, comment or "ROLE TOKEN". The token never goes into ERR. */
static int parse_line(rr_http_tokens_t *self, char *line, const char *where,
                      char *err, size_t errlen)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *save = NULL;
    char *role_text = strtok_r(line, " \t\r\n", &save);
    if (!role_text)
        return 0;
    char *token = strtok_r(NULL, " \t\r\n", &save);
    char *extra = strtok_r(NULL, " \t\r\n", &save);
    rr_role_t role;
    if (rr_role_parse(role_text, &role) != 0) {
        snprintf(err, errlen, "%s: role '%.20s' is not read, submit or admin", where, role_text);
        return -1;
    }
    if (!token || extra || strlen(token) > TOKEN_MAX) {
        snprintf(err, errlen, "%s: expected 'ROLE TOKEN' (one token of at most %d characters)",
                 where, TOKEN_MAX);
        return -1;
    }
    if (add_token(self, role, token) != 0) {
        snprintf(err, errlen, "%s: out of memory", where);
        return -1;
    }
    return 0;
}

static int parse_file(rr_http_tokens_t *self, FILE *file, const char *path,
                      char *err, size_t errlen)
{
    char line[TOKEN_MAX + 64];
    char where[512];
    int rc = 0;
    for (unsigned n = 1; rc == 0 && fgets(line, sizeof line, file); n++) {
        snprintf(where, sizeof where, "http_tokens %s:%u", path, n);
        if (!strchr(line, '\n') && !feof(file)) {
            snprintf(err, errlen, "%s: line too long", where);
            rc = -1;
        } else
            rc = parse_line(self, line, where, err, errlen);
    }
    sodium_memzero(line, sizeof line);
    if (rc == 0 && self->count == 0) {
        snprintf(err, errlen, "http_tokens %s: no token in the file", path);
        rc = -1;
    }
    return rc;
}

rr_http_tokens_t *rr_http_tokens_load(const char *path, char *err, size_t errlen)
{
    rr_http_tokens_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "http_tokens %s: out of memory", path);
        return NULL;
    }
    FILE *file = fopen(path, "re");
    if (!file) {
        snprintf(err, errlen, "http_tokens %s: %s", path, strerror(errno));
        goto fail;
    }
    if (check_mode(file, path, err, errlen) != 0 || parse_file(self, file, path, err, errlen) != 0)
        goto fail_file;
    fclose(file);
    return self;
fail_file:
    fclose(file);
fail:
    rr_http_tokens_destroy(&self);
    return NULL;
}

void rr_http_tokens_destroy(rr_http_tokens_t **self_p)
{
    rr_http_tokens_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        sodium_memzero(self->tokens[i].token, self->tokens[i].len);
        free(self->tokens[i].token);
    }
    free(self->tokens);
    free(self);
    *self_p = NULL;
}

/* Whether GIVEN (GIVEN_LEN bytes) is T, in time that depends only on T's length. */
static int token_equal(const token_t *t, const char *given, size_t given_len)
{
    unsigned char diff = given_len != t->len;
    for (size_t i = 0; i < t->len; i++)
        diff |= (unsigned char) t->token[i] ^ (unsigned char) (i < given_len ? given[i] : 0);
    return diff == 0;
}

rr_role_t rr_http_tokens_role(const rr_http_tokens_t *self, const char *authorization)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return RR_ROLE_NONE;
    const char *given = authorization + 7;
    while (*given == ' ')
        given++;
    size_t given_len = strlen(given);
    rr_role_t best = RR_ROLE_NONE;
    for (size_t i = 0; i < self->count; i++)        /* every token: no early exit */
        if (token_equal(&self->tokens[i], given, given_len) && self->tokens[i].role > best)
            best = self->tokens[i].role;
    return best;
}
