/* Object kinds defined by the program (gc_mark.h): GC_new_free_list and
 * GC_new_kind, with each form of mark descriptor as the kind's template:
 *   - GC_DS_LENGTH 0 with add_size: the whole object is scanned (a child
 *     in its last requested word is kept, small or large);
 *   - GC_DS_LENGTH of two words without add_size: only those are scanned,
 *     a pointer past them does not keep its target;
 *   - GC_DS_BITMAP: only the words whose bits are set keep targets;
 *   - GC_DS_PER_OBJECT with a displacement: the descriptor is read from
 *     the object (objects of one kind with different layouts), and the
 *     negative form reading it from a "vtable" the first word points to,
 *     displaced by GC_INDIR_PER_OBJ_BIAS, as gcj's kind has it.
 * (GC_DS_PROC is in markproc_test.c.) Each rule both ways: the child
 * in a traced word stays (intact), the one in an untraced word goes, and
 * the objects go with what they alone kept once unrooted. Objects come
 * from GC_generic_malloc, GC_generic_malloc_ignore_off_page and
 * GC_malloc_kind; GC_get_kind_and_size names their kind; a kind made
 * with the clear flag hands out zeroed objects, also when it reuses one
 * (collected, or freed with GC_free).
 *
 * GC_generic_malloc_uncollectable: with the kind of Boehm's own
 * uncollectable objects (which GC_get_kind_and_size tells), the object
 * stays while unreachable, is traced, and goes with GC_free. On a
 * program's kind, Boehm 8.2.2 returns an object of that kind that is
 * collected like any other (only its own uncollectable kinds have their
 * free objects premarked, malloc.c): there the test checks the kind and
 * the layout, not the lifetime. */
#include <gc_inline.h>
#include <gc_mark.h>

#include "compat_test.h"

#define N 16
#define CHILD 48
#define WORD_BYTES sizeof(GC_word)
#define WORD_BITS (8 * sizeof(GC_word))
#define NONE (-1)

/* Descriptors: a bitmap with word w a possible pointer (the top bit is
 * word 0), a length in bytes. */
#define BIT(w) ((GC_word)1 << (WORD_BITS - 1 - (w)))
#define BITMAP(bits) ((GC_word)(bits) | GC_DS_BITMAP)
#define LENGTH(bytes) ((GC_word)(bytes) | GC_DS_LENGTH)

#define SMALL 64          /* bytes: 8 words */
#define LARGE (48 * 1024) /* past every small size class */
#define LAST(bytes) ((int)((bytes) / WORD_BYTES) - 1)

void* volatile kinds_root[N];
static uintptr_t g_hidden[N]; /* the objects, for GC_free */
static watch_t g_object[N];
static watch_t g_traced[2 * N];
static watch_t g_untraced[N];
static int g_ntraced, g_nuntraced;

typedef void* (*alloc_fn)(size_t, int);

typedef struct {
  int kind;
  size_t size;
  alloc_fn alloc;
  void (*prepare)(void** object, int i); /* writes what the descriptor needs, before the children */
  int traced[2][2];                      /* [i % 2]: words whose child is kept (NONE: unused) */
  int untraced[2];                       /* [i % 2]: a word whose child is not (NONE) */
  int uncollectable;                     /* kept while unreachable: goes with GC_free */
  int lifetime_unchecked;                /* GC_free'd, neither kept nor reclaimed is checked */
} layout_t;

static const layout_t* g_layout;

static void clear_roots(void) {
  for (int i = 0; i < N; i++) kinds_root[i] = NULL;
}

static void reset(void) {
  clear_roots();
  unwatch_all(g_object, N);
  unwatch_all(g_traced, 2 * N);
  unwatch_all(g_untraced, N);
  g_ntraced = g_nuntraced = 0;
}

static NOINLINE void* new_child(int i) {
  void* child = GC_malloc(CHILD);
  CHECK(child != NULL);
  fill(child, CHILD, (unsigned)i);
  return child;
}

static NOINLINE int child_intact(int i, int word) {
  void** object = reveal(g_hidden[i]);
  return filled(object[word], CHILD, (unsigned)i);
}

static NOINLINE int kind_of(const void* p) {
  size_t size = 0;
  int kind = GC_get_kind_and_size(p, &size);
  CHECK_CMP(size, ==, GC_size(p));
  CHECK(GC_get_kind_and_size(p, NULL) == kind);
  return kind;
}

