/* The rest: GC_get_version (the 8.2 series the headers describe),
 * GC_is_init_called, GC_get_kind_and_size, GC_malloc_many (a list linked
 * through the first word, which keeps its objects while its head is
 * reachable), GC_dump (writes something, to stdout in Boehm), and
 * GC_gcollect_and_unmap. */
#include <fcntl.h>
#include <gc_inline.h>
#include <gc_mark.h>

#include "compat_test.h"

#define N 16

static void test_version(void) {
  unsigned version = GC_get_version();
  CHECK_CMP(version >> 16, ==, GC_VERSION_MAJOR);
  CHECK_CMP((version >> 8) & 0xff, ==, GC_VERSION_MINOR);
  CHECK(GC_is_init_called());
}

/* --- GC_get_kind_and_size -------------------------------------------------------------- */

static NOINLINE int kind_of(void* p, size_t expected_size) {
  size_t size = 0;
  CHECK(p != NULL);
  int kind = GC_get_kind_and_size(p, &size);
  CHECK_CMP(size, ==, GC_size(p));
  CHECK_CMP(size, >=, expected_size);
  CHECK(GC_get_kind_and_size(p, NULL) == kind); /* psize may be NULL */
  return kind;
}

static void test_kind_and_size(void) {
  static const size_t sizes[] = {1, 24, 100, 5000, 100000};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t size = sizes[s];
    CHECK_CMP(kind_of(GC_malloc(size), size), ==, GC_I_NORMAL);
    CHECK_CMP(kind_of(GC_malloc_atomic(size), size), ==, GC_I_PTRFREE);
    CHECK_CMP(kind_of(GC_malloc_ignore_off_page(size), size), ==, GC_I_NORMAL);
    CHECK_CMP(kind_of(GC_malloc_atomic_ignore_off_page(size), size), ==, GC_I_PTRFREE);
    /* The uncollectable kinds are two more, distinct ones. */
    void* u = GC_malloc_uncollectable(size);
    void* au = GC_malloc_atomic_uncollectable(size);
    int uncollectable = kind_of(u, size);
    int atomic_uncollectable = kind_of(au, size);
    CHECK(uncollectable != GC_I_NORMAL && uncollectable != GC_I_PTRFREE);
    CHECK(atomic_uncollectable != GC_I_NORMAL && atomic_uncollectable != GC_I_PTRFREE);
    CHECK(uncollectable != atomic_uncollectable);
    GC_free(u);
    GC_free(au);
  }
  /* Boehm's GC_strdup makes an atomic object. */
  CHECK_CMP(kind_of(GC_strdup("pointer-free"), 13), ==, GC_I_PTRFREE);
}

/* --- GC_malloc_many ---------------------------------------------------------------------- */

void* volatile misc_list;
static watch_t g_elements[N];

/* Checks the list and watches its first N elements; returns its length. */
static NOINLINE int take_list(size_t lb) {
  void* list = GC_malloc_many(lb);
  CHECK(list != NULL);
  int length = 0;
  for (void* p = list; p != NULL; p = GC_NEXT(p), length++) {
    CHECK(GC_base(p) == p);
    CHECK_CMP(GC_size(p), >=, lb);
    CHECK(all_zero((char*)p + sizeof(void*), lb - sizeof(void*))); /* cleared but for the link */
    for (void* q = GC_NEXT(p); q != NULL; q = GC_NEXT(q)) CHECK(q != p);
    if (length < N) watch(&g_elements[length], p);
  }
  misc_list = list;
  return length;
}

static void check_malloc_many(size_t lb) {
  int length = take_list(lb);
  CHECK_CMP(length, >=, 1);
  int watched = length < N ? length : N;
  collect();
  CHECK_ALL_ALIVE(g_elements, watched); /* the head keeps the chain */
  misc_list = NULL;
  collect();
  if (watched >= 8) CHECK_MOSTLY_RECLAIMED(g_elements, watched);
  unwatch_all(g_elements, N);
}

static void test_malloc_many(void) {
  check_malloc_many(16);
  check_malloc_many(48);
  check_malloc_many(100);
  check_malloc_many(1000);
  check_malloc_many(5000); /* large: possibly a list of one */
}

/* --- GC_dump ------------------------------------------------------------------------------ */

/* Runs fn with stdout and stderr going to a temporary file; returns how
 * many bytes were written there. */
static long capture(void (*fn)(void)) {
  char path[] = "/tmp/mgc-compat-dump-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  fflush(stdout);
  fflush(stderr);
  int saved_out = dup(1), saved_err = dup(2);
  CHECK(saved_out >= 0 && saved_err >= 0);
  CHECK(dup2(fd, 1) == 1 && dup2(fd, 2) == 2);
  fn();
  fflush(stdout);
  fflush(stderr);
  CHECK(dup2(saved_out, 1) == 1 && dup2(saved_err, 2) == 2);
  close(saved_out);
  close(saved_err);
  long size = (long)lseek(fd, 0, SEEK_END);
  close(fd);
  unlink(path);
  return size;
}

static void dump(void) { GC_dump(); }

static void test_dump(void) {
  CHECK(GC_malloc(100) != NULL);
  CHECK_CMP(capture(dump), >, 0);
}

static void test_gcollect_and_unmap(void) {
  GC_word before = GC_get_gc_no();
  GC_gcollect_and_unmap();
  CHECK_CMP(GC_get_gc_no(), >, before);
  CHECK(GC_malloc(100) != NULL);
}

int main(void) {
  GC_INIT();
  run("GC_get_version, GC_is_init_called", test_version);
  run("GC_get_kind_and_size", test_kind_and_size);
  run("GC_malloc_many", test_malloc_many);
  run("GC_dump", test_dump);
  run("GC_gcollect_and_unmap", test_gcollect_and_unmap);
  return finish();
}
