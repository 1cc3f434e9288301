/* The C API (include/mallocgc/mallocgc.h), from plain C11 against the
 * public header only. Exit code 0 means every check passed; a failed check
 * prints what failed and aborts. */
#include <mallocgc/mallocgc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef __STDC_NO_THREADS__
#include <threads.h>
#endif

static int g_passed;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      fflush(stderr);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static void run(const char* name, void (*test)(void)) {
  test();
  printf("ok %s\n", name);
  g_passed++;
}

static int all_zero(const void* p, size_t n) {
  const unsigned char* b = p;
  size_t i;
  for (i = 0; i < n; i++)
    if (b[i] != 0) return 0;
  return 1;
}

static int all_equal(const void* p, size_t n, unsigned char v) {
  const unsigned char* b = p;
  size_t i;
  for (i = 0; i < n; i++)
    if (b[i] != v) return 0;
  return 1;
}

typedef struct object {
  unsigned char* p;
  size_t size;
  unsigned char fill;
} object_t;

static int by_address(const void* a, const void* b) {
  const object_t* x = a;
  const object_t* y = b;
  return x->p < y->p ? -1 : x->p > y->p;
}

/* Check, fill, remember. */
static void take(object_t* objs, size_t* n, void* p, size_t size) {
  CHECK(p != NULL);
  CHECK(all_zero(p, size));
  if (size >= 16) CHECK((uintptr_t)p % 16 == 0);
  objs[*n].p = p;
  objs[*n].size = size;
  objs[*n].fill = (unsigned char)(*n % 251 + 1);
  memset(p, objs[*n].fill, size);
  (*n)++;
}

/* Every object kept its fill and no two overlap; then free them all. */
static void check_and_free(object_t* objs, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) CHECK(all_equal(objs[i].p, objs[i].size, objs[i].fill));
  qsort(objs, n, sizeof *objs, by_address);
  for (i = 1; i < n; i++) CHECK(objs[i - 1].p + objs[i - 1].size <= objs[i].p);
  for (i = 0; i < n; i++) mgc_free(objs[i].p);
}

static void test_every_size_up_to_1100(void) {
  static object_t objs[2 * 1100];
  size_t n = 0, size;
  for (size = 1; size <= 1100; size++) {
    take(objs, &n, mgc_alloc(size), size);
    take(objs, &n, mgc_alloc_noscan(size), size);
  }
  check_and_free(objs, n);
}

static void test_class_boundaries_and_large(void) {
  static object_t objs[4 * MGC_NUM_SIZE_CLASSES + 8];
  static mgc_stats_t st;
  size_t n = 0;
  int c;
  mgc_stats(&st);
  CHECK(st.by_size[0].size == 0);
  CHECK(st.by_size[1].size == 8);
  CHECK(st.by_size[MGC_NUM_SIZE_CLASSES - 1].size == 32768);
  for (c = 1; c < MGC_NUM_SIZE_CLASSES; c++) {
    const size_t s = st.by_size[c].size;
    CHECK(s > st.by_size[c - 1].size);
    take(objs, &n, mgc_alloc(s), s);
    take(objs, &n, mgc_alloc_noscan(s + 1), s + 1);
  }
  take(objs, &n, mgc_alloc(32768), 32768);
  take(objs, &n, mgc_alloc(32769), 32769);
  take(objs, &n, mgc_alloc_noscan(1 << 20), 1 << 20);
  take(objs, &n, mgc_alloc((1 << 20) + 1), (1 << 20) + 1);
  check_and_free(objs, n);
}

static void test_tiny_alignment(void) {
  size_t size;
  for (size = 1; size < 16; size++) {
    const size_t align = size % 8 == 0 ? 8 : size % 4 == 0 ? 4 : size % 2 == 0 ? 2 : 1;
    void* pad = mgc_alloc_noscan(1);
    void* p = mgc_alloc_noscan(size);
    CHECK(pad != NULL && p != NULL);
    CHECK((uintptr_t)p % align == 0);
    CHECK(all_zero(p, size));
  }
  {
    void* a = mgc_alloc_noscan(0);
    void* b = mgc_alloc_noscan(0);
    void* c = mgc_alloc(0);
    void* d = mgc_alloc(0);
    CHECK(a && b && c && d);
    CHECK(a != b && c != d && a != c && b != d);
    mgc_free(a);
    mgc_free(b);
    mgc_free(c);
    mgc_free(d);
  }
}

