/* grow.c: arrays that double their capacity when full (grow.h). */
#include "grow.h"

#include <stdint.h>
#include <stdlib.h>

void *rr_grow(void *items, size_t count, size_t *cap, size_t size, size_t first)
{
    if (count < *cap)
        return items;
    size_t ncap = *cap ? *cap * 2 : (first ? first : 1);
    if (ncap < *cap || size == 0 || ncap > SIZE_MAX / size)
        return NULL;
    void *bigger = realloc(items, ncap * size);
    if (bigger)
        *cap = ncap;
    return bigger;
}
