/* mallocgc's Boehm-compatible headers: the collector's marking interface,
 * for language runtimes that tell it how their objects are laid out: mark
 * descriptors, mark procedures, new object kinds, and the mark stack they
 * push onto.
 *
 * A mark descriptor is one word whose low GC_DS_TAG_BITS bits say how to
 * read the rest:
 *   GC_DS_LENGTH      the word is a length in bytes: scan that many bytes;
 *   GC_DS_BITMAP      the other bits are a bitmap of the words that may hold
 *                     pointers, most significant bit for the first word;
 *   GC_DS_PROC        call mark procedure number PROC with argument ENV
 *                     (built with GC_MAKE_PROC);
 *   GC_DS_PER_OBJECT  the real descriptor is in the object: at byte offset
 *                     descr & ~GC_DS_TAGS, or, when descr is negative (as
 *                     a signed word), at offset -(descr & ~GC_DS_TAGS) -
 *                     GC_INDIR_PER_OBJ_BIAS inside the object that the
 *                     object's first word points to (a type record).
 * With threads, a per-object descriptor must sit in one of the object's
 * first two or last two words, the only ones cleared under the lock. */
#ifndef GC_MARK_H
#define GC_MARK_H

#ifndef GC_H
#include "gc.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* About how many bytes one call of a mark procedure should scan; more work
 * is split by pushing the procedure again. */
#define GC_PROC_BYTES 100

/* A mark stack entry: opaque to mark procedures, which only pass pointers
 * to entries along. */
#if defined(GC_BUILD) || defined(NOT_GCBUILD)
struct GC_ms_entry;
#else
struct GC_ms_entry {
  void *opaque;
};
#endif

/* A mark procedure: pushes what the object at addr points to (with
 * GC_MARK_AND_PUSH) between mark_stack_ptr and mark_stack_limit and returns
 * the new top. env is the ENV of the object's descriptor. It must mark
 * something before pushing more than one entry, may only look where the
 * conservative marker would, may run on a free-list object (zeroed but for
 * its first word), and may run in parallel marker threads. At least one
 * entry is always free. */
typedef struct GC_ms_entry *(*GC_mark_proc)(GC_word * /* addr */, struct GC_ms_entry * /* mark_stack_ptr */,
                                            struct GC_ms_entry * /* mark_stack_limit */, GC_word /* env */);

/* Mark procedure numbers have GC_LOG_MAX_MARK_PROCS bits; the first
 * GC_RESERVED_MARK_PROCS are for fixed clients (index 0 is gcj's). */
#define GC_LOG_MAX_MARK_PROCS 6
#define GC_MAX_MARK_PROCS (1 << GC_LOG_MAX_MARK_PROCS)
#define GC_RESERVED_MARK_PROCS 8
#define GC_GCJ_RESERVED_MARK_PROC_INDEX 0

/* clang-format off */
/* The descriptor tags (see the top of this file). */
#define GC_DS_TAG_BITS 2
#define GC_DS_TAGS ((1 << GC_DS_TAG_BITS) - 1)
#define GC_DS_LENGTH 0
#define GC_DS_BITMAP 1
#define GC_DS_PROC 2
#define GC_DS_PER_OBJECT 3
/* A GC_DS_PROC descriptor: procedure proc_index with argument env. */
#define GC_MAKE_PROC(proc_index, env) \
  (((((env) << GC_LOG_MAX_MARK_PROCS) | (proc_index)) << GC_DS_TAG_BITS) | GC_DS_PROC)
/* The offset bias of indirect per-object descriptors. */
#define GC_INDIR_PER_OBJ_BIAS 0x10
/* clang-format on */

/* Bounds of the heap's addresses (including room it may grow into): a
 * word outside them is not a heap pointer. */
GC_API void *GC_least_plausible_heap_addr;
GC_API void *GC_greatest_plausible_heap_addr;

/* From a mark procedure: if obj is a heap object not marked yet, marks it
 * and pushes it to be scanned by its own descriptor. src is where obj was
 * found (for debugging). Returns the new top; copes with a full stack. */
GC_API struct GC_ms_entry *GC_CALL GC_mark_and_push(void * /* obj */, struct GC_ms_entry * /* mark_stack_ptr */,
                                                    struct GC_ms_entry * /* mark_stack_limit */, void ** /* src */);

/* GC_mark_and_push, skipping the call for words that cannot be heap
 * pointers. */
/* clang-format off */
#define GC_MARK_AND_PUSH(obj, msp, lim, src)                                                          \
  ((GC_word)(obj) >= (GC_word)GC_least_plausible_heap_addr &&                                         \
           (GC_word)(obj) <= (GC_word)GC_greatest_plausible_heap_addr                                 \
       ? GC_mark_and_push(obj, msp, lim, src)                                                         \
       : (msp))
/* clang-format on */

/* The size of the header of debugging allocations, and the user's pointer
 * for an object's base; a function so that mark procedures need not be
 * recompiled if it changes. */
GC_API GC_ATTR_CONST size_t GC_CALL GC_get_debug_header_size(void);
#define GC_USR_PTR_FROM_BASE(p) ((void *)((char *)(p) + GC_get_debug_header_size()))

/* The same as a variable, for old programs (constant in the library). */
GC_API GC_ATTR_DEPRECATED size_t GC_debug_header_size;