/* Object i of the layout, rooted, with its children in place. */
static NOINLINE void populate(int i) {
  const layout_t* l = g_layout;
  void** object = l->alloc(l->size, l->kind);
  CHECK(object != NULL);
  CHECK_CMP(GC_size(object), >=, l->size);
  CHECK_CMP(kind_of(object), ==, l->kind);
  CHECK(all_zero(object, l->size)); /* every kind here clears */
  if (l->prepare) l->prepare(object, i);
  for (int j = 0; j < 2; j++) {
    int w = l->traced[i % 2][j];
    if (w == NONE) continue;
    void* child = new_child(i);
    object[w] = child;
    watch(&g_traced[g_ntraced++], child);
  }
  int w = l->untraced[i % 2];
  if (w != NONE) {
    void* child = new_child(i);
    object[w] = child;
    watch(&g_untraced[g_nuntraced++], child);
  }
  g_hidden[i] = hide(object);
  watch(&g_object[i], object);
  kinds_root[i] = object;
}

static NOINLINE void free_objects(void) {
  for (int i = 0; i < N; i++) GC_free(reveal(g_hidden[i]));
}

static void check_layout(const layout_t* l) {
  g_layout = l;
  for (int i = 0; i < N; i++) populate(i);
  if (l->uncollectable) clear_roots(); /* they stay anyway */
  collect();
  collect();
  CHECK_ALL_ALIVE(g_object, N);
  CHECK_ALL_ALIVE(g_traced, g_ntraced);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < 2; j++)
      if (l->traced[i % 2][j] != NONE) CHECK(child_intact(i, l->traced[i % 2][j]));
  if (g_nuntraced > 0) CHECK_MOSTLY_RECLAIMED(g_untraced, g_nuntraced);
  clear_roots();
  if (l->uncollectable || l->lifetime_unchecked) {
    /* Not reachable now (or never was): freed by hand, and then what
     * they alone kept goes. */
    unwatch_all(g_object, N);
    free_objects();
  }
  collect();
  if (!l->uncollectable && !l->lifetime_unchecked) CHECK_MOSTLY_RECLAIMED(g_object, N);
  CHECK_MOSTLY_RECLAIMED(g_traced, g_ntraced);
  reset();
}

/* --- the kinds --------------------------------------------------------------------------- */

static int g_whole;      /* GC_DS_LENGTH 0 + the object's size */
static int g_prefix;     /* GC_DS_LENGTH of two words */
static int g_bitmap;     /* words 1 and 4 */
static int g_per_object; /* the descriptor in word 1 */
static int g_vtable;     /* the descriptor in the second word of what word 0 points to */

static void** g_lists[5];

/* In main, before the tests that use them; test_new_kind checks them. */
static void make_kinds(void) {
  for (int i = 0; i < 5; i++) g_lists[i] = GC_new_free_list();
  g_whole = (int)GC_new_kind(g_lists[0], LENGTH(0), 1, 1);
  g_prefix = (int)GC_new_kind(g_lists[1], LENGTH(2 * WORD_BYTES), 0, 1);
  g_bitmap = (int)GC_new_kind(g_lists[2], BITMAP(BIT(1) | BIT(4)), 0, 1);
  g_per_object = (int)GC_new_kind(g_lists[3], (GC_word)WORD_BYTES | GC_DS_PER_OBJECT, 0, 1);
  /* gcj's: the descriptor at (*object) - (descr & ~GC_DS_TAGS) -
   * GC_INDIR_PER_OBJ_BIAS, here the vtable's second word. */
  g_vtable = (int)GC_new_kind(g_lists[4], ((GC_word)0 - (WORD_BYTES + GC_INDIR_PER_OBJ_BIAS)) | GC_DS_PER_OBJECT, 0, 1);
}

static void test_new_kind(void) {
  int kinds[] = {g_whole, g_prefix, g_bitmap, g_per_object, g_vtable};
  for (int i = 0; i < 5; i++) {
    CHECK(g_lists[i] != NULL);
    for (int j = 0; j < i; j++) CHECK(g_lists[i] != g_lists[j]);
    CHECK(kinds[i] != GC_I_PTRFREE && kinds[i] != GC_I_NORMAL);
    for (int j = 0; j < i; j++) CHECK(kinds[i] != kinds[j]);
    /* A fresh object of each kind says its kind. */
    CHECK_CMP(kind_of(GC_generic_malloc(SMALL, kinds[i])), ==, kinds[i]);
  }
}

/* --- GC_DS_LENGTH -------------------------------------------------------------------------- */

static void test_length_whole(void) {
  /* Words 0 and the last requested one (Boehm adds a byte: the object is
   * larger, still all of it is scanned). */
  layout_t small = {g_whole, SMALL, GC_generic_malloc, NULL, {{0, LAST(SMALL)}, {3, LAST(SMALL)}}, {NONE, NONE}, 0, 0};
  check_layout(&small);
  layout_t large = {g_whole, LARGE, GC_generic_malloc, NULL, {{0, LAST(LARGE)}, {1000, LAST(LARGE)}}, {NONE, NONE},
                    0,       0};
  check_layout(&large);
  layout_t off_page = {
      g_whole, LARGE, GC_generic_malloc_ignore_off_page, NULL, {{1, LAST(LARGE)}, {2, LAST(LARGE)}}, {NONE, NONE},
      0,       0};
  check_layout(&off_page);
  layout_t kind = {g_whole, SMALL, GC_malloc_kind, NULL, {{0, LAST(SMALL)}, {5, 6}}, {NONE, NONE}, 0, 0};
  check_layout(&kind);
}

