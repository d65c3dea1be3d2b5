/* grow.h: arrays that double their capacity when full. */
#ifndef RACKRUN_GROW_H
#define RACKRUN_GROW_H

#include <stddef.h>

/* Room for one more element in ITEMS (COUNT used of *CAP, each SIZE bytes):
 * ITEMS itself while there is room, else ITEMS reallocated to twice *CAP
 * (FIRST elements when it had none) and *CAP updated. NULL when out of
 * memory: ITEMS is then untouched and still the caller's. Use as
 *     item_t *items = rr_grow(self->items, self->count, &self->cap, sizeof *items, 16);
 *     if (!items) return -1;
 *     self->items = items;                                                   */
void *rr_grow(void *items, size_t count, size_t *cap, size_t size, size_t first);

#endif
