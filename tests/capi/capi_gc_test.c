/* The collector through the C API (include/mallocgc/mallocgc.h), from plain
 * C11 against the public header only: mgc_collect and the GC fields of
 * mgc_stats, the pacing setters, finalizers and their data argument, weak
 * references, root ranges, typed pointer fields, and a thread registered
 * with mgc_register_thread that holds the only reference on its stack.
 * Exit code 0 means every check passed; a failed check prints what failed
 * and aborts.
 *
 * As in tests/gc (see gc_test_support.hpp there): automatic collection is
 * off, raw heap pointers live only in noinline helpers and in the root a
 * check is about, and the stack and scratch registers are scrubbed before a
 * cycle whose outcome is checked. */
#define _POSIX_C_SOURCE 200809L

#include <mallocgc/mallocgc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_passed;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      fflush(stderr);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#define NOINLINE __attribute__((noinline))

static void run(const char* name, void (*test)(void)) {
  test();
  printf("ok %s\n", name);
  g_passed++;
}

/* --- hiding pointers, scrubbing ------------------------------------------- */

#define MASK ((uintptr_t)0xA5C396F00F693C5Aull) /* bit 63 set: never an address */

static uintptr_t hide(const void* p) { return (uintptr_t)p ^ MASK; }
static void* reveal(uintptr_t h) { return (void*)(h ^ MASK); }

/* Not instrumented by AddressSanitizer, whose redzones around buf would
 * keep whatever stale addresses they held. */
static NOINLINE __attribute__((no_sanitize("address"))) void scrub(void) {
  char buf[64 * 1024];
  memset(buf, 0, sizeof buf);
  __asm__ __volatile__("" : : "r"(buf) : "memory");
#if defined(__x86_64__)
  __asm__ __volatile__(
      "xor %%eax, %%eax\n\txor %%ecx, %%ecx\n\txor %%edx, %%edx\n\txor %%esi, %%esi\n\t"
      "xor %%edi, %%edi\n\txor %%r8d, %%r8d\n\txor %%r9d, %%r9d\n\txor %%r10d, %%r10d\n\t"
      "xor %%r11d, %%r11d\n\tpxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\tpxor %%xmm2, %%xmm2\n\t"
      "pxor %%xmm3, %%xmm3\n\t" ::
          : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm0", "xmm1", "xmm2", "xmm3", "memory",
            "cc");
#endif
}

static NOINLINE void collect_clean(void) {
  scrub();
  mgc_collect();
}

/* --- finalizers and weak references ---------------------------------------- */

static int g_marker;
static int g_final_calls;
static int g_final_data_ok;
static int g_final_weak_null;
static uintptr_t g_final_expected; /* hidden */
static mgc_weak_t* g_final_weak;

static void finalizer(void* obj, void* data) {
  g_final_calls++;
  if (data == &g_marker && hide(obj) == g_final_expected && ((unsigned char*)obj)[47] == 0x47) g_final_data_ok++;
  if (mgc_weak_get(g_final_weak) == NULL) g_final_weak_null++;
}

static NOINLINE uintptr_t new_finalizable(void) {
  unsigned char* p = mgc_alloc(48);
  CHECK(p != NULL);
  p[47] = 0x47;
  g_final_weak = mgc_weak_create(p);
  CHECK(g_final_weak != NULL);
  mgc_set_finalizer(p, finalizer, &g_marker);
  return hide(p);
}

static void test_finalizer(void) {
  g_final_expected = new_finalizable();
  collect_clean();
  mgc_wait_for_finalizers();
  CHECK(g_final_calls == 1);
  CHECK(g_final_data_ok == 1);
  CHECK(g_final_weak_null == 1); /* cleared before the finalizer ran */
  collect_clean();
  mgc_wait_for_finalizers();
  CHECK(g_final_calls == 1); /* once */
  mgc_weak_destroy(g_final_weak);
}

static NOINLINE void remove_finalizer(uintptr_t h) { mgc_set_finalizer(reveal(h), NULL, NULL); }

static void test_finalizer_removed(void) {
  int before = g_final_calls;
  uintptr_t h = new_finalizable();
  remove_finalizer(h);
  collect_clean();
  mgc_wait_for_finalizers();
  CHECK(g_final_calls == before);
  CHECK(mgc_weak_get(g_final_weak) == NULL);
  mgc_weak_destroy(g_final_weak);
}