static void test_length_prefix(void) {
  layout_t small = {g_prefix, SMALL, GC_generic_malloc, NULL, {{0, 1}, {1, NONE}}, {2, LAST(SMALL)}, 0, 0};
  check_layout(&small);
  layout_t large = {g_prefix, LARGE, GC_generic_malloc, NULL, {{1, NONE}, {0, 1}}, {LAST(LARGE), 2}, 0, 0};
  check_layout(&large);
  layout_t off_page = {g_prefix, LARGE, GC_generic_malloc_ignore_off_page, NULL, {{0, NONE}, {1, NONE}}, {2, 1000},
                       0,        0};
  check_layout(&off_page);
  layout_t kind = {g_prefix, SMALL, GC_malloc_kind, NULL, {{0, NONE}, {1, NONE}}, {3, 2}, 0, 0};
  check_layout(&kind);
}

/* --- GC_DS_BITMAP -------------------------------------------------------------------------- */

static void test_bitmap(void) {
  layout_t small = {g_bitmap, SMALL, GC_generic_malloc, NULL, {{1, 4}, {4, NONE}}, {2, 0}, 0, 0};
  check_layout(&small);
  /* Words past the bitmap's 62 are never pointers. */
  layout_t large = {g_bitmap, LARGE, GC_generic_malloc, NULL, {{1, NONE}, {4, NONE}}, {LAST(LARGE), 5}, 0, 0};
  check_layout(&large);
  layout_t off_page = {g_bitmap, LARGE, GC_generic_malloc_ignore_off_page, NULL, {{4, NONE}, {1, 4}}, {3, 100}, 0, 0};
  check_layout(&off_page);
  layout_t kind = {g_bitmap, SMALL, GC_malloc_kind, NULL, {{1, 4}, {1, NONE}}, {LAST(SMALL), 3}, 0, 0};
  check_layout(&kind);
}

/* --- GC_DS_PER_OBJECT ---------------------------------------------------------------------- */

/* Even objects: word 3 only. Odd ones: words 0 to 2 (word 1, the
 * descriptor itself, is no pointer). */
static const GC_word g_descr[2] = {BITMAP(BIT(3)), LENGTH(3 * WORD_BYTES)};

static void set_descriptor(void** object, int i) { ((GC_word*)object)[1] = g_descr[i % 2]; }

static void test_per_object(void) {
  layout_t small = {g_per_object, SMALL, GC_generic_malloc, set_descriptor, {{3, NONE}, {0, 2}}, {2, 3}, 0, 0};
  check_layout(&small);
  layout_t large = {
      g_per_object, LARGE, GC_generic_malloc, set_descriptor, {{3, NONE}, {2, NONE}}, {LAST(LARGE), 3}, 0, 0};
  check_layout(&large);
}

/* A vtable as gcj lays it out: something, then the mark descriptor. */
typedef struct {
  const char* name;
  GC_word descr;
} vtable_t;

static const vtable_t g_vtables[2] = {{"word 3", BITMAP(BIT(3))}, {"words 0 to 2", LENGTH(3 * WORD_BYTES)}};

static void set_vtable(void** object, int i) { object[0] = (void*)&g_vtables[i % 2]; }

static void test_vtable(void) {
  /* Word 0 is the vtable: the odd ones' children go in words 1 and 2. */
  layout_t small = {g_vtable, SMALL, GC_generic_malloc, set_vtable, {{3, NONE}, {1, 2}}, {2, 3}, 0, 0};
  check_layout(&small);
  layout_t large = {g_vtable, LARGE, GC_generic_malloc, set_vtable, {{3, NONE}, {1, NONE}}, {4, LAST(LARGE)}, 0, 0};
  check_layout(&large);
  /* A cleared object (no vtable yet) is skipped, not followed through
   * a NULL vtable: allocate some and collect. */
  for (int i = 0; i < N; i++) kinds_root[i] = GC_generic_malloc(SMALL, g_vtable);
  collect();
  clear_roots();
}

/* --- uncollectable ----------------------------------------------------------------------- */

