/* Shared by the tests/compat/ programs (*_test.c): C programs that state Boehm GC 8.2's
 * semantics through its own headers (/usr/include/gc), run against the
 * system's libgc.so.1 (MGC_BOEHM_REFERENCE=1) and against ours.
 *
 * How a test stays reliable although the collector scans stacks and
 * registers conservatively (as in tests/capi/capi_gc_test.c):
 *   - raw heap pointers live only in noinline helpers and in the root a
 *     check is about; everything else keeps them hidden (XOR with MASK,
 *     whose bit 63 makes the result never an address);
 *   - before a collection whose outcome is checked, scrub() clears the
 *     stack below the caller and the scratch registers, so nothing a helper
 *     left behind still points at a test object;
 *   - outcomes are proven by finalizers, disappearing links (watch_t) or
 *     statistics, never by sleeping;
 *   - "kept" is checked strictly (a conservative collector never frees what
 *     is reachable); "reclaimed" is checked on a batch of objects of which
 *     nearly all must go (mostly_reclaimed), since one stale word somewhere
 *     the collector scans (a callee-saved register of a caller, the
 *     collector's own frames) may legitimately keep one of them.
 *
 * A test program prints "ok <name>" per test and "N passed, 0 failed" at
 * the end; a failed check prints what failed and aborts. With
 * MGC_COMPAT_VERBOSE set, every "reclaimed" check prints how many of its
 * batch survived; with MGC_COMPAT_ONLY set, only the tests whose name
 * contains it run. Exit code 77
 * (skip()) means the test does not apply. Each test runs under an alarm:
 * a hang (a thread the collector waits for forever) fails instead of
 * blocking ctest until its timeout. */
#ifndef MGC_COMPAT_TEST_H
#define MGC_COMPAT_TEST_H

#include <gc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
/* Helpers defined here that a given program may not use. */
#define COMPAT_HELPER static __attribute__((unused))

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      fflush(stderr);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* CHECK_CMP(a, op, b): as CHECK(a op b) for integers, printing both values. */
#define CHECK_CMP(a, op, b)                                                                                           \
  do {                                                                                                                \
    intmax_t check_a_ = (intmax_t)(a), check_b_ = (intmax_t)(b);                                                      \
    if (!(check_a_ op check_b_)) {                                                                                    \
      fprintf(stderr, "%s:%d: check failed: %s %s %s (%jd %s %jd)\n", __FILE__, __LINE__, #a, #op, #b, check_a_, #op, \
              check_b_);                                                                                              \
      fflush(stderr);                                                                                                 \
      abort();                                                                                                        \
    }                                                                                                                 \
  } while (0)

/* --- running tests ---------------------------------------------------------- */

#define TEST_TIMEOUT_SECONDS 120

static int g_compat_passed;

/* With MGC_COMPAT_ONLY set, only the tests whose name contains its value
 * run (to look past a failing one); the others are left out silently. */
COMPAT_HELPER void run(const char* name, void (*test)(void)) {
  const char* only = getenv("MGC_COMPAT_ONLY");
  if (only != NULL && strstr(name, only) == NULL) return;
  alarm(TEST_TIMEOUT_SECONDS);
  test();
  alarm(0);
  printf("ok %s\n", name);
  fflush(stdout);
  g_compat_passed++;
}

COMPAT_HELPER int finish(void) {
  printf("%d passed, 0 failed\n", g_compat_passed);
  fflush(stdout);
  return 0;
}

COMPAT_HELPER void skip(const char* why) {
  printf("skipped: %s\n", why);
  fflush(stdout);
  exit(77);
}

/* --- hiding pointers, scrubbing ------------------------------------------- */

#define MASK ((uintptr_t)0xA5C396F00F693C5Aull) /* bit 63 set: never an address */

COMPAT_HELPER uintptr_t hide(const void* p) { return (uintptr_t)p ^ MASK; }
COMPAT_HELPER void* reveal(uintptr_t h) { return (void*)(h ^ MASK); }

/* Not instrumented by AddressSanitizer, whose redzones around buf would
 * keep whatever stale addresses they held. */
