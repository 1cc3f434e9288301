/* mallocgc's Boehm-compatible headers: allocation for gcj-style objects,
 * whose first word points to a type record (a vtable) that holds the
 * object's mark descriptor in its second word (see gc_mark.h). The type
 * record must make every object of the kind large enough to hold that
 * first word, and the descriptor's offset must not be 0. */
#ifndef GC_GCJ_H
#define GC_GCJ_H

#ifndef GC_H
#include "gc.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Must come before the first gcj allocation. mp_index is the mark
 * procedure number to use for debugging gcj objects (usually
 * GC_GCJ_RESERVED_MARK_PROC_INDEX) and mp that procedure (a GC_mark_proc,
 * typed void * here so that gc_mark.h is not needed); it is called on
 * debugging objects with env 1. */
GC_API void GC_CALL GC_init_gcj_malloc(int /* mp_index */, void * /* really mark_proc */ /* mp */);

/* A zeroed object whose first word is set to the type record. Out of
 * memory returns what GC_oom_fn returns. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
    GC_gcj_malloc(size_t /* lb */, void * /* ptr_to_struct_containing_descr */);

/* The debugging version: such objects are always scanned by the mark
 * procedure given to GC_init_gcj_malloc. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
    GC_debug_gcj_malloc(size_t /* lb */, void * /* ptr_to_struct_containing_descr */, GC_EXTRA_PARAMS);

/* For a large object always referred to near its start. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
    GC_gcj_malloc_ignore_off_page(size_t /* lb */, void * /* ptr_to_struct_containing_descr */);

/* The kinds of gcj objects and of debugging gcj objects. */
GC_API int GC_gcj_kind;
GC_API int GC_gcj_debug_kind;

#ifdef GC_DEBUG
#define GC_GCJ_MALLOC(s, d) GC_debug_gcj_malloc(s, d, GC_EXTRAS)
#define GC_GCJ_MALLOC_IGNORE_OFF_PAGE(s, d) GC_debug_gcj_malloc(s, d, GC_EXTRAS)
#else
#define GC_GCJ_MALLOC(s, d) GC_gcj_malloc(s, d)
#define GC_GCJ_MALLOC_IGNORE_OFF_PAGE(s, d) GC_gcj_malloc_ignore_off_page(s, d)
#endif

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GC_GCJ_H */