/* ---- New kinds -------------------------------------------------------------
 * The _inner versions expect the caller to hold the allocator lock. */

/* A new array of free lists, for GC_new_kind. */
GC_API void **GC_CALL GC_new_free_list(void);
GC_API void **GC_CALL GC_new_free_list_inner(void);

/* A new kind of object using free_list, scanned by the descriptor
 * template (plus the object's size, if add_size_to_descriptor), zeroed on
 * allocation if clear_new_objects. Both flags are 0 or 1. */
GC_API unsigned GC_CALL GC_new_kind(void ** /* free_list */, GC_word /* mark_descriptor_template */,
                                    int /* add_size_to_descriptor */, int /* clear_new_objects */) GC_ATTR_NONNULL(1);
GC_API unsigned GC_CALL GC_new_kind_inner(void ** /* free_list */, GC_word /* mark_descriptor_template */,
                                          int /* add_size_to_descriptor */, int /* clear_new_objects */)
    GC_ATTR_NONNULL(1);

/* A new mark procedure number, for GC_MAKE_PROC. */
GC_API unsigned GC_CALL GC_new_proc(GC_mark_proc);
GC_API unsigned GC_CALL GC_new_proc_inner(GC_mark_proc);

/* An object of the given kind (the built-in ones or GC_new_kind's). With
 * threads, kinds whose descriptor lives in the object need care: it is
 * wrong until the program writes it. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_generic_malloc(size_t /* lb */, int /* knd */);

/* The same, for a large object always referred to near its start. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
    GC_generic_malloc_ignore_off_page(size_t /* lb */, int /* knd */);

/* An uncollectable object of the given kind. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
    GC_generic_malloc_uncollectable(size_t /* lb */, int /* knd */);

/* An object of the same kind as another (GC_get_kind_and_size); not for
 * gcj or typed kinds. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
    GC_generic_or_special_malloc(size_t /* size */, int /* knd */);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
    GC_debug_generic_or_special_malloc(size_t /* size */, int /* knd */, GC_EXTRA_PARAMS);

#ifdef GC_DEBUG
#define GC_GENERIC_OR_SPECIAL_MALLOC(sz, knd) GC_debug_generic_or_special_malloc(sz, knd, GC_EXTRAS)
#else
#define GC_GENERIC_OR_SPECIAL_MALLOC(sz, knd) GC_generic_or_special_malloc(sz, knd)
#endif

/* The kind of the object at the argument, and its size into *psize if
 * psize is not NULL. */
GC_API int GC_CALL GC_get_kind_and_size(const void *, size_t * /* psize */) GC_ATTR_NONNULL(1);

/* Writes a description of the object p's type into out_buf (at most
 * GC_TYPE_DESCR_LEN bytes), for the debugging printouts of one kind. */
typedef void(GC_CALLBACK *GC_describe_type_fn)(void * /* p */, char * /* out_buf */);
#define GC_TYPE_DESCR_LEN 40
GC_API void GC_CALL GC_register_describe_type_fn(int /* kind */, GC_describe_type_fn);

/* Clears part of the unused stack; returns its argument (NULL allowed), so
 * it may end a function in a tail call. */
GC_API void *GC_CALL GC_clear_stack(void *);

/* Called at the start of every full collection with the allocator lock
 * held; it must not allocate or call into the collector. May be NULL. */
typedef void(GC_CALLBACK *GC_start_callback_proc)(void);
GC_API void GC_CALL GC_set_start_callback(GC_start_callback_proc);
GC_API GC_start_callback_proc GC_CALL GC_get_start_callback(void);

/* An object's mark bit (allocator lock held): is_marked returns 1 or 0. */
GC_API int GC_CALL GC_is_marked(const void *) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_clear_mark_bit(const void *) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_set_mark_bit(const void *) GC_ATTR_NONNULL(1);

/* From the push-other-roots hook: push the range [bottom, top) to be
 * scanned; _eager scans it at once; _conditional pushes all of it or, if
 * all is 0, only its dirty pages. */
GC_API void GC_CALL GC_push_all(void * /* bottom */, void * /* top */);
GC_API void GC_CALL GC_push_all_eager(void * /* bottom */, void * /* top */);
GC_API void GC_CALL GC_push_conditional(void * /* bottom */, void * /* top */, int /* bool all */);
GC_API void GC_CALL GC_push_finalizer_structures(void);

/* Called at each collection to push roots the collector cannot find; a
 * replacement should call the one it replaces. */
typedef void(GC_CALLBACK *GC_push_other_roots_proc)(void);
GC_API void GC_CALL GC_set_push_other_roots(GC_push_other_roots_proc);
GC_API GC_push_other_roots_proc GC_CALL GC_get_push_other_roots(void);

/* Calls proc(obj, bytes, client_data) for every reachable object, with the
 * allocator lock held (the caller holds it). */
typedef void(GC_CALLBACK *GC_reachable_object_proc)(void * /* obj */, size_t /* bytes */, void * /* client_data */);
GC_API void GC_CALL GC_enumerate_reachable_objects_inner(GC_reachable_object_proc, void * /* client_data */)
    GC_ATTR_NONNULL(1);

/* Nonzero if the address lies in a temporary root range. */
GC_API int GC_CALL GC_is_tmp_root(void *);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GC_MARK_H */