void* volatile capi_gc_root;

static NOINLINE mgc_weak_t* new_rooted_weak(size_t size) {
  void* p = mgc_alloc(size);
  mgc_weak_t* w;
  CHECK(p != NULL);
  memset(p, 0x33, size);
  capi_gc_root = p;
  w = mgc_weak_create(p);
  CHECK(w != NULL);
  CHECK(mgc_weak_get(w) == p);
  return w;
}

static NOINLINE int root_intact(size_t size) {
  const unsigned char* p = capi_gc_root;
  size_t i;
  for (i = 0; i < size; i++)
    if (p[i] != 0x33) return 0;
  return 1;
}

static void test_weak(void) {
  mgc_weak_t* w = new_rooted_weak(200);
  collect_clean();
  CHECK(mgc_weak_get(w) != NULL);
  CHECK(root_intact(200));
  capi_gc_root = NULL;
  collect_clean();
  CHECK(mgc_weak_get(w) == NULL);
  mgc_weak_destroy(w);
  w = mgc_weak_create(NULL);
  if (w != NULL) {
    CHECK(mgc_weak_get(w) == NULL);
    mgc_weak_destroy(w);
  }
}

/* --- roots ---------------------------------------------------------------- */

static NOINLINE mgc_weak_t* new_in(void** slot) {
  void* p = mgc_alloc(64);
  CHECK(p != NULL);
  *slot = p;
  return mgc_weak_create(p);
}

static void test_roots(void) {
  void** words = calloc(8, sizeof(void*));
  mgc_weak_t* w;
  CHECK(words != NULL);
  w = new_in(&words[3]);
  CHECK(w != NULL);
  mgc_add_roots(words, words + 8);
  collect_clean();
  CHECK(mgc_weak_get(w) != NULL);
  mgc_remove_roots(words, words + 8);
  collect_clean();
  CHECK(mgc_weak_get(w) == NULL); /* system malloc memory is not scanned */
  mgc_weak_destroy(w);
  free(words);
}

/* Word 1 of the rooted typed object is a pointer, word 2 is not. */
static NOINLINE void put(int word, mgc_weak_t** w) {
  void* child = mgc_alloc(32);
  CHECK(child != NULL);
  ((void**)capi_gc_root)[word] = child;
  *w = mgc_weak_create(child);
  CHECK(*w != NULL);
}

static NOINLINE void new_typed_root(void) {
  static const size_t offsets[] = {8};
  const mgc_type_t* type = mgc_type_create(24, offsets, 1);
  CHECK(type != NULL);
  capi_gc_root = mgc_alloc_typed(type);
  CHECK(capi_gc_root != NULL);
}

static void test_typed_fields(void) {
  mgc_weak_t* in_pointer_field;
  mgc_weak_t* in_other_field;
  new_typed_root();
  put(1, &in_pointer_field);
  put(2, &in_other_field);
  collect_clean();
  CHECK(mgc_weak_get(in_pointer_field) != NULL);
  CHECK(mgc_weak_get(in_other_field) == NULL);
  capi_gc_root = NULL;
  collect_clean();
  CHECK(mgc_weak_get(in_pointer_field) == NULL);
  mgc_weak_destroy(in_pointer_field);
  mgc_weak_destroy(in_other_field);
}

/* --- a registered thread's stack ------------------------------------------- */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_thread_phase; /* 1: holding, 2: main done, 3: dropped, 4: exit */
static uintptr_t g_thread_object;
static int g_thread_intact;

static void set_phase(int phase) {
  pthread_mutex_lock(&g_lock);
  g_thread_phase = phase;
  pthread_cond_broadcast(&g_cond);
  pthread_mutex_unlock(&g_lock);
}

static void wait_phase(int phase) {
  pthread_mutex_lock(&g_lock);
  while (g_thread_phase < phase) pthread_cond_wait(&g_cond, &g_lock);
  pthread_mutex_unlock(&g_lock);
}

