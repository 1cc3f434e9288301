/* mallocgc's Boehm-compatible headers: allocation from free lists that the
 * program keeps itself, inline, without a call per object. Meant for
 * compilers that generate C; most programs should call GC_MALLOC instead.
 *
 *   static void *fl[GC_TINY_FREELISTS];   // zeroed: every list empty
 *   void *cell;
 *   GC_CONS(cell, head, tail, fl);        // a two-word object {head, tail}
 *
 * A tiny free-list array has GC_TINY_FREELISTS entries; entry i holds free
 * objects of i granules (gc_tiny_fl.h) linked through their first words.
 * When a list is empty it is refilled in bulk with GC_generic_malloc_many.
 * The array itself must be where the collector scans (a static, the stack
 * or a scanned heap object), even for pointer-free kinds.
 *
 * The sizes given here are exact: unlike GC_malloc, nothing is added for a
 * pointer one past the end, so with interior pointers on, the program
 * allocates that extra byte itself if it needs one. */
#ifndef GC_INLINE_H
#define GC_INLINE_H

#include "gc.h"
#include "gc_tiny_fl.h"

/* expr, with a hint that it usually equals outcome. */
#if GC_GNUC_PREREQ(3, 0)
#define GC_EXPECT(expr, outcome) __builtin_expect(expr, outcome)
#else
#define GC_EXPECT(expr, outcome) (expr)
#endif

/* The checks of the macros below: assert() unless NDEBUG. */
#ifndef GC_ASSERT
#ifdef NDEBUG
#define GC_ASSERT(expr)
#else
#include <assert.h>
#define GC_ASSERT(expr) assert(expr)
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Hint that x is about to be written. */
#ifndef GC_PREFETCH_FOR_WRITE
#if GC_GNUC_PREREQ(3, 0) && !defined(GC_NO_PREFETCH_FOR_WRITE)
#define GC_PREFETCH_FOR_WRITE(x) __builtin_prefetch((x), 1)
#else
#define GC_PREFETCH_FOR_WRITE(x) (void)0
#endif
#endif

/* The kinds of the two ordinary heaps: pointer-free and scanned. */
#define GC_I_PTRFREE 0
#define GC_I_NORMAL 1

/* Stores into *result a list of new objects of lb bytes and kind k, linked
 * through their first words (NULL when out of memory). */
GC_API void GC_CALL GC_generic_malloc_many(size_t /* lb */, int /* k */, void ** /* result */);

/* An object of lb bytes and kind k, from the calling thread's free lists
 * where there are some. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_malloc_kind(size_t /* lb */, int /* k */);

#ifdef GC_THREADS
/* The same from the shared free lists only. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_malloc_kind_global(size_t /* lb */, int /* k */);
#else
#define GC_malloc_kind_global GC_malloc_kind
#endif

/* Stores a new head into a free-list entry. */
#if defined(GC_THREADS) && defined(AO_HAVE_store)
#define GC_FAST_M_AO_STORE(my_fl, next) AO_store((volatile AO_t *)(my_fl), (AO_t)(next))
#else
#define GC_FAST_M_AO_STORE(my_fl, next) (void)(*(my_fl) = (next))
#endif

/* clang-format off */
/* Sets result to a new object of the given number of granules:
 *   - from tiny_fl[granules] when that list has an object, evaluating init
 *     (which may use result) after taking it;
 *   - from default_expr when granules >= GC_TINY_FREELISTS, or while the
 *     entry holds a small counter: with num_direct > 0 and the entries
 *     starting at (void *)1, the first allocations of each size go to
 *     default_expr (about num_direct bytes' worth) before the list is
 *     filled in bulk;
 *   - otherwise the list is refilled with GC_generic_malloc_many(kind) and
 *     the object taken from it; if that fails, from the out-of-memory
 *     handler.
 * With num_direct 0 the entries may start as NULL. Entry 0 serves requests
 * of 0 bytes. */
