/* Allocation kinds and the calls around them: GC_malloc (zeroed, scanned),
 * GC_malloc_atomic (never scanned), GC_malloc_uncollectable and
 * GC_malloc_atomic_uncollectable (never collected until GC_free, contents
 * scanned or not), the *_ignore_off_page variants, GC_realloc (ANSI cases,
 * contents, and the kind it keeps), GC_free, GC_strdup/GC_strndup, GC_base,
 * GC_size, GC_is_heap_ptr, GC_memalign/GC_posix_memalign and GC_malloc(0).
 * Each reachability rule is checked both ways: kept while reachable,
 * reclaimed when not. */
#include <errno.h>

#include "compat_test.h"

#define N 32

/* Roots: static data is scanned. Non-static, so no store to it is elided. */
void* volatile alloc_root[N];
static watch_t g_child[N];
static watch_t g_parent[N];
static uintptr_t g_hidden[N];       /* the parents */
static uintptr_t g_child_hidden[N]; /* the children */

static void clear_roots(void) {
  for (int i = 0; i < N; i++) alloc_root[i] = NULL;
}

static void reset(void) {
  clear_roots();
  unwatch_all(g_child, N);
  unwatch_all(g_parent, N);
  memset(g_hidden, 0, sizeof g_hidden);
  memset(g_child_hidden, 0, sizeof g_child_hidden);
}

/* --- GC_malloc: zeroed --------------------------------------------------------- */

static NOINLINE void make_dirty_garbage(size_t size, int count, int free_half) {
  for (int i = 0; i < count; i++) {
    unsigned char* p = GC_malloc(size);
    CHECK(p != NULL);
    memset(p, 0xA5, size);
    if (free_half && i % 2 == 0) GC_free(p);
  }
}

typedef void* (*alloc_fn)(size_t);

static NOINLINE int fresh_objects_zeroed(alloc_fn alloc, size_t size, int count) {
  for (int i = 0; i < count; i++) {
    unsigned char* p = alloc(size);
    CHECK(p != NULL);
    if (!all_zero(p, size)) return 0;
    memset(p, 0x5A, size); /* garbage for the next round */
    if (alloc == GC_malloc_uncollectable) GC_free(p);
  }
  return 1;
}

static void test_malloc_zeroed(void) {
  static const size_t sizes[] = {1, 8, 16, 24, 40, 100, 1000, 2048, 4000, 9000, 100000};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    /* Memory that held data, freed explicitly or collected, comes back. */
    make_dirty_garbage(sizes[s], 64, 1);
    collect();
    CHECK(fresh_objects_zeroed(GC_malloc, sizes[s], 64));
    CHECK(fresh_objects_zeroed(GC_malloc_uncollectable, sizes[s], 16));
    CHECK(fresh_objects_zeroed(GC_malloc_ignore_off_page, sizes[s], 8));
  }
}

/* --- kinds: who scans whom -------------------------------------------------------- */

/* parent = alloc(4 words) rooted or hidden; child = GC_malloc(48) only in parent[2]. */
static NOINLINE void make_pair(int i, alloc_fn alloc, int rooted) {
  void** parent = alloc(4 * sizeof(void*));
  unsigned char* child = GC_malloc(48);
  CHECK(parent != NULL && child != NULL);
  fill(child, 48, (unsigned)i);
  parent[2] = child;
  watch(&g_child[i], child);
  watch(&g_parent[i], parent);
  g_hidden[i] = hide(parent);
  g_child_hidden[i] = hide(child);
  if (rooted) alloc_root[i] = parent;
}

static NOINLINE int pair_intact(int i) {
  void** parent = reveal(g_hidden[i]);
  /* Whatever the kind, the collector never changes an object's words. */
  if (hide(parent[2]) != g_child_hidden[i]) return 0;
  return alive(&g_child[i]) ? filled(parent[2], 48, (unsigned)i) : 1;
}

