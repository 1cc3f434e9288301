/* mallocgc's Boehm-compatible headers: disclaim procedures, which run on an
 * object of a kind just before the collector reclaims it and may keep it
 * one more cycle, and GC_finalized_malloc, a cheaper finalization built on
 * them. */
#ifndef GC_DISCLAIM_H
#define GC_DISCLAIM_H

#include "gc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sets up the kind that GC_finalized_malloc uses; call it once before the
 * first such allocation. Thread-safe. */
GC_API void GC_CALL GC_init_finalized_malloc(void);

/* Called with the allocator lock held on an unreachable object about to be
 * reclaimed; nonzero keeps it for this cycle (it must not be revived
 * otherwise). */
typedef int(GC_CALLBACK *GC_disclaim_proc)(void * /*obj*/);

/* Registers proc for every object of the kind. With mark_from_all nonzero,
 * what such objects point to stays alive until they are reclaimed (long
 * chains then take many cycles). GC_free does not call proc. Nothing in
 * leak-detection mode. */
GC_API void GC_CALL GC_register_disclaim_proc(int /*kind*/, GC_disclaim_proc /*proc*/, int /*mark_from_all*/)
    GC_ATTR_NONNULL(2);

/* What GC_finalized_malloc calls on the object: proc(obj, cd). */
struct GC_finalizer_closure {
  GC_finalization_proc proc;
  void *cd;
};

/* An object of size bytes finalized by fc when it becomes unreachable, in
 * the same cycle that reclaims it (proc must not revive it); what proc can
 * reach, fc included, stays alive until then. GC_size of such an object is
 * a little larger than size and GC_base points one word before it. Needs
 * GC_init_finalized_malloc. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
    GC_finalized_malloc(size_t /*size*/, const struct GC_finalizer_closure * /*fc*/) GC_ATTR_NONNULL(2);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GC_DISCLAIM_H */
