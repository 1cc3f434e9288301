// The part of a thread's allocation cache (MCache) that the inline fast path
// reads and writes. Internal: embedders must not rely on anything here; it
// is in include/ only because the fast path must be inline in user code.
//
// Ownership: a CacheFront is read and written by its owner thread only.
// Nothing else (no other thread, no collector, no signal handler other than
// the owner's own, which never allocates) touches it while the owner may be
// inside the fast path. That is what makes the fast path atomic with respect
// to everything else without a lock, an atomic read-modify-write or a fence
// (Go: "runtime: don't acquirem on malloc fast path").
#pragma once

#include <cstddef>
#include <cstdint>

#include "mallocgc/internal/size_classes.hpp"

#ifndef MALLOCGC_DEBUG_MALLOC
#define MALLOCGC_DEBUG_MALLOC 0
#endif

// MALLOCGC_ASAN: this translation unit is built with AddressSanitizer
// (MALLOCGC_SANITIZE builds everything so, GCC says __SANITIZE_ADDRESS__,
// clang __has_feature). The heap then keeps free memory poisoned and the
// fast path unpoisons what it hands out (src/os/sanitizer.hpp); in other
// builds the fast path is untouched.
#ifndef MALLOCGC_ASAN
#if defined(__SANITIZE_ADDRESS__)
#define MALLOCGC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MALLOCGC_ASAN 1
#endif
#endif
#endif
#ifndef MALLOCGC_ASAN
#define MALLOCGC_ASAN 0
#endif

// MALLOCGC_VALGRIND (the CMake option, a public definition: the library
// and the users of its headers must agree): the heap tells memcheck which
// blocks are allocated and which freed (src/os/sanitizer.hpp); the fast
// path registers each object it hands out, with an inline client request
// (a few instructions, no call) that does nothing outside valgrind.
#ifndef MALLOCGC_VALGRIND
#define MALLOCGC_VALGRIND 0
#endif

namespace mgc::internal {

// Set by the MALLOCGC_DEBUG_MALLOC CMake option (Go: debugMalloc). The
// library and every user of the inline fast path must agree on it, which
// the CMake package guarantees by making the definition PUBLIC.
inline constexpr bool kDebugMalloc = MALLOCGC_DEBUG_MALLOC != 0;

// Object kinds. A span class is (size class, kind), so a span holds objects
// of one kind only. kTiny spans hold the 16-byte blocks of the tiny
// allocator (noscan objects under 16 bytes packed together); they are a
// separate kind so that free() knows a pointer may be one of several
// objects sharing a block. The two uncollectable kinds (Boehm's
// GC_malloc_uncollectable and GC_malloc_atomic_uncollectable) are never
// reclaimed by the collector, only by free(): every allocated object of
// theirs is a root, scanned conservatively or not at all. Kinds from
// kFirstCustom on are defined at run time (Boehm's GC_new_kind) and are
// scanned as their kind record says.
enum class Kind : std::uint8_t {
  kNoscan = 0,
  kConservative = 1,
  kTyped = 2,
  kTiny = 3,
  kUncollectable = 4,
  kAtomicUncollectable = 5,
  kFirstCustom = 6,
};
// A power of two, so that span_class() and its inverse are shifts.
inline constexpr int kNumKinds = 16;
inline constexpr int kNumSpanClasses = kNumSizeClasses * kNumKinds;

constexpr int span_class(int size_class, Kind kind) { return size_class * kNumKinds + static_cast<int>(kind); }

// The tiny allocator's block size, and the size class it takes blocks from.
inline constexpr std::size_t kTinySize = 16;
inline constexpr int kTinySizeClass = 2;
static_assert(kClassToSize[kTinySizeClass] == kTinySize);
inline constexpr int kTinySpanClass = span_class(kTinySizeClass, Kind::kTiny);

// Objects up to this size are zeroed inline by the fast path (at most 16
// 16-byte stores); larger ones go through alloc_slow, which skips zeroing
// for never-used memory and calls memset otherwise. The bound is a choice
// of code size, not yet a measurement: a constant-size allocation inlines
// its stores, a variable-size one a loop.
inline constexpr std::size_t kMaxInlineZero = 256;

// The fast path's view of the span a thread caches for one span class:
// up to 64 consecutive slots ("a chunk") of that span, as a bitmap.
struct AllocSlot {
  // Bit i set: slot chunk_first + i is free and reserved for this cache.
  // 0 means "go to the slow path" (empty, or no span cached yet).
  std::uint64_t alloc_cache;
  // Address of slot chunk_first (the slot of bit 0).
  std::uintptr_t chunk_base;
  // Per-slot side table for the chunk's bit 0, by kind: typed spans, the
  // type record array (const TypeInfo*[64]); tiny spans, the blocks'
  // allocated-offset masks (std::uint16_t[64]); others, unused.
  void* aux;
  // Which 64-slot word of the span's alloc_bits the chunk is (slow paths
  // and free() only; beside alloc_cache so free() reads one cache line).
  std::uintptr_t chunk_word;
};
static_assert(sizeof(AllocSlot) == 32);

struct CacheFront {
  // Tiny allocator: current block, bytes of it handed out (kTinySize when
  // there is no block, so the next tiny allocation takes a new one), and
  // the block's allocated-offset mask (bit k: an object starts at byte k),
  // which free() uses to validate and reclaim tiny objects.
  std::uintptr_t tiny;
  std::uintptr_t tiny_offset;
  std::uint16_t* tiny_mask;
  // Tiny objects handed out by this cache, ever (owner-written counter;
  // the slow path folds it into the published statistics).
  std::uint64_t tiny_allocs;
  AllocSlot alloc[kNumSpanClasses];
};

// The calling thread's cache. Initial-exec TLS: one %fs-relative load, no
// call to __tls_get_addr. Before a thread's first allocation it points at a
// shared, all-empty CacheFront whose every alloc_cache is 0, so the fast
// path needs no null check: the empty cache simply sends it to the slow
// path, which creates the thread's own.
extern __thread CacheFront* tls_cache __attribute__((tls_model("initial-exec")));

}  // namespace mgc::internal
