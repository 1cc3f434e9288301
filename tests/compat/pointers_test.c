/* Which pointers keep an object, with GC_all_interior_pointers on (the
 * default): a pointer to any byte of the object, and a pointer one past
 * the end of the requested size (Boehm adds a byte to every object so that
 * p + size still lies inside it), whether held in static data or in a
 * heap object. When the pointers go, the objects go. The same with
 * interior pointers off is pointers_nointerior_test.c (it must be set
 * before GC_INIT, so it is a program of its own). */
#include "compat_test.h"

#define N 32

void* volatile pointers_root[N];
static watch_t g_obj[N];
static size_t g_size[N];
static size_t g_offset[N];
static uintptr_t g_hidden[N];

static void clear_roots(void) {
  for (int i = 0; i < N; i++) pointers_root[i] = NULL;
}

static void reset(void) {
  clear_roots();
  unwatch_all(g_obj, N);
}

/* Object i of size[i] bytes, filled, referenced only by base + offset[i]
 * in the root, or (heap) in word 1 of a rooted GC_malloc object. */
static NOINLINE void make_displaced(int i, int heap) {
  char* p = GC_malloc(g_size[i]);
  CHECK(p != NULL);
  fill(p, g_size[i], (unsigned)i);
  watch(&g_obj[i], p);
  g_hidden[i] = hide(p);
  if (heap) {
    void** holder = GC_malloc(2 * sizeof(void*));
    CHECK(holder != NULL);
    holder[1] = p + g_offset[i];
    pointers_root[i] = holder;
  } else {
    pointers_root[i] = p + g_offset[i];
  }
}

static NOINLINE int displaced_intact(int i) { return filled(reveal(g_hidden[i]), g_size[i], (unsigned)i); }

static void check_kept_then_reclaimed(int heap) {
  for (int i = 0; i < N; i++) make_displaced(i, heap);
  collect();
  collect();
  CHECK_ALL_ALIVE(g_obj, N);
  for (int i = 0; i < N; i++) CHECK(displaced_intact(i));
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_obj, N);
  reset();
}

static void test_default_on(void) { CHECK(GC_get_all_interior_pointers() == 1); }

/* Offsets from 1 to the last byte, small and large objects. */
static void set_interior(void) {
  static const size_t sizes[] = {16, 24, 64, 100, 1000, 5000, 70000, 300000};
  for (int i = 0; i < N; i++) {
    g_size[i] = sizes[i % 8];
    switch (i / 8) {
      case 0:
        g_offset[i] = 1;
        break;
      case 1:
        g_offset[i] = g_size[i] / 2;
        break;
      case 2:
        g_offset[i] = g_size[i] - 1;
        break;
      default:
        g_offset[i] = g_size[i] - sizeof(void*);
        break;
    }
  }
}

static void test_interior_static(void) {
  set_interior();
  check_kept_then_reclaimed(0);
}

static void test_interior_heap(void) {
  set_interior();
  check_kept_then_reclaimed(1);
}

/* One past the end of the requested size, for sizes around the size
 * classes' and the page's boundaries. */
static void set_one_past_end(void) {
  static const size_t sizes[] = {1,   8,    15,   16,   24,   32,   48,   64,   100,   128,   256,
                                 512, 1024, 2000, 2048, 2049, 4095, 4096, 8192, 12288, 65536, 100000,
                                 8,   16,   32,   64,   128,  256,  4096, 8192, 16,    32};
  for (int i = 0; i < N; i++) {
    g_size[i] = sizes[i];
    g_offset[i] = sizes[i];
  }
}

static void test_one_past_end_static(void) {
  set_one_past_end();
  check_kept_then_reclaimed(0);
}

static void test_one_past_end_heap(void) {
  set_one_past_end();
  check_kept_then_reclaimed(1);
}

int main(void) {
  GC_INIT();
  run("GC_all_interior_pointers on by default", test_default_on);
  run("interior pointers in static data", test_interior_static);
  run("interior pointers in the heap", test_interior_heap);
  run("one past the end in static data", test_one_past_end_static);
  run("one past the end in the heap", test_one_past_end_heap);
  return finish();
}