COMPAT_HELPER NOINLINE __attribute__((no_sanitize("address"))) void scrub(void) {
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

/* A full collection whose outcome the caller checks. */
COMPAT_HELPER NOINLINE void collect(void) {
  scrub();
  GC_gcollect();
}

/* --- watching objects through disappearing links ------------------------------ */

/* A watch is a disappearing link to an object, holding the object's hidden
 * address: the collector clears it (to NULL) when the object becomes
 * unreachable, and its value never keeps the object. A short watch
 * (GC_general_register_disappearing_link) clears as soon as the object is
 * unreachable from the roots, even if a finalizer then keeps it for one
 * more cycle; a long one (GC_register_long_link) only when the object is
 * gone for good. A watch lives in static or stack memory, never in the
 * collected heap. */
typedef struct {
  void* link;
  int is_long;
} watch_t;

COMPAT_HELPER void watch(watch_t* w, const void* obj) {
  w->link = (void*)hide(obj);
  w->is_long = 0;
  CHECK(GC_general_register_disappearing_link(&w->link, obj) == GC_SUCCESS);
}

COMPAT_HELPER void watch_long(watch_t* w, const void* obj) {
  w->link = (void*)hide(obj);
  w->is_long = 1;
  CHECK(GC_register_long_link(&w->link, obj) == GC_SUCCESS);
}

COMPAT_HELPER int alive(const watch_t* w) { return *(void* const volatile*)&w->link != NULL; }

/* The watched object; only for noinline helpers, and only while alive. */
COMPAT_HELPER void* watched(const watch_t* w) { return reveal((uintptr_t) * (void* const volatile*)&w->link); }

COMPAT_HELPER void unwatch(watch_t* w) {
  if (alive(w))
    CHECK((w->is_long ? GC_unregister_long_link(&w->link) : GC_unregister_disappearing_link(&w->link)) == 1);
  w->link = NULL;
}

COMPAT_HELPER int count_alive(const watch_t* ws, int n) {
  int count = 0;
  for (int i = 0; i < n; i++) count += alive(&ws[i]);
  return count;
}

COMPAT_HELPER void unwatch_all(watch_t* ws, int n) {
  for (int i = 0; i < n; i++) unwatch(&ws[i]);
}

/* Nearly all of a batch that became unreachable is gone: at most one in
 * eight survives (see the top of this file). */
#define CHECK_MOSTLY_RECLAIMED(ws, n)                                                                             \
  do {                                                                                                            \
    int alive_ = count_alive((ws), (n));                                                                          \
    if (getenv("MGC_COMPAT_VERBOSE")) fprintf(stderr, "%s:%d: %d/%d alive\n", __FILE__, __LINE__, alive_, (n));   \
    if (alive_ * 8 > (n)) {                                                                                       \
      fprintf(stderr, "%s:%d: check failed: %d of %d unreachable objects survived\n", __FILE__, __LINE__, alive_, \
              (n));                                                                                               \
      fflush(stderr);                                                                                             \
      abort();                                                                                                    \
    }                                                                                                             \
  } while (0)

#define CHECK_ALL_ALIVE(ws, n) CHECK_CMP(count_alive((ws), (n)), ==, (n))

/* Fills and checks object contents, so that "kept" also means "intact". */
COMPAT_HELPER void fill(void* p, size_t size, unsigned seed) {
  unsigned char* b = p;
  for (size_t i = 0; i < size; i++) b[i] = (unsigned char)(seed + i * 7u);
}

COMPAT_HELPER int filled(const void* p, size_t size, unsigned seed) {
  const unsigned char* b = p;
  for (size_t i = 0; i < size; i++)
    if (b[i] != (unsigned char)(seed + i * 7u)) return 0;
  return 1;
}

COMPAT_HELPER int all_zero(const void* p, size_t size) {
  const unsigned char* b = p;
  for (size_t i = 0; i < size; i++)
    if (b[i] != 0) return 0;
  return 1;
}

/* A warning procedure that counts and stays quiet, for tests that provoke
 * Boehm's warnings (out of memory, finalization cycles). */
static volatile int g_compat_warnings;

COMPAT_HELPER void GC_CALLBACK count_warning(char* msg, GC_word arg) {
  (void)msg;
  (void)arg;
  g_compat_warnings++;
}

#endif /* MGC_COMPAT_TEST_H */
