/* The rest of the extension API:
 *   - GC_collect_a_little: callable in a loop until it returns 0; it
 *     collects when allocation warrants it (after much allocation with
 *     collection disabled: what was dropped goes) and not right after a
 *     full collection. (Boehm without incremental mode, as here, does a
 *     whole collection or nothing, and returns 0 at once.)
 *   - GC_is_visible: a static variable, a stack variable (of the main
 *     thread and of another one) and any word of a GC_malloc object,
 *     small, large or uncollectable, are visible: it returns its
 *     argument. (Boehm with threads cannot check more than that: "May
 *     erroneously succeed in hard cases".)
 *   - GC_call_with_alloc_lock for weak pointers, as guile and ECL use it:
 *     a disappearing link's hidden pointer read under the lock while
 *     another thread collects. Under the lock no collection runs (the
 *     link and GC_get_gc_no() do not change while it is held), so what it
 *     reads is either the object, intact, or NULL; a link read NULL stays
 *     NULL; reachable objects always read back; once unreachable they go
 *     (the links clear). */
#include <pthread.h>
#include <stdatomic.h>

#include "compat_test.h"

#define N 16
#define SIZE 64

/* --- GC_collect_a_little -------------------------------------------------------------- */

static watch_t g_garbage[N];

static NOINLINE void allocate_watched_garbage(void) {
  for (int i = 0; i < N; i++) {
    void* p = GC_malloc(SIZE);
    CHECK(p != NULL);
    watch(&g_garbage[i], p);
  }
  for (int i = 0; i < 1024; i++) {
    char* p = GC_malloc(64 * 1024); /* 64 MiB in all */
    CHECK(p != NULL);
    p[0] = 1;
  }
}

/* Little steps until there is nothing left to do; how many it took. */
static NOINLINE int collect_a_little_until_done(void) {
  scrub();
  int steps = 0;
  while (GC_collect_a_little() != 0) {
    steps++;
    CHECK_CMP(steps, <, 1000000);
  }
  return steps;
}

static void test_collect_a_little(void) {
  collect();
  GC_word gc_no = GC_get_gc_no();
  collect_a_little_until_done();
  CHECK_CMP(GC_get_gc_no(), ==, gc_no); /* nothing warranted one */

  GC_disable();
  allocate_watched_garbage();
  GC_enable();
  CHECK_CMP(GC_get_gc_no(), ==, gc_no);
  CHECK_ALL_ALIVE(g_garbage, N);
  collect_a_little_until_done();
  CHECK_CMP(GC_get_gc_no(), >, gc_no);
  CHECK_MOSTLY_RECLAIMED(g_garbage, N);
  unwatch_all(g_garbage, N);
}

/* --- GC_is_visible --------------------------------------------------------------------------- */

static GC_word g_static_word;
static void* g_static_pointer;

static NOINLINE void check_object_visible(GC_word* p, size_t words) {
  CHECK(p != NULL);
  size_t picks[] = {0, 1, words / 2, words - 1};
  for (size_t k = 0; k < sizeof picks / sizeof picks[0]; k++) CHECK(GC_is_visible(&p[picks[k]]) == &p[picks[k]]);
}

static void* visible_thread(void* arg) {
  (void)arg;
  GC_word local = 0;
  void* volatile local_pointer = NULL;
  CHECK(GC_is_visible(&local) == &local);
  CHECK(GC_is_visible((void*)&local_pointer) == (void*)&local_pointer);
  check_object_visible(GC_malloc(10 * sizeof(GC_word)), 10);
  return (void*)1;
}

static void test_is_visible(void) {
  CHECK(GC_is_visible(&g_static_word) == &g_static_word);
  CHECK(GC_is_visible(&g_static_pointer) == &g_static_pointer);
  GC_word stack_word = 0;
  void* volatile stack_pointer = NULL;
  CHECK(GC_is_visible(&stack_word) == &stack_word);
  CHECK(GC_is_visible((void*)&stack_pointer) == (void*)&stack_pointer);
  check_object_visible(GC_malloc(8 * sizeof(GC_word)), 8);
  check_object_visible(GC_malloc(100 * 1024), 100 * 1024 / sizeof(GC_word));
  GC_word* u = GC_malloc_uncollectable(16 * sizeof(GC_word));
  check_object_visible(u, 16);
  GC_free(u);
  pthread_t t;
  void* result = NULL;
  CHECK(pthread_create(&t, NULL, visible_thread, NULL) == 0);
  CHECK(pthread_join(t, &result) == 0);
  CHECK(result == (void*)1);
}