#define GC_FAST_MALLOC_GRANS(result, granules, tiny_fl, num_direct, kind, default_expr, init)                   \
  do {                                                                                                          \
    if (GC_EXPECT((granules) >= GC_TINY_FREELISTS, 0)) {                                                        \
      result = (default_expr);                                                                                  \
    } else {                                                                                                    \
      void **GC_fl_entry_ = (tiny_fl) + (granules);                                                             \
      void *GC_fl_head_ = *GC_fl_entry_;                                                                        \
      for (;;) {                                                                                                \
        if (GC_EXPECT((GC_word)GC_fl_head_ > (num_direct) + GC_TINY_FREELISTS + 1, 1)) {                        \
          /* An object: unlink it. */                                                                           \
          void *GC_fl_next_ = *(void **)GC_fl_head_;                                                            \
          result = (void *)GC_fl_head_;                                                                         \
          GC_FAST_M_AO_STORE(GC_fl_entry_, GC_fl_next_);                                                        \
          init;                                                                                                 \
          GC_PREFETCH_FOR_WRITE(GC_fl_next_);                                                                   \
          if ((kind) != GC_I_PTRFREE) {                                                                         \
            GC_end_stubborn_change(GC_fl_entry_);                                                               \
            GC_reachable_here(GC_fl_next_);                                                                     \
          }                                                                                                     \
          GC_ASSERT(GC_size(result) >= (granules) * GC_GRANULE_BYTES);                                          \
          GC_ASSERT((kind) == GC_I_PTRFREE || ((GC_word *)result)[1] == 0);                                     \
          break;                                                                                                \
        }                                                                                                       \
        if ((GC_signed_word)GC_fl_head_ - (GC_signed_word)(num_direct) <= 0 && GC_fl_head_ != 0) {              \
          /* A small counter: one more direct allocation. */                                                    \
          GC_FAST_M_AO_STORE(GC_fl_entry_, (char *)GC_fl_head_ + (granules) + 1);                               \
          result = (default_expr);                                                                              \
          break;                                                                                                \
        }                                                                                                       \
        /* Empty, or done with direct allocations: refill the list. */                                          \
        GC_generic_malloc_many((granules) == 0 ? GC_GRANULE_BYTES : GC_RAW_BYTES_FROM_INDEX(granules), kind, \
                               GC_fl_entry_);                                                                   \
        GC_fl_head_ = *GC_fl_entry_;                                                                            \
        if (GC_fl_head_ == 0) {                                                                                 \
          result = (*GC_get_oom_fn())((granules) * GC_GRANULE_BYTES);                                           \
          break;                                                                                                \
        }                                                                                                       \
      }                                                                                                         \
    }                                                                                                           \
  } while (0)

/* Granules needed for n words (rounding up). */
#define GC_WORDS_TO_WHOLE_GRANULES(n) GC_WORDS_TO_GRANULES((n) + GC_GRANULE_WORDS - 1)

/* Sets result to a new object of n words (not bytes) and the given kind
 * from tiny_fl, a zeroed array of GC_TINY_FREELISTS entries (per thread,
 * or global in a single-threaded program); takes no lock. */
#define GC_MALLOC_WORDS_KIND(result, n, tiny_fl, kind, init)                                                  \
  do {                                                                                                        \
    size_t GC_fl_granules_ = GC_WORDS_TO_WHOLE_GRANULES(n);                                                   \
    GC_FAST_MALLOC_GRANS(result, GC_fl_granules_, tiny_fl, 0, kind,                                           \
                         GC_malloc_kind(GC_fl_granules_ * GC_GRANULE_BYTES, kind), init);                     \
  } while (0)

/* A scanned object of n words, all zero. */
#define GC_MALLOC_WORDS(result, n, tiny_fl) \
  GC_MALLOC_WORDS_KIND(result, n, tiny_fl, GC_I_NORMAL, *(void **)(result) = 0)

/* A pointer-free object of n words, not zeroed. */
#define GC_MALLOC_ATOMIC_WORDS(result, n, tiny_fl) GC_MALLOC_WORDS_KIND(result, n, tiny_fl, GC_I_PTRFREE, (void)0)

/* A scanned two-word object {first, second}, as Lisp's cons. */
#define GC_CONS(result, first, second, tiny_fl)                     \
  do {                                                              \
    void *GC_cons_first_ = (void *)(first);                         \
    void *GC_cons_second_ = (void *)(second);                       \
    GC_MALLOC_WORDS_KIND(result, 2, tiny_fl, GC_I_NORMAL, (void)0); \
    if ((result) != 0) {                                            \
      *(void **)(result) = GC_cons_first_;                          \
      GC_PTR_STORE_AND_DIRTY((void **)(result) + 1, GC_cons_second_); \
      GC_reachable_here(GC_cons_first_);                            \
    }                                                               \
  } while (0)
/* clang-format on */

/* Prints the shared free list of the given kind and size. */
GC_API void GC_CALL GC_print_free_list(int /* kind */, size_t /* sz_in_granules */);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GC_INLINE_H */