static void make_pairs(alloc_fn alloc, int rooted) {
  for (int i = 0; i < N; i++) make_pair(i, alloc, rooted);
}

static NOINLINE void free_parents(void) {
  for (int i = 0; i < N; i++) {
    unwatch(&g_parent[i]);
    GC_free(reveal(g_hidden[i]));
    g_hidden[i] = 0;
  }
}

static void test_malloc_scanned(void) {
  make_pairs(GC_malloc, 1);
  collect();
  collect();
  CHECK_ALL_ALIVE(g_parent, N);
  CHECK_ALL_ALIVE(g_child, N); /* reachable only from a GC_malloc object */
  for (int i = 0; i < N; i++) CHECK(pair_intact(i));
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_parent, N);
  CHECK_MOSTLY_RECLAIMED(g_child, N);
  reset();
}

static void test_atomic_not_scanned(void) {
  make_pairs(GC_malloc_atomic, 1);
  collect();
  CHECK_ALL_ALIVE(g_parent, N);
  CHECK_MOSTLY_RECLAIMED(g_child, N); /* reachable only from an atomic object */
  for (int i = 0; i < N; i++) CHECK(pair_intact(i));
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_parent, N);
  reset();
}

static void test_uncollectable(void) {
  make_pairs(GC_malloc_uncollectable, 0); /* unreachable */
  collect();
  collect();
  CHECK_ALL_ALIVE(g_parent, N); /* never collected */
  CHECK_ALL_ALIVE(g_child, N);  /* its contents are roots */
  for (int i = 0; i < N; i++) CHECK(pair_intact(i));
  free_parents();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_child, N); /* GC_free ended that */
  reset();
}

static void test_atomic_uncollectable(void) {
  make_pairs(GC_malloc_atomic_uncollectable, 0);
  collect();
  collect();
  CHECK_ALL_ALIVE(g_parent, N);
  CHECK_MOSTLY_RECLAIMED(g_child, N); /* contents not scanned */
  for (int i = 0; i < N; i++) CHECK(pair_intact(i));
  free_parents();
  reset();
}

/* --- *_ignore_off_page --------------------------------------------------------- */

#define BIG (300 * 1024)
#define BIG_N 16
#define FAR_SLOT (200 * 1024 / sizeof(void*)) /* well past the first page */

static NOINLINE void make_big(int i, alloc_fn alloc) {
  void** big = alloc(BIG);
  unsigned char* child = GC_malloc(64);
  CHECK(big != NULL && child != NULL);
  CHECK(GC_size(big) >= BIG);
  CHECK(GC_base(big) == big);
  if (alloc == GC_malloc_ignore_off_page) CHECK(all_zero(big, BIG));
  fill(child, 64, (unsigned)i);
  big[FAR_SLOT] = child;
  watch(&g_parent[i], big);
  watch(&g_child[i], child);
  alloc_root[i] = big; /* a pointer to the start, as the contract asks */
}

static NOINLINE int big_intact(int i) {
  void** big = alloc_root[i];
  return filled(big[FAR_SLOT], 64, (unsigned)i);
}

static void test_ignore_off_page(void) {
  for (int i = 0; i < BIG_N; i++) make_big(i, GC_malloc_ignore_off_page);
  collect();
  CHECK_ALL_ALIVE(g_parent, BIG_N);
  CHECK_ALL_ALIVE(g_child, BIG_N); /* scanned, to the end */
  for (int i = 0; i < BIG_N; i++) CHECK(big_intact(i));
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_parent, BIG_N);
  CHECK_MOSTLY_RECLAIMED(g_child, BIG_N);
  reset();

  for (int i = 0; i < BIG_N; i++) make_big(i, GC_malloc_atomic_ignore_off_page);
  collect();
  CHECK_ALL_ALIVE(g_parent, BIG_N);
  CHECK_MOSTLY_RECLAIMED(g_child, BIG_N); /* atomic: not scanned */
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_parent, BIG_N);
  reset();
}

