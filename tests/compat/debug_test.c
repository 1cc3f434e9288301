/* A program built with -DGC_DEBUG: gc.h's macros (GC_MALLOC, GC_FREE,
 * GC_REGISTER_FINALIZER, GC_GENERAL_REGISTER_DISAPPEARING_LINK...) call the
 * GC_debug_* functions, which must allocate, scan, finalize and free like
 * the plain ones. A debug object may carry a header before the address the
 * program gets: GC_base returns the start of the whole object (the header
 * in Boehm), which is what links are registered with, and what the
 * GC_GENERAL_REGISTER_DISAPPEARING_LINK macro passes. */
#define GC_DEBUG 1

#include "compat_test.h"

#define N 16
#define SIZE 64

void* volatile debug_root[N];
static watch_t g_parent[N];
static watch_t g_child[N];
static uintptr_t g_hidden[N];

/* watch() for debug objects: through the macro, which registers GC_base. */
static void watch_debug(watch_t* w, void* p) {
  w->link = (void*)hide(p);
  w->is_long = 0;
  CHECK(GC_GENERAL_REGISTER_DISAPPEARING_LINK(&w->link, p) == GC_SUCCESS);
}

static void clear_roots(void) {
  for (int i = 0; i < N; i++) debug_root[i] = NULL;
}

static void reset(void) {
  clear_roots();
  unwatch_all(g_parent, N);
  unwatch_all(g_child, N);
}

static NOINLINE void check_object(void* p, size_t size) {
  CHECK(p != NULL);
  char* base = GC_base(p);
  CHECK(base != NULL && base <= (char*)p); /* a header may precede p */
  CHECK(base + GC_size(base) >= (char*)p + size);
  CHECK(GC_is_heap_ptr(p));
}

typedef enum { NORMAL, ATOMIC, UNCOLLECTABLE } kind_t;

static NOINLINE void* debug_alloc(kind_t kind, size_t size) {
  switch (kind) {
    case NORMAL:
      return GC_MALLOC(size);
    case ATOMIC:
      return GC_MALLOC_ATOMIC(size);
    default:
      return GC_MALLOC_UNCOLLECTABLE(size);
  }
}

/* parent (rooted unless uncollectable) holds child in word 1. */
static NOINLINE void make_pair(int i, kind_t kind) {
  void** parent = debug_alloc(kind, SIZE);
  void* child = GC_MALLOC(SIZE);
  check_object(parent, SIZE);
  check_object(child, SIZE);
  if (kind != ATOMIC) CHECK(all_zero(parent, SIZE));
  CHECK(all_zero(child, SIZE));
  fill(child, SIZE, (unsigned)i);
  parent[1] = child;
  watch_debug(&g_parent[i], parent);
  watch_debug(&g_child[i], child);
  g_hidden[i] = hide(parent);
  if (kind != UNCOLLECTABLE) debug_root[i] = parent;
}

static NOINLINE int child_intact(int i) {
  void** parent = reveal(g_hidden[i]);
  return filled(parent[1], SIZE, (unsigned)i);
}

static NOINLINE void free_parents(void) {
  for (int i = 0; i < N; i++) {
    unwatch(&g_parent[i]);
    GC_FREE(reveal(g_hidden[i]));
  }
}

static void test_malloc(void) {
  for (int i = 0; i < N; i++) make_pair(i, NORMAL);
  collect();
  collect();
  CHECK_ALL_ALIVE(g_parent, N);
  CHECK_ALL_ALIVE(g_child, N);
  for (int i = 0; i < N; i++) CHECK(child_intact(i));
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_parent, N);
  CHECK_MOSTLY_RECLAIMED(g_child, N);
  reset();
}

static void test_malloc_atomic(void) {
  for (int i = 0; i < N; i++) make_pair(i, ATOMIC);
  collect();
  CHECK_ALL_ALIVE(g_parent, N);
  CHECK_MOSTLY_RECLAIMED(g_child, N); /* not scanned */
  reset();
}

