/* mallocgc's Boehm-compatible headers: typed allocation, where the
 * collector scans only the words of an object that may hold pointers.
 * The layout is a bitmap with one bit per word, made into a descriptor
 * once per type:
 *
 *   struct node { struct node *next; double value; char *name; };
 *   GC_word bm[GC_BITMAP_SIZE(struct node)] = {0};
 *   GC_set_bit(bm, GC_WORD_OFFSET(struct node, next));
 *   GC_set_bit(bm, GC_WORD_OFFSET(struct node, name));
 *   GC_descr d = GC_make_descriptor(bm, GC_WORD_LEN(struct node));
 *   struct node *n = GC_MALLOC_EXPLICITLY_TYPED(sizeof *n, d);
 *
 * Pointer fields must be word-aligned. Under GC_DEBUG the macros allocate
 * ordinary (conservatively scanned) debugging objects instead. */
#ifndef GC_TYPED_H
#define GC_TYPED_H

#ifndef GC_H
#include "gc.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* A layout bitmap: bit i (bit i % GC_WORDSZ of word i / GC_WORDSZ) is set if
 * word i of the object may hold a pointer. */
typedef GC_word *GC_bitmap;

/* clang-format off */
/* Bits per word. */
#define GC_WORDSZ (8 * sizeof(GC_word))
/* Read and set bit index of bitmap bm. */
#define GC_get_bit(bm, index) (((bm)[(index) / GC_WORDSZ] >> ((index) % GC_WORDSZ)) & 1)
#define GC_set_bit(bm, index) ((bm)[(index) / GC_WORDSZ] |= (GC_word)1 << ((index) % GC_WORDSZ))
/* The word index of field f in type t, the words in t, and the words of a
 * bitmap for t. */
#define GC_WORD_OFFSET(t, f) (offsetof(t, f) / sizeof(GC_word))
#define GC_WORD_LEN(t) (sizeof(t) / sizeof(GC_word))
#define GC_BITMAP_SIZE(t) ((GC_WORD_LEN(t) + GC_WORDSZ - 1) / GC_WORDSZ)
/* clang-format on */

/* A type descriptor. */
typedef GC_word GC_descr;

/* The descriptor of objects whose first len words are laid out as bm says;
 * words past them hold no pointers. Meant to be called once per type (it
 * may keep memory); when memory runs out it returns a conservative
 * descriptor. */
GC_API GC_descr GC_CALL GC_make_descriptor(const GC_word * /* GC_bitmap bm */,
                                           size_t /* len (number_of_bits_in_bitmap) */);

/* A zeroed object of at least as many words as d describes, scanned as d
 * says. Not for GC_realloc. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
    GC_malloc_explicitly_typed(size_t /* size_in_bytes */, GC_descr /* d */);

/* The same, for a large object always referred to near its start (see
 * GC_malloc_ignore_off_page). */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
    GC_malloc_explicitly_typed_ignore_off_page(size_t /* size_in_bytes */, GC_descr /* d */);

/* A zeroed array of nelements elements of element_size bytes each (a
 * multiple of the pointer alignment, at least what d describes), every
 * element scanned as d says. */
GC_API GC_ATTR_MALLOC GC_ATTR_CALLOC_SIZE(1, 2) void *GC_CALL
    GC_calloc_explicitly_typed(size_t /* nelements */, size_t /* element_size_in_bytes */, GC_descr /* d */);

/* clang-format off */
#ifdef GC_DEBUG
#define GC_MALLOC_EXPLICITLY_TYPED(bytes, d) ((void)(d), GC_MALLOC(bytes))
#define GC_CALLOC_EXPLICITLY_TYPED(n, bytes, d) ((void)(d), GC_MALLOC((n) * (bytes)))
#else
#define GC_MALLOC_EXPLICITLY_TYPED(bytes, d) GC_malloc_explicitly_typed(bytes, d)
#define GC_CALLOC_EXPLICITLY_TYPED(n, bytes, d) GC_calloc_explicitly_typed(n, bytes, d)
#endif
/* clang-format on */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GC_TYPED_H */