/* --- GC_realloc ---------------------------------------------------------------- */

static NOINLINE void realloc_ansi_cases(void) {
  unsigned char* p = GC_realloc(NULL, 100); /* NULL: GC_malloc */
  CHECK(p != NULL);
  CHECK(GC_base(p) == p);
  CHECK(GC_size(p) >= 100);
  CHECK(all_zero(p, 100));

  fill(p, 100, 3);
  unsigned char* q = GC_realloc(p, 40); /* shrink: the prefix stays */
  CHECK(q != NULL);
  CHECK(GC_size(q) >= 40);
  CHECK(filled(q, 40, 3));

  q = GC_realloc(q, 100000); /* grow: contents kept, the rest zeroed */
  CHECK(q != NULL);
  CHECK(GC_size(q) >= 100000);
  CHECK(filled(q, 40, 3));
  CHECK(all_zero(q + 100, 100000 - 100));

  q = GC_realloc(q, 200); /* large to small */
  CHECK(q != NULL);
  CHECK(filled(q, 40, 3));

  CHECK(GC_realloc(q, 0) == NULL); /* size 0: GC_free, NULL returned */
  CHECK(GC_realloc(GC_malloc_atomic(10), 0) == NULL);
}

/* parent = realloc(alloc(2 words), grown) holding child. */
static NOINLINE void make_realloc_pair(int i, alloc_fn alloc, int rooted) {
  void** small = alloc(2 * sizeof(void*));
  unsigned char* child = GC_malloc(48);
  CHECK(small != NULL && child != NULL);
  fill(child, 48, (unsigned)i);
  small[1] = child;
  void** parent = GC_realloc(small, 5000); /* too big to stay in place */
  CHECK(parent != NULL);
  CHECK(parent[1] == child);
  watch(&g_child[i], child);
  watch(&g_parent[i], parent);
  g_hidden[i] = hide(parent);
  if (rooted) alloc_root[i] = parent;
}

static NOINLINE int realloc_child_intact(int i) {
  void** parent = reveal(g_hidden[i]);
  return filled(parent[1], 48, (unsigned)i);
}

static void test_realloc(void) {
  realloc_ansi_cases();

  /* The result keeps the kind: a GC_malloc object stays scanned... */
  for (int i = 0; i < N; i++) make_realloc_pair(i, GC_malloc, 1);
  collect();
  CHECK_ALL_ALIVE(g_child, N);
  for (int i = 0; i < N; i++) CHECK(realloc_child_intact(i));
  reset();

  /* ...an atomic one stays unscanned... */
  for (int i = 0; i < N; i++) make_realloc_pair(i, GC_malloc_atomic, 1);
  collect();
  CHECK_ALL_ALIVE(g_parent, N);
  CHECK_MOSTLY_RECLAIMED(g_child, N);
  reset();

  /* ...and an uncollectable one stays uncollectable (and scanned). */
  for (int i = 0; i < N; i++) make_realloc_pair(i, GC_malloc_uncollectable, 0);
  collect();
  collect();
  CHECK_ALL_ALIVE(g_parent, N);
  CHECK_ALL_ALIVE(g_child, N);
  for (int i = 0; i < N; i++) CHECK(realloc_child_intact(i));
  free_parents();
  reset();
}

/* --- GC_free ------------------------------------------------------------------- */

static NOINLINE void free_each_kind(void) {
  GC_free(GC_malloc(24));
  GC_free(GC_malloc(100000));
  GC_free(GC_malloc_atomic(24));
  GC_free(GC_malloc_atomic(100000));
  GC_free(GC_malloc_uncollectable(24));
  GC_free(GC_malloc_uncollectable(100000));
  GC_free(GC_malloc_atomic_uncollectable(24));
  GC_free(GC_strdup("freed"));
}

static void test_free(void) {
  GC_free(NULL); /* a no-op, as for free() */
  for (int round = 0; round < 3; round++) {
    free_each_kind();
    collect();
  }
  /* That GC_free ends an uncollectable object's hold on its children is
   * checked in test_uncollectable. */
}

