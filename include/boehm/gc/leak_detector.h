/* mallocgc's Boehm-compatible headers: turns a C program into its own leak
 * detector. Included first (for instance with the compiler's -include
 * option), it redirects malloc, calloc, realloc, free, strdup, strndup,
 * memalign and posix_memalign to the collector's debugging allocators.
 * Leak detection itself is switched on with GC_set_find_leak(1) (or the
 * GC_FIND_LEAK environment variable); unreachable objects that were never
 * freed are then reported at collections, and at exit. */
#ifndef GC_LEAK_DETECTOR_H
#define GC_LEAK_DETECTOR_H

#ifndef GC_DEBUG
#define GC_DEBUG
#endif
#include "gc.h"

/* The C library's declarations come first, so that the macros below do
 * not rename them. */
#ifndef GC_DONT_INCLUDE_STDLIB
#include <stdlib.h>
#include <string.h>
#endif

#undef malloc
#define malloc(n) GC_MALLOC(n)
#undef calloc
#define calloc(m, n) GC_MALLOC((m) * (n))
#undef free
#define free(p) GC_FREE(p)
#undef realloc
#define realloc(p, n) GC_REALLOC(p, n)

#undef strdup
#define strdup(s) GC_STRDUP(s)
#undef strndup
#define strndup(s, n) GC_STRNDUP(s, n)

#undef memalign
#define memalign(a, n) GC_memalign(a, n)
#undef posix_memalign
#define posix_memalign(p, a, n) GC_posix_memalign(p, a, n)

/* Collects now, reporting the leaks found so far. */
#ifndef CHECK_LEAKS
#define CHECK_LEAKS() GC_gcollect()
#endif

#endif /* GC_LEAK_DETECTOR_H */
