// MSpan: a run of pages, either cut into equal slots of one span class or
// holding one large object (Go: mspan in mheap.go).
//
// Slot state lives out of band, in bitmaps beside the span record:
//   alloc_bits    bit set: the slot is allocated, or reserved by the cache
//                 that owns the span (it sits in that cache's alloc_cache).
//   pending_free  bit set: free() released the slot (or, in a tiny span,
//                 asks for the block to be examined) and the span's owner,
//                 or its central list, has not merged it into alloc_bits.
//   gc_bits       bit set: the collector's last mark reached the slot (a
//                 tiny span: the 16-byte block). Sweeping makes them the
//                 new alloc_bits and clears them (Go: gcmarkBits).
// A slot is free exactly when its alloc_bits bit is clear.
//
// Sweep generations (Go: mspan.sweepgen against mheap.sweepgen, which the
// collector advances by 2 at the end of every mark): sweep_gen == the
// global generation means swept since the last mark; anything else means
// gc_bits hold the last mark's result and the span waits for a sweep.
//
// Who may write what:
//   - base, npages, elem_size, nelems, div_magic, span_class, kind, the
//     side tables: set by mheap when the span is made (heap lock), then
//     read-only until the span is freed.
//   - alloc_bits, alloc_count, need_zero, chunk scanning: the owner, which
//     is the MCache that caches the span, or its MCentral's lock holder
//     when owner == nullptr. alloc_bits are atomics only because free()
//     reads them from any thread to validate a pointer; the owner writes
//     them with plain (relaxed) loads and stores, never read-modify-writes.
//   - pending_free, pending: any thread, with atomic read-modify-writes.
//   - gc_bits: the mark workers (atomic OR) while the world is stopped; the
//     sweeper, which is whoever may write alloc_bits.
//   - sweep_gen: the sweeper, with the same exclusivity as alloc_bits.
//   - specials: the specials lock holder (gc/specials), or the profile
//     lock holder (prof/sample), with atomic read-modify-writes.
//   - tiny->alloc_mask, tiny->local_freed: the owner only.
//     tiny->remote_freed: any thread, atomically.
//   - next, prev, list: the lock of the list the span is on.
// Owns: nothing beyond its own record and side tables. Never takes a lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "mallocgc/internal/cache_front.hpp"

namespace mgc::internal {

struct TypeInfo;
struct MCache;

// Bits set in x. The library is built for baseline x86-64, which has no
// popcnt instruction: std::popcount becomes a call into libgcc (it was 15%
// of a two-thread allocation benchmark, from the sweep). This is the
// branch-free bit-parallel count, a dozen instructions inline.
constexpr unsigned popcount64(std::uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
  return static_cast<unsigned>((x * 0x0101010101010101ull) >> 56);
}

inline constexpr std::size_t kMaxObjsPerSpan = kPageSize / 8;  // class 8 in one page
inline constexpr std::size_t kBitmapWords = kMaxObjsPerSpan / 64;
inline constexpr std::size_t kMaxTinyBlocks = kPageSize / kTinySize;

// How the collector treats the objects of a kind: scanned not at all,
// word by word, by their type's pointer bits, or as the kind's record says
// (kinds defined at run time). Uncollectable kinds are also roots.
enum class ScanMode : std::uint8_t { kNone, kConservative, kTyped, kCustom };

constexpr ScanMode scan_mode(Kind k) {
  switch (k) {
    case Kind::kNoscan:
    case Kind::kTiny:
    case Kind::kAtomicUncollectable:
      return ScanMode::kNone;
    case Kind::kConservative:
    case Kind::kUncollectable:
      return ScanMode::kConservative;
    case Kind::kTyped:
      return ScanMode::kTyped;
    default:
      return ScanMode::kCustom;
  }
}

// Objects of this kind are never reclaimed by the collector: each
// allocated one is marked, and scanned as its kind says, as a root.
constexpr bool kind_is_root(Kind k) { return k == Kind::kUncollectable || k == Kind::kAtomicUncollectable; }

enum class SpanState : std::uint8_t {
  kFree = 0,     // record not in use
  kSmall = 1,    // slots of a size class
  kLarge = 2,    // one large object
  kFreeing = 3,  // a large object being freed (claimed by one free())
};

// Tiny spans: per 16-byte block, where objects start (bit k: byte k) and
// which of them free() has released, by the owner or by other threads.
struct TinyMasks {
  std::uint16_t alloc_mask[kMaxTinyBlocks];
  std::uint16_t local_freed[kMaxTinyBlocks];
  std::atomic<std::uint16_t> remote_freed[kMaxTinyBlocks];

