/* Statistics: GC_get_heap_size, GC_get_free_bytes, GC_get_unmapped_bytes,
 * GC_get_total_bytes (grows with allocation, never shrinks),
 * GC_get_bytes_since_gc (grows, resets at a collection),
 * GC_get_expl_freed_bytes_since_gc (GC_free), GC_get_non_gc_bytes
 * and its setter, GC_get_obtained_from_os_bytes,
 * GC_get_memory_use, GC_get_heap_usage_safe, and GC_get_prof_stats
 * (the same numbers, and the size protocol for older and newer callers). */
#include <stddef.h>
#include <string.h>

#include "compat_test.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* What the collector counts between two reads without allocating: its own
 * per-thread caches may be counted when taken, not when used. */
#define SLACK (64 * KiB)

void* volatile stats_live[64];

static NOINLINE void allocate(size_t object_size, size_t bytes) {
  for (size_t done = 0; done < bytes; done += object_size) {
    char* p = GC_malloc(object_size);
    CHECK(p != NULL);
    p[0] = 1;
  }
}

static void test_heap_and_free(void) {
  size_t heap = GC_get_heap_size();
  CHECK_CMP(heap, >, 0);
  CHECK_CMP(GC_get_free_bytes(), <=, heap);
  CHECK_CMP(GC_get_obtained_from_os_bytes(), >=, heap);
  (void)GC_get_unmapped_bytes();

  /* A heap holding live data is at least that big. */
  for (int i = 0; i < 64; i++) stats_live[i] = GC_malloc(64 * KiB);
  GC_gcollect();
  CHECK_CMP(GC_get_heap_size(), >=, 64 * 64 * KiB);
  /* Only a lower bound: Boehm 8.2.2 reports eight times the bytes in use
   * (misc.c, block_add_size: WORDS_TO_BYTES of hb_sz, already in bytes),
   * more than the heap size. */
  CHECK_CMP(GC_get_memory_use(), >=, 64 * 64 * KiB);
  for (int i = 0; i < 64; i++) stats_live[i] = NULL;
}

static void test_total_bytes(void) {
  size_t before = GC_get_total_bytes();
  allocate(64 * KiB, 4 * MiB); /* large objects, counted one by one */
  size_t after_large = GC_get_total_bytes();
  CHECK_CMP(after_large, >=, before + 4 * MiB);
  allocate(100, 4 * MiB); /* small ones */
  size_t after_small = GC_get_total_bytes();
  CHECK_CMP(after_small, >=, after_large + 4 * MiB - SLACK);
  GC_gcollect();
  CHECK_CMP(GC_get_total_bytes(), >=, after_small); /* never decreases */
}

static void test_bytes_since_gc(void) {
  GC_gcollect();
  CHECK_CMP(GC_get_bytes_since_gc(), <, SLACK);
  allocate(64 * KiB, 2 * MiB);
  CHECK_CMP(GC_get_bytes_since_gc(), >=, 2 * MiB);
  GC_gcollect();
  CHECK_CMP(GC_get_bytes_since_gc(), <, SLACK); /* reset */
}

static NOINLINE void allocate_and_free(size_t size) {
  void* p = GC_malloc(size);
  CHECK(p != NULL);
  GC_free(p);
}

static void test_expl_freed_bytes(void) {
  GC_gcollect();
  size_t before = GC_get_expl_freed_bytes_since_gc();
  allocate_and_free(100 * KiB);
  CHECK_CMP(GC_get_expl_freed_bytes_since_gc(), >=, before + 100 * KiB);
  GC_gcollect();
  CHECK_CMP(GC_get_expl_freed_bytes_since_gc(), <, 100 * KiB); /* since the last collection */
}

/* gc.h says GC_malloc_uncollectable and GC_free keep GC_non_gc_bytes up to
 * date. Boehm 8.2.2 adds only for small objects taken from a non-empty
 * free list (malloc.c, GC_generic_malloc_uncollectable) but subtracts in
 * every GC_free: after GC_free of a 10000-byte uncollectable object the
 * count wraps to 2^64 - 10016. So only the setter and getter are stated. */
static void test_non_gc_bytes(void) {
  GC_word old = GC_get_non_gc_bytes();
  GC_set_non_gc_bytes(12345);
  CHECK_CMP(GC_get_non_gc_bytes(), ==, 12345);
  GC_set_non_gc_bytes(old);
  CHECK_CMP(GC_get_non_gc_bytes(), ==, old);
}

static void test_heap_usage_safe(void) {
  GC_word heap, free_bytes, unmapped, since, total;
  GC_gcollect();
  GC_get_heap_usage_safe(&heap, &free_bytes, &unmapped, &since, &total);
  /* No allocation in between: the same as the unsynchronized getters. */
  CHECK_CMP(heap, ==, GC_get_heap_size());
  CHECK_CMP(free_bytes, ==, GC_get_free_bytes());
  CHECK_CMP(unmapped, ==, GC_get_unmapped_bytes());
  CHECK_CMP(since, ==, GC_get_bytes_since_gc());
  CHECK_CMP(total, ==, GC_get_total_bytes());
  GC_get_heap_usage_safe(NULL, NULL, NULL, NULL, NULL); /* any may be NULL */
  GC_get_heap_usage_safe(&heap, NULL, NULL, NULL, NULL);
  CHECK_CMP(heap, ==, GC_get_heap_size());
}

