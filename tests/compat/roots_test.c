/* Roots: GC_add_roots on malloc'd memory keeps what it points to, and
 * GC_remove_roots and GC_clear_roots undo it; GC_exclude_static_roots on
 * a static array holding the only pointers lets the objects go; a
 * push-other-roots procedure, installed through the variable
 * GC_push_other_roots (as older programs do) or GC_set_push_other_roots,
 * keeps objects with GC_push_all on a malloc'd range and with
 * GC_set_mark_bit; GC_set_no_dls is callable. GC_clear_roots runs last:
 * it drops every root segment. */
#include <gc_mark.h>

#include "compat_test.h"

#define N 32
#define SIZE 64

/* Not declared by gc_mark.h, but exported by Boehm and assigned by older
 * programs; it holds the procedure GC_set_push_other_roots sets. */
extern GC_push_other_roots_proc GC_push_other_roots;

static watch_t g_obj[N];
static uintptr_t g_hidden[N];

static NOINLINE void make_objects(void** slots) {
  for (int i = 0; i < N; i++) {
    void* p = GC_malloc(SIZE);
    CHECK(p != NULL);
    fill(p, SIZE, (unsigned)i);
    watch(&g_obj[i], p);
    g_hidden[i] = hide(p);
    if (slots) slots[i] = p;
  }
}

static NOINLINE int objects_intact(void) {
  for (int i = 0; i < N; i++)
    if (!filled(reveal(g_hidden[i]), SIZE, (unsigned)i)) return 0;
  return 1;
}

static void check_kept(void) {
  collect();
  collect();
  CHECK_ALL_ALIVE(g_obj, N);
  CHECK(objects_intact());
}

static void check_reclaimed(void) {
  collect();
  CHECK_MOSTLY_RECLAIMED(g_obj, N);
  unwatch_all(g_obj, N);
}

/* System malloc memory, which the collector does not scan by itself. */
static void** new_block(void) {
  void** block = calloc(N, sizeof(void*));
  CHECK(block != NULL);
  return block;
}

/* --- GC_add_roots, GC_remove_roots -------------------------------------------------- */

static void test_add_remove_roots(void) {
  void** block = new_block();
  make_objects(block);
  GC_add_roots(block, block + N);
  check_kept();
  GC_remove_roots(block, block + N);
  check_reclaimed();
  free(block);

  /* Unregistered malloc memory is no root (the reverse direction). */
  block = new_block();
  make_objects(block);
  check_reclaimed();
  free(block);
}

/* --- GC_exclude_static_roots ------------------------------------------------------------ */

void* volatile roots_excluded[N];
void* volatile roots_kept[N];

static void test_exclude_static_roots(void) {
  /* Static data is scanned... */
  make_objects((void**)roots_kept);
  check_kept();
  for (int i = 0; i < N; i++) roots_kept[i] = NULL;
  check_reclaimed();

  /* ...except a range excluded from it. */
  GC_exclude_static_roots((void*)roots_excluded, (void*)(roots_excluded + N));
  make_objects((void**)roots_excluded);
  check_reclaimed();
  for (int i = 0; i < N; i++) roots_excluded[i] = NULL;

  /* The rest of static data still is. */
  make_objects((void**)roots_kept);
  check_kept();
  for (int i = 0; i < N; i++) roots_kept[i] = NULL;
  check_reclaimed();
}

/* --- GC_push_other_roots ---------------------------------------------------------------- */

static GC_push_other_roots_proc g_previous_push;
static void** g_pushed_block;
static volatile int g_pushes;

/* Calls the procedure it replaced, as gc_mark.h asks (Boehm's pushes the
 * thread stacks), then pushes a malloc'd block. */
static void GC_CALLBACK push_block(void) {
  g_pushes++;
  if (g_previous_push) g_previous_push();
  GC_push_all(g_pushed_block, g_pushed_block + N);
}

static void test_push_other_roots_variable(void) {
  g_pushed_block = new_block();
  make_objects(g_pushed_block);
  g_previous_push = GC_push_other_roots;
  GC_push_other_roots = push_block;
  CHECK(GC_get_push_other_roots() == push_block);
  int pushes = g_pushes;
  check_kept();
  CHECK_CMP(g_pushes, >, pushes);
  GC_push_other_roots = g_previous_push;
  check_reclaimed();
  free(g_pushed_block);
}

static void test_set_push_other_roots(void) {
  g_pushed_block = new_block();
  make_objects(g_pushed_block);
  g_previous_push = GC_get_push_other_roots();
  GC_set_push_other_roots(push_block);
  CHECK(GC_get_push_other_roots() == push_block);
  CHECK(GC_push_other_roots == push_block);
  int pushes = g_pushes;
  check_kept();
  CHECK_CMP(g_pushes, >, pushes);
  GC_set_push_other_roots(g_previous_push);
  CHECK(GC_get_push_other_roots() == g_previous_push);
  check_reclaimed();
  free(g_pushed_block);
}

/* GC_set_mark_bit from the procedure: marked objects are kept. */
static volatile int g_marked_ok;

static void GC_CALLBACK mark_objects(void) {
  if (g_previous_push) g_previous_push();
  for (int i = 0; i < N; i++) {
    void* p = reveal(g_hidden[i]);
    GC_set_mark_bit(p);
    if (!GC_is_marked(p)) g_marked_ok = 0;
  }
}

static void test_set_mark_bit(void) {
  make_objects(NULL); /* unreachable */
  g_previous_push = GC_get_push_other_roots();
  g_marked_ok = 1;
  GC_set_push_other_roots(mark_objects);
  check_kept();
  CHECK(g_marked_ok);
  GC_set_push_other_roots(g_previous_push);
  check_reclaimed();
}

/* --- GC_set_no_dls, GC_clear_roots --------------------------------------------------------- */

static void test_no_dls(void) {
  /* Set to 1 it would stop the scanning of every loaded object's data,
   * this program's included; callable is what is asked. */
  CHECK(GC_get_no_dls() == 0);
  GC_set_no_dls(0);
  CHECK(GC_get_no_dls() == 0);
}

static void test_clear_roots(void) {
  void** block = new_block();
  make_objects(block);
  GC_add_roots(block, block + N);
  check_kept();
  GC_clear_roots();
  check_reclaimed();
  free(block);
}

int main(void) {
  GC_INIT();
  run("GC_add_roots, GC_remove_roots", test_add_remove_roots);
  run("GC_exclude_static_roots", test_exclude_static_roots);
  run("GC_push_other_roots variable", test_push_other_roots_variable);
  run("GC_set_push_other_roots", test_set_push_other_roots);
  run("GC_set_mark_bit in push_other_roots", test_set_mark_bit);
  run("GC_set_no_dls", test_no_dls);
  run("GC_clear_roots", test_clear_roots);
  return finish();
}
