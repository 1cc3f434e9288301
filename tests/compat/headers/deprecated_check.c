/* Uses every declaration that Boehm GC 8.2's headers mark deprecated, and
 * nothing else; deprecated_check.cmake compiles it and expects exactly one
 * deprecation warning per name in its list. (interface_check.c, built with
 * -Werror, shows that nothing else is deprecated.) */
#include <gc.h>
#include <gc/gc_mark.h>

void use_deprecated(void);

void use_deprecated(void) {
  (void)&GC_gc_no;
  (void)&GC_parallel;
  (void)&GC_oom_fn;
  (void)&GC_on_heap_resize;
  (void)&GC_find_leak;
  (void)&GC_all_interior_pointers;
  (void)&GC_finalize_on_demand;
  (void)&GC_java_finalization;
  (void)&GC_finalizer_notifier;
  (void)&GC_dont_gc;
  (void)&GC_dont_expand;
  (void)&GC_use_entire_heap;
  (void)&GC_full_freq;
  (void)&GC_non_gc_bytes;
  (void)&GC_no_dls;
  (void)&GC_free_space_divisor;
  (void)&GC_max_retries;
  (void)&GC_stackbottom;
  (void)&GC_dont_precollect;
  (void)&GC_time_limit;
  (void)&GC_debug_header_size;
  (void)&GC_malloc_stubborn;
  (void)&GC_change_stubborn;
  (void)&GC_debug_malloc_stubborn;
  (void)&GC_debug_change_stubborn;
}
