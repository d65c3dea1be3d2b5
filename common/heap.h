/* heap.h: giving memory the process freed back to the system. */
#ifndef RACKRUN_HEAP_H
#define RACKRUN_HEAP_H

/* Return the free pages of every malloc arena to the kernel (glibc's
 * malloc_trim): after a burst of short-lived objects on a long-lived thread,
 * such as a closed SOL session. Nothing under AddressSanitizer, whose own
 * allocator serves malloc (glibc's arenas are never set up there, and
 * malloc_trim would walk them anyway and crash). */
void rr_heap_trim(void);

#endif
