/* heap.c: see heap.h. */
#include "heap.h"

#include <malloc.h>

#if defined(__SANITIZE_ADDRESS__)
#define RR_HEAP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RR_HEAP_ASAN 1
#endif
#endif

void rr_heap_trim(void)
{
#ifndef RR_HEAP_ASAN
    malloc_trim(0);
#endif
}
