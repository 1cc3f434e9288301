/* Explicitly typed objects (gc_typed.h): GC_make_descriptor from a bitmap;
 * in an object from GC_malloc_explicitly_typed,
 * GC_malloc_explicitly_typed_ignore_off_page or GC_calloc_explicitly_typed,
 * a pointer in a word the bitmap marks keeps its target, and the same
 * address in a word it does not mark (or past the bitmap's length) does
 * not. Small bitmaps, a prefix of pointers, a bitmap longer than a word,
 * and arrays. The objects come zeroed, and go when unreachable. */
#include <gc_typed.h>

#include "compat_test.h"

#define N 16
#define CHILD 48

void* volatile typed_root[N];
static watch_t g_traced[N];   /* targets of marked words */
static watch_t g_untraced[N]; /* targets of unmarked words */
static watch_t g_object[N];   /* the typed objects */

static void clear_roots(void) {
  for (int i = 0; i < N; i++) typed_root[i] = NULL;
}

static void reset(void) {
  clear_roots();
  unwatch_all(g_traced, N);
  unwatch_all(g_untraced, N);
  unwatch_all(g_object, N);
}

static NOINLINE void* new_child(int i) {
  void* child = GC_malloc(CHILD);
  CHECK(child != NULL);
  fill(child, CHILD, (unsigned)i);
  return child;
}

static NOINLINE int child_intact(int i, size_t word) {
  void** object = typed_root[i];
  return filled(object[word], CHILD, (unsigned)i);
}

/* Both directions for objects made by `make`: what the marked word points
 * to stays (intact), what the unmarked one points to goes, and the objects
 * go once unrooted. */
static void check_typed(void (*make)(int), size_t traced_word) {
  for (int i = 0; i < N; i++) make(i);
  collect();
  collect();
  CHECK_ALL_ALIVE(g_object, N);
  CHECK_ALL_ALIVE(g_traced, N);
  for (int i = 0; i < N; i++) CHECK(child_intact(i, traced_word));
  CHECK_MOSTLY_RECLAIMED(g_untraced, N);
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_object, N);
  CHECK_MOSTLY_RECLAIMED(g_traced, N);
  reset();
}

/* Puts children in words `traced` and `untraced` of a fresh object. */
static NOINLINE void populate(int i, void** object, size_t size, size_t traced, size_t untraced) {
  CHECK(object != NULL);
  CHECK(GC_size(object) >= size);
  CHECK(all_zero(object, size));
  void* a = new_child(i);
  void* b = new_child(i);
  object[traced] = a;
  object[untraced] = b;
  watch(&g_traced[i], a);
  watch(&g_untraced[i], b);
  watch(&g_object[i], object);
  typed_root[i] = object;
}

/* --- a small bitmap: word 1 of 4 -------------------------------------------------------- */

static GC_descr g_small;

static NOINLINE void make_small(int i) {
  void** object = GC_malloc_explicitly_typed(4 * sizeof(GC_word), g_small);
  populate(i, object, 4 * sizeof(GC_word), 1, 2);
}

static void test_small_bitmap(void) {
  GC_word bitmap[1] = {0};
  GC_set_bit(bitmap, 1);
  g_small = GC_make_descriptor(bitmap, 4);
  check_typed(make_small, 1);
}

/* --- a prefix of pointers, and words past the bitmap ----------------------------------------- */

static GC_descr g_prefix;

static NOINLINE void make_prefix(int i) {
  /* 8 words, the bitmap covers 3: word 5 is assumed not a pointer. */
  void** object = GC_malloc_explicitly_typed(8 * sizeof(GC_word), g_prefix);
  populate(i, object, 8 * sizeof(GC_word), 2, 5);
}

static void test_prefix_and_past_bitmap(void) {
  GC_word bitmap[1] = {0};
  GC_set_bit(bitmap, 0);
  GC_set_bit(bitmap, 1);
  GC_set_bit(bitmap, 2);
  g_prefix = GC_make_descriptor(bitmap, 3);
  check_typed(make_prefix, 2);
}

/* --- a bitmap longer than a word --------------------------------------------------------- */

#define LONG_WORDS 100
static GC_descr g_long;

static NOINLINE void make_long(int i) {
  void** object = GC_malloc_explicitly_typed(LONG_WORDS * sizeof(GC_word), g_long);
  populate(i, object, LONG_WORDS * sizeof(GC_word), 70, 71);
}

static void test_long_bitmap(void) {
  GC_word bitmap[(LONG_WORDS + GC_WORDSZ - 1) / GC_WORDSZ] = {0};
  GC_set_bit(bitmap, 3);
  GC_set_bit(bitmap, 70);
  GC_set_bit(bitmap, 99);
  g_long = GC_make_descriptor(bitmap, LONG_WORDS);
  check_typed(make_long, 70);
}

/* --- _ignore_off_page ------------------------------------------------------------------ */

#define BIG_WORDS (100 * 1024 / sizeof(GC_word))

static NOINLINE void make_big(int i) {
  /* The small descriptor on a large object: only word 1 is traced. */
  void** object = GC_malloc_explicitly_typed_ignore_off_page(BIG_WORDS * sizeof(GC_word), g_small);
  populate(i, object, BIG_WORDS * sizeof(GC_word), 1, BIG_WORDS - 1);
}

static void test_ignore_off_page(void) { check_typed(make_big, 1); }

/* --- GC_calloc_explicitly_typed ---------------------------------------------------------- */

/* Elements of 3 words, word 0 a pointer. */
#define ELEMENT_WORDS 3
static GC_descr g_element;
static size_t g_count;
static size_t g_index; /* the element that gets the children */

static NOINLINE void make_array(int i) {
  void** array = GC_calloc_explicitly_typed(g_count, ELEMENT_WORDS * sizeof(GC_word), g_element);
  size_t at = g_index * ELEMENT_WORDS;
  populate(i, array, g_count * ELEMENT_WORDS * sizeof(GC_word), at, at + 1);
}

static void check_array(size_t count, size_t index) {
  g_count = count;
  g_index = index;
  check_typed(make_array, index * ELEMENT_WORDS);
}

static void test_calloc(void) {
  GC_word bitmap[1] = {0};
  GC_set_bit(bitmap, 0);
  g_element = GC_make_descriptor(bitmap, ELEMENT_WORDS);
  check_array(1, 0);
  check_array(4, 3);
  check_array(1000, 0);
  check_array(1000, 500);
  check_array(1000, 999);
  check_array(100000, 77777); /* a few megabytes */
}

int main(void) {
  GC_INIT();
  run("a small bitmap", test_small_bitmap);
  run("a prefix, and words past the bitmap", test_prefix_and_past_bitmap);
  run("a bitmap longer than a word", test_long_bitmap);
  run("GC_malloc_explicitly_typed_ignore_off_page", test_ignore_off_page);
  run("GC_calloc_explicitly_typed", test_calloc);
  return finish();
}