/* --- strings ------------------------------------------------------------------- */

static NOINLINE void strings(void) {
  static const char text[] = "mallocgc, Boehm-compatible";
  char* s = GC_strdup(text);
  CHECK(s != NULL && s != text);
  CHECK(strcmp(s, text) == 0);
  CHECK(GC_base(s) == s);
  CHECK(GC_size(s) >= sizeof text);

  char* e = GC_strdup("");
  CHECK(e != NULL && e[0] == '\0');

  char* n = GC_strndup(text, 8); /* truncated, NUL-terminated */
  CHECK(n != NULL);
  CHECK(strlen(n) == 8 && memcmp(n, text, 8) == 0);
  CHECK(GC_size(n) >= 9);

  n = GC_strndup(text, 1000); /* n past the end: the whole string */
  CHECK(n != NULL && strcmp(n, text) == 0);

  n = GC_strndup(text, 0);
  CHECK(n != NULL && n[0] == '\0');

  /* Boehm's GC_strdup(NULL) returns NULL (mallocx.c) although the header
   * does not say so; programs pass possibly-NULL strings. */
  CHECK(GC_strdup(NULL) == NULL);
}

static NOINLINE void make_strings(void) {
  for (int i = 0; i < N; i++) {
    char text[32];
    snprintf(text, sizeof text, "string number %d", i);
    char* s = GC_strdup(text);
    CHECK(s != NULL);
    watch(&g_child[i], s);
    alloc_root[i] = s;
  }
}

static NOINLINE int string_intact(int i) {
  char text[32];
  snprintf(text, sizeof text, "string number %d", i);
  return strcmp((const char*)alloc_root[i], text) == 0;
}

static void test_strdup(void) {
  strings();
  make_strings();
  collect();
  CHECK_ALL_ALIVE(g_child, N);
  for (int i = 0; i < N; i++) CHECK(string_intact(i));
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_child, N);
  reset();
}

/* --- GC_base, GC_size, GC_is_heap_ptr ------------------------------------------------ */

int alloc_static_word;

static NOINLINE void base_size_heap_ptr(alloc_fn alloc) {
  static const size_t sizes[] = {1, 16, 17, 100, 2000, 2049, 5000, 100000, 1 << 20};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t size = sizes[s];
    char* p = alloc(size);
    CHECK(p != NULL);
    CHECK(GC_size(p) >= size);
    CHECK(GC_base(p) == p);
    CHECK(GC_base(p + size / 2) == p);
    CHECK(GC_base(p + size - 1) == p);
    CHECK(GC_is_heap_ptr(p));
    CHECK(GC_is_heap_ptr(p + size - 1));
  }
}

static NOINLINE void not_heap(void) {
  int local = 0;
  void* m = malloc(64);
  CHECK(m != NULL);
  CHECK(GC_base(&alloc_static_word) == NULL);
  CHECK(GC_base(&local) == NULL);
  CHECK(GC_base(m) == NULL);
  CHECK(GC_base(NULL) == NULL);
  CHECK(!GC_is_heap_ptr(&alloc_static_word));
  CHECK(!GC_is_heap_ptr(&local));
  CHECK(!GC_is_heap_ptr(m));
  CHECK(!GC_is_heap_ptr(NULL));
  free(m);
}

static void test_base_size_heap_ptr(void) {
  base_size_heap_ptr(GC_malloc);
  base_size_heap_ptr(GC_malloc_atomic);
  base_size_heap_ptr(GC_malloc_uncollectable);
  base_size_heap_ptr(GC_malloc_atomic_uncollectable);
  not_heap();
}

/* --- GC_memalign, GC_posix_memalign -------------------------------------------------- */