  // Block b holds no object any more. Owner or central lock holder only,
  // and only once every object of the block is freed (so no other thread
  // may be writing remote_freed[b]).
  void reset(std::size_t b) {
    alloc_mask[b] = 0;
    local_freed[b] = 0;
    remote_freed[b].store(0, std::memory_order_relaxed);
  }
};

struct SpanList;

struct MSpan {
  std::uintptr_t base = 0;
  std::size_t npages = 0;
  std::uint32_t elem_size = 0;   // bytes per slot; a large span: its whole size (capped)
  std::uint32_t nelems = 0;      // slots; 1 for a large span
  std::uint32_t div_magic = 0;   // slot index = offset * div_magic >> 32
  std::uint16_t span_class = 0;  // 0 for large spans
  Kind kind = Kind::kNoscan;
  std::atomic<SpanState> state{SpanState::kFree};
  bool need_zero = false;         // free slots may hold old data
  std::uint32_t alloc_count = 0;  // bits set in alloc_bits
  // The cache that owns the span, or nullptr while it is on a central list.
  // Written under the central lock. In the first cache line with the fields
  // above: free() reads them all, and a thread that reads its own cache
  // here owns the span (only it can have stored that value since).
  std::atomic<MCache*> owner{nullptr};
  // 1 once a free has been recorded in pending_free and not merged since;
  // the 0 -> 1 transition tells the freer to notify the central list.
  std::atomic<std::uint32_t> pending{0};
  // free() calls by threads that do not own the span and are between their
  // first write to it and their last. The span is not given back to mheap
  // while this is nonzero: a tiny block whose other objects are freed can
  // be merged away while such a free is still about to touch the span.
  std::atomic<std::uint32_t> frees_in_flight{0};
  // Objects of the span that have a finalizer or weak references, plus its
  // objects sampled by the heap profile: free() must drop those, so it
  // leaves its fast case when this is nonzero.
  std::atomic<std::uint32_t> specials{0};
  // Here, in the first cache line's last free word: the record then takes
  // 512 bytes, one metadata block of that size (520 took 1024).
  std::atomic<std::uint32_t> sweep_gen{0};

  std::atomic<std::uint64_t> alloc_bits[kBitmapWords];
  std::atomic<std::uint64_t> pending_free[kBitmapWords];
  std::atomic<std::uint64_t> gc_bits[kBitmapWords];
  // A second bitmap, else nullptr (one pointer for two uses, so that the
  // record stays 512 bytes): gccheckmark's second set of mark bits while
  // it runs; during a mostly-concurrent mark, from its first stop to its
  // last, the span's alloc_bits as they were at the first stop (objects
  // not in it were allocated since; a span made since has none).
  std::atomic<std::uint64_t>* aux_bits = nullptr;

  const TypeInfo** type_records = nullptr;           // typed spans: one per slot
  TinyMasks* tiny = nullptr;                         // tiny spans
  std::atomic<const TypeInfo*> large_type{nullptr};  // large typed object
  std::size_t large_size = 0;                        // large: requested bytes

  MSpan* next = nullptr;
  MSpan* prev = nullptr;
  SpanList* list = nullptr;

  bool is_large() const { return span_class == 0; }
  std::uintptr_t limit() const { return base + npages * kPageSize; }
  std::uintptr_t slot_address(std::size_t i) const { return base + i * elem_size; }

  // Index of the slot holding addr (addr inside the span). No division.
  std::size_t object_index(std::uintptr_t addr) const {
    return static_cast<std::size_t>(((addr - base) * static_cast<std::uint64_t>(div_magic)) >> 32);
  }

  // Bits of chunk word w that are real slots (the last word may be partial).
  std::uint64_t valid_mask(std::size_t w) const {
    const std::size_t first = w * 64;
    if (first + 64 <= nelems) return ~std::uint64_t{0};
    return first >= nelems ? 0 : (std::uint64_t{1} << (nelems - first)) - 1;
  }
  std::size_t bitmap_words() const { return (nelems + 63) / 64; }

  bool is_marked(std::size_t i) const { return (gc_bits[i / 64].load(std::memory_order_relaxed) >> (i % 64)) & 1; }

  bool is_allocated(std::size_t i) const {
    return (alloc_bits[i / 64].load(std::memory_order_relaxed) >> (i % 64)) & 1;
  }

  // Owner (or central lock holder) only: slot 64 * w + ctz(bit), whose
  // word of alloc_bits currently reads bits, becomes free.
  void clear_alloc_bit(std::size_t w, std::uint64_t bits, std::uint64_t bit) {
    alloc_bits[w].store(bits & ~bit, std::memory_order_relaxed);
    alloc_count--;
    need_zero = true;
  }

  // Expensive consistency check (debug-malloc and tests): aborts with a
  // message when the span's fields disagree. Owner or lock holder only.
  void check() const;
};

static_assert(sizeof(MSpan) <= 512, "a span record is a 512-byte metadata block");

// An intrusive doubly linked list of spans. The owner's lock protects it.
struct SpanList {
  MSpan* first = nullptr;
  std::size_t count = 0;

  void push(MSpan* s);
  void remove(MSpan* s);
  MSpan* pop();
  bool empty() const { return first == nullptr; }
};

}  // namespace mgc::internal
