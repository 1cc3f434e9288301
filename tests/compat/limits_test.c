/* GC_set_max_heap_size as a hard limit: allocating past it calls GC_oom_fn
 * (GC_set_oom_fn) with the size asked for, and the allocation returns
 * what that function returns, a NULL or a previously allocated object.
 * Running out is survivable: once garbage is dropped, or the limit is
 * raised, allocation goes on. GC_expand_hp fails past the limit. A program
 * of its own, since a limit would disturb the other tests. */
#include "compat_test.h"

#define MiB ((size_t)1 << 20)

void* volatile limits_oom_result; /* what oom() returns */
void* volatile limits_sentinel;   /* an object for it to return */
static volatile int g_oom_calls;
static volatile size_t g_oom_bytes;

static void* GC_CALLBACK oom(size_t bytes) {
  g_oom_calls++;
  g_oom_bytes = bytes;
  return limits_oom_result;
}

/* The live objects, in a malloc'd array registered with GC_add_roots: not
 * a chain, where one stale reference to its head (Boehm's own statics hold
 * the start of each heap section it maps) would keep it all. */
static void** g_live;
static long g_live_max;

static void live_init(long max) {
  g_live_max = max;
  g_live = calloc((size_t)max, sizeof(void*));
  CHECK(g_live != NULL);
  GC_add_roots(g_live, g_live + max);
}

static void live_drop(void) { memset(g_live, 0, (size_t)g_live_max * sizeof(void*)); }

static void live_free(void) {
  GC_remove_roots(g_live, g_live + g_live_max);
  free(g_live);
  g_live = NULL;
}

/* Allocates objects of `size` bytes into g_live until an allocation
 * returns NULL or the array is full; returns how many were made. */
static NOINLINE long fill_heap(size_t size) {
  long count = 0;
  while (count < g_live_max) {
    void** p = GC_malloc(size);
    if (p == NULL) break;
    p[1] = (void*)(uintptr_t)count; /* a small integer, not a pointer */
    g_live[count++] = p;
  }
  return count;
}

/* The first count live objects kept their contents. */
static NOINLINE int live_intact(long count) {
  for (long i = 0; i < count; i++) {
    void** p = g_live[i];
    if (p == NULL || p[1] != (void*)(uintptr_t)i) return 0;
  }
  return 1;
}

static NOINLINE int allocations_succeed(size_t size, int count) {
  for (int i = 0; i < count; i++) {
    char* p = GC_malloc(size);
    if (p == NULL) return 0;
    p[size - 1] = 1;
  }
  return 1;
}

static void check_limit(size_t object_size, size_t headroom, long max_objects) {
  limits_sentinel = GC_malloc_uncollectable(16);
  CHECK(limits_sentinel != NULL);
  size_t limit = GC_get_heap_size() + headroom;
  live_init(max_objects);
  GC_set_max_heap_size(limit);

  /* Past the limit: GC_oom_fn is called and its NULL returned. */
  int calls = g_oom_calls;
  long count = fill_heap(object_size);
  CHECK_CMP(count, <, max_objects);
  CHECK_CMP(count, >, 0);
  CHECK_CMP(g_oom_calls, >, calls);
  CHECK_CMP(g_oom_bytes, >=, object_size);
  CHECK_CMP(GC_get_heap_size(), <=, limit);
  CHECK(live_intact(count)); /* failing touched nothing that lives */

  /* GC_oom_fn's result is what the allocation returns. */
  limits_oom_result = limits_sentinel;
  calls = g_oom_calls;
  CHECK(GC_malloc(object_size) == limits_sentinel);
  CHECK_CMP(g_oom_calls, ==, calls + 1);
  limits_oom_result = NULL;
  GC_free(limits_sentinel);
  limits_sentinel = NULL;
#ifdef MGC_BOEHM_REFERENCE
  /* Still out. (mallocgc gives the freed sentinel's page back at once when
   * it was the last object on it, and may then have room for one more.) */
  CHECK(GC_malloc(object_size) == NULL);
#endif

  /* Survivable: with the live data dropped there is room again. */
  live_drop();
  collect();
  CHECK(allocations_succeed(object_size, (int)(headroom / 2 / object_size)));
  CHECK_CMP(GC_get_heap_size(), <=, limit);

  /* Raising the limit lets allocation go on with the data kept. */
  count = fill_heap(object_size);
  CHECK_CMP(count, <, max_objects);
  GC_set_max_heap_size(limit + 64 * MiB);
  CHECK(allocations_succeed(object_size, 4));
  GC_set_max_heap_size(0); /* unbounded, the default */
  CHECK(allocations_succeed(object_size, (int)(headroom / object_size)));
  CHECK(live_intact(count));
  live_free();
  collect();
}

static void test_oom_fn_setter(void) {
  GC_oom_func old = GC_get_oom_fn();
  CHECK(old != NULL);
  GC_set_oom_fn(oom);
  CHECK(GC_get_oom_fn() == oom);
}

static void test_large_objects(void) { check_limit(MiB, 32 * MiB, 1000); }

static void test_small_objects(void) { check_limit(64, 16 * MiB, 4000000); }

static void test_expand_hp_at_limit(void) {
  size_t heap = GC_get_heap_size();
  GC_set_max_heap_size(heap);
  CHECK(GC_expand_hp(16 * MiB) == 0);
  CHECK_CMP(GC_get_heap_size(), ==, heap);
  GC_set_max_heap_size(0);
  CHECK(GC_expand_hp(16 * MiB) == 1);
  CHECK_CMP(GC_get_heap_size(), >=, heap + 16 * MiB);
}

int main(void) {
  GC_INIT();
  /* Boehm warns when it runs out ("Out of Memory! Heap size: ..."). */
  GC_set_warn_proc(count_warning);
  run("GC_set_oom_fn", test_oom_fn_setter);
  run("heap limit, large objects", test_large_objects);
  run("heap limit, small objects", test_small_objects);
  run("GC_expand_hp at the limit", test_expand_hp_at_limit);
  return finish();
}
