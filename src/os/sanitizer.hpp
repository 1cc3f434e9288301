// The heap as AddressSanitizer and valgrind's memcheck see it (Go: the race
// detector's racemalloc/racefree, in spirit). In a sanitizer build
// (MALLOCGC_SANITIZE compiles every file with -fsanitize=address; the
// headers see it as MALLOCGC_ASAN) memory the program does not own is
// poisoned, so that reading or writing it is an ASan report
// ("use-after-poison"). In a valgrind build (MALLOCGC_VALGRIND) the same
// points are memcheck client requests: a handed-out object is a
// malloc-like block, a freed or reclaimed one a free-like block ("Invalid
// read ... inside a block of size N free'd"), pages no object holds are
// no-access.
//
//   - a small span is poisoned (no-access) whole when mheap makes it; a
//     slot is unpoisoned (a malloc-like block) when the inline fast path
//     hands it out (next_free_fast, which every small allocation passes);
//   - mgc::free poisons the slot before it becomes free (before its bit
//     can be seen by the thread that would reuse it);
//   - the sweep poisons every slot it reclaims;
//   - a tiny block (16 bytes holding several tiny objects) is one block:
//     poisoned only once every object in it is free, since the block is
//     the unit the allocator reuses (and objects inside share 8-byte
//     shadow granules);
//   - a large object's pages are unpoisoned when it is made and poisoned
//     when they return to the page heap, by free or by the sweep; so are
//     a small span's pages when the span goes back.
// The collector's conservative reads (stacks, globals, objects, slots a
// cache reserved but has not handed out) are made by functions compiled
// without ASan's instrumentation (mark.cpp's scan) and, under valgrind,
// with the marking threads' error reporting off (collector_reads_begin);
// the allocator's own writes into free slots (clearing the slots of kinds
// that promise cleared free objects) go through zero_free_memory.
//
// In other builds every call here is empty and compiles to nothing.
//
// Owns: nothing; the shadow memory is the tools'.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mallocgc/internal/cache_front.hpp"

#if MALLOCGC_ASAN
#include <sanitizer/asan_interface.h>
#endif
#if MALLOCGC_VALGRIND
#include <valgrind/memcheck.h>
#endif

namespace mgc::internal {

// A handed-out object of n bytes at p is free now (mgc::free, the sweep, a
// tiny block whose objects are all freed, a large object's span).
inline void object_freed(const void* p, std::size_t n) {
#if MALLOCGC_ASAN
  __asan_poison_memory_region(p, n);
#endif
#if MALLOCGC_VALGRIND
  VALGRIND_FREELIKE_BLOCK(p, 0);
#endif
  (void)p;
  (void)n;
}

// n bytes at p hold no object of the program (a new small span, the pages
// of a small span given back).
inline void no_objects(const void* p, std::size_t n) {
#if MALLOCGC_ASAN
  __asan_poison_memory_region(p, n);
#endif
#if MALLOCGC_VALGRIND
  VALGRIND_MAKE_MEM_NOACCESS(p, n);
#endif
  (void)p;
  (void)n;
}

// An object of n bytes at p is the program's now: what next_free_fast
// does for a slot it hands out (also for code that hands slots out by
// hand: the allocator's own tests).
inline void object_handed_out(const void* p, std::size_t n) {
#if MALLOCGC_ASAN
  __asan_unpoison_memory_region(p, n);
#endif
#if MALLOCGC_VALGRIND
  VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, 1);
#endif
  (void)p;
  (void)n;
}

// A slot that a thread left behind by fork had reserved in its cache and
// perhaps not handed out (reclaim_caches_after_fork): it counts as
// allocated until a cycle of the child reclaims it, and the sweep then
// frees it, which memcheck accepts only for a block it saw allocated
// ("Invalid free()" otherwise). ASan needs nothing: the sweep's poisoning
// of a poisoned slot is no report.
inline void orphaned_slot(const void* p, std::size_t n) {
#if MALLOCGC_VALGRIND
  VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, 1);
#endif
  (void)p;
  (void)n;
}

// A large object of n bytes (whole pages) at p is the program's now; its
// memory is zero or about to be zeroed.
inline void large_allocated(const void* p, std::size_t n) { object_handed_out(p, n); }

// n bytes at p may be written by whoever holds them, though no object is
// there (tests that write a span's pages by hand).
inline void bytes_writable(const void* p, std::size_t n) {
#if MALLOCGC_ASAN
  __asan_unpoison_memory_region(p, n);
#endif
#if MALLOCGC_VALGRIND
  VALGRIND_MAKE_MEM_UNDEFINED(p, n);
#endif
  (void)p;
  (void)n;
}

// Whether the byte at p is poisoned: a free slot, or one a cache reserved
// and has not handed out. Always false outside ASan builds.
inline bool poisoned(const void* p) {
#if MALLOCGC_ASAN
  return __asan_address_is_poisoned(p) != 0;
#else
  (void)p;
  return false;
#endif
}

// Zero n bytes at p, which may be free (poisoned), and leave them free.
inline void zero_free_memory(void* p, std::size_t n) {
#if MALLOCGC_ASAN
  __asan_unpoison_memory_region(p, n);
#endif
#if MALLOCGC_VALGRIND
  VALGRIND_MAKE_MEM_UNDEFINED(p, n);
#endif
  std::memset(p, 0, n);
  no_objects(p, n);
}

// Around the calling thread's marking (world stopped): its conservative
// reads of stacks below their pointers, of free slots and of words never
// written are not the program's errors. Under valgrind, memcheck's error
// reporting is off for this thread in between; elsewhere nothing.
// A word the collector read conservatively, made defined for memcheck
// (valgrind builds): a stack slot or free slot may hold uninitialised bits,
// and a mark bit computed from them would carry the undefinedness into the
// sweep, which then branches on it ("Conditional jump ... depends on
// uninitialised value(s)" in sweep_small_span, created by a stack
// allocation). Only the copy is made defined, never the memory read.
inline std::uintptr_t collector_defined_word(std::uintptr_t v) {
#if MALLOCGC_VALGRIND
  VALGRIND_MAKE_MEM_DEFINED(&v, sizeof v);
#endif
  return v;
}

inline void collector_reads_begin() {
#if MALLOCGC_VALGRIND
  VALGRIND_DISABLE_ERROR_REPORTING;
#endif
}
inline void collector_reads_end() {
#if MALLOCGC_VALGRIND
  VALGRIND_ENABLE_ERROR_REPORTING;
#endif
}

}  // namespace mgc::internal