static void test_malloc_uncollectable(void) {
  for (int i = 0; i < N; i++) make_pair(i, UNCOLLECTABLE);
  collect();
  collect();
  CHECK_ALL_ALIVE(g_parent, N);
  CHECK_ALL_ALIVE(g_child, N);
  for (int i = 0; i < N; i++) CHECK(child_intact(i));
  free_parents();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_child, N);
  reset();
}

static NOINLINE void others(void) {
  char* s = GC_STRDUP("debug string");
  check_object(s, 13);
  CHECK(strcmp(s, "debug string") == 0);
  char* n = GC_STRNDUP("debug string", 5);
  check_object(n, 6);
  CHECK(strcmp(n, "debug") == 0);

  char* p = GC_MALLOC(100);
  check_object(p, 100);
  fill(p, 100, 5);
  p = GC_REALLOC(p, 10000);
  check_object(p, 10000);
  CHECK(filled(p, 100, 5));
  p = GC_REALLOC(p, 50);
  check_object(p, 50);
  CHECK(filled(p, 50, 5));
  GC_FREE(p);
  GC_FREE(NULL);

  p = GC_MALLOC_IGNORE_OFF_PAGE(200000);
  check_object(p, 200000);
  CHECK(all_zero(p, 200000));
  GC_FREE(p);
  p = GC_MALLOC_ATOMIC_IGNORE_OFF_PAGE(200000);
  check_object(p, 200000);
  GC_FREE(p);
  p = GC_MALLOC_ATOMIC_UNCOLLECTABLE(100);
  check_object(p, 100);
  GC_FREE(p);

  /* Drop-in replacements for malloc/realloc. */
  p = GC_debug_malloc_replacement(100);
  check_object(p, 100);
  fill(p, 100, 9);
  p = GC_debug_realloc_replacement(p, 1000);
  check_object(p, 1000);
  CHECK(filled(p, 100, 9));
}

static void test_strings_realloc_free(void) {
  others();
  collect();
}

/* --- finalizers through GC_REGISTER_FINALIZER ---------------------------------------------- */

static int g_runs[N];
static int g_args_ok[N];
static int g_slot[N];

static void GC_CALLBACK finalizer(void* obj, void* cd) {
  int i = *(int*)cd;
  g_runs[i]++;
  /* fn gets the address the program was given, not the header. */
  g_args_ok[i] = hide(obj) == g_hidden[i] && filled(obj, SIZE, (unsigned)i);
}

static NOINLINE void make_finalizable(int i) {
  void* p = GC_MALLOC(SIZE);
  check_object(p, SIZE);
  fill(p, SIZE, (unsigned)i);
  g_hidden[i] = hide(p);
  g_slot[i] = i;
  GC_finalization_proc ofn = NULL;
  void* ocd = NULL;
  GC_REGISTER_FINALIZER(p, finalizer, &g_slot[i], &ofn, &ocd);
  CHECK(ofn == NULL && ocd == NULL);
  debug_root[i] = p;
}

static void test_register_finalizer(void) {
  for (int i = 0; i < N; i++) make_finalizable(i);
  collect();
  collect();
  for (int i = 0; i < N; i++) CHECK(g_runs[i] == 0);
  clear_roots();
  collect();
  int ran = 0;
  for (int i = 0; i < N; i++) {
    CHECK(g_runs[i] <= 1);
    if (g_runs[i]) CHECK(g_args_ok[i]);
    ran += g_runs[i];
  }
  CHECK_CMP(ran * 8, >=, 7 * N);
}

int main(void) {
  GC_INIT();
  run("GC_MALLOC (GC_debug_malloc)", test_malloc);
  run("GC_MALLOC_ATOMIC", test_malloc_atomic);
  run("GC_MALLOC_UNCOLLECTABLE, GC_FREE", test_malloc_uncollectable);
  run("GC_STRDUP, GC_REALLOC, GC_FREE, replacements", test_strings_realloc_free);
  run("GC_REGISTER_FINALIZER", test_register_finalizer);
  return finish();
}
