// The heap as AddressSanitizer sees it (Go: the race detector's
// racemalloc/racefree, in spirit). In a sanitizer build (MALLOCGC_SANITIZE,
// which compiles every file with -fsanitize=address; the public headers
// see it as MALLOCGC_ASAN) memory the program does not own is poisoned, so
// that reading or writing it is an ASan report ("use-after-poison"):
//
//   - a small span is poisoned whole when mheap makes it; a slot is
//     unpoisoned when the inline fast path hands it out (next_free_fast,
//     the one place every small allocation passes);
//   - mgc::free poisons the slot before it becomes free (before its bit
//     can be seen by the thread that would reuse it);
//   - the sweep poisons every slot it reclaims;
//   - a tiny block (16 bytes holding several tiny objects) is poisoned
//     only once every object in it is free: the block is the unit the
//     allocator reuses, and objects inside share 8-byte shadow granules;
//   - a large object's pages are unpoisoned when it is made and poisoned
//     when they return to the page heap, by free or by the sweep; so are
//     a small span's pages when the span goes back.
// The collector's conservative reads (stacks, globals, objects) are made
// by functions compiled without instrumentation (mark.cpp's scan), and the
// allocator's own writes into free slots (clearing slots of kinds that
// promise cleared free objects) unpoison first.
//
// In other builds every call here is empty and compiles to nothing.
//
// Owns: nothing; the shadow memory is ASan's.
#pragma once

#include <cstddef>
#include <cstring>

#include "mallocgc/internal/cache_front.hpp"

#if MALLOCGC_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace mgc::internal {

inline void asan_poison(const void* p, std::size_t n) {
#if MALLOCGC_ASAN
  __asan_poison_memory_region(p, n);
#else
  (void)p;
  (void)n;
#endif
}

inline void asan_unpoison(const void* p, std::size_t n) {
#if MALLOCGC_ASAN
  __asan_unpoison_memory_region(p, n);
#else
  (void)p;
  (void)n;
#endif
}

// Whether the byte at p is poisoned (false outside sanitizer builds).
inline bool asan_poisoned(const void* p) {
#if MALLOCGC_ASAN
  return __asan_address_is_poisoned(p) != 0;
#else
  (void)p;
  return false;
#endif
}

// Zero n bytes at p, which may be poisoned (a free slot), and leave them
// poisoned.
inline void zero_free_memory(void* p, std::size_t n) {
  asan_unpoison(p, n);
  std::memset(p, 0, n);
  asan_poison(p, n);
}

}  // namespace mgc::internal
