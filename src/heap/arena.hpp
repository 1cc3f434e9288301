// Heap arenas and the page -> span map (Go: heapArena, spanOf).
//
// The heap's address space comes in arenas of 64 MiB, each aligned to its
// size. For every arena that belongs to the heap, a HeapArena records the
// span of each 8 KiB page. span_of(addr) answers in constant time and
// without a lock: a bounds check, one load from the first-level table
// (indexed by addr >> 26), one load from the arena's page table. The
// conservative scan of the collector and free() stand on it.
//
// Owns: the first-level table and the HeapArena records. Writers hold the
// heap lock; readers take none. Entries are published with release stores
// and read with acquire loads, so a reader that sees a span sees it
// initialised. Never touches span contents.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "mallocgc/internal/size_classes.hpp"

namespace mgc::internal {

struct MSpan;

inline constexpr std::size_t kArenaShift = 26;
inline constexpr std::size_t kArenaSize = std::size_t{1} << kArenaShift;  // 64 MiB
inline constexpr std::size_t kPagesPerArena = kArenaSize / kPageSize;     // 8192
inline constexpr std::size_t kAddressBits = 48;                           // x86-64 user space
inline constexpr std::size_t kArenaL1Entries = std::size_t{1} << (kAddressBits - kArenaShift);

struct HeapArena {
  // spans[i]: the in-use span holding page i of the arena, or nullptr for
  // a page that is free or not committed. Heap lock to write.
  std::atomic<MSpan*> spans[kPagesPerArena];
};

// The first level of the map: one entry per 64 MiB of the 48-bit address
// space (32 MiB of zero-initialised static storage, of which only the pages
// holding used entries are ever touched). A static array rather than a
// mapping saves free() one dependent load. Shared by every ArenaMap: an
// address belongs to one heap.
extern std::atomic<HeapArena*> arena_l1[kArenaL1Entries];

class ArenaMap {
 public:
  // The span whose pages contain addr, or nullptr. Any address is fine.
  MSpan* span_of(std::uintptr_t addr) const {
    // The first-level table covers all of user space: no bounds to load.
    if (addr >> kAddressBits) return nullptr;
    HeapArena* ha = arena_l1[addr >> kArenaShift].load(std::memory_order_acquire);
    if (ha == nullptr) return nullptr;
    return ha->spans[(addr >> kPageShift) & (kPagesPerArena - 1)].load(std::memory_order_acquire);
  }

  // Is addr inside an arena of the heap (committed or not)? Constant time.
  bool in_heap_range(std::uintptr_t addr) const {
    return addr >= lo_.load(std::memory_order_relaxed) && addr < hi_.load(std::memory_order_relaxed);
  }

  void bounds(std::uintptr_t* lo, std::uintptr_t* hi) const {
    *lo = lo_.load(std::memory_order_relaxed);
    *hi = hi_.load(std::memory_order_relaxed);
  }

  // Make [base, base + n * kArenaSize) part of the heap. Heap lock held.
  // false when metadata memory is exhausted.
  bool add_arenas(std::uintptr_t base, std::size_t n);

  // Point every page of [base, base + npages * kPageSize) at s (nullptr to
  // clear). The pages lie in arenas already added. Heap lock held.
  void set_spans(std::uintptr_t base, std::size_t npages, MSpan* s);

 private:
  // [lo_, hi_) covers every arena; empty until the first arena. lo_ only
  // falls and hi_ only rises, and both move before any span of a new arena
  // is published, so a reader that legitimately holds an address of the
  // heap (it got it after the allocation) sees bounds that include it.
  std::atomic<std::uintptr_t> lo_{~std::uintptr_t{0}};
  std::atomic<std::uintptr_t> hi_{0};
};

}  // namespace mgc::internal