static void test_types(void) {
  static const size_t two[] = {0, 8};
  static const size_t two_reversed[] = {8, 0};
  static const size_t bad_align[] = {4};
  static const size_t at_end[] = {16};
  static const size_t overhang[] = {8};
  static const size_t last_word[] = {39992};
  const mgc_type_t* pair = mgc_type_create(16, two, 2);
  const mgc_type_t* big;
  size_t sizes[3] = {24, 1000, 40000};
  int i;
  CHECK(pair != NULL);
  CHECK(mgc_type_create(16, two_reversed, 2) == pair); /* interned */
  CHECK(mgc_type_create(24, two, 2) != pair);
  CHECK(mgc_type_create(0, NULL, 0) == NULL);
  CHECK(mgc_type_create(16, bad_align, 1) == NULL);
  CHECK(mgc_type_create(16, at_end, 1) == NULL);
  CHECK(mgc_type_create(12, overhang, 1) == NULL);
  CHECK(mgc_type_create(16, NULL, 1) == NULL);
  CHECK(mgc_type_create(16, NULL, 0) != NULL);
  CHECK(mgc_alloc_typed(NULL) == NULL);
  big = mgc_type_create(40000, last_word, 1);
  CHECK(big != NULL);
  for (i = 0; i < 3; i++) {
    const mgc_type_t* t = mgc_type_create(sizes[i], two, 2);
    void* p = mgc_alloc_typed(t);
    CHECK(p != NULL);
    CHECK((uintptr_t)p % 16 == 0);
    CHECK(all_zero(p, sizes[i]));
    memset(p, 0xAA, sizes[i]);
    mgc_free(p);
  }
  {
    void* p = mgc_alloc_typed(pair);
    void** words = p;
    CHECK(p != NULL && words[0] == NULL && words[1] == NULL);
    words[0] = p;
    mgc_free(p);
    p = mgc_alloc_typed(big);
    CHECK(p != NULL && all_zero(p, 40000));
    mgc_free(p);
  }
}

static void test_overflow(void) {
  void* p;
  CHECK(mgc_alloc(SIZE_MAX) == NULL);
  CHECK(mgc_alloc(SIZE_MAX / 2) == NULL);
  CHECK(mgc_alloc(SIZE_MAX - 4095) == NULL);
  CHECK(mgc_alloc_noscan(SIZE_MAX) == NULL);
  CHECK(mgc_alloc_noscan(SIZE_MAX / 2) == NULL);
  CHECK(mgc_alloc_noscan((size_t)1 << 50) == NULL);
  p = mgc_alloc_noscan((size_t)64 << 20); /* possible: address space, untouched */
  CHECK(p != NULL);
  mgc_free(p);
}

static void test_free_and_reuse(void) {
  static const size_t sizes[] = {8, 64, 300, 5000, 32768, 40000, 1 << 20};
  size_t i;
  mgc_free(NULL);
  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void* p = mgc_alloc(sizes[i]);
    void* q;
    CHECK(p != NULL);
    memset(p, 0xFF, sizes[i]);
    mgc_free(p);
    /* The owner's freed slot comes back once the 64 slots its cache holds
       are used up (large objects: at once). Keep what comes before it. */
    {
      void* kept[65];
      int n = 0, found = 0;
      while (n < 65 && !found) {
        q = mgc_alloc(sizes[i]);
        CHECK(q != NULL);
        CHECK(all_zero(q, sizes[i]));
        kept[n++] = q;
        found = q == p;
      }
      CHECK(found);
      while (n > 0) mgc_free(kept[--n]);
    }
  }
}

static size_t class_of(const mgc_stats_t* st, size_t size) {
  size_t c;
  for (c = 1; c < MGC_NUM_SIZE_CLASSES; c++)
    if (st->by_size[c].size >= size) return c;
  return 0;
}

