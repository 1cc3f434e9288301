/* interface_check.c compiled with GC_DEBUG (the macros call the GC_debug_*
 * functions) and with every GC_INIT setting that can be checked afterwards;
 * then leak_detector.h's redirections. */
#define GC_DEBUG 1
#define GC_FORCE_UNMAP_ON_GCOLLECT 1
#define GC_MAX_RETRIES 2
#define GC_ALLOCD_BYTES_PER_FINALIZER 20000
#define GC_FREE_SPACE_DIVISOR 5
#define GC_FULL_FREQ 7
#define GC_TIME_LIMIT 60
#define GC_MAXIMUM_HEAP_SIZE (8UL << 30)
#define GC_IGNORE_WARN 1
#define GC_INITIAL_HEAP_SIZE (4UL << 20)

#define HEADERS_CHECK_ENTRY headers_check_debug
#define HEADERS_CHECK_NO_MAIN
#define HEADERS_CHECK_AFTER check_init_settings
static void check_init_settings(void);
/* leak_detector.h must come after interface_check.c. */
/* clang-format off */
#include "interface_check.c"

#include <gc/leak_detector.h>
/* clang-format on */

static void check_init_settings(void) {
  CHECK(GC_get_force_unmap_on_gcollect() == 1);
  CHECK(GC_get_max_retries() == 2);
  CHECK(GC_get_allocd_bytes_per_finalizer() == 20000);
  CHECK(GC_get_free_space_divisor() == 5);
  CHECK(GC_get_full_freq() == 7);
  CHECK(GC_get_time_limit() == 60);
  CHECK(GC_get_warn_proc() == GC_ignore_warn_proc);
  CHECK(GC_get_heap_size() >= (4UL << 20));
  GC_set_force_unmap_on_gcollect(0);

  /* leak_detector.h: the C library's allocators are the collector's. */
  char *m = (char *)malloc(10);
  CHECK(m != 0 && GC_base(m) != 0);
  m = (char *)realloc(m, 100);
  CHECK(m != 0 && GC_base(m) != 0);
  free(m);
  char *z = (char *)calloc(4, 8);
  CHECK(z != 0 && z[31] == 0);
  free(z);
  char *sd = strdup("leak");
  CHECK(sd != 0 && GC_base(sd) != 0 && strcmp(sd, "leak") == 0);
  void *al = 0;
  CHECK(posix_memalign(&al, 64, 64) == 0 && al != 0 && ((GC_word)al & 63) == 0);
  CHECK_LEAKS();
}
