// Boehm's global variables, the data symbols of libgc.so.1, with Boehm's
// defaults (those of Debian's 8.2.2 build) and sizes. Programs compiled
// against older headers read and write them directly, so the face reads
// each where it matters instead of caching it:
//   GC_dont_gc                before every cycle (the may-collect hook);
//   GC_all_interior_pointers  at initialisation (the extra byte);
//   GC_free_space_divisor     at the start of every cycle (the pacer);
//   GC_java_finalization      at the start of every cycle;
//   GC_finalize_on_demand     whenever finalizers are queued or asked for;
//   GC_finalizer_notifier, GC_oom_fn, GC_push_other_roots, GC_on_heap_resize
//                             each time they would be called;
//   GC_no_dls                 when each cycle lists the loaded objects;
//   GC_max_retries            on every failed allocation.
// The face writes GC_gc_no, GC_parallel, GC_non_gc_bytes, GC_stackbottom
// and the plausible heap bounds. The rest (GC_dont_expand,
// GC_dont_precollect, GC_find_leak, GC_full_freq, GC_time_limit,
// GC_use_entire_heap) have their getters and setters; what each does here
// is in README.md's list of differences. The free list pointers and
// GC_arrays are Boehm internals that no program reads: they exist so that
// the symbol set is Boehm's.
#include "compat/boehm/boehm.hpp"

extern "C" {

int GC_all_interior_pointers = 1;
int GC_java_finalization = 1;
GC_word GC_free_space_divisor = 3;
int GC_full_freq = 19;
unsigned long GC_time_limit = GC_TIME_UNLIMITED;
int GC_finalize_on_demand = 0;
int GC_dont_gc = 0;
int GC_dont_expand = 0;
int GC_dont_precollect = 0;
int GC_find_leak = 0;
int GC_no_dls = 0;
int GC_use_entire_heap = 0;
GC_word GC_max_retries = 0;
GC_word GC_gc_no = 0;
GC_word GC_non_gc_bytes = 0;
int GC_parallel = 0;
char* GC_stackbottom = nullptr;
void* GC_least_plausible_heap_addr = nullptr;
void* GC_greatest_plausible_heap_addr = nullptr;
const size_t GC_debug_header_size = 32;
int GC_gcj_kind = 0;
int GC_gcj_debug_kind = 0;

GC_oom_func GC_oom_fn = mgc::internal::boehm::default_oom_fn;
GC_on_heap_resize_proc GC_on_heap_resize = nullptr;
GC_finalizer_notifier_proc GC_finalizer_notifier = nullptr;
GC_push_other_roots_proc GC_push_other_roots = mgc::internal::boehm::default_push_other_roots;
GC_abort_func GC_on_abort = mgc::internal::boehm::default_abort_func;
void (*GC_is_valid_displacement_print_proc)(void*) = mgc::internal::boehm::default_displacement_print_proc;
void (*GC_is_visible_print_proc)(void*) = mgc::internal::boehm::default_visible_print_proc;
void (*GC_same_obj_print_proc)(void*, void*) = mgc::internal::boehm::default_same_obj_print_proc;

void** GC_objfreelist_ptr = nullptr;
void** GC_aobjfreelist_ptr = nullptr;
void** GC_uobjfreelist_ptr = nullptr;
void** GC_auobjfreelist_ptr = nullptr;
char GC_arrays[0x2c9f0];

}  // extern "C"