static void test_stats(void) {
  static mgc_stats_t a, b, c;
  void* p;
  size_t cls;
  mgc_stats(NULL); /* ignored */
  mgc_stats(&a);
  CHECK(a.heap_sys >= a.heap_inuse);
  CHECK(a.heap_reserved >= a.heap_sys);
  CHECK(a.heap_inuse + a.heap_idle == a.heap_sys);
  CHECK(a.heap_objects == a.mallocs - a.frees);
  CHECK(a.num_threads >= 1);

  /* small */
  cls = class_of(&a, 100);
  p = mgc_alloc(100);
  mgc_stats(&b);
  CHECK(b.mallocs == a.mallocs + 1);
  CHECK(b.heap_objects == a.heap_objects + 1);
  CHECK(b.by_size[cls].mallocs == a.by_size[cls].mallocs + 1);
  CHECK(b.heap_alloc == a.heap_alloc + a.by_size[cls].size);
  CHECK(b.tiny_mallocs == a.tiny_mallocs && b.large_mallocs == a.large_mallocs);
  mgc_free(p);
  mgc_stats(&c);
  CHECK(c.frees == b.frees + 1);
  CHECK(c.by_size[cls].frees == b.by_size[cls].frees + 1);
  CHECK(c.heap_objects == a.heap_objects);
  CHECK(c.heap_alloc == a.heap_alloc);

  /* tiny */
  mgc_stats(&a);
  p = mgc_alloc_noscan(5);
  mgc_stats(&b);
  CHECK(b.tiny_mallocs == a.tiny_mallocs + 1);
  CHECK(b.mallocs == a.mallocs + 1);
  mgc_free(p);
  mgc_stats(&c);
  CHECK(c.tiny_frees == b.tiny_frees + 1);
  CHECK(c.heap_objects == a.heap_objects);

  /* large */
  mgc_stats(&a);
  p = mgc_alloc(100000);
  mgc_stats(&b);
  CHECK(b.large_mallocs == a.large_mallocs + 1);
  CHECK(b.heap_alloc == a.heap_alloc + 13 * 8192);
  CHECK(b.heap_inuse >= a.heap_inuse + 13 * 8192);
  mgc_free(p);
  mgc_stats(&c);
  CHECK(c.large_frees == b.large_frees + 1);
  CHECK(c.heap_alloc == a.heap_alloc);
  CHECK(c.heap_objects == a.heap_objects);
}

#ifndef __STDC_NO_THREADS__
enum { kCrossObjects = 500 };
static void* g_cross[kCrossObjects];

static int free_them(void* arg) {
  size_t i;
  (void)arg;
  for (i = 0; i < kCrossObjects; i++) mgc_free(g_cross[i]);
  return 0;
}

static int allocate_them(void* arg) {
  size_t i;
  (void)arg;
  for (i = 0; i < kCrossObjects; i++) g_cross[i] = i % 4 ? mgc_alloc(i % 700 + 1) : mgc_alloc_noscan(i % 15 + 1);
  return 0;
}

static void test_threads(void) {
  static mgc_stats_t a, b, c;
  thrd_t t;
  size_t i;
  mgc_stats(&a);
  /* allocated here, freed by another thread */
  for (i = 0; i < kCrossObjects; i++) g_cross[i] = mgc_alloc(i % 3000 + 1);
  CHECK(thrd_create(&t, free_them, NULL) == thrd_success);
  CHECK(thrd_join(t, NULL) == thrd_success);
  mgc_stats(&b);
  CHECK(b.frees == a.frees + kCrossObjects);
  CHECK(b.heap_objects == a.heap_objects);
  CHECK(b.num_threads == a.num_threads);
  /* allocated by a thread that exits, freed here */
  CHECK(thrd_create(&t, allocate_them, NULL) == thrd_success);
  CHECK(thrd_join(t, NULL) == thrd_success);
  mgc_stats(&c);
  CHECK(c.mallocs == b.mallocs + kCrossObjects);
  CHECK(c.num_threads == a.num_threads);
  for (i = 0; i < kCrossObjects; i++) mgc_free(g_cross[i]);
  mgc_stats(&c);
  CHECK(c.heap_objects == a.heap_objects);
}
#endif

int main(void) {
  run("every size up to 1100", test_every_size_up_to_1100);
  run("class boundaries and large", test_class_boundaries_and_large);
  run("tiny alignment and zero sizes", test_tiny_alignment);
  run("types", test_types);
  run("overflow", test_overflow);
  run("free and reuse", test_free_and_reuse);
  run("stats", test_stats);
#ifndef __STDC_NO_THREADS__
  run("threads", test_threads);
#endif
  printf("%d passed, 0 failed\n", g_passed);
  return 0;
}
