/* mallocgc's Boehm-compatible headers: back-pointer debugging (which object
 * or root refers to a given object).
 *
 * Boehm GC declares GC_get_back_ptr_info, GC_generate_random_heap_address,
 * GC_generate_random_valid_address, GC_generate_random_backtrace and
 * GC_print_backtrace here; they exist only in a collector built with
 * KEEP_BACK_PTRS, which Debian's libgc.so.1 is not, and mallocgc's
 * libgc.so.1 does not provide them either. Only the type remains, so that
 * code that mentions it compiles. */
#ifndef GC_BACKPTR_H
#define GC_BACKPTR_H

#ifndef GC_H
#include "gc.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Where a reference to an object came from. */
typedef enum {
  GC_UNREFERENCED,   /* nothing known */
  GC_NO_SPACE,       /* the object is not a debugging allocation */
  GC_REFD_FROM_ROOT, /* from a root, at *base_p */
  GC_REFD_FROM_REG,  /* from a register (a root without an address) */
  GC_REFD_FROM_HEAP, /* from another heap object */
  GC_FINALIZER_REFD  /* kept alive by its finalizer */
} GC_ref_kind;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GC_BACKPTR_H */
