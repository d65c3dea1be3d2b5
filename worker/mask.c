/* mask.c: secret masking over a chunked byte stream (mask.h).
 *
 * At each position the longest secret that matches wins; a position where a
 * secret might start but the bytes run out is held back, also when a shorter
 * secret already matches there (secrets "abc" and "abcdef": releasing
 * "******" for "abc" could print "def" of the longer one next). The cost is
 * O(bytes x secrets x length), fine for a console and a handful of secrets;
 * Aho-Corasick would be the road for thousands of them.
 */
#include "mask.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct _rr_mask_t {
    char **secrets;
    size_t count;
    char *held;                 /* a possible secret's start, waiting for more bytes */
    size_t held_len;
};

rr_mask_t *rr_mask_new(void)
{
    return calloc(1, sizeof(rr_mask_t));
}

static void s_wipe(char *text, size_t len)
{
    if (text) {
        explicit_bzero(text, len);
        free(text);
    }
}

void rr_mask_destroy(rr_mask_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rr_mask_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        s_wipe(self->secrets[i], strlen(self->secrets[i]));
    free(self->secrets);
    s_wipe(self->held, self->held_len);
    free(self);
    *self_p = NULL;
}

int rr_mask_add(rr_mask_t *self, const char *secret)
{
    if (!secret || !*secret)
        return 0;
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->secrets[i], secret) == 0)
            return 0;
    char **grown = realloc(self->secrets, (self->count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    self->secrets = grown;
    if (!(self->secrets[self->count] = strdup(secret)))
        return -1;
    self->count++;
    return 0;
}

size_t rr_mask_count(const rr_mask_t *self)
{
    return self->count;
}

/* Length of the longest secret at BUF[I..LEN) (0: none); *PARTIAL when one
 * might start there but LEN cuts it short. */
static size_t s_match_at(const rr_mask_t *self, const char *buf, size_t len, size_t i,
                         bool *partial)
{
    size_t best = 0, left = len - i;
    *partial = false;
    for (size_t k = 0; k < self->count; k++) {
        const char *secret = self->secrets[k];
        size_t m = strlen(secret);
        if (m <= left) {
            if (m > best && memcmp(buf + i, secret, m) == 0)
                best = m;
        }
        else if (memcmp(buf + i, secret, left) == 0)
            *partial = true;
    }
    return best;
}

/* Mask BUF to SINK; unless FINAL, keep a possible secret's start (returns where it begins). */
static size_t s_process(const rr_mask_t *self, const char *buf, size_t len, bool final,
                        rr_mask_sink_fn *sink, void *arg)
{
    size_t run = 0, i = 0;
    while (i < len) {
        bool partial;
        size_t m = s_match_at(self, buf, len, i, &partial);
        if (partial && !final)
            break;
        if (!m) {
            i++;
            continue;
        }
        if (i > run)
            sink(arg, buf + run, i - run);
        sink(arg, RR_MASK_TEXT, strlen(RR_MASK_TEXT));
        i += m;
        run = i;
    }
    if (i > run)
        sink(arg, buf + run, i - run);
    return i;
}

/* Hold BUF[FROM..LEN) for the next chunk. */
static void s_hold(rr_mask_t *self, const char *buf, size_t from, size_t len)
{
    char *held = len > from ? malloc(len - from) : NULL;
    if (held)
        memcpy(held, buf + from, len - from);
    s_wipe(self->held, self->held_len);
    self->held = held;
    self->held_len = held ? len - from : 0;
}

void rr_mask_feed(rr_mask_t *self, const char *data, size_t len, rr_mask_sink_fn *sink,
                  void *arg)
{
    if (!self)
        return;                 /* no masker (out of memory): nothing may pass */
    if (!self->count) {
        if (len)
            sink(arg, data, len);
        return;
    }
    size_t total = self->held_len + len;
    char *buf = malloc(total ? total : 1);
    if (!buf) {
        /* No memory to join the chunks: mask each on its own, never pass raw. */
        rr_mask_flush(self, sink, arg);
        s_process(self, data, len, true, sink, arg);
        return;
    }
    if (self->held_len)
        memcpy(buf, self->held, self->held_len);
    memcpy(buf + self->held_len, data, len);
    size_t done = s_process(self, buf, total, false, sink, arg);
    s_hold(self, buf, done, total);
    s_wipe(buf, total);
}

void rr_mask_flush(rr_mask_t *self, rr_mask_sink_fn *sink, void *arg)
{
    if (!self || !self->held_len)
        return;
    s_process(self, self->held, self->held_len, true, sink, arg);
    s_wipe(self->held, self->held_len);
    self->held = NULL;
    self->held_len = 0;
}

/* A growing string for rr_mask_string. */
typedef struct {
    char *text;
    size_t len, size;
    bool failed;
} s_buffer_t;

static void s_append(void *arg, const char *data, size_t len)
{
    s_buffer_t *b = arg;
    if (b->failed)
        return;
    if (b->len + len + 1 > b->size) {
        size_t size = (b->len + len + 1) * 2;
        char *grown = realloc(b->text, size);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->text = grown;
        b->size = size;
    }
    memcpy(b->text + b->len, data, len);
    b->len += len;
    b->text[b->len] = '\0';
}

int rr_mask_string(const rr_mask_t *self, const char *text, char **out)
{
    *out = NULL;
    bool any = false;
    for (size_t k = 0; text && k < self->count && !any; k++)
        any = strstr(text, self->secrets[k]) != NULL;
    if (!any)
        return 0;
    s_buffer_t b = { 0 };
    s_process(self, text, strlen(text), true, s_append, &b);
    if (b.failed) {
        free(b.text);
        return -1;
    }
    *out = b.text;
    return 1;
}
