/* expect.c: searching unmatched console output for needles, across chunks.
 *
 * Each feed searches only the new bytes plus the last (longest needle - 1)
 * bytes before them, so a boot log fed one byte at a time costs O(n * needles),
 * not O(n^2). The buffer is a plain array: consuming a match moves the rest to
 * the front (memmove of at most CAPACITY bytes, once per match). */
#include "expect.h"

#include <stdlib.h>
#include <string.h>

struct _rr_expect_t {
    char *data;                 /* unmatched output, oldest first */
    size_t len;
    size_t capacity;
    const char *const *needles; /* borrowed; NULL when disarmed */
    size_t count;
    size_t longest;             /* length of the longest needle */
};

rr_expect_t *rr_expect_new(size_t capacity)
{
    if (capacity < 2)
        return NULL;
    rr_expect_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->data = malloc(capacity);
    if (!self->data) {
        free(self);
        return NULL;
    }
    self->capacity = capacity;
    return self;
}

void rr_expect_destroy(rr_expect_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->data);
    free(*self_p);
    *self_p = NULL;
}

size_t rr_expect_pending(const rr_expect_t *self)
{
    return self->len;
}

void rr_expect_disarm(rr_expect_t *self)
{
    self->needles = NULL;
    self->count = 0;
    self->longest = 0;
}

/* Drop the first N bytes. */
static void consume(rr_expect_t *self, size_t n)
{
    memmove(self->data, self->data + n, self->len - n);
    self->len -= n;
}

/* Search data[from..len); on a match consume through it, disarm, return its index. */
static int search(rr_expect_t *self, size_t from)
{
    size_t best_end = 0;
    int best = -1;
    for (size_t i = 0; i < self->count; i++) {
        size_t n = strlen(self->needles[i]);
        if (n == 0 || n > self->len - from)
            continue;
        const char *hit = memmem(self->data + from, self->len - from, self->needles[i], n);
        size_t end = hit ? (size_t) (hit - self->data) + n : 0;
        if (hit && (best < 0 || end < best_end)) {
            best = (int) i;
            best_end = end;
        }
    }
    if (best >= 0) {
        consume(self, best_end);
        rr_expect_disarm(self);
    }
    return best;
}

int rr_expect_arm(rr_expect_t *self, const char *const *needles, size_t count)
{
    self->needles = needles;
    self->count = count;
    self->longest = 0;
    for (size_t i = 0; i < count; i++) {
        size_t n = strlen(needles[i]);
        if (n > self->longest)
            self->longest = n;
    }
    return search(self, 0);
}

/* Make room for N more bytes by dropping the oldest, keeping at least half. */
static void make_room(rr_expect_t *self, size_t n)
{
    if (self->len + n <= self->capacity)
        return;
    size_t keep = self->capacity / 2;
    if (keep > self->len)
        keep = self->len;
    consume(self, self->len - keep);
}

int rr_expect_feed(rr_expect_t *self, const char *data, size_t len)
{
    int found = -1;
    /* After a match (which disarms) the rest is only kept, for the next expect. */
    while (len > 0) {
        make_room(self, 1);
        size_t room = self->capacity - self->len;
        size_t take = len < room ? len : room;
        size_t old = self->len;
        memcpy(self->data + self->len, data, take);
        self->len += take;
        data += take;
        len -= take;
        if (self->needles) {
            /* A needle ending in the new bytes starts at most longest-1 before them. */
            size_t back = self->longest > 0 ? self->longest - 1 : 0;
            found = search(self, old > back ? old - back : 0);
        }
    }
    return found;
}
