/* GC_set_all_interior_pointers(0) before GC_INIT: in static data and in
 * heap objects only a pointer to an object's start, or to a displacement
 * registered with GC_register_displacement, keeps the object; any other
 * interior pointer does not. Pointers from the stack are the exception
 * gc.h states: "All pointers to the interior of objects from the stack are
 * considered valid in any case". */
#include "compat_test.h"

#define N 32
#define SIZE 64
#define REGISTERED 8    /* GC_register_displacement(8) */
#define UNREGISTERED 40 /* never registered */

void* volatile nointerior_root[N];
static watch_t g_obj[N];
static uintptr_t g_hidden[N];

static void clear_roots(void) {
  for (int i = 0; i < N; i++) nointerior_root[i] = NULL;
}

static void reset(void) {
  clear_roots();
  unwatch_all(g_obj, N);
}

static NOINLINE void make_displaced(int i, size_t offset, int heap) {
  char* p = GC_malloc(SIZE);
  CHECK(p != NULL);
  fill(p, SIZE, (unsigned)i);
  watch(&g_obj[i], p);
  g_hidden[i] = hide(p);
  if (heap) {
    void** holder = GC_malloc(2 * sizeof(void*));
    CHECK(holder != NULL);
    holder[1] = p + offset;
    nointerior_root[i] = holder;
  } else {
    nointerior_root[i] = p + offset;
  }
}

static NOINLINE int intact(int i) { return filled(reveal(g_hidden[i]), SIZE, (unsigned)i); }

static void check_kept(size_t offset, int heap) {
  for (int i = 0; i < N; i++) make_displaced(i, offset, heap);
  collect();
  collect();
  CHECK_ALL_ALIVE(g_obj, N);
  for (int i = 0; i < N; i++) CHECK(intact(i));
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_obj, N);
  reset();
}

COMPAT_HELPER void check_not_kept(size_t offset, int heap) {
  for (int i = 0; i < N; i++) make_displaced(i, offset, heap);
  collect();
  CHECK_MOSTLY_RECLAIMED(g_obj, N);
  reset();
}

static void test_off(void) { CHECK(GC_get_all_interior_pointers() == 0); }

static void test_start(void) {
  check_kept(0, 0);
  check_kept(0, 1);
}

static void test_registered_displacement(void) {
  check_kept(REGISTERED, 0);
  check_kept(REGISTERED, 1);
}

/* Boehm only. mallocgc recognises every interior pointer whatever this
 * setting says (README.md: recognising more is allowed; it keeps more,
 * never less). */
static void test_other_interior(void) {
#ifdef MGC_BOEHM_REFERENCE
  check_not_kept(UNREGISTERED, 0);
  check_not_kept(UNREGISTERED, 1);
#else
  check_kept(UNREGISTERED, 0);
  check_kept(UNREGISTERED, 1);
#endif
}

/* The only reference is base + UNREGISTERED in this frame. */
static NOINLINE void hold_on_stack(void) {
  char* volatile interior = (char*)reveal(g_hidden[0]) + UNREGISTERED;
  collect();
  collect();
  CHECK(alive(&g_obj[0]));
  CHECK(filled(interior - UNREGISTERED, SIZE, 0));
  interior = NULL;
}

static NOINLINE void make_unrooted(void) {
  char* p = GC_malloc(SIZE);
  CHECK(p != NULL);
  fill(p, SIZE, 0);
  watch(&g_obj[0], p);
  g_hidden[0] = hide(p);
}

static void test_stack_interior(void) {
  make_unrooted();
  hold_on_stack();
  reset();
}

int main(void) {
  GC_set_all_interior_pointers(0);
  GC_INIT();
  GC_register_displacement(REGISTERED);
  run("GC_all_interior_pointers off", test_off);
  run("object start keeps", test_start);
  run("registered displacement keeps", test_registered_displacement);
  run("other interior pointers: Boehm drops, mallocgc keeps", test_other_interior);
  run("interior pointers on the stack keep", test_stack_interior);
  return finish();
}
