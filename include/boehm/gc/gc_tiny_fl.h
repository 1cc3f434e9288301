/* mallocgc's Boehm-compatible headers: the granule, the unit in which small
 * object sizes are counted, and the size of a "tiny" free-list array, for
 * programs that keep their own free lists (gc_inline.h). These values are
 * part of the binary interface of libgc.so.1; a program must not change
 * them. */
#ifndef GC_TINY_FL_H
#define GC_TINY_FL_H

/* Bytes and words per granule: two pointers (16 bytes on 64-bit targets,
 * 8 on 32-bit ones). */
#ifndef GC_GRANULE_BYTES
#if defined(__LP64__) || defined(_LP64) || defined(__s390x__) || (defined(__x86_64__) && !defined(__ILP32__)) || \
    defined(__alpha__) || defined(__powerpc64__) || defined(__arch64__)
#define GC_GRANULE_BYTES 16
#define GC_GRANULE_WORDS 2
#else
#define GC_GRANULE_BYTES 8
#define GC_GRANULE_WORDS 2
#endif
#endif

/* Whole granules in n words (rounding down). */
#if GC_GRANULE_WORDS == 2
#define GC_WORDS_TO_GRANULES(n) ((n) >> 1)
#else
#define GC_WORDS_TO_GRANULES(n) ((n) * sizeof(void *) / GC_GRANULE_BYTES)
#endif

/* Entries in a tiny free-list array: entry i holds objects of i granules
 * (entry 0 serves requests of 0 bytes with 1-granule objects). Objects up
 * to 384 bytes on 64-bit targets, up to 256 bytes on 32-bit ones. */
#ifndef GC_TINY_FREELISTS
#if GC_GRANULE_BYTES == 16
#define GC_TINY_FREELISTS 25
#else
#define GC_TINY_FREELISTS 33
#endif
#endif

/* The size in bytes of the objects on free list i. */
#define GC_RAW_BYTES_FROM_INDEX(i) ((i)*GC_GRANULE_BYTES)

#endif /* GC_TINY_FL_H */