static void test_uncollectable(void) {
  void* u = GC_malloc_uncollectable(16);
  int uncollectable = kind_of(u);
  GC_free(u);
  layout_t own = {
      uncollectable, SMALL, GC_generic_malloc_uncollectable, NULL, {{0, LAST(SMALL)}, {2, 5}}, {NONE, NONE}, 1, 0};
  check_layout(&own);
  layout_t own_large = {uncollectable,
                        LARGE,
                        GC_generic_malloc_uncollectable,
                        NULL,
                        {{0, LAST(LARGE)}, {LAST(LARGE), NONE}},
                        {NONE, NONE},
                        1,
                        0};
  check_layout(&own_large);
  /* On a program's kind: that kind's object, traced as the kind says. */
  layout_t program = {g_bitmap, SMALL, GC_generic_malloc_uncollectable, NULL, {{1, 4}, {4, NONE}}, {2, 0}, 0, 1};
  check_layout(&program);
  layout_t program_large = {
      g_prefix, LARGE, GC_generic_malloc_uncollectable, NULL, {{0, 1}, {1, NONE}}, {2, LAST(LARGE)}, 0, 1};
  check_layout(&program_large);
}

/* --- the clear flag ---------------------------------------------------------------------- */

static NOINLINE void allocate_dirty(int kind, size_t size, int count) {
  for (int i = 0; i < count; i++) {
    void* p = GC_generic_malloc(size, kind);
    CHECK(p != NULL);
    memset(p, 0xA5, GC_size(p)); /* no plausible pointer */
  }
}

static NOINLINE void check_clean(int kind, size_t size, int count) {
  for (int i = 0; i < count; i++) {
    void* p = GC_generic_malloc(size, kind);
    CHECK(p != NULL);
    CHECK(all_zero(p, GC_size(p)));
    memset(p, 0xA5, GC_size(p)); /* dirty for the next round */
  }
}

static NOINLINE void check_free_then_clean(int kind, size_t size) {
  for (int i = 0; i < 64; i++) {
    void* p = GC_generic_malloc(size, kind);
    CHECK(p != NULL);
    memset(p, 0xA5, GC_size(p));
    GC_free(p);
    void* q = GC_generic_malloc(size, kind); /* often p again */
    CHECK(q != NULL);
    CHECK(all_zero(q, GC_size(q)));
  }
}

static void test_clear_flag(void) {
  static const size_t sizes[] = {16, SMALL, 1000, LARGE};
  int kinds[] = {g_whole, g_bitmap, g_per_object};
  for (int k = 0; k < 3; k++) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      int count = sizes[s] >= LARGE ? 16 : 2000;
      allocate_dirty(kinds[k], sizes[s], count);
      collect();
      check_clean(kinds[k], sizes[s], count); /* reuses what the collection freed */
      collect();
      check_clean(kinds[k], sizes[s], count);
      check_free_then_clean(kinds[k], sizes[s]);
    }
  }
}

/* --- the predefined kinds ----------------------------------------------------------------- */

static void test_predefined_kinds(void) {
  static const size_t sizes[] = {8, SMALL, 1000, LARGE};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    CHECK_CMP(kind_of(GC_malloc_kind(sizes[s], GC_I_NORMAL)), ==, GC_I_NORMAL);
    CHECK_CMP(kind_of(GC_malloc_kind(sizes[s], GC_I_PTRFREE)), ==, GC_I_PTRFREE);
    CHECK_CMP(kind_of(GC_generic_malloc(sizes[s], GC_I_NORMAL)), ==, GC_I_NORMAL);
    CHECK_CMP(kind_of(GC_generic_malloc(sizes[s], GC_I_PTRFREE)), ==, GC_I_PTRFREE);
    void* p = GC_malloc_kind(sizes[s], GC_I_NORMAL);
    CHECK(all_zero(p, sizes[s]));
  }
  /* NORMAL objects are scanned whole, PTRFREE ones not at all. */
  layout_t normal = {GC_I_NORMAL, SMALL, GC_malloc_kind, NULL, {{0, LAST(SMALL)}, {3, NONE}}, {NONE, NONE}, 0, 0};
  check_layout(&normal);
  layout_t normal_generic = {GC_I_NORMAL, LARGE, GC_generic_malloc, NULL, {{0, LAST(LARGE)}, {9, NONE}}, {NONE, NONE},
                             0,           0};
  check_layout(&normal_generic);
}

int main(void) {
  GC_INIT();
  make_kinds();
  run("GC_new_free_list, GC_new_kind", test_new_kind);
  run("GC_DS_LENGTH: the whole object", test_length_whole);
  run("GC_DS_LENGTH: the first two words", test_length_prefix);
  run("GC_DS_BITMAP", test_bitmap);
  run("GC_DS_PER_OBJECT in the object", test_per_object);
  run("GC_DS_PER_OBJECT through a vtable", test_vtable);
  run("GC_generic_malloc_uncollectable", test_uncollectable);
  run("the clear flag", test_clear_flag);
  run("GC_malloc_kind, GC_generic_malloc on GC_I_NORMAL, GC_I_PTRFREE", test_predefined_kinds);
  return finish();
}