static NOINLINE void hold(void) {
  unsigned char* volatile slot = reveal(g_thread_object);
  set_phase(1);
  wait_phase(2);
  g_thread_intact = slot[0] == 0x77 && slot[99] == 0x77;
  slot = NULL;
}

static void* registered_thread(void* arg) {
  (void)arg;
  mgc_register_thread();
  mgc_register_thread(); /* calls nest */
  mgc_unregister_thread();
  hold();
  scrub();
  set_phase(3);
  wait_phase(4);
  mgc_unregister_thread();
  return NULL;
}

static NOINLINE mgc_weak_t* new_thread_object(void) {
  unsigned char* p = mgc_alloc_noscan(100);
  CHECK(p != NULL);
  memset(p, 0x77, 100);
  g_thread_object = hide(p);
  return mgc_weak_create(p);
}

static void test_registered_thread(void) {
  pthread_t t;
  mgc_weak_t* w = new_thread_object();
  CHECK(w != NULL);
  CHECK(pthread_create(&t, NULL, registered_thread, NULL) == 0);
  wait_phase(1);
  collect_clean();
  CHECK(mgc_weak_get(w) != NULL); /* the thread's stack is a root */
  set_phase(2);
  wait_phase(3);
  CHECK(g_thread_intact);
  collect_clean();
  CHECK(mgc_weak_get(w) == NULL); /* dropped, thread still registered */
  set_phase(4);
  CHECK(pthread_join(t, NULL) == 0);
  mgc_weak_destroy(w);
}

/* --- stats and pacing -------------------------------------------------------- */

static void test_stats_and_pacing(void) {
  static mgc_stats_t a, b;
  int64_t limit;
  mgc_stats(&a);
  mgc_collect();
  mgc_collect();
  mgc_stats(&b);
  CHECK(b.num_gc == a.num_gc + 2);
  CHECK(b.pause_ns[(b.num_gc + 255) % 256] > 0);
  CHECK(b.pause_total_ns > a.pause_total_ns);
  CHECK(b.next_gc == b.heap_goal);
  CHECK(b.heap_goal >= 4u << 20);
  CHECK(b.gc_cpu_fraction >= 0 && b.gc_cpu_fraction <= 1);

  CHECK(mgc_set_gc_percent(70) == -1); /* off, as main set it */
  CHECK(mgc_set_gc_percent(-1) == 70);
  limit = mgc_set_memory_limit(-1);
  if (getenv("MALLOCGC_MEMORY_LIMIT") == NULL) CHECK(limit == INT64_MAX);
  CHECK(mgc_set_memory_limit((int64_t)1 << 30) == limit);
  CHECK(mgc_set_memory_limit(limit) == (int64_t)1 << 30);
}

/* mgc_release_memory: a dropped 32 MiB goes back to the OS and shows as
 * released; the stats keep released <= idle <= sys. */
static void* volatile g_big[128];

static NOINLINE void fill_big(void) {
  int i;
  for (i = 0; i < 128; i++) {
    char* p = mgc_alloc_noscan(256 * 1024);
    CHECK(p != NULL);
    memset(p, 1, 256 * 1024);
    g_big[i] = p;
  }
}

static void test_release_memory(void) {
  static mgc_stats_t a, b;
  int i;
  fill_big();
  mgc_stats(&a);
  for (i = 0; i < 128; i++) g_big[i] = NULL;
  scrub();
  CHECK(mgc_release_memory() >= (size_t)24 << 20);
  mgc_stats(&b);
  CHECK(b.heap_released >= a.heap_released + ((uint64_t)24 << 20));
  CHECK(b.heap_released <= b.heap_idle);
  CHECK(b.heap_idle <= b.heap_sys);
}

int main(void) {
  int gogc = mgc_set_gc_percent(-1);
  if (getenv("MALLOCGC_GOGC") == NULL) CHECK(gogc == 100);
  run("finalizer", test_finalizer);
  run("finalizer removed", test_finalizer_removed);
  run("weak", test_weak);
  run("roots", test_roots);
  run("typed fields", test_typed_fields);
  run("registered thread", test_registered_thread);
  run("stats and pacing", test_stats_and_pacing);
  run("release memory", test_release_memory);
  mgc_set_gc_percent(gogc);
  printf("%d passed, 0 failed\n", g_passed);
  return 0;
}