static void check_prof_stats(const struct GC_prof_stats_s* s) {
  CHECK_CMP(s->gc_no, ==, GC_get_gc_no());
  CHECK_CMP(s->heapsize_full, ==, GC_get_heap_size() + GC_get_unmapped_bytes());
  CHECK_CMP(s->free_bytes_full, ==, GC_get_free_bytes() + GC_get_unmapped_bytes());
  CHECK_CMP(s->unmapped_bytes, ==, GC_get_unmapped_bytes());
  CHECK_CMP(s->bytes_allocd_since_gc, ==, GC_get_bytes_since_gc());
  CHECK_CMP(s->allocd_bytes_before_gc, ==, GC_get_total_bytes() - GC_get_bytes_since_gc());
  CHECK_CMP(s->non_gc_bytes, ==, GC_get_non_gc_bytes());
  CHECK_CMP(s->expl_freed_bytes_since_gc, ==, GC_get_expl_freed_bytes_since_gc());
  CHECK_CMP(s->obtained_from_os_bytes, ==, GC_get_obtained_from_os_bytes());
}

static void* GC_CALLBACK prof_stats_locked(void* data) {
  return (void*)GC_get_prof_stats_unsafe(data, sizeof(struct GC_prof_stats_s));
}

static void test_prof_stats(void) {
  struct GC_prof_stats_s s;
  allocate(100, 100 * KiB);
  memset(&s, 0xAA, sizeof s);
  CHECK_CMP(GC_get_prof_stats(&s, sizeof s), ==, sizeof s);
  check_prof_stats(&s);

  memset(&s, 0xAA, sizeof s);
  CHECK_CMP((size_t)GC_call_with_alloc_lock(prof_stats_locked, &s), ==, sizeof s);
  check_prof_stats(&s);

  /* An older caller's smaller structure: only its part is written. */
  size_t old_size = offsetof(struct GC_prof_stats_s, markers_m1);
  memset(&s, 0xAA, sizeof s);
  CHECK_CMP(GC_get_prof_stats(&s, old_size), ==, old_size);
  CHECK_CMP(s.gc_no, ==, GC_get_gc_no());
  const unsigned char* tail = (const unsigned char*)&s + old_size;
  for (size_t i = 0; i < sizeof s - old_size; i++) CHECK(tail[i] == 0xAA);

  /* A newer caller's larger one: the unknown fields are set to -1. */
  union {
    struct GC_prof_stats_s s;
    unsigned char bytes[sizeof(struct GC_prof_stats_s) + 4 * sizeof(GC_word)];
  } big;
  memset(&big, 0, sizeof big);
  CHECK_CMP(GC_get_prof_stats(&big.s, sizeof big), ==, sizeof(struct GC_prof_stats_s));
  CHECK_CMP(big.s.gc_no, ==, GC_get_gc_no());
  for (size_t i = sizeof(struct GC_prof_stats_s); i < sizeof big; i++) CHECK(big.bytes[i] == 0xFF);
}

/* 32 MiB of large objects, rooted in unmap_live until dropped. */
void* volatile unmap_live[128];

static NOINLINE void fill_unmap_live(void) {
  for (int i = 0; i < 128; i++) {
    char* p = GC_malloc_atomic(256 * KiB);
    CHECK(p != NULL);
    memset(p, 1, 256 * KiB);
    unmap_live[i] = p;
  }
}

/* GC_gcollect_and_unmap returns the free pages to the OS: they leave the
 * heap size and show as unmapped; GC_set_force_unmap_on_gcollect makes
 * GC_gcollect do the same. How much is returned is ours to say (Boehm
 * 8.2.2 unmaps a few MiB of the 32 here): the amounts are checked in our
 * build only. */
static void test_unmap(void) {
  CHECK_CMP(GC_get_force_unmap_on_gcollect(), ==, 0);
  fill_unmap_live();
  GC_gcollect_and_unmap();
  const size_t heap_full = GC_get_heap_size(), unmapped_full = GC_get_unmapped_bytes();
  CHECK_CMP(heap_full, >=, 32 * MiB);
  for (int i = 0; i < 128; i++) unmap_live[i] = NULL;
  GC_gcollect_and_unmap();
  CHECK_CMP(GC_get_unmapped_bytes(), >=, unmapped_full);
#ifndef MGC_BOEHM_REFERENCE
  CHECK_CMP(GC_get_unmapped_bytes(), >=, unmapped_full + 24 * MiB);
  CHECK_CMP(GC_get_heap_size() + 24 * MiB, <=, heap_full);
  CHECK_CMP(GC_get_obtained_from_os_bytes(), >=, GC_get_heap_size() + GC_get_unmapped_bytes());
#endif
  test_prof_stats();

  /* Reused: the heap grows back. */
  fill_unmap_live();
  CHECK_CMP(GC_get_heap_size(), >=, 32 * MiB);
  for (int i = 0; i < 128; i++) unmap_live[i] = NULL;
  const size_t unmapped_before = GC_get_unmapped_bytes();
  GC_set_force_unmap_on_gcollect(1);
  CHECK_CMP(GC_get_force_unmap_on_gcollect(), ==, 1);
  GC_gcollect();
#ifndef MGC_BOEHM_REFERENCE
  CHECK_CMP(GC_get_unmapped_bytes(), >=, unmapped_before + 24 * MiB);
#else
  (void)unmapped_before;
#endif
  GC_set_force_unmap_on_gcollect(0);
}

int main(void) {
  GC_INIT();
  run("heap size, free bytes", test_heap_and_free);
  run("GC_get_total_bytes", test_total_bytes);
  run("GC_get_bytes_since_gc", test_bytes_since_gc);
  run("GC_get_expl_freed_bytes_since_gc", test_expl_freed_bytes);
  run("GC_get_non_gc_bytes", test_non_gc_bytes);
  run("GC_get_heap_usage_safe", test_heap_usage_safe);
  run("GC_get_prof_stats", test_prof_stats);
  run("GC_gcollect_and_unmap, GC_get_unmapped_bytes", test_unmap);
  return finish();
}