static NOINLINE void memalign_cases(void) {
  static const size_t aligns[] = {8, 16, 32, 64, 128, 256, 1024, 2048, 4096, 8192, 65536};
  static const size_t sizes[] = {1, 24, 100, 5000};
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      char* p = GC_memalign(aligns[a], sizes[s]);
      void* q = (void*)1;
      int rc = GC_posix_memalign(&q, aligns[a], sizes[s]);
      /* Boehm 8.2 serves alignments up to its block size (4096) and fails
       * larger ones through GC_oom_fn (mallocx.c: "align > HBLKSIZE"), so
       * past 4096 only "NULL or aligned" is asked. */
      if (aligns[a] > 4096 && p == NULL) {
        CHECK(rc == ENOMEM);
        continue;
      }
      CHECK(p != NULL);
      CHECK((uintptr_t)p % aligns[a] == 0);
      CHECK(all_zero(p, sizes[s])); /* Boehm: a GC_malloc object, zeroed */
      char* base = GC_base(p);      /* the object may start before p */
      CHECK(base != NULL && base <= p);
      CHECK(base + GC_size(base) >= p + sizes[s]);

      CHECK(rc == 0);
      CHECK(q != NULL);
      CHECK((uintptr_t)q % aligns[a] == 0);
    }
  }
  /* EINVAL: not a power of two, or smaller than a pointer. */
  static const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 100};
  for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
    void* q = NULL;
    CHECK_CMP(GC_posix_memalign(&q, bad[b], 64), ==, EINVAL);
  }
}

/* An aligned object holding a child, rooted by the aligned address. */
static NOINLINE void make_aligned(int i) {
  void** p = GC_memalign(256, 64);
  unsigned char* child = GC_malloc(48);
  CHECK(p != NULL && child != NULL);
  fill(child, 48, (unsigned)i);
  p[3] = child;
  watch(&g_parent[i], GC_base(p));
  watch(&g_child[i], child);
  alloc_root[i] = p;
}

static void test_memalign(void) {
  memalign_cases();
  for (int i = 0; i < N; i++) make_aligned(i);
  collect();
  CHECK_ALL_ALIVE(g_parent, N);
  CHECK_ALL_ALIVE(g_child, N); /* scanned, like GC_malloc */
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_parent, N);
  CHECK_MOSTLY_RECLAIMED(g_child, N);
  reset();
}

/* --- GC_malloc(0) ---------------------------------------------------------------- */

static NOINLINE void zero_size(alloc_fn alloc) {
  void* a = alloc(0);
  void* b = alloc(0);
  CHECK(a != NULL && b != NULL);
  CHECK(a != b); /* distinct objects, as Boehm gives */
  CHECK(GC_base(a) == a && GC_base(b) == b);
  CHECK(GC_is_heap_ptr(a));
}

static NOINLINE void make_zero_sized(int i) {
  void* p = GC_malloc(0);
  CHECK(p != NULL);
  watch(&g_child[i], p);
  alloc_root[i] = p;
}

static void test_malloc_zero(void) {
  zero_size(GC_malloc);
  zero_size(GC_malloc_atomic);
  for (int i = 0; i < N; i++) make_zero_sized(i);
  collect();
  CHECK_ALL_ALIVE(g_child, N);
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_child, N);
  reset();
}

int main(void) {
  GC_INIT();
  run("GC_malloc zeroed", test_malloc_zeroed);
  run("GC_malloc scanned", test_malloc_scanned);
  run("GC_malloc_atomic not scanned", test_atomic_not_scanned);
  run("GC_malloc_uncollectable", test_uncollectable);
  run("GC_malloc_atomic_uncollectable", test_atomic_uncollectable);
  run("*_ignore_off_page", test_ignore_off_page);
  run("GC_realloc", test_realloc);
  run("GC_free", test_free);
  run("GC_strdup, GC_strndup", test_strdup);
  run("GC_base, GC_size, GC_is_heap_ptr", test_base_size_heap_ptr);
  run("GC_memalign, GC_posix_memalign", test_memalign);
  run("GC_malloc(0)", test_malloc_zero);
  return finish();
}
