/* sched_index.c: queued jobs in memory for the scheduler (sched_index.h).
 *
 * Buckets are few (device types x tag sets in use: 24 in bench_dispatch), so
 * they live in a plain array searched linearly; each is a binary heap whose
 * top is its next job in the queue's order.
 */
#include "sched_index.h"

#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "scheduler.h"

typedef struct {
    uint64_t id;
    uint32_t priority;
} entry_t;

typedef struct {
    char *type;
    char **tags;            /* sorted, as the store keeps them */
    size_t tag_count;
    entry_t *heap;
    size_t size, cap;
} bucket_t;

struct _rr_sched_index_t {
    bucket_t *buckets;
    size_t count, cap;
    uint64_t seen;          /* highest job id read from the store */
    bool stale;
};

static void s_bucket_clear(bucket_t *b)
{
    free(b->type);
    for (size_t i = 0; i < b->tag_count; i++)
        free(b->tags[i]);
    free(b->tags);
    free(b->heap);
    memset(b, 0, sizeof *b);
}

static void s_clear(rr_sched_index_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        s_bucket_clear(&self->buckets[i]);
    self->count = 0;
    self->seen = 0;
}

rr_sched_index_t *rr_sched_index_new(void)
{
    rr_sched_index_t *self = calloc(1, sizeof *self);
    if (self)
        self->stale = true;
    return self;
}

void rr_sched_index_destroy(rr_sched_index_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_clear(*self_p);
    free((*self_p)->buckets);
    free(*self_p);
    *self_p = NULL;
}

void rr_sched_index_mark_stale(rr_sched_index_t *self)
{
    self->stale = true;
}

size_t rr_sched_index_size(const rr_sched_index_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->count; i++)
        n += self->buckets[i].size;
    return n;
}

/* ---- heap: A before B when it comes first in the queue ---- */

static bool s_before(const entry_t *a, const entry_t *b)
{
    return a->priority != b->priority ? a->priority > b->priority : a->id < b->id;
}

static void s_swap(entry_t *a, entry_t *b)
{
    entry_t t = *a;
    *a = *b;
    *b = t;
}

static int s_heap_push(bucket_t *b, entry_t e)
{
    entry_t *heap = rr_grow(b->heap, b->size, &b->cap, sizeof *heap, 64);
    if (!heap)
        return -1;
    b->heap = heap;
    size_t i = b->size++;
    b->heap[i] = e;
    while (i > 0 && s_before(&b->heap[i], &b->heap[(i - 1) / 2])) {
        s_swap(&b->heap[i], &b->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    return 0;
}

static void s_heap_pop(bucket_t *b)
{
    b->heap[0] = b->heap[--b->size];
    for (size_t i = 0;;) {
        size_t best = i, l = 2 * i + 1, r = l + 1;
        if (l < b->size && s_before(&b->heap[l], &b->heap[best]))
            best = l;
        if (r < b->size && s_before(&b->heap[r], &b->heap[best]))
            best = r;
        if (best == i)
            break;
        s_swap(&b->heap[i], &b->heap[best]);
        i = best;
    }
}

/* ---- buckets ---- */

static bool s_bucket_is(const bucket_t *b, const char *type, char *const *tags, size_t count)
{
    if (b->tag_count != count || strcmp(b->type, type) != 0)
        return false;
    for (size_t i = 0; i < count; i++)
        if (strcmp(b->tags[i], tags[i]) != 0)
            return false;
    return true;
}

static bucket_t *s_bucket_new(rr_sched_index_t *self, const char *type, char *const *tags,
                              size_t count)
{
    bucket_t *buckets = rr_grow(self->buckets, self->count, &self->cap, sizeof *buckets, 16);
    if (!buckets)
        return NULL;
    self->buckets = buckets;
    bucket_t *b = &self->buckets[self->count];
    memset(b, 0, sizeof *b);
    b->type = strdup(type);
    b->tags = calloc(count ? count : 1, sizeof *b->tags);
    bool ok = b->type && b->tags;
    for (size_t i = 0; ok && i < count; i++)
        ok = (b->tags[b->tag_count++] = strdup(tags[i])) != NULL;
    if (!ok) {
        s_bucket_clear(b);
        return NULL;
    }
    self->count++;
    return b;
}

int rr_sched_index_add(rr_sched_index_t *self, uint64_t job, const char *device_type,
                       char *const *tags, size_t tag_count, uint32_t priority)
{
    bucket_t *b = NULL;
    for (size_t i = 0; i < self->count && !b; i++)
        if (s_bucket_is(&self->buckets[i], device_type, tags, tag_count))
            b = &self->buckets[i];
    if (!b && !(b = s_bucket_new(self, device_type, tags, tag_count)))
        return -1;
    return s_heap_push(b, (entry_t) { .id = job, .priority = priority });
}

uint64_t rr_sched_index_pop(rr_sched_index_t *self, const char *device_type,
                            char *const *device_tags, size_t device_tag_count)
{
    bucket_t *best = NULL;
    for (size_t i = 0; i < self->count; i++) {
        bucket_t *b = &self->buckets[i];
        if (b->size == 0 || strcmp(b->type, device_type) != 0
            || !rr_scheduler_tags_match(b->tags, b->tag_count, device_tags, device_tag_count))
            continue;
        if (!best || s_before(&b->heap[0], &best->heap[0]))
            best = b;
    }
    if (!best)
        return 0;
    uint64_t job = best->heap[0].id;
    s_heap_pop(best);
    return job;
}

/* ---- sync ---- */

typedef struct {
    rr_sched_index_t *index;
    bool failed;
} sync_t;

static bool s_sync_one(uint64_t job, const char *device_type, char **tags, size_t tag_count,
                       uint32_t priority, void *arg)
{
    sync_t *sync = arg;
    if (rr_sched_index_add(sync->index, job, device_type, tags, tag_count, priority) != 0) {
        sync->failed = true;
        return false;
    }
    if (job > sync->index->seen)
        sync->index->seen = job;
    return true;
}

int rr_sched_index_sync(rr_sched_index_t *self, rr_store_t *store)
{
    if (self->stale)
        s_clear(self);
    sync_t sync = { .index = self };
    int rc = rr_store_queue_since(store, self->seen, s_sync_one, &sync);
    if (rc == RR_STORE_OK && sync.failed)
        rc = RR_STORE_E_DB;
    self->stale = rc != RR_STORE_OK;
    return rc;
}