/* --- weak pointers read under the allocation lock ------------------------------------------ */

static watch_t g_weak[N];
void* volatile extmisc_root[N];
static atomic_int g_stop_collecting, g_collections;

static void* collecting_thread(void* arg) {
  (void)arg;
  while (!atomic_load(&g_stop_collecting)) {
    GC_gcollect();
    atomic_fetch_add(&g_collections, 1);
  }
  return NULL;
}

typedef struct {
  int index;
  int give_pointer; /* the idiom returns the object; the probes only a status */
  int stable;       /* the link and GC_get_gc_no() did not change under the lock */
} read_t;

enum { GONE = 1, INTACT = 2, BROKEN = 3 };

/* Under the lock: the link's object, or NULL. Reads the link again and
 * again meanwhile (while another thread wants to collect). */
static void* GC_CALLBACK read_weak(void* arg) {
  read_t* r = arg;
  GC_word gc_no = GC_get_gc_no();
  void* link = *(void* volatile*)&g_weak[r->index].link;
  int status = GONE;
  if (link != NULL) status = filled(reveal((uintptr_t)link), SIZE, (unsigned)r->index) ? INTACT : BROKEN;
  r->stable = 1;
  for (int k = 0; k < 2000; k++)
    if (*(void* volatile*)&g_weak[r->index].link != link) r->stable = 0;
  if (GC_get_gc_no() != gc_no) r->stable = 0;
  if (r->give_pointer) return link == NULL ? NULL : reveal((uintptr_t)link);
  return (void*)(intptr_t)status;
}

static NOINLINE void make_weak(void) {
  for (int i = 0; i < N; i++) {
    void* p = GC_malloc(SIZE);
    CHECK(p != NULL);
    fill(p, SIZE, (unsigned)i);
    watch(&g_weak[i], p);
    extmisc_root[i] = p;
  }
}

/* The idiom: a strong pointer back while the object is reachable. */
static NOINLINE void read_reachable(void) {
  for (int i = 0; i < N; i++) {
    read_t r = {i, 1, 0};
    void* p = GC_call_with_alloc_lock(read_weak, &r);
    CHECK(r.stable);
    CHECK(p == extmisc_root[i]);
    CHECK(filled(p, SIZE, (unsigned)i));
  }
}

/* Statuses only, so that no strong pointer stays behind. */
static NOINLINE int probe(int i, int* stable) {
  read_t r = {i, 0, 0};
  int status = (int)(intptr_t)GC_call_with_alloc_lock(read_weak, &r);
  *stable = r.stable;
  scrub();
  return status;
}

static void test_weak_under_lock(void) {
  make_weak();
  atomic_store(&g_stop_collecting, 0);
  atomic_store(&g_collections, 0);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, collecting_thread, NULL) == 0);

  /* Reachable: always there, through several collections. */
  while (atomic_load(&g_collections) < 5) read_reachable();

  /* Unreachable: each link reads the intact object until it reads NULL,
   * then NULL for good; wait for several more collections. */
  for (int i = 0; i < N; i++) extmisc_root[i] = NULL;
  scrub();
  int gone[N] = {0};
  int start = atomic_load(&g_collections);
  long probes = 0;
  while (atomic_load(&g_collections) < start + 10) {
    for (int i = 0; i < N; i++) {
      int stable;
      int status = probe(i, &stable);
      probes++;
      CHECK(stable);
      CHECK(status != BROKEN);
      if (gone[i]) CHECK_CMP(status, ==, GONE);
      if (status == GONE) gone[i] = 1;
    }
  }
  atomic_store(&g_stop_collecting, 1);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK_CMP(probes, >, 0);
  collect();
  CHECK_MOSTLY_RECLAIMED(g_weak, N);
  unwatch_all(g_weak, N);
}

int main(void) {
  GC_INIT();
  run("GC_collect_a_little", test_collect_a_little);
  run("GC_is_visible", test_is_visible);
  run("weak pointers read under GC_call_with_alloc_lock", test_weak_under_lock);
  return finish();
}
