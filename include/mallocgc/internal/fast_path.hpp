// The inline allocation fast path. Internal: included by mallocgc.hpp.
//
// Instruction budget: alloc_noscan(16) is at most 20 instructions from entry
// to return on the path that succeeds (tests/fast_path_asm checks it and
// prints the count): one TLS load, one load of the span class's 64-bit
// alloc cache, a test, count-trailing-zeros, clear-lowest-bit, one store
// back, the address arithmetic and the zeroing stores. Everything else
// (refill, first allocation of a thread, sizes above kMaxInlineZero, large
// objects, overflow) is behind one call to a noinline, cold slow path.
//
// The path that succeeds contains no lock, no atomic read-modify-write, no
// fence and no call: the cache is the calling thread's own and nothing else
// touches it while the thread may be in here (see cache_front.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "mallocgc/internal/cache_front.hpp"

#if MALLOCGC_ASAN
#include <sanitizer/asan_interface.h>
#endif
#if MALLOCGC_VALGRIND
#include <valgrind/memcheck.h>
#endif

namespace mgc {
class Type;
}

namespace mgc::internal {

struct TypeInfo;

// Slow paths. noinline and cold so that the fast path's code stays small
// and its registers free; they are exported from the library.
[[gnu::noinline, gnu::cold]] void* alloc_slow(std::size_t size, Kind kind);
[[gnu::noinline, gnu::cold]] void* alloc_tiny_slow(std::size_t size);
[[gnu::noinline, gnu::cold]] void* alloc_typed_slow(const TypeInfo* type);
void* alloc_aligned(std::size_t size, std::size_t align, Kind kind);

// Debug-malloc checks, called only when kDebugMalloc (Go: debugMalloc):
// enter marks the thread as inside the allocator and aborts with "malloc
// deadlock" if it already was (re-entry from a slow path or from a signal
// handler that interrupted an allocation), and checks the cache; exit
// checks the cache's state for the span class used and clears the mark.
// Slow paths are entered marked and clear the mark themselves.
[[gnu::noinline]] void debug_malloc_enter(CacheFront* c);
[[gnu::noinline]] void debug_malloc_exit(CacheFront* c, int span_class);

// Size to size class (0 for sizes above kMaxSmallSize). Constant-folds
// when size is a compile-time constant.
[[gnu::always_inline]] constexpr int size_to_class(std::size_t size) {
  if (size <= kSmallSizeMax - kSmallSizeDiv) return kSizeToClass8[(size + kSmallSizeDiv - 1) / kSmallSizeDiv];
  if (size <= kMaxSmallSize) return kSizeToClass128[(size - kSmallSizeMax + kLargeSizeDiv - 1) / kLargeSizeDiv];
  return 0;
}

// Zero a freshly taken object of n bytes: n is 8 or a multiple of 16 and
// at most kMaxInlineZero. The empty asm keeps the compiler from turning the
// loop back into a call to memset.
[[gnu::always_inline]] inline void zero_object(void* p, std::size_t n) {
  if (__builtin_constant_p(n) && n <= 64) {
    __builtin_memset(p, 0, n);
    return;
  }
  if (n == 8) {
    __builtin_memset(p, 0, 8);
    return;
  }
  char* q = static_cast<char*>(p);
  char* const end = q + n;
  do {
    __builtin_memset(q, 0, 16);
    q += 16;
    asm("" : "+r"(q));
  } while (q < end);
}

// Take one slot of span class spc from the calling thread's cache: false
// when the cache has none (the caller then goes slow). *slot is the slot's
// bit in the chunk, for side tables indexed like the chunk.
[[gnu::always_inline]] inline bool next_free_fast(CacheFront* c, int spc, std::size_t elem_size, void** p,
                                                  std::size_t* slot) {
  AllocSlot& s = c->alloc[spc];
  const std::uint64_t bits = s.alloc_cache;
  if (__builtin_expect(bits == 0, 0)) return false;
  const auto tz = static_cast<std::size_t>(__builtin_ctzll(bits));
  s.alloc_cache = bits & (bits - 1);
  *slot = tz;
  *p = reinterpret_cast<void*>(s.chunk_base + tz * elem_size);
#if MALLOCGC_ASAN
  // Free slots are poisoned (src/os/sanitizer.hpp); this one is the
  // program's now. Sanitizer builds only: the release fast path is as it
  // was, call-free.
  __asan_unpoison_memory_region(*p, elem_size);
#endif
#if MALLOCGC_VALGRIND
  // The valgrind build's: the slot is a malloc-like block for memcheck.
  VALGRIND_MALLOCLIKE_BLOCK(*p, elem_size, 0, 1);
#endif
  return true;
}

// Enter a slow path directly (sizes the fast path never takes): in
// debug-malloc builds the thread is marked as inside the allocator first,
// as the fast path would have done.
[[gnu::always_inline]] inline void debug_enter_slow() {
  if constexpr (kDebugMalloc) debug_malloc_enter(tls_cache);
}

// One object of 1..kMaxInlineZero bytes of kind (noscan, conservative, a
// root kind or a run-time one; constant-folded when kind is a constant).
[[gnu::always_inline]] inline void* small_alloc(std::size_t size, Kind kind) {
  const int cls = size_to_class(size);
  const int spc = span_class(cls, kind);
  const std::size_t elem = kClassToSize[cls];
  CacheFront* c = tls_cache;
  if constexpr (kDebugMalloc) debug_malloc_enter(c);
  void* p;
  std::size_t slot;
  if (!next_free_fast(c, spc, elem, &p, &slot)) return alloc_slow(size, kind);
  zero_object(p, elem);
  if constexpr (kDebugMalloc) debug_malloc_exit(c, spc);
  return p;
}

// Start a new tiny block holding the first object, of size bytes; nullptr
// when the cache has no free 16-byte block (the caller goes slow).
[[gnu::always_inline]] inline void* tiny_new_block(CacheFront* c, std::size_t size) {
  void* block;
  std::size_t slot;
  if (!next_free_fast(c, kTinySpanClass, kTinySize, &block, &slot)) return nullptr;
  zero_object(block, kTinySize);
  std::uint16_t* mask = static_cast<std::uint16_t*>(c->alloc[kTinySpanClass].aux) + slot;
  *mask = 1;
  c->tiny = reinterpret_cast<std::uintptr_t>(block);
  c->tiny_mask = mask;
  c->tiny_offset = size;
  c->tiny_allocs++;
  return block;
}

// Tiny allocator (Go: the tiny block in mallocgc): noscan objects under 16
// bytes share 16-byte blocks, each aligned by its size. The block's
// allocated-offset mask records where objects start, for free().
[[gnu::always_inline]] inline void* tiny_alloc(std::size_t size) {
  CacheFront* c = tls_cache;
  if constexpr (kDebugMalloc) debug_malloc_enter(c);
  std::uintptr_t off = c->tiny_offset;
  if ((size & 7) == 0) {
    off = (off + 7) & ~std::uintptr_t{7};
  } else if ((size & 3) == 0) {
    off = (off + 3) & ~std::uintptr_t{3};
  } else if ((size & 1) == 0) {
    off = (off + 1) & ~std::uintptr_t{1};
  }
  void* p;
  if (off + size <= kTinySize) {
#if defined(__SANITIZE_THREAD__)
    // Another thread's free reads the mask (an atomic load, src/runtime/
    // free.cpp); written the same way here so that ThreadSanitizer sees
    // no race. Elsewhere the plain store is the same instruction.
    __atomic_store_n(c->tiny_mask, static_cast<std::uint16_t>(*c->tiny_mask | (1u << off)), __ATOMIC_RELAXED);
#else
    *c->tiny_mask = static_cast<std::uint16_t>(*c->tiny_mask | (1u << off));
#endif
    c->tiny_offset = off + size;
    c->tiny_allocs++;
    p = reinterpret_cast<void*>(c->tiny + off);
  } else {
    p = tiny_new_block(c, size);
    if (__builtin_expect(p == nullptr, 0)) return alloc_tiny_slow(size);
  }
  if constexpr (kDebugMalloc) debug_malloc_exit(c, kTinySpanClass);
  return p;
}

// Allocate size bytes of a kind known at run time that is neither typed
// nor tiny (noscan objects take no tiny block here).
[[gnu::always_inline]] inline void* alloc_of_kind(std::size_t size, Kind kind) {
  if (size > kMaxInlineZero) {
    debug_enter_slow();
    return alloc_slow(size, kind);
  }
  return small_alloc(size == 0 ? 1 : size, kind);
}

// Allocate size bytes of kind K (not typed): the tiny allocator for noscan
// objects under 16 bytes, the inline fast path up to kMaxInlineZero, the
// slow path above. Size 0 allocates 1 byte.
template <Kind K>
[[gnu::always_inline]] inline void* alloc_kind(std::size_t size) {
  static_assert(K != Kind::kTyped && K != Kind::kTiny);
  if constexpr (K == Kind::kNoscan) {
    if (size < kTinySize) return tiny_alloc(size == 0 ? 1 : size);
  }
  return alloc_of_kind(size, K);
}

[[gnu::always_inline]] inline void* typed_alloc(const TypeInfo* info, int spc, std::size_t elem) {
  CacheFront* c = tls_cache;
  if constexpr (kDebugMalloc) debug_malloc_enter(c);
  void* p;
  std::size_t slot;
  if (!next_free_fast(c, spc, elem, &p, &slot)) return alloc_typed_slow(info);
  // Record the object's pointer bits: its type, whose layout is immortal.
  static_cast<const TypeInfo**>(c->alloc[spc].aux)[slot] = info;
  zero_object(p, elem);
  if constexpr (kDebugMalloc) debug_malloc_exit(c, spc);
  return p;
}

}  // namespace mgc::internal
